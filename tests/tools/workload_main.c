/* workload_main.c: prints the trace hash of the determinism workload
 * (tests/tools/workload.h) for a range of seeds, one "seed hash" line each,
 * then a "total" line folding them all. scripts/determinism.sh builds this
 * with several compilers and optimisation levels and compares the output.
 *
 *   workload [SEEDS] [FIRST]   defaults: 200 seeds from 0
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/workload.h"

int main(int argc, char **argv)
{
    unsigned long long seeds = argc > 1 ? strtoull(argv[1], NULL, 10) : 200;
    unsigned long long first = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
    uint64_t total = UINT64_C(0xcbf29ce484222325);
    weft_sim_config jitter;
    weft_sim_config_default(&jitter);
    jitter.jitter_ns = WL_MS + WL_MS / 2;
    for (unsigned long long seed = first; seed < first + seeds; seed++) {
        uint64_t h = wl_run(seed);
        uint64_t hj = wl_run_with(weft_choice_seeded(seed), true, &jitter);
        if (h == 0 || hj == 0) {
            fprintf(stderr, "workload: seed %llu: setup failed\n", seed);
            return 1;
        }
        printf("%llu %016" PRIx64 " %016" PRIx64 "\n", seed, h, hj);
        total = (total ^ h) * UINT64_C(0x100000001b3);
        total = (total ^ hj) * UINT64_C(0x100000001b3);
    }
    printf("total %016" PRIx64 "\n", total);
    return 0;
}
