/* api.h - the command line's HTTP client of a running myna (blocking
 * libcurl: a CLI waits for its answer). */
#ifndef MYNA_CLI_API_H
#define MYNA_CLI_API_H

#include <stdio.h>

#include "core/buf.h"

struct myna_api {
    void *curl;            /* CURL * */
    const char *base;      /* http://host:port of the admin listener */
    const char *token;     /* Bearer token, or NULL */
    struct myna_buf resp;  /* the last answer's body, NUL-terminated */
    int too_big;           /* the last answer passed resp's max (status -1) */
};

/* 0, or -1 when libcurl cannot start. */
int myna_api_init(struct myna_api *a, const char *base, const char *token);
void myna_api_release(struct myna_api *a);
/* method path [JSON body]: the HTTP status, or -1 without an answer. */
long myna_api_call(struct myna_api *a, const char *method, const char *path, const char *body);
/* The answer's {"error"} (and its "fields"), or a generic line, on err. */
void myna_api_print_error(const struct myna_api *a, const char *what, long status, void *err_file);
/* Says on err that the answer to what was not the JSON myna answers. */
void myna_api_print_bad_answer(const struct myna_api *a, const char *what, FILE *err);
/* Writes s, a text from the server, for a terminal: a control character
 * (C0, DEL, C1; with lines, '\n' and '\t' stay) or a byte of no valid UTF-8
 * sequence becomes '?', so a name or a reply cannot drive the terminal.
 * The bytes written. */
size_t myna_api_put_text(FILE *f, const char *s, int lines);

#endif
