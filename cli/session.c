/* session.c: the glue between the weft command and the scenario library.
 *
 * A session is the registry (builtins plus every --load plugin) and the parsed
 * scenarios of the command line. Parsing happens for every file before any
 * run, so a file that does not parse stops the command with all diagnostics
 * printed and nothing run. Every run is reproducible from a cli_source (a seed
 * or a choice file) plus the --load and cap options, and every failure report
 * ends with the one command that replays it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "weft/explore.h"

int cli_session_open(const cli_opts *o, cli_session *s)
{
    memset(s, 0, sizeof *s);
    s->reg = weft_registry_new();
    if (s->reg == NULL) {
        fprintf(stderr, "weft %s: out of memory\n", o->cmd);
        return CLI_EXIT_USAGE;
    }
    int err = weft_registry_add_builtins(s->reg);
    if (err == WEFT_OK)
        err = weft_bugs_register(s->reg); /* the planted bugs of scenarios/bugs/ */
    if (err != WEFT_OK) {
        fprintf(stderr, "weft %s: registering the builtin protocols: %s\n", o->cmd,
                weft_strerror(err));
        cli_session_close(s);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < o->nplugins; i++) {
        char msg[512] = "";
        err = weft_registry_load_plugin(s->reg, o->plugins[i], msg, sizeof msg);
        if (err != WEFT_OK) {
            fprintf(stderr, "weft %s: --load %s: %s\n", o->cmd, o->plugins[i],
                    msg[0] ? msg : weft_strerror(err));
            cli_session_close(s);
            return CLI_EXIT_USAGE;
        }
    }
    s->scenarios = calloc(o->nfiles ? o->nfiles : 1, sizeof *s->scenarios);
    if (s->scenarios == NULL) {
        fprintf(stderr, "weft %s: out of memory\n", o->cmd);
        cli_session_close(s);
        return CLI_EXIT_USAGE;
    }
    s->count = o->nfiles;
    bool ok = true;
    for (size_t i = 0; i < o->nfiles; i++) {
        weft_diags diags;
        weft_diags_init(&diags);
        err = weft_scenario_load(o->files[i], &s->scenarios[i], &diags);
        /* Names of protocols and actions resolve against the registry with
         * its plugins: an unknown one is a positioned error like a syntax
         * error, and the file does not run. */
        if (err == WEFT_OK)
            err = weft_scenario_check(s->scenarios[i], s->reg, &diags);
        if (weft_diags_write(&diags, stderr) != WEFT_OK)
            err = err == WEFT_OK ? WEFT_EIO : err;
        if (err != WEFT_OK && diags.count == 0)
            fprintf(stderr, "%s: %s\n", o->files[i], weft_strerror(err));
        weft_diags_clear(&diags);
        if (err != WEFT_OK) {
            weft_scenario_free(s->scenarios[i]);
            s->scenarios[i] = NULL;
            ok = false;
        }
    }
    if (!ok) {
        cli_session_close(s);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_PASS;
}

void cli_session_close(cli_session *s)
{
    if (s->scenarios != NULL) {
        for (size_t i = 0; i < s->count; i++)
            weft_scenario_free(s->scenarios[i]);
        free(s->scenarios);
    }
    weft_registry_free(s->reg);
    memset(s, 0, sizeof *s);
}

/* A choice file written by the command names its seed: "# seed N". */
static bool seed_hint(FILE *f, uint64_t *seed)
{
    char line[256];
    bool found = false;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] != '#')
            break;
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (strncmp(line, "# seed ", 7) == 0 && cli_parse_u64(line + 7, seed)) {
            found = true;
            break;
        }
    }
    rewind(f);
    return found;
}

/* A fuzzer's input: every byte is choice material (weft_choice_bytes). */
static int load_bytes(const cli_opts *o, cli_source *src)
{
    FILE *f = fopen(o->bytes, "rb");
    if (f == NULL) {
        fprintf(stderr, "weft %s: --bytes %s: cannot open\n", o->cmd, o->bytes);
        return CLI_EXIT_USAGE;
    }
    src->bytes = malloc(CLI_BYTES_MAX);
    if (src->bytes == NULL) {
        fclose(f);
        fprintf(stderr, "weft %s: out of memory\n", o->cmd);
        return CLI_EXIT_USAGE;
    }
    src->nbytes = fread(src->bytes, 1, CLI_BYTES_MAX, f);
    bool too_big = src->nbytes == CLI_BYTES_MAX && fgetc(f) != EOF;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || too_big) {
        fprintf(stderr, "weft %s: --bytes %s: %s\n", o->cmd, o->bytes,
                bad ? "read error" : "larger than 16 MiB");
        free(src->bytes);
        src->bytes = NULL;
        return CLI_EXIT_USAGE;
    }
    src->from_file = true;
    src->from_bytes = true;
    src->choices_path = o->bytes;
    return CLI_EXIT_PASS;
}

int cli_source_load(const cli_opts *o, const weft_scenario *sc, cli_source *src)
{
    memset(src, 0, sizeof *src);
    src->seed = o->has_seed ? o->seed : weft_scenario_seed(sc);
    if (o->bytes != NULL)
        return load_bytes(o, src);
    if (o->choices == NULL)
        return o->strategy_hook ? o->strategy_hook(o, src) : CLI_EXIT_PASS;
    FILE *f = fopen(o->choices, "r");
    if (f == NULL) {
        fprintf(stderr, "weft %s: --choices %s: cannot open\n", o->cmd, o->choices);
        return CLI_EXIT_USAGE;
    }
    src->seed_known = seed_hint(f, &src->seed);
    char msg[256] = "";
    int err = weft_choice_load(f, &src->values, &src->nvalues, msg, sizeof msg);
    fclose(f);
    if (err != WEFT_OK) {
        fprintf(stderr, "weft %s: --choices %s: %s\n", o->cmd, o->choices,
                msg[0] ? msg : weft_strerror(err));
        return CLI_EXIT_USAGE;
    }
    src->from_file = true;
    src->choices_path = o->choices;
    return CLI_EXIT_PASS;
}

void cli_source_clear(cli_source *src)
{
    weft_free(src->values);
    free(src->bytes);
    memset(src, 0, sizeof *src);
}

void cli_capture_clear(cli_capture *cap)
{
    free(cap->values);
    free(cap->bounds);
    free(cap->labels);
    memset(cap, 0, sizeof *cap);
}

static void capture_add(cli_capture *cap, uint32_t value, uint32_t bound, const char *label)
{
    if (cap->oom)
        return;
    if (cap->len == cap->cap) {
        size_t n = cap->cap ? cap->cap * 2 : 64;
        uint32_t *v = realloc(cap->values, n * sizeof *v);
        if (v != NULL)
            cap->values = v;
        uint32_t *b = realloc(cap->bounds, n * sizeof *b);
        if (b != NULL)
            cap->bounds = b;
        const char **l = realloc(cap->labels, n * sizeof *l);
        if (l != NULL)
            cap->labels = l;
        if (v == NULL || b == NULL || l == NULL) {
            cap->oom = true;
            return;
        }
        cap->cap = n;
    }
    cap->values[cap->len] = value;
    cap->bounds[cap->len] = bound;
    cap->labels[cap->len] = label ? label : "";
    cap->len++;
}

/* A choice source that asks an inner one and captures every answer with its
 * label. The run owns it (and through it the inner source); the capture is the
 * command's and outlives it. */
typedef struct capture_choice {
    weft_choice base; /* first: the run sees a weft_choice */
    weft_choice *inner;
    cli_capture *cap;
} capture_choice;

static uint32_t capture_choose(weft_choice *c, uint32_t n, const char *label)
{
    capture_choice *cc = (capture_choice *)c;
    uint32_t v = weft_choose(cc->inner, n, label);
    capture_add(cc->cap, v, n, label);
    return v;
}

static void capture_free(weft_choice *c)
{
    capture_choice *cc = (capture_choice *)c;
    weft_choice_free(cc->inner);
    weft_free(cc);
}

static const weft_choice_ops capture_ops = {capture_choose, capture_free};

static weft_choice *capture_new(weft_choice *inner, cli_capture *cap)
{
    if (inner == NULL)
        return NULL;
    capture_choice *cc = weft_calloc(1, sizeof *cc);
    if (cc == NULL) {
        weft_choice_free(inner);
        return NULL;
    }
    cc->base.ops = &capture_ops;
    cc->inner = inner;
    cc->cap = cap;
    return &cc->base;
}

int cli_run(const cli_opts *o, const cli_session *s, size_t index, const cli_source *src,
            bool keep_trace, weft_trace_sink sink, void *sink_ctx, cli_capture *cap,
            weft_run_result *res)
{
    weft_run_options ro;
    weft_run_options_init(&ro);
    memset(res, 0, sizeof *res);
    /* The seed goes to the run in every case it is known: it names the run in
     * the trace, also when the choices come from a file. */
    if (!src->from_file || src->seed_known) {
        ro.seed = src->seed;
        ro.use_seed = true;
    }
    if (!src->from_file && src->make_choices != NULL) {
        ro.choices = src->make_choices(src->make_ctx, src->seed);
        if (ro.choices == NULL)
            return WEFT_ENOMEM;
    } else if (src->from_bytes) {
        ro.choices = weft_choice_bytes(src->bytes, src->nbytes);
        if (ro.choices == NULL)
            return WEFT_ENOMEM;
    } else if (src->from_file) {
        ro.choices = weft_choice_replay(src->values, src->nvalues);
        if (ro.choices == NULL)
            return WEFT_ENOMEM;
    }
    if (cap != NULL) {
        /* The source made above, or the generator the run would have
         * seeded itself. */
        weft_choice *inner = ro.choices ? ro.choices : weft_choice_seeded(src->seed);
        ro.choices = capture_new(inner, cap);
        if (ro.choices == NULL)
            return WEFT_ENOMEM;
    }
    ro.keep_trace = keep_trace;
    ro.sink = sink;
    ro.sink_ctx = sink_ctx;
    if (o->has_max_events)
        ro.max_events = o->max_events;
    if (o->has_max_time)
        ro.max_time_ns = o->max_time_ns;
    int err = weft_scenario_run(s->scenarios[index], s->reg, &ro, res);
    if (err != WEFT_OK)
        weft_run_result_clear(res);
    return err;
}

static void print_source(FILE *out, const cli_source *src)
{
    if (src->from_file)
        fprintf(out, "%s=%s", src->from_bytes ? "bytes" : "choices", src->choices_path);
    else
        fprintf(out, "seed=%llu", (unsigned long long)src->seed);
    if (!src->from_file && src->make_choices != NULL && src->strategy != NULL)
        fprintf(out, " strategy=%s", src->strategy);
}

void cli_print_verdict(FILE *out, const char *file, const cli_source *src,
                       const weft_run_result *res, bool nondeterministic)
{
    char t[48];
    cli_format_time(res->elapsed_ns, t, sizeof t);
    fprintf(out, "%s %s ", res->passed && !nondeterministic ? "PASS" : "FAIL", file);
    print_source(out, src);
    fprintf(out, " time=%s events=%llu hash=%016llx%s\n", t, (unsigned long long)res->events,
            (unsigned long long)res->trace_hash, nondeterministic ? " nondeterministic" : "");
}

/* A word of a shell command: as is when it is made of safe characters only,
 * else in single quotes (a quote inside becomes '\''). */
static void shell_word(FILE *out, const char *w)
{
    bool safe = *w != '\0';
    for (const char *p = w; *p && safe; p++)
        safe = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=+-@%,",
                      *p) != NULL;
    if (safe) {
        fputs(w, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = w; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

void cli_print_replay_command(FILE *out, const cli_opts *o, const char *file,
                              const cli_source *src)
{
    fputs("weft replay ", out);
    shell_word(out, file);
    for (size_t i = 0; i < o->nplugins; i++) {
        fputs(" --load ", out);
        shell_word(out, o->plugins[i]);
    }
    if (o->has_max_events)
        fprintf(out, " --max-events %llu", (unsigned long long)o->max_events);
    if (o->has_max_time)
        fprintf(out, " --max-time %lldns", (long long)o->max_time_ns);
    if (src->from_file) {
        fprintf(out, " --%s ", src->from_bytes ? "bytes" : "choices");
        shell_word(out, src->choices_path);
        fputc('\n', out);
    } else if (src->make_choices != NULL && src->print_replay != NULL) {
        src->print_replay(src->make_ctx, src->seed, out);
        fputc('\n', out);
    } else {
        fprintf(out, " --seed %llu\n", (unsigned long long)src->seed);
    }
}

void cli_print_trace(FILE *out, const weft_run_result *res, size_t tail_lines)
{
    size_t total = cli_count_lines(res->trace_text, res->trace_len);
    size_t skip = tail_lines < total ? total - tail_lines : 0;
    size_t pos = 0, n = 0, len;
    const char *line;
    while (cli_next_line(res->trace_text, res->trace_len, &pos, &line, &len)) {
        if (n++ < skip)
            continue;
        fprintf(out, "  %.*s\n", (int)len, line);
    }
}

void cli_print_failure(FILE *out, const cli_opts *o, const char *file, const cli_source *src,
                       const weft_run_result *res)
{
    if (res->nfailures == 0 && res->verdict != NULL)
        fprintf(out, "  %s\n", res->verdict);
    for (size_t i = 0; i < res->nfailures; i++)
        fprintf(out, "  %s\n", res->failures[i]);
    if (res->trace_text != NULL && o->tail_lines > 0) {
        size_t total = cli_count_lines(res->trace_text, res->trace_len);
        size_t shown = o->tail_lines < total ? o->tail_lines : total;
        fprintf(out, "last %zu of %zu trace lines:\n", shown, total);
        cli_print_trace(out, res, o->tail_lines);
    }
    fprintf(out, "replay: ");
    cli_print_replay_command(out, o, file, src);
}

int cli_save_choices(const char *path, const char *file, const cli_source *src,
                     const cli_capture *cap)
{
    if (cap->oom) {
        fprintf(stderr, "weft: out of memory capturing the choices for %s\n", path);
        return WEFT_ENOMEM;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "weft: cannot write choice file %s\n", path);
        return WEFT_EIO;
    }
    fprintf(f, "# scenario %s\n", file);
    if (!src->from_file || src->seed_known)
        fprintf(f, "# seed %llu\n", (unsigned long long)src->seed);
    /* The library owns the file format: the capture is replayed through a
     * recording source (every value is below its bound, so each answer is
     * the captured one) and weft_choice_save writes the record. */
    weft_choice *c = weft_choice_replay(cap->values, cap->len);
    int err = WEFT_ENOMEM;
    if (c != NULL) {
        weft_choice_record(c, true);
        for (size_t i = 0; i < cap->len; i++)
            (void)weft_choose(c, cap->bounds[i], cap->labels[i]);
        err = weft_choice_save(c, f);
        weft_choice_free(c);
    }
    if (fclose(f) != 0 && err == WEFT_OK)
        err = WEFT_EIO;
    if (err != WEFT_OK)
        fprintf(stderr, "weft: writing choice file %s: %s\n", path, weft_strerror(err));
    return err;
}

void cli_print_saved(FILE *out, const cli_opts *o, const char *file, const cli_source *src)
{
    cli_source saved = *src;
    saved.from_file = true;
    saved.from_bytes = false;
    saved.choices_path = o->save_choices;
    fprintf(out, "choices saved to %s: ", o->save_choices);
    cli_print_replay_command(out, o, file, &saved);
}

int cli_report_failure(FILE *out, const cli_opts *o, const cli_session *s, size_t index,
                       const cli_source *src, const weft_run_result *res, bool save)
{
    /* Rerun with the trace kept (and the choices captured when they are to
     * be saved): the rerun must reproduce the run, which checks determinism
     * on every failure for free. */
    const char *file = o->files[index];
    cli_capture cap;
    memset(&cap, 0, sizeof cap);
    weft_run_result again;
    int err = cli_run(o, s, index, src, true, NULL, NULL, save ? &cap : NULL, &again);
    if (err != WEFT_OK) {
        fprintf(stderr, "weft %s: %s: rerunning for the report: %s\n", o->cmd, file,
                weft_strerror(err));
        cli_capture_clear(&cap);
        return CLI_EXIT_USAGE;
    }
    int rc = CLI_EXIT_FAIL;
    if (again.trace_hash != res->trace_hash || again.passed != res->passed) {
        fprintf(out, "  NONDETERMINISTIC: the rerun for this report %s with hash %016llx\n",
                again.passed ? "passed" : "failed", (unsigned long long)again.trace_hash);
    }
    cli_print_failure(out, o, file, src, &again);
    if (save) {
        if (cli_save_choices(o->save_choices, file, src, &cap) != WEFT_OK)
            rc = CLI_EXIT_USAGE;
        else
            cli_print_saved(out, o, file, src);
    }
    cli_capture_clear(&cap);
    weft_run_result_clear(&again);
    return rc;
}

/* The first line where two traces differ, printed with its number. */
static void print_divergence(FILE *out, const weft_run_result *a, const weft_run_result *b)
{
    size_t pa = 0, pb = 0, la = 0, lb = 0, n = 0;
    const char *sa = NULL, *sb = NULL;
    for (;;) {
        bool ha = cli_next_line(a->trace_text, a->trace_len, &pa, &sa, &la);
        bool hb = cli_next_line(b->trace_text, b->trace_len, &pb, &sb, &lb);
        n++;
        if (!ha && !hb) {
            fprintf(out, "  the trace texts are equal; only the hashes differ\n");
            return;
        }
        if (ha != hb || la != lb || memcmp(sa, sb, la) != 0) {
            fprintf(out, "  first difference at trace line %zu (runs 3 and 4, traces kept):\n", n);
            if (ha)
                fprintf(out, "    run 3: %.*s\n", (int)la, sa);
            else
                fprintf(out, "    run 3: (trace ended)\n");
            if (hb)
                fprintf(out, "    run 4: %.*s\n", (int)lb, sb);
            else
                fprintf(out, "    run 4: (trace ended)\n");
            return;
        }
    }
}

int cli_run_twice(FILE *out, const cli_opts *o, const cli_session *s, size_t index,
                  const cli_source *src, weft_run_result *res)
{
    /* Two runs without trace text: the hash covers every trace line, and
     * keeping the text costs several times the run. Only a divergence pays
     * for two more runs with the text kept, to name the first differing line. */
    weft_run_result second, t1, t2;
    int err = cli_run(o, s, index, src, false, NULL, NULL, NULL, res);
    if (err == WEFT_OK) {
        err = cli_run(o, s, index, src, false, NULL, NULL, NULL, &second);
        if (err != WEFT_OK)
            weft_run_result_clear(res);
    }
    if (err != WEFT_OK) {
        fprintf(stderr, "weft %s: %s: %s\n", o->cmd, o->files[index], weft_strerror(err));
        return CLI_EXIT_USAGE;
    }
    bool same = res->trace_hash == second.trace_hash && res->passed == second.passed &&
                res->events == second.events && res->elapsed_ns == second.elapsed_ns;
    if (!same) {
        fprintf(out, "NONDETERMINISTIC %s ", o->files[index]);
        print_source(out, src);
        fprintf(out, " hash=%016llx hash=%016llx\n", (unsigned long long)res->trace_hash,
                (unsigned long long)second.trace_hash);
        err = cli_run(o, s, index, src, true, NULL, NULL, NULL, &t1);
        if (err == WEFT_OK) {
            err = cli_run(o, s, index, src, true, NULL, NULL, NULL, &t2);
            if (err != WEFT_OK)
                weft_run_result_clear(&t1);
        }
        if (err != WEFT_OK) {
            fprintf(out, "  the traced reruns failed: %s\n", weft_strerror(err));
        } else {
            if (t1.trace_len == t2.trace_len &&
                (t1.trace_len == 0 || memcmp(t1.trace_text, t2.trace_text, t1.trace_len) == 0))
                fprintf(out, "  two more runs with the trace kept agreed (hash %016llx): the "
                             "divergence did not reproduce\n",
                        (unsigned long long)t1.trace_hash);
            else
                print_divergence(out, &t1, &t2);
            weft_run_result_clear(&t1);
            weft_run_result_clear(&t2);
        }
    }
    weft_run_result_clear(&second);
    return same ? CLI_EXIT_PASS : CLI_EXIT_FAIL;
}
