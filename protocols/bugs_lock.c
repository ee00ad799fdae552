/* bugs_lock.c: planted bug "a lock released twice" (protocols/bugs.h).
 *
 * Protocol bug-lock is a client of an echo server. Action bugs.lock CLIENT
 * N starts N workers that share one DeferredLock: a worker takes the lock,
 * sends "w<i>" and waits for its echo, giving up after timeout=MS (default
 * 40); either way it releases the lock. The Deferred fires, once every
 * worker is done, with the number of workers that got their echo. The buggy
 * reply handler does not know its worker already gave up: a reply arriving
 * after the timeout releases the lock a second time, handing it to the next
 * waiter while another worker still holds it (two workers in the critical
 * section) or releasing a lock nobody holds (WEFT_ENOTLOCKED). The code
 * checks its own mutual exclusion and reports either. The fixed version
 * ("fixed") drops a reply for a worker that is not holding the lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/bugs.h"

#define LOCK_WORKERS_MAX 16

typedef struct lock_client lock_client;

typedef enum wstate { W_WAITING, W_HOLDING, W_DONE } wstate;

typedef struct worker {
    lock_client *lc;
    int id;
    wstate state;
    weft_deferred *acquire; /* ours */
    weft_call *timer;
} worker;

struct lock_client {
    weft__bug_factory f; /* first: make returns &f.base */
    weft_reactor *r;
    bool fixed;
    long timeout_ms;
    weft__bug_conn *conn;
    weft_lock *lock;
    weft_deferred *d; /* borrowed: the run holds it */
    worker w[LOCK_WORKERS_MAX];
    int nworkers, ndone, nreplied;
    int holder; /* worker in the critical section, -1: none */
    bool started, dead;
};

static void release(lock_client *lc, worker *w)
{
    if (lc->holder == w->id)
        lc->holder = -1;
    int rc = weft_lock_release(lc->lock); /* may hand the lock on at once */
    if (rc == WEFT_ENOTLOCKED) {
        char msg[96];
        snprintf(msg, sizeof msg, "bugs.lock: worker %d released the lock nobody held", w->id);
        weft__bug_violation(msg);
    }
}

static void finish(lock_client *lc, worker *w)
{
    w->state = W_DONE;
    if (++lc->ndone < lc->nworkers)
        return;
    weft_deferred_callback(lc->d, (void *)(intptr_t)lc->nreplied);
    weft__bug_close(lc->conn);
}

static void worker_timeout(void *ctx)
{
    worker *w = ctx;
    lock_client *lc = w->lc;
    weft_call_release(w->timer);
    w->timer = NULL;
    finish(lc, w); /* gave up: done before the lock goes to the next */
    release(lc, w);
}

static weft_result acquired(weft_result in, void *ctx)
{
    worker *w = ctx;
    lock_client *lc = w->lc;
    if (lc->dead)
        return in;
    if (lc->holder >= 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "bugs.lock: worker %d got the lock while worker %d held it",
                 w->id, lc->holder);
        weft__bug_violation(msg);
    }
    lc->holder = w->id;
    w->state = W_HOLDING;
    char line[16];
    snprintf(line, sizeof line, "w%d", w->id);
    (void)weft__bug_send(lc->conn, line);
    w->timer = weft_call_later(lc->r, lc->timeout_ms * WEFT_NS_PER_MS, worker_timeout, w);
    return in;
}

static weft_result acquire_failed(weft_result in, void *ctx)
{
    (void)ctx;
    return weft_value(NULL); /* cancelled when the client is freed */
}

static void lock_made(weft__bug_conn *c)
{
    lock_client *lc = c->owner;
    lc->conn = c;
}

static void lock_line(weft__bug_conn *c, const char *line, size_t len)
{
    lock_client *lc = c->owner;
    if (!lc->started || line[0] != 'w')
        return;
    char *end;
    long id = strtol(line + 1, &end, 10);
    if (end == line + 1 || *end != '\0' || id < 0 || id >= lc->nworkers)
        return;
    worker *w = &lc->w[id];
    if (lc->fixed && w->state != W_HOLDING)
        return; /* it gave up already: the reply is stale */
    if (w->timer) {
        (void)weft_call_cancel(w->timer);
        weft_call_release(w->timer);
        w->timer = NULL;
    }
    if (w->state == W_HOLDING) {
        lc->nreplied++;
        finish(lc, w);
    }
    release(lc, w); /* the bug: also for a worker that gave up */
}

static void lock_lost(weft__bug_conn *c, const weft_failure *reason)
{
    lock_client *lc = c->owner;
    if (lc->conn == c)
        lc->conn = NULL;
}

static const weft__bug_conn_ops lock_ops = {.made = lock_made, .line = lock_line, .lost = lock_lost};

static weft_factory *lock_make(weft_reactor *r, const char *args, char *err, size_t errlen)
{
    long timeout = 40;
    if (weft__bug_arg_long(args, "timeout", &timeout) != WEFT_OK || timeout < 1 ||
        timeout > 3600000) {
        snprintf(err, errlen, "bug-lock: timeout=MS takes milliseconds (1 to 3600000)");
        return NULL;
    }
    lock_client *lc = weft_calloc(1, sizeof *lc);
    weft_lock *lock = lc ? weft_lock_new() : NULL;
    if (!lock) {
        weft_free(lc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft__bug_factory_init(&lc->f, &lock_ops, lc, 0, 0);
    lc->r = r;
    lc->fixed = weft__bug_fixed(args);
    lc->timeout_ms = timeout;
    lc->lock = lock;
    lc->holder = -1;
    return &lc->f.base;
}

static void lock_destroy(weft_factory *f)
{
    lock_client *lc = (lock_client *)f;
    lc->dead = true;
    weft_lock_free(lc->lock); /* cancels the waiters: acquire_failed */
    for (int i = 0; i < lc->nworkers; i++)
        weft_deferred_unref(lc->w[i].acquire);
    weft_free(lc);
}

static int lock_start(weft_protocol *p, const weft__bug_args *a, weft_deferred **out, char *err,
                      size_t errlen)
{
    lock_client *lc = weft__bug_owner(p, &lock_ops);
    if (!lc) {
        snprintf(err, errlen, "bugs.lock: the client is not a connected bug-lock client");
        return WEFT_EINVAL;
    }
    if (lc->started) {
        snprintf(err, errlen, "bugs.lock: one run per client");
        return WEFT_ESTATE;
    }
    if (!a->has_num || a->num < 1 || a->num > LOCK_WORKERS_MAX) {
        snprintf(err, errlen, "bugs.lock: expected a number of workers (1 to %d)",
                 LOCK_WORKERS_MAX);
        return WEFT_EINVAL;
    }
    weft_deferred *d = weft_deferred_new();
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return WEFT_ENOMEM;
    }
    lc->d = d;
    lc->started = true;
    lc->nworkers = (int)a->num;
    for (int i = 0; i < lc->nworkers; i++) {
        worker *w = &lc->w[i];
        w->lc = lc;
        w->id = i;
        w->state = W_WAITING;
        w->acquire = weft_lock_acquire(lc->lock);
        if (w->acquire)
            (void)weft_deferred_add_callbacks(w->acquire, acquired, w, acquire_failed, w);
    }
    *out = d;
    return WEFT_OK;
}

const weft__bug weft__bug_lock = {
    .protocol = "bug-lock",
    .action = "bugs.lock",
    .summary = "a lock released twice",
    .make = lock_make,
    .destroy = lock_destroy,
    .start = lock_start,
};
