/* run.c: `weft run FILE...`: each scenario once, one verdict line each.
 *
 * Runs keep no trace text (the hash is always computed), so a passing run
 * costs only the simulation. A failing run is run a second time with its trace
 * kept, for the report (cli_report_failure); the two hashes must agree, which
 * doubles as a cheap determinism check on every failure. --save-choices saves
 * the first failing run's choices. The exit status is the worst outcome
 * over all files: usage (2) over failure (1) over pass (0).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static int worst(int a, int b)
{
    return a > b ? a : b;
}

int cli_cmd_run(const cli_opts *o)
{
    cli_session s;
    int rc = cli_session_open(o, &s);
    if (rc != CLI_EXIT_PASS)
        return rc;
    bool saved = false;
    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < s.count; i++) {
        cli_source src;
        int r = cli_source_load(o, s.scenarios[i], &src);
        if (r != CLI_EXIT_PASS) {
            rc = worst(rc, r);
            continue;
        }
        weft_run_result res;
        if (o->check_determinism) {
            r = cli_run_twice(stdout, o, &s, i, &src, &res);
            if (r == CLI_EXIT_USAGE) {
                rc = worst(rc, r);
                cli_source_clear(&src);
                continue;
            }
        } else {
            int err = cli_run(o, &s, i, &src, false, NULL, NULL, NULL, &res);
            if (err != WEFT_OK) {
                fprintf(stderr, "weft run: %s: %s\n", o->files[i], weft_strerror(err));
                rc = worst(rc, CLI_EXIT_USAGE);
                cli_source_clear(&src);
                continue;
            }
            r = CLI_EXIT_PASS;
        }
        cli_print_verdict(stdout, o->files[i], &src, &res, r == CLI_EXIT_FAIL);
        if (!res.passed) {
            bool save = o->save_choices != NULL && !saved;
            r = worst(r, cli_report_failure(stdout, o, &s, i, &src, &res, save));
            saved = saved || save;
        }
        rc = worst(rc, r);
        if (r == CLI_EXIT_PASS && res.passed)
            passed++;
        else
            failed++;
        weft_run_result_clear(&res);
        cli_source_clear(&src);
    }
    if (s.count > 1)
        fprintf(stdout, "run: %zu scenarios, %zu passed, %zu failed\n", s.count, passed, failed);
    fflush(stdout);
    cli_session_close(&s);
    return rc;
}
