/* manage.c - instance and token commands over the admin API. */
#include "cli/manage.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/util.h"
#include "wa/instance.h"
#include "core/banned.h"

#define FILE_MAX (16 << 20)

/* What the API adds to an instance's config that an instances file has not. */
static const char *const live_fields[] = { "owner",   "state",           "pid", "restarts",
                                           "version", "needs_attention", NULL };

/* The whole of path ("-": stdin), NUL-terminated, its length in *len;
 * NULL, said once on err with the reason, when it cannot be read. */
static char *read_all(const char *path, size_t *len, FILE *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct myna_buf b = MYNA_BUF_INIT(FILE_MAX);
    char chunk[8192], *out;
    size_t n;
    int ok = 1, e = 0;

    if (f == NULL) {
        e = errno;
        fprintf(err, "myna: cannot read '%s': %s\n", path, strerror(e));
        return NULL;
    }
    errno = 0;
    while (ok && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ok = myna_buf_append(&b, chunk, n) == 0;
    if (ok && ferror(f))  /* e.g. a directory: fopen takes it, reading fails */
        e = errno ? errno : EIO;
    if (f != stdin)
        fclose(f);
    if (!ok || e) {
        if (e)
            fprintf(err, "myna: cannot read '%s': %s\n", path, strerror(e));
        else
            fprintf(err, "myna: '%s' is larger than 16 MiB\n", path);
        myna_buf_release(&b);
        return NULL;
    }
    out = myna_buf_detach(&b, len);
    if (out == NULL)
        *len = 0;
    return out ? out : strdup("");
}

static void print_json(FILE *out, const char *text)
{
    cJSON *o = cJSON_Parse(text);
    char *pretty = o ? cJSON_Print(o) : NULL;

    myna_api_put_text(out, pretty ? pretty : text, 1);
    fputc('\n', out);
    free(pretty);
    cJSON_Delete(o);
}

/* s, cleaned for the terminal, as printf's "%-<width>s " (width 0: "%s"). */
static void cell(FILE *out, const char *s, int width)
{
    size_t n = myna_api_put_text(out, s, 0);

    for (; width > 0 && n < (size_t)width; n++)
        fputc(' ', out);
    if (width > 0)
        fputc(' ', out);
}

static int list(struct myna_api *a, FILE *out, FILE *err)
{
    long st = myna_api_call(a, "GET", "/admin/whatsapp/instances", NULL);
    cJSON *arr, *it;

    if (st != 200) {
        myna_api_print_error(a, "instance list", st, err);
        return 1;
    }
    if (!cJSON_IsArray(arr = cJSON_Parse(a->resp.data))) {
        myna_api_print_bad_answer(a, "instance list", err);
        cJSON_Delete(arr);
        return 1;
    }
    fprintf(out, "%-24s %-8s %-11s %-7s %s\n", "ID", "PROVIDER", "STATE", "ENABLED", "NAME");
    cJSON_ArrayForEach(it, arr) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id"),
                    *name = cJSON_GetObjectItemCaseSensitive(it, "name"),
                    *prov = cJSON_GetObjectItemCaseSensitive(it, "provider"),
                    *state = cJSON_GetObjectItemCaseSensitive(it, "state"),
                    *en = cJSON_GetObjectItemCaseSensitive(it, "enabled");
        cell(out, cJSON_IsString(id) ? id->valuestring : "?", 24);
        cell(out, cJSON_IsString(prov) ? prov->valuestring : "?", 8);
        cell(out, cJSON_IsString(state) ? state->valuestring : "?", 11);
        fprintf(out, "%-7s ", cJSON_IsTrue(en) ? "yes" : "no");
        if (!cJSON_IsString(name))  /* not loaded at start: why instead */
            name = cJSON_GetObjectItemCaseSensitive(it, "error");
        cell(out, cJSON_IsString(name) ? name->valuestring : "", 0);
        fputc('\n', out);
    }
    cJSON_Delete(arr);
    return 0;
}

/* 0 if id can be an instance's, else 1 after saying so. */
static int not_an_id(const char *id, FILE *err)
{
    if (myna_is_slug(id))
        return 0;
    fputs("myna: '", err);  /* id may come from the server's list */
    myna_api_put_text(err, id, 0);
    fputs("' is not an instance id\n", err);
    return 1;
}

/* GET the instance, secrets revealed with reveal (admins only), without
 * the live fields: an object for an instances file. */
static cJSON *fetch(struct myna_api *a, const char *id, int reveal, FILE *err)
{
    char path[256];
    long st;
    cJSON *o;

    if (not_an_id(id, err))
        return NULL;
    snprintf(path, sizeof(path), "/admin/whatsapp/instances/%s%s", id, reveal ? "?secrets=1" : "");
    if ((st = myna_api_call(a, "GET", path, NULL)) != 200) {
        myna_api_print_error(a, id, st, err);
        return NULL;
    }
    if (!cJSON_IsObject(o = cJSON_Parse(a->resp.data))) {
        myna_api_print_bad_answer(a, id, err);
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; live_fields[i]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, live_fields[i]);
    return o;
}

/* The instances as an instances file on out. 1 when a call failed (nothing
 * printed), or when an instance that did not load at start was left out:
 * the others are printed, each left out is named on err, and a backup of
 * the rest is not mistaken for a whole one. */
static int export(struct myna_api *a, int argc, char **argv, FILE *out, FILE *err)
{
    cJSON *arr = cJSON_CreateArray(), *all = NULL, *it;
    int reveal = 0, named = 0, rc = 0;
    size_t left_out = 0;
    char *text = NULL;

    if (arr == NULL) {
        fprintf(err, "myna: out of memory\n");
        return 1;
    }
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--with-secrets") == 0)
            reveal = 1;
    for (int i = 0; rc == 0 && i < argc; i++) {
        cJSON *o;
        if (strcmp(argv[i], "--with-secrets") == 0)
            continue;
        named = 1;
        if ((o = fetch(a, argv[i], reveal, err)) == NULL)
            rc = 1;
        else
            cJSON_AddItemToArray(arr, o);
    }
    if (rc == 0 && !named) {
        long st = myna_api_call(a, "GET", "/admin/whatsapp/instances", NULL);
        if (st != 200) {
            myna_api_print_error(a, "instance export", st, err);
            rc = 1;
        } else if (!cJSON_IsArray(all = cJSON_Parse(a->resp.data))) {
            myna_api_print_bad_answer(a, "instance export", err);
            cJSON_Delete(all);
            all = NULL;
            rc = 1;
        }
        cJSON_ArrayForEach(it, all) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id"),
                        *why = cJSON_GetObjectItemCaseSensitive(it, "error");
            cJSON *o;
            if (cJSON_IsString(id) && cJSON_IsString(why)) {  /* did not load: nothing to export */
                fputs("myna: instance '", err);
                myna_api_put_text(err, id->valuestring, 0);
                fputs("' left out, it did not load at start: ", err);
                myna_api_put_text(err, why->valuestring, 0);
                fputc('\n', err);
                left_out++;
                continue;
            }
            o = cJSON_IsString(id) ? fetch(a, id->valuestring, reveal, err) : NULL;
            if (o == NULL) {
                if (!cJSON_IsString(id))
                    myna_api_print_bad_answer(a, "instance export", err);
                rc = 1;
                break;
            }
            cJSON_AddItemToArray(arr, o);
        }
    }
    if (rc == 0 && (text = cJSON_Print(arr)) == NULL) {
        fprintf(err, "myna: out of memory\n");
        rc = 1;
    } else if (rc == 0) {
        fprintf(out, "%s\n", text);
        free(text);
    }
    if (rc == 0 && left_out > 0) {
        fprintf(err, "myna: instance export: %zu instance(s) left out (above): the export is "
                     "not complete\n", left_out);
        rc = 1;
    }
    cJSON_Delete(all);
    cJSON_Delete(arr);
    return rc;
}

/* 0, or 1 after saying why root, an instances file as a whole, is refused
 * by `serve --instances`: a top-level field other than "instances" and
 * "llm_providers", or a key given twice in one object. */
static int file_problem(const cJSON *root, const char *path, FILE *err)
{
    const cJSON *item;
    char where[160];

    if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "instances") != NULL) {
        cJSON_ArrayForEach(item, root) {
            if (strcmp(item->string, "instances") != 0 &&
                strcmp(item->string, "llm_providers") != 0) {
                fprintf(err, "myna: '%s' is not an instances file: unknown top-level field '",
                        path);
                myna_api_put_text(err, item->string, 0);
                fputs("' (expected \"instances\" and \"llm_providers\")\n", err);
                return 1;
            }
        }
        switch (myna_json_repeated_key(root, where, sizeof(where))) {
        case 0:
            break;
        case -1:
            fprintf(err, "myna: out of memory\n");
            return 1;
        default:
            fprintf(err, "myna: '%s' is not an instances file: field '", path);
            myna_api_put_text(err, where, 0);
            fputs("': appears twice\n", err);
            return 1;
        }
    }
    return 0;
}

/* The "version" of the instance answered in text, or -1. */
static double version_of(const char *text)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version");
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;

    cJSON_Delete(o);
    return d;
}

static int import(struct myna_api *a, const char *path, FILE *out, FILE *err)
{
    size_t len;
    char *text = read_all(path, &len, err);
    const char *why = NULL;
    cJSON *root, *it;
    const cJSON *list;
    int rc = 0, oom;
    size_t n;

    if (text == NULL)
        return 1;
    /* the whole file, as `serve --instances` reads it: a cJSON_Parse would
     * take the first of two arrays, or a token cut at a \u0000, and say
     * nothing */
    root = myna_json_parse_whole(text, len, &why);
    free(text);
    if (root == NULL) {
        fprintf(err, "myna: '%s' is not an instances file: %s\n", path, why);
        return 1;
    }
    /* what the server cannot see, as `serve --instances` checks it: a
     * repeated "instances" or provider name would be read as its first */
    if (file_problem(root, path, err) != 0) {
        cJSON_Delete(root);
        return 1;
    }
    /* named LLM providers are sent as their settings, as `serve --instances` stores them */
    list = myna_instances_inline_providers(root, &oom);
    if (oom) {
        fprintf(err, "myna: out of memory\n");
        cJSON_Delete(root);
        return 1;
    }
    if (list == NULL) {
        fprintf(err, "myna: '%s' is not an instances file (a JSON array of instances)\n", path);
        cJSON_Delete(root);
        return 1;
    }
    /* a number past the range of a double (1e999) would be sent as null,
     * the field's default, where `serve --instances` refuses it, as it
     * refuses a key given twice: the whole file is refused before any call */
    n = 0;
    cJSON_ArrayForEach(it, list) {
        char where[160];
        int dup = 0;
        n++;
        if (myna_json_infinite(it, where, sizeof(where)) ||
            (dup = myna_json_repeated_key(it, where, sizeof(where))) != 0) {
            if (dup < 0) {
                fprintf(err, "myna: out of memory\n");
            } else {
                fprintf(err, "myna: '%s': instance %zu: field '", path, n);
                myna_api_put_text(err, where, 0);
                fputs(dup ? "': appears twice\n" : "': a number too large\n", err);
            }
            cJSON_Delete(root);
            return 1;
        }
    }
    cJSON_ArrayForEach(it, list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        char p[256], *body = cJSON_PrintUnformatted(it);
        long st = -1;
        double was = -1;  /* the version before the PUT, if it has one */
        if (cJSON_IsString(id) && myna_is_slug(id->valuestring) && body) {
            snprintf(p, sizeof(p), "/admin/whatsapp/instances/%s", id->valuestring);
            if (myna_api_call(a, "GET", p, NULL) == 200)
                was = version_of(a->resp.data);
            st = myna_api_call(a, "PUT", p, body);
            if (st == 404)  /* new here */
                st = myna_api_call(a, "POST", "/admin/whatsapp/instances", body);
        } else if (body) {
            st = myna_api_call(a, "POST", "/admin/whatsapp/instances", body);
        }
        free(body);
        if (st != 200 && st != 201) {
            myna_api_print_error(a, cJSON_IsString(id) ? id->valuestring : "instance", st, err);
            rc = 1;
        } else {
            /* the server's id: one made from the name when the file gave none */
            cJSON *ans = cJSON_Parse(a->resp.data);
            const cJSON *made = cJSON_GetObjectItemCaseSensitive(ans, "id"),
                        *now = cJSON_GetObjectItemCaseSensitive(ans, "version");
            /* a PUT that changed nothing left the version as it was */
            fprintf(out, "%s ", st == 201 ? "created"
                                : was >= 1 && cJSON_IsNumber(now) && now->valuedouble == was
                                    ? "unchanged"
                                    : "updated");
            myna_api_put_text(out, cJSON_IsString(made) ? made->valuestring
                                   : cJSON_IsString(id) ? id->valuestring
                                                        : "", 0);
            fputc('\n', out);
            cJSON_Delete(ans);
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* How the commands find the admin API, in every usage text. */
#define REACH "       (--admin ADDR:PORT, MYNA_ADMIN or --config FILE; --token TOKEN or MYNA_TOKEN)\n"

void myna_cli_instance_usage(FILE *f)
{
    fprintf(f, "usage: myna instance list | show ID | create FILE | start|stop|restart ID |\n"
               "                     export [--with-secrets] [ID...] | import FILE\n" REACH);
}

void myna_cli_token_usage(FILE *f)
{
    fprintf(f, "usage: myna token create [--role guest|user|admin] [--name NAME]\n" REACH
               "       myna token recover [--user NAME] [--name NAME] [--enable] "
               "[--data DIR | --config FILE]\n"
               "       (on the host, as the server's user: a new admin token from its data)\n");
}

static int usage(FILE *err)
{
    myna_cli_instance_usage(err);
    return 2;
}

int myna_cli_instance(int argc, char **argv, const char *admin_url, const char *token, FILE *out,
                      FILE *err)
{
    struct myna_api a;
    const char *verb = argc > 0 ? argv[0] : "";
    char path[256];
    long st;
    int rc = 1, ids;

    if (argc < 1)
        return usage(err);
    /* an ID that no instance can have is a usage error, as a wrong verb is */
    ids = strcmp(verb, "show") == 0 || strcmp(verb, "start") == 0 || strcmp(verb, "stop") == 0 ||
          strcmp(verb, "restart") == 0;
    for (int i = 1; i < argc; i++)
        if ((ids || (strcmp(verb, "export") == 0 && strcmp(argv[i], "--with-secrets") != 0)) &&
            not_an_id(argv[i], err))
            return 2;
    if (myna_api_init(&a, admin_url, token) != 0) {
        fprintf(err, "myna: cannot start libcurl\n");
        return 1;
    }
    if (strcmp(verb, "list") == 0 && argc == 1) {
        rc = list(&a, out, err);
    } else if (strcmp(verb, "show") == 0 && argc == 2) {
        cJSON *o = fetch(&a, argv[1], 0, err);
        rc = o == NULL;
        if (o)
            print_json(out, a.resp.data);
        cJSON_Delete(o);
    } else if (strcmp(verb, "create") == 0 && argc == 2) {
        size_t len;
        char *body = read_all(argv[1], &len, err);
        if (body && memchr(body, '\0', len) != NULL) {  /* the request would end at it */
            fputs("myna: '", err);
            myna_api_put_text(err, argv[1], 0);
            fputs("' holds a NUL byte: it is not a JSON instance\n", err);
            free(body);
            body = NULL;
        }
        if (body && (st = myna_api_call(&a, "POST", "/admin/whatsapp/instances", body)) == 201) {
            print_json(out, a.resp.data);
            rc = 0;
        } else if (body) {
            myna_api_print_error(&a, "instance create", st, err);
        }
        free(body);
    } else if ((strcmp(verb, "start") == 0 || strcmp(verb, "stop") == 0 ||
                strcmp(verb, "restart") == 0) &&
               argc == 2) {
        snprintf(path, sizeof(path), "/admin/whatsapp/instances/%s/%s", argv[1], verb);
        if ((st = myna_api_call(&a, "POST", path, "")) == 200) {
            fprintf(out, "%s: %s\n", argv[1], verb);
            rc = 0;
        } else {
            myna_api_print_error(&a, argv[1], st, err);
        }
    } else if (strcmp(verb, "export") == 0) {
        rc = export(&a, argc - 1, argv + 1, out, err);
    } else if (strcmp(verb, "import") == 0 && argc == 2) {
        rc = import(&a, argv[1], out, err);
    } else {
        rc = usage(err);
    }
    myna_api_release(&a);
    return rc;
}

int myna_cli_token(int argc, char **argv, const char *admin_url, const char *token, FILE *out,
                   FILE *err)
{
    struct myna_api a;
    cJSON *body, *r;
    const cJSON *t;
    const char *role = NULL, *name = "cli";
    char *text;
    long st;
    int rc = 1;

    if (argc < 1 || strcmp(argv[0], "create") != 0)
        goto bad;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else
            goto bad;
    }
    if (myna_api_init(&a, admin_url, token) != 0) {
        fprintf(err, "myna: cannot start libcurl\n");
        return 1;
    }
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "name", name);
    if (role)
        cJSON_AddStringToObject(body, "role", role);
    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (text && (st = myna_api_call(&a, "POST", "/admin/tokens", text)) == 201) {
        r = cJSON_Parse(a.resp.data);
        t = cJSON_GetObjectItemCaseSensitive(r, "token");
        if (cJSON_IsString(t)) {
            /* shown once: the server keeps a hash. A real token has no
             * control character: one is the server's, not to be obeyed */
            myna_api_put_text(out, t->valuestring, 0);
            fputc('\n', out);
            rc = 0;
        } else {
            myna_api_print_bad_answer(&a, "token create", err);
        }
        cJSON_Delete(r);
    } else if (text) {
        myna_api_print_error(&a, "token create", st, err);
    }
    free(text);
    myna_api_release(&a);
    return rc;
bad:
    myna_cli_token_usage(err);
    return 2;
}
