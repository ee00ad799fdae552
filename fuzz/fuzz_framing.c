/* fuzz_framing.c: the framing receivers of weft/protocols.h (line receiver,
 * int32/int16/int8 length prefixes, netstrings) must not depend on how the
 * stream is cut into chunks, and must never pass their limits.
 *
 * Input: 7 configuration bytes (line delimiter and line_max, prefix size and
 * string_max, netstring string_max, held_max, number of chunk-size bytes),
 * then the chunk sizes, then the stream. Each receiver gets the stream twice:
 * whole, in one feed, and cut into the chunks (sizes cycled). Its hooks log
 * every message; messages starting with 'P' pause the receiver (the driver
 * resumes it after each feed), a line starting with 'R' switches the line
 * receiver to raw mode until a raw 'L' byte (the bytes after it go back to
 * line mode as "extra"), a line "Q" loses the connection.
 *
 * Properties: the two logs are equal, and so are the final error, the
 * disconnecting flag and the count of messages; the only exception is the
 * held-bytes limit (ReceiveBufferFull, or set_line_mode refusing extra
 * bytes past held_max), which depends on how much arrives while paused or in
 * one chunk: a run that hit it must have logged a prefix of the other's
 * messages. Every message respects its limit (line_max, string_max), the
 * partial frame and the held bytes stay within their bounds after every
 * feed. A violation prints both logs and aborts. Each receiver then runs
 * the chunked stream once more with one allocation failing (the n-th, n
 * below 8 from the settings): not compared, but limits, no crash, no leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/protocols.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct log_buf {
    uint8_t *p;
    size_t len, cap;
    size_t messages;
} log_buf;

static void framing_die(const char *what)
{
    fprintf(stderr, "fuzz_framing: %s\n", what);
    abort();
}

static void log_put(log_buf *l, const void *bytes, size_t n)
{
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->len + n)
            cap *= 2;
        uint8_t *np = realloc(l->p, cap);
        if (!np)
            framing_die("out of memory");
        l->p = np;
        l->cap = cap;
    }
    memcpy(l->p + l->len, bytes, n);
    l->len += n;
}

/* One message: kind, length (8 bytes), bytes. */
static void log_msg(log_buf *l, char kind, const uint8_t *bytes, size_t n)
{
    uint64_t n64 = n;
    log_put(l, &kind, 1);
    log_put(l, &n64, sizeof n64);
    if (n)
        log_put(l, bytes, n);
    l->messages++;
}

typedef struct config {
    uint8_t delim[4];
    size_t delim_len;
    size_t line_max;
    unsigned prefix;
    size_t int_max;
    size_t ns_max;
    size_t held_max; /* 0: the default */
    const uint8_t *chunks;
    size_t nchunks;
    const uint8_t *stream;
    size_t len;
} config;

/* ------------------------------------------------------------ receivers */

typedef struct line_rx {
    weft_line_receiver lr; /* first */
    log_buf log;
    const config *cfg;
    /* Raw bytes since the last switch to raw mode (a message when the mode
     * switches back or the stream ends). */
    log_buf raw;
    bool in_raw;
    bool extra_refused; /* set_line_mode's extra did not fit held_max */
} line_rx;

static void line_got(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    line_rx *x = (line_rx *)lr;
    if (len > x->cfg->line_max)
        framing_die("a line longer than line_max was delivered");
    log_msg(&x->log, 'l', line, len);
    if (len > 0 && line[0] == 'P')
        weft_line_receiver_pause(lr);
    if (len > 0 && line[0] == 'R') {
        x->in_raw = true;
        x->raw.len = 0;
        weft_line_receiver_set_raw_mode(lr);
    }
    if (len == 1 && line[0] == 'Q')
        weft_line_receiver_lose_connection(lr, "Quit");
}

static void raw_flush(line_rx *x)
{
    if (x->in_raw)
        log_msg(&x->log, 'r', x->raw.p, x->raw.len);
    x->raw.len = 0;
}

static void raw_got(weft_line_receiver *lr, const uint8_t *bytes, size_t len)
{
    line_rx *x = (line_rx *)lr;
    if (!x->in_raw)
        framing_die("raw data outside raw mode");
    const uint8_t *l = len ? memchr(bytes, 'L', len) : NULL;
    if (!l) {
        log_put(&x->raw, bytes, len);
        return;
    }
    size_t head = (size_t)(l - bytes) + 1;
    log_put(&x->raw, bytes, head);
    raw_flush(x);
    x->in_raw = false;
    if (weft_line_receiver_set_line_mode(lr, bytes + head, len - head) != WEFT_OK)
        x->extra_refused = true;
}

static const weft_line_hooks line_hooks = {line_got, raw_got, NULL};

typedef struct int_rx {
    weft_int_receiver ir; /* first */
    log_buf log;
    const config *cfg;
} int_rx;

static void int_got(weft_int_receiver *ir, const uint8_t *s, size_t len)
{
    int_rx *x = (int_rx *)ir;
    if (len > x->cfg->int_max)
        framing_die("an int-prefixed string longer than string_max was delivered");
    log_msg(&x->log, 'i', s, len);
    if (len > 0 && s[0] == 'P')
        weft_int_receiver_pause(ir);
}

static const weft_int_hooks int_hooks = {int_got, NULL};

typedef struct ns_rx {
    weft_netstring_receiver nr; /* first */
    log_buf log;
    const config *cfg;
} ns_rx;

static void ns_got(weft_netstring_receiver *nr, const uint8_t *s, size_t len)
{
    ns_rx *x = (ns_rx *)nr;
    if (len > x->cfg->ns_max)
        framing_die("a netstring longer than string_max was delivered");
    log_msg(&x->log, 'n', s, len);
    if (len > 0 && s[0] == 'P')
        weft_netstring_receiver_pause(nr);
}

static const weft_netstring_hooks ns_hooks = {ns_got};

/* ---------------------------------------------------------------- runs */

typedef struct outcome {
    log_buf log;
    const char *error;
    bool disconnecting;
    bool limited; /* the held-bytes limit struck (ReceiveBufferFull, extra refused) */
    uint64_t count;
} outcome;

enum { KIND_LINE, KIND_INT, KIND_NETSTRING, KIND_COUNT };

/* Feed cfg's stream to a fresh receiver of `kind`, whole or chunked. */
static void run(int kind, const config *cfg, bool chunked, outcome *out)
{
    line_rx lx;
    int_rx ix;
    ns_rx nx;
    memset(&lx, 0, sizeof lx);
    memset(&ix, 0, sizeof ix);
    memset(&nx, 0, sizeof nx);
    lx.cfg = ix.cfg = nx.cfg = cfg;
    switch (kind) {
    case KIND_LINE:
        if (weft_line_receiver_init(&lx.lr, &line_hooks) != WEFT_OK ||
            weft_line_receiver_set_delimiter(&lx.lr, cfg->delim, cfg->delim_len) != WEFT_OK ||
            weft_line_receiver_set_line_max(&lx.lr, cfg->line_max) != WEFT_OK)
            framing_die("line receiver setup");
        if (cfg->held_max)
            lx.lr.held_max = cfg->held_max;
        break;
    case KIND_INT:
        if (weft_int_receiver_init(&ix.ir, cfg->prefix, &int_hooks) != WEFT_OK ||
            weft_int_receiver_set_string_max(&ix.ir, cfg->int_max) != WEFT_OK)
            framing_die("int receiver setup");
        if (cfg->held_max)
            ix.ir.held_max = cfg->held_max;
        break;
    default:
        if (weft_netstring_receiver_init(&nx.nr, &ns_hooks) != WEFT_OK ||
            weft_netstring_receiver_set_string_max(&nx.nr, cfg->ns_max) != WEFT_OK)
            framing_die("netstring receiver setup");
        if (cfg->held_max)
            nx.nr.held_max = cfg->held_max;
        break;
    }
    size_t at = 0, ci = 0;
    while (at < cfg->len || (at == 0 && cfg->len == 0)) {
        size_t n = cfg->len - at;
        if (chunked) {
            size_t want = cfg->nchunks ? (size_t)cfg->chunks[ci++ % cfg->nchunks] % 64 + 1 : 1;
            if (want < n)
                n = want;
        }
        const uint8_t *p = cfg->stream + at;
        switch (kind) {
        case KIND_LINE:
            weft_line_receiver_feed(&lx.lr, p, n);
            for (int k = 0; k < (1 << 20) && lx.lr.paused && !lx.lr.stopped; k++)
                weft_line_receiver_resume(&lx.lr);
            if (lx.lr.part_len_ >= lx.lr.line_max + lx.lr.delimiter_len)
                framing_die("line receiver: partial line past line_max + delimiter");
            if (lx.lr.rx_.held_len > lx.lr.held_max)
                framing_die("line receiver: held bytes past held_max");
            break;
        case KIND_INT:
            weft_int_receiver_feed(&ix.ir, p, n);
            for (int k = 0; k < (1 << 20) && ix.ir.paused; k++)
                weft_int_receiver_resume(&ix.ir);
            if (ix.ir.part_len_ > ix.ir.string_max + ix.ir.prefix_bytes)
                framing_die("int receiver: partial frame past string_max + prefix");
            if (ix.ir.rx_.held_len > ix.ir.held_max)
                framing_die("int receiver: held bytes past held_max");
            break;
        default:
            weft_netstring_receiver_feed(&nx.nr, p, n);
            for (int k = 0; k < (1 << 20) && nx.nr.paused; k++)
                weft_netstring_receiver_resume(&nx.nr);
            if (nx.nr.part_len_ > nx.nr.string_max + 1)
                framing_die("netstring receiver: partial payload past string_max + 1");
            if (nx.nr.rx_.held_len > nx.nr.held_max)
                framing_die("netstring receiver: held bytes past held_max");
            break;
        }
        at += n;
        if (cfg->len == 0)
            break;
    }
    switch (kind) {
    case KIND_LINE:
        raw_flush(&lx);
        out->log = lx.log;
        out->error = lx.lr.error;
        out->disconnecting = lx.lr.disconnecting;
        out->count = lx.lr.lines_received;
        out->limited = lx.extra_refused;
        free(lx.raw.p);
        weft_line_receiver_cleanup(&lx.lr);
        break;
    case KIND_INT:
        out->log = ix.log;
        out->error = ix.ir.error;
        out->disconnecting = ix.ir.disconnecting;
        out->count = ix.ir.strings_received;
        weft_int_receiver_cleanup(&ix.ir);
        break;
    default:
        out->log = nx.log;
        out->error = nx.nr.error;
        out->disconnecting = nx.nr.disconnecting;
        out->count = nx.nr.strings_received;
        weft_netstring_receiver_cleanup(&nx.nr);
        break;
    }
}

static void dump_log(const char *name, const log_buf *l)
{
    fprintf(stderr, "--- %s (%zu messages)\n", name, l->messages);
    size_t i = 0;
    while (i + 9 <= l->len) {
        char kind = (char)l->p[i];
        uint64_t n;
        memcpy(&n, l->p + i + 1, sizeof n);
        i += 9;
        fprintf(stderr, "%c %llu \"", kind, (unsigned long long)n);
        for (uint64_t k = 0; k < n && i < l->len; k++, i++) {
            uint8_t c = l->p[i];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                fputc(c, stderr);
            else
                fprintf(stderr, "\\x%02x", c);
        }
        fprintf(stderr, "\"\n");
    }
}

static const char *const kind_names[KIND_COUNT] = {"line receiver", "int receiver",
                                                   "netstring receiver"};

static void differ(int kind, const char *what, const outcome *whole, const outcome *chunked)
{
    fprintf(stderr, "fuzz_framing: %s: %s (errors: whole %s, chunked %s)\n", kind_names[kind],
            what, whole->error ? whole->error : "none", chunked->error ? chunked->error : "none");
    dump_log("whole stream", &whole->log);
    dump_log("chunked stream", &chunked->log);
    abort();
}

static bool is_full(const char *error)
{
    return error && strcmp(error, WEFT_PROTO_REASON_BUFFER_FULL) == 0;
}

static void compare(int kind, const outcome *w, const outcome *c)
{
    bool wl = w->limited || is_full(w->error), cl = c->limited || is_full(c->error);
    if (wl || cl) {
        /* The run that hit the limit logged a prefix of the other's log. */
        const outcome *shorter = w->log.len <= c->log.len ? w : c;
        const outcome *longer = shorter == w ? c : w;
        bool shorter_limited = shorter == w ? wl : cl;
        if (!shorter_limited && shorter->log.len != longer->log.len)
            differ(kind, "the run that did not hit the held limit logged less", w, c);
        if (shorter->log.len && memcmp(shorter->log.p, longer->log.p, shorter->log.len) != 0)
            differ(kind, "messages before the held limit differ", w, c);
        return;
    }
    if (w->log.len != c->log.len || (w->log.len && memcmp(w->log.p, c->log.p, w->log.len) != 0))
        differ(kind, "the messages depend on the chunking", w, c);
    if ((w->error == NULL) != (c->error == NULL) ||
        (w->error && strcmp(w->error, c->error) != 0))
        differ(kind, "the error depends on the chunking", w, c);
    if (w->disconnecting != c->disconnecting || w->count != c->count)
        differ(kind, "the final state depends on the chunking", w, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 7)
        return 0;
    config cfg;
    memset(&cfg, 0, sizeof cfg);
    static const struct {
        const char *d;
        size_t len;
    } delims[4] = {{"\r\n", 2}, {"\n", 1}, {"", 1}, {"ab", 2}};
    unsigned dc = data[0] % 4;
    memcpy(cfg.delim, delims[dc].d, delims[dc].len);
    cfg.delim_len = delims[dc].len;
    cfg.line_max = data[1] >= 192 ? WEFT_LINE_MAX_DEFAULT : (size_t)data[1] % 64 + 1;
    static const unsigned prefixes[3] = {1, 2, 4};
    cfg.prefix = prefixes[data[2] % 3];
    cfg.int_max = (size_t)data[3] % 100 + 1;
    cfg.ns_max = (size_t)data[4] % 200 + 1;
    cfg.held_max = data[5] == 0 ? 0 : 8 + (size_t)data[5] * 4;
    size_t k = data[6] % 16;
    if (7 + k > size)
        k = size - 7;
    cfg.chunks = data + 7;
    cfg.nchunks = k;
    cfg.stream = data + 7 + k;
    cfg.len = size - 7 - k;

    for (int kind = 0; kind < KIND_COUNT; kind++) {
        outcome w, c;
        memset(&w, 0, sizeof w);
        memset(&c, 0, sizeof c);
        run(kind, &cfg, false, &w);
        run(kind, &cfg, true, &c);
        compare(kind, &w, &c);
        free(w.log.p);
        free(c.log.p);
        /* Once more, chunked, with one of the receiver's allocations failing:
         * the outcome is not compared, the limits and memory rules hold. */
        outcome o;
        memset(&o, 0, sizeof o);
        weft_alloc_fail_after(data[6] % 8);
        run(kind, &cfg, true, &o);
        weft_alloc_fail_after(-1);
        free(o.log.p);
    }
    return 0;
}
