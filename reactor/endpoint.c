/* endpoint.c: endpoint descriptions as strings ("tcp:2000", "tcp:host:2000").
 *
 * A description is a list of arguments separated by unescaped ':'; a
 * backslash makes the next character literal (so "\:" is a colon inside an
 * argument and "\\" a backslash). The first argument names the endpoint type
 * (only "tcp", compared case-insensitively). Each later argument is either a
 * keyword ("name=value", split at the first unescaped '=') or positional.
 *
 * The parser never allocates: it records where each argument starts and ends
 * in the caller's string, then decodes one value at a time into a bounded
 * local buffer. Every error names what is wrong and the 1-based column (byte
 * offset + 1) of the argument or value at fault, e.g.
 * "tcp:99999: port out of range at column 5". The output struct is written
 * only on success. Timeouts are decimal seconds with up to nine fractional
 * digits, converted exactly to integer nanoseconds (no floating point).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reactor/reactor_internal.h"

#define EP_ARGS_MAX 8           /* type + at most 7 arguments */
#define EP_VALUE_MAX 128        /* a decoded value longer than this is refused */
#define EP_TIMEOUT_S_MAX 1000000000 /* ~31 years: far from int64 overflow in ns */
#define EP_QUOTE_MAX 48         /* longest description quoted in an error */
#define EP_DEFAULT_TIMEOUT_NS (30 * WEFT_NS_PER_S)

typedef struct ep_arg {
    size_t start; /* raw offset of the first byte */
    size_t end;   /* raw offset one past the last byte */
    size_t eq;    /* raw offset of the first unescaped '=', or SIZE_MAX */
} ep_arg;

typedef struct ep_parser {
    const char *desc;
    ep_arg args[EP_ARGS_MAX];
    size_t nargs;
    char *err;
    size_t errlen;
} ep_parser;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
ep_fail(ep_parser *p, size_t offset, const char *fmt, ...)
{
    if (p->err && p->errlen > 0) {
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        /* Quote at most EP_QUOTE_MAX bytes of the description, so the
         * message itself always fits a reasonable buffer. */
        size_t dlen = strlen(p->desc);
        int quote = (int)(dlen > EP_QUOTE_MAX ? EP_QUOTE_MAX - 3 : dlen);
        snprintf(p->err, p->errlen, "%.*s%s: %s at column %zu", quote, p->desc,
                 dlen > EP_QUOTE_MAX ? "..." : "", what, offset + 1);
    }
    return WEFT_EENDPOINT;
}

/* Split desc into arguments. */
static int ep_split(ep_parser *p)
{
    const char *s = p->desc;
    size_t i = 0;
    p->nargs = 0;
    for (;;) {
        if (p->nargs == EP_ARGS_MAX)
            return ep_fail(p, i, "too many arguments (at most %d)", EP_ARGS_MAX - 1);
        ep_arg *a = &p->args[p->nargs++];
        a->start = i;
        a->eq = SIZE_MAX;
        while (s[i] != '\0' && s[i] != ':') {
            if (s[i] == '\\') {
                if (s[i + 1] == '\0')
                    return ep_fail(p, i, "backslash at the end of the description");
                i += 2;
                continue;
            }
            if (s[i] == '=' && a->eq == SIZE_MAX)
                a->eq = i;
            i++;
        }
        a->end = i;
        if (s[i] == '\0')
            return WEFT_OK;
        i++; /* skip ':' */
    }
}

/* Decode raw [from, to) into buf, removing escapes. false: longer than cap-1. */
static bool ep_decode(const char *s, size_t from, size_t to, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        if (s[i] == '\\')
            i++;
        if (n + 1 >= cap)
            return false;
        buf[n++] = s[i];
    }
    buf[n] = '\0';
    *len = n;
    return true;
}

/* A decoded value and where it starts in the raw string. */
typedef struct ep_value {
    char text[EP_VALUE_MAX];
    size_t len;
    size_t col; /* raw offset */
} ep_value;

static int ep_value_of(ep_parser *p, size_t from, size_t to, const char *what, ep_value *v)
{
    v->col = from;
    if (!ep_decode(p->desc, from, to, v->text, sizeof v->text, &v->len))
        return ep_fail(p, from, "%s too long", what);
    return WEFT_OK;
}

static int ep_port(ep_parser *p, const ep_value *v, bool allow_zero, uint16_t *out)
{
    if (v->len == 0)
        return ep_fail(p, v->col, "empty port");
    uint32_t port = 0;
    for (size_t i = 0; i < v->len; i++) {
        char c = v->text[i];
        if (c < '0' || c > '9')
            return ep_fail(p, v->col, "port '%s' is not a decimal number", v->text);
        port = port * 10u + (uint32_t)(c - '0');
        if (port > 65535u)
            return ep_fail(p, v->col, "port out of range");
    }
    if (port == 0 && !allow_zero)
        return ep_fail(p, v->col, "port out of range");
    *out = (uint16_t)port;
    return WEFT_OK;
}

static int ep_host(ep_parser *p, const ep_value *v, bool allow_empty, const char *what,
                   char out[WEFT_HOST_MAX])
{
    if (v->len == 0 && !allow_empty)
        return ep_fail(p, v->col, "empty %s", what);
    if (v->len >= WEFT_HOST_MAX)
        return ep_fail(p, v->col, "%s longer than %d bytes", what, WEFT_HOST_MAX - 1);
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->text[i];
        /* Spaces and control characters would break trace lines and logs. */
        if (c <= 0x20 || c == 0x7f)
            return ep_fail(p, v->col, "invalid character (byte 0x%02x) in %s", c, what);
    }
    memcpy(out, v->text, v->len + 1);
    return WEFT_OK;
}

/* Decimal seconds "S" or "S.FFFFFFFFF", > 0, to nanoseconds. */
static int ep_timeout(ep_parser *p, const ep_value *v, int64_t *out_ns)
{
    if (v->len == 0)
        return ep_fail(p, v->col, "empty timeout");
    int64_t whole_s = 0, frac_ns = 0, scale = WEFT_NS_PER_S;
    bool in_frac = false, digits = false;
    for (size_t i = 0; i < v->len; i++) {
        char c = v->text[i];
        if (c == '.' && !in_frac && digits) {
            in_frac = true;
            continue;
        }
        if (c < '0' || c > '9')
            return ep_fail(p, v->col, "timeout '%s' is not a number of seconds", v->text);
        digits = true;
        if (!in_frac) {
            whole_s = whole_s * 10 + (c - '0');
            if (whole_s > EP_TIMEOUT_S_MAX)
                return ep_fail(p, v->col, "timeout out of range");
        } else {
            scale /= 10;
            if (scale == 0)
                return ep_fail(p, v->col, "timeout finer than a nanosecond");
            frac_ns += (c - '0') * scale;
        }
    }
    if (in_frac && scale == WEFT_NS_PER_S)
        return ep_fail(p, v->col, "timeout '%s' is not a number of seconds", v->text);
    int64_t ns = whole_s * WEFT_NS_PER_S + frac_ns;
    if (ns <= 0)
        return ep_fail(p, v->col, "timeout must be positive");
    *out_ns = ns;
    return WEFT_OK;
}

/* ASCII-only case folding: independent of the locale. */
static bool ep_is_tcp(const char *s)
{
    static const char want[] = "tcp";
    for (size_t i = 0; i < 3; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return false;
    }
    return true;
}

/* Common front: split, check the type. */
static int ep_begin(ep_parser *p, const char *desc, char *err, size_t errlen)
{
    p->desc = desc;
    p->err = err;
    p->errlen = errlen;
    if (err && errlen > 0)
        err[0] = '\0';
    int rc = ep_split(p);
    if (rc)
        return rc;
    const ep_arg *t = &p->args[0];
    size_t tlen = t->end - t->start;
    if (tlen == 0)
        return ep_fail(p, 0, "missing endpoint type (expected 'tcp:')");
    if (tlen != 3 || !ep_is_tcp(desc)) {
        char name[32];
        size_t n = tlen < sizeof name - 1 ? tlen : sizeof name - 1;
        memcpy(name, desc, n);
        name[n] = '\0';
        return ep_fail(p, 0, "unknown endpoint type '%s%s'", name, n < tlen ? "..." : "");
    }
    if (p->nargs == 1)
        return ep_fail(p, tlen, "missing ':' and arguments after the endpoint type");
    return WEFT_OK;
}

/* The keyword name of an argument (decoded), or false when positional. */
static int ep_keyword(ep_parser *p, const ep_arg *a, char *name, size_t cap, bool *is_kw)
{
    size_t len;
    *is_kw = a->eq != SIZE_MAX;
    if (!*is_kw)
        return WEFT_OK;
    if (a->eq == a->start)
        return ep_fail(p, a->start, "empty keyword name");
    if (!ep_decode(p->desc, a->start, a->eq, name, cap, &len))
        return ep_fail(p, a->start, "keyword name too long");
    return WEFT_OK;
}

int weft_endpoint_parse_server(const char *desc, weft_endpoint *out, char *err, size_t errlen)
{
    if (!desc || !out) {
        if (err && errlen > 0)
            snprintf(err, errlen, "no endpoint description");
        return WEFT_EINVAL;
    }
    ep_parser p;
    int rc = ep_begin(&p, desc, err, errlen);
    if (rc)
        return rc;
    weft_endpoint ep;
    memset(&ep, 0, sizeof ep);
    bool have_port = false, have_iface = false;
    for (size_t i = 1; i < p.nargs; i++) {
        const ep_arg *a = &p.args[i];
        char name[32];
        bool is_kw;
        ep_value v;
        if ((rc = ep_keyword(&p, a, name, sizeof name, &is_kw)))
            return rc;
        size_t vfrom = is_kw ? a->eq + 1 : a->start;
        if (!is_kw || strcmp(name, "port") == 0) {
            if (have_port)
                return ep_fail(&p, a->start, is_kw ? "port given twice"
                                                   : "unexpected positional argument");
            if ((rc = ep_value_of(&p, vfrom, a->end, "port", &v)) ||
                (rc = ep_port(&p, &v, true, &ep.port)))
                return rc;
            have_port = true;
        } else if (strcmp(name, "interface") == 0) {
            if (have_iface)
                return ep_fail(&p, a->start, "interface given twice");
            if ((rc = ep_value_of(&p, vfrom, a->end, "interface", &v)) ||
                (rc = ep_host(&p, &v, true, "interface", ep.host)))
                return rc;
            have_iface = true;
        } else {
            return ep_fail(&p, a->start, "unknown keyword '%s' (expected port or interface)",
                           name);
        }
    }
    if (!have_port)
        return ep_fail(&p, strlen(desc), "missing port");
    *out = ep;
    return WEFT_OK;
}

int weft_endpoint_parse_client(const char *desc, weft_endpoint *out, char *err, size_t errlen)
{
    if (!desc || !out) {
        if (err && errlen > 0)
            snprintf(err, errlen, "no endpoint description");
        return WEFT_EINVAL;
    }
    ep_parser p;
    int rc = ep_begin(&p, desc, err, errlen);
    if (rc)
        return rc;
    weft_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.timeout_ns = EP_DEFAULT_TIMEOUT_NS;
    bool have_host = false, have_port = false, have_timeout = false;
    size_t host_kw_col = 0;
    /* Keywords first, so positional arguments know which slots remain:
     * "tcp:host=h:80" is host h, port 80, as in Twisted. Two positional
     * arguments are always host and port. */
    for (size_t i = 1; i < p.nargs; i++) {
        const ep_arg *a = &p.args[i];
        char name[32];
        bool is_kw;
        ep_value v;
        if ((rc = ep_keyword(&p, a, name, sizeof name, &is_kw)))
            return rc;
        if (!is_kw)
            continue;
        if (strcmp(name, "host") == 0) {
            if (have_host)
                return ep_fail(&p, a->start, "host given twice");
            if ((rc = ep_value_of(&p, a->eq + 1, a->end, "host", &v)) ||
                (rc = ep_host(&p, &v, false, "host", ep.host)))
                return rc;
            have_host = true;
            host_kw_col = a->start;
        } else if (strcmp(name, "port") == 0) {
            if (have_port)
                return ep_fail(&p, a->start, "port given twice");
            if ((rc = ep_value_of(&p, a->eq + 1, a->end, "port", &v)) ||
                (rc = ep_port(&p, &v, false, &ep.port)))
                return rc;
            have_port = true;
        } else if (strcmp(name, "timeout") == 0) {
            if (have_timeout)
                return ep_fail(&p, a->start, "timeout given twice");
            if ((rc = ep_value_of(&p, a->eq + 1, a->end, "timeout", &v)) ||
                (rc = ep_timeout(&p, &v, &ep.timeout_ns)))
                return rc;
            have_timeout = true;
        } else {
            return ep_fail(&p, a->start,
                           "unknown keyword '%s' (expected host, port or timeout)", name);
        }
    }
    size_t npos = 0;
    for (size_t i = 1; i < p.nargs; i++)
        npos += p.args[i].eq == SIZE_MAX;
    if (npos >= 2 && have_host)
        return ep_fail(&p, host_kw_col, "host given twice");
    for (size_t i = 1; i < p.nargs; i++) {
        const ep_arg *a = &p.args[i];
        ep_value v;
        if (a->eq != SIZE_MAX)
            continue;
        if (!have_host) {
            if ((rc = ep_value_of(&p, a->start, a->end, "host", &v)) ||
                (rc = ep_host(&p, &v, false, "host", ep.host)))
                return rc;
            have_host = true;
        } else if (!have_port) {
            if ((rc = ep_value_of(&p, a->start, a->end, "port", &v)) ||
                (rc = ep_port(&p, &v, false, &ep.port)))
                return rc;
            have_port = true;
        } else {
            return ep_fail(&p, a->start,
                           npos == 2 ? "port given twice" : "unexpected positional argument");
        }
    }
    if (!have_host)
        return ep_fail(&p, strlen(desc), "missing host");
    if (!have_port)
        return ep_fail(&p, strlen(desc), "missing port");
    *out = ep;
    return WEFT_OK;
}
