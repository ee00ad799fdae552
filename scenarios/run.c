/* run.c: runs a parsed scenario once in the simulator and judges it.
 *
 * The script runs statement by statement on the caller's thread, outside the
 * simulator's events; a statement that waits (an expectation with `within`,
 * advance, run until) steps the simulator one event at a time until its
 * condition holds, its deadline passes or a runaway cap stops the run.
 * Statements prefixed with `at`/`after` become delayed calls on the
 * simulator's reactor, so they race the rest of the world like any event
 * (concurrent events are ordered by the choice source, never by the runner).
 *
 * The world: scripted peers are small protocols of this file that buffer
 * what they receive. Each listening peer plays one connection: the first
 * peer listening on an address opens the listener, later peers on that
 * address join its line, and connections go to the peers in declaration
 * order (then the factory refuses them). A peer is half-close aware only
 * when some `expect eof` names it, so every other peer answers a FIN as
 * before. Protocols from the registry are wrapped in a proxy
 * protocol and a proxy transport, which let the runner see their connections
 * open and close and catch a write the transport refused with WEFT_ECLOSED
 * (a write after close). Deferred handlers come from a fixed menu and run in
 * the Deferred's own loop; `record` handlers append to the order log.
 *
 * Values: an integer n travels as (void *)(intptr_t)n, `none` as NULL (so
 * none and 0 are the same value), a string as a pointer to the scenario's copy
 * of it; a value is shown as a string exactly when it is one of those
 * pointers (compared for equality only).
 *
 * The first failed expectation stops the script: the verdict is that
 * expectation's "file:line: expected ..., got ...". Violations of the
 * invariants (a Deferred fired twice, a write after close, an unhandled
 * Failure) are recorded as they happen and do not stop it. When the script
 * ends without a failure, the simulator runs until quiet and the liveness
 * checks run (Deferreds still pending, connections still open, that the
 * scenario did not declare; bytes a peer received that nothing consumed).
 * Teardown cancels what is still pending, takes the Failures the checks
 * already judged out of the scenario's Deferreds, frees the simulator (the
 * protocols see connection_lost and destroy), then the factories.
 *
 * Trace lines never carry the scenario file's path as typed: a failure's
 * "scn.fail" line names the file by its base name (the verdict and the
 * failure list keep the full path), so two paths to one file give one trace
 * hash.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scenarios/scn_internal.h"

#define PEER_BUFFER_MAX (16u * 1024u * 1024u)
#define GOT_MAX 512

typedef struct run run;

typedef enum cstate { C_IDLE, C_CONNECTING, C_OPEN, C_CLOSED, C_FAILED } cstate;

/* Connection state of a peer or a client, as the scenario sees it. */
typedef struct ctrack {
    cstate state;
    bool ever_open;
    bool declared_open;
    char reason[64]; /* Failure type of connection_lost / connection_failed */
} ctrack;

typedef struct rt_peer {
    weft_factory factory; /* ctx: this */
    run *R;
    int ent;
    ctrack ct;
    weft_protocol *proto; /* while open */
    weft_connector *connector;
    weft_listener *listener;
    bool listening; /* listener open: its factory has not been stopped */
    int host;       /* listening peers: the address, to share it */
    uint16_t port;
    struct rt_peer *leader;      /* a later peer on a leader's address */
    struct rt_peer *next_in_line; /* the next peer on the leader's address */
    bool accepted;
    bool read_eof; /* the other end shut its write side (read_connection_lost) */
    bool overflow_reported;
    uint8_t *buf; /* received, not yet consumed by an expectation */
    size_t len, cap;
} rt_peer;

typedef struct peer_proto {
    weft_protocol base;
    rt_peer *peer;
} peer_proto;

typedef struct proxy proxy;
typedef struct rt_client rt_client;

/* A registry factory wrapped for the runner. */
typedef struct wrapf {
    weft_factory base; /* ctx: this */
    weft_factory *inner;
    weft__factory_owner owner;
    run *R;
    const scn_stmt *st;
    rt_client *client;         /* a scenario client, or NULL */
    weft_deferred *connect_d;  /* weft_world_connect: fires with the inner protocol */
    struct wrapf *next;
} wrapf;

struct proxy {
    weft_protocol base;    /* what the reactor sees */
    weft_transport tbase;  /* what the inner protocol sees */
    weft_protocol *inner;
    wrapf *wf;
};

struct rt_client {
    int ent;
    ctrack ct;
    wrapf *wf;
    weft_connector *connector;
    proxy *px; /* while open */
};

typedef struct rt_def {
    weft_deferred *d;
    bool observed;      /* its Failure was expected */
    bool allow_pending; /* `expect pending` */
} rt_def;

/* Context of a handler or a delayed statement. */
typedef struct hctx {
    run *R;
    const scn_stmt *st;
    const scn_handler *h;
    struct hctx *next;
} hctx;

struct weft_world {
    run *R;
    const scn_stmt *st;
    const char *host;
};

typedef struct rt_ent {
    rt_peer *peer;
    rt_client *client;
    rt_def def;
    weft_listener *listener;
} rt_ent;

struct run {
    const weft_scenario *sc;
    const weft_registry *reg;
    weft_sim *sim;
    weft_reactor *r;
    rt_ent *ents;
    wrapf *wfs;
    hctx *hcs;
    weft_deferred **anon; /* Deferreds of `call` without `as` */
    size_t nanon;
    const char **order;
    size_t norder, caporder;
    char **failures;
    size_t nfailures;
    bool stop;        /* the script stops: an expectation failed, a runaway */
    bool tearing_down;
    bool oom;
    uint64_t max_events;
    int64_t max_time_ns;
};

/* ------------------------------------------------------------ helpers */

static const char *host_name(const run *R, int host)
{
    return host < 0 ? "localhost" : R->sc->ents[host].name;
}

static const char *ent_name(const run *R, int e)
{
    return e < 0 ? "?" : R->sc->ents[e].name;
}

/* The scenario file's base name: what trace lines call the scenario, so that
 * a run's trace (and hash) do not depend on how the path was typed. */
static const char *file_identity(const weft_scenario *sc)
{
    const char *slash = strrchr(sc->file, '/');
    return slash ? slash + 1 : sc->file;
}

/* Record a failure: text (with the path as given) for the verdict and the
 * report; trace_text (the same naming the file by file_identity) for the
 * trace. */
static void add_failure_text(run *R, const char *text, const char *trace_text)
{
    char **nf = weft_realloc(R->failures, (R->nfailures + 1) * sizeof *nf);
    char *copy = weft_strdup(text);
    if (nf == NULL || copy == NULL) {
        if (nf != NULL)
            R->failures = nf;
        weft_free(copy);
        R->oom = true;
        return;
    }
    R->failures = nf;
    R->failures[R->nfailures++] = copy;
    if (R->sim != NULL && !R->tearing_down)
        weft_sim_trace(R->sim, "scn.fail", "%s", trace_text);
}

/* A failure at a line of the scenario (line 0: the whole scenario). */
static void failf(run *R, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void failf(run *R, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char text[1200], trace_text[1200];
    if (line > 0) {
        snprintf(text, sizeof text, "%s:%d: %s", R->sc->file, line, msg);
        snprintf(trace_text, sizeof trace_text, "%s:%d: %s", file_identity(R->sc), line, msg);
    } else {
        snprintf(text, sizeof text, "%s: %s", R->sc->file, msg);
        snprintf(trace_text, sizeof trace_text, "%s: %s", file_identity(R->sc), msg);
    }
    add_failure_text(R, text, trace_text);
}

/* Render bytes for a message: printable ASCII as is, escapes otherwise, at
 * most max input bytes. */
static void render(char *out, size_t outlen, const void *data, size_t len, size_t max)
{
    const unsigned char *b = data;
    size_t o = 0;
    if (outlen < 8) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len && i < max && o + 8 < outlen; i++) {
        unsigned char c = b[i];
        if (c == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        }
    }
    out[o++] = '"';
    if (len > max && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void fmt_time(char *out, size_t n, weft_time_ns t)
{
    if (t % WEFT_NS_PER_S == 0)
        snprintf(out, n, "%" PRId64 "s", t / WEFT_NS_PER_S);
    else if (t % WEFT_NS_PER_MS == 0)
        snprintf(out, n, "%" PRId64 "ms", t / WEFT_NS_PER_MS);
    else if (t % WEFT_NS_PER_US == 0)
        snprintf(out, n, "%" PRId64 "us", t / WEFT_NS_PER_US);
    else
        snprintf(out, n, "%" PRId64 "ns", t);
}

/* ------------------------------------------------------------- values */

static void *encode(const scn_value *v)
{
    switch (v->kind) {
    case SCN_V_NONE:
        return NULL;
    case SCN_V_INT:
        return (void *)(intptr_t)v->num;
    case SCN_V_STR:
        return (void *)(uintptr_t)v->str;
    }
    return NULL;
}

/* Is p one of the scenario's strings? (Equality only.) */
static bool is_str(const run *R, const void *p)
{
    if (p == NULL)
        return false;
    for (size_t i = 0; i < R->sc->npool; i++)
        if ((const void *)R->sc->pool[i] == p)
            return true;
    return false;
}

static void show_value(const run *R, char *out, size_t n, const void *p)
{
    if (p == NULL)
        snprintf(out, n, "none");
    else if (is_str(R, p))
        render(out, n, p, strlen(p), 80);
    else
        snprintf(out, n, "%" PRIdPTR, (intptr_t)p);
}

static void show_want(char *out, size_t n, const scn_value *v)
{
    switch (v->kind) {
    case SCN_V_NONE:
        snprintf(out, n, "none");
        break;
    case SCN_V_INT:
        snprintf(out, n, "%" PRId64, v->num);
        break;
    case SCN_V_STR:
        render(out, n, v->str, v->len, 80);
        break;
    }
}

static bool value_equal(const run *R, const void *got, const scn_value *want)
{
    switch (want->kind) {
    case SCN_V_NONE:
        return got == NULL;
    case SCN_V_INT:
        return !is_str(R, got) && (intptr_t)got == (intptr_t)want->num;
    case SCN_V_STR:
        return is_str(R, got) && strlen(got) == want->len && memcmp(got, want->str, want->len) == 0;
    }
    return false;
}

/* ------------------------------------------------------------- peers */

static void track_reason(ctrack *ct, const weft_failure *reason)
{
    snprintf(ct->reason, sizeof ct->reason, "%s", reason && reason->type ? reason->type : "");
}

static void peer_made(weft_protocol *p)
{
    peer_proto *pp = (peer_proto *)p;
    rt_peer *peer = pp->peer;
    peer->ct.state = C_OPEN;
    peer->ct.ever_open = true;
    peer->proto = p;
}

static void peer_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    rt_peer *peer = ((peer_proto *)p)->peer;
    if (peer->len + len > PEER_BUFFER_MAX) {
        if (!peer->overflow_reported) {
            peer->overflow_reported = true;
            failf(peer->R, 0, "peer %s received more than %u bytes nobody expected",
                  ent_name(peer->R, peer->ent), PEER_BUFFER_MAX);
        }
        return;
    }
    if (peer->len + len > peer->cap) {
        size_t cap = peer->cap ? peer->cap : 256;
        while (cap < peer->len + len)
            cap *= 2;
        uint8_t *nb = weft_realloc(peer->buf, cap);
        if (nb == NULL) {
            peer->R->oom = true;
            return;
        }
        peer->buf = nb;
        peer->cap = cap;
    }
    memcpy(peer->buf + peer->len, data, len);
    peer->len += len;
}

static void peer_lost(weft_protocol *p, const weft_failure *reason)
{
    rt_peer *peer = ((peer_proto *)p)->peer;
    peer->ct.state = C_CLOSED;
    track_reason(&peer->ct, reason);
    peer->proto = NULL;
}

/* Only for peers some `expect eof` names (peer_ops_halfclose): the other end
 * shut its write side; the connection stays open for this side to write. */
static void peer_read_lost(weft_protocol *p)
{
    ((peer_proto *)p)->peer->read_eof = true;
}

static void peer_destroy(weft_protocol *p)
{
    peer_proto *pp = (peer_proto *)p;
    if (pp->peer->proto == p)
        pp->peer->proto = NULL;
    weft_free(pp);
}

static const weft_protocol_ops peer_ops = {
    .connection_made = peer_made,
    .data_received = peer_data,
    .connection_lost = peer_lost,
    .destroy = peer_destroy,
};

/* Half-close awareness is the presence of read_connection_lost: a peer is
 * aware exactly when the scenario expects its eof, so every other peer
 * answers a half-close as before (ConnectionDone). */
static const weft_protocol_ops peer_ops_halfclose = {
    .connection_made = peer_made,
    .data_received = peer_data,
    .connection_lost = peer_lost,
    .read_connection_lost = peer_read_lost,
    .destroy = peer_destroy,
};

static weft_protocol *peer_build(weft_factory *f, const weft_address *addr)
{
    (void)addr;
    rt_peer *peer = f->ctx;
    /* Each listening peer plays one connection: the leader's listener hands
     * connections to the peers on its address in declaration order; once
     * every one has its connection, later ones are refused. */
    if (peer->listener != NULL) {
        while (peer != NULL && peer->accepted)
            peer = peer->next_in_line;
        if (peer == NULL)
            return NULL;
    }
    peer_proto *pp = weft_calloc(1, sizeof *pp);
    if (pp == NULL) {
        peer->R->oom = true;
        return NULL;
    }
    pp->base.ops = peer->R->sc->ents[peer->ent].peer_eof ? &peer_ops_halfclose : &peer_ops;
    pp->peer = peer;
    peer->accepted = true;
    return &pp->base;
}

static void peer_stop(weft_factory *f)
{
    rt_peer *peer = f->ctx;
    peer->listening = false;
}

static void peer_failed(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    (void)c;
    rt_peer *peer = f->ctx;
    peer->ct.state = C_FAILED;
    track_reason(&peer->ct, reason);
}

/* ------------------------------------------- proxies of registry code */

static proxy *proxy_of_transport(weft_transport *t)
{
    return (proxy *)((char *)t - offsetof(proxy, tbase));
}

static void note_closed_write(proxy *px, int rc)
{
    if (rc == WEFT_ECLOSED && !px->wf->R->tearing_down)
        failf(px->wf->R, px->wf->st ? px->wf->st->line : 0,
              "invariant: protocol '%s' wrote after its connection was closed (WEFT_ECLOSED)",
              px->wf->st && px->wf->st->proto ? px->wf->st->proto : "?");
}

static int px_write(weft_transport *t, const void *data, size_t len)
{
    proxy *px = proxy_of_transport(t);
    if (px->base.transport == NULL) {
        note_closed_write(px, WEFT_ECLOSED);
        return WEFT_ECLOSED;
    }
    int rc = weft_transport_write(px->base.transport, data, len);
    note_closed_write(px, rc);
    return rc;
}

static int px_writev(weft_transport *t, const weft_iovec *iov, size_t n)
{
    proxy *px = proxy_of_transport(t);
    if (px->base.transport == NULL) {
        note_closed_write(px, WEFT_ECLOSED);
        return WEFT_ECLOSED;
    }
    int rc = weft_transport_writev(px->base.transport, iov, n);
    note_closed_write(px, rc);
    return rc;
}

#define PX_FORWARD(name)                                       \
    static int px_##name(weft_transport *t)                    \
    {                                                          \
        proxy *px = proxy_of_transport(t);                     \
        if (px->base.transport == NULL)                        \
            return WEFT_ENOTCONN;                              \
        return weft_transport_##name(px->base.transport);      \
    }
PX_FORWARD(lose_connection)
PX_FORWARD(abort)
PX_FORWARD(lose_write_connection)
PX_FORWARD(pause_reading)
PX_FORWARD(resume_reading)
PX_FORWARD(unregister_producer)
#undef PX_FORWARD

static int px_register_producer(weft_transport *t, const weft_producer *p)
{
    proxy *px = proxy_of_transport(t);
    if (px->base.transport == NULL)
        return WEFT_ENOTCONN;
    return weft_transport_register_producer(px->base.transport, p);
}

static const weft_address *px_peer(weft_transport *t)
{
    proxy *px = proxy_of_transport(t);
    static const weft_address none;
    return px->base.transport ? weft_transport_peer(px->base.transport) : &none;
}

static const weft_address *px_host(weft_transport *t)
{
    proxy *px = proxy_of_transport(t);
    static const weft_address none;
    return px->base.transport ? weft_transport_host(px->base.transport) : &none;
}

static size_t px_buffered(weft_transport *t)
{
    proxy *px = proxy_of_transport(t);
    return px->base.transport ? weft_transport_buffered(px->base.transport) : 0;
}

/* The underlying transport's answer; once it is gone, the connection is. */
static bool px_disconnecting(weft_transport *t)
{
    proxy *px = proxy_of_transport(t);
    return px->base.transport ? weft_transport_disconnecting(px->base.transport) : true;
}

static const weft_transport_ops px_tops = {
    .write = px_write,
    .writev = px_writev,
    .lose_connection = px_lose_connection,
    .abort = px_abort,
    .lose_write_connection = px_lose_write_connection,
    .pause_reading = px_pause_reading,
    .resume_reading = px_resume_reading,
    .register_producer = px_register_producer,
    .unregister_producer = px_unregister_producer,
    .peer = px_peer,
    .host = px_host,
    .buffered = px_buffered,
    .disconnecting = px_disconnecting,
};

static void px_made(weft_protocol *p)
{
    proxy *px = (proxy *)p;
    weft_protocol *in = px->inner;
    in->transport = &px->tbase;
    in->reactor = p->reactor;
    in->factory = px->wf->inner;
    rt_client *cl = px->wf->client;
    if (cl != NULL) {
        cl->ct.state = C_OPEN;
        cl->ct.ever_open = true;
        cl->px = px;
    }
    if (in->ops->connection_made)
        in->ops->connection_made(in);
    if (px->wf->connect_d != NULL) {
        weft_deferred *d = px->wf->connect_d;
        px->wf->connect_d = NULL;
        weft_deferred_callback(d, in);
        weft_deferred_unref(d);
    }
}

static void px_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    proxy *px = (proxy *)p;
    if (px->inner->ops->data_received)
        px->inner->ops->data_received(px->inner, data, len);
}

static void px_lost(weft_protocol *p, const weft_failure *reason)
{
    proxy *px = (proxy *)p;
    weft_protocol *in = px->inner;
    rt_client *cl = px->wf->client;
    if (cl != NULL && cl->px == px) {
        cl->ct.state = C_CLOSED;
        track_reason(&cl->ct, reason);
        cl->px = NULL;
    }
    if (in->ops->connection_lost)
        in->ops->connection_lost(in, reason);
    in->transport = NULL;
}

static void px_read_lost(weft_protocol *p)
{
    proxy *px = (proxy *)p;
    px->inner->ops->read_connection_lost(px->inner);
}

static void px_write_lost(weft_protocol *p)
{
    proxy *px = (proxy *)p;
    if (px->inner->ops->write_connection_lost)
        px->inner->ops->write_connection_lost(px->inner);
}

static void px_destroy(weft_protocol *p)
{
    proxy *px = (proxy *)p;
    rt_client *cl = px->wf->client;
    if (cl != NULL && cl->px == px)
        cl->px = NULL;
    if (px->inner->ops->destroy)
        px->inner->ops->destroy(px->inner);
    weft_free(px);
}

/* Half-close awareness is the presence of read_connection_lost: two tables. */
static const weft_protocol_ops px_ops = {
    .connection_made = px_made,
    .data_received = px_data,
    .connection_lost = px_lost,
    .write_connection_lost = px_write_lost,
    .destroy = px_destroy,
};

static const weft_protocol_ops px_ops_halfclose = {
    .connection_made = px_made,
    .data_received = px_data,
    .connection_lost = px_lost,
    .read_connection_lost = px_read_lost,
    .write_connection_lost = px_write_lost,
    .destroy = px_destroy,
};

static weft_protocol *wf_build(weft_factory *f, const weft_address *addr)
{
    wrapf *wf = f->ctx;
    weft_protocol *in = wf->inner->build_protocol(wf->inner, addr);
    if (in == NULL)
        return NULL;
    proxy *px = weft_calloc(1, sizeof *px);
    if (px == NULL) {
        if (in->ops->destroy)
            in->ops->destroy(in);
        wf->R->oom = true;
        return NULL;
    }
    px->base.ops = in->ops->read_connection_lost ? &px_ops_halfclose : &px_ops;
    px->tbase.ops = &px_tops;
    px->inner = in;
    px->wf = wf;
    return &px->base;
}

static void wf_start(weft_factory *f)
{
    wrapf *wf = f->ctx;
    if (wf->inner->start)
        wf->inner->start(wf->inner);
}

static void wf_stop(weft_factory *f)
{
    wrapf *wf = f->ctx;
    if (wf->inner->stop)
        wf->inner->stop(wf->inner);
}

static void wf_failed(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    wrapf *wf = f->ctx;
    if (wf->client != NULL) {
        wf->client->ct.state = C_FAILED;
        track_reason(&wf->client->ct, reason);
    }
    if (wf->connect_d != NULL) {
        weft_deferred *d = wf->connect_d;
        wf->connect_d = NULL;
        weft_deferred_errback(d, weft_failure_copy(reason));
        weft_deferred_unref(d);
    }
    if (wf->inner->connection_failed)
        wf->inner->connection_failed(wf->inner, c, reason);
}

static void wf_conn_lost(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    wrapf *wf = f->ctx;
    if (wf->inner->connection_lost)
        wf->inner->connection_lost(wf->inner, c, reason);
}

/* A wrapped factory of registered protocol `proto`, owned by the run. */
static wrapf *make_wrapf(run *R, const scn_stmt *st, const char *proto, const char *args, char *err,
                         size_t errlen)
{
    wrapf *wf = weft_calloc(1, sizeof *wf);
    if (wf == NULL) {
        snprintf(err, errlen, "out of memory");
        R->oom = true;
        return NULL;
    }
    wf->inner = weft__registry_make(R->reg, proto, R->r, args, err, errlen, &wf->owner);
    if (wf->inner == NULL) {
        weft_free(wf);
        return NULL;
    }
    if (wf->inner->build_protocol == NULL) {
        snprintf(err, errlen, "protocol '%s' made a factory without build_protocol", proto);
        if (wf->owner.destroy)
            wf->owner.destroy(wf->inner, wf->owner.ctx);
        weft_free(wf);
        return NULL;
    }
    wf->base.build_protocol = wf_build;
    wf->base.start = wf_start;
    wf->base.stop = wf_stop;
    wf->base.connection_failed = wf_failed;
    wf->base.connection_lost = wf_conn_lost;
    wf->base.ctx = wf;
    wf->R = R;
    wf->st = st;
    wf->next = R->wfs;
    R->wfs = wf;
    return wf;
}

/* ------------------------------------------------------------ handlers */

static hctx *new_hctx(run *R, const scn_stmt *st, const scn_handler *h)
{
    hctx *hc = weft_calloc(1, sizeof *hc);
    if (hc == NULL) {
        R->oom = true;
        return NULL;
    }
    hc->R = R;
    hc->st = st;
    hc->h = h;
    hc->next = R->hcs;
    R->hcs = hc;
    return hc;
}

static weft_result pass(weft_result in)
{
    return in.kind == WEFT_RESULT_FAILURE ? weft_failed(in.failure) : weft_value(in.value);
}

static void record_label(run *R, const char *label)
{
    if (R->norder == R->caporder) {
        size_t cap = R->caporder ? R->caporder * 2 : 16;
        const char **no = weft_realloc(R->order, cap * sizeof *no);
        if (no == NULL) {
            R->oom = true;
            return;
        }
        R->order = no;
        R->caporder = cap;
    }
    R->order[R->norder++] = label;
}

static weft_result run_handler(weft_result in, void *ctx)
{
    hctx *hc = ctx;
    run *R = hc->R;
    const scn_handler *h = hc->h;
    bool failed = in.kind == WEFT_RESULT_FAILURE;
    if (R->tearing_down)
        return pass(in);
    switch (h->op) {
    case SCN_H_NONE:
    case SCN_H_PASS:
        return pass(in);
    case SCN_H_ADD:
        if (failed)
            return pass(in);
        if (is_str(R, in.value)) {
            failf(R, hc->st->line, "'add %" PRId64 "' on %s: the value is a string, not a number",
                  h->v.num, ent_name(R, hc->st->subj));
            return pass(in);
        }
        return weft_value((void *)((intptr_t)in.value + (intptr_t)h->v.num));
    case SCN_H_VALUE:
        return weft_value(encode(&h->v));
    case SCN_H_FAIL:
        return weft_failed(weft_failure_new(h->type, "%s", h->msg));
    case SCN_H_RETURN: {
        weft_deferred *t = R->ents[h->target].def.d;
        if (t == NULL) {
            failf(R, hc->st->line, "'return %s': Deferred %s was not created yet",
                  ent_name(R, h->target), ent_name(R, h->target));
            return pass(in);
        }
        return weft_chain(weft_deferred_ref(t));
    }
    case SCN_H_RECORD:
        record_label(R, h->label);
        weft_sim_trace(R->sim, "scn.record", "%s", h->label);
        return pass(in);
    case SCN_H_RECOVER:
        if (!failed)
            return pass(in);
        return weft_value(encode(&h->v));
    case SCN_H_TRAP:
        if (!failed || !weft_failure_check(in.failure, h->type))
            return pass(in);
        return weft_value((void *)(uintptr_t)h->type);
    }
    return pass(in);
}

static weft_result later_value(void *ctx)
{
    hctx *hc = ctx;
    return weft_value(encode(&hc->st->value));
}

/* -------------------------------------------------------------- world */

weft_reactor *weft_world_reactor(weft_world *w)
{
    return w->R->r;
}

weft_sim *weft_world_sim(weft_world *w)
{
    return w->R->sim;
}

const char *weft_world_host(weft_world *w)
{
    return w->host;
}

weft_protocol *weft_world_client(weft_world *w, const char *name)
{
    int e = weft__scn_find(w->R->sc, name);
    if (e < 0 || w->R->sc->ents[e].kind != SCN_ENT_CLIENT || w->R->ents[e].client == NULL)
        return NULL;
    proxy *px = w->R->ents[e].client->px;
    return px ? px->inner : NULL;
}

weft_factory *weft_world_factory(weft_world *w, const char *proto, const char *args, char *err,
                                 size_t errlen)
{
    char buf[256];
    if (err == NULL || errlen == 0) {
        err = buf;
        errlen = sizeof buf;
    }
    wrapf *wf = make_wrapf(w->R, w->st, proto, args, err, errlen);
    return wf ? &wf->base : NULL;
}

int weft_world_connect(weft_world *w, const char *endpoint, weft_factory *f, weft_deferred **out)
{
    if (w == NULL || endpoint == NULL || f == NULL || out == NULL)
        return WEFT_EINVAL;
    *out = NULL;
    run *R = w->R;
    wrapf *wf = NULL;
    for (wrapf *it = R->wfs; it != NULL; it = it->next)
        if (&it->base == f)
            wf = it;
    if (wf == NULL) {
        /* A factory the action made itself: wrap it (not destroyed by us). */
        wf = weft_calloc(1, sizeof *wf);
        if (wf == NULL)
            return WEFT_ENOMEM;
        wf->inner = f;
        wf->base.build_protocol = wf_build;
        wf->base.start = wf_start;
        wf->base.stop = wf_stop;
        wf->base.connection_failed = wf_failed;
        wf->base.connection_lost = wf_conn_lost;
        wf->base.ctx = wf;
        wf->R = R;
        wf->st = w->st;
        wf->next = R->wfs;
        R->wfs = wf;
    }
    if (wf->connect_d != NULL)
        return WEFT_ESTATE; /* one connection per factory */
    weft_deferred *d = weft_deferred_new();
    if (d == NULL)
        return WEFT_ENOMEM;
    weft_sim_set_current_host(R->sim, w->host);
    char desc[WEFT_HOST_MAX + 32];
    if (strncmp(endpoint, "tcp:", 4) == 0)
        snprintf(desc, sizeof desc, "%s", endpoint);
    else
        snprintf(desc, sizeof desc, "tcp:%s", endpoint);
    wf->connect_d = weft_deferred_ref(d);
    weft_connector *c = NULL;
    int rc = weft_connect_factory(R->r, desc, &wf->base, &c);
    if (rc != WEFT_OK) {
        weft_deferred_unref(wf->connect_d);
        wf->connect_d = NULL;
        weft_deferred_unref(d);
        return rc;
    }
    *out = d;
    return WEFT_OK;
}

void *weft_world_alloc(weft_world *w, size_t size)
{
    /* An hctx header keeps the block on the run's list. */
    hctx *hc = weft_calloc(1, sizeof(hctx) + size);
    if (hc == NULL)
        return NULL;
    hc->R = w->R;
    hc->next = w->R->hcs;
    w->R->hcs = hc;
    return hc + 1;
}

void weft_world_violation(weft_world *w, const char *fmt, ...)
{
    char msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    failf(w->R, w->st ? w->st->line : 0, "%s", msg);
}

/* --------------------------------------------------- runaway and waits */

/* A runaway cap stopped the simulator: the verdict names the hottest event. */
static void runaway(run *R, const scn_stmt *st, const char *doing)
{
    uint64_t count = 0;
    const char *hot = weft_sim_hottest_event(R->sim, &count);
    char now[32];
    fmt_time(now, sizeof now, weft_now(R->r));
    uint64_t events = weft_sim_events(R->sim);
    char cap[64];
    if (R->max_events && events >= R->max_events)
        snprintf(cap, sizeof cap, "event cap of %" PRIu64 " reached", R->max_events);
    else {
        char t[32];
        fmt_time(t, sizeof t, R->max_time_ns);
        snprintf(cap, sizeof cap, "virtual time cap of %s reached", t);
    }
    failf(R, st ? st->line : 0,
          "runaway: %s while %s, after %" PRIu64 " events at %s; the event that kept "
          "rescheduling: '%s' (%" PRIu64 " times)",
          cap, doing, events, now, hot ? hot : "?", count);
    R->stop = true;
}

/* Step once; false when the run must stop (runaway, failure elsewhere). */
static bool step(run *R, const scn_stmt *st, const char *doing)
{
    int rc = weft_sim_step(R->sim);
    if (rc == WEFT_ELIMIT) {
        runaway(R, st, doing);
        return false;
    }
    return !R->stop;
}

static bool run_stopped(void *ctx)
{
    return ((run *)ctx)->stop;
}

/* Run to t and no further: the reactor's run_until honours the horizon even
 * when a jittered pass reaches past it (stepping would not), and checks for a
 * failure before every event. Idle before t, the clock still moves to t. */
static bool run_until(run *R, const scn_stmt *st, weft_time_ns t, const char *doing)
{
    int rc = weft_reactor_run_until(R->r, run_stopped, R, t);
    if (rc == WEFT_ESTATE)
        rc = weft_sim_run_until(R->sim, t);
    if (rc == WEFT_ELIMIT) {
        runaway(R, st, doing);
        return false;
    }
    return !R->stop;
}

static bool run_quiet(run *R, const scn_stmt *st, const char *doing)
{
    while (weft_sim_pending(R->sim) > 0)
        if (!step(R, st, doing))
            return false;
    return !R->stop;
}

/* ------------------------------------------------------- expectations */

static const char *state_text(const ctrack *ct)
{
    switch (ct->state) {
    case C_IDLE: return "not connecting";
    case C_CONNECTING: return "still connecting";
    case C_OPEN: return "connected";
    case C_CLOSED: return "closed";
    case C_FAILED: return "connect failed";
    }
    return "?";
}

static ctrack *track_of(run *R, int e)
{
    if (R->sc->ents[e].kind == SCN_ENT_PEER)
        return R->ents[e].peer ? &R->ents[e].peer->ct : NULL;
    if (R->sc->ents[e].kind == SCN_ENT_CLIENT)
        return R->ents[e].client ? &R->ents[e].client->ct : NULL;
    return NULL;
}

/* Find the next line in the peer's buffer: length without delimiter and
 * length with it. false: no complete line yet. */
static bool next_line(const rt_peer *p, size_t *line_len, size_t *eat)
{
    const uint8_t *nl = p->len ? memchr(p->buf, '\n', p->len) : NULL;
    if (nl == NULL)
        return false;
    size_t n = (size_t)(nl - p->buf);
    *eat = n + 1;
    if (n > 0 && p->buf[n - 1] == '\r')
        n--;
    *line_len = n;
    return true;
}

static void consume(rt_peer *p, size_t n)
{
    if (n == 0)
        return;
    memmove(p->buf, p->buf + n, p->len - n);
    p->len -= n;
}

/* Why no more bytes can come to a peer ("" while they still can): its
 * connection ended (or never started and cannot: a listening peer still
 * waiting for its connection can), or the other end shut its write side. */
static const char *ended_text(const rt_peer *p)
{
    bool awaiting = p->ct.state == C_IDLE && !p->accepted && (p->listening || p->leader != NULL);
    if (p->ct.state != C_OPEN && p->ct.state != C_CONNECTING && !awaiting)
        return " and the connection closed";
    if (p->read_eof)
        return " and the other end shut its write side";
    return "";
}

/* 1: met; -1: cannot be met any more (got says why); 0: not yet (got says
 * what there is). */
static int check(run *R, const scn_stmt *st, char *got, size_t gotlen)
{
    int e = st->subj;
    const scn_entity *ent = &R->sc->ents[e];
    char a[GOT_MAX / 2]; /* leaves room in got for the words around it */
    got[0] = '\0';
    if (ent->kind == SCN_ENT_PEER || ent->kind == SCN_ENT_CLIENT) {
        ctrack *ct = track_of(R, e);
        if (ct == NULL) {
            snprintf(got, gotlen, "%s %s was never started", ent->kind == SCN_ENT_PEER ? "peer" : "client",
                     ent->name);
            return -1;
        }
        rt_peer *p = R->ents[e].peer;
        switch (st->ekind) {
        case SCN_E_CONNECTED:
            if (ct->ever_open)
                return 1;
            snprintf(got, gotlen, "%s%s%s", state_text(ct), ct->reason[0] ? " with " : "", ct->reason);
            return ct->state == C_FAILED ? -1 : 0;
        case SCN_E_OPEN:
            if (ct->state == C_OPEN) {
                ct->declared_open = true;
                return 1;
            }
            snprintf(got, gotlen, "%s%s%s", state_text(ct), ct->reason[0] ? " with " : "", ct->reason);
            return -1;
        case SCN_E_CLOSED:
        case SCN_E_CONNECT_FAILED: {
            cstate want = st->ekind == SCN_E_CLOSED ? C_CLOSED : C_FAILED;
            if (ct->state == want) {
                if (st->type == NULL || strcmp(st->type, ct->reason) == 0)
                    return 1;
                snprintf(got, gotlen, "%s with %s", state_text(ct), ct->reason);
                return -1;
            }
            snprintf(got, gotlen, "%s", state_text(ct));
            if (ct->state == C_CLOSED || ct->state == C_FAILED) {
                snprintf(got, gotlen, "%s with %s", state_text(ct), ct->reason);
                return -1;
            }
            return 0;
        }
        case SCN_E_BYTES: {
            size_t n = p->len < st->nbytes ? p->len : st->nbytes;
            if (n > 0 && memcmp(p->buf, st->bytes, n) != 0) {
                render(a, sizeof a, p->buf, p->len, 120);
                snprintf(got, gotlen, "%s", a);
                return -1;
            }
            if (p->len >= st->nbytes) {
                consume(p, st->nbytes);
                return 1;
            }
            render(a, sizeof a, p->buf, p->len, 120);
            snprintf(got, gotlen, "%s%s", p->len ? a : "nothing", ended_text(p));
            return ended_text(p)[0] == '\0' ? 0 : -1;
        }
        case SCN_E_LINE:
        case SCN_E_PREFIX:
        case SCN_E_MATCH: {
            size_t ll, eat;
            if (!next_line(p, &ll, &eat)) {
                render(a, sizeof a, p->buf, p->len, 120);
                bool live = ended_text(p)[0] == '\0';
                snprintf(got, gotlen, "%s%s", p->len ? a : "nothing",
                         live ? (p->len ? " (no end of line yet)" : "") : ended_text(p));
                return live ? 0 : -1;
            }
            bool okk;
            if (st->ekind == SCN_E_LINE)
                okk = ll == st->nbytes && memcmp(p->buf, st->bytes, ll) == 0;
            else if (st->ekind == SCN_E_PREFIX)
                okk = ll >= st->nbytes && memcmp(p->buf, st->bytes, st->nbytes) == 0;
            else {
                char *line = weft_malloc(ll + 1);
                if (line == NULL) {
                    R->oom = true;
                    snprintf(got, gotlen, "out of memory");
                    return -1;
                }
                memcpy(line, p->buf, ll);
                line[ll] = '\0';
                okk = memchr(line, '\0', ll) == NULL && regexec(&st->regex, line, 0, NULL, 0) == 0;
                weft_free(line);
            }
            if (okk) {
                consume(p, eat);
                return 1;
            }
            render(a, sizeof a, p->buf, ll, 120);
            snprintf(got, gotlen, "line %s", a);
            return -1;
        }
        case SCN_E_EOF:
            if (p->read_eof)
                return 1;
            snprintf(got, gotlen, "%s%s%s", state_text(ct), ct->reason[0] ? " with " : "", ct->reason);
            return ct->state == C_CLOSED || ct->state == C_FAILED ? -1 : 0;
        case SCN_E_NOTHING:
            if (p->len == 0)
                return 1;
            render(a, sizeof a, p->buf, p->len, 120);
            snprintf(got, gotlen, "%s", a);
            return -1;
        default:
            break;
        }
        snprintf(got, gotlen, "an expectation this runner cannot check");
        return -1;
    }
    /* Deferreds */
    rt_def *rd = &R->ents[e].def;
    if (rd->d == NULL) {
        snprintf(got, gotlen, "Deferred %s was not created yet", ent->name);
        return -1;
    }
    weft_result res;
    weft_deferred_state ds = weft_deferred_peek(rd->d, &res);
    if (st->ekind == SCN_E_PENDING) {
        if (ds == WEFT_DEFERRED_PENDING) {
            rd->allow_pending = true;
            return 1;
        }
    } else if (ds == WEFT_DEFERRED_PENDING) {
        snprintf(got, gotlen, "still pending%s", weft_deferred_paused(rd->d) ? " (paused)" : "");
        return 0;
    }
    if (st->ekind == SCN_E_FIRED) {
        if (ds == WEFT_DEFERRED_FAILED)
            rd->observed = true;
        return 1;
    }
    if (ds == WEFT_DEFERRED_FAILED) {
        const weft_failure *f = res.failure;
        if (st->ekind == SCN_E_FAILURE && weft_failure_check(f, st->type) &&
            strstr(f->message ? f->message : "", st->msg) != NULL) {
            rd->observed = true;
            return 1;
        }
        if (f->sub != NULL)
            snprintf(got, gotlen, "failure %s [%s: %s] \"%s\"", f->type, f->sub->type,
                     f->sub->message ? f->sub->message : "", f->message ? f->message : "");
        else
            snprintf(got, gotlen, "failure %s \"%s\"", f->type, f->message ? f->message : "");
        return -1;
    }
    /* succeeded */
    void *v = res.value;
    switch (st->ekind) {
    case SCN_E_SUCCEEDED:
        return 1;
    case SCN_E_VALUE:
        if (value_equal(R, v, &st->value))
            return 1;
        show_value(R, a, sizeof a, v);
        snprintf(got, gotlen, "value %s", a);
        return -1;
    case SCN_E_VALUES: {
        const weft_gather_result *g = v;
        bool okk = g != NULL && g->count == st->nitems;
        for (size_t i = 0; okk && i < st->nitems; i++)
            okk = value_equal(R, g->values[i], &st->items[i].v);
        if (okk)
            return 1;
        size_t o = (size_t)snprintf(got, gotlen, "values");
        for (size_t i = 0; g != NULL && i < g->count && o + 4 < gotlen; i++) {
            show_value(R, a, 100, g->values[i]);
            o += (size_t)snprintf(got + o, gotlen - o, " %s", a);
        }
        return -1;
    }
    case SCN_E_LIST: {
        const weft_dlist_result *l = v;
        bool okk = l != NULL && l->count == st->nitems;
        for (size_t i = 0; okk && i < st->nitems; i++) {
            const weft_dlist_item *it = &l->items[i];
            const scn_item *w = &st->items[i];
            if (w->state == 0)
                okk = !it->reported;
            else if (w->state == 1)
                okk = it->reported && it->succeeded && value_equal(R, it->value, &w->v);
            else
                okk = it->reported && !it->succeeded && weft_failure_check(it->failure, w->type);
        }
        if (okk)
            return 1;
        size_t o = (size_t)snprintf(got, gotlen, "list");
        for (size_t i = 0; l != NULL && i < l->count && o + 4 < gotlen; i++) {
            const weft_dlist_item *it = &l->items[i];
            if (!it->reported)
                o += (size_t)snprintf(got + o, gotlen - o, " unfired");
            else if (it->succeeded) {
                show_value(R, a, 100, it->value);
                o += (size_t)snprintf(got + o, gotlen - o, " ok %s", a);
            } else
                o += (size_t)snprintf(got + o, gotlen - o, " fail %s",
                                      it->failure ? it->failure->type : "?");
        }
        return -1;
    }
    case SCN_E_FAILURE:
        show_value(R, a, sizeof a, v);
        snprintf(got, gotlen, "value %s", a);
        return -1;
    case SCN_E_PENDING:
        show_value(R, a, sizeof a, v);
        snprintf(got, gotlen, "value %s", a);
        return -1;
    default:
        break;
    }
    snprintf(got, gotlen, "an expectation this runner cannot check");
    return -1;
}

/* What an expectation wanted, for its failure message. */
static void describe_expect(const run *R, const scn_stmt *st, char *out, size_t n)
{
    char a[GOT_MAX];
    switch (st->ekind) {
    case SCN_E_BYTES:
        render(a, sizeof a, st->bytes, st->nbytes, 120);
        snprintf(out, n, "%s", a);
        break;
    case SCN_E_LINE:
    case SCN_E_PREFIX:
    case SCN_E_MATCH:
        render(a, sizeof a, st->bytes, st->nbytes, 120);
        snprintf(out, n, "%s %s",
                 st->ekind == SCN_E_LINE ? "line" : st->ekind == SCN_E_PREFIX ? "prefix" : "match", a);
        break;
    case SCN_E_NOTHING: snprintf(out, n, "nothing"); break;
    case SCN_E_CONNECTED: snprintf(out, n, "connected"); break;
    case SCN_E_OPEN: snprintf(out, n, "open"); break;
    case SCN_E_EOF: snprintf(out, n, "eof"); break;
    case SCN_E_CLOSED:
    case SCN_E_CONNECT_FAILED:
        snprintf(out, n, "%s%s%s", st->ekind == SCN_E_CLOSED ? "closed" : "connect-failed",
                 st->type ? " with " : "", st->type ? st->type : "");
        break;
    case SCN_E_VALUE:
        show_want(a, sizeof a, &st->value);
        snprintf(out, n, "value %s", a);
        break;
    case SCN_E_SUCCEEDED: snprintf(out, n, "succeeded"); break;
    case SCN_E_FIRED: snprintf(out, n, "fired"); break;
    case SCN_E_FAILURE:
        if (st->msg[0])
            snprintf(out, n, "failure %s \"%s\"", st->type, st->msg);
        else
            snprintf(out, n, "failure %s", st->type);
        break;
    case SCN_E_PENDING: snprintf(out, n, "pending"); break;
    case SCN_E_VALUES: {
        size_t o = (size_t)snprintf(out, n, "values");
        for (size_t i = 0; i < st->nitems && o + 4 < n; i++) {
            show_want(a, 100, &st->items[i].v);
            o += (size_t)snprintf(out + o, n - o, " %s", a);
        }
        break;
    }
    case SCN_E_LIST: {
        size_t o = (size_t)snprintf(out, n, "list");
        for (size_t i = 0; i < st->nitems && o + 4 < n; i++) {
            const scn_item *it = &st->items[i];
            if (it->state == 0)
                o += (size_t)snprintf(out + o, n - o, " unfired");
            else if (it->state == 1) {
                show_want(a, 100, &it->v);
                o += (size_t)snprintf(out + o, n - o, " ok %s", a);
            } else
                o += (size_t)snprintf(out + o, n - o, " fail %s", it->type);
        }
        break;
    }
    }
    (void)R;
}

static void expect_failed(run *R, const scn_stmt *st, const char *got, bool timed_out)
{
    char want[GOT_MAX + 64], w[32] = "";
    describe_expect(R, st, want, sizeof want);
    if (st->has_within)
        fmt_time(w, sizeof w, st->within_ns);
    failf(R, st->line, "%s: expected %s%s%s, got %s%s%s", ent_name(R, st->subj), want,
          st->has_within ? " within " : "", w, got, timed_out && st->has_within ? " after " : "",
          timed_out && st->has_within ? w : "");
    R->stop = true;
}

static void exec_expect(run *R, const scn_stmt *st)
{
    char got[GOT_MAX];
    weft_time_ns deadline = weft_now(R->r) + (st->has_within ? st->within_ns : 0);
    if (st->ekind == SCN_E_NOTHING) {
        for (;;) {
            if (check(R, st, got, sizeof got) < 0) {
                expect_failed(R, st, got, false);
                return;
            }
            weft_time_ns next;
            if (!weft_sim_next_time(R->sim, &next) || next > deadline)
                break;
            if (!step(R, st, "waiting for nothing"))
                return;
        }
        if (!run_until(R, st, deadline, "waiting for nothing"))
            return;
        if (check(R, st, got, sizeof got) < 0)
            expect_failed(R, st, got, false);
        return;
    }
    for (;;) {
        int c = check(R, st, got, sizeof got);
        if (c > 0)
            return;
        if (c < 0) {
            expect_failed(R, st, got, false);
            return;
        }
        weft_time_ns next;
        if (!weft_sim_next_time(R->sim, &next) || next > deadline) {
            if (!run_until(R, st, deadline, "waiting for an expectation"))
                return;
            c = check(R, st, got, sizeof got);
            if (c > 0)
                return;
            expect_failed(R, st, got, c == 0);
            return;
        }
        if (!step(R, st, "waiting for an expectation"))
            return;
    }
}

static void exec_order(run *R, const scn_stmt *st)
{
    bool okk = R->norder == st->nlabels;
    for (size_t i = 0; okk && i < st->nlabels; i++)
        okk = strcmp(R->order[i], st->labels[i]) == 0;
    if (okk)
        return;
    char want[600], got[600];
    size_t o = (size_t)snprintf(want, sizeof want, "order");
    for (size_t i = 0; i < st->nlabels && o + 4 < sizeof want; i++)
        o += (size_t)snprintf(want + o, sizeof want - o, " \"%s\"", st->labels[i]);
    o = (size_t)snprintf(got, sizeof got, "order");
    for (size_t i = 0; i < R->norder && o + 4 < sizeof got; i++)
        o += (size_t)snprintf(got + o, sizeof got - o, " \"%s\"", R->order[i]);
    if (R->norder == 0)
        snprintf(got, sizeof got, "no recorded handler");
    failf(R, st->line, "expected %s, got %s", want, got);
    R->stop = true;
}

/* ---------------------------------------------------------- statements */

static void exec_stmt(run *R, const scn_stmt *st);

static void timed_cb(void *ctx)
{
    hctx *hc = ctx;
    if (hc->R->stop || hc->R->tearing_down)
        return;
    exec_stmt(hc->R, hc->st);
}

static rt_def *need_def(run *R, const scn_stmt *st, int e)
{
    rt_def *rd = &R->ents[e].def;
    if (rd->d == NULL) {
        failf(R, st->line, "Deferred %s was not created yet", ent_name(R, e));
        R->stop = true;
        return NULL;
    }
    return rd;
}

static int host_op_fail(run *R, const scn_stmt *st, const char *what, int rc)
{
    if (rc == WEFT_ENOMEM)
        R->oom = true; /* the run ends with WEFT_ENOMEM, not a verdict */
    if (rc != WEFT_OK) {
        failf(R, st->line, "%s failed: %s", what, weft_strerror(rc));
        R->stop = true;
    }
    return rc;
}

static void set_host(run *R, int host)
{
    weft_sim_set_current_host(R->sim, host_name(R, host));
}

static void exec_call(run *R, const scn_stmt *st)
{
    void *actx = NULL;
    weft_action_fn fn = weft__registry_action(R->reg, st->proto, &actx);
    if (fn == NULL) {
        failf(R, st->line, "unknown action '%s'", st->proto);
        R->stop = true;
        return;
    }
    weft_arg *argv = weft_calloc(st->argc ? st->argc : 1, sizeof *argv);
    if (argv == NULL) {
        R->oom = true;
        R->stop = true;
        return;
    }
    for (size_t i = 0; i < st->argc; i++) {
        argv[i].kind = st->argv[i].kind;
        argv[i].str = st->argv[i].str;
        argv[i].len = st->argv[i].len;
        argv[i].num = st->argv[i].num;
    }
    weft_world w = {R, st, host_name(R, st->host)};
    set_host(R, st->host);
    weft_deferred *d = NULL;
    char err[256] = "";
    int rc = fn(&w, st->argc, argv, actx, &d, err, sizeof err);
    weft_free(argv);
    if (rc != WEFT_OK || d == NULL) {
        if (d != NULL)
            weft_deferred_unref(d);
        if (rc == WEFT_ENOMEM)
            R->oom = true;
        failf(R, st->line, "action '%s' failed: %s", st->proto,
              err[0] ? err : weft_strerror(rc != WEFT_OK ? rc : WEFT_EINVAL));
        R->stop = true;
        return;
    }
    if (st->subj >= 0) {
        R->ents[st->subj].def.d = d;
        return;
    }
    weft_deferred **na = weft_realloc(R->anon, (R->nanon + 1) * sizeof *na);
    if (na == NULL) {
        weft_deferred_unref(d);
        R->oom = true;
        return;
    }
    R->anon = na;
    R->anon[R->nanon++] = d;
}

static const char *kind_word(scn_kind k)
{
    static const char *const words[] = {
        [SCN_S_SCENARIO] = "scenario", [SCN_S_SEED] = "seed", [SCN_S_JITTER] = "jitter",
        [SCN_S_LIMIT] = "limit", [SCN_S_NETWORK] = "network", [SCN_S_HOST] = "host",
        [SCN_S_LISTEN] = "listen", [SCN_S_CLIENT] = "client", [SCN_S_PEER_CONNECT] = "peer",
        [SCN_S_PEER_LISTEN] = "peer", [SCN_S_SEND] = "send", [SCN_S_CLOSE] = "close",
        [SCN_S_ABORT] = "abort", [SCN_S_SHUTDOWN] = "shutdown",
        [SCN_S_STOP] = "stop", [SCN_S_ADVANCE] = "advance",
        [SCN_S_RUN_UNTIL] = "run-until", [SCN_S_QUIET] = "run-until-quiet",
        [SCN_S_RESET] = "reset", [SCN_S_PARTITION] = "partition", [SCN_S_HEAL] = "heal",
        [SCN_S_STALL] = "stall", [SCN_S_RELEASE] = "release", [SCN_S_CRASH] = "crash",
        [SCN_S_RESTART] = "restart", [SCN_S_DEFERRED] = "deferred", [SCN_S_LIST] = "list",
        [SCN_S_GATHER] = "gather", [SCN_S_LATER] = "later", [SCN_S_ADD_HANDLERS] = "handlers",
        [SCN_S_FIRE] = "fire", [SCN_S_FAIL] = "fail", [SCN_S_CANCEL] = "cancel",
        [SCN_S_PAUSE] = "pause", [SCN_S_UNPAUSE] = "unpause", [SCN_S_TIMEOUT] = "timeout",
        [SCN_S_CALL] = "call", [SCN_S_EXPECT] = "expect", [SCN_S_EXPECT_ORDER] = "expect-order",
    };
    return (size_t)k < sizeof words / sizeof words[0] && words[k] ? words[k] : "?";
}

static void exec_stmt(run *R, const scn_stmt *st)
{
    if (R->stop)
        return;
    if (st->kind <= SCN_S_NETWORK)
        return; /* settings: applied before the run */
    if (st->subj >= 0 || st->kind == SCN_S_HOST)
        weft_sim_trace(R->sim, "scn.line", "%d %s %s", st->line, kind_word(st->kind),
                       st->subj >= 0 ? ent_name(R, st->subj) : host_name(R, st->host));
    else
        weft_sim_trace(R->sim, "scn.line", "%d %s", st->line, kind_word(st->kind));
    char err[256];
    switch (st->kind) {
    case SCN_S_SCENARIO:
    case SCN_S_SEED:
    case SCN_S_JITTER:
    case SCN_S_LIMIT:
    case SCN_S_NETWORK:
        return; /* settings: applied before the run */
    case SCN_S_HOST:
        host_op_fail(R, st, "host", weft_sim_add_host(R->sim, host_name(R, st->host)));
        return;
    case SCN_S_LISTEN: {
        wrapf *wf = make_wrapf(R, st, st->proto, st->args, err, sizeof err);
        if (wf == NULL) {
            failf(R, st->line, "listen %s: %s", st->proto, err);
            R->stop = true;
            return;
        }
        set_host(R, st->host);
        char desc[32];
        snprintf(desc, sizeof desc, "tcp:%u", (unsigned)st->port);
        weft_listener *l = NULL;
        int rc = weft_listen(R->r, desc, &wf->base, &l);
        if (host_op_fail(R, st, "listen", rc) == WEFT_OK && st->subj >= 0)
            R->ents[st->subj].listener = l;
        return;
    }
    case SCN_S_CLIENT: {
        rt_client *cl = weft_calloc(1, sizeof *cl);
        if (cl == NULL) {
            R->oom = true;
            R->stop = true;
            return;
        }
        R->ents[st->subj].client = cl;
        cl->ent = st->subj;
        cl->wf = make_wrapf(R, st, st->proto, st->args, err, sizeof err);
        if (cl->wf == NULL) {
            failf(R, st->line, "client %s: %s", st->proto, err);
            R->stop = true;
            return;
        }
        cl->wf->client = cl;
        cl->ct.state = C_CONNECTING;
        set_host(R, st->host);
        char desc[WEFT_HOST_MAX + 32];
        snprintf(desc, sizeof desc, "tcp:%s:%u", host_name(R, st->host2), (unsigned)st->port);
        int rc = weft_connect_factory(R->r, desc, &cl->wf->base, &cl->connector);
        if (rc != WEFT_OK)
            cl->ct.state = C_IDLE;
        host_op_fail(R, st, "connect", rc);
        return;
    }
    case SCN_S_PEER_CONNECT:
    case SCN_S_PEER_LISTEN: {
        rt_peer *p = weft_calloc(1, sizeof *p);
        if (p == NULL) {
            R->oom = true;
            R->stop = true;
            return;
        }
        R->ents[st->subj].peer = p;
        p->R = R;
        p->ent = st->subj;
        p->factory.build_protocol = peer_build;
        p->factory.connection_failed = peer_failed;
        p->factory.ctx = p;
        set_host(R, st->host);
        int rc;
        if (st->kind == SCN_S_PEER_LISTEN) {
            p->host = st->host;
            p->port = st->port;
            /* A peer already listening on this address (the first declared
             * one still listening, in entity order): join its line. */
            rt_peer *lead = NULL;
            for (size_t e = 0; e < R->sc->nents && lead == NULL; e++) {
                rt_peer *q = R->ents[e].peer;
                if (q != NULL && q != p && q->listening && q->host == p->host && q->port == p->port)
                    lead = q;
            }
            if (lead != NULL) {
                rt_peer *tail = lead;
                while (tail->next_in_line != NULL)
                    tail = tail->next_in_line;
                tail->next_in_line = p;
                p->leader = lead;
                return;
            }
            char desc[32];
            snprintf(desc, sizeof desc, "tcp:%u", (unsigned)st->port);
            p->factory.stop = peer_stop;
            rc = weft_listen(R->r, desc, &p->factory, &p->listener);
            p->listening = rc == WEFT_OK;
            host_op_fail(R, st, "listen", rc);
        } else {
            char desc[WEFT_HOST_MAX + 32];
            snprintf(desc, sizeof desc, "tcp:%s:%u", host_name(R, st->host2), (unsigned)st->port);
            p->ct.state = C_CONNECTING;
            rc = weft_connect_factory(R->r, desc, &p->factory, &p->connector);
            if (rc != WEFT_OK)
                p->ct.state = C_IDLE;
            host_op_fail(R, st, "connect", rc);
        }
        return;
    }
    case SCN_S_SEND: {
        rt_peer *p = R->ents[st->subj].peer;
        if (p == NULL || p->proto == NULL || p->proto->transport == NULL) {
            failf(R, st->line, "%s send: not connected (%s)", ent_name(R, st->subj),
                  p ? state_text(&p->ct) : "not started");
            R->stop = true;
            return;
        }
        int rc = weft_transport_write(p->proto->transport, st->bytes, st->nbytes);
        if (rc == WEFT_ENOMEM)
            R->oom = true;
        if (rc != WEFT_OK) {
            failf(R, st->line, "%s send: %s", ent_name(R, st->subj),
                  rc == WEFT_ECLOSED ? "write after close (WEFT_ECLOSED)" : weft_strerror(rc));
            R->stop = true;
        }
        return;
    }
    case SCN_S_SHUTDOWN: {
        rt_peer *p = R->ents[st->subj].peer;
        weft_transport *t = p && p->proto ? p->proto->transport : NULL;
        if (t == NULL) {
            failf(R, st->line, "%s shutdown: not connected (%s)", ent_name(R, st->subj),
                  p ? state_text(&p->ct) : "not started");
            R->stop = true;
            return;
        }
        /* Again, or after close: a no-op, as on the transport. */
        int rc = weft_transport_lose_write_connection(t);
        if (rc != WEFT_OK) {
            failf(R, st->line, "%s shutdown: %s", ent_name(R, st->subj), weft_strerror(rc));
            R->stop = true;
        }
        return;
    }
    case SCN_S_CLOSE:
    case SCN_S_ABORT: {
        weft_transport *t = NULL;
        const scn_entity *e = &R->sc->ents[st->subj];
        if (e->kind == SCN_ENT_PEER) {
            rt_peer *p = R->ents[st->subj].peer;
            t = p && p->proto ? p->proto->transport : NULL;
        } else {
            rt_client *c = R->ents[st->subj].client;
            t = c && c->px ? c->px->base.transport : NULL;
        }
        if (t == NULL) {
            failf(R, st->line, "%s %s: not connected", e->name,
                  st->kind == SCN_S_CLOSE ? "close" : "abort");
            R->stop = true;
            return;
        }
        int rc = st->kind == SCN_S_CLOSE ? weft_transport_lose_connection(t) : weft_transport_abort(t);
        if (rc != WEFT_OK) {
            failf(R, st->line, "%s %s: %s", e->name, st->kind == SCN_S_CLOSE ? "close" : "abort",
                  weft_strerror(rc));
            R->stop = true;
        }
        return;
    }
    case SCN_S_STOP: {
        weft_listener *l = R->ents[st->subj].listener;
        if (l == NULL) {
            failf(R, st->line, "listener %s is not listening", ent_name(R, st->subj));
            R->stop = true;
            return;
        }
        weft_listener_close(l);
        R->ents[st->subj].listener = NULL;
        return;
    }
    case SCN_S_ADVANCE:
        run_until(R, st, weft_now(R->r) + st->dur_ns, "advancing");
        return;
    case SCN_S_RUN_UNTIL:
        if (st->dur_ns < weft_now(R->r)) {
            char a[32], b[32];
            fmt_time(a, sizeof a, st->dur_ns);
            fmt_time(b, sizeof b, weft_now(R->r));
            failf(R, st->line, "run until %s: the time is already %s", a, b);
            R->stop = true;
            return;
        }
        run_until(R, st, st->dur_ns, "running until a time");
        return;
    case SCN_S_QUIET:
        run_quiet(R, st, "running until quiet");
        return;
    case SCN_S_RESET:
        host_op_fail(R, st, "reset",
                     weft_sim_reset(R->sim, host_name(R, st->host),
                                    st->host2 >= 0 ? host_name(R, st->host2) : NULL));
        return;
    case SCN_S_PARTITION:
        host_op_fail(R, st, "partition",
                     weft_sim_partition(R->sim, host_name(R, st->host), host_name(R, st->host2)));
        return;
    case SCN_S_HEAL:
        host_op_fail(R, st, "heal",
                     weft_sim_heal(R->sim, host_name(R, st->host), host_name(R, st->host2)));
        return;
    case SCN_S_STALL:
        host_op_fail(R, st, "stall",
                     weft_sim_stall(R->sim, host_name(R, st->host), host_name(R, st->host2)));
        return;
    case SCN_S_RELEASE:
        host_op_fail(R, st, "release",
                     weft_sim_release(R->sim, host_name(R, st->host), host_name(R, st->host2)));
        return;
    case SCN_S_CRASH:
        host_op_fail(R, st, "crash", weft_sim_crash(R->sim, host_name(R, st->host)));
        return;
    case SCN_S_RESTART:
        host_op_fail(R, st, "restart", weft_sim_restart(R->sim, host_name(R, st->host)));
        return;
    case SCN_S_DEFERRED:
        R->ents[st->subj].def.d = weft_deferred_new();
        if (R->ents[st->subj].def.d == NULL) {
            R->oom = true;
            R->stop = true;
        }
        return;
    case SCN_S_LIST:
    case SCN_S_GATHER: {
        weft_deferred **m = weft_calloc(st->nmembers ? st->nmembers : 1, sizeof *m);
        if (m == NULL) {
            R->oom = true;
            R->stop = true;
            return;
        }
        for (size_t i = 0; i < st->nmembers; i++) {
            rt_def *rd = need_def(R, st, st->members[i]);
            if (rd == NULL) {
                weft_free(m);
                return;
            }
            m[i] = rd->d;
        }
        weft_deferred *d = st->kind == SCN_S_LIST
                               ? weft_deferred_list(m, st->nmembers, st->flags)
                               : weft_gather(m, st->nmembers,
                                             (st->flags & WEFT_DLIST_CONSUME_ERRORS) != 0);
        weft_free(m);
        if (d == NULL) {
            R->oom = true;
            R->stop = true;
            return;
        }
        R->ents[st->subj].def.d = d;
        return;
    }
    case SCN_S_LATER: {
        hctx *hc = new_hctx(R, st, NULL);
        if (hc == NULL)
            return;
        R->ents[st->subj].def.d = weft_defer_later(R->r, st->dur_ns, later_value, hc);
        if (R->ents[st->subj].def.d == NULL) {
            R->oom = true;
            R->stop = true;
        }
        return;
    }
    case SCN_S_ADD_HANDLERS: {
        rt_def *rd = need_def(R, st, st->subj);
        if (rd == NULL)
            return;
        hctx *cb = st->cb.op == SCN_H_PASS ? NULL : new_hctx(R, st, &st->cb);
        hctx *eb = st->eb.op == SCN_H_PASS ? NULL : new_hctx(R, st, &st->eb);
        if (R->oom)
            return;
        int rc = weft_deferred_add_callbacks(rd->d, cb ? run_handler : NULL, cb,
                                             eb ? run_handler : NULL, eb);
        if (rc != WEFT_OK)
            host_op_fail(R, st, "adding handlers", rc);
        return;
    }
    case SCN_S_FIRE:
    case SCN_S_FAIL: {
        rt_def *rd = need_def(R, st, st->subj);
        if (rd == NULL)
            return;
        int rc = st->kind == SCN_S_FIRE
                     ? weft_deferred_callback(rd->d, encode(&st->value))
                     : weft_deferred_errback(rd->d, weft_failure_new(st->type, "%s", st->msg));
        if (rc == WEFT_EALREADYCALLED)
            failf(R, st->line, "invariant: Deferred %s fired twice (AlreadyCalled)",
                  ent_name(R, st->subj));
        else if (rc != WEFT_OK)
            host_op_fail(R, st, st->kind == SCN_S_FIRE ? "fire" : "fail", rc);
        return;
    }
    case SCN_S_CANCEL:
    case SCN_S_PAUSE:
    case SCN_S_UNPAUSE: {
        rt_def *rd = need_def(R, st, st->subj);
        if (rd == NULL)
            return;
        int rc = st->kind == SCN_S_CANCEL  ? weft_deferred_cancel(rd->d)
                 : st->kind == SCN_S_PAUSE ? weft_deferred_pause(rd->d)
                                           : weft_deferred_unpause(rd->d);
        if (rc == WEFT_ENOTPAUSED) {
            failf(R, st->line, "%s unpause: it is not paused", ent_name(R, st->subj));
            R->stop = true;
        } else if (rc != WEFT_OK)
            host_op_fail(R, st, "cancel/pause", rc);
        return;
    }
    case SCN_S_TIMEOUT: {
        rt_def *rd = need_def(R, st, st->subj);
        if (rd == NULL)
            return;
        host_op_fail(R, st, "timeout", weft_deferred_add_timeout(rd->d, R->r, st->dur_ns, NULL, NULL));
        return;
    }
    case SCN_S_CALL:
        exec_call(R, st);
        return;
    case SCN_S_EXPECT:
        exec_expect(R, st);
        return;
    case SCN_S_EXPECT_ORDER:
        exec_order(R, st);
        return;
    }
}

/* Run a statement now, or schedule it for its `at`/`after` time. */
static void start_stmt(run *R, const scn_stmt *st)
{
    if (st->timing == SCN_T_NOW) {
        exec_stmt(R, st);
        return;
    }
    weft_time_ns now = weft_now(R->r);
    int64_t delay = st->timing == SCN_T_AFTER ? st->time_ns : st->time_ns - now;
    if (delay < 0) {
        char a[32], b[32];
        fmt_time(a, sizeof a, st->time_ns);
        fmt_time(b, sizeof b, now);
        failf(R, st->line, "at %s: that time has passed (it is %s)", a, b);
        R->stop = true;
        return;
    }
    hctx *hc = new_hctx(R, st, NULL);
    if (hc == NULL) {
        R->stop = true;
        return;
    }
    weft_call *c = weft_call_later(R->r, delay, timed_cb, hc);
    if (c == NULL) {
        R->oom = true;
        R->stop = true;
        return;
    }
    weft_call_release(c);
}

/* -------------------------------------------------------- the end */

static void unhandled(const weft_failure *f, void *ctx)
{
    run *R = ctx;
    if (R->tearing_down)
        return;
    if (f->sub != NULL)
        failf(R, 0, "invariant: unhandled Failure in a Deferred: %s [%s: %s]", f->type, f->sub->type,
              f->sub->message ? f->sub->message : "");
    else
        failf(R, 0, "invariant: unhandled Failure in a Deferred: %s: %s", f->type,
              f->message ? f->message : "");
}

static void liveness(run *R)
{
    const weft_scenario *sc = R->sc;
    size_t entity_open = 0;
    for (size_t e = 0; e < sc->nents; e++) {
        const scn_entity *ent = &sc->ents[e];
        ctrack *ct = track_of(R, (int)e);
        if (ct != NULL && ct->state == C_OPEN) {
            entity_open++;
            if (!ct->declared_open)
                failf(R, ent->line,
                      "liveness: %s %s is still connected at the end (close it, or declare it "
                      "with `%s expect open`)",
                      ent->kind == SCN_ENT_PEER ? "peer" : "client", ent->name, ent->name);
        }
        rt_peer *peer = ent->kind == SCN_ENT_PEER ? R->ents[e].peer : NULL;
        if (peer != NULL && peer->len > 0) {
            char a[GOT_MAX / 2];
            render(a, sizeof a, peer->buf, peer->len, 60);
            failf(R, ent->line, "liveness: peer %s received %zu byte(s) no expectation consumed: %s",
                  ent->name, peer->len, a);
        }
        if (ent->kind == SCN_ENT_DEFERRED && R->ents[e].def.d != NULL) {
            rt_def *rd = &R->ents[e].def;
            weft_result res;
            weft_deferred_state ds = weft_deferred_peek(rd->d, &res);
            if (ds == WEFT_DEFERRED_PENDING && !rd->allow_pending)
                failf(R, ent->line,
                      "liveness: Deferred %s is still pending at the end (declare it with "
                      "`%s expect pending`)",
                      ent->name, ent->name);
            if (ds == WEFT_DEFERRED_FAILED && !rd->observed)
                failf(R, ent->line, "invariant: Deferred %s ended with an unhandled Failure %s: %s",
                      ent->name, res.failure->type, res.failure->message ? res.failure->message : "");
        }
    }
    for (size_t i = 0; i < R->nanon; i++) {
        weft_result res;
        weft_deferred_state ds = weft_deferred_peek(R->anon[i], &res);
        if (ds == WEFT_DEFERRED_PENDING)
            failf(R, 0, "liveness: a Deferred returned by an unnamed call is still pending at the end");
        else if (ds == WEFT_DEFERRED_FAILED)
            failf(R, 0, "invariant: a Deferred returned by an unnamed call ended with an unhandled "
                        "Failure %s: %s",
                  res.failure->type, res.failure->message ? res.failure->message : "");
    }
    size_t open = weft_sim_open_connections(R->sim);
    if (open > entity_open)
        failf(R, 0,
              "liveness: %zu connection(s) of the code under test still open at the end",
              open - entity_open);
}

/* Cancel what is still pending (which also stops the timers of `later` and
 * `timeout`), take the Failures out of the scenario's Deferreds (they were
 * reported, or expected), then drop the references. */
static void release_deferreds(run *R)
{
    for (size_t e = 0; e < R->sc->nents; e++) {
        weft_deferred *d = R->ents[e].def.d;
        if (d != NULL && weft_deferred_peek(d, NULL) == WEFT_DEFERRED_PENDING)
            weft_deferred_cancel(d);
    }
    for (size_t i = 0; i < R->nanon; i++)
        if (weft_deferred_peek(R->anon[i], NULL) == WEFT_DEFERRED_PENDING)
            weft_deferred_cancel(R->anon[i]);
    for (size_t e = 0; e < R->sc->nents; e++) {
        weft_deferred *d = R->ents[e].def.d;
        if (d == NULL)
            continue;
        weft_result res;
        if (weft_deferred_peek(d, &res) == WEFT_DEFERRED_FAILED &&
            weft_deferred_take_result(d, &res) == WEFT_OK && res.kind == WEFT_RESULT_FAILURE)
            weft_failure_free(res.failure);
        weft_deferred_unref(d);
        R->ents[e].def.d = NULL;
    }
    for (size_t i = 0; i < R->nanon; i++) {
        weft_result res;
        if (weft_deferred_peek(R->anon[i], &res) == WEFT_DEFERRED_FAILED &&
            weft_deferred_take_result(R->anon[i], &res) == WEFT_OK &&
            res.kind == WEFT_RESULT_FAILURE)
            weft_failure_free(res.failure);
        weft_deferred_unref(R->anon[i]);
    }
    weft_free(R->anon);
    R->anon = NULL;
    R->nanon = 0;
}

void weft_run_options_init(weft_run_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

void weft_run_result_clear(weft_run_result *r)
{
    if (r == NULL)
        return;
    weft_free(r->verdict);
    for (size_t i = 0; i < r->nfailures; i++)
        weft_free(r->failures[i]);
    weft_free(r->failures);
    weft_free(r->trace_text);
    weft_free(r->choices);
    weft_free(r->choice_bounds);
    memset(r, 0, sizeof *r);
}

static void fill_result(run *R, weft_run_result *out, bool keep_trace)
{
    out->elapsed_ns = weft_now(R->r);
    out->events = weft_sim_events(R->sim);
    out->trace_hash = weft_sim_trace_hash(R->sim);
    if (keep_trace) {
        size_t len = 0;
        const char *text = weft_sim_trace_text(R->sim, &len);
        out->trace_text = weft_malloc(len + 1);
        if (out->trace_text != NULL) {
            if (len > 0)
                memcpy(out->trace_text, text, len);
            for (size_t i = 0; i < len; i++)
                if (out->trace_text[i] == '\0')
                    out->trace_text[i] = '\n';
            out->trace_text[len] = '\0';
            out->trace_len = len;
        } else
            R->oom = true;
    }
    const uint32_t *values = NULL, *bounds = NULL;
    size_t n = weft_choice_recorded(weft_sim_choices(R->sim), &values, &bounds);
    if (n > 0) {
        out->choices = weft_malloc(n * sizeof *out->choices);
        out->choice_bounds = weft_malloc(n * sizeof *out->choice_bounds);
        if (out->choices == NULL || out->choice_bounds == NULL) {
            weft_free(out->choices);
            weft_free(out->choice_bounds);
            out->choices = out->choice_bounds = NULL;
            R->oom = true;
        } else {
            memcpy(out->choices, values, n * sizeof *values);
            if (bounds != NULL)
                memcpy(out->choice_bounds, bounds, n * sizeof *bounds);
            else
                memset(out->choice_bounds, 0, n * sizeof *bounds);
            out->nchoices = n;
        }
    }
}

static void teardown(run *R)
{
    R->tearing_down = true;
    release_deferreds(R);
    weft_sim_free(R->sim); /* protocols see connection_lost and destroy */
    R->sim = NULL;
    weft_set_unhandled_handler(NULL, NULL);
    while (R->wfs != NULL) {
        wrapf *wf = R->wfs;
        R->wfs = wf->next;
        if (wf->connect_d != NULL)
            weft_deferred_unref(wf->connect_d);
        if (wf->owner.destroy != NULL)
            wf->owner.destroy(wf->inner, wf->owner.ctx);
        weft_free(wf);
    }
    for (size_t e = 0; R->ents != NULL && e < R->sc->nents; e++) {
        if (R->ents[e].peer != NULL) {
            weft_free(R->ents[e].peer->buf);
            weft_free(R->ents[e].peer);
        }
        weft_free(R->ents[e].client);
    }
    weft_free(R->ents);
    while (R->hcs != NULL) {
        hctx *hc = R->hcs;
        R->hcs = hc->next;
        weft_free(hc);
    }
    weft_free(R->order);
}

int weft_scenario_run(const weft_scenario *sc, const weft_registry *reg,
                      const weft_run_options *opt, weft_run_result *out)
{
    weft_run_options defaults;
    if (opt == NULL) {
        weft_run_options_init(&defaults);
        opt = &defaults;
    }
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (sc == NULL || reg == NULL || out == NULL) {
        weft_choice_free(opt->choices);
        return WEFT_EINVAL;
    }
    if (weft_scenario_check(sc, reg, NULL) != WEFT_OK) {
        weft_choice_free(opt->choices);
        return WEFT_ENOTFOUND;
    }
    run R;
    memset(&R, 0, sizeof R);
    R.sc = sc;
    R.reg = reg;
    out->seed = opt->use_seed ? opt->seed : sc->seed;
    weft_choice *choices = opt->choices ? opt->choices : weft_choice_seeded(out->seed);
    if (choices == NULL) {
        out->seed = 0;
        return WEFT_ENOMEM;
    }
    weft_choice_record(choices, true);

    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    int64_t default_connect = cfg.net.connect_timeout_ns;
    cfg.net = sc->net;
    if (cfg.net.connect_timeout_ns == 0)
        cfg.net.connect_timeout_ns = default_connect;
    cfg.jitter_ns = sc->jitter_ns;
    R.max_events = opt->max_events ? opt->max_events
                   : sc->max_events ? sc->max_events
                                    : WEFT_SCENARIO_DEFAULT_MAX_EVENTS;
    R.max_time_ns = opt->max_time_ns ? opt->max_time_ns
                    : sc->max_time_ns ? sc->max_time_ns
                                      : WEFT_SCENARIO_DEFAULT_MAX_TIME_NS;
    cfg.max_events = R.max_events;
    cfg.max_time_ns = R.max_time_ns;
    cfg.trace_sink = opt->sink;
    cfg.trace_ctx = opt->sink_ctx;
    cfg.keep_lines = opt->keep_trace;
    R.sim = weft_sim_new(&cfg, choices); /* frees choices on failure */
    if (R.sim == NULL) {
        out->seed = 0;
        return WEFT_ENOMEM;
    }
    R.r = weft_sim_reactor(R.sim);
    R.ents = weft_calloc(sc->nents ? sc->nents : 1, sizeof *R.ents);
    if (R.ents == NULL) {
        weft_sim_free(R.sim);
        out->seed = 0;
        return WEFT_ENOMEM;
    }
    weft_set_unhandled_handler(unhandled, &R);
    /* Not the seed: a replay of the recorded choices must hash the same. */
    weft_sim_trace(R.sim, "scn.start", "%s", sc->name);

    for (size_t i = 0; i < sc->nstmts && !R.stop && !R.oom; i++)
        start_stmt(&R, &sc->stmts[i]);
    if (!R.stop && !R.oom)
        run_quiet(&R, NULL, "running until quiet at the end");
    if (!R.stop && !R.oom)
        liveness(&R);
    weft_sim_trace(R.sim, "scn.end", "%s", R.nfailures ? "failed" : "passed");
    fill_result(&R, out, opt->keep_trace);
    teardown(&R);

    if (R.oom) {
        for (size_t i = 0; i < R.nfailures; i++)
            weft_free(R.failures[i]);
        weft_free(R.failures);
        weft_run_result_clear(out);
        return WEFT_ENOMEM;
    }
    out->failures = R.failures;
    out->nfailures = R.nfailures;
    out->passed = R.nfailures == 0;
    out->verdict = weft_strdup(out->passed ? "passed" : R.failures[0]);
    if (out->verdict == NULL) {
        weft_run_result_clear(out);
        return WEFT_ENOMEM;
    }
    return WEFT_OK;
}
