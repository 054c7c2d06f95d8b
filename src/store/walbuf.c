/* walbuf.c - the "myna-walbuf" SQLite VFS: see walbuf.h. */
#include "store/walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>

#include "core/banned.h"

/* The default VFS writes at most 128 KiB - 1 bytes in one call (it masks
 * the length to 17 bits and reports a full disk for the rest). */
#define RUN_MAX (127 * 1024)

/* A WAL file: the default VFS's file lives right after this header, in the
 * same allocation (szOsFile covers both). */
struct wb_file {
    sqlite3_file base;
    char *run;               /* RUN_MAX bytes once the first write comes */
    size_t len;              /* bytes in run */
    sqlite3_int64 off;       /* file offset of run[0] */
};
_Static_assert(sizeof(struct wb_file) % 8 == 0, "the default VFS's file must stay aligned");

static sqlite3_vfs *dflt;
static sqlite3_vfs wb_vfs;
static const char *wb_name;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t n_gathered, n_written;

static sqlite3_file *real(struct wb_file *f)
{
    return (sqlite3_file *)(f + 1);
}

static int real_write(struct wb_file *f, const void *p, int amt, sqlite3_int64 off)
{
    atomic_fetch_add_explicit(&n_written, 1, memory_order_relaxed);
    return real(f)->pMethods->xWrite(real(f), p, amt, off);
}

/* Writes the run out. The run is gone even when the write fails: the call
 * that flushed reports the failure, and SQLite rolls its transaction back. */
static int flush(struct wb_file *f)
{
    size_t len = f->len;

    if (len == 0)
        return SQLITE_OK;
    f->len = 0;
    return real_write(f, f->run, (int)len, f->off);
}

/* The default VFS's file behind file, with the run written out first;
 * *rc is SQLITE_OK or the write's error. */
static sqlite3_file *flushed(sqlite3_file *file, int *rc)
{
    struct wb_file *f = (struct wb_file *)file;

    *rc = flush(f);
    return real(f);
}

static int wb_write(sqlite3_file *file, const void *p, int amt, sqlite3_int64 off)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc;

    if (f->len > 0 && (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > RUN_MAX) &&
        (rc = flush(f)) != SQLITE_OK)
        return rc;
    if (amt <= 0 || (size_t)amt > RUN_MAX)
        return real_write(f, p, amt, off);
    if (f->run == NULL && (f->run = sqlite3_malloc(RUN_MAX)) == NULL)
        return real_write(f, p, amt, off);  /* no memory: write through */
    if (f->len == 0)
        f->off = off;
    memcpy(f->run + f->len, p, (size_t)amt);
    f->len += (size_t)amt;
    atomic_fetch_add_explicit(&n_gathered, 1, memory_order_relaxed);
    return SQLITE_OK;
}

static int wb_close(sqlite3_file *file)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc = flush(f), rc2 = real(f)->pMethods->xClose(real(f));

    sqlite3_free(f->run);
    f->run = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *file, void *p, int amt, sqlite3_int64 off)
{
    int rc;
    sqlite3_file *r = flushed(file, &rc);

    return rc != SQLITE_OK ? rc : r->pMethods->xRead(r, p, amt, off);
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    int rc;
    sqlite3_file *r = flushed(file, &rc);

    return rc != SQLITE_OK ? rc : r->pMethods->xTruncate(r, size);
}

static int wb_sync(sqlite3_file *file, int flags)
{
    int rc;
    sqlite3_file *r = flushed(file, &rc);

    return rc != SQLITE_OK ? rc : r->pMethods->xSync(r, flags);
}

static int wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    int rc;
    sqlite3_file *r = flushed(file, &rc);

    return rc != SQLITE_OK ? rc : r->pMethods->xFileSize(r, size);
}

static int wb_lock(sqlite3_file *file, int level)
{
    int rc;
    sqlite3_file *r = flushed(file, &rc);

    return rc != SQLITE_OK ? rc : r->pMethods->xLock(r, level);
}

static int wb_unlock(sqlite3_file *file, int level)
{
    int rc;
    sqlite3_file *r = flushed(file, &rc);

    return rc != SQLITE_OK ? rc : r->pMethods->xUnlock(r, level);
}

static int wb_check_reserved(sqlite3_file *file, int *out)
{
    struct wb_file *f = (struct wb_file *)file;

    return real(f)->pMethods->xCheckReservedLock(real(f), out);
}

static int wb_file_control(sqlite3_file *file, int op, void *arg)
{
    int rc;
    sqlite3_file *r = flushed(file, &rc);

    return rc != SQLITE_OK ? rc : r->pMethods->xFileControl(r, op, arg);
}

static int wb_sector_size(sqlite3_file *file)
{
    struct wb_file *f = (struct wb_file *)file;

    return real(f)->pMethods->xSectorSize(real(f));
}

static int wb_device_characteristics(sqlite3_file *file)
{
    struct wb_file *f = (struct wb_file *)file;

    return real(f)->pMethods->xDeviceCharacteristics(real(f));
}

/* Version 1: SQLite maps shared memory and pages only through the database
 * file, never through its log. */
static const sqlite3_io_methods wb_methods = {
    .iVersion = 1,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
};

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                   int *out_flags)
{
    struct wb_file *f = (struct wb_file *)file;
    int rc;

    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return dflt->xOpen(dflt, name, file, flags, out_flags);  /* the default's own file */
    memset(f, 0, sizeof(*f));
    rc = dflt->xOpen(dflt, name, real(f), flags, out_flags);
    /* SQLite calls xClose when pMethods is set, even after a failed open */
    f->base.pMethods = real(f)->pMethods != NULL ? &wb_methods : NULL;
    return rc;
}

static void wb_register(void)
{
    int size = (int)sizeof(struct wb_file);

    if ((dflt = sqlite3_vfs_find(NULL)) == NULL)
        return;
    wb_vfs = *dflt;
    wb_vfs.pNext = NULL;
    wb_vfs.zName = "myna-walbuf";
    wb_vfs.szOsFile = dflt->szOsFile + size;
    wb_vfs.xOpen = wb_open;
    if (sqlite3_vfs_register(&wb_vfs, 0) == SQLITE_OK)
        wb_name = wb_vfs.zName;
}

const char *myna_walbuf_vfs(void)
{
    pthread_once(&once, wb_register);
    return wb_name;
}

void myna_walbuf_discard(sqlite3 *db)
{
    sqlite3_file *file = NULL;

    /* JOURNAL_POINTER hands out the log's file without calling it */
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) == SQLITE_OK &&
        file != NULL && file->pMethods == &wb_methods)
        ((struct wb_file *)file)->len = 0;
}

void myna_walbuf_counts(struct myna_walbuf_counts *out)
{
    out->gathered = atomic_load_explicit(&n_gathered, memory_order_relaxed);
    out->written = atomic_load_explicit(&n_written, memory_order_relaxed);
}
