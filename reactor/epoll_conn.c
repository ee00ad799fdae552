/* epoll_conn.c: connections of the real reactor: the transport operations
 * on a connected, non-blocking TCP socket, and how a connection ends.
 *
 * A connection owns its socket, its protocol and a write buffer (one byte
 * array with a read head; bytes are copied in by write and sent from the loop,
 * at most WEFT__EP_SEND_BYTES_MAX per send()). A write never sends at once:
 * it queues the connection on the reactor's pending list and the loop flushes
 * it after the turn's I/O and timers; only when the kernel pushes back
 * (EAGAIN) does the connection wait for EPOLLOUT. The events a connection is
 * registered for are always derived from its state by conn_want(), after
 * every change.
 *
 * The end of a connection is reported exactly once, by conn_report(), always
 * from the loop (never from inside a transport operation): producer stop,
 * protocol connection_lost, destroy, then the client factory's
 * connection_lost hook. Reasons: ConnectionDone for a clean close by either
 * side, ConnectionLost for a reset or any socket error, ConnectionAborted
 * when this side aborted (the peer then sees a reset: SO_LINGER 0). A
 * connection whose protocol is gone but whose written bytes still drain (an
 * "orphan", after an unaware protocol saw the peer's half-close) keeps its
 * socket until the buffer is sent.
 *
 * errno never leaves this file: it becomes a weft code (weft__ep_errno) or a
 * Failure type. Every send uses MSG_NOSIGNAL, so a peer that went away cannot
 * raise SIGPIPE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reactor/epoll_internal.h"

/* A drained write buffer larger than this is freed, so idle connections stay
 * small. */
#define WBUF_KEEP_BYTES (64u * 1024u)
#define WBUF_MIN_BYTES 4096u
/* send() calls per flush before yielding to other connections. */
#define SENDS_PER_FLUSH 8
/* recv() calls discarding unread input before a clean close. */
#define DISCARD_READS 16

typedef struct weft__ep_conn {
    weft_transport transport; /* first: the transport ops get &transport */
    weft__ep_obj obj;
    weft__ep_reactor *r;
    weft_protocol *proto;
    weft_factory *factory;
    weft__ep_connector *connector; /* client side while attached, else NULL */
    weft_address peer, host;
    uint8_t *wbuf;
    size_t wcap, whead, wtail; /* unsent bytes: wbuf[whead..wtail) */
    weft_producer producer;
    bool has_producer, producer_paused;
    bool reading_paused;
    bool read_eof;          /* the peer closed its write side */
    bool disconnecting;     /* lose_connection: close once drained */
    bool write_shut_wanted; /* lose_write_connection: shut once drained */
    bool write_shut;        /* shutdown(SHUT_WR) done */
    bool write_blocked;     /* send() hit EAGAIN: wait for EPOLLOUT */
    bool aborted;           /* abort(): socket reset, loss reported next turn */
    bool lost;              /* connection_lost delivered */
    bool orphan;            /* lost, but still sending what was written */
    int fatal_err;          /* epoll refused a change: reported next turn */
} ep_conn;

static void conn_finish(ep_conn *c, weft_failure *reason);
static void conn_report(ep_conn *c, weft_failure *reason);

/* ------------------------------------------------------------ sockets */

void weft__ep_address_from(const struct sockaddr_in *sa, weft_address *out)
{
    memset(out, 0, sizeof *out);
    if (!inet_ntop(AF_INET, &sa->sin_addr, out->host, sizeof out->host))
        out->host[0] = '\0';
    out->port = ntohs(sa->sin_port);
}

void weft__ep_local_address(int fd, weft_address *out)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        memset(&sa, 0, sizeof sa);
    weft__ep_address_from(&sa, out);
}

int weft__ep_socket_error(int fd)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
        return errno;
    return e;
}

void weft__ep_set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ------------------------------------------------------- connections */

static size_t conn_buffered(const ep_conn *c)
{
    return c->wtail - c->whead;
}

/* The socket is still ours to use: open, not aborted, and either the
 * protocol is attached or the connection is an orphan draining its buffer. */
static bool conn_live(const ep_conn *c)
{
    return c->obj.fd >= 0 && !c->aborted && (!c->lost || c->orphan);
}

static bool conn_reading(const ep_conn *c)
{
    return !c->lost && !c->aborted && c->obj.fd >= 0 && !c->reading_paused && !c->read_eof &&
           !c->disconnecting;
}

static uint32_t conn_want(const ep_conn *c)
{
    uint32_t want = 0;
    if (conn_reading(c))
        want |= EPOLLIN;
    if (conn_live(c) && c->write_blocked && conn_buffered(c) > 0)
        want |= EPOLLOUT;
    return want;
}

static void conn_rewatch(ep_conn *c)
{
    int err = weft__ep_watch(c->r, &c->obj, conn_want(c));
    if (err && !c->fatal_err) {
        c->fatal_err = err;
        weft__ep_defer(c->r, &c->obj);
    }
}

static void conn_lost_errno(ep_conn *c, int e)
{
    weft__ep_close_fd(c->r, &c->obj);
    int code = weft__ep_errno(e);
    conn_finish(c, weft_failure_new(WEFT_REASON_LOST, "%s (errno %d)", weft_strerror(code), e));
}

/* Clean close: FIN, throw away input nobody will read (closing with unread
 * input would send a reset instead of a FIN), close. */
static void conn_close_clean(ep_conn *c)
{
    int fd = c->obj.fd;
    if (!c->write_shut)
        (void)shutdown(fd, SHUT_WR);
    for (int i = 0; i < DISCARD_READS; i++) {
        if (recv(fd, c->r->read_buf, WEFT__EP_READ_BYTES, MSG_DONTWAIT) <= 0)
            break;
    }
    weft__ep_close_fd(c->r, &c->obj);
    conn_finish(c, weft_failure_new(WEFT_REASON_DONE, "connection was closed cleanly"));
}

static void conn_maybe_resume_producer(ep_conn *c)
{
    if (c->has_producer && c->producer_paused && conn_buffered(c) < WEFT_TRANSPORT_LOW_WATER) {
        c->producer_paused = false;
        if (c->producer.resume)
            c->producer.resume(c->producer.ctx);
    }
}

/* Send what is buffered, then act on a drained buffer (close, shut the write
 * side). Called from the loop only. */
static void conn_flush(ep_conn *c)
{
    if (!conn_live(c))
        return;
    for (int i = 0; i < SENDS_PER_FLUSH && conn_buffered(c) > 0; i++) {
        size_t len = conn_buffered(c);
        if (len > WEFT__EP_SEND_BYTES_MAX)
            len = WEFT__EP_SEND_BYTES_MAX;
        ssize_t n = send(c->obj.fd, c->wbuf + c->whead, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                i--;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->write_blocked = true;
                break;
            }
            conn_lost_errno(c, errno);
            return;
        }
        c->whead += (size_t)n;
        if ((size_t)n < len) {
            c->write_blocked = true; /* the kernel's buffer is full */
            break;
        }
    }
    if (conn_buffered(c) == 0) {
        c->whead = c->wtail = 0;
        c->write_blocked = false;
        if (c->wcap > WBUF_KEEP_BYTES) {
            weft_free(c->wbuf);
            c->wbuf = NULL;
            c->wcap = 0;
        }
    } else if (!c->write_blocked) {
        /* Sent the per-flush share; the rest next turn. */
        weft__ep_defer(c->r, &c->obj);
    }
    conn_maybe_resume_producer(c);
    if (!conn_live(c))
        return;
    if (conn_buffered(c) == 0) {
        if (c->disconnecting) {
            conn_close_clean(c);
            return;
        }
        if (c->write_shut_wanted && !c->write_shut) {
            c->write_shut = true;
            (void)shutdown(c->obj.fd, SHUT_WR);
            if (c->proto->ops->write_connection_lost)
                c->proto->ops->write_connection_lost(c->proto);
            if (!conn_live(c))
                return;
            if (c->read_eof) {
                /* Both directions are shut: the connection is over. */
                conn_close_clean(c);
                return;
            }
        }
    }
    conn_rewatch(c);
}

/* The peer shut its write side. A half-close-aware protocol is told and
 * goes on writing; the connection ends when our write side is shut too. For
 * other protocols the connection ends now, but what they wrote before still
 * drains to the peer (an orphan connection) before the socket closes. */
static void conn_eof(ep_conn *c)
{
    c->read_eof = true;
    if (c->proto->ops->read_connection_lost) {
        conn_rewatch(c);
        c->proto->ops->read_connection_lost(c->proto);
        if (conn_live(c) && !c->lost && c->write_shut)
            conn_close_clean(c);
        return;
    }
    weft_failure *reason = weft_failure_new(WEFT_REASON_DONE, "connection closed by peer");
    if (conn_buffered(c) == 0) {
        weft__ep_close_fd(c->r, &c->obj);
        conn_finish(c, reason);
        return;
    }
    c->orphan = true;
    c->disconnecting = true;
    conn_rewatch(c);
    if (!c->write_blocked)
        weft__ep_defer(c->r, &c->obj);
    conn_report(c, reason);
}

static void conn_read(ep_conn *c)
{
    weft__ep_reactor *r = c->r;
    for (int i = 0; i < WEFT__EP_READS_PER_EVENT && conn_reading(c); i++) {
        ssize_t n = recv(c->obj.fd, r->read_buf, WEFT__EP_READ_BYTES, 0);
        if (n > 0) {
            if (c->proto->ops->data_received)
                c->proto->ops->data_received(c->proto, r->read_buf, (size_t)n);
            if ((size_t)n < WEFT__EP_READ_BYTES)
                return; /* most likely drained; level-triggered epoll says if not */
            continue;
        }
        if (n == 0) {
            conn_eof(c);
            return;
        }
        if (errno == EINTR) {
            i--;
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        conn_lost_errno(c, errno);
        return;
    }
}

static void conn_dispatch(ep_conn *c, uint32_t events)
{
    if (!conn_live(c))
        return;
    bool acted = false;
    /* Read first: bytes that arrived before a reset are still delivered;
     * recv() reports the error once they are consumed. */
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conn_reading(c)) {
        acted = true;
        conn_read(c);
    }
    if (!conn_live(c))
        return;
    if ((events & EPOLLERR) && !acted) {
        int e = weft__ep_socket_error(c->obj.fd);
        if (e) {
            conn_lost_errno(c, e);
            return;
        }
    }
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && c->write_blocked) {
        acted = true;
        c->write_blocked = false;
        conn_flush(c);
    }
    if (!acted && conn_live(c))
        conn_rewatch(c); /* an event nobody wants: bring the mask in line */
}

/* Tell the protocol side that the connection ended, once: producer stop,
 * connection_lost, destroy, the client factory's hook. Takes reason. */
static void conn_report(ep_conn *c, weft_failure *reason)
{
    c->lost = true;
    if (c->has_producer) {
        c->has_producer = false;
        if (c->producer.stop)
            c->producer.stop(c->producer.ctx);
    }
    weft_protocol *p = c->proto;
    if (p->ops->connection_lost)
        p->ops->connection_lost(p, reason);
    p->transport = NULL;
    weft__ep_connector *cn = c->connector;
    c->connector = NULL;
    c->proto = NULL;
    if (p->ops->destroy)
        p->ops->destroy(p);
    if (cn)
        weft__ep_connector_conn_lost(cn, reason);
    weft_failure_free(reason);
}

/* The connection's end: socket closed, end reported (unless it was, for an
 * orphan), memory buried. Takes reason. */
static void conn_finish(ep_conn *c, weft_failure *reason)
{
    weft__ep_reactor *r = c->r;
    weft__ep_close_fd(r, &c->obj);
    if (!c->lost)
        conn_report(c, reason);
    else
        weft_failure_free(reason);
    weft__ep_list_remove(&c->obj.link);
    r->conns_open--;
    weft_free(c->wbuf);
    c->wbuf = NULL;
    c->wcap = c->whead = c->wtail = 0;
    weft__ep_bury(r, &c->obj);
}

static int conn_reserve(ep_conn *c, size_t extra)
{
    size_t used = conn_buffered(c);
    if (c->wcap - c->wtail >= extra)
        return WEFT_OK;
    if (c->whead > 0 && c->whead >= used && c->wcap - used >= extra) {
        /* At least as much dead space as live bytes: compacting is cheap. */
        memmove(c->wbuf, c->wbuf + c->whead, used);
        c->whead = 0;
        c->wtail = used;
        return WEFT_OK;
    }
    size_t cap = c->wcap ? c->wcap * 2 : WBUF_MIN_BYTES;
    while (cap < used + extra)
        cap *= 2;
    uint8_t *nb = weft_malloc(cap);
    if (!nb)
        return WEFT_ENOMEM;
    if (used)
        memcpy(nb, c->wbuf + c->whead, used);
    weft_free(c->wbuf);
    c->wbuf = nb;
    c->wcap = cap;
    c->whead = 0;
    c->wtail = used;
    return WEFT_OK;
}

static int conn_writev(weft_transport *t, const weft_iovec *iov, size_t n)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (c->lost || c->aborted || c->disconnecting || c->write_shut_wanted)
        return WEFT_ECLOSED;
    if (!iov && n)
        return WEFT_EINVAL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!iov[i].base && iov[i].len)
            return WEFT_EINVAL;
        if (iov[i].len > WEFT_TRANSPORT_BUFFER_MAX - total)
            return WEFT_ENOBUFS;
        total += iov[i].len;
    }
    if (total == 0)
        return WEFT_OK;
    if (total > WEFT_TRANSPORT_BUFFER_MAX - conn_buffered(c))
        return WEFT_ENOBUFS;
    int err = conn_reserve(c, total);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        if (iov[i].len) {
            memcpy(c->wbuf + c->wtail, iov[i].base, iov[i].len);
            c->wtail += iov[i].len;
        }
    }
    if (!c->write_blocked)
        weft__ep_defer(c->r, &c->obj);
    if (c->has_producer && !c->producer_paused && conn_buffered(c) > WEFT_TRANSPORT_HIGH_WATER) {
        c->producer_paused = true;
        if (c->producer.pause)
            c->producer.pause(c->producer.ctx);
    }
    return WEFT_OK;
}

static int conn_write(weft_transport *t, const void *data, size_t len)
{
    weft_iovec one = {data, len};
    return conn_writev(t, &one, 1);
}

static int conn_lose_connection(weft_transport *t)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (c->lost || c->aborted || c->disconnecting)
        return WEFT_OK; /* already on its way: a no-op, as in Twisted */
    c->disconnecting = true;
    conn_rewatch(c); /* stop reading */
    if (!c->write_blocked)
        weft__ep_defer(c->r, &c->obj);
    return WEFT_OK;
}

static int conn_abort(weft_transport *t)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (c->lost || c->aborted)
        return WEFT_OK; /* idempotent */
    c->aborted = true;
    c->whead = c->wtail = 0;
    if (c->obj.fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(c->obj.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        weft__ep_close_fd(c->r, &c->obj);
    }
    weft__ep_defer(c->r, &c->obj);
    return WEFT_OK;
}

static int conn_lose_write_connection(weft_transport *t)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (c->lost)
        return WEFT_ECLOSED;
    if (c->aborted || c->disconnecting || c->write_shut_wanted)
        return WEFT_OK; /* the write side is already closing */
    c->write_shut_wanted = true;
    if (!c->write_blocked)
        weft__ep_defer(c->r, &c->obj);
    return WEFT_OK;
}

static int conn_pause_reading(weft_transport *t)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (c->lost)
        return WEFT_ECLOSED;
    c->reading_paused = true;
    conn_rewatch(c);
    return WEFT_OK;
}

static int conn_resume_reading(weft_transport *t)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (c->lost)
        return WEFT_ECLOSED;
    c->reading_paused = false;
    conn_rewatch(c);
    return WEFT_OK;
}

static int conn_register_producer(weft_transport *t, const weft_producer *p)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (!p)
        return WEFT_EINVAL;
    if (c->lost || c->aborted || c->disconnecting)
        return WEFT_ECLOSED;
    if (c->has_producer)
        return WEFT_ESTATE;
    c->producer = *p;
    c->has_producer = true;
    c->producer_paused = false;
    if (conn_buffered(c) > WEFT_TRANSPORT_HIGH_WATER) {
        c->producer_paused = true;
        if (c->producer.pause)
            c->producer.pause(c->producer.ctx);
    }
    return WEFT_OK;
}

static int conn_unregister_producer(weft_transport *t)
{
    ep_conn *c = (ep_conn *)(void *)t;
    if (!c->has_producer)
        return WEFT_ESTATE;
    c->has_producer = false;
    c->producer_paused = false;
    return WEFT_OK;
}

static const weft_address *conn_peer(weft_transport *t)
{
    return &((ep_conn *)(void *)t)->peer;
}

static const weft_address *conn_host(weft_transport *t)
{
    return &((ep_conn *)(void *)t)->host;
}

static size_t conn_buffered_op(weft_transport *t)
{
    return conn_buffered((ep_conn *)(void *)t);
}

/* lose_connection (disconnecting) or abort called, or the end reported. */
static bool conn_disconnecting_op(weft_transport *t)
{
    const ep_conn *c = (const ep_conn *)(const void *)t;
    return c->disconnecting || c->aborted || c->lost;
}

static const weft_transport_ops conn_ops = {
    .write = conn_write,
    .writev = conn_writev,
    .lose_connection = conn_lose_connection,
    .abort = conn_abort,
    .lose_write_connection = conn_lose_write_connection,
    .pause_reading = conn_pause_reading,
    .resume_reading = conn_resume_reading,
    .register_producer = conn_register_producer,
    .unregister_producer = conn_unregister_producer,
    .peer = conn_peer,
    .host = conn_host,
    .buffered = conn_buffered_op,
    .disconnecting = conn_disconnecting_op,
};

static void conn_service(ep_conn *c)
{
    if (c->lost && !c->orphan)
        return;
    if (c->aborted) {
        conn_finish(c, weft_failure_new(WEFT_REASON_ABORTED, "connection was aborted"));
        return;
    }
    if (c->fatal_err) {
        conn_finish(c, weft_failure_new(WEFT_REASON_LOST, "event registration failed: %s",
                                        weft_strerror(c->fatal_err)));
        return;
    }
    if (!c->write_blocked)
        conn_flush(c);
}

weft__ep_conn *weft__ep_conn_open(weft__ep_reactor *r, int fd, weft_factory *f,
                                  const weft_address *peer, bool *refused)
{
    *refused = false;
    ep_conn *c = weft_calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->transport.ops = &conn_ops;
    c->obj.kind = WEFT__EP_CONN;
    c->obj.fd = fd;
    c->r = r;
    c->factory = f;
    c->peer = *peer;
    weft__ep_local_address(fd, &c->host);
    /* Registered before the protocol exists: nothing is dispatched before
     * the next epoll_wait, and after build_protocol nothing can fail. */
    if (weft__ep_watch(r, &c->obj, EPOLLIN) != WEFT_OK) {
        close(fd);
        weft_free(c);
        return NULL;
    }
    weft_protocol *p = f->build_protocol(f, peer);
    if (!p) {
        *refused = true;
        weft__ep_close_fd(r, &c->obj);
        weft_free(c);
        return NULL;
    }
    c->proto = p;
    p->transport = &c->transport;
    p->factory = f;
    p->reactor = &r->base.base;
    weft__ep_list_push(&r->conns, &c->obj.link);
    r->conns_open++;
    return c;
}

void weft__ep_conn_start(weft__ep_conn *c, weft__ep_connector *cn)
{
    c->connector = cn;
    if (c->proto->ops->connection_made)
        c->proto->ops->connection_made(c->proto);
}

void weft__ep_conn_detach(weft__ep_conn *c)
{
    c->connector = NULL;
}

void weft__ep_conn_dispatch(weft__ep_obj *obj, uint32_t events)
{
    conn_dispatch(WEFT__EP_CONTAINER(obj, ep_conn, obj), events);
}

void weft__ep_conn_service(weft__ep_obj *obj)
{
    conn_service(WEFT__EP_CONTAINER(obj, ep_conn, obj));
}

void weft__ep_conn_free(weft__ep_obj *obj)
{
    ep_conn *c = WEFT__EP_CONTAINER(obj, ep_conn, obj);
    weft_free(c->wbuf);
    weft_free(c);
}

void weft__ep_conn_close_all(weft__ep_reactor *r)
{
    while (r->conns.next != &r->conns) {
        ep_conn *c = WEFT__EP_CONTAINER(r->conns.next, ep_conn, obj.link);
        if (c->obj.fd >= 0) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            (void)setsockopt(c->obj.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        conn_finish(c, weft_failure_new(WEFT_REASON_ABORTED, "the reactor was freed"));
    }
}
