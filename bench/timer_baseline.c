/* timer_baseline.c - the floor for batch flush lateness: how late plain
 * libevent timers fire on this machine, armed the way a bot arms its batch
 * timers (one per contact, deadline = arrival + window, arrivals spread over
 * a few seconds). Prints p50/p99/max lateness in ms.
 *
 *   usage: myna_timer_baseline [N=1000] [WINDOW_MS=200] [SPREAD_MS=3000]   */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct timer {
    struct event *ev;
    double deadline_ms;
};

static double *late;
static int n_late, n_total, window_ms = 200;

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct timer *t = arg;

    (void)fd;
    (void)what;
    late[n_late++] = now_ms() - t->deadline_ms;
    if (n_late == n_total)
        event_base_loopbreak(event_get_base(t->ev));
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Arms timer i when its "message arrives". */
static void on_arrival(evutil_socket_t fd, short what, void *arg)
{
    struct timer *t = arg;
    struct timeval tv = { window_ms / 1000, (window_ms % 1000) * 1000 };

    (void)fd;
    (void)what;
    t->deadline_ms = now_ms() + window_ms;
    evtimer_add(t->ev, &tv);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1000;
    int spread = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 3000;
    struct event_base *base = event_base_new();
    struct timer *t;
    struct event **arrive;

    if (argc > 2)
        window_ms = (int)strtol(argv[2], NULL, 10);
    if (n <= 0 || n > 100000 || spread < 0 || window_ms <= 0 || window_ms > 60000 || base == NULL)
        return 2;
    t = calloc((size_t)n, sizeof(*t));
    arrive = calloc((size_t)n, sizeof(*arrive));
    late = calloc((size_t)n, sizeof(*late));
    n_total = n;
    srand(42);
    for (int i = 0; i < n; i++) {
        struct timeval at = { 0, 0 };
        int ms = spread ? rand() % spread : 0;
        t[i].ev = evtimer_new(base, on_timer, &t[i]);
        arrive[i] = evtimer_new(base, on_arrival, &t[i]);
        at.tv_sec = ms / 1000;
        at.tv_usec = (ms % 1000) * 1000;
        evtimer_add(arrive[i], &at);
    }
    event_base_dispatch(base);
    qsort(late, (size_t)n_late, sizeof(*late), cmp);
    printf("timers=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", n_late, late[n_late / 2],
           late[(n_late * 99) / 100 < n_late ? (n_late * 99) / 100 : n_late - 1],
           late[n_late - 1]);
    for (int i = 0; i < n; i++) {
        event_free(t[i].ev);
        event_free(arrive[i]);
    }
    free(t);
    free(arrive);
    free(late);
    event_base_free(base);
    return 0;
}
