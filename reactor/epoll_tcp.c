/* epoll_tcp.c: TCP listeners and connectors of the real reactor, on
 * non-blocking IPv4 sockets, and the entry points the loop (epoll.c) calls
 * for every kind of object. Connections themselves live in epoll_conn.c.
 *
 * A listener accepts in bounded batches and hands each socket to a new
 * connection. A connector owns its socket while the non-blocking connect is
 * in progress; on success the socket moves to a connection, on failure the
 * client factory's connection_failed hook runs, always from the loop except
 * for weft_connector_stop (synchronous, as in Twisted). The factory is
 * started with the first attempt and stopped when the connector goes idle
 * without connecting again from its hook.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reactor/epoll_internal.h"

typedef struct weft__ep_connector ep_connector;

typedef enum cn_state { CN_IDLE, CN_CONNECTING, CN_CONNECTED } cn_state;

struct weft__ep_connector {
    weft_connector base; /* first */
    weft__ep_obj obj;    /* the socket while connecting */
    weft__ep_reactor *r;
    cn_state state;
    struct sockaddr_in addr;
    weft_address peer;
    weft__ep_conn *conn; /* while connected */
    weft_call *timeout;  /* while connecting, if the endpoint has a timeout */
    int fail_errno;      /* connect() failed at once: reported next turn */
    bool factory_started;
    bool freed;
};

typedef struct ep_listener {
    weft_listener base; /* first */
    weft__ep_obj obj;
    weft__ep_reactor *r;
    weft_address addr;
    bool closed;
} ep_listener;

/* ------------------------------------------------------------ helpers */

static weft__ep_reactor *ep_of(weft_reactor *r)
{
    return (weft__ep_reactor *)(void *)r;
}

static int resolve_ipv4(const char *host, bool server, struct in_addr *out)
{
    if (host[0] == '\0') {
        if (!server)
            return WEFT_ENOTFOUND;
        out->s_addr = htonl(INADDR_ANY);
        return WEFT_OK;
    }
    if (strcasecmp(host, "localhost") == 0) {
        out->s_addr = htonl(INADDR_LOOPBACK);
        return WEFT_OK;
    }
    return inet_pton(AF_INET, host, out) == 1 ? WEFT_OK : WEFT_ENOTFOUND;
}

/* --------------------------------------------------------- listeners */

static void listener_close(weft_listener *base)
{
    ep_listener *l = (ep_listener *)(void *)base;
    if (l->closed)
        return;
    l->closed = true;
    weft__ep_close_fd(l->r, &l->obj);
    weft__ep_list_remove(&l->obj.link);
    l->r->listeners_open--;
    weft__factory_do_stop(l->base.factory);
    weft__ep_bury(l->r, &l->obj);
}

static const weft_address *listener_address(const weft_listener *base)
{
    return &((const ep_listener *)(const void *)base)->addr;
}

static const weft_listener_ops listener_ops = {
    .close = listener_close,
    .address = listener_address,
};

static void listener_accept(ep_listener *l)
{
    weft__ep_reactor *r = l->r;
    for (int i = 0; i < WEFT__EP_ACCEPTS_PER_EVENT && !l->closed; i++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        int fd = accept4(l->obj.fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                i--;
                continue;
            }
            /* EAGAIN: drained. EMFILE and friends: level-triggered epoll
             * retries next turn. */
            return;
        }
        weft__ep_set_nodelay(fd);
        weft_address peer;
        weft__ep_address_from(&sa, &peer);
        bool refused;
        weft__ep_conn *c = weft__ep_conn_open(r, fd, l->base.factory, &peer, &refused);
        if (c)
            weft__ep_conn_start(c, NULL);
    }
}

int weft__ep_listen(weft_reactor *rr, const weft_endpoint *ep, weft_factory *f, weft_listener **out)
{
    weft__ep_reactor *r = ep_of(rr);
    if (r->freeing)
        return WEFT_ESTATE;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(ep->port);
    int err = resolve_ipv4(ep->host, true, &sa.sin_addr);
    if (err)
        return err;
    ep_listener *l = weft_calloc(1, sizeof *l);
    if (!l)
        return WEFT_ENOMEM;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = weft__ep_errno(errno);
        weft_free(l);
        return err;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, WEFT__EP_BACKLOG) != 0) {
        err = weft__ep_errno(errno);
        close(fd);
        weft_free(l);
        return err;
    }
    l->base.ops = &listener_ops;
    l->base.reactor = rr;
    l->base.factory = f;
    l->obj.kind = WEFT__EP_LISTENER;
    l->obj.fd = fd;
    l->r = r;
    weft__ep_local_address(fd, &l->addr);
    err = weft__ep_watch(r, &l->obj, EPOLLIN);
    if (err) {
        close(fd);
        weft_free(l);
        return err;
    }
    weft__ep_list_push(&r->listeners, &l->obj.link);
    r->listeners_open++;
    weft__factory_do_start(f);
    *out = &l->base;
    return WEFT_OK;
}

/* -------------------------------------------------------- connectors */

/* End the current attempt without telling anyone. */
static void connector_drop_attempt(ep_connector *cn)
{
    if (cn->timeout) {
        (void)weft_call_cancel(cn->timeout);
        weft_call_release(cn->timeout);
        cn->timeout = NULL;
    }
    weft__ep_close_fd(cn->r, &cn->obj);
    cn->fail_errno = 0;
    if (cn->state == CN_CONNECTING)
        cn->r->connectors_busy--;
    cn->state = CN_IDLE;
}

/* The factory is stopped once a connector is idle and not restarted from
 * its hook (Twisted's connector does the same). */
static void connector_settle(ep_connector *cn)
{
    if (!cn->freed && cn->state == CN_IDLE && cn->factory_started) {
        cn->factory_started = false;
        weft__factory_do_stop(cn->base.factory);
    }
}

/* The attempt failed: tell the factory. Takes reason. */
static void connector_fail(ep_connector *cn, weft_failure *reason)
{
    connector_drop_attempt(cn);
    weft_factory *f = cn->base.factory;
    if (!cn->r->freeing && f->connection_failed)
        f->connection_failed(f, &cn->base, reason);
    weft_failure_free(reason);
    connector_settle(cn);
}

static void connector_fail_errno(ep_connector *cn, int e)
{
    const char *type;
    switch (e) {
    case ECONNREFUSED:
    case ECONNRESET: /* a reset answering the handshake */
        type = WEFT_REASON_REFUSED;
        break;
    case ETIMEDOUT:
        type = WEFT_REASON_TIMED_OUT;
        break;
    default:
        type = WEFT_REASON_UNREACHABLE;
        break;
    }
    int code = weft__ep_errno(e);
    connector_fail(cn, weft_failure_new(type, "connect to %s:%u: %s (errno %d)", cn->peer.host,
                                        (unsigned)cn->peer.port, weft_strerror(code), e));
}

void weft__ep_connector_conn_lost(weft__ep_connector *cn, const weft_failure *reason)
{
    cn->conn = NULL;
    cn->state = CN_IDLE;
    if (cn->freed)
        return;
    weft_factory *f = cn->base.factory;
    if (!cn->r->freeing && f->connection_lost)
        f->connection_lost(f, &cn->base, reason);
    connector_settle(cn);
}

static void connector_timed_out(void *ctx)
{
    ep_connector *cn = ctx;
    weft_call_release(cn->timeout);
    cn->timeout = NULL;
    if (cn->state != CN_CONNECTING)
        return;
    connector_fail(cn, weft_failure_new(WEFT_REASON_TIMED_OUT, "connect to %s:%u timed out",
                                        cn->peer.host, (unsigned)cn->peer.port));
}

static void connector_established(ep_connector *cn)
{
    weft__ep_reactor *r = cn->r;
    if (cn->timeout) {
        (void)weft_call_cancel(cn->timeout);
        weft_call_release(cn->timeout);
        cn->timeout = NULL;
    }
    /* The socket moves from the connector to the connection. */
    int fd = cn->obj.fd;
    (void)weft__ep_watch(r, &cn->obj, 0);
    cn->obj.fd = -1;
    cn->obj.mask = 0;
    weft__ep_set_nodelay(fd);
    bool refused;
    weft__ep_conn *c = weft__ep_conn_open(r, fd, cn->base.factory, &cn->peer, &refused);
    if (!c) {
        connector_fail(cn, refused ? weft_failure_new(WEFT_REASON_NO_PROTOCOL,
                                                      "build_protocol returned NULL")
                                   : weft_failure_new(WEFT_FAILURE_NO_MEMORY,
                                                      "no memory for the connection"));
        return;
    }
    r->connectors_busy--;
    cn->state = CN_CONNECTED;
    cn->conn = c;
    weft__ep_conn_start(c, cn);
}

static void connector_dispatch(ep_connector *cn, uint32_t events)
{
    if (cn->state != CN_CONNECTING || cn->obj.fd < 0)
        return;
    int e = weft__ep_socket_error(cn->obj.fd);
    if (e == 0 && (events & (EPOLLERR | EPOLLHUP)))
        e = ECONNREFUSED; /* hung up without saying why */
    if (e) {
        connector_fail_errno(cn, e);
        return;
    }
    if (events & EPOLLOUT)
        connector_established(cn);
}

static int connector_connect(weft_connector *base)
{
    ep_connector *cn = (ep_connector *)(void *)base;
    weft__ep_reactor *r = cn->r;
    if (cn->freed || r->freeing || cn->state != CN_IDLE)
        return WEFT_ESTATE;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return weft__ep_errno(errno);
    if (base->endpoint.timeout_ns > 0) {
        cn->timeout = weft_call_later(&r->base.base, base->endpoint.timeout_ns, connector_timed_out, cn);
        if (!cn->timeout) {
            close(fd);
            return WEFT_ENOMEM;
        }
    }
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&cn->addr, sizeof cn->addr);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
        cn->fail_errno = errno; /* reported next turn, as any failure */
        close(fd);
    } else {
        cn->obj.fd = fd;
        int err = weft__ep_watch(r, &cn->obj, EPOLLOUT);
        if (err) {
            weft__ep_close_fd(r, &cn->obj);
            if (cn->timeout) {
                (void)weft_call_cancel(cn->timeout);
                weft_call_release(cn->timeout);
                cn->timeout = NULL;
            }
            return err;
        }
    }
    cn->state = CN_CONNECTING;
    r->connectors_busy++;
    if (!cn->factory_started) {
        cn->factory_started = true;
        weft__factory_do_start(base->factory);
    }
    if (cn->fail_errno)
        weft__ep_defer(r, &cn->obj);
    return WEFT_OK;
}

static void connector_stop(weft_connector *base)
{
    ep_connector *cn = (ep_connector *)(void *)base;
    if (cn->state != CN_CONNECTING)
        return;
    connector_fail(cn, weft_failure_new(WEFT_REASON_CONNECT_CANCELLED,
                                        "connecting to %s:%u was stopped", cn->peer.host,
                                        (unsigned)cn->peer.port));
}

static void connector_free(weft_connector *base)
{
    ep_connector *cn = (ep_connector *)(void *)base;
    if (cn->freed)
        return;
    if (cn->state == CN_CONNECTING)
        connector_drop_attempt(cn);
    if (cn->conn) {
        weft__ep_conn_detach(cn->conn); /* the connection lives on, unhooked */
        cn->conn = NULL;
        cn->state = CN_IDLE;
    }
    if (cn->factory_started) {
        cn->factory_started = false;
        weft__factory_do_stop(base->factory);
    }
    cn->freed = true;
    weft__ep_list_remove(&cn->obj.link);
    weft__ep_bury(cn->r, &cn->obj);
}

static const weft_connector_ops connector_ops = {
    .connect = connector_connect,
    .stop = connector_stop,
    .free = connector_free,
};

int weft__ep_connect(weft_reactor *rr, const weft_endpoint *ep, weft_factory *f,
                     weft_connector **out)
{
    weft__ep_reactor *r = ep_of(rr);
    if (r->freeing)
        return WEFT_ESTATE;
    ep_connector *cn = weft_calloc(1, sizeof *cn);
    if (!cn)
        return WEFT_ENOMEM;
    cn->addr.sin_family = AF_INET;
    cn->addr.sin_port = htons(ep->port);
    int err = resolve_ipv4(ep->host, false, &cn->addr.sin_addr);
    if (err == WEFT_OK && ep->port == 0)
        err = WEFT_EINVAL;
    if (err) {
        weft_free(cn);
        return err;
    }
    cn->base.ops = &connector_ops;
    cn->base.reactor = rr;
    cn->base.factory = f;
    cn->base.endpoint = *ep;
    cn->obj.kind = WEFT__EP_CONNECTOR;
    cn->obj.fd = -1;
    cn->r = r;
    cn->state = CN_IDLE;
    weft__ep_address_from(&cn->addr, &cn->peer);
    weft__ep_list_push(&r->connectors, &cn->obj.link);
    err = connector_connect(&cn->base);
    if (err) {
        weft__ep_list_remove(&cn->obj.link);
        weft_free(cn);
        return err;
    }
    *out = &cn->base;
    return WEFT_OK;
}

/* ------------------------------------------------ loop entry points */

void weft__ep_dispatch(weft__ep_reactor *r, weft__ep_obj *obj, uint32_t events)
{
    (void)r;
    switch (obj->kind) {
    case WEFT__EP_LISTENER:
        listener_accept(WEFT__EP_CONTAINER(obj, ep_listener, obj));
        break;
    case WEFT__EP_CONN:
        weft__ep_conn_dispatch(obj, events);
        break;
    case WEFT__EP_CONNECTOR:
        connector_dispatch(WEFT__EP_CONTAINER(obj, ep_connector, obj), events);
        break;
    }
}

void weft__ep_service(weft__ep_reactor *r, weft__ep_obj *obj)
{
    (void)r;
    if (obj->kind == WEFT__EP_CONN) {
        weft__ep_conn_service(obj);
    } else if (obj->kind == WEFT__EP_CONNECTOR) {
        ep_connector *cn = WEFT__EP_CONTAINER(obj, ep_connector, obj);
        if (cn->state == CN_CONNECTING && cn->fail_errno)
            connector_fail_errno(cn, cn->fail_errno);
    }
}

void weft__ep_free_obj(weft__ep_obj *obj)
{
    switch (obj->kind) {
    case WEFT__EP_LISTENER:
        weft_free(WEFT__EP_CONTAINER(obj, ep_listener, obj));
        break;
    case WEFT__EP_CONN:
        weft__ep_conn_free(obj);
        break;
    case WEFT__EP_CONNECTOR:
        weft_free(WEFT__EP_CONTAINER(obj, ep_connector, obj));
        break;
    }
}

void weft__ep_close_all(weft__ep_reactor *r)
{
    weft__ep_conn_close_all(r);
    while (r->connectors.next != &r->connectors) {
        ep_connector *cn = WEFT__EP_CONTAINER(r->connectors.next, ep_connector, obj.link);
        connector_free(&cn->base);
    }
    while (r->listeners.next != &r->listeners) {
        ep_listener *l = WEFT__EP_CONTAINER(r->listeners.next, ep_listener, obj.link);
        listener_close(&l->base);
    }
}
