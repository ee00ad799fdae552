/* DeferredLock, DeferredSemaphore and DeferredQueue.
 *
 * A lock is a semaphore of one token whose acquire fires with the lock. Both
 * keep their waiters in a FIFO ring and hold one reference on each waiter
 * until they fire it; a waiter's canceller removes it from the ring (Twisted's
 * _cancelAcquire) and the Deferred then fails with Cancelled. The queue keeps
 * buffered values in a second ring. Freeing a lock, semaphore or queue fails
 * its waiters with Cancelled; buffered values are the user's and are left
 * alone.
 *
 * One rule for a waiter that already has a result when its turn comes (fired
 * by hand; a cancelled one has left the ring already): it is skipped and
 * released, and the token, the lock or the value goes to the next waiter, or
 * back to the gate, or into the queue's buffer. Nothing is ever handed to a
 * Deferred that cannot take it, so nothing is lost (Twisted's release and put
 * raise AlreadyCalledError there instead: docs/deferred.md).
 */
#include <string.h>

#include "defer/defer_internal.h"

/* A FIFO of pointers: head index plus count over a power-of-two array. */
typedef struct ring {
    void **items;
    size_t cap;
    size_t head;
    size_t count;
} ring;

static int ring_push(ring *r, void *item)
{
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(void *))
            return WEFT_ENOMEM;
        void **items = weft_malloc(cap * sizeof *items);
        if (!items)
            return WEFT_ENOMEM;
        for (size_t i = 0; i < r->count; i++)
            items[i] = r->items[(r->head + i) & (r->cap - 1)];
        weft_free(r->items);
        r->items = items;
        r->cap = cap;
        r->head = 0;
    }
    r->items[(r->head + r->count) & (r->cap - 1)] = item;
    r->count++;
    return WEFT_OK;
}

static void *ring_pop(ring *r)
{
    if (!r->count)
        return NULL;
    void *item = r->items[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->count--;
    return item;
}

/* Remove the first occurrence of item, keeping the order of the rest. */
static bool ring_remove(ring *r, const void *item)
{
    for (size_t i = 0; i < r->count; i++) {
        if (r->items[(r->head + i) & (r->cap - 1)] != item)
            continue;
        for (size_t j = i; j + 1 < r->count; j++)
            r->items[(r->head + j) & (r->cap - 1)] = r->items[(r->head + j + 1) & (r->cap - 1)];
        r->count--;
        return true;
    }
    return false;
}

/* The first waiter that can still take a result, removed from the ring with
 * the ring's reference (the caller's now), or NULL. Waiters fired by hand are
 * released on the way. */
static weft_deferred *pop_live_waiter(ring *waiting)
{
    weft_deferred *d;
    while ((d = ring_pop(waiting)) != NULL) {
        if (!weft_deferred_called(d))
            return d;
        weft_deferred_unref(d);
    }
    return NULL;
}

/* Release every waiter fired by hand, keeping the order of the others. */
static void prune_called_waiters(ring *waiting)
{
    size_t kept = 0;
    for (size_t i = 0; i < waiting->count; i++) {
        weft_deferred *d = waiting->items[(waiting->head + i) & (waiting->cap - 1)];
        if (weft_deferred_called(d))
            weft_deferred_unref(d);
        else
            waiting->items[(waiting->head + kept++) & (waiting->cap - 1)] = d;
    }
    waiting->count = kept;
}

/* Fail every waiter with Cancelled and free the ring. */
static void cancel_waiters(ring *waiting)
{
    weft_deferred *d;
    while ((d = ring_pop(waiting)) != NULL) {
        weft_deferred_errback(d, weft_failure_new(WEFT_FAILURE_CANCELLED,
                                                  "the lock, semaphore or queue was freed"));
        weft_deferred_unref(d);
    }
    weft_free(waiting->items);
    waiting->items = NULL;
    waiting->cap = 0;
}

/* ------------------------------------------------- semaphore and lock */

typedef struct gate {
    unsigned tokens;
    unsigned limit;
    void *self; /* the value acquirers receive */
    ring waiting;
} gate;

struct weft_semaphore {
    gate g;
};

struct weft_lock {
    gate g;
};

static void gate_cancel_waiter(weft_deferred *d, void *ctx)
{
    gate *g = ctx;
    if (ring_remove(&g->waiting, d))
        weft_deferred_unref(d); /* the gate's reference; the canceller's caller holds one */
}

static weft_deferred *gate_acquire(gate *g)
{
    if (g->tokens > 0) {
        weft_deferred *d = weft_succeed(g->self);
        if (d)
            g->tokens--;
        return d;
    }
    weft_deferred *d = weft_deferred_new_cancellable(gate_cancel_waiter, g);
    if (!d)
        return NULL;
    if (ring_push(&g->waiting, d) != WEFT_OK) {
        weft_deferred_unref(d);
        return NULL;
    }
    return weft_deferred_ref(d);
}

static int gate_release(gate *g)
{
    if (g->tokens >= g->limit)
        return WEFT_ENOTLOCKED;
    /* The token goes straight to the first waiter that can take it. */
    weft_deferred *d = pop_live_waiter(&g->waiting);
    if (!d) {
        g->tokens++;
        return WEFT_OK;
    }
    weft_deferred_callback(d, g->self); /* not called: cannot fail */
    weft_deferred_unref(d);
    return WEFT_OK;
}

weft_semaphore *weft_semaphore_new(unsigned tokens)
{
    if (tokens < 1)
        return NULL;
    weft_semaphore *sem = weft_calloc(1, sizeof *sem);
    if (!sem)
        return NULL;
    sem->g.tokens = tokens;
    sem->g.limit = tokens;
    sem->g.self = sem;
    return sem;
}

void weft_semaphore_free(weft_semaphore *sem)
{
    if (!sem)
        return;
    cancel_waiters(&sem->g.waiting);
    weft_free(sem);
}

weft_deferred *weft_semaphore_acquire(weft_semaphore *sem)
{
    return sem ? gate_acquire(&sem->g) : NULL;
}

int weft_semaphore_release(weft_semaphore *sem)
{
    return sem ? gate_release(&sem->g) : WEFT_EINVAL;
}

unsigned weft_semaphore_tokens(const weft_semaphore *sem)
{
    return sem ? sem->g.tokens : 0;
}

weft_lock *weft_lock_new(void)
{
    weft_lock *lock = weft_calloc(1, sizeof *lock);
    if (!lock)
        return NULL;
    lock->g.tokens = 1;
    lock->g.limit = 1;
    lock->g.self = lock;
    return lock;
}

void weft_lock_free(weft_lock *lock)
{
    if (!lock)
        return;
    cancel_waiters(&lock->g.waiting);
    weft_free(lock);
}

weft_deferred *weft_lock_acquire(weft_lock *lock)
{
    return lock ? gate_acquire(&lock->g) : NULL;
}

int weft_lock_release(weft_lock *lock)
{
    return lock ? gate_release(&lock->g) : WEFT_EINVAL;
}

bool weft_lock_locked(const weft_lock *lock)
{
    return lock && lock->g.tokens == 0;
}

/* ---------------------------------------------------------------- queue */

struct weft_dqueue {
    size_t size;
    size_t backlog;
    ring pending;
    ring waiting;
};

static void queue_cancel_get(weft_deferred *d, void *ctx)
{
    weft_dqueue *q = ctx;
    if (ring_remove(&q->waiting, d))
        weft_deferred_unref(d);
}

weft_dqueue *weft_dqueue_new(size_t size, size_t backlog)
{
    weft_dqueue *q = weft_calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->size = size;
    q->backlog = backlog;
    return q;
}

void weft_dqueue_free(weft_dqueue *q)
{
    if (!q)
        return;
    cancel_waiters(&q->waiting);
    weft_free(q->pending.items);
    weft_free(q);
}

int weft_dqueue_put(weft_dqueue *q, void *value)
{
    if (!q)
        return WEFT_EINVAL;
    weft_deferred *d = pop_live_waiter(&q->waiting);
    if (d) {
        weft_deferred_callback(d, value); /* not called: cannot fail */
        weft_deferred_unref(d);
        return WEFT_OK;
    }
    if (q->pending.count >= q->size)
        return WEFT_EOVERFLOW;
    return ring_push(&q->pending, value);
}

int weft_dqueue_get(weft_dqueue *q, weft_deferred **out)
{
    if (!out)
        return WEFT_EINVAL;
    *out = NULL;
    if (!q)
        return WEFT_EINVAL;
    if (q->pending.count) {
        weft_deferred *d = weft_succeed(q->pending.items[q->pending.head]);
        if (!d)
            return WEFT_ENOMEM;
        ring_pop(&q->pending);
        *out = d;
        return WEFT_OK;
    }
    /* Waiters fired by hand count against the backlog only until it is
     * full: then they make room (a put would skip them anyway). */
    if (q->waiting.count >= q->backlog)
        prune_called_waiters(&q->waiting);
    if (q->waiting.count >= q->backlog)
        return WEFT_EUNDERFLOW;
    weft_deferred *d = weft_deferred_new_cancellable(queue_cancel_get, q);
    if (!d)
        return WEFT_ENOMEM;
    if (ring_push(&q->waiting, d) != WEFT_OK) {
        weft_deferred_unref(d);
        return WEFT_ENOMEM;
    }
    *out = weft_deferred_ref(d);
    return WEFT_OK;
}

size_t weft_dqueue_pending(const weft_dqueue *q)
{
    return q ? q->pending.count : 0;
}

size_t weft_dqueue_waiting(const weft_dqueue *q)
{
    return q ? q->waiting.count : 0;
}
