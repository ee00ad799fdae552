/* Choice sources: the seeded generator against an independent rendering of
 * its specification (docs/simulator.md), the byte source, replay, recording,
 * and choice files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft/sim.h"

/* ---- the specification, written out again for the test ---- */

typedef struct spec_rng {
    uint64_t s0, s1, s2, s3;
} spec_rng;

static uint64_t spec_splitmix(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15u;
    uint64_t z = *state;
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9u;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebu;
    z ^= z >> 31;
    return z;
}

static spec_rng spec_seed(uint64_t seed)
{
    spec_rng g;
    g.s0 = spec_splitmix(&seed);
    g.s1 = spec_splitmix(&seed);
    g.s2 = spec_splitmix(&seed);
    g.s3 = spec_splitmix(&seed);
    return g;
}

static uint64_t spec_next64(spec_rng *g)
{
    uint64_t m = g->s1 * 5;
    uint64_t out = ((m << 7) | (m >> 57)) * 9;
    uint64_t t = g->s1 << 17;
    g->s2 ^= g->s0;
    g->s3 ^= g->s1;
    g->s1 ^= g->s2;
    g->s0 ^= g->s3;
    g->s2 ^= t;
    g->s3 = (g->s3 << 45) | (g->s3 >> 19);
    return out;
}

/* Lemire: draw x (high 32 bits), m = x * n; accept when the low half is at
 * least 2^32 mod n; the answer is the high half. */
static uint32_t spec_below(spec_rng *g, uint32_t n)
{
    uint32_t threshold = (uint32_t)((UINT64_C(0x100000000) - n) % n);
    for (;;) {
        uint64_t x = spec_next64(g) >> 32;
        uint64_t m = x * n;
        if ((uint32_t)m >= threshold)
            return (uint32_t)(m >> 32);
    }
}

static void splitmix_known_answers(void **state)
{
    (void)state;
    /* Published SplitMix64 outputs, to pin the test's own rendering. */
    uint64_t x = 0;
    assert_int_equal(spec_splitmix(&x), 0xe220a8397b1dcdafu);
    x = 1234567;
    assert_int_equal(spec_splitmix(&x), UINT64_C(6457827717110365317));
    assert_int_equal(spec_splitmix(&x), UINT64_C(3203168211198807973));
    /* xoshiro256** from state {1,2,3,4}: rotl(2*5, 7) * 9 = 11520, then 0. */
    spec_rng g = {1, 2, 3, 4};
    assert_int_equal(spec_next64(&g), 11520);
    assert_int_equal(spec_next64(&g), 0);
}

static void seeded_matches_the_spec(void **state)
{
    (void)state;
    static const uint32_t bounds[] = {2,          3,          7,          10,
                                      256,        257,        1000,       65536,
                                      0x7fffffffu, 0x80000001u, 0xfffffffeu, 0xffffffffu};
    static const uint64_t seeds[] = {0, 1, 42, 0xdeadbeefu, UINT64_MAX};
    for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
        weft_choice *c = weft_choice_seeded(seeds[si]);
        assert_non_null(c);
        spec_rng g = spec_seed(seeds[si]);
        for (int round = 0; round < 200; round++) {
            uint32_t n = bounds[(size_t)round % (sizeof bounds / sizeof bounds[0])];
            uint32_t want = spec_below(&g, n);
            uint32_t got = weft_choose(c, n, "t");
            assert_int_equal(got, want);
            assert_true(got < n);
        }
        /* n == 1 consumes nothing: the stream continues where it was. */
        assert_int_equal(weft_choose(c, 1, "t"), 0);
        assert_int_equal(weft_choose(c, 0, "t"), 0);
        assert_int_equal(weft_choose(c, 1000, "t"), spec_below(&g, 1000));
        weft_choice_free(c);
    }
}

static void seeded_is_spread_and_seed_dependent(void **state)
{
    (void)state;
    /* Not a statistical test: every value of a small range shows up, and two
     * seeds give different streams. */
    weft_choice *a = weft_choice_seeded(7), *b = weft_choice_seeded(8);
    unsigned hist[6] = {0};
    int same = 0;
    for (int i = 0; i < 6000; i++) {
        uint32_t x = weft_choose(a, 6, "die");
        uint32_t y = weft_choose(b, 6, "die");
        hist[x]++;
        same += x == y;
    }
    for (int k = 0; k < 6; k++)
        assert_true(hist[k] > 800 && hist[k] < 1200);
    assert_true(same < 1500);
    assert_int_equal(a->count, 6000);
    weft_choice_free(a);
    weft_choice_free(b);
}

static void bytes_source(void **state)
{
    (void)state;
    const uint8_t data[] = {7, 200, 0x01, 0x02, 0x03, 0x04, 9, 0xff, 0xff};
    weft_choice *c = weft_choice_bytes(data, sizeof data);
    assert_non_null(c);
    assert_int_equal(weft_choose(c, 5, "a"), 7 % 5);
    assert_int_equal(weft_choose(c, 1, "a"), 0); /* consumes nothing */
    assert_int_equal(weft_choose(c, 256, "a"), 200);
    /* n > 256: four bytes, little endian. */
    assert_int_equal(weft_choose(c, 100000, "a"), 0x04030201u % 100000u);
    assert_int_equal(weft_choose(c, 3, "a"), 0);            /* 9 % 3 */
    assert_int_equal(weft_choose(c, 1000, "a"), 0);         /* only 2 bytes left: exhausted */
    assert_int_equal(weft_choose(c, 2, "a"), 0);            /* stays exhausted */
    assert_int_equal(weft_choose(c, 0xffffffffu, "a"), 0);
    weft_choice_free(c);

    c = weft_choice_bytes(NULL, 0); /* empty input: every answer is 0 */
    assert_non_null(c);
    for (int i = 0; i < 10; i++)
        assert_int_equal(weft_choose(c, (uint32_t)i + 2, "a"), 0);
    weft_choice_free(c);
}

static void bytes_word_boundary(void **state)
{
    (void)state;
    /* Exactly four bytes left: a large choice takes them all. */
    const uint8_t data[] = {0xff, 0xff, 0xff, 0xff, 5};
    weft_choice *c = weft_choice_bytes(data, sizeof data);
    assert_int_equal(weft_choose(c, 6, "a"), 255 % 6);
    assert_int_equal(weft_choose(c, 0x10000, "a"), ((5u << 24) | 0xffffffu) % 0x10000u);
    assert_int_equal(weft_choose(c, 2, "a"), 0); /* nothing left */
    assert_int_equal(c->count, 3);
    const uint32_t *vals, *bounds;
    assert_int_equal(weft_choice_recorded(c, &vals, &bounds), 3);
    assert_int_equal(bounds[1], 0x10000);
    weft_choice_free(c);
}

static void bytes_are_copied(void **state)
{
    (void)state;
    uint8_t data[2] = {3, 4};
    weft_choice *c = weft_choice_bytes(data, 2);
    data[0] = 9;
    assert_int_equal(weft_choose(c, 10, "a"), 3);
    weft_choice_free(c);
}

static void replay_source(void **state)
{
    (void)state;
    uint32_t vals[] = {4, 9, 1, 0};
    weft_choice *c = weft_choice_replay(vals, 4);
    vals[0] = 0; /* copied */
    assert_int_equal(weft_choose(c, 10, "a"), 4);
    assert_int_equal(weft_choose(c, 1, "a"), 0); /* does not consume */
    assert_int_equal(weft_choose(c, 3, "a"), 2); /* 9 clamped to n-1 */
    assert_int_equal(weft_choose(c, 2, "a"), 1);
    assert_int_equal(weft_choose(c, 2, "a"), 0);
    assert_int_equal(weft_choose(c, 50, "a"), 0); /* past the end */
    weft_choice_free(c);
    weft_choice_free(NULL);
}

static void recording(void **state)
{
    (void)state;
    weft_choice *c = weft_choice_seeded(3);
    uint32_t v1 = weft_choose(c, 10, "first");
    weft_choose(c, 1, "skipped");
    weft_choice_record(c, false);
    weft_choose(c, 10, "off");
    weft_choice_record(c, true);
    uint32_t v2 = weft_choose(c, 300, "second");
    const uint32_t *vals, *bounds;
    size_t n = weft_choice_recorded(c, &vals, &bounds);
    assert_int_equal(n, 2);
    assert_int_equal(vals[0], v1);
    assert_int_equal(bounds[0], 10);
    assert_int_equal(vals[1], v2);
    assert_int_equal(bounds[1], 300);
    assert_int_equal(c->count, 3);
    assert_true(weft_choice_record_complete(c));

    /* Replaying the record gives the same answers. */
    weft_choice *r = weft_choice_replay(vals, n);
    assert_int_equal(weft_choose(r, 10, "first"), v1);
    assert_int_equal(weft_choose(r, 300, "second"), v2);
    weft_choice_free(r);
    weft_choice_free(c);

    /* A record that cannot grow stops recording and says so. */
    c = weft_choice_seeded(3);
    weft_alloc_fail_after(0);
    uint32_t v = weft_choose(c, 10, "x");
    weft_alloc_fail_after(-1);
    assert_true(v < 10);
    assert_false(weft_choice_record_complete(c));
    assert_int_equal(weft_choice_recorded(c, NULL, NULL), 0);
    weft_choice_free(c);
}

static FILE *file_with(const char *text)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs(text, f);
    rewind(f);
    return f;
}

static void save_load_round_trip(void **state)
{
    (void)state;
    weft_choice *c = weft_choice_seeded(99);
    uint32_t want[50];
    for (int i = 0; i < 50; i++)
        want[i] = weft_choose(c, (uint32_t)(i + 2) * 1000u, i % 2 ? "odd" : "even");
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(weft_choice_save(c, f), WEFT_OK);
    rewind(f);
    char line[128];
    assert_non_null(fgets(line, sizeof line, f)); /* the comment header */
    assert_int_equal(line[0], '#');
    assert_non_null(fgets(line, sizeof line, f));
    char expect[64];
    snprintf(expect, sizeof expect, "%u/2000 even\n", (unsigned)want[0]);
    assert_string_equal(line, expect);
    rewind(f);
    uint32_t *vals = NULL;
    size_t len = 0;
    char err[128];
    assert_int_equal(weft_choice_load(f, &vals, &len, err, sizeof err), WEFT_OK);
    assert_int_equal(len, 50);
    assert_memory_equal(vals, want, sizeof want);
    weft_free(vals);
    fclose(f);
    weft_choice_free(c);
}

static void load_accepts(void **state)
{
    (void)state;
    FILE *f = file_with("# header\n\n  3/4 order\r\n7\n0/1\t\n12/13 net latency\n4294967294/4294967295");
    uint32_t *vals;
    size_t len;
    char err[128];
    assert_int_equal(weft_choice_load(f, &vals, &len, err, sizeof err), WEFT_OK);
    assert_int_equal(len, 5);
    assert_int_equal(vals[0], 3);
    assert_int_equal(vals[1], 7);
    assert_int_equal(vals[2], 0);
    assert_int_equal(vals[3], 12);
    assert_int_equal(vals[4], 4294967294u);
    weft_free(vals);
    fclose(f);

    f = file_with("# nothing\n");
    assert_int_equal(weft_choice_load(f, &vals, &len, err, sizeof err), WEFT_OK);
    assert_int_equal(len, 0);
    assert_null(vals);
    fclose(f);
}

static void expect_parse_error(const char *text, const char *msg)
{
    FILE *f = file_with(text);
    uint32_t *vals = (uint32_t *)&vals;
    size_t len = 99;
    char err[128];
    assert_int_equal(weft_choice_load(f, &vals, &len, err, sizeof err), WEFT_EPARSE);
    assert_null(vals);
    assert_int_equal(len, 0);
    if (strncmp(err, msg, strlen(msg)) != 0)
        fail_msg("for %s: got \"%s\", want prefix \"%s\"", text, err, msg);
    fclose(f);
}

static void load_rejects(void **state)
{
    (void)state;
    expect_parse_error("abc\n", "line 1: expected a value");
    expect_parse_error("1/2\n# c\n\n3/2 x\n", "line 4: value must be below its bound");
    expect_parse_error("1/0\n", "line 1: bound must be at least 1");
    expect_parse_error("4294967296\n", "line 1: expected a value");
    expect_parse_error("1/\n", "line 1: expected a bound");
    expect_parse_error("1\n2\n5/9x\n", "line 3: junk after the value");
    expect_parse_error("-1\n", "line 1: expected a value");
    char big[3000];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect_parse_error(big, "line 1: line too long");
    assert_int_equal(weft_choice_load(NULL, NULL, NULL, NULL, 0), WEFT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(splitmix_known_answers),
        cmocka_unit_test(seeded_matches_the_spec),
        cmocka_unit_test(seeded_is_spread_and_seed_dependent),
        cmocka_unit_test(bytes_source),
        cmocka_unit_test(bytes_word_boundary),
        cmocka_unit_test(bytes_are_copied),
        cmocka_unit_test(replay_source),
        cmocka_unit_test(recording),
        cmocka_unit_test(save_load_round_trip),
        cmocka_unit_test(load_accepts),
        cmocka_unit_test(load_rejects),
    };
    return cmocka_run_group_tests_name("choice", tests, NULL, NULL);
}
