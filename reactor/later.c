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
 * If the reactor is freed while such a timer is pending, the timer is dropped
 * without running and its record (and the reference) is not released: free
 * reactors after their work is done, as the tests do.
 */
#include "weft/reactor.h"

/* ------------------------------------------------------------ deferLater */

typedef struct later {
    weft_deferred *d; /* our reference while the timer is pending */
    weft_call *call;  /* NULL once it ran or was cancelled */
    weft_later_fn fn;
    void *ctx;
    unsigned holds; /* timer pending + handler pending */
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

weft_deferred *weft_defer_later(weft_reactor *r, int64_t delay_ns, weft_later_fn fn, void *ctx)
{
    if (!r || delay_ns < 0)
        return NULL;
    later *l = weft_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->fn = fn;
    l->ctx = ctx;
    weft_deferred *d = weft_deferred_new_cancellable(later_cancel, l);
    if (!d) {
        weft_free(l);
        return NULL;
    }
    if (weft_deferred_add_callback(d, later_run, l) != WEFT_OK)
        goto fail;
    l->call = weft_call_later(r, delay_ns, later_fire, l);
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
    t->timeout_ns = timeout_ns;
    t->on_timeout = on_timeout;
    t->ctx = ctx;
    t->call = weft_call_later(r, timeout_ns, timeout_fire, t);
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
