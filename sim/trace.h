/* trace.h: the trace record encoding and text buffer, shared by sim.c and
 * trace.c. Internal.
 *
 * The hash is over a sequence of 64-bit words per record (docs/simulator.md):
 *   event:  1, time_ns, seq, strhash(label), host
 *   choice: 2, time_ns, value | bound << 32, strhash(label)
 *   note:   3, time_ns, strhash(kind), strhash(format), then one word per
 *           argument the format consumes (weft__trace_hash_args)
 * strhash is weft__trace_memhash over the string's bytes (no NUL). Each word
 * is mixed in with weft__trace_mix. The text lines are pure renderings of the
 * same records and never feed the hash, so a note costs no formatting when
 * no text is wanted.
 */
#ifndef WEFT_SIM_TRACE_H
#define WEFT_SIM_TRACE_H

#include <stdarg.h>

#include "weft/sim.h"

#define WEFT__TRACE_HASH_INIT UINT64_C(0xcbf29ce484222325)
#define WEFT__TRACE_EVENT 1u
#define WEFT__TRACE_CHOICE 2u
#define WEFT__TRACE_NOTE 3u
/* Longest "seconds.nanoseconds" rendering, with its NUL. */
#define WEFT__TRACE_TIME_MAX 32

typedef struct weft__trace {
    uint64_t hash;
    weft_trace_sink sink;
    void *sink_ctx;
    bool keep;
    bool text_truncated; /* keep_lines ran out of memory: text is partial */
    char *text;          /* NUL-separated lines */
    size_t text_len, text_cap;
} weft__trace;

static inline void weft__trace_mix(uint64_t *h, uint64_t w)
{
    uint64_t x = (*h ^ w) * UINT64_C(0xff51afd7ed558ccd);
    *h = x ^ (x >> 33);
}

static inline bool weft__trace_text_on(const weft__trace *t)
{
    return t->sink != NULL || t->keep;
}

void weft__trace_init(weft__trace *t, weft_trace_sink sink, void *ctx, bool keep);
void weft__trace_destroy(weft__trace *t);
/* The string hash: weft__trace_mix over len, then the bytes as 64-bit
 * little-endian words (the last one zero-padded). */
uint64_t weft__trace_memhash(const void *p, size_t len);
uint64_t weft__trace_strhash(const char *s);
/* Mix one word per argument that the printf format fmt consumes, reading
 * them from *ap: integers as their value (converted as printf converts it,
 * then sign-extended to 64 bits), '*' widths and precisions likewise,
 * strings as weft__trace_memhash of the bytes printf would print (NULL as
 * "(null)"), floating point as the bits of the double, pointers (%p) as 0
 * (addresses are never part of a run's identity) and %n as nothing. An
 * unknown conversion mixes UINT64_MAX and stops reading arguments. */
void weft__trace_hash_args(uint64_t *h, const char *fmt, va_list *ap);
/* Render t as "S.NNNNNNNNN" into buf (WEFT__TRACE_TIME_MAX bytes); returns
 * the length. Integers only. */
size_t weft__trace_fmt_time(char *buf, weft_time_ns t);
/* Hand a rendered line (no newline) to the sink and the kept text. */
void weft__trace_emit(weft__trace *t, const char *line, size_t len);

#endif
