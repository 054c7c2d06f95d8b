/* secret.h - secrets at rest: instance access tokens, app secrets and LLM
 * API keys are stored sealed in the control database and opened only when
 * they are used.
 *
 * A box holds one 256-bit key read from a key file (64 hex digits, mode
 * 0600, never group/other accessible, owned by the process's user or
 * root). Sealing is AES-256-GCM with a fresh random 12-byte nonce per
 * value; the aad names the value's place ("instance:shop:access_token"),
 * so a sealed value copied into another field or row does not open there.
 * Sealed form:
 *
 *     "enc:v1:" base64url-no-padding(nonce[12] | ciphertext | tag[16])
 *
 * This module never logs and never puts secret bytes into err messages.
 * A box is read-only once open: seal/unseal may run on it from several
 * threads. */
#ifndef MYNA_CORE_SECRET_H
#define MYNA_CORE_SECRET_H

#include <stddef.h>

#include "core/err.h"

#define MYNA_SECRET_PREFIX "enc:v1:"
/* Longest plaintext myna_secret_seal takes (MYNA_ETOOBIG past it). */
#define MYNA_SECRET_MAX_PLAIN (64 * 1024)
/* Room myna_secret_mask needs at most: 4 dots of 3 bytes, 4 characters of
 * at most 4 bytes, the NUL. */
#define MYNA_SECRET_MASK_MAX (4 * 3 + 4 * 4 + 1)

struct myna_secret_box;

#define MYNA_KEY_FILE_LEN 32

/* Reads the key file at path: 32 random bytes written as 64 hex digits (one
 * trailing newline is tolerated, so `openssl rand -hex 32 > key` works).
 * When the file is missing and create != 0, a new key is written to a
 * private temporary file, fsync'd and linked into place; link never
 * replaces an existing file, so when two processes race, both end up with
 * the winner's key. Every open fsyncs the file's directory, so the key's
 * name is durable before anything is sealed with it; with create != 0,
 * temporary files of creations that crashed (over a minute old) are
 * removed first. Errors name the file: MYNA_ENOTFOUND (missing and
 * create == 0), MYNA_ECONFIG (not a regular file, mode open to group or
 * others, owned by a user other than this process's or root, wrong size,
 * not hex), MYNA_EIO (cannot read, write or sync it, no randomness), MYNA_EINVAL
 * (NULL or overlong path), MYNA_ENOMEM; key is wiped on failure. */
int myna_key_file_load(const char *path, int create, unsigned char key[MYNA_KEY_FILE_LEN],
                       struct myna_err *err);

/* A box sealing with the key of the key file at path, read (and created)
 * as myna_key_file_load does. Returns an owned box or NULL with err set. */
struct myna_secret_box *myna_secret_box_open(const char *path, int create, struct myna_err *err);

/* Wipes the key and frees the box; NULL ok. */
void myna_secret_box_free(struct myna_secret_box *b);

/* Seals plain (a C string, at most MYNA_SECRET_MAX_PLAIN bytes) bound to
 * aad (NULL is the same as ""). Returns the owned sealed string, or NULL
 * with err: MYNA_EINVAL (NULL plain), MYNA_ETOOBIG, MYNA_ENOMEM, MYNA_EIO
 * (no randomness, cipher failure). */
char *myna_secret_seal(struct myna_secret_box *b, const char *plain, const char *aad,
                       struct myna_err *err);

/* Opens a sealed string with the same aad it was sealed with. Returns the
 * owned plaintext (free it with myna_secret_wipe_free), or NULL with err:
 * MYNA_EPARSE (no "enc:v1:" prefix, not base64url, too short or too long),
 * MYNA_EBADSIG (wrong key, wrong aad, or changed: the GCM tag does not
 * match; no plaintext is returned), MYNA_ENOMEM, MYNA_EIO. Safe on any
 * input. */
char *myna_secret_unseal(struct myna_secret_box *b, const char *sealed, const char *aad,
                         struct myna_err *err);

/* 1 when s has the sealed shape ("enc:v1:" then base64url long enough for a
 * nonce and a tag), else 0; NULL gives 0. Says nothing about whether it
 * opens: that needs the key and the aad. */
int myna_secret_is_sealed(const char *s);

/* A masked plaintext for reads through the API: "••••" then the last 4
 * characters of s; s of 1..4 characters gives "••••" alone, "" (or NULL)
 * gives "". Characters are UTF-8 code points and are never cut; a byte that
 * is not valid UTF-8 shows as '?', so out is always valid UTF-8. out holds
 * cap bytes (MYNA_SECRET_MASK_MAX is always enough); a smaller cap ends the
 * result early at a character boundary. Always terminated when cap > 0.
 * Returns out. */
const char *myna_secret_mask(const char *s, char *out, size_t cap);

/* 1 when s starts as myna_secret_mask's output does (two of its dots): a
 * value the API showed, not a secret; NULL gives 0. */
int myna_secret_is_masked(const char *s);

/* Overwrites the string with zeros, then frees it; NULL ok. */
void myna_secret_wipe_free(char *s);

/* ---- internals shared with core/auth.c --------------------------------------- */

/* Base64url without padding (RFC 4648 section 5). Encodes n bytes into
 * out (cap bytes, terminated); returns the length written, or (size_t)-1
 * when cap is too small (out then holds ""). */
size_t myna_secret__b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap);

/* Decodes len characters of strict base64url (no padding, no whitespace, the
 * unused low bits of the last character zero, so each byte string has one
 * spelling) into out (cap bytes). Returns the number of bytes, or
 * (size_t)-1 when the text is not valid or does not fit. */
size_t myna_secret__b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
