/* shrink.c: `weft shrink FILE --seed S | --choices F | --strategy pct ...`.
 *
 * The run named on the command line is made once with its choices captured;
 * it must fail. weft_scenario_shrink (weft/explore.h) then minimises the
 * choice list while the replay still fails the same way (same first failure,
 * digits aside), deterministically. The minimal list is replayed once more
 * with its trace kept and its choices captured with their labels: that run
 * is written as the choice file (--save-choices, default FILE's base name
 * with ".min.choices", in the current directory), its whole trace and
 * failures are printed, then a summary line with the sizes before and after
 * and the command that replays the minimal run. Exit status: 0 shrunk, 1
 * the run passes (nothing to shrink), 2 bad usage or an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "weft/explore.h"

static char *default_output(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".scn") == 0)
        n -= 4;
    char *out = malloc(n + sizeof ".min.choices");
    if (out != NULL) {
        memcpy(out, base, n);
        memcpy(out + n, ".min.choices", sizeof ".min.choices");
    }
    return out;
}

int cli_cmd_shrink(const cli_opts *o)
{
    cli_session s;
    int rc = cli_session_open(o, &s);
    if (rc != CLI_EXIT_PASS)
        return rc;
    const char *file = o->files[0];
    char *owned_out = NULL;
    const char *out_path = o->save_choices;
    if (out_path == NULL)
        out_path = owned_out = default_output(file);
    cli_source src;
    memset(&src, 0, sizeof src);
    cli_capture cap, mincap;
    memset(&cap, 0, sizeof cap);
    memset(&mincap, 0, sizeof mincap);
    weft_run_result res, minres;
    memset(&res, 0, sizeof res);
    memset(&minres, 0, sizeof minres);
    uint32_t *min = NULL;
    size_t nmin = 0, tests = 0;
    if (out_path == NULL) {
        fprintf(stderr, "weft shrink: out of memory\n");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    rc = cli_source_load(o, s.scenarios[0], &src); /* also --strategy pct */
    if (rc != CLI_EXIT_PASS)
        goto done;
    int err = cli_run(o, &s, 0, &src, true, NULL, NULL, &cap, &res);
    if (err == WEFT_OK && cap.oom)
        err = WEFT_ENOMEM;
    if (err != WEFT_OK) {
        fprintf(stderr, "weft shrink: %s: %s\n", file, weft_strerror(err));
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (res.passed) {
        cli_print_verdict(stdout, file, &src, &res, false);
        fprintf(stderr, "weft shrink: %s: the run passes: nothing to shrink\n", file);
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    /* The shrunk runs keep the seed (traces name it) and the caps. */
    weft_run_options ro;
    weft_run_options_init(&ro);
    if (!src.from_file || src.seed_known) {
        ro.seed = src.seed;
        ro.use_seed = true;
    }
    if (o->has_max_events)
        ro.max_events = o->max_events;
    if (o->has_max_time)
        ro.max_time_ns = o->max_time_ns;
    double start = cli_wall_seconds();
    err = weft_scenario_shrink(s.scenarios[0], s.reg, &ro, cap.values, cap.len, 0, &min, &nmin,
                               &tests);
    double el = cli_wall_seconds() - start;
    if (err != WEFT_OK) {
        fprintf(stderr, "weft shrink: %s: %s\n", file, weft_strerror(err));
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    cli_source msrc;
    memset(&msrc, 0, sizeof msrc);
    msrc.from_file = true;
    msrc.seed = ro.seed;
    msrc.seed_known = ro.use_seed;
    msrc.values = min;
    msrc.nvalues = nmin;
    msrc.choices_path = out_path;
    err = cli_run(o, &s, 0, &msrc, true, NULL, NULL, &mincap, &minres);
    if (err != WEFT_OK || minres.passed) {
        fprintf(stderr, "weft shrink: %s: the minimal run %s\n", file,
                err != WEFT_OK ? weft_strerror(err) : "passed: the scenario is nondeterministic");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    /* The file holds the minimal list (with bounds and labels); the replay
     * answers 0 to the questions after it, as the minimal run did. */
    if (mincap.len > nmin)
        mincap.len = nmin;
    if (cli_save_choices(out_path, file, &msrc, &mincap) != WEFT_OK) {
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    printf("minimal trace:\n");
    cli_print_trace(stdout, &minres, SIZE_MAX);
    for (size_t i = 0; i < minres.nfailures; i++)
        printf("  %s\n", minres.failures[i]);
    cli_print_verdict(stdout, file, &msrc, &minres, false);
    size_t nonzero_before = 0, nonzero_after = 0;
    for (size_t i = 0; i < cap.len; i++)
        nonzero_before += cap.values[i] != 0;
    for (size_t i = 0; i < nmin; i++)
        nonzero_after += min[i] != 0;
    printf("shrunk %s: choices %zu -> %zu, non-default %zu -> %zu, trace lines %zu -> %zu, "
           "tests=%zu time=%.3fs\n",
           file, cap.len, nmin, nonzero_before, nonzero_after,
           cli_count_lines(res.trace_text, res.trace_len),
           cli_count_lines(minres.trace_text, minres.trace_len), tests, el);
    printf("choices saved to %s\nreplay: ", out_path);
    cli_print_replay_command(stdout, o, file, &msrc);
    fflush(stdout);
    rc = CLI_EXIT_PASS;
done:
    weft_run_result_clear(&res);
    weft_run_result_clear(&minres);
    cli_capture_clear(&cap);
    cli_capture_clear(&mincap);
    weft_free(min);
    cli_source_clear(&src);
    free(owned_out);
    cli_session_close(&s);
    return rc;
}
