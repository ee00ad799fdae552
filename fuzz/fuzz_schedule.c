/* fuzz_schedule.c: a bundled scenario run with the fuzzer's input as its
 * choice source, so the fuzzer steers event orderings, write splits,
 * latencies and faults. A violated expectation or invariant is a crash.
 *
 * Scenarios: every .scn file of scenarios/ (the planted bugs of scenarios/bugs/ are
 * not in the default set: they fail by design), in byte order of their
 * names; the first input byte picks one (modulo their number) and the rest
 * is choice material for weft_choice_bytes. With WEFT_FUZZ_SCENARIO=PATH the
 * target runs that one scenario and the whole input is choice material, so
 * a crash file replays as it is:
 *     weft replay PATH --bytes crash-FILE
 * The scenario directory is $WEFT_SCENARIO_DIR, else ./scenarios, else
 * found from the executable's path ($OUT/scenarios, or up to three
 * directories above it).
 *
 * Each input runs twice; the two runs must agree (verdict and trace hash):
 * a replay is only useful if it reproduces the run. On a failure the target
 * prints the verdict, writes the choice bytes the scenario saw to
 * schedule-<scenario>-<trace hash>.bytes (in $WEFT_FUZZ_ARTIFACTS, else the
 * current directory) and prints the command that replays it, then aborts.
 * The registry has the built-in protocols and the planted-bug protocols.
 */
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft/explore.h"
#include "weft/scenario.h"
#include "weft/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SCENARIOS_MAX 64

typedef struct loaded {
    char *path;
    weft_scenario *sc;
} loaded;

static loaded scenarios[SCENARIOS_MAX];
static size_t nscenarios;
static weft_registry *schedule_registry;
static bool pinned;

static void schedule_die(const char *fmt, const char *arg)
{
    fprintf(stderr, "fuzz_schedule: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    abort();
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int scn_only(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 4 && strcmp(e->d_name + n - 4, ".scn") == 0;
}

static void load_one(const char *path)
{
    if (nscenarios == SCENARIOS_MAX)
        return;
    weft_diags d;
    weft_diags_init(&d);
    weft_scenario *sc = NULL;
    if (weft_scenario_load(path, &sc, &d) != WEFT_OK ||
        weft_scenario_check(sc, schedule_registry, &d) != WEFT_OK) {
        weft_diags_write(&d, stderr);
        schedule_die("a bundled scenario does not load: %s", path);
    }
    weft_diags_clear(&d);
    scenarios[nscenarios].path = strdup(path);
    scenarios[nscenarios].sc = sc;
    nscenarios++;
}

static const char *scenario_dir(char *buf, size_t cap)
{
    const char *env = getenv("WEFT_SCENARIO_DIR");
    if (env && *env)
        return env;
    if (is_dir("scenarios"))
        return "scenarios";
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            /* $OUT/scenarios, build/fuzz-clang/.., build/<cfg>/fuzz/.. */
            static const char *const up[] = {"", "/..", "/../..", "/../../.."};
            for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
                snprintf(buf, cap, "%s%s/scenarios", exe, up[i]);
                if (is_dir(buf))
                    return buf;
            }
        }
    }
    return "scenarios";
}

static void schedule_init(void)
{
    schedule_registry = weft_registry_new();
    if (!schedule_registry || weft_registry_add_builtins(schedule_registry) != WEFT_OK ||
        weft_bugs_register(schedule_registry) != WEFT_OK)
        schedule_die("cannot build the schedule_registry%s", "");
    const char *one = getenv("WEFT_FUZZ_SCENARIO");
    if (one && *one) {
        pinned = true;
        load_one(one);
        return;
    }
    char buf[PATH_MAX + 32];
    const char *dir = scenario_dir(buf, sizeof buf);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, scn_only, by_name);
    if (n <= 0)
        schedule_die("no scenario found in %s (set WEFT_SCENARIO_DIR)", dir);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        load_one(path);
        free(names[i]);
    }
    free(names);
}

static void save_bytes(const char *scn_path, const uint8_t *bytes, size_t len, uint64_t hash)
{
    const char *dir = getenv("WEFT_FUZZ_ARTIFACTS");
    const char *base = strrchr(scn_path, '/');
    base = base ? base + 1 : scn_path;
    char name[PATH_MAX + 128];
    snprintf(name, sizeof name, "%s%sschedule-%.*s-%016" PRIx64 ".bytes", dir && *dir ? dir : "",
             dir && *dir ? "/" : "", (int)(strlen(base) > 4 ? strlen(base) - 4 : strlen(base)),
             base, hash);
    FILE *f = fopen(name, "wb");
    if (!f || (len && fwrite(bytes, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "fuzz_schedule: cannot write %s\n", name);
        return;
    }
    fprintf(stderr, "fuzz_schedule: replay with: weft replay %s --bytes %s\n", scn_path, name);
}

static void run_once(const loaded *l, const uint8_t *bytes, size_t len, weft_run_result *res)
{
    weft_run_options opt;
    weft_run_options_init(&opt);
    opt.choices = weft_choice_bytes(bytes, len);
    if (!opt.choices)
        schedule_die("out of memory%s", "");
    int rc = weft_scenario_run(l->sc, schedule_registry, &opt, res);
    if (rc == WEFT_ENOMEM)
        schedule_die("out of memory in the run of %s", l->path);
    if (rc != WEFT_OK)
        schedule_die("the runner returned an error for %s", l->path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!schedule_registry)
        schedule_init();
    const loaded *l = &scenarios[0];
    const uint8_t *bytes = data;
    size_t len = size;
    if (!pinned) {
        if (size == 0)
            return 0;
        l = &scenarios[data[0] % nscenarios];
        bytes = data + 1;
        len = size - 1;
    }
    weft_run_result a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    run_once(l, bytes, len, &a);
    run_once(l, bytes, len, &b);
    bool same = a.passed == b.passed && a.trace_hash == b.trace_hash && a.events == b.events &&
                a.nchoices == b.nchoices;
    if (a.passed && same) {
        weft_run_result_clear(&a);
        weft_run_result_clear(&b);
        return 0;
    }
    if (!same)
        fprintf(stderr,
                "fuzz_schedule: %s: two runs on the same choices differ (trace hash %016" PRIx64
                " / %016" PRIx64 ", events %" PRIu64 " / %" PRIu64 ")\n",
                l->path, a.trace_hash, b.trace_hash, a.events, b.events);
    if (!a.passed) {
        fprintf(stderr,
                "fuzz_schedule: %s failed under the fuzzer's choices (%zu choices, %" PRIu64
                " events, trace hash %016" PRIx64 "):\n",
                l->path, a.nchoices, a.events, a.trace_hash);
        for (size_t i = 0; i < a.nfailures; i++)
            fprintf(stderr, "  %s\n", a.failures[i]);
        if (a.nfailures == 0 && a.verdict)
            fprintf(stderr, "  %s\n", a.verdict);
    }
    save_bytes(l->path, bytes, len, a.trace_hash);
    weft_run_result_clear(&a);
    weft_run_result_clear(&b);
    abort();
}
