/* api.c - blocking HTTP calls to the admin listener. */
#include "cli/api.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "core/banned.h"

#define RESP_MAX (64 << 20)

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct myna_api *a = arg;

    if (myna_buf_append(&a->resp, p, size * n) == 0)
        return size * n;
    a->too_big = 1;  /* the transfer ends here: no status, and why */
    return 0;
}

int myna_api_init(struct myna_api *a, const char *base, const char *token)
{
    memset(a, 0, sizeof(*a));
    a->base = base;
    a->token = token;
    a->resp.max = RESP_MAX;
    return (a->curl = curl_easy_init()) != NULL ? 0 : -1;
}

void myna_api_release(struct myna_api *a)
{
    if (a->curl)
        curl_easy_cleanup(a->curl);
    myna_buf_release(&a->resp);
    a->curl = NULL;
}

long myna_api_call(struct myna_api *a, const char *method, const char *path, const char *body)
{
    CURL *c = a->curl;
    char url[2048], auth[300];
    struct curl_slist *h = NULL;
    long status = -1;

    snprintf(url, sizeof(url), "%s%s", a->base, path);
    myna_buf_reset(&a->resp);
    a->too_big = 0;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* the admin listener itself, never a proxy of the environment
     * (http_proxy): it would get the token, or fail the call */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (a->token && *a->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a->token);
        h = curl_slist_append(h, auth);
    }
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (myna_buf_append(&a->resp, "", 1) == 0)  /* terminated even when empty */
        a->resp.len--;
    memset(auth, 0, sizeof(auth));
    return status;
}

void myna_api_print_error(const struct myna_api *a, const char *what, long status, void *err_file)
{
    FILE *err = err_file;
    cJSON *r = cJSON_Parse(a->resp.data ? a->resp.data : "");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error"), *f;

    fputs("myna: ", err);
    myna_api_put_text(err, what, 0);
    if (status < 0 && a->too_big) {
        fprintf(err, ": the answer of %s is larger than %d MiB\n", a->base, RESP_MAX >> 20);
    } else if (status < 0) {
        fprintf(err, ": cannot reach %s (is `myna serve` running?)\n", a->base);
    } else {
        fprintf(err, ": HTTP %ld%s", status, cJSON_IsString(e) ? ": " : "");
        myna_api_put_text(err, cJSON_IsString(e) ? e->valuestring : "", 0);
        fputc('\n', err);
    }
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(r, "fields")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(f, "field"),
                    *m = cJSON_GetObjectItemCaseSensitive(f, "error");
        if (cJSON_IsString(n) && cJSON_IsString(m)) {
            fputs("  ", err);
            myna_api_put_text(err, n->valuestring, 0);
            fputs(": ", err);
            myna_api_put_text(err, m->valuestring, 0);
            fputc('\n', err);
        }
    }
    cJSON_Delete(r);
}

void myna_api_print_bad_answer(const struct myna_api *a, const char *what, FILE *err)
{
    fputs("myna: ", err);
    myna_api_put_text(err, what, 0);
    fprintf(err, ": the answer of %s is not what myna answers (is it the admin listener?)\n",
            a->base);
}

size_t myna_api_put_text(FILE *f, const char *s, int lines)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), k, put = 0;

    for (; n > 0; p += k, n -= k) {
        k = myna_utf8_seq(p, n);
        if (k == 0 || (myna_control_len(p, n) != 0 && !(lines && (*p == '\n' || *p == '\t')))) {
            fputc('?', f);
            put++;
            k = k ? k : 1;
        } else {
            put += fwrite(p, 1, k, f);
        }
    }
    return put;
}
