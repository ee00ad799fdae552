/* bench_cli: what the weft command's loops cost, measured through the same
 * library calls the command makes (parse once, then weft_scenario_run per
 * seed with the command's options).
 *
 *   scenario_run_small        runs per second of a small Deferred scenario
 *                             (a chain fired by a timer), one seed: `weft run`
 *                             without process start-up
 *   scenario_parse_run_small  the same with the parse in every iteration
 *   explore_echo              seeds per second of `weft explore` on an echo
 *                             server under latency and 3-byte chunking (no
 *                             trace text kept, as explore runs passing seeds)
 *   explore_echo_check_det    seeds per second with --check-determinism (two
 *                             runs per seed, hashes compared)
 *   explore_echo_traced       runs per second with the trace text kept (what a
 *                             failure report or a divergence costs per run)
 *   explore_echo_distinct     distinct trace hashes among the explore seeds
 *
 * Every run must pass (and the two runs of a seed agree); anything else exits
 * non-zero. Wall time is read with CLOCK_MONOTONIC, outside the runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft/scenario.h"

#define SMALL_RUNS 20000u
#define EXPLORE_SEEDS 3000u

static const char small_text[] = "scenario \"chain\"\n"
                                 "deferred d\n"
                                 "d then add 1\n"
                                 "d then record \"added\"\n"
                                 "after 10ms: d fire 41\n"
                                 "d expect value 42 within 1s\n";

static const char echo_text[] = "scenario \"echo\"\n"
                                "network latency 1ms..50ms chunk 3 coalesce\n"
                                "host server client\n"
                                "listen echo on server:7\n"
                                "peer c connects to server:7 from client\n"
                                "c expect connected within 1s\n"
                                "c send \"hello\\r\\n\"\n"
                                "c send \"world\\r\\n\"\n"
                                "c expect \"hello\\r\\nworld\\r\\n\" within 1s\n"
                                "c close\n"
                                "c expect closed with ConnectionDone within 1s\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const weft_run_result *r)
{
    fprintf(stderr, "bench_cli: %s: %s\n", what, r && r->verdict ? r->verdict : "error");
    exit(1);
}

static weft_scenario *parse(const char *text, const char *name)
{
    weft_diags diags;
    weft_diags_init(&diags);
    weft_scenario *sc = NULL;
    if (weft_scenario_parse(text, strlen(text), name, &sc, &diags) != WEFT_OK) {
        weft_diags_write(&diags, stderr);
        weft_diags_clear(&diags);
        die("parse", NULL);
    }
    weft_diags_clear(&diags);
    return sc;
}

static void run_seed(const weft_scenario *sc, const weft_registry *reg, uint64_t seed,
                     bool keep_trace, weft_run_result *res)
{
    weft_run_options opt;
    weft_run_options_init(&opt);
    opt.seed = seed;
    opt.use_seed = true;
    opt.keep_trace = keep_trace;
    if (weft_scenario_run(sc, reg, &opt, res) != WEFT_OK)
        die("run", NULL);
    if (!res->passed)
        die("run failed", res);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    weft_registry *reg = weft_registry_new();
    if (reg == NULL || weft_registry_add_builtins(reg) != WEFT_OK)
        die("registry", NULL);

    weft_scenario *small = parse(small_text, "small.scn");
    weft_run_result res;
    double t0 = now_s();
    for (unsigned i = 0; i < SMALL_RUNS; i++) {
        run_seed(small, reg, 1, false, &res);
        weft_run_result_clear(&res);
    }
    double el = now_s() - t0;
    printf("bench: scenario_run_small %.0f runs/s\n", SMALL_RUNS / el);

    t0 = now_s();
    for (unsigned i = 0; i < SMALL_RUNS; i++) {
        weft_scenario *sc = parse(small_text, "small.scn");
        run_seed(sc, reg, 1, false, &res);
        weft_run_result_clear(&res);
        weft_scenario_free(sc);
    }
    el = now_s() - t0;
    printf("bench: scenario_parse_run_small %.0f runs/s\n", SMALL_RUNS / el);
    weft_scenario_free(small);

    weft_scenario *echo = parse(echo_text, "echo.scn");
    uint64_t *hashes = malloc(EXPLORE_SEEDS * sizeof *hashes);
    if (hashes == NULL)
        die("out of memory", NULL);
    t0 = now_s();
    for (unsigned i = 0; i < EXPLORE_SEEDS; i++) {
        run_seed(echo, reg, 1 + i, false, &res);
        hashes[i] = res.trace_hash;
        weft_run_result_clear(&res);
    }
    el = now_s() - t0;
    printf("bench: explore_echo %.0f seeds/s\n", EXPLORE_SEEDS / el);

    t0 = now_s();
    for (unsigned i = 0; i < EXPLORE_SEEDS; i++) {
        weft_run_result again;
        run_seed(echo, reg, 1 + i, false, &res);
        run_seed(echo, reg, 1 + i, false, &again);
        if (res.trace_hash != again.trace_hash || res.trace_hash != hashes[i])
            die("two runs of one seed differ", &res);
        weft_run_result_clear(&res);
        weft_run_result_clear(&again);
    }
    el = now_s() - t0;
    printf("bench: explore_echo_check_det %.0f seeds/s\n", EXPLORE_SEEDS / el);

    t0 = now_s();
    for (unsigned i = 0; i < EXPLORE_SEEDS; i++) {
        run_seed(echo, reg, 1 + i, true, &res);
        if (res.trace_hash != hashes[i] || res.trace_len == 0)
            die("a traced run differs from the untraced one", &res);
        weft_run_result_clear(&res);
    }
    el = now_s() - t0;
    printf("bench: explore_echo_traced %.0f runs/s\n", EXPLORE_SEEDS / el);

    qsort(hashes, EXPLORE_SEEDS, sizeof *hashes, cmp_u64);
    unsigned distinct = 1;
    for (unsigned i = 1; i < EXPLORE_SEEDS; i++)
        distinct += hashes[i] != hashes[i - 1];
    printf("bench: explore_echo_distinct %u traces_of_%u\n", distinct, EXPLORE_SEEDS);
    free(hashes);
    weft_scenario_free(echo);
    weft_registry_free(reg);
    return 0;
}
