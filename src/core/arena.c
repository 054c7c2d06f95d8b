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

/* Standard blocks are recycled through a small per-thread cache: a webhook
 * request takes a few blocks and gives them back a millisecond later, and
 * going through malloc for each was a measurable share of the loop. A block
 * freed on another thread than the one that made it simply moves caches. */
#define ARENA_CACHE_MAX 64
static _Thread_local struct myna_arena_block *block_cache;
static _Thread_local size_t block_cache_n;

static struct myna_arena_block *block_new(size_t size)
{
    struct myna_arena_block *b;

    if (size == ARENA_BLOCK && block_cache != NULL) {
        b = block_cache;
        block_cache = b->next;
        block_cache_n--;
        return b;
    }
    if (size > SIZE_MAX - sizeof(*b))
        return NULL;
    if ((b = malloc(sizeof(*b) + size)) != NULL)
        b->size = size;
    return b;
}

static void block_release(struct myna_arena_block *b)
{
    if (b->size == ARENA_BLOCK && block_cache_n < ARENA_CACHE_MAX) {
        b->next = block_cache;
        block_cache = b;
        block_cache_n++;
        return;
    }
    free(b);
}

void myna_arena_cache_release(void)
{
    while (block_cache != NULL) {
        struct myna_arena_block *b = block_cache;
        block_cache = b->next;
        free(b);
    }
    block_cache_n = 0;
}

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
        struct myna_arena_block *nb = block_new(size);
        if (nb == NULL)
            return NULL;
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
        block_release(b);
    }
    a->head = NULL;
    a->used = 0;
}
