/* trace.c: the trace's string hash, time rendering and text sink (see
 * trace.h for the record encoding). The simulator mixes records into the hash
 * itself (sim.c) and calls weft__trace_emit only when text is wanted, so a
 * run without a sink or keep_lines never formats a line.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
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

uint64_t weft__trace_memhash(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = WEFT__TRACE_HASH_INIT;
    weft__trace_mix(&h, (uint64_t)len);
    for (; len >= 8; b += 8, len -= 8) {
        uint64_t w = 0;
        for (unsigned i = 0; i < 8; i++)
            w |= (uint64_t)b[i] << (8 * i); /* one load on a little-endian CPU */
        weft__trace_mix(&h, w);
    }
    if (len) {
        uint64_t w = 0;
        for (unsigned i = 0; i < len; i++)
            w |= (uint64_t)b[i] << (8 * i);
        weft__trace_mix(&h, w);
    }
    return h;
}

uint64_t weft__trace_strhash(const char *s)
{
    return weft__trace_memhash(s, strlen(s));
}

/* Length modifiers of a conversion. */
enum { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_J, LEN_Z, LEN_T, LEN_BIG_L };

static uint64_t signed_arg(va_list *ap, int mod)
{
    switch (mod) {
    case LEN_HH:
        return (uint64_t)(int64_t)(signed char)va_arg(*ap, int);
    case LEN_H:
        return (uint64_t)(int64_t)(short)va_arg(*ap, int);
    case LEN_L:
        return (uint64_t)(int64_t)va_arg(*ap, long);
    case LEN_LL:
        return (uint64_t)(int64_t)va_arg(*ap, long long);
    case LEN_J:
        return (uint64_t)(int64_t)va_arg(*ap, intmax_t);
    case LEN_Z:
        return (uint64_t)(int64_t)va_arg(*ap, ptrdiff_t); /* signed size_t */
    case LEN_T:
        return (uint64_t)(int64_t)va_arg(*ap, ptrdiff_t);
    default:
        return (uint64_t)(int64_t)va_arg(*ap, int);
    }
}

static uint64_t unsigned_arg(va_list *ap, int mod)
{
    switch (mod) {
    case LEN_HH:
        return (uint64_t)(unsigned char)va_arg(*ap, unsigned);
    case LEN_H:
        return (uint64_t)(unsigned short)va_arg(*ap, unsigned);
    case LEN_L:
        return (uint64_t)va_arg(*ap, unsigned long);
    case LEN_LL:
        return (uint64_t)va_arg(*ap, unsigned long long);
    case LEN_J:
        return (uint64_t)va_arg(*ap, uintmax_t);
    case LEN_Z:
        return (uint64_t)va_arg(*ap, size_t);
    case LEN_T:
        return (uint64_t)va_arg(*ap, ptrdiff_t);
    default:
        return (uint64_t)va_arg(*ap, unsigned);
    }
}

void weft__trace_hash_args(uint64_t *h, const char *fmt, va_list *ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == '%')
            continue;
        while (*p == '-' || *p == '+' || *p == ' ' || *p == '#' || *p == '0')
            p++;
        if (*p == '*') {
            weft__trace_mix(h, (uint64_t)(int64_t)va_arg(*ap, int));
            p++;
        } else {
            while (*p >= '0' && *p <= '9')
                p++;
        }
        long prec = -1;
        if (*p == '.') {
            p++;
            if (*p == '*') {
                int v = va_arg(*ap, int);
                weft__trace_mix(h, (uint64_t)(int64_t)v);
                prec = v < 0 ? -1 : v;
                p++;
            } else {
                prec = 0;
                while (*p >= '0' && *p <= '9') {
                    if (prec < 1000000000L)
                        prec = prec * 10 + (*p - '0');
                    p++;
                }
            }
        }
        int mod = LEN_NONE;
        switch (*p) {
        case 'h':
            mod = p[1] == 'h' ? LEN_HH : LEN_H;
            p += p[1] == 'h' ? 2 : 1;
            break;
        case 'l':
            mod = p[1] == 'l' ? LEN_LL : LEN_L;
            p += p[1] == 'l' ? 2 : 1;
            break;
        case 'j':
            mod = LEN_J;
            p++;
            break;
        case 'z':
            mod = LEN_Z;
            p++;
            break;
        case 't':
            mod = LEN_T;
            p++;
            break;
        case 'L':
            mod = LEN_BIG_L;
            p++;
            break;
        default:
            break;
        }
        switch (*p) {
        case 'd':
        case 'i':
            weft__trace_mix(h, signed_arg(ap, mod));
            break;
        case 'u':
        case 'o':
        case 'x':
        case 'X':
            weft__trace_mix(h, unsigned_arg(ap, mod));
            break;
        case 'c':
            weft__trace_mix(h, (uint64_t)(unsigned char)va_arg(*ap, int));
            break;
        case 's': {
            const char *str = va_arg(*ap, const char *);
            if (!str)
                str = "(null)";
            size_t n = prec < 0 ? strlen(str) : strnlen(str, (size_t)prec);
            weft__trace_mix(h, weft__trace_memhash(str, n));
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
        case 'a':
        case 'A': {
            double d = mod == LEN_BIG_L ? (double)va_arg(*ap, long double) : va_arg(*ap, double);
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            weft__trace_mix(h, bits);
            break;
        }
        case 'p':
            (void)va_arg(*ap, void *);
            weft__trace_mix(h, 0);
            break;
        case 'n':
            (void)va_arg(*ap, void *);
            break;
        default:
            weft__trace_mix(h, UINT64_MAX);
            return;
        }
    }
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
