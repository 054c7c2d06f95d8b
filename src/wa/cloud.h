/* cloud.h - parser of Meta WhatsApp Cloud API webhook bodies.
 *
 * Pure: bytes in, records out, all memory in the caller's arena (one
 * myna_arena_free releases everything). No I/O, no logging, no globals, safe
 * on any bytes. It does not check the signature (signature.h does that over
 * the raw bytes first) and does not route or dedupe (the ingress does).
 *
 * Shape rules (../docs/webhooks.md):
 *   - The body must be a JSON object with "object":"whatsapp_business_account"
 *     and an "entry" array; otherwise MYNA_EPARSE (not JSON) or MYNA_ESHAPE.
 *   - Every entry x change is read; changes whose field is not "messages" are
 *     counted in n_ignored and otherwise skipped (Meta expects a 200 for them).
 *   - value.messages[] become struct myna_inbound, value.statuses[] become
 *     struct myna_status_rec, in body order. value.errors[] are counted in
 *     n_errors. Items without an id (or statuses without a status) are
 *     skipped and counted in n_invalid; they never fail the whole body.
 *   - Unknown fields are ignored everywhere; unknown message types become
 *     MYNA_MSG_UNSUPPORTED with text = the type name. */
#ifndef MYNA_WA_CLOUD_H
#define MYNA_WA_CLOUD_H

#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/record.h"

/* Hard bounds against hostile bodies (a real POST carries at most 1000). */
#define MYNA_CLOUD_MAX_ITEMS 10000

struct myna_cloud_batch {
    struct myna_inbound *msgs;      /* n_msgs records, in the arena */
    size_t n_msgs;
    struct myna_status_rec *statuses;
    size_t n_statuses;
    size_t n_ignored;  /* changes of other fields (account_update, ...) */
    size_t n_errors;   /* value.errors[] entries (account/app level) */
    int error_code;    /* the first of them's code; 0 when none or without one */
    size_t n_invalid;  /* messages or statuses skipped for missing id/status */
};

/* Parses body[0..len) (need not be NUL-terminated) into *out.
 * MYNA_OK; MYNA_EPARSE when the bytes are not JSON; MYNA_ESHAPE when the JSON
 * is not a Cloud API webhook; MYNA_ETOOBIG past MYNA_CLOUD_MAX_ITEMS items;
 * MYNA_ENOMEM. err names what was wrong, e.g. `missing "entry" array`. */
int myna_cloud_parse(const char *body, size_t len, struct myna_arena *a,
                     struct myna_cloud_batch *out, struct myna_err *err);

#endif
