/* record.h - the normalized records that the ingress produces and the store
 * keeps: one inbound message, one outbound-message status.
 *
 * Provider parsers (src/wa) fill these from webhook bodies; every string is
 * borrowed (usually from the request's arena) and is either NULL or
 * NUL-terminated UTF-8. The store copies what it keeps. */
#ifndef MYNA_STORE_RECORD_H
#define MYNA_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

/* Inbound message types. The name (myna_msg_type_name) is what the store
 * keeps and what the rest of Myna dispatches on. */
#define MYNA_MSG_TYPES(X)                                                     \
    X(TEXT, "text")                /* text.body */                            \
    X(IMAGE, "image")              /* media + caption */                      \
    X(AUDIO, "audio")              /* audio file, voice=false */              \
    X(VOICE, "voice")              /* audio with voice=true (voice note) */   \
    X(VIDEO, "video")                                                         \
    X(DOCUMENT, "document")                                                   \
    X(STICKER, "sticker")                                                     \
    X(LOCATION, "location")                                                   \
    X(CONTACTS, "contacts")        /* shared contact cards */                 \
    X(BUTTON_REPLY, "button_reply")/* interactive.button_reply */             \
    X(LIST_REPLY, "list_reply")    /* interactive.list_reply */               \
    X(FLOW_REPLY, "flow_reply")    /* interactive.nfm_reply */                \
    X(TEMPLATE_BUTTON, "template_button") /* type "button" */                 \
    X(REACTION, "reaction")                                                   \
    X(ORDER, "order")                                                         \
    X(SYSTEM, "system")                                                       \
    X(UNSUPPORTED, "unsupported")  /* also legacy "unknown" and new types */

enum myna_msg_type {
#define X(id, name) MYNA_MSG_##id,
    MYNA_MSG_TYPES(X)
#undef X
    MYNA_MSG__COUNT
};

/* Outbound-message statuses, in their monotonic order (failed is terminal). */
#define MYNA_STATUS_KINDS(X) \
    X(SENT, "sent")          \
    X(DELIVERED, "delivered") \
    X(READ, "read")          \
    X(PLAYED, "played")      \
    X(FAILED, "failed")      \
    X(UNKNOWN, "unknown")    /* a status name Myna does not know yet */

enum myna_status_kind {
#define X(id, name) MYNA_STATUS_##id,
    MYNA_STATUS_KINDS(X)
#undef X
    MYNA_STATUS__COUNT
};

/* One inbound message. Which fields are set, by type:
 *   text            text = body
 *   image/video/document/audio/voice/sticker
 *                   media_id, mime_type, text = caption (NULL if none;
 *                   document without caption: text = filename)
 *   location        text = "name, address" when present, else NULL;
 *                   latitude/longitude always (has_location = 1)
 *   contacts        text = formatted_name of the first card
 *   button_reply, list_reply
 *                   reply_id = the id, text = the title
 *   flow_reply      reply_id = nfm_reply.name, text = nfm_reply.response_json
 *   template_button reply_id = button.payload, text = button.text
 *   reaction        reply_id = reacted message id, text = emoji (NULL when
 *                   the reaction is removed)
 *   order           reply_id = catalog_id, text = order.text
 *   system          reply_id = new wa_id (or new_wa_id), text = body
 *   unsupported     text = unsupported.type (or the unknown type's name),
 *                   error_code = errors[0].code when present
 * context_id is the quoted message (context.id) for any type; referral_id is
 * the ad id (referral.source_id) for any type. */
struct myna_inbound {
    const char *phone_number_id; /* metadata.phone_number_id: the receiving number */
    const char *wamid;           /* messages[].id, the dedupe key; never NULL */
    const char *contact;         /* sender wa_id digits ("from"); "" if withheld */
    const char *contact_user_id; /* business-scoped user id (BSUID) or NULL */
    const char *profile_name;    /* contacts[].profile.name matched by wa_id, or NULL */
    int64_t ts;                  /* messages[].timestamp, unix seconds (0 if absent) */
    enum myna_msg_type type;
    const char *text;
    const char *reply_id;
    const char *media_id;
    const char *mime_type;
    const char *context_id;
    const char *referral_id;
    int error_code;
    int has_location;
    double latitude, longitude;
    const char *raw;             /* that message object as compact JSON */
    size_t raw_len;
};

/* One status of a message we sent. */
struct myna_status_rec {
    const char *phone_number_id;
    const char *wamid;           /* statuses[].id, the message we sent; never NULL */
    enum myna_status_kind status;
    const char *status_name;     /* as received, e.g. "delivered"; never NULL */
    const char *recipient;       /* recipient_id, or NULL */
    int64_t ts;
    int error_code;              /* errors[0].code for failed, else 0 */
    const char *error_title;     /* errors[0].title or message, or NULL */
    const char *raw;             /* that status object as compact JSON */
    size_t raw_len;
};

const char *myna_msg_type_name(enum myna_msg_type t);
/* MYNA_MSG__COUNT when the name is unknown. */
enum myna_msg_type myna_msg_type_from_name(const char *name);
const char *myna_status_kind_name(enum myna_status_kind k);
/* MYNA_STATUS_UNKNOWN when the name is unknown. */
enum myna_status_kind myna_status_kind_from_name(const char *name);

#endif
