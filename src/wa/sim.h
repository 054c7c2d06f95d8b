/* sim.h - the built-in simulator's pure parts (provider "sim").
 *
 * A sim instance talks to no one outside: a person writes as a customer in
 * the chat page (/sim/<id>) or in `myna chat`, the master turns each line
 * into a signed Cloud API webhook posted to its own public listener, and the
 * bot's replies go to a fake Graph API the master serves on the admin
 * listener (/sim/graph/<phone_number_id>/messages), which answers as Meta
 * does and sends status webhooks (sent, delivered, read) back. So a sim
 * conversation goes through exactly the production path.
 *
 * This file holds what can be tested and fuzzed without a loop: the
 * defaults of sim instances, the parsers of the two bodies that come from
 * outside (the chat page's send, the bot's Graph request), the webhook
 * builders and the conversation log the page polls. */
#ifndef MYNA_WA_SIM_H
#define MYNA_WA_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "wa/graph.h"

struct myna_instance;
struct myna_instance_set;

#define MYNA_SIM_EVENTS_MAX 1000      /* per instance; the oldest go first */
#define MYNA_SIM_BODY_MAX (64 * 1024)  /* a send from the page or a Graph request */
#define MYNA_SIM_NAME_MAX 64

/* Fills what a sim instance may leave out, for every sim instance of set:
 * access_token, app_secret and verify_token are derived from the key in
 * data_dir/sim.key (made at the first start, 0600, when create != 0), so
 * the master and its bots agree without the operator choosing secrets;
 * graph_url, when empty and admin_addr is not NULL, becomes
 * http://<admin_addr>/sim/graph (a wildcard address becomes loopback).
 * Instances of other providers are left alone. */
int myna_sim_prepare(struct myna_instance_set *set, const char *data_dir,
                     const char *admin_addr, int create, struct myna_err *err);

/* "http://host:port" + path for a listener bound to addr ("host:port", a
 * wildcard host becomes loopback). 0, or -1 when addr has no port. */
int myna_sim_local_url(const char *addr, const char *path, char *out, size_t cap);

/* ---- what the page sends ----------------------------------------------- */

enum myna_sim_kind { MYNA_SIM_TEXT, MYNA_SIM_BUTTON, MYNA_SIM_LIST };

struct myna_sim_send {
    enum myna_sim_kind kind;
    char from[16];                  /* 1..15 digits */
    char name[MYNA_SIM_NAME_MAX * 4 + 1];  /* profile name, UTF-8, may be "" */
    char *text;                     /* TEXT: 1..4096 code points (malloc) */
    char *reply_id;                 /* BUTTON/LIST: the id clicked (malloc) */
    char *reply_title;
    char *reply_description;        /* LIST, may be NULL */
    char context[128];              /* wamid of the bot message answered, or "" */
};

/* Parses {"from","name","text"} | {"from","name","button":{"id","title"},
 * "context"} | {"from","name","list":{"id","title","description"},
 * "context"}. MYNA_EPARSE / MYNA_EINVAL with a message for the page (a
 * NUL in any string, raw or \u0000, is EPARSE). */
int myna_sim_send_parse(const char *body, size_t len, struct myna_sim_send *out,
                        struct myna_err *err);
void myna_sim_send_release(struct myna_sim_send *s);

/* ---- what the bot sends to the fake Graph API --------------------------- */

enum myna_sim_graph_kind { MYNA_SIM_GRAPH_MESSAGE, MYNA_SIM_GRAPH_READ };

struct myna_sim_graph_req {
    enum myna_sim_graph_kind kind;
    char to[16];          /* MESSAGE: recipient digits (spaces, hyphens, parentheses dropped) */
    char type[16];        /* MESSAGE: text, interactive, image, ... */
    char *text;           /* MESSAGE: what the customer sees (malloc) */
    char *extra;          /* MESSAGE: "buttons":[..] or "list":{..} for the page, or NULL */
    char *opaque;         /* MESSAGE: biz_opaque_callback_data, or NULL */
    char read_id[MYNA_GRAPH_WAMID_MAX + 1];  /* READ: the inbound wamid */
    int typing;           /* READ: the typing indicator was asked for */
};

/* Validates a POST .../messages body as Meta does (the limits of the
 * reference). On failure returns the HTTP status (400) and puts Meta's
 * error code (100, 131008, 131009; 1 out of memory) and a message in
 * code/msg (a NUL in any string, raw or \u0000, is 100). 0 on success. */
int myna_sim_graph_parse(const char *body, size_t len, struct myna_sim_graph_req *out,
                         int *code, char *msg, size_t cap);
void myna_sim_graph_release(struct myna_sim_graph_req *r);
/* Meta's error body: {"error":{"message","type","code","error_data","fbtrace_id"}}
 * (malloc). */
char *myna_sim_graph_error(int code, const char *type, const char *msg);

/* ---- webhooks ---------------------------------------------------------------- */

/* The Cloud API webhook of a customer message (malloc, compact JSON). */
char *myna_sim_message_webhook(const struct myna_instance *in, const struct myna_sim_send *s,
                               const char *wamid, int64_t ts);
/* The Cloud API webhook of a status of one of the bot's messages; code 0 =
 * no error. */
char *myna_sim_status_webhook(const struct myna_instance *in, const char *wamid,
                              const char *recipient, const char *status, const char *opaque,
                              int64_t ts, int code, const char *title);
/* A new message id, "wamid.SIM" + 32 hex digits (out >= 48 bytes). */
void myna_sim_wamid(char *out, size_t cap);

/* ---- the conversation log the page polls --------------------------------- */

enum myna_sim_status { MYNA_SIM_PENDING, MYNA_SIM_SENT, MYNA_SIM_DELIVERED, MYNA_SIM_READ,
                       MYNA_SIM_FAILED };

struct myna_sim_event {
    uint64_t seq;        /* changes with every update: the page asks for seq > n */
    int out;             /* 1: the bot's message, 0: the customer's */
    enum myna_sim_status status;
    int64_t ts;
    char id[128];
    char contact[16];
    char type[16];
    char *text, *extra, *opaque, *error;  /* malloc or NULL */
};

struct myna_sim_log;

struct myna_sim_log *myna_sim_log_new(void);
void myna_sim_log_free(struct myna_sim_log *l);  /* NULL ok */
/* Appends an event (copies; takes text, extra and opaque). NULL on OOM. */
struct myna_sim_event *myna_sim_log_add(struct myna_sim_log *l, int out, const char *id,
                                        const char *contact, const char *type, char *text,
                                        char *extra, char *opaque,
                                        enum myna_sim_status status, int64_t ts);
struct myna_sim_event *myna_sim_log_find(struct myna_sim_log *l, const char *id);
/* Moves e forward to status (never back) with a new seq; 1 if it moved. */
int myna_sim_log_set(struct myna_sim_log *l, struct myna_sim_event *e,
                     enum myna_sim_status status, const char *error);
/* The bot read up to the customer's message id: that one and the earlier
 * ones of the same contact become READ. */
void myna_sim_log_read_upto(struct myna_sim_log *l, const char *id);
/* Calls fn for each of the bot's DELIVERED messages to contact (the
 * customer has seen them), after moving it to READ. */
void myna_sim_log_seen(struct myna_sim_log *l, const char *contact,
                       void (*fn)(const struct myna_sim_event *e, void *arg), void *arg);
/* The typing indicator of contact: on until now_ms + 25 s or the next reply. */
void myna_sim_log_typing(struct myna_sim_log *l, const char *contact, int on, int64_t now_ms);
/* {"events":[...],"seq":N,"typing":bool} with the events of contact (all
 * when contact is "") whose seq > after, as many as out's max allows: when
 * some are left out, "more":true, the page holds those of the lowest seqs
 * (in the log's order) and N is the highest of them (ask again with
 * after=N); else N is the log's newest seq. MYNA_ETOOBIG only when not even
 * one event fits. */
int myna_sim_log_render(const struct myna_sim_log *l, const char *contact, uint64_t after,
                        int64_t now_ms, struct myna_buf *out);

#endif
