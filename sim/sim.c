/* sim.c: the simulated reactor: virtual clock, event queue, concurrency
 * choices, runaway caps and the trace of every dispatched event.
 *
 * Time is an integer count of nanoseconds that moves only when an event is
 * dispatched (or when run_until/advance reach their target). Events wait in the
 * shared timer queue (reactor/timerq.h) keyed by (time, sequence).
 *
 * Concurrency: a pass starts at the earliest due time T and takes every event
 * due up to T + jitter_ns. While it lasts, each dispatch asks the choice
 * source which of the k remaining pass events runs next (no question when
 * k == 1). Events scheduled during a pass wait for the next one, so a delay-0
 * call never overtakes an event that was already due. An event picked after a
 * later-due one runs at max(now, its time): the clock never goes backwards.
 *
 * Labels: every event carries a label id into a table of static strings, in
 * order of first use (deterministic), looked up by address, then by strcmp.
 * Id 0 is "call" (user delayed calls; weft_call_later_labelled and the
 * helpers name theirs). The table holds each label's string hash for the
 * trace and its dispatch count for weft_sim_hottest_event.
 *
 * Trace cost: records are mixed into the hash as words (sim/trace.h); text is
 * formatted only when a sink or keep_lines wants it. Notes hash their format
 * and argument words, never their text. Hashes of static strings (choice
 * labels, internal note kinds and formats) are memoised in a small table
 * indexed by address bits: the index only decides whether a hash is
 * recomputed, each slot keeps the string it belongs to.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reactor/timerq.h"
#include "sim/sim_internal.h"
#include "sim/trace.h"

#define LABEL_USER_CALL "call"
#define LABEL_OVERFLOW "(other)"
#define LINE_MAX_BYTES 512
#define STATIC_MEMO_SLOTS 64u

typedef struct label_info {
    const char *name;
    uint64_t hash;
    uint64_t count;
    weft__sim_prefetch_fn prefetch; /* cache hint for its events, or NULL */
} label_info;

struct weft_sim {
    struct weft_reactor base; /* first: a weft_reactor * is a weft_sim * */
    weft_timerq timers;       /* base.timers points here */
    weft_sim_config cfg;
    weft_choice *choices;
    weft_simnet *net;
    weft_time_ns now;
    uint64_t events;
    bool running;  /* inside weft_reactor_run / run_until */
    bool stopping; /* weft_reactor_stop asked the active run to end */
    bool dispatching; /* inside an event's function */
    uint32_t current_host;
    label_info *labels;
    size_t nlabels, labels_cap;
    /* Memo of the hashes of static strings (choice labels, the kinds and
     * formats of internal notes), indexed by bits of the string's address.
     * The index only decides whether a hash is recomputed, never a result:
     * a slot holds the string it was computed from. */
    struct {
        const char *s;
        uint64_t hash;
    } memo[STATIC_MEMO_SLOTS];
    weft__trace trace;
};

static const weft_reactor_ops sim_ops;

static weft_time_ns add_sat(weft_time_ns a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static inline weft_timerq *queue(weft_sim *s)
{
    return &s->timers;
}

/* --------------------------------------------------------------- labels */

static int label_add(weft_sim *s, const char *name)
{
    if (s->nlabels == s->labels_cap) {
        size_t cap = s->labels_cap ? s->labels_cap * 2 : 16;
        label_info *l = weft_realloc(s->labels, cap * sizeof *l);
        if (!l)
            return -1;
        s->labels = l;
        s->labels_cap = cap;
    }
    label_info *li = &s->labels[s->nlabels];
    li->name = name;
    li->hash = weft__trace_strhash(name);
    li->count = 0;
    li->prefetch = NULL;
    return (int)s->nlabels++;
}

/* Id of a label (created on first use). Past the id space, or out of memory,
 * labels share the overflow id (the last table entry). */
static unsigned label_id(weft_sim *s, const char *name)
{
    /* The same static string is the common case: find it by identity first
     * (equality only, never order), then by content. */
    for (size_t i = 0; i < s->nlabels; i++)
        if (s->labels[i].name == name)
            return (unsigned)i;
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return (unsigned)i;
    if (s->nlabels < WEFT__CALL_LABEL_MAX) {
        int id = label_add(s, name);
        if (id >= 0)
            return (unsigned)id;
    }
    return 1; /* LABEL_OVERFLOW */
}

/* The timer queue's label hook: ids for weft_call_later_labelled. */
static unsigned queue_label_of(weft_reactor *r, const char *label)
{
    return label_id((weft_sim *)r, label);
}

/* ---------------------------------------------------------------- trace */

static void host_name(weft_sim *s, uint32_t host, char *buf, size_t len)
{
    const char *name = s->net ? weft__simnet_host_name(s->net, host) : NULL;
    if (name)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "h%" PRIu32, host);
}

static void trace_event(weft_sim *s, weft_time_ns t, uint64_t seq, unsigned label, uint32_t host)
{
    uint64_t *h = &s->trace.hash;
    weft__trace_mix(h, WEFT__TRACE_EVENT);
    weft__trace_mix(h, (uint64_t)t);
    weft__trace_mix(h, seq);
    weft__trace_mix(h, s->labels[label].hash);
    weft__trace_mix(h, host);
    if (!weft__trace_text_on(&s->trace))
        return;
    char ts[WEFT__TRACE_TIME_MAX], hn[WEFT_HOST_MAX + 16], line[LINE_MAX_BYTES];
    weft__trace_fmt_time(ts, t);
    host_name(s, host, hn, sizeof hn);
    int n = snprintf(line, sizeof line, "%s event %s seq=%" PRIu64 " host=%s", ts,
                     s->labels[label].name, seq, hn);
    if (n > 0)
        weft__trace_emit(&s->trace, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* The hash of a static string (one whose bytes never change at that
 * address): choice labels and internal note kinds and formats. */
static uint64_t static_hash(weft_sim *s, const char *str)
{
    uintptr_t a = (uintptr_t)str;
    size_t slot = (size_t)((a >> 3) ^ (a >> 11)) & (STATIC_MEMO_SLOTS - 1u);
    if (s->memo[slot].s != str) {
        s->memo[slot].s = str;
        s->memo[slot].hash = weft__trace_strhash(str);
    }
    return s->memo[slot].hash;
}

static void trace_choice(weft_sim *s, const char *label, uint32_t value, uint32_t n)
{
    uint64_t *h = &s->trace.hash;
    weft__trace_mix(h, WEFT__TRACE_CHOICE);
    weft__trace_mix(h, (uint64_t)s->now);
    weft__trace_mix(h, (uint64_t)value | (uint64_t)n << 32);
    weft__trace_mix(h, static_hash(s, label));
    if (!weft__trace_text_on(&s->trace))
        return;
    char ts[WEFT__TRACE_TIME_MAX], line[LINE_MAX_BYTES];
    weft__trace_fmt_time(ts, s->now);
    int len = snprintf(line, sizeof line, "%s choice %s %" PRIu32 "/%" PRIu32, ts, label, value, n);
    if (len > 0)
        weft__trace_emit(&s->trace, line,
                         (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
}

/* Render a note's line "<time> <kind> <text>" (text on only). */
static void note_text(weft_sim *s, const char *kind, const char *fmt, va_list ap)
{
    char small[LINE_MAX_BYTES];
    char *text = small;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        small[0] = '\0';
        n = 0;
    } else if ((size_t)n >= sizeof small) {
        char *big = weft_malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            text = big;
        } else {
            n = (int)sizeof small - 1; /* show the truncated text */
        }
    }
    va_end(ap2);
    char ts[WEFT__TRACE_TIME_MAX];
    size_t tl = weft__trace_fmt_time(ts, s->now);
    size_t kl = strlen(kind);
    size_t len = tl + 1 + kl + 1 + (size_t)n;
    char *line = weft_malloc(len + 1);
    if (line) {
        memcpy(line, ts, tl);
        line[tl] = ' ';
        memcpy(line + tl + 1, kind, kl);
        line[tl + 1 + kl] = ' ';
        memcpy(line + tl + 2 + kl, text, (size_t)n);
        line[len] = '\0';
        weft__trace_emit(&s->trace, line, len);
        weft_free(line);
    }
    if (text != small)
        weft_free(text);
}

/* A note record: its words, then its text when wanted. */
static void note(weft_sim *s, const char *kind, uint64_t kind_hash, const char *fmt,
                 uint64_t fmt_hash, va_list ap)
{
    uint64_t *h = &s->trace.hash;
    weft__trace_mix(h, WEFT__TRACE_NOTE);
    weft__trace_mix(h, (uint64_t)s->now);
    weft__trace_mix(h, kind_hash);
    weft__trace_mix(h, fmt_hash);
    /* A va_list parameter may be an array in disguise: take the address of
     * a local copy only. */
    va_list args;
    va_copy(args, ap);
    weft__trace_hash_args(h, fmt, &args);
    va_end(args);
    if (weft__trace_text_on(&s->trace))
        note_text(s, kind, fmt, ap);
}

uint64_t weft__sim_static_hash(weft_sim *s, const char *str)
{
    return static_hash(s, str);
}

void weft__sim_note_words(weft_sim *s, const char *kind, const char *fmt, const uint64_t *words,
                          size_t nwords)
{
    uint64_t *h = &s->trace.hash;
    weft__trace_mix(h, WEFT__TRACE_NOTE);
    weft__trace_mix(h, (uint64_t)s->now);
    weft__trace_mix(h, static_hash(s, kind));
    weft__trace_mix(h, static_hash(s, fmt));
    for (size_t i = 0; i < nwords; i++)
        weft__trace_mix(h, words[i]);
}

void weft__sim_tracef(weft_sim *s, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note(s, kind, static_hash(s, kind), fmt, static_hash(s, fmt), ap);
    va_end(ap);
}

void weft_sim_trace(weft_sim *s, const char *kind, const char *fmt, ...)
{
    if (!kind)
        kind = "note";
    if (!fmt)
        fmt = "";
    /* kind and fmt may be the caller's buffers: hash them afresh. */
    va_list ap;
    va_start(ap, fmt);
    note(s, kind, weft__trace_strhash(kind), fmt, weft__trace_strhash(fmt), ap);
    va_end(ap);
}

uint64_t weft_sim_trace_hash(const weft_sim *s)
{
    return s->trace.hash;
}

bool weft_sim_tracing(const weft_sim *s)
{
    return weft__trace_text_on(&s->trace);
}

const char *weft_sim_trace_text(const weft_sim *s, size_t *len)
{
    if (len)
        *len = s->trace.text_len;
    return s->trace.text;
}

/* ------------------------------------------------------- core seam (net) */

uint32_t weft__sim_choose(weft_sim *s, uint32_t n, const char *label)
{
    if (n <= 1)
        return 0;
    if (!label)
        label = "";
    uint32_t v = weft_choose(s->choices, n, label);
    trace_choice(s, label, v, n);
    return v;
}

weft_call *weft__sim_schedule(weft_sim *s, weft_time_ns when, uint32_t host, const char *label,
                              weft_call_fn fn, void *ctx)
{
    if (!fn || host > UINT16_MAX)
        return NULL;
    if (when < s->now)
        when = s->now;
    unsigned id = label_id(s, label ? label : "event");
    weft_timerq *q = queue(s);
    uint16_t saved = q->tag;
    q->tag = (uint16_t)host;
    weft_call *c = weft__timerq_add(q, when, id, false, fn, ctx);
    q->tag = saved;
    return c;
}

void weft__sim_cancel(weft_sim *s, weft_call *c)
{
    if (c && weft__call_pending(c))
        weft__timerq_cancel(queue(s), c);
}

void weft__sim_drop_host_calls(weft_sim *s, uint32_t host)
{
    if (host > UINT16_MAX)
        return;
    size_t n = weft__timerq_drop_host(queue(s), (uint16_t)host);
    if (n) {
        char hn[WEFT_HOST_MAX + 16];
        host_name(s, host, hn, sizeof hn);
        weft_sim_trace(s, "sim.dropped", "host=%s calls=%zu", hn, n);
    }
}

void weft__sim_label_prefetch(weft_sim *s, const char *label, weft__sim_prefetch_fn prefetch)
{
    unsigned id = label_id(s, label);
    if (id != 1) /* never on the shared overflow label */
        s->labels[id].prefetch = prefetch;
}

weft_time_ns weft__sim_now(const weft_sim *s)
{
    return s->now;
}

uint32_t weft__sim_current_host(const weft_sim *s)
{
    return s->current_host;
}

void weft__sim_set_current_host_id(weft_sim *s, uint32_t host)
{
    s->current_host = host;
    s->timers.tag = (uint16_t)(host <= UINT16_MAX ? host : 0);
}

weft_simnet *weft__sim_net(weft_sim *s)
{
    return s->net;
}

const weft_sim_config *weft__sim_config(const weft_sim *s)
{
    return &s->cfg;
}

/* ------------------------------------------------------------- dispatch */

/* The labels' own cache hints, two events ahead: the event after next gets
 * its far hint (addresses only), the next one, whose far hint ran one event
 * ago, its near hint (which may read what the far hint loaded). Outside
 * passes only; hints never change behaviour. */
static void prefetch_labelled(weft_sim *s, const weft_timerq *q)
{
    if (q->pass_live || q->len == 0)
        return;
    const weft_call *nx = weft__timerq_node(q, q->heap[0].idx);
    const label_info *nl = &s->labels[weft__call_label(nx)];
    if (nl->prefetch)
        nl->prefetch(nx->ctx, true);
    const weft_call *nn = weft__timerq_after_next(q);
    if (nn) {
        nl = &s->labels[weft__call_label(nn)];
        if (nl->prefetch)
            nl->prefetch(nn->ctx, false);
    }
}

static void dispatch(weft_sim *s, weft_call *c, weft_time_ns t)
{
    weft_timerq *q = queue(s);
    weft_call_fn fn = c->u.fn;
    void *ctx = c->ctx;
    uint64_t seq = c->k.seq;
    unsigned label = weft__call_label(c);
    uint32_t host = c->host;
    weft__timerq_fire(q, c, t); /* marked called (or freed) before it runs */
    if (t > s->now)
        s->now = t;
    s->events++;
    s->labels[label].count++;
    s->current_host = host;
    q->tag = (uint16_t)host;
    trace_event(s, s->now, seq, label, host);
    weft__timerq_prefetch_next(q);
    prefetch_labelled(s, q);
    s->dispatching = true;
    fn(ctx);
    s->dispatching = false;
}

/* Dispatch the next event due at or before horizon. WEFT_ESTATE: none. */
static int step_until(weft_sim *s, weft_time_ns horizon)
{
    weft_timerq *q = queue(s);
    weft_time_ns next;
    if (!weft__timerq_next_time(q, &next) || next > horizon)
        return WEFT_ESTATE;
    if (s->cfg.max_events && s->events >= s->cfg.max_events)
        return WEFT_ELIMIT;
    if (s->cfg.max_time_ns && next > s->cfg.max_time_ns)
        return WEFT_ELIMIT;
    weft_call *c;
    weft_time_ns t;
    if (weft__timerq_pass_size(q) != 0 && weft__timerq_pass_at(q, 0)->time_ns > horizon) {
        /* With jitter a pass can reach past a run_until horizon while newer
         * events are due before it: end the pass here so run_until runs
         * everything due by its horizon and the clock stops there. */
        if (weft__timerq_unpass(q) == WEFT_OK)
            weft__timerq_next_time(q, &next);
    }
    if (weft__timerq_pass_size(q) == 0) {
        weft_time_ns limit = add_sat(next, s->cfg.jitter_ns);
        if (limit > horizon)
            limit = horizon;
        if (!weft__timerq_second_due(q, limit)) {
            c = weft__timerq_pop(q, &t); /* alone: no question to ask */
            dispatch(s, c, t);
            return WEFT_OK;
        }
        if (weft__timerq_fill_pass(q, limit) == 0) {
            c = weft__timerq_pop(q, &t); /* no memory for a pass: FIFO */
            dispatch(s, c, t);
            return WEFT_OK;
        }
    }
    /* The pass begins at its earliest event: the clock moves there before
     * the order is asked, so the choice is traced at that instant. */
    if (next > s->now)
        s->now = next;
    size_t k = weft__timerq_pass_size(q);
    uint32_t bound = k > UINT32_MAX ? UINT32_MAX : (uint32_t)k;
    uint32_t idx = weft__sim_choose(s, bound, "order");
    c = weft__timerq_pass_take(q, idx, &t);
    dispatch(s, c, t);
    return WEFT_OK;
}

int weft_sim_step(weft_sim *s)
{
    if (s->dispatching)
        return WEFT_ESTATE;
    return step_until(s, INT64_MAX);
}

int weft_sim_run_until_quiet(weft_sim *s)
{
    if (s->dispatching)
        return WEFT_ESTATE;
    for (;;) {
        int rc = step_until(s, INT64_MAX);
        if (rc == WEFT_ESTATE)
            return WEFT_OK;
        if (rc)
            return rc;
    }
}

int weft_sim_run_until(weft_sim *s, weft_time_ns t)
{
    if (s->dispatching)
        return WEFT_ESTATE;
    for (;;) {
        int rc = step_until(s, t);
        if (rc == WEFT_ESTATE)
            break;
        if (rc)
            return rc;
    }
    if (t > s->now)
        s->now = t;
    return WEFT_OK;
}

int weft_sim_advance(weft_sim *s, int64_t dt_ns)
{
    if (dt_ns < 0)
        return WEFT_EINVAL;
    return weft_sim_run_until(s, add_sat(s->now, dt_ns));
}

size_t weft_sim_pending(const weft_sim *s)
{
    return weft__timerq_pending(&s->timers);
}

bool weft_sim_next_time(const weft_sim *s, weft_time_ns *t)
{
    weft_time_ns tmp;
    bool any = weft__timerq_next_time(&s->timers, &tmp);
    if (any && t)
        *t = tmp;
    return any;
}

uint64_t weft_sim_events(const weft_sim *s)
{
    return s->events;
}

const char *weft_sim_hottest_event(const weft_sim *s, uint64_t *count)
{
    const label_info *best = NULL;
    for (size_t i = 0; i < s->nlabels; i++) {
        const label_info *li = &s->labels[i];
        if (li->count == 0)
            continue;
        if (!best || li->count > best->count ||
            (li->count == best->count && strcmp(li->name, best->name) < 0))
            best = li;
    }
    if (count)
        *count = best ? best->count : 0;
    return best ? best->name : NULL;
}

/* ---------------------------------------------------------- reactor ops */

static weft_time_ns op_now(weft_reactor *r)
{
    return ((weft_sim *)r)->now;
}

static uint32_t op_random(weft_reactor *r, uint32_t n, const char *label)
{
    return weft__sim_choose((weft_sim *)r, n, label ? label : "random");
}

/* weft_reactor_stop ends the active weft_reactor_run (WEFT_OK) or run_until
 * (WEFT_ESTATE) after the event that asked, and is consumed by it; outside
 * those runs it is ignored (weft/reactor.h). */
static int op_run(weft_reactor *r)
{
    weft_sim *s = (weft_sim *)r;
    int rc = WEFT_OK;
    if (s->dispatching || s->running)
        return WEFT_ESTATE;
    s->running = true;
    s->stopping = false;
    while (!s->stopping) {
        rc = step_until(s, INT64_MAX);
        if (rc == WEFT_ESTATE) {
            rc = WEFT_OK;
            break;
        }
        if (rc)
            break;
    }
    s->running = false;
    s->stopping = false;
    return rc;
}

static void op_stop(weft_reactor *r)
{
    weft_sim *s = (weft_sim *)r;
    if (s->running)
        s->stopping = true;
}

static int run_until_loop(weft_sim *s, bool (*cond)(void *), void *ctx, weft_time_ns deadline)
{
    for (;;) {
        if (cond && cond(ctx))
            return WEFT_OK;
        if (s->stopping)
            return WEFT_ESTATE;
        int rc = step_until(s, deadline);
        if (rc == WEFT_OK)
            continue;
        if (rc != WEFT_ESTATE)
            return rc;
        if (weft_sim_pending(s) == 0)
            return WEFT_ESTATE;
        if (deadline > s->now)
            s->now = deadline;
        return WEFT_ETIMEDOUT;
    }
}

static int op_run_until(weft_reactor *r, bool (*cond)(void *), void *ctx, weft_time_ns deadline)
{
    weft_sim *s = (weft_sim *)r;
    if (s->dispatching || s->running)
        return WEFT_ESTATE;
    s->running = true;
    s->stopping = false;
    int rc = run_until_loop(s, cond, ctx, deadline);
    s->running = false;
    s->stopping = false;
    return rc;
}

/* The network is gone while weft_sim_free drops pending calls (their hooks
 * may run user code): listen and connect are refused then. */
static int op_listen(weft_reactor *r, const weft_endpoint *ep, weft_factory *f,
                     weft_listener **out)
{
    weft_sim *s = (weft_sim *)r;
    if (!s->net)
        return WEFT_ESTATE;
    return weft__simnet_listen(s->net, ep, f, out);
}

static int op_connect(weft_reactor *r, const weft_endpoint *ep, weft_factory *f,
                      weft_connector **out)
{
    weft_sim *s = (weft_sim *)r;
    if (!s->net)
        return WEFT_ESTATE;
    return weft__simnet_connect(s->net, ep, f, out);
}

static void op_free(weft_reactor *r)
{
    weft_sim_free((weft_sim *)r);
}

static const weft_reactor_ops sim_ops = {
    .name = "sim",
    .now = op_now,
    .random = op_random,
    .run = op_run,
    .stop = op_stop,
    .run_until = op_run_until,
    .listen = op_listen,
    .connect = op_connect,
    .free = op_free,
};

/* ------------------------------------------------------------ lifecycle */

void weft_sim_config_default(weft_sim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->net.connect_timeout_ns = 30 * WEFT_NS_PER_S;
}

weft_sim *weft_sim_new(const weft_sim_config *cfg, weft_choice *choices)
{
    weft_sim_config def;
    if (!cfg) {
        weft_sim_config_default(&def);
        cfg = &def;
    }
    if (!choices)
        choices = weft_choice_replay(NULL, 0); /* every answer the default */
    if (!choices)
        return NULL;
    if (cfg->jitter_ns < 0 || cfg->max_time_ns < 0) {
        weft_choice_free(choices);
        return NULL;
    }
    weft_sim *s = weft_calloc(1, sizeof *s);
    if (!s) {
        weft_choice_free(choices);
        return NULL;
    }
    s->base.ops = &sim_ops;
    weft__timerq_init(&s->timers, &s->base);
    s->timers.label_of = queue_label_of;
    s->cfg = *cfg;
    s->choices = choices;
    weft__trace_init(&s->trace, cfg->trace_sink, cfg->trace_ctx, cfg->keep_lines);
    if (label_add(s, LABEL_USER_CALL) != 0 || label_add(s, LABEL_OVERFLOW) != 1 ||
        weft__simnet_new(s, &cfg->net, &s->net) != WEFT_OK) {
        weft_sim_free(s);
        return NULL;
    }
    return s;
}

void weft_sim_free(weft_sim *s)
{
    if (!s)
        return;
    /* The network first: closing connections may cancel its events. The
     * handlers that run meanwhile (connection_lost, dropped calls' hooks)
     * cannot start a run: the simulator counts as dispatching. */
    s->dispatching = true;
    weft__simnet_free(s->net);
    s->net = NULL;
    weft__timerq_destroy(&s->timers);
    weft_choice_free(s->choices);
    weft__trace_destroy(&s->trace);
    weft_free(s->labels);
    weft_free(s);
}

weft_reactor *weft_sim_reactor(weft_sim *s)
{
    return &s->base;
}

weft_sim *weft_sim_from_reactor(weft_reactor *r)
{
    if (!r || r->ops != &sim_ops)
        return NULL;
    return (weft_sim *)r;
}

weft_choice *weft_sim_choices(weft_sim *s)
{
    return s->choices;
}
