/* looping.c: LoopingCall, built only on the reactor interface.
 *
 * A looping call runs fn every interval_ns. The schedule is anchored at the
 * start time: after each run (or after the Deferred fn returned has fired) the
 * next run is due at the next multiple of the interval after the current time,
 * counted from start_ns. A time exactly on a multiple is "now", not "next", so
 * the next run is a whole interval later. When the clock jumped past several
 * multiples, the missed runs are not replayed: fn gets the number of whole
 * intervals since its previous run (Twisted's withCount) and the excess is
 * added to the skipped counter. Interval 0 reschedules with delay 0 and always
 * counts 1. Times are integer nanoseconds, so Twisted's float guard (a
 * remainder too small to move the time) has no equivalent here.
 *
 * The loop's "done" Deferred fires with the looping call when it is stopped,
 * or fails with the Failure of fn's Deferred. Re-entrancy: fn, done's
 * handlers and fn's Deferred's handlers may call stop, start (again) or free.
 * A busy counter marks the stretches where user code runs; free() inside one
 * only records the request and the outermost stretch finishes it, so the
 * struct is never freed under a running frame. Freeing while fn's Deferred is
 * pending cancels that Deferred, whose handler then releases everything.
 *
 * The scheduled run is droppable (reactor_internal.h): when the reactor is
 * freed (or, on the simulator, the host crashes) with a run pending, the hook
 * forgets the dead handle and the loop stops as weft_looping_call_stop
 * would: done fires with the looping call. The struct stays the user's, to
 * free with weft_looping_call_free (after its reactor was freed, that is the
 * only call it takes).
 */
#include "reactor/reactor_internal.h"
#include "weft/reactor.h"

struct weft_looping_call {
    weft__dropped_fn dropped; /* first: the scheduled run is droppable */
    weft_reactor *reactor;
    weft_looping_fn fn;
    void *ctx;
    int64_t interval_ns;
    weft_time_ns start_ns;
    weft_time_ns last_ns;   /* time of the previous run of fn */
    bool have_last;
    bool run_at_start;      /* started with now = true */
    bool running;
    bool free_requested;
    unsigned busy;          /* nested stretches running user code */
    weft_call *call;        /* the scheduled next run (our handle) */
    weft_deferred *done;    /* our reference; NULL when fired or not started */
    weft_deferred *waiting; /* fn's Deferred (its reference) while pending */
    uint64_t skipped;
};

static void lc_tick(void *ctx);

static void lc_real_free(weft_looping_call *lc)
{
    if (lc->call) {
        weft_call_cancel(lc->call);
        weft_call_release(lc->call);
    }
    weft_deferred_unref(lc->done);
    weft_free(lc);
}

static void lc_enter(weft_looping_call *lc)
{
    lc->busy++;
}

/* Leave a stretch; true when the struct was freed. */
static bool lc_leave(weft_looping_call *lc)
{
    if (--lc->busy == 0 && lc->free_requested && !lc->waiting) {
        lc_real_free(lc);
        return true;
    }
    return false;
}

static void lc_drop_call(weft_looping_call *lc)
{
    if (lc->call) {
        weft_call_cancel(lc->call);
        weft_call_release(lc->call);
        lc->call = NULL;
    }
}

/* Fire done with the looping call. Caller is inside a stretch. */
static void lc_fire_done(weft_looping_call *lc)
{
    weft_deferred *d = lc->done;
    lc->done = NULL;
    if (d) {
        weft_deferred_callback(d, lc);
        weft_deferred_unref(d);
    }
}

/* Stop and fail done with f (taken). Caller is inside a stretch. */
static void lc_fail_done(weft_looping_call *lc, weft_failure *f)
{
    lc->running = false;
    lc_drop_call(lc);
    weft_deferred *d = lc->done;
    lc->done = NULL;
    if (d) {
        weft_deferred_errback(d, f);
        weft_deferred_unref(d);
    } else {
        weft_failure_free(f);
    }
}

/* Schedule the next run from the current time. */
static int lc_schedule(weft_looping_call *lc)
{
    int64_t delay_ns = 0;
    if (lc->interval_ns > 0) {
        int64_t running_for_ns = weft_now(lc->reactor) - lc->start_ns;
        delay_ns = lc->interval_ns - running_for_ns % lc->interval_ns;
    }
    lc->call = weft__call_later_ex(lc->reactor, delay_ns, "looping.run", true, lc_tick, lc);
    return lc->call ? WEFT_OK : WEFT_ENOMEM;
}

/* fn finished (synchronously or through its Deferred) without failing. */
static void lc_after_success(weft_looping_call *lc)
{
    if (!lc->running) {
        lc_fire_done(lc);
        return;
    }
    if (lc_schedule(lc) != WEFT_OK)
        lc_fail_done(lc, weft_failure_new(WEFT_FAILURE_NO_MEMORY,
                                          "looping call: cannot schedule the next run"));
}

static weft_result lc_waited_ok(weft_result in, void *ctx)
{
    weft_looping_call *lc = ctx;
    weft_deferred *d = lc->waiting;
    lc->waiting = NULL;
    lc_enter(lc);
    lc_after_success(lc);
    lc_leave(lc);
    /* The run stack holds d while its handlers run: releasing here is safe. */
    weft_deferred_unref(d);
    return in;
}

static weft_result lc_waited_failed(weft_result in, void *ctx)
{
    weft_looping_call *lc = ctx;
    weft_deferred *d = lc->waiting;
    lc->waiting = NULL;
    lc_enter(lc);
    lc_fail_done(lc, weft_failure_copy(in.failure));
    lc_leave(lc);
    weft_deferred_unref(d);
    /* Consumed: the Failure now lives on in done. */
    return weft_value(NULL);
}

/* One run of fn. Caller is inside a stretch. */
static void lc_run(weft_looping_call *lc)
{
    weft_time_ns now = weft_now(lc->reactor);
    uint64_t count = 1;
    if (lc->interval_ns > 0) {
        weft_time_ns last = lc->have_last ? lc->last_ns
                                          : lc->start_ns - (lc->run_at_start ? lc->interval_ns : 0);
        /* Truncating division, as Python's int() on the quotient. */
        int64_t this_n = (now - lc->start_ns) / lc->interval_ns;
        int64_t last_n = (last - lc->start_ns) / lc->interval_ns;
        count = this_n > last_n ? (uint64_t)(this_n - last_n) : 0;
    }
    weft_deferred *d = NULL;
    if (count > 0) {
        lc->last_ns = now;
        lc->have_last = true;
        lc->skipped += count - 1;
        d = lc->fn(lc->ctx, count);
    }
    if (!d) {
        lc_after_success(lc);
        return;
    }
    lc->waiting = d;
    if (weft_deferred_add_callbacks(d, lc_waited_ok, lc, lc_waited_failed, lc) != WEFT_OK) {
        lc->waiting = NULL;
        weft_deferred_unref(d);
        lc_fail_done(lc, weft_failure_new(WEFT_FAILURE_NO_MEMORY,
                                          "looping call: cannot wait for fn's Deferred"));
        return;
    }
    if (lc->free_requested && lc->waiting)
        weft_deferred_cancel(lc->waiting); /* freed from inside fn */
}

static void lc_tick(void *ctx)
{
    weft_looping_call *lc = ctx;
    /* The call has run; its handle may go now. */
    weft_call_release(lc->call);
    lc->call = NULL;
    lc_enter(lc);
    lc_run(lc);
    lc_leave(lc);
}

/* The scheduled run was freed without running: the handle is dead. Stop
 * as weft_looping_call_stop does between runs (done fires). */
static void lc_dropped(void *ctx)
{
    weft_looping_call *lc = ctx;
    lc->call = NULL; /* the queue frees the node */
    if (!lc->running)
        return;
    lc->running = false;
    lc_enter(lc);
    lc_fire_done(lc);
    lc_leave(lc);
}

weft_looping_call *weft_looping_call_new(weft_reactor *r, weft_looping_fn fn, void *ctx)
{
    if (!r || !fn)
        return NULL;
    weft_looping_call *lc = weft_calloc(1, sizeof *lc);
    if (!lc)
        return NULL;
    lc->dropped = lc_dropped;
    lc->reactor = r;
    lc->fn = fn;
    lc->ctx = ctx;
    return lc;
}

int weft_looping_call_start(weft_looping_call *lc, int64_t interval_ns, bool now,
                            weft_deferred **done)
{
    if (done)
        *done = NULL;
    if (!lc || interval_ns < 0)
        return WEFT_EINVAL;
    /* done still held while not running: stopped from inside fn or while
     * waiting on fn's Deferred, and that run has not finished yet. */
    if (lc->running || lc->done || lc->waiting || lc->free_requested)
        return WEFT_ESTATE;
    weft_deferred *d = weft_deferred_new();
    if (!d)
        return WEFT_ENOMEM;
    lc->interval_ns = interval_ns;
    lc->start_ns = weft_now(lc->reactor);
    lc->run_at_start = now;
    lc->have_last = false;
    lc->skipped = 0;
    lc->running = true;
    if (!now && lc_schedule(lc) != WEFT_OK) {
        lc->running = false;
        weft_deferred_unref(d);
        return WEFT_ENOMEM;
    }
    lc->done = d;
    if (done)
        *done = weft_deferred_ref(d);
    if (now) {
        lc_enter(lc);
        lc_run(lc);
        lc_leave(lc);
    }
    return WEFT_OK;
}

int weft_looping_call_stop(weft_looping_call *lc)
{
    if (!lc)
        return WEFT_EINVAL;
    if (!lc->running)
        return WEFT_ESTATE;
    lc->running = false;
    if (lc->call) {
        /* Between runs: done fires now. Inside fn or while waiting on its
         * Deferred, it fires once that finishes. */
        lc_drop_call(lc);
        lc_enter(lc);
        lc_fire_done(lc);
        lc_leave(lc);
    }
    return WEFT_OK;
}

int weft_looping_call_reset(weft_looping_call *lc)
{
    if (!lc)
        return WEFT_EINVAL;
    if (!lc->running)
        return WEFT_ESTATE;
    if (!lc->call)
        return WEFT_OK; /* inside fn or waiting: nothing is scheduled yet */
    lc_drop_call(lc);
    lc->start_ns = weft_now(lc->reactor);
    if (lc_schedule(lc) != WEFT_OK) {
        lc_enter(lc);
        lc_fail_done(lc, weft_failure_new(WEFT_FAILURE_NO_MEMORY,
                                          "looping call: cannot schedule the next run"));
        lc_leave(lc);
        return WEFT_ENOMEM;
    }
    return WEFT_OK;
}

bool weft_looping_call_running(const weft_looping_call *lc)
{
    return lc && lc->running;
}

uint64_t weft_looping_call_skipped(const weft_looping_call *lc)
{
    return lc ? lc->skipped : 0;
}

void weft_looping_call_free(weft_looping_call *lc)
{
    if (!lc || lc->free_requested)
        return;
    lc->free_requested = true;
    lc_enter(lc);
    if (lc->running) {
        lc->running = false;
        if (lc->call) {
            lc_drop_call(lc);
            lc_fire_done(lc);
        }
    }
    /* Inside fn (busy > 1) lc_run cancels fn's Deferred once it has one. */
    if (lc->waiting && lc->busy == 1)
        weft_deferred_cancel(lc->waiting);
    lc_leave(lc);
}
