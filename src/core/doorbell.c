/* doorbell.c - an eventfd that wakes the loop. */
#include "core/doorbell.h"

#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/banned.h"

struct myna_doorbell {
    int efd;
    struct event *ev;
    void (*cb)(void *arg);
    void *arg;
};

static void on_ring(evutil_socket_t fd, short what, void *arg)
{
    struct myna_doorbell *d = arg;
    uint64_t v;

    (void)what;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    d->cb(d->arg);
}

struct myna_doorbell *myna_doorbell_new(struct event_base *base, void (*cb)(void *arg),
                                        void *arg, struct myna_err *err)
{
    struct myna_doorbell *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    d->cb = cb;
    d->arg = arg;
    if ((d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        myna_err_set(err, MYNA_EIO, "cannot create eventfd: %s", strerror(errno));
        free(d);
        return NULL;
    }
    d->ev = event_new(base, d->efd, EV_READ | EV_PERSIST, on_ring, d);
    if (d->ev == NULL || event_add(d->ev, NULL) != 0) {
        myna_err_set(err, MYNA_ENOMEM, "cannot add a doorbell to the loop");
        myna_doorbell_free(d);
        return NULL;
    }
    return d;
}

void myna_doorbell_ring(struct myna_doorbell *d)
{
    uint64_t one = 1;

    while (write(d->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void myna_doorbell_free(struct myna_doorbell *d)
{
    if (d == NULL)
        return;
    if (d->ev)
        event_free(d->ev);
    close(d->efd);
    free(d);
}
