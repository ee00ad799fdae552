/* weft/reactor.h: the reactor interface all protocol code is written against.
 *
 * A reactor is a const table of operations (weft_reactor_ops) plus state. Two
 * backends implement it: the simulator (weft/sim.h) and the real epoll backend
 * (weft_reactor_new_epoll). Protocol code includes only this header and
 * weft/defer.h, so one object file runs on both.
 *
 * Everything here is single-threaded: a reactor and everything attached to it
 * is used from one thread.
 *
 * The contract of every asynchronous call: if it returns an error, its
 * callback never runs; if it returns WEFT_OK, the callback runs exactly once
 * (or never, if it is cancelled first).
 */
#ifndef WEFT_REACTOR_H
#define WEFT_REACTOR_H

#include <stdint.h>

#include "weft/core.h"
#include "weft/defer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_reactor weft_reactor;
typedef struct weft_call weft_call;
typedef struct weft_transport weft_transport;
typedef struct weft_protocol weft_protocol;
typedef struct weft_factory weft_factory;
typedef struct weft_listener weft_listener;
typedef struct weft_connector weft_connector;

typedef void (*weft_call_fn)(void *ctx);

/* ------------------------------------------------------------- Time */

weft_time_ns weft_now(weft_reactor *r);

/* ------------------------------------------------------ Delayed calls
 *
 * weft_call_later returns a handle the caller owns: release it with
 * weft_call_release() when you no longer need it (before or after the call
 * ran; releasing does not cancel). The reactor keeps the call itself alive
 * until it runs or is cancelled. NULL: out of memory or delay_ns < 0
 * (a negative delay is refused, as on Twisted's real reactor), or the
 * reactor is being freed. Every handle, released or not, is invalid after
 * weft_reactor_free: do not cancel, query or release it then.
 *
 * Due calls run in (time, sequence) order; on the simulator, calls due at the
 * same instant are concurrent and their order is a choice (weft/sim.h). A call
 * scheduled while calls are running never runs in the same pass, even with
 * delay 0: it waits for the next one. */
weft_call *weft_call_later(weft_reactor *r, int64_t delay_ns, weft_call_fn fn, void *ctx);
/* weft_call_later with a name for the call: label is a static string (kept,
 * not copied), e.g. "retry.backoff". The simulator traces the call's event
 * under it ("event retry.backoff ...") and weft_sim_hottest_event names it in
 * runaway verdicts; the epoll backend ignores it. NULL: "call", as
 * weft_call_later. The library's helpers name theirs: "later.defer"
 * (weft_defer_later), "later.timeout" (weft_deferred_add_timeout) and
 * "looping.run" (looping calls). */
weft_call *weft_call_later_labelled(weft_reactor *r, int64_t delay_ns, const char *label,
                                    weft_call_fn fn, void *ctx);
/* Fire-and-forget: schedule fn with delay 0 and no handle. */
int weft_call_soon(weft_reactor *r, weft_call_fn fn, void *ctx);

/* WEFT_EALREADYCALLED if it ran, WEFT_EALREADYCANCELLED if it was cancelled. */
int weft_call_cancel(weft_call *c);
/* Twisted's reset(s): due s from now. Same errors as cancel. */
int weft_call_reset(weft_call *c, int64_t delay_ns);
/* Twisted's delay(s): postpone by s (negative: sooner). Same errors. */
int weft_call_delay(weft_call *c, int64_t delay_ns);
bool weft_call_active(const weft_call *c);
/* When it is (or was last) due. */
weft_time_ns weft_call_time(const weft_call *c);
void weft_call_release(weft_call *c);

/* -------------------------------------------------------- Run, stop */

/* Run until weft_reactor_stop() is called or nothing is left to do (no pending
 * call, no open connection or listener). WEFT_OK then. Runs never nest: from
 * inside a run (or, on the simulator, inside any of its events) it returns
 * WEFT_ESTATE at once. */
int weft_reactor_run(weft_reactor *r);
/* Ask the active weft_reactor_run or weft_reactor_run_until to return once
 * the callback that asked has returned: run returns WEFT_OK, run_until
 * WEFT_ESTATE (it did not reach its condition). The stop is consumed by the
 * run it ended: the next run starts afresh. Outside a run it does nothing
 * (it is not remembered). Same on every backend. */
void weft_reactor_stop(weft_reactor *r);
/* Run until cond(ctx) returns true, or the reactor's clock reaches deadline
 * (absolute), or nothing is left to do, or weft_reactor_stop. Returns WEFT_OK
 * when cond became true, WEFT_ETIMEDOUT at the deadline, WEFT_ESTATE when idle
 * first or stopped. cond may be NULL (run to the deadline). */
int weft_reactor_run_until(weft_reactor *r, bool (*cond)(void *ctx), void *ctx,
                           weft_time_ns deadline);
/* Free the reactor: closes what is open (protocols see connection_lost with
 * ConnectionAborted), drops pending calls without running them. What the
 * library's own helpers had pending is released, not leaked: a pending
 * weft_defer_later's Deferred and a Deferred with a pending
 * weft_deferred_add_timeout deadline are cancelled (they fail with
 * Cancelled; on_timeout does not run), and a looping call waiting for its
 * next run stops (done fires; free it with weft_looping_call_free, the only
 * call it takes afterwards). Their handlers run during the free; delayed
 * calls they ask for are refused (NULL). Call handles are invalid
 * afterwards. Not from inside one of the reactor's callbacks. */
void weft_reactor_free(weft_reactor *r);
const char *weft_reactor_name(const weft_reactor *r);

/* ----------------------------------------------- Built on the interface */

/* LoopingCall. fn returns NULL when it finished synchronously, or a Deferred
 * (its reference handed over) to make the loop wait for it; a Failure from that
 * Deferred stops the loop and fails the loop's Deferred.
 *
 * Schedule (Twisted's): runs are due at start + k * interval. After a run (or
 * after fn's Deferred fired) the next one is due at the next multiple after
 * now; exactly on a multiple is "now", so it is a whole interval later.
 * Missed multiples are not replayed: fn's intervals_elapsed is the number of
 * whole intervals since its previous run (1 when on time; with now = true the
 * start counts as one interval before the first run), and the excess is
 * added to weft_looping_call_skipped. Interval 0 runs again on the next
 * reactor pass, always with 1. Integer nanoseconds: no float guard. */
typedef struct weft_looping_call weft_looping_call;
typedef weft_deferred *(*weft_looping_fn)(void *ctx, uint64_t intervals_elapsed);

/* NULL: out of memory, or r or fn NULL. fn and ctx are borrowed. */
weft_looping_call *weft_looping_call_new(weft_reactor *r, weft_looping_fn fn, void *ctx);
/* Start with the given interval (>= 0, else WEFT_EINVAL). *done (caller's
 * reference; done may be NULL) fires with the looping call as its value
 * when stopped, or fails with fn's Failure. now: run fn immediately, inside
 * start. WEFT_ESTATE if running, or if stopped while a run (fn, or its
 * Deferred) has not finished yet: done fires when it does. Start again from
 * done's handlers is fine. On error *done is NULL and fn never runs. */
int weft_looping_call_start(weft_looping_call *lc, int64_t interval_ns, bool now,
                            weft_deferred **done);
/* Stop. Between runs done fires now; from inside fn or while fn's Deferred
 * is pending, once that run finishes (a failure then still fails done).
 * WEFT_ESTATE if not running. */
int weft_looping_call_stop(weft_looping_call *lc);
/* Cancel the scheduled run and count intervals from now (start time := now).
 * WEFT_ESTATE if not running; no effect inside fn or while waiting.
 * WEFT_ENOMEM: the loop stopped and done failed. */
int weft_looping_call_reset(weft_looping_call *lc);
bool weft_looping_call_running(const weft_looping_call *lc);
/* Total intervals skipped (clock jumped past them) since start. */
uint64_t weft_looping_call_skipped(const weft_looping_call *lc);
/* Stops it if running (done fires with lc, which must then not be
 * dereferenced) and frees it. If fn's Deferred is pending, it is cancelled
 * (done fails with what that produces, normally Cancelled) and the memory
 * goes once it has fired. Safe from inside fn and from done's handlers. */
void weft_looping_call_free(weft_looping_call *lc);

/* deferLater: a Deferred (caller's reference) that fires after delay_ns with
 * fn(ctx)'s result (fn may be NULL: value NULL). fn runs as the Deferred's
 * first callback, so it may return a value, a Failure or weft_chain(d).
 * Cancelling it removes the timer and fails it with Cancelled. NULL: out of
 * memory, r NULL or delay_ns < 0. The timer holds its own reference, so the
 * caller may drop theirs. Freeing the reactor with the timer pending drops
 * the timer and releases its record and reference (the Deferred fails with
 * Cancelled if nothing else holds it back). */
typedef weft_result (*weft_later_fn)(void *ctx);
weft_deferred *weft_defer_later(weft_reactor *r, int64_t delay_ns, weft_later_fn fn, void *ctx);

/* addTimeout: at now + timeout_ns (exactly), cancel d; a Cancelled Failure
 * caused by the timeout becomes a Timeout Failure, or whatever on_timeout
 * returns (called with the result, which it borrows as a handler does; it
 * also sees a value if d's canceller called back). Covers the handlers added
 * before this call; the timer is cancelled when d fires first. A manual
 * cancel before the deadline stays Cancelled. Takes no reference from the
 * caller (the timer holds its own). WEFT_EINVAL: d or r NULL, timeout_ns < 0;
 * WEFT_ENOMEM leaves d unchanged. */
int weft_deferred_add_timeout(weft_deferred *d, weft_reactor *r, int64_t timeout_ns,
                              weft_handler_fn on_timeout, void *ctx);

/* ------------------------------------------------- Addresses, reasons */

#define WEFT_HOST_MAX 64

typedef struct weft_address {
    char host[WEFT_HOST_MAX]; /* a simulated host name or a numeric IP */
    uint16_t port;
} weft_address;

/* Failure types of connection_lost / connection_failed reasons. */
#define WEFT_REASON_DONE "ConnectionDone"       /* clean close */
#define WEFT_REASON_LOST "ConnectionLost"       /* unclean: reset by peer, crash */
#define WEFT_REASON_ABORTED "ConnectionAborted" /* this side called abort */
#define WEFT_REASON_REFUSED "ConnectionRefused"
#define WEFT_REASON_TIMED_OUT "ConnectTimedOut"  /* connect or idle timeout */
#define WEFT_REASON_UNREACHABLE "HostUnreachable"
#define WEFT_REASON_NO_PROTOCOL "NoProtocol"     /* build_protocol returned NULL */
#define WEFT_REASON_CONNECT_CANCELLED "ConnectingCancelled"
#define WEFT_REASON_LINE_TOO_LONG "LineTooLong"
#define WEFT_REASON_FRAME_TOO_LONG "FrameTooLong"
#define WEFT_REASON_BAD_FRAME "BadFrame"

/* ------------------------------------------------------------ Protocol
 *
 * A protocol is the user's struct with a weft_protocol as its first member.
 * The reactor calls, in order: connection_made once, data_received any number
 * of times (bytes in arbitrary chunks), read_connection_lost at most once
 * (only for half-close-aware protocols), then connection_lost once with the
 * reason (borrowed for the call), then destroy once, after which the reactor
 * never touches the protocol again.
 *
 * Required: data_received and connection_lost. Optional (NULL: skipped):
 * connection_made, read_connection_lost, write_connection_lost, destroy. Both
 * backends (the simulator's network and epoll) skip every NULL operation, the
 * required ones too (bytes for a protocol without data_received are
 * dropped), so a partial table never crashes a run. */
typedef struct weft_protocol_ops {
    void (*connection_made)(weft_protocol *p);
    void (*data_received)(weft_protocol *p, const uint8_t *data, size_t len);
    void (*connection_lost)(weft_protocol *p, const weft_failure *reason);
    /* Optional. Set it to be half-close aware: the peer closed its write side;
     * this side may still write, then calls weft_transport_lose_connection. */
    void (*read_connection_lost)(weft_protocol *p);
    /* Optional: our weft_transport_lose_write_connection completed. */
    void (*write_connection_lost)(weft_protocol *p);
    void (*destroy)(weft_protocol *p);
} weft_protocol_ops;

struct weft_protocol {
    const weft_protocol_ops *ops;
    weft_transport *transport; /* set before connection_made, NULL after lost */
    weft_factory *factory;     /* the factory that built it */
    weft_reactor *reactor;
};

/* ------------------------------------------------------------- Factory */

struct weft_factory {
    /* Build a protocol for a new connection to/from addr (the peer), or
     * return NULL to refuse it. The reactor fills in transport, factory and
     * reactor. Required. */
    weft_protocol *(*build_protocol)(weft_factory *f, const weft_address *peer);
    /* Optional: first listener/connector started / last one stopped. */
    void (*start)(weft_factory *f);
    void (*stop)(weft_factory *f);
    /* Client factories, optional: connecting failed / an established
     * connection ended. reason is borrowed. The connector may be reconnected
     * from here with weft_connector_connect. */
    void (*connection_failed)(weft_factory *f, weft_connector *c, const weft_failure *reason);
    void (*connection_lost)(weft_factory *f, weft_connector *c, const weft_failure *reason);
    void *ctx; /* the user's */
    /* Library use. */
    unsigned ports_;
};

/* ----------------------------------------------------------- Transport */

typedef struct weft_iovec {
    const void *base;
    size_t len;
} weft_iovec;

/* A push producer: a writer that the transport pauses when its buffer passes
 * the high-water mark and resumes below the low-water mark. */
typedef struct weft_producer {
    void (*pause)(void *ctx);
    void (*resume)(void *ctx);
    void (*stop)(void *ctx); /* the connection is gone */
    void *ctx;
} weft_producer;

typedef struct weft_transport_ops {
    int (*write)(weft_transport *t, const void *data, size_t len);
    int (*writev)(weft_transport *t, const weft_iovec *iov, size_t n);
    int (*lose_connection)(weft_transport *t);
    int (*abort)(weft_transport *t);
    int (*lose_write_connection)(weft_transport *t);
    int (*pause_reading)(weft_transport *t);
    int (*resume_reading)(weft_transport *t);
    int (*register_producer)(weft_transport *t, const weft_producer *p);
    int (*unregister_producer)(weft_transport *t);
    const weft_address *(*peer)(weft_transport *t);
    const weft_address *(*host)(weft_transport *t);
    size_t (*buffered)(weft_transport *t); /* bytes written, not yet sent */
    /* Optional (NULL: never disconnecting), Twisted's transport.disconnecting:
     * true once this side called lose_connection or abort, and during
     * connection_lost. lose_write_connection alone does not set it. */
    bool (*disconnecting)(weft_transport *t);
} weft_transport_ops;

struct weft_transport {
    const weft_transport_ops *ops;
};

/* Default limits of a transport's write buffer. */
#define WEFT_TRANSPORT_HIGH_WATER (64u * 1024u)
#define WEFT_TRANSPORT_LOW_WATER (16u * 1024u)
#define WEFT_TRANSPORT_BUFFER_MAX (16u * 1024u * 1024u)

/* Write: data is copied. Empty writes do nothing. After lose_connection,
 * abort or lose_write_connection: WEFT_ECLOSED (the write is dropped and the
 * caller told). Past WEFT_TRANSPORT_BUFFER_MAX: WEFT_ENOBUFS. */
static inline int weft_transport_write(weft_transport *t, const void *data, size_t len)
{
    return t->ops->write(t, data, len);
}
static inline int weft_transport_writev(weft_transport *t, const weft_iovec *iov, size_t n)
{
    return t->ops->writev(t, iov, n);
}
/* Close after the buffer drains; the peer sees ConnectionDone. */
static inline int weft_transport_lose_connection(weft_transport *t)
{
    return t->ops->lose_connection(t);
}
/* Close now, dropping the buffer; this side sees ConnectionAborted (one turn
 * later), the peer ConnectionLost. */
static inline int weft_transport_abort(weft_transport *t)
{
    return t->ops->abort(t);
}
static inline int weft_transport_lose_write_connection(weft_transport *t)
{
    return t->ops->lose_write_connection(t);
}
static inline int weft_transport_pause_reading(weft_transport *t)
{
    return t->ops->pause_reading(t);
}
static inline int weft_transport_resume_reading(weft_transport *t)
{
    return t->ops->resume_reading(t);
}
/* One producer at a time (WEFT_ESTATE for a second one). */
static inline int weft_transport_register_producer(weft_transport *t, const weft_producer *p)
{
    return t->ops->register_producer(t, p);
}
static inline int weft_transport_unregister_producer(weft_transport *t)
{
    return t->ops->unregister_producer(t);
}
static inline const weft_address *weft_transport_peer(weft_transport *t)
{
    return t->ops->peer(t);
}
static inline const weft_address *weft_transport_host(weft_transport *t)
{
    return t->ops->host(t);
}
static inline size_t weft_transport_buffered(weft_transport *t)
{
    return t->ops->buffered(t);
}
/* The connection is going away (see weft_transport_ops.disconnecting): a
 * protocol may stop processing what it has already received, as Twisted's
 * LineReceiver does. false for a transport without the operation. */
static inline bool weft_transport_disconnecting(weft_transport *t)
{
    return t->ops->disconnecting != NULL && t->ops->disconnecting(t);
}

/* ----------------------------------------------------------- Endpoints
 *
 * Server: "tcp:PORT" or "tcp:port=PORT[:interface=HOST]".
 * Client: "tcp:HOST:PORT" or "tcp:host=HOST:port=PORT[:timeout=SECONDS]".
 * Backslash escapes the next character. The prefix is case-insensitive. */
typedef struct weft_endpoint {
    char host[WEFT_HOST_MAX]; /* server: interface ("" = any) */
    uint16_t port;
    int64_t timeout_ns; /* client connect timeout (default 30 s) */
} weft_endpoint;

/* Parse a description. On error returns WEFT_EENDPOINT and writes a message
 * naming the problem and its position into err (if errlen > 0), e.g.
 * "tcp:99999: port out of range at column 5" (columns count bytes from 1; a
 * description over 48 bytes is quoted shortened). NULL desc or out:
 * WEFT_EINVAL. *out is written only on success; nothing is allocated.
 * Arguments may be positional or keywords, in any order; a client's two
 * positional arguments are host and port. Ports are decimal, 0-65535 (a
 * server may use 0, a client may not). Host names are 1-63 bytes without
 * spaces or control characters (a server's interface may be empty: any).
 * timeout is decimal seconds with up to 9 fractional digits, > 0, converted
 * exactly to nanoseconds. Unknown keywords, repeats and extra arguments are
 * errors. */
int weft_endpoint_parse_server(const char *desc, weft_endpoint *out, char *err, size_t errlen);
int weft_endpoint_parse_client(const char *desc, weft_endpoint *out, char *err, size_t errlen);

/* Listen: *out (may be NULL) is a handle owned by the reactor until
 * weft_listener_close(); the handle is invalid after that call (and after
 * weft_reactor_free). The factory must outlive the listener. */
int weft_listen(weft_reactor *r, const char *desc, weft_factory *f, weft_listener **out);
void weft_listener_close(weft_listener *l);
const weft_address *weft_listener_address(const weft_listener *l);

/* Connect with a factory: *out is a connector owned by the reactor (valid
 * until weft_connector_free or the reactor is freed). The factory's
 * connection_failed / connection_lost hooks drive retries. */
int weft_connect_factory(weft_reactor *r, const char *desc, weft_factory *f,
                         weft_connector **out);
int weft_connector_connect(weft_connector *c); /* (re)connect */
void weft_connector_stop(weft_connector *c);   /* stop a connect in progress */
void weft_connector_free(weft_connector *c);
weft_factory *weft_connector_factory(weft_connector *c);

/* Connect, Twisted-endpoint style: *out (caller's reference; out required)
 * fires with the connected weft_protocol * once connection_made has run, or
 * fails with the connect Failure (ConnectionRefused, ConnectTimedOut,
 * HostUnreachable...), with NoProtocol when f->build_protocol returns NULL,
 * or with ConnectionAborted if the reactor is freed first. Cancelling it
 * before then fails it with ConnectingCancelled and stops the attempt. The
 * protocol sees p->factory == f. f's connection_failed / connection_lost
 * hooks are not called (the Deferred and the protocol report instead); its
 * start and stop are. f must outlive the connection. The connector is
 * internal and freed when the attempt or the connection ends.
 *
 * The weft_protocol * it fires with is borrowed, not owned: the Deferred
 * holds no claim on the protocol. It is valid while the connection lives,
 * up to the end of the protocol's connection_lost; destroy, which runs right
 * after, usually frees it, and its transport is NULL from then on. A user who
 * keeps the pointer (say in a client struct) must clear it in the protocol's
 * connection_lost, and a Deferred whose result is read only later (after the
 * connection ended, or after weft_reactor_free) hands over a dangling
 * pointer.
 *
 * Errors: WEFT_EINVAL, WEFT_EENDPOINT (parse the description with
 * weft_endpoint_parse_client for the message), WEFT_ENOMEM; then *out is
 * NULL and nothing runs. */
int weft_connect(weft_reactor *r, const char *desc, weft_factory *f, weft_deferred **out);

/* ------------------------------------------- Reconnecting client factory
 *
 * Twisted's ReconnectingClientFactory around an inner factory. Delays grow as
 * min(delay * factor, max_delay), then jitter: on the simulator the jitter is
 * drawn from the choice source (one draw in [0, 256) labelled
 * "reconnect.jitter", mapped to a tabulated normal quantile; 0 means no
 * jitter; see reactor/reconnect.c and docs/reactor.md). The first retry
 * waits initial_delay * factor; with max_retries = n, n retries are
 * scheduled and failure n + 1 gives up. Delays are integer nanoseconds, each
 * step rounded to the nearest nanosecond.
 *
 * The struct is the caller's (embed it or allocate it); the library keeps
 * no pointer to it beyond the connector's factory and the pending call.
 * build_protocol, start and stop are forwarded to inner; its
 * connection_failed / connection_lost hooks (optional) are called before
 * the retry is scheduled, and may call weft_reconnecting_stop_trying. A
 * protocol built through it sees p->factory == &rc->factory, so it can call
 * weft_reconnecting_reset_delay((weft_reconnecting *)p->factory). */
typedef struct weft_reconnecting {
    weft_factory factory; /* first member; pass &rc->factory to connect */
    weft_factory *inner;
    weft_reactor *reactor;
    int64_t initial_delay_ns; /* default 1 s */
    double factor;            /* default e */
    double jitter;            /* default 0.119626565582 (0: none) */
    int64_t max_delay_ns;     /* default 3600 s */
    long max_retries;         /* -1: unlimited (default) */
    /* State. delay_ns starts at initial_delay_ns: after changing
     * initial_delay_ns, call reset_delay (or set delay_ns too). */
    int64_t delay_ns;
    long retries;
    bool continue_trying;
    weft_call *pending;        /* the scheduled retry (ours) */
    weft_connector *connector; /* learnt from the hooks, or set by _connect */
} weft_reconnecting;

/* Initialise with Twisted's defaults. rc NULL: nothing. inner (required for
 * connecting) and r are borrowed and must outlive rc's use. */
void weft_reconnecting_init(weft_reconnecting *rc, weft_reactor *r, weft_factory *inner);
/* weft_connect_factory(r, desc, &rc->factory, out) that also records the
 * connector in rc, so stop_trying can stop the very first attempt. *out
 * (may be NULL) is owned as weft_connect_factory says. */
int weft_reconnecting_connect(weft_reconnecting *rc, const char *desc, weft_connector **out);
/* Call after a successful connection (e.g. from connection_made): delay back
 * to initial, retries 0, trying again. A retry already scheduled stays
 * scheduled (and cancellable by stop_trying). */
void weft_reconnecting_reset_delay(weft_reconnecting *rc);
/* Cancel the scheduled retry, stop trying, and stop a connect in progress
 * (it fails with ConnectingCancelled, without a retry). Call it before
 * freeing the reactor or rc, so that no pending call is left holding rc. */
void weft_reconnecting_stop_trying(weft_reconnecting *rc);

/* ------------------------------------------------------- Backends */

/* The operations a backend implements. Internal to backends; protocol code
 * uses the functions above. */
typedef struct weft_reactor_ops {
    const char *name;
    weft_time_ns (*now)(weft_reactor *r);
    /* Draw a random number in [0, n) for library helpers (reconnect jitter):
     * the simulator asks its choice source, the real reactor its own PRNG. */
    uint32_t (*random)(weft_reactor *r, uint32_t n, const char *label);
    int (*run)(weft_reactor *r);
    void (*stop)(weft_reactor *r);
    int (*run_until)(weft_reactor *r, bool (*cond)(void *), void *ctx, weft_time_ns deadline);
    int (*listen)(weft_reactor *r, const weft_endpoint *ep, weft_factory *f, weft_listener **out);
    int (*connect)(weft_reactor *r, const weft_endpoint *ep, weft_factory *f, weft_connector **out);
    void (*free)(weft_reactor *r);
} weft_reactor_ops;

/* The real reactor: epoll and TCP sockets on this machine. NULL on failure. */
weft_reactor *weft_reactor_new_epoll(void);

/* A number in [0, n) (0 when n <= 1). label names the decision and must be a
 * static string (the simulator keeps it in its choice record and memoises its
 * hash by address); NULL: "random". */
uint32_t weft_reactor_random(weft_reactor *r, uint32_t n, const char *label);

#ifdef __cplusplus
}
#endif
#endif
