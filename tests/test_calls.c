/* Delayed calls on the simulator: Twisted's DelayedCall semantics and misuse,
 * handle ownership, passes, and the order of calls due at the same instant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reactor/timerq.h"
#include "weft/reactor.h"
#include "weft/sim.h"

#define S WEFT_NS_PER_S

typedef struct log_ctx {
    weft_reactor *r;
    char order[64];
    size_t n;
    weft_time_ns at[64];
} log_ctx;

typedef struct tagged {
    log_ctx *log;
    char tag;
    weft_call *self;      /* for "cancel myself" */
    int self_cancel_rc;
    weft_call *spawn_out; /* schedule a delay-0 call from inside */
    struct tagged *spawn;
} tagged;

static void note(void *ctx)
{
    tagged *t = ctx;
    log_ctx *l = t->log;
    if (l->n < sizeof l->order - 1) {
        l->at[l->n] = weft_now(l->r);
        l->order[l->n++] = t->tag;
        l->order[l->n] = '\0';
    }
    if (t->self)
        t->self_cancel_rc = weft_call_cancel(t->self);
    if (t->spawn) {
        t->spawn_out = weft_call_later(l->r, 0, note, t->spawn);
    }
}

static weft_sim *new_sim(weft_choice *c)
{
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    weft_sim *s = weft_sim_new(&cfg, c);
    assert_non_null(s);
    return s;
}

static void runs_at_its_time(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL}, b = {&l, 'b', NULL, 0, NULL, NULL};
    weft_call *cb = weft_call_later(r, 3 * S, note, &b);
    weft_call *ca = weft_call_later(r, 1 * S, note, &a);
    assert_non_null(ca);
    assert_non_null(cb);
    assert_true(weft_call_active(ca));
    assert_int_equal(weft_call_time(ca), 1 * S);
    assert_int_equal(weft_sim_pending(s), 2);
    weft_time_ns next = -1;
    assert_true(weft_sim_next_time(s, &next));
    assert_int_equal(next, 1 * S);
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_string_equal(l.order, "ab");
    assert_int_equal(l.at[0], 1 * S);
    assert_int_equal(l.at[1], 3 * S);
    assert_int_equal(weft_now(r), 3 * S);
    assert_false(weft_call_active(ca));
    assert_int_equal(weft_call_time(cb), 3 * S);
    assert_false(weft_sim_next_time(s, &next));
    weft_call_release(ca);
    weft_call_release(cb);
    weft_sim_free(s);
}

static void bad_arguments(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL};
    assert_null(weft_call_later(r, -1, note, &a));
    assert_null(weft_call_later(r, 5, NULL, &a));
    assert_null(weft_call_later(NULL, 5, note, &a));
    assert_int_equal(weft_call_soon(r, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_call_cancel(NULL), WEFT_EINVAL);
    assert_int_equal(weft_call_reset(NULL, 1), WEFT_EINVAL);
    assert_false(weft_call_active(NULL));
    weft_call_release(NULL);
    weft_call *c = weft_call_later(r, 5, note, &a);
    assert_int_equal(weft_call_reset(c, -1), WEFT_EINVAL);
    assert_true(weft_call_active(c)); /* a refused reset changes nothing */
    assert_int_equal(weft_call_time(c), 5);
    assert_int_equal(weft_sim_pending(s), 1);
    weft_call_release(c);
    weft_sim_free(s);
}

static void cancel_then_misuse(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL};
    weft_call *c = weft_call_later(r, 2 * S, note, &a);
    assert_int_equal(weft_call_cancel(c), WEFT_OK);
    assert_false(weft_call_active(c));
    assert_int_equal(weft_call_time(c), 2 * S);
    assert_int_equal(weft_call_cancel(c), WEFT_EALREADYCANCELLED);
    assert_int_equal(weft_call_reset(c, 1), WEFT_EALREADYCANCELLED);
    assert_int_equal(weft_call_delay(c, 1), WEFT_EALREADYCANCELLED);
    assert_int_equal(weft_sim_pending(s), 0);
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(weft_sim_events(s), 0);
    weft_call_release(c);
    weft_sim_free(s);
}

static void after_run_misuse(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL};
    weft_call *c = weft_call_later(r, 7, note, &a);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    assert_string_equal(l.order, "a");
    assert_false(weft_call_active(c));
    assert_int_equal(weft_call_cancel(c), WEFT_EALREADYCALLED);
    assert_int_equal(weft_call_reset(c, 1), WEFT_EALREADYCALLED);
    assert_int_equal(weft_call_delay(c, 1), WEFT_EALREADYCALLED);
    assert_int_equal(weft_call_time(c), 7);
    assert_int_equal(weft_sim_step(s), WEFT_ESTATE);
    weft_call_release(c);
    weft_sim_free(s);
}

static void cancel_self_inside(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, -1, NULL, NULL};
    a.self = weft_call_later(r, 1, note, &a);
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_int_equal(a.self_cancel_rc, WEFT_EALREADYCALLED);
    assert_string_equal(l.order, "a");
    weft_call_release(a.self);
    weft_sim_free(s);
}

static void reset_earlier_and_later(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL}, b = {&l, 'b', NULL, 0, NULL, NULL};
    weft_call *ca = weft_call_later(r, 10 * S, note, &a);
    weft_call *cb = weft_call_later(r, 4 * S, note, &b);
    assert_int_equal(weft_sim_advance(s, 2 * S), WEFT_OK);
    assert_int_equal(weft_now(r), 2 * S);
    /* a: from 10 s to now + 1 s = 3 s. b: from 4 s to now + 20 s = 22 s. */
    assert_int_equal(weft_call_reset(ca, 1 * S), WEFT_OK);
    assert_int_equal(weft_call_reset(cb, 20 * S), WEFT_OK);
    assert_int_equal(weft_call_time(ca), 3 * S);
    assert_int_equal(weft_call_time(cb), 22 * S);
    assert_int_equal(weft_sim_run_until(s, 21 * S), WEFT_OK);
    assert_string_equal(l.order, "a");
    assert_int_equal(l.at[0], 3 * S);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_string_equal(l.order, "ab");
    assert_int_equal(l.at[1], 22 * S);
    assert_int_equal(weft_sim_events(s), 2);
    weft_call_release(ca);
    weft_call_release(cb);
    weft_sim_free(s);
}

static void delay_postpones_and_brings_forward(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL}, b = {&l, 'b', NULL, 0, NULL, NULL};
    weft_call *ca = weft_call_later(r, 5 * S, note, &a);
    weft_call *cb = weft_call_later(r, 6 * S, note, &b);
    assert_int_equal(weft_call_delay(ca, 3 * S), WEFT_OK); /* 8 s */
    assert_int_equal(weft_call_time(ca), 8 * S);
    assert_int_equal(weft_sim_advance(s, 1 * S), WEFT_OK);
    assert_int_equal(weft_call_delay(cb, -100 * S), WEFT_OK); /* due now, not before */
    assert_int_equal(weft_call_time(cb), 1 * S);
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_string_equal(l.order, "ba");
    assert_int_equal(l.at[0], 1 * S);
    assert_int_equal(l.at[1], 8 * S);
    weft_call_release(ca);
    weft_call_release(cb);
    weft_sim_free(s);
}

static void release_before_and_after(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL}, b = {&l, 'b', NULL, 0, NULL, NULL};
    tagged c = {&l, 'c', NULL, 0, NULL, NULL};
    weft_call *ca = weft_call_later(r, 1, note, &a);
    weft_call_release(ca); /* releasing does not cancel */
    weft_call *cb = weft_call_later(r, 2, note, &b);
    assert_int_equal(weft_call_soon(r, note, &c), WEFT_OK);
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_string_equal(l.order, "cab");
    weft_call_release(cb);
    /* Released while pending and never run: freed with the simulator. */
    weft_call *cd = weft_call_later(r, 100, note, &a);
    weft_call_release(cd);
    weft_call *ce = weft_call_later(r, 100, note, &a); /* still held at free */
    assert_non_null(ce);
    weft_sim_free(s);
}

static void zero_delay_from_inside_waits_for_next_pass(void **state)
{
    (void)state;
    /* a and b are due together; a schedules c with delay 0. Whatever order
     * the choices give a and b, c never runs before both. */
    for (uint64_t seed = 0; seed < 64; seed++) {
        weft_sim *s = new_sim(weft_choice_seeded(seed));
        weft_reactor *r = weft_sim_reactor(s);
        log_ctx l = {.r = r};
        tagged c = {&l, 'c', NULL, 0, NULL, NULL};
        tagged a = {&l, 'a', NULL, 0, NULL, &c}, b = {&l, 'b', NULL, 0, NULL, NULL};
        weft_call *ca = weft_call_later(r, 5, note, &a);
        weft_call *cb = weft_call_later(r, 5, note, &b);
        assert_int_equal(weft_reactor_run(r), WEFT_OK);
        assert_int_equal(l.n, 3);
        assert_int_equal(l.order[2], 'c');
        assert_int_equal(l.at[2], 5); /* same instant, later pass */
        assert_non_null(a.spawn_out);
        weft_call_release(a.spawn_out);
        weft_call_release(ca);
        weft_call_release(cb);
        weft_sim_free(s);
    }
}

static void zero_delay_chain_advances_one_pass_at_a_time(void **state)
{
    (void)state;
    /* A call rescheduling itself with delay 0 never runs twice in one step. */
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged x = {&l, 'x', NULL, 0, NULL, NULL};
    x.spawn = &x;
    weft_call *prev = weft_call_later(r, 0, note, &x);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(weft_sim_step(s), WEFT_OK);
        assert_int_equal(l.n, (size_t)i + 1);
        assert_int_equal(weft_sim_pending(s), 1);
        assert_false(weft_call_active(prev));
        assert_true(weft_call_active(x.spawn_out));
        weft_call_release(prev); /* the one that just ran */
        prev = x.spawn_out;
    }
    x.spawn = NULL;
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    assert_int_equal(weft_sim_step(s), WEFT_ESTATE);
    assert_int_equal(weft_now(r), 0);
    weft_call_release(prev);
    weft_sim_free(s);
}

static void equal_times_fifo_by_default(void **state)
{
    (void)state;
    /* With the default choices (all 0), calls due together run in the order
     * they were scheduled: FIFO, like Twisted's task.Clock. */
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged t[5];
    weft_call *c[5];
    for (int i = 0; i < 5; i++) {
        t[i] = (tagged){&l, (char)('a' + i), NULL, 0, NULL, NULL};
        c[i] = weft_call_later(r, 9, note, &t[i]);
    }
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_string_equal(l.order, "abcde");
    /* 4 choices: bounds 5, 4, 3, 2 (none for the last one). */
    const uint32_t *vals, *bounds;
    size_t n = weft_choice_recorded(weft_sim_choices(s), &vals, &bounds);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(vals[i], 0);
        assert_int_equal(bounds[i], 5 - i);
    }
    for (int i = 0; i < 5; i++)
        weft_call_release(c[i]);
    weft_sim_free(s);
}

static void equal_times_follow_the_choices(void **state)
{
    (void)state;
    /* Replay picks: of (a b c d) take index 2 -> c; of (a b d) index 2 -> d;
     * of (a b) index 1 -> b; then a. */
    const uint32_t picks[] = {2, 2, 1};
    weft_sim *s = new_sim(weft_choice_replay(picks, 3));
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (tagged){&l, (char)('a' + i), NULL, 0, NULL, NULL};
        assert_int_equal(weft_call_soon(r, note, &t[i]), WEFT_OK);
    }
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_string_equal(l.order, "cdba");
    weft_sim_free(s);

    /* Over seeds, every one of the 6 orders of three calls shows up. */
    bool seen[6] = {false};
    for (uint64_t seed = 0; seed < 200; seed++) {
        s = new_sim(weft_choice_seeded(seed));
        r = weft_sim_reactor(s);
        log_ctx l2 = {.r = r};
        tagged u[3];
        for (int i = 0; i < 3; i++) {
            u[i] = (tagged){&l2, (char)('a' + i), NULL, 0, NULL, NULL};
            assert_int_equal(weft_call_soon(r, note, &u[i]), WEFT_OK);
        }
        assert_int_equal(weft_reactor_run(r), WEFT_OK);
        static const char *orders[6] = {"abc", "acb", "bac", "bca", "cab", "cba"};
        for (int k = 0; k < 6; k++)
            if (strcmp(l2.order, orders[k]) == 0)
                seen[k] = true;
        weft_sim_free(s);
    }
    for (int k = 0; k < 6; k++)
        assert_true(seen[k]);
}

static void cancel_inside_a_pass(void **state)
{
    (void)state;
    /* a, b, c due together; a cancels c, which is in the pass already. */
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL}, b = {&l, 'b', NULL, 0, NULL, NULL};
    tagged c = {&l, 'c', NULL, 0, NULL, NULL};
    weft_call *ca = weft_call_later(r, 3, note, &a);
    weft_call *cb = weft_call_later(r, 3, note, &b);
    weft_call *cc = weft_call_later(r, 3, note, &c);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    assert_string_equal(l.order, "a");
    assert_int_equal(weft_sim_pending(s), 2);
    assert_int_equal(weft_call_cancel(cc), WEFT_OK);
    assert_int_equal(weft_sim_pending(s), 1);
    /* Reset b (in the pass) to later: it leaves the pass. */
    assert_int_equal(weft_call_reset(cb, 4), WEFT_OK);
    assert_int_equal(weft_call_time(cb), 7);
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_string_equal(l.order, "ab");
    assert_int_equal(l.at[1], 7);
    weft_call_release(ca);
    weft_call_release(cb);
    weft_call_release(cc);
    weft_sim_free(s);
}

typedef struct order_rec {
    weft_reactor *r;
    weft_time_ns *ran_at;
    size_t *ran_idx;
    size_t *ran_n;
    size_t idx;
} order_rec;

static void record_run(void *ctx)
{
    order_rec *o = ctx;
    o->ran_at[*o->ran_n] = weft_now(o->r);
    o->ran_idx[(*o->ran_n)++] = o->idx;
}

static void many_calls_in_time_order(void **state)
{
    (void)state;
    /* Thousands of calls with scattered delays, some cancelled, some moved:
     * the run order is the (time, sequence) order of what is left, and the
     * clock never goes backwards. */
    enum { N = 5000 };
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    weft_call **calls = test_malloc(N * sizeof *calls);
    weft_time_ns *due = test_malloc(N * sizeof *due);
    weft_time_ns *ran_at = test_malloc(N * sizeof *ran_at);
    size_t *ran_idx = test_malloc(N * sizeof *ran_idx);
    bool *cancelled = test_calloc(N, sizeof *cancelled);
    order_rec *recs = test_malloc(N * sizeof *recs);
    size_t ran_n = 0;
    uint64_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        int64_t d = (int64_t)((x >> 33) % 1000); /* many equal times */
        recs[i] = (order_rec){r, ran_at, ran_idx, &ran_n, i};
        calls[i] = weft_call_later(r, d, record_run, &recs[i]);
        assert_non_null(calls[i]);
        due[i] = d;
    }
    for (size_t i = 0; i < N; i += 7) {
        assert_int_equal(weft_call_cancel(calls[i]), WEFT_OK);
        cancelled[i] = true;
    }
    for (size_t i = 3; i < N; i += 11) {
        if (cancelled[i])
            continue;
        assert_int_equal(weft_call_reset(calls[i], 500), WEFT_OK);
        due[i] = 500;
    }
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    size_t expect = 0;
    for (size_t i = 0; i < N; i++)
        expect += !cancelled[i];
    assert_int_equal(ran_n, expect);
    for (size_t k = 0; k < ran_n; k++) {
        size_t i = ran_idx[k];
        assert_false(cancelled[i]);
        assert_int_equal(ran_at[k], due[i]);
        assert_int_equal(weft_call_time(calls[i]), due[i]);
        if (k > 0)
            assert_true(ran_at[k - 1] <= ran_at[k]);
    }
    for (size_t i = 0; i < N; i++)
        weft_call_release(calls[i]);
    weft_sim_free(s);
    test_free(calls);
    test_free(due);
    test_free(ran_at);
    test_free(ran_idx);
    test_free(cancelled);
    test_free(recs);
}

/* ---- the queue itself against a model ---- */

typedef struct model_call {
    weft_call *c;
    weft_time_ns time_ns;
    uint64_t seq;
    bool live;
    bool in_pass;
} model_call;

static void never_runs(void *ctx)
{
    (void)ctx;
    fail_msg("a queue-only test call ran");
}

/* Index of the live call with the smallest (time, seq) among those in the
 * heap (or in the pass, when in_pass), or -1. */
static long model_min(const model_call *m, size_t n, bool in_pass)
{
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].live || m[i].in_pass != in_pass)
            continue;
        if (best < 0 || m[i].time_ns < m[best].time_ns ||
            (m[i].time_ns == m[best].time_ns && m[i].seq < m[best].seq))
            best = (long)i;
    }
    return best;
}

static size_t model_index(const model_call *m, size_t n, const weft_call *c)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].c == c && m[i].live)
            return i;
    fail_msg("call not in the model");
    return 0;
}

/* ord_start: where the queue's tie-break counter starts; near 2^32 it must
 * renumber the pending calls mid-run without changing any order. */
static void queue_model_run(uint32_t ord_start, uint64_t seed);

static void queue_matches_a_model(void **state)
{
    (void)state;
    queue_model_run(0, 99);
}

static void queue_renumbers_its_ties(void **state)
{
    (void)state;
    /* Several renumberings: the counter restarts at the pending count. */
    queue_model_run(UINT32_MAX - 2500, 7);
    queue_model_run(UINT32_MAX - 1, 8);
}

static void queue_model_run(uint32_t ord_start, uint64_t seed)
{
    enum { OPS = 20000, MAXN = 4000 };
    model_call *m = test_calloc(MAXN, sizeof *m);
    size_t n = 0;
    uint64_t seq = 0, x = seed;
    weft_timerq q;
    weft__timerq_init(&q, NULL);
    q.next_ord = ord_start;
    uint32_t prev_ord = ord_start;
    bool wrapped = false;
    for (int op = 0; op < OPS; op++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        unsigned r = (unsigned)(x >> 33);
        unsigned kind = r % 10;
        size_t pending = weft__timerq_pending(&q);
        if ((kind < 4 || pending == 0) && n < MAXN) {
            weft_time_ns t = (weft_time_ns)((r >> 4) % 64); /* many ties */
            weft_call *c = weft__timerq_add(&q, t, 0, false, never_runs, NULL);
            assert_non_null(c);
            m[n++] = (model_call){c, t, seq++, true, false};
        } else if (kind < 6 && pending > 0) {
            /* cancel or re-key a random live call */
            size_t i = (r >> 4) % n;
            while (!m[i].live)
                i = (i + 1) % n;
            if (kind == 4) {
                weft__timerq_cancel(&q, m[i].c);
                m[i].live = false;
            } else {
                weft_time_ns t = (weft_time_ns)((r >> 8) % 64);
                assert_int_equal(weft__timerq_rekey(&q, m[i].c, t), WEFT_OK);
                m[i].time_ns = t;
                m[i].seq = seq++;
                m[i].in_pass = false;
            }
        } else if (kind < 8 && weft__timerq_pass_size(&q) == 0 && q.len > 0) {
            /* pop the root: the model's minimum */
            long want = model_min(m, n, false);
            weft_time_ns t;
            weft_call *c = weft__timerq_pop(&q, &t);
            assert_ptr_equal(c, m[want].c);
            assert_int_equal(t, m[want].time_ns);
            weft__timerq_fire(&q, c, t);
            m[want].live = false;
        } else if (kind == 8 && weft__timerq_pass_size(&q) == 0 && q.len > 0) {
            /* start a pass up to a limit: exactly the calls due by then */
            weft_time_ns limit = (weft_time_ns)((r >> 4) % 64);
            size_t want = 0;
            for (size_t i = 0; i < n; i++) {
                if (m[i].live && m[i].time_ns <= limit) {
                    m[i].in_pass = true;
                    want++;
                }
            }
            assert_int_equal(weft__timerq_fill_pass(&q, limit), want);
            for (size_t k = 1; k < weft__timerq_pass_size(&q); k++) {
                const weft__tq_entry *a = weft__timerq_pass_at(&q, k - 1);
                const weft__tq_entry *b = weft__timerq_pass_at(&q, k);
                assert_true(a->time_ns <= b->time_ns);
            }
        } else if (weft__timerq_pass_size(&q) > 0) {
            if (r % 7 == 0) {
                assert_int_equal(weft__timerq_unpass(&q), WEFT_OK);
                for (size_t i = 0; i < n; i++)
                    m[i].in_pass = false;
            } else {
                /* take the k-th of the pass in (time, seq) order */
                size_t k = (r >> 4) % weft__timerq_pass_size(&q);
                /* The k-th smallest (time, seq) among the pass members. */
                long want = -1;
                for (size_t i = 0; i < n; i++) {
                    if (!m[i].live || !m[i].in_pass)
                        continue;
                    size_t smaller = 0;
                    for (size_t j = 0; j < n; j++)
                        if (m[j].live && m[j].in_pass &&
                            (m[j].time_ns < m[i].time_ns ||
                             (m[j].time_ns == m[i].time_ns && m[j].seq < m[i].seq)))
                            smaller++;
                    if (smaller == k)
                        want = (long)i;
                }
                assert_true(want >= 0);
                weft_time_ns t;
                weft_call *c = weft__timerq_pass_take(&q, k, &t);
                size_t got = model_index(m, n, c);
                (void)got;
                assert_ptr_equal(c, m[want].c);
                weft__timerq_fire(&q, c, t);
                m[want].live = false;
                m[want].in_pass = false;
            }
        }
        if (q.next_ord < prev_ord)
            wrapped = true; /* renumbered */
        prev_ord = q.next_ord;
        /* Every live call answers its own due time and state. */
        if (op % 997 == 0) {
            size_t live = 0;
            for (size_t i = 0; i < n; i++) {
                if (!m[i].live)
                    continue;
                live++;
                assert_true(weft__call_pending(m[i].c));
                assert_int_equal(weft__timerq_due(&q, m[i].c), m[i].time_ns);
            }
            assert_int_equal(live, weft__timerq_pending(&q));
        }
    }
    assert_true(weft__timerq_bytes(&q) > 0);
    assert_true(wrapped == (ord_start != 0));
    weft__timerq_destroy(&q);
    test_free(m);
}

static void out_of_memory(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    log_ctx l = {.r = r};
    tagged a = {&l, 'a', NULL, 0, NULL, NULL};
    /* The first call allocates a slab: make that fail. */
    weft_alloc_fail_after(0);
    weft_call *c = weft_call_later(r, 1, note, &a);
    weft_alloc_fail_after(-1);
    assert_null(c);
    assert_int_equal(weft_sim_pending(s), 0);
    weft_alloc_fail_after(0);
    int rc = weft_call_soon(r, note, &a);
    weft_alloc_fail_after(-1);
    assert_int_equal(rc, WEFT_ENOMEM);
    c = weft_call_later(r, 1, note, &a);
    assert_non_null(c);
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_string_equal(l.order, "a");
    weft_call_release(c);
    weft_sim_free(s);
}

static void count_run(void *ctx)
{
    int *n = ctx;
    (*n)++;
}

static void every_allocation_failing(void **state)
{
    (void)state;
    /* Make the n-th allocation fail, for every n a small run makes: the run
     * either goes through or reports it, and nothing leaks (ASan) or
     * crashes. Calls that were scheduled run exactly once. */
    for (long n = 0; n < 60; n++) {
        weft_alloc_fail_after(n);
        weft_sim *s = weft_sim_new(NULL, weft_choice_seeded(5));
        if (!s) {
            weft_alloc_fail_after(-1);
            continue;
        }
        weft_reactor *r = weft_sim_reactor(s);
        int ran = 0, scheduled = 0;
        for (int i = 0; i < 3000; i++) {
            weft_call *c = weft_call_later(r, i % 3, count_run, &ran);
            if (c) {
                scheduled++;
                weft_call_release(c);
            }
        }
        int rc = weft_sim_run_until_quiet(s);
        weft_alloc_fail_after(-1);
        assert_int_equal(rc, WEFT_OK);
        assert_int_equal(ran, scheduled);
        weft_sim_free(s);
    }
}

/* ------------------------------------------------------------ stop */

typedef struct stopper {
    weft_reactor *r;
    int runs;
    bool stop;
    struct stopper *then; /* scheduled from inside, step_ns later */
    int64_t step_ns;
} stopper;

static void stop_tick(void *ctx)
{
    stopper *st = ctx;
    st->runs++;
    if (st->then)
        weft_call_release(weft_call_later(st->r, st->step_ns, stop_tick, st->then));
    if (st->stop)
        weft_reactor_stop(st->r);
}

/* weft_reactor_stop has one meaning on every backend: it ends the active run
 * (run: WEFT_OK, run_until: WEFT_ESTATE), is consumed by it, and is ignored
 * outside a run. step_ns is the spacing of the calls (virtual or real). */
static void stop_semantics_on(weft_reactor *r, int64_t step_ns)
{
    /* The next call is scheduled by the stopping one, so it can never be due
     * in the same turn, however late a real clock wakes up. */
    stopper b = {r, 0, false, NULL, 0}, d = {r, 0, false, NULL, 0};
    stopper a = {r, 0, true, &b, step_ns}, c = {r, 0, true, &d, step_ns};
    weft_call_release(weft_call_later(r, step_ns, stop_tick, &a));
    /* run: ends after a, b still pending. */
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 0);
    /* The stop was consumed: the next run runs b and ends idle. */
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_int_equal(b.runs, 1);
    /* run_until: a stop ends it with WEFT_ESTATE before its deadline, and
     * is consumed too. */
    weft_time_ns t0 = weft_now(r);
    weft_call_release(weft_call_later(r, step_ns, stop_tick, &c));
    assert_int_equal(weft_reactor_run_until(r, NULL, NULL, t0 + 1000 * step_ns), WEFT_ESTATE);
    assert_int_equal(c.runs, 1);
    assert_int_equal(d.runs, 0);
    assert_true(weft_now(r) < t0 + 1000 * step_ns);
    assert_int_equal(weft_reactor_run_until(r, NULL, NULL, t0 + 1000 * step_ns), WEFT_ESTATE);
    assert_int_equal(d.runs, 1); /* then idle */
    /* Outside a run a stop is not remembered. */
    weft_reactor_stop(r);
    weft_call_release(weft_call_later(r, step_ns, stop_tick, &b));
    assert_int_equal(weft_reactor_run(r), WEFT_OK);
    assert_int_equal(b.runs, 2);
    weft_reactor_stop(r);
    weft_call_release(weft_call_later(r, step_ns, stop_tick, &b));
    assert_int_equal(weft_reactor_run_until(r, NULL, NULL, weft_now(r) + 1000 * step_ns),
                     WEFT_ESTATE);
    assert_int_equal(b.runs, 3);
}

static void stop_ends_the_active_run_sim(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    stop_semantics_on(weft_sim_reactor(s), 1 * S);
    weft_sim_free(s);
}

static void stop_ends_the_active_run_epoll(void **state)
{
    (void)state;
    weft_reactor *r = weft_reactor_new_epoll();
    if (!r)
        skip();
    stop_semantics_on(r, 1 * WEFT_NS_PER_MS);
    weft_reactor_free(r);
}

/* On the simulator a stopped run_until leaves the clock at the stopping
 * event: it does not jump to the deadline as a run that timed out does. */
static void stop_keeps_the_clock_sim(void **state)
{
    (void)state;
    weft_sim *s = new_sim(NULL);
    weft_reactor *r = weft_sim_reactor(s);
    stopper a = {r, 0, true, NULL, 0};
    weft_call_release(weft_call_later(r, 3 * S, stop_tick, &a));
    assert_int_equal(weft_reactor_run_until(r, NULL, NULL, 10 * S), WEFT_ESTATE);
    assert_int_equal(weft_now(r), 3 * S);
    /* With nothing pending, run_until to a deadline is idle at once. */
    assert_int_equal(weft_reactor_run_until(r, NULL, NULL, 10 * S), WEFT_ESTATE);
    weft_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_at_its_time),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(cancel_then_misuse),
        cmocka_unit_test(after_run_misuse),
        cmocka_unit_test(cancel_self_inside),
        cmocka_unit_test(reset_earlier_and_later),
        cmocka_unit_test(delay_postpones_and_brings_forward),
        cmocka_unit_test(release_before_and_after),
        cmocka_unit_test(zero_delay_from_inside_waits_for_next_pass),
        cmocka_unit_test(zero_delay_chain_advances_one_pass_at_a_time),
        cmocka_unit_test(equal_times_fifo_by_default),
        cmocka_unit_test(equal_times_follow_the_choices),
        cmocka_unit_test(cancel_inside_a_pass),
        cmocka_unit_test(many_calls_in_time_order),
        cmocka_unit_test(queue_matches_a_model),
        cmocka_unit_test(queue_renumbers_its_ties),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(every_allocation_failing),
        cmocka_unit_test(stop_ends_the_active_run_sim),
        cmocka_unit_test(stop_ends_the_active_run_epoll),
        cmocka_unit_test(stop_keeps_the_clock_sim),
    };
    return cmocka_run_group_tests_name("calls", tests, NULL, NULL);
}
