/* fuzz_conf.c - libFuzzer harness for the config-file parser
 * (myna_conf_parse_text): the bytes are parsed into a conf holding the
 * defaults (myna_conf_load with no arguments and an empty environment), then
 * released; no leak, no crash, and a terminated message on failure. Corpus
 * in corpus/conf/, dictionary in conf.dict. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *empty_env[] = { NULL };
    struct myna_conf conf;
    struct myna_err err = MYNA_ERR_INIT;
    int rc;

    if (myna_conf_load(&conf, 0, NULL, empty_env, NULL, NULL, &err) != MYNA_OK)
        abort(); /* the defaults are always valid */
    rc = myna_conf_parse_text(&conf, (const char *)data, size, "fuzz", &err);
    if (rc != MYNA_OK &&
        (err.code != rc || err.msg[0] == '\0' || memchr(err.msg, '\0', sizeof(err.msg)) == NULL))
        abort();
    if (conf.public_addr == NULL || conf.admin_addr == NULL || conf.data_dir == NULL)
        abort(); /* a failed line never clears what was set before */
    myna_conf_release(&conf);
    return 0;
}
