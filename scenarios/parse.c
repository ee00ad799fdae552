/* parse.c: the scenario language's lexer and parser.
 *
 * A scenario is read line by line. Each line is cut into tokens (words,
 * numbers with an optional unit, strings with escapes, ':' and '..'), then
 * parsed as one statement by a hand-written recursive-descent parser whose
 * depth is fixed by the grammar (at most one `at`/`after` prefix), never by the
 * input. An error stops the current line only: it is recorded with its line
 * and column and parsing resumes at the next line, so one pass reports every
 * broken line. Names are resolved as they are read (a name must be declared on
 * an earlier line), so the runner works with indices only.
 *
 * Limits: WEFT_SCENARIO_LINE_MAX bytes per line, WEFT_SCENARIO_STATEMENTS_MAX
 * statements, SCN_ENTITIES_MAX names, WEFT_SCENARIO_NAME_MAX bytes per name.
 * Each is a positioned error. The parser never reads past text + len and
 * never assumes NUL termination.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scenarios/scn_internal.h"

#define SCN_ENTITIES_MAX 10000u

/* ------------------------------------------------------------ tokens */

typedef enum ttype { T_WORD, T_NUM, T_STR, T_COLON, T_DOTDOT, T_EOL } ttype;

typedef struct tok {
    ttype t;
    int col;       /* 1-based */
    const char *s; /* source span */
    size_t n;
    char *str;     /* T_STR: decoded bytes, NUL-terminated (owned by the line) */
    size_t slen;
} tok;

typedef struct parser {
    weft_scenario *sc;
    weft_diags *diags;
    const char *file;
    int line;
    bool errors;
    bool oom;
    /* The current line's tokens. */
    tok *toks;
    size_t ntok, captok, pos;
    /* Settings given once: the line that set them (0: not yet). */
    int seen_scenario, seen_seed, seen_jitter, seen_limit_events, seen_limit_time;
    int seen_net[9];
    bool in_timing; /* parsing the statement after `at`/`after` */
    size_t capstmts;
} parser;

static void perr(parser *p, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void perr(parser *p, int col, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    p->errors = true;
    if (weft_diags_add(p->diags, p->file, p->line, col, "%s", buf) != WEFT_OK)
        p->oom = true;
}

static bool is_word_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_word_char(unsigned char c)
{
    return is_word_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void free_tokens(parser *p)
{
    for (size_t i = 0; i < p->ntok; i++)
        weft_free(p->toks[i].str);
    p->ntok = 0;
    p->pos = 0;
}

static tok *push_tok(parser *p, ttype t, int col, const char *s, size_t n)
{
    if (p->ntok == p->captok) {
        size_t cap = p->captok ? p->captok * 2 : 32;
        tok *nt = weft_realloc(p->toks, cap * sizeof *nt);
        if (nt == NULL) {
            p->oom = true;
            return NULL;
        }
        p->toks = nt;
        p->captok = cap;
    }
    tok *k = &p->toks[p->ntok++];
    memset(k, 0, sizeof *k);
    k->t = t;
    k->col = col;
    k->s = s;
    k->n = n;
    return k;
}

/* Decode a string starting at line[i] == '"'. Returns the index after the
 * closing quote, or 0 after reporting an error. */
static size_t lex_string(parser *p, const char *line, size_t len, size_t i)
{
    size_t start = i;
    char *buf = weft_malloc(len + 1); /* decoded is never longer than the line */
    if (buf == NULL) {
        p->oom = true;
        return 0;
    }
    size_t o = 0;
    i++;
    for (;;) {
        if (i >= len) {
            perr(p, (int)start + 1, "unterminated string");
            weft_free(buf);
            return 0;
        }
        unsigned char c = (unsigned char)line[i];
        if (c == '"')
            break;
        if (c != '\\') {
            buf[o++] = (char)c;
            i++;
            continue;
        }
        if (i + 1 >= len) {
            perr(p, (int)i + 1, "unterminated string");
            weft_free(buf);
            return 0;
        }
        unsigned char e = (unsigned char)line[i + 1];
        switch (e) {
        case 'n': buf[o++] = '\n'; i += 2; break;
        case 'r': buf[o++] = '\r'; i += 2; break;
        case 't': buf[o++] = '\t'; i += 2; break;
        case '0': buf[o++] = '\0'; i += 2; break;
        case '\\': buf[o++] = '\\'; i += 2; break;
        case '"': buf[o++] = '"'; i += 2; break;
        case 'x': {
            int h1 = i + 2 < len ? hexval((unsigned char)line[i + 2]) : -1;
            int h2 = i + 3 < len ? hexval((unsigned char)line[i + 3]) : -1;
            if (h1 < 0 || h2 < 0) {
                perr(p, (int)i + 1, "\\x needs two hexadecimal digits");
                weft_free(buf);
                return 0;
            }
            buf[o++] = (char)(h1 * 16 + h2);
            i += 4;
            break;
        }
        default:
            if (e >= 0x20 && e < 0x7f)
                perr(p, (int)i + 1, "unknown escape '\\%c' (use \\n \\r \\t \\0 \\\\ \\\" \\xHH)", e);
            else
                perr(p, (int)i + 1, "unknown escape (use \\n \\r \\t \\0 \\\\ \\\" \\xHH)");
            weft_free(buf);
            return 0;
        }
    }
    buf[o] = '\0';
    tok *k = push_tok(p, T_STR, (int)start + 1, line + start, i + 1 - start);
    if (k == NULL) {
        weft_free(buf);
        return 0;
    }
    k->str = buf;
    k->slen = o;
    return i + 1;
}

/* Tokenise one line (without its delimiter). false: an error was reported. */
static bool lex_line(parser *p, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)line[i];
        if (c == ' ' || c == '\t') {
            i++;
            continue;
        }
        if (c == '#')
            break;
        size_t start = i;
        if (c == '"') {
            i = lex_string(p, line, len, i);
            if (i == 0)
                return false;
            continue;
        }
        if (is_digit(c) || (c == '-' && i + 1 < len && is_digit((unsigned char)line[i + 1]))) {
            i++;
            while (i < len && is_digit((unsigned char)line[i]))
                i++;
            if (i + 1 < len && line[i] == '.' && is_digit((unsigned char)line[i + 1])) {
                i++;
                while (i < len && is_digit((unsigned char)line[i]))
                    i++;
            }
            while (i < len && (is_word_start((unsigned char)line[i]) || line[i] == '%'))
                i++;
            if (push_tok(p, T_NUM, (int)start + 1, line + start, i - start) == NULL)
                return false;
            continue;
        }
        if (is_word_start(c)) {
            while (i < len && is_word_char((unsigned char)line[i])) {
                /* ".." ends a word: a..b is a range. */
                if (line[i] == '.' && i + 1 < len && line[i + 1] == '.')
                    break;
                i++;
            }
            if (push_tok(p, T_WORD, (int)start + 1, line + start, i - start) == NULL)
                return false;
            continue;
        }
        if (c == ':') {
            if (push_tok(p, T_COLON, (int)start + 1, line + start, 1) == NULL)
                return false;
            i++;
            continue;
        }
        if (c == '.' && i + 1 < len && line[i + 1] == '.') {
            if (push_tok(p, T_DOTDOT, (int)start + 1, line + start, 2) == NULL)
                return false;
            i += 2;
            continue;
        }
        if (c >= 0x21 && c < 0x7f)
            perr(p, (int)start + 1, "unexpected character '%c'", c);
        else
            perr(p, (int)start + 1, "unexpected byte 0x%02x", c);
        return false;
    }
    return push_tok(p, T_EOL, (int)len + 1, line + len, 0) != NULL;
}

/* ------------------------------------------------------ token helpers */

static tok *peek(parser *p)
{
    return &p->toks[p->pos];
}

static tok *next(parser *p)
{
    tok *k = &p->toks[p->pos];
    if (k->t != T_EOL)
        p->pos++;
    return k;
}

static bool is_kw(const tok *k, const char *kw)
{
    return k->t == T_WORD && k->n == strlen(kw) && memcmp(k->s, kw, k->n) == 0;
}

/* A short description of a token for messages. */
static const char *describe(const tok *k, char *buf, size_t n)
{
    switch (k->t) {
    case T_EOL:
        return "end of line";
    case T_STR:
        return "a string";
    case T_COLON:
        return "':'";
    case T_DOTDOT:
        return "'..'";
    case T_WORD:
    case T_NUM:
        snprintf(buf, n, "'%.*s'", (int)(k->n > 40 ? 40 : k->n), k->s);
        return buf;
    }
    return "?";
}

static bool want_kw(parser *p, const char *kw)
{
    tok *k = peek(p);
    if (is_kw(k, kw)) {
        next(p);
        return true;
    }
    char b[64];
    perr(p, k->col, "expected '%s', got %s", kw, describe(k, b, sizeof b));
    return false;
}

static bool want_eol(parser *p)
{
    tok *k = peek(p);
    if (k->t == T_EOL)
        return true;
    char b[64];
    perr(p, k->col, "unexpected %s after the statement", describe(k, b, sizeof b));
    return false;
}

/* ------------------------------------------------------------- pool */

static const char *pool_add(parser *p, const char *s, size_t n)
{
    weft_scenario *sc = p->sc;
    if (sc->npool == sc->cappool) {
        size_t cap = sc->cappool ? sc->cappool * 2 : 32;
        char **np = weft_realloc(sc->pool, cap * sizeof *np);
        if (np == NULL) {
            p->oom = true;
            return NULL;
        }
        sc->pool = np;
        sc->cappool = cap;
    }
    char *c = weft_malloc(n + 1);
    if (c == NULL) {
        p->oom = true;
        return NULL;
    }
    memcpy(c, s, n);
    c[n] = '\0';
    sc->pool[sc->npool++] = c;
    return c;
}

/* ----------------------------------------------------------- numbers */

/* Parse the digits of a number token into mantissa and fraction; the unit
 * follows. Returns false on overflow. */
typedef struct numparts {
    bool neg;
    uint64_t whole;
    uint64_t frac;     /* fraction digits as an integer */
    int frac_digits;
    const char *unit;
    size_t unit_len;
} numparts;

static bool split_number(const tok *k, numparts *np)
{
    memset(np, 0, sizeof *np);
    size_t i = 0;
    if (k->s[0] == '-') {
        np->neg = true;
        i++;
    }
    for (; i < k->n && is_digit((unsigned char)k->s[i]); i++) {
        unsigned d = (unsigned)(k->s[i] - '0');
        if (np->whole > (UINT64_MAX - d) / 10)
            return false;
        np->whole = np->whole * 10 + d;
    }
    if (i < k->n && k->s[i] == '.') {
        i++;
        for (; i < k->n && is_digit((unsigned char)k->s[i]); i++) {
            if (np->frac_digits >= 18)
                return false;
            np->frac = np->frac * 10 + (unsigned)(k->s[i] - '0');
            np->frac_digits++;
        }
    }
    np->unit = k->s + i;
    np->unit_len = k->n - i;
    return true;
}

static bool unit_is(const numparts *np, const char *u)
{
    return np->unit_len == strlen(u) && memcmp(np->unit, u, np->unit_len) == 0;
}

/* Scale whole.frac by mult into an exact integer; false on overflow or when
 * the result is not a whole number. */
static bool scale(const numparts *np, uint64_t mult, uint64_t limit, uint64_t *out, bool *inexact)
{
    *inexact = false;
    if (np->whole > limit / mult)
        return false;
    uint64_t v = np->whole * mult;
    if (np->frac_digits > 0) {
        uint64_t den = 1;
        for (int i = 0; i < np->frac_digits; i++)
            den *= 10;
        /* frac < den <= 1e18 and mult <= 3.6e12: split to avoid overflow. */
        unsigned __int128 num = (unsigned __int128)np->frac * mult;
        if (num % den != 0)
            *inexact = true;
        uint64_t add = (uint64_t)(num / den);
        if (v > limit - add)
            return false;
        v += add;
    }
    *out = v;
    return true;
}

static bool parse_duration(parser *p, int64_t *ns)
{
    tok *k = peek(p);
    char b[64];
    if (k->t != T_NUM) {
        perr(p, k->col, "expected a duration such as 250ms, got %s", describe(k, b, sizeof b));
        return false;
    }
    numparts np;
    if (!split_number(k, &np)) {
        perr(p, k->col, "duration out of range");
        return false;
    }
    if (np.neg) {
        perr(p, k->col, "a duration cannot be negative");
        return false;
    }
    uint64_t mult;
    if (unit_is(&np, "ns"))
        mult = 1;
    else if (unit_is(&np, "us"))
        mult = 1000;
    else if (unit_is(&np, "ms"))
        mult = 1000000;
    else if (unit_is(&np, "s"))
        mult = 1000000000;
    else if (unit_is(&np, "m"))
        mult = UINT64_C(60000000000);
    else if (unit_is(&np, "h"))
        mult = UINT64_C(3600000000000);
    else if (np.unit_len == 0) {
        perr(p, k->col, "a duration needs a unit (ns, us, ms, s, m, h): '%.*s'",
             (int)(k->n > 40 ? 40 : k->n), k->s);
        return false;
    } else {
        perr(p, k->col + (int)(np.unit - k->s), "unknown duration unit '%.*s' (ns, us, ms, s, m, h)",
             (int)(np.unit_len > 20 ? 20 : np.unit_len), np.unit);
        return false;
    }
    uint64_t v;
    bool inexact;
    if (!scale(&np, mult, (uint64_t)INT64_MAX, &v, &inexact)) {
        perr(p, k->col, "duration out of range");
        return false;
    }
    if (inexact) {
        perr(p, k->col, "duration is not a whole number of nanoseconds");
        return false;
    }
    next(p);
    *ns = (int64_t)v;
    return true;
}

static bool parse_int(parser *p, int64_t *out, const char *what)
{
    tok *k = peek(p);
    char b[64];
    if (k->t != T_NUM) {
        perr(p, k->col, "expected %s, got %s", what, describe(k, b, sizeof b));
        return false;
    }
    numparts np;
    if (!split_number(k, &np) || np.whole > (uint64_t)INT64_MAX) {
        perr(p, k->col, "number out of range");
        return false;
    }
    if (np.frac_digits > 0 || np.unit_len > 0) {
        perr(p, k->col, "expected %s, got '%.*s'", what, (int)(k->n > 40 ? 40 : k->n), k->s);
        return false;
    }
    next(p);
    *out = np.neg ? -(int64_t)np.whole : (int64_t)np.whole;
    return true;
}

static bool parse_count(parser *p, uint64_t *out, const char *what)
{
    tok *k = peek(p);
    char b[64];
    numparts np;
    if (k->t != T_NUM || !split_number(k, &np) || np.neg || np.frac_digits > 0 ||
        np.unit_len > 0) {
        if (k->t == T_NUM && !split_number(k, &np))
            perr(p, k->col, "number out of range");
        else
            perr(p, k->col, "expected %s, got %s", what, describe(k, b, sizeof b));
        return false;
    }
    next(p);
    *out = np.whole;
    return true;
}

/* A rate: 100ppm or 0.5% (of decisions). */
static bool parse_rate(parser *p, uint32_t *ppm)
{
    tok *k = peek(p);
    char b[64];
    numparts np;
    if (k->t != T_NUM || !split_number(k, &np) || np.neg) {
        perr(p, k->col, "expected a rate such as 100ppm or 0.5%%, got %s", describe(k, b, sizeof b));
        return false;
    }
    uint64_t mult;
    if (unit_is(&np, "ppm"))
        mult = 1;
    else if (unit_is(&np, "%"))
        mult = 10000;
    else {
        perr(p, k->col, "a rate needs a unit: ppm or %% ('%.*s')", (int)(k->n > 40 ? 40 : k->n), k->s);
        return false;
    }
    uint64_t v;
    bool inexact;
    if (!scale(&np, mult, UINT64_MAX, &v, &inexact) || v > 1000000) {
        perr(p, k->col, "a rate is at most 1000000ppm (100%%)");
        return false;
    }
    if (inexact) {
        perr(p, k->col, "a rate must be a whole number of ppm");
        return false;
    }
    next(p);
    *ppm = (uint32_t)v;
    return true;
}

/* ------------------------------------------------------------- names */

static const char *const reserved[] = {
    "scenario", "seed", "jitter", "limit", "network", "host", "listen", "client",
    "peer", "advance", "run", "reset", "partition", "heal", "stall", "release",
    "crash", "restart", "deferred", "list", "gather", "later", "call", "expect",
    "at", "after", "of", "as", "with", "from", "to", "on", "within",
    "fire-on-one-callback", "fire-on-one-errback", "consume-errors", "none",
};

static int find_tok(const weft_scenario *sc, const tok *k)
{
    for (size_t i = 0; i < sc->nents; i++)
        if (strlen(sc->ents[i].name) == k->n && memcmp(sc->ents[i].name, k->s, k->n) == 0)
            return (int)i;
    return -1;
}

int weft__scn_find(const weft_scenario *sc, const char *name)
{
    for (size_t i = 0; i < sc->nents; i++)
        if (strcmp(sc->ents[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const char *kind_name(scn_ent_kind k)
{
    switch (k) {
    case SCN_ENT_HOST: return "host";
    case SCN_ENT_PEER: return "peer";
    case SCN_ENT_CLIENT: return "client";
    case SCN_ENT_LISTENER: return "listener";
    case SCN_ENT_DEFERRED: return "Deferred";
    }
    return "name";
}

static int add_entity(parser *p, const char *name, size_t n, scn_ent_kind kind, int line, int col)
{
    weft_scenario *sc = p->sc;
    scn_entity *ne = weft_realloc(sc->ents, (sc->nents + 1) * sizeof *ne);
    if (ne == NULL) {
        p->oom = true;
        return -1;
    }
    sc->ents = ne;
    char *c = weft_malloc(n + 1);
    if (c == NULL) {
        p->oom = true;
        return -1;
    }
    memcpy(c, name, n);
    c[n] = '\0';
    scn_entity *e = &sc->ents[sc->nents];
    memset(e, 0, sizeof *e);
    e->name = c;
    e->kind = kind;
    e->line = line;
    e->col = col;
    return (int)sc->nents++;
}

/* Declare the next token as a new name of the given kind. */
static int declare(parser *p, scn_ent_kind kind)
{
    tok *k = peek(p);
    char b[64];
    if (k->t != T_WORD) {
        perr(p, k->col, "expected a name for the new %s, got %s", kind_name(kind),
             describe(k, b, sizeof b));
        return -1;
    }
    if (k->n > WEFT_SCENARIO_NAME_MAX) {
        perr(p, k->col, "name longer than %u bytes", WEFT_SCENARIO_NAME_MAX);
        return -1;
    }
    /* Statements start with a keyword or a subject's name, keywords first:
     * a subject cannot be called like a keyword. Hosts are never subjects,
     * so `host client server` is fine. */
    for (size_t i = 0; kind != SCN_ENT_HOST && i < sizeof reserved / sizeof reserved[0]; i++)
        if (is_kw(k, reserved[i])) {
            perr(p, k->col, "'%s' is a reserved word and cannot name a %s", reserved[i],
                 kind_name(kind));
            return -1;
        }
    int prev = find_tok(p->sc, k);
    if (prev >= 0) {
        const scn_entity *e = &p->sc->ents[prev];
        if (e->line > 0)
            perr(p, k->col, "'%s' is already declared (as a %s at line %d)", e->name,
                 kind_name(e->kind), e->line);
        else
            perr(p, k->col, "'%s' is already declared (as a %s)", e->name, kind_name(e->kind));
        return -1;
    }
    if (p->sc->nents >= SCN_ENTITIES_MAX) {
        perr(p, k->col, "too many names (at most %u)", SCN_ENTITIES_MAX);
        return -1;
    }
    next(p);
    return add_entity(p, k->s, k->n, kind, p->line, k->col);
}

/* A reference to a declared name of the given kind. */
static int ref(parser *p, scn_ent_kind kind)
{
    tok *k = peek(p);
    char b[64];
    if (k->t != T_WORD) {
        perr(p, k->col, "expected a %s name, got %s", kind_name(kind), describe(k, b, sizeof b));
        return -1;
    }
    int e = find_tok(p->sc, k);
    if (e < 0) {
        perr(p, k->col, "unknown %s '%.*s'", kind_name(kind), (int)(k->n > 63 ? 63 : k->n), k->s);
        return -1;
    }
    if (p->sc->ents[e].kind != kind) {
        perr(p, k->col, "'%s' is a %s, not a %s", p->sc->ents[e].name,
             kind_name(p->sc->ents[e].kind), kind_name(kind));
        return -1;
    }
    next(p);
    return e;
}

/* host:port */
static bool parse_hostport(parser *p, int *host, uint16_t *port)
{
    *host = ref(p, SCN_ENT_HOST);
    if (*host < 0)
        return false;
    tok *k = peek(p);
    if (k->t != T_COLON) {
        char b[64];
        perr(p, k->col, "expected ':' and a port after the host, got %s", describe(k, b, sizeof b));
        return false;
    }
    next(p);
    k = peek(p);
    int64_t v;
    if (!parse_int(p, &v, "a port number"))
        return false;
    if (v < 1 || v > 65535) {
        perr(p, k->col, "port %" PRId64 " out of range (1..65535)", v);
        return false;
    }
    *port = (uint16_t)v;
    return true;
}

/* A type name (Failure type, reason): a word. */
static bool parse_type(parser *p, const char **out, const char *what)
{
    tok *k = peek(p);
    char b[64];
    if (k->t != T_WORD) {
        perr(p, k->col, "expected %s, got %s", what, describe(k, b, sizeof b));
        return false;
    }
    if (k->n > WEFT_SCENARIO_NAME_MAX) {
        perr(p, k->col, "name longer than %u bytes", WEFT_SCENARIO_NAME_MAX);
        return false;
    }
    next(p);
    *out = pool_add(p, k->s, k->n);
    return *out != NULL;
}

static bool parse_string(parser *p, const char **out, size_t *len, const char *what)
{
    tok *k = peek(p);
    char b[64];
    if (k->t != T_STR) {
        perr(p, k->col, "expected %s (a quoted string), got %s", what, describe(k, b, sizeof b));
        return false;
    }
    next(p);
    *out = pool_add(p, k->str, k->slen);
    if (len)
        *len = k->slen;
    return *out != NULL;
}

/* A value: an integer, a string, or `none`. */
static bool parse_value(parser *p, scn_value *v)
{
    tok *k = peek(p);
    memset(v, 0, sizeof *v);
    if (k->t == T_STR) {
        v->kind = SCN_V_STR;
        return parse_string(p, &v->str, &v->len, "a value");
    }
    if (is_kw(k, "none")) {
        next(p);
        v->kind = SCN_V_NONE;
        return true;
    }
    if (k->t == T_NUM) {
        v->kind = SCN_V_INT;
        return parse_int(p, &v->num, "an integer value");
    }
    char b[64];
    perr(p, k->col, "expected a value (an integer, a string or none), got %s",
         describe(k, b, sizeof b));
    return false;
}

static bool opt_within(parser *p, scn_stmt *st)
{
    if (!is_kw(peek(p), "within"))
        return true;
    next(p);
    st->has_within = true;
    return parse_duration(p, &st->within_ns);
}

/* ----------------------------------------------------------- statements */

static scn_stmt *new_stmt(parser *p, scn_kind kind, int col)
{
    weft_scenario *sc = p->sc;
    if (sc->nstmts >= WEFT_SCENARIO_STATEMENTS_MAX) {
        perr(p, col, "too many statements (at most %u)", WEFT_SCENARIO_STATEMENTS_MAX);
        return NULL;
    }
    if (sc->nstmts == p->capstmts) {
        size_t cap = p->capstmts ? p->capstmts * 2 : 16;
        scn_stmt *ns = weft_realloc(sc->stmts, cap * sizeof *ns);
        if (ns == NULL) {
            p->oom = true;
            return NULL;
        }
        sc->stmts = ns;
        p->capstmts = cap;
    }
    scn_stmt *st = &sc->stmts[sc->nstmts++];
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->line = p->line;
    st->col = col;
    st->subj = st->host = st->host2 = -1;
    st->args = "";
    st->msg = "";
    return st;
}

/* Not allowed after `at`/`after`: the statements that wait or configure. */
static bool not_timed(parser *p, const tok *k, const char *what)
{
    if (p->in_timing) {
        perr(p, k->col, "%s cannot be scheduled with at/after", what);
        return false;
    }
    return true;
}

static bool once(parser *p, int *seen, const tok *k, const char *what)
{
    if (*seen) {
        perr(p, k->col, "%s is already set (at line %d)", what, *seen);
        return false;
    }
    *seen = p->line;
    return true;
}

static bool st_scenario(parser *p, tok *kw)
{
    if (!not_timed(p, kw, "scenario") || !once(p, &p->seen_scenario, kw, "the scenario name"))
        return false;
    tok *k = peek(p);
    const char *name;
    if (k->t == T_STR) {
        if (!parse_string(p, &name, NULL, "the scenario name"))
            return false;
    } else if (k->t == T_WORD) {
        next(p);
        name = pool_add(p, k->s, k->n);
        if (name == NULL)
            return false;
    } else {
        char b[64];
        perr(p, k->col, "expected the scenario's name, got %s", describe(k, b, sizeof b));
        return false;
    }
    if (!want_eol(p))
        return false;
    weft_free(p->sc->name);
    p->sc->name = weft_strdup(name);
    if (p->sc->name == NULL)
        p->oom = true;
    return new_stmt(p, SCN_S_SCENARIO, kw->col) != NULL;
}

static bool st_seed(parser *p, tok *kw)
{
    if (!not_timed(p, kw, "seed") || !once(p, &p->seen_seed, kw, "the seed"))
        return false;
    uint64_t v;
    if (!parse_count(p, &v, "a seed (a non-negative integer)") || !want_eol(p))
        return false;
    p->sc->has_seed = true;
    p->sc->seed = v;
    return new_stmt(p, SCN_S_SEED, kw->col) != NULL;
}

static bool st_jitter(parser *p, tok *kw)
{
    if (!not_timed(p, kw, "jitter") || !once(p, &p->seen_jitter, kw, "jitter"))
        return false;
    int64_t v;
    if (!parse_duration(p, &v) || !want_eol(p))
        return false;
    p->sc->jitter_ns = v;
    return new_stmt(p, SCN_S_JITTER, kw->col) != NULL;
}

static bool st_limit(parser *p, tok *kw)
{
    if (!not_timed(p, kw, "limit"))
        return false;
    tok *k = peek(p);
    if (is_kw(k, "events")) {
        next(p);
        if (!once(p, &p->seen_limit_events, k, "limit events"))
            return false;
        uint64_t v;
        if (!parse_count(p, &v, "a number of events") || !want_eol(p))
            return false;
        if (v == 0) {
            perr(p, k->col, "limit events must be at least 1");
            return false;
        }
        p->sc->max_events = v;
    } else if (is_kw(k, "time")) {
        next(p);
        if (!once(p, &p->seen_limit_time, k, "limit time"))
            return false;
        tok *d = peek(p);
        int64_t v;
        if (!parse_duration(p, &v) || !want_eol(p))
            return false;
        if (v == 0) {
            perr(p, d->col, "limit time must be more than 0");
            return false;
        }
        p->sc->max_time_ns = v;
    } else {
        char b[64];
        perr(p, k->col, "expected 'events' or 'time' after limit, got %s", describe(k, b, sizeof b));
        return false;
    }
    return new_stmt(p, SCN_S_LIMIT, kw->col) != NULL;
}

static bool st_network(parser *p, tok *kw)
{
    static const char *const keys[] = {"latency", "chunk", "coalesce", "reset", "stall",
                                       "stall-max", "refuse", "connect-timeout"};
    if (!not_timed(p, kw, "network"))
        return false;
    weft_net_config *net = &p->sc->net;
    if (peek(p)->t == T_EOL) {
        perr(p, peek(p)->col, "expected a network setting (latency, chunk, coalesce, reset, "
                              "stall, stall-max, refuse, connect-timeout)");
        return false;
    }
    while (peek(p)->t != T_EOL) {
        tok *k = peek(p);
        size_t which = sizeof keys / sizeof keys[0];
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (is_kw(k, keys[i]))
                which = i;
        if (which == sizeof keys / sizeof keys[0]) {
            char b[64];
            perr(p, k->col, "unknown network setting %s (latency, chunk, coalesce, reset, stall, "
                            "stall-max, refuse, connect-timeout)", describe(k, b, sizeof b));
            return false;
        }
        if (!once(p, &p->seen_net[which], k, keys[which]))
            return false;
        next(p);
        switch (which) {
        case 0: {
            int64_t lo, hi;
            tok *d = peek(p);
            if (!parse_duration(p, &lo))
                return false;
            hi = lo;
            if (peek(p)->t == T_DOTDOT) {
                next(p);
                if (!parse_duration(p, &hi))
                    return false;
                if (hi < lo) {
                    perr(p, d->col, "latency range is empty (max below min)");
                    return false;
                }
            }
            net->latency_min_ns = lo;
            net->latency_max_ns = hi;
            break;
        }
        case 1: {
            uint64_t v;
            tok *d = peek(p);
            if (!parse_count(p, &v, "a chunk size in bytes"))
                return false;
            if (v > 1u << 30) {
                perr(p, d->col, "chunk size too large");
                return false;
            }
            net->max_chunk = (size_t)v;
            break;
        }
        case 2:
            net->coalesce = true;
            if (is_kw(peek(p), "off")) {
                next(p);
                net->coalesce = false;
            } else if (is_kw(peek(p), "on"))
                next(p);
            break;
        case 3:
            if (!parse_rate(p, &net->reset_ppm))
                return false;
            break;
        case 4:
            if (!parse_rate(p, &net->stall_ppm))
                return false;
            break;
        case 5:
            if (!parse_duration(p, &net->stall_max_ns))
                return false;
            break;
        case 6:
            if (!parse_rate(p, &net->refuse_ppm))
                return false;
            break;
        case 7:
            if (!parse_duration(p, &net->connect_timeout_ns))
                return false;
            break;
        }
    }
    p->sc->net_set = true;
    scn_stmt *st = new_stmt(p, SCN_S_NETWORK, kw->col);
    return st != NULL;
}

static bool st_host(parser *p, tok *kw)
{
    if (peek(p)->t == T_EOL) {
        perr(p, peek(p)->col, "expected at least one host name");
        return false;
    }
    while (peek(p)->t != T_EOL) {
        tok *k = peek(p);
        int e = declare(p, SCN_ENT_HOST);
        if (e < 0)
            return false;
        if (k->n >= WEFT_HOST_MAX) {
            perr(p, k->col, "host name longer than %d bytes", WEFT_HOST_MAX - 1);
            return false;
        }
        scn_stmt *st = new_stmt(p, SCN_S_HOST, k->col);
        if (st == NULL)
            return false;
        st->host = e;
    }
    (void)kw;
    return true;
}

static bool parse_proto_name(parser *p, scn_stmt *st)
{
    tok *k = peek(p);
    if (k->t != T_WORD) {
        char b[64];
        perr(p, k->col, "expected a protocol name, got %s", describe(k, b, sizeof b));
        return false;
    }
    if (k->n > WEFT_SCENARIO_NAME_MAX) {
        perr(p, k->col, "name longer than %u bytes", WEFT_SCENARIO_NAME_MAX);
        return false;
    }
    next(p);
    st->proto = pool_add(p, k->s, k->n);
    st->proto_col = k->col;
    return st->proto != NULL;
}

/* listen PROTO on HOST:PORT [as NAME] [with "ARGS"] */
static bool st_listen(parser *p, tok *kw)
{
    scn_stmt *st = new_stmt(p, SCN_S_LISTEN, kw->col);
    if (st == NULL || !parse_proto_name(p, st) || !want_kw(p, "on") ||
        !parse_hostport(p, &st->host, &st->port))
        return false;
    bool seen_as = false, seen_with = false;
    while (peek(p)->t != T_EOL) {
        tok *k = peek(p);
        if (is_kw(k, "as") && !seen_as) {
            next(p);
            seen_as = true;
            st->subj = declare(p, SCN_ENT_LISTENER);
            if (st->subj < 0)
                return false;
        } else if (is_kw(k, "with") && !seen_with) {
            next(p);
            seen_with = true;
            if (!parse_string(p, &st->args, NULL, "the protocol's arguments"))
                return false;
        } else
            return want_eol(p);
    }
    return true;
}

/* client NAME PROTO connects to HOST:PORT [from HOST] [with "ARGS"] */
static bool st_client(parser *p, tok *kw)
{
    scn_stmt *st = new_stmt(p, SCN_S_CLIENT, kw->col);
    if (st == NULL)
        return false;
    st->subj = declare(p, SCN_ENT_CLIENT);
    if (st->subj < 0 || !parse_proto_name(p, st) || !want_kw(p, "connects") ||
        !want_kw(p, "to") || !parse_hostport(p, &st->host2, &st->port))
        return false;
    bool seen_from = false, seen_with = false;
    while (peek(p)->t != T_EOL) {
        tok *k = peek(p);
        if (is_kw(k, "from") && !seen_from) {
            next(p);
            seen_from = true;
            st->host = ref(p, SCN_ENT_HOST);
            if (st->host < 0)
                return false;
        } else if (is_kw(k, "with") && !seen_with) {
            next(p);
            seen_with = true;
            if (!parse_string(p, &st->args, NULL, "the protocol's arguments"))
                return false;
        } else
            return want_eol(p);
    }
    return true;
}

/* peer NAME connects to HOST:PORT [from HOST] | peer NAME listens on HOST:PORT
 * (several peers may listen on one address: one connection each, run.c) */
static bool st_peer(parser *p, tok *kw)
{
    scn_stmt *st = new_stmt(p, SCN_S_PEER_CONNECT, kw->col);
    if (st == NULL)
        return false;
    st->subj = declare(p, SCN_ENT_PEER);
    if (st->subj < 0)
        return false;
    tok *k = peek(p);
    if (is_kw(k, "connects")) {
        next(p);
        if (!want_kw(p, "to") || !parse_hostport(p, &st->host2, &st->port))
            return false;
        if (is_kw(peek(p), "from")) {
            next(p);
            st->host = ref(p, SCN_ENT_HOST);
            if (st->host < 0)
                return false;
        }
        return want_eol(p);
    }
    if (is_kw(k, "listens")) {
        next(p);
        st->kind = SCN_S_PEER_LISTEN;
        p->sc->ents[st->subj].peer_listens = true;
        if (!want_kw(p, "on") || !parse_hostport(p, &st->host, &st->port))
            return false;
        tok *x = peek(p);
        if (is_kw(x, "accepts") || is_kw(x, "from")) {
            /* Forms that read naturally but say something the rule does not. */
            perr(p, x->col,
                 is_kw(x, "accepts")
                     ? "a listening peer plays one connection: declare one more peer "
                       "listening on the same address for each further connection"
                     : "a listening peer has no 'from': it listens on the host of HOST:PORT");
            return false;
        }
        return want_eol(p);
    }
    char b[64];
    perr(p, k->col, "expected 'connects' or 'listens', got %s", describe(k, b, sizeof b));
    return false;
}

static bool st_advance(parser *p, tok *kw)
{
    if (!not_timed(p, kw, "advance"))
        return false;
    scn_stmt *st = new_stmt(p, SCN_S_ADVANCE, kw->col);
    return st != NULL && parse_duration(p, &st->dur_ns) && want_eol(p);
}

/* run until quiet | run until TIME | run for DURATION */
static bool st_run(parser *p, tok *kw)
{
    if (!not_timed(p, kw, "run"))
        return false;
    tok *k = peek(p);
    if (is_kw(k, "for")) {
        next(p);
        scn_stmt *st = new_stmt(p, SCN_S_ADVANCE, kw->col);
        return st != NULL && parse_duration(p, &st->dur_ns) && want_eol(p);
    }
    if (!want_kw(p, "until"))
        return false;
    if (is_kw(peek(p), "quiet")) {
        next(p);
        return new_stmt(p, SCN_S_QUIET, kw->col) != NULL && want_eol(p);
    }
    if (peek(p)->t != T_NUM) {
        char b[64];
        perr(p, peek(p)->col, "expected 'quiet' or a time after 'run until', got %s",
             describe(peek(p), b, sizeof b));
        return false;
    }
    scn_stmt *st = new_stmt(p, SCN_S_RUN_UNTIL, kw->col);
    return st != NULL && parse_duration(p, &st->dur_ns) && want_eol(p);
}

static bool st_fault(parser *p, tok *kw, scn_kind kind, int hosts)
{
    scn_stmt *st = new_stmt(p, kind, kw->col);
    if (st == NULL)
        return false;
    st->host = ref(p, SCN_ENT_HOST);
    if (st->host < 0)
        return false;
    if (hosts == 2 || (hosts == -1 && peek(p)->t != T_EOL)) {
        tok *k = peek(p);
        st->host2 = ref(p, SCN_ENT_HOST);
        if (st->host2 < 0)
            return false;
        if (st->host2 == st->host) {
            perr(p, k->col, "the two hosts must differ");
            return false;
        }
    }
    return want_eol(p);
}

static bool st_deferred(parser *p, tok *kw)
{
    if (peek(p)->t == T_EOL) {
        perr(p, peek(p)->col, "expected at least one Deferred name");
        return false;
    }
    while (peek(p)->t != T_EOL) {
        tok *k = peek(p);
        int e = declare(p, SCN_ENT_DEFERRED);
        if (e < 0)
            return false;
        scn_stmt *st = new_stmt(p, SCN_S_DEFERRED, k->col);
        if (st == NULL)
            return false;
        st->subj = e;
    }
    (void)kw;
    return true;
}

static bool push_member(parser *p, scn_stmt *st, int e)
{
    int *nm = weft_realloc(st->members, (st->nmembers + 1) * sizeof *nm);
    if (nm == NULL) {
        p->oom = true;
        return false;
    }
    st->members = nm;
    st->members[st->nmembers++] = e;
    return true;
}

/* list NAME of D... [options] | gather NAME of D... [consume-errors] */
static bool st_list(parser *p, tok *kw, bool gather)
{
    scn_stmt *st = new_stmt(p, gather ? SCN_S_GATHER : SCN_S_LIST, kw->col);
    if (st == NULL)
        return false;
    /* Members are resolved before the name is declared: a list cannot
     * contain itself. */
    tok *namek = peek(p);
    if (namek->t != T_WORD) {
        char b[64];
        perr(p, namek->col, "expected a name for the new Deferred, got %s",
             describe(namek, b, sizeof b));
        return false;
    }
    next(p);
    if (!want_kw(p, "of"))
        return false;
    while (peek(p)->t != T_EOL) {
        tok *k = peek(p);
        if (is_kw(k, "consume-errors")) {
            next(p);
            st->flags |= WEFT_DLIST_CONSUME_ERRORS;
        } else if (is_kw(k, "fire-on-one-callback") || is_kw(k, "fire-on-one-errback")) {
            if (gather) {
                perr(p, k->col, "a gather takes only the consume-errors option");
                return false;
            }
            next(p);
            st->flags |= is_kw(k, "fire-on-one-callback") ? WEFT_DLIST_FIRE_ON_ONE_CALLBACK
                                                          : WEFT_DLIST_FIRE_ON_ONE_ERRBACK;
        } else {
            if (st->flags != 0) {
                perr(p, k->col, "options come after the members");
                return false;
            }
            int e = ref(p, SCN_ENT_DEFERRED);
            if (e < 0 || !push_member(p, st, e))
                return false;
        }
    }
    size_t save = p->pos;
    p->pos = (size_t)(namek - p->toks);
    st->subj = declare(p, SCN_ENT_DEFERRED);
    p->pos = save;
    if (st->subj < 0)
        return false;
    p->sc->ents[st->subj].dkind = gather ? SCN_D_GATHER : SCN_D_LIST;
    return true;
}

/* later NAME DURATION [VALUE] */
static bool st_later(parser *p, tok *kw)
{
    scn_stmt *st = new_stmt(p, SCN_S_LATER, kw->col);
    if (st == NULL)
        return false;
    st->subj = declare(p, SCN_ENT_DEFERRED);
    if (st->subj < 0)
        return false;
    p->sc->ents[st->subj].dkind = SCN_D_LATER;
    if (!parse_duration(p, &st->dur_ns))
        return false;
    if (peek(p)->t != T_EOL && !parse_value(p, &st->value))
        return false;
    return want_eol(p);
}

/* call ACTION [from HOST] ARG... [as NAME] */
static bool st_call(parser *p, tok *kw)
{
    scn_stmt *st = new_stmt(p, SCN_S_CALL, kw->col);
    if (st == NULL)
        return false;
    tok *k = peek(p);
    if (k->t != T_WORD) {
        char b[64];
        perr(p, k->col, "expected an action name, got %s", describe(k, b, sizeof b));
        return false;
    }
    if (k->n > WEFT_SCENARIO_NAME_MAX) {
        perr(p, k->col, "name longer than %u bytes", WEFT_SCENARIO_NAME_MAX);
        return false;
    }
    next(p);
    st->proto = pool_add(p, k->s, k->n);
    st->proto_col = k->col;
    if (st->proto == NULL)
        return false;
    if (is_kw(peek(p), "from")) {
        next(p);
        st->host = ref(p, SCN_ENT_HOST);
        if (st->host < 0)
            return false;
    }
    while (peek(p)->t != T_EOL) {
        k = peek(p);
        if (is_kw(k, "as")) {
            next(p);
            st->subj = declare(p, SCN_ENT_DEFERRED);
            if (st->subj < 0)
                return false;
            p->sc->ents[st->subj].dkind = SCN_D_CALL;
            return want_eol(p);
        }
        scn_arg a;
        memset(&a, 0, sizeof a);
        if (k->t == T_STR) {
            a.kind = WEFT_ARG_STRING;
            if (!parse_string(p, &a.str, &a.len, "an argument"))
                return false;
        } else if (k->t == T_NUM) {
            numparts np;
            if (!split_number(k, &np)) {
                perr(p, k->col, "number out of range");
                return false;
            }
            if (np.unit_len == 0) {
                a.kind = WEFT_ARG_INT;
                if (!parse_int(p, &a.num, "an integer"))
                    return false;
            } else {
                a.kind = WEFT_ARG_DURATION;
                if (!parse_duration(p, &a.num))
                    return false;
            }
            a.str = pool_add(p, k->s, k->n);
            a.len = k->n;
        } else if (k->t == T_WORD) {
            next(p);
            a.kind = WEFT_ARG_WORD;
            size_t n = k->n;
            /* host:port reads as one word */
            if (peek(p)->t == T_COLON && p->toks[p->pos + 1].t == T_NUM) {
                tok *port = &p->toks[p->pos + 1];
                n = (size_t)(port->s + port->n - k->s);
                p->pos += 2;
            }
            a.str = pool_add(p, k->s, n);
            a.len = n;
        } else {
            char b[64];
            perr(p, k->col, "unexpected %s in the action's arguments", describe(k, b, sizeof b));
            return false;
        }
        if (a.str == NULL)
            return false;
        scn_arg *na = weft_realloc(st->argv, (st->argc + 1) * sizeof *na);
        if (na == NULL) {
            p->oom = true;
            return false;
        }
        st->argv = na;
        st->argv[st->argc++] = a;
    }
    return true;
}

static bool parse_handler(parser *p, scn_handler *h, int slot /* 0 cb, 1 eb, 2 both */)
{
    tok *k = peek(p);
    char b[64];
    memset(h, 0, sizeof *h);
    h->msg = "";
    if (k->t != T_WORD) {
        perr(p, k->col, "expected a handler (add, value, fail, return, record, recover, trap, "
                        "pass), got %s", describe(k, b, sizeof b));
        return false;
    }
    if (is_kw(k, "add")) {
        if (slot == 1) {
            perr(p, k->col, "'add' works on a value: use it with then or both");
            return false;
        }
        next(p);
        h->op = SCN_H_ADD;
        h->v.kind = SCN_V_INT;
        return parse_int(p, &h->v.num, "an integer to add");
    }
    if (is_kw(k, "value")) {
        next(p);
        h->op = SCN_H_VALUE;
        return parse_value(p, &h->v);
    }
    if (is_kw(k, "fail")) {
        next(p);
        h->op = SCN_H_FAIL;
        if (!parse_type(p, &h->type, "a Failure type"))
            return false;
        if (peek(p)->t == T_STR)
            return parse_string(p, &h->msg, NULL, "a message");
        return true;
    }
    if (is_kw(k, "return")) {
        next(p);
        h->op = SCN_H_RETURN;
        h->target = ref(p, SCN_ENT_DEFERRED);
        return h->target >= 0;
    }
    if (is_kw(k, "record")) {
        next(p);
        h->op = SCN_H_RECORD;
        return parse_string(p, &h->label, NULL, "a label");
    }
    if (is_kw(k, "recover") || is_kw(k, "trap")) {
        if (slot == 0) {
            perr(p, k->col, "'%.*s' works on a Failure: use it with catch, both or else",
                 (int)k->n, k->s);
            return false;
        }
        next(p);
        if (is_kw(k, "recover")) {
            h->op = SCN_H_RECOVER;
            return parse_value(p, &h->v);
        }
        h->op = SCN_H_TRAP;
        return parse_type(p, &h->type, "a Failure type");
    }
    if (is_kw(k, "pass")) {
        next(p);
        h->op = SCN_H_PASS;
        return true;
    }
    perr(p, k->col, "unknown handler %s (add, value, fail, return, record, recover, trap, pass)",
         describe(k, b, sizeof b));
    return false;
}

static bool push_item(parser *p, scn_stmt *st, const scn_item *it)
{
    scn_item *ni = weft_realloc(st->items, (st->nitems + 1) * sizeof *ni);
    if (ni == NULL) {
        p->oom = true;
        return false;
    }
    st->items = ni;
    st->items[st->nitems++] = *it;
    return true;
}

/* SUBJECT expect ... */
static bool st_expect(parser *p, tok *kw, int subj)
{
    if (!not_timed(p, kw, "expect"))
        return false;
    const scn_entity *e = &p->sc->ents[subj];
    scn_stmt *st = new_stmt(p, SCN_S_EXPECT, kw->col);
    if (st == NULL)
        return false;
    st->subj = subj;
    tok *k = peek(p);
    char b[64];
    bool conn = e->kind == SCN_ENT_PEER || e->kind == SCN_ENT_CLIENT;
    bool data = e->kind == SCN_ENT_PEER;
    bool def = e->kind == SCN_ENT_DEFERRED;
    if (data && k->t == T_STR) {
        st->ekind = SCN_E_BYTES;
        if (!parse_string(p, &st->bytes, &st->nbytes, "bytes"))
            return false;
    } else if (k->t == T_EOL) {
        perr(p, k->col, "expected what to expect, got end of line");
        return false;
    } else if (data && (is_kw(k, "bytes") || is_kw(k, "line") || is_kw(k, "prefix") ||
                        is_kw(k, "match"))) {
        next(p);
        st->ekind = is_kw(k, "bytes")    ? SCN_E_BYTES
                    : is_kw(k, "line")   ? SCN_E_LINE
                    : is_kw(k, "prefix") ? SCN_E_PREFIX
                                         : SCN_E_MATCH;
        tok *s = peek(p);
        if (!parse_string(p, &st->bytes, &st->nbytes, "the expected bytes"))
            return false;
        if (st->ekind == SCN_E_MATCH) {
            if (memchr(st->bytes, '\0', st->nbytes) != NULL) {
                perr(p, s->col, "a regular expression cannot contain a NUL byte");
                return false;
            }
            int rc = regcomp(&st->regex, st->bytes, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char eb[160];
                regerror(rc, &st->regex, eb, sizeof eb);
                perr(p, s->col, "bad regular expression: %s", eb);
                return false;
            }
            st->has_regex = true;
        }
    } else if (data && is_kw(k, "nothing")) {
        next(p);
        st->ekind = SCN_E_NOTHING;
        if (!is_kw(peek(p), "within")) {
            perr(p, peek(p)->col, "'expect nothing' needs 'within DURATION'");
            return false;
        }
    } else if (data && is_kw(k, "eof")) {
        next(p);
        st->ekind = SCN_E_EOF;
        p->sc->ents[subj].peer_eof = true;
    } else if (conn && (is_kw(k, "connected") || is_kw(k, "open"))) {
        next(p);
        st->ekind = is_kw(k, "open") ? SCN_E_OPEN : SCN_E_CONNECTED;
    } else if (conn && (is_kw(k, "closed") || is_kw(k, "connect-failed"))) {
        next(p);
        st->ekind = is_kw(k, "closed") ? SCN_E_CLOSED : SCN_E_CONNECT_FAILED;
        if (is_kw(peek(p), "with")) {
            next(p);
            if (!parse_type(p, &st->type, "a reason type"))
                return false;
        }
    } else if (def && is_kw(k, "value")) {
        next(p);
        st->ekind = SCN_E_VALUE;
        if (!parse_value(p, &st->value))
            return false;
    } else if (def && is_kw(k, "succeeded")) {
        next(p);
        st->ekind = SCN_E_SUCCEEDED;
    } else if (def && is_kw(k, "fired")) {
        next(p);
        st->ekind = SCN_E_FIRED;
    } else if (def && is_kw(k, "failure")) {
        next(p);
        st->ekind = SCN_E_FAILURE;
        if (!parse_type(p, &st->type, "a Failure type"))
            return false;
        if (peek(p)->t == T_STR && !parse_string(p, &st->msg, NULL, "a message"))
            return false;
    } else if (def && is_kw(k, "pending")) {
        next(p);
        st->ekind = SCN_E_PENDING;
    } else if (def && is_kw(k, "values")) {
        if (e->dkind != SCN_D_GATHER) {
            perr(p, k->col, "'values' applies to a gather; '%s' is not one", e->name);
            return false;
        }
        next(p);
        st->ekind = SCN_E_VALUES;
        while (peek(p)->t != T_EOL && !is_kw(peek(p), "within")) {
            scn_item it;
            memset(&it, 0, sizeof it);
            it.state = 1;
            if (!parse_value(p, &it.v) || !push_item(p, st, &it))
                return false;
        }
    } else if (def && is_kw(k, "list")) {
        if (e->dkind != SCN_D_LIST) {
            perr(p, k->col, "'list' applies to a Deferred list; '%s' is not one", e->name);
            return false;
        }
        next(p);
        st->ekind = SCN_E_LIST;
        while (peek(p)->t != T_EOL && !is_kw(peek(p), "within")) {
            tok *ik = peek(p);
            scn_item it;
            memset(&it, 0, sizeof it);
            if (is_kw(ik, "ok")) {
                next(p);
                it.state = 1;
                if (!parse_value(p, &it.v))
                    return false;
            } else if (is_kw(ik, "fail")) {
                next(p);
                it.state = 2;
                if (!parse_type(p, &it.type, "a Failure type"))
                    return false;
            } else if (is_kw(ik, "unfired")) {
                next(p);
                it.state = 0;
            } else {
                perr(p, ik->col, "expected 'ok VALUE', 'fail TYPE' or 'unfired', got %s",
                     describe(ik, b, sizeof b));
                return false;
            }
            if (!push_item(p, st, &it))
                return false;
        }
    } else {
        const char *menu = def ? "value, succeeded, failure, fired, pending, values, list"
                           : data ? "a string, bytes, line, prefix, match, nothing, connected, "
                                    "closed, connect-failed, open, eof"
                                  : "connected, closed, connect-failed, open";
        perr(p, k->col, "cannot expect %s of a %s (%s)", describe(k, b, sizeof b),
             kind_name(e->kind), menu);
        return false;
    }
    tok *w = peek(p);
    if (!opt_within(p, st))
        return false;
    if (st->has_within && (st->ekind == SCN_E_OPEN || st->ekind == SCN_E_PENDING)) {
        perr(p, w->col, "'%s' is checked at once and takes no deadline",
             st->ekind == SCN_E_OPEN ? "open" : "pending");
        return false;
    }
    return want_eol(p);
}

/* Statements whose first word is a declared name. */
static bool st_subject(parser *p, tok *subjk, int subj)
{
    const scn_entity *e = &p->sc->ents[subj];
    tok *k = peek(p);
    char b[64];
    if (is_kw(k, "expect")) {
        next(p);
        return st_expect(p, k, subj);
    }
    switch (e->kind) {
    case SCN_ENT_HOST:
        perr(p, subjk->col, "'%s' is a host: a statement cannot start with it "
                            "(use crash, restart, partition...)", e->name);
        return false;
    case SCN_ENT_PEER:
    case SCN_ENT_CLIENT:
        if (e->kind == SCN_ENT_PEER && is_kw(k, "send")) {
            next(p);
            scn_stmt *st = new_stmt(p, SCN_S_SEND, subjk->col);
            if (st == NULL)
                return false;
            st->subj = subj;
            return parse_string(p, &st->bytes, &st->nbytes, "the bytes to send") && want_eol(p);
        }
        if (e->kind == SCN_ENT_PEER && is_kw(k, "shutdown")) {
            next(p);
            scn_stmt *st = new_stmt(p, SCN_S_SHUTDOWN, subjk->col);
            if (st == NULL)
                return false;
            st->subj = subj;
            return want_eol(p);
        }
        if (is_kw(k, "close") || is_kw(k, "abort")) {
            next(p);
            scn_stmt *st = new_stmt(p, is_kw(k, "close") ? SCN_S_CLOSE : SCN_S_ABORT, subjk->col);
            if (st == NULL)
                return false;
            st->subj = subj;
            return want_eol(p);
        }
        perr(p, k->col, "expected %s after %s '%s', got %s",
             e->kind == SCN_ENT_PEER ? "send, shutdown, close, abort or expect" : "close, abort or expect",
             kind_name(e->kind), e->name, describe(k, b, sizeof b));
        return false;
    case SCN_ENT_LISTENER:
        if (is_kw(k, "stop")) {
            next(p);
            scn_stmt *st = new_stmt(p, SCN_S_STOP, subjk->col);
            if (st == NULL)
                return false;
            st->subj = subj;
            return want_eol(p);
        }
        perr(p, k->col, "expected stop or expect after listener '%s', got %s", e->name,
             describe(k, b, sizeof b));
        return false;
    case SCN_ENT_DEFERRED:
        break;
    }
    scn_stmt *st;
    if (is_kw(k, "then") || is_kw(k, "catch") || is_kw(k, "both")) {
        next(p);
        st = new_stmt(p, SCN_S_ADD_HANDLERS, subjk->col);
        if (st == NULL)
            return false;
        st->subj = subj;
        st->cb.op = st->eb.op = SCN_H_PASS;
        if (is_kw(k, "then")) {
            if (!parse_handler(p, &st->cb, 0))
                return false;
            if (is_kw(peek(p), "else")) {
                next(p);
                if (!parse_handler(p, &st->eb, 1))
                    return false;
            }
        } else if (is_kw(k, "catch")) {
            if (!parse_handler(p, &st->eb, 1))
                return false;
        } else {
            if (!parse_handler(p, &st->cb, 2))
                return false;
            st->eb = st->cb;
        }
        return want_eol(p);
    }
    if (is_kw(k, "fire")) {
        next(p);
        st = new_stmt(p, SCN_S_FIRE, subjk->col);
        if (st == NULL)
            return false;
        st->subj = subj;
        if (peek(p)->t != T_EOL && !parse_value(p, &st->value))
            return false;
        return want_eol(p);
    }
    if (is_kw(k, "fail")) {
        next(p);
        st = new_stmt(p, SCN_S_FAIL, subjk->col);
        if (st == NULL)
            return false;
        st->subj = subj;
        if (!parse_type(p, &st->type, "a Failure type"))
            return false;
        if (peek(p)->t == T_STR && !parse_string(p, &st->msg, NULL, "a message"))
            return false;
        return want_eol(p);
    }
    if (is_kw(k, "cancel") || is_kw(k, "pause") || is_kw(k, "unpause")) {
        next(p);
        st = new_stmt(p, is_kw(k, "cancel")  ? SCN_S_CANCEL
                         : is_kw(k, "pause") ? SCN_S_PAUSE
                                             : SCN_S_UNPAUSE,
                      subjk->col);
        if (st == NULL)
            return false;
        st->subj = subj;
        return want_eol(p);
    }
    if (is_kw(k, "timeout")) {
        next(p);
        st = new_stmt(p, SCN_S_TIMEOUT, subjk->col);
        if (st == NULL)
            return false;
        st->subj = subj;
        return parse_duration(p, &st->dur_ns) && want_eol(p);
    }
    perr(p, k->col, "expected then, catch, both, fire, fail, cancel, pause, unpause, timeout or "
                    "expect after Deferred '%s', got %s", e->name, describe(k, b, sizeof b));
    return false;
}

static bool st_expect_global(parser *p, tok *kw)
{
    if (!not_timed(p, kw, "expect"))
        return false;
    tok *k = peek(p);
    if (!is_kw(k, "order")) {
        char b[64];
        perr(p, k->col, "expected 'order' or a name before 'expect', got %s",
             describe(k, b, sizeof b));
        return false;
    }
    next(p);
    scn_stmt *st = new_stmt(p, SCN_S_EXPECT_ORDER, kw->col);
    if (st == NULL)
        return false;
    while (peek(p)->t != T_EOL) {
        const char *lab;
        if (!parse_string(p, &lab, NULL, "a label"))
            return false;
        const char **nl = weft_realloc(st->labels, (st->nlabels + 1) * sizeof *nl);
        if (nl == NULL) {
            p->oom = true;
            return false;
        }
        st->labels = nl;
        st->labels[st->nlabels++] = lab;
    }
    return true;
}

static bool statement(parser *p);

/* at TIME: STATEMENT | after DURATION: STATEMENT */
static bool st_timing(parser *p, tok *kw, bool at)
{
    if (p->in_timing) {
        perr(p, kw->col, "at/after cannot be nested");
        return false;
    }
    int64_t t;
    if (!parse_duration(p, &t))
        return false;
    tok *k = peek(p);
    if (k->t != T_COLON) {
        char b[64];
        perr(p, k->col, "expected ':' after the time, got %s", describe(k, b, sizeof b));
        return false;
    }
    next(p);
    if (peek(p)->t == T_EOL) {
        perr(p, peek(p)->col, "expected a statement after ':'");
        return false;
    }
    size_t first = p->sc->nstmts;
    p->in_timing = true;
    bool ok = statement(p);
    p->in_timing = false;
    for (size_t i = first; i < p->sc->nstmts; i++) {
        p->sc->stmts[i].timing = at ? SCN_T_AT : SCN_T_AFTER;
        p->sc->stmts[i].time_ns = t;
    }
    return ok;
}

static bool statement(parser *p)
{
    tok *k = peek(p);
    char b[64];
    if (k->t != T_WORD) {
        perr(p, k->col, "expected a statement, got %s", describe(k, b, sizeof b));
        return false;
    }
    next(p);
    if (is_kw(k, "scenario"))
        return st_scenario(p, k);
    if (is_kw(k, "seed"))
        return st_seed(p, k);
    if (is_kw(k, "jitter"))
        return st_jitter(p, k);
    if (is_kw(k, "limit"))
        return st_limit(p, k);
    if (is_kw(k, "network"))
        return st_network(p, k);
    if (is_kw(k, "host"))
        return st_host(p, k);
    if (is_kw(k, "listen"))
        return st_listen(p, k);
    if (is_kw(k, "client"))
        return st_client(p, k);
    if (is_kw(k, "peer"))
        return st_peer(p, k);
    if (is_kw(k, "advance"))
        return st_advance(p, k);
    if (is_kw(k, "run"))
        return st_run(p, k);
    if (is_kw(k, "reset"))
        return st_fault(p, k, SCN_S_RESET, -1);
    if (is_kw(k, "partition"))
        return st_fault(p, k, SCN_S_PARTITION, 2);
    if (is_kw(k, "heal"))
        return st_fault(p, k, SCN_S_HEAL, 2);
    if (is_kw(k, "stall"))
        return st_fault(p, k, SCN_S_STALL, 2);
    if (is_kw(k, "release"))
        return st_fault(p, k, SCN_S_RELEASE, 2);
    if (is_kw(k, "crash"))
        return st_fault(p, k, SCN_S_CRASH, 1);
    if (is_kw(k, "restart"))
        return st_fault(p, k, SCN_S_RESTART, 1);
    if (is_kw(k, "deferred"))
        return st_deferred(p, k);
    if (is_kw(k, "list"))
        return st_list(p, k, false);
    if (is_kw(k, "gather"))
        return st_list(p, k, true);
    if (is_kw(k, "later"))
        return st_later(p, k);
    if (is_kw(k, "call"))
        return st_call(p, k);
    if (is_kw(k, "expect"))
        return st_expect_global(p, k);
    if (is_kw(k, "at"))
        return st_timing(p, k, true);
    if (is_kw(k, "after"))
        return st_timing(p, k, false);
    int subj = find_tok(p->sc, k);
    if (subj >= 0)
        return st_subject(p, k, subj);
    perr(p, k->col, "unknown statement or name %s", describe(k, b, sizeof b));
    return false;
}

/* -------------------------------------------------------------- driver */

static void free_stmt(scn_stmt *st)
{
    weft_free(st->members);
    weft_free(st->labels);
    weft_free(st->items);
    weft_free(st->argv);
    if (st->has_regex)
        regfree(&st->regex);
}

void weft_scenario_free(weft_scenario *sc)
{
    if (sc == NULL)
        return;
    for (size_t i = 0; i < sc->nstmts; i++)
        free_stmt(&sc->stmts[i]);
    weft_free(sc->stmts);
    for (size_t i = 0; i < sc->nents; i++)
        weft_free(sc->ents[i].name);
    weft_free(sc->ents);
    for (size_t i = 0; i < sc->npool; i++)
        weft_free(sc->pool[i]);
    weft_free(sc->pool);
    weft_free(sc->file);
    weft_free(sc->name);
    weft_free(sc);
}

/* The file's base name without a .scn suffix. */
static char *default_name(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".scn") == 0)
        n -= 4;
    char *s = weft_malloc(n + 1);
    if (s != NULL) {
        memcpy(s, base, n);
        s[n] = '\0';
    }
    return s;
}

int weft_scenario_parse(const char *text, size_t len, const char *filename, weft_scenario **out,
                        weft_diags *diags)
{
    if (out == NULL)
        return WEFT_EINVAL;
    *out = NULL;
    if (text == NULL && len > 0)
        return WEFT_EINVAL;
    weft_scenario *sc = weft_calloc(1, sizeof *sc);
    if (sc == NULL)
        return WEFT_ENOMEM;
    parser p;
    memset(&p, 0, sizeof p);
    p.sc = sc;
    p.diags = diags;
    sc->file = weft_strdup(filename ? filename : "<input>");
    p.file = sc->file;
    if (sc->file == NULL || add_entity(&p, "localhost", 9, SCN_ENT_HOST, 0, 0) < 0) {
        weft_scenario_free(sc);
        return WEFT_ENOMEM;
    }
    size_t off = 0;
    int line = 0;
    while (off < len && !p.oom) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - off;
        if (line == INT32_MAX)
            break;
        p.line = ++line;
        if (n > 0 && text[off + n - 1] == '\r')
            n--;
        if (n > WEFT_SCENARIO_LINE_MAX) {
            perr(&p, (int)WEFT_SCENARIO_LINE_MAX + 1, "line longer than %u bytes",
                 WEFT_SCENARIO_LINE_MAX);
        } else if (lex_line(&p, text + off, n) && p.toks[0].t != T_EOL) {
            statement(&p);
        }
        free_tokens(&p);
        off = nl ? end + 1 : len;
    }
    free_tokens(&p);
    weft_free(p.toks);
    if (!p.oom && sc->name == NULL) {
        sc->name = default_name(sc->file);
        if (sc->name == NULL)
            p.oom = true;
    }
    if (!sc->has_seed)
        sc->seed = 1;
    if (p.oom) {
        weft_scenario_free(sc);
        return WEFT_ENOMEM;
    }
    if (p.errors) {
        weft_scenario_free(sc);
        return WEFT_EPARSE;
    }
    *out = sc;
    return WEFT_OK;
}

int weft_scenario_load(const char *path, weft_scenario **out, weft_diags *diags)
{
    if (out == NULL || path == NULL)
        return WEFT_EINVAL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        weft_diags_add(diags, path, 0, 0, "cannot read: %s", strerror(errno));
        return WEFT_EIO;
    }
    size_t cap = 4096, len = 0;
    char *buf = weft_malloc(cap);
    if (buf == NULL) {
        fclose(f);
        return WEFT_ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)64 << 20) {
                weft_free(buf);
                fclose(f);
                weft_diags_add(diags, path, 0, 0, "cannot read: file larger than 64 MiB");
                return WEFT_ELIMIT;
            }
            char *nb = weft_realloc(buf, cap * 2);
            if (nb == NULL) {
                weft_free(buf);
                fclose(f);
                return WEFT_ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        weft_free(buf);
        weft_diags_add(diags, path, 0, 0, "cannot read: input/output error");
        return WEFT_EIO;
    }
    int rc = weft_scenario_parse(buf, len, path, out, diags);
    weft_free(buf);
    return rc;
}

const char *weft_scenario_name(const weft_scenario *sc)
{
    return sc->name;
}

const char *weft_scenario_file(const weft_scenario *sc)
{
    return sc->file;
}

bool weft_scenario_has_seed(const weft_scenario *sc)
{
    return sc->has_seed;
}

uint64_t weft_scenario_seed(const weft_scenario *sc)
{
    return sc->seed;
}

size_t weft_scenario_statements(const weft_scenario *sc)
{
    return sc->nstmts;
}
