/* main.c: the weft command's entry point: the table of subcommands, their
 * help texts, and one strict option parser shared by all of them.
 *
 * Options may come before, between or after the files; "--opt value" and
 * "--opt=value" are both accepted; "--" ends the options. An option a
 * subcommand does not accept, a missing or malformed value, or a wrong number
 * of files is a usage error (exit 2) that names the culprit. Numbers are
 * parsed strictly (util.c): garbage is never read as 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef struct cli_option {
    const char *name; /* without the leading "--" */
    unsigned bit;
    bool takes_value;
} cli_option;

static const cli_option options[] = {
    {"seed", CLI_OPT_SEED, true},
    {"seeds", CLI_OPT_SEEDS, true},
    {"from", CLI_OPT_FROM, true},
    {"keep-going", CLI_OPT_KEEP_GOING, false},
    {"check-determinism", CLI_OPT_CHECK_DET, false},
    {"save-choices", CLI_OPT_SAVE_CHOICES, true},
    {"choices", CLI_OPT_CHOICES, true},
    {"bytes", CLI_OPT_BYTES, true},
    {"format", CLI_OPT_FORMAT, true},
    {"jobs", CLI_OPT_JOBS, true},
    {"strategy", CLI_OPT_STRATEGY, true},
    {"depth", CLI_OPT_DEPTH, true},
    {"steps", CLI_OPT_STEPS, true},
    {"choices-max", CLI_OPT_CHOICES_MAX, true},
    {"alternatives", CLI_OPT_ALTERNATIVES, true},
    {"load", CLI_OPT_LOAD, true},
    {"max-events", CLI_OPT_MAX_EVENTS, true},
    {"max-time", CLI_OPT_MAX_TIME, true},
    {"tail", CLI_OPT_TAIL, true},
    {"quiet", CLI_OPT_QUIET, false},
};

#define COMMON_RUN_OPTS (CLI_OPT_LOAD | CLI_OPT_MAX_EVENTS | CLI_OPT_MAX_TIME)

#define COMMON_HELP                                                                       \
    "  --load PLUGIN.so      load a shared object and register its protocols and\n"     \
    "                        actions (calls its weft_plugin_init); repeatable\n"        \
    "  --max-events N        stop a run after N dispatched events (N >= 1)\n"        \
    "  --max-time DUR        stop a run at virtual time DUR (e.g. 250ms, 1.5s, 2m)\n"   \
    "  --help                this text\n"

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *help;
    unsigned accepts;
    size_t files_min, files_max;
    int (*main)(const cli_opts *o);
} cli_command;

static const cli_command commands[] = {
    {"run", "run scenarios, one verdict line each",
     "usage: weft run FILE... [--seed N] [--check-determinism] [options]\n"
     "\n"
     "Run each scenario once, with its own seed or --seed N, and print a verdict:\n"
     "  PASS FILE seed=N time=VIRTUAL events=N hash=TRACEHASH\n"
     "A failure prints the failing expectations, the last trace lines and the\n"
     "command that replays it.\n"
     "\n"
     "  --seed N              seed every scenario with N instead of its own\n"
     "  --check-determinism   run each scenario twice; the traces must agree\n"
     "  --save-choices F      on a failure, write the recorded choices to F\n"
     "  --tail N              trace lines printed on a failure (default 20)\n" COMMON_HELP
     "\n"
     "Exit status: 0 all passed, 1 a scenario failed, 2 bad usage or a scenario\n"
     "that does not parse (nothing runs then).\n",
     CLI_OPT_SEED | CLI_OPT_CHECK_DET | CLI_OPT_SAVE_CHOICES | CLI_OPT_TAIL | COMMON_RUN_OPTS, 1,
     SIZE_MAX, cli_cmd_run},
    {"explore", "sweep seeds of one scenario",
     "usage: weft explore FILE [--seeds N] [--from S] [--keep-going] [options]\n"
     "\n"
     "Run FILE with seeds S, S+1, ..., S+N-1 (default: 1000 seeds from 1). On a\n"
     "terminal a progress line shows seeds done, seeds per second and failures.\n"
     "The first failure (every failure with --keep-going) prints the failing\n"
     "expectations, the last trace lines and the command that replays it. A\n"
     "summary line ends the sweep:\n"
     "  PASS explore FILE seeds=N from=S failures=0 distinct=D digest=X time=T rate=R\n"
     "where distinct counts the different trace hashes seen and digest hashes\n"
     "every (seed, trace hash) pair in order: equal digests, equal sweeps.\n"
     "\n"
     "  --seeds N             how many seeds (>= 1, default 1000)\n"
     "  --from S              first seed (default 1)\n"
     "  --keep-going          report every failing seed, not only the first\n"
     "  --check-determinism   run each seed twice; the traces must agree\n"
     "  --save-choices F      write the first failure's recorded choices to F\n"
     "  --tail N              trace lines printed on a failure (default 20)\n"
     "  --quiet               no progress line even on a terminal\n"
     "  --jobs N              run seeds on N threads (1..64, default 1); the\n"
     "                        output is the same as with one\n"
     "  --strategy S          random (default): seeded runs; pct: PCT-style\n"
     "                        priority schedules, one per seed, after a line with\n"
     "                        PCT's bound and the runs it asks for at 95%;\n"
     "                        systematic: every choice sequence depth first within\n"
     "                        --choices-max and --alternatives (--seeds caps the\n"
     "                        runs), with exhausted=yes|no (docs/exploration.md)\n"
     "  --depth D             pct: bug depth (1..64, default 3)\n"
     "  --steps K             pct: questions the change points fall among\n"
     "                        (default: measured by a run of default answers)\n"
     "  --choices-max N       systematic: choices enumerated per run (default 8)\n"
     "  --alternatives A      systematic: answers tried per choice (default 2)\n" COMMON_HELP
     "\n"
     "Ctrl-C ends the sweep after the seed in progress, with its summary.\n"
     "\n"
     "Exit status: 0 no seed failed, 1 a seed failed, 2 bad usage or parse error,\n"
     "130 interrupted before any seed failed.\n",
     CLI_OPT_SEEDS | CLI_OPT_FROM | CLI_OPT_KEEP_GOING | CLI_OPT_CHECK_DET |
         CLI_OPT_SAVE_CHOICES | CLI_OPT_TAIL | CLI_OPT_QUIET | CLI_OPT_JOBS | COMMON_RUN_OPTS |
         CLI_OPT_STRATEGY | CLI_OPT_DEPTH | CLI_OPT_STEPS | CLI_OPT_CHOICES_MAX |
         CLI_OPT_ALTERNATIVES,
     1, 1, cli_cmd_explore_strategy},
    {"replay", "reproduce one run with its full trace",
     "usage: weft replay FILE [--seed S | --choices F | --bytes F] [options]\n"
     "\n"
     "Reproduce one run exactly, from a seed (default: the scenario's) or from a\n"
     "choice file written by --save-choices, and print its full trace, then its\n"
     "failures and its verdict line.\n"
     "\n"
     "  --seed S              the seed of the run\n"
     "  --choices F           replay the recorded choices in F instead\n"
     "  --bytes F             take every choice from the raw bytes of F (a fuzzer\n"
     "                        input: one byte per choice below 256, else four)\n"
     "  --save-choices F      if the run fails, write its recorded choices to F\n"
     "  --strategy pct --depth D --steps K\n"
     "                        the seed makes a PCT schedule (as explore printed)\n" COMMON_HELP
     "\n"
     "Exit status: 0 the run passed, 1 it failed, 2 bad usage or parse error.\n",
     CLI_OPT_SEED | CLI_OPT_CHOICES | CLI_OPT_BYTES | CLI_OPT_SAVE_CHOICES | COMMON_RUN_OPTS |
         CLI_OPT_STRATEGY | CLI_OPT_DEPTH | CLI_OPT_STEPS,
     1, 1, cli_cmd_replay},
    {"trace", "print the trace of one run",
     "usage: weft trace FILE [--seed S | --choices F | --bytes F] [--format FMT] [options]\n"
     "\n"
     "Print the trace of one run on standard output, one line per event:\n"
     "  <virtual time> <kind> <detail>\n"
     "The verdict line goes to standard error.\n"
     "\n"
     "  --seed S              the seed of the run (default: the scenario's)\n"
     "  --choices F           replay the recorded choices in F instead\n"
     "  --bytes F             take every choice from the raw bytes of F\n"
     "  --format FMT          text (default); chrome: Chrome trace event JSON, a\n"
     "                        track per host (chrome://tracing, Perfetto);\n"
     "                        mermaid: a sequence diagram of the conversation\n"
     "  --strategy pct --depth D --steps K\n"
     "                        the seed makes a PCT schedule (as explore printed)\n" COMMON_HELP
     "\n"
     "Exit status: 0 the run passed, 1 it failed, 2 bad usage or parse error.\n",
     CLI_OPT_SEED | CLI_OPT_CHOICES | CLI_OPT_BYTES | CLI_OPT_FORMAT | COMMON_RUN_OPTS |
         CLI_OPT_STRATEGY | CLI_OPT_DEPTH | CLI_OPT_STEPS,
     1, 1, cli_cmd_trace},
    {"shrink", "minimise the choices of a failing run",
     "usage: weft shrink FILE [--seed S | --choices F] [--save-choices OUT] [options]\n"
     "\n"
     "Make the run (from a seed, default the scenario's, or a choice file), which\n"
     "must fail, then minimise its recorded choices while the run still fails the\n"
     "same way (the same first failure, digits aside): delete spans, lower values\n"
     "toward 0 (the default answer). Deterministic. Writes the minimal choice file,\n"
     "prints its whole trace, its failures, a line with the sizes before and after\n"
     "  shrunk FILE: choices N -> M, non-default N -> M, trace lines N -> M, ...\n"
     "and the command that replays it (weft replay FILE --choices OUT).\n"
     "\n"
     "  --seed S              the seed of the run\n"
     "  --choices F           the run's recorded choices instead\n"
     "  --strategy pct --depth D --steps K\n"
     "                        the seed makes a PCT schedule (as explore printed)\n"
     "  --save-choices OUT    the minimal choice file (default: FILE's base name\n"
     "                        with .min.choices, in the current directory)\n" COMMON_HELP
     "\n"
     "Exit status: 0 shrunk, 1 the run passes (nothing to shrink), 2 bad usage,\n"
     "parse error or a run that went wrong.\n",
     CLI_OPT_SEED | CLI_OPT_CHOICES | CLI_OPT_SAVE_CHOICES | COMMON_RUN_OPTS | CLI_OPT_STRATEGY |
         CLI_OPT_DEPTH | CLI_OPT_STEPS,
     1, 1, cli_cmd_shrink},
    {"list", "list the protocols and actions of the registry",
     "usage: weft list [--load PLUGIN.so]...\n"
     "\n"
     "Print the names scenarios can use, in registration order: the builtin\n"
     "protocols and actions, then those of each plugin, one per line as\n"
     "  protocol NAME\n"
     "  action NAME\n"
     "\n"
     "  --load PLUGIN.so      load a shared object and register its protocols and\n"
     "                        actions (calls its weft_plugin_init); repeatable\n"
     "  --help                this text\n",
     CLI_OPT_LOAD, 0, 0, cli_cmd_list},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_main_help(FILE *out)
{
    fprintf(out, "usage: weft COMMAND [options] FILE...\n"
                 "\n"
                 "Run weft scenarios in the deterministic simulator.\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "'weft COMMAND --help' describes a command and its options.\n"
                 "Exit status: 0 all passed, 1 a scenario failed, 2 bad usage or a\n"
                 "scenario that does not parse.\n");
}

static const cli_option *find_option(const char *name, size_t name_len)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        if (strlen(options[i].name) == name_len && memcmp(options[i].name, name, name_len) == 0)
            return &options[i];
    }
    return NULL;
}

/* Apply one option with its value. Returns CLI_EXIT_PASS or a usage error. */
static int apply_option(const cli_command *cmd, const cli_option *opt, const char *value,
                        cli_opts *o)
{
    uint64_t n;
    switch (opt->bit) {
    case CLI_OPT_SEED:
        if (!cli_parse_u64(value, &o->seed))
            return cli_usage_error(cmd->name, "--seed: '%s' is not an unsigned integer", value);
        o->has_seed = true;
        break;
    case CLI_OPT_SEEDS:
        if (!cli_parse_u64(value, &o->seeds) || o->seeds == 0)
            return cli_usage_error(cmd->name, "--seeds: '%s' is not a positive integer", value);
        break;
    case CLI_OPT_FROM:
        if (!cli_parse_u64(value, &o->from))
            return cli_usage_error(cmd->name, "--from: '%s' is not an unsigned integer", value);
        o->has_from = true;
        break;
    case CLI_OPT_KEEP_GOING:
        o->keep_going = true;
        break;
    case CLI_OPT_CHECK_DET:
        o->check_determinism = true;
        break;
    case CLI_OPT_QUIET:
        o->quiet = true;
        break;
    case CLI_OPT_SAVE_CHOICES:
        if (*value == '\0')
            return cli_usage_error(cmd->name, "--save-choices: empty file name");
        o->save_choices = value;
        break;
    case CLI_OPT_CHOICES:
        if (*value == '\0')
            return cli_usage_error(cmd->name, "--choices: empty file name");
        o->choices = value;
        break;
    case CLI_OPT_BYTES:
        if (*value == '\0')
            return cli_usage_error(cmd->name, "--bytes: empty file name");
        o->bytes = value;
        break;
    case CLI_OPT_FORMAT:
        if (strcmp(value, "text") == 0)
            o->format = NULL;
        else if (strcmp(value, "chrome") == 0 || strcmp(value, "mermaid") == 0)
            o->format = value;
        else
            return cli_usage_error(cmd->name, "--format: '%s' is not text, chrome or mermaid",
                                   value);
        break;
    case CLI_OPT_STRATEGY:
        if (strcmp(value, "random") != 0 && strcmp(value, "pct") != 0 &&
            strcmp(value, "systematic") != 0)
            return cli_usage_error(cmd->name, "--strategy: '%s' is not random, pct or systematic",
                                   value);
        o->strategy = value;
        break;
    case CLI_OPT_DEPTH:
        if (!cli_parse_u64(value, &n) || n == 0 || n > WEFT_PCT_DEPTH_MAX)
            return cli_usage_error(cmd->name, "--depth: '%s' is not a bug depth (1..%u)", value,
                                   WEFT_PCT_DEPTH_MAX);
        o->depth = (uint32_t)n;
        break;
    case CLI_OPT_STEPS:
        if (!cli_parse_u64(value, &o->steps) || o->steps == 0)
            return cli_usage_error(cmd->name, "--steps: '%s' is not a positive integer", value);
        break;
    case CLI_OPT_CHOICES_MAX:
        if (!cli_parse_u64(value, &n) || n == 0 || n > WEFT_DFS_CHOICES_MAX)
            return cli_usage_error(cmd->name, "--choices-max: '%s' is not a count (1..%u)", value,
                                   WEFT_DFS_CHOICES_MAX);
        o->choices_max = (size_t)n;
        break;
    case CLI_OPT_ALTERNATIVES:
        if (!cli_parse_u64(value, &n) || n == 0 || n > UINT32_MAX)
            return cli_usage_error(cmd->name, "--alternatives: '%s' is not a positive integer",
                                   value);
        o->alternatives = (uint32_t)n;
        break;
    case CLI_OPT_JOBS:
        if (!cli_parse_u64(value, &n) || n == 0 || n > CLI_JOBS_MAX)
            return cli_usage_error(cmd->name, "--jobs: '%s' is not a number of threads (1..%u)",
                                   value, CLI_JOBS_MAX);
        o->jobs = (size_t)n;
        break;
    case CLI_OPT_LOAD:
        if (*value == '\0')
            return cli_usage_error(cmd->name, "--load: empty file name");
        o->plugins[o->nplugins++] = value;
        break;
    case CLI_OPT_MAX_EVENTS:
        if (!cli_parse_u64(value, &o->max_events) || o->max_events == 0)
            return cli_usage_error(cmd->name, "--max-events: '%s' is not a positive integer",
                                   value);
        o->has_max_events = true;
        break;
    case CLI_OPT_MAX_TIME:
        if (!cli_parse_duration(value, &o->max_time_ns) || o->max_time_ns == 0)
            return cli_usage_error(cmd->name,
                                   "--max-time: '%s' is not a positive duration (e.g. 500ms, 1.5s)",
                                   value);
        o->has_max_time = true;
        break;
    case CLI_OPT_TAIL:
        if (!cli_parse_u64(value, &n) || n > SIZE_MAX)
            return cli_usage_error(cmd->name, "--tail: '%s' is not an unsigned integer", value);
        o->tail_lines = (size_t)n;
        break;
    default:
        return cli_usage_error(cmd->name, "internal error: unhandled option --%s", opt->name);
    }
    return CLI_EXIT_PASS;
}

/* Parse argv[first..argc) for cmd. *help is set when --help was given. */
static int parse_args(const cli_command *cmd, int argc, char **argv, int first, cli_opts *o,
                      bool *help)
{
    bool options_done = false;
    /* --help wins wherever it stands (before "--"), even after a bad option. */
    *help = false;
    for (int i = first; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = true;
            return CLI_EXIT_PASS;
        }
    }
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
            o->files[o->nfiles++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (a[1] != '-')
            return cli_usage_error(cmd->name, "unknown option '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_option *opt = find_option(name, name_len);
        if (opt == NULL || (cmd->accepts & opt->bit) == 0) {
            return cli_usage_error(cmd->name, "unknown option '--%.*s'", (int)name_len, name);
        }
        const char *value = NULL;
        if (opt->takes_value) {
            if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return cli_usage_error(cmd->name, "option '--%s' needs a value", opt->name);
            }
        } else if (eq != NULL) {
            return cli_usage_error(cmd->name, "option '--%s' takes no value", opt->name);
        }
        int rc = apply_option(cmd, opt, value, o);
        if (rc != CLI_EXIT_PASS)
            return rc;
    }
    if (o->nfiles < cmd->files_min)
        return cli_usage_error(cmd->name, "missing scenario FILE");
    if (o->nfiles > cmd->files_max)
        return cmd->files_max == 0
                   ? cli_usage_error(cmd->name, "takes no FILE, got '%s'", o->files[0])
                   : cli_usage_error(cmd->name, "takes one scenario FILE, got %zu", o->nfiles);
    if ((o->has_seed ? 1 : 0) + (o->choices ? 1 : 0) + (o->bytes ? 1 : 0) > 1)
        return cli_usage_error(cmd->name, "--seed, --choices and --bytes exclude each other");
    return CLI_EXIT_PASS;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            for (size_t i = 0; i < NCOMMANDS; i++) {
                if (strcmp(commands[i].name, argv[2]) == 0) {
                    fputs(commands[i].help, stdout);
                    return CLI_EXIT_PASS;
                }
            }
            return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        }
        print_main_help(stdout);
        return CLI_EXIT_PASS;
    }
    const cli_command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    }
    if (cmd == NULL) {
        if (name[0] == '-')
            return cli_usage_error(NULL, "unknown option '%s'", name);
        return cli_usage_error(NULL, "unknown command '%s'", name);
    }
    cli_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = cmd->name;
    o.seeds = CLI_SEEDS_DEFAULT;
    o.from = 1;
    o.tail_lines = CLI_TAIL_LINES_DEFAULT;
    o.jobs = 1;
    o.depth = 3;
    o.strategy_hook = cli_strategy_apply;
    /* argv holds at most argc entries of each kind. */
    o.files = calloc((size_t)argc, sizeof *o.files);
    o.plugins = calloc((size_t)argc, sizeof *o.plugins);
    if (o.files == NULL || o.plugins == NULL) {
        fprintf(stderr, "weft: out of memory\n");
        free(o.files);
        free(o.plugins);
        return CLI_EXIT_USAGE;
    }
    bool help = false;
    int rc = parse_args(cmd, argc, argv, 2, &o, &help);
    if (rc == CLI_EXIT_PASS) {
        if (help)
            fputs(cmd->help, stdout);
        else
            rc = cmd->main(&o);
    }
    free(o.files);
    free(o.plugins);
    return rc;
}
