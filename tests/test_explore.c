/* Exploration strategies (weft/sim.h): PCT-style priority schedules, PCT's
 * bound, the systematic depth-first explorer, on bare choice sources and on
 * the simulator's event order; and the strategies and shrink through the
 * weft command (<build>/weft next to <build>/tests/test_explore, run from the
 * repository root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "weft/sim.h"

/* ------------------------------------------------------------- PCT */

static void pct_rejects_bad_arguments(void **state)
{
    (void)state;
    assert_null(weft_choice_pct(1, 0, 10));
    assert_null(weft_choice_pct(1, 2, 0));
    assert_null(weft_choice_pct(1, WEFT_PCT_DEPTH_MAX + 1, 10));
    weft_choice *c = weft_choice_pct(1, WEFT_PCT_DEPTH_MAX, 10);
    assert_non_null(c);
    weft_choice_free(c);
}

static void pct_same_seed_same_answers(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        weft_choice *a = weft_choice_pct(seed, 3, 40);
        weft_choice *b = weft_choice_pct(seed, 3, 40);
        for (uint32_t i = 0; i < 60; i++) {
            uint32_t n = 2 + i % 9;
            const char *label = i % 3 ? "order" : "net.latency";
            if (i % 5 == 0)
                n = 100000;
            uint32_t x = weft_choose(a, n, label);
            assert_int_equal(x, weft_choose(b, n, label));
            assert_true(x < n);
        }
        weft_choice_free(a);
        weft_choice_free(b);
    }
}

/* Depth 1 has no change point: a label's answer to the same question is
 * always the same position, and over seeds every position wins sometimes. */
static void pct_depth_one_is_a_fixed_priority_order(void **state)
{
    (void)state;
    unsigned seen[4] = {0};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        weft_choice *c = weft_choice_pct(seed, 1, 100);
        uint32_t first = weft_choose(c, 4, "order");
        for (int i = 0; i < 50; i++)
            assert_int_equal(weft_choose(c, 4, "order"), first);
        /* With three answers the winner is the best of the first three. */
        uint32_t three = weft_choose(c, 3, "order");
        if (first < 3)
            assert_int_equal(three, first);
        seen[first]++;
        weft_choice_free(c);
    }
    for (int i = 0; i < 4; i++)
        assert_true(seen[i] > 20); /* about 50 each */
}

/* Depth 2: one change point among `steps` questions; before it the answers
 * are the run's fixed winner, after it another one (the winner dropped
 * below all), and the change point falls on every index over seeds. */
static void pct_change_point_moves_priority(void **state)
{
    (void)state;
    enum { STEPS = 10 };
    unsigned where[STEPS] = {0};
    for (uint64_t seed = 1; seed <= 400; seed++) {
        weft_choice *c = weft_choice_pct(seed, 2, STEPS);
        uint32_t ans[STEPS];
        for (int i = 0; i < STEPS; i++)
            ans[i] = weft_choose(c, 5, "order");
        int changes = 0, at = -1;
        for (int i = 1; i < STEPS; i++) {
            if (ans[i] != ans[i - 1]) {
                changes++;
                at = i;
            }
        }
        /* The change point lowers the winner before answering: at index 0
         * the run starts with the second choice and never changes. */
        assert_true(changes <= 1);
        where[changes ? at : 0]++;
        weft_choice_free(c);
    }
    for (int i = 0; i < STEPS; i++)
        assert_true(where[i] > 15); /* about 40 each */
}

/* Labels keep separate priorities; a question above the ranks answers in
 * the winning band, the same band every time at depth 1. */
static void pct_bands_for_wide_questions(void **state)
{
    (void)state;
    unsigned bands[WEFT_PCT_RANKS] = {0};
    const uint32_t n = 8000;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        weft_choice *c = weft_choice_pct(seed, 1, 1000);
        uint32_t v = weft_choose(c, n, "net.latency");
        uint32_t band = v / (n / WEFT_PCT_RANKS);
        bool varied = false;
        for (int i = 0; i < 30; i++) {
            uint32_t w = weft_choose(c, n, "net.latency");
            assert_int_equal(w / (n / WEFT_PCT_RANKS), band);
            varied = varied || w != v;
            (void)weft_choose(c, 3, "order"); /* another label in between */
        }
        assert_true(varied); /* drawn inside the band, not a constant */
        bands[band]++;
        weft_choice_free(c);
    }
    for (unsigned i = 0; i < WEFT_PCT_RANKS; i++)
        assert_true(bands[i] > 20); /* about 50 each */
}

static void pct_records_like_any_source(void **state)
{
    (void)state;
    weft_choice *c = weft_choice_pct(9, 3, 20);
    uint32_t got[20];
    for (int i = 0; i < 20; i++)
        got[i] = weft_choose(c, 7, "order");
    assert_int_equal(weft_choose(c, 1, "order"), 0); /* not asked, not recorded */
    const uint32_t *vals, *bounds;
    assert_int_equal(weft_choice_recorded(c, &vals, &bounds), 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(vals[i], got[i]);
        assert_int_equal(bounds[i], 7);
    }
    /* The record replays the same answers. */
    weft_choice *r = weft_choice_replay(vals, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(weft_choose(r, 7, "order"), got[i]);
    weft_choice_free(r);
    weft_choice_free(c);
}

static void pct_bound_and_runs(void **state)
{
    (void)state;
    assert_true(weft_pct_probability(2, 10, 1) == 0.5);
    double p = weft_pct_probability(3, 10, 3);
    assert_true(p > 1.0 / 300.0 - 1e-15 && p < 1.0 / 300.0 + 1e-15);
    assert_true(weft_pct_probability(0, 0, 0) == 1.0);
    assert_int_equal(weft_pct_runs_needed(0.5, 0.95), 5); /* 4.32 -> 5 */
    assert_int_equal(weft_pct_runs_needed(1.0, 0.95), 1);
    assert_int_equal(weft_pct_runs_needed(0.0, 0.95), UINT64_MAX);
    assert_int_equal(weft_pct_runs_needed(0.01, 0.95), 299); /* ln .05 / ln .99 = 298.07 */
    assert_int_equal(weft_pct_runs_needed(1e-30, 0.95), UINT64_MAX);
    assert_int_equal(weft_pct_runs_needed(0.5, 1.0), UINT64_MAX);
    uint64_t big = weft_pct_runs_needed(1e-9, 0.95);
    assert_true(big > 2990000000ull && big < 3000000000ull);
}

/* ------------------------------------------------------------- DFS */

static void dfs_rejects_bad_bounds(void **state)
{
    (void)state;
    assert_null(weft_dfs_new(0, 2));
    assert_null(weft_dfs_new(4, 0));
    assert_null(weft_dfs_new(WEFT_DFS_CHOICES_MAX + 1, 2));
    assert_int_equal(weft_dfs_next(NULL, NULL), WEFT_EINVAL);
    weft_dfs_free(NULL);
}

/* A synthetic program: question i has bound bounds[i]. */
static uint64_t run_program(weft_choice *c, const uint32_t *bounds, size_t n, uint32_t *answers)
{
    uint64_t code = 0;
    for (size_t i = 0; i < n; i++) {
        answers[i] = weft_choose(c, bounds[i], "q");
        code = code * 31 + answers[i] + 1;
    }
    weft_choice_free(c);
    return code;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void dfs_enumerates_every_sequence_once(void **state)
{
    (void)state;
    const uint32_t bounds[3] = {2, 3, 2};
    weft_dfs *e = weft_dfs_new(8, 4);
    uint64_t codes[32];
    size_t n = 0;
    weft_choice *c;
    uint32_t ans[3];
    while (weft_dfs_next(e, &c) == WEFT_OK && c != NULL) {
        assert_true(n < 32);
        codes[n] = run_program(c, bounds, 3, ans);
        if (n == 0)
            assert_true(ans[0] == 0 && ans[1] == 0 && ans[2] == 0); /* defaults first */
        if (n == 1)
            assert_true(ans[0] == 0 && ans[1] == 0 && ans[2] == 1); /* deepest first */
        n++;
    }
    assert_int_equal(n, 12);
    assert_int_equal(weft_dfs_runs(e), 12);
    assert_true(weft_dfs_exhausted(e));
    assert_false(weft_dfs_pruned(e));
    qsort(codes, n, sizeof codes[0], cmp_u64);
    for (size_t i = 1; i < n; i++)
        assert_true(codes[i] != codes[i - 1]);
    /* Exhausted stays exhausted. */
    assert_int_equal(weft_dfs_next(e, &c), WEFT_OK);
    assert_null(c);
    weft_dfs_free(e);
}

/* Bounds prune: 2 alternatives on a question of 1000 answers try 0 and 999;
 * a 4th question past choices_max answers 0. */
static void dfs_bounds_prune_and_reach_extremes(void **state)
{
    (void)state;
    const uint32_t bounds[4] = {1000, 3, 2, 5};
    weft_dfs *e = weft_dfs_new(3, 2);
    weft_choice *c;
    uint32_t ans[4];
    size_t n = 0;
    bool saw_999 = false;
    while (weft_dfs_next(e, &c) == WEFT_OK && c != NULL) {
        run_program(c, bounds, 4, ans);
        assert_true(ans[0] == 0 || ans[0] == 999);
        saw_999 = saw_999 || ans[0] == 999;
        assert_true(ans[1] == 0 || ans[1] == 2); /* both ends of 3 */
        assert_int_equal(ans[3], 0);
        n++;
    }
    assert_true(saw_999);
    assert_int_equal(n, 8);
    assert_true(weft_dfs_exhausted(e));
    assert_true(weft_dfs_pruned(e));
    weft_dfs_free(e);
}

/* Later questions depend on earlier answers (as in a real run): the
 * explorer follows the tree, not a fixed shape. */
static void dfs_follows_a_tree(void **state)
{
    (void)state;
    weft_dfs *e = weft_dfs_new(16, 8);
    weft_choice *c;
    size_t leaves = 0;
    while (weft_dfs_next(e, &c) == WEFT_OK && c != NULL) {
        uint32_t a = weft_choose(c, 3, "a");
        if (a == 1)
            (void)weft_choose(c, 4, "b"); /* 4 leaves under a=1 */
        else if (a == 2) {
            uint32_t x = weft_choose(c, 2, "c");
            if (x)
                (void)weft_choose(c, 2, "d"); /* 1 + 2 leaves under a=2 */
        }
        weft_choice_free(c);
        leaves++;
    }
    assert_int_equal(leaves, 1 + 4 + 3);
    assert_false(weft_dfs_pruned(e));
    weft_dfs_free(e);
}

/* An old source asked after the next one was made answers 0 and does not
 * disturb the explorer. */
static void dfs_stale_source_is_inert(void **state)
{
    (void)state;
    weft_dfs *e = weft_dfs_new(4, 4);
    weft_choice *a, *b;
    assert_int_equal(weft_dfs_next(e, &a), WEFT_OK);
    assert_int_equal(weft_choose(a, 3, "q"), 0);
    assert_int_equal(weft_dfs_next(e, &b), WEFT_OK);
    assert_int_equal(weft_choose(a, 3, "q"), 0);
    assert_int_equal(weft_choose(a, 3, "q"), 0);
    assert_int_equal(weft_choose(b, 3, "q"), 1);
    weft_choice_free(a);
    weft_choice_free(b);
    size_t n = 2;
    weft_choice *c;
    while (weft_dfs_next(e, &c) == WEFT_OK && c != NULL) {
        (void)weft_choose(c, 3, "q");
        weft_choice_free(c);
        n++;
    }
    assert_int_equal(n, 3);
    weft_dfs_free(e);
}

static void dfs_out_of_memory_keeps_the_path(void **state)
{
    (void)state;
    weft_dfs *e = weft_dfs_new(4, 4);
    weft_choice *c;
    size_t n = 0;
    for (;;) {
        weft_alloc_fail_after(0);
        int rc = weft_dfs_next(e, &c);
        weft_alloc_fail_after(-1);
        assert_int_equal(rc, WEFT_ENOMEM);
        assert_null(c);
        rc = weft_dfs_next(e, &c);
        assert_int_equal(rc, WEFT_OK);
        if (c == NULL)
            break;
        (void)weft_choose(c, 5, "q");
        weft_choice_free(c);
        n++;
    }
    assert_int_equal(n, 4); /* 4 alternatives, none skipped by the failures */
    assert_true(weft_dfs_pruned(e));
    weft_dfs_free(e);
}

/* ------------------------------------------ strategies on the simulator */

typedef struct order_log {
    char seq[8];
    size_t n;
} order_log;

typedef struct tagged {
    order_log *log;
    char tag;
} tagged;

static void note(void *ctx)
{
    tagged *t = ctx;
    t->log->seq[t->log->n++] = t->tag;
}

/* Three calls due at the same instant: their order is the choice source's.
 * Returns the trace hash; log gets the order. */
static uint64_t run_three(weft_choice *c, order_log *log)
{
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    weft_sim *s = weft_sim_new(&cfg, c);
    assert_non_null(s);
    weft_reactor *r = weft_sim_reactor(s);
    memset(log, 0, sizeof *log);
    tagged t[3] = {{log, 'a'}, {log, 'b'}, {log, 'c'}};
    for (int i = 0; i < 3; i++)
        weft_call_release(weft_call_later(r, WEFT_NS_PER_MS, note, &t[i]));
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    uint64_t h = weft_sim_trace_hash(s);
    weft_sim_free(s);
    return h;
}

static void dfs_covers_every_order_in_the_simulator(void **state)
{
    (void)state;
    weft_dfs *e = weft_dfs_new(8, 8);
    weft_choice *c;
    uint64_t hashes[16];
    char orders[16][4];
    size_t n = 0;
    while (weft_dfs_next(e, &c) == WEFT_OK && c != NULL) {
        order_log log;
        assert_true(n < 16);
        hashes[n] = run_three(c, &log);
        assert_int_equal(log.n, 3);
        memcpy(orders[n], log.seq, 3);
        orders[n][3] = '\0';
        n++;
    }
    assert_int_equal(n, 6);
    assert_true(weft_dfs_exhausted(e));
    assert_false(weft_dfs_pruned(e));
    assert_string_equal(orders[0], "abc"); /* the default order first */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            assert_true(hashes[i] != hashes[j]);
            assert_string_not_equal(orders[i], orders[j]);
        }
    }
    weft_dfs_free(e);
}

/* PCT over seeds reaches every order of the three calls, and a seed's run
 * is reproducible. */
static void pct_covers_orders_in_the_simulator(void **state)
{
    (void)state;
    const char *all[6] = {"abc", "acb", "bac", "bca", "cab", "cba"};
    bool seen[6] = {false};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        order_log log, again;
        uint64_t h = run_three(weft_choice_pct(seed, 2, 2), &log);
        assert_int_equal(run_three(weft_choice_pct(seed, 2, 2), &again), h);
        assert_memory_equal(log.seq, again.seq, 3);
        for (int i = 0; i < 6; i++)
            seen[i] = seen[i] || memcmp(log.seq, all[i], 3) == 0;
    }
    for (int i = 0; i < 6; i++)
        assert_true(seen[i]);
}

/* --------------------------------------------------- through the command */

static char weft_bin[4096];
static char tmp_dir[64];

/* Run "<weft> ARGS 2>&1"; returns the exit status, output in out. */
static int weft(char *out, size_t outlen, const char *fmt, ...)
{
    char args[2048], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", weft_bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_in(const char *out, const char *want)
{
    if (!strstr(out, want))
        print_error("output:\n%s\nwanted: %s\n", out, want);
    assert_non_null(strstr(out, want));
}

/* The value of "hash=" on the line that starts with prefix. */
static void hash_of(const char *out, const char *prefix, char hash[17])
{
    const char *l = strstr(out, prefix);
    assert_non_null(l);
    const char *h = strstr(l, "hash=");
    assert_non_null(h);
    memcpy(hash, h + 5, 16);
    hash[16] = '\0';
}

static void cli_pct_prints_its_bound_and_replays(void **state)
{
    (void)state;
    static char out[1 << 16], again[1 << 16];
    int rc = weft(out, sizeof out, "explore scenarios/bugs/rpc.scn --strategy pct --quiet --tail 0");
    assert_int_equal(rc, 1);
    expect_in(out, "pct scenarios/bugs/rpc.scn depth=3 steps=6 chains=8 bound=0.00347 runs95=862");
    expect_in(out, "FAIL scenarios/bugs/rpc.scn seed=6 strategy=pct");
    expect_in(out, "replay: weft replay scenarios/bugs/rpc.scn --strategy pct --depth 3 --steps 6 "
                   "--seed 6");
    expect_in(out, "FAIL explore scenarios/bugs/rpc.scn seeds=6");
    char h1[17], h2[17];
    hash_of(out, "FAIL scenarios/bugs/rpc.scn seed=6", h1);
    rc = weft(again, sizeof again,
              "replay scenarios/bugs/rpc.scn --strategy pct --depth 3 --steps 6 --seed 6");
    assert_int_equal(rc, 1);
    hash_of(again, "FAIL scenarios/bugs/rpc.scn seed=6", h2);
    assert_string_equal(h1, h2);
    /* A fixed version passes its PCT sweep. */
    rc = weft(out, sizeof out, "explore scenarios/bugs/lock_fixed.scn --strategy pct --seeds 300 "
                               "--quiet");
    assert_int_equal(rc, 0);
    expect_in(out, "PASS explore scenarios/bugs/lock_fixed.scn seeds=300");
}

static void cli_systematic_exhausts_and_saves_its_failure(void **state)
{
    (void)state;
    static char out[1 << 16], again[1 << 16];
    int rc = weft(out, sizeof out, "explore scenarios/bugs/rpc_fixed.scn --strategy systematic "
                                   "--choices-max 4 --alternatives 3 --quiet");
    assert_int_equal(rc, 0);
    /* 4 latency questions with 3 answers each: 81 runs, all different. */
    expect_in(out, "PASS explore scenarios/bugs/rpc_fixed.scn strategy=systematic runs=81 "
                   "failures=0 distinct=81 choices-max=4 alternatives=3 exhausted=yes");
    char path[128];
    snprintf(path, sizeof path, "%s/sys.choices", tmp_dir);
    rc = weft(out, sizeof out, "explore scenarios/bugs/rpc.scn --strategy systematic --quiet "
                               "--tail 0 --save-choices %s", path);
    assert_int_equal(rc, 1);
    expect_in(out, "strategy=systematic runs=13 failures=1");
    expect_in(out, "exhausted=no");
    char h1[17], h2[17];
    hash_of(out, "FAIL scenarios/bugs/rpc.scn choices=", h1);
    rc = weft(again, sizeof again, "replay scenarios/bugs/rpc.scn --choices %s", path);
    assert_int_equal(rc, 1);
    hash_of(again, "FAIL scenarios/bugs/rpc.scn choices=", h2);
    assert_string_equal(h1, h2);
}

static void cli_shrink_writes_a_minimal_failing_file(void **state)
{
    (void)state;
    static char out[1 << 16], again[1 << 16];
    char path[128];
    snprintf(path, sizeof path, "%s/pair.min", tmp_dir);
    int rc = weft(out, sizeof out, "shrink scenarios/bugs/pair.scn --seed 33 --save-choices %s",
                  path);
    assert_int_equal(rc, 0);
    expect_in(out, "minimal trace:");
    expect_in(out, "got value 21");
    expect_in(out, "shrunk scenarios/bugs/pair.scn: choices 10 -> 4");
    expect_in(out, "replay: weft replay scenarios/bugs/pair.scn --choices ");
    rc = weft(again, sizeof again, "replay scenarios/bugs/pair.scn --choices %s", path);
    assert_int_equal(rc, 1);
    expect_in(again, "expected value 12 within 1s, got value 21");
    /* Twice: the same file. */
    char path2[128], cmd[512];
    snprintf(path2, sizeof path2, "%s/pair.min2", tmp_dir);
    assert_int_equal(weft(out, sizeof out, "shrink scenarios/bugs/pair.scn --seed 33 "
                                           "--save-choices %s", path2), 0);
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", path, path2);
    assert_int_equal(system(cmd), 0);
    /* A passing run: nothing to shrink. */
    rc = weft(out, sizeof out, "shrink scenarios/bugs/pair.scn --seed 1 --save-choices %s", path2);
    assert_int_equal(rc, 1);
    expect_in(out, "nothing to shrink");
}

static void cli_strategy_usage_errors(void **state)
{
    (void)state;
    static char out[1 << 14];
    assert_int_equal(weft(out, sizeof out, "explore scenarios/bugs/rpc.scn --strategy bogus"), 2);
    expect_in(out, "is not random, pct or systematic");
    assert_int_equal(weft(out, sizeof out, "explore scenarios/bugs/rpc.scn --strategy pct "
                                           "--depth 0"), 2);
    assert_int_equal(weft(out, sizeof out, "explore scenarios/bugs/rpc.scn --strategy pct "
                                           "--depth 65"), 2);
    assert_int_equal(weft(out, sizeof out, "explore scenarios/bugs/rpc.scn --strategy systematic "
                                           "--jobs 2"), 2);
    assert_int_equal(weft(out, sizeof out, "explore scenarios/bugs/rpc.scn --strategy systematic "
                                           "--choices-max 0"), 2);
    assert_int_equal(weft(out, sizeof out, "replay scenarios/bugs/rpc.scn --strategy pct "
                                           "--seed 3"), 2);
    expect_in(out, "needs --steps");
    assert_int_equal(weft(out, sizeof out, "replay scenarios/bugs/rpc.scn --strategy systematic "
                                           "--seed 3"), 2);
    assert_int_equal(weft(out, sizeof out, "run scenarios/bugs/rpc.scn --strategy pct"), 2);
}

static int cli_setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/weft-test-explore-XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int cli_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pct_rejects_bad_arguments),
        cmocka_unit_test(pct_same_seed_same_answers),
        cmocka_unit_test(pct_depth_one_is_a_fixed_priority_order),
        cmocka_unit_test(pct_change_point_moves_priority),
        cmocka_unit_test(pct_bands_for_wide_questions),
        cmocka_unit_test(pct_records_like_any_source),
        cmocka_unit_test(pct_bound_and_runs),
        cmocka_unit_test(dfs_rejects_bad_bounds),
        cmocka_unit_test(dfs_enumerates_every_sequence_once),
        cmocka_unit_test(dfs_bounds_prune_and_reach_extremes),
        cmocka_unit_test(dfs_follows_a_tree),
        cmocka_unit_test(dfs_stale_source_is_inert),
        cmocka_unit_test(dfs_out_of_memory_keeps_the_path),
        cmocka_unit_test(dfs_covers_every_order_in_the_simulator),
        cmocka_unit_test(pct_covers_orders_in_the_simulator),
    };
    int failed = cmocka_run_group_tests_name("explore", tests, NULL, NULL);
    /* <build>/tests/test_explore -> <build>/weft */
    snprintf(weft_bin, sizeof weft_bin, "%s", argc > 0 ? argv[0] : "");
    char *slash = strrchr(weft_bin, '/');
    if (slash)
        *slash = '\0';
    slash = strrchr(weft_bin, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(weft_bin, sizeof weft_bin, "..");
    strncat(weft_bin, "/weft", sizeof weft_bin - strlen(weft_bin) - 1);
    if (access(weft_bin, X_OK) != 0) {
        fprintf(stderr, "test_explore: %s is not built: the command tests are skipped\n",
                weft_bin);
        return failed ? 1 : 0;
    }
    const struct CMUnitTest cli[] = {
        cmocka_unit_test(cli_pct_prints_its_bound_and_replays),
        cmocka_unit_test(cli_systematic_exhausts_and_saves_its_failure),
        cmocka_unit_test(cli_shrink_writes_a_minimal_failing_file),
        cmocka_unit_test(cli_strategy_usage_errors),
    };
    failed += cmocka_run_group_tests_name("explore_cli", cli, cli_setup, cli_teardown);
    return failed ? 1 : 0;
}
