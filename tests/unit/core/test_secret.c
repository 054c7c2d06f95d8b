/* test_secret.c - secrets at rest of secret.h: the key file (created 0600
 * with 64 hex digits, reopened to the same key, refused when missing,
 * malformed, open to group/others or owned by another user, one key when
 * processes race to make it, its directory synced on every open, stale
 * temporary files of a crashed creation removed), sealing round trips (empty, UTF-8, 4 KB, the
 * size limit), binding to the aad and the key, and unseal on hostile input:
 * every byte changed, every truncation, garbage. Then masking and the base64url helpers. Each
 * test gets a fresh mkdtemp directory. core/secret.c is included, its
 * fsync counted (and failed on demand) on directories. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>

#include "../tmpdir.h"

static int dir_syncs;          /* fsyncs of a directory that succeeded */
static int dir_sync_failures;  /* the next ones to fail with EIO */

static int test_fsync(int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (dir_sync_failures > 0) {
            dir_sync_failures--;
            errno = EIO;
            return -1;
        }
        dir_syncs++;
    }
    return fsync(fd);
}

#define fsync test_fsync
#include "core/secret.c"
#undef fsync
#include "core/util.h"
#include "core/banned.h"

#define AAD "instance:shop:access_token"

struct fix {
    char dir[64];
    char key[128];   /* dir/secret.key, missing at the start */
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (test_tmpdir(f->dir, sizeof(f->dir), "test-secret") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->key, sizeof(f->key), "%s/secret.key", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    int rc = test_rmtree(f->dir);

    free(f);
    return rc == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *content, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static size_t read_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, out, cap - 1);
    assert_true(n >= 0);
    close(fd);
    out[n] = '\0';
    return (size_t)n;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static struct myna_secret_box *open_ok(const char *path, int create)
{
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_secret_box *b = myna_secret_box_open(path, create, &err);

    if (b == NULL)
        fail_msg("cannot open '%s': %s", path, err.msg);
    assert_int_equal(err.code, 0);   /* untouched on success */
    return b;
}

/* Expects box_open to fail with code, naming the file. */
static void open_fails(const char *path, int create, int code)
{
    struct myna_err err = MYNA_ERR_INIT;

    assert_null(myna_secret_box_open(path, create, &err));
    assert_int_equal(err.code, code);
    if (strstr(err.msg, path) == NULL)
        fail_msg("message does not name '%s': %s", path, err.msg);
}

static char *seal_ok(struct myna_secret_box *b, const char *plain, const char *aad)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *s = myna_secret_seal(b, plain, aad, &err);

    if (s == NULL) {
        fail_msg("seal failed: %s", err.msg);
        abort();  /* not reached: tells the optimizer that s is set below */
    }
    assert_true(myna_secret_is_sealed(s));
    return s;
}

/* Expects unseal to fail cleanly: NULL, a parse or tag error, a message. */
static void unseal_fails(struct myna_secret_box *b, const char *sealed, const char *aad)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *p = myna_secret_unseal(b, sealed, aad, &err);

    if (p != NULL)
        fail_msg("'%.80s' opened to '%.80s'", sealed, p);
    assert_true(err.code == MYNA_EPARSE || err.code == MYNA_EBADSIG);
    assert_true(err.msg[0] != '\0');
}

static void round_trip(struct myna_secret_box *b, const char *plain, const char *aad)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *s = seal_ok(b, plain, aad);
    char *p = myna_secret_unseal(b, s, aad, &err);

    if (p == NULL)
        fail_msg("unseal failed: %s", err.msg);
    assert_string_equal(p, plain);
    /* the sealed text does not show the plaintext */
    if (strlen(plain) >= 4)
        assert_null(strstr(s, plain));
    myna_secret_wipe_free(p);
    free(s);
}

/* ---- key file ---- */

static void test_secret_key_created_private_hex(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b;
    struct stat st;
    char hex[128];

    b = open_ok(f->key, 1);
    assert_int_equal(stat(f->key, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(read_file(f->key, hex, sizeof(hex)), 64);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 64);
    /* no temporary file left behind */
    assert_int_equal(count_entries(f->dir), 1);
    myna_secret_box_free(b);
}

static void test_secret_key_created_under_loose_umask(void **state)
{
    struct fix *f = *state;
    mode_t old = umask(0);
    struct myna_secret_box *b = open_ok(f->key, 1);
    struct stat st;

    umask(old);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    myna_secret_box_free(b);
}

static void test_secret_key_reopen_same_key(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_secret_box *b1, *b2, *b3;
    char before[128], after[128], *s, *p;

    b1 = open_ok(f->key, 1);
    read_file(f->key, before, sizeof(before));
    s = seal_ok(b1, "EAAG-token-value", AAD);
    myna_secret_box_free(b1);

    b2 = open_ok(f->key, 0);
    p = myna_secret_unseal(b2, s, AAD, &err);
    assert_non_null(p);
    assert_string_equal(p, "EAAG-token-value");
    myna_secret_wipe_free(p);

    /* create = 1 on an existing file reads it, never replaces it */
    b3 = open_ok(f->key, 1);
    read_file(f->key, after, sizeof(after));
    assert_string_equal(before, after);
    p = myna_secret_unseal(b3, s, AAD, &err);
    assert_non_null(p);
    assert_string_equal(p, "EAAG-token-value");
    myna_secret_wipe_free(p);

    myna_secret_box_free(b2);
    myna_secret_box_free(b3);
    free(s);
}

/* The directory sync after the link fails: the key is not handed out, and
 * the next open, which finds the file, syncs the directory before handing
 * it out (and refuses when that fails too). */
static void test_secret_key_dir_synced_on_every_open(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b;
    struct stat st;

    dir_syncs = 0;
    dir_sync_failures = 1;
    open_fails(f->key, 1, MYNA_EIO);
    assert_int_equal(dir_sync_failures, 0);
    assert_int_equal(stat(f->key, &st), 0);   /* linked, its name maybe not durable */
    assert_int_equal(count_entries(f->dir), 1);

    b = open_ok(f->key, 1);
    assert_int_equal(dir_syncs, 1);
    myna_secret_box_free(b);
    b = open_ok(f->key, 0);
    assert_int_equal(dir_syncs, 2);
    myna_secret_box_free(b);

    dir_sync_failures = 1;
    open_fails(f->key, 0, MYNA_EIO);
    dir_sync_failures = 0;
}

static void make_old(const char *path)
{
    struct timespec ts[2] = { { time(NULL) - 120, 0 }, { time(NULL) - 120, 0 } };

    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* A crash between a temporary key file's creation and its unlink leaves
 * it: an open that may create removes those over a minute old (a second
 * name of the key included, never the key's own), not younger ones (a
 * creation in progress) nor other files. */
static void test_secret_key_stale_tmps_removed(void **state)
{
    struct fix *f = *state;
    struct myna_err err = MYNA_ERR_INIT;
    struct myna_secret_box *b;
    char old_tmp[200], young_tmp[200], second[200], other[200], subdir[200], before[128],
        after[128], *s, *p;
    const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    struct stat st;

    b = open_ok(f->key, 1);
    s = seal_ok(b, "kept", AAD);
    myna_secret_box_free(b);
    read_file(f->key, before, sizeof(before));

    snprintf(old_tmp, sizeof(old_tmp), "%s.tmp-11-a1b2c3d4e5f6", f->key);
    snprintf(young_tmp, sizeof(young_tmp), "%s.tmp-12-a1b2c3d4e5f6", f->key);
    snprintf(second, sizeof(second), "%s.tmp-13-a1b2c3d4e5f6", f->key);
    snprintf(other, sizeof(other), "%s/other.key.tmp-14-a1b2c3d4e5f6", f->dir);
    snprintf(subdir, sizeof(subdir), "%s.tmp-15-a1b2c3d4e5f6", f->key);
    write_file(old_tmp, hex, 64, 0600);
    make_old(old_tmp);
    write_file(young_tmp, hex, 64, 0600);
    write_file(other, hex, 64, 0600);
    make_old(other);
    assert_int_equal(link(f->key, second), 0);
    make_old(f->key);   /* and so its second name */
    assert_int_equal(mkdir(subdir, 0700), 0);
    make_old(subdir);
    assert_int_equal(count_entries(f->dir), 6);

    /* an open that cannot create leaves the directory alone */
    b = open_ok(f->key, 0);
    myna_secret_box_free(b);
    assert_int_equal(count_entries(f->dir), 6);

    b = open_ok(f->key, 1);
    assert_int_equal(stat(old_tmp, &st), -1);
    assert_int_equal(stat(second, &st), -1);
    assert_int_equal(stat(young_tmp, &st), 0);
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(stat(subdir, &st), 0);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_nlink, 1);
    assert_int_equal(count_entries(f->dir), 4);
    read_file(f->key, after, sizeof(after));
    assert_string_equal(before, after);
    p = myna_secret_unseal(b, s, AAD, &err);
    assert_non_null(p);
    assert_string_equal(p, "kept");
    myna_secret_wipe_free(p);
    myna_secret_box_free(b);
    free(s);
}

static void test_secret_key_missing_without_create(void **state)
{
    struct fix *f = *state;
    char deep[200];

    open_fails(f->key, 0, MYNA_ENOTFOUND);
    assert_int_equal(access(f->key, F_OK), -1);   /* not created */
    assert_int_equal(count_entries(f->dir), 0);
    /* a missing directory cannot be created into */
    snprintf(deep, sizeof(deep), "%s/no/such/dir/secret.key", f->dir);
    open_fails(deep, 1, MYNA_EIO);
    assert_int_equal(count_entries(f->dir), 0);
}

static void test_secret_key_wrong_size(void **state)
{
    struct fix *f = *state;
    static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
                              "0011";

    write_file(f->key, "", 0, 0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
    open_fails(f->key, 1, MYNA_ECONFIG);   /* an existing bad file is not replaced */
    write_file(f->key, hex, 63, 0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
    write_file(f->key, hex, 65, 0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
    write_file(f->key, hex, 66, 0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
    write_file(f->key, hex, 32, 0600);   /* the raw-bytes length is not it either */
    open_fails(f->key, 0, MYNA_ECONFIG);
}

static void test_secret_key_trailing_newline_ok(void **state)
{
    struct fix *f = *state;
    char text[70];

    snprintf(text, sizeof(text), "%s\n",
             "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff");
    write_file(f->key, text, 65, 0600);
    myna_secret_box_free(open_ok(f->key, 0));
    /* but only one newline, at the end */
    write_file(f->key, "\n00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 65,
               0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
    snprintf(text, sizeof(text), "%s\n\n",
             "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    write_file(f->key, text, 66, 0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
}

static void test_secret_key_not_hex(void **state)
{
    struct fix *f = *state;

    write_file(f->key, "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 64,
               0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
    write_file(f->key, "00112233445566778899aabbccddeeff00112233445566778899aabbccddee f", 64,
               0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
    write_file(f->key, "00112233445566778899aabbccddeeff\0" "0112233445566778899aabbccddeeff",
               64, 0600);
    open_fails(f->key, 0, MYNA_ECONFIG);
}

static void test_secret_key_open_mode_refused(void **state)
{
    struct fix *f = *state;
    static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    static const mode_t bad[] = { 0644, 0640, 0604, 0620, 0602, 0660, 0610, 0601, 0666 };
    struct myna_err err = MYNA_ERR_INIT;

    write_file(f->key, hex, 64, 0644);
    assert_null(myna_secret_box_open(f->key, 1, &err));
    assert_int_equal(err.code, MYNA_ECONFIG);
    assert_non_null(strstr(err.msg, f->key));
    assert_non_null(strstr(err.msg, "0644"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(f->key, bad[i]), 0);
        open_fails(f->key, 0, MYNA_ECONFIG);
    }
    assert_int_equal(chmod(f->key, 0400), 0);   /* read-only for the owner is fine */
    myna_secret_box_free(open_ok(f->key, 0));
    assert_int_equal(chmod(f->key, 0600), 0);
    myna_secret_box_free(open_ok(f->key, 0));
}

/* A key its owner could read or rewrite at will: only this user's or
 * root's is taken. Changing a file's owner needs root, so only root runs
 * it. */
static void test_secret_key_other_owner_refused(void **state)
{
    struct fix *f = *state;
    static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    struct myna_err err = MYNA_ERR_INIT;

    if (geteuid() != 0)
        skip();
    write_file(f->key, hex, 64, 0600);
    assert_int_equal(chown(f->key, 65534, 65534), 0);
    assert_null(myna_secret_box_open(f->key, 1, &err));
    assert_int_equal(err.code, MYNA_ECONFIG);
    assert_non_null(strstr(err.msg, f->key));
    assert_non_null(strstr(err.msg, "65534"));
    assert_int_equal(chown(f->key, 0, 0), 0);
    myna_secret_box_free(open_ok(f->key, 0));
}

static void test_secret_key_not_a_regular_file(void **state)
{
    struct fix *f = *state;

    assert_int_equal(mkdir(f->key, 0700), 0);
    open_fails(f->key, 0, MYNA_ECONFIG);
    open_fails(f->key, 1, MYNA_ECONFIG);
    assert_int_equal(rmdir(f->key), 0);
    /* a FIFO must not block the open */
    assert_int_equal(mkfifo(f->key, 0600), 0);
    open_fails(f->key, 1, MYNA_ECONFIG);
}

static void test_secret_key_bad_path(void **state)
{
    struct myna_err err = MYNA_ERR_INIT;
    char *path = malloc(5000);

    (void)state;
    assert_null(myna_secret_box_open(NULL, 1, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_null(myna_secret_box_open("", 1, NULL));   /* err may be NULL */
    assert_non_null(path);
    memset(path, 'k', 4999);
    path[0] = '/';
    path[4999] = '\0';
    assert_null(myna_secret_box_open(path, 1, &err));
    free(path);
    myna_secret_box_free(NULL);
}

/* Several processes create the key at once: all must end with the same key
 * (each seals a value, the parent opens every one), and one file remains. */
static void test_secret_key_concurrent_create(void **state)
{
    enum { KIDS = 8 };
    struct fix *f = *state;
    struct myna_secret_box *b;
    pid_t pids[KIDS];
    int go[2];
    char out[KIDS][160];

    assert_int_equal(pipe(go), 0);
    for (int i = 0; i < KIDS; i++) {
        snprintf(out[i], sizeof(out[i]), "%s/out-%d", f->dir, i);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct myna_secret_box *kb;
            char c, *s;
            int ok = 0;
            close(go[1]);
            if (read(go[0], &c, 1) == 0) {   /* released all at once by EOF */
                kb = myna_secret_box_open(f->key, 1, NULL);
                s = kb ? myna_secret_seal(kb, "same key everywhere", AAD, NULL) : NULL;
                if (s != NULL) {
                    int fd = open(out[i], O_WRONLY | O_CREAT | O_EXCL, 0600);
                    ok = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
                    if (fd >= 0)
                        close(fd);
                }
                free(s);
                myna_secret_box_free(kb);
            }
            _exit(ok ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < KIDS; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    b = open_ok(f->key, 0);
    for (int i = 0; i < KIDS; i++) {
        struct myna_err err = MYNA_ERR_INIT;
        char sealed[200], *p;
        read_file(out[i], sealed, sizeof(sealed));
        p = myna_secret_unseal(b, sealed, AAD, &err);
        if (p == NULL)
            fail_msg("child %d sealed with another key: %s", i, err.msg);
        assert_string_equal(p, "same key everywhere");
        myna_secret_wipe_free(p);
    }
    assert_int_equal(count_entries(f->dir), 1 + KIDS);   /* the key and the outputs */
    myna_secret_box_free(b);
}

/* ---- seal / unseal ---- */

static void test_secret_round_trips(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    char *big = malloc(4097), *bytes = malloc(4 * 255 + 1);

    assert_non_null(big);
    assert_non_null(bytes);
    round_trip(b, "", AAD);
    round_trip(b, "x", AAD);
    round_trip(b, "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", "llm:default:api_key");
    round_trip(b, "пароль: секрет, 密码, 🔑🗝️", AAD);
    for (int i = 0; i < 4096; i++)
        big[i] = (char)(' ' + i % 95);
    big[4096] = '\0';
    round_trip(b, big, AAD);
    /* every non-NUL byte value, valid UTF-8 or not */
    for (int i = 0; i < 4 * 255; i++)
        bytes[i] = (char)(1 + i % 255);
    bytes[4 * 255] = '\0';
    round_trip(b, bytes, AAD);
    /* NULL aad is the empty aad */
    {
        struct myna_err err = MYNA_ERR_INIT;
        char *s = seal_ok(b, "no place", NULL), *p = myna_secret_unseal(b, s, "", &err);
        assert_non_null(p);
        assert_string_equal(p, "no place");
        myna_secret_wipe_free(p);
        free(s);
    }
    free(big);
    free(bytes);
    myna_secret_box_free(b);
}

static void test_secret_sealed_shape(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    static const size_t lens[] = { 0, 1, 2, 3, 4, 15, 16, 17, 100 };
    char plain[128];

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = lens[i], raw = 12 + n + 16;
        size_t want = 7 + raw / 3 * 4 + (raw % 3 ? raw % 3 + 1 : 0);
        char *s;
        memset(plain, 'p', n);
        plain[n] = '\0';
        s = seal_ok(b, plain, AAD);
        assert_memory_equal(s, "enc:v1:", 7);
        assert_int_equal(strlen(s), want);
        assert_int_equal(strspn(s + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789-_"),
                         want - 7);
        free(s);
    }
    myna_secret_box_free(b);
}

static void test_secret_nonce_is_fresh(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    char *s[50];

    /* the same value sealed twice never gives the same text */
    for (int i = 0; i < 50; i++) {
        s[i] = seal_ok(b, "same", AAD);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(s[i], s[j]);
    }
    for (int i = 0; i < 50; i++)
        free(s[i]);
    myna_secret_box_free(b);
}

static void test_secret_size_limit(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    struct myna_err err = MYNA_ERR_INIT;
    char *plain = malloc(MYNA_SECRET_MAX_PLAIN + 2);

    assert_non_null(plain);
    memset(plain, 'z', MYNA_SECRET_MAX_PLAIN);
    plain[MYNA_SECRET_MAX_PLAIN] = '\0';
    round_trip(b, plain, AAD);
    plain[MYNA_SECRET_MAX_PLAIN] = 'z';
    plain[MYNA_SECRET_MAX_PLAIN + 1] = '\0';
    assert_null(myna_secret_seal(b, plain, AAD, &err));
    assert_int_equal(err.code, MYNA_ETOOBIG);
    assert_null(strstr(err.msg, "zzzz"));   /* never the secret in a message */
    free(plain);
    myna_secret_box_free(b);
}

static void test_secret_null_args(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    struct myna_err err = MYNA_ERR_INIT;
    char *s = seal_ok(b, "v", AAD);

    assert_null(myna_secret_seal(b, NULL, AAD, &err));
    assert_int_equal(err.code, MYNA_EINVAL);
    assert_null(myna_secret_seal(NULL, "v", AAD, NULL));
    assert_null(myna_secret_unseal(b, NULL, AAD, NULL));
    assert_null(myna_secret_unseal(NULL, s, AAD, NULL));
    myna_secret_wipe_free(NULL);
    free(s);
    myna_secret_box_free(b);
}

static void test_secret_aad_binds_place(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    struct myna_err err = MYNA_ERR_INIT;
    char *s = seal_ok(b, "EAAG-secret", "instance:shop:access_token");
    char *p;

    unseal_fails(b, s, "instance:shop:app_secret");
    unseal_fails(b, s, "instance:shop2:access_token");
    unseal_fails(b, s, "instance:shop:access_token ");
    unseal_fails(b, s, "instance:shop:access_toke");
    unseal_fails(b, s, "");
    unseal_fails(b, s, NULL);
    assert_null(myna_secret_unseal(b, s, "instance:shop:app_secret", &err));
    assert_int_equal(err.code, MYNA_EBADSIG);
    assert_null(strstr(err.msg, "EAAG"));
    /* still opens in its own place */
    p = myna_secret_unseal(b, s, "instance:shop:access_token", NULL);
    assert_non_null(p);
    assert_string_equal(p, "EAAG-secret");
    myna_secret_wipe_free(p);
    free(s);
    /* an empty aad is a place too */
    s = seal_ok(b, "v", NULL);
    unseal_fails(b, s, "x");
    free(s);
    myna_secret_box_free(b);
}

static void test_secret_other_key_fails(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *a = open_ok(f->key, 1), *b;
    char other[160], *s;

    snprintf(other, sizeof(other), "%s/other.key", f->dir);
    b = open_ok(other, 1);
    s = seal_ok(a, "only for a", AAD);
    unseal_fails(b, s, AAD);
    {
        struct myna_err err = MYNA_ERR_INIT;
        assert_null(myna_secret_unseal(b, s, AAD, &err));
        assert_int_equal(err.code, MYNA_EBADSIG);
        /* the failure is in err only, not left in OpenSSL's error queue */
        assert_int_equal(ERR_peek_error(), 0);
    }
    free(s);
    myna_secret_box_free(a);
    myna_secret_box_free(b);
}

static void test_secret_every_byte_changed_fails(void **state)
{
    static const unsigned char flips[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff };
    static const char repl[] = "A_-0z";
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    char *s = seal_ok(b, "EAAGm0PX4ZCpsBAKZC", AAD), *t = strdup(s);
    size_t n = strlen(s);

    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            memcpy(t, s, n + 1);
            t[i] = (char)((unsigned char)t[i] ^ flips[k]);
            unseal_fails(b, t, AAD);
        }
        for (size_t k = 0; k < sizeof(repl) - 1; k++) {
            if (s[i] == repl[k])
                continue;
            memcpy(t, s, n + 1);
            t[i] = repl[k];
            unseal_fails(b, t, AAD);
        }
    }
    free(t);
    free(s);
    myna_secret_box_free(b);
}

static void test_secret_truncated_and_extended_fail(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    char *s = seal_ok(b, "a value long enough to matter", AAD);
    size_t n = strlen(s);
    char *t = malloc(n + 8);

    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        memcpy(t, s, i);
        t[i] = '\0';
        unseal_fails(b, t, AAD);
        /* and with the head cut off instead */
        unseal_fails(b, s + i + 1, AAD);
    }
    for (const char *tail = "AB-_0z"; *tail; tail++) {
        snprintf(t, n + 8, "%s%c", s, *tail);
        unseal_fails(b, t, AAD);
        snprintf(t, n + 8, "%s%c%c", s, *tail, *tail);
        unseal_fails(b, t, AAD);
    }
    snprintf(t, n + 8, "%s\n", s);
    unseal_fails(b, t, AAD);
    snprintf(t, n + 8, " %s", s);
    unseal_fails(b, t, AAD);
    free(t);
    free(s);
    myna_secret_box_free(b);
}

static void test_secret_garbage_fails(void **state)
{
    static const char *const junk[] = {
        "", "enc", "enc:", "enc:v1", "enc:v1:", "enc:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "ENC:V1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "plain-text-token",
        "enc:v1:A", "enc:v1:AA", "enc:v1:AAA", "enc:v1:AAAA",
        "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",     /* 27 bytes: one short */
        "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",    /* 28 bytes of zeros */
        "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 4n+1 characters */
        "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "enc:v1:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA/AAAAAAAAAA",
        "enc:v1: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "enc:v1:AAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAA",
        "enc:v1:\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec",
        "enc:v1:enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    struct myna_err err = MYNA_ERR_INIT;
    size_t big_n = 300 * 1024;
    char *big = malloc(big_n + 1), rnd[256];

    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        unseal_fails(b, junk[i], AAD);
    /* no prefix is a parse error that says so */
    assert_null(myna_secret_unseal(b, "sk-plain", AAD, &err));
    assert_int_equal(err.code, MYNA_EPARSE);
    assert_non_null(strstr(err.msg, "enc:v1:"));
    /* far longer than anything seal makes: refused before decoding */
    assert_non_null(big);
    memcpy(big, "enc:v1:", 7);
    memset(big + 7, 'A', big_n - 7);
    big[big_n] = '\0';
    unseal_fails(b, big, AAD);
    free(big);
    /* random strings, half with the prefix */
    srand(4242);
    for (int i = 0; i < 5000; i++) {
        size_t n = (size_t)(rand() % 200), o = 0;
        if (i % 2 == 0) {
            memcpy(rnd, "enc:v1:", 7);
            o = 7;
        }
        for (size_t k = 0; k < n; k++) {
            /* mostly base64url characters, so that the decoder gets past its
             * alphabet often */
            int c = rand() % 10 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                                      [rand() % 64]
                                : 1 + rand() % 255;
            rnd[o++] = (char)c;
        }
        rnd[o] = '\0';
        unseal_fails(b, rnd, AAD);
    }
    myna_secret_box_free(b);
}

static void test_secret_is_sealed(void **state)
{
    struct fix *f = *state;
    struct myna_secret_box *b = open_ok(f->key, 1);
    char *s = seal_ok(b, "", AAD);

    assert_int_equal(myna_secret_is_sealed(s), 1);
    assert_int_equal(myna_secret_is_sealed(NULL), 0);
    assert_int_equal(myna_secret_is_sealed(""), 0);
    assert_int_equal(myna_secret_is_sealed("EAAG1234"), 0);
    assert_int_equal(myna_secret_is_sealed("enc:v1:"), 0);
    assert_int_equal(myna_secret_is_sealed("enc:v1:AAAA"), 0);
    /* 38 characters carry the 28 bytes of a nonce and a tag: the shortest */
    {
        char t[64];
        snprintf(t, sizeof(t), "enc:v1:%.38s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_int_equal(myna_secret_is_sealed(t), 1);
        t[strlen(t) - 1] = '\0';
        assert_int_equal(myna_secret_is_sealed(t), 0);
        snprintf(t, sizeof(t), "enc:v1:%.37s=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_int_equal(myna_secret_is_sealed(t), 0);
        snprintf(t, sizeof(t), "enc:v1:%.41s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_int_equal(myna_secret_is_sealed(t), 0);   /* 4n+1 characters */
    }
    assert_int_equal(myna_secret_is_sealed("enc:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
    free(s);
    myna_secret_box_free(b);
}

/* ---- mask ---- */

static const char *mask(const char *s, char *out, size_t cap)
{
    const char *r = myna_secret_mask(s, out, cap);

    assert_ptr_equal(r, out);
    assert_non_null(memchr(out, '\0', cap));
    assert_int_not_equal(myna_utf8_count(out), (size_t)-1);   /* never a cut character */
    return r;
}

static void test_secret_mask(void **state)
{
    char out[MYNA_SECRET_MASK_MAX];

    (void)state;
    assert_string_equal(mask("abcdefgh", out, sizeof(out)), "••••efgh");
    assert_string_equal(mask("abcde", out, sizeof(out)), "••••bcde");
    assert_string_equal(mask("abcd", out, sizeof(out)), "••••");
    assert_string_equal(mask("ab", out, sizeof(out)), "••••");
    assert_string_equal(mask("a", out, sizeof(out)), "••••");
    assert_string_equal(mask("", out, sizeof(out)), "");
    assert_string_equal(mask(NULL, out, sizeof(out)), "");
    assert_string_equal(mask("sk-proj-0123456789wxyz", out, sizeof(out)), "••••wxyz");
    /* the last 4 characters, whole, not the last 4 bytes */
    assert_string_equal(mask("пароль-секрет", out, sizeof(out)), "••••крет");
    assert_string_equal(mask("ключ", out, sizeof(out)), "••••");
    assert_string_equal(mask("a🔑b\xf0\x9f\x97\x9d" "c", out, sizeof(out)),
                        "••••🔑b\xf0\x9f\x97\x9d" "c");
    assert_string_equal(mask("x😀😀😀😀", out, sizeof(out)), "••••😀😀😀😀");
    /* bytes that are not UTF-8 show as '?' */
    assert_string_equal(mask("abcdef\xff", out, sizeof(out)), "••••def?");
    assert_string_equal(mask("abcdef\xd0", out, sizeof(out)), "••••def?");
    assert_string_equal(mask("\xd0\xd0\xd0\xd0\xd0", out, sizeof(out)), "••••????");
}

static void test_secret_mask_small_cap(void **state)
{
    char out[64];

    (void)state;
    assert_string_equal(mask("abcdefgh", out, 13), "••••");
    assert_string_equal(mask("abcdefgh", out, 14), "••••e");
    assert_string_equal(mask("abcdefgh", out, 17), "••••efgh");
    /* a character that does not fit whole is left out */
    assert_string_equal(mask("пароль-секрет", out, 14), "••••");
    assert_string_equal(mask("пароль-секрет", out, 15), "••••к");
    assert_string_equal(mask("пароль-секрет", out, 16), "••••к");
    assert_string_equal(mask("abcdefgh", out, 4), "•");
    assert_string_equal(mask("abcdefgh", out, 3), "");
    assert_string_equal(mask("abcdefgh", out, 1), "");
    out[0] = 'x';
    myna_secret_mask("abcdefgh", out, 0);   /* nothing written */
    assert_int_equal(out[0], 'x');
    /* what the mask gives is known for one, a secret is not */
    assert_true(myna_secret_is_masked(mask("EAAGverysecret", out, 64)));
    assert_true(myna_secret_is_masked(mask("ab", out, 64)));
    assert_false(myna_secret_is_masked("EAAGverysecret"));
    assert_false(myna_secret_is_masked("\xe2\x80\xa2x"));  /* one dot */
    assert_false(myna_secret_is_masked(""));
    assert_false(myna_secret_is_masked(NULL));
}

/* ---- base64url ---- */

static void test_secret_b64url_vectors(void **state)
{
    static const char *const v[][2] = { { "", "" },         { "f", "Zg" },
                                        { "fo", "Zm8" },    { "foo", "Zm9v" },
                                        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
                                        { "foobar", "Zm9vYmFy" } };
    static const unsigned char odd[] = { 0xfb, 0xff, 0xbf };
    unsigned char bin[16];
    char text[32];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = strlen(v[i][0]);
        assert_int_equal(myna_secret__b64url_encode((const unsigned char *)v[i][0], n, text,
                                                    sizeof(text)),
                         strlen(v[i][1]));
        assert_string_equal(text, v[i][1]);
        assert_int_equal(myna_secret__b64url_decode(v[i][1], strlen(v[i][1]), bin, sizeof(bin)),
                         n);
        assert_memory_equal(bin, v[i][0], n);
    }
    /* the url-safe alphabet, not + and / */
    myna_secret__b64url_encode(odd, 3, text, sizeof(text));
    assert_string_equal(text, "-_-_");
    myna_secret__b64url_encode(odd, 2, text, sizeof(text));
    assert_string_equal(text, "-_8");
}

static void test_secret_b64url_strict(void **state)
{
    unsigned char bin[16];
    char text[8];

    (void)state;
    /* one spelling per byte string: unused bits must be zero */
    assert_int_equal(myna_secret__b64url_decode("Zg", 2, bin, sizeof(bin)), 1);
    assert_int_equal(myna_secret__b64url_decode("Zh", 2, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(myna_secret__b64url_decode("Zm8", 3, bin, sizeof(bin)), 2);
    assert_int_equal(myna_secret__b64url_decode("Zm9", 3, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(myna_secret__b64url_decode("Z", 1, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(myna_secret__b64url_decode("Zg==", 4, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(myna_secret__b64url_decode("Zm+v", 4, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(myna_secret__b64url_decode("Zm/v", 4, bin, sizeof(bin)), (size_t)-1);
    assert_int_equal(myna_secret__b64url_decode("Zm9v\n", 5, bin, sizeof(bin)), (size_t)-1);
    /* the output must fit */
    assert_int_equal(myna_secret__b64url_decode("Zm9vYmFy", 8, bin, 5), (size_t)-1);
    assert_int_equal(myna_secret__b64url_decode("Zm9vYmFy", 8, bin, 6), 6);
    assert_int_equal(myna_secret__b64url_encode((const unsigned char *)"foobar", 6, text, 8),
                     (size_t)-1);
    assert_string_equal(text, "");
    {
        char fits[9];
        assert_int_equal(myna_secret__b64url_encode((const unsigned char *)"foobar", 6, fits,
                                                    sizeof(fits)),
                         8);
        assert_string_equal(fits, "Zm9vYmFy");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secret_key_created_private_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_created_under_loose_umask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_reopen_same_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_dir_synced_on_every_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_stale_tmps_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_missing_without_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_wrong_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_trailing_newline_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_not_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_open_mode_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_other_owner_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_not_a_regular_file, setup, teardown),
        cmocka_unit_test(test_secret_key_bad_path),
        cmocka_unit_test_setup_teardown(test_secret_key_concurrent_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_sealed_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_nonce_is_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_null_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_aad_binds_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_other_key_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_every_byte_changed_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_truncated_and_extended_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_garbage_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_is_sealed, setup, teardown),
        cmocka_unit_test(test_secret_mask),
        cmocka_unit_test(test_secret_mask_small_cap),
        cmocka_unit_test(test_secret_b64url_vectors),
        cmocka_unit_test(test_secret_b64url_strict),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
