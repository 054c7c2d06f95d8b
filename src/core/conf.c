/* conf.c - loading and validating the options of conf_table.c. */
#include "core/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/banned.h"

#define CONF_FILE_MAX (1 << 20)
#define CONF_VALUE_MAX 4096

static const struct myna_opt *opt_find(const char *name, size_t len)
{
    for (const struct myna_opt *o = myna_opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* "--max-body-bytes" names the option max_body_bytes */
static const struct myna_opt *opt_find_flag(const char *flag, size_t len)
{
    char name[64];

    if (len >= sizeof(name))
        return NULL;
    for (size_t i = 0; i < len; i++)
        name[i] = flag[i] == '-' ? '_' : flag[i];
    name[len] = '\0';
    return opt_find(name, len);
}

static int parse_size(const char *s, int64_t *out)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (shift) {
        end++;
        if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0 || strcmp(end, "b") == 0)
            end += strlen(end);
    }
    if (*end != '\0' || v > (unsigned long long)INT64_MAX >> shift)
        return -1;
    *out = (int64_t)(v << shift);
    return 0;
}

/* Why url (not empty) is no URL libcurl can call, or NULL: without a host
 * or with a space it fails every request, which for alert_webhook is found
 * out only when an alert is due. */
static const char *url_problem(const char *url)
{
    const char *host;

    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else
        return "is not an http:// or https:// URL";
    if (*host == '\0' || strchr("/:?#@", *host) != NULL)
        return "has no host after the scheme";
    if (strchr(url, ' ') != NULL)
        return "has a space (write it as %20)";
    return NULL;
}

int myna_opt_is_text(const struct myna_opt *o)
{
    return o->type == MYNA_OPT_STR || o->type == MYNA_OPT_ADDR || o->type == MYNA_OPT_URL;
}

int myna_conf_set(struct myna_conf *conf, const char *name, const char *value,
                  const char *origin, struct myna_err *err)
{
    const struct myna_opt *o = opt_find(name, strlen(name));
    char *base = (char *)conf;
    char host[256];
    int64_t v = 0;
    int port;

    if (o == NULL)  /* printed with its control characters as '?' (main.c) */
        return myna_err_set(err, MYNA_ECONFIG, "%s: unknown option '%s'", origin, name);
    if (strlen(value) > CONF_VALUE_MAX)
        return myna_err_set(err, MYNA_ECONFIG, "%s: option '%s': value too long", origin, name);
    for (size_t i = 0, n = strlen(value); i < n; i++)
        if (myna_control_len((const unsigned char *)value + i, n - i) != 0)
            return myna_err_set(err, MYNA_ECONFIG,
                                "%s: option '%s': control characters are not allowed", origin,
                                name);
    switch (o->type) {
    case MYNA_OPT_ADDR:
        if (myna_split_hostport(value, host, sizeof(host), &port) != 0)
            return myna_err_set(err, MYNA_ECONFIG,
                                "%s: option '%s': '%s' is not ADDR:PORT (e.g. 127.0.0.1:8080 or "
                                "[::1]:8080)",
                                origin, name, value);
        /* fall through */
    case MYNA_OPT_URL:
        /* a URL may carry a secret (alert_webhook's token) and this message
         * is printed and logged (a reload): it never quotes the value */
        if (o->type == MYNA_OPT_URL && value[0]) {
            const char *why = url_problem(value);
            if (why != NULL)
                return myna_err_set(err, MYNA_ECONFIG,
                                    "%s: option '%s': the value %s (not shown: it may hold a "
                                    "secret)",
                                    origin, name, why);
        }
        /* fall through */
    case MYNA_OPT_STR: {
        char **slot = (char **)(base + o->off);
        char *copy;
        /* an empty data directory would put the stores and the key at "/" */
        if (o->type == MYNA_OPT_STR && o->min > 0 && value[0] == '\0')
            return myna_err_set(err, MYNA_ECONFIG, "%s: option '%s' cannot be empty", origin,
                                name);
        copy = strdup(value);
        if (copy == NULL)
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        free(*slot);
        *slot = copy;
        return MYNA_OK;
    }
    case MYNA_OPT_INT:
        if (myna_parse_i64(value, o->min, o->max, &v) != 0)
            return myna_err_set(err, MYNA_ECONFIG,
                                "%s: option '%s': '%s' is not a whole number from %lld to %lld",
                                origin, name, value, (long long)o->min, (long long)o->max);
        break;
    case MYNA_OPT_SIZE:
        if (parse_size(value, &v) != 0 || v < o->min || v > o->max)
            return myna_err_set(err, MYNA_ECONFIG,
                                "%s: option '%s': '%s' is not a size from %lld to %lld bytes "
                                "(suffixes k, m, g allowed)",
                                origin, name, value, (long long)o->min, (long long)o->max);
        break;
    case MYNA_OPT_ENUM:
        for (v = 0; o->choices[v]; v++)
            if (strcmp(o->choices[v], value) == 0)
                break;
        if (o->choices[v] == NULL) {
            struct myna_buf b = MYNA_BUF_INIT(512);
            for (int i = 0; o->choices[i]; i++)
                myna_buf_printf(&b, "%s%s", i ? ", " : "", o->choices[i]);
            myna_err_set(err, MYNA_ECONFIG, "%s: option '%s': '%s' is not one of: %s", origin,
                         name, value, b.data ? b.data : "");
            myna_buf_release(&b);
            return MYNA_ECONFIG;
        }
        break;
    }
    *(int64_t *)(base + o->off) = v;
    return MYNA_OK;
}

static char *trim(char *s, char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return s;
}

int myna_conf_parse_text(struct myna_conf *conf, const char *text, size_t len,
                         const char *origin, struct myna_err *err)
{
    char where[320];
    char *copy, *line, *next;
    int lineno = 0, rc = MYNA_OK;

    if (len > CONF_FILE_MAX)
        return myna_err_set(err, MYNA_ECONFIG, "%s: larger than %d bytes", origin, CONF_FILE_MAX);
    if (memchr(text, '\0', len) != NULL)
        return myna_err_set(err, MYNA_ECONFIG, "%s: contains a NUL byte", origin);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {  /* a UTF-8 byte order mark */
        text += 3;
        len -= 3;
    }
    copy = malloc(len + 1);
    if (copy == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    for (line = copy; line != NULL && rc == MYNA_OK; line = next) {
        char *eq, *key, *val, *end;

        next = strchr(line, '\n');
        end = next ? next : line + strlen(line);
        if (next)
            next++;
        lineno++;
        key = trim(line, end);
        if (*key == '\0' || *key == '#')
            continue;
        snprintf(where, sizeof(where), "%s:%d", origin, lineno);
        eq = strchr(key, '=');
        if (eq == NULL) {
            rc = myna_err_set(err, MYNA_ECONFIG, "%s: expected 'name = value'", where);
            break;
        }
        val = trim(eq + 1, eq + 1 + strlen(eq + 1));
        key = trim(key, eq);
        /* a value may be quoted to keep leading or trailing spaces */
        if (strlen(val) >= 2 && val[0] == '"' && val[strlen(val) - 1] == '"') {
            val[strlen(val) - 1] = '\0';
            val++;
        }
        if (strcmp(key, "config") == 0)
            rc = myna_err_set(err, MYNA_ECONFIG, "%s: 'config' cannot be set in a config file",
                              where);
        else
            rc = myna_conf_set(conf, key, val, where, err);
    }
    free(copy);
    return rc;
}

/* Reads the config file at path into b. Like the key file (secret.c), it is
 * opened with O_NONBLOCK: a FIFO in its place (or a shell's /dev/fd/N) would
 * otherwise wait for a writer, at start or on the master's loop at a
 * SIGHUP; anything but a regular file is refused instead. O_NONBLOCK does
 * not change reads from a regular file. */
static int read_file(const char *path, struct myna_buf *b, struct myna_err *err)
{
    int rc = myna_buf_read_file(b, path, err);

    if (rc == MYNA_OK)
        return rc;
    if (rc == MYNA_ETOOBIG)
        rc = MYNA_ECONFIG;  /* a bad setting, not a bad request */
    if (err) {
        err->code = rc;
        myna_err_prefix(err, "config file '%s'", path);
    }
    return rc;
}

static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

static int passthrough_index(const char *const *passthrough, const char *arg)
{
    for (int i = 0; passthrough && passthrough[i]; i++)
        if (strcmp(passthrough[i], arg) == 0)
            return i;
    return -1;
}

/* Whether the first n bytes of arg are one of the passthrough flags, which
 * take no value: "--check-config=1" is that flag given a value, not an
 * unknown flag. */
static int passthrough_has(const char *const *passthrough, const char *arg, size_t n)
{
    for (int i = 0; passthrough && passthrough[i]; i++)
        if (strlen(passthrough[i]) == n && strncmp(passthrough[i], arg, n) == 0)
            return 1;
    return 0;
}

/* Finds --config in argv (it decides which file is read first); the last
 * one wins, as for every other flag. argv is walked as load_flags walks it,
 * so the value of another flag ("--data --config=x") is never taken for
 * --config. */
static const char *flag_config(int argc, char **argv, const char *const *passthrough)
{
    const char *path = NULL;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (passthrough_index(passthrough, arg) >= 0 || strncmp(arg, "--", 2) != 0)
            continue;
        if (strncmp(arg, "--config=", 9) == 0) {
            path = arg + 9;
        } else if (strchr(arg, '=') == NULL && i + 1 < argc) {
            if (strcmp(arg, "--config") == 0)
                path = argv[i + 1];
            i++;  /* the flag's value */
        }
    }
    return path;
}

static int load_flags(struct myna_conf *conf, int argc, char **argv,
                      const char *const *passthrough, unsigned *seen, struct myna_err *err)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *eq, *value;
        const struct myna_opt *o;
        char where[96];
        int pi = passthrough_index(passthrough, arg);

        if (pi >= 0) {
            if (seen)
                *seen |= 1u << pi;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return myna_err_set(err, MYNA_ECONFIG, "unexpected argument '%s'", arg);
        eq = strchr(arg, '=');
        o = opt_find_flag(arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        if (o == NULL && eq && passthrough_has(passthrough, arg, (size_t)(eq - arg)))
            return myna_err_set(err, MYNA_ECONFIG, "flag '%.*s' takes no value",
                                (int)(eq - arg), arg);
        if (o == NULL)
            return myna_err_set(err, MYNA_ECONFIG, "unknown flag '%.*s' (see --help)",
                                eq ? (int)(eq - arg) : (int)strlen(arg), arg);
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return myna_err_set(err, MYNA_ECONFIG, "flag '%s' needs a value", arg);
        }
        snprintf(where, sizeof(where), "flag --%s", o->name);
        for (char *c = where; *c; c++)
            if (*c == '_')
                *c = '-';
        if (myna_conf_set(conf, o->name, value, where, err) != MYNA_OK)
            return err ? err->code : MYNA_ECONFIG;
    }
    return MYNA_OK;
}

int myna_conf_load(struct myna_conf *conf, int argc, char **argv, char **envp,
                   const char *const *passthrough, unsigned *seen, struct myna_err *err)
{
    const char *path, *path_origin;
    int rc;

    memset(conf, 0, sizeof(*conf));
    if (seen)
        *seen = 0;
    for (const struct myna_opt *o = myna_opts; o->name; o++)
        if ((rc = myna_conf_set(conf, o->name, o->def, "default", err)) != MYNA_OK)
            goto fail;
    path = flag_config(argc, argv, passthrough);
    path_origin = "flag --config";
    if (path == NULL) {
        path = env_get(envp, "MYNA_CONFIG");
        path_origin = "environment MYNA_CONFIG";
    }
    if (path != NULL && path[0] != '\0') {
        struct myna_buf b = MYNA_BUF_INIT(CONF_FILE_MAX);
        if ((rc = myna_conf_set(conf, "config", path, path_origin, err)) == MYNA_OK &&
            (rc = read_file(path, &b, err)) == MYNA_OK) {
            char origin[4200];
            snprintf(origin, sizeof(origin), "config file '%s'", path);
            rc = myna_conf_parse_text(conf, b.data ? b.data : "", b.len, origin, err);
        }
        myna_buf_release(&b);
        if (rc != MYNA_OK)
            goto fail;
    }
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        const char *v = env_get(envp, o->env);
        char where[96];
        if (v == NULL || strcmp(o->name, "config") == 0)
            continue;
        snprintf(where, sizeof(where), "environment %s", o->env);
        if ((rc = myna_conf_set(conf, o->name, v, where, err)) != MYNA_OK)
            goto fail;
    }
    if ((rc = load_flags(conf, argc, argv, passthrough, seen, err)) != MYNA_OK)
        goto fail;
    return MYNA_OK;
fail:
    myna_conf_release(conf);
    return rc;
}

/* An address literal of host: its family and bytes (v[16]), or 0 for a
 * name. A wildcard sets *any. */
static int addr_of(const char *host, unsigned char v[16], int *any)
{
    static const unsigned char zero[16];
    int af = inet_pton(AF_INET, host, v) == 1    ? AF_INET
             : inet_pton(AF_INET6, host, v) == 1 ? AF_INET6
                                                 : 0;

    *any = af != 0 && memcmp(v, zero, af == AF_INET ? 4 : 16) == 0;
    return af;
}

int myna_conf_check_listeners(const struct myna_conf *conf, struct myna_err *err)
{
    char ph[256], ah[256];
    unsigned char pv[16], av[16];
    int pp, ap, pf, af, pany, aany, clash;

    if (myna_split_hostport(conf->public_addr, ph, sizeof(ph), &pp) != 0 ||
        myna_split_hostport(conf->admin_addr, ah, sizeof(ah), &ap) != 0 || pp != ap || pp == 0)
        return MYNA_OK;  /* port 0: each gets a free port of its own */
    pf = addr_of(ph, pv, &pany);
    af = addr_of(ah, av, &aany);
    if (pf == 0 || af == 0)  /* a name: the same name, or the start will say */
        clash = pf == af && strcasecmp(ph, ah) == 0;
    else  /* "[::]" may take IPv4 too, or not (bindv6only): left to the start */
        clash = pf == af && (pany || aany || memcmp(pv, av, pf == AF_INET ? 4 : 16) == 0);
    if (!clash)
        return MYNA_OK;
    return myna_err_set(err, MYNA_ECONFIG,
                        "options 'public' ('%s') and 'admin' ('%s') name the same port on the "
                        "same address: give the two listeners different ports",
                        conf->public_addr, conf->admin_addr);
}

void myna_conf_release(struct myna_conf *conf)
{
    char *base = (char *)conf;

    for (const struct myna_opt *o = myna_opts; o->name; o++)
        if (myna_opt_is_text(o))
            free(*(char **)(base + o->off));
    memset(conf, 0, sizeof(*conf));
}

void myna_conf_value_text(const struct myna_conf *conf, const struct myna_opt *o, char *buf,
                          size_t cap)
{
    const char *base = (const char *)conf;
    int64_t v;

    switch (o->type) {
    case MYNA_OPT_STR:
    case MYNA_OPT_ADDR:
    case MYNA_OPT_URL: {
        const char *s = *(char *const *)(base + o->off);
        snprintf(buf, cap, "%s", s ? s : "");
        return;
    }
    case MYNA_OPT_ENUM:
        v = *(const int64_t *)(base + o->off);
        snprintf(buf, cap, "%s", o->choices[v]);
        return;
    default:
        snprintf(buf, cap, "%lld", (long long)*(const int64_t *)(base + o->off));
    }
}

void myna_conf_dump(const struct myna_conf *conf, FILE *out)
{
    char v[CONF_VALUE_MAX + 1];

    fprintf(out, "# effective Myna settings\n");
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        if (strcmp(o->name, "config") == 0)
            continue;
        myna_conf_value_text(conf, o, v, sizeof(v));
        /* strings quoted, so that spaces and quotes at either end survive */
        if (myna_opt_is_text(o))
            fprintf(out, "%s = \"%s\"\n", o->name, v);
        else
            fprintf(out, "%s = %s\n", o->name, v);
    }
}

static void flag_name(const struct myna_opt *o, char *buf, size_t cap)
{
    snprintf(buf, cap, "--%s", o->name);
    for (char *c = buf; *c; c++)
        if (*c == '_')
            *c = '-';
}

void myna_conf_help(FILE *out)
{
    char flag[80];

    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        flag_name(o, flag, sizeof(flag));
        fprintf(out, "  %s %s\n      %s\n      env %s, default '%s'%s\n", flag, o->metavar,
                o->help, o->env, o->def,
                o->reload == MYNA_RELOAD_SIGHUP ? ", reloaded on SIGHUP" : "");
    }
}

/* s in a Markdown table cell: '|' ends a cell even inside a code span, and
 * outside one "<instance>" is an HTML tag that the page would not show. */
static void md_cell(FILE *out, const char *s, int code)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '<' && !code)
            fputs("&lt;", out);
        else
            fputc(*s, out);
    }
}

void myna_conf_markdown(FILE *out)
{
    char flag[80];

    fprintf(out, "# Configuration\n\n"
                 "Generated by `myna serve --help-markdown` from the option table "
                 "(`src/core/conf_table.c`); a test keeps this page equal to it.\n\n"
                 "Each option can be set in the config file (`name = value`), in the "
                 "environment, or as a flag. Flags override the environment, which "
                 "overrides the file. Sizes accept `k`, `m`, `g` suffixes.\n\n"
                 "| option | flag | environment | default | what it does |\n"
                 "|---|---|---|---|---|\n");
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        flag_name(o, flag, sizeof(flag));
        fprintf(out, "| `%s` | `%s ", o->name, flag);
        md_cell(out, o->metavar, 1);
        fprintf(out, "` | `%s` | ", o->env);
        /* "``" is not an empty code span: the page would show two backticks */
        if (o->def[0]) {
            fputc('`', out);
            md_cell(out, o->def, 1);
            fputs("` | ", out);
        } else {
            fputs("(empty) | ", out);
        }
        md_cell(out, o->help, 0);
        fprintf(out, "%s |\n", o->reload == MYNA_RELOAD_SIGHUP ? " Reloaded on SIGHUP." : "");
    }
}
