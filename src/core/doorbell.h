/* doorbell.h - how another thread wakes the loop: an eventfd in the loop;
 * each ring makes the loop run the callback (rings close together may run
 * it once, so the callback takes everything waiting). */
#ifndef MYNA_CORE_DOORBELL_H
#define MYNA_CORE_DOORBELL_H

#include "core/err.h"

struct event_base;
struct myna_doorbell;

struct myna_doorbell *myna_doorbell_new(struct event_base *base, void (*cb)(void *arg),
                                        void *arg, struct myna_err *err);
/* Any thread. */
void myna_doorbell_ring(struct myna_doorbell *d);
/* NULL ok. */
void myna_doorbell_free(struct myna_doorbell *d);

#endif
