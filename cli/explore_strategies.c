/* explore_strategies.c: `weft explore --strategy random|pct|systematic`.
 *
 * random is the plain seed sweep of explore.c. pct plugs PCT-style priority
 * schedules (weft_choice_pct) into the same sweep through cli_source's
 * strategy seam: seed S makes the schedule, so a PCT run replays with
 * `--strategy pct --depth D --steps K --seed S`. The number of steps K is
 * measured once, before the sweep, as the number of questions a run with
 * every answer at its default asks (unless --steps gives it), and printed
 * with PCT's bound for the campaign: a bug of depth D among N chains over K
 * steps is hit with probability at least 1/(N*K^(D-1)) per run, and the runs
 * that bound asks for at 95% confidence. N is the number of positions PCT
 * ranks for the widest question of that run (at most WEFT_PCT_RANKS, at
 * least 2).
 *
 * systematic is not seed-driven: one weft_dfs explorer hands out the runs
 * in order, depth first within --choices-max and --alternatives, until the
 * bounded space is exhausted or --seeds runs were made. Its failing run is
 * reproduced from the choices it recorded: the report replays them and
 * writes them to --save-choices (default systematic.choices). Every strategy
 * ends with the number of distinct trace hashes it produced: its ordering
 * coverage. The wall clock only measures throughput.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define SYSTEMATIC_CHOICES_DEFAULT 8
#define SYSTEMATIC_ALTERNATIVES_DEFAULT 2
#define SYSTEMATIC_SAVE_DEFAULT "systematic.choices"

/* ---------------------------------------------------------------- pct */

static weft_choice *pct_make(void *ctx, uint64_t seed)
{
    const cli_opts *o = ctx;
    return weft_choice_pct(seed, o->depth, o->steps);
}

static void pct_print_replay(void *ctx, uint64_t seed, FILE *out)
{
    const cli_opts *o = ctx;
    fprintf(out, " --strategy pct --depth %u --steps %llu --seed %llu", (unsigned)o->depth,
            (unsigned long long)o->steps, (unsigned long long)seed);
}

int cli_strategy_apply(const cli_opts *o, cli_source *src)
{
    if (src->from_file || o->strategy == NULL || strcmp(o->strategy, "random") == 0)
        return CLI_EXIT_PASS;
    if (strcmp(o->strategy, "pct") != 0)
        return cli_usage_error(o->cmd, "--strategy %s: only random and pct runs replay from a "
                                       "seed (a systematic run replays from its choice file)",
                               o->strategy);
    if (o->steps == 0)
        return cli_usage_error(o->cmd, "--strategy pct needs --steps K to replay a run");
    src->make_choices = pct_make;
    src->print_replay = pct_print_replay;
    src->make_ctx = (void *)o;
    src->strategy = "pct";
    return CLI_EXIT_PASS;
}

/* The calibration run: every answer at its default. Its questions are the
 * steps; its widest question (capped at the ranks) the chains. */
static int calibrate(const cli_opts *o, const cli_session *s, uint64_t *steps,
                     uint64_t *chains)
{
    cli_source src;
    memset(&src, 0, sizeof src);
    src.from_file = true; /* an empty choice list: every answer 0 */
    src.seed = weft_scenario_seed(s->scenarios[0]);
    src.seed_known = true;
    src.choices_path = "(defaults)";
    cli_capture cap;
    memset(&cap, 0, sizeof cap);
    weft_run_result res;
    int err = cli_run(o, s, 0, &src, false, NULL, NULL, &cap, &res);
    if (err != WEFT_OK) {
        fprintf(stderr, "weft explore: %s: calibration run: %s\n", o->files[0],
                weft_strerror(err));
        cli_capture_clear(&cap);
        return CLI_EXIT_USAGE;
    }
    uint64_t widest = 2;
    for (size_t i = 0; i < cap.len; i++) {
        uint64_t b = cap.bounds[i] < WEFT_PCT_RANKS ? cap.bounds[i] : WEFT_PCT_RANKS;
        if (b > widest)
            widest = b;
    }
    *steps = cap.len ? cap.len : 1;
    *chains = widest;
    weft_run_result_clear(&res);
    cli_capture_clear(&cap);
    return CLI_EXIT_PASS;
}

static int explore_pct(const cli_opts *o)
{
    cli_session s;
    int rc = cli_session_open(o, &s);
    if (rc != CLI_EXIT_PASS)
        return rc;
    cli_opts po = *o;
    uint64_t steps = 0, chains = 2;
    rc = calibrate(o, &s, &steps, &chains);
    cli_session_close(&s);
    if (rc != CLI_EXIT_PASS)
        return rc;
    if (po.steps == 0)
        po.steps = steps;
    double p = weft_pct_probability(chains, po.steps, po.depth);
    uint64_t need = weft_pct_runs_needed(p, 0.95);
    printf("pct %s depth=%u steps=%llu chains=%llu bound=%.3g runs95=", o->files[0],
           (unsigned)po.depth, (unsigned long long)po.steps, (unsigned long long)chains, p);
    if (need == UINT64_MAX)
        printf("unbounded");
    else
        printf("%llu", (unsigned long long)need);
    printf(" runs=%llu%s\n", (unsigned long long)po.seeds,
           need != UINT64_MAX && po.seeds >= need ? " (covered)" : "");
    fflush(stdout);
    cli_source base;
    memset(&base, 0, sizeof base);
    base.make_choices = pct_make;
    base.print_replay = pct_print_replay;
    base.make_ctx = &po;
    base.strategy = "pct";
    return cli_explore_with(&po, &base);
}

/* --------------------------------------------------------- systematic */

static weft_choice *dfs_make(void *ctx, uint64_t seed)
{
    (void)seed;
    weft_choice *c = NULL;
    if (weft_dfs_next(ctx, &c) != WEFT_OK)
        return NULL;
    return c;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int explore_systematic(const cli_opts *o)
{
    if (o->jobs > 1)
        return cli_usage_error(o->cmd, "--strategy systematic runs on one thread (no --jobs)");
    size_t choices_max = o->choices_max ? o->choices_max : SYSTEMATIC_CHOICES_DEFAULT;
    uint32_t alternatives = o->alternatives ? o->alternatives : SYSTEMATIC_ALTERNATIVES_DEFAULT;
    weft_dfs *e = weft_dfs_new(choices_max, alternatives);
    if (e == NULL)
        return cli_usage_error(o->cmd, "--choices-max %zu: at most %u choices", choices_max,
                               (unsigned)WEFT_DFS_CHOICES_MAX);
    cli_session s;
    int rc = cli_session_open(o, &s);
    if (rc != CLI_EXIT_PASS) {
        weft_dfs_free(e);
        return rc;
    }
    const char *file = o->files[0];
    uint64_t *hashes = malloc(1024 * sizeof *hashes);
    size_t nhashes = 0, hcap = hashes ? 1024 : 0;
    uint64_t runs = 0, failures = 0;
    double start = cli_wall_seconds();
    cli_opts ro = *o;
    if (ro.save_choices == NULL)
        ro.save_choices = SYSTEMATIC_SAVE_DEFAULT;
    for (;;) {
        if (runs == o->seeds)
            break;
        cli_source src;
        memset(&src, 0, sizeof src);
        src.seed = weft_scenario_seed(s.scenarios[0]);
        src.make_choices = dfs_make;
        src.make_ctx = e;
        src.strategy = "systematic";
        if (weft_dfs_exhausted(e))
            break;
        weft_run_result res;
        int err = cli_run(o, &s, 0, &src, false, NULL, NULL, NULL, &res);
        if (err == WEFT_ENOMEM && weft_dfs_exhausted(e))
            break; /* the explorer had no next run: the space is done */
        if (err != WEFT_OK) {
            fprintf(stderr, "weft explore: %s: %s\n", file, weft_strerror(err));
            rc = CLI_EXIT_USAGE;
            break;
        }
        runs++;
        if (nhashes == hcap) {
            uint64_t *h = realloc(hashes, (hcap ? hcap * 2 : 1024) * sizeof *h);
            if (h != NULL) {
                hashes = h;
                hcap = hcap ? hcap * 2 : 1024;
            }
        }
        if (nhashes < hcap)
            hashes[nhashes++] = res.trace_hash;
        if (!res.passed) {
            failures++;
            if (failures == 1 || o->keep_going) {
                /* Reproduced from the choices the run recorded. */
                cli_source rep;
                memset(&rep, 0, sizeof rep);
                rep.from_file = true;
                rep.seed = src.seed;
                rep.seed_known = true;
                rep.values = res.choices;
                rep.nvalues = res.nchoices;
                rep.choices_path = ro.save_choices;
                cli_print_verdict(stdout, file, &rep, &res, false);
                bool save = failures == 1;
                if (cli_report_failure(stdout, &ro, &s, 0, &rep, &res, save) == CLI_EXIT_USAGE)
                    rc = CLI_EXIT_USAGE;
                fflush(stdout);
            }
        }
        weft_run_result_clear(&res);
        if (failures && !o->keep_going)
            break;
    }
    /* One more step tells whether the space ended right after the last run. */
    if (rc == CLI_EXIT_PASS && !weft_dfs_exhausted(e) && (failures == 0 || o->keep_going)) {
        weft_choice *probe = NULL;
        if (weft_dfs_next(e, &probe) == WEFT_OK && probe != NULL)
            weft_choice_free(probe); /* not run: the space goes on */
    }
    double el = cli_wall_seconds() - start;
    qsort(hashes, nhashes, sizeof *hashes, cmp_u64);
    size_t distinct = nhashes ? 1 : 0;
    for (size_t i = 1; i < nhashes; i++)
        distinct += hashes[i] != hashes[i - 1];
    free(hashes);
    if (rc == CLI_EXIT_PASS)
        rc = failures ? CLI_EXIT_FAIL : CLI_EXIT_PASS;
    printf("%s explore %s strategy=systematic runs=%llu failures=%llu distinct=%zu "
           "choices-max=%zu alternatives=%u exhausted=%s pruned=%s time=%.3fs rate=%.0f/s\n",
           rc == CLI_EXIT_PASS ? "PASS" : "FAIL", file, (unsigned long long)runs,
           (unsigned long long)failures, distinct, choices_max, (unsigned)alternatives,
           weft_dfs_exhausted(e) ? "yes" : "no", weft_dfs_pruned(e) ? "yes" : "no", el,
           el > 0 ? (double)runs / el : 0.0);
    fflush(stdout);
    cli_session_close(&s);
    weft_dfs_free(e);
    return rc;
}

int cli_cmd_explore_strategy(const cli_opts *o)
{
    if (o->strategy == NULL || strcmp(o->strategy, "random") == 0)
        return cli_cmd_explore(o);
    if (strcmp(o->strategy, "pct") == 0)
        return explore_pct(o);
    return explore_systematic(o);
}
