/* Planted bugs (scenarios/bugs/): each strategy finds each bug within a
 * stated number of runs, shrinking brings each failure to a short choice
 * list that still fails the same way, and each fixed version passes a long
 * sweep under every strategy. Also the registration, the actions' argument
 * checks and the failure key. Runs from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft/explore.h"

/* Stated budgets: the first failing run must come within these. */
#define RANDOM_SEEDS_MAX 100
#define PCT_RUNS_MAX 200
#define PCT_DEPTH 3
#define DFS_CHOICES 8
#define DFS_ALTERNATIVES 2
#define FIXED_SWEEP_SEEDS 2000

typedef struct bug_case {
    const char *name;
    const char *symptom;       /* in the first failure of a found run */
    size_t shrunk_choices_max; /* stated bound after shrinking */
} bug_case;

static const bug_case cases[] = {
    {"rpc", "AlreadyCalled", 4},
    {"jobs", "wrote after its connection was closed", 3},
    {"resend", "expected value 5 within 2s, got value 4", 8},
    {"pair", "got value 21", 4},
    {"lock", "bugs.lock: worker", 4},
};
#define NCASES (sizeof cases / sizeof cases[0])

typedef struct world {
    weft_registry *reg;
} world;

static int setup(void **state)
{
    static world w;
    w.reg = weft_registry_new();
    if (!w.reg || weft_registry_add_builtins(w.reg) != WEFT_OK ||
        weft_bugs_register(w.reg) != WEFT_OK)
        return -1;
    *state = &w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    weft_registry_free(w->reg);
    return 0;
}

static weft_scenario *load(const world *w, const char *name, bool fixed)
{
    char path[128];
    snprintf(path, sizeof path, "scenarios/bugs/%s%s.scn", name, fixed ? "_fixed" : "");
    weft_scenario *sc = NULL;
    weft_diags d;
    weft_diags_init(&d);
    int rc = weft_scenario_load(path, &sc, &d);
    if (rc == WEFT_OK)
        rc = weft_scenario_check(sc, w->reg, &d);
    if (rc != WEFT_OK)
        weft_diags_write(&d, stderr);
    weft_diags_clear(&d);
    assert_int_equal(rc, WEFT_OK);
    return sc;
}

typedef enum strategy { S_RANDOM, S_PCT, S_DFS } strategy;

/* The steps PCT spreads its change points over: the choices of a run with
 * every answer at its default. */
static uint64_t default_steps(const world *w, const weft_scenario *sc)
{
    weft_run_options o;
    weft_run_options_init(&o);
    o.choices = weft_choice_replay(NULL, 0);
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, w->reg, &o, &r), WEFT_OK);
    uint64_t k = r.nchoices ? r.nchoices : 1;
    weft_run_result_clear(&r);
    return k;
}

/* Run up to max runs of strategy s; returns the 1-based index of the first
 * failing run (0: none) with its result in *first (when not NULL), and
 * counts all failures in *fails. */
static uint64_t hunt(const world *w, const weft_scenario *sc, strategy s, uint64_t max,
                     weft_run_result *first, uint64_t *fails, bool *exhausted)
{
    uint64_t steps = s == S_PCT ? default_steps(w, sc) : 0;
    weft_dfs *e = s == S_DFS ? weft_dfs_new(DFS_CHOICES, DFS_ALTERNATIVES) : NULL;
    uint64_t found = 0;
    *fails = 0;
    if (exhausted)
        *exhausted = false;
    for (uint64_t i = 1; i <= max; i++) {
        weft_run_options o;
        weft_run_options_init(&o);
        o.seed = i;
        o.use_seed = true;
        if (s == S_PCT)
            o.choices = weft_choice_pct(i, PCT_DEPTH, steps);
        if (s == S_DFS) {
            assert_int_equal(weft_dfs_next(e, &o.choices), WEFT_OK);
            if (o.choices == NULL) {
                if (exhausted)
                    *exhausted = true;
                break;
            }
        }
        weft_run_result r;
        assert_int_equal(weft_scenario_run(sc, w->reg, &o, &r), WEFT_OK);
        if (!r.passed) {
            ++*fails;
            if (!found) {
                found = i;
                if (first) {
                    *first = r;
                    continue;
                }
            }
        }
        weft_run_result_clear(&r);
    }
    weft_dfs_free(e);
    return found;
}

static void check_found(const world *w, strategy s, uint64_t budget)
{
    for (size_t i = 0; i < NCASES; i++) {
        weft_scenario *sc = load(w, cases[i].name, false);
        weft_run_result first;
        memset(&first, 0, sizeof first);
        uint64_t fails;
        uint64_t at = hunt(w, sc, s, budget, &first, &fails, NULL);
        if (at == 0)
            print_error("%s: not found within %llu runs\n", cases[i].name,
                        (unsigned long long)budget);
        assert_true(at > 0 && at <= budget);
        assert_non_null(strstr(first.verdict, cases[i].symptom));
        weft_run_result_clear(&first);
        weft_scenario_free(sc);
    }
}

static void random_finds_each_bug(void **state)
{
    check_found(*state, S_RANDOM, RANDOM_SEEDS_MAX);
}

static void pct_finds_each_bug(void **state)
{
    check_found(*state, S_PCT, PCT_RUNS_MAX);
}

/* The systematic explorer exhausts its bounded space (2^8 runs at most) and
 * meets each bug on the way. */
static void systematic_finds_each_bug(void **state)
{
    check_found(*state, S_DFS, 1u << DFS_CHOICES);
}

/* Each fixed version passes: random seeds, PCT schedules, and the whole
 * bounded systematic space. */
static void fixed_versions_pass_sweeps(void **state)
{
    world *w = *state;
    for (size_t i = 0; i < NCASES; i++) {
        weft_scenario *sc = load(w, cases[i].name, true);
        uint64_t fails;
        bool exhausted;
        assert_int_equal(hunt(w, sc, S_RANDOM, FIXED_SWEEP_SEEDS, NULL, &fails, NULL), 0);
        assert_int_equal(hunt(w, sc, S_PCT, FIXED_SWEEP_SEEDS / 4, NULL, &fails, NULL), 0);
        assert_int_equal(hunt(w, sc, S_DFS, (1u << DFS_CHOICES) + 1, NULL, &fails, &exhausted), 0);
        assert_true(exhausted);
        weft_scenario_free(sc);
    }
}

/* The first failing random run of each bug shrinks to a short list that
 * still fails the same way, the same list every time. */
static void shrinking_makes_each_failure_short(void **state)
{
    world *w = *state;
    for (size_t i = 0; i < NCASES; i++) {
        weft_scenario *sc = load(w, cases[i].name, false);
        weft_run_result first;
        uint64_t fails;
        uint64_t seed = hunt(w, sc, S_RANDOM, RANDOM_SEEDS_MAX, &first, &fails, NULL);
        assert_true(seed > 0);
        weft_run_options o;
        weft_run_options_init(&o);
        o.seed = seed;
        o.use_seed = true;
        uint32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0, tests = 0;
        assert_int_equal(
            weft_scenario_shrink(sc, w->reg, &o, first.choices, first.nchoices, 0, &a, &na, &tests),
            WEFT_OK);
        assert_true(na <= cases[i].shrunk_choices_max);
        assert_true(na <= first.nchoices);
        assert_true(tests > 0);
        assert_int_equal(
            weft_scenario_shrink(sc, w->reg, &o, first.choices, first.nchoices, 0, &b, &nb, NULL),
            WEFT_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        /* The replay of the shrunk list fails with the same key. */
        o.choices = weft_choice_replay(a, na);
        weft_run_result again;
        assert_int_equal(weft_scenario_run(sc, w->reg, &o, &again), WEFT_OK);
        assert_false(again.passed);
        char *k1 = weft_run_failure_key(&first), *k2 = weft_run_failure_key(&again);
        assert_string_equal(k1, k2);
        assert_non_null(strstr(again.verdict, cases[i].symptom));
        weft_free(k1);
        weft_free(k2);
        weft_run_result_clear(&again);
        weft_run_result_clear(&first);
        weft_free(a);
        weft_free(b);
        weft_scenario_free(sc);
    }
}

static void shrink_refuses_a_passing_list(void **state)
{
    world *w = *state;
    weft_scenario *sc = load(w, "rpc", false);
    uint32_t *out = (uint32_t *)1;
    size_t n = 7, tests = 9;
    /* All defaults: the shortest round trip, no timeout race. */
    assert_int_equal(weft_scenario_shrink(sc, w->reg, NULL, NULL, 0, 0, &out, &n, &tests),
                     WEFT_ESTATE);
    assert_null(out);
    assert_int_equal(n, 0);
    assert_int_equal(tests, 0);
    assert_int_equal(weft_scenario_shrink(NULL, w->reg, NULL, NULL, 0, 0, &out, &n, NULL),
                     WEFT_EINVAL);
    weft_scenario_free(sc);
}

static void failure_key_reads_digits_as_one(void **state)
{
    (void)state;
    char *f1 = "t.scn:18: r: expected value 5 within 2s, got value 4";
    weft_run_result r;
    memset(&r, 0, sizeof r);
    r.failures = &f1;
    r.nfailures = 1;
    r.verdict = f1;
    char *k = weft_run_failure_key(&r);
    assert_string_equal(k, "t.scn:#: r: expected value # within #s, got value #");
    weft_free(k);
    r.passed = true;
    assert_null(weft_run_failure_key(&r));
    assert_null(weft_run_failure_key(NULL));
}

static void registration(void **state)
{
    (void)state;
    weft_registry *reg = weft_registry_new();
    assert_int_equal(weft_bugs_register(NULL), WEFT_EINVAL);
    assert_int_equal(weft_bugs_register(reg), WEFT_OK);
    const char *protos[] = {"bug-rpc", "bug-jobs", "bug-jobs-client", "bug-store",
                            "bug-resend", "bug-pair", "bug-lock"};
    for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++)
        assert_true(weft_registry_has_protocol(reg, protos[i]));
    const char *actions[] = {"bugs.rpc", "bugs.resend", "bugs.pair", "bugs.lock"};
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        assert_true(weft_registry_has_action(reg, actions[i]));
    assert_int_equal(weft_bugs_register(reg), WEFT_EEXIST);
    weft_registry_free(reg);
}

/* Misuse: an action on the wrong client, a missing argument, bad protocol
 * arguments: each fails the run with a message at its statement. */
static void run_text(const world *w, const char *text, const char *want)
{
    weft_scenario *sc = NULL;
    weft_diags d;
    weft_diags_init(&d);
    int rc = weft_scenario_parse(text, strlen(text), "t.scn", &sc, &d);
    if (rc != WEFT_OK)
        weft_diags_write(&d, stderr);
    weft_diags_clear(&d);
    assert_int_equal(rc, WEFT_OK);
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, w->reg, NULL, &r), WEFT_OK);
    assert_false(r.passed);
    if (!strstr(r.verdict, want))
        print_error("verdict: %s\nwanted: %s\n", r.verdict, want);
    assert_non_null(strstr(r.verdict, want));
    weft_run_result_clear(&r);
    weft_scenario_free(sc);
}

static void actions_check_their_arguments(void **state)
{
    world *w = *state;
    const char *head = "host server\n"
                       "listen echo on server:7\n";
    char text[1024];
    snprintf(text, sizeof text,
             "%sclient c bug-pair connects to server:7\nc expect connected within 1s\n"
             "call bugs.rpc c 90ms as r\n",
             head);
    run_text(w, text, "not a connected bug-rpc client");
    snprintf(text, sizeof text,
             "%sclient c bug-rpc connects to server:7\nc expect connected within 1s\n"
             "call bugs.rpc c as r\n",
             head);
    run_text(w, text, "expected a timeout");
    snprintf(text, sizeof text, "%scall bugs.lock nobody 3 as r\n", head);
    run_text(w, text, "client 'nobody' is not connected");
    snprintf(text, sizeof text,
             "%sclient c bug-lock connects to server:7 with \"timeout=soon\"\n"
             "c expect connected within 1s\n",
             head);
    run_text(w, text, "timeout=MS takes milliseconds");
    snprintf(text, sizeof text,
             "%sclient c bug-lock connects to server:7\nc expect connected within 1s\n"
             "call bugs.lock c 99 as r\n",
             head);
    run_text(w, text, "number of workers");
    snprintf(text, sizeof text,
             "%sclient c bug-resend connects to server:7\nc expect connected within 1s\n"
             "call bugs.resend c 5 as r\n",
             head);
    run_text(w, text, "expected HOST:PORT and a count");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registration),
        cmocka_unit_test(failure_key_reads_digits_as_one),
        cmocka_unit_test(actions_check_their_arguments),
        cmocka_unit_test(random_finds_each_bug),
        cmocka_unit_test(pct_finds_each_bug),
        cmocka_unit_test(systematic_finds_each_bug),
        cmocka_unit_test(shrinking_makes_each_failure_short),
        cmocka_unit_test(shrink_refuses_a_passing_list),
        cmocka_unit_test(fixed_versions_pass_sweeps),
    };
    return cmocka_run_group_tests_name("bugs", tests, setup, teardown);
}
