/* fuzz_kv.c: let a fuzzer steer a kv scenario.
 *
 * The fuzzer's input is used as the run's choice material
 * (weft_choice_bytes: one byte for a choice among at most 256 answers, four
 * bytes little-endian above, 0 once the bytes run out), so coverage-guided
 * mutation hunts for the latencies, splits and orderings that break the
 * scenario. The scenario is $KV_FUZZ_SCENARIO (default
 * examples/kv/bugs/unordered.scn); the registry has weft's built-in protocols
 * and this example's, registered by calling the plugin's init directly (the
 * plugin is linked in, not loaded).
 *
 * A failing run writes its bytes to $KV_FUZZ_ARTIFACTS (default: the current
 * directory) as kv-<trace hash>.bytes, prints the verdict and the command that
 * replays it with the weft command, and aborts, so that libFuzzer keeps the
 * input as a crash. Built with libFuzzer (make -C examples/kv fuzz) or with
 * weft's replay main (fuzz/replay_main.c) to run saved inputs under gcc.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/scenario.h"
#include "weft/sim.h"

int weft_plugin_init(weft_registry *reg);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static weft_registry *kv_registry;
static weft_scenario *kv_scenario;
static const char *kv_path;

static void kv_setup(void)
{
    kv_path = getenv("KV_FUZZ_SCENARIO");
    if (kv_path == NULL || kv_path[0] == '\0')
        kv_path = "examples/kv/bugs/unordered.scn";
    kv_registry = weft_registry_new();
    if (kv_registry == NULL || weft_registry_add_builtins(kv_registry) != WEFT_OK ||
        weft_plugin_init(kv_registry) != WEFT_OK) {
        fprintf(stderr, "fuzz_kv: cannot build the registry\n");
        abort();
    }
    weft_diags d;
    weft_diags_init(&d);
    if (weft_scenario_load(kv_path, &kv_scenario, &d) != WEFT_OK ||
        weft_scenario_check(kv_scenario, kv_registry, &d) != WEFT_OK) {
        weft_diags_write(&d, stderr);
        fprintf(stderr, "fuzz_kv: %s does not load (set KV_FUZZ_SCENARIO)\n", kv_path);
        abort();
    }
    weft_diags_clear(&d);
}

static void save_bytes(const uint8_t *data, size_t size, uint64_t hash, char *path, size_t n)
{
    const char *dir = getenv("KV_FUZZ_ARTIFACTS");
    snprintf(path, n, "%s%skv-%016" PRIx64 ".bytes", dir ? dir : "", dir ? "/" : "", hash);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size) {
        fprintf(stderr, "fuzz_kv: cannot write %s\n", path);
        path[0] = '\0';
    }
    if (f != NULL)
        fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (kv_registry == NULL)
        kv_setup();
    weft_run_options opt;
    weft_run_options_init(&opt);
    opt.choices = weft_choice_bytes(data, size);
    weft_run_result res;
    int rc = weft_scenario_run(kv_scenario, kv_registry, &opt, &res);
    if (rc != WEFT_OK) {
        fprintf(stderr, "fuzz_kv: the run went wrong: %s\n", weft_strerror(rc));
        abort();
    }
    if (!res.passed) {
        char path[512];
        save_bytes(data, size, res.trace_hash, path, sizeof path);
        fprintf(stderr, "fuzz_kv: %s: %s\n", kv_path, res.verdict);
        if (path[0])
            fprintf(stderr, "replay: weft replay %s --load kv.so --bytes %s\n", kv_path, path);
        weft_run_result_clear(&res);
        abort();
    }
    weft_run_result_clear(&res);
    return 0;
}
