/* tmpdir.h - a scratch directory per test: made with mkdtemp under /tmp,
 * removed with everything in it. Header-only, for the unit tests. */
#ifndef MYNA_TEST_TMPDIR_H
#define MYNA_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* dir (cap bytes) becomes /tmp/myna-<tag>-XXXXXX, created. 0 or -1. */
static inline int test_tmpdir(char *dir, size_t cap, const char *tag)
{
    if ((size_t)snprintf(dir, cap, "/tmp/myna-%s-XXXXXX", tag) >= cap)
        return -1;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static inline int test_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Removes dir and everything below it. 0 or -1. */
static inline int test_rmtree(const char *dir)
{
    return nftw(dir, test_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
