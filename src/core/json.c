/* json.c - cJSON hooks that allocate from the current thread's arena. */
#include "core/json.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#include "core/banned.h"

static _Thread_local struct myna_arena *json_arena;
static _Thread_local int json_failed;

static void *json_malloc(size_t n)
{
    void *p;

    if (json_arena == NULL)
        return malloc(n);
    if ((p = myna_arena_alloc(json_arena, n)) == NULL)
        json_failed = 1;
    return p;
}

static void json_free(void *p)
{
    if (json_arena == NULL)
        free(p);
    /* else: arena memory, released with the arena */
}

/* Before main, while the process has one thread: cJSON keeps its hooks in
 * globals that every cJSON call reads, on any thread. */
__attribute__((constructor)) static void json_install(void)
{
    cJSON_Hooks hooks = { json_malloc, json_free };

    cJSON_InitHooks(&hooks);
}

void myna_json_arena_begin(struct myna_json_section *s, struct myna_arena *a)
{
    s->prev = json_arena;
    s->prev_failed = json_failed;
    json_arena = a;
    json_failed = 0;
}

int myna_json_arena_end(struct myna_json_section *s)
{
    int failed = json_failed;

    json_arena = s->prev;
    json_failed = s->prev_failed;
    return failed;
}
