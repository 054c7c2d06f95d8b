/* arena.h - region allocator for one request or one turn.
 *
 * Everything parsed for a webhook request lives in its arena and goes in one
 * myna_arena_free at the end. Never free() an arena object. Allocation is
 * bounded by the arena's max so hostile input fails with NULL instead of
 * growing without end. on_free hooks close what is not memory. */
#ifndef MYNA_CORE_ARENA_H
#define MYNA_CORE_ARENA_H

#include <stddef.h>

struct myna_arena_block;
struct myna_arena_hook;

struct myna_arena {
    struct myna_arena_block *head;
    struct myna_arena_hook *hooks;
    size_t used;   /* bytes handed out, for limits and metrics */
    size_t max;    /* 0 = unlimited */
};

#define MYNA_ARENA_INIT(max_) { NULL, NULL, 0, (max_) }

/* 16-byte aligned memory, or NULL when out of memory or past max. */
void *myna_arena_alloc(struct myna_arena *a, size_t n);
void *myna_arena_zalloc(struct myna_arena *a, size_t n);
/* NUL-terminated copy of n bytes of s (s need not be terminated). */
char *myna_arena_strndup(struct myna_arena *a, const char *s, size_t n);
char *myna_arena_strdup(struct myna_arena *a, const char *s);
/* Takes ownership of p: free(p) runs at myna_arena_free. NULL p is ok.
 * Returns p, or NULL (and frees p) when the hook cannot be recorded. */
void *myna_arena_own(struct myna_arena *a, void *p);
/* fn(arg) runs at myna_arena_free, latest first. MYNA_ENOMEM on failure. */
int myna_arena_on_free(struct myna_arena *a, void (*fn)(void *), void *arg);
/* Runs the hooks and frees every block; the arena is back to INIT. Standard
 * blocks go to a per-thread cache of at most 64 (256 KiB) for reuse. */
void myna_arena_free(struct myna_arena *a);
/* Frees this thread's cache of blocks (at thread or process exit, so that
 * leak checkers see a clean heap). */
void myna_arena_cache_release(void);

#endif
