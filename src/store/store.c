/* store.c - the backend-neutral part of store.h: closing a handle and
 * releasing the rows that reads hand out. Knows no backend; each backend
 * frees itself through ops->free. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include "core/banned.h"

void myna_store_free(struct myna_store *st)
{
    if (st == NULL)
        return;
    st->ops->free(st);
}

/* Row strings are const for readers but owned by the row. */
static void free_str(const char *s)
{
    free((char *)s);
}

void myna_store_inbox_row_release(struct myna_inbox_row *row)
{
    struct myna_inbound *m;

    if (row == NULL)
        return;
    m = &row->m;
    free_str(m->phone_number_id);
    free_str(m->wamid);
    free_str(m->contact);
    free_str(m->contact_user_id);
    free_str(m->profile_name);
    free_str(m->text);
    free_str(m->reply_id);
    free_str(m->media_id);
    free_str(m->mime_type);
    free_str(m->context_id);
    free_str(m->referral_id);
    free_str(m->raw);
    memset(row, 0, sizeof(*row));
}

void myna_store_status_row_release(struct myna_status_row *row)
{
    struct myna_status_rec *s;

    if (row == NULL)
        return;
    s = &row->s;
    free_str(s->phone_number_id);
    free_str(s->wamid);
    free_str(s->status_name);
    free_str(s->recipient);
    free_str(s->error_title);
    free_str(s->raw);
    memset(row, 0, sizeof(*row));
}
