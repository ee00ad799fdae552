/* LoopingCall on the simulator: schedule anchored at the start time, skipped
 * intervals counted (withCount), "the present is not the future", interval 0,
 * stop/reset/free from everywhere, fn returning Deferreds, failures, misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft/sim.h"

#define MS WEFT_NS_PER_MS
#define REC_MAX 256

typedef enum mode {
    MODE_PLAIN,          /* return NULL */
    MODE_STOP_AT,        /* stop from inside fn at call stop_at */
    MODE_DEFER_FIRST,    /* first call returns rec.d (test keeps a ref) */
    MODE_FAIL_AT,        /* return a failed Deferred at call fail_at */
    MODE_STOP_AND_FAIL,  /* stop, then return a failed Deferred */
    MODE_RESTART_INSIDE, /* stop, then try to start again from inside fn */
    MODE_FREE_INSIDE,    /* free the looping call from inside fn */
    MODE_FREE_INSIDE_DEFER, /* free from inside fn, then return rec.d */
} mode;

typedef struct rec {
    weft_sim *sim;
    weft_reactor *r;
    weft_looping_call *lc;
    mode mode;
    int calls;
    int stop_at, fail_at;
    weft_time_ns times[REC_MAX];
    uint64_t counts[REC_MAX];
    weft_deferred *d;        /* MODE_DEFER_FIRST: the Deferred fn returns */
    weft_deferred *done;     /* the loop's done */
    int inside_rc;           /* MODE_RESTART_INSIDE: what start returned */
    weft_deferred_state done_state_inside;
} rec;

static weft_deferred *fn_record(void *ctx, uint64_t count)
{
    rec *x = ctx;
    assert_true(x->calls < REC_MAX);
    x->times[x->calls] = weft_now(x->r);
    x->counts[x->calls] = count;
    x->calls++;
    switch (x->mode) {
    case MODE_PLAIN:
        return NULL;
    case MODE_STOP_AT:
        if (x->calls == x->stop_at) {
            assert_int_equal(weft_looping_call_stop(x->lc), WEFT_OK);
            /* done fires once fn has returned, not inside stop. */
            if (x->done)
                x->done_state_inside = weft_deferred_peek(x->done, NULL);
        }
        return NULL;
    case MODE_DEFER_FIRST:
        return x->calls == 1 ? weft_deferred_ref(x->d) : NULL;
    case MODE_FAIL_AT:
        if (x->calls == x->fail_at)
            return weft_fail(weft_failure_new("Boom", "call %d failed", x->calls));
        return NULL;
    case MODE_STOP_AND_FAIL:
        assert_int_equal(weft_looping_call_stop(x->lc), WEFT_OK);
        return weft_fail(weft_failure_new("Boom", "after stop"));
    case MODE_RESTART_INSIDE: {
        assert_int_equal(weft_looping_call_stop(x->lc), WEFT_OK);
        weft_deferred *d2 = (weft_deferred *)1;
        x->inside_rc = weft_looping_call_start(x->lc, 5 * MS, false, &d2);
        assert_null(d2);
        return NULL;
    }
    case MODE_FREE_INSIDE:
        weft_looping_call_free(x->lc);
        x->lc = NULL;
        return NULL;
    case MODE_FREE_INSIDE_DEFER:
        weft_looping_call_free(x->lc);
        x->lc = NULL;
        return weft_deferred_ref(x->d);
    }
    return NULL;
}

static void rec_init(rec *x, uint64_t seed, int64_t jitter_ns, weft_choice *choices)
{
    memset(x, 0, sizeof *x);
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.jitter_ns = jitter_ns;
    cfg.max_events = 1000000;
    x->sim = weft_sim_new(&cfg, choices ? choices : weft_choice_seeded(seed));
    assert_non_null(x->sim);
    x->r = weft_sim_reactor(x->sim);
    x->lc = weft_looping_call_new(x->r, fn_record, x);
    assert_non_null(x->lc);
}

static void rec_fini(rec *x)
{
    weft_looping_call_free(x->lc);
    weft_deferred_unref(x->done);
    weft_deferred_unref(x->d);
    weft_sim_free(x->sim);
}

/* done succeeded with the looping call as its value. */
static void assert_done_ok(rec *x, weft_looping_call *lc)
{
    weft_result res;
    assert_int_equal(weft_deferred_peek(x->done, &res), WEFT_DEFERRED_SUCCEEDED);
    assert_ptr_equal(res.value, lc);
}

static void assert_done_failed(rec *x, const char *type)
{
    weft_result res;
    assert_int_equal(weft_deferred_peek(x->done, &res), WEFT_DEFERRED_FAILED);
    assert_string_equal(res.failure->type, type);
    /* Consume it: the test handled it. */
    assert_int_equal(weft_deferred_take_result(x->done, &res), WEFT_OK);
    weft_failure_free(res.failure);
}

static void noop(void *ctx)
{
    (void)ctx;
}

/* ----------------------------------------------------------------- tests */

static void start_now_runs_at_once_then_every_interval(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    assert_int_equal(weft_looping_call_start(x.lc, 1000 * MS, true, &x.done), WEFT_OK);
    assert_true(weft_looping_call_running(x.lc));
    assert_int_equal(x.calls, 1); /* synchronously, inside start */
    assert_int_equal(x.times[0], 0);
    assert_int_equal(x.counts[0], 1);
    assert_int_equal(weft_sim_advance(x.sim, 3000 * MS), WEFT_OK);
    assert_int_equal(x.calls, 4);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(x.times[i], i * 1000 * MS);
        assert_int_equal(x.counts[i], 1);
    }
    assert_int_equal(weft_looping_call_skipped(x.lc), 0);
    assert_int_equal(weft_deferred_peek(x.done, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_OK);
    assert_false(weft_looping_call_running(x.lc));
    assert_done_ok(&x, x.lc);
    assert_int_equal(weft_sim_pending(x.sim), 0); /* the next run was cancelled */
    assert_int_equal(weft_sim_advance(x.sim, 5000 * MS), WEFT_OK);
    assert_int_equal(x.calls, 4);
    rec_fini(&x);
}

static void start_later_first_run_after_one_interval(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    assert_int_equal(weft_sim_advance(x.sim, 3 * MS), WEFT_OK); /* start at 3 ms */
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    assert_int_equal(x.calls, 0);
    assert_int_equal(weft_sim_advance(x.sim, 10 * MS - 1), WEFT_OK);
    assert_int_equal(x.calls, 0);
    assert_int_equal(weft_sim_advance(x.sim, 1), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.times[0], 13 * MS);
    assert_int_equal(x.counts[0], 1);
    assert_int_equal(weft_sim_advance(x.sim, 20 * MS), WEFT_OK);
    assert_int_equal(x.calls, 3);
    assert_int_equal(x.times[2], 33 * MS);
    rec_fini(&x);
}

/* Twisted's case 41a: interval 50, runs at 0, 51 and 202 get counts 1, 1, 3.
 * The simulator makes the runs late: with a jitter window, a blocker event
 * due later is chosen first (replayed choices 1, 1), and the loop's tick then
 * runs at the blocker's time. */
static void late_runs_count_skipped_intervals(void **state)
{
    (void)state;
    static const uint32_t picks[] = {1, 1};
    rec x;
    rec_init(&x, 0, 102 * MS, weft_choice_replay(picks, 2));
    weft_call_release(weft_call_later(x.r, 51 * MS, noop, NULL));
    weft_call_release(weft_call_later(x.r, 202 * MS, noop, NULL));
    assert_int_equal(weft_looping_call_start(x.lc, 50 * MS, true, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_run_until(x.sim, 240 * MS), WEFT_OK);
    assert_int_equal(x.calls, 3);
    assert_int_equal(x.times[0], 0);
    assert_int_equal(x.times[1], 51 * MS);
    assert_int_equal(x.times[2], 202 * MS);
    assert_int_equal(x.counts[0], 1);
    assert_int_equal(x.counts[1], 1);
    assert_int_equal(x.counts[2], 3);
    assert_int_equal(weft_looping_call_skipped(x.lc), 2);
    /* Not replayed: the next run is at the next multiple, 250. */
    assert_int_equal(weft_sim_run_until(x.sim, 250 * MS), WEFT_OK);
    assert_int_equal(x.calls, 4);
    assert_int_equal(x.times[3], 250 * MS);
    assert_int_equal(x.counts[3], 1);
    rec_fini(&x);
}

static void fire_rec_d(void *ctx)
{
    rec *x = ctx;
    assert_int_equal(weft_deferred_callback(x->d, NULL), WEFT_OK);
}

/* fn's Deferred delays the next run until it fires; the intervals missed
 * meanwhile are counted (Twisted's case 41c). */
static void deferred_result_delays_next_run(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_DEFER_FIRST;
    x.d = weft_deferred_new();
    weft_call_release(weft_call_later(x.r, 160 * MS, fire_rec_d, &x));
    assert_int_equal(weft_looping_call_start(x.lc, 50 * MS, true, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_run_until(x.sim, 199 * MS), WEFT_OK);
    assert_int_equal(x.calls, 1); /* nothing while fn's Deferred is pending */
    assert_int_equal(weft_sim_run_until(x.sim, 200 * MS), WEFT_OK);
    assert_int_equal(x.calls, 2);
    assert_int_equal(x.times[1], 200 * MS);
    assert_int_equal(x.counts[1], 4);
    assert_int_equal(weft_looping_call_skipped(x.lc), 3);
    rec_fini(&x);
}

/* Exactly on a multiple is the present: the next run is a whole interval on. */
static void present_is_not_the_future(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_DEFER_FIRST;
    x.d = weft_deferred_new();
    weft_call_release(weft_call_later(x.r, 10 * MS, fire_rec_d, &x));
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_run_until(x.sim, 19 * MS), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_int_equal(weft_sim_run_until(x.sim, 20 * MS), WEFT_OK);
    assert_int_equal(x.calls, 2);
    assert_int_equal(x.times[1], 20 * MS);
    assert_int_equal(x.counts[1], 2);
    rec_fini(&x);
}

static void interval_zero_runs_each_pass_until_stopped(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_STOP_AT;
    x.stop_at = 5;
    assert_int_equal(weft_looping_call_start(x.lc, 0, true, &x.done), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_int_equal(weft_sim_run_until_quiet(x.sim), WEFT_OK);
    assert_int_equal(x.calls, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(x.times[i], 0);
        assert_int_equal(x.counts[i], 1);
    }
    assert_int_equal(weft_sim_events(x.sim), 4); /* one event per later run */
    assert_done_ok(&x, x.lc);
    rec_fini(&x);
}

static void stop_from_inside_fn(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_STOP_AT;
    x.stop_at = 2;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(x.sim), WEFT_OK);
    assert_int_equal(x.calls, 2);
    assert_int_equal(x.done_state_inside, WEFT_DEFERRED_PENDING);
    assert_done_ok(&x, x.lc);
    assert_false(weft_looping_call_running(x.lc));
    assert_int_equal(weft_now(x.r), 10 * MS);
    rec_fini(&x);
}

static void stop_while_waiting_fires_done_when_fn_deferred_fires(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_DEFER_FIRST;
    x.d = weft_deferred_new();
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_OK);
    assert_false(weft_looping_call_running(x.lc));
    assert_int_equal(weft_deferred_peek(x.done, NULL), WEFT_DEFERRED_PENDING);
    /* Cannot restart while the stopped run is still waiting. */
    weft_deferred *d2 = NULL;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &d2), WEFT_ESTATE);
    assert_null(d2);
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_ESTATE);
    assert_int_equal(weft_deferred_callback(x.d, NULL), WEFT_OK);
    assert_done_ok(&x, x.lc);
    assert_int_equal(weft_sim_run_until_quiet(x.sim), WEFT_OK);
    assert_int_equal(x.calls, 1);
    rec_fini(&x);
}

static void failing_deferred_stops_the_loop(void **state)
{
    (void)state;
    weft_unhandled_reset();
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_FAIL_AT;
    x.fail_at = 3;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(x.sim), WEFT_OK);
    assert_int_equal(x.calls, 3);
    assert_false(weft_looping_call_running(x.lc));
    weft_result res;
    assert_int_equal(weft_deferred_peek(x.done, &res), WEFT_DEFERRED_FAILED);
    assert_string_equal(res.failure->message, "call 3 failed");
    assert_done_failed(&x, "Boom");
    assert_int_equal(weft_sim_pending(x.sim), 0);
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_ESTATE);
    rec_fini(&x);
    /* fn's failed Deferred was handled (its Failure moved to done). */
    assert_int_equal(weft_unhandled_count(), 0);
}

static void failure_after_stop_still_fails_done(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_STOP_AND_FAIL;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    assert_done_failed(&x, "Boom");
    rec_fini(&x);
}

static void failure_later_through_deferred(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_DEFER_FIRST;
    x.d = weft_deferred_new();
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_advance(x.sim, 100 * MS), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_int_equal(weft_deferred_errback(x.d, weft_failure_new("Late", "late")), WEFT_OK);
    assert_done_failed(&x, "Late");
    assert_false(weft_looping_call_running(x.lc));
    assert_int_equal(weft_sim_pending(x.sim), 0);
    rec_fini(&x);
}

static void misuse_is_reported(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    assert_null(weft_looping_call_new(NULL, fn_record, &x));
    assert_null(weft_looping_call_new(x.r, NULL, &x));
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_ESTATE);
    assert_int_equal(weft_looping_call_reset(x.lc), WEFT_ESTATE);
    weft_deferred *d = (weft_deferred *)1;
    assert_int_equal(weft_looping_call_start(x.lc, -1, true, &d), WEFT_EINVAL);
    assert_null(d);
    assert_int_equal(x.calls, 0);
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    d = (weft_deferred *)1;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &d), WEFT_ESTATE);
    assert_null(d);
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_OK);
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_ESTATE);
    assert_int_equal(weft_looping_call_stop(NULL), WEFT_EINVAL);
    assert_false(weft_looping_call_running(NULL));
    assert_int_equal(weft_looping_call_skipped(NULL), 0);
    weft_looping_call_free(NULL);
    rec_fini(&x);
}

static void restart_from_inside_fn_is_refused(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_RESTART_INSIDE;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    assert_int_equal(x.inside_rc, WEFT_ESTATE);
    assert_done_ok(&x, x.lc);
    assert_int_equal(weft_sim_pending(x.sim), 0);
    rec_fini(&x);
}

static weft_result restart_on_done(weft_result in, void *ctx)
{
    rec *x = ctx;
    assert_ptr_equal(in.value, x->lc);
    x->mode = MODE_PLAIN;
    weft_deferred *d2 = NULL;
    assert_int_equal(weft_looping_call_start(x->lc, 7 * MS, false, &d2), WEFT_OK);
    weft_deferred_unref(x->done);
    x->done = d2;
    return in;
}

static void restart_from_done_handler(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_STOP_AT;
    x.stop_at = 1;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    weft_deferred *first = weft_deferred_ref(x.done);
    assert_int_equal(weft_deferred_add_callback(first, restart_on_done, &x), WEFT_OK);
    assert_int_equal(weft_sim_advance(x.sim, 10 * MS), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_true(weft_looping_call_running(x.lc));
    assert_int_equal(weft_sim_advance(x.sim, 7 * MS), WEFT_OK);
    assert_int_equal(x.calls, 2);
    assert_int_equal(x.times[1], 17 * MS);
    weft_deferred_unref(first);
    rec_fini(&x);
}

static void reset_reschedules_from_now(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_advance(x.sim, 7 * MS), WEFT_OK);
    assert_int_equal(weft_looping_call_reset(x.lc), WEFT_OK);
    assert_int_equal(weft_sim_advance(x.sim, 9 * MS), WEFT_OK); /* 16 ms */
    assert_int_equal(x.calls, 0);
    assert_int_equal(weft_sim_advance(x.sim, 1 * MS), WEFT_OK); /* 17 ms */
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.counts[0], 1);
    assert_int_equal(weft_sim_advance(x.sim, 10 * MS), WEFT_OK);
    assert_int_equal(x.calls, 2);
    assert_int_equal(x.times[1], 27 * MS);
    assert_int_equal(weft_sim_pending(x.sim), 1);
    rec_fini(&x);
    /* free stopped it: done fired. Nothing leaked (ASan). */
}

static void free_while_running_fires_done(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    weft_looping_call *lc = x.lc;
    weft_looping_call_free(x.lc);
    x.lc = NULL;
    assert_done_ok(&x, lc); /* the value is the (now freed) pointer */
    assert_int_equal(weft_sim_pending(x.sim), 0);
    rec_fini(&x);
}

static void free_from_inside_fn(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_FREE_INSIDE;
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(x.sim), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_int_equal(weft_deferred_peek(x.done, NULL), WEFT_DEFERRED_SUCCEEDED);
    assert_int_equal(weft_sim_pending(x.sim), 0);
    rec_fini(&x);
}

static void free_while_waiting_cancels_fn_deferred(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_DEFER_FIRST;
    x.d = weft_deferred_new();
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    weft_looping_call_free(x.lc);
    x.lc = NULL;
    assert_true(weft_deferred_called(x.d));
    assert_done_failed(&x, WEFT_FAILURE_CANCELLED);
    /* The canceller-less Deferred swallows one later fire, as in Twisted. */
    assert_int_equal(weft_deferred_callback(x.d, NULL), WEFT_OK);
    rec_fini(&x);
}

static void free_inside_fn_that_returns_a_deferred(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_FREE_INSIDE_DEFER;
    x.d = weft_deferred_new();
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    assert_true(weft_deferred_called(x.d));
    assert_done_failed(&x, WEFT_FAILURE_CANCELLED);
    rec_fini(&x);
}

/* Paused: cancel cannot fire it now; the loop is freed once it does. */
static void free_while_waiting_on_paused_deferred(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    x.mode = MODE_DEFER_FIRST;
    x.d = weft_deferred_new();
    assert_int_equal(weft_deferred_pause(x.d), WEFT_OK);
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, true, &x.done), WEFT_OK);
    weft_looping_call_free(x.lc);
    x.lc = NULL;
    assert_int_equal(weft_deferred_peek(x.done, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_deferred_unpause(x.d), WEFT_OK);
    assert_done_failed(&x, WEFT_FAILURE_CANCELLED);
    rec_fini(&x);
}

/* Over many seeds with a jitter window, runs come late in different ways.
 * Whatever happens: each run falls in a later interval than the previous one,
 * its count is exactly the number of interval boundaries crossed, skipped is
 * the sum of the excess, and the same seed gives the same runs. */
static void run_sweep(uint64_t seed, rec *x)
{
    rec_init(x, seed, 25 * MS, NULL);
    for (int i = 1; i < 60; i++)
        weft_call_release(weft_call_later(x->r, (int64_t)i * 17 * MS, noop, NULL));
    assert_int_equal(weft_looping_call_start(x->lc, 10 * MS, true, &x->done), WEFT_OK);
    assert_int_equal(weft_sim_run_until(x->sim, 1000 * MS), WEFT_OK);
}

static void seed_sweep_counts_are_consistent(void **state)
{
    (void)state;
    int seeds_with_skips = 0;
    for (uint64_t seed = 0; seed < 300; seed++) {
        rec x;
        run_sweep(seed, &x);
        assert_true(x.calls > 10);
        uint64_t sum_excess = 0;
        int64_t prev_n = -1; /* now = true: the start counts as interval -1 */
        for (int i = 0; i < x.calls; i++) {
            int64_t n = x.times[i] / (10 * MS);
            if (x.counts[i] != (uint64_t)(n - prev_n))
                print_error("seed %llu run %d at %lld: count %llu, expected %lld\n",
                            (unsigned long long)seed, i, (long long)x.times[i],
                            (unsigned long long)x.counts[i], (long long)(n - prev_n));
            assert_int_equal(x.counts[i], (uint64_t)(n - prev_n));
            assert_true(n > prev_n);
            sum_excess += x.counts[i] - 1;
            prev_n = n;
        }
        assert_int_equal(weft_looping_call_skipped(x.lc), sum_excess);
        if (sum_excess > 0)
            seeds_with_skips++;
        /* Reproducible. */
        rec y;
        run_sweep(seed, &y);
        assert_int_equal(x.calls, y.calls);
        assert_memory_equal(x.times, y.times, sizeof x.times);
        assert_memory_equal(x.counts, y.counts, sizeof x.counts);
        assert_int_equal(weft_sim_trace_hash(x.sim), weft_sim_trace_hash(y.sim));
        rec_fini(&y);
        rec_fini(&x);
    }
    assert_true(seeds_with_skips > 10);
}

/* A stop due at the same instant as a run: the simulator orders the two by a
 * choice, so over seeds both happen, and each seed always does the same. */
static void stop_lc(void *ctx)
{
    rec *x = ctx;
    assert_int_equal(weft_looping_call_stop(x->lc), WEFT_OK);
}

static int stop_race(uint64_t seed, uint64_t *hash)
{
    rec x;
    rec_init(&x, seed, 0, NULL);
    assert_int_equal(weft_looping_call_start(x.lc, 10 * MS, false, &x.done), WEFT_OK);
    weft_call_release(weft_call_later(x.r, 30 * MS, stop_lc, &x));
    assert_int_equal(weft_sim_run_until_quiet(x.sim), WEFT_OK);
    assert_done_ok(&x, x.lc);
    int calls = x.calls;
    assert_true(calls == 2 || calls == 3);
    *hash = weft_sim_trace_hash(x.sim);
    rec_fini(&x);
    return calls;
}

static void stop_races_a_run_in_the_same_instant(void **state)
{
    (void)state;
    int seen[4] = {0, 0, 0, 0};
    for (uint64_t seed = 0; seed < 300; seed++) {
        uint64_t h1, h2;
        int a = stop_race(seed, &h1);
        int b = stop_race(seed, &h2);
        assert_int_equal(a, b);
        assert_int_equal(h1, h2);
        seen[a]++;
    }
    print_message("stop race over 300 seeds: run first %d, stop first %d\n", seen[3], seen[2]);
    assert_true(seen[2] > 50);
    assert_true(seen[3] > 50);
}

static void huge_interval_saturates(void **state)
{
    (void)state;
    rec x;
    rec_init(&x, 1, 0, NULL);
    assert_int_equal(weft_sim_advance(x.sim, 5 * MS), WEFT_OK);
    assert_int_equal(weft_looping_call_start(x.lc, INT64_MAX, true, &x.done), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.counts[0], 1);
    weft_time_ns next;
    assert_true(weft_sim_next_time(x.sim, &next));
    assert_int_equal(next, INT64_MAX); /* saturated, never wraps */
    assert_int_equal(weft_sim_advance(x.sim, 1000 * WEFT_NS_PER_S), WEFT_OK);
    assert_int_equal(x.calls, 1);
    assert_int_equal(weft_looping_call_stop(x.lc), WEFT_OK);
    assert_done_ok(&x, x.lc);
    rec_fini(&x);
}

static void out_of_memory_paths(void **state)
{
    (void)state;
    bool started = false;
    for (long n = 0; n < 20 && !started; n++) {
        rec x;
        rec_init(&x, 1, 0, NULL);
        weft_alloc_fail_after(n);
        int rc = weft_looping_call_start(x.lc, 10 * MS, false, &x.done);
        weft_alloc_fail_after(-1);
        if (rc == WEFT_OK) {
            started = true;
            assert_non_null(x.done);
        } else {
            assert_int_equal(rc, WEFT_ENOMEM);
            assert_null(x.done);
            assert_false(weft_looping_call_running(x.lc));
            assert_int_equal(weft_sim_pending(x.sim), 0);
        }
        rec_fini(&x);
    }
    assert_true(started);
    weft_sim *s = weft_sim_new(NULL, weft_choice_seeded(1));
    if (s) {
        weft_alloc_fail_after(0);
        weft_looping_call *lc = weft_looping_call_new(weft_sim_reactor(s), fn_record, NULL);
        weft_alloc_fail_after(-1);
        assert_null(lc);
        weft_sim_free(s);
    }
}

/* The same code on the real reactor: times are whatever the machine gives,
 * but every count still matches the interval boundaries crossed. */
static bool done_fired(void *ctx)
{
    return weft_deferred_peek(ctx, NULL) != WEFT_DEFERRED_PENDING;
}

static void real_reactor_loop(void **state)
{
    (void)state;
    rec x;
    memset(&x, 0, sizeof x);
    x.r = weft_reactor_new_epoll();
    assert_non_null(x.r);
    x.lc = weft_looping_call_new(x.r, fn_record, &x);
    x.mode = MODE_STOP_AT;
    x.stop_at = 6;
    const int64_t interval_ns = 2 * MS;
    weft_time_ns start = weft_now(x.r);
    assert_int_equal(weft_looping_call_start(x.lc, interval_ns, true, &x.done), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(x.r, done_fired, x.done, start + 10 * WEFT_NS_PER_S),
                     WEFT_OK);
    assert_int_equal(x.calls, 6);
    assert_done_ok(&x, x.lc);
    int64_t prev_n = -1;
    uint64_t excess = 0;
    for (int i = 0; i < x.calls; i++) {
        int64_t n = (x.times[i] - start) / interval_ns;
        assert_int_equal(x.counts[i], (uint64_t)(n - prev_n));
        excess += x.counts[i] - 1;
        prev_n = n;
    }
    assert_int_equal(weft_looping_call_skipped(x.lc), excess);
    assert_true(x.times[5] - start >= 5 * interval_ns);
    weft_looping_call_free(x.lc);
    weft_deferred_unref(x.done);
    weft_reactor_free(x.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_now_runs_at_once_then_every_interval),
        cmocka_unit_test(start_later_first_run_after_one_interval),
        cmocka_unit_test(late_runs_count_skipped_intervals),
        cmocka_unit_test(deferred_result_delays_next_run),
        cmocka_unit_test(present_is_not_the_future),
        cmocka_unit_test(interval_zero_runs_each_pass_until_stopped),
        cmocka_unit_test(stop_from_inside_fn),
        cmocka_unit_test(stop_while_waiting_fires_done_when_fn_deferred_fires),
        cmocka_unit_test(failing_deferred_stops_the_loop),
        cmocka_unit_test(failure_after_stop_still_fails_done),
        cmocka_unit_test(failure_later_through_deferred),
        cmocka_unit_test(misuse_is_reported),
        cmocka_unit_test(restart_from_inside_fn_is_refused),
        cmocka_unit_test(restart_from_done_handler),
        cmocka_unit_test(reset_reschedules_from_now),
        cmocka_unit_test(free_while_running_fires_done),
        cmocka_unit_test(free_from_inside_fn),
        cmocka_unit_test(free_while_waiting_cancels_fn_deferred),
        cmocka_unit_test(free_inside_fn_that_returns_a_deferred),
        cmocka_unit_test(free_while_waiting_on_paused_deferred),
        cmocka_unit_test(seed_sweep_counts_are_consistent),
        cmocka_unit_test(stop_races_a_run_in_the_same_instant),
        cmocka_unit_test(huge_interval_saturates),
        cmocka_unit_test(out_of_memory_paths),
        cmocka_unit_test(real_reactor_loop),
    };
    return cmocka_run_group_tests_name("looping", tests, NULL, NULL);
}
