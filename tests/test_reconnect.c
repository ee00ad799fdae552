/* The reconnecting client factory on the simulated network: Twisted's
 * defaults and backoff sequence under the virtual clock, max_retries,
 * reset_delay after a success, stop_trying, and jitter drawn from the choice
 * source (documented mapping, reproducible per seed). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/sim.h"

#define MS WEFT_NS_PER_MS
#define S WEFT_NS_PER_S
#define ATTEMPTS_MAX 64

typedef struct tworld {
    weft_sim *sim;
    weft_reactor *r;
    weft_factory inner, server_f;
    weft_reconnecting rc;
    weft_connector *connector;
    weft_listener *listener;
    weft_time_ns attempts[ATTEMPTS_MAX]; /* when each attempt started */
    int nattempts;
    int failed, lost, made;
    char last_reason[32];
    bool stop_in_failed;
    bool server_closes;
    bool reset_on_made;
} tworld;

typedef struct tproto {
    weft_protocol base;
    tworld *w;
    bool client;
} tproto;

static void tp_made(weft_protocol *p)
{
    tproto *t = (tproto *)p;
    if (t->client) {
        t->w->made++;
        if (t->w->reset_on_made) {
            /* The protocol reaches its reconnecting factory through p->factory. */
            assert_ptr_equal(p->factory, &t->w->rc.factory);
            weft_reconnecting_reset_delay((weft_reconnecting *)p->factory);
        }
    } else if (t->w->server_closes) {
        weft_transport_lose_connection(p->transport);
    }
}

static void tp_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    (void)p;
    (void)data;
    (void)len;
}

static void tp_lost(weft_protocol *p, const weft_failure *reason)
{
    (void)p;
    (void)reason;
}

static void tp_destroy(weft_protocol *p)
{
    free(p);
}

static const weft_protocol_ops tp_ops = {
    .connection_made = tp_made,
    .data_received = tp_data,
    .connection_lost = tp_lost,
    .destroy = tp_destroy,
};

static weft_protocol *mkproto(tworld *w, bool client)
{
    tproto *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->base.ops = &tp_ops;
    t->w = w;
    t->client = client;
    return &t->base;
}

static weft_protocol *inner_build(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    return mkproto(f->ctx, true);
}

static weft_protocol *server_build(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    return mkproto(f->ctx, false);
}

/* The inner factory is started once per attempt (and stopped after it). */
static void inner_start(weft_factory *f)
{
    tworld *w = f->ctx;
    assert_true(w->nattempts < ATTEMPTS_MAX);
    w->attempts[w->nattempts++] = weft_now(w->r);
}

static void inner_failed(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    tworld *w = f->ctx;
    assert_ptr_equal(c, w->connector);
    w->failed++;
    snprintf(w->last_reason, sizeof w->last_reason, "%s", reason->type);
    if (w->stop_in_failed)
        weft_reconnecting_stop_trying(&w->rc);
}

static void inner_lost(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    tworld *w = f->ctx;
    (void)c;
    w->lost++;
    snprintf(w->last_reason, sizeof w->last_reason, "%s", reason->type);
}

static void world_init(tworld *w, weft_choice *choices)
{
    memset(w, 0, sizeof *w);
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.max_events = 100000;
    w->sim = weft_sim_new(&cfg, choices);
    assert_non_null(w->sim);
    w->r = weft_sim_reactor(w->sim);
    assert_int_equal(weft_sim_add_host(w->sim, "server"), WEFT_OK);
    w->inner.build_protocol = inner_build;
    w->inner.start = inner_start;
    w->inner.connection_failed = inner_failed;
    w->inner.connection_lost = inner_lost;
    w->inner.ctx = w;
    w->server_f.build_protocol = server_build;
    w->server_f.ctx = w;
    weft_reconnecting_init(&w->rc, w->r, &w->inner);
}

static void world_connect(tworld *w)
{
    assert_int_equal(weft_reconnecting_connect(&w->rc, "tcp:server:2000", &w->connector), WEFT_OK);
    assert_ptr_equal(w->rc.connector, w->connector);
}

static void world_listen(tworld *w)
{
    assert_int_equal(weft_sim_set_current_host(w->sim, "server"), WEFT_OK);
    assert_int_equal(weft_listen(w->r, "tcp:2000", &w->server_f, &w->listener), WEFT_OK);
    assert_int_equal(weft_sim_set_current_host(w->sim, "localhost"), WEFT_OK);
}

static void world_fini(tworld *w)
{
    weft_reconnecting_stop_trying(&w->rc);
    weft_connector_free(w->connector);
    weft_sim_free(w->sim);
}

/* The delays the documented rounding gives, jitter 0, Twisted's defaults. */
static const int64_t twisted_delays_ns[] = {
    2718281828,    7389056098,    20085536921,   54598150027,   148413159086,
    403428793448,  1096633158307, 2980957986712, 3600 * S,      3600 * S,
};
/* Twisted's measured sequence, in milliseconds. */
static const int64_t twisted_measured_ms[] = {
    2718, 7389, 20086, 54598, 148413, 403429, 1096633, 2980958, 3600000, 3600000,
};
#define NDELAYS (sizeof twisted_delays_ns / sizeof twisted_delays_ns[0])

/* --------------------------------------------------------------- tests */

static void defaults_are_twisted(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(1));
    assert_int_equal(w.rc.initial_delay_ns, 1 * S);
    assert_true(fabs(w.rc.factor - 2.718281828459045) < 1e-15);
    assert_true(fabs(w.rc.jitter - 0.119626565582) < 1e-15);
    assert_int_equal(w.rc.max_delay_ns, 3600 * S);
    assert_int_equal(w.rc.max_retries, -1);
    assert_int_equal(w.rc.delay_ns, 1 * S);
    assert_int_equal(w.rc.retries, 0);
    assert_true(w.rc.continue_trying);
    assert_null(w.rc.pending);
    assert_ptr_equal(w.rc.inner, &w.inner);
    assert_ptr_equal(w.rc.reactor, w.r);
    world_fini(&w);
}

static void backoff_matches_twisted_with_jitter_zero(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(7));
    w.rc.jitter = 0;
    world_connect(&w);
    /* Refused connects: no listener on server:2000. */
    weft_time_ns total = 0;
    for (size_t k = 0; k < NDELAYS; k++)
        total += twisted_delays_ns[k];
    assert_int_equal(weft_sim_run_until(w.sim, total), WEFT_OK);
    assert_int_equal(w.nattempts, (int)NDELAYS + 1);
    assert_int_equal(w.attempts[0], 0);
    for (size_t k = 0; k < NDELAYS; k++) {
        int64_t gap = w.attempts[k + 1] - w.attempts[k];
        if (gap != twisted_delays_ns[k])
            print_error("retry %zu: waited %lld ns, expected %lld\n", k + 1, (long long)gap,
                        (long long)twisted_delays_ns[k]);
        assert_int_equal(gap, twisted_delays_ns[k]);
        /* Twisted's measured values, to the millisecond. */
        assert_int_equal((gap + MS / 2) / MS, twisted_measured_ms[k]);
        /* Within a microsecond of 1e9 * e^k before the clamp. */
        if (k < 8)
            assert_true(fabs((double)gap - 1e9 * exp((double)(k + 1))) < 1000.0);
    }
    assert_int_equal(w.failed, (int)NDELAYS + 1);
    assert_string_equal(w.last_reason, WEFT_REASON_REFUSED);
    assert_int_equal(w.rc.retries, (long)NDELAYS + 1);
    assert_int_equal(w.rc.delay_ns, 3600 * S);
    assert_non_null(w.rc.pending);
    assert_int_equal(weft_call_time(w.rc.pending), total + 3600 * S);
    world_fini(&w);
}

static void max_retries_two_gives_up_on_third_failure(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(7));
    w.rc.jitter = 0;
    w.rc.max_retries = 2;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 3); /* the first and two retries */
    assert_int_equal(w.failed, 3);
    assert_int_equal(w.rc.retries, 3);
    assert_null(w.rc.pending);
    assert_int_equal(w.attempts[2], twisted_delays_ns[0] + twisted_delays_ns[1]);
    world_fini(&w);

    world_init(&w, weft_choice_seeded(7));
    w.rc.max_retries = 0;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 1);
    assert_int_equal(w.rc.retries, 1);
    world_fini(&w);
}

static void success_resets_the_delay(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(7));
    w.rc.jitter = 0;
    w.reset_on_made = true;
    w.server_closes = true;
    w.rc.max_retries = 6;
    world_connect(&w);
    /* Three refusals grow the delay. */
    weft_time_ns t3 = twisted_delays_ns[0] + twisted_delays_ns[1] + twisted_delays_ns[2];
    assert_int_equal(weft_sim_run_until(w.sim, t3), WEFT_OK);
    assert_int_equal(w.failed, 4);
    assert_int_equal(w.rc.delay_ns, twisted_delays_ns[3]);
    /* The server comes up: the next attempt connects, the protocol resets the
     * delay, the server closes, and the retry waits 2.718 s again, each time. */
    world_listen(&w);
    weft_time_ns t4 = t3 + twisted_delays_ns[3];
    assert_int_equal(weft_sim_run_until(w.sim, t4 + 20 * S), WEFT_OK);
    assert_true(w.made >= 5);
    assert_int_equal(w.lost, w.made);
    assert_string_equal(w.last_reason, WEFT_REASON_DONE);
    for (int i = 5; i < w.nattempts; i++)
        assert_int_equal(w.attempts[i] - w.attempts[i - 1], twisted_delays_ns[0]);
    /* max_retries counts from the reset: it never gives up here. */
    assert_true(w.rc.retries <= 1);
    world_fini(&w);
}

/* The server host crashes and comes back: the client loses its connection,
 * backs off through the refusals, and reconnects on the first retry after
 * the server listens again; that success resets the delay. */
static void server_crash_and_restart(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(7));
    w.rc.jitter = 0;
    w.reset_on_made = true;
    world_listen(&w);
    world_connect(&w);
    assert_int_equal(weft_sim_run_until(w.sim, 10 * S), WEFT_OK);
    assert_int_equal(w.made, 1);
    assert_int_equal(w.nattempts, 1);
    assert_int_equal(weft_sim_crash(w.sim, "server"), WEFT_OK);
    assert_int_equal(weft_sim_run_until(w.sim, 40 * S), WEFT_OK);
    assert_int_equal(w.lost, 1);
    assert_int_equal(w.failed, 2); /* host down, twice */
    assert_int_equal(weft_sim_restart(w.sim, "server"), WEFT_OK);
    world_listen(&w); /* a crash drops listeners */
    assert_int_equal(weft_sim_run_until(w.sim, 100 * S), WEFT_OK);
    assert_int_equal(w.made, 2);
    assert_int_equal(w.nattempts, 4);
    weft_time_ns t = 10 * S;
    for (int k = 0; k < 3; k++) {
        t += twisted_delays_ns[k];
        assert_int_equal(w.attempts[k + 1], t);
    }
    assert_int_equal(w.rc.retries, 0);
    assert_int_equal(w.rc.delay_ns, 1 * S);
    assert_null(w.rc.pending);
    world_fini(&w);
}

static void stop_trying_cancels_pending_retry(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(7));
    world_connect(&w);
    assert_int_equal(weft_sim_run_until(w.sim, 1 * S), WEFT_OK);
    assert_int_equal(w.nattempts, 1);
    assert_non_null(w.rc.pending);
    weft_reconnecting_stop_trying(&w.rc);
    assert_null(w.rc.pending);
    assert_false(w.rc.continue_trying);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 1);
    /* Stopping twice is harmless. */
    weft_reconnecting_stop_trying(&w.rc);
    world_fini(&w);
}

static void stop_trying_while_connecting_stops_the_connector(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(7));
    assert_int_equal(weft_sim_partition(w.sim, "localhost", "server"), WEFT_OK);
    world_connect(&w); /* hangs: the SYN is lost */
    assert_int_equal(weft_sim_run_until(w.sim, 1 * S), WEFT_OK);
    assert_int_equal(w.failed, 0);
    weft_reconnecting_stop_trying(&w.rc);
    assert_int_equal(w.failed, 1);
    assert_string_equal(w.last_reason, WEFT_REASON_CONNECT_CANCELLED);
    assert_null(w.rc.pending);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 1);
    world_fini(&w);
}

static void stop_trying_from_the_inner_hook(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(7));
    w.stop_in_failed = true;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.failed, 1);
    assert_int_equal(w.nattempts, 1);
    assert_null(w.rc.pending);
    assert_int_equal(w.rc.retries, 0);
    world_fini(&w);
}

/* Jitter value v picks z = Q[v/2] (negated when v is odd), Q[i] the normal
 * quantile at 0.5 + i/256 in millionths: Q[0] = 0, Q[1] = 9792, Q[127] =
 * 2660067. */
static int64_t jittered(int64_t delay_ns, double jitter, int64_t q_u, bool negative)
{
    double z = (double)q_u / 1e6;
    if (negative)
        z = -z;
    double x = (double)delay_ns + (double)delay_ns * jitter * z;
    return x <= 0 ? 0 : (int64_t)(x + 0.5);
}

static void jitter_follows_the_documented_mapping(void **state)
{
    (void)state;
    /* Answers for the first three jitter draws: 0 (no jitter), 254 (+Q[127]),
     * 3 (-Q[1]). The run makes no other choices (fixed latency, no faults). */
    static const uint32_t picks[] = {0, 254, 3};
    tworld w;
    world_init(&w, weft_choice_replay(picks, 3));
    weft_choice_record(weft_sim_choices(w.sim), true);
    w.rc.max_retries = 3;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 4);
    int64_t d1 = twisted_delays_ns[0]; /* v = 0: exactly no jitter */
    int64_t d2 = jittered((int64_t)((double)d1 * w.rc.factor + 0.5), w.rc.jitter, 2660067, false);
    int64_t d3 = jittered((int64_t)((double)d2 * w.rc.factor + 0.5), w.rc.jitter, 9792, true);
    assert_int_equal(w.attempts[1] - w.attempts[0], d1);
    assert_int_equal(w.attempts[2] - w.attempts[1], d2);
    assert_int_equal(w.attempts[3] - w.attempts[2], d3);
    /* +2.66 sigma of 7.389 s at jitter 0.1196: about 9.74 s. */
    assert_true(d2 > 9700 * MS && d2 < 9800 * MS);
    const uint32_t *values, *bounds;
    assert_int_equal(weft_choice_recorded(weft_sim_choices(w.sim), &values, &bounds), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bounds[i], 256);
        assert_int_equal(values[i], picks[i]);
    }
    world_fini(&w);
}

static void jitter_may_exceed_max_delay_and_compounds(void **state)
{
    (void)state;
    static const uint32_t picks[] = {254, 254};
    tworld w;
    world_init(&w, weft_choice_replay(picks, 2));
    w.rc.initial_delay_ns = 9 * S;
    w.rc.delay_ns = 9 * S;
    w.rc.factor = 2.0;
    w.rc.jitter = 0.5;
    w.rc.max_delay_ns = 10 * S;
    w.rc.max_retries = 2;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 3);
    int64_t d1 = jittered(10 * S, 0.5, 2660067, false); /* clamped, then jittered */
    assert_true(d1 > 10 * S);
    assert_int_equal(w.attempts[1] - w.attempts[0], d1);
    /* The jittered delay compounds: min(d1 * 2, max) is the max again. */
    assert_int_equal(w.attempts[2] - w.attempts[1], d1);
    world_fini(&w);
}

static void negative_jitter_never_goes_below_zero(void **state)
{
    (void)state;
    static const uint32_t picks[] = {255};
    tworld w;
    world_init(&w, weft_choice_replay(picks, 1));
    w.rc.jitter = 1.0; /* -2.66 sigma of delay: below zero, clamped */
    w.rc.max_retries = 1;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 2);
    assert_int_equal(w.attempts[1], 0);
    assert_int_equal(w.rc.delay_ns, 0);
    world_fini(&w);
}

static void first_retry(uint64_t seed, int64_t *delay, uint64_t *hash)
{
    tworld w;
    world_init(&w, weft_choice_seeded(seed));
    w.rc.max_retries = 1;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 2);
    *delay = w.attempts[1] - w.attempts[0];
    *hash = weft_sim_trace_hash(w.sim);
    world_fini(&w);
}

static void jitter_over_seeds_is_reproducible_and_spread(void **state)
{
    (void)state;
    double sum = 0, sumsq = 0;
    int64_t lo = INT64_MAX, hi = 0;
    const int nseeds = 400;
    const double mean = 2718281828.0, sigma = mean * 0.119626565582;
    for (int seed = 0; seed < nseeds; seed++) {
        int64_t a, b;
        uint64_t ha, hb;
        first_retry((uint64_t)seed, &a, &ha);
        first_retry((uint64_t)seed, &b, &hb);
        assert_int_equal(a, b);
        assert_int_equal(ha, hb);
        double z = ((double)a - mean) / sigma;
        assert_true(z > -2.67 && z < 2.67);
        sum += z;
        sumsq += z * z;
        if (a < lo)
            lo = a;
        if (a > hi)
            hi = a;
    }
    double m = sum / nseeds, sd = sqrt(sumsq / nseeds - m * m);
    print_message("first retry over %d seeds: mean z %.3f, sd %.3f, range %.3f..%.3f s\n", nseeds,
                  m, sd, (double)lo / 1e9, (double)hi / 1e9);
    assert_true(fabs(m) < 0.15);
    assert_true(sd > 0.85 && sd < 1.1);
}

static void connect_bad_arguments(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(3));
    weft_connector *c = (weft_connector *)1;
    assert_int_equal(weft_reconnecting_connect(&w.rc, "tcp:server:0", &c), WEFT_EENDPOINT);
    assert_null(c);
    assert_null(w.rc.connector);
    assert_int_equal(weft_reconnecting_connect(NULL, "tcp:server:1", &c), WEFT_EINVAL);
    weft_reconnecting bare;
    weft_reconnecting_init(&bare, w.r, NULL);
    assert_int_equal(weft_reconnecting_connect(&bare, "tcp:server:1", &c), WEFT_EINVAL);
    assert_int_equal(weft_sim_pending(w.sim), 0);
    world_fini(&w);
}

/* Odd settings never produce a negative or undefined delay. */
static void odd_settings_stay_defined(void **state)
{
    (void)state;
    const double factors[] = {NAN, -2.0, 0.0, 0.5, INFINITY, 1e300};
    const int64_t expected[] = {0, 0, 0, 500 * MS, 3600 * S, 3600 * S};
    for (size_t i = 0; i < sizeof factors / sizeof factors[0]; i++) {
        tworld w;
        world_init(&w, weft_choice_seeded(1));
        w.rc.factor = factors[i];
        w.rc.jitter = 0;
        w.rc.max_retries = 1;
        world_connect(&w);
        assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
        assert_int_equal(w.nattempts, 2);
        assert_int_equal(w.attempts[1] - w.attempts[0], expected[i]);
        world_fini(&w);
    }
    tworld w;
    world_init(&w, weft_choice_seeded(1));
    w.rc.jitter = NAN;
    w.rc.max_retries = 1;
    world_connect(&w);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.nattempts, 2);
    assert_true(w.attempts[1] - w.attempts[0] >= 0);
    world_fini(&w);
}

static void inner_start_stop_are_forwarded(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, weft_choice_seeded(3));
    w.rc.max_retries = 2;
    world_connect(&w);
    assert_int_equal(w.inner.ports_, 1);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.inner.ports_, 0); /* stopped after the last attempt */
    assert_int_equal(w.nattempts, 3);
    weft_reconnecting_init(NULL, w.r, &w.inner);  /* ignored */
    weft_reconnecting_reset_delay(NULL);
    weft_reconnecting_stop_trying(NULL);
    world_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_twisted),
        cmocka_unit_test(backoff_matches_twisted_with_jitter_zero),
        cmocka_unit_test(max_retries_two_gives_up_on_third_failure),
        cmocka_unit_test(success_resets_the_delay),
        cmocka_unit_test(server_crash_and_restart),
        cmocka_unit_test(stop_trying_cancels_pending_retry),
        cmocka_unit_test(stop_trying_while_connecting_stops_the_connector),
        cmocka_unit_test(stop_trying_from_the_inner_hook),
        cmocka_unit_test(jitter_follows_the_documented_mapping),
        cmocka_unit_test(jitter_may_exceed_max_delay_and_compounds),
        cmocka_unit_test(negative_jitter_never_goes_below_zero),
        cmocka_unit_test(jitter_over_seeds_is_reproducible_and_spread),
        cmocka_unit_test(connect_bad_arguments),
        cmocka_unit_test(odd_settings_stay_defined),
        cmocka_unit_test(inner_start_stop_are_forwarded),
    };
    return cmocka_run_group_tests_name("reconnect", tests, NULL, NULL);
}
