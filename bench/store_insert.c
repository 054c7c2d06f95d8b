/* store_insert.c - how fast the SQLite store takes inbound messages, and
 * what its layout buys.
 *
 * Inserts N synthetic 1.5 KB inbound messages with random wamids, in
 * transactions of 64 (a group commit), through the store API, once with
 * synchronous=FULL and once with NORMAL. The baseline writes the same rows
 * with plain SQLite into the same columns, but keyed by the wamid (TEXT
 * PRIMARY KEY, WITHOUT ROWID): the layout that perf-anchors.md says costs
 * 2-3x. Compare ratios from one run, not absolute numbers across machines.
 *
 * usage: store_insert [DIR [N]]   DIR defaults to a new /tmp/myna-bench-XXXXXX
 * (use a directory on the disk you care about: tmpfs hides fsync). */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "core/banned.h"

#define BATCH 64
#define WAMID_LEN 48
#define RAW_LEN 1500

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)  /* xorshift64*: fast and the same every run */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717u;
}

/* Random base64-looking ids, like real wamids ("wamid.HBgL..."). */
static char *make_wamids(long n)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *ids = malloc((size_t)n * (WAMID_LEN + 1));

    if (ids == NULL)
        return NULL;
    for (long i = 0; i < n; i++) {
        char *id = ids + i * (WAMID_LEN + 1);
        memcpy(id, "wamid.", 6);
        for (int j = 6; j < WAMID_LEN; j++)
            id[j] = abc[rng() % 64];
        id[WAMID_LEN] = '\0';
    }
    return ids;
}

/* Message i: a text message whose raw JSON is padded to RAW_LEN bytes. */
struct row {
    char contact[16];
    char text[256];
    char raw[RAW_LEN + 1];
    struct myna_inbound m;
};

static void make_row(struct row *r, const char *wamid, long i)
{
    int len;

    snprintf(r->contact, sizeof(r->contact), "4915%08ld", i % 5000);
    snprintf(r->text, sizeof(r->text), "message %ld: the quick brown fox jumps over the "
             "lazy dog, then asks the bot about opening hours and prices", i);
    len = snprintf(r->raw, sizeof(r->raw), "{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":"
                   "\"%ld\",\"type\":\"text\",\"text\":{\"body\":\"%s\"},\"pad\":\"",
                   r->contact, wamid, 1700000000 + i, r->text);
    memset(r->raw + len, 'x', RAW_LEN - 2 - (size_t)len);
    memcpy(r->raw + RAW_LEN - 2, "\"}", 3);
    memset(&r->m, 0, sizeof(r->m));
    r->m.phone_number_id = "106540352242922";
    r->m.wamid = wamid;
    r->m.contact = r->contact;
    r->m.profile_name = "Bench User";
    r->m.ts = 1700000000 + i;
    r->m.type = MYNA_MSG_TEXT;
    r->m.text = r->text;
    r->m.raw = r->raw;
    r->m.raw_len = RAW_LEN;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_db(const char *path)
{
    char p[600];  /* path is at most 512 */

    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* rows/s through the store API (seq rowid + unique wamid index); < 0 on error. */
static double run_store(const char *path, enum myna_store_sync sync, const char *ids, long n)
{
    struct myna_store_opts o = { .sync = sync };
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_store *st;
    struct row r;
    double t0;
    int rc = MYNA_OK;

    remove_db(path);
    if ((st = myna_store_open_sqlite(path, &o, &err)) == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    t0 = now_s();
    for (long i = 0; rc == MYNA_OK && i < n; i += BATCH) {
        rc = myna_store_begin(st, &err);
        for (long j = i; rc == MYNA_OK && j < i + BATCH && j < n; j++) {
            make_row(&r, ids + j * (WAMID_LEN + 1), j);
            rc = myna_store_put_inbound(st, &r.m, 1700000000000 + j, &err);
            rc = rc == MYNA_STORE_NEW ? MYNA_OK : rc < 0 ? rc : MYNA_EEXISTS;
        }
        if (rc == MYNA_OK)
            rc = myna_store_commit(st, &err);
    }
    t0 = now_s() - t0;
    if (rc != MYNA_OK)
        fprintf(stderr, "store: %s\n", rc == MYNA_EEXISTS ? "unexpected dup" : err.msg);
    myna_store_free(st);
    return rc == MYNA_OK ? (double)n / t0 : -1;
}

/* The baseline: same columns, wamid as the key of a WITHOUT ROWID table. */
static const char baseline_schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE inbox(wamid TEXT PRIMARY KEY, contact TEXT NOT NULL,"
    " contact_user_id TEXT, profile_name TEXT, ts INTEGER NOT NULL, type TEXT NOT NULL,"
    " text TEXT, reply_id TEXT, media_id TEXT, mime_type TEXT, context_id TEXT,"
    " referral_id TEXT, error_code INTEGER NOT NULL DEFAULT 0, latitude REAL,"
    " longitude REAL, phone_number_id TEXT, raw TEXT NOT NULL,"
    " received_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX inbox_contact ON inbox(contact);";

static const char baseline_insert[] =
    "INSERT INTO inbox(wamid, contact, contact_user_id, profile_name, ts, type, text,"
    " reply_id, media_id, mime_type, context_id, referral_id, error_code, latitude,"
    " longitude, phone_number_id, raw, received_ms)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
    " ON CONFLICT(wamid) DO NOTHING";

static int baseline_put(sqlite3_stmt *stmt, const struct row *r, int64_t received_ms)
{
    const struct myna_inbound *m = &r->m;
    int rc;

    sqlite3_bind_text(stmt, 1, m->wamid, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, m->contact, -1, SQLITE_STATIC);
    sqlite3_bind_null(stmt, 3);
    sqlite3_bind_text(stmt, 4, m->profile_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, m->ts);
    sqlite3_bind_text(stmt, 6, myna_msg_type_name(m->type), -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 7, m->text, -1, SQLITE_STATIC);
    for (int i = 8; i <= 12; i++)
        sqlite3_bind_null(stmt, i);
    sqlite3_bind_int(stmt, 13, 0);
    sqlite3_bind_null(stmt, 14);
    sqlite3_bind_null(stmt, 15);
    sqlite3_bind_text(stmt, 16, m->phone_number_id, -1, SQLITE_STATIC);
    sqlite3_bind_text64(stmt, 17, m->raw, m->raw_len, SQLITE_STATIC, SQLITE_UTF8);
    sqlite3_bind_int64(stmt, 18, received_ms);
    rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* rows/s for the baseline layout; < 0 on error. */
static double run_baseline(const char *path, enum myna_store_sync sync, const char *ids, long n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    struct row r;
    double t0 = 0;
    int rc;

    remove_db(path);
    rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, baseline_schema, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sync == MYNA_SYNC_FULL ? "PRAGMA synchronous=FULL"
                                                     : "PRAGMA synchronous=NORMAL",
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, baseline_insert, -1, &stmt, NULL);
    t0 = now_s();
    for (long i = 0; rc == SQLITE_OK && i < n; i += BATCH) {
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        for (long j = i; rc == SQLITE_OK && j < i + BATCH && j < n; j++) {
            make_row(&r, ids + j * (WAMID_LEN + 1), j);
            rc = baseline_put(stmt, &r, 1700000000000 + j);
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    t0 = now_s() - t0;
    if (rc != SQLITE_OK)
        fprintf(stderr, "baseline '%s': %s\n", path, sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rc == SQLITE_OK ? (double)n / t0 : -1;
}

int main(int argc, char **argv)
{
    static const struct { enum myna_store_sync sync; const char *name; } modes[] = {
        { MYNA_SYNC_FULL, "FULL" }, { MYNA_SYNC_NORMAL, "NORMAL" },
    };
    char tmpl[] = "/tmp/myna-bench-XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
    char path[512], base_path[512];
    char *ids;
    int fail = 0;

    if (dir == NULL || n <= 0) {
        fprintf(stderr, "usage: store_insert [DIR [N]]\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/bench-store.db", dir);
    snprintf(base_path, sizeof(base_path), "%s/bench-baseline.db", dir);
    if ((ids = make_wamids(n)) == NULL)
        return 1;
    printf("%ld rows of %d B raw, random wamids, %d rows per transaction, sqlite %s, in %s\n",
           n, RAW_LEN, BATCH, sqlite3_libversion(), dir);
    printf("%-8s %14s %22s %8s\n", "sync", "store rows/s", "wamid-PK rows/s", "ratio");
    for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
        double store = run_store(path, modes[k].sync, ids, n);
        double base = run_baseline(base_path, modes[k].sync, ids, n);

        if (store < 0 || base < 0) {
            fail = 1;
            continue;
        }
        printf("%-8s %14.0f %22.0f %7.2fx\n", modes[k].name, store, base, store / base);
    }
    remove_db(path);
    remove_db(base_path);
    if (argc <= 1)
        rmdir(dir);
    free(ids);
    return fail;
}
