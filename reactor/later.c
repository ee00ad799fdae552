/* later.c: deferLater and addTimeout, built only on the reactor interface.
 *
 * Both helpers keep a small record shared by a timer and one handler on the
 * Deferred, freed when both are done with it (two holds). The record holds a
 * reference on the Deferred only while its timer is pending, so that the timer
 * never fires or cancels a freed Deferred; the timer gives it up when it runs,
 * is cancelled or is dropped. The handler is an owned one
 * (weft_deferred_add_both_owned): it gives up its hold when it runs, or, if the
 * Deferred is freed before its chain gets there (paused, or never fired), when
 * it is dropped. So no order of "the timer fires, the Deferred fires, the user
 * lets go, the reactor is freed" leaves a cycle: once the timer is done, only
 * the Deferred keeps the record alive, never the other way round.
 *
 * weft_defer_later follows Twisted's shape: a cancellable Deferred whose
 * first callback runs fn, and a delayed call that fires the Deferred with NULL
 * after delay_ns. Because fn runs as a callback, its result may be a value, a
 * Failure or a Deferred to wait for. The handler sits on both paths (so it
 * always gives up its hold) but runs fn only on the callback path, passing a
 * Failure through as Twisted's addCallback does. The canceller ends the timer;
 * the Cancelled Failure then reaches the handler. Firing the Deferred by hand
 * runs fn early; the timer then finds it called and does nothing.
 *
 * weft_deferred_add_timeout appends one handler (Twisted appends two,
 * convertCancelled then cancelTimeout, with nothing in between, so one does
 * the same) and schedules the timer. Releasing the timer's reference from
 * inside the Deferred's own handler is safe: the run stack holds its own.
 *
 * Both timers are droppable (reactor_internal.h): when the reactor is freed
 * (or, on the simulator, the host crashes) with one pending, its dropped hook
 * cancels the Deferred and releases the timer's hold and reference. A dropped
 * defer_later's Deferred fails with Cancelled; a dropped timeout cancels the
 * Deferred it guards, which fails with Cancelled (not Timeout: the deadline
 * never came, and on_timeout does not run).
 */
#include "reactor/reactor_internal.h"
#include "weft/reactor.h"

/* ------------------------------------------------------------ deferLater */

typedef struct later {
    weft__dropped_fn dropped; /* first: the timer is droppable */
    weft_deferred *d; /* our reference while the timer is pending */
    weft_call *call;  /* NULL once the timer ran, was cancelled or dropped */
    weft_later_fn fn;
    void *ctx;
    unsigned holds; /* timer pending + handler pending */
} later;

static void later_drop(later *l)
{
    if (--l->holds == 0)
        weft_free(l);
}

/* The timer is done: give up its hold and its reference on d (which the
 * caller keeps valid across this call). */
static void later_timer_done(later *l)
{
    weft_deferred *own = l->d;
    l->call = NULL;
    l->d = NULL;
    later_drop(l);
    weft_deferred_unref(own);
}

static weft_result later_run(weft_result in, void *ctx)
{
    later *l = ctx;
    weft_later_fn fn = l->fn;
    void *fn_ctx = l->ctx;
    later_drop(l);
    if (in.kind == WEFT_RESULT_FAILURE)
        return in; /* addCallback: a Failure passes by */
    return fn ? fn(fn_ctx) : weft_value(NULL);
}

/* d was freed before its chain reached later_run. */
static void later_handler_dropped(void *ctx)
{
    later_drop(ctx);
}

static void later_fire(void *ctx)
{
    later *l = ctx;
    weft_deferred *d = weft_deferred_ref(l->d);
    weft_call_release(l->call);
    later_timer_done(l);
    /* Runs later_run (unless d is paused). WEFT_EALREADYCALLED if someone
     * fired d by hand first: then there is nothing left to do. */
    weft_deferred_callback(d, NULL);
    weft_deferred_unref(d);
}

static void later_cancel(weft_deferred *d, void *ctx)
{
    later *l = ctx;
    (void)d;
    /* No timer: later_dropped is cancelling d (a timer that ran has called
     * d, and a called Deferred's canceller never runs). */
    if (!l->call)
        return;
    weft_call_cancel(l->call);
    weft_call_release(l->call);
    /* d fails with Cancelled once we return: later_run sees that Failure
     * (or, if d is paused and then freed, is dropped) and gives up its hold.
     * The canceller's caller holds a reference: d stays valid. */
    later_timer_done(l);
}

/* The timer was freed without running (the queue frees the node): cancel d,
 * so it fails with Cancelled. */
static void later_dropped(void *ctx)
{
    later *l = ctx;
    weft_deferred *d = weft_deferred_ref(l->d);
    later_timer_done(l);
    weft_deferred_cancel(d); /* later_cancel finds no timer */
    weft_deferred_unref(d);
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
    l->call = weft__call_later_ex(r, delay_ns, "later.defer", true, later_fire, l);
    if (!l->call) {
        weft_deferred_unref(d); /* never fired, no handler: l is ours alone */
        weft_free(l);
        return NULL;
    }
    if (weft_deferred_add_both_owned(d, later_run, later_handler_dropped, l) != WEFT_OK) {
        weft_call_cancel(l->call);
        weft_call_release(l->call);
        weft_deferred_unref(d);
        weft_free(l);
        return NULL;
    }
    l->d = weft_deferred_ref(d);
    l->holds = 2;
    return d;
}

/* ------------------------------------------------------------ addTimeout */

typedef struct timeout {
    weft__dropped_fn dropped; /* first: the timer is droppable */
    weft_deferred *d; /* our reference while the timer is pending */
    weft_call *call;  /* NULL once the timer ran, was cancelled or dropped */
    int64_t timeout_ns;
    weft_handler_fn on_timeout;
    void *ctx;
    bool timed_out;
    unsigned holds; /* timer pending + handler pending */
} timeout;

static void timeout_drop(timeout *t)
{
    if (--t->holds == 0)
        weft_free(t);
}

/* The timer is done: give up its hold and its reference on d (which the
 * caller keeps valid across this call). */
static void timeout_timer_done(timeout *t)
{
    weft_deferred *own = t->d;
    t->call = NULL;
    t->d = NULL;
    timeout_drop(t);
    weft_deferred_unref(own);
}

static void timeout_fire(void *ctx)
{
    timeout *t = ctx;
    weft_deferred *d = weft_deferred_ref(t->d);
    weft_call_release(t->call);
    t->timed_out = true;
    /* From here on only d (through the handler) keeps t: if d is paused, or
     * its canceller does not fire it, t lives until the handler runs or d is
     * freed, and nothing of ours keeps d alive. */
    timeout_timer_done(t);
    weft_deferred_cancel(d);
    weft_deferred_unref(d);
}

/* The deadline timer was freed without running (the queue frees the node):
 * cancel d, which fails with Cancelled and keeps it (no Timeout). */
static void timeout_dropped(void *ctx)
{
    timeout *t = ctx;
    weft_deferred *d = weft_deferred_ref(t->d);
    timeout_timer_done(t);
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
        timeout_timer_done(t); /* the run stack holds d */
    }
    timeout_drop(t);
    return out;
}

/* d was freed before its chain reached timeout_handler. The timer is done:
 * while it is pending, its reference keeps d alive. */
static void timeout_handler_dropped(void *ctx)
{
    timeout_drop(ctx);
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
    int err = weft_deferred_add_both_owned(d, timeout_handler, timeout_handler_dropped, t);
    if (err != WEFT_OK) {
        weft_call_cancel(t->call);
        weft_call_release(t->call);
        weft_free(t);
        weft_deferred_unref(d);
        return err;
    }
    return WEFT_OK;
}
