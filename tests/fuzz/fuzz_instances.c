/* fuzz_instances.c - libFuzzer harness for the instances file parser
 * (myna_instances_parse): any bytes in, a set or an error out, no leak, no
 * crash. On success every instance must have its required fields; on
 * failure the set must be empty and the message set. Corpus in
 * corpus/instances/, dictionary in instances.dict. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/instance.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct myna_instance_set set;
    struct myna_err err = MYNA_ERR_INIT;
    int rc = myna_instances_parse((const char *)data, size, &set, &err);

    if (rc == MYNA_OK) {
        for (size_t i = 0; i < set.n; i++) {
            const struct myna_instance *in = &set.v[i];
            if (in->id == NULL || in->name == NULL || in->provider == NULL ||
                in->phone_number_id == NULL || in->waba_id == NULL ||
                in->access_token == NULL || in->app_secret == NULL ||
                in->verify_token == NULL || in->graph_url == NULL)
                abort();
            if (myna_instances_find(&set, in->id) != in)
                abort(); /* ids are unique */
        }
    } else if (set.v != NULL || set.n != 0 || err.code != rc || err.msg[0] == '\0' ||
               memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
        abort();
    }
    myna_instances_release(&set);
    return 0;
}
