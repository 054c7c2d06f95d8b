/* test_conf.c - the option table and the loader of conf.h: defaults, the
 * config file (comments, blanks, spacing, quoting, bad lines named by
 * file:line), environment over file, flags over environment (--flag value and
 * --flag=value, dashes for underscores), validation of every type with the
 * option and its origin in the message, passthrough flags, --config against
 * MYNA_CONFIG, and the generated outputs (dump re-parses to the same values,
 * help and Markdown name every option). envp is always passed explicitly:
 * nothing here reads the real environment. Files go to a mkdtemp directory. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"

#include "core/conf.h"
#include "core/banned.h"

struct fix {
    char dir[64];
    char path[128]; /* dir/myna.conf, written by put() */
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (test_tmpdir(f->dir, sizeof(f->dir), "test-conf") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/myna.conf", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    int rc = test_rmtree(f->dir);

    free(f);
    return rc;
}

/* ---- helpers ---- */

static const char *const no_env[] = { NULL };

static void put_bytes(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void put(const struct fix *f, const char *text)
{
    put_bytes(f->path, text, strlen(text));
}

/* myna_conf_load with NULL-terminated args and env. */
static int load_pt(struct myna_conf *c, const char *const *args, const char *const *env,
                   const char *const *passthrough, unsigned *seen, struct myna_err *err)
{
    int argc = 0;

    while (args && args[argc])
        argc++;
    return myna_conf_load(c, argc, (char **)args, (char **)env, passthrough, seen, err);
}

static int load(struct myna_conf *c, const char *const *args, const char *const *env,
                struct myna_err *err)
{
    return load_pt(c, args, env, NULL, NULL, err);
}

/* Loads and fails the test with the message if that fails. */
static void load_ok(struct myna_conf *c, const char *const *args, const char *const *env)
{
    struct myna_err err = MYNA_ERR_INIT;

    if (load(c, args, env, &err) != MYNA_OK)
        fail_msg("load failed: %s", err.msg);
    assert_int_equal(err.code, 0); /* untouched on success */
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* Loading fails with MYNA_ECONFIG (or code), a message holding every part,
 * and a zeroed conf. */
static void load_fails(const char *const *args, const char *const *env, int code,
                       const char *part1, const char *part2)
{
    struct myna_conf c, zero;
    struct myna_err err = MYNA_ERR_INIT;

    memset(&zero, 0, sizeof(zero));
    assert_int_equal(load(&c, args, env, &err), code);
    assert_int_equal(err.code, code);
    if (part1)
        assert_contains(err.msg, part1);
    if (part2)
        assert_contains(err.msg, part2);
    assert_memory_equal(&c, &zero, sizeof(c));
}

static char *dump_text(const struct myna_conf *c, size_t *len)
{
    char *s = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&s, &n);

    assert_non_null(fp);
    myna_conf_dump(c, fp);
    assert_int_equal(fclose(fp), 0);
    if (len)
        *len = n;
    return s;
}

static const struct myna_opt *opt(const char *name)
{
    for (const struct myna_opt *o = myna_opts; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    fail_msg("no option '%s'", name);
    return NULL;
}

/* Compares every option but 'config' (which dump leaves out); describes the
 * first difference in why. 0 when equal. */
static int conf_diff(const struct myna_conf *a, const struct myna_conf *b, char *why, size_t cap)
{
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        const char *pa = (const char *)a + o->off, *pb = (const char *)b + o->off;
        if (strcmp(o->name, "config") == 0)
            continue;
        if (myna_opt_is_text(o)) {
            const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
            if (strcmp(sa ? sa : "", sb ? sb : "") != 0) {
                snprintf(why, cap, "%s: '%.200s' became '%.200s'", o->name, sa, sb);
                return 1;
            }
        } else if (*(const int64_t *)pa != *(const int64_t *)pb) {
            snprintf(why, cap, "%s: %lld became %lld", o->name, (long long)*(const int64_t *)pa,
                     (long long)*(const int64_t *)pb);
            return 1;
        }
    }
    return 0;
}

/* dump(c) parsed into a fresh default conf; 0 and "" in why if all equal. */
static int round_trip(const struct myna_conf *c, char *why, size_t cap)
{
    struct myna_conf back;
    struct myna_err err = MYNA_ERR_INIT;
    size_t len;
    char *text = dump_text(c, &len);
    int rc;

    why[0] = '\0';
    load_ok(&back, NULL, no_env);
    rc = myna_conf_parse_text(&back, text, len, "dump", &err);
    if (rc != MYNA_OK)
        snprintf(why, cap, "dump does not parse: %.400s", err.msg);
    else
        rc = conf_diff(c, &back, why, cap);
    myna_conf_release(&back);
    free(text);
    return rc;
}

/* ---- the table ---- */

static void test_conf_table_is_sane(void **state)
{
    size_t n = 0;

    (void)state;
    for (const struct myna_opt *o = myna_opts; o->name; o++, n++) {
        char env[80];
        size_t i;

        snprintf(env, sizeof(env), "MYNA_");
        for (i = 0; o->name[i] && i + 6 < sizeof(env); i++)
            env[5 + i] = (char)(o->name[i] >= 'a' && o->name[i] <= 'z' ? o->name[i] - 32
                                                                       : o->name[i]);
        env[5 + i] = '\0';
        assert_non_null(o->env);
        assert_string_equal(o->env, env); /* MYNA_ + the name in capitals */
        assert_non_null(o->def);
        assert_non_null(o->metavar);
        assert_non_null(o->help);
        assert_true(strlen(o->help) > 10);
        assert_true(strlen(o->name) < 60);
        assert_null(strchr(o->help, '|')); /* would break the Markdown table */
        if (o->type == MYNA_OPT_INT || o->type == MYNA_OPT_SIZE)
            assert_true(o->min <= o->max);
        if (o->type == MYNA_OPT_ENUM) {
            assert_non_null(o->choices);
            assert_non_null(o->choices[0]);
        }
        for (const struct myna_opt *p = myna_opts; p < o; p++)
            assert_string_not_equal(p->name, o->name);
    }
    assert_int_equal(n, 24);
}

/* ---- defaults ---- */

static void test_conf_defaults(void **state)
{
    struct myna_conf c;

    (void)state;
    load_ok(&c, NULL, no_env);
    assert_string_equal(c.config, "");
    assert_string_equal(c.public_addr, "127.0.0.1:8080");
    assert_string_equal(c.admin_addr, "127.0.0.1:8081");
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.instances, "");
    assert_int_equal(c.log_level, 2); /* info */
    assert_string_equal(c.log_file, "");
    assert_int_equal(c.max_body_bytes, 3145728);
    assert_int_equal(c.store_sync, 0); /* full */
    assert_int_equal(c.commit_max_records, 4096);
    assert_int_equal(c.max_pending, 20000);
    assert_int_equal(c.http_timeout_s, 30);
    assert_int_equal(c.drain_timeout_ms, 5000);
    assert_int_equal(c.bot_max_memory_mb, 500);
    assert_int_equal(c.bot_heartbeat_timeout_ms, 30000);
    assert_int_equal(c.login_token_ttl_s, 30 * 86400);
    assert_int_equal(c.audit_keep_days, 365);
    myna_conf_release(&c);
    assert_null(c.data_dir);
    assert_int_equal(c.max_pending, 0);
}

static void test_conf_null_envp_and_argv(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_int_equal(myna_conf_load(&c, 0, NULL, NULL, NULL, NULL, &err), MYNA_OK);
    assert_string_equal(c.data_dir, "./var");
    myna_conf_release(&c);
}

static void test_conf_unrelated_env_ignored(void **state)
{
    struct myna_conf c;
    const char *const env[] = { "PATH=/bin",     "MYNA_DATAX=/nope", "MYNA_DAT=/nope",
                                "XMYNA_DATA=/n", "MYNA_DATA",        "HOME=/root",
                                NULL };

    (void)state;
    load_ok(&c, NULL, env);
    assert_string_equal(c.data_dir, "./var");
    myna_conf_release(&c);
}

/* ---- the file ---- */

/* A flag's value that looks like --config=FILE is that flag's value: the
 * file is not read. */
static void test_conf_config_only_as_a_flag(void **state)
{
    struct fix *f = *state;
    struct myna_conf c;
    char arg[200];
    const char *const args[] = { "--data", arg, NULL };
    const char *const last[] = { "--log-file", "--config", "--config", arg, NULL };

    put(f, "log_level = debug\n");
    snprintf(arg, sizeof(arg), "--config=%s", f->path);
    load_ok(&c, args, NULL);
    assert_string_equal(c.data_dir, arg);
    assert_int_equal(c.log_level, 2); /* info */
    assert_string_equal(c.config, "");
    myna_conf_release(&c);
    /* "--config" as the value of --log-file, then a real --config */
    snprintf(arg, sizeof(arg), "%s", f->path);
    load_ok(&c, last, NULL);
    assert_string_equal(c.log_file, "--config");
    assert_string_equal(c.config, f->path);
    assert_int_equal(c.log_level, 3); /* debug */
    myna_conf_release(&c);
}

static void test_conf_file_parsing(void **state)
{
    struct fix *f = *state;
    struct myna_conf c;
    const char *const args[] = { "--config", f->path, NULL };

    put(f, "# a comment\n"
           "\n"
           "   \n"
           "data=/srv/myna\n"
           "  public   =   0.0.0.0:9000   \n"
           "\t# indented comment\n"
           "log_file = \"  spaced.log  \"\n"
           "instances =\n"
           "log_level = debug\r\n"
           "store_sync\t=\tnormal\n"
           "max_body_bytes = 64k\n"
           "commit_max_records = 10\n"
           "admin = \"127.0.0.1:7000\"\n"
           "http_timeout_s = 5"); /* no final newline */
    load_ok(&c, args, no_env);
    assert_string_equal(c.config, f->path);
    assert_string_equal(c.data_dir, "/srv/myna");
    assert_string_equal(c.public_addr, "0.0.0.0:9000");
    assert_string_equal(c.log_file, "  spaced.log  ");
    assert_string_equal(c.instances, "");
    assert_int_equal(c.log_level, 3);
    assert_int_equal(c.store_sync, 1);
    assert_int_equal(c.max_body_bytes, 65536);
    assert_int_equal(c.commit_max_records, 10);
    assert_string_equal(c.admin_addr, "127.0.0.1:7000");
    assert_int_equal(c.http_timeout_s, 5);
    assert_int_equal(c.max_pending, 20000); /* untouched: default */
    myna_conf_release(&c);
}

static void test_conf_file_quotes(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = "log_file = \"\"\n"       /* empty */
                       "data = \"\n"              /* a lone quote stays */
                       "instances = \"a\"b\"\n";  /* outer quotes only */

    (void)state;
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_parse_text(&c, text, strlen(text), "t", &err), MYNA_OK);
    assert_string_equal(c.log_file, "");
    assert_string_equal(c.data_dir, "\"");
    assert_string_equal(c.instances, "a\"b");
    myna_conf_release(&c);
}

static void test_conf_file_later_line_wins(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = "data = /a\ndata = /b\nmax_pending = 5\nmax_pending = 6\n";

    (void)state;
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_parse_text(&c, text, strlen(text), "t", &err), MYNA_OK);
    assert_string_equal(c.data_dir, "/b"); /* and "/a" freed: ASan checks */
    assert_int_equal(c.max_pending, 6);
    myna_conf_release(&c);
}

/* A file saved by an editor that writes a UTF-8 byte order mark: the mark
 * is not part of the first name; only at the very start is it skipped. */
static void test_conf_file_bom_skipped(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = "\xEF\xBB\xBF" "data = /bom\r\nmax_pending = 7\r\n";
    const char *late = "data = /x\n\xEF\xBB\xBF" "max_pending = 8\n";

    (void)state;
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_parse_text(&c, text, strlen(text), "t", &err), MYNA_OK);
    assert_string_equal(c.data_dir, "/bom");
    assert_int_equal(c.max_pending, 7);
    assert_int_equal(myna_conf_parse_text(&c, late, strlen(late), "t", &err), MYNA_ECONFIG);
    assert_non_null(strstr(err.msg, "t:2: unknown option"));
    myna_conf_release(&c);
}

static void test_conf_file_unknown_key(void **state)
{
    struct fix *f = *state;
    const char *const args[] = { "--config", f->path, NULL };
    char where[200];

    put(f, "# header\ndata = /x\nmax_body = 3m\n");
    snprintf(where, sizeof(where), "config file '%s':3: unknown option 'max_body'", f->path);
    load_fails(args, no_env, MYNA_ECONFIG, where, NULL);
}

/* A config path that is no path is said to come from where it came. */
static void test_conf_config_path_origin(void **state)
{
    const char *const args[] = { "--config", "a\tb", NULL };
    const char *const env[] = { "MYNA_CONFIG=c\x01d", NULL };

    (void)state;
    load_fails(args, no_env, MYNA_ECONFIG, "flag --config: option 'config'", NULL);
    load_fails(NULL, env, MYNA_ECONFIG, "environment MYNA_CONFIG: option 'config'", NULL);
}

static void test_conf_file_missing_equals(void **state)
{
    struct fix *f = *state;
    const char *const args[] = { "--config", f->path, NULL };
    char where[200];

    put(f, "data = /x\n\nlog_level debug\n");
    snprintf(where, sizeof(where), "'%s':3: expected 'name = value'", f->path);
    load_fails(args, no_env, MYNA_ECONFIG, where, NULL);
}

static void test_conf_file_empty_key(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = " = value\n";

    (void)state;
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_parse_text(&c, text, strlen(text), "f", &err), MYNA_ECONFIG);
    assert_contains(err.msg, "f:1:");
    myna_conf_release(&c);
}

static void test_conf_file_config_refused(void **state)
{
    struct fix *f = *state;
    const char *const args[] = { "--config", f->path, NULL };
    char where[200];

    put(f, "data = /x\nconfig = /etc/other.conf\n");
    snprintf(where, sizeof(where), "'%s':2: 'config' cannot be set in a config file", f->path);
    load_fails(args, no_env, MYNA_ECONFIG, where, NULL);
}

static void test_conf_file_nul_refused(void **state)
{
    struct fix *f = *state;
    const char *const args[] = { "--config", f->path, NULL };
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;

    put_bytes(f->path, "data = /x\0y\n", 12);
    load_fails(args, no_env, MYNA_ECONFIG, f->path, "contains a NUL byte");
    /* the same through parse_text */
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_parse_text(&c, "data = a\n\0", 10, "t", &err), MYNA_ECONFIG);
    assert_contains(err.msg, "NUL");
    assert_string_equal(c.data_dir, "./var"); /* nothing applied */
    myna_conf_release(&c);
}

static void test_conf_file_empty_ok(void **state)
{
    struct fix *f = *state;
    const char *const args[] = { "--config", f->path, NULL };
    struct myna_conf c;

    put(f, "");
    load_ok(&c, args, no_env);
    assert_string_equal(c.config, f->path);
    assert_string_equal(c.data_dir, "./var");
    myna_conf_release(&c);
}

static void test_conf_file_too_large(void **state)
{
    struct fix *f = *state;
    const char *const args[] = { "--config", f->path, NULL };
    FILE *fp = fopen(f->path, "wb");

    assert_non_null(fp);
    for (int i = 0; i < (1 << 20) / 16 + 1; i++)
        assert_int_equal(fputs("# 16 bytes line\n", fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    load_fails(args, no_env, MYNA_ECONFIG, f->path, "larger than");
}

static void test_conf_missing_file(void **state)
{
    struct fix *f = *state;
    char path[200], want[300];
    const char *const args[] = { "--config", path, NULL };

    snprintf(path, sizeof(path), "%s/nope.conf", f->dir);
    snprintf(want, sizeof(want), "config file '%s': cannot read: %s", path, strerror(ENOENT));
    load_fails(args, no_env, MYNA_EIO, want, NULL);
}

/* Loads --config path in a child that alarm() stops after 5 s; the code
 * and message come back through a pipe. 0, or -1 if the load hung. */
static int load_in_child(const char *path, int *code, char *msg, size_t cap)
{
    const char *const args[] = { "--config", path, NULL };
    int fds[2], status;
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct myna_conf c;
        struct myna_err err = MYNA_ERR_INIT;
        int rc;
        close(fds[0]);
        alarm(5);
        rc = load(&c, args, no_env, &err);
        if (rc == MYNA_OK)
            myna_conf_release(&c);
        if (write(fds[1], &rc, sizeof(rc)) != (ssize_t)sizeof(rc) ||
            write(fds[1], err.msg, strlen(err.msg) + 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], code, sizeof(*code));
    msg[0] = '\0';
    if (n == (ssize_t)sizeof(*code) && (n = read(fds[0], msg, cap - 1)) >= 0)
        msg[n] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A FIFO (or /dev/fd/N of a shell's <(...)) in the file's place fails at
 * once instead of waiting for a writer; so does a directory. */
static void test_conf_file_not_regular(void **state)
{
    struct fix *f = *state;
    char fifo[200], want[300], msg[512];
    const char *const args[] = { "--config", f->dir, NULL };
    int code = 0;

    snprintf(fifo, sizeof(fifo), "%s/fifo.conf", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    if (load_in_child(fifo, &code, msg, sizeof(msg)) != 0)
        fail_msg("loading a FIFO as the config file hung");
    assert_true(code == MYNA_ECONFIG || code == MYNA_EIO);
    snprintf(want, sizeof(want), "config file '%s': not a regular file", fifo);
    assert_contains(msg, want);
    snprintf(want, sizeof(want), "config file '%s': not a regular file", f->dir);
    load_fails(args, no_env, MYNA_ECONFIG, want, NULL);
}

static void test_conf_file_error_stops_later_lines(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    const char *text = "max_pending = 7\nmax_pending = zero\ndata = /late\n";

    (void)state;
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_parse_text(&c, text, strlen(text), "t", &err), MYNA_ECONFIG);
    assert_contains(err.msg, "t:2: option 'max_pending': 'zero'");
    assert_string_equal(c.data_dir, "./var");
    myna_conf_release(&c);
}

/* ---- sources: file < env < flags ---- */

static void test_conf_env_overrides_file(void **state)
{
    struct fix *f = *state;
    char cfg[200];
    const char *const env[] = { cfg, "MYNA_DATA=/from/env", "MYNA_MAX_BODY_BYTES=2m", NULL };
    struct myna_conf c;

    snprintf(cfg, sizeof(cfg), "MYNA_CONFIG=%s", f->path);
    put(f, "data = /from/file\nmax_pending = 11\nmax_body_bytes = 1m\n");
    load_ok(&c, NULL, env);
    assert_string_equal(c.config, f->path);
    assert_string_equal(c.data_dir, "/from/env");
    assert_int_equal(c.max_body_bytes, 2 << 20);
    assert_int_equal(c.max_pending, 11); /* only in the file */
    myna_conf_release(&c);
}

static void test_conf_flags_override_env(void **state)
{
    struct fix *f = *state;
    char cfg[200];
    const char *const env[] = { cfg, "MYNA_DATA=/from/env", "MYNA_MAX_BODY_BYTES=2m",
                                "MYNA_LOG_LEVEL=warn", NULL };
    const char *const args[] = { "--data", "/from/flag", "--max-body-bytes=5m", NULL };
    struct myna_conf c;

    snprintf(cfg, sizeof(cfg), "MYNA_CONFIG=%s", f->path);
    put(f, "data = /from/file\nlog_level = debug\nmax_pending = 11\n");
    load_ok(&c, args, env);
    assert_string_equal(c.data_dir, "/from/flag");
    assert_int_equal(c.max_body_bytes, 5 << 20);
    assert_int_equal(c.log_level, 1); /* env beats file */
    assert_int_equal(c.max_pending, 11);
    myna_conf_release(&c);
}

static void test_conf_flag_forms(void **state)
{
    struct myna_conf c;
    const char *const args[] = { "--max-body-bytes", "2m",        "--log-level=debug",
                                 "--public",         "[::1]:0",   "--drain-timeout-ms=0",
                                 "--instances=",     "--log-file", "a=b.log",
                                 NULL };

    (void)state;
    load_ok(&c, args, no_env);
    assert_int_equal(c.max_body_bytes, 2 << 20);
    assert_int_equal(c.log_level, 3);
    assert_string_equal(c.public_addr, "[::1]:0");
    assert_int_equal(c.drain_timeout_ms, 0);
    assert_string_equal(c.instances, "");
    assert_string_equal(c.log_file, "a=b.log"); /* '=' in a separate value is data */
    myna_conf_release(&c);
}

static void test_conf_flag_last_wins(void **state)
{
    struct myna_conf c;
    const char *const args[] = { "--max-pending=5", "--max-pending", "6", NULL };

    (void)state;
    load_ok(&c, args, no_env);
    assert_int_equal(c.max_pending, 6);
    myna_conf_release(&c);
}

static void test_conf_flag_errors(void **state)
{
    const char *const positional[] = { "--data", "/x", "serve", NULL };
    const char *const unknown[] = { "--nope", "1", NULL };
    const char *const unknown_eq[] = { "--nope=1", NULL };
    const char *const single_dash[] = { "-data", "/x", NULL };
    const char *const no_value[] = { "--data", NULL };
    const char *const bad_value[] = { "--max-body-bytes", "lots", NULL };
    const char *const bad_value_eq[] = { "--max-pending=0", NULL };

    (void)state;
    load_fails(positional, no_env, MYNA_ECONFIG, "unexpected argument 'serve'", NULL);
    load_fails(unknown, no_env, MYNA_ECONFIG, "unknown flag '--nope'", NULL);
    load_fails(unknown_eq, no_env, MYNA_ECONFIG, "unknown flag '--nope'", NULL);
    load_fails(single_dash, no_env, MYNA_ECONFIG, "unexpected argument '-data'", NULL);
    load_fails(no_value, no_env, MYNA_ECONFIG, "flag '--data' needs a value", NULL);
    load_fails(bad_value, no_env, MYNA_ECONFIG, "flag --max-body-bytes: option 'max_body_bytes'",
               "'lots'");
    load_fails(bad_value_eq, no_env, MYNA_ECONFIG, "flag --max-pending: option 'max_pending'",
               "'0'");
}

/* A value holding a C1 control (U+0080-U+009F, which a terminal obeys as
 * C0 ones) is refused as the C0 ones are; names that are no option are
 * quoted as given (what prints them shows control characters as '?'). */
static void test_conf_c1_controls_refused(void **state)
{
    const char *const flag_c1[] = { "--no\xc2\x9b" "2J", "1", NULL };
    const char *const value_c1[] = { "--log-level", "\xc2\x9b" "2J", NULL };
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    assert_int_equal(load(&c, flag_c1, no_env, &err), MYNA_ECONFIG);
    assert_contains(err.msg, "unknown flag '--no\xc2\x9b" "2J'");
    assert_int_equal(load(&c, value_c1, no_env, &err), MYNA_ECONFIG);
    assert_contains(err.msg, "option 'log_level': control characters are not allowed");
    assert_null(strchr(err.msg, '\xc2'));
}

static void test_conf_env_error_names_variable(void **state)
{
    const char *const env[] = { "MYNA_MAX_PENDING=-3", NULL };
    const char *const env2[] = { "MYNA_ADMIN=localhost", NULL };

    (void)state;
    load_fails(NULL, env, MYNA_ECONFIG, "environment MYNA_MAX_PENDING: option 'max_pending'",
               "'-3'");
    load_fails(NULL, env2, MYNA_ECONFIG, "environment MYNA_ADMIN: option 'admin'",
               "'localhost' is not ADDR:PORT");
}

/* The bots' limits, for every bot (the tests shorten them through these). */
static void test_conf_bot_limits_from_env(void **state)
{
    const char *const env[] = { "MYNA_BOT_MAX_MEMORY_MB=1", "MYNA_BOT_HEARTBEAT_TIMEOUT_MS=3000",
                                NULL };
    const char *const too_short[] = { "MYNA_BOT_HEARTBEAT_TIMEOUT_MS=2000", NULL };
    const char *const no_memory[] = { "MYNA_BOT_MAX_MEMORY_MB=0", NULL };
    struct myna_conf c;

    (void)state;
    load_ok(&c, NULL, env);
    assert_int_equal(c.bot_max_memory_mb, 1);
    assert_int_equal(c.bot_heartbeat_timeout_ms, 3000);
    myna_conf_release(&c);
    /* a timeout within the 2 s heartbeat interval would kill healthy bots */
    load_fails(NULL, too_short, MYNA_ECONFIG,
               "environment MYNA_BOT_HEARTBEAT_TIMEOUT_MS: option 'bot_heartbeat_timeout_ms'",
               "'2000'");
    load_fails(NULL, no_memory, MYNA_ECONFIG,
               "environment MYNA_BOT_MAX_MEMORY_MB: option 'bot_max_memory_mb'", "'0'");
}

/* A login's token lasts 1 s to a year. */
static void test_conf_login_token_ttl(void **state)
{
    const char *const one[] = { "MYNA_LOGIN_TOKEN_TTL_S=1", NULL };
    const char *const none[] = { "MYNA_LOGIN_TOKEN_TTL_S=0", NULL };
    const char *const past_a_year[] = { "MYNA_LOGIN_TOKEN_TTL_S=31536001", NULL };
    struct myna_conf c;

    (void)state;
    load_ok(&c, NULL, one);
    assert_int_equal(c.login_token_ttl_s, 1);
    myna_conf_release(&c);
    load_fails(NULL, none, MYNA_ECONFIG, "option 'login_token_ttl_s'", "'0'");
    load_fails(NULL, past_a_year, MYNA_ECONFIG, "option 'login_token_ttl_s'", "'31536001'");
}

/* The audit log is kept 0 (forever) to 36500 days. */
static void test_conf_audit_keep_days(void **state)
{
    const char *const forever[] = { "MYNA_AUDIT_KEEP_DAYS=0", NULL };
    const char *const negative[] = { "MYNA_AUDIT_KEEP_DAYS=-1", NULL };
    const char *const too_long[] = { "MYNA_AUDIT_KEEP_DAYS=36501", NULL };
    struct myna_conf c;

    (void)state;
    load_ok(&c, NULL, forever);
    assert_int_equal(c.audit_keep_days, 0);
    myna_conf_release(&c);
    load_fails(NULL, negative, MYNA_ECONFIG, "option 'audit_keep_days'", "'-1'");
    load_fails(NULL, too_long, MYNA_ECONFIG, "option 'audit_keep_days'", "'36501'");
}

static void test_conf_passthrough_seen(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    const char *const pass[] = { "--help", "--version", "--check-config", "--dump-config",
                                 NULL };
    const char *const args[] = { "--dump-config", "--data", "/x", "--help", NULL };
    const char *const none[] = { "--data", "/y", NULL };
    unsigned seen = 0xdead;

    (void)state;
    assert_int_equal(load_pt(&c, args, no_env, pass, &seen, &err), MYNA_OK);
    assert_int_equal(seen, (1u << 0) | (1u << 3));
    assert_string_equal(c.data_dir, "/x");
    myna_conf_release(&c);
    assert_int_equal(load_pt(&c, none, no_env, pass, &seen, &err), MYNA_OK);
    assert_int_equal(seen, 0); /* reset at every load */
    myna_conf_release(&c);
    /* seen may be NULL */
    assert_int_equal(load_pt(&c, args, no_env, pass, NULL, &err), MYNA_OK);
    myna_conf_release(&c);
    /* not listed: an unknown flag */
    assert_int_equal(load_pt(&c, args, no_env, NULL, &seen, &err), MYNA_ECONFIG);
    assert_contains(err.msg, "unknown flag '--dump-config'");
}

/* A passthrough flag given a value is said to take none, not called
 * unknown: it is listed in --help. */
static void test_conf_passthrough_with_a_value(void **state)
{
    struct myna_conf c;
    const char *const pass[] = { "--help", "--check-config", "--dump-config", NULL };
    const char *const check[] = { "--check-config=1", NULL };
    const char *const dump[] = { "--data", "/x", "--dump-config=x", NULL };
    const char *const help[] = { "--help=", NULL };
    const char *const *runs[] = { check, dump, help };
    const char *const said[] = { "flag '--check-config' takes no value",
                                 "flag '--dump-config' takes no value",
                                 "flag '--help' takes no value" };

    (void)state;
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        struct myna_err err = MYNA_ERR_INIT;
        assert_int_equal(load_pt(&c, runs[i], no_env, pass, NULL, &err), MYNA_ECONFIG);
        assert_contains(err.msg, said[i]);
        assert_null(strstr(err.msg, "unknown"));
    }
    /* a flag that is neither is still unknown */
    load_fails((const char *const[]){ "--check=1", NULL }, no_env, MYNA_ECONFIG,
               "unknown flag '--check'", NULL);
}

static void test_conf_config_flag_beats_env(void **state)
{
    struct fix *f = *state;
    char env_path[200], cfg[220], flag_eq[220];
    const char *const env[] = { cfg, NULL };
    const char *const args[] = { "--config", f->path, NULL };
    const char *const args_eq[] = { flag_eq, NULL };
    struct myna_conf c;

    snprintf(env_path, sizeof(env_path), "%s/env.conf", f->dir);
    snprintf(cfg, sizeof(cfg), "MYNA_CONFIG=%s", env_path);
    snprintf(flag_eq, sizeof(flag_eq), "--config=%s", f->path);
    put(f, "data = /from/flag/file\n");
    put_bytes(env_path, "data = /from/env/file\n", 22);
    load_ok(&c, args, env);
    assert_string_equal(c.data_dir, "/from/flag/file");
    assert_string_equal(c.config, f->path);
    myna_conf_release(&c);
    load_ok(&c, args_eq, env);
    assert_string_equal(c.data_dir, "/from/flag/file");
    assert_string_equal(c.config, f->path);
    myna_conf_release(&c);
    /* without the flag the variable decides */
    load_ok(&c, NULL, env);
    assert_string_equal(c.data_dir, "/from/env/file");
    assert_string_equal(c.config, env_path);
    myna_conf_release(&c);
}

/* --config given twice: the file read and conf->config (shown by
 * --dump-config and in logs) must be the same file, whichever wins. Known to
 * fail: flag_config() reads the first, load_flags() stores the last (see the
 * report). */
static void test_conf_config_flag_twice_consistent(void **state)
{
    struct fix *f = *state;
    char second[200];
    const char *const args[] = { "--config", f->path, "--config", second, NULL };
    struct myna_conf c;
    char got[400];
    int ok;

    snprintf(second, sizeof(second), "%s/second.conf", f->dir);
    put(f, "data = /from/first\n");
    put_bytes(second, "data = /from/second\n", 20);
    load_ok(&c, args, no_env);
    ok = (strcmp(c.config, f->path) == 0 && strcmp(c.data_dir, "/from/first") == 0) ||
         (strcmp(c.config, second) == 0 && strcmp(c.data_dir, "/from/second") == 0);
    snprintf(got, sizeof(got), "config='%s' but data='%s'", c.config, c.data_dir);
    myna_conf_release(&c); /* before failing: no leak report on top */
    if (!ok)
        fail_msg("file read and config disagree: %s", got);
}

static void test_conf_config_env_missing_file(void **state)
{
    struct fix *f = *state;
    char cfg[200];
    const char *const env[] = { cfg, NULL };

    snprintf(cfg, sizeof(cfg), "MYNA_CONFIG=%s/missing.conf", f->dir);
    load_fails(NULL, env, MYNA_EIO, "missing.conf", f->dir);
}

static void test_conf_config_empty_means_none(void **state)
{
    struct myna_conf c;
    const char *const env[] = { "MYNA_CONFIG=", NULL };

    (void)state;
    load_ok(&c, NULL, env);
    assert_string_equal(c.config, "");
    myna_conf_release(&c);
}

/* ---- validation by type ---- */

static void set_fails(const char *name, const char *value, const char *part1, const char *part2)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    char who[160];

    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_set(&c, name, value, "here", &err), MYNA_ECONFIG);
    assert_int_equal(err.code, MYNA_ECONFIG);
    snprintf(who, sizeof(who), "here: option '%s': ", name);
    assert_contains(err.msg, who);
    if (part1)
        assert_contains(err.msg, part1);
    if (part2)
        assert_contains(err.msg, part2);
    myna_conf_release(&c);
}

static int64_t set_num(const char *name, const char *value)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    int64_t v;

    load_ok(&c, NULL, no_env);
    if (myna_conf_set(&c, name, value, "here", &err) != MYNA_OK)
        fail_msg("set %s=%s: %s", name, value, err.msg);
    v = *(const int64_t *)((const char *)&c + opt(name)->off);
    myna_conf_release(&c);
    return v;
}

/* The two listeners on one port of one address: every start fails to bind
 * the second, so `serve` refuses it as a setting (exit 2, named) instead of
 * a runtime failure a supervisor restarts forever. */
static void test_conf_listeners_must_differ(void **state)
{
    static const struct {
        const char *pub, *adm;
        int clash;
    } cases[] = {
        { "127.0.0.1:8080", "127.0.0.1:8080", 1 },
        { "0.0.0.0:8080", "127.0.0.1:8080", 1 },       /* the wildcard holds every address */
        { "127.0.0.1:8080", "0.0.0.0:8080", 1 },
        { "[::]:8080", "[::1]:8080", 1 },
        { "[::1]:8080", "[0:0::1]:8080", 1 },            /* one address, two spellings */
        { "localhost:8080", "LOCALHOST:8080", 1 },
        { "127.0.0.1:8080", "127.0.0.1:8081", 0 },      /* the defaults */
        { "127.0.0.1:8080", "127.0.0.2:8080", 0 },
        { "127.0.0.1:8080", "[::1]:8080", 0 },          /* two families */
        { "0.0.0.0:8080", "[::1]:8080", 0 },
        { "127.0.0.1:0", "127.0.0.1:0", 0 },            /* each takes a free port */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = { "--public", cases[i].pub, "--admin", cases[i].adm, NULL };
        struct myna_conf c;
        struct myna_err err = MYNA_ERR_INIT;
        int rc;

        load_ok(&c, args, no_env);
        rc = myna_conf_check_listeners(&c, &err);
        myna_conf_release(&c);
        if (!cases[i].clash) {
            if (rc != MYNA_OK)
                fail_msg("%s and %s refused: %s", cases[i].pub, cases[i].adm, err.msg);
            continue;
        }
        if (rc != MYNA_ECONFIG)
            fail_msg("%s and %s taken", cases[i].pub, cases[i].adm);
        assert_non_null(strstr(err.msg, "'public'"));
        assert_non_null(strstr(err.msg, "'admin'"));
        assert_non_null(strstr(err.msg, cases[i].adm));
    }
}

static void test_conf_addr_validation(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;

    (void)state;
    set_fails("public", "localhost", "'localhost' is not ADDR:PORT", NULL);
    set_fails("public", "127.0.0.1", "is not ADDR:PORT", NULL);
    set_fails("admin", "127.0.0.1:65536", "'127.0.0.1:65536'", NULL);
    set_fails("admin", ":8080", "':8080'", NULL);
    set_fails("admin", "", "''", NULL);
    /* "::1" is not host ":" and port 1: an IPv6 address needs brackets */
    set_fails("public", "::1", "'::1' is not ADDR:PORT", "[::1]:8080");
    set_fails("admin", "fe80::1:8080", "'fe80::1:8080' is not ADDR:PORT", NULL);
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_set(&c, "public", "0.0.0.0:0", "x", &err), MYNA_OK);
    assert_string_equal(c.public_addr, "0.0.0.0:0");
    assert_int_equal(myna_conf_set(&c, "admin", "[::]:9", "x", &err), MYNA_OK);
    assert_string_equal(c.admin_addr, "[::]:9");
    myna_conf_release(&c);
}

/* A URL may carry a secret (a hook's token): a bad one is named by its
 * option and what is wrong with it, never quoted, wherever it was set. */
static void url_fails_unquoted(const char *value)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;

    set_fails("alert_webhook", value, "is not an http:// or https:// URL", NULL);
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_set(&c, "alert_webhook", value, "here", &err), MYNA_ECONFIG);
    if (strstr(err.msg, value) != NULL)
        fail_msg("the message quotes the URL: %s", err.msg);
    myna_conf_release(&c);
}

static void test_conf_url_validation(void **state)
{
    struct fix *f = *state;
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    const char *const file_args[] = { "--config", f->path, NULL };
    const char *const flag_args[] = { "--alert-webhook=hooks.example.com/flag-tok3n", NULL };
    const char *const env[] = { "MYNA_ALERT_WEBHOOK=hooks.example.com/env-tok3n", NULL };

    url_fails_unquoted("hooks.example.com/myna?token=s3cret");
    url_fails_unquoted("ftp://example.com/");
    url_fails_unquoted("HTTP//x");
    put(f, "alert_webhook = hooks.example.com/file-tok3n\n");
    load_fails(file_args, no_env, MYNA_ECONFIG, ":1: option 'alert_webhook'", "not an http://");
    assert_int_equal(load(&c, file_args, no_env, &err), MYNA_ECONFIG);
    assert_null(strstr(err.msg, "tok3n"));
    load_fails(NULL, env, MYNA_ECONFIG, "environment MYNA_ALERT_WEBHOOK: option 'alert_webhook'",
               "not an http://");
    assert_int_equal(load(&c, NULL, env, &err), MYNA_ECONFIG);
    assert_null(strstr(err.msg, "tok3n"));
    load_fails(flag_args, no_env, MYNA_ECONFIG, "flag --alert-webhook: option 'alert_webhook'",
               "not an http://");
    assert_int_equal(load(&c, flag_args, no_env, &err), MYNA_ECONFIG);
    assert_null(strstr(err.msg, "tok3n"));
    /* what libcurl cannot send, so that every alert would fail, found out
     * only when one is due: no host, a space */
    set_fails("alert_webhook", "https://", "has no host after the scheme", "not shown");
    set_fails("alert_webhook", "http:///hook", "has no host after the scheme", NULL);
    set_fails("alert_webhook", "http://:8080/hook", "has no host after the scheme", NULL);
    set_fails("alert_webhook", "https://hooks.example.com/my tok3n", "has a space", "not shown");
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_set(&c, "alert_webhook", "https://hooks.example.com/my tok3n",
                                   "x", &err), MYNA_ECONFIG);
    assert_null(strstr(err.msg, "tok3n"));
    myna_conf_release(&c);
    load_ok(&c, NULL, no_env);
    assert_string_equal(c.alert_webhook, "");  /* default: alerts are logged only */
    assert_int_equal(myna_conf_set(&c, "alert_webhook", "https://hooks.example.com/a?b=1", "x",
                                   &err), MYNA_OK);
    assert_string_equal(c.alert_webhook, "https://hooks.example.com/a?b=1");
    assert_int_equal(myna_conf_set(&c, "alert_webhook", "http://127.0.0.1:9/", "x", &err),
                     MYNA_OK);
    assert_int_equal(myna_conf_set(&c, "alert_webhook", "", "x", &err), MYNA_OK);
    assert_string_equal(c.alert_webhook, "");
    myna_conf_release(&c);
}

static void test_conf_int_validation(void **state)
{
    (void)state;
    assert_int_equal(set_num("commit_max_records", "1"), 1);
    assert_int_equal(set_num("commit_max_records", "1000000"), 1000000);
    assert_int_equal(set_num("drain_timeout_ms", "0"), 0);
    assert_int_equal(set_num("drain_timeout_ms", "600000"), 600000);
    set_fails("commit_max_records", "0", "'0' is not a whole number from 1 to 1000000", NULL);
    set_fails("commit_max_records", "1000001", "from 1 to 1000000", NULL);
    set_fails("drain_timeout_ms", "-1", "from 0 to 600000", NULL);
    set_fails("http_timeout_s", "3601", "from 1 to 3600", NULL);
    set_fails("http_timeout_s", "30s", "'30s'", NULL);
    set_fails("http_timeout_s", "", "''", NULL);
    set_fails("max_pending", "1e6", "'1e6'", NULL);
    set_fails("max_pending", "99999999999999999999", "from 1 to 10000000", NULL);
}

static void test_conf_size_validation(void **state)
{
    (void)state;
    assert_int_equal(set_num("max_body_bytes", "3m"), 3145728);
    assert_int_equal(set_num("max_body_bytes", "3M"), 3145728);
    assert_int_equal(set_num("max_body_bytes", "64k"), 65536);
    assert_int_equal(set_num("max_body_bytes", "64K"), 65536);
    assert_int_equal(set_num("max_body_bytes", "1k"), 1024);    /* min */
    assert_int_equal(set_num("max_body_bytes", "1024"), 1024);  /* min */
    assert_int_equal(set_num("max_body_bytes", "64m"), 64 << 20); /* max */
    assert_int_equal(set_num("max_body_bytes", "67108864"), 64 << 20);
    set_fails("max_body_bytes", "1g", "'1g' is not a size from 1024 to 67108864 bytes",
              "suffixes k, m, g");
    set_fails("max_body_bytes", "1G", "'1G'", NULL);
    set_fails("max_body_bytes", "1023", "'1023'", NULL);
    set_fails("max_body_bytes", "67108865", "'67108865'", NULL);
    set_fails("max_body_bytes", "0", "'0'", NULL);
    set_fails("max_body_bytes", "lots", "'lots'", NULL);
    set_fails("max_body_bytes", "3x", "'3x'", NULL);
    set_fails("max_body_bytes", "3mm", "'3mm'", NULL);
    set_fails("max_body_bytes", "3 m", "'3 m'", NULL);
    set_fails("max_body_bytes", "-3m", "'-3m'", NULL);
    set_fails("max_body_bytes", "3.5m", "'3.5m'", NULL);
    set_fails("max_body_bytes", "m", "'m'", NULL);
    set_fails("max_body_bytes", "", "''", NULL);
    set_fails("max_body_bytes", " 3m", "' 3m'", NULL);
    set_fails("max_body_bytes", "0x100000", "'0x100000'", NULL);
    set_fails("max_body_bytes", "99999999999999999999", "is not a size", NULL);
    set_fails("max_body_bytes", "9999999999999g", "is not a size", NULL); /* << overflows */
    set_fails("max_body_bytes", "18446744073709551615", "is not a size", NULL);
}

static void test_conf_enum_validation(void **state)
{
    (void)state;
    assert_int_equal(set_num("log_level", "error"), 0);
    assert_int_equal(set_num("log_level", "warn"), 1);
    assert_int_equal(set_num("log_level", "info"), 2);
    assert_int_equal(set_num("log_level", "debug"), 3);
    assert_int_equal(set_num("store_sync", "full"), 0);
    assert_int_equal(set_num("store_sync", "normal"), 1);
    set_fails("log_level", "verbose", "'verbose' is not one of: error, warn, info, debug", NULL);
    set_fails("log_level", "INFO", "is not one of: error, warn, info, debug", NULL);
    set_fails("log_level", "", "''", NULL);
    set_fails("store_sync", "off", "'off' is not one of: full, normal", NULL);
}

static void test_conf_str_and_unknown(void **state)
{
    struct myna_conf c;
    struct myna_err err = MYNA_ERR_INIT;
    char *val = malloc(4098);

    (void)state;
    assert_non_null(val);
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_set(&c, "nope", "1", "here", &err), MYNA_ECONFIG);
    assert_string_equal(err.msg, "here: unknown option 'nope'");
    assert_int_equal(myna_conf_set(&c, "", "1", "here", &err), MYNA_ECONFIG);
    memset(val, 'v', 4096);
    val[4096] = '\0';
    assert_int_equal(myna_conf_set(&c, "data", val, "here", &err), MYNA_OK); /* 4096: ok */
    assert_int_equal(strlen(c.data_dir), 4096);
    val[4096] = 'v';
    val[4097] = '\0';
    assert_int_equal(myna_conf_set(&c, "data", val, "here", &err), MYNA_ECONFIG);
    assert_string_equal(err.msg, "here: option 'data': value too long");
    assert_int_equal(strlen(c.data_dir), 4096); /* the old value is kept */
    /* a failed set leaves the old value */
    assert_int_equal(myna_conf_set(&c, "max_pending", "x", "here", &err), MYNA_ECONFIG);
    assert_int_equal(c.max_pending, 20000);
    myna_conf_release(&c);
    free(val);
}

/* "" for data made every path "/control.db", "/secret.key", "/instances/..":
 * refused from each source, while the other strings may be empty */
static void test_conf_data_cannot_be_empty(void **state)
{
    struct fix *f = *state;
    char cfg[200];
    const char *const flag[] = { "--data=", NULL };
    const char *const env_empty[] = { "MYNA_DATA=", NULL };
    const char *const env_file[] = { cfg, NULL };
    const char *const others[] = { "--instances=", "--log-file", "", "--config=", NULL };
    struct myna_conf c;

    (void)state;
    load_fails(flag, no_env, MYNA_ECONFIG, "flag --data: option 'data' cannot be empty", NULL);
    load_fails(NULL, env_empty, MYNA_ECONFIG,
               "environment MYNA_DATA: option 'data' cannot be empty", NULL);
    snprintf(cfg, sizeof(cfg), "MYNA_CONFIG=%s", f->path);
    put(f, "data = \"\"\n");
    load_fails(NULL, env_file, MYNA_ECONFIG, ":1: option 'data' cannot be empty", NULL);
    load_ok(&c, others, no_env);
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.instances, "");
    assert_string_equal(c.log_file, "");
    myna_conf_release(&c);
}

static void test_conf_set_null_err(void **state)
{
    struct myna_conf c;

    (void)state;
    load_ok(&c, NULL, no_env);
    assert_int_equal(myna_conf_set(&c, "max_pending", "x", "here", NULL), MYNA_ECONFIG);
    assert_int_equal(myna_conf_set(&c, "log_level", "x", "here", NULL), MYNA_ECONFIG);
    assert_int_equal(myna_conf_set(&c, "nope", "x", "here", NULL), MYNA_ECONFIG);
    myna_conf_release(&c);
}

static void test_conf_release_twice(void **state)
{
    struct myna_conf c;

    (void)state;
    load_ok(&c, NULL, no_env);
    myna_conf_release(&c);
    myna_conf_release(&c); /* zeroed: a second release is a no-op */
    assert_null(c.public_addr);
}

/* ---- generated outputs ---- */

static void test_conf_dump_round_trip(void **state)
{
    struct myna_conf c;
    char why[512];
    const char *const args[] = { "--data",        "/srv/my data", "--public=0.0.0.0:0",
                                 "--admin",       "[::1]:9001",   "--log-level=error",
                                 "--log-file",    "/var/log/m.log", "--max-body-bytes=64k",
                                 "--store-sync",  "normal",       "--commit-max-records=1",
                                 "--max-pending", "10000000",     "--http-timeout-s=3600",
                                 "--drain-timeout-ms=0",          "--instances",
                                 "inst#1.json",   NULL };

    (void)state;
    load_ok(&c, NULL, no_env);
    if (round_trip(&c, why, sizeof(why)) != 0)
        fail_msg("defaults: %s", why);
    myna_conf_release(&c);
    load_ok(&c, args, no_env);
    if (round_trip(&c, why, sizeof(why)) != 0)
        fail_msg("non-defaults: %s", why);
    myna_conf_release(&c);
}

static void test_conf_dump_shape(void **state)
{
    struct myna_conf c;
    char *text;

    (void)state;
    load_ok(&c, NULL, no_env);
    text = dump_text(&c, NULL);
    assert_null(strstr(text, "\nconfig =")); /* a file cannot set config */
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        char key[80];
        if (strcmp(o->name, "config") == 0)
            continue;
        snprintf(key, sizeof(key), "\n%s = ", o->name);
        assert_contains(text, key);
    }
    assert_contains(text, "\nmax_body_bytes = 3145728\n");
    assert_contains(text, "\nlog_level = info\n");
    assert_contains(text, "\nstore_sync = full\n");
    free(text);
    myna_conf_release(&c);
}

/* Values a flag or the environment can hold must survive --dump-config and
 * a re-read: written unquoted, leading and trailing spaces and outer quotes
 * that are part of the value would be lost, and a newline (from a flag or
 * MYNA_*) would make the dump unparsable. */
static void test_conf_dump_round_trip_edge_values(void **state)
{
    static const char *const values[] = { "  /srv/lead and trail  ", "\"quoted\"",
                                          "a = b # not a comment" };
    static const char *const refused[] = { "x\t", "two\nlines", "bell\a" };
    char report[1024] = "", why[512];
    int bad = 0;

    (void)state;
    /* control characters cannot be written back as one line: refused at once */
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct myna_conf c;
        struct myna_err err = MYNA_ERR_INIT;
        const char *const args[] = { "--data", refused[i], NULL };
        assert_int_equal(load(&c, args, no_env, &err), MYNA_ECONFIG);
        assert_contains(err.msg, "option 'data': control characters are not allowed");
    }
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct myna_conf c;
        const char *const args[] = { "--data", values[i], NULL };
        load_ok(&c, args, no_env);
        if (round_trip(&c, why, sizeof(why)) != 0) {
            size_t n = strlen(report);
            snprintf(report + n, sizeof(report) - n, "[%s] ", why);
            bad++;
        }
        myna_conf_release(&c);
    }
    if (bad)
        fail_msg("%d value(s) lost by dump + parse: %s", bad, report);
}

static char *capture(void (*fn)(FILE *))
{
    char *s = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&s, &n);

    assert_non_null(fp);
    fn(fp);
    assert_int_equal(fclose(fp), 0);
    return s;
}

static void flag_of(const struct myna_opt *o, char *buf, size_t cap)
{
    snprintf(buf, cap, "--%s", o->name);
    for (char *c = buf; *c; c++)
        if (*c == '_')
            *c = '-';
}

/* s as a Markdown table cell holds it: '|' escaped, '<' as &lt; outside code */
static const char *md_escaped(const char *s, int code, char *buf, size_t cap)
{
    size_t o = 0;

    for (; *s && o + 5 < cap; s++) {
        if (*s == '|')
            o += (size_t)snprintf(buf + o, cap - o, "\\|");
        else if (*s == '<' && !code)
            o += (size_t)snprintf(buf + o, cap - o, "&lt;");
        else
            buf[o++] = *s;
    }
    buf[o] = '\0';
    return buf;
}

static void test_conf_markdown_mentions_every_option(void **state)
{
    char *md = capture(myna_conf_markdown);
    int rows = 0;

    (void)state;
    assert_contains(md, "| option | flag | environment | default | what it does |");
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        char cell[600], flag[80], metavar[80], help[400];
        flag_of(o, flag, sizeof(flag));
        snprintf(cell, sizeof(cell), "| `%s` | `%s %s` | `%s` | %s%s%s | %s", o->name, flag,
                 md_escaped(o->metavar, 1, metavar, sizeof(metavar)), o->env,
                 o->def[0] ? "`" : "", o->def[0] ? o->def : "(empty)", o->def[0] ? "`" : "",
                 md_escaped(o->help, 0, help, sizeof(help)));
        assert_contains(md, cell);
        rows++;
    }
    assert_int_equal(rows, 24);
    /* one table row per option plus header and rule */
    {
        int lines = 0;
        for (const char *p = md; (p = strstr(p, "\n| ")) != NULL; p++)
            lines++;
        assert_int_equal(lines, rows + 1);
    }
    assert_contains(md, "Reloaded on SIGHUP.");
    free(md);
}

/* Every row has the header's five cells: a '|' in a metavar ("0|1") made a
 * sixth, even inside its code span, which shifted the default out of its
 * column and dropped the help; "<instance>" in a help was taken for HTML. */
static void test_conf_markdown_rows_keep_their_cells(void **state)
{
    char *md = capture(myna_conf_markdown);
    int rows = 0;

    (void)state;
    for (const char *line = md, *next; *line; line = next) {
        size_t len = strcspn(line, "\n");
        int bars = 0;
        next = line[len] ? line + len + 1 : line + len;
        if (strncmp(line, "| `", 3) != 0)
            continue;
        for (size_t i = 0; i < len; i++) {
            if (line[i] == '|' && (i == 0 || line[i - 1] != '\\'))
                bars++;
            assert_true(line[i] != '<');
        }
        assert_int_equal(bars, 6);
        rows++;
    }
    assert_int_equal(rows, 24);
    assert_contains(md, "| `bots` | `--bots 0\\|1` | `MYNA_BOTS` | `1` |");
    /* "``" is no empty code span but two backticks on the page: an empty
     * default is written out */
    assert_null(strstr(md, "``"));
    assert_contains(md, "| `log_file` | `--log-file FILE` | `MYNA_LOG_FILE` | (empty) |");
    assert_contains(md, "webhooks (/webhook/&lt;instance>)");
    free(md);
}

static void test_conf_help_mentions_every_option(void **state)
{
    char *help = capture(myna_conf_help);

    (void)state;
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        char line[120], env[120];
        flag_of(o, line, sizeof(line));
        assert_contains(help, line);
        snprintf(env, sizeof(env), "env %s, default '%s'", o->env, o->def);
        assert_contains(help, env);
        assert_contains(help, o->help);
    }
    assert_contains(help, "--max-body-bytes BYTES");
    free(help);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_conf_table_is_sane),
        T(test_conf_defaults),
        T(test_conf_null_envp_and_argv),
        T(test_conf_unrelated_env_ignored),
        T(test_conf_config_only_as_a_flag),
        T(test_conf_file_parsing),
        T(test_conf_file_quotes),
        T(test_conf_file_later_line_wins),
        T(test_conf_file_bom_skipped),
        T(test_conf_file_unknown_key),
        cmocka_unit_test(test_conf_config_path_origin),
        T(test_conf_file_missing_equals),
        T(test_conf_file_empty_key),
        T(test_conf_file_config_refused),
        T(test_conf_file_nul_refused),
        T(test_conf_file_empty_ok),
        T(test_conf_file_too_large),
        T(test_conf_missing_file),
        T(test_conf_file_not_regular),
        T(test_conf_file_error_stops_later_lines),
        T(test_conf_env_overrides_file),
        T(test_conf_bot_limits_from_env),
        T(test_conf_flags_override_env),
        T(test_conf_flag_forms),
        T(test_conf_flag_last_wins),
        T(test_conf_flag_errors),
        cmocka_unit_test(test_conf_c1_controls_refused),
        T(test_conf_env_error_names_variable),
        T(test_conf_passthrough_seen),
        T(test_conf_passthrough_with_a_value),
        T(test_conf_login_token_ttl),
        T(test_conf_audit_keep_days),
        T(test_conf_config_flag_beats_env),
        T(test_conf_config_flag_twice_consistent),
        T(test_conf_config_env_missing_file),
        T(test_conf_config_empty_means_none),
        T(test_conf_addr_validation),
        T(test_conf_listeners_must_differ),
        T(test_conf_url_validation),
        T(test_conf_int_validation),
        T(test_conf_size_validation),
        T(test_conf_enum_validation),
        T(test_conf_str_and_unknown),
        T(test_conf_data_cannot_be_empty),
        T(test_conf_set_null_err),
        T(test_conf_release_twice),
        T(test_conf_dump_round_trip),
        T(test_conf_dump_shape),
        T(test_conf_dump_round_trip_edge_values),
        T(test_conf_markdown_mentions_every_option),
        T(test_conf_markdown_rows_keep_their_cells),
        T(test_conf_help_mentions_every_option),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
