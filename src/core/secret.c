/* secret.c - AES-256-GCM sealing of stored secrets with a key from a file.
 *
 * The key file is created by writing a private temporary file in the same
 * directory and link()ing it to its name: link fails with EEXIST instead of
 * replacing, so the key appears complete or not at all, and a process that
 * loses a creation race reads the winner's key instead of a half-written
 * file. Every open fsyncs the key's directory before the key is handed
 * out, so a name whose sync failed at creation (or a winner's not yet
 * synced) is made durable before anything is sealed with it; an open that
 * may create also removes temporary files a crash left (older than
 * STALE_TMP_S). Everything decoded from a sealed string is bounded before any
 * allocation, and the GCM tag is checked before a plaintext is returned. */
#include "core/secret.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "core/banned.h"

#define KEY_LEN MYNA_KEY_FILE_LEN
#define KEY_HEX (2 * KEY_LEN)
#define NONCE_LEN 12
#define TAG_LEN 16
#define PREFIX_LEN (sizeof(MYNA_SECRET_PREFIX) - 1)
#define AAD_MAX 1024
#define STALE_TMP_S 60   /* a creation takes milliseconds: older temporaries are a crash's */

struct myna_secret_box {
    unsigned char key[KEY_LEN];
    EVP_CIPHER *cipher;   /* AES-256-GCM, fetched once per box */
};

/* ---- base64url ---------------------------------------------------------------- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Characters that encode n bytes without padding. */
static size_t b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t myna_secret__b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t need = b64url_len(n), o = 0, i = 0;

    if (cap == 0 || n > SIZE_MAX / 2 || need >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return (size_t)-1;
    }
    for (; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

size_t myna_secret__b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    size_t o = 0, i = 0, tail = len % 4;
    unsigned long v = 0;

    if (tail == 1 || len / 4 * 3 + (tail ? tail - 1 : 0) > cap)
        return (size_t)-1;
    for (; i < len; i++) {
        int d = b64url_value((unsigned char)in[i]);
        if (d < 0)
            return (size_t)-1;
        v = v << 6 | (unsigned long)d;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(v >> 16);
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
            v = 0;
        }
    }
    /* the bits past the last whole byte must be zero: one spelling per
     * byte string, so a changed character can never decode to the same
     * bytes */
    if (tail == 2) {
        if (v & 0xf)
            return (size_t)-1;
        out[o++] = (unsigned char)(v >> 4);
    } else if (tail == 3) {
        if (v & 0x3)
            return (size_t)-1;
        out[o++] = (unsigned char)(v >> 10);
        out[o++] = (unsigned char)(v >> 2);
    }
    return o;
}

/* ---- key file ----------------------------------------------------------------- */

/* Reads at most cap bytes, riding out short reads and EINTR; -1 on error. */
static ssize_t read_all(int fd, char *p, size_t cap)
{
    size_t got = 0;

    while (got < cap) {
        ssize_t n = read(fd, p + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The directory holding path into dir (cap bytes); -1 when too long. */
static int parent_dir(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        snprintf(dir, cap, ".");
        return 0;
    }
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= cap)
        return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

/* fsync of the directory holding path, so that a new name survives a crash. */
static int sync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    int fd, rc;

    if (parent_dir(path, dir, sizeof(dir)) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Removes path's temporary files ("<name>.tmp-<pid>-<random>", create_key)
 * that are older than STALE_TMP_S: a crash between their creation and
 * their unlink left them. Each is a key never handed out (its link failed
 * or never happened) or a second name of the key itself: unlinking that
 * name leaves the key's own. Younger ones may be another process's
 * creation in progress. Best effort: what cannot be removed stays. */
static void remove_stale_tmps(const char *path)
{
    char dir[PATH_MAX], prefix[NAME_MAX + 8];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    struct dirent *de;
    struct stat st;
    size_t plen;
    time_t now = time(NULL);
    DIR *d;

    if (parent_dir(path, dir, sizeof(dir)) != 0 ||
        (size_t)snprintf(prefix, sizeof(prefix), "%s.tmp-", base) >= sizeof(prefix))
        return;
    plen = strlen(prefix);
    if ((d = opendir(dir)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) != 0 || de->d_name[plen] == '\0')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || now - st.st_mtime < STALE_TMP_S)
            continue;
        unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* Writes a new key to path unless a file is there. MYNA_OK when ours was
 * linked in, MYNA_EEXISTS when another file got there first. */
static int create_key(const char *path, struct myna_err *err)
{
    unsigned char raw[KEY_LEN], tag[6];
    char hex[KEY_HEX + 1], tmp[PATH_MAX];
    int fd, rc = MYNA_OK, e;

    if (RAND_bytes(raw, sizeof(raw)) != 1 || RAND_bytes(tag, sizeof(tag)) != 1)
        return myna_err_set(err, MYNA_EIO, "cannot create key file '%s': no randomness", path);
    for (size_t i = 0; i < KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof(raw));
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld-%02x%02x%02x%02x%02x%02x", path,
                         (long)getpid(), tag[0], tag[1], tag[2], tag[3], tag[4],
                         tag[5]) >= sizeof(tmp)) {
        OPENSSL_cleanse(hex, sizeof(hex));
        return myna_err_set(err, MYNA_EINVAL, "key file path '%.200s...' is too long", path);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        e = errno;
        OPENSSL_cleanse(hex, sizeof(hex));
        return myna_err_set(err, MYNA_EIO, "cannot create key file '%s': %s", path, strerror(e));
    }
    if (write_all(fd, hex, KEY_HEX) != 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
        unlink(tmp);
        OPENSSL_cleanse(hex, sizeof(hex));
        return myna_err_set(err, MYNA_EIO, "cannot write key file '%s': %s", path, strerror(e));
    }
    OPENSSL_cleanse(hex, sizeof(hex));
    if (close(fd) != 0) {
        e = errno;
        unlink(tmp);
        return myna_err_set(err, MYNA_EIO, "cannot write key file '%s': %s", path, strerror(e));
    }
    /* the new name is synced by myna_secret_box_open, as every key's is */
    if (link(tmp, path) != 0) {
        e = errno;
        rc = e == EEXIST ? MYNA_EEXISTS
                         : myna_err_set(err, MYNA_EIO, "cannot create key file '%s': %s", path,
                                        strerror(e));
    }
    unlink(tmp);
    return rc;
}

/* Reads and checks the key in the open file fd. */
static int load_key(int fd, const char *path, unsigned char key[KEY_LEN], struct myna_err *err)
{
    struct stat st;
    char hex[KEY_HEX + 2];
    ssize_t n;
    int rc = MYNA_OK, e;

    if (fstat(fd, &st) != 0) {
        e = errno;
        return myna_err_set(err, MYNA_EIO, "cannot read key file '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        return myna_err_set(err, MYNA_ECONFIG, "key file '%s' is not a regular file", path);
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return myna_err_set(err, MYNA_ECONFIG,
                            "key file '%s' has mode %04o: group and others must have no access "
                            "(chmod 600 it)",
                            path, (unsigned)(st.st_mode & 07777));
    /* its owner can always read it (and chmod it open): a key owned by
     * another user, e.g. planted in a directory others may write, is that
     * user's key too. Root's own is fine: root could read ours anyway. */
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return myna_err_set(err, MYNA_ECONFIG,
                            "key file '%s' is owned by uid %u, not by this user (uid %u) or root",
                            path, (unsigned)st.st_uid, (unsigned)geteuid());
    n = read_all(fd, hex, sizeof(hex));
    if (n < 0) {
        e = errno;
        return myna_err_set(err, MYNA_EIO, "cannot read key file '%s': %s", path, strerror(e));
    }
    if (n == KEY_HEX + 1 && hex[KEY_HEX] == '\n')
        n = KEY_HEX;
    if (n != KEY_HEX) {
        rc = myna_err_set(err, MYNA_ECONFIG,
                          "key file '%s' must hold exactly %d hex digits (it has %s%zd bytes)",
                          path, KEY_HEX, n == (ssize_t)sizeof(hex) ? "at least " : "",
                          n);
    } else {
        for (size_t i = 0; i < KEY_LEN; i++) {
            int hi = myna_hex_value((unsigned char)hex[2 * i]);
            int lo = myna_hex_value((unsigned char)hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                rc = myna_err_set(err, MYNA_ECONFIG,
                                  "key file '%s' must hold exactly %d hex digits", path, KEY_HEX);
                break;
            }
            key[i] = (unsigned char)(hi << 4 | lo);
        }
    }
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

int myna_key_file_load(const char *path, int create, unsigned char key[MYNA_KEY_FILE_LEN],
                       struct myna_err *err)
{
    int fd, rc, e;

    if (path == NULL || path[0] == '\0')
        return myna_err_set(err, MYNA_EINVAL, "no key file path given");
    /* O_NONBLOCK: a FIFO in the key's place must not hang us; it is then
     * refused as not a regular file */
    if (create)
        remove_stale_tmps(path);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && create) {
        rc = create_key(path, err);
        if (rc != MYNA_OK && rc != MYNA_EEXISTS)
            return rc;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    }
    if (fd < 0) {
        e = errno;
        if (e == ENOENT)
            return myna_err_set(err, MYNA_ENOTFOUND, "key file '%s' does not exist", path);
        return myna_err_set(err, MYNA_EIO, "cannot open key file '%s': %s", path, strerror(e));
    }
    rc = load_key(fd, path, key, err);
    close(fd);
    /* every time, not only at creation: a name whose sync failed then (or
     * that a racing creator has not synced yet) could be lost in a crash
     * while values sealed with its key are not. Once per start is cheap. */
    if (rc == MYNA_OK && sync_parent_dir(path) != 0) {
        e = errno;
        rc = myna_err_set(err, MYNA_EIO, "cannot sync the directory of key file '%s': %s", path,
                          strerror(e));
    }
    if (rc != MYNA_OK)
        OPENSSL_cleanse(key, MYNA_KEY_FILE_LEN);
    return rc;
}

struct myna_secret_box *myna_secret_box_open(const char *path, int create, struct myna_err *err)
{
    struct myna_secret_box *b = calloc(1, sizeof(*b));

    if (b == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory opening key file '%s'",
                     path ? path : "");
        return NULL;
    }
    if (myna_key_file_load(path, create, b->key, err) != MYNA_OK) {
        myna_secret_box_free(b);
        return NULL;
    }
    b->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (b->cipher == NULL) {
        ERR_clear_error();
        myna_err_set(err, MYNA_ECONFIG, "OpenSSL has no AES-256-GCM");
        myna_secret_box_free(b);
        return NULL;
    }
    return b;
}

void myna_secret_box_free(struct myna_secret_box *b)
{
    if (b == NULL)
        return;
    OPENSSL_cleanse(b->key, sizeof(b->key));
    EVP_CIPHER_free(b->cipher);
    free(b);
}

/* ---- seal / unseal ------------------------------------------------------------ */

char *myna_secret_seal(struct myna_secret_box *b, const char *plain, const char *aad,
                       struct myna_err *err)
{
    OSSL_PARAM params[2];
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    char *out = NULL;
    size_t n, aad_len, total, cap = 0;
    int len = 0, ok;

    if (b == NULL || plain == NULL) {
        myna_err_set(err, MYNA_EINVAL, "nothing to seal");
        return NULL;
    }
    if (aad == NULL)
        aad = "";
    n = strlen(plain);
    aad_len = strlen(aad);
    if (n > MYNA_SECRET_MAX_PLAIN) {
        myna_err_set(err, MYNA_ETOOBIG, "secret for '%.100s' is %zu bytes, more than %d", aad, n,
                     MYNA_SECRET_MAX_PLAIN);
        return NULL;
    }
    if (aad_len > AAD_MAX) {
        myna_err_set(err, MYNA_EINVAL, "secret place '%.100s...' is longer than %d bytes", aad,
                     AAD_MAX);
        return NULL;
    }
    total = NONCE_LEN + n + TAG_LEN;
    cap = PREFIX_LEN + b64url_len(total) + 1;
    raw = malloc(total);
    out = malloc(cap);
    ctx = EVP_CIPHER_CTX_new();
    if (raw == NULL || out == NULL || ctx == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory sealing a secret for '%.100s'", aad);
        goto fail;
    }
    /* a 96-bit random nonce per value: with one key, collisions stay
     * negligible for far more values than a control database holds */
    if (RAND_bytes(raw, NONCE_LEN) != 1) {
        myna_err_set(err, MYNA_EIO, "no randomness to seal a secret for '%.100s'", aad);
        goto fail;
    }
    ok = EVP_EncryptInit_ex2(ctx, b->cipher, b->key, raw, NULL) == 1 &&
         (aad_len == 0 ||
          EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)aad_len) == 1) &&
         (n == 0 || (EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &len, (const unsigned char *)plain,
                                       (int)n) == 1 &&
                     (size_t)len == n));
    if (ok)
        ok = EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + n, &len) == 1 && len == 0;
    if (ok) {
        params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                                      raw + NONCE_LEN + n, TAG_LEN);
        params[1] = OSSL_PARAM_construct_end();
        ok = EVP_CIPHER_CTX_get_params(ctx, params) == 1;
    }
    if (!ok) {
        myna_err_set(err, MYNA_EIO, "AES-256-GCM failed sealing a secret for '%.100s'", aad);
        goto fail;
    }
    memcpy(out, MYNA_SECRET_PREFIX, PREFIX_LEN);
    myna_secret__b64url_encode(raw, total, out + PREFIX_LEN, cap - PREFIX_LEN);
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    return out;

fail:
    ERR_clear_error();   /* our err says it; leave no stale entry for others */
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    free(out);
    return NULL;
}

char *myna_secret_unseal(struct myna_secret_box *b, const char *sealed, const char *aad,
                         struct myna_err *err)
{
    const size_t max_text = b64url_len(NONCE_LEN + MYNA_SECRET_MAX_PLAIN + TAG_LEN);
    OSSL_PARAM params[2];
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    char *plain = NULL;
    const char *text;
    size_t text_len, raw_len, n = 0, aad_len;
    int len = 0, ok;

    if (b == NULL || sealed == NULL) {
        myna_err_set(err, MYNA_EINVAL, "nothing to unseal");
        return NULL;
    }
    if (aad == NULL)
        aad = "";
    aad_len = strlen(aad);
    if (aad_len > AAD_MAX) {
        myna_err_set(err, MYNA_EINVAL, "secret place '%.100s...' is longer than %d bytes", aad,
                     AAD_MAX);
        return NULL;
    }
    if (strncmp(sealed, MYNA_SECRET_PREFIX, PREFIX_LEN) != 0) {
        myna_err_set(err, MYNA_EPARSE, "secret for '%.100s' is not sealed (no '%s' prefix)", aad,
                     MYNA_SECRET_PREFIX);
        return NULL;
    }
    text = sealed + PREFIX_LEN;
    text_len = strnlen(text, max_text + 1);
    if (text_len > max_text) {
        myna_err_set(err, MYNA_EPARSE, "sealed secret for '%.100s' is too long", aad);
        return NULL;
    }
    raw = malloc(text_len / 4 * 3 + 3);
    if (raw == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory unsealing a secret for '%.100s'", aad);
        return NULL;
    }
    raw_len = myna_secret__b64url_decode(text, text_len, raw, text_len / 4 * 3 + 3);
    if (raw_len == (size_t)-1) {
        myna_err_set(err, MYNA_EPARSE, "sealed secret for '%.100s' is not valid base64url", aad);
        goto fail;
    }
    if (raw_len < NONCE_LEN + TAG_LEN) {
        myna_err_set(err, MYNA_EPARSE, "sealed secret for '%.100s' is too short", aad);
        goto fail;
    }
    n = raw_len - NONCE_LEN - TAG_LEN;
    plain = malloc(n + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (plain == NULL || ctx == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory unsealing a secret for '%.100s'", aad);
        goto fail;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, raw + NONCE_LEN + n,
                                                  TAG_LEN);
    params[1] = OSSL_PARAM_construct_end();
    ok = EVP_DecryptInit_ex2(ctx, b->cipher, b->key, raw, NULL) == 1 &&
         (aad_len == 0 ||
          EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)aad_len) == 1);
    if (ok && n > 0)
        ok = EVP_DecryptUpdate(ctx, (unsigned char *)plain, &len, raw + NONCE_LEN, (int)n) == 1 &&
             (size_t)len == n;
    if (ok)
        ok = EVP_CIPHER_CTX_set_params(ctx, params) == 1;
    /* the tag is checked here; until then plain holds unauthenticated
     * bytes, which never leave this function */
    if (ok)
        ok = EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &len) == 1 && len == 0;
    if (!ok) {
        myna_err_set(err, MYNA_EBADSIG,
                     "sealed secret for '%.100s' does not open: wrong key, sealed for another "
                     "place, or changed",
                     aad);
        goto fail;
    }
    if (memchr(plain, '\0', n) != NULL) {
        myna_err_set(err, MYNA_EPARSE, "sealed secret for '%.100s' holds a NUL byte", aad);
        goto fail;
    }
    plain[n] = '\0';
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    return plain;

fail:
    ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    if (plain != NULL) {
        OPENSSL_cleanse(plain, n + 1);
        free(plain);
    }
    free(raw);
    return NULL;
}

int myna_secret_is_sealed(const char *s)
{
    size_t i, n;

    if (s == NULL || strncmp(s, MYNA_SECRET_PREFIX, PREFIX_LEN) != 0)
        return 0;
    s += PREFIX_LEN;
    for (i = 0; s[i] != '\0'; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return 0;
    n = i;
    return n % 4 != 1 && n >= b64url_len(NONCE_LEN + TAG_LEN);
}

/* ---- mask / wipe ------------------------------------------------------------- */

#define MASK_DOT "\xe2\x80\xa2"   /* U+2022 BULLET */
#define MASK_SHOWN 4

int myna_secret_is_masked(const char *s)
{
    return s != NULL && strncmp(s, MASK_DOT MASK_DOT, 6) == 0;
}

const char *myna_secret_mask(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t starts[MASK_SHOWN], count = 0, i = 0, n, o = 0;

    if (cap == 0)
        return out;
    out[0] = '\0';
    if (s == NULL || s[0] == '\0')
        return out;
    /* where each of the last MASK_SHOWN characters starts; a byte that is
     * not valid UTF-8 counts as one character of its own */
    n = strlen(s);
    while (i < n) {
        size_t k = myna_utf8_seq(p + i, n - i);
        starts[count % MASK_SHOWN] = i;
        count++;
        i += k ? k : 1;
    }
    for (int d = 0; d < MASK_SHOWN && o + 3 < cap; d++) {
        memcpy(out + o, MASK_DOT, 3);
        o += 3;
    }
    /* characters only after all the dots: a short cap never shows more */
    if (count > MASK_SHOWN && o == MASK_SHOWN * 3) {
        for (i = starts[count % MASK_SHOWN]; i < n;) {
            size_t k = myna_utf8_seq(p + i, n - i);
            if (o + (k ? k : 1) >= cap)
                break;
            if (k == 0) {
                out[o++] = '?';
                k = 1;
            } else {
                memcpy(out + o, p + i, k);
                o += k;
            }
            i += k;
        }
    }
    out[o] = '\0';
    return out;
}

void myna_secret_wipe_free(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}
