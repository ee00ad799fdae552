/* epoll.c: the real reactor. One epoll instance, the shared delayed-call
 * queue (timerq.h), a private PRNG and CLOCK_MONOTONIC. This file and its
 * siblings epoll_tcp.c and epoll_conn.c are the only places in the library
 * that read a clock or touch the operating system's sockets.
 *
 * One turn of the loop does, in this order:
 *   1. wait in epoll until the earliest of: an I/O event, the next delayed
 *      call, the caller's deadline (no wait at all when work is pending);
 *      then dispatch the events of that batch;
 *   2. run the delayed calls due now as one pass, in (time, sequence) order;
 *      calls scheduled by them wait for the next turn (timerq's pass rule);
 *   3. service the pending list as it stood when this step began (aborts
 *      reported, written bytes flushed, immediate connect failures
 *      reported); entries queued meanwhile wait for the next turn;
 *   4. free the objects closed during the turn (the zombie list).
 * The caller's condition is checked between turns, so anything steps 1-3
 * did is seen before the loop sleeps again.
 * Nothing a protocol calls on a transport runs another protocol callback
 * synchronously: closes, flushes and failures are reported from the loop.
 *
 * The loop is idle when no call is pending and no connection, listener,
 * connect attempt or pending entry exists; run() then returns.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "reactor/epoll_internal.h"

#define EVENTS_PER_WAIT 64

static weft__ep_reactor *ep_of(weft_reactor *r)
{
    return (weft__ep_reactor *)(void *)r;
}

static weft_timerq *timers_of(weft__ep_reactor *r)
{
    return &r->base.timers;
}

/* ------------------------------------------------------------- lists */

void weft__ep_list_init(weft__ep_link *head)
{
    head->prev = head->next = head;
}

void weft__ep_list_push(weft__ep_link *head, weft__ep_link *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

void weft__ep_list_remove(weft__ep_link *node)
{
    if (!node->next)
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
}

/* ------------------------------------------------------ epoll plumbing */

int weft__ep_errno(int e)
{
    switch (e) {
    case 0:
        return WEFT_OK;
    case ECONNREFUSED:
        return WEFT_ECONNREFUSED;
    case ETIMEDOUT:
        return WEFT_ETIMEDOUT;
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
        return WEFT_ECONNRESET;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
        return WEFT_EHOSTUNREACH;
    case EADDRINUSE:
        return WEFT_EADDRINUSE;
    case ENOTCONN:
        return WEFT_ENOTCONN;
    case ENOMEM:
    case ENOBUFS:
        return WEFT_ENOMEM;
    case EMFILE:
    case ENFILE:
        return WEFT_ELIMIT;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
    case EINVAL:
    case EACCES:
    case EPERM:
        return WEFT_EINVAL;
    default:
        return WEFT_EIO;
    }
}

int weft__ep_watch(weft__ep_reactor *r, weft__ep_obj *obj, uint32_t want)
{
    if (obj->fd < 0)
        want = 0;
    if (want == obj->mask)
        return WEFT_OK;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = want;
    ev.data.ptr = obj;
    int op = obj->mask == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(r->epfd, op, obj->fd, &ev) != 0)
        return weft__ep_errno(errno);
    obj->mask = want;
    return WEFT_OK;
}

void weft__ep_close_fd(weft__ep_reactor *r, weft__ep_obj *obj)
{
    if (obj->fd < 0)
        return;
    (void)weft__ep_watch(r, obj, 0); /* close() would drop it anyway */
    obj->mask = 0;
    close(obj->fd);
    obj->fd = -1;
}

void weft__ep_defer(weft__ep_reactor *r, weft__ep_obj *obj)
{
    if (obj->pending || obj->dead)
        return;
    obj->pending = true;
    obj->pending_next = NULL;
    if (r->pending_tail)
        r->pending_tail->pending_next = obj;
    else
        r->pending_head = obj;
    r->pending_tail = obj;
}

void weft__ep_bury(weft__ep_reactor *r, weft__ep_obj *obj)
{
    if (obj->dead)
        return;
    obj->dead = true;
    obj->zombie_next = r->zombies;
    r->zombies = obj;
}

/* Drop dead objects from the pending list, then free the zombies. */
static void free_zombies(weft__ep_reactor *r)
{
    if (!r->zombies)
        return;
    weft__ep_obj *keep_head = NULL, *keep_tail = NULL;
    for (weft__ep_obj *o = r->pending_head; o;) {
        weft__ep_obj *next = o->pending_next;
        o->pending_next = NULL;
        if (o->dead) {
            o->pending = false;
        } else {
            if (keep_tail)
                keep_tail->pending_next = o;
            else
                keep_head = o;
            keep_tail = o;
        }
        o = next;
    }
    r->pending_head = keep_head;
    r->pending_tail = keep_tail;
    weft__ep_obj *z = r->zombies;
    r->zombies = NULL;
    while (z) {
        weft__ep_obj *next = z->zombie_next;
        weft__ep_free_obj(z);
        z = next;
    }
}

/* ------------------------------------------------------ clock and PRNG */

static weft_time_ns monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (weft_time_ns)ts.tv_sec * WEFT_NS_PER_S + ts.tv_nsec;
}

static weft_time_ns ep_now(weft_reactor *r)
{
    (void)r;
    return monotonic_ns();
}

/* SplitMix64: a 64-bit state advanced by a fixed odd constant, output mixed
 * by two multiply-xorshift rounds. Good enough for jitter; not a choice
 * source (the real reactor is not deterministic anyway). */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Unbiased [0, n): multiply the 32-bit draw by n and reject the few low
 * products that would favour some values. */
static uint32_t ep_random(weft_reactor *rr, uint32_t n, const char *label)
{
    (void)label;
    weft__ep_reactor *r = ep_of(rr);
    if (n <= 1)
        return 0;
    uint64_t m = (uint64_t)(uint32_t)(splitmix64(&r->rng_state) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(splitmix64(&r->rng_state) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

/* ------------------------------------------------------------- timers */

/* Run the calls due now as one pass. */
static void run_timers(weft__ep_reactor *r)
{
    weft_timerq *q = timers_of(r);
    weft_time_ns top;
    weft_time_ns now = monotonic_ns();
    if (!weft__timerq_heap_top(q, &top) || top > now) {
        if (weft__timerq_pass_size(q) == 0)
            return;
    }
    size_t n = weft__timerq_fill_pass(q, now);
    if (n == 0) {
        /* Out of memory for the pass array: run the earliest call alone, so
         * time still moves forward. */
        weft_time_ns t;
        weft_call *c = weft__timerq_pop(q, &t);
        weft_call_fn fn = c->u.fn;
        void *ctx = c->ctx;
        weft__timerq_fire(q, c, t);
        fn(ctx);
        return;
    }
    while (weft__timerq_pass_size(q) > 0) {
        weft_time_ns t;
        weft_call *c = weft__timerq_pass_take(q, 0, &t);
        weft_call_fn fn = c->u.fn;
        void *ctx = c->ctx;
        weft__timerq_fire(q, c, t);
        fn(ctx);
    }
}

/* ---------------------------------------------------------------- loop */

static bool ep_idle(weft__ep_reactor *r)
{
    return r->conns_open == 0 && r->listeners_open == 0 && r->connectors_busy == 0 &&
           r->pending_head == NULL && weft__timerq_pending(timers_of(r)) == 0;
}

static void service_pending(weft__ep_reactor *r)
{
    weft__ep_obj *o = r->pending_head;
    r->pending_head = r->pending_tail = NULL;
    while (o) {
        weft__ep_obj *next = o->pending_next;
        o->pending_next = NULL;
        o->pending = false;
        if (!o->dead)
            weft__ep_service(r, o);
        o = next;
    }
}

/* Milliseconds epoll_wait may sleep to wake no later than wake_ns (rounded
 * up, so the loop never spins short of a timer). */
static int wait_ms(weft_time_ns wake_ns)
{
    if (wake_ns == INT64_MAX)
        return -1;
    weft_time_ns now = monotonic_ns();
    if (wake_ns <= now)
        return 0;
    int64_t ms = (wake_ns - now + WEFT_NS_PER_MS - 1) / WEFT_NS_PER_MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int ep_turn(weft__ep_reactor *r, weft_time_ns deadline)
{
    weft_time_ns wake = deadline;
    weft_time_ns next;
    if (weft__timerq_next_time(timers_of(r), &next) && next < wake)
        wake = next;
    int timeout_ms = (r->pending_head || r->stopping) ? 0 : wait_ms(wake);

    struct epoll_event evs[EVENTS_PER_WAIT];
    int n = epoll_wait(r->epfd, evs, EVENTS_PER_WAIT, timeout_ms);
    if (n < 0) {
        if (errno != EINTR)
            return weft__ep_errno(errno);
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        weft__ep_obj *o = evs[i].data.ptr;
        if (!o->dead)
            weft__ep_dispatch(r, o, evs[i].events);
    }

    run_timers(r);
    service_pending(r);
    free_zombies(r);
    return WEFT_OK;
}

static int ep_loop(weft__ep_reactor *r, bool (*cond)(void *), void *ctx, bool until,
                   weft_time_ns deadline)
{
    if (r->running || r->freeing)
        return WEFT_ESTATE;
    r->running = true;
    r->stopping = false;
    int rc;
    for (;;) {
        if (cond && cond(ctx)) {
            rc = WEFT_OK;
            break;
        }
        if (r->stopping) {
            /* run() was asked to stop: done. run_until() did not reach its
             * condition: say so, as when it runs out of work. */
            rc = until ? WEFT_ESTATE : WEFT_OK;
            break;
        }
        if (until && monotonic_ns() >= deadline) {
            rc = WEFT_ETIMEDOUT;
            break;
        }
        if (ep_idle(r)) {
            rc = until ? WEFT_ESTATE : WEFT_OK;
            break;
        }
        rc = ep_turn(r, until ? deadline : INT64_MAX);
        if (rc != WEFT_OK)
            break;
    }
    r->running = false;
    r->stopping = false;
    return rc;
}

static int ep_run(weft_reactor *rr)
{
    return ep_loop(ep_of(rr), NULL, NULL, false, INT64_MAX);
}

static int ep_run_until(weft_reactor *rr, bool (*cond)(void *), void *ctx, weft_time_ns deadline)
{
    return ep_loop(ep_of(rr), cond, ctx, true, deadline);
}

static void ep_stop(weft_reactor *rr)
{
    weft__ep_reactor *r = ep_of(rr);
    if (r->running)
        r->stopping = true;
}

static void ep_free(weft_reactor *rr)
{
    weft__ep_reactor *r = ep_of(rr);
    if (r->freeing)
        return;
    r->freeing = true;
    weft__ep_close_all(r);
    /* Whatever was pending is dead now, or has nothing left to report. */
    for (weft__ep_obj *o = r->pending_head; o;) {
        weft__ep_obj *next = o->pending_next;
        o->pending = false;
        o->pending_next = NULL;
        o = next;
    }
    r->pending_head = r->pending_tail = NULL;
    free_zombies(r);
    weft__timerq_destroy(timers_of(r));
    close(r->epfd);
    weft_free(r->read_buf);
    weft_free(r);
}

static const weft_reactor_ops ep_ops = {
    .name = "epoll",
    .now = ep_now,
    .random = ep_random,
    .run = ep_run,
    .stop = ep_stop,
    .run_until = ep_run_until,
    .listen = weft__ep_listen,
    .connect = weft__ep_connect,
    .free = ep_free,
};

weft_reactor *weft_reactor_new_epoll(void)
{
    weft__ep_reactor *r = weft_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->read_buf = weft_malloc(WEFT__EP_READ_BYTES);
    if (!r->read_buf) {
        weft_free(r);
        return NULL;
    }
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0) {
        weft_free(r->read_buf);
        weft_free(r);
        return NULL;
    }
    r->base.base.ops = &ep_ops;
    weft__timerq_init(timers_of(r), &r->base.base);
    weft__ep_list_init(&r->conns);
    weft__ep_list_init(&r->listeners);
    weft__ep_list_init(&r->connectors);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    r->rng_state = (uint64_t)monotonic_ns() ^ ((uint64_t)wall.tv_nsec << 32) ^ (uint64_t)wall.tv_sec;
    return &r->base.base;
}
