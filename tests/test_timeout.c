/* deferLater and addTimeout on the simulator, including a timeout racing a
 * callback in the same virtual instant (decided by the choice source). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft/sim.h"

#define MS WEFT_NS_PER_MS

static weft_sim *mksim(uint64_t seed)
{
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.max_events = 100000;
    weft_sim *s = weft_sim_new(&cfg, weft_choice_seeded(seed));
    assert_non_null(s);
    return s;
}

static weft_deferred_state state_of(weft_deferred *d, weft_result *res)
{
    return weft_deferred_peek(d, res);
}

static void expect_failed(weft_deferred *d, const char *type)
{
    weft_result res;
    assert_int_equal(state_of(d, &res), WEFT_DEFERRED_FAILED);
    if (strcmp(res.failure->type, type) != 0)
        print_error("failure %s (%s), expected %s\n", res.failure->type, res.failure->message,
                    type);
    assert_string_equal(res.failure->type, type);
    assert_int_equal(weft_deferred_take_result(d, &res), WEFT_OK);
    weft_failure_free(res.failure);
}

static void expect_success(weft_deferred *d, void *value)
{
    weft_result res;
    assert_int_equal(state_of(d, &res), WEFT_DEFERRED_SUCCEEDED);
    assert_ptr_equal(res.value, value);
}

/* ------------------------------------------------------------ deferLater */

typedef struct later_ctx {
    int calls;
    weft_time_ns at;
    weft_reactor *r;
    weft_result result;
} later_ctx;

static weft_result later_fn(void *ctx)
{
    later_ctx *c = ctx;
    c->calls++;
    c->at = weft_now(c->r);
    return c->result;
}

static void defer_later_fires_after_delay(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    int token;
    later_ctx c = {.r = r, .result = weft_value(&token)};
    weft_deferred *d = weft_defer_later(r, 25 * MS, later_fn, &c);
    assert_non_null(d);
    assert_int_equal(c.calls, 0);
    assert_int_equal(weft_sim_advance(s, 25 * MS - 1), WEFT_OK);
    assert_int_equal(state_of(d, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(c.calls, 0);
    assert_int_equal(weft_sim_advance(s, 1), WEFT_OK);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.at, 25 * MS);
    expect_success(d, &token);
    /* Cancelling a fired Deferred changes nothing. */
    assert_int_equal(weft_deferred_cancel(d), WEFT_OK);
    expect_success(d, &token);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void defer_later_without_fn_and_with_zero_delay(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *d = weft_defer_later(r, 0, NULL, NULL);
    assert_non_null(d);
    /* Never synchronous: it waits for the reactor. */
    assert_int_equal(state_of(d, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    expect_success(d, NULL);
    assert_int_equal(weft_now(r), 0);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void defer_later_fn_failure_and_deferred(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    later_ctx c = {.r = r, .result = weft_failed(weft_failure_new("Oops", "fn failed"))};
    weft_deferred *d = weft_defer_later(r, 1 * MS, later_fn, &c);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    expect_failed(d, "Oops");
    weft_deferred_unref(d);

    /* fn returns a Deferred: the result waits for it, like a callback's. */
    weft_deferred *inner = weft_deferred_new();
    int token;
    later_ctx c2 = {.r = r, .result = weft_chain(weft_deferred_ref(inner))};
    d = weft_defer_later(r, 1 * MS, later_fn, &c2);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(c2.calls, 1);
    assert_int_equal(state_of(d, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_deferred_callback(inner, &token), WEFT_OK);
    expect_success(d, &token);
    weft_deferred_unref(inner);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void defer_later_cancel_removes_timer(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    later_ctx c = {.r = r};
    weft_deferred *d = weft_defer_later(r, 10 * MS, later_fn, &c);
    assert_int_equal(weft_sim_pending(s), 1);
    assert_int_equal(weft_sim_advance(s, 5 * MS), WEFT_OK);
    assert_int_equal(weft_deferred_cancel(d), WEFT_OK);
    expect_failed(d, WEFT_FAILURE_CANCELLED);
    assert_int_equal(weft_sim_pending(s), 0);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(c.calls, 0);
    /* A canceller exists, so nothing is swallowed: firing again is misuse. */
    assert_int_equal(weft_deferred_callback(d, NULL), WEFT_EALREADYCALLED);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void defer_later_dropped_reference_still_runs(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    later_ctx c = {.r = r, .result = weft_value(NULL)};
    weft_deferred_unref(weft_defer_later(r, 3 * MS, later_fn, &c));
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(c.calls, 1);
    weft_sim_free(s);
}

static void defer_later_fired_by_hand_runs_fn_early(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    int token;
    later_ctx c = {.r = r, .result = weft_value(&token)};
    weft_deferred *d = weft_defer_later(r, 3 * MS, later_fn, &c);
    assert_int_equal(weft_deferred_callback(d, NULL), WEFT_OK);
    assert_int_equal(c.calls, 1);
    expect_success(d, &token);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK); /* the timer: no-op */
    assert_int_equal(c.calls, 1);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void defer_later_paused_then_resumed(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    later_ctx c = {.r = r, .result = weft_value(&c)};
    weft_deferred *d = weft_defer_later(r, 3 * MS, later_fn, &c);
    assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(c.calls, 0); /* fn is the first handler: it waits too */
    assert_int_equal(weft_deferred_unpause(d), WEFT_OK);
    assert_int_equal(c.calls, 1);
    expect_success(d, &c);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void defer_later_bad_arguments_and_oom(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    assert_null(weft_defer_later(r, -1, NULL, NULL));
    assert_null(weft_defer_later(NULL, 1, NULL, NULL));
    assert_int_equal(weft_sim_pending(s), 0);
    bool ok = false;
    for (long n = 0; n < 20 && !ok; n++) {
        weft_alloc_fail_after(n);
        weft_deferred *d = weft_defer_later(r, 1 * MS, NULL, NULL);
        weft_alloc_fail_after(-1);
        if (d) {
            ok = true;
            assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
            expect_success(d, NULL);
            weft_deferred_unref(d);
        } else {
            assert_int_equal(weft_sim_pending(s), 0);
        }
    }
    assert_true(ok);
    weft_sim_free(s);
}

/* ------------------------------------------------------------ addTimeout */

static void fire_value(void *ctx)
{
    weft_deferred *d = ctx;
    weft_deferred_callback(d, d);
}

static void timeout_is_due_exactly_at_deadline(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    assert_int_equal(weft_sim_advance(s, 4 * MS), WEFT_OK); /* t0 = 4 ms */
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 10 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_run_until(s, 14 * MS - 1), WEFT_OK);
    assert_int_equal(state_of(d, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_sim_run_until(s, 14 * MS), WEFT_OK);
    weft_result res;
    assert_int_equal(state_of(d, &res), WEFT_DEFERRED_FAILED);
    assert_string_equal(res.failure->message, "Deferred timed out after 10000000 ns");
    expect_failed(d, WEFT_FAILURE_TIMEOUT);
    /* No canceller: the one late fire after a cancel is swallowed. */
    assert_int_equal(weft_deferred_callback(d, NULL), WEFT_OK);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void result_first_cancels_the_timer(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 10 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_pending(s), 1);
    assert_int_equal(weft_sim_advance(s, 9 * MS), WEFT_OK);
    assert_int_equal(weft_deferred_callback(d, &d), WEFT_OK);
    expect_success(d, &d);
    assert_int_equal(weft_sim_pending(s), 0);
    assert_int_equal(weft_sim_advance(s, 100 * MS), WEFT_OK);
    expect_success(d, &d);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void manual_cancel_keeps_cancelled(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 10 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_advance(s, 2 * MS), WEFT_OK);
    assert_int_equal(weft_deferred_cancel(d), WEFT_OK);
    expect_failed(d, WEFT_FAILURE_CANCELLED);
    assert_int_equal(weft_sim_pending(s), 0);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void canceller_calls_back(weft_deferred *d, void *ctx)
{
    weft_deferred_callback(d, ctx);
}

static void canceller_errbacks(weft_deferred *d, void *ctx)
{
    (void)ctx;
    weft_deferred_errback(d, weft_failure_new("Mine", "own error"));
}

static void canceller_decides_the_result(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    int token;
    /* A canceller that calls back makes a timed-out Deferred succeed. */
    weft_deferred *d = weft_deferred_new_cancellable(canceller_calls_back, &token);
    assert_int_equal(weft_deferred_add_timeout(d, r, 1 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    expect_success(d, &token);
    weft_deferred_unref(d);
    /* One that errbacks keeps its own error. */
    d = weft_deferred_new_cancellable(canceller_errbacks, NULL);
    assert_int_equal(weft_deferred_add_timeout(d, r, 1 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    expect_failed(d, "Mine");
    weft_deferred_unref(d);
    weft_sim_free(s);
}

typedef struct hook_ctx {
    int calls;
    char seen[32];
    weft_result ret;
} hook_ctx;

static weft_result on_timeout_hook(weft_result in, void *ctx)
{
    hook_ctx *h = ctx;
    h->calls++;
    snprintf(h->seen, sizeof h->seen, "%s",
             in.kind == WEFT_RESULT_FAILURE ? in.failure->type : "value");
    if (h->ret.kind == WEFT_RESULT_FAILURE && h->ret.failure == NULL)
        return in; /* pass on what came in */
    return h->ret;
}

static void on_timeout_hook_decides(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    int token;
    /* Turns the timeout into a value. */
    hook_ctx h = {.ret = weft_value(&token)};
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, on_timeout_hook, &h), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(h.calls, 1);
    assert_string_equal(h.seen, WEFT_FAILURE_CANCELLED);
    expect_success(d, &token);
    weft_deferred_unref(d);
    /* Passes the Cancelled failure on unchanged. */
    hook_ctx h2 = {.ret = weft_failed(NULL)};
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, on_timeout_hook, &h2), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(h2.calls, 1);
    expect_failed(d, WEFT_FAILURE_CANCELLED);
    weft_deferred_unref(d);
    /* Not called when d fires in time. */
    hook_ctx h3 = {.ret = weft_value(NULL)};
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, on_timeout_hook, &h3), WEFT_OK);
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("Early", "x")), WEFT_OK);
    assert_int_equal(h3.calls, 0);
    expect_failed(d, "Early");
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static weft_result swallow(weft_result in, void *ctx)
{
    (void)in;
    return weft_value(ctx);
}

static weft_result record_type(weft_result in, void *ctx)
{
    char *out = ctx;
    snprintf(out, 32, "%s", in.kind == WEFT_RESULT_FAILURE ? in.failure->type : "value");
    return in;
}

static void handlers_before_and_after(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    int token;
    /* An errback added before that swallows the Cancelled makes it succeed. */
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_errback(d, swallow, &token), WEFT_OK);
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    expect_success(d, &token);
    weft_deferred_unref(d);
    /* Handlers added after see the Timeout. */
    char seen[32] = "";
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_deferred_add_both(d, record_type, seen), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_string_equal(seen, WEFT_FAILURE_TIMEOUT);
    expect_failed(d, WEFT_FAILURE_TIMEOUT);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void already_fired(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    int token;
    /* Already fired: the timer is cancelled at once. */
    weft_deferred *d = weft_succeed(&token);
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_pending(s), 0);
    expect_success(d, &token);
    weft_deferred_unref(d);
    /* Failed already: same, and the Failure is left as it was. */
    d = weft_fail(weft_failure_new("Before", "x"));
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_pending(s), 0);
    expect_failed(d, "Before");
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static weft_result return_inner(weft_result in, void *ctx)
{
    (void)in;
    return weft_chain(weft_deferred_ref(ctx));
}

static void cancel_forwarded_to_awaited_deferred(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *inner = weft_deferred_new();
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_callback(d, return_inner, inner), WEFT_OK);
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_deferred_callback(d, NULL), WEFT_OK);
    assert_int_equal(state_of(d, NULL), WEFT_DEFERRED_PENDING); /* waits on inner */
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_true(weft_deferred_called(inner));
    expect_failed(d, WEFT_FAILURE_TIMEOUT);
    weft_deferred_unref(inner);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

static void dropped_deferred_times_out_unhandled(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_unhandled_reset();
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, NULL, NULL), WEFT_OK);
    weft_deferred_unref(d); /* the timer keeps it alive */
    assert_int_equal(weft_unhandled_count(), 0);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    /* Nobody handled the Timeout: it is reported when the last reference goes. */
    assert_int_equal(weft_unhandled_count(), 1);
    weft_unhandled_reset();
    weft_sim_free(s);
}

static void timeout_bad_arguments_and_oom(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, -1, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_deferred_add_timeout(NULL, r, 1, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_deferred_add_timeout(d, NULL, 1, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_sim_pending(s), 0);
    bool ok = false;
    for (long n = 0; n < 20 && !ok; n++) {
        weft_alloc_fail_after(n);
        int rc = weft_deferred_add_timeout(d, r, 1 * MS, NULL, NULL);
        weft_alloc_fail_after(-1);
        if (rc == WEFT_OK) {
            ok = true;
        } else {
            assert_int_equal(rc, WEFT_ENOMEM);
            assert_int_equal(weft_sim_pending(s), 0);
        }
    }
    assert_true(ok);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    expect_failed(d, WEFT_FAILURE_TIMEOUT);
    weft_deferred_unref(d);
    /* Timeout 0: due now, runs on the next pass. */
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 0, NULL, NULL), WEFT_OK);
    assert_int_equal(state_of(d, NULL), WEFT_DEFERRED_PENDING);
    weft_time_ns t0 = weft_now(r);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    assert_int_equal(weft_now(r), t0);
    expect_failed(d, WEFT_FAILURE_TIMEOUT);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

/* The race: d is fired by a delayed call due at the same instant as its
 * timeout. The simulator orders the two by a choice. */
static int race(uint64_t seed, uint64_t *hash)
{
    weft_sim *s = mksim(seed);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *d = weft_deferred_new();
    weft_call *fire = weft_call_later(r, 10 * MS, fire_value, d);
    assert_int_equal(weft_deferred_add_timeout(d, r, 10 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(weft_now(r), 10 * MS);
    weft_result res;
    int outcome;
    weft_deferred_state st = state_of(d, &res);
    if (st == WEFT_DEFERRED_SUCCEEDED) {
        assert_ptr_equal(res.value, d);
        outcome = 1;
    } else {
        assert_int_equal(st, WEFT_DEFERRED_FAILED);
        assert_string_equal(res.failure->type, WEFT_FAILURE_TIMEOUT);
        weft_deferred_take_result(d, &res);
        weft_failure_free(res.failure);
        outcome = 2;
    }
    *hash = weft_sim_trace_hash(s);
    weft_call_release(fire);
    weft_deferred_unref(d);
    weft_sim_free(s);
    return outcome;
}

static void timeout_races_callback_in_same_instant(void **state)
{
    (void)state;
    int counts[3] = {0, 0, 0};
    for (uint64_t seed = 0; seed < 400; seed++) {
        uint64_t h1, h2;
        int a = race(seed, &h1);
        int b = race(seed, &h2);
        assert_int_equal(a, b);
        assert_int_equal(h1, h2);
        counts[a]++;
    }
    print_message("race over 400 seeds: callback first %d, timeout first %d\n", counts[1],
                  counts[2]);
    /* Both orders are reachable, and each is reasonably frequent. */
    assert_true(counts[1] > 100);
    assert_true(counts[2] > 100);
}

/* The same helpers on the real reactor: never early. */
static bool both_fired(void *ctx)
{
    weft_deferred **ds = ctx;
    return weft_deferred_peek(ds[0], NULL) != WEFT_DEFERRED_PENDING &&
           weft_deferred_peek(ds[1], NULL) != WEFT_DEFERRED_PENDING;
}

static weft_result now_of(void *ctx)
{
    weft_reactor *r = ctx;
    static weft_time_ns t;
    t = weft_now(r);
    return weft_value(&t);
}

static void real_reactor_later_and_timeout(void **state)
{
    (void)state;
    weft_reactor *r = weft_reactor_new_epoll();
    assert_non_null(r);
    weft_time_ns t0 = weft_now(r);
    weft_deferred *ds[2];
    ds[0] = weft_defer_later(r, 5 * MS, now_of, r);
    ds[1] = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(ds[1], r, 10 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(r, both_fired, ds, t0 + 10 * WEFT_NS_PER_S), WEFT_OK);
    weft_result res;
    assert_int_equal(weft_deferred_peek(ds[0], &res), WEFT_DEFERRED_SUCCEEDED);
    assert_true(*(weft_time_ns *)res.value - t0 >= 5 * MS);
    assert_true(weft_now(r) - t0 >= 10 * MS);
    expect_failed(ds[1], WEFT_FAILURE_TIMEOUT);
    weft_deferred_unref(ds[0]);
    weft_deferred_unref(ds[1]);
    weft_reactor_free(r);
}

/* ------------------------------------------------------ dropped timers */

typedef struct drop_ctx {
    weft_reactor *r;
    int errbacks;
    int resched_null; /* weft_call_later refused while the reactor is freed */
    char type[32];
} drop_ctx;

static void never(void *ctx)
{
    (void)ctx;
    fail_msg("a dropped call ran");
}

static weft_result on_dropped(weft_result in, void *ctx)
{
    drop_ctx *dc = ctx;
    dc->errbacks++;
    if (in.kind == WEFT_RESULT_FAILURE) /* the library frees it */
        snprintf(dc->type, sizeof dc->type, "%s", in.failure->type);
    /* Scheduling from a handler run by the reactor's free is refused, and
     * so is running the reactor. */
    weft_call *c = weft_call_later(dc->r, 1, never, NULL);
    if (!c)
        dc->resched_null++;
    weft_call_release(c);
    if (weft_reactor_run(dc->r) != WEFT_ESTATE)
        dc->resched_null += 100;
    return weft_value(NULL);
}

static weft_deferred *never_fires(void *ctx, uint64_t count)
{
    (void)ctx, (void)count;
    return NULL;
}

/* Free a reactor with a defer_later, a timeout and a looping call pending:
 * nothing leaks (the sanitizer build checks), the Deferreds fail with
 * Cancelled, the loop's done fires, and the loop can still be freed. */
static void freed_with_pending(weft_reactor *r, void (*free_fn)(weft_reactor *))
{
    drop_ctx a = {r, 0, 0, ""}, b = {r, 0, 0, ""}, c = {r, 0, 0, ""};
    weft_deferred *dl = weft_defer_later(r, 50 * WEFT_NS_PER_S, NULL, NULL);
    assert_non_null(dl);
    assert_int_equal(weft_deferred_add_both(dl, on_dropped, &a), WEFT_OK);
    weft_deferred *guarded = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(guarded, r, 60 * WEFT_NS_PER_S, NULL, NULL),
                     WEFT_OK);
    assert_int_equal(weft_deferred_add_both(guarded, on_dropped, &b), WEFT_OK);
    weft_looping_call *lc = weft_looping_call_new(r, never_fires, NULL);
    weft_deferred *done = NULL;
    assert_int_equal(weft_looping_call_start(lc, 70 * WEFT_NS_PER_S, false, &done), WEFT_OK);
    assert_int_equal(weft_deferred_add_both(done, on_dropped, &c), WEFT_OK);
    /* A user call too: dropped without running, its handle dies with r. */
    weft_call_release(weft_call_later(r, 80 * WEFT_NS_PER_S, never, NULL));
    free_fn(r);
    assert_int_equal(a.errbacks, 1);
    assert_string_equal(a.type, WEFT_FAILURE_CANCELLED);
    assert_int_equal(b.errbacks, 1);
    assert_string_equal(b.type, WEFT_FAILURE_CANCELLED);
    assert_int_equal(c.errbacks, 1);
    assert_string_equal(c.type, ""); /* done fired with the loop */
    assert_int_equal(a.resched_null + b.resched_null + c.resched_null, 3);
    assert_false(weft_looping_call_running(lc));
    weft_looping_call_free(lc);
    weft_deferred_unref(dl);
    weft_deferred_unref(guarded);
    weft_deferred_unref(done);
}

static void free_sim(weft_reactor *r)
{
    weft_sim_free(weft_sim_from_reactor(r));
}

static void sim_freed_with_timers_pending(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    freed_with_pending(weft_sim_reactor(s), free_sim);
}

static void epoll_freed_with_timers_pending(void **state)
{
    (void)state;
    weft_reactor *r = weft_reactor_new_epoll();
    if (!r)
        skip();
    freed_with_pending(r, weft_reactor_free);
}

/* Dropped while the user already let go of every reference: still nothing
 * leaks (the sanitizer build checks). */
static void dropped_with_no_user_reference(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred_unref(weft_defer_later(r, 5 * MS, NULL, NULL));
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(d, r, 5 * MS, NULL, NULL), WEFT_OK);
    weft_deferred_unref(d);
    weft_sim_free(s);
}

/* ------------------------------------------- lifetime in every order */

/* The four events whose order must not matter for memory: the timer fires
 * (the simulator runs until quiet), d fires by hand, the user lets go of d,
 * the reactor is freed. The one who fires holds a reference of its own, so
 * every order is possible. A timer that fires after the reactor is freed,
 * and so never does, is a no-op. */
enum { EV_TIMER, EV_FIRE, EV_UNREF, EV_FREE, EV_COUNT };

enum {
    V_PLAIN,         /* a plain Deferred */
    V_PAUSED,        /* paused before the timeout, never resumed */
    V_NOOP_PAUSED,   /* a canceller that does nothing, paused */
    V_EMPTY_LIST,    /* an empty fire-on-one-callback list: ignores cancel */
    V_ERRBACK,       /* fired by hand with a Failure */
    V_ON_TIMEOUT,    /* an on_timeout hook */
    V_PAUSED_LATER,  /* paused only when fired by hand */
    V_COUNT
};

/* An owned pair appended last: exactly one of its two functions runs once d
 * is run through or freed, so runs + drops == 1 proves d did not leak. */
typedef struct watch {
    int runs;
    int drops;
} watch;

static weft_result watch_run(weft_result in, void *ctx)
{
    watch *w = ctx;
    w->runs++;
    /* Consume a Failure: the order under test decides it, not the test. */
    return in.kind == WEFT_RESULT_FAILURE ? weft_value(NULL) : in;
}

static void watch_dropped(void *ctx)
{
    watch *w = ctx;
    w->drops++;
}

static void noop_canceller(weft_deferred *d, void *ctx)
{
    (void)d;
    (void)ctx;
}

static weft_result keep_result(weft_result in, void *ctx)
{
    (void)ctx;
    return in.kind == WEFT_RESULT_FAILURE ? weft_failed(in.failure) : in;
}

static const char *const ev_names[EV_COUNT] = {"timer", "fire", "unref", "free"};

static void run_order(bool later, int variant, const int order[EV_COUNT])
{
    weft_sim *s = mksim(7);
    weft_reactor *r = weft_sim_reactor(s);
    watch w = {0, 0};
    weft_deferred *d;
    if (later) {
        d = weft_defer_later(r, WEFT_NS_PER_US, NULL, NULL);
        assert_non_null(d);
        if (variant == V_PAUSED)
            assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    } else {
        if (variant == V_NOOP_PAUSED)
            d = weft_deferred_new_cancellable(noop_canceller, NULL);
        else if (variant == V_EMPTY_LIST)
            d = weft_deferred_list(NULL, 0, WEFT_DLIST_FIRE_ON_ONE_CALLBACK);
        else
            d = weft_deferred_new();
        assert_non_null(d);
        if (variant == V_PAUSED || variant == V_NOOP_PAUSED)
            assert_int_equal(weft_deferred_pause(d), WEFT_OK);
        assert_int_equal(weft_deferred_add_timeout(d, r, WEFT_NS_PER_US,
                                                   variant == V_ON_TIMEOUT ? keep_result : NULL,
                                                   NULL),
                         WEFT_OK);
    }
    assert_int_equal(weft_deferred_add_both_owned(d, watch_run, watch_dropped, &w), WEFT_OK);
    weft_deferred *firer = weft_deferred_ref(d);
    bool freed = false;
    int token;
    for (int i = 0; i < EV_COUNT; i++) {
        switch (order[i]) {
        case EV_TIMER:
            if (!freed)
                assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
            break;
        case EV_FIRE:
            if (variant == V_PAUSED_LATER)
                assert_int_equal(weft_deferred_pause(firer), WEFT_OK);
            /* Already called (by the timer's cancel) is fine here. */
            if (variant == V_ERRBACK)
                weft_deferred_errback(firer, weft_failure_new("E", "by hand"));
            else
                weft_deferred_callback(firer, &token);
            weft_deferred_unref(firer);
            break;
        case EV_UNREF:
            weft_deferred_unref(d);
            break;
        case EV_FREE:
            weft_sim_free(s);
            freed = true;
            break;
        }
    }
    if (!freed)
        weft_sim_free(s);
    if (w.runs + w.drops != 1)
        print_error("%s variant %d order %s %s %s %s: runs %d drops %d\n",
                    later ? "defer_later" : "add_timeout", variant, ev_names[order[0]],
                    ev_names[order[1]], ev_names[order[2]], ev_names[order[3]], w.runs, w.drops);
    assert_int_equal(w.runs + w.drops, 1);
    weft_unhandled_reset();
}

/* Every permutation of the four events, by Heap's algorithm (iterative). */
static void for_each_order(bool later, int variant)
{
    int order[EV_COUNT] = {EV_TIMER, EV_FIRE, EV_UNREF, EV_FREE};
    int c[EV_COUNT] = {0};
    int seen = 1;
    run_order(later, variant, order);
    for (int i = 1; i < EV_COUNT;) {
        if (c[i] < i) {
            int j = i % 2 == 0 ? 0 : c[i];
            int tmp = order[j];
            order[j] = order[i];
            order[i] = tmp;
            run_order(later, variant, order);
            seen++;
            c[i]++;
            i = 1;
        } else {
            c[i] = 0;
            i++;
        }
    }
    assert_int_equal(seen, 24);
}

static void timeout_every_order_frees_everything(void **state)
{
    (void)state;
    for (int v = 0; v < V_COUNT; v++)
        for_each_order(false, v);
}

static void defer_later_every_order_frees_everything(void **state)
{
    (void)state;
    for_each_order(true, V_PLAIN);
    for_each_order(true, V_PAUSED);
    for_each_order(true, V_ERRBACK);
    for_each_order(true, V_PAUSED_LATER);
}

/* The fuzzer's case: d paused, a 1 us timeout, the simulator runs until
 * quiet, the user lets go. d (with its Cancelled Failure) is freed: it is
 * reported unhandled at once, and the watch pair is dropped. */
static void paused_timed_out_deferred_is_freed(void **state)
{
    (void)state;
    weft_unhandled_reset();
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    watch w = {0, 0};
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    assert_int_equal(weft_deferred_add_timeout(d, r, WEFT_NS_PER_US, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_deferred_add_both_owned(d, watch_run, watch_dropped, &w), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_true(weft_deferred_called(d));
    assert_int_equal(weft_unhandled_count(), 0);
    weft_deferred_unref(d);
    assert_int_equal(w.drops, 1);
    assert_int_equal(w.runs, 0);
    assert_int_equal(weft_unhandled_count(), 1); /* the Cancelled nobody saw */
    weft_unhandled_reset();
    weft_sim_free(s);
}

/* Twisted's semantics survive the new ownership: a paused d that timed out
 * fails with Timeout once resumed, even after the reactor is gone. */
static void paused_timed_out_resumed_after_reactor_freed(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    assert_int_equal(weft_deferred_add_timeout(d, r, 3 * MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_sim_advance(s, 3 * MS), WEFT_OK);
    weft_sim_free(s);
    assert_int_equal(state_of(d, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_deferred_unpause(d), WEFT_OK);
    expect_failed(d, WEFT_FAILURE_TIMEOUT);
    weft_deferred_unref(d);
}

/* An empty fire-on-one-callback list ignores the cancel: the timed-out list
 * stays pending; fired by hand later, its value passes (no Cancelled to turn
 * into Timeout); never fired, it is freed with the user's last reference. */
static void list_ignoring_cancel_times_out_without_cycle(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    weft_deferred *a = weft_deferred_list(NULL, 0, WEFT_DLIST_FIRE_ON_ONE_CALLBACK);
    weft_deferred *b = weft_deferred_list(NULL, 0, WEFT_DLIST_FIRE_ON_ONE_CALLBACK);
    watch w = {0, 0};
    assert_int_equal(weft_deferred_add_timeout(a, r, MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_deferred_add_timeout(b, r, MS, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_deferred_add_both_owned(b, watch_run, watch_dropped, &w), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_false(weft_deferred_called(a));
    int token;
    assert_int_equal(weft_deferred_callback(a, &token), WEFT_OK);
    expect_success(a, &token);
    weft_deferred_unref(a);
    weft_deferred_unref(b);
    assert_int_equal(w.drops, 1);
    weft_sim_free(s);
}

/* defer_later paused when its timer fires: fn waits for the unpause; freed
 * instead, fn never runs and the record goes with d. */
static void defer_later_paused_at_timer_then_freed(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    later_ctx c = {.r = r, .result = weft_value(NULL)};
    weft_deferred *d = weft_defer_later(r, MS, later_fn, &c);
    assert_non_null(d);
    assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(c.calls, 0);
    weft_deferred_unref(d);
    assert_int_equal(c.calls, 0);
    weft_sim_free(s);
}

/* defer_later fired by hand with a Failure: fn never runs (addCallback), the
 * Failure passes, and the timer later finds d called. */
static void defer_later_errback_by_hand_skips_fn(void **state)
{
    (void)state;
    weft_sim *s = mksim(1);
    weft_reactor *r = weft_sim_reactor(s);
    later_ctx c = {.r = r, .result = weft_value(NULL)};
    weft_deferred *d = weft_defer_later(r, MS, later_fn, &c);
    assert_non_null(d);
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("E", "early")), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(c.calls, 0);
    expect_failed(d, "E");
    weft_deferred_unref(d);
    weft_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defer_later_fires_after_delay),
        cmocka_unit_test(sim_freed_with_timers_pending),
        cmocka_unit_test(epoll_freed_with_timers_pending),
        cmocka_unit_test(dropped_with_no_user_reference),
        cmocka_unit_test(defer_later_without_fn_and_with_zero_delay),
        cmocka_unit_test(defer_later_fn_failure_and_deferred),
        cmocka_unit_test(defer_later_cancel_removes_timer),
        cmocka_unit_test(defer_later_dropped_reference_still_runs),
        cmocka_unit_test(defer_later_fired_by_hand_runs_fn_early),
        cmocka_unit_test(defer_later_paused_then_resumed),
        cmocka_unit_test(defer_later_bad_arguments_and_oom),
        cmocka_unit_test(timeout_is_due_exactly_at_deadline),
        cmocka_unit_test(result_first_cancels_the_timer),
        cmocka_unit_test(manual_cancel_keeps_cancelled),
        cmocka_unit_test(canceller_decides_the_result),
        cmocka_unit_test(on_timeout_hook_decides),
        cmocka_unit_test(handlers_before_and_after),
        cmocka_unit_test(already_fired),
        cmocka_unit_test(cancel_forwarded_to_awaited_deferred),
        cmocka_unit_test(dropped_deferred_times_out_unhandled),
        cmocka_unit_test(timeout_bad_arguments_and_oom),
        cmocka_unit_test(timeout_races_callback_in_same_instant),
        cmocka_unit_test(real_reactor_later_and_timeout),
        cmocka_unit_test(timeout_every_order_frees_everything),
        cmocka_unit_test(defer_later_every_order_frees_everything),
        cmocka_unit_test(paused_timed_out_deferred_is_freed),
        cmocka_unit_test(paused_timed_out_resumed_after_reactor_freed),
        cmocka_unit_test(list_ignoring_cancel_times_out_without_cycle),
        cmocka_unit_test(defer_later_paused_at_timer_then_freed),
        cmocka_unit_test(defer_later_errback_by_hand_skips_fn),
    };
    return cmocka_run_group_tests_name("timeout", tests, NULL, NULL);
}
