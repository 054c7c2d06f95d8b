/* ingress.h - the Cloud API webhook endpoint of the master.
 *
 *   GET  /webhook/<id>  verification handshake: 200 + hub.challenge, or 403
 *   POST /webhook/<id>  signed events: 401 bad or missing signature, 404
 *                       unknown instance, 413 too large, 400 not a webhook,
 *                       503 overloaded or draining, 500 store failure,
 *                       200 only after every record is committed
 *
 * Owns one store per instance (data/instances/<id>.db), the instances' HMAC
 * keys and the committer. Records are routed by metadata.phone_number_id to
 * the instance of the same Meta app (same app secret) that owns the number,
 * else kept by the instance named in the URL. Runs on the loop thread. */
#ifndef MYNA_MASTER_INGRESS_H
#define MYNA_MASTER_INGRESS_H

#include <stddef.h>

#include "core/conf.h"
#include "core/err.h"
#include "master/metrics.h"
#include "wa/instance.h"

struct event_base;
struct evhttp_request;
struct myna_ingress;

/* conf and metrics are borrowed and must outlive the ingress; instances is
 * copied (myna_ingress_set_instances). */
struct myna_ingress *myna_ingress_new(struct event_base *base, const struct myna_conf *conf,
                                      const struct myna_instance_set *instances,
                                      struct myna_metrics *metrics, struct myna_err *err);
/* Handles a request for /webhook/<id>; id is the raw path segment. */
void myna_ingress_handle(struct myna_ingress *ing, struct evhttp_request *req, const char *id);
/* Replaces the instances served (v[0..n), borrowed for the call): new ones
 * are served at once, removed ones get 404; requests in flight finish with
 * the instances they started with. A store stays open across an update of
 * its instance. On failure nothing changes. */
int myna_ingress_set_instances(struct myna_ingress *ing, const struct myna_instance *const *v,
                               size_t n, struct myna_err *err);
/* fn(id, arg) runs on the loop after a commit that stored new records for
 * instance id: the bot's doorbell. */
void myna_ingress_set_notify(struct myna_ingress *ing, void (*fn)(const char *id, void *arg),
                             void *arg);
/* From now on new POSTs get 503 (Meta retries them later). */
void myna_ingress_drain(struct myna_ingress *ing);
/* Requests waiting for their commit. */
size_t myna_ingress_pending(const struct myna_ingress *ing);
void myna_ingress_commit_stats(struct myna_ingress *ing, struct myna_commit_stats *out);
/* Stops the writer (after it finishes), closes the stores. NULL ok. */
void myna_ingress_free(struct myna_ingress *ing);

#endif
