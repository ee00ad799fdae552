/* cli.h: internal to the weft command (the files of cli/). Not installed.
 *
 * The command is a table of subcommands (main.c). Every subcommand receives a
 * cli_opts filled in by one strict option parser; the glue between the
 * command and the scenario library (loading scenarios and plugins, building
 * run options, printing verdicts, traces and replay commands, choice files)
 * lives in session.c; number and duration parsing and the wall clock in
 * util.c. Unlike the library, code here may print and exit.
 */
#ifndef WEFT_CLI_H
#define WEFT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "weft/scenario.h"
#include "weft/sim.h"

/* Exit codes of the command. */
#define CLI_EXIT_PASS 0  /* every scenario passed */
#define CLI_EXIT_FAIL 1  /* a scenario failed (or a determinism check) */
#define CLI_EXIT_USAGE 2 /* bad usage, unreadable file, scenario that does not parse */
#define CLI_EXIT_INTERRUPTED 130 /* explore stopped by SIGINT, nothing failed */

/* Trace lines printed after a failure unless --tail says otherwise. */
#define CLI_TAIL_LINES_DEFAULT 20
/* Seeds swept by explore unless --seeds says otherwise. */
#define CLI_SEEDS_DEFAULT 1000
/* How often the live progress line of explore is redrawn. */
#define CLI_PROGRESS_INTERVAL_S 0.1

/* Option bits: which options a subcommand accepts. */
enum {
    CLI_OPT_SEED = 1u << 0,
    CLI_OPT_SEEDS = 1u << 1,
    CLI_OPT_FROM = 1u << 2,
    CLI_OPT_KEEP_GOING = 1u << 3,
    CLI_OPT_CHECK_DET = 1u << 4,
    CLI_OPT_SAVE_CHOICES = 1u << 5,
    CLI_OPT_CHOICES = 1u << 6,
    CLI_OPT_LOAD = 1u << 7,
    CLI_OPT_MAX_EVENTS = 1u << 8,
    CLI_OPT_MAX_TIME = 1u << 9,
    CLI_OPT_TAIL = 1u << 10,
    CLI_OPT_QUIET = 1u << 11,
    CLI_OPT_BYTES = 1u << 12,
    CLI_OPT_FORMAT = 1u << 13,
    CLI_OPT_JOBS = 1u << 14,
    CLI_OPT_STRATEGY = 1u << 15,
    CLI_OPT_DEPTH = 1u << 16,
    CLI_OPT_STEPS = 1u << 17,
    CLI_OPT_CHOICES_MAX = 1u << 18,
    CLI_OPT_ALTERNATIVES = 1u << 19,
};

/* explore --jobs: at most this many worker threads, and outcomes buffered
 * ahead of the in-order consumer. */
#define CLI_JOBS_MAX 64u
#define CLI_JOBS_WINDOW 256u
#define CLI_JOBS_BATCH 16u

/* Largest --bytes file read (a fuzzer input). */
#define CLI_BYTES_MAX (16u * 1024u * 1024u)

struct cli_source;

typedef struct cli_opts {
    const char *cmd; /* subcommand name, for messages */
    /* Positional arguments (pointers into argv). */
    const char **files;
    size_t nfiles;
    /* --load, repeatable (pointers into argv). */
    const char **plugins;
    size_t nplugins;
    bool has_seed;
    uint64_t seed;
    uint64_t seeds; /* explore: how many */
    uint64_t from;  /* explore: first seed */
    size_t jobs;    /* explore: worker threads (1: the main thread alone) */
    bool has_from;
    bool keep_going;
    bool check_determinism;
    bool quiet;
    const char *save_choices; /* file to write the recorded choices to */
    const char *choices;      /* replay/trace: choice file to replay */
    const char *bytes;        /* replay/trace: raw bytes as the choice source */
    const char *format;       /* trace: "text" (NULL), "chrome" or "mermaid" */
    bool has_max_events;
    uint64_t max_events;
    bool has_max_time;
    int64_t max_time_ns;
    size_t tail_lines;
    /* Exploration strategies (explore_strategies.c). */
    const char *strategy;  /* "random" (NULL), "pct" or "systematic" */
    uint32_t depth;        /* pct: bug depth (default 3) */
    uint64_t steps;        /* pct: steps for the change points (0: measured) */
    size_t choices_max;    /* systematic: choices enumerated (0: default) */
    uint32_t alternatives; /* systematic: answers tried per choice (0: default) */
    /* Installs o->strategy's choice sources in a seed source (main sets it
     * to cli_strategy_apply; NULL: seeds use the seeded generator). */
    int (*strategy_hook)(const struct cli_opts *o, struct cli_source *src);
} cli_opts;

/* --------------------------------------------------------------- util.c */

/* Strict unsigned decimal (or 0x hexadecimal): the whole string, no sign, no
 * spaces, no overflow. */
bool cli_parse_u64(const char *s, uint64_t *out);
/* A duration with a unit: ns, us, ms, s, m, h; decimals allowed ("1.5s"),
 * exact to the nanosecond (a fraction finer than 1 ns is refused). */
bool cli_parse_duration(const char *s, int64_t *out_ns);
/* "12.000345678s". buf of at least 32 bytes. */
void cli_format_time(int64_t ns, char *buf, size_t len);
/* Wall clock (monotonic) in seconds: throughput figures only, never a run. */
double cli_wall_seconds(void);
/* Iterate the lines of a trace buffer: lines end in '\n' or '\0'. *pos starts
 * at 0; returns false at the end. */
bool cli_next_line(const char *text, size_t len, size_t *pos, const char **line,
                   size_t *line_len);
size_t cli_count_lines(const char *text, size_t len);
/* Print "weft CMD: message" and a hint to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------------------------ session.c */

/* Everything a subcommand needs: the registry with builtins and plugins, and
 * every scenario named on the command line, parsed. */
typedef struct cli_session {
    weft_registry *reg;
    weft_scenario **scenarios; /* one per o->files[i] */
    size_t count;
} cli_session;

/* Loads plugins and parses every file; prints every diagnostic as
 * file:line:col: message. CLI_EXIT_PASS or CLI_EXIT_USAGE (nothing to free
 * then). */
int cli_session_open(const cli_opts *o, cli_session *s);
void cli_session_close(cli_session *s);

/* What one run is reproduced from: a seed or a choice file. A choice file
 * written by the command also names the seed its run was made with ("# seed
 * N"); the run then carries that seed too, so its trace (which names the seed)
 * and hash are those of the original run. */
typedef struct cli_source {
    bool from_file;  /* --choices or --bytes */
    bool from_bytes; /* --bytes: the file is raw bytes (weft_choice_bytes) */
    uint64_t seed;
    bool seed_known; /* from_file: the file named its seed */
    const char *choices_path;
    uint32_t *values; /* loaded choice file (weft_free) */
    size_t nvalues;
    uint8_t *bytes; /* loaded --bytes file (free) */
    size_t nbytes;
    /* The seam for exploration strategies (a seed-driven choice source other
     * than the seeded generator, e.g. PCT): when make_choices is set and the
     * source is not a file, cli_run asks make_choices(make_ctx, seed) for the
     * run's choice source (the run owns it; NULL means out of memory).
     * strategy names it in verdict lines ("seed=7 strategy=pct");
     * print_replay, when set, prints the options that replay the run in
     * place of " --seed S" (e.g. " --strategy pct --depth 3 --seed 7"), to
     * out, after "weft replay FILE" and the --load and cap options. Under
     * explore --jobs both are called from several threads. */
    weft_choice *(*make_choices)(void *ctx, uint64_t seed);
    void (*print_replay)(void *ctx, uint64_t seed, FILE *out);
    void *make_ctx;
    const char *strategy;
} cli_source;

/* Load o->choices or o->bytes into src (prints its error). CLI_EXIT_PASS or
 * USAGE. */
int cli_source_load(const cli_opts *o, const weft_scenario *sc, cli_source *src);
void cli_source_clear(cli_source *src);

/* Every choice of a run with its bound and label, captured by wrapping the
 * run's choice source (the run's own record has no labels). */
typedef struct cli_capture {
    uint32_t *values;
    uint32_t *bounds;
    const char **labels; /* static strings, as passed to weft_choose */
    size_t len, cap;
    bool oom;
} cli_capture;

void cli_capture_clear(cli_capture *cap);

/* Run sc once from src with o's overrides. keep_trace keeps the trace text in
 * the result; sink (may be NULL) receives every line as it is made; cap (may
 * be NULL) receives every choice. WEFT_OK or a library error (the result is
 * then cleared). */
int cli_run(const cli_opts *o, const cli_session *s, size_t index, const cli_source *src,
            bool keep_trace, weft_trace_sink sink, void *sink_ctx, cli_capture *cap,
            weft_run_result *res);

/* "PASS file seed=1 time=0.012000000s events=14 hash=0123456789abcdef";
 * FAIL when the run failed or was found nondeterministic (then so marked). */
void cli_print_verdict(FILE *out, const char *file, const cli_source *src,
                       const weft_run_result *res, bool nondeterministic);
/* Failures, the last tail lines of the trace, the replay command. */
void cli_print_failure(FILE *out, const cli_opts *o, const char *file, const cli_source *src,
                       const weft_run_result *res);
/* "weft replay FILE --seed S" with the --load and cap options of o; paths
 * are quoted for the shell when they need it. */
void cli_print_replay_command(FILE *out, const cli_opts *o, const char *file,
                              const cli_source *src);
/* Write the captured choices of a run of file from src to path, in the
 * choice file format of weft/sim.h, headed by "# scenario FILE" and (when
 * known) "# seed N" comments. Prints what went wrong; returns WEFT_OK or an
 * error. */
int cli_save_choices(const char *path, const char *file, const cli_source *src,
                     const cli_capture *cap);
/* "choices saved to F: weft replay FILE ... --choices F". */
void cli_print_saved(FILE *out, const cli_opts *o, const char *file, const cli_source *src);
/* The report of a failing run (res): rerun it with the trace kept, print the
 * failures, the last trace lines and the replay command, and with save write
 * the choices to o->save_choices. CLI_EXIT_FAIL, or CLI_EXIT_USAGE when the
 * rerun or the save went wrong. */
int cli_report_failure(FILE *out, const cli_opts *o, const cli_session *s, size_t index,
                       const cli_source *src, const weft_run_result *res, bool save);
/* Print the last tail_lines lines of res's kept trace. */
void cli_print_trace(FILE *out, const weft_run_result *res, size_t tail_lines);

/* Run twice and compare (hash, verdict, events, virtual time). Returns
 * CLI_EXIT_PASS when both runs agree (res holds the first run, without trace
 * text), CLI_EXIT_FAIL on a divergence: printed to out with the first
 * differing line of two more runs made with their traces kept (res holds the
 * first run); CLI_EXIT_USAGE on a library error. */
int cli_run_twice(FILE *out, const cli_opts *o, const cli_session *s, size_t index,
                  const cli_source *src, weft_run_result *res);

/* -------------------------------------------------------------- trace.c */

/* Render a kept trace (text[0..len), lines as in weft_run_result) in format
 * "chrome" (Chrome trace event JSON) or "mermaid" (a sequence diagram of the
 * network conversation). WEFT_EINVAL for another format, WEFT_EIO when
 * writing failed. */
int cli_render_trace(FILE *out, const char *format, const char *file, const char *text,
                     size_t len);

/* ---------------------------------------------------------- subcommands */

int cli_cmd_run(const cli_opts *o);
int cli_cmd_explore(const cli_opts *o);
/* explore with every seed's source made as base says (make_choices,
 * print_replay, make_ctx, strategy; base NULL: the seeded generator). */
int cli_explore_with(const cli_opts *o, const cli_source *base);
int cli_cmd_replay(const cli_opts *o);
/* explore_strategies.c: explore by o->strategy (random: cli_cmd_explore). */
int cli_cmd_explore_strategy(const cli_opts *o);
/* For a seed source (not a file), install o->strategy's choice sources in
 * src (pct needs o->steps); random does nothing. CLI_EXIT_PASS or a usage
 * error. */
int cli_strategy_apply(const cli_opts *o, cli_source *src);
/* shrink.c */
int cli_cmd_shrink(const cli_opts *o);
int cli_cmd_trace(const cli_opts *o);
int cli_cmd_list(const cli_opts *o);

#endif
