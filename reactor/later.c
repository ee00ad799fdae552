/* later.c: deferLater and addTimeout, built only on the reactor interface.
 *
 * weft_defer_later follows Twisted's shape: a cancellable Deferred whose
 * first handler runs fn, and a delayed call that fires the Deferred with NULL
 * after delay_ns. Because fn runs as a handler, its result may be a value, a
 * Failure or a Deferred to wait for, exactly as a callback's. The record
 * (struct later) holds one reference on the Deferred while the timer is
 * pending, so the timer never fires a freed Deferred. The record is shared by
 * the timer and the handler and freed when both are done with it; the
 * canceller ends both at once (after a cancel the handler can never run: it
 * sits in the callback slot of the first pair, and a cancelled Deferred
 * fails). Firing the Deferred by hand runs fn early; the timer then finds it
 * called and does nothing.
 *
 * weft_deferred_add_timeout appends one handler (Twisted appends two,
 * convertCancelled then cancelTimeout, with nothing in between, so one does
 * the same) and schedules the timer. The record is shared by the timer and the
 * handler and freed when both are done with it; it holds a reference on the
 * Deferred so the timer can cancel it. Releasing that reference from inside
 * the Deferred's own handler is safe: the run stack holds its own.
 *
 * Both timers are droppable (reactor_internal.h): when the reactor is freed
 * (or, on the simulator, the host crashes) with one pending, its dropped hook
 * cancels the Deferred, so every handler and record is released and nothing
 * leaks. A dropped defer_later's Deferred fails with Cancelled; a dropped
 * timeout cancels the Deferred it guards, which fails with Cancelled (not
 * Timeout: the deadline never came, and on_timeout does not run).
 */
#include "reactor/reactor_internal.h"
#include "weft/reactor.h"

/* ------------------------------------------------------------ deferLater */

typedef struct later {
    weft__dropped_fn dropped; /* first: the timer is droppable */
    weft_deferred *d; /* our reference while the timer is pending */
    weft_call *call;  /* NULL once it ran or was cancelled */
    weft_later_fn fn;
    void *ctx;
    unsigned holds; /* timer pending + handler pending */
    bool dropping;  /* the timer was dropped: the canceller drops one hold */
} later;

static void later_drop(later *l, unsigned n)
{
    l->holds -= n;
    if (l->holds == 0)
        weft_free(l);
}

static weft_result later_run(weft_result in, void *ctx)
{
    later *l = ctx;
    (void)in;
    weft_later_fn fn = l->fn;
    void *fn_ctx = l->ctx;
    later_drop(l, 1);
    return fn ? fn(fn_ctx) : weft_value(NULL);
}

static void later_fire(void *ctx)
{
    later *l = ctx;
    weft_deferred *d = l->d;
    weft_call_release(l->call);
    l->call = NULL;
    l->d = NULL;
    /* Runs later_run (unless d is paused). WEFT_EALREADYCALLED if someone
     * fired d by hand first: then there is nothing left to do. */
    weft_deferred_callback(d, NULL);
    later_drop(l, 1);
    weft_deferred_unref(d);
}

static void later_cancel(weft_deferred *d, void *ctx)
{
    later *l = ctx;
    (void)d;
    if (l->dropping) {
        /* From later_dropped: only the handler's hold is left to us. */
        later_drop(l, 1);
        return;
    }
    if (!l->call)
        return;
    weft_call_cancel(l->call);
    weft_call_release(l->call);
    l->call = NULL;
    weft_deferred *own = l->d;
    l->d = NULL;
    /* d fails with Cancelled once we return, so later_run, in the callback
     * slot of the first pair, never runs: drop both holds. */
    later_drop(l, 2);
    /* The canceller's caller holds a reference: d stays valid. */
    weft_deferred_unref(own);
}

/* The timer was freed without running: cancel d, so it fails with
 * Cancelled and later_run (never to run now) gives up its hold. */
static void later_dropped(void *ctx)
{
    later *l = ctx;
    weft_deferred *own = l->d;
    l->call = NULL; /* the queue frees the node */
    l->d = NULL;
    l->dropping = true;
    weft_deferred_cancel(own); /* not fired yet: later_cancel drops a hold */
    later_drop(l, 1);          /* the timer's */
    weft_deferred_unref(own);
}

weft_deferred *weft_defer_later(weft_reactor *r, int64_t delay_ns, weft_later_fn fn, void *ctx)
{
    if (!r || delay_ns < 0)
        return NULL;
    later *l = weft_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->dropped = later_dropped;
    l->fn = fn;
    l->ctx = ctx;
    weft_deferred *d = weft_deferred_new_cancellable(later_cancel, l);
    if (!d) {
        weft_free(l);
        return NULL;
    }
    if (weft_deferred_add_callback(d, later_run, l) != WEFT_OK)
        goto fail;
    l->call = weft__call_later_ex(r, delay_ns, "later.defer", true, later_fire, l);
    if (!l->call)
        goto fail;
    l->d = weft_deferred_ref(d);
    l->holds = 2;
    return d;
fail:
    /* Never fired: its handlers and canceller are dropped without running. */
    weft_deferred_unref(d);
    weft_free(l);
    return NULL;
}

/* ------------------------------------------------------------ addTimeout */

typedef struct timeout {
    weft__dropped_fn dropped; /* first: the timer is droppable */
    weft_deferred *d; /* our reference, released with the record */
    weft_call *call;  /* the timer; NULL once it ran or was cancelled */
    int64_t timeout_ns;
    weft_handler_fn on_timeout;
    void *ctx;
    bool timed_out;
    unsigned holds; /* timer pending + handler pending */
} timeout;

static void timeout_drop(timeout *t)
{
    if (--t->holds > 0)
        return;
    weft_deferred *d = t->d;
    weft_free(t);
    weft_deferred_unref(d);
}

static void timeout_fire(void *ctx)
{
    timeout *t = ctx;
    weft_call_release(t->call);
    t->call = NULL;
    t->timed_out = true;
    weft_deferred_cancel(t->d);
    timeout_drop(t);
}

/* The deadline timer was freed without running: cancel d (its handler then
 * releases the record). */
static void timeout_dropped(void *ctx)
{
    timeout *t = ctx;
    weft_deferred *d = weft_deferred_ref(t->d);
    t->call = NULL; /* the queue frees the node */
    timeout_drop(t); /* the timer's hold; the handler still holds t */
    weft_deferred_cancel(d);
    weft_deferred_unref(d);
}

static weft_result timeout_handler(weft_result in, void *ctx)
{
    timeout *t = ctx;
    weft_result out = in;
    if (t->timed_out) {
        if (t->on_timeout) {
            out = t->on_timeout(in, t->ctx);
        } else if (in.kind == WEFT_RESULT_FAILURE &&
                   weft_failure_check(in.failure, WEFT_FAILURE_CANCELLED)) {
            out = weft_failed(weft_failure_new(WEFT_FAILURE_TIMEOUT,
                                               "Deferred timed out after %lld ns",
                                               (long long)t->timeout_ns));
        }
    }
    /* cancelTimeout: d has a result; the timer is no longer needed. */
    if (t->call) {
        weft_call_cancel(t->call);
        weft_call_release(t->call);
        t->call = NULL;
        t->holds--; /* the timer's hold; the handler's goes below */
    }
    timeout_drop(t);
    return out;
}

int weft_deferred_add_timeout(weft_deferred *d, weft_reactor *r, int64_t timeout_ns,
                              weft_handler_fn on_timeout, void *ctx)
{
    if (!d || !r || timeout_ns < 0)
        return WEFT_EINVAL;
    timeout *t = weft_calloc(1, sizeof *t);
    if (!t)
        return WEFT_ENOMEM;
    t->dropped = timeout_dropped;
    t->timeout_ns = timeout_ns;
    t->on_timeout = on_timeout;
    t->ctx = ctx;
    t->call = weft__call_later_ex(r, timeout_ns, "later.timeout", true, timeout_fire, t);
    if (!t->call) {
        weft_free(t);
        return WEFT_ENOMEM;
    }
    t->d = weft_deferred_ref(d);
    t->holds = 2;
    /* If d already has its result, the handler runs now and cancels the timer. */
    int err = weft_deferred_add_both(d, timeout_handler, t);
    if (err != WEFT_OK) {
        weft_call_cancel(t->call);
        weft_call_release(t->call);
        weft_free(t);
        weft_deferred_unref(d);
        return err;
    }
    return WEFT_OK;
}
