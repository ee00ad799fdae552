/* test_scenario_fuzz.c: robustness of the scenario parser (and runner) over
 * seeded mutations of the bundled scenario files: never a crash, and always
 * either a parse or at least one positioned error; what parses and checks
 * also runs, under small runaway caps, to a verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/scenario.h"
#include "weft/sim.h"

static weft_registry *reg;

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void reserve(buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
}

static void insert(buf *b, size_t at, const char *s, size_t n)
{
    reserve(b, n);
    memmove(b->p + at + n, b->p + at, b->len - at);
    memcpy(b->p + at, s, n);
    b->len += n;
}

static void erase(buf *b, size_t at, size_t n)
{
    if (at + n > b->len)
        n = b->len - at;
    memmove(b->p + at, b->p + at + n, b->len - at - n);
    b->len -= n;
}

/* Start offsets of the lines of b. */
static size_t line_starts(const buf *b, size_t *out, size_t max)
{
    size_t n = 0;
    if (max > 0)
        out[n++] = 0;
    for (size_t i = 0; i < b->len && n < max; i++)
        if (b->p[i] == '\n' && i + 1 <= b->len)
            out[n++] = i + 1;
    return n;
}

static const char *const dict[] = {
    "\"", "\\", "\\x", "\\xZ", ":", "..", "#", " ", "\n", "\r\n", "within", "expect", "at 1s:",
    "after 0ns:", "none", "-1", "0", "99999999999999999999", "1.5s", "2m", "ppm", "%", "ok",
    "fail", "then", "catch", "both", "return", "record \"x\"", "list", "gather", "of", "as",
    "with", "from", "to", "localhost:1", "65536", "peer", "host", "deferred", "call", "fire",
    "cancel", "pause", "unpause", "close", "abort", "send \"x\"", "run until quiet", "advance 1h",
    "limit events 1", "network chunk 1", "crash", "restart", "partition", "reset", "\t", "\x01",
    "\xff", "\0",
};

static void mutate(buf *b, weft_choice *c)
{
    uint32_t kinds = 7;
    switch (weft_choose(c, kinds, "kind")) {
    case 0: /* overwrite a byte */
        if (b->len > 0) {
            size_t at = weft_choose(c, (uint32_t)b->len, "at");
            b->p[at] = (char)weft_choose(c, 256, "byte");
        }
        break;
    case 1: { /* delete a span */
        if (b->len == 0)
            break;
        size_t at = weft_choose(c, (uint32_t)b->len, "at");
        erase(b, at, 1 + weft_choose(c, 16, "n"));
        break;
    }
    case 2: { /* insert a dictionary token */
        size_t at = weft_choose(c, (uint32_t)b->len + 1, "at");
        const char *t = dict[weft_choose(c, sizeof dict / sizeof dict[0], "tok")];
        size_t n = t[0] == '\0' ? 1 : strlen(t);
        insert(b, at, t, n);
        break;
    }
    case 3: { /* duplicate a line elsewhere */
        size_t starts[4096];
        size_t n = line_starts(b, starts, 4096);
        if (n == 0)
            break;
        size_t i = weft_choose(c, (uint32_t)n, "line");
        size_t end = i + 1 < n ? starts[i + 1] : b->len;
        size_t len = end - starts[i];
        char *copy = malloc(len + 1);
        memcpy(copy, b->p + starts[i], len);
        size_t to = starts[weft_choose(c, (uint32_t)n, "to")];
        insert(b, to, copy, len);
        free(copy);
        break;
    }
    case 4: { /* delete a line */
        size_t starts[4096];
        size_t n = line_starts(b, starts, 4096);
        size_t i = weft_choose(c, (uint32_t)n, "line");
        size_t end = i + 1 < n ? starts[i + 1] : b->len;
        erase(b, starts[i], end - starts[i]);
        break;
    }
    case 5: /* truncate */
        b->len = weft_choose(c, (uint32_t)b->len + 1, "len");
        break;
    case 6: { /* swap two adjacent bytes */
        if (b->len < 2)
            break;
        size_t at = weft_choose(c, (uint32_t)b->len - 1, "at");
        char t = b->p[at];
        b->p[at] = b->p[at + 1];
        b->p[at + 1] = t;
        break;
    }
    }
}

static size_t count_lines(const buf *b)
{
    size_t n = 1;
    for (size_t i = 0; i < b->len; i++)
        n += b->p[i] == '\n';
    return n;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    *len = fread(p, 1, (size_t)n, f);
    fclose(f);
    return p;
}

static void fuzz_one(const char *name, const char *orig, size_t orig_len, uint64_t iters,
                     size_t *parsed, size_t *rejected, size_t *ran)
{
    weft_choice *c = weft_choice_seeded(0x5eedULL ^ orig_len);
    assert_non_null(c);
    buf b = {0};
    for (uint64_t it = 0; it < iters; it++) {
        b.len = 0;
        reserve(&b, orig_len);
        memcpy(b.p, orig, orig_len);
        b.len = orig_len;
        uint32_t muts = 1 + weft_choose(c, 4, "muts");
        for (uint32_t m = 0; m < muts; m++)
            mutate(&b, c);
        weft_diags d;
        weft_diags_init(&d);
        weft_scenario *sc = NULL;
        int rc = weft_scenario_parse(b.p, b.len, name, &sc, &d);
        if (rc != WEFT_OK && rc != WEFT_EPARSE)
            print_error("%s iteration %llu: rc %d\n", name, (unsigned long long)it, rc);
        assert_true(rc == WEFT_OK || rc == WEFT_EPARSE);
        if (rc == WEFT_EPARSE) {
            (*rejected)++;
            assert_null(sc);
            assert_true(d.count >= 1);
            size_t lines = count_lines(&b);
            for (size_t i = 0; i < d.count; i++) {
                assert_true(d.items[i].line >= 1);
                assert_true((size_t)d.items[i].line <= lines);
                assert_true(d.items[i].col >= 1);
                assert_true(d.items[i].col <= (int)WEFT_SCENARIO_LINE_MAX + 2);
                char *s = weft_diag_format(&d.items[i]);
                char prefix[128];
                snprintf(prefix, sizeof prefix, "%s:%d:%d: ", name, d.items[i].line, d.items[i].col);
                assert_memory_equal(s, prefix, strlen(prefix));
                assert_true(strlen(s) > strlen(prefix));
                weft_free(s);
            }
        } else {
            (*parsed)++;
            assert_int_equal(d.count, 0);
            if (weft_scenario_check(sc, reg, &d) == WEFT_OK) {
                weft_run_options o;
                weft_run_options_init(&o);
                o.max_events = 5000;
                o.max_time_ns = 600 * WEFT_NS_PER_S;
                o.seed = it;
                o.use_seed = true;
                weft_run_result r;
                assert_int_equal(weft_scenario_run(sc, reg, &o, &r), WEFT_OK);
                assert_non_null(r.verdict);
                assert_true(r.passed == (r.nfailures == 0));
                weft_run_result_clear(&r);
                (*ran)++;
            }
            weft_scenario_free(sc);
        }
        weft_diags_clear(&d);
    }
    free(b.p);
    weft_choice_free(c);
}

static void test_mutated_bundled(void **state)
{
    (void)state;
    DIR *dir = opendir("scenarios");
    assert_non_null(dir);
    char *names[64];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && n < 64) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".scn") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(dir);
    assert_true(n >= 11);
    /* Directory order is the file system's: sort for a stable run. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    const char *env = getenv("WEFT_FUZZ_ITERATIONS");
    uint64_t iters = env ? strtoull(env, NULL, 10) : 1000;
    size_t parsed = 0, rejected = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        char path[300];
        snprintf(path, sizeof path, "scenarios/%s", names[i]);
        size_t len;
        char *text = slurp(path, &len);
        fuzz_one(names[i], text, len, iters, &parsed, &rejected, &ran);
        free(text);
        free(names[i]);
    }
    print_message("mutations: %zu parsed (%zu ran), %zu rejected with positioned errors\n", parsed,
                  ran, rejected);
    /* The mutations must exercise both outcomes. */
    assert_true(parsed > 0);
    assert_true(rejected > 0);
    assert_true(ran > 0);
}

/* Random bytes, not derived from a scenario. */
static void test_random_bytes(void **state)
{
    (void)state;
    weft_choice *c = weft_choice_seeded(99);
    char text[512];
    for (int it = 0; it < 3000; it++) {
        size_t len = weft_choose(c, sizeof text, "len");
        for (size_t i = 0; i < len; i++)
            text[i] = (char)weft_choose(c, 256, "byte");
        weft_diags d;
        weft_diags_init(&d);
        weft_scenario *sc = NULL;
        int rc = weft_scenario_parse(text, len, "r.scn", &sc, &d);
        assert_true(rc == WEFT_OK || rc == WEFT_EPARSE);
        assert_true(rc == WEFT_OK ? d.count == 0 : d.count >= 1);
        weft_scenario_free(sc);
        weft_diags_clear(&d);
    }
    weft_choice_free(c);
}

static int setup(void **state)
{
    (void)state;
    reg = weft_registry_new();
    return reg != NULL && weft_registry_add_builtins(reg) == WEFT_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    weft_registry_free(reg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutated_bundled),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests_name("scenario_fuzz", tests, setup, teardown);
}
