/* instance.c - parsing and validating the instances file. */
#include "wa/instance.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/secret.h"
#include "core/util.h"
#include "core/banned.h"

#define FIELD_MAX 4096

enum field_kind { F_SLUG, F_TEXT, F_PROVIDER, F_DIGITS, F_SECRET, F_TOKEN, F_URL };

struct field {
    const char *name;
    enum field_kind kind;
    int required;
    size_t off;
};

#define OFF(f) offsetof(struct myna_instance, f)
static const struct field fields[] = {
    { "id", F_SLUG, 1, OFF(id) },
    { "name", F_TEXT, 1, OFF(name) },
    { "provider", F_PROVIDER, 1, OFF(provider) },
    { "phone_number_id", F_DIGITS, 1, OFF(phone_number_id) },
    { "waba_id", F_DIGITS, 0, OFF(waba_id) },
    { "access_token", F_TOKEN, 1, OFF(access_token) },
    { "app_secret", F_SECRET, 1, OFF(app_secret) },
    { "verify_token", F_SECRET, 1, OFF(verify_token) },
    { "graph_url", F_URL, 0, OFF(graph_url) },
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void llm_release(struct myna_llm_settings *l)
{
    free(l->url);
    free(l->model);
    myna_secret_wipe_free(l->api_key);
    free(l->system_prompt);
    memset(l, 0, sizeof(*l));
}

static void instance_release(struct myna_instance *in)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        char **slot = (char **)((char *)in + fields[i].off);
        if (fields[i].kind == F_SECRET || fields[i].kind == F_TOKEN)
            myna_secret_wipe_free(*slot);
        else
            free(*slot);
        *slot = NULL;
    }
    llm_release(&in->llm);
    strv_free(in->allowed, in->n_allowed);
    strv_free(in->blocked, in->n_blocked);
    free(in->rate_notice);
    for (size_t i = 0; i < in->n_faq; i++) {
        strv_free(in->faq[i].questions, in->faq[i].n_questions);
        free(in->faq[i].answer);
    }
    free(in->faq);
    free(in->fallback_text);
    memset(in, 0, sizeof(*in));
}

cJSON *myna_instances_inline_providers(cJSON *root, int *oom)
{
    cJSON *list = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "instances");
    const cJSON *providers = cJSON_GetObjectItemCaseSensitive(root, "llm_providers");
    cJSON *item;

    *oom = 0;
    if (!cJSON_IsArray(list))
        return NULL;
    cJSON_ArrayForEach(item, list) {
        const cJSON *llm = cJSON_GetObjectItemCaseSensitive(item, "llm");
        const cJSON *named = cJSON_IsString(llm) && cJSON_IsObject(providers)
                                 ? cJSON_GetObjectItemCaseSensitive(providers, llm->valuestring)
                                 : NULL;
        cJSON *copy;

        if (named == NULL)
            continue;
        if ((copy = cJSON_Duplicate(named, 1)) == NULL ||
            !cJSON_ReplaceItemInObjectCaseSensitive(item, "llm", copy)) {
            cJSON_Delete(copy);
            *oom = 1;
        }
    }
    return list;
}

void myna_instances_release(struct myna_instance_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        instance_release(&set->v[i]);
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* A secret as the admin API shows it ("••••" and its last 4 characters; see
 * myna_secret_mask): an export without secrets, imported or used as an
 * instances file, would otherwise store the mask as the secret. */
#define MASKED_WHY "is a masked value as the admin API shows it, not the secret " \
                   "(export with --with-secrets, or write the secret)"

/* Whether s has a byte outside printable ASCII, or a space when spaces
 * count: what a header or a URL cannot carry as it is. */
static int has_unsendable(const char *s, int space_too)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || (space_too && c == ' '))
            return 1;
    }
    return 0;
}

/* Why url cannot be a base URL to call, or NULL; a '/' at its end is
 * refused unless slash_ok. */
static const char *url_problem(const char *url, int slash_ok)
{
    size_t n = strlen(url);

    const char *host = url + (strncmp(url, "https://", 8) == 0 ? 8 : 7);

    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return "must start with https:// or http://";
    if (*host == '\0' || strchr("/:?#@", *host) != NULL)
        return "has no host after the scheme";
    if (has_unsendable(url, 1))
        return "has a space, a line break or a non-ASCII byte (write it percent-encoded)";
    return url[n - 1] == '/' && !slash_ok ? "must not end with '/'" : NULL;
}

/* Returns NULL when the value is fine, else what is wrong with it. */
static const char *check_value(const struct field *f, const char *v)
{
    size_t n = strlen(v);

    if (n > FIELD_MAX)
        return "longer than 4096 bytes";
    switch (f->kind) {
    case F_SLUG:
        return myna_is_slug(v) ? NULL
                               : "must be 1-64 characters of a-z, 0-9 and '-', "
                                 "starting and ending with a letter or digit";
    case F_TEXT:
        if (n == 0 || n > 200)
            return "must be a non-empty string of at most 200 bytes";
        return myna_utf8_count(v) == (size_t)-1 ? "must be valid UTF-8" : NULL;
    case F_PROVIDER:
        return strcmp(v, "cloud") == 0 || strcmp(v, "sim") == 0
                   ? NULL
                   : "unsupported provider (supported: cloud, sim)";
    case F_DIGITS:
        if (n == 0 && !f->required)
            return NULL;
        return all_digits(v) && n <= 32 ? NULL : "must be the digits of Meta's id";
    case F_SECRET:
    case F_TOKEN:
        if (n == 0)
            return "a non-empty string is required";
        if (myna_secret_is_masked(v))
            return MASKED_WHY;
        /* an export shows it again as JSON, as the admin API takes it */
        if (myna_utf8_count(v) == (size_t)-1)
            return "must be valid UTF-8";
        /* it goes into a header of every send */
        return f->kind == F_TOKEN && has_unsendable(v, 1)
                   ? "has a space, a line break or a non-ASCII character (pasted with one?)"
                   : NULL;
    case F_URL:
        return url_problem(v, 0);
    }
    return NULL;
}

/* An id shown in a message as it is: short, no control bytes or quotes,
 * valid UTF-8 (an operator may have typed "acmé"). */
static int printable(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return n <= 64 && myna_utf8_count(s) != (size_t)-1;
}

/* ---- the conversation fields ---------------------------------------- */

static const char *const conv_fields[] = {
    "llm", "batch", "access", "rate_limit", "faq", "fallback_text", "pacing", "loop_guard",
    "enabled", "auto_start", "max_memory_mb", NULL,
};

int myna_instance_field_known(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(name, fields[i].name) == 0)
            return 1;
    for (size_t i = 0; conv_fields[i]; i++)
        if (strcmp(name, conv_fields[i]) == 0)
            return 1;
    return 0;
}

/* Reads obj.key as a number within [min, max] into *out (def when absent). */
static int get_num(const cJSON *obj, const char *key, double min, double max, double def,
                   double *out, const char *who, const char *path, struct myna_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (v == NULL || cJSON_IsNull(v)) {
        *out = def;
        return MYNA_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max)
        return myna_err_set(err, MYNA_ECONFIG,
                            "%s: field '%s%s%s': must be a number from %g to %g", who, path,
                            *path ? "." : "", key, min, max);
    *out = v->valuedouble;
    return MYNA_OK;
}

/* Reads obj.key as a whole number within [min, max] into *out (def when
 * absent): a count, a time or a size cut to an int would be another value
 * than the one written (a rate_limit.count of 0.5 would be 0, no limit). */
static int get_int(const cJSON *obj, const char *key, int min, int max, int def, int *out,
                   const char *who, const char *path, struct myna_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (v == NULL || cJSON_IsNull(v)) {
        *out = def;
        return MYNA_OK;
    }
    /* in bounds first: only then does the cast below have a value to give */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= min && v->valuedouble <= max) ||
        (double)(int)v->valuedouble != v->valuedouble)
        return myna_err_set(err, MYNA_ECONFIG,
                            "%s: field '%s%s%s': must be a whole number from %d to %d", who,
                            path, *path ? "." : "", key, min, max);
    *out = (int)v->valuedouble;
    return MYNA_OK;
}

/* Reads obj.key as true/false into *out (def when absent). */
static int get_bool(const cJSON *obj, const char *key, int def, int *out, const char *who,
                    struct myna_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (v == NULL || cJSON_IsNull(v)) {
        *out = def;
        return MYNA_OK;
    }
    if (!cJSON_IsBool(v))
        return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': must be true or false", who, key);
    *out = cJSON_IsTrue(v);
    return MYNA_OK;
}

/* Reads obj.key as a string of at most max bytes of UTF-8 (def when
 * absent): each goes to Meta, to a model or into JSON, which want UTF-8. */
static int get_str(const cJSON *obj, const char *key, size_t max, const char *def, char **out,
                   const char *who, const char *path, struct myna_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *text = def;

    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) > max)
            return myna_err_set(err, MYNA_ECONFIG,
                                "%s: field '%s%s%s': must be a string of at most %zu bytes", who,
                                path, *path ? "." : "", key, max);
        if (myna_utf8_count(v->valuestring) == (size_t)-1)
            return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s%s%s': must be valid UTF-8",
                                who, path, *path ? "." : "", key);
        text = v->valuestring;
    }
    if ((*out = strdup(text)) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    return MYNA_OK;
}

/* Refuses keys of obj other than the NULL-terminated allowed ones. */
static int only_keys(const cJSON *obj, const char *const *allowed, const char *who,
                     const char *path, struct myna_err *err)
{
    const cJSON *item;

    if (!cJSON_IsObject(obj))
        return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': must be a JSON object", who, path);
    cJSON_ArrayForEach(item, obj) {
        size_t i;
        for (i = 0; allowed[i] && strcmp(allowed[i], item->string) != 0; i++)
            ;
        if (allowed[i] == NULL)
            return myna_err_set(err, MYNA_ECONFIG, "%s: unknown field '%s.%.*s'", who, path,
                                (int)myna_utf8_cut(item->string, 64), item->string);
    }
    return MYNA_OK;
}

static int parse_llm(const cJSON *v, struct myna_llm_settings *l, const char *who,
                     struct myna_err *err)
{
    static const char *const keys[] = { "url", "model", "api_key", "system_prompt", "temperature",
                                        "max_tokens", "top_p", "timeout_ms", NULL };
    const char *why;
    int rc;

    if ((rc = only_keys(v, keys, who, "llm", err)) != MYNA_OK ||
        (rc = get_str(v, "url", 2048, "", &l->url, who, "llm", err)) != MYNA_OK ||
        (rc = get_str(v, "model", 256, "", &l->model, who, "llm", err)) != MYNA_OK ||
        (rc = get_str(v, "api_key", 4096, "", &l->api_key, who, "llm", err)) != MYNA_OK ||
        (myna_secret_is_masked(l->api_key) &&
         (rc = myna_err_set(err, MYNA_ECONFIG, "%s: field 'llm.api_key': " MASKED_WHY, who)) !=
             MYNA_OK) ||
        (rc = get_str(v, "system_prompt", 32768, "", &l->system_prompt, who, "llm", err)) !=
            MYNA_OK ||
        (rc = get_num(v, "temperature", 0, 2, 0.7, &l->temperature, who, "llm", err)) != MYNA_OK ||
        (rc = get_num(v, "top_p", 0, 1, 1, &l->top_p, who, "llm", err)) != MYNA_OK)
        return rc;
    if ((rc = get_int(v, "max_tokens", 1, 100000, 512, &l->max_tokens, who, "llm", err)) !=
            MYNA_OK ||
        (rc = get_int(v, "timeout_ms", 100, 600000, 30000, &l->timeout_ms, who, "llm", err)) !=
            MYNA_OK)
        return rc;
    if ((why = url_problem(l->url, 1)) != NULL)
        return myna_err_set(err, MYNA_ECONFIG, "%s: field 'llm.url': %s", who, why);
    if (has_unsendable(l->api_key, 0))  /* it goes into a header of every call */
        return myna_err_set(err, MYNA_ECONFIG,
                            "%s: field 'llm.api_key': has a line break or a non-ASCII character "
                            "(pasted with one?)", who);
    if (l->model[0] == '\0')
        return myna_err_set(err, MYNA_ECONFIG, "%s: field 'llm.model': missing", who);
    l->enabled = 1;
    return MYNA_OK;
}

static int parse_phones(const cJSON *v, char ***out, size_t *n, const char *who,
                        const char *path, struct myna_err *err)
{
    const cJSON *item;
    size_t cap = (size_t)cJSON_GetArraySize(v);

    if (!cJSON_IsArray(v))
        return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': must be an array of phone numbers",
                            who, path);
    if (cap > 100000)
        return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': more than 100000 numbers", who,
                            path);
    if (cap && (*out = calloc(cap, sizeof(**out))) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    cJSON_ArrayForEach(item, v) {
        char digits[40];
        size_t d = 0;
        if (!cJSON_IsString(item))
            return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': entry %zu must be a string",
                                who, path, *n + 1);
        /* "+7 (916) 123-45-67" and "79161234567" name the same wa_id */
        for (const char *c = item->valuestring; *c && d < sizeof(digits) - 1; c++)
            if (*c >= '0' && *c <= '9')
                digits[d++] = *c;
            else if (!strchr("+ ()-.", *c))
                d = sizeof(digits);
        if (d < 5 || d > 15)  /* E.164: at most 15 digits */
            return myna_err_set(err, MYNA_ECONFIG,
                                "%s: field '%s': entry %zu is not a phone number (5 to 15 digits)",
                                who, path, *n + 1);
        digits[d] = '\0';
        if (((*out)[(*n)++] = strdup(digits)) == NULL)
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    return MYNA_OK;
}

static int parse_faq(const cJSON *v, struct myna_instance *in, const char *who,
                     struct myna_err *err)
{
    static const char *const keys[] = { "q", "a", NULL };
    const cJSON *item;
    size_t n = (size_t)cJSON_GetArraySize(v);
    int rc;

    if (!cJSON_IsArray(v))
        return myna_err_set(err, MYNA_ECONFIG,
                            "%s: field 'faq': must be an array of {\"q\": [questions], \"a\": answer}",
                            who);
    if (n > MYNA_FAQ_MAX)
        return myna_err_set(err, MYNA_ECONFIG, "%s: field 'faq': more than %d entries", who,
                            MYNA_FAQ_MAX);
    if (n && (in->faq = calloc(n, sizeof(*in->faq))) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    cJSON_ArrayForEach(item, v) {
        struct myna_faq_item *f = &in->faq[in->n_faq];
        const cJSON *qs = cJSON_GetObjectItemCaseSensitive(item, "q"), *q;
        char path[32];
        int nq;

        snprintf(path, sizeof(path), "faq[%zu]", in->n_faq);
        in->n_faq++;
        if ((rc = only_keys(item, keys, who, path, err)) != MYNA_OK)
            return rc;
        /* one question, or an array of 1-100 variants */
        nq = cJSON_IsString(qs) ? 1 : cJSON_IsArray(qs) ? cJSON_GetArraySize(qs) : 0;
        if (nq < 1 || nq > 100)
            return myna_err_set(err, MYNA_ECONFIG,
                                "%s: field '%s.q': must be a question or an array of 1-100 variants",
                                who, path);
        if ((f->questions = calloc((size_t)nq, sizeof(char *))) == NULL)
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        q = cJSON_IsString(qs) ? qs : qs->child;
        for (int i = 0; i < nq; i++, q = q->next) {
            if (!cJSON_IsString(q) || q->valuestring[0] == '\0' || strlen(q->valuestring) > 1000 ||
                myna_utf8_count(q->valuestring) == (size_t)-1)
                return myna_err_set(err, MYNA_ECONFIG,
                                    "%s: field '%s.q': questions must be non-empty strings of at "
                                    "most 1000 bytes of UTF-8", who, path);
            if ((f->questions[f->n_questions++] = strdup(q->valuestring)) == NULL)
                return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        }
        if ((rc = get_str(item, "a", 4096, "", &f->answer, who, path, err)) != MYNA_OK)
            return rc;
        if (f->answer[0] == '\0')
            return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s.a': missing", who, path);
    }
    return MYNA_OK;
}

struct providers {
    const cJSON *obj;                 /* "llm_providers", or NULL */
};

/* The admin API's validation: every bad field, not only the first. */
struct collect {
    struct myna_field_error *v;
    size_t max, n;
};

/* After a failed step: records err when collecting and returns 1 (go on),
 * else 0 (stop). Messages name their field as "field 'x.y': why" or
 * "unknown field 'x'"; the record keeps the two apart. */
static int keep_going(struct collect *c, int rc, struct myna_err *err)
{
    const char *f, *end;
    struct myna_field_error *e;

    if (c == NULL || rc == MYNA_ENOMEM)
        return 0;
    if (c->n < c->max) {
        e = &c->v[c->n++];
        f = strstr(err->msg, "field '");
        end = f ? strchr(f + 7, '\'') : NULL;
        if (f && end) {
            const char *why = strncmp(end, "': ", 3) == 0 ? end + 3 : "unknown field";
            size_t n = (size_t)(end - f - 7);

            /* cut between characters: the admin API sends these as JSON */
            if (n > sizeof(e->field) - 1)
                n = myna_utf8_cut(f + 7, sizeof(e->field) - 1);
            snprintf(e->field, sizeof(e->field), "%.*s", (int)n, f + 7);
            snprintf(e->error, sizeof(e->error), "%.*s",
                     (int)myna_utf8_cut(why, sizeof(e->error) - 1), why);
        } else {
            e->field[0] = '\0';
            snprintf(e->error, sizeof(e->error), "%.*s",
                     (int)myna_utf8_cut(err->msg, sizeof(e->error) - 1), err->msg);
        }
    }
    return 1;
}


/* obj.key, or NULL when it is absent or null: a null section is the same
 * as leaving it out (its defaults), as for every other field. */
static const cJSON *section(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsNull(v) ? NULL : v;
}

/* Each section of the conversation fields stops at its first error; with a
 * collector the next sections are still checked. */
#define SECTION_FAILED(rc) ((rc) != MYNA_OK && !keep_going(c, (rc), err))

static int parse_conversation(const cJSON *obj, struct myna_instance *in, const char *who,
                              const struct providers *prov, struct collect *c,
                              struct myna_err *err)
{
    static const char *const batch_keys[] = { "window_ms", "max", NULL };
    static const char *const access_keys[] = { "allowed", "blocked", NULL };
    static const char *const rate_keys[] = { "count", "hours", "notice", NULL };
    static const char *const pacing_keys[] = { "messages_per_second", NULL };
    static const char *const loop_keys[] = { "replies_per_minute", "cooldown_s", "repeat_limit",
                                             NULL };
    const cJSON *v, *a;
    int rc = MYNA_OK;

    v = cJSON_GetObjectItemCaseSensitive(obj, "llm");
    if (cJSON_IsString(v)) {
        const cJSON *named = prov->obj ? cJSON_GetObjectItemCaseSensitive(prov->obj, v->valuestring)
                                       : NULL;
        char pwho[256];  /* "llm provider" + 64 + who (at most 128) */
        if (snprintf(pwho, sizeof(pwho), "llm provider \"%.*s\" (used by %.128s)",
                     (int)myna_utf8_cut(v->valuestring, 64), v->valuestring, who) < 0)
            pwho[0] = '\0';
        rc = named ? parse_llm(named, &in->llm, pwho, err)
                   : myna_err_set(err, MYNA_ECONFIG,
                                  "%s: field 'llm': no provider named \"%.*s\" in \"llm_providers\"",
                                  who, (int)myna_utf8_cut(v->valuestring, 64), v->valuestring);
    } else if (v != NULL && !cJSON_IsNull(v)) {
        rc = parse_llm(v, &in->llm, who, err);
    }
    if (SECTION_FAILED(rc))
        return rc;

    v = section(obj, "batch");
    if ((v == NULL || (rc = only_keys(v, batch_keys, who, "batch", err)) == MYNA_OK) &&
        (rc = get_int(v, "window_ms", 0, 600000, 9000, &in->batch_window_ms, who, "batch",
                      err)) == MYNA_OK)
        rc = get_int(v, "max", 1, 1000, 10, &in->batch_max, who, "batch", err);
    if (SECTION_FAILED(rc))
        return rc;

    v = section(obj, "access");
    rc = v ? only_keys(v, access_keys, who, "access", err) : MYNA_OK;
    /* null is absent, as for every other field */
    if (rc == MYNA_OK && v && (a = cJSON_GetObjectItemCaseSensitive(v, "allowed")) != NULL &&
        !cJSON_IsNull(a))
        rc = parse_phones(a, &in->allowed, &in->n_allowed, who, "access.allowed", err);
    if (rc == MYNA_OK && v && (a = cJSON_GetObjectItemCaseSensitive(v, "blocked")) != NULL &&
        !cJSON_IsNull(a))
        rc = parse_phones(a, &in->blocked, &in->n_blocked, who, "access.blocked", err);
    if (SECTION_FAILED(rc))
        return rc;

    v = section(obj, "rate_limit");
    if ((v == NULL || (rc = only_keys(v, rate_keys, who, "rate_limit", err)) == MYNA_OK) &&
        (rc = get_int(v, "count", 0, 100000, 5, &in->rate_count, who, "rate_limit", err)) ==
            MYNA_OK &&
        (rc = get_int(v, "hours", 1, 24 * 365, 5, &in->rate_hours, who, "rate_limit", err)) ==
            MYNA_OK)
        rc = get_str(v, "notice", 4096,
                     "You have reached the limit of questions for now. Please write again later.",
                     &in->rate_notice, who, "rate_limit", err);
    if (SECTION_FAILED(rc))
        return rc;

    v = cJSON_GetObjectItemCaseSensitive(obj, "faq");
    rc = v && !cJSON_IsNull(v) ? parse_faq(v, in, who, err) : MYNA_OK;
    if (SECTION_FAILED(rc))
        return rc;
    rc = get_str(obj, "fallback_text", 4096,
                 "Sorry, I cannot answer right now. We will get back to you soon.",
                 &in->fallback_text, who, "", err);
    if (SECTION_FAILED(rc))
        return rc;

    v = section(obj, "loop_guard");
    if ((v == NULL || (rc = only_keys(v, loop_keys, who, "loop_guard", err)) == MYNA_OK) &&
        (rc = get_int(v, "replies_per_minute", 1, 1000, 10, &in->loop_replies_per_minute, who,
                      "loop_guard", err)) == MYNA_OK &&
        (rc = get_int(v, "cooldown_s", 0, 86400, 600, &in->loop_cooldown_s, who, "loop_guard",
                      err)) == MYNA_OK)
        rc = get_int(v, "repeat_limit", 2, 1000, 3, &in->loop_repeat_limit, who, "loop_guard",
                     err);
    if (SECTION_FAILED(rc))
        return rc;

    v = section(obj, "pacing");
    if (v == NULL || (rc = only_keys(v, pacing_keys, who, "pacing", err)) == MYNA_OK)
        rc = get_num(v, "messages_per_second", 0.1, 1000, 20, &in->pacing_mps, who, "pacing", err);
    if (SECTION_FAILED(rc))
        return rc;

    /* how the master runs it */
    if ((rc = get_bool(obj, "enabled", 1, &in->enabled, who, err)) == MYNA_OK)
        rc = get_bool(obj, "auto_start", 1, &in->auto_start, who, err);
    if (SECTION_FAILED(rc))
        return rc;
    /* absent: 0, the server's bot_max_memory_mb */
    rc = get_int(obj, "max_memory_mb", 16, 65536, 0, &in->max_memory_mb, who, "", err);
    if (SECTION_FAILED(rc))
        return rc;
    return MYNA_OK;
}

/* A sim instance's default phone_number_id: 15 digits from its id, so it
 * stays the same from one start to the next. */
static const char *sim_phone_number_id(const char *id, char *out, size_t cap)
{
    uint64_t h = 14695981039346656037ull;

    for (; id && *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    snprintf(out, cap, "9%014llu", (unsigned long long)(h % 100000000000000ull));
    return out;
}

static int parse_one(const cJSON *obj, size_t idx, struct myna_instance *in,
                     const struct providers *prov, struct collect *c, struct myna_err *err)
{
    const cJSON *id = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "id") : NULL;
    char who[128], dup[160];
    const cJSON *item, *prov_v;
    int sim;

    if (cJSON_IsString(id) && printable(id->valuestring))
        snprintf(who, sizeof(who), "instance %zu (\"%s\")", idx + 1, id->valuestring);
    else
        snprintf(who, sizeof(who), "instance %zu", idx + 1);
    if (!cJSON_IsObject(obj))
        return myna_err_set(err, MYNA_ECONFIG, "%s: must be a JSON object", who);
    /* cJSON keeps both of a repeated key and reads the first: a second
     * llm.api_key would skip the seal and the mask. Refuse, at any depth. */
    switch (myna_json_repeated_key(obj, dup, sizeof(dup))) {
    case 1:
        if (SECTION_FAILED(myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': appears twice", who,
                                        dup)))
            return err->code;
        break;
    case -1:
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    cJSON_ArrayForEach(item, obj) {
        if (!myna_instance_field_known(item->string) &&
            SECTION_FAILED(myna_err_set(err, MYNA_ECONFIG, "%s: unknown field '%.*s'", who,
                                        (int)myna_utf8_cut(item->string, 64), item->string)))
            return err->code;
    }
    /* the simulator needs no credentials: myna_sim_prepare derives them */
    prov_v = cJSON_GetObjectItemCaseSensitive(obj, "provider");
    sim = cJSON_IsString(prov_v) && strcmp(prov_v->valuestring, "sim") == 0;
    for (size_t i = 0; i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        const char *text = "", *why;
        char **slot = (char **)((char *)in + f->off), pnid[24];
        int sim_default = sim && f->off != OFF(id) && f->off != OFF(name) &&
                          f->off != OFF(provider);

        int rc = MYNA_OK;

        if (v == NULL || cJSON_IsNull(v)) {
            if (f->required && !sim_default)
                rc = myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': missing", who, f->name);
            text = f->kind == F_URL && !sim ? MYNA_GRAPH_URL_DEFAULT : "";
        } else if (!cJSON_IsString(v)) {
            rc = myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': must be a string", who, f->name);
        } else {
            text = v->valuestring;
        }
        if (rc != MYNA_OK) {
            if (SECTION_FAILED(rc))
                return rc;
            continue;
        }
        /* "" as when absent: nothing else would fill it, and two sims would clash */
        if (sim && f->off == OFF(phone_number_id) && *text == '\0')
            text = sim_phone_number_id(in->id, pnid, sizeof(pnid));
        if ((why = check_value(f, text)) != NULL && !(sim_default && *text == '\0')) {
            rc = myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': %s", who, f->name, why);
            if (SECTION_FAILED(rc))
                return rc;
            continue;
        }
        if ((*slot = strdup(text)) == NULL)
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    if (parse_conversation(obj, in, who, prov, c, err) != MYNA_OK)
        return err->code;
    if (c && c->n > 0)
        return myna_err_set(err, MYNA_ECONFIG, "%zu field(s) are not valid", c->n);
    return MYNA_OK;
}

static int check_unique(const struct myna_instance_set *set, struct myna_err *err)
{
    for (size_t i = 0; i < set->n; i++)
        for (size_t j = 0; j < i; j++) {
            if (strcmp(set->v[i].id, set->v[j].id) == 0)
                return myna_err_set(err, MYNA_ECONFIG,
                                    "instance %zu: field 'id': \"%s\" is already used by "
                                    "instance %zu",
                                    i + 1, set->v[i].id, j + 1);
            /* inbound records are routed by phone_number_id */
            if (strcmp(set->v[i].phone_number_id, set->v[j].phone_number_id) == 0)
                return myna_err_set(err, MYNA_ECONFIG,
                                    "instance %zu (\"%s\"): field 'phone_number_id': already "
                                    "used by instance %zu (\"%s\")",
                                    i + 1, set->v[i].id, j + 1, set->v[j].id);
        }
    return MYNA_OK;
}

int myna_instances_parse(const char *json, size_t len, struct myna_instance_set *set,
                         struct myna_err *err)
{
    cJSON *root;
    const cJSON *item, *list;
    const char *why = "";
    struct providers prov = { NULL };
    char dup[160];
    size_t n, i = 0;
    int rc = MYNA_OK;

    set->v = NULL;
    set->n = 0;
    if (len > MYNA_INSTANCES_FILE_MAX)
        return myna_err_set(err, MYNA_ETOOBIG, "larger than %d bytes", MYNA_INSTANCES_FILE_MAX);
    if ((root = myna_json_parse_whole(json, len, &why)) == NULL)
        return myna_err_set(err, MYNA_EPARSE, "%s", why);
    list = root;
    if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "instances") != NULL) {
        cJSON_ArrayForEach(item, root) {
            if (strcmp(item->string, "instances") != 0 && strcmp(item->string, "llm_providers") != 0) {
                myna_err_set(err, MYNA_ECONFIG,
                             "unknown top-level field '%.*s' (expected \"instances\" and "
                             "\"llm_providers\")", (int)myna_utf8_cut(item->string, 64),
                             item->string);
                cJSON_Delete(root);
                return MYNA_ECONFIG;
            }
        }
        if ((rc = myna_json_repeated_key(root, dup, sizeof(dup))) != 0) {
            cJSON_Delete(root);
            return rc < 0 ? myna_err_set(err, MYNA_ENOMEM, "out of memory")
                          : myna_err_set(err, MYNA_ECONFIG, "field '%s': appears twice", dup);
        }
        prov.obj = cJSON_GetObjectItemCaseSensitive(root, "llm_providers");
        list = cJSON_GetObjectItemCaseSensitive(root, "instances");
        if (prov.obj && !cJSON_IsObject(prov.obj)) {
            cJSON_Delete(root);
            return myna_err_set(err, MYNA_ECONFIG, "\"llm_providers\" must be an object of named llm settings");
        }
        /* each one, used or not: a typo in one no instance names yet
         * would only show when one does */
        cJSON_ArrayForEach(item, prov.obj) {
            struct myna_llm_settings l = { 0 };
            char pwho[96];
            snprintf(pwho, sizeof(pwho), "llm provider \"%.*s\"",
                     (int)myna_utf8_cut(item->string, 64), item->string);
            rc = parse_llm(item, &l, pwho, err);
            llm_release(&l);
            if (rc != MYNA_OK) {
                cJSON_Delete(root);
                return rc;
            }
        }
    }
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_ECONFIG,
                            "must be a JSON array of instance objects, or an object with an "
                            "\"instances\" array");
    }
    n = (size_t)cJSON_GetArraySize(list);
    if (n > MYNA_INSTANCES_MAX) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_ETOOBIG, "more than %d instances", MYNA_INSTANCES_MAX);
    }
    if (n > 0 && (set->v = calloc(n, sizeof(*set->v))) == NULL) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    cJSON_ArrayForEach(item, list) {
        set->n = i + 1;
        if ((rc = parse_one(item, i, &set->v[i], &prov, NULL, err)) != MYNA_OK)
            break;
        i++;
    }
    cJSON_Delete(root);
    if (rc == MYNA_OK)
        rc = check_unique(set, err);
    if (rc != MYNA_OK)
        myna_instances_release(set);
    return rc;
}

/* Reads path into b and checks it: MYNA_OK, or an error (without the
 * file's name) after which b may hold part of it. */
static int read_checked(const char *path, struct myna_buf *b, struct myna_instance_set *set,
                        struct myna_err *err)
{
    int rc = myna_buf_read_file(b, path, err);

    set->v = NULL;
    set->n = 0;
    return rc == MYNA_OK ? myna_instances_parse(b->data ? b->data : "", b->len, set, err) : rc;
}

static void wipe(struct myna_buf *b)
{
    if (b->data)
        memset(b->data, 0, b->len);  /* the file holds secrets */
    myna_buf_release(b);
}

int myna_instances_load(const char *path, struct myna_instance_set *set, struct myna_err *err)
{
    struct myna_buf b = MYNA_BUF_INIT(MYNA_INSTANCES_FILE_MAX);
    int rc = read_checked(path, &b, set, err);

    if (rc != MYNA_OK)
        myna_err_prefix(err, "instances file '%s'", path);
    wipe(&b);
    return rc;
}

cJSON *myna_instances_load_json(const char *path, cJSON **root, struct myna_err *err)
{
    struct myna_buf b = MYNA_BUF_INIT(MYNA_INSTANCES_FILE_MAX);
    struct myna_instance_set set;
    cJSON *list = NULL;
    int rc = read_checked(path, &b, &set, err), oom = 0;

    *root = NULL;
    if (rc == MYNA_OK) {
        myna_instances_release(&set);
        if ((*root = cJSON_ParseWithLength(b.data ? b.data : "", b.len)) != NULL)
            list = myna_instances_inline_providers(*root, &oom);
        if (list == NULL || oom) {  /* the bytes were checked: only memory can fail */
            cJSON_Delete(*root);
            *root = list = NULL;
            rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
        }
    }
    if (rc != MYNA_OK)
        myna_err_prefix(err, "instances file '%s'", path);
    wipe(&b);
    return list;
}

const struct myna_instance *myna_instances_find(const struct myna_instance_set *set,
                                                const char *id)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i].id, id) == 0)
            return &set->v[i];
    return NULL;
}

int myna_instance_parse_one(const char *json, size_t len, struct myna_instance *in,
                            struct myna_field_error *errs, size_t max, size_t *n_errs,
                            struct myna_err *err)
{
    struct providers prov = { NULL };
    struct collect c = { errs, max, 0 };
    const char *why = "";
    cJSON *root;
    int rc;

    memset(in, 0, sizeof(*in));
    *n_errs = 0;
    if (len > MYNA_INSTANCES_FILE_MAX)
        return myna_err_set(err, MYNA_ETOOBIG, "larger than %d bytes", MYNA_INSTANCES_FILE_MAX);
    if ((root = myna_json_parse_whole(json, len, &why)) == NULL)
        return myna_err_set(err, MYNA_EPARSE, "%s", why);
    rc = parse_one(root, 0, in, &prov, &c, err);
    cJSON_Delete(root);
    *n_errs = c.n;
    if (rc != MYNA_OK)
        instance_release(in);
    return rc;
}

void myna_instance_release(struct myna_instance *in)
{
    instance_release(in);
}
