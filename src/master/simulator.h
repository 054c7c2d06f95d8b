/* simulator.h - the simulator's endpoints on the admin listener (provider
 * "sim"; the pure parts are in wa/sim.h):
 *
 *   GET  /sim                      the sim instances, with links
 *   GET  /sim/<id>                 the chat page
 *   POST /sim/<id>/send            a customer message: becomes a signed Cloud
 *                                  API webhook posted to the public listener;
 *                                  200 {"id","seq"} once the ingress took it;
 *                                  only as application/json (415), which
 *                                  another site's page cannot send unasked
 *   GET  /sim/<id>/events?contact=&after=   what the page shows (and the
 *                                  customer has now seen the bot's messages:
 *                                  they become read)
 *   GET  /sim/<id>/info            {"id","name","phone_number_id","access_token",
 *                                  "graph_url"} for the page, tests and tools
 *   POST /sim/graph/<phone_number_id>/messages   the fake Graph API the bots
 *                                  of sim instances send to; answers as Meta
 *                                  does and posts the status webhooks back
 *
 * HEAD is taken wherever GET is: the answer a GET would get, without the
 * body, and a HEAD of events marks nothing read. Another method on one of
 * the first five paths is 405 with Allow.
 *
 * The conversation shown is kept in memory (the last MYNA_SIM_EVENTS_MAX
 * events per instance); the records themselves are in the stores as for
 * any instance. Runs on the loop thread. */
#ifndef MYNA_MASTER_SIMULATOR_H
#define MYNA_MASTER_SIMULATOR_H

#include "core/err.h"
#include "wa/instance.h"

struct event_base;
struct evhttp_request;
struct myna_simulator;

/* public_addr, admin_addr: the listeners' bound addresses (host:port); the
 * webhooks go to the first. instances is borrowed. NULL with err. */
struct myna_simulator *myna_simulator_new(struct event_base *base,
                                          const struct myna_instance_set *instances,
                                          const char *public_addr, const char *admin_addr,
                                          struct myna_err *err);
/* Replaces the instances served (the sim ones of v[0..n), borrowed until
 * the next call): an instance that stays keeps its conversation; a removed
 * one's webhooks in flight are dropped. On failure nothing changes. */
int myna_simulator_set_instances(struct myna_simulator *s, const struct myna_instance *const *v,
                                 size_t n, struct myna_err *err);
/* Drops what is in flight. NULL ok. */
void myna_simulator_free(struct myna_simulator *s);
/* Handles a request whose path starts with "/sim". */
void myna_simulator_handle(struct myna_simulator *s, struct evhttp_request *req,
                           const char *path);

#endif
