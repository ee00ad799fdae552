/* Shrinking a failing choice list (weft_shrink_choices): synthetic
 * predicates with known minima, determinism, the test budget, errors, and a
 * simulator run whose failure depends on the event order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft/sim.h"

/* Fails when some value is at least 7. */
static int any_big(const uint32_t *v, size_t len, void *ctx, bool *fails)
{
    size_t *calls = ctx;
    if (calls)
        (*calls)++;
    *fails = false;
    for (size_t i = 0; i < len; i++)
        *fails = *fails || v[i] >= 7;
    return WEFT_OK;
}

static void shrinks_to_the_single_smallest_value(void **state)
{
    (void)state;
    uint32_t v[] = {3, 0, 9, 1, 200, 4, 0, 0, 8, 2, 0};
    size_t len = sizeof v / sizeof v[0];
    size_t calls = 0, tests = 0;
    assert_int_equal(weft_shrink_choices(v, &len, 0, any_big, &calls, &tests), WEFT_OK);
    assert_int_equal(len, 1);
    assert_int_equal(v[0], 7);
    assert_int_equal(tests, calls);
    assert_true(tests > 0 && tests < 200);
}

/* Fails when position 2 holds exactly 3 (a question asked third must get
 * answer 3): the two zeros before it must stay. */
static int third_is_three(const uint32_t *v, size_t len, void *ctx, bool *fails)
{
    (void)ctx;
    *fails = len >= 3 && v[2] == 3;
    return WEFT_OK;
}

static void keeps_positions_that_matter(void **state)
{
    (void)state;
    uint32_t v[] = {5, 6, 3, 9, 9, 9, 9};
    size_t len = 7;
    assert_int_equal(weft_shrink_choices(v, &len, 0, third_is_three, NULL, NULL), WEFT_OK);
    assert_int_equal(len, 3);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 0);
    assert_int_equal(v[2], 3);
}

/* Fails when the sum is at least 100: lowering must stop at the threshold,
 * found by bisection. */
static int sum_at_least_100(const uint32_t *v, size_t len, void *ctx, bool *fails)
{
    (void)ctx;
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += v[i];
    *fails = sum >= 100;
    return WEFT_OK;
}

static void lowers_by_bisection(void **state)
{
    (void)state;
    uint32_t v[] = {1000000, 50, 50, 70};
    size_t len = 4;
    assert_int_equal(weft_shrink_choices(v, &len, 0, sum_at_least_100, NULL, NULL), WEFT_OK);
    /* Greedy, so a local minimum: [1000000 50] goes first (half deleted),
     * then [50 70] is lowered to exactly the threshold. */
    assert_int_equal(len, 2);
    assert_int_equal(v[0], 30);
    assert_int_equal(v[1], 70);
}

static void is_deterministic(void **state)
{
    (void)state;
    uint32_t a[64], b[64];
    for (int i = 0; i < 64; i++)
        a[i] = b[i] = (uint32_t)((i * 37) % 11);
    size_t la = 64, lb = 64, ta = 0, tb = 0;
    assert_int_equal(weft_shrink_choices(a, &la, 0, sum_at_least_100, NULL, &ta), WEFT_OK);
    assert_int_equal(weft_shrink_choices(b, &lb, 0, sum_at_least_100, NULL, &tb), WEFT_OK);
    assert_int_equal(la, lb);
    assert_int_equal(ta, tb);
    assert_memory_equal(a, b, la * sizeof a[0]);
    bool fails;
    sum_at_least_100(a, la, NULL, &fails);
    assert_true(fails);
}

static void respects_the_budget(void **state)
{
    (void)state;
    uint32_t v[40];
    for (int i = 0; i < 40; i++)
        v[i] = 10 + (uint32_t)i;
    size_t len = 40, calls = 0, tests = 0;
    assert_int_equal(weft_shrink_choices(v, &len, 5, any_big, &calls, &tests), WEFT_OK);
    assert_int_equal(tests, 5);
    assert_int_equal(calls, 5);
    bool fails;
    any_big(v, len, NULL, &fails);
    assert_true(fails); /* whatever was kept still fails */
    assert_true(len < 40);
}

typedef struct flaky {
    size_t calls, fail_at;
} flaky;

static int errors_later(const uint32_t *v, size_t len, void *ctx, bool *fails)
{
    flaky *f = ctx;
    if (++f->calls == f->fail_at)
        return WEFT_EIO;
    return any_big(v, len, NULL, fails);
}

static void predicate_error_stops_with_a_failing_list(void **state)
{
    (void)state;
    uint32_t v[] = {1, 2, 3, 40, 5, 6, 70, 8};
    size_t len = 8, tests = 0;
    flaky f = {0, 3};
    assert_int_equal(weft_shrink_choices(v, &len, 0, errors_later, &f, &tests), WEFT_EIO);
    assert_int_equal(tests, 3);
    bool fails;
    any_big(v, len, NULL, &fails);
    assert_true(fails);
}

static void bad_arguments_and_empty_lists(void **state)
{
    (void)state;
    uint32_t v[] = {0, 0, 0};
    size_t len = 3, tests = 99;
    assert_int_equal(weft_shrink_choices(v, NULL, 0, any_big, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_shrink_choices(v, &len, 0, NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_shrink_choices(NULL, &len, 0, any_big, NULL, NULL), WEFT_EINVAL);
    /* All zeros: trailing zeros go without a test. */
    assert_int_equal(weft_shrink_choices(v, &len, 0, any_big, NULL, &tests), WEFT_OK);
    assert_int_equal(len, 0);
    assert_int_equal(tests, 0);
    len = 0;
    assert_int_equal(weft_shrink_choices(NULL, &len, 0, any_big, NULL, NULL), WEFT_OK);
}

static void out_of_memory_is_reported(void **state)
{
    (void)state;
    uint32_t v[] = {9, 9};
    size_t len = 2;
    weft_alloc_fail_after(0);
    int rc = weft_shrink_choices(v, &len, 0, any_big, NULL, NULL);
    weft_alloc_fail_after(-1);
    assert_int_equal(rc, WEFT_ENOMEM);
    assert_int_equal(len, 2);
}

/* ---------------------------------------------------- on the simulator */

/* Four calls due at once, logged in the order they run; the run "fails"
 * when d runs before a (an ordering bug of depth 1). */
typedef struct olog {
    char seq[4];
    size_t n;
} olog;

typedef struct otag {
    olog *log;
    char tag;
} otag;

static void onote(void *ctx)
{
    otag *t = ctx;
    t->log->seq[t->log->n++] = t->tag;
}

static bool d_before_a(const char *seq)
{
    return strchr(seq, 'd') < strchr(seq, 'a');
}

static void run_four(weft_choice *c, char out[5], uint32_t **rec, size_t *nrec)
{
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    weft_sim *s = weft_sim_new(&cfg, c);
    assert_non_null(s);
    olog log;
    memset(&log, 0, sizeof log);
    otag t[4] = {{&log, 'a'}, {&log, 'b'}, {&log, 'c'}, {&log, 'd'}};
    for (int i = 0; i < 4; i++)
        weft_call_release(weft_call_later(weft_sim_reactor(s), 5, onote, &t[i]));
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    memcpy(out, log.seq, 4);
    out[4] = '\0';
    if (rec) {
        const uint32_t *v;
        *nrec = weft_choice_recorded(weft_sim_choices(s), &v, NULL);
        *rec = weft_malloc(*nrec * sizeof **rec + 1);
        memcpy(*rec, v, *nrec * sizeof **rec);
    }
    weft_sim_free(s);
}

static int order_fails(const uint32_t *v, size_t len, void *ctx, bool *fails)
{
    (void)ctx;
    char seq[5];
    run_four(weft_choice_replay(v, len), seq, NULL, NULL);
    *fails = d_before_a(seq);
    return WEFT_OK;
}

static void shrinks_a_simulator_run(void **state)
{
    (void)state;
    unsigned found = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        char seq[5];
        uint32_t *rec;
        size_t n;
        run_four(weft_choice_seeded(seed), seq, &rec, &n);
        if (!d_before_a(seq)) {
            weft_free(rec);
            continue;
        }
        found++;
        assert_int_equal(weft_shrink_choices(rec, &n, 0, order_fails, NULL, NULL), WEFT_OK);
        /* A local minimum: d first ([3]), or b then d ([1 2]), or b, c,
         * d ([1 1 1]): every choice needed, none can be lower. */
        assert_true(n >= 1 && n <= 3);
        bool fails;
        order_fails(rec, n, NULL, &fails);
        assert_true(fails);
        for (size_t i = 0; i < n; i++) {
            uint32_t cand[3];
            memcpy(cand, rec, n * sizeof cand[0]);
            assert_true(cand[i] > 0);
            cand[i]--;
            order_fails(cand, n, NULL, &fails);
            assert_false(fails);
            memcpy(cand, rec, n * sizeof cand[0]);
            memmove(cand + i, cand + i + 1, (n - i - 1) * sizeof cand[0]);
            order_fails(cand, n - 1, NULL, &fails);
            assert_false(fails);
        }
        if (n == 1)
            assert_int_equal(rec[0], 3);
        weft_free(rec);
    }
    assert_true(found >= 10); /* half the orders put d first */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shrinks_to_the_single_smallest_value),
        cmocka_unit_test(keeps_positions_that_matter),
        cmocka_unit_test(lowers_by_bisection),
        cmocka_unit_test(is_deterministic),
        cmocka_unit_test(respects_the_budget),
        cmocka_unit_test(predicate_error_stops_with_a_failing_list),
        cmocka_unit_test(bad_arguments_and_empty_lists),
        cmocka_unit_test(out_of_memory_is_reported),
        cmocka_unit_test(shrinks_a_simulator_run),
    };
    return cmocka_run_group_tests_name("shrink", tests, NULL, NULL);
}
