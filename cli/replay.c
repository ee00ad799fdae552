/* replay.c: `weft replay` and `weft trace`: one run, reproduced exactly from
 * a seed or a choice file, with its whole trace; and `weft list`, the names
 * a scenario can use.
 *
 * The trace is streamed through the run's trace sink as it is made, so a long
 * run never needs its trace in memory (a --format rendering does: it is made
 * from the kept trace after the run). replay prints the trace, then the
 * failures and the verdict line on standard output; trace prints only the
 * trace on standard output (ready for diff) and the verdict on standard error.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct sink_ctx {
    FILE *out;
    const char *indent;
} sink_ctx;

static void print_line(const char *line, size_t len, void *ctx)
{
    sink_ctx *sc = ctx;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\0'))
        len--;
    fprintf(sc->out, "%s%.*s\n", sc->indent, (int)len, line);
}

static int replay_one(const cli_opts *o, bool trace_only)
{
    cli_session s;
    int rc = cli_session_open(o, &s);
    if (rc != CLI_EXIT_PASS)
        return rc;
    cli_source src;
    rc = cli_source_load(o, s.scenarios[0], &src);
    if (rc != CLI_EXIT_PASS) {
        cli_session_close(&s);
        return rc;
    }
    sink_ctx sc = {stdout, trace_only ? "" : "  "};
    weft_run_result res;
    if (!trace_only)
        fprintf(stdout, "trace:\n");
    cli_capture cap;
    memset(&cap, 0, sizeof cap);
    /* A rendering needs the whole trace: kept, then rendered. */
    bool render = trace_only && o->format != NULL;
    int err = cli_run(o, &s, 0, &src, render, render ? NULL : print_line, &sc,
                      o->save_choices != NULL ? &cap : NULL, &res);
    if (err == WEFT_OK && render)
        err = cli_render_trace(stdout, o->format, o->files[0], res.trace_text, res.trace_len);
    if (err != WEFT_OK) {
        fprintf(stderr, "weft %s: %s: %s\n", o->cmd, o->files[0], weft_strerror(err));
        cli_capture_clear(&cap);
        cli_source_clear(&src);
        cli_session_close(&s);
        return CLI_EXIT_USAGE;
    }
    FILE *out = trace_only ? stderr : stdout;
    if (!res.passed) {
        if (res.nfailures == 0 && res.verdict != NULL)
            fprintf(out, "  %s\n", res.verdict);
        for (size_t i = 0; i < res.nfailures; i++)
            fprintf(out, "  %s\n", res.failures[i]);
    }
    cli_print_verdict(out, o->files[0], &src, &res, false);
    rc = res.passed ? CLI_EXIT_PASS : CLI_EXIT_FAIL;
    if (!res.passed && o->save_choices != NULL) {
        if (cli_save_choices(o->save_choices, o->files[0], &src, &cap) != WEFT_OK)
            rc = CLI_EXIT_USAGE;
        else
            cli_print_saved(out, o, o->files[0], &src);
    }
    fflush(stdout);
    cli_capture_clear(&cap);
    weft_run_result_clear(&res);
    cli_source_clear(&src);
    cli_session_close(&s);
    return rc;
}

int cli_cmd_replay(const cli_opts *o)
{
    return replay_one(o, false);
}

int cli_cmd_trace(const cli_opts *o)
{
    return replay_one(o, true);
}

int cli_cmd_list(const cli_opts *o)
{
    cli_session s;
    int rc = cli_session_open(o, &s);
    if (rc != CLI_EXIT_PASS)
        return rc;
    for (size_t i = 0; i < weft_registry_protocol_count(s.reg); i++)
        fprintf(stdout, "protocol %s\n", weft_registry_protocol_name(s.reg, i));
    for (size_t i = 0; i < weft_registry_action_count(s.reg); i++)
        fprintf(stdout, "action %s\n", weft_registry_action_name(s.reg, i));
    fflush(stdout);
    cli_session_close(&s);
    return CLI_EXIT_PASS;
}
