/* The simulator core: stepping and running, the virtual clock, runaway caps,
 * jitter, the trace (hash, text, sink) and record -> replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_internal.h"
#include "weft/reactor.h"
#include "weft/sim.h"

#define S WEFT_NS_PER_S

typedef struct counter {
    weft_reactor *r;
    int runs;
    weft_time_ns last_at;
    int64_t again_ns; /* >= 0: reschedule itself with this delay */
    int stop_after;   /* > 0: weft_reactor_stop after this many runs */
} counter;

static void tick(void *ctx)
{
    counter *c = ctx;
    c->runs++;
    c->last_at = weft_now(c->r);
    if (c->stop_after && c->runs == c->stop_after)
        weft_reactor_stop(c->r);
    if (c->again_ns >= 0)
        assert_int_equal(weft_call_soon(c->r, tick, c), WEFT_OK);
}

static void tick_later(void *ctx)
{
    counter *c = ctx;
    c->runs++;
    c->last_at = weft_now(c->r);
    if (c->stop_after && c->runs == c->stop_after)
        weft_reactor_stop(c->r);
    if (c->again_ns >= 0) {
        weft_call *n = weft_call_later(c->r, c->again_ns, tick_later, c);
        assert_non_null(n);
        weft_call_release(n);
    }
}

static weft_sim *sim_with(const weft_sim_config *cfg, weft_choice *ch)
{
    weft_sim_config def;
    if (!cfg) {
        weft_sim_config_default(&def);
        cfg = &def;
    }
    weft_sim *s = weft_sim_new(cfg, ch);
    assert_non_null(s);
    return s;
}

static void schedule(weft_reactor *r, int64_t delay, weft_call_fn fn, void *ctx)
{
    weft_call *c = weft_call_later(r, delay, fn, ctx);
    assert_non_null(c);
    weft_call_release(c);
}

static void new_and_identity(void **state)
{
    (void)state;
    weft_sim *s = sim_with(NULL, NULL);
    weft_reactor *r = weft_sim_reactor(s);
    assert_ptr_equal(weft_sim_from_reactor(r), s);
    assert_null(weft_sim_from_reactor(NULL));
    assert_string_equal(weft_reactor_name(r), "sim");
    assert_non_null(weft_sim_choices(s));
    assert_int_equal(weft_now(r), 0);
    assert_int_equal(weft_sim_pending(s), 0);
    assert_int_equal(weft_sim_events(s), 0);
    assert_int_equal(weft_sim_step(s), WEFT_ESTATE);
    uint64_t count = 99;
    assert_null(weft_sim_hottest_event(s, &count));
    assert_int_equal(count, 0);
    weft_reactor_free(r); /* through the ops table */

    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.jitter_ns = -1;
    assert_null(weft_sim_new(&cfg, weft_choice_seeded(1))); /* choices freed: ASan checks */
    weft_sim_config_default(&cfg);
    cfg.max_time_ns = -5;
    assert_null(weft_sim_new(&cfg, NULL));
    weft_sim *d = weft_sim_new(NULL, NULL); /* defaults, all-default choices */
    assert_non_null(d);
    weft_sim_free(d);
    weft_sim_free(NULL);
}

static void new_out_of_memory(void **state)
{
    (void)state;
    /* Every allocation in weft_sim_new failing in turn leaks nothing. */
    for (long n = 0; n < 20; n++) {
        weft_alloc_fail_after(n);
        weft_sim *s = weft_sim_new(NULL, NULL);
        long failed = weft_alloc_fail_after(-1);
        if (s) {
            assert_int_equal(failed, 0);
            weft_sim_free(s);
            return;
        }
    }
    fail_msg("weft_sim_new never succeeded");
}

static void step_run_until_advance(void **state)
{
    (void)state;
    weft_sim *s = sim_with(NULL, NULL);
    weft_reactor *r = weft_sim_reactor(s);
    counter a = {r, 0, 0, -1, 0}, b = {r, 0, 0, -1, 0}, c = {r, 0, 0, -1, 0};
    schedule(r, 2 * S, tick, &a);
    schedule(r, 5 * S, tick, &b);
    schedule(r, 9 * S, tick, &c);
    assert_int_equal(weft_sim_pending(s), 3);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    assert_int_equal(a.runs, 1);
    assert_int_equal(weft_now(r), 2 * S);
    /* run_until includes events at t exactly, then the clock stands at t. */
    assert_int_equal(weft_sim_run_until(s, 5 * S), WEFT_OK);
    assert_int_equal(b.runs, 1);
    assert_int_equal(weft_now(r), 5 * S);
    assert_int_equal(weft_sim_run_until(s, 7 * S), WEFT_OK);
    assert_int_equal(c.runs, 0);
    assert_int_equal(weft_now(r), 7 * S);
    /* Going back is not a thing: the clock stays. */
    assert_int_equal(weft_sim_run_until(s, 1 * S), WEFT_OK);
    assert_int_equal(weft_now(r), 7 * S);
    assert_int_equal(weft_sim_advance(s, -1), WEFT_EINVAL);
    assert_int_equal(weft_sim_advance(s, 1 * S), WEFT_OK);
    assert_int_equal(weft_now(r), 8 * S);
    assert_int_equal(c.runs, 0);
    assert_int_equal(weft_sim_advance(s, 1 * S), WEFT_OK);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.last_at, 9 * S);
    assert_int_equal(weft_sim_events(s), 3);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(weft_now(r), 9 * S);
    /* Advancing with nothing pending moves the clock only. */
    assert_int_equal(weft_sim_advance(s, 3), WEFT_OK);
    assert_int_equal(weft_now(r), 9 * S + 3);
    weft_sim_free(s);
}

static void reactor_run_and_stop(void **state)
{
    (void)state;
    weft_sim *s = sim_with(NULL, NULL);
    weft_reactor *r = weft_sim_reactor(s);
    counter a = {r, 0, 0, 1 * S, 3};
    schedule(r, 1 * S, tick_later, &a);
    assert_int_equal(weft_reactor_run(r), WEFT_OK); /* stopped by the third run */
    assert_int_equal(a.runs, 3);
    assert_int_equal(weft_now(r), 3 * S);
    assert_int_equal(weft_sim_pending(s), 1);
    a.stop_after = 5;
    assert_int_equal(weft_reactor_run(r), WEFT_OK); /* stop is not sticky */
    assert_int_equal(a.runs, 5);
    weft_sim_free(s);
}

static bool runs_reached(void *ctx)
{
    counter *c = ctx;
    return c->runs >= 4;
}

static void reactor_run_until(void **state)
{
    (void)state;
    weft_sim *s = sim_with(NULL, NULL);
    weft_reactor *r = weft_sim_reactor(s);
    counter a = {r, 0, 0, 1 * S, 0};
    schedule(r, 1 * S, tick_later, &a);
    assert_int_equal(weft_reactor_run_until(r, runs_reached, &a, 100 * S), WEFT_OK);
    assert_int_equal(a.runs, 4);
    assert_int_equal(weft_now(r), 4 * S);
    /* The deadline comes first: the clock stands at it. */
    a.runs = 0;
    assert_int_equal(weft_reactor_run_until(r, runs_reached, &a, 6 * S + 500), WEFT_ETIMEDOUT);
    assert_int_equal(a.runs, 2);
    assert_int_equal(weft_now(r), 6 * S + 500);
    /* Idle before the deadline. */
    a.again_ns = -1;
    a.runs = 0;
    assert_int_equal(weft_reactor_run_until(r, runs_reached, &a, 100 * S), WEFT_ESTATE);
    assert_int_equal(a.runs, 1);
    assert_int_equal(weft_now(r), 7 * S);
    /* cond NULL: run to the deadline. */
    a.again_ns = 1 * S;
    schedule(r, 1 * S, tick_later, &a);
    assert_int_equal(weft_reactor_run_until(r, NULL, NULL, 20 * S), WEFT_ETIMEDOUT);
    assert_int_equal(weft_now(r), 20 * S);
    weft_sim_free(s);
}

static void runaway_caps(void **state)
{
    (void)state;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.max_events = 100;
    weft_sim *s = sim_with(&cfg, NULL);
    weft_reactor *r = weft_sim_reactor(s);
    counter spin = {r, 0, 0, 0, 0}; /* delay-0 loop: never quiet */
    counter slow = {r, 0, 0, 1 * S, 0};
    assert_int_equal(weft_call_soon(r, tick, &spin), WEFT_OK);
    schedule(r, 0, tick_later, &slow);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_ELIMIT);
    assert_int_equal(weft_sim_events(s), 100);
    uint64_t count = 0;
    assert_string_equal(weft_sim_hottest_event(s, &count), "call");
    assert_int_equal(count, 100);
    assert_int_equal(weft_reactor_run(r), WEFT_ELIMIT);
    assert_int_equal(weft_sim_step(s), WEFT_ELIMIT);
    assert_int_equal(weft_sim_events(s), 100);
    weft_sim_free(s);

    weft_sim_config_default(&cfg);
    cfg.max_time_ns = 10 * S;
    s = sim_with(&cfg, NULL);
    r = weft_sim_reactor(s);
    counter t = {r, 0, 0, 1 * S, 0};
    schedule(r, 1 * S, tick_later, &t);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_ELIMIT);
    assert_int_equal(t.runs, 10); /* 1 s .. 10 s, the 11 s one is past the cap */
    assert_int_equal(weft_now(r), 10 * S);
    /* run_until short of the cap is fine. */
    weft_sim_free(s);
}

static void noop(void *ctx)
{
    int *n = ctx;
    (*n)++;
}

static void hottest_by_label(void **state)
{
    (void)state;
    weft_sim *s = sim_with(NULL, NULL);
    int n = 0;
    /* Two labels with equal counts: the tie goes to the smaller name. */
    for (int i = 0; i < 3; i++) {
        assert_non_null(weft__sim_schedule(s, i, 0, "zeta", noop, &n));
        assert_non_null(weft__sim_schedule(s, i, 0, "alpha", noop, &n));
    }
    char dyn[] = "zeta"; /* same text, another pointer: the same label */
    assert_non_null(weft__sim_schedule(s, 10, 0, dyn, noop, &n));
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(n, 7);
    uint64_t count;
    assert_string_equal(weft_sim_hottest_event(s, &count), "zeta");
    assert_int_equal(count, 4);
    weft_sim_free(s);

    s = sim_with(NULL, NULL);
    for (int i = 0; i < 2; i++) {
        assert_non_null(weft__sim_schedule(s, i, 0, "zeta", noop, &n));
        assert_non_null(weft__sim_schedule(s, i, 0, "alpha", noop, &n));
    }
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_string_equal(weft_sim_hottest_event(s, NULL), "alpha");
    weft_sim_free(s);
}

typedef struct relabel {
    weft_reactor *r;
    const char *label;
    int runs;
} relabel;

static void respin(void *ctx)
{
    relabel *x = ctx;
    x->runs++;
    weft_call_release(weft_call_later_labelled(x->r, 0, x->label, respin, x));
}

static weft_deferred *loop_body(void *ctx, uint64_t count)
{
    (void)ctx, (void)count;
    return NULL;
}

/* A labelled call is traced and blamed under its label; the helpers' timers
 * carry theirs. */
static void labelled_calls_name_runaways(void **state)
{
    (void)state;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.max_events = 50;
    cfg.keep_lines = true;
    weft_sim *s = sim_with(&cfg, NULL);
    weft_reactor *r = weft_sim_reactor(s);
    assert_null(weft_call_later_labelled(r, 0, "x", NULL, NULL));
    assert_null(weft_call_later_labelled(r, -1, "x", noop, NULL));
    relabel spin = {r, "retry.backoff", 0};
    int n = 0;
    weft_call *plain = weft_call_later_labelled(r, 0, NULL, noop, &n); /* "call" */
    weft_call_release(plain);
    weft_call_release(weft_call_later_labelled(r, 0, spin.label, respin, &spin));
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_ELIMIT);
    uint64_t count = 0;
    assert_string_equal(weft_sim_hottest_event(s, &count), "retry.backoff");
    assert_int_equal(count, 49);
    assert_int_equal(n, 1);
    size_t len;
    const char *text = weft_sim_trace_text(s, &len);
    assert_non_null(memmem(text, len, "event retry.backoff seq=", 24));
    assert_non_null(memmem(text, len, "event call seq=0", 16));
    weft_sim_free(s);

    /* A looping call with interval 0 never lets the run go quiet. */
    weft_sim_config_default(&cfg);
    cfg.max_events = 30;
    s = sim_with(&cfg, NULL);
    r = weft_sim_reactor(s);
    weft_looping_call *lc = weft_looping_call_new(r, loop_body, NULL);
    weft_deferred *done = NULL;
    assert_int_equal(weft_looping_call_start(lc, 0, false, &done), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_ELIMIT);
    assert_string_equal(weft_sim_hottest_event(s, &count), "looping.run");
    assert_int_equal(count, 30);
    weft_looping_call_free(lc);
    weft_deferred_unref(done);
    /* Freed with a defer_later pending: dropped, nothing leaks. */
    weft_deferred *d = weft_defer_later(r, 0, NULL, NULL);
    weft_sim_free(s);
    weft_deferred_unref(d);

    s = sim_with(NULL, NULL);
    r = weft_sim_reactor(s);
    for (int i = 0; i < 3; i++)
        weft_deferred_unref(weft_defer_later(r, i, NULL, NULL));
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_string_equal(weft_sim_hottest_event(s, &count), "later.defer");
    assert_int_equal(count, 3);
    weft_sim_free(s);
}

static void internal_events(void **state)
{
    (void)state;
    weft_sim *s = sim_with(NULL, NULL);
    int n = 0;
    assert_int_equal(weft_sim_advance(s, 50), WEFT_OK);
    /* In the past: clamped to now. */
    weft_call *c = weft__sim_schedule(s, 10, 0, "deliver", noop, &n);
    assert_non_null(c);
    weft_time_ns t;
    assert_true(weft_sim_next_time(s, &t));
    assert_int_equal(t, 50);
    weft_call *d = weft__sim_schedule(s, 60, 0, "timeout", noop, &n);
    weft__sim_cancel(s, d);
    assert_int_equal(weft_sim_pending(s), 1);
    assert_null(weft__sim_schedule(s, 60, 0, "x", NULL, &n));
    assert_null(weft__sim_schedule(s, 60, 70000, "x", noop, &n));
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(weft__sim_now(s), 50);
    assert_int_equal(weft__sim_config(s)->net.connect_timeout_ns, 30 * S);
    weft_sim_free(s);
}

typedef struct host_probe {
    weft_sim *s;
    uint32_t seen[4];
    int n;
    weft_reactor *r;
} host_probe;

static void probe_host(void *ctx)
{
    host_probe *p = ctx;
    p->seen[p->n++] = weft__sim_current_host(p->s);
    if (p->n == 1) {
        /* A call scheduled from host 3's event belongs to host 3. */
        weft_call *c = weft_call_later(p->r, 1, probe_host, p);
        weft_call_release(c);
    }
}

static void events_carry_their_host(void **state)
{
    (void)state;
    weft_sim *s = sim_with(NULL, NULL);
    host_probe p = {s, {0}, 0, weft_sim_reactor(s)};
    assert_non_null(weft__sim_schedule(s, 5, 3, "on3", probe_host, &p));
    weft__sim_set_current_host_id(s, 0);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.seen[0], 3);
    assert_int_equal(p.seen[1], 3);
    weft_sim_free(s);
}

static void jitter_orders_nearby_events(void **state)
{
    (void)state;
    /* Two events 10 ns apart with a 100 ns jitter window are concurrent: some
     * seeds run the later one first, and then the earlier one runs at the
     * later one's time (the clock never goes back). */
    bool swapped = false, straight = false;
    for (uint64_t seed = 0; seed < 50; seed++) {
        weft_sim_config cfg;
        weft_sim_config_default(&cfg);
        cfg.jitter_ns = 100;
        weft_sim *s = sim_with(&cfg, weft_choice_seeded(seed));
        weft_reactor *r = weft_sim_reactor(s);
        counter a = {r, 0, 0, -1, 0}, b = {r, 0, 0, -1, 0};
        schedule(r, 1000, tick, &a);
        schedule(r, 1010, tick, &b);
        assert_int_equal(weft_sim_step(s), WEFT_OK);
        if (b.runs) {
            swapped = true;
            assert_int_equal(b.last_at, 1010);
            assert_int_equal(weft_sim_step(s), WEFT_OK);
            assert_int_equal(a.last_at, 1010);
        } else {
            straight = true;
            assert_int_equal(a.last_at, 1000);
            assert_int_equal(weft_sim_step(s), WEFT_OK);
            assert_int_equal(b.last_at, 1010);
        }
        weft_sim_free(s);
    }
    assert_true(swapped);
    assert_true(straight);

    /* Without jitter they are not concurrent: no choice is asked. */
    weft_sim *s = sim_with(NULL, weft_choice_seeded(1));
    weft_reactor *r = weft_sim_reactor(s);
    counter a = {r, 0, 0, -1, 0}, b = {r, 0, 0, -1, 0};
    schedule(r, 1010, tick, &b);
    schedule(r, 1000, tick, &a);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    assert_int_equal(a.runs, 1);
    assert_int_equal(weft_choice_recorded(weft_sim_choices(s), NULL, NULL), 0);
    weft_sim_free(s);
}

typedef struct nested {
    weft_sim *s;
    int rc[5];
} nested;

static void try_nested(void *ctx)
{
    nested *n = ctx;
    weft_reactor *r = weft_sim_reactor(n->s);
    n->rc[0] = weft_sim_step(n->s);
    n->rc[1] = weft_sim_run_until(n->s, 1000 * S);
    n->rc[2] = weft_sim_run_until_quiet(n->s);
    n->rc[3] = weft_reactor_run(r);
    n->rc[4] = weft_reactor_run_until(r, NULL, NULL, 1000 * S);
}

static void no_nested_runs(void **state)
{
    (void)state;
    /* Running the simulator from inside one of its events is refused, and
     * changes nothing: the clock stays, the other event still waits. */
    weft_sim *s = sim_with(NULL, NULL);
    weft_reactor *r = weft_sim_reactor(s);
    nested n = {s, {0}};
    counter later = {r, 0, 0, -1, 0};
    schedule(r, 1 * S, try_nested, &n);
    schedule(r, 5 * S, tick, &later);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(n.rc[i], WEFT_ESTATE);
    assert_int_equal(weft_now(r), 1 * S);
    assert_int_equal(later.runs, 0);
    assert_int_equal(weft_sim_events(s), 1);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(later.runs, 1);
    weft_sim_free(s);
}

static void spawn_now(void *ctx)
{
    counter *c = ctx;
    c->runs++;
    c->last_at = weft_now(c->r);
    assert_int_equal(weft_call_soon(c->r, tick, c + 1), WEFT_OK);
}

static void jitter_pass_cut_by_horizon(void **state)
{
    (void)state;
    /* A pass {1000, 1090} (jitter 100). The first picked spawns a delay-0
     * event; run_until(1050) must run it and stop the clock at 1050, not run
     * the 1090 one. */
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.jitter_ns = 100;
    weft_sim *s = sim_with(&cfg, NULL); /* default choices: earliest first */
    weft_reactor *r = weft_sim_reactor(s);
    counter c[3] = {{r, 0, 0, -1, 0}, {r, 0, 0, -1, 0}, {r, 0, 0, -1, 0}};
    schedule(r, 1000, spawn_now, &c[0]);
    schedule(r, 1090, tick, &c[2]);
    assert_int_equal(weft_sim_step(s), WEFT_OK);
    assert_int_equal(c[0].last_at, 1000);
    assert_int_equal(weft_sim_run_until(s, 1050), WEFT_OK);
    assert_int_equal(c[1].runs, 1);
    assert_int_equal(c[1].last_at, 1000);
    assert_int_equal(c[2].runs, 0);
    assert_int_equal(weft_now(r), 1050);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(c[2].last_at, 1090);
    weft_sim_free(s);
}

/* ---- trace ---- */

typedef struct sink_buf {
    char text[8192];
    size_t len;
    int lines;
} sink_buf;

static void to_buf(const char *line, size_t len, void *ctx)
{
    sink_buf *b = ctx;
    assert_int_equal(strlen(line), len);
    assert_null(memchr(line, '\n', len));
    if (b->len + len + 1 < sizeof b->text) {
        memcpy(b->text + b->len, line, len);
        b->text[b->len + len] = '\n';
        b->len += len + 1;
        b->text[b->len] = '\0';
    }
    b->lines++;
}

/* A small fixed workload: three concurrent calls, a random draw, a note. */
static uint64_t workload(weft_sim *s)
{
    weft_reactor *r = weft_sim_reactor(s);
    counter a = {r, 0, 0, -1, 0}, b = {r, 0, 0, -1, 0}, c = {r, 0, 0, -1, 0};
    schedule(r, 1500000001, tick, &a);
    schedule(r, 1500000001, tick, &b);
    schedule(r, 1500000001, tick, &c);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    uint32_t v = weft_reactor_random(r, 10, "coin");
    weft_sim_trace(s, "note", "drew %u", (unsigned)v);
    return weft_sim_trace_hash(s);
}

static void trace_text_and_hash(void **state)
{
    (void)state;
    sink_buf buf = {{0}, 0, 0};
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.trace_sink = to_buf;
    cfg.trace_ctx = &buf;
    cfg.keep_lines = true;
    const uint32_t picks[] = {2, 0, 7};
    weft_sim *s = sim_with(&cfg, weft_choice_replay(picks, 3));
    assert_true(weft_sim_tracing(s));
    uint64_t h_text = workload(s);
    assert_string_equal(buf.text, "1.500000001 choice order 2/3\n"
                                  "1.500000001 event call seq=2 host=localhost\n"
                                  "1.500000001 choice order 0/2\n"
                                  "1.500000001 event call seq=0 host=localhost\n"
                                  "1.500000001 event call seq=1 host=localhost\n"
                                  "1.500000001 choice coin 7/10\n"
                                  "1.500000001 note drew 7\n");
    assert_int_equal(buf.lines, 7);
    size_t len;
    const char *kept = weft_sim_trace_text(s, &len);
    /* The kept text is the same lines, NUL separated. */
    size_t off = 0;
    int lines = 0;
    for (const char *line = buf.text; *line; lines++) {
        const char *nl = strchr(line, '\n');
        assert_int_equal(strlen(kept + off), (size_t)(nl - line));
        assert_memory_equal(kept + off, line, (size_t)(nl - line));
        off += (size_t)(nl - line) + 1;
        line = nl + 1;
    }
    assert_int_equal(off, len);
    assert_int_equal(lines, 7);
    weft_sim_free(s);

    /* Same run with the text off: same hash; no text. */
    s = sim_with(NULL, weft_choice_replay(picks, 3));
    assert_false(weft_sim_tracing(s));
    assert_int_equal(workload(s), h_text);
    assert_null(weft_sim_trace_text(s, &len));
    assert_int_equal(len, 0);
    weft_sim_free(s);

    /* A different choice changes the hash. */
    const uint32_t other[] = {1, 0, 7};
    s = sim_with(NULL, weft_choice_replay(other, 3));
    assert_int_not_equal(workload(s), h_text);
    weft_sim_free(s);
    /* So does a different note. */
    s = sim_with(NULL, weft_choice_replay(picks, 3));
    workload(s);
    weft_sim_trace(s, "note", "one more");
    assert_int_not_equal(weft_sim_trace_hash(s), h_text);
    weft_sim_free(s);
}

static void trace_long_lines(void **state)
{
    (void)state;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.keep_lines = true;
    weft_sim *s = sim_with(&cfg, NULL);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    weft_sim_trace(s, "big", "%s!", big);
    size_t len;
    const char *text = weft_sim_trace_text(s, &len);
    assert_int_equal(len, strlen("0.000000000 big ") + sizeof big + 1);
    assert_int_equal(text[len - 2], '!');
    uint64_t h = weft_sim_trace_hash(s);
    weft_sim_free(s);
    /* The hash of a long note does not depend on the text being kept. */
    s = sim_with(NULL, NULL);
    weft_sim_trace(s, "big", "%s!", big);
    assert_int_equal(weft_sim_trace_hash(s), h);
    weft_sim_free(s);
}

/* The hash as docs/simulator.md specifies it, computed here independently. */
static void spec_mix(uint64_t *h, uint64_t w);

static uint64_t spec_strhash(const char *str)
{
    uint64_t h = 0xcbf29ce484222325u;
    size_t n = strlen(str);
    spec_mix(&h, n);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        for (size_t j = 0; j < 8 && i + j < n; j++)
            w |= (uint64_t)(unsigned char)str[i + j] << (8 * j);
        spec_mix(&h, w);
    }
    return h;
}

static void spec_mix(uint64_t *h, uint64_t w)
{
    uint64_t x = (*h ^ w) * 0xff51afd7ed558ccdu;
    *h = x ^ (x >> 33);
}

static void trace_hash_matches_spec(void **state)
{
    (void)state;
    /* Two calls at 7 ns (order asked: pick 1), a note, nothing else. */
    const uint32_t picks[] = {1};
    weft_sim *s = sim_with(NULL, weft_choice_replay(picks, 1));
    weft_reactor *r = weft_sim_reactor(s);
    counter a = {r, 0, 0, -1, 0}, b = {r, 0, 0, -1, 0};
    schedule(r, 7, tick, &a); /* seq 0 */
    schedule(r, 7, tick, &b); /* seq 1 */
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    weft_sim_trace(s, "mark", "x=%d", 5);
    weft_sim_trace(s, "args", "%hhd %lld %-8.3s|%*d %p %zu %c %%", (signed char)-3, -2LL,
                   "abcdef", 4, -9, (void *)s, (size_t)77, 'q');

    uint64_t h = 0xcbf29ce484222325u;
    spec_mix(&h, 2); /* choice at 7: value 1, bound 2, "order" */
    spec_mix(&h, 7);
    spec_mix(&h, 1u | (uint64_t)2 << 32);
    spec_mix(&h, spec_strhash("order"));
    for (uint64_t seq = 1;; seq = 0) { /* events: seq 1 then seq 0 */
        spec_mix(&h, 1);
        spec_mix(&h, 7);
        spec_mix(&h, seq);
        spec_mix(&h, spec_strhash("call"));
        spec_mix(&h, 0); /* localhost */
        if (seq == 0)
            break;
    }
    spec_mix(&h, 3); /* note */
    spec_mix(&h, 7);
    spec_mix(&h, spec_strhash("mark"));
    spec_mix(&h, spec_strhash("x=%d"));
    spec_mix(&h, 5);
    /* Arguments as printf converts them; strings by the bytes printed;
     * pointers as 0. */
    spec_mix(&h, 3);
    spec_mix(&h, 7);
    spec_mix(&h, spec_strhash("args"));
    spec_mix(&h, spec_strhash("%hhd %lld %-8.3s|%*d %p %zu %c %%"));
    spec_mix(&h, (uint64_t)-3);
    spec_mix(&h, (uint64_t)-2);
    spec_mix(&h, spec_strhash("abc"));
    spec_mix(&h, 4);
    spec_mix(&h, (uint64_t)-9);
    spec_mix(&h, 0);
    spec_mix(&h, 77);
    spec_mix(&h, 'q');
    assert_int_equal(weft_sim_trace_hash(s), h);
    assert_int_equal(b.runs, 1);
    weft_sim_free(s);
}

/* Recorded with a seed, replayed from the record: identical trace. */
static void chaos(weft_sim *s)
{
    weft_reactor *r = weft_sim_reactor(s);
    counter cs[20];
    for (int i = 0; i < 20; i++) {
        cs[i] = (counter){r, 0, 0, (int64_t)(i % 4 + 1) * 1000, 0};
        schedule(r, (int64_t)(i % 3) * 1000, tick_later, &cs[i]);
    }
    assert_int_equal(weft_sim_run_until(s, 20000), WEFT_OK);
    weft_reactor_random(r, 1000, "jitter");
}

static void record_then_replay(void **state)
{
    (void)state;
    sink_buf first = {{0}, 0, 0}, second = {{0}, 0, 0};
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.trace_sink = to_buf;
    cfg.trace_ctx = &first;
    weft_sim *s = sim_with(&cfg, weft_choice_seeded(2024));
    chaos(s);
    uint64_t h1 = weft_sim_trace_hash(s);
    const uint32_t *vals;
    size_t n = weft_choice_recorded(weft_sim_choices(s), &vals, NULL);
    assert_true(n > 20);
    FILE *f = tmpfile();
    assert_int_equal(weft_choice_save(weft_sim_choices(s), f), WEFT_OK);
    weft_sim_free(s);

    rewind(f);
    uint32_t *loaded;
    size_t len;
    assert_int_equal(weft_choice_load(f, &loaded, &len, NULL, 0), WEFT_OK);
    fclose(f);
    assert_int_equal(len, n);
    cfg.trace_ctx = &second;
    s = sim_with(&cfg, weft_choice_replay(loaded, len));
    weft_free(loaded);
    chaos(s);
    assert_int_equal(weft_sim_trace_hash(s), h1);
    assert_string_equal(first.text, second.text);
    weft_sim_free(s);

    /* Another seed: another trace. */
    s = sim_with(NULL, weft_choice_seeded(2025));
    chaos(s);
    assert_int_not_equal(weft_sim_trace_hash(s), h1);
    weft_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_and_identity),
        cmocka_unit_test(new_out_of_memory),
        cmocka_unit_test(step_run_until_advance),
        cmocka_unit_test(reactor_run_and_stop),
        cmocka_unit_test(reactor_run_until),
        cmocka_unit_test(runaway_caps),
        cmocka_unit_test(hottest_by_label),
        cmocka_unit_test(labelled_calls_name_runaways),
        cmocka_unit_test(internal_events),
        cmocka_unit_test(events_carry_their_host),
        cmocka_unit_test(jitter_orders_nearby_events),
        cmocka_unit_test(no_nested_runs),
        cmocka_unit_test(jitter_pass_cut_by_horizon),
        cmocka_unit_test(trace_text_and_hash),
        cmocka_unit_test(trace_long_lines),
        cmocka_unit_test(trace_hash_matches_spec),
        cmocka_unit_test(record_then_replay),
    };
    return cmocka_run_group_tests_name("sim", tests, NULL, NULL);
}
