/* reactor_internal.h: what backends share. Not a public header: protocol code
 * never includes it.
 *
 * Every backend's reactor struct begins with struct weft_reactor, and its
 * listeners and connectors begin with struct weft_listener / weft_connector.
 * Delayed calls live in one timer queue implementation (timerq.c) that both
 * the simulator and the epoll backend use; the reactor header points to its
 * backend's queue.
 */
#ifndef WEFT_REACTOR_INTERNAL_H
#define WEFT_REACTOR_INTERNAL_H

#include "weft/reactor.h"

struct weft_timerq;

struct weft_reactor {
    const weft_reactor_ops *ops;
    /* The backend's delayed-call queue (reactor/timerq.h), set by
     * weft__timerq_init: reactor/call.c reaches it through this pointer. */
    struct weft_timerq *timers;
};

typedef struct weft_listener_ops {
    void (*close)(weft_listener *l);
    const weft_address *(*address)(const weft_listener *l);
} weft_listener_ops;

struct weft_listener {
    const weft_listener_ops *ops;
    weft_reactor *reactor;
    weft_factory *factory;
};

typedef struct weft_connector_ops {
    int (*connect)(weft_connector *c);
    void (*stop)(weft_connector *c);
    void (*free)(weft_connector *c);
} weft_connector_ops;

struct weft_connector {
    const weft_connector_ops *ops;
    weft_reactor *reactor;
    weft_factory *factory;
    weft_endpoint endpoint;
};

/* Runs, instead of a droppable call's fn, when it is freed without running. */
typedef void (*weft__dropped_fn)(void *ctx);

/* weft_call_later for the library's own helpers (later.c, looping.c).
 * label: a static string naming the call (the simulator traces it and names
 * it in runaway verdicts); NULL is "call". droppable: ctx begins with a
 * weft__dropped_fn (reactor/timerq.h) that runs instead of fn when the call
 * is freed without running (reactor freed, host crashed), so ctx's resources
 * can be released. Returns a handle to release, as weft_call_later. */
weft_call *weft__call_later_ex(weft_reactor *r, int64_t delay_ns, const char *label,
                               bool droppable, weft_call_fn fn, void *ctx);

/* Factory start/stop bookkeeping (Twisted's doStart/doStop). */
void weft__factory_do_start(weft_factory *f);
void weft__factory_do_stop(weft_factory *f);

#endif
