/* record.c - names of message types and status kinds. */
#include "store/record.h"

#include <string.h>
#include "core/banned.h"

static const char *const msg_names[] = {
#define X(id, name) name,
    MYNA_MSG_TYPES(X)
#undef X
};

static const char *const status_names[] = {
#define X(id, name) name,
    MYNA_STATUS_KINDS(X)
#undef X
};

const char *myna_msg_type_name(enum myna_msg_type t)
{
    if ((unsigned)t >= MYNA_MSG__COUNT)
        return "unsupported";
    return msg_names[t];
}

enum myna_msg_type myna_msg_type_from_name(const char *name)
{
    for (int i = 0; i < MYNA_MSG__COUNT; i++)
        if (strcmp(msg_names[i], name) == 0)
            return (enum myna_msg_type)i;
    return MYNA_MSG__COUNT;
}

const char *myna_status_kind_name(enum myna_status_kind k)
{
    if ((unsigned)k >= MYNA_STATUS__COUNT)
        return "unknown";
    return status_names[k];
}

enum myna_status_kind myna_status_kind_from_name(const char *name)
{
    for (int i = 0; i < MYNA_STATUS_UNKNOWN; i++)
        if (strcmp(status_names[i], name) == 0)
            return (enum myna_status_kind)i;
    return MYNA_STATUS_UNKNOWN;
}
