/* slow_dns.c - libmyna_slow_dns.so, an LD_PRELOAD shim for tests: name
 * lookups of MYNA_SLOW_DNS_HOST take MYNA_SLOW_DNS_MS and then fail, like a
 * resolver whose nameservers do not answer; every other name goes to the
 * real getaddrinfo. A test checks that the shim is loaded by looking up
 * myna_slow_dns_ms with dlsym. Not part of myna: no project headers. */
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <time.h>

#define MYNA_SLOW_DNS_HOST "slow-dns.myna.test"
#define MYNA_SLOW_DNS_MS 3000

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

static getaddrinfo_fn real_getaddrinfo;  /* set before any thread can call us */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res);
int myna_slow_dns_ms(void);

__attribute__((constructor)) static void find_real(void)
{
    real_getaddrinfo = (getaddrinfo_fn)(void (*)(void))dlsym(RTLD_NEXT, "getaddrinfo");
}

int myna_slow_dns_ms(void)
{
    return MYNA_SLOW_DNS_MS;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (node && strcmp(node, MYNA_SLOW_DNS_HOST) == 0) {
        struct timespec ts = { MYNA_SLOW_DNS_MS / 1000, (MYNA_SLOW_DNS_MS % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) != 0)
            ;
        return EAI_AGAIN;  /* "temporary failure in name resolution" */
    }
    if (real_getaddrinfo == NULL)
        return EAI_SYSTEM;
    return real_getaddrinfo(node, service, hints, res);
}
