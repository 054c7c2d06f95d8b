/* fuzz_conf.c - libFuzzer harness for the config-file parser
 * (myna_conf_parse_text): the bytes are parsed into a conf holding the
 * defaults (myna_conf_load with no arguments and an empty environment), then
 * released; no leak, no crash, and a terminated message on failure. What a
 * file sets must survive --dump-config: the dump (myna_conf_dump) parsed
 * into fresh defaults gives every option the same value, so a dumped config
 * can be kept as the config file. Corpus in corpus/conf/, dictionary in
 * conf.dict. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void defaults(struct myna_conf *conf)
{
    static char *empty_env[] = { NULL };
    struct myna_err err = MYNA_ERR_INIT;

    if (myna_conf_load(conf, 0, NULL, empty_env, NULL, NULL, &err) != MYNA_OK)
        abort(); /* the defaults are always valid */
}

/* The dump of conf read back into the defaults gives conf again. */
static void check_dump(const struct myna_conf *conf)
{
    static char a[8192], b[8192];
    struct myna_conf back;
    struct myna_err err = MYNA_ERR_INIT;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (f == NULL)
        abort();
    myna_conf_dump(conf, f);
    if (fclose(f) != 0)
        abort();
    defaults(&back);
    if (myna_conf_parse_text(&back, text, len, "dump", &err) != MYNA_OK)
        abort(); /* the dump of a valid config is a valid config file */
    for (const struct myna_opt *o = myna_opts; o->name; o++) {
        if (strcmp(o->name, "config") == 0)
            continue;
        myna_conf_value_text(conf, o, a, sizeof(a));
        myna_conf_value_text(&back, o, b, sizeof(b));
        if (strcmp(a, b) != 0)
            abort();
    }
    myna_conf_release(&back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_conf conf;
    struct myna_err err = MYNA_ERR_INIT;
    int rc;

    defaults(&conf);
    rc = myna_conf_parse_text(&conf, (const char *)data, size, "fuzz", &err);
    if (rc != MYNA_OK &&
        (err.code != rc || err.msg[0] == '\0' || memchr(err.msg, '\0', sizeof(err.msg)) == NULL))
        abort();
    if (conf.public_addr == NULL || conf.admin_addr == NULL || conf.data_dir == NULL)
        abort(); /* a failed line never clears what was set before */
    if (rc == MYNA_OK)
        check_dump(&conf);
    myna_conf_release(&conf);
    return 0;
}
