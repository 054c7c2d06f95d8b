/* http_client.c - libcurl multi on libevent (the socket-action interface:
 * curl tells which sockets to watch and when to wake; the loop tells curl
 * what happened). */
#include "net/http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/banned.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (1 << 20)

struct myna_http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    size_t inflight;
    struct http_call *calls;   /* in flight, for free */
};

struct http_call {
    struct http_call *next, *prev;
    struct myna_http_client *c;
    CURL *easy;
    struct curl_slist *headers;
    char *body;                /* our copy of the request body */
    size_t body_len, body_off; /* send_once: its length and what curl has read */
    struct myna_buf resp;
    int body_rc;               /* MYNA_OK, or why the answer could not be kept */
    int discard;               /* req->discard_body */
    int status_only;           /* discard: ended at the final answer's headers */
    int64_t started_us;
    myna_http_cb cb;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
};

/* One per socket curl asked us to watch. */
struct http_sock {
    struct event *ev;
    struct myna_http_client *c;
};

static void check_done(struct myna_http_client *c);

/* The body of a send_once request. With no seek callback beside it,
 * libcurl cannot rewind it, so it cannot send it a second time. */
static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct http_call *call = arg;
    size_t left = call->body_len - call->body_off, k = size * n < left ? size * n : left;

    memcpy(buf, call->body + call->body_off, k);
    call->body_off += k;
    return k;
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct myna_http_client *c = arg;
    int running, flags = 0;

    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_done(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct myna_http_client *c = arg;
    int running;

    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct myna_http_client *c = userp;
    struct http_sock *hs = socketp;
    short kind;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (hs) {
            if (hs->ev)
                event_free(hs->ev);
            free(hs);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    /* Out of memory, the socket goes unwatched until curl asks again: its
     * transfer goes on at curl's timers and at worst ends by its own
     * timeout. Returning -1 would make curl give up every transfer of the
     * client, and this one never called back. */
    kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                   ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    if (hs == NULL) {
        if ((hs = calloc(1, sizeof(*hs))) == NULL)
            return 0;
        hs->c = c;
        curl_multi_assign(c->multi, s, hs);
    } else if (hs->ev) {
        event_free(hs->ev);
    }
    hs->ev = event_new(c->base, s, kind, on_socket_event, c);
    if (hs->ev != NULL && event_add(hs->ev, NULL) != 0) {
        event_free(hs->ev);
        hs->ev = NULL;
    }
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct myna_http_client *c = userp;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0)
        return event_del(c->timer);
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return event_add(c->timer, &tv);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct http_call *call = arg;
    size_t n = size * nmemb;

    if (call->discard)
        return n;
    if ((call->body_rc = myna_buf_append(&call->resp, ptr, n)) != MYNA_OK)
        return 0;  /* makes curl stop with CURLE_WRITE_ERROR */
    return n;
}

/* With discard_body, the transfer ends at the blank line after a final
 * answer's headers (the status is known; an interim 1xx goes on): a body
 * sent slowly, or never ended, must not turn a 2xx into a timeout.
 * Returning 0 makes curl stop with CURLE_WRITE_ERROR; finish knows why. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct http_call *call = arg;
    size_t n = size * nmemb;
    long status = 0;

    if (call->discard && (n == 0 || ptr[0] == '\r' || ptr[0] == '\n') &&
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status >= 200) {
        call->status_only = 1;
        return 0;
    }
    return n;
}

static void call_free(struct http_call *call)
{
    struct myna_http_client *c = call->c;

    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    curl_multi_remove_handle(c->multi, call->easy);
    curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    free(call->body);
    myna_buf_release(&call->resp);
    free(call);
    c->inflight--;
}

static void finish(struct http_call *call, CURLcode code)
{
    struct myna_http_resp r;

    memset(&r, 0, sizeof(r));
    r.elapsed_us = myna_mono_us() - call->started_us;
    r.body = call->resp.data ? call->resp.data : "";
    r.body_len = call->resp.len;
    r.error = "";
    if (call->body_rc != MYNA_OK) {
        r.rc = call->body_rc;
        r.error = r.rc == MYNA_ETOOBIG ? "response larger than the limit"
                                       : "out of memory for the response";
    } else if (code != CURLE_OK && !call->status_only) {
        long sent = -1;
        curl_off_t pre_us = -1;
        r.rc = MYNA_EIO;
        r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
        /* a timeout (or any failure) while the name was looked up or the
         * connection made has written no byte of the request either. The
         * request size counts a proxy's CONNECT too, so a tunnel refused
         * or a TLS handshake through it that failed is told by the time to
         * the start of the transfer, which stays 0 until the request goes
         * (and is set on a reused connection as well) */
        r.not_sent = code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
                     code == CURLE_COULDNT_CONNECT || code == CURLE_SSL_CONNECT_ERROR ||
                     (curl_easy_getinfo(call->easy, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK &&
                      sent == 0) ||
                     (curl_easy_getinfo(call->easy, CURLINFO_PRETRANSFER_TIME_T, &pre_us) ==
                          CURLE_OK &&
                      pre_us == 0);
        r.error = call->errbuf[0] ? call->errbuf : curl_easy_strerror(code);
    } else {
        curl_off_t after = 0;
        r.rc = MYNA_OK;
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &r.status);
        if (curl_easy_getinfo(call->easy, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
            r.retry_after_s = (int64_t)after;
    }
    /* the callback may start new requests; this call is freed after it returns,
     * so the callback must not free the client (the header says so) */
    call->cb(&r, call->arg);
    call_free(call);
}

static void check_done(struct myna_http_client *c)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct http_call *call;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        finish(call, msg->data.result);
    }
}

struct myna_http_client *myna_http_client_new(struct event_base *base, struct myna_err *err)
{
    struct myna_http_client *c;
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    if (!(v->features & CURL_VERSION_ASYNCHDNS)) {
        myna_err_set(err, MYNA_EINVAL, "libcurl lacks an asynchronous resolver");
        return NULL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = event_new(base, -1, 0, on_timer, c);
    if (c->multi == NULL || c->timer == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "cannot create the HTTP client");
        myna_http_client_free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    return c;
}

void myna_http_client_free(struct myna_http_client *c)
{
    if (c == NULL)
        return;
    while (c->calls)
        call_free(c->calls);  /* cancelled: no callbacks */
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->timer)
        event_free(c->timer);
    free(c);
}

size_t myna_http_cancel(struct myna_http_client *c, myna_http_cb cb, void *arg)
{
    struct http_call *call = c->calls, *next;
    size_t n = 0;

    for (; call != NULL; call = next) {
        next = call->next;
        if (call->cb == cb && call->arg == arg) {
            /* removing the easy handle also drops its pending "done"
             * message, so check_done never sees the freed call */
            call_free(call);
            n++;
        }
    }
    return n;
}

size_t myna_http_inflight(const struct myna_http_client *c)
{
    return c->inflight;
}

/* 1 when url names this host: "localhost" or a loopback address. A proxy
 * of the environment is never used for those: it could not reach them (a
 * proxy on another host) and has no business seeing their calls. */
static int is_loopback_url(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int yes = 0;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        struct in_addr a4;
        struct in6_addr a6;
        size_t n = strlen(host);
        if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
            host[n - 1] = '\0';  /* curl gives an IPv6 address in brackets */
            yes = inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        } else {
            yes = strcasecmp(host, "localhost") == 0 ||
                  (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127);
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
    return yes;
}

int myna_http_request(struct myna_http_client *c, const struct myna_http_req *req,
                      myna_http_cb cb, void *arg, struct myna_err *err)
{
    struct http_call *call;
    size_t max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;

    if (req->method == NULL || req->url == NULL || cb == NULL ||
        (strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0))
        return myna_err_set(err, MYNA_EINVAL, "bad HTTP request: method and an http(s) URL are required");
    if ((call = calloc(1, sizeof(*call))) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    call->c = c;
    call->cb = cb;
    call->arg = arg;
    call->discard = req->discard_body;
    call->resp = (struct myna_buf)MYNA_BUF_INIT(max);
    call->easy = curl_easy_init();
    if (call->easy == NULL)
        goto nomem;
    for (int i = 0; req->headers && req->headers[i]; i++) {
        struct curl_slist *h = curl_slist_append(call->headers, req->headers[i]);
        if (h == NULL)
            goto nomem;
        call->headers = h;
    }
    {   /* no "Expect: 100-continue" round trip on POST */
        struct curl_slist *h = curl_slist_append(call->headers, "Expect:");
        if (h == NULL)
            goto nomem;
        call->headers = h;
    }
    if (req->body) {
        if ((call->body = malloc(req->body_len + 1)) == NULL)
            goto nomem;
        memcpy(call->body, req->body, req->body_len);
        call->body[req->body_len] = '\0';
        call->body_len = req->body_len;
        if (req->send_once) {
            curl_easy_setopt(call->easy, CURLOPT_POST, 1L);
            curl_easy_setopt(call->easy, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(call->easy, CURLOPT_READDATA, call);
        } else {
            curl_easy_setopt(call->easy, CURLOPT_POSTFIELDS, call->body);
        }
        curl_easy_setopt(call->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    curl_easy_setopt(call->easy, CURLOPT_URL, req->url);
    curl_easy_setopt(call->easy, CURLOPT_CUSTOMREQUEST, req->method);
    if (strcmp(req->method, "GET") == 0)
        curl_easy_setopt(call->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(call->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(call->easy, CURLOPT_WRITEDATA, call);
    if (req->discard_body) {
        curl_easy_setopt(call->easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(call->easy, CURLOPT_HEADERDATA, call);
    }
    curl_easy_setopt(call->easy, CURLOPT_PRIVATE, (char *)call);
    curl_easy_setopt(call->easy, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(call->easy, CURLOPT_TIMEOUT_MS,
                     req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(call->easy, CURLOPT_NOSIGNAL, 1L);
    /* A transfer that times out or is removed while its name lookup runs
     * would otherwise wait for that lookup (the threaded resolver joins its
     * thread): with nameservers not answering, 20-30 s with the loop stopped.
     * With this, libcurl detaches the thread, which frees its own state when
     * getaddrinfo returns. */
    curl_easy_setopt(call->easy, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(call->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    /* other hosts go through the proxy of the environment, as libcurl reads
     * it (https_proxy, http_proxy, all_proxy, no_proxy) */
    if (is_loopback_url(req->url))
        curl_easy_setopt(call->easy, CURLOPT_PROXY, "");
    curl_easy_setopt(call->easy, CURLOPT_USERAGENT, "myna/" MYNA_VERSION);
    call->started_us = myna_mono_us();
    if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK)
        goto nomem;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->inflight++;
    return MYNA_OK;
nomem:
    if (call->easy)
        curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    free(call->body);
    free(call);
    return myna_err_set(err, MYNA_ENOMEM, "cannot start the HTTP request");
}
