/* choice.c: the choice sources (weft/sim.h) and their record.
 *
 * Every source answers "a number in [0, n)". weft_choose wraps the source:
 * n <= 1 is answered 0 without asking it (so replays stay short), answers are
 * clamped below n, and each answer is appended to the record with its bound
 * and label while recording is on.
 *
 * The seeded generator is specified bit for bit in docs/simulator.md:
 * SplitMix64 expands the seed into xoshiro256** state; a 32-bit draw is the
 * high half of a 64-bit output; bounded draws use Lemire's multiply-shift with
 * rejection. Nothing here reads a clock or libc's rand().
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "weft/sim.h"

/* ------------------------------------------------------------ wrapper */

static void record(weft_choice *c, uint32_t value, uint32_t bound, const char *label)
{
    if (c->rec_len == c->rec_cap) {
        size_t cap = c->rec_cap ? c->rec_cap * 2 : 64;
        uint32_t *v = weft_realloc(c->rec_values, cap * sizeof *v);
        if (!v)
            goto fail;
        c->rec_values = v;
        uint32_t *b = weft_realloc(c->rec_bounds, cap * sizeof *b);
        if (!b)
            goto fail;
        c->rec_bounds = b;
        const char **l = weft_realloc(c->rec_labels, cap * sizeof *l);
        if (!l)
            goto fail;
        c->rec_labels = l;
        c->rec_cap = cap;
    }
    c->rec_values[c->rec_len] = value;
    c->rec_bounds[c->rec_len] = bound;
    c->rec_labels[c->rec_len] = label;
    c->rec_len++;
    return;
fail:
    c->recording = false;
    c->rec_incomplete = true;
}

uint32_t weft_choose(weft_choice *c, uint32_t n, const char *label)
{
    if (n <= 1)
        return 0;
    uint32_t v = c->ops->choose(c, n, label);
    if (v >= n)
        v = n - 1;
    c->count++;
    if (c->recording)
        record(c, v, n, label ? label : "");
    return v;
}

void weft_choice_free(weft_choice *c)
{
    if (!c)
        return;
    weft_free(c->rec_values);
    weft_free(c->rec_bounds);
    weft_free(c->rec_labels);
    c->ops->free(c);
}

void weft_choice_record(weft_choice *c, bool on)
{
    c->recording = on;
}

size_t weft_choice_recorded(const weft_choice *c, const uint32_t **values, const uint32_t **bounds)
{
    if (values)
        *values = c->rec_values;
    if (bounds)
        *bounds = c->rec_bounds;
    return c->rec_len;
}

bool weft_choice_record_complete(const weft_choice *c)
{
    return !c->rec_incomplete;
}

static void base_init(weft_choice *c, const weft_choice_ops *ops)
{
    memset(c, 0, sizeof *c);
    c->ops = ops;
    c->recording = true;
}

/* ------------------------------------------------------------- seeded */

typedef struct seeded {
    weft_choice base;
    uint64_t s[4];
} seeded;

static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, unsigned k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

static uint32_t seeded_choose(weft_choice *c, uint32_t n, const char *label)
{
    seeded *g = (seeded *)c;
    uint32_t x = (uint32_t)(xoshiro_next(g->s) >> 32);
    uint64_t m = (uint64_t)x * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            x = (uint32_t)(xoshiro_next(g->s) >> 32);
            m = (uint64_t)x * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

static void plain_free(weft_choice *c)
{
    weft_free(c);
}

static const weft_choice_ops seeded_ops = {seeded_choose, plain_free};

weft_choice *weft_choice_seeded(uint64_t seed)
{
    seeded *g = weft_malloc(sizeof *g);
    if (!g)
        return NULL;
    base_init(&g->base, &seeded_ops);
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64_next(&x);
    return &g->base;
}

/* -------------------------------------------------------------- bytes */

typedef struct bytes_src {
    weft_choice base;
    size_t len, off;
    uint8_t data[];
} bytes_src;

static uint32_t bytes_choose(weft_choice *c, uint32_t n, const char *label)
{
    bytes_src *b = (bytes_src *)c;
    if (n <= 256) {
        if (b->off >= b->len)
            return 0;
        return b->data[b->off++] % n;
    }
    if (b->len - b->off < 4) {
        b->off = b->len; /* a partial word: input is exhausted */
        return 0;
    }
    const uint8_t *p = b->data + b->off;
    b->off += 4;
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return v % n;
}

static const weft_choice_ops bytes_ops = {bytes_choose, plain_free};

weft_choice *weft_choice_bytes(const uint8_t *data, size_t len)
{
    if (!data)
        len = 0;
    bytes_src *b = weft_malloc(sizeof *b + len);
    if (!b)
        return NULL;
    base_init(&b->base, &bytes_ops);
    b->len = len;
    b->off = 0;
    if (len)
        memcpy(b->data, data, len);
    return &b->base;
}

/* ------------------------------------------------------------- replay */

typedef struct replay_src {
    weft_choice base;
    size_t len, off;
    uint32_t values[];
} replay_src;

static uint32_t replay_choose(weft_choice *c, uint32_t n, const char *label)
{
    replay_src *r = (replay_src *)c;
    if (r->off >= r->len)
        return 0;
    uint32_t v = r->values[r->off++];
    return v < n ? v : n - 1;
}

static const weft_choice_ops replay_ops = {replay_choose, plain_free};

weft_choice *weft_choice_replay(const uint32_t *values, size_t len)
{
    if (!values)
        len = 0;
    if (len > (SIZE_MAX - sizeof(replay_src)) / sizeof(uint32_t))
        return NULL;
    replay_src *r = weft_malloc(sizeof *r + len * sizeof(uint32_t));
    if (!r)
        return NULL;
    base_init(&r->base, &replay_ops);
    r->len = len;
    r->off = 0;
    if (len)
        memcpy(r->values, values, len * sizeof(uint32_t));
    return &r->base;
}

/* -------------------------------------------------------- choice files */

int weft_choice_save(const weft_choice *c, FILE *out)
{
    if (!c || !out)
        return WEFT_EINVAL;
    if (fprintf(out, "# weft choices: value/bound label\n") < 0)
        return WEFT_EIO;
    for (size_t i = 0; i < c->rec_len; i++) {
        const char *label = c->rec_labels[i];
        if (fprintf(out, "%" PRIu32 "/%" PRIu32 "%s%s\n", c->rec_values[i], c->rec_bounds[i],
                    label[0] ? " " : "", label) < 0)
            return WEFT_EIO;
    }
    if (fflush(out) != 0 || ferror(out))
        return WEFT_EIO;
    return WEFT_OK;
}

#define LINE_MAX_BYTES 1024

static int parse_err(char *err, size_t errlen, unsigned long line, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "line %lu: %s", line, what);
    return WEFT_EPARSE;
}

/* Parse an unsigned 32-bit decimal at *p; advances *p. */
static bool parse_u32(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return false;
        s++;
    }
    *p = s;
    *out = (uint32_t)v;
    return true;
}

static int parse_line(const char *s, unsigned long lineno, bool *has, uint32_t *value, char *err,
                      size_t errlen)
{
    *has = false;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '#')
        return WEFT_OK;
    if (!parse_u32(&s, value))
        return parse_err(err, errlen, lineno, "expected a value (decimal, at most 4294967295)");
    if (*s == '/') {
        uint32_t bound;
        s++;
        if (!parse_u32(&s, &bound))
            return parse_err(err, errlen, lineno, "expected a bound after '/'");
        if (bound == 0)
            return parse_err(err, errlen, lineno, "bound must be at least 1");
        if (*value >= bound)
            return parse_err(err, errlen, lineno, "value must be below its bound");
    }
    if (*s != '\0' && *s != ' ' && *s != '\t')
        return parse_err(err, errlen, lineno, "junk after the value");
    *has = true;
    return WEFT_OK;
}

int weft_choice_load(FILE *in, uint32_t **values, size_t *len, char *err, size_t errlen)
{
    if (!in || !values || !len)
        return WEFT_EINVAL;
    *values = NULL;
    *len = 0;
    if (err && errlen)
        err[0] = '\0';
    uint32_t *vals = NULL;
    size_t n = 0, cap = 0;
    char line[LINE_MAX_BYTES + 1];
    unsigned long lineno = 0;
    int rc = WEFT_OK;
    for (;;) {
        size_t used = 0;
        int ch;
        bool eof = false, too_long = false;
        while ((ch = fgetc(in)) != EOF && ch != '\n') {
            if (ch == '\0') {
                too_long = true; /* binary junk: reported below */
                continue;
            }
            if (used < LINE_MAX_BYTES)
                line[used++] = (char)ch;
            else
                too_long = true;
        }
        if (ch == EOF) {
            if (ferror(in)) {
                rc = WEFT_EIO;
                break;
            }
            eof = true;
            if (used == 0 && !too_long)
                break;
        }
        lineno++;
        if (used && line[used - 1] == '\r')
            used--;
        line[used] = '\0';
        if (too_long) {
            rc = parse_err(err, errlen, lineno, "line too long or contains NUL bytes");
            break;
        }
        bool has;
        uint32_t v;
        rc = parse_line(line, lineno, &has, &v, err, errlen);
        if (rc)
            break;
        if (has) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                uint32_t *nv = weft_realloc(vals, ncap * sizeof *nv);
                if (!nv) {
                    rc = WEFT_ENOMEM;
                    break;
                }
                vals = nv;
                cap = ncap;
            }
            vals[n++] = v;
        }
        if (eof)
            break;
    }
    if (rc) {
        weft_free(vals);
        return rc;
    }
    *values = vals;
    *len = n;
    return WEFT_OK;
}
