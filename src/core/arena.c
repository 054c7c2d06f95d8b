/* arena.c - region allocator: a chain of blocks, bump allocation. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

#define ARENA_BLOCK 4096
#define ARENA_ALIGN 16

struct myna_arena_block {
    struct myna_arena_block *next;
    size_t size, off;
    _Alignas(ARENA_ALIGN) unsigned char mem[];
};

struct myna_arena_hook {
    struct myna_arena_hook *next;
    void (*fn)(void *);
    void *arg;
};

void *myna_arena_alloc(struct myna_arena *a, size_t n)
{
    struct myna_arena_block *b = a->head;
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    void *p;

    if (n == 0)
        need = ARENA_ALIGN;
    if (need < n || (a->max && (need > a->max || a->used > a->max - need)))
        return NULL;
    if (b == NULL || b->size - b->off < need) {
        size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        struct myna_arena_block *nb;
        if (size > SIZE_MAX - sizeof(*nb))
            return NULL;
        nb = malloc(sizeof(*nb) + size);
        if (nb == NULL)
            return NULL;
        nb->size = size;
        nb->off = 0;
        if (b != NULL && need > ARENA_BLOCK && b->size - b->off > need / 8) {
            /* a big one-off: keep bumping in the current block */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    p = b->mem + b->off;
    b->off += need;
    a->used += need;
    return p;
}

void *myna_arena_zalloc(struct myna_arena *a, size_t n)
{
    void *p = myna_arena_alloc(a, n);

    if (p)
        memset(p, 0, n);
    return p;
}

char *myna_arena_strndup(struct myna_arena *a, const char *s, size_t n)
{
    char *p;

    if (n + 1 == 0)
        return NULL;
    p = myna_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *myna_arena_strdup(struct myna_arena *a, const char *s)
{
    return myna_arena_strndup(a, s, strlen(s));
}

int myna_arena_on_free(struct myna_arena *a, void (*fn)(void *), void *arg)
{
    struct myna_arena_hook *h = myna_arena_alloc(a, sizeof(*h));

    if (h == NULL)
        return MYNA_ENOMEM;
    h->fn = fn;
    h->arg = arg;
    h->next = a->hooks;
    a->hooks = h;
    return MYNA_OK;
}

void *myna_arena_own(struct myna_arena *a, void *p)
{
    if (p == NULL)
        return NULL;
    if (myna_arena_on_free(a, free, p) != MYNA_OK) {
        free(p);
        return NULL;
    }
    return p;
}

void myna_arena_free(struct myna_arena *a)
{
    struct myna_arena_hook *h;
    struct myna_arena_block *b, *next;

    /* hooks live in the blocks: run them all before freeing any block */
    for (h = a->hooks; h != NULL; h = h->next)
        h->fn(h->arg);
    a->hooks = NULL;
    for (b = a->head; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->used = 0;
}
