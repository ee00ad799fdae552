/* net.c: the simulated network: hosts, listeners, connectors, connections as
 * pairs of byte pipes, and the fault model.
 *
 * Hosts live in an array indexed by host id, in creation order; host 0 is
 * "localhost". Listeners, connectors and connections live in doubly linked
 * lists in creation order, so every sweep (crash, heal, free) visits them in
 * an order that depends only on what the run did, never on addresses.
 *
 * A connection has two sides (0: client, 1: server). Each side owns the pipe
 * of what it wrote: a byte buffer plus a queue of records (data of one write,
 * the connection-established signal to the client, FIN, RST). A pipe has at
 * most one delivery event scheduled at a time, for its head, and the due time
 * of each delivery is never earlier than the previous one: that is what keeps
 * bytes in order whatever order the core picks for concurrent events. When a
 * delivery is scheduled, the choice source decides, with coalescing on, how
 * many following writes it joins (value 0: none), with max_chunk set whether
 * and where to split it (value 0: the largest delivery), and its latency
 * (value 0: the minimum). Questions with one possible answer are not asked,
 * and fault rates of zero ask nothing, so a fault-free run with fixed latency
 * and whole writes makes no network choices at all.
 *
 * Memory: an idle pipe holds no heap buffer (it is freed when it empties):
 * up to NET_INLINE_BYTES waiting bytes live in an inline array of the pipe,
 * and its one queued record in an inline slot; a heap buffer is allocated
 * only while more bytes wait, a ring only while several writes wait. A
 * delivery hands data_received either the pipe's whole heap buffer (which
 * then becomes the network's scratch buffer) or a copy in the scratch buffer
 * (always for inline bytes), so a protocol writing from data_received never
 * moves the bytes it is reading.
 *
 * Protocol code of a side only ever runs in an event of that side's host:
 * deliveries are scheduled on the receiving host, and what a side learns
 * about its own connection (its FIN was delivered, it was reset, its producer
 * may resume) arrives through a per-side notification event on its host.
 *
 * Lifetimes: a side is "lost" once its protocol got connection_lost (and
 * destroy), or at once when it never had a protocol. A connection is freed
 * when both sides are lost, no event of it is pending and no callback of it
 * is running (busy). Connectors and listeners are the user's handles: a host
 * crash deactivates a listener but frees nothing the user still holds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "reactor/reactor_internal.h"
#include "sim/sim_internal.h"

#define NET_EPHEMERAL_FIRST 49152u
/* Hosts per network: the core tags events with a 16-bit host id. */
#define NET_HOSTS_MAX 65536u
#define NET_DEFAULT_CONNECT_TIMEOUT_NS (30 * WEFT_NS_PER_S)
/* How many queued writes one delivery may join at most (coalescing). */
#define NET_COALESCE_MAX 64u
/* Writes queued per pipe before new ones join the last (bounds the record
 * ring whatever the write pattern). */
#define NET_RECS_MAX 4096u
/* Bytes a pipe holds inline, in the connection: small writes then need no
 * allocation, and their bytes share the cache lines a delivery loads anyway. */
#define NET_INLINE_BYTES 32u

/* ----------------------------------------------------------- Types */

typedef struct net_host {
    char name[WEFT_HOST_MAX];
    bool up;
    uint16_t next_port;
} net_host;

typedef struct net_pair {
    uint32_t a, b; /* partitions: a < b; stalls: directed a -> b */
} net_pair;

enum { REC_DATA, REC_OPEN, REC_FIN, REC_RST };

typedef struct net_rec {
    weft_time_ns sent_ns;
    uint32_t len; /* data bytes left in this write */
    uint32_t kind;
} net_rec;

typedef struct net_pipe {
    uint8_t *buf; /* bytes [head, head + len); NULL while empty */
    uint32_t head, len, cap; /* len <= WEFT_TRANSPORT_BUFFER_MAX */
    uint32_t rhead, rlen, rcap;
    net_rec *recs; /* ring: [rhead, rhead + rlen) modulo rcap (a power of 2),
                    * &one while at most one record is queued */
    weft_call *ev; /* the scheduled delivery of the head */
    weft_time_ns last_due_ns;
    uint32_t ev_bytes; /* data bytes that delivery carries */
    bool held;         /* blocked by a partition or stall: wait for heal/release */
    net_rec one;
    uint8_t inl[NET_INLINE_BYTES]; /* buf while what waits fits */
} net_pipe;

enum { NOTIFY_FIN_ACKED = 1u, NOTIFY_LOST = 2u, NOTIFY_RESUME = 4u };

typedef struct net_conn net_conn;

/* Field order: what every delivery touches comes first, so that a delivery
 * reads few cache lines when many connections are active. */
typedef struct net_side {
    weft_transport transport; /* first: a weft_transport * is a net_side * */
    net_conn *conn;
    weft_protocol *proto;
    uint32_t host;
    uint8_t idx; /* 0 client, 1 server */
    bool lost;
    bool closing;      /* lose_connection: full close, stop reading */
    bool reading_paused;
    bool write_closed; /* no more writes: FIN or RST queued */
    bool producer_paused;
    bool write_shut;   /* our FIN was delivered */
    bool read_eof;     /* the peer's FIN arrived */
    bool made;         /* connection_made ran */
    net_pipe out; /* what this side wrote, towards the peer */
    weft_producer *producer; /* registered push producer (ours), or NULL */
    weft_call *notify_ev;
    unsigned notify;
    const char *lost_type; /* pending NOTIFY_LOST reason (static strings) */
    const char *lost_msg;
} net_side;

typedef struct net_connector net_connector;

struct net_conn {
    weft_simnet *n;
    uint64_t id;
    uint32_t busy;
    net_connector *connector;
    net_conn *prev, *next;
    net_side side[2];
    weft_address addr[2]; /* the client's and the server's end */
};

typedef struct net_listener {
    weft_listener base;
    weft_simnet *n;
    uint32_t host;
    weft_address addr;
    bool active;
    struct net_listener *prev, *next;
} net_listener;

enum { CN_IDLE, CN_CONNECTING, CN_CONNECTED };

struct net_connector {
    weft_connector base;
    weft_simnet *n;
    uint32_t host; /* where the connect was made */
    int state;
    bool factory_started;
    bool free_pending;
    unsigned in_hook;
    weft_call *ev;         /* SYN in flight, or the failure notification */
    weft_call *timeout_ev;
    net_conn *conn;        /* accepted by the server or connected */
    uint32_t target;       /* host the SYN goes to */
    const char *fail_type; /* pending failure (static strings) */
    const char *fail_msg;
    net_connector *prev, *next;
};

struct weft_simnet {
    weft_sim *sim;
    weft_net_config cfg;
    net_host *hosts;
    uint32_t hosts_len, hosts_cap;
    net_pair *parts;
    size_t parts_len, parts_cap;
    net_pair *stalls;
    size_t stalls_len, stalls_cap;
    net_conn *conns_head, *conns_tail;
    size_t conns_live; /* connections with a side not lost */
    net_listener *lis_head, *lis_tail;
    size_t lis_active;
    net_connector *cn_head, *cn_tail;
    uint64_t next_conn_id;
    uint8_t *scratch; /* what the running delivery hands to data_received */
    size_t scratch_cap;
    bool freeing;
};

static const weft_transport_ops net_transport_ops;
static const weft_listener_ops net_listener_ops;
static const weft_connector_ops net_connector_ops;

/* List helpers: append in creation order, unlink. */
#define NET_LIST_APPEND(headp, tailp, x)                                                 \
    do {                                                                               \
        (x)->prev = *(tailp);                                                          \
        (x)->next = NULL;                                                              \
        if (*(tailp))                                                                  \
            (*(tailp))->next = (x);                                                    \
        else                                                                           \
            *(headp) = (x);                                                            \
        *(tailp) = (x);                                                                \
    } while (0)
#define NET_LIST_UNLINK(headp, tailp, x)                                                 \
    do {                                                                               \
        if ((x)->prev)                                                                 \
            (x)->prev->next = (x)->next;                                               \
        else                                                                           \
            *(headp) = (x)->next;                                                      \
        if ((x)->next)                                                                 \
            (x)->next->prev = (x)->prev;                                               \
        else                                                                           \
            *(tailp) = (x)->prev;                                                      \
        (x)->prev = (x)->next = NULL;                                                  \
    } while (0)

/* ------------------------------------------------------ Small helpers */

static weft_time_ns net_now(const weft_simnet *n)
{
    return weft__sim_now(n->sim);
}

/* t + d_ns for d_ns >= 0, saturating: huge configured delays mean "never",
 * not an overflow. */
static weft_time_ns later(weft_time_ns t, int64_t d_ns)
{
    return t > INT64_MAX - d_ns ? INT64_MAX : t + d_ns;
}

static const char *host_name(const weft_simnet *n, uint32_t h)
{
    return n->hosts[h].name;
}

static net_side *peer_of(net_side *s)
{
    return &s->conn->side[1 - s->idx];
}

static const weft_address *self_addr(const net_side *s)
{
    return &s->conn->addr[s->idx];
}

static const weft_address *peer_addr(const net_side *s)
{
    return &s->conn->addr[1 - s->idx];
}

static const char *dir_name(const net_side *s)
{
    return s->idx == 0 ? "c>s" : "s>c";
}

static void set_address(weft_address *a, const char *host, uint16_t port)
{
    size_t len = strlen(host);
    if (len >= WEFT_HOST_MAX)
        len = WEFT_HOST_MAX - 1;
    memcpy(a->host, host, len);
    a->host[len] = '\0';
    a->port = port;
}

static uint16_t ephemeral_port(weft_simnet *n, uint32_t h)
{
    net_host *host = &n->hosts[h];
    uint16_t port = host->next_port;
    host->next_port = port == 65535 ? NET_EPHEMERAL_FIRST : (uint16_t)(port + 1);
    return port;
}

static bool pair_find(const net_pair *v, size_t len, uint32_t a, uint32_t b, size_t *at)
{
    for (size_t i = 0; i < len; i++) {
        if (v[i].a == a && v[i].b == b) {
            if (at)
                *at = i;
            return true;
        }
    }
    return false;
}

static int pair_add(net_pair **v, size_t *len, size_t *cap, uint32_t a, uint32_t b)
{
    if (*len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        net_pair *nv = weft_realloc(*v, ncap * sizeof *nv);
        if (!nv)
            return WEFT_ENOMEM;
        *v = nv;
        *cap = ncap;
    }
    (*v)[*len].a = a;
    (*v)[*len].b = b;
    (*len)++;
    return WEFT_OK;
}

static bool partitioned(const weft_simnet *n, uint32_t a, uint32_t b)
{
    if (n->parts_len == 0 || a == b)
        return false;
    return pair_find(n->parts, n->parts_len, a < b ? a : b, a < b ? b : a, NULL);
}

/* Is traffic from host a to host b held right now? */
static bool blocked(const weft_simnet *n, uint32_t a, uint32_t b)
{
    if (partitioned(n, a, b))
        return true;
    return n->stalls_len && pair_find(n->stalls, n->stalls_len, a, b, NULL);
}

/* A latency in [latency_min_ns, latency_max_ns]; 0 is the minimum. */
static int64_t pick_latency(weft_simnet *n)
{
    int64_t lo = n->cfg.latency_min_ns, range = n->cfg.latency_max_ns - lo;
    if (range <= 0)
        return lo;
    if (range < (int64_t)UINT32_MAX)
        return lo + (int64_t)weft__sim_choose(n->sim, (uint32_t)range + 1, "net.latency");
    /* Wider than a choice can say: pick one of 2^32-1 evenly spaced steps. */
    uint32_t v = weft__sim_choose(n->sim, UINT32_MAX, "net.latency");
    uint64_t step = (uint64_t)range / (UINT32_MAX - 1u) + 1u;
    uint64_t off = (uint64_t)v * step; /* < 2^32 * 2^31: no wrap */
    return lo + (off > (uint64_t)range ? range : (int64_t)off);
}

/* How many of span queued bytes the next delivery carries (max_chunk set).
 * When the whole span fits, first a yes/no question (split it?), then where;
 * when it does not fit, the size up to max_chunk. Value 0 is always the
 * largest delivery, and a question with one answer is not asked. */
static size_t split_size(weft_simnet *n, size_t span)
{
    size_t max = n->cfg.max_chunk;
    if (max > UINT32_MAX)
        max = UINT32_MAX;
    if (span <= 1)
        return span;
    if (span <= max) {
        if (weft__sim_choose(n->sim, 2, "net.split") == 0)
            return span;
        return 1 + weft__sim_choose(n->sim, (uint32_t)(span - 1), "net.chunk");
    }
    return max - weft__sim_choose(n->sim, (uint32_t)max, "net.chunk");
}

/* The delivery note: hashed from its integers; formatted only when text
 * is wanted. */
#define DELIVER_KIND "net.deliver"
#define DELIVER_FMT "conn=%llu dir=%s bytes=%zu"
static void trace_delivery(weft_simnet *n, const net_side *s, size_t bytes)
{
    if (weft_sim_tracing(n->sim)) {
        weft__sim_tracef(n->sim, DELIVER_KIND, DELIVER_FMT, (unsigned long long)s->conn->id,
                         dir_name(s), bytes);
        return;
    }
    /* The same record from its words (weft__sim_note_words). */
    uint64_t words[3] = {s->conn->id, weft__sim_static_hash(n->sim, dir_name(s)),
                         (uint64_t)bytes};
    weft__sim_note_words(n->sim, DELIVER_KIND, DELIVER_FMT, words, 3);
}

/* A rate draw: only asked when the rate is not zero. The fault strikes on
 * the top ppm answers of [0, 1000000), so answer 0, the default a replay or
 * an exhausted byte source gives, never strikes unless the rate is 1000000
 * (always). */
static bool fault_strikes(weft_simnet *n, uint32_t ppm, const char *label)
{
    return ppm && weft__sim_choose(n->sim, 1000000u, label) >= 1000000u - ppm;
}

/* ------------------------------------------------------------- Pipes */

static net_rec *rec_head(net_pipe *p)
{
    return &p->recs[p->rhead];
}

static net_rec *rec_at(net_pipe *p, uint32_t i)
{
    return &p->recs[(p->rhead + i) & (p->rcap - 1)];
}

static int rec_push(net_pipe *p, uint32_t kind, uint32_t len, weft_time_ns sent_ns)
{
    if (p->rcap == 0) {
        p->recs = &p->one;
        p->rcap = 1;
        p->rhead = 0;
    }
    if (p->rlen == p->rcap) {
        uint32_t ncap = p->rcap * 2 < 4 ? 4 : p->rcap * 2;
        net_rec *nr = weft_malloc(ncap * sizeof *nr);
        if (!nr)
            return WEFT_ENOMEM;
        for (uint32_t i = 0; i < p->rlen; i++)
            nr[i] = *rec_at(p, i);
        if (p->recs != &p->one)
            weft_free(p->recs);
        p->recs = nr;
        p->rcap = ncap;
        p->rhead = 0;
    }
    net_rec *r = &p->recs[(p->rhead + p->rlen) & (p->rcap - 1)];
    r->sent_ns = sent_ns;
    r->len = len;
    r->kind = kind;
    p->rlen++;
    return WEFT_OK;
}

static void rec_pop(net_pipe *p)
{
    p->rhead = (p->rhead + 1) & (p->rcap - 1);
    p->rlen--;
    if (p->rlen == 0 && p->recs != &p->one) {
        /* Back to the inline slot: an idle pipe holds no ring. */
        weft_free(p->recs);
        p->recs = &p->one;
        p->rcap = 1;
        p->rhead = 0;
    }
}

/* len is at most WEFT_TRANSPORT_BUFFER_MAX - p->len (the caller checks). */
static int buf_append(net_pipe *p, const void *data, size_t len)
{
    if (!p->buf && len <= NET_INLINE_BYTES) {
        p->buf = p->inl;
        p->cap = NET_INLINE_BYTES;
        p->head = 0;
    }
    if ((size_t)p->head + p->len + len > p->cap) {
        if (p->len + len <= p->cap && p->head >= p->len) {
            /* Slide the live bytes down instead of growing. */
            memmove(p->buf, p->buf + p->head, p->len);
            p->head = 0;
        } else {
            uint32_t ncap = p->cap > 64 ? p->cap : 64;
            while (ncap < p->len + len)
                ncap *= 2;
            uint8_t *nb = weft_malloc(ncap);
            if (!nb)
                return WEFT_ENOMEM;
            if (p->len)
                memcpy(nb, p->buf + p->head, p->len);
            if (p->buf != p->inl)
                weft_free(p->buf);
            p->buf = nb;
            p->cap = ncap;
            p->head = 0;
        }
    }
    memcpy(p->buf + p->head + p->len, data, len);
    p->len += (uint32_t)len;
    return WEFT_OK;
}

static void buf_consumed(net_pipe *p, uint32_t len)
{
    p->head += len;
    p->len -= len;
    if (p->len == 0) {
        /* An idle pipe holds no heap buffer. */
        if (p->buf != p->inl)
            weft_free(p->buf);
        p->buf = NULL;
        p->cap = 0;
        p->head = 0;
    }
}

/* Drop everything queued (abort, reset) and the pending delivery. */
static void pipe_drop(weft_simnet *n, net_pipe *p)
{
    if (p->ev) {
        weft__sim_cancel(n->sim, p->ev);
        p->ev = NULL;
    }
    p->len = 0;
    p->head = 0;
    p->rlen = 0;
    p->rhead = 0;
    p->held = false;
    if (p->recs && p->recs != &p->one) {
        weft_free(p->recs);
        p->recs = &p->one;
        p->rcap = 1;
    }
}

static void pipe_release(net_pipe *p)
{
    if (p->buf != p->inl)
        weft_free(p->buf);
    if (p->recs != &p->one)
        weft_free(p->recs);
    memset(p, 0, sizeof *p);
}

static void pipe_fire(void *ctx);

/* A delivery event's context: the sending side with its index in the low
 * bit (a side is pointer-aligned), so the far cache hint knows where the
 * connection starts without reading it. */
static void *deliver_ctx(net_side *s)
{
    return (void *)((uintptr_t)s | s->idx);
}

static net_side *deliver_side(const void *ctx)
{
    return (net_side *)((uintptr_t)ctx & ~(uintptr_t)1);
}
_Static_assert(_Alignof(net_side) >= 2, "the side index needs a free low bit");

/* Schedule the delivery of the head of s's outgoing pipe, if none is. */
static void pipe_schedule(net_side *s)
{
    net_pipe *p = &s->out;
    weft_simnet *n = s->conn->n;
    if (p->ev || p->rlen == 0 || n->freeing)
        return;
    if (p->held && blocked(n, s->host, peer_of(s)->host))
        return; /* heal or release reschedules */
    p->held = false;
    net_rec *r = rec_head(p);
    weft_time_ns base_ns = r->sent_ns;
    size_t bytes = 0;
    if (r->kind == REC_DATA) {
        size_t span = r->len;
        uint32_t joinable = 1;
        if (n->cfg.coalesce) {
            while (joinable < p->rlen && joinable < NET_COALESCE_MAX &&
                   rec_at(p, joinable)->kind == REC_DATA)
                joinable++;
        }
        uint32_t joined = 0;
        if (joinable > 1)
            joined = weft__sim_choose(n->sim, joinable, "net.coalesce");
        for (uint32_t i = 1; i <= joined; i++)
            span += rec_at(p, i)->len;
        bytes = n->cfg.max_chunk ? split_size(n, span) : span;
        /* Bytes cannot arrive before the write that carries the last of them. */
        size_t covered = r->len;
        for (uint32_t i = 1; covered < bytes; i++) {
            net_rec *ri = rec_at(p, i);
            covered += ri->len;
            base_ns = ri->sent_ns;
        }
    }
    weft_time_ns due = later(base_ns, pick_latency(n));
    if (fault_strikes(n, n->cfg.stall_ppm, "fault.stall")) {
        int64_t hold_ns = 0;
        if (n->cfg.stall_max_ns > 0) {
            uint32_t bound = n->cfg.stall_max_ns < (int64_t)UINT32_MAX
                                 ? (uint32_t)n->cfg.stall_max_ns
                                 : UINT32_MAX;
            hold_ns = 1 + (int64_t)weft__sim_choose(n->sim, bound, "net.stall");
        }
        due = later(due, hold_ns);
        weft__sim_tracef(n->sim, "net.fault", "stall conn=%llu dir=%s ns=%lld",
                       (unsigned long long)s->conn->id, dir_name(s), (long long)hold_ns);
    }
    if (due < p->last_due_ns)
        due = p->last_due_ns;
    weft_time_ns now = net_now(n);
    if (due < now)
        due = now;
    p->last_due_ns = due;
    p->ev_bytes = (uint32_t)bytes;
    p->ev = weft__sim_schedule(n->sim, due, peer_of(s)->host, "net.deliver", pipe_fire,
                               deliver_ctx(s));
    /* Out of memory: the pipe waits; the next write, heal or resume retries. */
}

/* ---------------------------------------------------- Notifications */

static void on_notify(void *ctx);

static void notify(net_side *s, unsigned bits)
{
    weft_simnet *n = s->conn->n;
    s->notify |= bits;
    if (!s->notify_ev && !n->freeing)
        s->notify_ev = weft__sim_schedule(n->sim, net_now(n), s->host, "net.notify", on_notify, s);
}

static void notify_lost(net_side *s, const char *type, const char *msg)
{
    if (s->lost)
        return;
    if (!s->lost_type) {
        s->lost_type = type;
        s->lost_msg = msg;
    }
    notify(s, NOTIFY_LOST);
}

/* ------------------------------------------------------- Connections */

static void conn_release(net_conn *c)
{
    for (int i = 0; i < 2; i++) {
        pipe_release(&c->side[i].out);
        weft_free(c->side[i].producer);
    }
    weft_free(c);
}

static void conn_maybe_free(net_conn *c)
{
    weft_simnet *n = c->n;
    if (n->freeing || c->busy || !c->side[0].lost || !c->side[1].lost)
        return;
    for (int i = 0; i < 2; i++)
        if (c->side[i].out.ev || c->side[i].notify_ev)
            return;
    if (c->connector && c->connector->conn == c)
        c->connector->conn = NULL;
    NET_LIST_UNLINK(&n->conns_head, &n->conns_tail, c);
    conn_release(c);
}

static void producer_drop(net_side *s)
{
    weft_free(s->producer);
    s->producer = NULL;
    s->producer_paused = false;
}

static void side_mark_lost(net_side *s)
{
    if (s->lost)
        return;
    s->lost = true;
    s->write_closed = true;
    if (peer_of(s)->lost)
        s->conn->n->conns_live--;
}

static void connector_fail(net_connector *cn, const char *type, const char *msg);
static void connector_lost(net_connector *cn, const char *type, const char *msg);

/* connection_lost, destroy, then the client factory's hooks. Runs on s's host. */
static void side_lose(net_side *s, const char *type, const char *msg)
{
    if (s->lost)
        return;
    net_conn *c = s->conn;
    weft_simnet *n = c->n;
    bool was_made = s->made;
    side_mark_lost(s);
    s->notify &= ~(unsigned)NOTIFY_LOST;
    c->busy++;
    if (!n->freeing)
        weft__sim_tracef(n->sim, "net.lost", "conn=%llu side=%s reason=%s",
                   (unsigned long long)c->id, s->idx == 0 ? "client" : "server", type);
    if (s->producer) {
        weft_producer pr = *s->producer;
        producer_drop(s);
        if (pr.stop)
            pr.stop(pr.ctx);
    }
    weft_failure *f = NULL;
    if (s->proto) {
        weft_protocol *p = s->proto;
        f = weft_failure_new(type, "%s", msg);
        if (p->ops->connection_lost)
            p->ops->connection_lost(p, f);
        p->transport = NULL;
        s->proto = NULL;
        if (p->ops->destroy)
            p->ops->destroy(p);
    }
    if (s->idx == 0 && c->connector && !n->freeing) {
        net_connector *cn = c->connector;
        c->connector = NULL;
        if (cn->conn == c)
            cn->conn = NULL;
        if (was_made)
            connector_lost(cn, type, msg);
        else if (cn->state == CN_CONNECTING)
            connector_fail(cn, type, msg);
    }
    weft_failure_free(f);
    c->busy--;
    conn_maybe_free(c);
}

/* Both sides lose the connection now, with ConnectionLost. */
static void conn_reset(net_conn *c, const char *msg)
{
    weft__sim_tracef(c->n->sim, "net.fault", "reset conn=%llu", (unsigned long long)c->id);
    for (int i = 0; i < 2; i++) {
        net_side *s = &c->side[i];
        pipe_drop(c->n, &s->out);
        s->write_closed = true;
        /* A client side still waiting for its answer has no protocol yet:
         * its connector fails instead, on its host. */
        notify_lost(s, WEFT_REASON_LOST, msg);
    }
}

static void fin_acked(net_side *s)
{
    s->write_shut = true;
    if (s->lost)
        return;
    if (s->closing) {
        side_lose(s, WEFT_REASON_DONE, "connection closed");
        return;
    }
    if (s->proto && s->proto->ops->write_connection_lost)
        s->proto->ops->write_connection_lost(s->proto);
    if (!s->lost && s->read_eof)
        side_lose(s, WEFT_REASON_DONE, "connection closed");
}

static void on_notify(void *ctx)
{
    net_side *s = ctx;
    net_conn *c = s->conn;
    s->notify_ev = NULL;
    unsigned bits = s->notify;
    s->notify = 0;
    c->busy++;
    if (bits & NOTIFY_FIN_ACKED)
        fin_acked(s);
    if ((bits & NOTIFY_RESUME) && !s->lost && s->producer && s->producer_paused &&
        s->out.len < WEFT_TRANSPORT_LOW_WATER) {
        weft_producer pr = *s->producer;
        s->producer_paused = false;
        if (pr.resume)
            pr.resume(pr.ctx);
    }
    if ((bits & NOTIFY_LOST) && !s->lost)
        side_lose(s, s->lost_type ? s->lost_type : WEFT_REASON_LOST,
                  s->lost_msg ? s->lost_msg : "connection lost");
    c->busy--;
    conn_maybe_free(c);
}

static int side_push(net_side *s, uint32_t kind)
{
    int err = rec_push(&s->out, kind, 0, net_now(s->conn->n));
    if (err == WEFT_OK)
        pipe_schedule(s);
    return err;
}

/* The client side's connection is established (the OPEN record arrived). */
static void client_open(net_conn *c)
{
    weft_simnet *n = c->n;
    net_side *s = &c->side[0];
    net_connector *cn = c->connector;
    if (s->lost)
        return;
    if (!cn || cn->conn != c || cn->state != CN_CONNECTING) {
        /* The connect gave up (timeout, stop, free) before the answer came:
         * the client's stack answers with a reset. */
        c->connector = NULL;
        side_mark_lost(s);
        side_push(s, REC_RST);
        weft__sim_tracef(n->sim, "net.abandoned", "conn=%llu", (unsigned long long)c->id);
        return;
    }
    weft_factory *f = cn->base.factory;
    weft_protocol *p = f->build_protocol(f, peer_addr(s));
    if (!p) {
        /* Refused by the client factory: close our end cleanly. */
        c->connector = NULL;
        cn->conn = NULL;
        s->write_closed = true;
        side_push(s, REC_FIN);
        side_mark_lost(s);
        connector_fail(cn, WEFT_REASON_NO_PROTOCOL, "client factory built no protocol");
        return;
    }
    p->transport = &s->transport;
    p->factory = f;
    p->reactor = weft_sim_reactor(n->sim);
    s->proto = p;
    s->made = true;
    cn->state = CN_CONNECTED;
    if (cn->timeout_ev) {
        weft__sim_cancel(n->sim, cn->timeout_ev);
        cn->timeout_ev = NULL;
    }
    weft__sim_tracef(n->sim, "net.connected", "conn=%llu", (unsigned long long)c->id);
    if (p->ops->connection_made)
        p->ops->connection_made(p);
}

static void fin_arrived(net_side *r)
{
    r->read_eof = true;
    if (!peer_of(r)->lost)
        notify(peer_of(r), NOTIFY_FIN_ACKED);
    if (r->lost || r->closing)
        return;
    if (r->proto && r->proto->ops->read_connection_lost) {
        r->proto->ops->read_connection_lost(r->proto);
        if (!r->lost && r->write_shut)
            side_lose(r, WEFT_REASON_DONE, "connection closed");
        return;
    }
    /* Not half-close aware: the whole connection ends here, and our end
     * closes too once what we wrote has drained. */
    if (!r->write_closed) {
        r->write_closed = true;
        side_push(r, REC_FIN);
    }
    side_lose(r, WEFT_REASON_DONE, "connection closed by peer");
}

/* Cache hint for a delivery (weft__sim_label_prefetch). Far: the lines of
 * the connection up to its addresses (which a delivery does not read), found
 * from the context's side index without reading memory (integer arithmetic).
 * Near: the receiving protocol, through the peer side loaded by the far hint,
 * and the bytes when they are in a heap buffer. */
static void pipe_prefetch(const void *ctx, bool near)
{
#if defined(__GNUC__)
    const net_side *s = deliver_side(ctx);
    uintptr_t idx = (uintptr_t)ctx & 1u;
    if (near) {
        const net_side *r = idx ? s - 1 : s + 1;
        __builtin_prefetch(r->proto);
        if (s->out.buf && s->out.buf != s->out.inl)
            __builtin_prefetch(s->out.buf + s->out.head); /* the bytes */
        return;
    }
    uintptr_t c = (uintptr_t)s - offsetof(net_conn, side) - idx * sizeof(net_side);
    uintptr_t end = c + offsetof(net_conn, addr);
    for (uintptr_t a = c & ~(uintptr_t)63; a < end; a += 64)
        __builtin_prefetch((const void *)a);
#else
    (void)ctx, (void)near;
#endif
}

/* The delivery event of s's outgoing pipe: runs on the peer's host. */
static void pipe_fire(void *ctx)
{
    net_side *s = deliver_side(ctx);
    net_conn *c = s->conn;
    weft_simnet *n = c->n;
    net_side *r = peer_of(s);
    net_pipe *p = &s->out;
    p->ev = NULL;
    c->busy++;
    if (p->rlen == 0)
        goto out;
    net_rec *rec = rec_head(p);
    if (blocked(n, s->host, r->host)) {
        p->held = true;
        weft__sim_tracef(n->sim, "net.hold", "conn=%llu dir=%s", (unsigned long long)c->id,
                       dir_name(s));
        goto out;
    }
    if (r->reading_paused && !r->lost && !r->closing &&
        (rec->kind == REC_DATA || rec->kind == REC_FIN))
        goto out; /* resume_reading reschedules */
    if (rec->kind == REC_DATA && fault_strikes(n, n->cfg.reset_ppm, "fault.reset")) {
        conn_reset(c, "connection reset (fault)");
        goto out;
    }
    switch (rec->kind) {
    case REC_DATA: {
        size_t bytes = p->ev_bytes;
        const uint8_t *data;
        if (bytes == p->len && p->buf != p->inl) {
            /* Hand the whole buffer over as the new scratch: an idle pipe
             * holds no buffer. */
            data = p->buf + p->head;
            weft_free(n->scratch);
            n->scratch = p->buf;
            n->scratch_cap = p->cap;
            p->buf = NULL;
            p->cap = 0;
            p->head = 0;
            p->len = 0;
        } else {
            if (n->scratch_cap < bytes) {
                uint8_t *nb = weft_realloc(n->scratch, bytes);
                if (!nb) {
                    /* Try again later; nothing was consumed. */
                    pipe_schedule(s);
                    goto out;
                }
                n->scratch = nb;
                n->scratch_cap = bytes;
            }
            memcpy(n->scratch, p->buf + p->head, bytes);
            data = n->scratch;
            buf_consumed(p, (uint32_t)bytes);
        }
        for (size_t left = bytes; left;) {
            net_rec *h = rec_head(p);
            size_t take = h->len < left ? h->len : left;
            h->len -= (uint32_t)take;
            left -= take;
            if (h->len == 0)
                rec_pop(p);
        }
        trace_delivery(n, s, bytes);
        if (s->producer && s->producer_paused && p->len < WEFT_TRANSPORT_LOW_WATER &&
            !s->lost)
            notify(s, NOTIFY_RESUME);
        pipe_schedule(s);
        if (!r->lost && !r->closing && r->proto && r->proto->ops->data_received)
            r->proto->ops->data_received(r->proto, data, bytes);
        break;
    }
    case REC_OPEN:
        rec_pop(p);
        pipe_schedule(s);
        client_open(c);
        break;
    case REC_FIN:
        rec_pop(p);
        weft__sim_tracef(n->sim, "net.fin", "conn=%llu dir=%s", (unsigned long long)c->id,
                       dir_name(s));
        pipe_schedule(s);
        fin_arrived(r);
        break;
    case REC_RST:
        rec_pop(p);
        weft__sim_tracef(n->sim, "net.rst", "conn=%llu dir=%s", (unsigned long long)c->id,
                       dir_name(s));
        if (!r->lost) {
            pipe_drop(n, &r->out);
            r->write_closed = true;
            side_lose(r, WEFT_REASON_LOST, "connection reset by peer");
        }
        break;
    }
out:
    c->busy--;
    conn_maybe_free(c);
}

/* --------------------------------------------------------- Transport */

static net_side *side_of(weft_transport *t)
{
    return (net_side *)t;
}

static int tr_writev(weft_transport *t, const weft_iovec *iov, size_t cnt)
{
    net_side *s = side_of(t);
    if (s->lost || s->write_closed)
        return WEFT_ECLOSED;
    if (cnt && !iov)
        return WEFT_EINVAL;
    size_t total = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (iov[i].len && !iov[i].base)
            return WEFT_EINVAL;
        if (iov[i].len > WEFT_TRANSPORT_BUFFER_MAX)
            return WEFT_ENOBUFS;
        total += iov[i].len;
        if (total > WEFT_TRANSPORT_BUFFER_MAX)
            return WEFT_ENOBUFS;
    }
    if (total == 0)
        return WEFT_OK;
    net_pipe *p = &s->out;
    if (p->len + total > WEFT_TRANSPORT_BUFFER_MAX)
        return WEFT_ENOBUFS;
    weft_time_ns now = net_now(s->conn->n);
    net_rec *tail = p->rlen ? rec_at(p, p->rlen - 1) : NULL;
    bool merge = p->rlen >= NET_RECS_MAX && tail->kind == REC_DATA;
    /* Reserve the record first so a failure leaves the pipe unchanged. */
    if (!merge && rec_push(p, REC_DATA, (uint32_t)total, now))
        return WEFT_ENOMEM;
    uint32_t before = p->len;
    for (size_t i = 0; i < cnt; i++) {
        if (iov[i].len && buf_append(p, iov[i].base, iov[i].len)) {
            p->len = before;
            if (!merge)
                p->rlen--;
            return WEFT_ENOMEM;
        }
    }
    if (merge) {
        /* Too many writes queued: this one joins the last (a later send
         * time for all of it, so none arrives before its latency). */
        tail->len += (uint32_t)total;
        tail->sent_ns = now;
    }
    if (s->producer && !s->producer_paused && p->len > WEFT_TRANSPORT_HIGH_WATER) {
        weft_producer pr = *s->producer;
        s->producer_paused = true;
        if (pr.pause)
            pr.pause(pr.ctx);
    }
    pipe_schedule(s);
    return WEFT_OK;
}

static int tr_write(weft_transport *t, const void *data, size_t len)
{
    weft_iovec v;
    v.base = data;
    v.len = len;
    return tr_writev(t, &v, 1);
}

static int tr_lose_connection(weft_transport *t)
{
    net_side *s = side_of(t);
    if (s->lost || s->closing)
        return WEFT_OK; /* already on its way: a no-op, as in Twisted */
    s->closing = true;
    weft__sim_tracef(s->conn->n->sim, "net.close", "conn=%llu side=%s",
                   (unsigned long long)s->conn->id, s->idx == 0 ? "client" : "server");
    if (!s->write_closed) {
        s->write_closed = true;
        return side_push(s, REC_FIN);
    }
    if (s->write_shut)
        notify_lost(s, WEFT_REASON_DONE, "connection closed");
    return WEFT_OK;
}

static int tr_abort(weft_transport *t)
{
    net_side *s = side_of(t);
    if (s->lost || s->lost_type)
        return WEFT_OK;
    net_conn *c = s->conn;
    weft__sim_tracef(c->n->sim, "net.abort", "conn=%llu side=%s", (unsigned long long)c->id,
                   s->idx == 0 ? "client" : "server");
    s->write_closed = true;
    s->closing = true;
    pipe_drop(c->n, &s->out);
    notify_lost(s, WEFT_REASON_ABORTED, "connection aborted");
    if (!peer_of(s)->lost)
        side_push(s, REC_RST);
    return WEFT_OK;
}

static int tr_lose_write_connection(weft_transport *t)
{
    net_side *s = side_of(t);
    if (s->lost)
        return WEFT_ECLOSED;
    if (s->write_closed)
        return WEFT_OK;
    s->write_closed = true;
    weft__sim_tracef(s->conn->n->sim, "net.shutdown", "conn=%llu side=%s",
                   (unsigned long long)s->conn->id, s->idx == 0 ? "client" : "server");
    return side_push(s, REC_FIN);
}

static int tr_pause_reading(weft_transport *t)
{
    net_side *s = side_of(t);
    if (s->lost)
        return WEFT_ECLOSED;
    s->reading_paused = true;
    return WEFT_OK;
}

static int tr_resume_reading(weft_transport *t)
{
    net_side *s = side_of(t);
    if (s->lost)
        return WEFT_ECLOSED;
    if (!s->reading_paused)
        return WEFT_OK;
    s->reading_paused = false;
    net_side *w = peer_of(s);
    if (!w->out.held)
        pipe_schedule(w);
    return WEFT_OK;
}

static int tr_register_producer(weft_transport *t, const weft_producer *p)
{
    net_side *s = side_of(t);
    if (!p)
        return WEFT_EINVAL;
    if (s->lost || s->closing)
        return WEFT_ECLOSED;
    if (s->producer)
        return WEFT_ESTATE;
    s->producer = weft_malloc(sizeof *s->producer);
    if (!s->producer)
        return WEFT_ENOMEM;
    *s->producer = *p;
    s->producer_paused = false;
    if (s->out.len > WEFT_TRANSPORT_HIGH_WATER) {
        s->producer_paused = true;
        if (p->pause)
            p->pause(p->ctx);
    }
    return WEFT_OK;
}

static int tr_unregister_producer(weft_transport *t)
{
    net_side *s = side_of(t);
    if (!s->producer)
        return WEFT_ESTATE;
    producer_drop(s);
    return WEFT_OK;
}

static const weft_address *tr_peer(weft_transport *t)
{
    return peer_addr(side_of(t));
}

static const weft_address *tr_host(weft_transport *t)
{
    return self_addr(side_of(t));
}

static size_t tr_buffered(weft_transport *t)
{
    return side_of(t)->out.len;
}

/* lose_connection or abort called (closing), or connection_lost under way
 * or done (lost). */
static bool tr_disconnecting(weft_transport *t)
{
    const net_side *s = side_of(t);
    return s->closing || s->lost;
}

static const weft_transport_ops net_transport_ops = {
    .write = tr_write,
    .writev = tr_writev,
    .lose_connection = tr_lose_connection,
    .abort = tr_abort,
    .lose_write_connection = tr_lose_write_connection,
    .pause_reading = tr_pause_reading,
    .resume_reading = tr_resume_reading,
    .register_producer = tr_register_producer,
    .unregister_producer = tr_unregister_producer,
    .peer = tr_peer,
    .host = tr_host,
    .buffered = tr_buffered,
    .disconnecting = tr_disconnecting,
};

/* --------------------------------------------------------- Listeners */

static net_listener *listener_find(weft_simnet *n, uint32_t host, uint16_t port)
{
    for (net_listener *l = n->lis_head; l; l = l->next)
        if (l->active && l->host == host && l->addr.port == port)
            return l;
    return NULL;
}

static void listener_deactivate(net_listener *l)
{
    if (!l->active)
        return;
    l->active = false;
    l->n->lis_active--;
    weft__sim_tracef(l->n->sim, "net.unlisten", "host=%s port=%u", l->addr.host,
                   (unsigned)l->addr.port);
    weft__factory_do_stop(l->base.factory);
}

static void listener_close(weft_listener *base)
{
    net_listener *l = (net_listener *)base;
    weft_simnet *n = l->n;
    listener_deactivate(l);
    NET_LIST_UNLINK(&n->lis_head, &n->lis_tail, l);
    weft_free(l);
}

static const weft_address *listener_address(const weft_listener *base)
{
    return &((const net_listener *)base)->addr;
}

static const weft_listener_ops net_listener_ops = {
    .close = listener_close,
    .address = listener_address,
};

/* "", "*", "0.0.0.0" and "::" mean the current host; any other interface
 * names the host to listen on (created on demand). */
static bool any_interface(const char *h)
{
    return h[0] == '\0' || strcmp(h, "*") == 0 || strcmp(h, "0.0.0.0") == 0 ||
           strcmp(h, "::") == 0;
}

int weft__simnet_listen(weft_simnet *n, const weft_endpoint *ep, weft_factory *f,
                        weft_listener **out)
{
    if (out)
        *out = NULL;
    if (!n || !ep || !f || !f->build_protocol)
        return WEFT_EINVAL;
    uint32_t host = weft__sim_current_host(n->sim);
    if (!any_interface(ep->host)) {
        host = weft__simnet_host(n, ep->host, true);
        if (host == UINT32_MAX)
            return n->hosts_len >= NET_HOSTS_MAX ? WEFT_ELIMIT : WEFT_ENOMEM;
    }
    if (host >= n->hosts_len)
        return WEFT_EINVAL;
    if (!n->hosts[host].up)
        return WEFT_EHOSTUNREACH;
    uint16_t port = ep->port;
    if (port == 0) {
        /* Any free port: the host's ephemeral counter, skipping used ones. */
        for (unsigned tries = 0; tries <= 65535u - NET_EPHEMERAL_FIRST; tries++) {
            uint16_t cand = ephemeral_port(n, host);
            if (!listener_find(n, host, cand)) {
                port = cand;
                break;
            }
        }
        if (port == 0)
            return WEFT_EADDRINUSE;
    } else if (listener_find(n, host, port)) {
        return WEFT_EADDRINUSE;
    }
    net_listener *l = weft_calloc(1, sizeof *l);
    if (!l)
        return WEFT_ENOMEM;
    l->base.ops = &net_listener_ops;
    l->base.reactor = weft_sim_reactor(n->sim);
    l->base.factory = f;
    l->n = n;
    l->host = host;
    set_address(&l->addr, host_name(n, host), port);
    l->active = true;
    n->lis_active++;
    NET_LIST_APPEND(&n->lis_head, &n->lis_tail, l);
    weft__sim_tracef(n->sim, "net.listen", "host=%s port=%u", l->addr.host, (unsigned)port);
    weft__factory_do_start(f);
    if (out)
        *out = &l->base;
    return WEFT_OK;
}

/* -------------------------------------------------------- Connectors */

static void connector_cancel_events(net_connector *cn)
{
    weft_simnet *n = cn->n;
    if (cn->ev) {
        weft__sim_cancel(n->sim, cn->ev);
        cn->ev = NULL;
    }
    if (cn->timeout_ev) {
        weft__sim_cancel(n->sim, cn->timeout_ev);
        cn->timeout_ev = NULL;
    }
}

static void connector_destroy(net_connector *cn)
{
    weft_simnet *n = cn->n;
    NET_LIST_UNLINK(&n->cn_head, &n->cn_tail, cn);
    weft_free(cn);
}

/* After a hook: the factory stops unless the hook connected again. */
static void connector_after_hook(net_connector *cn)
{
    if (cn->in_hook)
        return;
    if (cn->free_pending) {
        connector_destroy(cn);
        return;
    }
    if (cn->state == CN_IDLE && cn->factory_started) {
        cn->factory_started = false;
        weft__factory_do_stop(cn->base.factory);
    }
}

static void connector_fail(net_connector *cn, const char *type, const char *msg)
{
    weft_simnet *n = cn->n;
    if (cn->state != CN_CONNECTING)
        return;
    connector_cancel_events(cn);
    if (cn->conn) {
        /* Accepted by the server, answer still in flight: the answer will
         * find nobody waiting and reset the connection. */
        cn->conn->connector = NULL;
        cn->conn = NULL;
    }
    cn->state = CN_IDLE;
    weft__sim_tracef(n->sim, "net.connect_failed", "to=%s:%u reason=%s", cn->base.endpoint.host,
                   (unsigned)cn->base.endpoint.port, type);
    weft_factory *f = cn->base.factory;
    if (f->connection_failed && !cn->free_pending) {
        weft_failure *fl = weft_failure_new(type, "%s", msg);
        cn->in_hook++;
        f->connection_failed(f, &cn->base, fl);
        cn->in_hook--;
        weft_failure_free(fl);
    }
    connector_after_hook(cn);
}

static void connector_lost(net_connector *cn, const char *type, const char *msg)
{
    cn->state = CN_IDLE;
    cn->conn = NULL;
    weft_factory *f = cn->base.factory;
    if (f->connection_lost && !cn->free_pending) {
        weft_failure *fl = weft_failure_new(type, "%s", msg);
        cn->in_hook++;
        f->connection_lost(f, &cn->base, fl);
        cn->in_hook--;
        weft_failure_free(fl);
    }
    connector_after_hook(cn);
}

static void on_connect_fail(void *ctx)
{
    net_connector *cn = ctx;
    cn->ev = NULL;
    connector_fail(cn, cn->fail_type, cn->fail_msg);
}

static void on_connect_timeout(void *ctx)
{
    net_connector *cn = ctx;
    cn->timeout_ev = NULL;
    connector_fail(cn, WEFT_REASON_TIMED_OUT, "connect timed out");
}

/* Fail the connect at `when`, on the connecting host. */
static int connector_fail_at(net_connector *cn, weft_time_ns when, const char *type,
                             const char *msg)
{
    if (cn->ev)
        weft__sim_cancel(cn->n->sim, cn->ev);
    cn->fail_type = type;
    cn->fail_msg = msg;
    cn->ev = weft__sim_schedule(cn->n->sim, when, cn->host, "net.connect_failed",
                                on_connect_fail, cn);
    return cn->ev ? WEFT_OK : WEFT_ENOMEM;
}

static net_conn *conn_new(weft_simnet *n, uint32_t client_host, uint32_t server_host,
                          uint16_t server_port)
{
    net_conn *c = weft_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = n;
    c->id = ++n->next_conn_id;
    uint16_t client_port = ephemeral_port(n, client_host);
    for (int i = 0; i < 2; i++) {
        net_side *s = &c->side[i];
        s->transport.ops = &net_transport_ops;
        s->conn = c;
        s->idx = (uint8_t)i;
    }
    c->side[0].host = client_host;
    c->side[1].host = server_host;
    set_address(&c->addr[0], host_name(n, client_host), client_port);
    set_address(&c->addr[1], host_name(n, server_host), server_port);
    NET_LIST_APPEND(&n->conns_head, &n->conns_tail, c);
    n->conns_live++;
    return c;
}

/* The SYN arrives at the server host. */
static void on_syn(void *ctx)
{
    net_connector *cn = ctx;
    weft_simnet *n = cn->n;
    cn->ev = NULL;
    uint32_t target = cn->target;
    uint16_t port = cn->base.endpoint.port;
    if (partitioned(n, cn->host, target)) {
        weft__sim_tracef(n->sim, "net.syn_lost", "from=%s to=%s:%u", host_name(n, cn->host),
                       host_name(n, target), (unsigned)port);
        return; /* the connect times out */
    }
    const char *why = NULL;
    net_listener *l = NULL;
    if (!n->hosts[target].up)
        why = "host down";
    else if (fault_strikes(n, n->cfg.refuse_ppm, "fault.refuse"))
        why = "refused (fault)";
    else if (!(l = listener_find(n, target, port)))
        why = "no listener";
    if (why) {
        weft__sim_tracef(n->sim, "net.refused", "from=%s to=%s:%u reason=%s",
                       host_name(n, cn->host), host_name(n, target), (unsigned)port, why);
        connector_fail_at(cn, later(net_now(n), pick_latency(n)), WEFT_REASON_REFUSED, why);
        return;
    }
    net_conn *c = conn_new(n, cn->host, target, port);
    if (!c) {
        connector_fail_at(cn, net_now(n), WEFT_REASON_REFUSED, "out of memory");
        return;
    }
    c->connector = cn;
    cn->conn = c;
    net_side *s = &c->side[1];
    weft__sim_tracef(n->sim, "net.accept", "conn=%llu %s:%u>%s:%u", (unsigned long long)c->id,
                   c->addr[0].host, (unsigned)c->addr[0].port, c->addr[1].host,
                   (unsigned)port);
    c->busy++;
    weft_factory *f = l->base.factory;
    weft_protocol *p = f->build_protocol(f, peer_addr(s));
    if (side_push(s, REC_OPEN)) {
        /* No room for the answer: the connect times out; drop the
         * connection. */
        c->connector = NULL;
        cn->conn = NULL;
        side_mark_lost(&c->side[0]);
        side_mark_lost(s);
        if (p) {
            weft_failure *fl = weft_failure_new(WEFT_REASON_LOST, "out of memory");
            if (p->ops->connection_lost)
                p->ops->connection_lost(p, fl);
            weft_failure_free(fl);
            if (p->ops->destroy)
                p->ops->destroy(p);
        }
    } else if (!p) {
        /* Refused by the server factory: the client sees the connection
         * open and close cleanly. */
        weft__sim_tracef(n->sim, "net.no_protocol", "conn=%llu", (unsigned long long)c->id);
        s->write_closed = true;
        side_push(s, REC_FIN);
        side_mark_lost(s);
    } else {
        p->transport = &s->transport;
        p->factory = f;
        p->reactor = weft_sim_reactor(n->sim);
        s->proto = p;
        s->made = true;
        if (p->ops->connection_made)
            p->ops->connection_made(p);
    }
    c->busy--;
    conn_maybe_free(c);
}

static int connector_start(net_connector *cn)
{
    weft_simnet *n = cn->n;
    if (cn->state != CN_IDLE || cn->free_pending)
        return WEFT_ESTATE;
    weft_time_ns now = net_now(n);
    int64_t timeout_ns = cn->base.endpoint.timeout_ns > 0 ? cn->base.endpoint.timeout_ns
                                                          : n->cfg.connect_timeout_ns;
    cn->timeout_ev = weft__sim_schedule(n->sim, later(now, timeout_ns), cn->host,
                                        "net.connect_timeout", on_connect_timeout, cn);
    if (!cn->timeout_ev)
        return WEFT_ENOMEM;
    const char *to = cn->base.endpoint.host;
    weft__sim_tracef(n->sim, "net.connect", "from=%s to=%s:%u", host_name(n, cn->host), to,
                   (unsigned)cn->base.endpoint.port);
    uint32_t target = weft__simnet_host(n, to, false);
    int err = WEFT_OK;
    if (!n->hosts[cn->host].up) {
        err = connector_fail_at(cn, now, WEFT_REASON_UNREACHABLE, "host down");
    } else if (target == UINT32_MAX) {
        err = connector_fail_at(cn, later(now, pick_latency(n)), WEFT_REASON_UNREACHABLE,
                                "no such host");
    } else {
        cn->target = target;
        if (partitioned(n, cn->host, target)) {
            weft__sim_tracef(n->sim, "net.syn_lost", "from=%s to=%s:%u", host_name(n, cn->host),
                           to, (unsigned)cn->base.endpoint.port);
        } else {
            cn->ev = weft__sim_schedule(n->sim, later(now, pick_latency(n)), target, "net.syn",
                                        on_syn, cn);
            if (!cn->ev)
                err = WEFT_ENOMEM;
        }
    }
    if (err) {
        connector_cancel_events(cn);
        return err;
    }
    cn->state = CN_CONNECTING;
    if (!cn->factory_started) {
        cn->factory_started = true;
        weft__factory_do_start(cn->base.factory);
    }
    return WEFT_OK;
}

static int cn_connect(weft_connector *base)
{
    return connector_start((net_connector *)base);
}

static void cn_stop(weft_connector *base)
{
    net_connector *cn = (net_connector *)base;
    if (cn->state == CN_CONNECTING)
        connector_fail(cn, WEFT_REASON_CONNECT_CANCELLED, "connect cancelled");
}

static void cn_free(weft_connector *base)
{
    net_connector *cn = (net_connector *)base;
    if (cn->free_pending)
        return;
    connector_cancel_events(cn);
    if (cn->conn) {
        if (cn->conn->connector == cn)
            cn->conn->connector = NULL;
        cn->conn = NULL;
    }
    cn->state = CN_IDLE;
    if (cn->factory_started) {
        cn->factory_started = false;
        weft__factory_do_stop(cn->base.factory);
    }
    if (cn->in_hook) {
        cn->free_pending = true; /* freed when the hook returns */
        return;
    }
    connector_destroy(cn);
}

static const weft_connector_ops net_connector_ops = {
    .connect = cn_connect,
    .stop = cn_stop,
    .free = cn_free,
};

int weft__simnet_connect(weft_simnet *n, const weft_endpoint *ep, weft_factory *f,
                         weft_connector **out)
{
    if (out)
        *out = NULL;
    if (!n || !ep || !f || !f->build_protocol)
        return WEFT_EINVAL;
    net_connector *cn = weft_calloc(1, sizeof *cn);
    if (!cn)
        return WEFT_ENOMEM;
    cn->base.ops = &net_connector_ops;
    cn->base.reactor = weft_sim_reactor(n->sim);
    cn->base.factory = f;
    cn->base.endpoint = *ep;
    cn->n = n;
    cn->host = weft__sim_current_host(n->sim);
    if (cn->host >= n->hosts_len)
        cn->host = 0;
    NET_LIST_APPEND(&n->cn_head, &n->cn_tail, cn);
    int err = connector_start(cn);
    if (err) {
        connector_destroy(cn);
        return err;
    }
    if (out)
        *out = &cn->base;
    return WEFT_OK;
}

/* ----------------------------------------------------- The network */

static int check_config(const weft_net_config *cfg)
{
    if (cfg->latency_min_ns < 0 || cfg->latency_max_ns < cfg->latency_min_ns)
        return WEFT_EINVAL;
    if (cfg->reset_ppm > 1000000u || cfg->stall_ppm > 1000000u || cfg->refuse_ppm > 1000000u)
        return WEFT_EINVAL;
    if (cfg->stall_max_ns < 0 || cfg->connect_timeout_ns < 0)
        return WEFT_EINVAL;
    return WEFT_OK;
}

int weft__simnet_set_config(weft_simnet *n, const weft_net_config *cfg)
{
    if (!n || !cfg)
        return WEFT_EINVAL;
    int err = check_config(cfg);
    if (err)
        return err;
    n->cfg = *cfg;
    if (n->cfg.connect_timeout_ns == 0)
        n->cfg.connect_timeout_ns = NET_DEFAULT_CONNECT_TIMEOUT_NS;
    return WEFT_OK;
}

int weft__simnet_new(weft_sim *s, const weft_net_config *cfg, weft_simnet **out)
{
    *out = NULL;
    weft_simnet *n = weft_calloc(1, sizeof *n);
    if (!n)
        return WEFT_ENOMEM;
    n->sim = s;
    weft__sim_label_prefetch(s, "net.deliver", pipe_prefetch);
    weft_net_config def;
    memset(&def, 0, sizeof def);
    int err = weft__simnet_set_config(n, cfg ? cfg : &def);
    if (err) {
        weft_free(n);
        return err;
    }
    if (weft__simnet_host(n, "localhost", true) != 0) {
        weft__simnet_free(n);
        return WEFT_ENOMEM;
    }
    *out = n;
    return WEFT_OK;
}

void weft__simnet_free(weft_simnet *n)
{
    if (!n)
        return;
    /* Pending events are the core's to drop: nothing here runs again. */
    n->freeing = true;
    for (net_conn *c = n->conns_head; c; c = c->next) {
        c->busy++;
        for (int i = 0; i < 2; i++) {
            c->side[i].out.ev = NULL;
            c->side[i].notify_ev = NULL;
        }
        for (int i = 0; i < 2; i++)
            side_lose(&c->side[i], WEFT_REASON_ABORTED, "reactor freed");
    }
    while (n->conns_head) {
        net_conn *c = n->conns_head;
        NET_LIST_UNLINK(&n->conns_head, &n->conns_tail, c);
        conn_release(c);
    }
    while (n->cn_head) {
        net_connector *cn = n->cn_head;
        if (cn->factory_started)
            weft__factory_do_stop(cn->base.factory);
        NET_LIST_UNLINK(&n->cn_head, &n->cn_tail, cn);
        weft_free(cn);
    }
    while (n->lis_head) {
        net_listener *l = n->lis_head;
        if (l->active)
            weft__factory_do_stop(l->base.factory);
        NET_LIST_UNLINK(&n->lis_head, &n->lis_tail, l);
        weft_free(l);
    }
    weft_free(n->parts);
    weft_free(n->stalls);
    weft_free(n->scratch);
    weft_free(n->hosts);
    weft_free(n);
}

uint32_t weft__simnet_host(weft_simnet *n, const char *name, bool create)
{
    if (!n || !name)
        return UINT32_MAX;
    size_t len = strlen(name);
    if (len == 0 || len >= WEFT_HOST_MAX)
        return UINT32_MAX;
    for (uint32_t i = 0; i < n->hosts_len; i++)
        if (strcmp(n->hosts[i].name, name) == 0)
            return i;
    if (!create || n->hosts_len >= NET_HOSTS_MAX)
        return UINT32_MAX;
    if (n->hosts_len == n->hosts_cap) {
        uint32_t cap = n->hosts_cap ? n->hosts_cap * 2 : 8;
        net_host *h = weft_realloc(n->hosts, cap * sizeof *h);
        if (!h)
            return UINT32_MAX;
        n->hosts = h;
        n->hosts_cap = cap;
    }
    net_host *h = &n->hosts[n->hosts_len];
    memset(h, 0, sizeof *h);
    memcpy(h->name, name, len + 1);
    h->up = true;
    h->next_port = NET_EPHEMERAL_FIRST;
    return n->hosts_len++;
}

const char *weft__simnet_host_name(const weft_simnet *n, uint32_t host)
{
    if (!n || host >= n->hosts_len)
        return NULL;
    return n->hosts[host].name;
}

size_t weft__simnet_open(const weft_simnet *n)
{
    return n ? n->conns_live + n->lis_active : 0;
}

/* ------------------------------------------------------ Public faults */

/* An existing host by name: EINVAL for a NULL, empty or too long name,
 * ENOTFOUND when there is no such host. */
static int lookup(weft_simnet *n, const char *name, uint32_t *id)
{
    if (!name || name[0] == '\0' || strlen(name) >= WEFT_HOST_MAX)
        return WEFT_EINVAL;
    *id = weft__simnet_host(n, name, false);
    return *id == UINT32_MAX ? WEFT_ENOTFOUND : WEFT_OK;
}

static int two_hosts(weft_sim *s, const char *a, const char *b, uint32_t *ia, uint32_t *ib)
{
    if (!s)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    int err = lookup(n, a, ia);
    if (!err)
        err = lookup(n, b, ib);
    if (err)
        return err;
    if (*ia == *ib)
        return WEFT_EINVAL;
    return WEFT_OK;
}

/* Held pipes between a and b (both directions when both is set) go again. */
static void unhold(weft_simnet *n, uint32_t a, uint32_t b, bool both)
{
    for (net_conn *c = n->conns_head; c; c = c->next) {
        for (int i = 0; i < 2; i++) {
            net_side *s = &c->side[i];
            uint32_t from = s->host, to = c->side[1 - i].host;
            bool match = (from == a && to == b) || (both && from == b && to == a);
            if (match && s->out.held && !blocked(n, from, to))
                pipe_schedule(s);
        }
    }
}

int weft_sim_add_host(weft_sim *s, const char *name)
{
    if (!s || !name)
        return WEFT_EINVAL;
    size_t len = strlen(name);
    if (len == 0 || len >= WEFT_HOST_MAX)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    if (weft__simnet_host(n, name, false) != UINT32_MAX)
        return WEFT_EEXIST;
    if (n->hosts_len >= NET_HOSTS_MAX)
        return WEFT_ELIMIT;
    return weft__simnet_host(n, name, true) == UINT32_MAX ? WEFT_ENOMEM : WEFT_OK;
}

int weft_sim_set_net(weft_sim *s, const weft_net_config *net)
{
    if (!s)
        return WEFT_EINVAL;
    return weft__simnet_set_config(weft__sim_net(s), net);
}

int weft_sim_set_current_host(weft_sim *s, const char *host)
{
    if (!s || !host)
        return WEFT_EINVAL;
    size_t len = strlen(host);
    if (len == 0 || len >= WEFT_HOST_MAX)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    uint32_t id = weft__simnet_host(n, host, true);
    if (id == UINT32_MAX)
        return n->hosts_len >= NET_HOSTS_MAX ? WEFT_ELIMIT : WEFT_ENOMEM;
    weft__sim_set_current_host_id(s, id);
    return WEFT_OK;
}

int weft_sim_partition(weft_sim *s, const char *a, const char *b)
{
    uint32_t ia, ib;
    int err = two_hosts(s, a, b, &ia, &ib);
    if (err)
        return err;
    weft_simnet *n = weft__sim_net(s);
    if (partitioned(n, ia, ib))
        return WEFT_ESTATE;
    err = pair_add(&n->parts, &n->parts_len, &n->parts_cap, ia < ib ? ia : ib,
                   ia < ib ? ib : ia);
    if (err)
        return err;
    weft__sim_tracef(s, "net.fault", "partition %s %s", a, b);
    return WEFT_OK;
}

int weft_sim_heal(weft_sim *s, const char *a, const char *b)
{
    uint32_t ia, ib;
    int err = two_hosts(s, a, b, &ia, &ib);
    if (err)
        return err;
    weft_simnet *n = weft__sim_net(s);
    size_t at;
    if (!pair_find(n->parts, n->parts_len, ia < ib ? ia : ib, ia < ib ? ib : ia, &at))
        return WEFT_ESTATE;
    memmove(&n->parts[at], &n->parts[at + 1], (n->parts_len - at - 1) * sizeof *n->parts);
    n->parts_len--;
    weft__sim_tracef(s, "net.fault", "heal %s %s", a, b);
    unhold(n, ia, ib, true);
    return WEFT_OK;
}

int weft_sim_stall(weft_sim *s, const char *a, const char *b)
{
    uint32_t ia, ib;
    int err = two_hosts(s, a, b, &ia, &ib);
    if (err)
        return err;
    weft_simnet *n = weft__sim_net(s);
    if (pair_find(n->stalls, n->stalls_len, ia, ib, NULL))
        return WEFT_ESTATE;
    err = pair_add(&n->stalls, &n->stalls_len, &n->stalls_cap, ia, ib);
    if (err)
        return err;
    weft__sim_tracef(s, "net.fault", "stall %s>%s", a, b);
    return WEFT_OK;
}

int weft_sim_release(weft_sim *s, const char *a, const char *b)
{
    uint32_t ia, ib;
    int err = two_hosts(s, a, b, &ia, &ib);
    if (err)
        return err;
    weft_simnet *n = weft__sim_net(s);
    size_t at;
    if (!pair_find(n->stalls, n->stalls_len, ia, ib, &at))
        return WEFT_ESTATE;
    memmove(&n->stalls[at], &n->stalls[at + 1], (n->stalls_len - at - 1) * sizeof *n->stalls);
    n->stalls_len--;
    weft__sim_tracef(s, "net.fault", "release %s>%s", a, b);
    unhold(n, ia, ib, false);
    return WEFT_OK;
}

int weft_sim_crash(weft_sim *s, const char *host)
{
    if (!s)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    uint32_t h;
    int err = lookup(n, host, &h);
    if (err)
        return err;
    if (!n->hosts[h].up)
        return WEFT_ESTATE;
    n->hosts[h].up = false;
    weft__sim_tracef(s, "net.fault", "crash %s", host);
    /* The host's memory is gone first: its pending delayed calls are dropped
     * (droppable ones release what they hold), then its connections and
     * listeners go. */
    weft__sim_drop_host_calls(s, h);
    for (net_listener *l = n->lis_head; l; l = l->next)
        if (l->host == h)
            listener_deactivate(l);
    for (net_conn *c = n->conns_head; c; c = c->next)
        if ((c->side[0].host == h || c->side[1].host == h) &&
            !(c->side[0].lost && c->side[1].lost))
            conn_reset(c, "host crashed");
    weft_time_ns now = net_now(n);
    for (net_connector *cn = n->cn_head; cn; cn = cn->next)
        if (cn->host == h && cn->state == CN_CONNECTING && !cn->conn)
            connector_fail_at(cn, now, WEFT_REASON_LOST, "host crashed");
    return WEFT_OK;
}

int weft_sim_restart(weft_sim *s, const char *host)
{
    if (!s)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    uint32_t h;
    int err = lookup(n, host, &h);
    if (err)
        return err;
    if (n->hosts[h].up)
        return WEFT_ESTATE;
    n->hosts[h].up = true;
    weft__sim_tracef(s, "net.fault", "restart %s", host);
    return WEFT_OK;
}

int weft_sim_reset(weft_sim *s, const char *a, const char *b)
{
    if (!s)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    uint32_t ia, ib = UINT32_MAX;
    int err = lookup(n, a, &ia);
    if (!err && b)
        err = lookup(n, b, &ib);
    if (err)
        return err;
    for (net_conn *c = n->conns_head; c; c = c->next) {
        uint32_t h0 = c->side[0].host, h1 = c->side[1].host;
        bool match = b ? ((h0 == ia && h1 == ib) || (h0 == ib && h1 == ia))
                       : (h0 == ia || h1 == ia);
        if (match && !(c->side[0].lost && c->side[1].lost))
            conn_reset(c, "connection reset (fault)");
    }
    return WEFT_OK;
}

int weft_sim_abort(weft_sim *s, const char *a, const char *b)
{
    if (!s)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    uint32_t ia, ib = UINT32_MAX;
    int err = lookup(n, a, &ia);
    if (!err && b)
        err = lookup(n, b, &ib);
    if (err)
        return err;
    for (net_conn *c = n->conns_head; c; c = c->next) {
        for (int i = 0; i < 2; i++) {
            net_side *sd = &c->side[i];
            if (sd->host != ia || (b && c->side[1 - i].host != ib))
                continue;
            if (sd->lost || sd->lost_type || (!sd->made && !sd->proto))
                continue;
            weft__sim_tracef(s, "net.fault", "abort conn=%llu side=%s",
                           (unsigned long long)c->id, i == 0 ? "client" : "server");
            tr_abort(&sd->transport);
        }
    }
    return WEFT_OK;
}

size_t weft_sim_open_connections(const weft_sim *s)
{
    if (!s)
        return 0;
    return weft__sim_net((weft_sim *)s)->conns_live;
}
