/* instance.c - parsing and validating the instances file. */
#include "wa/instance.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/banned.h"

#define FIELD_MAX 4096

enum field_kind { F_SLUG, F_TEXT, F_PROVIDER, F_DIGITS, F_SECRET, F_URL };

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
    { "access_token", F_SECRET, 1, OFF(access_token) },
    { "app_secret", F_SECRET, 1, OFF(app_secret) },
    { "verify_token", F_SECRET, 1, OFF(verify_token) },
    { "graph_url", F_URL, 0, OFF(graph_url) },
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static void instance_release(struct myna_instance *in)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        char **slot = (char **)((char *)in + fields[i].off);
        if (fields[i].kind == F_SECRET && *slot)
            memset(*slot, 0, strlen(*slot));  /* secrets do not outlive their use */
        free(*slot);
        *slot = NULL;
    }
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
        return n > 0 && n <= 200 ? NULL : "must be a non-empty string of at most 200 bytes";
    case F_PROVIDER:
        return strcmp(v, "cloud") == 0 ? NULL : "unsupported provider (supported: cloud)";
    case F_DIGITS:
        if (n == 0 && !f->required)
            return NULL;
        return all_digits(v) && n <= 32 ? NULL : "must be the digits of Meta's id";
    case F_SECRET:
        return n > 0 ? NULL : "a non-empty string is required";
    case F_URL:
        if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
            return "must start with https:// or http://";
        return v[n - 1] == '/' ? "must not end with '/'" : NULL;
    }
    return NULL;
}

/* An id shown in a message as it is: short, no control bytes or quotes
 * (UTF-8 is fine: an operator may have typed "acmé"). */
static int printable(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return n <= 64;
}

static int parse_one(const cJSON *obj, size_t idx, struct myna_instance *in,
                     struct myna_err *err)
{
    const cJSON *id = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "id") : NULL;
    char who[128];
    const cJSON *item;

    if (cJSON_IsString(id) && printable(id->valuestring))
        snprintf(who, sizeof(who), "instance %zu (\"%s\")", idx + 1, id->valuestring);
    else
        snprintf(who, sizeof(who), "instance %zu", idx + 1);
    if (!cJSON_IsObject(obj))
        return myna_err_set(err, MYNA_ECONFIG, "%s: must be a JSON object", who);
    cJSON_ArrayForEach(item, obj) {
        const cJSON *other;
        size_t i;
        for (i = 0; i < N_FIELDS; i++)
            if (strcmp(item->string, fields[i].name) == 0)
                break;
        if (i == N_FIELDS)
            return myna_err_set(err, MYNA_ECONFIG, "%s: unknown field '%.64s'", who,
                                item->string);
        /* cJSON keeps both of a repeated key and reads the first: refuse */
        for (other = item->next; other; other = other->next)
            if (strcmp(other->string, item->string) == 0)
                return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s' appears twice", who,
                                    item->string);
    }
    for (size_t i = 0; i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        const char *text, *why;
        char **slot = (char **)((char *)in + f->off);

        if (v == NULL || cJSON_IsNull(v)) {
            if (f->required)
                return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': missing", who, f->name);
            text = f->kind == F_URL ? MYNA_GRAPH_URL_DEFAULT : "";
        } else if (!cJSON_IsString(v)) {
            return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': must be a string", who,
                                f->name);
        } else {
            text = v->valuestring;
        }
        if ((why = check_value(f, text)) != NULL)
            return myna_err_set(err, MYNA_ECONFIG, "%s: field '%s': %s", who, f->name, why);
        if ((*slot = strdup(text)) == NULL)
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
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
    const cJSON *item;
    const char *end = NULL;
    size_t n, i = 0;
    int rc = MYNA_OK;

    set->v = NULL;
    set->n = 0;
    if (len > MYNA_INSTANCES_FILE_MAX)
        return myna_err_set(err, MYNA_ETOOBIG, "larger than %d bytes", MYNA_INSTANCES_FILE_MAX);
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL)
        return myna_err_set(err, MYNA_EPARSE, "not valid JSON");
    while (end < json + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != json + len) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_EPARSE, "not valid JSON: content after the array");
    }
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_ECONFIG, "must be a JSON array of instance objects");
    }
    n = (size_t)cJSON_GetArraySize(root);
    if (n > MYNA_INSTANCES_MAX) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_ETOOBIG, "more than %d instances", MYNA_INSTANCES_MAX);
    }
    if (n > 0 && (set->v = calloc(n, sizeof(*set->v))) == NULL) {
        cJSON_Delete(root);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    cJSON_ArrayForEach(item, root) {
        set->n = i + 1;
        if ((rc = parse_one(item, i, &set->v[i], err)) != MYNA_OK)
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

int myna_instances_load(const char *path, struct myna_instance_set *set, struct myna_err *err)
{
    struct myna_buf b = MYNA_BUF_INIT(MYNA_INSTANCES_FILE_MAX);
    char chunk[8192];
    size_t n;
    int rc = MYNA_OK;
    FILE *f = fopen(path, "rb");

    set->v = NULL;
    set->n = 0;
    if (f == NULL)
        return myna_err_set(err, MYNA_EIO, "cannot read instances file '%s': %s", path,
                            strerror(errno));
    while (rc == MYNA_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (myna_buf_append(&b, chunk, n) != MYNA_OK)
            rc = myna_err_set(err, MYNA_ETOOBIG, "larger than %d bytes",
                              MYNA_INSTANCES_FILE_MAX);
    if (rc == MYNA_OK && ferror(f))
        rc = myna_err_set(err, MYNA_EIO, "read error");
    fclose(f);
    if (rc == MYNA_OK)
        rc = myna_instances_parse(b.data ? b.data : "", b.len, set, err);
    if (rc != MYNA_OK)
        myna_err_prefix(err, "instances file '%s'", path);
    if (b.data)
        memset(b.data, 0, b.len);  /* the file holds secrets */
    myna_buf_release(&b);
    return rc;
}

const struct myna_instance *myna_instances_find(const struct myna_instance_set *set,
                                                const char *id)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i].id, id) == 0)
            return &set->v[i];
    return NULL;
}
