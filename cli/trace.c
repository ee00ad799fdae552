/* trace.c: the trace of a run rendered for viewers (`weft trace --format`).
 *
 * The simulator's trace is text, one line per record: "<time> <kind> <detail>"
 * (weft/sim.h). Two renderings are built from those lines alone, after the
 * run, from its kept trace text:
 *
 *   chrome   Chrome trace event JSON (chrome://tracing, Perfetto): one instant
 *            event per line, on a track per simulated host. A line belongs to
 *            the host its detail names (host=, from=), else to the host of the
 *            last dispatched event ("event ... host=X"), which is where the
 *            code that wrote it ran.
 *   mermaid  a Mermaid sequence diagram of the network conversation: connects,
 *            accepts, deliveries (bytes per chunk), closes, resets and faults
 *            between hosts, with scenario records and failures as notes.
 *
 * Only the renderings live here; the lines themselves are the simulator's
 * contract. A line this file does not understand is kept (chrome) or skipped
 * (mermaid), never an error. Host and connection tables are bounded
 * (CLI_TRACE_HOSTS_MAX, CLI_TRACE_CONNS_MAX); past them, lines fall back to
 * the scenario track.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define CLI_TRACE_HOSTS_MAX 256u
#define CLI_TRACE_CONNS_MAX 4096u
#define CLI_TRACE_NAME_MAX 64u

typedef struct line_view {
    const char *time; /* "S.NNNNNNNNN" */
    size_t time_len;
    const char *kind;
    size_t kind_len;
    const char *detail;
    size_t detail_len;
} line_view;

typedef struct conn_info {
    uint64_t id;
    int client, server; /* host indices */
} conn_info;

typedef struct trace_doc {
    char hosts[CLI_TRACE_HOSTS_MAX][CLI_TRACE_NAME_MAX];
    size_t nhosts;
    conn_info *conns;
    size_t nconns;
    int current; /* host of the last dispatched event, -1: none */
} trace_doc;

static void split_line(const char *line, size_t len, line_view *v)
{
    memset(v, 0, sizeof *v);
    size_t i = 0;
    v->time = line;
    while (i < len && line[i] != ' ')
        i++;
    v->time_len = i;
    if (i < len)
        i++;
    v->kind = line + i;
    size_t k = i;
    while (i < len && line[i] != ' ')
        i++;
    v->kind_len = i - k;
    if (i < len)
        i++;
    v->detail = line + i;
    v->detail_len = len - i;
}

static bool kind_is(const line_view *v, const char *kind)
{
    return v->kind_len == strlen(kind) && memcmp(v->kind, kind, v->kind_len) == 0;
}

/* The value of "key=" in the detail, up to the next space (or the character
 * stop, when not 0). */
static bool detail_value(const line_view *v, const char *key, char stop, char *out, size_t len)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen <= v->detail_len; i++) {
        if ((i == 0 || v->detail[i - 1] == ' ') && memcmp(v->detail + i, key, klen) == 0) {
            size_t j = i + klen, n = 0;
            while (j + n < v->detail_len && v->detail[j + n] != ' ' &&
                   (stop == 0 || v->detail[j + n] != stop))
                n++;
            if (n == 0 || n >= len)
                return false;
            memcpy(out, v->detail + j, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

static int host_index(trace_doc *d, const char *name)
{
    for (size_t i = 0; i < d->nhosts; i++) {
        if (strcmp(d->hosts[i], name) == 0)
            return (int)i;
    }
    if (d->nhosts == CLI_TRACE_HOSTS_MAX || strlen(name) >= CLI_TRACE_NAME_MAX)
        return -1;
    snprintf(d->hosts[d->nhosts], CLI_TRACE_NAME_MAX, "%s", name);
    return (int)d->nhosts++;
}

static conn_info *find_conn(trace_doc *d, uint64_t id)
{
    for (size_t i = d->nconns; i > 0; i--) {
        if (d->conns[i - 1].id == id)
            return &d->conns[i - 1];
    }
    return NULL;
}

static uint64_t detail_conn(const line_view *v)
{
    char buf[32];
    uint64_t id = 0;
    if (!detail_value(v, "conn=", 0, buf, sizeof buf) || !cli_parse_u64(buf, &id))
        return 0;
    return id;
}

/* "conn=N A:p>B:q": remember which host is which side of N. */
static void note_accept(trace_doc *d, const line_view *v)
{
    uint64_t id = detail_conn(v);
    const char *sp = memchr(v->detail, ' ', v->detail_len);
    if (id == 0 || sp == NULL || d->nconns == CLI_TRACE_CONNS_MAX)
        return;
    const char *ends = sp + 1;
    size_t rest = v->detail_len - (size_t)(ends - v->detail);
    const char *gt = memchr(ends, '>', rest);
    if (gt == NULL)
        return;
    const char *c1 = memchr(ends, ':', (size_t)(gt - ends));
    const char *end2 = ends + rest;
    const char *c2 = memchr(gt + 1, ':', (size_t)(end2 - gt - 1));
    if (c1 == NULL || c2 == NULL)
        return;
    char a[CLI_TRACE_NAME_MAX], b[CLI_TRACE_NAME_MAX];
    size_t la = (size_t)(c1 - ends), lb = (size_t)(c2 - gt - 1);
    if (la == 0 || lb == 0 || la >= sizeof a || lb >= sizeof b)
        return;
    memcpy(a, ends, la);
    a[la] = '\0';
    memcpy(b, gt + 1, lb);
    b[lb] = '\0';
    if (d->conns == NULL) {
        d->conns = calloc(CLI_TRACE_CONNS_MAX, sizeof *d->conns);
        if (d->conns == NULL)
            return;
    }
    conn_info *c = &d->conns[d->nconns++];
    c->id = id;
    c->client = host_index(d, a);
    c->server = host_index(d, b);
}

/* The host a line belongs to, learning hosts and connections on the way. */
static int line_host(trace_doc *d, const line_view *v)
{
    char name[CLI_TRACE_NAME_MAX];
    if (kind_is(v, "event")) {
        if (detail_value(v, "host=", 0, name, sizeof name))
            d->current = host_index(d, name);
        return d->current;
    }
    if (kind_is(v, "net.accept"))
        note_accept(d, v);
    if (detail_value(v, "host=", 0, name, sizeof name) ||
        detail_value(v, "from=", 0, name, sizeof name))
        return host_index(d, name);
    return d->current;
}

/* ------------------------------------------------------------ chrome */

static void json_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* "S.NNNNNNNNN" seconds to microseconds with three decimals, exactly. */
static void json_time_us(FILE *out, const line_view *v)
{
    const char *dot = memchr(v->time, '.', v->time_len);
    bool ok = dot != NULL && dot != v->time && v->time_len - (size_t)(dot - v->time) == 10;
    for (size_t i = 0; ok && i < v->time_len; i++)
        ok = v->time + i == dot || (v->time[i] >= '0' && v->time[i] <= '9');
    if (!ok) {
        fputs("0", out); /* not a time the simulator writes: keep the JSON valid */
        return;
    }
    /* seconds, then 6 digits of microseconds, '.', 3 digits of nanoseconds */
    size_t sec_len = (size_t)(dot - v->time);
    bool zero = sec_len == 1 && v->time[0] == '0';
    if (!zero)
        fprintf(out, "%.*s", (int)sec_len, v->time);
    const char *frac = dot + 1;
    if (zero) {
        size_t k = 0;
        while (k < 5 && frac[k] == '0')
            k++;
        fprintf(out, "%.*s.%.3s", (int)(6 - k), frac + k, frac + 6);
    } else {
        fprintf(out, "%.6s.%.3s", frac, frac + 6);
    }
}

static void render_chrome(FILE *out, const char *file, const char *text, size_t len)
{
    trace_doc d;
    memset(&d, 0, sizeof d);
    d.current = -1;
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", out);
    fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":", out);
    json_string(out, file, strlen(file));
    fputs("}}", out);
    size_t pos = 0, l, named = 0;
    const char *line;
    while (cli_next_line(text, len, &pos, &line, &l)) {
        line_view v;
        split_line(line, l, &v);
        int host = line_host(&d, &v);
        /* Name each host's track when it first appears: tid 0 is the
         * scenario's own track, host i is tid i + 1. */
        for (; named < d.nhosts; named++) {
            fprintf(out, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%zu,"
                         "\"args\":{\"name\":",
                    named + 1);
            json_string(out, d.hosts[named], strlen(d.hosts[named]));
            fputs("}}", out);
        }
        fputs(",\n{\"name\":", out);
        json_string(out, v.kind, v.kind_len);
        fputs(",\"cat\":", out);
        const char *dot = memchr(v.kind, '.', v.kind_len);
        json_string(out, v.kind, dot ? (size_t)(dot - v.kind) : v.kind_len);
        fputs(",\"ph\":\"i\",\"s\":\"t\",\"ts\":", out);
        json_time_us(out, &v);
        fprintf(out, ",\"pid\":1,\"tid\":%d,\"args\":{\"detail\":", host + 1);
        json_string(out, v.detail, v.detail_len);
        fputs("}}", out);
    }
    fputs("\n]}\n", out);
    free(d.conns);
}

/* ----------------------------------------------------------- mermaid */

/* Mermaid participant ids: h<index>, the name shown with "as", so that no
 * host name (keywords, punctuation) can break the diagram. */
static void mermaid_id(FILE *out, const trace_doc *d, int host)
{
    (void)d;
    fprintf(out, "h%d", host);
}

/* Message text: no characters Mermaid treats as syntax. */
static void mermaid_text(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ';' || c == '#' || c == '\n' || c == '\r' || c < 0x20 || c >= 0x7f)
            fputc(' ', out);
        else
            fputc(c, out);
    }
}

static void arrow(FILE *out, trace_doc *d, int from, int to, const char *style, const line_view *v,
                  const char *msg)
{
    fputs("    ", out);
    mermaid_id(out, d, from);
    fputs(style, out);
    mermaid_id(out, d, to);
    fputs(": ", out);
    mermaid_text(out, msg, strlen(msg));
    fprintf(out, " @%.*s\n", (int)v->time_len, v->time);
}

static void note(FILE *out, trace_doc *d, int host, const line_view *v, const char *prefix)
{
    fputs("    Note over ", out);
    if (host >= 0)
        mermaid_id(out, d, host);
    else
        fputs("scenario", out);
    fprintf(out, ": %s", prefix);
    mermaid_text(out, v->detail, v->detail_len);
    fprintf(out, " @%.*s\n", (int)v->time_len, v->time);
}

static void render_mermaid(FILE *out, const char *text, size_t len)
{
    trace_doc d;
    memset(&d, 0, sizeof d);
    d.current = -1;
    /* First pass: every host, in order of appearance, so that the
     * participants line up left to right as the conversation starts. */
    size_t pos = 0, l;
    const char *line;
    while (cli_next_line(text, len, &pos, &line, &l)) {
        line_view v;
        split_line(line, l, &v);
        (void)line_host(&d, &v);
        char to[CLI_TRACE_NAME_MAX];
        if (detail_value(&v, "to=", ':', to, sizeof to))
            (void)host_index(&d, to);
    }
    fputs("sequenceDiagram\n", out);
    fputs("    participant scenario\n", out);
    for (size_t i = 0; i < d.nhosts; i++) {
        fputs("    participant ", out);
        mermaid_id(out, &d, (int)i);
        fputs(" as ", out);
        mermaid_text(out, d.hosts[i], strlen(d.hosts[i]));
        fputc('\n', out);
    }
    /* Second pass: the conversation. The tables are rebuilt as the lines
     * come, so a connection id reused after a restart maps to its latest
     * accept. */
    d.nconns = 0;
    d.current = -1;
    pos = 0;
    while (cli_next_line(text, len, &pos, &line, &l)) {
        line_view v;
        split_line(line, l, &v);
        int host = line_host(&d, &v);
        char a[CLI_TRACE_NAME_MAX], b[32], port[16], msg[96];
        conn_info *c = NULL;
        uint64_t id = detail_conn(&v);
        if (id != 0)
            c = find_conn(&d, id);
        if (kind_is(&v, "net.connect") && detail_value(&v, "from=", 0, a, sizeof a) &&
            detail_value(&v, "to=", ':', b, sizeof b)) {
            const char *colon = memchr(v.detail, ':', v.detail_len);
            size_t n = 0;
            if (colon != NULL) {
                while (colon + 1 + n < v.detail + v.detail_len && colon[1 + n] != ' ' &&
                       n < sizeof port - 1)
                    n++;
                memcpy(port, colon + 1, n);
            }
            port[n] = '\0';
            int f = host_index(&d, a), t = host_index(&d, b);
            snprintf(msg, sizeof msg, "connect :%s", port);
            if (f >= 0 && t >= 0)
                arrow(out, &d, f, t, "->>", &v, msg);
        } else if (kind_is(&v, "net.accept") && c != NULL && c->client >= 0 && c->server >= 0) {
            snprintf(msg, sizeof msg, "accept conn %llu", (unsigned long long)c->id);
            arrow(out, &d, c->server, c->client, "-->>", &v, msg);
        } else if (kind_is(&v, "net.deliver") && c != NULL && c->client >= 0 && c->server >= 0 &&
                   detail_value(&v, "bytes=", 0, b, sizeof b) &&
                   detail_value(&v, "dir=", 0, a, sizeof a)) {
            bool up = strcmp(a, "c>s") == 0;
            snprintf(msg, sizeof msg, "%s byte%s", b, strcmp(b, "1") == 0 ? "" : "s");
            arrow(out, &d, up ? c->client : c->server, up ? c->server : c->client, "->>", &v, msg);
        } else if ((kind_is(&v, "net.fin") || kind_is(&v, "net.rst")) && c != NULL &&
                   c->client >= 0 && c->server >= 0 &&
                   detail_value(&v, "dir=", 0, a, sizeof a)) {
            bool up = strcmp(a, "c>s") == 0;
            arrow(out, &d, up ? c->client : c->server, up ? c->server : c->client, "--x", &v,
                  kind_is(&v, "net.fin") ? "FIN" : "RST");
        } else if (kind_is(&v, "net.refused") || kind_is(&v, "net.connect_failed") ||
                   kind_is(&v, "net.close") || kind_is(&v, "net.abort") ||
                   kind_is(&v, "net.lost") || kind_is(&v, "net.fault") ||
                   kind_is(&v, "net.listen") || kind_is(&v, "net.syn_lost")) {
            char prefix[40];
            snprintf(prefix, sizeof prefix, "%.*s ", (int)(v.kind_len - 4), v.kind + 4);
            note(out, &d, host, &v, prefix);
        } else if (kind_is(&v, "scn.record")) {
            note(out, &d, host, &v, "record ");
        } else if (kind_is(&v, "scn.fail")) {
            note(out, &d, -1, &v, "FAIL ");
        } else if (kind_is(&v, "scn.end")) {
            note(out, &d, -1, &v, "end ");
        }
    }
    free(d.conns);
}

int cli_render_trace(FILE *out, const char *format, const char *file, const char *text,
                     size_t len)
{
    if (strcmp(format, "chrome") == 0)
        render_chrome(out, file, text, len);
    else if (strcmp(format, "mermaid") == 0)
        render_mermaid(out, text, len);
    else
        return WEFT_EINVAL;
    return ferror(out) ? WEFT_EIO : WEFT_OK;
}
