/* Determinism: the same seed gives the same trace hash, seeds explore the
 * orders of concurrent events (timers, Deferreds, timeouts), and a recorded
 * run replays to the same trace. The cross-compiler half of the check is
 * scripts/determinism.sh, which runs the same workload (tests/tools). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/workload.h"

#define SEEDS 1000

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void same_seed_same_hash(void **state)
{
    (void)state;
    uint64_t *hashes = test_malloc(SEEDS * sizeof *hashes);
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        uint64_t h1 = wl_run(seed);
        uint64_t h2 = wl_run(seed);
        if (h1 != h2)
            fail_msg("seed %llu: %016llx then %016llx", (unsigned long long)seed,
                     (unsigned long long)h1, (unsigned long long)h2);
        assert_int_not_equal(h1, 0);
        hashes[seed] = h1;
    }
    /* Different seeds give different orders: nearly every seed of this
     * workload takes its own path. */
    qsort(hashes, SEEDS, sizeof *hashes, cmp_u64);
    size_t distinct = 1;
    for (size_t i = 1; i < SEEDS; i++)
        distinct += hashes[i] != hashes[i - 1];
    print_message("distinct traces over %d seeds: %zu\n", SEEDS, distinct);
    assert_true(distinct > SEEDS * 95 / 100);
    test_free(hashes);
}

static void no_concurrency_no_difference(void **state)
{
    (void)state;
    /* Every event at its own instant: nothing to choose, so every seed gives
     * the same trace, and no choice is made. */
    uint64_t h0 = wl_run_with(weft_choice_seeded(0), false, NULL);
    for (uint64_t seed = 1; seed < 50; seed++)
        assert_int_equal(wl_run_with(weft_choice_seeded(seed), false, NULL), h0);
    /* The default choices (all 0) agree too. */
    assert_int_equal(wl_run_with(NULL, false, NULL), h0);
    /* And it differs from the concurrent workload's default run. */
    assert_int_not_equal(wl_run_with(NULL, true, NULL), h0);
}

static void jitter_is_deterministic_too(void **state)
{
    (void)state;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.jitter_ns = WL_MS + WL_MS / 2;
    size_t differs = 0;
    for (uint64_t seed = 0; seed < 100; seed++) {
        uint64_t a = wl_run_with(weft_choice_seeded(seed), true, &cfg);
        uint64_t b = wl_run_with(weft_choice_seeded(seed), true, &cfg);
        assert_int_equal(a, b);
        differs += a != wl_run(seed);
    }
    assert_true(differs > 0);
}

static void record_replay_workload(void **state)
{
    (void)state;
    /* Recorded with a seed, replayed from the record: the same trace. A
     * bytes source's run replays the same way. */
    for (uint64_t seed = 0; seed < 50; seed++) {
        uint32_t *vals;
        size_t n;
        uint64_t h = wl_run_record(weft_choice_seeded(seed), true, NULL, &vals, &n);
        assert_non_null(vals);
        assert_true(n > 40);
        assert_int_equal(h, wl_run(seed));
        assert_int_equal(wl_run_with(weft_choice_replay(vals, n), true, NULL), h);
        /* A truncated record replays the prefix and defaults after it: a
         * different run (shrinking relies on both). */
        assert_int_not_equal(wl_run_with(weft_choice_replay(vals, n / 2), true, NULL), h);
        weft_free(vals);
    }
    uint8_t bytes[64];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    uint32_t *vals;
    size_t n;
    uint64_t h = wl_run_record(weft_choice_bytes(bytes, sizeof bytes), true, NULL, &vals, &n);
    assert_int_equal(wl_run_with(weft_choice_replay(vals, n), true, NULL), h);
    weft_free(vals);
}

/* A Deferred with a 5 ms timeout and a timer calling it back at 5 ms: both
 * due at the same instant, so which one wins is the choice source's call. */
typedef struct race {
    weft_deferred *d;
    weft_call *timer;
    int outcome; /* 1 value, 2 timeout */
} race;

static void race_fire(void *ctx)
{
    race *r = ctx;
    weft_deferred_callback(r->d, (void *)(intptr_t)7);
}

static weft_result race_value(weft_result in, void *ctx)
{
    race *r = ctx;
    r->outcome = 1;
    return in;
}

static weft_result race_failure(weft_result in, void *ctx)
{
    race *r = ctx;
    r->outcome = weft_failure_check(in.failure, WEFT_FAILURE_TIMEOUT) ? 2 : 3;
    return weft_value(NULL);
}

static int run_race(weft_choice *choices)
{
    weft_sim *s = weft_sim_new(NULL, choices);
    assert_non_null(s);
    weft_reactor *r = weft_sim_reactor(s);
    race rc = {weft_deferred_new(), NULL, 0};
    assert_int_equal(weft_deferred_add_timeout(rc.d, r, 5 * WL_MS, NULL, NULL), WEFT_OK);
    rc.timer = weft_call_later(r, 5 * WL_MS, race_fire, &rc);
    assert_int_equal(weft_deferred_add_callbacks(rc.d, race_value, &rc, race_failure, &rc),
                     WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    assert_int_equal(weft_now(r), 5 * WL_MS);
    weft_call_release(rc.timer);
    weft_deferred_unref(rc.d);
    weft_sim_free(s);
    return rc.outcome;
}

static void timeout_races_callback(void **state)
{
    (void)state;
    /* The timeout's timer was scheduled first: choice 0 runs it first. */
    const uint32_t first[] = {0}, second[] = {1};
    assert_int_equal(run_race(weft_choice_replay(first, 1)), 2);
    assert_int_equal(run_race(weft_choice_replay(second, 1)), 1);
    int seen[4] = {0};
    for (uint64_t seed = 0; seed < 64; seed++)
        seen[run_race(weft_choice_seeded(seed))]++;
    assert_true(seen[1] > 0);
    assert_true(seen[2] > 0);
    assert_int_equal(seen[1] + seen[2], 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_hash),
        cmocka_unit_test(no_concurrency_no_difference),
        cmocka_unit_test(jitter_is_deterministic_too),
        cmocka_unit_test(record_replay_workload),
        cmocka_unit_test(timeout_races_callback),
    };
    return cmocka_run_group_tests_name("determinism", tests, NULL, NULL);
}
