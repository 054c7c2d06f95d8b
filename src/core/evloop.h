/* evloop.h - the libevent loop Myna's servers run on. Header only, so that
 * the benchmark's baselines (bench/) run on exactly the same loop. */
#ifndef MYNA_CORE_EVLOOP_H
#define MYNA_CORE_EVLOOP_H

#include <event2/event.h>

/* An event base whose epoll backend keeps a changelist: the changes made to
 * a socket's events during one turn of the loop reach the kernel as at most
 * one epoll_ctl when the turn ends. evhttp switches a connection's read and
 * write interest off and on around every request (four epoll_ctl calls, each
 * a system call); with the changelist, a switch undone within the same turn
 * costs nothing. libevent's one caveat, a socket watched through two
 * dup()ed descriptors, does not apply: the master never dup()s one. Falls
 * back to the default base if the configured one cannot be made; NULL only
 * when neither can. */
static inline struct event_base *myna_event_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base = NULL;

    if (cfg != NULL) {
        if (event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
            base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    return base != NULL ? base : event_base_new();
}

#endif
