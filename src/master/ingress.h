/* ingress.h - the Cloud API webhook endpoint of the master.
 *
 *   GET  /webhook/<id>  verification handshake: 200 + hub.challenge, or 403
 *   POST /webhook/<id>  signed events: 401 bad or missing signature, 404
 *                       unknown or disabled instance, or a record for a
 *                       disabled one, 413 too large, 400 not a webhook,
 *                       503 overloaded, draining, or a store (the URL's
 *                       or a record's instance's) not open, 500 store failure,
 *                       200 only after every record is committed
 *   both                503 for an instance whose stored settings did not
 *                       load (the fleet's unloaded ones), before anything
 *                       else is checked
 *   HEAD                as GET, without the body; other methods 405
 *
 * Owns one store per enabled instance (data/instances/<id>.db), their HMAC
 * keys and the committer. Records are routed by metadata.phone_number_id to
 * the instance of the same Meta app (same app secret) that owns the number,
 * else kept by the instance named in the URL; a body with a record for a
 * disabled instance is refused whole with 404, as that instance's own URL
 * is, so Meta keeps it and retries. Runs on the loop thread. */
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

/* conf and metrics are borrowed and must outlive the ingress; instances
 * (enabled or not) is copied (myna_ingress_set_instances). */
struct myna_ingress *myna_ingress_new(struct event_base *base, const struct myna_conf *conf,
                                      const struct myna_instance_set *instances,
                                      struct myna_metrics *metrics, struct myna_err *err);
/* Handles a request for /webhook/<id>; id is the raw path segment. */
void myna_ingress_handle(struct myna_ingress *ing, struct evhttp_request *req, const char *id);
/* Replaces the instances (v[0..n), borrowed for the call): every instance,
 * enabled or not. Enabled ones are served (new ones at once); disabled and
 * removed ones get 404, and of a disabled one only the number and the app
 * are kept, to refuse records for it (no store, key or token). A number
 * owned by two instances of one app goes to the URL's if it is one of them,
 * else to the first in v. Requests in flight finish with the instances they
 * started with. A store stays open across an update of its enabled
 * instance. unloaded[0..n_unloaded) (borrowed, NULL ok when 0): the ids of
 * stored instances whose settings did not load; their webhooks get 503
 * (counted as not_loaded) until an update leaves them out; an id also in
 * v is served as v's. On failure nothing changes. */
int myna_ingress_set_instances(struct myna_ingress *ing, const struct myna_instance *const *v,
                               size_t n, const char *const *unloaded, size_t n_unloaded,
                               struct myna_err *err);
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
