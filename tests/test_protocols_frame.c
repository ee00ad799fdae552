/* Length-prefixed framing (8/16/32-bit) and netstrings: limits, bad input,
 * pausing, and chunking invariance over many seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/string_transport.h"
#include "weft/protocols.h"
#include "weft/sim.h"

/* ------------------------------------------------------------ Recording */

#define MAX_REC 2048

typedef struct rec {
    char *msgs[MAX_REC];
    size_t lens[MAX_REC];
    size_t n;
    uint64_t exceeded_length;
    unsigned exceeded_calls;
    bool pause_on_p;
} rec;

static void rec_add(rec *r, const uint8_t *data, size_t len)
{
    assert_true(r->n < MAX_REC);
    char *c = malloc(len + 1);
    assert_non_null(c);
    if (len)
        memcpy(c, data, len);
    c[len] = 0;
    r->msgs[r->n] = c;
    r->lens[r->n] = len;
    r->n++;
}

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->msgs[i]);
    r->n = 0;
}

/* ------------------------------------------------------ Int receivers */

typedef struct tint {
    weft_int_receiver ir;
    string_transport st;
    rec r;
} tint;

static void int_string(weft_int_receiver *ir, const uint8_t *data, size_t len)
{
    tint *t = (tint *)ir;
    rec_add(&t->r, data, len);
    if (len == 1 && data[0] == 'F') {
        /* Re-entrant: appended, processed after the rest of this chunk. */
        static const uint8_t more[] = {1, 'm'};
        assert_int_equal(weft_int_receiver_feed(ir, more, sizeof more), WEFT_OK);
    }
    if (t->r.pause_on_p && len == 1 && data[0] == 'P')
        weft_int_receiver_pause(ir);
}

static void int_exceeded(weft_int_receiver *ir, uint64_t length)
{
    tint *t = (tint *)ir;
    t->r.exceeded_length = length;
    t->r.exceeded_calls++;
}

static const weft_int_hooks int_hooks_default = {int_string, NULL};
static const weft_int_hooks int_hooks_custom = {int_string, int_exceeded};

static void tint_destroy(weft_protocol *p)
{
    weft_int_receiver_cleanup((weft_int_receiver *)p);
}

static const weft_protocol_ops tint_ops = {
    .data_received = weft_int_receiver_data_received,
    .destroy = tint_destroy,
};

static tint *tint_new(unsigned prefix, const weft_int_hooks *hooks)
{
    tint *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->ir.base.ops = &tint_ops;
    assert_int_equal(weft_int_receiver_init(&t->ir, prefix, hooks), WEFT_OK);
    string_transport_init(&t->st);
    string_transport_connect(&t->st, &t->ir.base, NULL);
    return t;
}

static void tint_free(tint *t)
{
    rec_free(&t->r);
    string_transport_lose(&t->st, WEFT_REASON_DONE, true);
    string_transport_free(&t->st);
    free(t);
}

static void deliver(string_transport *st, const void *data, size_t len)
{
    string_transport_deliver(st, data, len);
}

static void int_init_checks(void **state)
{
    (void)state;
    weft_int_receiver ir;
    memset(&ir, 0, sizeof ir);
    assert_int_equal(weft_int_receiver_init(&ir, 3, &int_hooks_default), WEFT_EINVAL);
    assert_int_equal(weft_int_receiver_init(&ir, 0, &int_hooks_default), WEFT_EINVAL);
    assert_int_equal(weft_int_receiver_init(&ir, 4, NULL), WEFT_EINVAL);
    assert_int_equal(weft_int_receiver_init(&ir, 4, &int_hooks_default), WEFT_OK);
    assert_int_equal(ir.string_max, 99999);
    assert_int_equal(weft_int_receiver_init(&ir, 2, &int_hooks_default), WEFT_OK);
    assert_int_equal(ir.string_max, 65535);
    assert_int_equal(weft_int_receiver_set_string_max(&ir, 65536), WEFT_EINVAL);
    assert_int_equal(weft_int_receiver_init(&ir, 1, &int_hooks_default), WEFT_OK);
    assert_int_equal(ir.string_max, 255);
    assert_int_equal(weft_int_receiver_set_string_max(&ir, 256), WEFT_EINVAL);
    assert_int_equal(weft_int_receiver_set_string_max(&ir, 10), WEFT_OK);
    weft_int_receiver_cleanup(&ir);
}

static void int32_frames_in_one_chunk_and_split(void **state)
{
    (void)state;
    tint *t = tint_new(4, &int_hooks_default);
    const uint8_t data[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0, 0, 0, 2, 'x'};
    deliver(&t->st, data, sizeof data);
    assert_int_equal(t->r.n, 2);
    assert_string_equal(t->r.msgs[0], "abc");
    assert_int_equal(t->r.lens[1], 0);
    deliver(&t->st, "y", 1);
    assert_int_equal(t->r.n, 3);
    assert_string_equal(t->r.msgs[2], "xy");
    /* The prefix itself split. */
    const uint8_t p2[] = {0, 0, 0, 1, 'z'};
    for (size_t i = 0; i < sizeof p2; i++)
        deliver(&t->st, p2 + i, 1);
    assert_int_equal(t->r.n, 4);
    assert_string_equal(t->r.msgs[3], "z");
    assert_int_equal(t->ir.strings_received, 4);
    assert_null(t->ir.error);
    tint_free(t);
}

static void int_send_string_and_limits(void **state)
{
    (void)state;
    tint *t = tint_new(4, &int_hooks_default);
    assert_int_equal(weft_int_receiver_send_string(&t->ir, "hey", 3), WEFT_OK);
    assert_int_equal(t->st.len, 7);
    assert_memory_equal(t->st.data, "\0\0\0\3hey", 7);
    char *big = calloc(1, 100000);
    assert_non_null(big);
    assert_int_equal(weft_int_receiver_send_string(&t->ir, big, 100000), WEFT_ELIMIT);
    assert_int_equal(weft_int_receiver_send_string(&t->ir, big, 99999), WEFT_OK);
    assert_int_equal(t->st.len, 7 + 4 + 99999);
    tint_free(t);
    tint *t8 = tint_new(1, &int_hooks_default);
    assert_int_equal(weft_int_receiver_send_string(&t8->ir, big, 256), WEFT_ELIMIT);
    assert_int_equal(weft_int_receiver_send_string(&t8->ir, big, 255), WEFT_OK);
    assert_int_equal(t8->st.data[0], 255);
    tint_free(t8);
    tint *t16 = tint_new(2, &int_hooks_default);
    assert_int_equal(weft_int_receiver_send_string(&t16->ir, "ab", 2), WEFT_OK);
    assert_memory_equal(t16->st.data, "\0\2ab", 4);
    assert_int_equal(weft_int_receiver_send_string(&t16->ir, big, 65536), WEFT_ELIMIT);
    tint_free(t16);
    free(big);
    weft_int_receiver ir;
    memset(&ir, 0, sizeof ir);
    weft_int_receiver_init(&ir, 4, &int_hooks_default);
    assert_int_equal(weft_int_receiver_send_string(&ir, "x", 1), WEFT_ENOTCONN);
}

static void int_prefix_over_max_is_never_buffered(void **state)
{
    (void)state;
    tint *t = tint_new(4, &int_hooks_default);
    /* 100000 > 99999: dropped at once, before any payload. */
    const uint8_t head[] = {0, 1, 0x86, 0xa0, 'p', 'a', 'y'};
    deliver(&t->st, head, sizeof head);
    assert_int_equal(t->r.n, 0);
    assert_string_equal(t->ir.error, WEFT_REASON_FRAME_TOO_LONG);
    assert_true(t->ir.broken);
    assert_int_equal(t->st.lose_calls, 1);
    assert_true(t->ir.part_cap_ <= 4);
    /* A following valid frame is not parsed: the framing is lost. */
    const uint8_t next[] = {0, 0, 0, 1, 'z'};
    assert_int_equal(weft_int_receiver_feed(&t->ir, next, sizeof next), WEFT_ECLOSED);
    assert_int_equal(t->r.n, 0);
    tint_free(t);
}

static void int_prefix_over_max_split_and_custom_hook(void **state)
{
    (void)state;
    tint *t = tint_new(4, &int_hooks_custom);
    assert_int_equal(weft_int_receiver_set_string_max(&t->ir, 10), WEFT_OK);
    const uint8_t ok[] = {0, 0, 0, 10, '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'};
    deliver(&t->st, ok, sizeof ok);
    assert_int_equal(t->r.n, 1);
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff};
    for (size_t i = 0; i < 4; i++)
        deliver(&t->st, bad + i, 1);
    assert_int_equal(t->r.exceeded_calls, 1);
    assert_int_equal(t->r.exceeded_length, 0xffffffffu);
    assert_null(t->ir.error);
    assert_int_equal(t->st.lose_calls, 0);
    assert_true(t->ir.part_cap_ <= 14);
    tint_free(t);
}

static void int_pause_resume(void **state)
{
    (void)state;
    tint *t = tint_new(1, &int_hooks_default);
    t->r.pause_on_p = true;
    const uint8_t data[] = {1, 'a', 1, 'P', 1, 'b', 2, 'c'};
    deliver(&t->st, data, sizeof data);
    assert_int_equal(t->r.n, 2);
    assert_true(t->st.reading_paused);
    deliver(&t->st, "d", 1);
    assert_int_equal(t->r.n, 2);
    weft_int_receiver_resume(&t->ir);
    assert_int_equal(t->r.n, 4);
    assert_string_equal(t->r.msgs[2], "b");
    assert_string_equal(t->r.msgs[3], "cd");
    tint_free(t);
}

static void int_reentrant_feed(void **state)
{
    (void)state;
    tint *t = tint_new(1, &int_hooks_default);
    const uint8_t data[] = {1, 'F', 1, 'a', 0};
    deliver(&t->st, data, sizeof data);
    /* The trailing 0 is a whole (empty) string; the fed one comes last. */
    assert_int_equal(t->r.n, 4);
    assert_string_equal(t->r.msgs[0], "F");
    assert_string_equal(t->r.msgs[1], "a");
    assert_int_equal(t->r.lens[2], 0);
    assert_string_equal(t->r.msgs[3], "m");
    tint_free(t);
}

/* ------------------------------------------------------------ Netstrings */

typedef struct tns {
    weft_netstring_receiver nr;
    string_transport st;
    rec r;
} tns;

static void ns_string(weft_netstring_receiver *nr, const uint8_t *data, size_t len)
{
    rec_add(&((tns *)nr)->r, data, len);
}

static const weft_netstring_hooks ns_hooks = {ns_string};

static void tns_destroy(weft_protocol *p)
{
    weft_netstring_receiver_cleanup((weft_netstring_receiver *)p);
}

static const weft_protocol_ops tns_ops = {
    .data_received = weft_netstring_receiver_data_received,
    .destroy = tns_destroy,
};

static tns *tns_new(void)
{
    tns *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->nr.base.ops = &tns_ops;
    assert_int_equal(weft_netstring_receiver_init(&t->nr, &ns_hooks), WEFT_OK);
    string_transport_init(&t->st);
    string_transport_connect(&t->st, &t->nr.base, NULL);
    return t;
}

static void tns_free(tns *t)
{
    rec_free(&t->r);
    string_transport_lose(&t->st, WEFT_REASON_DONE, true);
    string_transport_free(&t->st);
    free(t);
}

static void ns_feed(tns *t, const char *s)
{
    string_transport_deliver_str(&t->st, s);
}

static void netstring_valid_input(void **state)
{
    (void)state;
    tns *t = tns_new();
    ns_feed(t, "3:abc,0:,4:1:a,,");
    assert_int_equal(t->r.n, 3);
    assert_string_equal(t->r.msgs[0], "abc");
    assert_int_equal(t->r.lens[1], 0);
    assert_string_equal(t->r.msgs[2], "1:a,");
    ns_feed(t, "12:hello");
    ns_feed(t, " world!");
    assert_int_equal(t->r.n, 3);
    ns_feed(t, ",");
    assert_int_equal(t->r.n, 4);
    assert_string_equal(t->r.msgs[3], "hello world!");
    assert_false(t->nr.broken_peer);
    assert_null(t->nr.error);
    tns_free(t);
}

static void netstring_pause_resume(void **state)
{
    (void)state;
    tns *t = tns_new();
    ns_feed(t, "1:a,");
    weft_netstring_receiver_pause(&t->nr);
    assert_true(t->st.reading_paused);
    ns_feed(t, "1:b,2:");
    ns_feed(t, "cd,");
    assert_int_equal(t->r.n, 1);
    weft_netstring_receiver_resume(&t->nr);
    assert_false(t->st.reading_paused);
    assert_int_equal(t->r.n, 3);
    assert_string_equal(t->r.msgs[1], "b");
    assert_string_equal(t->r.msgs[2], "cd");
    tns_free(t);
}

static void netstring_send(void **state)
{
    (void)state;
    tns *t = tns_new();
    assert_int_equal(weft_netstring_receiver_send_string(&t->nr, "abc", 3), WEFT_OK);
    assert_int_equal(weft_netstring_receiver_send_string(&t->nr, "", 0), WEFT_OK);
    assert_string_equal(string_transport_value(&t->st), "3:abc,0:,");
    tns_free(t);
}

typedef struct bad_case {
    const char *input;
    const char *detail;
    size_t good_before;
} bad_case;

static void netstring_bad_input(void **state)
{
    (void)state;
    const bad_case cases[] = {
        {"01:a,", "length with a leading zero", 0},
        {"00:,", "length with a leading zero", 0},
        {":abc,", "missing length", 0},
        {"abc", "missing length", 0},
        {"3x", "missing colon", 0},
        {"3:abcd", "missing comma", 0},
        {"3:abc;", "missing comma", 0},
        {"1:a,2:bc.", "missing comma", 1},
        {"100000:", "length over the maximum", 0},
        {"999999", "length over the maximum", 0},
        {"1234567", "length over the maximum", 0},
        {"0000000", "length with a leading zero", 0},
        {"-1:a,", "missing length", 0},
        {" 1:a,", "missing length", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Whole, then one byte at a time: the same outcome. */
        for (int split = 0; split < 2; split++) {
            tns *t = tns_new();
            const char *s = cases[i].input;
            if (split == 0) {
                ns_feed(t, s);
            } else {
                for (size_t k = 0; s[k]; k++)
                    string_transport_deliver(&t->st, s + k, 1);
            }
            if (!t->nr.broken_peer)
                fail_msg("case %zu '%s' split %d: not rejected", i, s, split);
            assert_string_equal(t->nr.error, WEFT_REASON_BAD_FRAME);
            assert_string_equal(t->nr.detail, cases[i].detail);
            assert_int_equal(t->st.lose_calls, 1);
            assert_int_equal(t->r.n, cases[i].good_before);
            assert_true(t->nr.part_cap_ <= 99999);
            /* Later bytes are ignored. */
            assert_int_equal(weft_netstring_receiver_feed(&t->nr, (const uint8_t *)"1:a,", 4),
                             WEFT_ECLOSED);
            assert_int_equal(t->r.n, cases[i].good_before);
            tns_free(t);
        }
    }
}

static void netstring_small_max(void **state)
{
    (void)state;
    tns *t = tns_new();
    assert_int_equal(weft_netstring_receiver_set_string_max(&t->nr, 0), WEFT_EINVAL);
    assert_int_equal(weft_netstring_receiver_set_string_max(&t->nr, 5), WEFT_OK);
    ns_feed(t, "5:abcde,");
    assert_int_equal(t->r.n, 1);
    ns_feed(t, "6");
    assert_true(t->nr.broken_peer);
    assert_string_equal(t->nr.detail, "length over the maximum");
    tns_free(t);
    /* max 10: at most ceil(log10(10)) + 1 = 2 digits; "010" fails earlier. */
    t = tns_new();
    weft_netstring_receiver_set_string_max(&t->nr, 10);
    ns_feed(t, "10:0123456789,");
    assert_int_equal(t->r.n, 1);
    tns_free(t);
    /* max 100000: 6 digits allowed; the 7th is refused before parsing on. */
    t = tns_new();
    weft_netstring_receiver_set_string_max(&t->nr, 100000);
    ns_feed(t, "100000");
    assert_false(t->nr.broken_peer);
    ns_feed(t, "0");
    assert_true(t->nr.broken_peer);
    assert_string_equal(t->nr.detail, "length specification too long");
    tns_free(t);
}

/* -------------------------------------------------- Chunking invariance */

typedef struct wire {
    uint8_t *bytes;
    size_t len, cap;
} wire;

static void wire_put(wire *w, const void *d, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2 + 64;
        w->bytes = realloc(w->bytes, w->cap);
        assert_non_null(w->bytes);
    }
    memcpy(w->bytes + w->len, d, n);
    w->len += n;
}

/* The seeded choice source of the simulator drives generation and splits. */
static uint32_t pick(weft_choice *c, uint32_t n)
{
    return weft_choose(c, n, "test");
}

/* Splits: mode 0 one byte at a time, 1 small, 2 large chunks. */
static size_t next_chunk(weft_choice *c, int mode)
{
    if (mode == 0)
        return 1;
    if (mode == 1)
        return 1 + pick(c, 8);
    return 1 + pick(c, 300);
}

static void int_invariance(unsigned prefix, int seeds)
{
    for (int seed = 0; seed < seeds; seed++) {
        weft_choice *c = weft_choice_seeded((uint64_t)seed * 31 + prefix);
        assert_non_null(c);
        size_t max = prefix == 1 ? 255 : 600;
        wire w = {0};
        rec expected = {0};
        size_t n = 1 + pick(c, 30);
        for (size_t i = 0; i < n; i++) {
            size_t len = pick(c, 6) == 0 ? max : pick(c, (uint32_t)max + 1);
            if (pick(c, 10) == 0)
                len = 0;
            uint8_t pre[4];
            for (unsigned k = 0; k < prefix; k++)
                pre[k] = (uint8_t)(len >> (8 * (prefix - 1 - k)));
            wire_put(&w, pre, prefix);
            uint8_t *payload = malloc(len + 1);
            for (size_t k = 0; k < len; k++)
                payload[k] = (uint8_t)pick(c, 256);
            wire_put(&w, payload, len);
            rec_add(&expected, payload, len);
            free(payload);
        }
        for (int mode = 0; mode < 3; mode++) {
            tint *t = tint_new(prefix, &int_hooks_default);
            assert_int_equal(weft_int_receiver_set_string_max(&t->ir, max), WEFT_OK);
            size_t off = 0;
            while (off < w.len) {
                size_t k = next_chunk(c, mode);
                if (k > w.len - off)
                    k = w.len - off;
                deliver(&t->st, w.bytes + off, k);
                off += k;
            }
            if (t->r.n != expected.n)
                fail_msg("seed %d prefix %u mode %d: %zu strings, expected %zu", seed, prefix,
                         mode, t->r.n, expected.n);
            for (size_t i = 0; i < expected.n; i++) {
                assert_int_equal(t->r.lens[i], expected.lens[i]);
                assert_memory_equal(t->r.msgs[i], expected.msgs[i], expected.lens[i]);
            }
            assert_null(t->ir.error);
            assert_int_equal(t->ir.part_len_, 0);
            assert_true(t->ir.part_cap_ <= prefix + max);
            tint_free(t);
        }
        rec_free(&expected);
        free(w.bytes);
        weft_choice_free(c);
    }
}

static void int32_chunking_invariance(void **state)
{
    (void)state;
    int_invariance(4, 1000);
}

static void int16_int8_chunking_invariance(void **state)
{
    (void)state;
    int_invariance(2, 300);
    int_invariance(1, 300);
}

static void netstring_chunking_invariance(void **state)
{
    (void)state;
    for (int seed = 0; seed < 1000; seed++) {
        weft_choice *c = weft_choice_seeded((uint64_t)seed * 131 + 7);
        assert_non_null(c);
        wire w = {0};
        rec expected = {0};
        size_t n = 1 + pick(c, 30);
        bool garbage = seed % 4 == 3;
        for (size_t i = 0; i < n; i++) {
            size_t len = pick(c, 10) == 0 ? 0 : pick(c, 200);
            char head[24];
            int hl = snprintf(head, sizeof head, "%zu:", len);
            wire_put(&w, head, (size_t)hl);
            uint8_t *payload = malloc(len + 1);
            for (size_t k = 0; k < len; k++)
                payload[k] = (uint8_t)pick(c, 256);
            wire_put(&w, payload, len);
            wire_put(&w, ",", 1);
            rec_add(&expected, payload, len);
            free(payload);
        }
        if (garbage)
            wire_put(&w, "5:abcdeX1:a,", 12);
        for (int mode = 0; mode < 3; mode++) {
            tns *t = tns_new();
            size_t off = 0;
            while (off < w.len) {
                size_t k = next_chunk(c, mode);
                if (k > w.len - off)
                    k = w.len - off;
                deliver(&t->st, w.bytes + off, k);
                off += k;
            }
            if (t->r.n != expected.n)
                fail_msg("seed %d mode %d: %zu strings, expected %zu", seed, mode, t->r.n,
                         expected.n);
            for (size_t i = 0; i < expected.n; i++) {
                assert_int_equal(t->r.lens[i], expected.lens[i]);
                assert_memory_equal(t->r.msgs[i], expected.msgs[i], expected.lens[i]);
            }
            assert_int_equal(t->nr.broken_peer, garbage);
            if (garbage)
                assert_string_equal(t->nr.detail, "missing comma");
            tns_free(t);
        }
        rec_free(&expected);
        free(w.bytes);
        weft_choice_free(c);
    }
}

/* Garbage of every kind, in random splits, into each receiver with small
 * limits: never a crash, never a buffer over its bound, and any drop carries
 * one of the documented reasons. */
static void line_noop(weft_line_receiver *lr, const uint8_t *d, size_t n)
{
    (void)lr;
    (void)d;
    (void)n;
}

static const weft_line_hooks noop_line_hooks = {line_noop, NULL, NULL};

static void garbage_never_breaks_bounds(void **state)
{
    (void)state;
    uint8_t junk[512];
    for (int seed = 0; seed < 1000; seed++) {
        weft_choice *c = weft_choice_seeded((uint64_t)seed + 99);
        size_t len = 1 + pick(c, sizeof junk);
        /* Mostly digits, colons, commas and line ends, to reach deep states. */
        static const char alphabet[] = "0123456789:,\r\n\0ab";
        for (size_t i = 0; i < len; i++)
            junk[i] = pick(c, 4) == 0 ? (uint8_t)pick(c, 256)
                                      : (uint8_t)alphabet[pick(c, sizeof alphabet - 1)];
        size_t max = 1 + pick(c, 20);

        tint *ti = tint_new(1 + pick(c, 2), &int_hooks_default);
        weft_int_receiver_set_string_max(&ti->ir, max);
        tns *tn = tns_new();
        weft_netstring_receiver_set_string_max(&tn->nr, max);
        weft_line_receiver lr;
        memset(&lr, 0, sizeof lr);
        weft_line_receiver_init(&lr, &noop_line_hooks);
        weft_line_receiver_set_line_max(&lr, max);
        size_t off = 0;
        while (off < len) {
            size_t k = 1 + pick(c, 16);
            if (k > len - off)
                k = len - off;
            deliver(&ti->st, junk + off, k);
            deliver(&tn->st, junk + off, k);
            (void)weft_line_receiver_feed(&lr, junk + off, k);
            assert_true(ti->ir.part_cap_ <= ti->ir.prefix_bytes + max);
            assert_true(tn->nr.part_cap_ <= max);
            assert_true(lr.part_cap_ <= max + 2);
            off += k;
        }
        if (ti->ir.error)
            assert_string_equal(ti->ir.error, WEFT_REASON_FRAME_TOO_LONG);
        if (tn->nr.error)
            assert_string_equal(tn->nr.error, WEFT_REASON_BAD_FRAME);
        assert_int_equal(tn->st.lose_calls, tn->nr.broken_peer ? 1 : 0);
        if (lr.error)
            assert_string_equal(lr.error, WEFT_REASON_LINE_TOO_LONG);
        weft_line_receiver_cleanup(&lr);
        tint_free(ti);
        tns_free(tn);
        weft_choice_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(int_init_checks),
        cmocka_unit_test(int32_frames_in_one_chunk_and_split),
        cmocka_unit_test(int_send_string_and_limits),
        cmocka_unit_test(int_prefix_over_max_is_never_buffered),
        cmocka_unit_test(int_prefix_over_max_split_and_custom_hook),
        cmocka_unit_test(int_pause_resume),
        cmocka_unit_test(netstring_valid_input),
        cmocka_unit_test(netstring_send),
        cmocka_unit_test(netstring_pause_resume),
        cmocka_unit_test(int_reentrant_feed),
        cmocka_unit_test(netstring_bad_input),
        cmocka_unit_test(netstring_small_max),
        cmocka_unit_test(int32_chunking_invariance),
        cmocka_unit_test(int16_int8_chunking_invariance),
        cmocka_unit_test(netstring_chunking_invariance),
        cmocka_unit_test(garbage_never_breaks_bounds),
    };
    return cmocka_run_group_tests_name("protocols_frame", tests, NULL, NULL);
}
