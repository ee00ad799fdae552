/* trace.c: the trace's string hash, time rendering and text sink (see
 * trace.h for the record encoding). The simulator mixes records into the hash
 * itself (sim.c) and calls weft__trace_emit only when text is wanted, so a
 * run without a sink or keep_lines never formats a line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sim/trace.h"

void weft__trace_init(weft__trace *t, weft_trace_sink sink, void *ctx, bool keep)
{
    memset(t, 0, sizeof *t);
    t->hash = WEFT__TRACE_HASH_INIT;
    t->sink = sink;
    t->sink_ctx = ctx;
    t->keep = keep;
}

void weft__trace_destroy(weft__trace *t)
{
    weft_free(t->text);
    t->text = NULL;
    t->text_len = t->text_cap = 0;
}

uint64_t weft__trace_strhash(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const unsigned char *p = (const unsigned char *)s;
    for (;;) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
        if (*p == 0)
            break;
        p++;
    }
    return h;
}

size_t weft__trace_fmt_time(char *buf, weft_time_ns t)
{
    const char *sign = "";
    uint64_t u;
    if (t < 0) {
        sign = "-";
        u = (uint64_t)0 - (uint64_t)t;
    } else {
        u = (uint64_t)t;
    }
    uint64_t sec = u / (uint64_t)WEFT_NS_PER_S;
    uint64_t ns = u % (uint64_t)WEFT_NS_PER_S;
    int n = snprintf(buf, WEFT__TRACE_TIME_MAX, "%s%" PRIu64 ".%09" PRIu64, sign, sec, ns);
    return n > 0 ? (size_t)n : 0;
}

void weft__trace_emit(weft__trace *t, const char *line, size_t len)
{
    if (t->sink)
        t->sink(line, len, t->sink_ctx);
    if (!t->keep || t->text_truncated)
        return;
    if (t->text_cap - t->text_len < len + 1) {
        size_t cap = t->text_cap ? t->text_cap : 4096;
        while (cap - t->text_len < len + 1)
            cap *= 2;
        char *p = weft_realloc(t->text, cap);
        if (!p) {
            t->text_truncated = true;
            return;
        }
        t->text = p;
        t->text_cap = cap;
    }
    memcpy(t->text + t->text_len, line, len);
    t->text[t->text_len + len] = '\0';
    t->text_len += len + 1;
}
