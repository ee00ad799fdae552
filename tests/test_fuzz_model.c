/* test_fuzz_model.c: the reference model of fuzz_defer, checked on its own
 * against outcomes worked out by hand from Twisted's semantics (and weft's
 * documented departures), so that the model is not only trusted because it
 * agrees with the library. Also: the program decoder keeps every limit on
 * arbitrary bytes, and the model runs every decoded program to the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fuzz/reference_model.c"

static wm_program prog;
static wm_trace out;

static void reset(void)
{
    memset(&prog, 0, sizeof prog);
    wm_trace_init(&out);
}

static int act(uint8_t kind, uint8_t t, uint8_t j, uint8_t n, int slot)
{
    wm_act *a = &prog.acts[prog.nacts];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->t = t;
    a->j = j;
    a->n = n;
    a->id = prog.nacts;
    a->slot = slot;
    a->sub = -1;
    return prog.nacts++;
}

static wm_op *op(uint8_t kind, uint8_t d, uint8_t arg)
{
    wm_op *o = &prog.ops[prog.nops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->d = d;
    o->arg = arg;
    o->cb = o->eb = -1;
    return o;
}

/* A new Deferred: kind 0 plain, 1..3 canceller, 4 succeed(v), 5 fail(v). */
static int new_d(uint8_t kind, uint8_t v)
{
    wm_op *o = op(WM_O_NEW, 0, kind);
    o->arg2 = v;
    o->new_slot = (uint8_t)prog.nslots;
    prog.canceller[prog.nslots] = kind >= 1 && kind <= 3 ? kind : 0;
    return prog.nslots++;
}

static void add(int d, int cb, int eb)
{
    wm_op *o = op(WM_O_ADD, (uint8_t)d, 0);
    o->cb = cb >= 0 ? cb : act(WM_A_NONE, 0, 0, 0, d);
    o->eb = eb >= 0 ? eb : act(WM_A_NONE, 0, 0, 0, d);
}

static int list_d(uint8_t kind, unsigned flags, int n, const int *members)
{
    wm_op *o = op(kind, 0, (uint8_t)flags);
    o->nmembers = (uint8_t)n;
    for (int i = 0; i < n; i++)
        o->members[i] = (uint8_t)members[i];
    o->new_slot = (uint8_t)prog.nslots;
    return prog.nslots++;
}

static void run_model(void)
{
    wm_model_run(&prog, &out);
    assert_false(out.full);
}

static void expect_line(const char *line)
{
    char want[256];
    snprintf(want, sizeof want, "%s\n", line);
    if (strstr(out.text, want) == NULL) {
        fprintf(stderr, "expected the line \"%s\" in the transcript:\n%s", line, out.text);
        fail();
    }
}

static void expect_no(const char *text)
{
    if (strstr(out.text, text) != NULL) {
        fprintf(stderr, "did not expect \"%s\" in the transcript:\n%s", text, out.text);
        fail();
    }
}

/* Callbacks run in order, each on the previous one's result. */
static void test_callbacks_in_order(void **state)
{
    (void)state;
    reset();
    int d = new_d(0, 0);
    add(d, act(WM_A_VALUE, 0, 0, 5, d), -1);
    add(d, act(WM_A_PASS, 0, 0, 0, d), -1);
    op(WM_O_CALLBACK, (uint8_t)d, 1);
    run_model();
    expect_line("h0 d0 cb in=1");
    expect_line("h2 d0 cb in=5");
    expect_line("final d0: 5");
    expect_line("unhandled 0");
}

/* A Failure skips callbacks until an errback traps it. */
static void test_errback_path_and_trap(void **state)
{
    (void)state;
    reset();
    int d = new_d(0, 0);
    add(d, act(WM_A_FAIL, WM_T_E1, 0, 0, d), -1);
    add(d, act(WM_A_VALUE, 0, 0, 3, d), -1);               /* skipped */
    add(d, -1, act(WM_A_TRAP, WM_T_E0, 0, 8, d));          /* wrong type: passes */
    add(d, -1, act(WM_A_TRAP, WM_T_E1, 0, 9, d));          /* recovers */
    op(WM_O_CALLBACK, (uint8_t)d, 1);
    run_model();
    expect_line("h0 d0 cb in=1");
    expect_no("h2 ");
    /* add(d, -1, trap) makes the errback's act before the NONE callback. */
    expect_line("h4 d0 eb in=F:E1");
    expect_line("h6 d0 eb in=F:E1");
    expect_line("final d0: 9");
    expect_line("unhandled 0");
}

/* Returning an unfired Deferred pauses the chain until it fires; the inner
 * keeps None (0). */
static void test_returned_deferred_waits(void **state)
{
    (void)state;
    reset();
    int outer = new_d(0, 0), inner = new_d(0, 0);
    add(outer, act(WM_A_CHAIN, 0, (uint8_t)inner, 0, outer), -1);
    add(outer, act(WM_A_PASS, 0, 0, 0, outer), -1);
    op(WM_O_CALLBACK, (uint8_t)outer, 1);
    op(WM_O_TAKE, (uint8_t)outer, 0);      /* still waiting */
    op(WM_O_UNPAUSE, (uint8_t)outer, 0);   /* the wait's pause is not the user's */
    op(WM_O_CALLBACK, (uint8_t)inner, 7);
    run_model();
    expect_line("op5 -> ESTATE");
    expect_line("op6 -> ENOTPAUSED");
    expect_line("h2 d0 cb in=7");
    expect_line("final d0: 7");
    expect_line("final d1: 0");
}

/* An already fired Deferred returned from a handler gives its result at once. */
static void test_returned_fired_deferred_is_taken(void **state)
{
    (void)state;
    reset();
    int inner = new_d(4, 42), outer = new_d(0, 0);
    add(outer, act(WM_A_CHAIN, 0, (uint8_t)inner, 0, outer), -1);
    add(outer, act(WM_A_PASS, 0, 0, 0, outer), -1);
    op(WM_O_CALLBACK, (uint8_t)outer, 1);
    run_model();
    expect_line("h2 d1 cb in=42");
    expect_line("final d0: 0");
    expect_line("final d1: 42");
}

/* weft departure: returning the Deferred itself fails with SelfChain. */
static void test_self_chain(void **state)
{
    (void)state;
    reset();
    int d = new_d(0, 0);
    add(d, act(WM_A_CHAIN, 0, (uint8_t)d, 0, d), -1);
    add(d, -1, act(WM_A_TRAP, WM_T_E0, 0, 1, d));
    op(WM_O_CALLBACK, (uint8_t)d, 1);
    run_model();
    expect_line("h2 d0 eb in=F:SelfChain");
    expect_line("final d0: F:SelfChain");
    expect_line("unhandled 1");
}

/* cancel() without a canceller: Cancelled, and the next fire is swallowed
 * (once). */
static void test_cancel_swallows_one_fire(void **state)
{
    (void)state;
    reset();
    int d = new_d(0, 0);
    op(WM_O_CANCEL, (uint8_t)d, 0);
    op(WM_O_CALLBACK, (uint8_t)d, 1);
    op(WM_O_CALLBACK, (uint8_t)d, 2);
    run_model();
    expect_line("op2 -> OK");
    expect_line("op3 -> EALREADYCALLED");
    expect_line("final d0: F:Cancelled");
    expect_line("unhandled 1");
}

/* A canceller that fires the Deferred: its result stands, nothing is
 * swallowed afterwards. */
static void test_canceller_result_stands(void **state)
{
    (void)state;
    reset();
    int d = new_d(2, 0);
    op(WM_O_CANCEL, (uint8_t)d, 0);
    op(WM_O_CALLBACK, (uint8_t)d, 1);
    run_model();
    expect_line("canceller d0");
    expect_line("canceller d0 fired -> OK");
    expect_line("op2 -> EALREADYCALLED");
    expect_line("final d0: 77");
}

/* Cancelling a Deferred that waits on another cancels the inner one; the
 * Cancelled flows back. */
static void test_cancel_forwards_to_inner(void **state)
{
    (void)state;
    reset();
    int outer = new_d(0, 0), inner = new_d(1, 0);
    add(outer, act(WM_A_CHAIN, 0, (uint8_t)inner, 0, outer), -1);
    add(outer, -1, act(WM_A_PASS, 0, 0, 0, outer));
    op(WM_O_CALLBACK, (uint8_t)outer, 1);
    op(WM_O_CANCEL, (uint8_t)outer, 0);
    run_model();
    expect_line("canceller d1");
    expect_line("h2 d0 eb in=F:Cancelled");
    expect_line("final d0: F:Cancelled");
    expect_line("final d1: 0");
}

/* chain_to a Deferred that already fired: AlreadyCalled in the source. */
static void test_chain_to_fired_target(void **state)
{
    (void)state;
    reset();
    int a = new_d(4, 1), b = new_d(4, 2);
    op(WM_O_CHAIN_TO, (uint8_t)a, (uint8_t)b);
    op(WM_O_CHAIN_TO, (uint8_t)a, (uint8_t)a);
    run_model();
    expect_line("op3 -> ESELFCHAIN");
    expect_line("final d0: F:AlreadyCalled");
    expect_line("final d1: 2");
}

/* DeferredList(fireOnOneErrback, consumeErrors): FirstError with the
 * member's Failure and index; the member is left with None. */
static void test_list_first_error_consumed(void **state)
{
    (void)state;
    reset();
    int m0 = new_d(0, 0), m1 = new_d(0, 0);
    int members[2] = {m0, m1};
    int l = list_d(WM_O_LIST, 2 | 4, 2, members);
    op(WM_O_ERRBACK, (uint8_t)m1, WM_T_E2);
    op(WM_O_CALLBACK, (uint8_t)m0, 5);
    run_model();
    (void)l;
    expect_line("final d2: F:FirstError(E2@1)");
    expect_line("final d1: 0");
    expect_line("final d0: 5");
    expect_line("unhandled 1");
}

/* A plain list waits for every member and records each outcome. */
static void test_list_records_all(void **state)
{
    (void)state;
    reset();
    int m0 = new_d(0, 0), m1 = new_d(5, WM_T_E0);
    int members[2] = {m0, m1};
    int l = list_d(WM_O_LIST, 0, 2, members);
    add(l, act(WM_A_PASS, 0, 0, 0, l), -1);
    op(WM_O_CALLBACK, (uint8_t)m0, 3);
    run_model();
    expect_line("h0 d2 cb in=L2@0{ok:3;fail:F:E0}");
    /* The member's Failure was not consumed: it stays unhandled. */
    expect_line("final d1: F:E0");
    expect_line("unhandled 1");
}

/* gatherResults: every value in order. */
static void test_gather_values(void **state)
{
    (void)state;
    reset();
    int m0 = new_d(0, 0), m1 = new_d(4, 4);
    int members[2] = {m0, m1};
    int g = list_d(WM_O_GATHER, 0, 2, members);
    add(g, act(WM_A_PASS, 0, 0, 0, g), -1);
    op(WM_O_CALLBACK, (uint8_t)m0, 3);
    run_model();
    expect_line("h0 d2 cb in=G2{3,4}");
}

/* addTimeout: the deadline cancels, Cancelled becomes Timeout; a result
 * before the deadline cancels the timer. */
static void test_timeout(void **state)
{
    (void)state;
    reset();
    int late = new_d(0, 0), early = new_d(0, 0);
    op(WM_O_TIMEOUT, (uint8_t)late, 5);
    op(WM_O_TIMEOUT, (uint8_t)early, 5);
    op(WM_O_ADVANCE, 0, 4);
    op(WM_O_TAKE, (uint8_t)late, 0);
    op(WM_O_CALLBACK, (uint8_t)early, 6);
    op(WM_O_ADVANCE, 0, 1);
    run_model();
    expect_line("op5 -> ESTATE");
    expect_line("final d0: F:Timeout");
    expect_line("final d1: 6");
}

/* Unpausing a Deferred that is not paused is refused (weft departure). */
static void test_unpause_not_paused(void **state)
{
    (void)state;
    reset();
    int d = new_d(4, 1);
    op(WM_O_UNPAUSE, (uint8_t)d, 0);
    op(WM_O_PAUSE, (uint8_t)d, 0);
    add(d, act(WM_A_PASS, 0, 0, 0, d), -1);
    op(WM_O_UNPAUSE, (uint8_t)d, 0);
    run_model();
    expect_line("op1 -> ENOTPAUSED");
    /* The handler waits for the unpause. */
    const char *h = strstr(out.text, "h0 d0 cb in=1\n");
    const char *u = strstr(out.text, "op4 unpause\n");
    assert_non_null(h);
    assert_non_null(u);
    assert_true(u < h);
}

static int acquire(int which)
{
    wm_op *o = op(WM_O_ACQUIRE, 0, (uint8_t)which);
    o->new_slot = (uint8_t)prog.nslots;
    prog.canceller[prog.nslots] = (uint8_t)(4 + which);
    return prog.nslots++;
}

static int get(void)
{
    wm_op *o = op(WM_O_GET, 0, 0);
    o->new_slot = (uint8_t)prog.nslots;
    prog.canceller[prog.nslots] = 6;
    return prog.nslots++;
}

/* DeferredLock: FIFO hand-over on release; releasing a free lock is refused. */
static void test_lock_hand_over(void **state)
{
    (void)state;
    reset();
    int a = acquire(0), b = acquire(0);
    add(b, act(WM_A_PASS, 0, 0, 0, b), -1);
    op(WM_O_RELEASE, 0, 0);
    op(WM_O_RELEASE, 0, 0);
    op(WM_O_RELEASE, 0, 0);
    run_model();
    (void)a;
    expect_line("h0 d1 cb in=K");
    expect_line("op3 -> OK");
    expect_line("op4 -> OK");
    expect_line("op5 -> ENOTLOCKED");
    expect_line("final d0: K");
}

/* A waiter fired by hand is skipped by release (weft's rule for lock,
 * semaphore and queue, docs/deferred.md): the lock is then free. */
static void test_lock_skips_fired_waiter(void **state)
{
    (void)state;
    reset();
    acquire(0);
    int b = acquire(0);
    op(WM_O_CALLBACK, (uint8_t)b, 5);
    op(WM_O_RELEASE, 0, 0);
    op(WM_O_RELEASE, 0, 0);
    run_model();
    expect_line("op3 -> OK");
    expect_line("op4 -> ENOTLOCKED");
    expect_line("final d1: 5");
}

/* The semaphore follows the same rule: the token goes to the next waiter
 * past one fired by hand, and back to the semaphore when none is left. */
static void test_semaphore_skips_fired_waiter(void **state)
{
    (void)state;
    reset();
    acquire(1);
    acquire(1);
    int c = acquire(1), d = acquire(1);
    op(WM_O_CALLBACK, (uint8_t)c, 4);
    op(WM_O_RELEASE, 0, 1); /* op5: to d */
    op(WM_O_RELEASE, 0, 1); /* op6: back */
    op(WM_O_RELEASE, 0, 1); /* op7: back */
    op(WM_O_RELEASE, 0, 1); /* op8: past the limit */
    run_model();
    (void)d;
    expect_line("final d2: 4");
    expect_line("final d3: S");
    expect_line("op5 -> OK");
    expect_line("op6 -> OK");
    expect_line("op7 -> OK");
    expect_line("op8 -> ENOTLOCKED");
}

/* The queue too: a getter fired by hand is skipped, the value goes to the
 * next getter, or into the buffer when none is left (never lost). */
static void test_queue_skips_fired_getter(void **state)
{
    (void)state;
    reset();
    int a = get(), b = get();
    op(WM_O_CALLBACK, (uint8_t)a, 4);
    op(WM_O_PUT, 0, 9); /* op3: to b */
    int c = get();
    op(WM_O_CALLBACK, (uint8_t)c, 5);
    op(WM_O_PUT, 0, 10); /* op6: buffered */
    int e = get();       /* op7: gets 10 */
    run_model();
    (void)b;
    (void)e;
    expect_line("final d0: 4");
    expect_line("final d1: 9");
    expect_line("final d2: 5");
    expect_line("final d3: 10");
    expect_line("op6 -> OK");
}

/* DeferredSemaphore(2): the third acquirer waits; cancelling it removes it. */
static void test_semaphore_cancel_waiter(void **state)
{
    (void)state;
    reset();
    acquire(1);
    acquire(1);
    int c = acquire(1);
    op(WM_O_CANCEL, (uint8_t)c, 0);
    op(WM_O_RELEASE, 0, 1);
    op(WM_O_RELEASE, 0, 1);
    op(WM_O_RELEASE, 0, 1);
    run_model();
    expect_line("final d0: S");
    expect_line("final d2: F:Cancelled");
    expect_line("op4 -> OK");
    expect_line("op5 -> OK");
    expect_line("op6 -> ENOTLOCKED");
}

/* DeferredQueue(2): buffered values in order, overflow refused, a waiting
 * getter gets the next put. */
static void test_queue(void **state)
{
    (void)state;
    reset();
    op(WM_O_PUT, 0, 1);
    op(WM_O_PUT, 0, 2);
    op(WM_O_PUT, 0, 3);
    get();
    get();
    int w = get();
    add(w, act(WM_A_PASS, 0, 0, 0, w), -1);
    op(WM_O_PUT, 0, 9);
    run_model();
    expect_line("op2 -> EOVERFLOW");
    expect_line("final d0: 1");
    expect_line("final d1: 2");
    expect_line("h0 d2 cb in=9");
}

/* Any bytes decode into a program within the limits, and the model runs it
 * to its final lines. */
static void test_decoder_limits(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    static uint8_t buf[2048];
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)(round % 700);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        wm_decode(buf, n, &prog);
        assert_true(prog.nops <= WM_OPS_MAX);
        assert_true(prog.nslots <= WM_SLOTS_MAX);
        assert_true(prog.nacts <= WM_ACTS_MAX);
        for (int i = 0; i < prog.nops; i++) {
            const wm_op *o = &prog.ops[i];
            assert_true(o->kind < WM_O_COUNT);
            if (o->kind == WM_O_ADD) {
                assert_true(o->cb >= 0 && o->cb < prog.nacts);
                assert_true(o->eb >= 0 && o->eb < prog.nacts);
            }
        }
        for (int i = 0; i < prog.nacts; i++) {
            const wm_act *a = &prog.acts[i];
            assert_true(a->kind < WM_A_COUNT);
            if (a->kind == WM_A_ADD) {
                assert_true(a->sub > i && a->sub < prog.nacts);
                assert_int_not_equal(prog.acts[a->sub].kind, WM_A_ADD);
            }
        }
        wm_trace_init(&out);
        wm_model_run(&prog, &out);
        assert_non_null(strstr(out.text, "unhandled "));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_in_order),
        cmocka_unit_test(test_errback_path_and_trap),
        cmocka_unit_test(test_returned_deferred_waits),
        cmocka_unit_test(test_returned_fired_deferred_is_taken),
        cmocka_unit_test(test_self_chain),
        cmocka_unit_test(test_cancel_swallows_one_fire),
        cmocka_unit_test(test_canceller_result_stands),
        cmocka_unit_test(test_cancel_forwards_to_inner),
        cmocka_unit_test(test_chain_to_fired_target),
        cmocka_unit_test(test_list_first_error_consumed),
        cmocka_unit_test(test_list_records_all),
        cmocka_unit_test(test_gather_values),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_unpause_not_paused),
        cmocka_unit_test(test_lock_hand_over),
        cmocka_unit_test(test_lock_skips_fired_waiter),
        cmocka_unit_test(test_semaphore_skips_fired_waiter),
        cmocka_unit_test(test_queue_skips_fired_getter),
        cmocka_unit_test(test_semaphore_cancel_waiter),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_decoder_limits),
    };
    return cmocka_run_group_tests_name("fuzz_model", tests, NULL, NULL);
}
