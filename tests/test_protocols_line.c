/* The line receiver: Twisted's LineReceiver semantics, limits, modes,
 * re-entrancy, pausing, and chunking invariance over many seeds. */
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

/* Seeds drive the simulator's seeded choice source. */
typedef struct test_rng {
    weft_choice *c;
} test_rng;

static void test_rng_init(test_rng *r, uint64_t seed)
{
    r->c = weft_choice_seeded(seed);
    assert_non_null(r->c);
}

static void test_rng_done(test_rng *r)
{
    weft_choice_free(r->c);
}

static uint32_t test_rng_below(test_rng *r, uint32_t n)
{
    return n ? weft_choose(r->c, n, "test") : 0;
}

/* ------------------------------------------------------------ A test protocol */

#define MAX_REC 4096

typedef struct tline {
    weft_line_receiver lr;
    string_transport st;
    char *lines[MAX_REC];
    size_t line_lens[MAX_REC];
    size_t nlines;
    uint8_t raw[1 << 16];
    size_t raw_len;
    unsigned raw_calls;
    uint8_t exceeded[1 << 16];
    size_t exceeded_len;
    unsigned exceeded_calls;
    /* Behaviours triggered by line contents. */
    bool react;
    uint8_t cleared[256];
    size_t cleared_len;
} tline;

static void rec_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    tline *t = (tline *)lr;
    assert_true(t->nlines < MAX_REC);
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, line, len);
    copy[len] = 0;
    t->lines[t->nlines] = copy;
    t->line_lens[t->nlines] = len;
    t->nlines++;
    if (!t->react)
        return;
    if (len == 3 && memcmp(line, "RAW", 3) == 0)
        weft_line_receiver_set_raw_mode(lr);
    else if (len == 4 && memcmp(line, "QUIT", 4) == 0)
        weft_line_receiver_lose_connection(lr, "Quit");
    else if (len == 5 && memcmp(line, "PAUSE", 5) == 0)
        weft_line_receiver_pause(lr);
    else if (len == 5 && memcmp(line, "CLEAR", 5) == 0)
        t->cleared_len = weft_line_receiver_clear_line_buffer(lr, t->cleared, sizeof t->cleared);
    else if (len == 4 && memcmp(line, "FEED", 4) == 0)
        assert_int_equal(weft_line_receiver_feed(lr, (const uint8_t *)"fed\r\n", 5), WEFT_OK);
    else if (len == 5 && memcmp(line, "DELIM", 5) == 0)
        assert_int_equal(weft_line_receiver_set_delimiter(lr, "\n", 1), WEFT_OK);
    else if (len == 5 && memcmp(line, "CLOSE", 5) == 0) /* the transport, not the receiver */
        assert_int_equal(weft_transport_lose_connection(lr->base.transport), WEFT_OK);
    else if (len == 5 && memcmp(line, "ABORT", 5) == 0)
        assert_int_equal(weft_transport_abort(lr->base.transport), WEFT_OK);
    else if (len == 8 && memcmp(line, "RAWCLOSE", 8) == 0) {
        weft_line_receiver_set_raw_mode(lr);
        assert_int_equal(weft_transport_lose_connection(lr->base.transport), WEFT_OK);
    }
}

static void rec_raw(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    tline *t = (tline *)lr;
    assert_true(t->raw_len + len <= sizeof t->raw);
    memcpy(t->raw + t->raw_len, data, len);
    t->raw_len += len;
    t->raw_calls++;
    /* "|" in raw data: back to line mode with the bytes after it as extra. */
    if (t->react) {
        const uint8_t *bar = memchr(data, '|', len);
        if (bar) {
            size_t keep = (size_t)(bar - data);
            t->raw_len -= len - keep;
            assert_int_equal(weft_line_receiver_set_line_mode(lr, bar + 1, len - keep - 1), WEFT_OK);
        }
    }
}

static void rec_exceeded(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    tline *t = (tline *)lr;
    size_t n = len < sizeof t->exceeded ? len : sizeof t->exceeded;
    memcpy(t->exceeded, data, n);
    t->exceeded_len = len;
    t->exceeded_calls++;
}

static const weft_line_hooks hooks_default = {rec_line, rec_raw, NULL};
static const weft_line_hooks hooks_custom = {rec_line, rec_raw, rec_exceeded};

static void tline_destroy(weft_protocol *p)
{
    tline *t = (tline *)p;
    weft_line_receiver_cleanup(&t->lr);
}

static const weft_protocol_ops tline_ops = {
    .data_received = weft_line_receiver_data_received,
    .destroy = tline_destroy,
};

static tline *tline_new(const weft_line_hooks *hooks, bool react)
{
    tline *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->lr.base.ops = &tline_ops;
    assert_int_equal(weft_line_receiver_init(&t->lr, hooks), WEFT_OK);
    t->react = react;
    string_transport_init(&t->st);
    string_transport_connect(&t->st, &t->lr.base, NULL);
    return t;
}

static void tline_free(tline *t)
{
    for (size_t i = 0; i < t->nlines; i++)
        free(t->lines[i]);
    string_transport_lose(&t->st, WEFT_REASON_DONE, true);
    if (!t->st.lost)
        weft_line_receiver_cleanup(&t->lr);
    string_transport_free(&t->st);
    free(t);
}

static void feed(tline *t, const char *s)
{
    string_transport_deliver(&t->st, s, strlen(s));
}

static void expect_lines(tline *t, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    if (t->nlines != n) {
        fprintf(stderr, "expected %zu lines, got %zu:\n", n, t->nlines);
        for (size_t i = 0; i < t->nlines; i++)
            fprintf(stderr, "  [%zu] '%s'\n", i, t->lines[i]);
    }
    assert_int_equal(t->nlines, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(t->lines[i], va_arg(ap, const char *));
    va_end(ap);
}

/* ------------------------------------------------------------------ Tests */

static void init_rejects_bad_arguments(void **state)
{
    (void)state;
    weft_line_receiver lr;
    memset(&lr, 0, sizeof lr);
    weft_line_hooks no_line = {NULL, rec_raw, NULL};
    assert_int_equal(weft_line_receiver_init(&lr, NULL), WEFT_EINVAL);
    assert_int_equal(weft_line_receiver_init(&lr, &no_line), WEFT_EINVAL);
    assert_int_equal(weft_line_receiver_init(NULL, &hooks_default), WEFT_EINVAL);
    assert_int_equal(weft_line_receiver_init(&lr, &hooks_default), WEFT_OK);
    assert_int_equal(lr.delimiter_len, 2);
    assert_memory_equal(lr.delimiter, "\r\n", 2);
    assert_int_equal(lr.line_max, 16384);
    assert_true(lr.line_mode);
    assert_int_equal(weft_line_receiver_set_delimiter(&lr, "", 0), WEFT_EINVAL);
    assert_int_equal(weft_line_receiver_set_delimiter(&lr, "x", WEFT_LINE_DELIMITER_MAX + 1), WEFT_EINVAL);
    assert_int_equal(weft_line_receiver_set_line_max(&lr, 0), WEFT_EINVAL);
    weft_line_receiver_cleanup(&lr);
}

static void splits_lines_and_keeps_partial(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    feed(t, "a\r\nbb\r\n\r\nc");
    expect_lines(t, 3, "a", "bb", "");
    feed(t, "c\r\n");
    expect_lines(t, 4, "a", "bb", "", "cc");
    assert_int_equal(t->lr.lines_received, 4);
    assert_null(t->lr.error);
    assert_int_equal(t->st.lose_calls, 0);
    tline_free(t);
}

static void delimiter_split_across_chunks(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    feed(t, "ab\r");
    expect_lines(t, 0);
    feed(t, "\ncd\r");
    expect_lines(t, 1, "ab");
    feed(t, "\n");
    expect_lines(t, 2, "ab", "cd");
    /* A lone \r inside a line is data. */
    feed(t, "x\ry\r\r\n");
    expect_lines(t, 3, "ab", "cd", "x\ry\r");
    tline_free(t);
}

static void line_of_exactly_max_is_accepted(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    assert_int_equal(weft_line_receiver_set_line_max(&t->lr, 8), WEFT_OK);
    feed(t, "12345678\r\n");
    expect_lines(t, 1, "12345678");
    /* The same, one byte at a time. */
    const char *s = "abcdefgh\r\n";
    for (size_t i = 0; s[i]; i++)
        string_transport_deliver(&t->st, s + i, 1);
    expect_lines(t, 2, "12345678", "abcdefgh");
    assert_null(t->lr.error);
    assert_int_equal(t->st.lose_calls, 0);
    tline_free(t);
}

static void max_plus_partial_delimiter_is_not_an_error(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    assert_int_equal(weft_line_receiver_set_line_max(&t->lr, 8), WEFT_OK);
    feed(t, "12345678\r");
    expect_lines(t, 0);
    assert_null(t->lr.error);
    assert_int_equal(t->st.lose_calls, 0);
    /* The buffer holds at most line_max + delimiter bytes. */
    assert_true(t->lr.part_cap_ <= 10);
    feed(t, "\n");
    expect_lines(t, 1, "12345678");
    tline_free(t);
}

static void over_max_with_delimiter_drops_connection(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    assert_int_equal(weft_line_receiver_set_line_max(&t->lr, 8), WEFT_OK);
    feed(t, "ok\r\n123456789\r\nnext\r\n");
    expect_lines(t, 1, "ok");
    assert_string_equal(t->lr.error, WEFT_REASON_LINE_TOO_LONG);
    assert_true(t->lr.disconnecting);
    assert_int_equal(t->st.lose_calls, 1);
    assert_int_equal(t->st.abort_calls, 0);
    /* Nothing more is delivered. */
    assert_int_equal(weft_line_receiver_feed(&t->lr, (const uint8_t *)"x\r\n", 3), WEFT_ECLOSED);
    expect_lines(t, 1, "ok");
    tline_free(t);
}

static void over_max_without_delimiter_is_bounded(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_custom, false);
    assert_int_equal(weft_line_receiver_set_line_max(&t->lr, 8), WEFT_OK);
    /* One byte at a time: exceeded exactly when line_max + delimiter bytes
     * are buffered without a delimiter, with those bytes. */
    const char *s = "0123456789";
    for (size_t i = 0; i < 9; i++) {
        string_transport_deliver(&t->st, s + i, 1);
        assert_int_equal(t->exceeded_calls, 0);
        assert_true(t->lr.part_cap_ <= 10);
    }
    string_transport_deliver(&t->st, s + 9, 1);
    assert_int_equal(t->exceeded_calls, 1);
    assert_int_equal(t->exceeded_len, 10);
    assert_memory_equal(t->exceeded, "0123456789", 10);
    /* A custom hook keeps the connection; the buffer was cleared. */
    assert_null(t->lr.error);
    assert_int_equal(t->st.lose_calls, 0);
    feed(t, "tail\r\nok\r\n");
    expect_lines(t, 2, "tail", "ok");
    /* One big chunk with no delimiter: the whole chunk is reported. */
    char big[100];
    memset(big, 'z', sizeof big);
    string_transport_deliver(&t->st, big, sizeof big);
    assert_int_equal(t->exceeded_calls, 2);
    assert_int_equal(t->exceeded_len, 100);
    assert_true(t->lr.part_cap_ <= 10);
    tline_free(t);
}

static void over_max_custom_hook_gets_line_delimiter_and_rest(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_custom, false);
    assert_int_equal(weft_line_receiver_set_line_max(&t->lr, 4), WEFT_OK);
    feed(t, "a\r\n12345\r\nb\r\nc");
    expect_lines(t, 1, "a");
    assert_int_equal(t->exceeded_calls, 1);
    assert_int_equal(t->exceeded_len, 11);
    assert_memory_equal(t->exceeded, "12345\r\nb\r\nc", 11);
    /* Twisted clears the buffer: "b" and "c" are gone. */
    feed(t, "d\r\n");
    expect_lines(t, 2, "a", "d");
    tline_free(t);
}

static void lowering_line_max_under_a_pending_line(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    feed(t, "0123456789");
    assert_int_equal(weft_line_receiver_set_line_max(&t->lr, 4), WEFT_OK);
    feed(t, "\r\n");
    expect_lines(t, 0);
    assert_string_equal(t->lr.error, WEFT_REASON_LINE_TOO_LONG);
    assert_int_equal(t->st.lose_calls, 1);
    tline_free(t);
}

static void raw_mode_switch_mid_chunk(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    feed(t, "hdr\r\nRAW\r\nraw\r\nbytes");
    expect_lines(t, 2, "hdr", "RAW");
    assert_false(t->lr.line_mode);
    assert_int_equal(t->raw_len, 10);
    assert_memory_equal(t->raw, "raw\r\nbytes", 10);
    feed(t, "more\r\n");
    assert_int_equal(t->raw_len, 16);
    expect_lines(t, 2, "hdr", "RAW");
    tline_free(t);
}

static void raw_mode_delivers_pending_partial_line(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    feed(t, "par");
    weft_line_receiver_set_raw_mode(&t->lr);
    feed(t, "tial");
    assert_int_equal(t->raw_len, 7);
    assert_memory_equal(t->raw, "partial", 7);
    tline_free(t);
}

static void line_mode_with_extra_from_raw(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    /* Raw data up to '|', then back to line mode with the rest as extra. */
    feed(t, "RAW\r\nblob|x\r\ny\r\nz");
    expect_lines(t, 3, "RAW", "x", "y");
    assert_true(t->lr.line_mode);
    assert_int_equal(t->raw_len, 4);
    assert_memory_equal(t->raw, "blob", 4);
    feed(t, "z\r\n");
    expect_lines(t, 4, "RAW", "x", "y", "zz");
    /* Extra given from outside any hook is processed at once. */
    weft_line_receiver_set_raw_mode(&t->lr);
    assert_int_equal(weft_line_receiver_set_line_mode(&t->lr, "w\r\n", 3), WEFT_OK);
    expect_lines(t, 5, "RAW", "x", "y", "zz", "w");
    tline_free(t);
}

static void reentrant_feed_does_not_recurse(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    /* "FEED" feeds "fed\r\n" from inside line_received: it is appended and
     * comes after the rest of the current chunk, as in Twisted. */
    feed(t, "FEED\r\nafter\r\n");
    expect_lines(t, 3, "FEED", "after", "fed");
    tline_free(t);
}

static void stops_once_disconnecting(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    feed(t, "one\r\nQUIT\r\ntwo\r\nthree\r\n");
    expect_lines(t, 2, "one", "QUIT");
    assert_true(t->lr.disconnecting);
    assert_string_equal(t->lr.error, "Quit");
    assert_int_equal(t->st.lose_calls, 1);
    feed(t, "four\r\n");
    expect_lines(t, 2, "one", "QUIT");
    tline_free(t);
}

static void pause_and_resume(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    feed(t, "a\r\nPAUSE\r\nb\r\nc");
    expect_lines(t, 2, "a", "PAUSE");
    assert_true(t->lr.paused);
    assert_int_equal(t->st.pause_calls, 1);
    assert_true(t->st.reading_paused);
    feed(t, "\r\nd\r\n");
    expect_lines(t, 2, "a", "PAUSE");
    weft_line_receiver_resume(&t->lr);
    assert_int_equal(t->st.resume_calls, 1);
    expect_lines(t, 5, "a", "PAUSE", "b", "c", "d");
    /* Pausing from outside, then resume with nothing held. */
    weft_line_receiver_pause(&t->lr);
    weft_line_receiver_resume(&t->lr);
    feed(t, "e\r\n");
    expect_lines(t, 6, "a", "PAUSE", "b", "c", "d", "e");
    tline_free(t);
}

static void stop_producing_is_for_good(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    weft_line_receiver_stop_producing(&t->lr);
    feed(t, "a\r\n");
    weft_line_receiver_resume(&t->lr);
    expect_lines(t, 0);
    assert_true(t->lr.paused);
    tline_free(t);
}

static void held_bytes_are_bounded(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    t->lr.held_max = 16;
    weft_line_receiver_pause(&t->lr);
    assert_int_equal(weft_line_receiver_feed(&t->lr, (const uint8_t *)"0123456789", 10), WEFT_OK);
    assert_int_equal(weft_line_receiver_feed(&t->lr, (const uint8_t *)"0123456789", 10), WEFT_ENOBUFS);
    assert_string_equal(t->lr.error, WEFT_PROTO_REASON_BUFFER_FULL);
    assert_int_equal(t->st.lose_calls, 1);
    tline_free(t);
}

static void clear_line_buffer_inside_and_outside(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    feed(t, "CLEAR\r\nrest\r\npart");
    expect_lines(t, 1, "CLEAR");
    assert_int_equal(t->cleared_len, 10);
    assert_memory_equal(t->cleared, "rest\r\npart", 10);
    feed(t, "x");
    uint8_t out[4];
    assert_int_equal(weft_line_receiver_clear_line_buffer(&t->lr, out, sizeof out), 1);
    assert_int_equal(out[0], 'x');
    feed(t, "y\r\n");
    expect_lines(t, 2, "CLEAR", "y");
    /* Counting only. */
    feed(t, "abc");
    assert_int_equal(weft_line_receiver_clear_line_buffer(&t->lr, NULL, 0), 3);
    tline_free(t);
}

static void send_line_writes_line_and_delimiter(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    assert_int_equal(weft_line_receiver_send_line(&t->lr, "hello", 5), WEFT_OK);
    assert_int_equal(weft_line_receiver_send_line(&t->lr, "", 0), WEFT_OK);
    assert_string_equal(string_transport_value(&t->st), "hello\r\n\r\n");
    assert_int_equal(weft_line_receiver_set_delimiter(&t->lr, "\n", 1), WEFT_OK);
    assert_int_equal(weft_line_receiver_send_line(&t->lr, "x", 1), WEFT_OK);
    assert_string_equal(string_transport_value(&t->st), "hello\r\n\r\nx\n");
    weft_line_receiver_lose_connection(&t->lr, NULL);
    assert_int_equal(weft_line_receiver_send_line(&t->lr, "late", 4), WEFT_ECLOSED);
    assert_null(t->lr.error);
    tline_free(t);
    weft_line_receiver lr;
    memset(&lr, 0, sizeof lr);
    assert_int_equal(weft_line_receiver_init(&lr, &hooks_default), WEFT_OK);
    assert_int_equal(weft_line_receiver_send_line(&lr, "x", 1), WEFT_ENOTCONN);
    weft_line_receiver_cleanup(&lr);
}

static void custom_delimiters(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    assert_int_equal(weft_line_receiver_set_delimiter(&t->lr, "END", 3), WEFT_OK);
    feed(t, "aEN");
    feed(t, "DbENENDc");
    expect_lines(t, 2, "a", "bEN");
    /* Changing the delimiter re-scans the pending partial line. */
    feed(t, "\nd\n");
    expect_lines(t, 2, "a", "bEN");
    assert_int_equal(weft_line_receiver_set_delimiter(&t->lr, "\n", 1), WEFT_OK);
    expect_lines(t, 4, "a", "bEN", "c", "d");
    tline_free(t);
}

static void delimiter_change_inside_handler(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    feed(t, "DELIM\r\nx\ny\r\n");
    expect_lines(t, 3, "DELIM", "x", "y\r");
    tline_free(t);
}

static void connection_lost_then_cleanup(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    feed(t, "partial");
    string_transport_lose(&t->st, WEFT_REASON_LOST, true);
    assert_null(t->lr.part_);
    assert_null(t->lr.base.transport);
    tline_free(t);
}

static void out_of_memory_drops_cleanly(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, false);
    weft_alloc_fail_after(0);
    feed(t, "partial line");
    weft_alloc_fail_after(-1);
    assert_string_equal(t->lr.error, WEFT_PROTO_REASON_NO_MEMORY);
    assert_int_equal(t->st.lose_calls, 1);
    tline_free(t);
}

/* ------------------------------------------------- Chunking invariance */

typedef struct stream {
    uint8_t *bytes;
    size_t len;
} stream;

/* Lines of 0..max bytes (some exactly max), never containing the delimiter. */
static stream gen_stream(test_rng *r, const char *delim, size_t dl, size_t max, size_t nlines,
                         bool overlong_at_end)
{
    size_t cap = nlines * (max + dl) + 2 * (max + dl) + 16;
    stream s = {malloc(cap), 0};
    assert_non_null(s.bytes);
    const char alphabet[] = "ab\r\nE N D-";
    for (size_t i = 0; i < nlines; i++) {
        size_t n = test_rng_below(r, 8) == 0 ? max : test_rng_below(r, (uint32_t)max + 1);
        size_t start = s.len;
        for (size_t k = 0; k < n; k++) {
            s.bytes[s.len++] = (uint8_t)alphabet[test_rng_below(r, sizeof alphabet - 1)];
            /* Never let the delimiter appear inside a line (nor complete
             * one with the delimiter that follows). */
            size_t have = s.len - start;
            if (have >= dl && memcmp(s.bytes + s.len - dl, delim, dl) == 0)
                s.bytes[s.len - 1] = 'q';
        }
        memcpy(s.bytes + s.len, delim, dl);
        s.len += dl;
    }
    if (overlong_at_end) {
        memset(s.bytes + s.len, 'L', max + 1);
        s.len += max + 1;
        memcpy(s.bytes + s.len, delim, dl);
        s.len += dl;
    }
    return s;
}

/* The delimiter may still appear across a line's end and the delimiter
 * (e.g. line "aE" + "END"): the expected lines come from the whole stream
 * fed at once, which is what every split must reproduce. */
static void feed_split(tline *t, const stream *s, test_rng *r, int mode)
{
    size_t off = 0;
    while (off < s->len) {
        size_t n;
        if (mode == 0)
            n = 1;
        else if (mode == 1)
            n = 1 + test_rng_below(r, 8);
        else
            n = 1 + test_rng_below(r, 64);
        if (n > s->len - off)
            n = s->len - off;
        string_transport_deliver(&t->st, s->bytes + off, n);
        off += n;
    }
}

static void check_invariance(const char *delim, size_t dl, size_t max, int seeds)
{
    for (int seed = 0; seed < seeds; seed++) {
        test_rng r;
        test_rng_init(&r, (uint64_t)seed * 7919u + dl);
        bool overlong = seed % 5 == 4;
        stream s = gen_stream(&r, delim, dl, max, 1 + test_rng_below(&r, 20), overlong);
        tline *whole = tline_new(&hooks_default, false);
        weft_line_receiver_set_delimiter(&whole->lr, delim, dl);
        weft_line_receiver_set_line_max(&whole->lr, max);
        string_transport_deliver(&whole->st, s.bytes, s.len);
        for (int mode = 0; mode < 3; mode++) {
            tline *t = tline_new(&hooks_default, false);
            weft_line_receiver_set_delimiter(&t->lr, delim, dl);
            weft_line_receiver_set_line_max(&t->lr, max);
            feed_split(t, &s, &r, mode);
            if (t->nlines != whole->nlines)
                fail_msg("seed %d mode %d: %zu lines, whole stream gave %zu", seed, mode,
                         t->nlines, whole->nlines);
            for (size_t i = 0; i < t->nlines; i++) {
                assert_int_equal(t->line_lens[i], whole->line_lens[i]);
                assert_memory_equal(t->lines[i], whole->lines[i], t->line_lens[i]);
            }
            /* Same outcome for the overlong line, whatever the split. */
            if (overlong) {
                assert_string_equal(t->lr.error, WEFT_REASON_LINE_TOO_LONG);
                assert_int_equal(t->st.lose_calls, 1);
            } else {
                assert_null(t->lr.error);
                assert_int_equal(t->lr.part_len_, 0);
            }
            assert_true(t->lr.part_cap_ <= max + dl);
            tline_free(t);
        }
        if (overlong)
            assert_string_equal(whole->lr.error, WEFT_REASON_LINE_TOO_LONG);
        tline_free(whole);
        free(s.bytes);
        test_rng_done(&r);
    }
}

static void chunking_invariance_crlf(void **state)
{
    (void)state;
    check_invariance("\r\n", 2, 24, 1000);
}

static void chunking_invariance_long_delimiter(void **state)
{
    (void)state;
    check_invariance("END", 3, 16, 1000);
    check_invariance("\n", 1, 5, 500);
}

/* Twisted stops a chunk once transport.disconnecting is set, whoever closed
 * the transport: here line_received closes the transport itself. */
static void stops_once_transport_disconnecting(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    assert_false(weft_transport_disconnecting(&t->st.base));
    feed(t, "one\r\nCLOSE\r\ntwo\r\nthr");
    expect_lines(t, 2, "one", "CLOSE");
    assert_true(weft_transport_disconnecting(&t->st.base));
    assert_int_equal(t->st.lose_calls, 1);
    /* The receiver did not decide the drop: no error, not its own flag. */
    assert_false(t->lr.disconnecting);
    assert_null(t->lr.error);
    /* The unparsed rest is gone, and later line-mode bytes are ignored. */
    assert_int_equal(weft_line_receiver_clear_line_buffer(&t->lr, NULL, 0), 0);
    feed(t, "ee\r\nfour\r\n");
    expect_lines(t, 2, "one", "CLOSE");
    assert_int_equal(weft_line_receiver_clear_line_buffer(&t->lr, NULL, 0), 0);
    tline_free(t);

    /* abort counts too. */
    t = tline_new(&hooks_default, true);
    feed(t, "ABORT\r\nx\r\n");
    expect_lines(t, 1, "ABORT");
    assert_int_equal(t->st.abort_calls, 1);
    tline_free(t);

    /* Closed before the chunk arrives: no line of it is delivered. */
    t = tline_new(&hooks_default, false);
    assert_int_equal(weft_transport_lose_connection(&t->st.base), WEFT_OK);
    feed(t, "a\r\nb\r\n");
    expect_lines(t, 0);
    tline_free(t);

    /* Held bytes fed from a hook before the close go too. */
    t = tline_new(&hooks_default, true);
    feed(t, "FEED\r\nCLOSE\r\nafter\r\n");
    expect_lines(t, 2, "FEED", "CLOSE");
    tline_free(t);

    /* Only half-closing does not stop delivery. */
    t = tline_new(&hooks_default, false);
    assert_int_equal(weft_transport_lose_write_connection(&t->st.base), WEFT_OK);
    assert_false(weft_transport_disconnecting(&t->st.base));
    feed(t, "a\r\nb\r\n");
    expect_lines(t, 2, "a", "b");
    tline_free(t);
}

/* A line whose hook switches to raw mode and closes ends the chunk (Twisted
 * checks after every line); raw data arriving later is still delivered, as
 * Twisted's raw mode does not look at disconnecting. */
static void raw_mode_and_disconnecting(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    feed(t, "a\r\nRAWCLOSE\r\nrest of chunk");
    expect_lines(t, 2, "a", "RAWCLOSE");
    assert_int_equal(t->raw_len, 0);
    feed(t, "later raw");
    assert_int_equal(t->raw_len, 9);
    assert_memory_equal(t->raw, "later raw", 9);
    tline_free(t);
}

/* A transport without the disconnecting operation never says it is
 * disconnecting: the receiver delivers every line, as before the query. */
static void transport_without_disconnecting_op(void **state)
{
    (void)state;
    tline *t = tline_new(&hooks_default, true);
    weft_transport_ops ops = *t->st.base.ops;
    ops.disconnecting = NULL;
    const weft_transport_ops *saved = t->st.base.ops;
    t->st.base.ops = &ops;
    feed(t, "one\r\nCLOSE\r\ntwo\r\n");
    assert_false(weft_transport_disconnecting(&t->st.base));
    expect_lines(t, 3, "one", "CLOSE", "two");
    t->st.base.ops = saved;
    assert_true(weft_transport_disconnecting(&t->st.base));
    tline_free(t);
}

/* ------------------------------------------------ on the simulator */

/* A line server whose line_received closes the transport on "CLOSE"; a
 * client that sends one chunk of several lines. */
typedef struct sim_line {
    weft_line_receiver lr;
    char lines[8][16];
    size_t nlines;
    bool lost;
    bool disconnecting_in_lost;
} sim_line;

static void sim_line_received(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    sim_line *s = (sim_line *)lr;
    assert_true(s->nlines < 8 && len < 16);
    memcpy(s->lines[s->nlines], line, len);
    s->lines[s->nlines][len] = '\0';
    s->nlines++;
    if (len == 5 && memcmp(line, "CLOSE", 5) == 0) {
        assert_false(weft_transport_disconnecting(lr->base.transport));
        assert_int_equal(weft_transport_lose_connection(lr->base.transport), WEFT_OK);
        assert_true(weft_transport_disconnecting(lr->base.transport));
    }
}

static const weft_line_hooks sim_hooks = {sim_line_received, NULL, NULL};

static void sim_lost(weft_protocol *p, const weft_failure *reason)
{
    sim_line *s = (sim_line *)p;
    (void)reason;
    s->lost = true;
    s->disconnecting_in_lost = weft_transport_disconnecting(p->transport);
}

static void sim_destroy(weft_protocol *p)
{
    weft_line_receiver_cleanup((weft_line_receiver *)p);
}

static const weft_protocol_ops sim_line_ops = {
    .data_received = weft_line_receiver_data_received,
    .connection_lost = sim_lost,
    .destroy = sim_destroy,
};

static sim_line sim_server;

static weft_protocol *sim_build_server(weft_factory *f, const weft_address *peer)
{
    (void)f;
    (void)peer;
    memset(&sim_server, 0, sizeof sim_server);
    sim_server.lr.base.ops = &sim_line_ops;
    assert_int_equal(weft_line_receiver_init(&sim_server.lr, &sim_hooks), WEFT_OK);
    return &sim_server.lr.base;
}

typedef struct sim_client {
    weft_protocol base;
    bool lost;
    char reason[40];
} sim_client;

static sim_client sim_cl;

static void sim_client_made(weft_protocol *p)
{
    const char *chunk = "one\r\nCLOSE\r\ntwo\r\nthree\r\n";
    assert_int_equal(weft_transport_write(p->transport, chunk, strlen(chunk)), WEFT_OK);
}

static void sim_client_data(weft_protocol *p, const uint8_t *d, size_t n)
{
    (void)p;
    (void)d;
    (void)n;
}

static void sim_client_lost(weft_protocol *p, const weft_failure *reason)
{
    sim_client *c = (sim_client *)p;
    c->lost = true;
    snprintf(c->reason, sizeof c->reason, "%s", reason->type);
}

static const weft_protocol_ops sim_client_ops = {
    .connection_made = sim_client_made,
    .data_received = sim_client_data,
    .connection_lost = sim_client_lost,
};

static weft_protocol *sim_build_client(weft_factory *f, const weft_address *peer)
{
    (void)f;
    (void)peer;
    memset(&sim_cl, 0, sizeof sim_cl);
    sim_cl.base.ops = &sim_client_ops;
    return &sim_cl.base;
}

static void stops_once_disconnecting_on_the_simulator(void **state)
{
    (void)state;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.net.latency_min_ns = cfg.net.latency_max_ns = WEFT_NS_PER_MS;
    weft_sim *sim = weft_sim_new(&cfg, NULL);
    assert_non_null(sim);
    weft_reactor *r = weft_sim_reactor(sim);
    assert_int_equal(weft_sim_add_host(sim, "server"), WEFT_OK);
    assert_int_equal(weft_sim_add_host(sim, "client"), WEFT_OK);
    weft_factory server_f = {.build_protocol = sim_build_server};
    weft_factory client_f = {.build_protocol = sim_build_client};
    assert_int_equal(weft_sim_set_current_host(sim, "server"), WEFT_OK);
    assert_int_equal(weft_listen(r, "tcp:2000", &server_f, NULL), WEFT_OK);
    assert_int_equal(weft_sim_set_current_host(sim, "client"), WEFT_OK);
    assert_int_equal(weft_connect_factory(r, "tcp:server:2000", &client_f, NULL), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(sim), WEFT_OK);
    /* One chunk (the default choices do not split it): "two" and "three"
     * came in the same chunk as CLOSE and are not delivered. */
    assert_int_equal(sim_server.nlines, 2);
    assert_string_equal(sim_server.lines[0], "one");
    assert_string_equal(sim_server.lines[1], "CLOSE");
    assert_true(sim_server.lost);
    assert_true(sim_server.disconnecting_in_lost);
    assert_null(sim_server.lr.error);
    assert_true(sim_cl.lost);
    assert_string_equal(sim_cl.reason, WEFT_REASON_DONE);
    weft_sim_free(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_rejects_bad_arguments),
        cmocka_unit_test(splits_lines_and_keeps_partial),
        cmocka_unit_test(delimiter_split_across_chunks),
        cmocka_unit_test(line_of_exactly_max_is_accepted),
        cmocka_unit_test(max_plus_partial_delimiter_is_not_an_error),
        cmocka_unit_test(over_max_with_delimiter_drops_connection),
        cmocka_unit_test(over_max_without_delimiter_is_bounded),
        cmocka_unit_test(over_max_custom_hook_gets_line_delimiter_and_rest),
        cmocka_unit_test(lowering_line_max_under_a_pending_line),
        cmocka_unit_test(raw_mode_switch_mid_chunk),
        cmocka_unit_test(raw_mode_delivers_pending_partial_line),
        cmocka_unit_test(line_mode_with_extra_from_raw),
        cmocka_unit_test(reentrant_feed_does_not_recurse),
        cmocka_unit_test(stops_once_disconnecting),
        cmocka_unit_test(stops_once_transport_disconnecting),
        cmocka_unit_test(raw_mode_and_disconnecting),
        cmocka_unit_test(transport_without_disconnecting_op),
        cmocka_unit_test(stops_once_disconnecting_on_the_simulator),
        cmocka_unit_test(pause_and_resume),
        cmocka_unit_test(stop_producing_is_for_good),
        cmocka_unit_test(held_bytes_are_bounded),
        cmocka_unit_test(clear_line_buffer_inside_and_outside),
        cmocka_unit_test(send_line_writes_line_and_delimiter),
        cmocka_unit_test(custom_delimiters),
        cmocka_unit_test(delimiter_change_inside_handler),
        cmocka_unit_test(connection_lost_then_cleanup),
        cmocka_unit_test(out_of_memory_drops_cleanly),
        cmocka_unit_test(chunking_invariance_crlf),
        cmocka_unit_test(chunking_invariance_long_delimiter),
    };
    return cmocka_run_group_tests_name("protocols_line", tests, NULL, NULL);
}
