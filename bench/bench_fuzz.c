/* Fuzz target throughput: executions per second of each fuzz target's
 * LLVMFuzzerTestOneInput, built like the replay build (no libFuzzer, no
 * sanitizers: the build's own flags). Prints one line per target:
 *   bench: fuzz.<target>.execs_per_s <n> execs/s
 *
 * Inputs: the committed seed corpus of each target (fuzz/corpus/<name>, read
 * from the current directory, as `make bench` runs from the repository
 * root), plus mutants of each file made with a fixed-seed generator (a few
 * bytes overwritten, inserted or cut), so the set is the same on every run.
 * The set is executed in order, round after round, for a fixed number of
 * executions per target; the figure is executions over elapsed wall time.
 *
 * The four targets are compiled into this file: each is #included with its
 * entry point renamed.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LLVMFuzzerTestOneInput bench_fuzz_defer_one
#include "fuzz/fuzz_defer.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput bench_fuzz_framing_one
#include "fuzz/fuzz_framing.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput bench_fuzz_parser_one
#include "fuzz/fuzz_parser.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput bench_fuzz_schedule_one
#include "fuzz/fuzz_schedule.c"
#undef LLVMFuzzerTestOneInput

typedef int (*entry_fn)(const uint8_t *data, size_t size);

typedef struct input {
    uint8_t *p;
    size_t n;
} input;

typedef struct input_set {
    input *items;
    size_t count, cap;
} input_set;

static uint64_t bench_rng = 0x5eed;

static uint64_t bench_next(void)
{
    uint64_t z = (bench_rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void set_add(input_set *s, uint8_t *p, size_t n)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->items = realloc(s->items, s->cap * sizeof *s->items);
        if (!s->items) {
            fprintf(stderr, "bench_fuzz: out of memory\n");
            exit(1);
        }
    }
    s->items[s->count].p = p;
    s->items[s->count].n = n;
    s->count++;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* A mutant: up to 4 edits (overwrite, insert, cut) of a copy of p. */
static void add_mutant(input_set *s, const uint8_t *p, size_t n)
{
    uint8_t *m = malloc(n + 8);
    if (!m)
        return;
    memcpy(m, p, n);
    size_t len = n;
    int edits = 1 + (int)(bench_next() % 4);
    for (int e = 0; e < edits; e++) {
        unsigned op = (unsigned)(bench_next() % 3);
        size_t at = len ? (size_t)(bench_next() % len) : 0;
        if (op == 0 && len) {
            m[at] = (uint8_t)bench_next();
        } else if (op == 1 && len + 1 <= n + 8) {
            memmove(m + at + 1, m + at, len - at);
            m[at] = (uint8_t)bench_next();
            len++;
        } else if (op == 2 && len) {
            memmove(m + at, m + at + 1, len - at - 1);
            len--;
        }
    }
    set_add(s, m, len);
}

static int by_name_bench(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_set(const char *name, int mutants, input_set *s)
{
    char dir[256];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", name);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name_bench);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char path[600];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            size_t len = 0;
            uint8_t *p = read_file(path, &len);
            if (p) {
                set_add(s, p, len);
                for (int k = 0; k < mutants; k++)
                    add_mutant(s, p, len);
            }
        }
        free(names[i]);
    }
    free(names);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_target(const char *name, entry_fn fn, long execs, int mutants)
{
    input_set s = {0};
    load_set(name, mutants, &s);
    if (s.count == 0) {
        fprintf(stderr, "bench_fuzz: no corpus for %s (run from the repository root)\n", name);
        return;
    }
    /* One warm-up pass (loads scenarios, builds registries). */
    fn(s.items[0].p, s.items[0].n);
    double t0 = now_s();
    for (long i = 0; i < execs; i++) {
        const input *in = &s.items[(size_t)i % s.count];
        fn(in->p, in->n);
    }
    double dt = now_s() - t0;
    printf("bench: fuzz.%s.execs_per_s %.0f execs/s\n", name, dt > 0 ? (double)execs / dt : 0.0);
    fflush(stdout);
    for (size_t i = 0; i < s.count; i++)
        free(s.items[i].p);
    free(s.items);
}

int main(void)
{
    bench_target("defer", bench_fuzz_defer_one, 80000, 3);
    bench_target("framing", bench_fuzz_framing_one, 200000, 3);
    bench_target("parser", bench_fuzz_parser_one, 20000, 3);
    bench_target("schedule", bench_fuzz_schedule_one, 4000, 3);
    return 0;
}
