/* Deferreds: the chain, chaining, pause, cancellation, misuse, unhandled
 * failures, deep chains and out-of-memory paths. Organised like Twisted's own
 * test_defer: each test fires Deferreds and checks the order of handler calls
 * (a log), what each handler received, and the final result or Failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft/defer.h"
#include "weft/testing.h"

#define V(n) ((void *)(uintptr_t)(n))
#define N(p) ((uintptr_t)(p))

/* ------------------------------------------------------------ the log */

static char log_buf[8192];
static size_t log_len;

static void log_reset(void)
{
    log_len = 0;
    log_buf[0] = '\0';
}

static void log_add(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(log_buf + log_len, sizeof log_buf - log_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        log_len += (size_t)n < sizeof log_buf - log_len ? (size_t)n : sizeof log_buf - log_len - 1;
}

/* A scripted handler: logs what it received, then acts. */
typedef enum { ACT_PASS, ACT_VALUE, ACT_FAIL, ACT_CHAIN, ACT_TRAP } act;

typedef struct step {
    const char *name;
    act action;
    uintptr_t value;       /* ACT_VALUE, ACT_TRAP: the value returned */
    const char *type;      /* ACT_FAIL: type raised; ACT_TRAP: type trapped */
    weft_deferred *chain;  /* ACT_CHAIN: returned (a reference is handed over) */
} step;

static weft_result step_fn(weft_result in, void *ctx)
{
    step *s = ctx;
    if (in.kind == WEFT_RESULT_FAILURE)
        log_add("%s(!%s)", s->name, in.failure->type);
    else
        log_add("%s(%lu)", s->name, (unsigned long)N(in.value));
    switch (s->action) {
    case ACT_PASS:
        return in;
    case ACT_VALUE:
        return weft_value(V(s->value));
    case ACT_FAIL:
        return weft_failed(weft_failure_new(s->type, "raised by %s", s->name));
    case ACT_CHAIN:
        return weft_chain(s->chain);
    case ACT_TRAP:
        if (in.kind == WEFT_RESULT_FAILURE && weft_failure_check(in.failure, s->type))
            return weft_value(V(s->value));
        return in;
    }
    return in;
}

static unsigned long unhandled_mark;

static int setup(void **state)
{
    (void)state;
    log_reset();
    weft_unhandled_reset();
    unhandled_mark = weft_watch_unhandled();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    weft_set_unhandled_handler(NULL, NULL);
    weft_alloc_fail_after(-1);
    return 0;
}

#define assert_log(expected) assert_string_equal(log_buf, (expected))

/* ------------------------------------------------------ chain basics */

static void callbacks_run_in_order_and_pass_results(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step a = {"a", ACT_VALUE, 2, NULL, NULL};
    step b = {"b", ACT_VALUE, 3, NULL, NULL};
    step c = {"c", ACT_PASS, 0, NULL, NULL};
    assert_int_equal(weft_deferred_add_callback(d, step_fn, &a), WEFT_OK);
    assert_int_equal(weft_deferred_add_callback(d, step_fn, &b), WEFT_OK);
    assert_int_equal(weft_deferred_add_callback(d, step_fn, &c), WEFT_OK);
    weft_assert_no_result(d);
    assert_log("");
    assert_false(weft_deferred_called(d));
    assert_int_equal(weft_deferred_callback(d, V(1)), WEFT_OK);
    assert_true(weft_deferred_called(d));
    assert_log("a(1)b(2)c(3)");
    assert_ptr_equal(weft_assert_succeeded(d), V(3));
    weft_deferred_unref(d);
    weft_assert_no_unhandled(unhandled_mark);
}

static void failing_callback_switches_to_errback_path(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step raise = {"raise", ACT_FAIL, 0, "Boom", NULL};
    step skipped = {"skipped", ACT_VALUE, 99, NULL, NULL};
    step recover = {"recover", ACT_VALUE, 7, NULL, NULL};
    step after = {"after", ACT_PASS, 0, NULL, NULL};
    step eb_unused = {"eb_unused", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(d, step_fn, &raise);
    weft_deferred_add_callback(d, step_fn, &skipped);
    weft_deferred_add_errback(d, step_fn, &recover);
    weft_deferred_add_callbacks(d, step_fn, &after, step_fn, &eb_unused);
    weft_deferred_callback(d, V(1));
    assert_log("raise(1)recover(!Boom)after(7)");
    assert_ptr_equal(weft_assert_succeeded(d), V(7));
    weft_deferred_unref(d);
    weft_assert_no_unhandled(unhandled_mark);
}

static void errback_passes_failure_until_handled(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step cb = {"cb", ACT_VALUE, 5, NULL, NULL};
    step eb1 = {"eb1", ACT_PASS, 0, NULL, NULL};
    step eb2 = {"eb2", ACT_FAIL, 0, "Other", NULL};
    step both = {"both", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(d, step_fn, &cb);
    weft_deferred_add_errback(d, step_fn, &eb1);
    weft_deferred_add_errback(d, step_fn, &eb2);
    weft_deferred_add_both(d, step_fn, &both);
    weft_deferred_errback(d, weft_failure_new("First", "first failure %d", 1));
    assert_log("eb1(!First)eb2(!First)both(!Other)");
    weft_failure *f = weft_assert_failed(d, "Other");
    assert_string_equal(f->message, "raised by eb2");
    weft_failure_free(f);
    weft_deferred_unref(d);
    weft_assert_no_unhandled(unhandled_mark);
}

static void errback_traps_only_its_type(void **state)
{
    (void)state;
    step trap_a = {"trapA", ACT_TRAP, 11, "A", NULL};
    step trap_b = {"trapB", ACT_TRAP, 22, "B", NULL};
    weft_deferred *d = weft_fail(weft_failure_new("B", "b"));
    weft_deferred_add_errback(d, step_fn, &trap_a);
    weft_deferred_add_errback(d, step_fn, &trap_b);
    assert_log("trapA(!B)trapB(!B)");
    assert_ptr_equal(weft_assert_succeeded(d), V(22));
    weft_deferred_unref(d);

    log_reset();
    d = weft_fail(weft_failure_new("C", "c"));
    weft_deferred_add_errback(d, step_fn, &trap_a);
    weft_deferred_add_errback(d, step_fn, &trap_b);
    assert_log("trapA(!C)trapB(!C)");
    weft_failure_free(weft_assert_failed(d, "C"));
    weft_deferred_unref(d);
    weft_assert_no_unhandled(unhandled_mark);
}

static void add_after_fire_runs_at_once(void **state)
{
    (void)state;
    weft_deferred *d = weft_succeed(V(4));
    step a = {"a", ACT_VALUE, 5, NULL, NULL};
    weft_deferred_add_callback(d, step_fn, &a);
    assert_log("a(4)");
    step b = {"b", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_errback(d, step_fn, &b); /* pass-through slot, not called */
    assert_log("a(4)");
    weft_deferred_add_both(d, step_fn, &b);
    assert_log("a(4)b(5)");
    weft_deferred_unref(d);
}

static void null_handlers_pass_through(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_callbacks(d, NULL, NULL, NULL, NULL), WEFT_OK);
    weft_deferred_callback(d, V(8));
    assert_ptr_equal(weft_assert_succeeded(d), V(8));
    weft_deferred_unref(d);
}

static void fire_twice_is_already_called(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_callback(d, V(1)), WEFT_OK);
    assert_int_equal(weft_deferred_callback(d, V(2)), WEFT_EALREADYCALLED);
    /* errback after callback: refused, and the Failure is freed (ASan). */
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("X", "x")), WEFT_EALREADYCALLED);
    assert_ptr_equal(weft_assert_succeeded(d), V(1));
    weft_deferred_unref(d);

    d = weft_deferred_new();
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("X", "x")), WEFT_OK);
    assert_int_equal(weft_deferred_callback(d, V(1)), WEFT_EALREADYCALLED);
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("Y", "y")), WEFT_EALREADYCALLED);
    weft_failure_free(weft_assert_failed(d, "X"));
    weft_deferred_unref(d);
    weft_assert_no_unhandled(unhandled_mark);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    assert_int_equal(weft_deferred_callback(NULL, V(1)), WEFT_EINVAL);
    assert_int_equal(weft_deferred_errback(NULL, weft_failure_new("X", "x")), WEFT_EINVAL);
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_errback(d, NULL), WEFT_EINVAL);
    assert_false(weft_deferred_called(d));
    assert_int_equal(weft_deferred_add_callback(NULL, step_fn, NULL), WEFT_EINVAL);
    assert_int_equal(weft_deferred_pause(NULL), WEFT_EINVAL);
    assert_int_equal(weft_deferred_unpause(NULL), WEFT_EINVAL);
    assert_int_equal(weft_deferred_cancel(NULL), WEFT_EINVAL);
    assert_int_equal(weft_deferred_chain_to(d, d), WEFT_ESELFCHAIN);
    assert_int_equal(weft_deferred_chain_to(d, NULL), WEFT_EINVAL);
    weft_result r;
    assert_int_equal(weft_deferred_take_result(d, &r), WEFT_ESTATE);
    assert_int_equal(weft_deferred_take_result(d, NULL), WEFT_EINVAL);
    weft_deferred_unref(NULL);
    assert_null(weft_deferred_ref(NULL));
    weft_deferred_unref(d);
}

static weft_result return_null_failure(weft_result in, void *ctx)
{
    (void)in;
    (void)ctx;
    return weft_failed(NULL);
}

static weft_result return_null_chain(weft_result in, void *ctx)
{
    (void)in;
    (void)ctx;
    return weft_chain(NULL);
}

static void bad_handler_results_become_failures(void **state)
{
    (void)state;
    weft_deferred *d = weft_succeed(V(1));
    weft_deferred_add_callback(d, return_null_failure, NULL);
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_BAD_RESULT));
    weft_deferred_add_callback(d, return_null_chain, NULL);
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_BAD_RESULT));
    weft_deferred_unref(d);
    weft_failure_free(weft_assert_failed(d = weft_fail(NULL), WEFT_FAILURE_BAD_RESULT));
    weft_deferred_unref(d);
}

/* --------------------------------------------------------- reentrancy */

typedef struct adder {
    weft_deferred *d;
    step *added;
    int depth;
    int max_depth;
} adder;

static int running_depth;

static weft_result add_more(weft_result in, void *ctx)
{
    adder *a = ctx;
    running_depth++;
    if (running_depth > a->max_depth)
        a->max_depth = running_depth;
    log_add("add(%lu)", (unsigned long)N(in.value));
    weft_deferred_add_callback(a->d, step_fn, a->added);
    log_add("added");
    running_depth--;
    return weft_value(V(N(in.value) + 1));
}

static void handler_added_while_running_is_picked_up_not_nested(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step later = {"later", ACT_PASS, 0, NULL, NULL};
    step tail = {"tail", ACT_PASS, 0, NULL, NULL};
    adder a = {d, &later, 0, 0};
    weft_deferred_add_callback(d, add_more, &a);
    weft_deferred_add_callback(d, step_fn, &tail);
    weft_deferred_callback(d, V(1));
    /* The added handler runs after the running one returned, after the
     * handlers that were already there. */
    assert_log("add(1)addedtail(2)later(2)");
    assert_int_equal(a.max_depth, 1);
    weft_deferred_unref(d);
}

static weft_result unref_self(weft_result in, void *ctx)
{
    weft_deferred_unref(ctx);
    log_add("unref");
    return in;
}

static void last_unref_inside_a_handler_is_safe(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step after = {"after", ACT_FAIL, 0, "Late", NULL};
    weft_deferred_add_callback(d, unref_self, d);
    weft_deferred_add_callback(d, step_fn, &after);
    weft_deferred_callback(d, V(1));
    /* Freed when the loop let go of it; its Failure was unhandled. */
    assert_log("unref" "after(1)");
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
}

static weft_result inspect_self(weft_result in, void *ctx)
{
    weft_deferred *d = ctx;
    weft_result r;
    /* From inside its own chain a Deferred has no settled result. */
    log_add("peek=%d,take=%d,fire=%d,", (int)weft_deferred_peek(d, &r),
            weft_deferred_take_result(d, &r), weft_deferred_callback(d, V(9)));
    return in;
}

static void running_deferred_has_no_result_to_take(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    weft_deferred_add_callback(d, inspect_self, d);
    weft_deferred_callback(d, V(4));
    char expected[64];
    snprintf(expected, sizeof expected, "peek=%d,take=%d,fire=%d,", (int)WEFT_DEFERRED_PENDING,
             WEFT_ESTATE, WEFT_EALREADYCALLED);
    assert_log(expected);
    assert_ptr_equal(weft_assert_succeeded(d), V(4));
    weft_deferred_unref(d);
}

/* --------------------------------------------------------------- pause */

static void pause_delays_until_unpause(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step a = {"a", ACT_VALUE, 2, NULL, NULL};
    weft_deferred_add_callback(d, step_fn, &a);
    assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    assert_int_equal(weft_deferred_paused(d), 2);
    weft_deferred_callback(d, V(1));
    assert_log("");
    weft_assert_no_result(d);
    assert_int_equal(weft_deferred_unpause(d), WEFT_OK);
    assert_log("");
    step b = {"b", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(d, step_fn, &b); /* paused: not run now */
    assert_log("");
    assert_int_equal(weft_deferred_unpause(d), WEFT_OK);
    assert_log("a(1)b(2)");
    assert_int_equal(weft_deferred_unpause(d), WEFT_ENOTPAUSED);
    assert_int_equal(weft_deferred_paused(d), 0);
    assert_ptr_equal(weft_assert_succeeded(d), V(2));
    weft_deferred_unref(d);
}

static void unpause_unpaused_is_refused(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_unpause(d), WEFT_ENOTPAUSED);
    /* The Deferred still works (Twisted would hang it forever). */
    step a = {"a", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(d, step_fn, &a);
    weft_deferred_callback(d, V(3));
    assert_log("a(3)");
    weft_deferred_unref(d);
}

/* ------------------------------------------------------------ chaining */

static void chain_waits_for_inner(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step o2 = {"o2", ACT_VALUE, 30, NULL, NULL};
    step o3 = {"o3", ACT_PASS, 0, NULL, NULL};
    step i1 = {"i1", ACT_VALUE, 20, NULL, NULL};
    step ilate = {"ilate", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(inner, step_fn, &i1);
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_callback(outer, step_fn, &o2);
    weft_deferred_callback(outer, V(1));
    assert_log("ret(1)");
    weft_assert_no_result(outer);
    assert_int_equal(weft_deferred_paused(outer), 1);
    /* The wait's pause is not the user's to remove. */
    assert_int_equal(weft_deferred_unpause(outer), WEFT_ENOTPAUSED);
    /* Added to the inner after it was returned: sees NULL, and runs after the
     * outer's remaining handlers. */
    weft_deferred_add_callback(inner, step_fn, &ilate);
    weft_deferred_add_callback(outer, step_fn, &o3);
    weft_deferred_callback(inner, V(10));
    assert_log("ret(1)i1(10)o2(20)o3(30)ilate(0)");
    assert_ptr_equal(weft_assert_succeeded(outer), V(30));
    assert_ptr_equal(weft_assert_succeeded(inner), V(0));
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
    weft_assert_no_unhandled(unhandled_mark);
}

static void chain_to_fired_inner_steals_its_result(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_succeed(V(5));
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step o2 = {"o2", ACT_PASS, 0, NULL, NULL};
    step ilate = {"ilate", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_callback(outer, step_fn, &o2);
    weft_deferred_callback(outer, V(1));
    assert_log("ret(1)o2(5)");
    weft_deferred_add_callback(inner, step_fn, &ilate);
    assert_log("ret(1)o2(5)ilate(0)");
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
}

static void failure_from_inner_continues_outer_and_is_not_reported(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step o2 = {"o2", ACT_VALUE, 9, NULL, NULL};
    step trap = {"trap", ACT_TRAP, 6, "Inner", NULL};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_callbacks(outer, step_fn, &o2, step_fn, &trap);
    weft_deferred_callback(outer, V(1));
    weft_deferred_errback(inner, weft_failure_new("Inner", "inner failed"));
    assert_log("ret(1)trap(!Inner)");
    weft_deferred_unref(inner); /* holds NULL now: nothing to report */
    assert_ptr_equal(weft_assert_succeeded(outer), V(6));
    weft_deferred_unref(outer);
    weft_assert_no_unhandled(unhandled_mark);
}

static void unhandled_failure_of_chain_reported_on_outer_only(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_callback(outer, V(1));
    weft_deferred_errback(inner, weft_failure_new("Inner", "x"));
    weft_deferred_unref(inner);
    assert_int_equal(weft_unhandled_count(), unhandled_mark);
    weft_deferred_unref(outer);
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
}

static void callback_returning_own_deferred_fails_with_self_chain(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step self = {"self", ACT_CHAIN, 0, NULL, NULL};
    self.chain = weft_deferred_ref(d);
    step eb = {"eb", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(d, step_fn, &self);
    weft_deferred_add_errback(d, step_fn, &eb);
    weft_deferred_callback(d, V(1));
    assert_log("self(1)eb(!SelfChain)");
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_SELF_CHAIN));
    weft_deferred_unref(d); /* the reference count is back to one */
    weft_assert_no_unhandled(unhandled_mark);
}

static void waiting_cycle_fails_with_self_chain(void **state)
{
    (void)state;
    weft_deferred *a = weft_deferred_new();
    weft_deferred *b = weft_deferred_new();
    step a_ret_b = {"a", ACT_CHAIN, 0, NULL, weft_deferred_ref(b)};
    step b_ret_a = {"b", ACT_CHAIN, 0, NULL, weft_deferred_ref(a)};
    weft_deferred_add_callback(a, step_fn, &a_ret_b);
    weft_deferred_add_callback(b, step_fn, &b_ret_a);
    weft_deferred_callback(a, V(1)); /* a waits on b */
    weft_deferred_callback(b, V(2)); /* b would wait on a: a cycle */
    assert_log("a(1)b(2)");
    /* b failed with SelfChain and that Failure flowed into a. */
    weft_failure_free(weft_assert_failed(a, WEFT_FAILURE_SELF_CHAIN));
    assert_ptr_equal(weft_assert_succeeded(b), NULL);
    weft_deferred_unref(a);
    weft_deferred_unref(b);
    weft_assert_no_unhandled(unhandled_mark);
}

/* Twisted's test_errorClearedByChaining: an errback returns another Deferred;
 * the first Failure is gone (freed), so nothing is reported for it. */
static void failure_cleared_by_chaining_is_not_reported(void **state)
{
    (void)state;
    weft_deferred *outer = weft_fail(weft_failure_new("Gone", "replaced by a chain"));
    weft_deferred *inner = weft_deferred_new();
    step eb = {"eb", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    weft_deferred_add_errback(outer, step_fn, &eb);
    assert_log("eb(!Gone)");
    weft_assert_no_result(outer);
    weft_deferred_unref(outer); /* freed while waiting: nothing to report */
    weft_deferred_unref(inner);
    weft_assert_no_unhandled(unhandled_mark);
}

/* Departure 6 of docs/deferred.md: the outer, resumed by the inner's result,
 * waits again; the inner's own later handlers still run (Twisted strands
 * them until something re-triggers the inner). */
static void inner_continues_when_outer_waits_again(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    weft_deferred *second = weft_deferred_new();
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step ret_second = {"ret2", ACT_CHAIN, 0, NULL, weft_deferred_ref(second)};
    step ilate = {"ilate", ACT_PASS, 0, NULL, NULL};
    step o3 = {"o3", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_callback(outer, step_fn, &ret_second);
    weft_deferred_add_callback(outer, step_fn, &o3);
    weft_deferred_callback(outer, V(1));
    weft_deferred_add_callback(inner, step_fn, &ilate);
    weft_deferred_callback(inner, V(2));
    assert_log("ret(1)ret2(2)ilate(0)");
    assert_ptr_equal(weft_assert_succeeded(inner), NULL);
    weft_assert_no_result(outer);
    weft_deferred_callback(second, V(3));
    assert_log("ret(1)ret2(2)ilate(0)o3(3)");
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
    weft_deferred_unref(second);
}

/* Departure 5 of docs/deferred.md: the inner is still part of the running
 * chain while the outer runs, so a pair added to it from the outer's handler
 * waits for the loop to come back to the inner. */
static void pair_added_to_inner_from_outer_runs_after_outer(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step late = {"late", ACT_PASS, 0, NULL, NULL};
    step o3 = {"o3", ACT_PASS, 0, NULL, NULL};
    adder a = {inner, &late, 0, 0};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_callback(outer, add_more, &a);
    weft_deferred_add_callback(outer, step_fn, &o3);
    weft_deferred_callback(outer, V(1));
    weft_deferred_callback(inner, V(5));
    assert_log("ret(1)add(5)addedo3(6)late(0)");
    assert_int_equal(a.max_depth, 1);
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
}

static void pausing_inner_delays_outer(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_succeed(V(3));
    weft_deferred_pause(inner);
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step o2 = {"o2", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_callback(outer, step_fn, &o2);
    weft_deferred_callback(outer, V(1));
    assert_log("ret(1)");
    weft_assert_no_result(outer);
    weft_deferred_unpause(inner);
    assert_log("ret(1)o2(3)");
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
}

static void paused_outer_still_receives_inner_result(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step o2 = {"o2", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_callback(outer, step_fn, &o2);
    weft_deferred_callback(outer, V(1));
    weft_deferred_pause(outer);
    weft_deferred_callback(inner, V(4));
    assert_log("ret(1)");
    weft_assert_no_result(outer);
    assert_int_equal(weft_deferred_paused(outer), 1);
    weft_deferred_unpause(outer);
    assert_log("ret(1)o2(4)");
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
}

static void outer_freed_while_waiting_orphans_its_continuation(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step ilate = {"ilate", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_callback(outer, V(1));
    weft_deferred_unref(outer);
    weft_deferred_add_callback(inner, step_fn, &ilate);
    weft_deferred_errback(inner, weft_failure_new("Lost", "nobody waits"));
    /* The Failure went to a Deferred that no longer exists: reported. */
    assert_log("ret(1)ilate(0)");
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
    weft_deferred_unref(inner);
}

static void chain_to_forwards_result(void **state)
{
    (void)state;
    weft_deferred *a = weft_deferred_new();
    weft_deferred *b = weft_deferred_new();
    step b1 = {"b1", ACT_PASS, 0, NULL, NULL};
    step a2 = {"a2", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_both(b, step_fn, &b1);
    assert_int_equal(weft_deferred_chain_to(a, b), WEFT_OK);
    weft_deferred_add_both(a, step_fn, &a2);
    weft_deferred_unref(b); /* a's pair holds its own reference */
    weft_deferred_errback(a, weft_failure_new("E", "e"));
    assert_log("b1(!E)a2(0)");
    weft_deferred_unref(a);
    /* b's Failure was unhandled (b1 passed it on); a's result is NULL. */
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
}

static void chain_to_already_called_fails_source(void **state)
{
    (void)state;
    weft_deferred *a = weft_deferred_new();
    weft_deferred *b = weft_succeed(V(1));
    weft_deferred_chain_to(a, b);
    weft_deferred_callback(a, V(2));
    weft_failure_free(weft_assert_failed(a, WEFT_FAILURE_ALREADY_CALLED));
    assert_ptr_equal(weft_assert_succeeded(b), V(1));
    weft_deferred_unref(a);
    weft_deferred_unref(b);
}

static void chain_to_pending_pair_released_with_source(void **state)
{
    (void)state;
    weft_deferred *a = weft_deferred_new();
    weft_deferred *b = weft_deferred_new();
    weft_deferred_chain_to(a, b);
    weft_deferred_unref(a); /* drops its pair and the reference on b */
    weft_assert_no_result(b);
    weft_deferred_callback(b, V(1));
    weft_deferred_unref(b);
}

/* ------------------------------------------------------- cancellation */

typedef struct canceller_ctx {
    int calls;
    int action; /* 0: nothing, 1: callback, 2: errback, 3: cancel again */
} canceller_ctx;

static void test_canceller(weft_deferred *d, void *ctx)
{
    canceller_ctx *c = ctx;
    c->calls++;
    log_add("canceller");
    if (c->action == 1)
        weft_deferred_callback(d, V(42));
    else if (c->action == 2)
        weft_deferred_errback(d, weft_failure_new("Mine", "canceller's own"));
    else if (c->action == 3)
        weft_deferred_cancel(d);
}

static void cancel_without_canceller_swallows_one_fire(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step eb = {"eb", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_errback(d, step_fn, &eb);
    assert_int_equal(weft_deferred_cancel(d), WEFT_OK);
    assert_log("eb(!Cancelled)");
    assert_int_equal(weft_deferred_callback(d, V(1)), WEFT_OK); /* swallowed */
    assert_int_equal(weft_deferred_callback(d, V(1)), WEFT_EALREADYCALLED);
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("X", "x")), WEFT_EALREADYCALLED);
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(d);

    d = weft_deferred_new();
    weft_deferred_cancel(d);
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("X", "x")), WEFT_OK);
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("X", "x")), WEFT_EALREADYCALLED);
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(d);
    weft_assert_no_unhandled(unhandled_mark);
}

static void canceller_runs_once_and_nothing_is_swallowed(void **state)
{
    (void)state;
    canceller_ctx c = {0, 0};
    weft_deferred *d = weft_deferred_new_cancellable(test_canceller, &c);
    weft_deferred_cancel(d);
    weft_deferred_cancel(d);
    assert_int_equal(c.calls, 1);
    assert_int_equal(weft_deferred_callback(d, V(1)), WEFT_EALREADYCALLED);
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(d);

    /* A canceller that cancels again does not run twice. */
    canceller_ctx again = {0, 3};
    d = weft_deferred_new_cancellable(test_canceller, &again);
    weft_deferred_cancel(d);
    assert_int_equal(again.calls, 1);
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(d);
}

static void canceller_that_fires_decides(void **state)
{
    (void)state;
    canceller_ctx ok = {0, 1};
    weft_deferred *d = weft_deferred_new_cancellable(test_canceller, &ok);
    weft_deferred_cancel(d);
    assert_ptr_equal(weft_assert_succeeded(d), V(42));
    weft_deferred_unref(d);

    canceller_ctx err = {0, 2};
    d = weft_deferred_new_cancellable(test_canceller, &err);
    weft_deferred_cancel(d);
    weft_failure *f = weft_assert_failed(d, "Mine");
    assert_string_equal(f->message, "canceller's own");
    weft_failure_free(f);
    weft_deferred_unref(d);
}

static void cancel_fired_does_not_call_canceller(void **state)
{
    (void)state;
    canceller_ctx c = {0, 0};
    weft_deferred *d = weft_deferred_new_cancellable(test_canceller, &c);
    weft_deferred_callback(d, V(1));
    weft_deferred_cancel(d);
    assert_int_equal(c.calls, 0);
    assert_ptr_equal(weft_assert_succeeded(d), V(1));
    weft_deferred_unref(d);
}

static void cancel_waiting_outer_cancels_inner(void **state)
{
    (void)state;
    canceller_ctx c = {0, 0};
    weft_deferred *outer = weft_deferred_new_cancellable(test_canceller, &c);
    canceller_ctx ci = {0, 0};
    weft_deferred *inner = weft_deferred_new_cancellable(test_canceller, &ci);
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    step eb = {"eb", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_deferred_add_errback(outer, step_fn, &eb);
    weft_deferred_callback(outer, V(1));
    weft_deferred_cancel(outer);
    assert_int_equal(c.calls, 0);
    assert_int_equal(ci.calls, 1);
    assert_log("ret(1)cancellereb(!Cancelled)");
    weft_failure_free(weft_assert_failed(outer, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
    weft_assert_no_unhandled(unhandled_mark);
}

/* ----------------------------------------------------- unhandled reports */

static void unhandled_failure_reported_once_at_last_unref(void **state)
{
    (void)state;
    weft_deferred *d = weft_fail(weft_failure_new("Lost", "nobody handled me"));
    weft_deferred_ref(d);
    weft_deferred_unref(d);
    assert_int_equal(weft_unhandled_count(), unhandled_mark);
    weft_deferred_unref(d);
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);

    /* Handled: not reported. */
    d = weft_fail(weft_failure_new("Lost", "x"));
    step trap = {"trap", ACT_TRAP, 0, "Lost", NULL};
    weft_deferred_add_errback(d, step_fn, &trap);
    weft_deferred_unref(d);
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);

    /* Pending or succeeded: not reported. */
    weft_deferred_unref(weft_deferred_new());
    weft_deferred_unref(weft_succeed(NULL));
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
}

typedef struct seen {
    int count;
    char type[32];
} seen;

static void count_handler(const weft_failure *f, void *ctx)
{
    seen *s = ctx;
    s->count++;
    snprintf(s->type, sizeof s->type, "%s", f->type);
}

static void unhandled_handler_receives_failure(void **state)
{
    (void)state;
    seen s = {0, ""};
    weft_set_unhandled_handler(count_handler, &s);
    weft_deferred_unref(weft_fail(weft_failure_new("Oops", "x")));
    assert_int_equal(s.count, 1);
    assert_string_equal(s.type, "Oops");
    weft_set_unhandled_handler(NULL, NULL);
    weft_deferred_unref(weft_fail(weft_failure_new("Oops", "x")));
    assert_int_equal(s.count, 1);
    unsigned long before = weft_unhandled_count();
    assert_true(before >= 2);
    weft_unhandled_reset();
    assert_int_equal(weft_unhandled_count(), 0);
    unhandled_mark = 0;
}

/* --------------------------------------------------------- deep chains */

static weft_result count_cb(weft_result in, void *ctx)
{
    (*(size_t *)ctx)++;
    return weft_value(V(N(in.value) + 1));
}

static void million_callbacks_on_one_deferred(void **state)
{
    (void)state;
    enum { COUNT = 1000000 };
    size_t calls = 0;
    weft_deferred *d = weft_deferred_new();
    for (size_t i = 0; i < COUNT; i++)
        assert_int_equal(weft_deferred_add_callback(d, count_cb, &calls), WEFT_OK);
    weft_deferred_callback(d, V(0));
    assert_int_equal(calls, COUNT);
    assert_ptr_equal(weft_assert_succeeded(d), V(COUNT));
    weft_deferred_unref(d);
}

static weft_result return_ctx_deferred(weft_result in, void *ctx)
{
    (void)in;
    return weft_chain(weft_deferred_ref(ctx));
}

/* Twisted's test_boundedStackDepth, a million deep: top waits on inner[0],
 * which waits on inner[1], ... which waits on last. */
static void million_nested_chained_deferreds(void **state)
{
    (void)state;
    enum { COUNT = 1000000 };
    weft_deferred **inners = weft_malloc(COUNT * sizeof *inners);
    assert_non_null(inners);
    for (size_t i = 0; i < COUNT; i++)
        inners[i] = weft_deferred_new();
    weft_deferred *top = weft_deferred_new();
    weft_deferred *last = weft_deferred_new();
    size_t calls = 0;
    weft_deferred_add_callback(top, return_ctx_deferred, inners[0]);
    weft_deferred_add_callback(top, count_cb, &calls);
    for (size_t i = 0; i + 1 < COUNT; i++)
        weft_deferred_add_callback(inners[i], return_ctx_deferred, inners[i + 1]);
    weft_deferred_add_callback(inners[COUNT - 1], return_ctx_deferred, last);
    weft_deferred_callback(top, V(0));
    for (size_t i = 0; i < COUNT; i++)
        weft_deferred_callback(inners[i], V(0));
    assert_int_equal(calls, 0);
    weft_assert_no_result(top);
    weft_deferred_callback(last, V(77));
    assert_int_equal(calls, 1);
    assert_ptr_equal(weft_assert_succeeded(top), V(78));
    for (size_t i = 0; i < COUNT; i++)
        weft_deferred_unref(inners[i]);
    weft_free(inners);
    weft_deferred_unref(top);
    weft_deferred_unref(last);
}

static void long_chain_to_chain_and_release(void **state)
{
    (void)state;
    enum { COUNT = 200000 };
    weft_deferred *first = weft_deferred_new();
    weft_deferred *prev = first;
    weft_deferred *end = NULL;
    for (size_t i = 0; i < COUNT; i++) {
        weft_deferred *next = weft_deferred_new();
        weft_deferred_chain_to(prev, next);
        if (prev != first)
            weft_deferred_unref(prev);
        prev = next;
    }
    end = prev;
    weft_deferred_callback(first, V(5));
    assert_ptr_equal(weft_assert_succeeded(end), V(5));
    weft_deferred_unref(end);
    weft_deferred_unref(first);

    /* Releasing a long unfired chain_to chain frees iteratively. */
    first = weft_deferred_new();
    prev = first;
    for (size_t i = 0; i < COUNT; i++) {
        weft_deferred *next = weft_deferred_new();
        weft_deferred_chain_to(prev, next);
        if (prev != first)
            weft_deferred_unref(prev);
        prev = next;
    }
    weft_deferred_unref(prev);
    weft_deferred_unref(first);

    /* Cancelling the head of a long waiting chain walks it iteratively. */
    weft_deferred *head = weft_deferred_new();
    weft_deferred **all = weft_malloc(COUNT * sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < COUNT; i++)
        all[i] = weft_deferred_new();
    weft_deferred_add_callback(head, return_ctx_deferred, all[0]);
    for (size_t i = 0; i + 1 < COUNT; i++)
        weft_deferred_add_callback(all[i], return_ctx_deferred, all[i + 1]);
    weft_deferred_callback(head, V(0));
    for (size_t i = 0; i + 1 < COUNT; i++)
        weft_deferred_callback(all[i], V(0));
    weft_assert_no_result(head);
    weft_deferred_cancel(head);
    weft_failure_free(weft_assert_failed(head, WEFT_FAILURE_CANCELLED));
    for (size_t i = 0; i < COUNT; i++)
        weft_deferred_unref(all[i]);
    weft_free(all);
    weft_deferred_unref(head);
}

/* The same deep shapes on a thread with a 256 KiB stack: any recursion on
 * chain length would overflow it long before a million. */
typedef struct deep_result {
    uintptr_t nested_value;
    uintptr_t chain_to_value;
    int cancelled;
} deep_result;

static void *deep_on_small_stack(void *arg)
{
    deep_result *out = arg;
    enum { COUNT = 1000000 };
    weft_deferred **inners = weft_malloc(COUNT * sizeof *inners);
    if (!inners)
        return NULL;
    for (size_t i = 0; i < COUNT; i++)
        inners[i] = weft_deferred_new();
    weft_deferred *top = weft_deferred_new();
    weft_deferred *last = weft_deferred_new();
    weft_deferred_add_callback(top, return_ctx_deferred, inners[0]);
    for (size_t i = 0; i + 1 < COUNT; i++)
        weft_deferred_add_callback(inners[i], return_ctx_deferred, inners[i + 1]);
    weft_deferred_add_callback(inners[COUNT - 1], return_ctx_deferred, last);
    weft_deferred_callback(top, V(0));
    for (size_t i = 0; i < COUNT; i++)
        weft_deferred_callback(inners[i], V(0));
    /* Cancel the head: the walk to the end of the waiting chain is a loop,
     * and the Cancelled Failure unwinds through a million continuations. */
    weft_deferred_cancel(top);
    weft_result r;
    if (weft_deferred_take_result(top, &r) == WEFT_OK && r.kind == WEFT_RESULT_FAILURE) {
        out->cancelled = weft_failure_check(r.failure, WEFT_FAILURE_CANCELLED);
        weft_failure_free(r.failure);
    }
    for (size_t i = 0; i < COUNT; i++)
        weft_deferred_unref(inners[i]);
    weft_deferred_unref(top);
    weft_deferred_unref(last);

    /* A million chain_to links, fired, then an unfired one released. */
    for (int fired = 1; fired >= 0; fired--) {
        weft_deferred *first = weft_deferred_new();
        weft_deferred *prev = first;
        for (size_t i = 0; i < COUNT; i++) {
            weft_deferred *next = weft_deferred_new();
            weft_deferred_chain_to(prev, next);
            if (prev != first)
                weft_deferred_unref(prev);
            prev = next;
        }
        if (fired) {
            weft_deferred_callback(first, V(7));
            if (weft_deferred_take_result(prev, &r) == WEFT_OK)
                out->chain_to_value = (uintptr_t)r.value;
        }
        weft_deferred_unref(prev);
        weft_deferred_unref(first); /* releases the rest, iteratively */
    }
    weft_free(inners);
    out->nested_value = 1;
    return NULL;
}

static void deep_chains_run_on_a_small_stack(void **state)
{
    (void)state;
    pthread_attr_t attr;
    pthread_t thread;
    deep_result out = {0, 0, 0};
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    assert_int_equal(pthread_create(&thread, &attr, deep_on_small_stack, &out), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_int_equal(out.nested_value, 1);
    assert_true(out.cancelled);
    assert_int_equal(out.chain_to_value, 7);
}

/* ---------------------------------------------------- out of memory */

static void add_callbacks_out_of_memory_leaves_deferred_unchanged(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    step a = {"a", ACT_VALUE, 2, NULL, NULL};
    step b = {"b", ACT_VALUE, 3, NULL, NULL};
    assert_int_equal(weft_deferred_add_callback(d, step_fn, &a), WEFT_OK);
    weft_alloc_fail_after(0); /* the second pair needs the heap array */
    assert_int_equal(weft_deferred_add_callback(d, step_fn, &b), WEFT_ENOMEM);
    assert_int_equal(weft_alloc_fail_after(-1), 1);
    weft_deferred_callback(d, V(1));
    assert_log("a(1)");
    weft_deferred_unref(d);

    /* Growing the array fails: earlier pairs still run, in order. */
    log_reset();
    d = weft_deferred_new();
    step c[8];
    for (int i = 0; i < 4; i++) {
        c[i] = (step){"c", ACT_PASS, 0, NULL, NULL};
        assert_int_equal(weft_deferred_add_callback(d, step_fn, &c[i]), WEFT_OK);
    }
    weft_alloc_fail_after(0);
    assert_int_equal(weft_deferred_add_callback(d, step_fn, &c[4]), WEFT_ENOMEM);
    weft_alloc_fail_after(-1);
    weft_deferred_callback(d, V(1));
    assert_log("c(1)c(1)c(1)c(1)");
    weft_deferred_unref(d);
}

static void constructors_out_of_memory(void **state)
{
    (void)state;
    weft_alloc_fail_after(0);
    assert_null(weft_deferred_new());
    weft_alloc_fail_after(0);
    assert_null(weft_deferred_new_cancellable(test_canceller, NULL));
    weft_alloc_fail_after(0);
    assert_null(weft_succeed(V(1)));
    weft_alloc_fail_after(1); /* the Failure is built, the Deferred is not */
    assert_null(weft_fail(weft_failure_new("X", "freed by weft_fail")));
    weft_alloc_fail_after(0);
    weft_failure *f = weft_failure_new("X", "y");
    assert_string_equal(f->type, WEFT_FAILURE_NO_MEMORY);
    weft_failure_free(f); /* the static one: a no-op */
    weft_alloc_fail_after(-1);
    weft_failure *orig = weft_failure_new("X", "%s", "y");
    weft_alloc_fail_after(0);
    f = weft_failure_copy(orig);
    weft_alloc_fail_after(-1);
    assert_string_equal(f->type, WEFT_FAILURE_NO_MEMORY);
    weft_failure_free(f);
    /* A FirstError whose sub-Failure cannot be copied is OutOfMemory. */
    weft_alloc_fail_after(0);
    f = weft_failure_first_error(orig, 1);
    weft_alloc_fail_after(-1);
    assert_string_equal(f->type, WEFT_FAILURE_NO_MEMORY);
    weft_alloc_fail_after(1);
    f = weft_failure_first_error(orig, 1);
    weft_alloc_fail_after(-1);
    assert_string_equal(f->type, WEFT_FAILURE_NO_MEMORY);
    weft_failure_free(orig);
}

static void continuation_out_of_memory_fails_outer(void **state)
{
    (void)state;
    weft_deferred *outer = weft_deferred_new();
    weft_deferred *inner = weft_deferred_new();
    step i1 = {"i1", ACT_PASS, 0, NULL, NULL};
    weft_deferred_add_callback(inner, step_fn, &i1); /* inline slot used */
    step ret_inner = {"ret", ACT_CHAIN, 0, NULL, weft_deferred_ref(inner)};
    weft_deferred_add_callback(outer, step_fn, &ret_inner);
    weft_alloc_fail_after(0); /* the continuation needs the inner's array */
    weft_deferred_callback(outer, V(1));
    weft_alloc_fail_after(-1);
    weft_failure_free(weft_assert_failed(outer, WEFT_FAILURE_NO_MEMORY));
    weft_deferred_callback(inner, V(2));
    assert_log("ret(1)i1(2)");
    weft_deferred_unref(outer);
    weft_deferred_unref(inner);
}

/* ------------------------------------------------------------- Failure */

static void failure_fields_and_copies(void **state)
{
    (void)state;
    weft_failure *f = weft_failure_new("Type", "value %d", 42);
    assert_string_equal(f->type, "Type");
    assert_string_equal(f->message, "value 42");
    assert_non_null(strstr(f->file, "test_defer.c"));
    assert_true(f->line > 0);
    assert_true(weft_failure_check(f, "Type"));
    assert_false(weft_failure_check(f, "Typ"));
    assert_false(weft_failure_check(f, NULL));
    assert_false(weft_failure_check(NULL, "Type"));
    weft_failure *fe = weft_failure_first_error(f, 3);
    assert_string_equal(fe->type, WEFT_FAILURE_FIRST_ERROR);
    assert_int_equal(fe->index, 3);
    assert_non_null(fe->sub);
    assert_ptr_not_equal(fe->sub, f);
    assert_string_equal(fe->sub->message, "value 42");
    weft_failure *copy = weft_failure_copy(fe);
    assert_ptr_not_equal(copy, fe);
    assert_string_equal(copy->sub->type, "Type");
    assert_int_equal(copy->index, 3);
    weft_failure_free(fe);
    weft_failure_free(copy);
    weft_failure_free(f);
    weft_failure_free(NULL);

    /* Long messages are kept whole. */
    char big[1000];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    f = weft_failure_new("Big", "%s", big);
    assert_string_equal(f->message, big);
    weft_failure_free(f);
    f = weft_failure_new_at(NULL, 0, NULL, NULL);
    assert_string_equal(f->type, "Failure");
    assert_string_equal(f->message, "");
    weft_failure_free(f);
}

/* ------------------------------------------------------ owned handlers */

typedef struct owned {
    int runs;
    int drops;
    bool last_failed;
} owned;

static weft_result owned_run(weft_result in, void *ctx)
{
    owned *o = ctx;
    o->runs++;
    o->last_failed = in.kind == WEFT_RESULT_FAILURE;
    return in;
}

static void owned_dropped(void *ctx)
{
    owned *o = ctx;
    o->drops++;
}

static weft_result consume(weft_result in, void *ctx)
{
    (void)ctx;
    (void)in;
    return weft_value(V(9));
}

/* Exactly one of handler and dropped runs, once, on every path. */
static weft_result chain_to_ctx(weft_result in, void *ctx)
{
    (void)in;
    return weft_chain(weft_deferred_ref(ctx));
}

static void owned_handler_runs_or_is_dropped_once(void **state)
{
    (void)state;
    owned a = {0}, b = {0}, c = {0}, e = {0}, f = {0};
    /* Callback path. */
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_both_owned(d, owned_run, owned_dropped, &a), WEFT_OK);
    assert_int_equal(weft_deferred_callback(d, V(1)), WEFT_OK);
    assert_int_equal(a.runs, 1);
    assert_false(a.last_failed);
    weft_deferred_unref(d);
    assert_int_equal(a.drops, 0);
    /* Errback path: the same handler runs, then the Failure is consumed. */
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_both_owned(d, owned_run, owned_dropped, &b), WEFT_OK);
    assert_int_equal(weft_deferred_add_errback(d, consume, NULL), WEFT_OK);
    assert_int_equal(weft_deferred_errback(d, weft_failure_new("E", "x")), WEFT_OK);
    assert_int_equal(b.runs, 1);
    assert_true(b.last_failed);
    weft_deferred_unref(d);
    assert_int_equal(b.drops, 0);
    /* Never fired: dropped at the last unref, not before. */
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_both_owned(d, owned_run, owned_dropped, &c), WEFT_OK);
    weft_deferred *extra = weft_deferred_ref(d);
    weft_deferred_unref(d);
    assert_int_equal(c.drops, 0);
    weft_deferred_unref(extra);
    assert_int_equal(c.drops, 1);
    assert_int_equal(c.runs, 0);
    /* Fired while paused, then freed. */
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_pause(d), WEFT_OK);
    assert_int_equal(weft_deferred_add_both_owned(d, owned_run, owned_dropped, &e), WEFT_OK);
    assert_int_equal(weft_deferred_callback(d, V(2)), WEFT_OK);
    weft_deferred_unref(d);
    assert_int_equal(e.runs, 0);
    assert_int_equal(e.drops, 1);
    /* Waiting on another Deferred when freed. */
    weft_deferred *inner = weft_deferred_new();
    d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_callback(d, chain_to_ctx, inner), WEFT_OK);
    assert_int_equal(weft_deferred_add_both_owned(d, owned_run, owned_dropped, &f), WEFT_OK);
    assert_int_equal(weft_deferred_callback(d, V(3)), WEFT_OK);
    weft_deferred_unref(d);
    assert_int_equal(f.runs, 0);
    assert_int_equal(f.drops, 1);
    weft_deferred_unref(inner);
}

static void owned_handler_bad_arguments(void **state)
{
    (void)state;
    owned a = {0};
    weft_deferred *d = weft_deferred_new();
    assert_int_equal(weft_deferred_add_both_owned(NULL, owned_run, owned_dropped, &a), WEFT_EINVAL);
    assert_int_equal(weft_deferred_add_both_owned(d, NULL, owned_dropped, &a), WEFT_EINVAL);
    assert_int_equal(weft_deferred_add_both_owned(d, owned_run, NULL, &a), WEFT_EINVAL);
    /* Out of memory (the second pair leaves the inline slot): neither runs. */
    assert_int_equal(weft_deferred_add_callback(d, owned_run, &a), WEFT_OK);
    weft_alloc_fail_after(0);
    int rc = weft_deferred_add_both_owned(d, owned_run, owned_dropped, &a);
    weft_alloc_fail_after(-1);
    assert_int_equal(rc, WEFT_ENOMEM);
    weft_deferred_unref(d);
    assert_int_equal(a.runs, 0);
    assert_int_equal(a.drops, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(callbacks_run_in_order_and_pass_results),
        T(failing_callback_switches_to_errback_path),
        T(errback_passes_failure_until_handled),
        T(errback_traps_only_its_type),
        T(add_after_fire_runs_at_once),
        T(null_handlers_pass_through),
        T(fire_twice_is_already_called),
        T(bad_arguments_are_refused),
        T(bad_handler_results_become_failures),
        T(handler_added_while_running_is_picked_up_not_nested),
        T(last_unref_inside_a_handler_is_safe),
        T(running_deferred_has_no_result_to_take),
        T(pause_delays_until_unpause),
        T(unpause_unpaused_is_refused),
        T(chain_waits_for_inner),
        T(chain_to_fired_inner_steals_its_result),
        T(failure_from_inner_continues_outer_and_is_not_reported),
        T(unhandled_failure_of_chain_reported_on_outer_only),
        T(callback_returning_own_deferred_fails_with_self_chain),
        T(waiting_cycle_fails_with_self_chain),
        T(failure_cleared_by_chaining_is_not_reported),
        T(inner_continues_when_outer_waits_again),
        T(pair_added_to_inner_from_outer_runs_after_outer),
        T(pausing_inner_delays_outer),
        T(paused_outer_still_receives_inner_result),
        T(outer_freed_while_waiting_orphans_its_continuation),
        T(chain_to_forwards_result),
        T(chain_to_already_called_fails_source),
        T(chain_to_pending_pair_released_with_source),
        T(cancel_without_canceller_swallows_one_fire),
        T(canceller_runs_once_and_nothing_is_swallowed),
        T(canceller_that_fires_decides),
        T(cancel_fired_does_not_call_canceller),
        T(cancel_waiting_outer_cancels_inner),
        T(unhandled_failure_reported_once_at_last_unref),
        T(unhandled_handler_receives_failure),
        T(million_callbacks_on_one_deferred),
        T(million_nested_chained_deferreds),
        T(long_chain_to_chain_and_release),
        T(deep_chains_run_on_a_small_stack),
        T(add_callbacks_out_of_memory_leaves_deferred_unchanged),
        T(constructors_out_of_memory),
        T(continuation_out_of_memory_fails_outer),
        T(failure_fields_and_copies),
#undef T
        cmocka_unit_test(owned_handler_runs_or_is_dropped_once),
        cmocka_unit_test(owned_handler_bad_arguments),
    };
    return cmocka_run_group_tests_name("defer", tests, NULL, NULL);
}
