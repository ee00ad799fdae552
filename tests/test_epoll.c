/* The real reactor: delayed calls on the monotonic clock, and TCP listeners,
 * connectors and transports over 127.0.0.1. Every run is bounded by a
 * deadline of a few seconds, so a broken backend fails instead of hanging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/protocols.h"
#include "weft/reactor.h"

#define RUN_LIMIT_NS (5 * WEFT_NS_PER_S)
#define MAXP 48
#define BIG_BYTES (8u * 1024u * 1024u)
#define CHUNK_BYTES (64u * 1024u)

typedef struct world world;
typedef struct tp tp;

/* One side's factory and what its protocols do. */
typedef struct side {
    weft_factory f; /* first: the hooks get &f */
    world *w;
    bool aware;  /* half-close aware protocols */
    bool refuse; /* build_protocol returns NULL */
    bool check_pattern; /* verify received bytes against pattern() */
    void (*on_made)(tp *p);
    void (*on_data)(tp *p, const uint8_t *data, size_t len);
    void (*on_read_lost)(tp *p);
    void (*on_lost)(tp *p);
    int built, starts, stops;
    int failed, lost_hooks;
    char fail_reason[48];
    char lost_hook_reason[48];
    int reconnects_left;
    weft_factory *connector_factory; /* what the hooks' connector reports */
} side;

struct tp {
    weft_protocol base;
    world *w;
    side *s;
    bool made, lost, destroyed, read_lost, write_lost;
    bool transport_set_in_lost;
    int write_in_lost, pause_in_lost;
    size_t buffered_in_lost;
    char reason[48];
    weft_address peer, host;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    size_t checked, mismatches;
    /* Producer test. */
    size_t sent;
    bool producer_paused;
    int pauses, resumes, stops;
    size_t max_buffered;
};

struct world {
    weft_reactor *r;
    side server, client;
    tp protos[MAXP];
    int nprotos;
    weft_listener *listener;
    uint16_t port;
    char desc[96];
    bool (*pred)(world *w);
    int log[16];
    int nlog;
    int spins;
    int spins_at_timer;
    bool flag;
};

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i ^ (i >> 8) ^ (i >> 16) ^ 0x5a);
}

/* ------------------------------------------------------ protocols */

static void tp_made(weft_protocol *bp)
{
    tp *p = (tp *)bp;
    assert_false(p->made);
    assert_non_null(bp->transport);
    assert_non_null(bp->reactor);
    p->made = true;
    p->peer = *weft_transport_peer(bp->transport);
    p->host = *weft_transport_host(bp->transport);
    if (p->s->on_made)
        p->s->on_made(p);
}

static void tp_data(weft_protocol *bp, const uint8_t *data, size_t len)
{
    tp *p = (tp *)bp;
    assert_true(p->made);
    assert_false(p->lost);
    assert_true(len > 0);
    if (p->s->check_pattern) {
        for (size_t i = 0; i < len; i++)
            if (data[i] != pattern(p->checked + i))
                p->mismatches++;
        p->checked += len;
        p->rx_len += len;
    } else {
        if (p->rx_len + len > p->rx_cap) {
            size_t cap = p->rx_cap ? p->rx_cap * 2 : 256;
            while (cap < p->rx_len + len)
                cap *= 2;
            p->rx = realloc(p->rx, cap);
            assert_non_null(p->rx);
            p->rx_cap = cap;
        }
        memcpy(p->rx + p->rx_len, data, len);
        p->rx_len += len;
    }
    if (p->s->on_data)
        p->s->on_data(p, data, len);
}

static void tp_lost(weft_protocol *bp, const weft_failure *reason)
{
    tp *p = (tp *)bp;
    assert_true(p->made);
    assert_false(p->lost);
    assert_false(p->destroyed);
    p->lost = true;
    snprintf(p->reason, sizeof p->reason, "%s", reason->type);
    p->transport_set_in_lost = bp->transport != NULL;
    if (bp->transport) {
        p->buffered_in_lost = weft_transport_buffered(bp->transport);
        p->write_in_lost = weft_transport_write(bp->transport, "x", 1);
        p->pause_in_lost = weft_transport_pause_reading(bp->transport);
    }
    if (p->s->on_lost)
        p->s->on_lost(p);
}

static void tp_read_lost(weft_protocol *bp)
{
    tp *p = (tp *)bp;
    assert_false(p->read_lost);
    assert_false(p->lost);
    p->read_lost = true;
    if (p->s->on_read_lost)
        p->s->on_read_lost(p);
}

static void tp_write_lost(weft_protocol *bp)
{
    tp *p = (tp *)bp;
    assert_false(p->write_lost);
    p->write_lost = true;
}

static void tp_destroy(weft_protocol *bp)
{
    tp *p = (tp *)bp;
    assert_true(p->lost);
    assert_false(p->destroyed);
    assert_null(bp->transport);
    p->destroyed = true;
}

static const weft_protocol_ops plain_ops = {
    .connection_made = tp_made,
    .data_received = tp_data,
    .connection_lost = tp_lost,
    .destroy = tp_destroy,
};

static const weft_protocol_ops aware_ops = {
    .connection_made = tp_made,
    .data_received = tp_data,
    .connection_lost = tp_lost,
    .read_connection_lost = tp_read_lost,
    .write_connection_lost = tp_write_lost,
    .destroy = tp_destroy,
};

/* ------------------------------------------------------ factories */

static weft_protocol *side_build(weft_factory *f, const weft_address *peer)
{
    side *s = (side *)f;
    world *w = s->w;
    assert_non_null(peer);
    assert_string_equal(peer->host, "127.0.0.1");
    s->built++;
    if (s->refuse)
        return NULL;
    assert_true(w->nprotos < MAXP);
    tp *p = &w->protos[w->nprotos++];
    memset(p, 0, sizeof *p);
    p->base.ops = s->aware ? &aware_ops : &plain_ops;
    p->w = w;
    p->s = s;
    return &p->base;
}

static void side_start(weft_factory *f)
{
    ((side *)f)->starts++;
}

static void side_stop(weft_factory *f)
{
    ((side *)f)->stops++;
}

static void side_failed(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    side *s = (side *)f;
    assert_ptr_equal(weft_connector_factory(c), s->connector_factory);
    s->failed++;
    snprintf(s->fail_reason, sizeof s->fail_reason, "%s", reason->type);
    if (s->reconnects_left > 0) {
        s->reconnects_left--;
        assert_int_equal(weft_connector_connect(c), WEFT_OK);
    }
}

static void side_lost(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    side *s = (side *)f;
    assert_ptr_equal(weft_connector_factory(c), s->connector_factory);
    s->lost_hooks++;
    snprintf(s->lost_hook_reason, sizeof s->lost_hook_reason, "%s", reason->type);
    if (s->reconnects_left > 0) {
        s->reconnects_left--;
        assert_int_equal(weft_connector_connect(c), WEFT_OK);
    }
}

static void side_init(side *s, world *w)
{
    memset(s, 0, sizeof *s);
    s->w = w;
    s->f.build_protocol = side_build;
    s->f.start = side_start;
    s->f.stop = side_stop;
    s->f.connection_failed = side_failed;
    s->f.connection_lost = side_lost;
    s->f.ctx = w;
    s->connector_factory = &s->f;
}

/* ------------------------------------------------------- the world */

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->r = weft_reactor_new_epoll();
    assert_non_null(w->r);
    side_init(&w->server, w);
    side_init(&w->client, w);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    weft_reactor_free(w->r);
    for (int i = 0; i < w->nprotos; i++) {
        /* Whatever was connected got its end and its destroy. */
        if (w->protos[i].made) {
            assert_true(w->protos[i].lost);
            assert_true(w->protos[i].destroyed);
        }
        free(w->protos[i].rx);
    }
    free(w);
    return 0;
}

static void listen_local(world *w)
{
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=127.0.0.1", &w->server.f, &w->listener),
                     WEFT_OK);
    const weft_address *a = weft_listener_address(w->listener);
    assert_string_equal(a->host, "127.0.0.1");
    assert_true(a->port != 0);
    w->port = a->port;
    snprintf(w->desc, sizeof w->desc, "tcp:127.0.0.1:%u", (unsigned)w->port);
}

static bool pred_tramp(void *ctx)
{
    world *w = ctx;
    return w->pred(w);
}

/* Run until pred holds; fails the test after RUN_LIMIT_NS. */
static void run_until(world *w, bool (*pred)(world *w))
{
    w->pred = pred;
    int rc = weft_reactor_run_until(w->r, pred_tramp, w, weft_now(w->r) + RUN_LIMIT_NS);
    if (rc != WEFT_OK)
        fail_msg("run_until: %s", weft_err_name(rc));
}

static tp *proto_of(world *w, side *s, int nth)
{
    for (int i = 0; i < w->nprotos; i++)
        if (w->protos[i].s == s && nth-- == 0)
            return &w->protos[i];
    return NULL;
}

static bool all_lost(world *w)
{
    if (w->nprotos == 0)
        return false;
    for (int i = 0; i < w->nprotos; i++)
        if (!w->protos[i].lost)
            return false;
    return true;
}

static bool two_lost(world *w)
{
    return w->nprotos >= 2 && all_lost(w);
}

/* ---------------------------------------------------------- timers */

static void log_call(world *w, int id)
{
    assert_true(w->nlog < 16);
    w->log[w->nlog++] = id;
}

static void cb1(void *ctx) { log_call(ctx, 1); }
static void cb2(void *ctx) { log_call(ctx, 2); }
static void cb3(void *ctx) { log_call(ctx, 3); }
static void cb4(void *ctx) { log_call(ctx, 4); }

static void timers_run_in_time_order(void **state)
{
    world *w = *state;
    weft_time_ns t0 = weft_now(w->r);
    weft_call *c3 = weft_call_later(w->r, 30 * WEFT_NS_PER_MS, cb3, w);
    weft_call *c1 = weft_call_later(w->r, 10 * WEFT_NS_PER_MS, cb1, w);
    weft_call *c2 = weft_call_later(w->r, 20 * WEFT_NS_PER_MS, cb2, w);
    weft_call *c4 = weft_call_later(w->r, 10 * WEFT_NS_PER_MS, cb4, w);
    assert_non_null(c1);
    assert_non_null(c2);
    assert_non_null(c3);
    assert_non_null(c4);
    assert_null(weft_call_later(w->r, -1, cb1, w)); /* negative delay refused */
    assert_true(weft_call_active(c1));
    assert_true(weft_call_time(c3) >= t0 + 30 * WEFT_NS_PER_MS);
    assert_int_equal(weft_reactor_run(w->r), WEFT_OK); /* returns when idle */
    weft_time_ns elapsed = weft_now(w->r) - t0;
    assert_true(elapsed >= 30 * WEFT_NS_PER_MS);
    assert_true(elapsed < RUN_LIMIT_NS);
    assert_int_equal(w->nlog, 4);
    assert_int_equal(w->log[0], 1);
    assert_int_equal(w->log[1], 4);
    assert_int_equal(w->log[2], 2);
    assert_int_equal(w->log[3], 3);
    assert_false(weft_call_active(c1));
    assert_int_equal(weft_call_cancel(c1), WEFT_EALREADYCALLED);
    assert_int_equal(weft_call_reset(c2, 0), WEFT_EALREADYCALLED);
    weft_call_release(c1);
    weft_call_release(c2);
    weft_call_release(c3);
    weft_call_release(c4);
}

static void timers_cancel_reset_delay(void **state)
{
    world *w = *state;
    weft_time_ns t0 = weft_now(w->r);
    weft_call *a = weft_call_later(w->r, 50 * WEFT_NS_PER_MS, cb1, w);
    weft_call *b = weft_call_later(w->r, 10 * WEFT_NS_PER_MS, cb2, w);
    weft_call *c = weft_call_later(w->r, 20 * WEFT_NS_PER_MS, cb3, w);
    assert_int_equal(weft_call_cancel(a), WEFT_OK);
    assert_int_equal(weft_call_cancel(a), WEFT_EALREADYCANCELLED);
    assert_int_equal(weft_call_reset(a, 0), WEFT_EALREADYCANCELLED);
    assert_false(weft_call_active(a));
    assert_int_equal(weft_call_reset(b, 40 * WEFT_NS_PER_MS), WEFT_OK); /* now after c */
    assert_int_equal(weft_call_delay(c, 5 * WEFT_NS_PER_MS), WEFT_OK);  /* 25 ms */
    assert_int_equal(weft_reactor_run(w->r), WEFT_OK);
    assert_int_equal(w->nlog, 2);
    assert_int_equal(w->log[0], 3);
    assert_int_equal(w->log[1], 2);
    assert_true(weft_now(w->r) - t0 >= 40 * WEFT_NS_PER_MS);
    assert_true(weft_call_time(c) >= t0 + 25 * WEFT_NS_PER_MS);
    weft_call_release(a);
    weft_call_release(b);
    weft_call_release(c);
}

/* A call_soon chain that reschedules itself must not starve timers or I/O:
 * calls scheduled during a pass run in the next pass. */
static void spin(void *ctx)
{
    world *w = ctx;
    w->spins++;
    if (!w->flag && w->spins < 1000000)
        assert_int_equal(weft_call_soon(w->r, spin, w), WEFT_OK);
}

static void timer_seen(void *ctx)
{
    world *w = ctx;
    w->spins_at_timer = w->spins;
}

static void echo_data(tp *p, const uint8_t *data, size_t len)
{
    assert_int_equal(weft_transport_write(p->base.transport, data, len), WEFT_OK);
}

static void hello_made(tp *p)
{
    assert_int_equal(weft_transport_write(p->base.transport, "hello weft", 10), WEFT_OK);
}

static void close_at_ten(tp *p, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    if (p->rx_len == 10)
        assert_int_equal(weft_transport_lose_connection(p->base.transport), WEFT_OK);
}

static bool spun_and_echoed(world *w)
{
    tp *c = proto_of(w, &w->client, 0);
    if (w->spins_at_timer > 0 && c && c->lost)
        w->flag = true; /* stop spinning */
    return w->flag;
}

static void pass_rule_keeps_io_and_timers_alive(void **state)
{
    world *w = *state;
    w->server.on_data = echo_data;
    w->client.on_made = hello_made;
    w->client.on_data = close_at_ten;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    assert_int_equal(weft_call_soon(w->r, spin, w), WEFT_OK);
    weft_call *t = weft_call_later(w->r, 5 * WEFT_NS_PER_MS, timer_seen, w);
    run_until(w, spun_and_echoed);
    assert_true(w->spins_at_timer > 0);
    assert_true(w->spins < 1000000);
    tp *c = proto_of(w, &w->client, 0);
    assert_int_equal(c->rx_len, 10);
    weft_call_release(t);
}

/* --------------------------------------------------- run, stop, misc */

static void stop_it(void *ctx)
{
    world *w = ctx;
    weft_reactor_stop(w->r);
}

static void nested_run(void *ctx)
{
    world *w = ctx;
    w->log[0] = weft_reactor_run(w->r);
    w->log[1] = weft_reactor_run_until(w->r, NULL, NULL, weft_now(w->r));
    w->nlog = 2;
}

static bool always(void *ctx)
{
    (void)ctx;
    return true;
}

static void run_until_and_stop(void **state)
{
    world *w = *state;
    assert_string_equal(weft_reactor_name(w->r), "epoll");
    /* Nothing to do. */
    assert_int_equal(weft_reactor_run(w->r), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(w->r, NULL, NULL, weft_now(w->r) + WEFT_NS_PER_S),
                     WEFT_ESTATE);
    /* A listener keeps the loop busy: the deadline ends it. */
    listen_local(w);
    weft_time_ns t0 = weft_now(w->r);
    assert_int_equal(weft_reactor_run_until(w->r, NULL, NULL, t0 + 50 * WEFT_NS_PER_MS),
                     WEFT_ETIMEDOUT);
    weft_time_ns dt = weft_now(w->r) - t0;
    assert_true(dt >= 50 * WEFT_NS_PER_MS);
    assert_true(dt < 2 * WEFT_NS_PER_S);
    /* A condition already true returns at once. */
    assert_int_equal(weft_reactor_run_until(w->r, always, NULL, t0 + 10 * WEFT_NS_PER_S), WEFT_OK);
    /* stop() from a call ends run(); run() inside run() is refused. */
    weft_call *s = weft_call_later(w->r, 20 * WEFT_NS_PER_MS, stop_it, w);
    assert_int_equal(weft_call_soon(w->r, nested_run, w), WEFT_OK);
    t0 = weft_now(w->r);
    assert_int_equal(weft_reactor_run(w->r), WEFT_OK);
    assert_true(weft_now(w->r) - t0 >= 20 * WEFT_NS_PER_MS);
    assert_int_equal(w->nlog, 2);
    assert_int_equal(w->log[0], WEFT_ESTATE);
    assert_int_equal(w->log[1], WEFT_ESTATE);
    weft_call_release(s);
    /* stop() also ends run_until, which did not meet its condition. */
    s = weft_call_later(w->r, 10 * WEFT_NS_PER_MS, stop_it, w);
    assert_int_equal(weft_reactor_run_until(w->r, NULL, NULL, weft_now(w->r) + 2 * WEFT_NS_PER_S),
                     WEFT_ESTATE);
    assert_false(weft_call_active(s));
    weft_call_release(s);
    /* stop() outside a run is forgotten: the next run still runs. */
    weft_reactor_stop(w->r);
    assert_int_equal(weft_reactor_run_until(w->r, NULL, NULL, weft_now(w->r) + 10 * WEFT_NS_PER_MS),
                     WEFT_ETIMEDOUT);
}

static void random_in_range(void **state)
{
    world *w = *state;
    int seen[10] = {0};
    for (int i = 0; i < 2000; i++) {
        uint32_t v = weft_reactor_random(w->r, 10, "test");
        assert_true(v < 10);
        seen[v]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(seen[i] > 100); /* each about 200 */
    assert_int_equal(weft_reactor_random(w->r, 1, "test"), 0);
    assert_int_equal(weft_reactor_random(w->r, 0, "test"), 0);
    uint32_t big = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t v = weft_reactor_random(w->r, UINT32_MAX, "test");
        assert_true(v < UINT32_MAX);
        big |= v;
    }
    assert_true(big > (1u << 31)); /* high bits do come up */
}

static bool both_made(world *w);

/* ------------------------------------------------------ listening */

static void listen_errors_and_factory_counts(void **state)
{
    world *w = *state;
    listen_local(w);
    assert_int_equal(w->server.starts, 1);
    weft_listener *again = NULL;
    assert_int_equal(weft_listen(w->r, "udp:0", &w->server.f, &again), WEFT_EENDPOINT);
    char desc[64];
    snprintf(desc, sizeof desc, "tcp:%u:interface=127.0.0.1", (unsigned)w->port);
    assert_int_equal(weft_listen(w->r, desc, &w->server.f, &again), WEFT_EADDRINUSE);
    assert_null(again);
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=no.such.host", &w->server.f, &again),
                     WEFT_ENOTFOUND);
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=127.0.0.1", NULL, &again), WEFT_EINVAL);
    assert_int_equal(w->server.starts, 1);
    /* A second listener: the factory starts once and stops after the last. */
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=127.0.0.1", &w->server.f, &again), WEFT_OK);
    assert_int_not_equal(weft_listener_address(again)->port, w->port);
    assert_int_equal(w->server.starts, 1);
    weft_listener_close(w->listener);
    weft_listener_close(w->listener); /* twice: no effect */
    assert_int_equal(w->server.stops, 0);
    weft_listener_close(again);
    assert_int_equal(w->server.stops, 1);
    /* The port is free again. */
    assert_int_equal(weft_listen(w->r, desc, &w->server.f, &again), WEFT_OK);
    assert_int_equal(w->server.starts, 2);
    /* "localhost" is the loopback address, for listening and connecting. */
    weft_listener *lh = NULL;
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=localhost", &w->server.f, &lh), WEFT_OK);
    assert_string_equal(weft_listener_address(lh)->host, "127.0.0.1");
    snprintf(desc, sizeof desc, "tcp:localhost:%u", (unsigned)weft_listener_address(lh)->port);
    assert_int_equal(weft_connect_factory(w->r, desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, both_made);
    tp *c = proto_of(w, &w->client, 0);
    assert_string_equal(c->peer.host, "127.0.0.1");
    assert_int_equal(c->peer.port, weft_listener_address(lh)->port);
}

/* ------------------------------------------------------ connections */

static void echo_round_trip(void **state)
{
    world *w = *state;
    w->server.on_data = echo_data;
    w->client.on_made = hello_made;
    w->client.on_data = close_at_ten;
    listen_local(w);
    weft_connector *cn = NULL;
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, &cn), WEFT_OK);
    assert_non_null(cn);
    assert_int_equal(weft_connector_connect(cn), WEFT_ESTATE); /* already connecting */
    assert_int_equal(w->client.starts, 1);
    run_until(w, two_lost);
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    assert_non_null(s);
    assert_non_null(c);
    assert_int_equal(c->rx_len, 10);
    assert_memory_equal(c->rx, "hello weft", 10);
    assert_int_equal(s->rx_len, 10);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
    assert_string_equal(s->reason, WEFT_REASON_DONE);
    /* Addresses agree on both ends. */
    assert_int_equal(c->peer.port, w->port);
    assert_string_equal(c->peer.host, "127.0.0.1");
    assert_int_equal(s->host.port, w->port);
    assert_int_equal(s->peer.port, c->host.port);
    assert_string_equal(s->peer.host, "127.0.0.1");
    /* Inside connection_lost the transport still answers, and refuses. */
    assert_true(c->transport_set_in_lost);
    assert_int_equal(c->write_in_lost, WEFT_ECLOSED);
    assert_int_equal(c->pause_in_lost, WEFT_ECLOSED);
    /* Client factory: the lost hook ran, the factory stopped. */
    assert_int_equal(w->client.lost_hooks, 1);
    assert_string_equal(w->client.lost_hook_reason, WEFT_REASON_DONE);
    assert_int_equal(w->client.stops, 1);
    assert_int_equal(w->server.stops, 0); /* the listener is still open */
    assert_true(s->destroyed);
    assert_true(c->destroyed);
}

static void big_then_close_made(tp *p)
{
    weft_transport *t = p->base.transport;
    uint8_t *buf = malloc(1u << 20);
    assert_non_null(buf);
    for (size_t i = 0; i < (1u << 20); i++)
        buf[i] = pattern(i);
    assert_int_equal(weft_transport_write(t, buf, 256 * 1024), WEFT_OK);
    weft_iovec iov[2] = {{buf + 256 * 1024, 256 * 1024}, {buf + 512 * 1024, 0}};
    assert_int_equal(weft_transport_writev(t, iov, 2), WEFT_OK);
    assert_int_equal(weft_transport_write(t, buf + 512 * 1024, 512 * 1024), WEFT_OK);
    assert_int_equal(weft_transport_buffered(t), 1u << 20);
    assert_int_equal(weft_transport_write(t, buf, 0), WEFT_OK); /* empty: nothing */
    assert_int_equal(weft_transport_lose_connection(t), WEFT_OK);
    assert_false(p->lost); /* reported from the loop, never from here */
    assert_int_equal(weft_transport_write(t, buf, 1), WEFT_ECLOSED);
    assert_int_equal(weft_transport_lose_connection(t), WEFT_OK);
    assert_int_equal(weft_transport_buffered(t), 1u << 20);
    free(buf);
}

static void lose_connection_delivers_buffered_data(void **state)
{
    world *w = *state;
    w->server.on_made = big_then_close_made;
    w->client.check_pattern = true;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, two_lost);
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    assert_int_equal(c->rx_len, 1u << 20);
    assert_int_equal(c->mismatches, 0);
    assert_string_equal(s->reason, WEFT_REASON_DONE);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
}

static void count_pause(void *ctx)
{
    tp *p = ctx;
    p->pauses++;
    p->producer_paused = true;
}

static void count_resume(void *ctx)
{
    tp *p = ctx;
    p->resumes++;
    p->producer_paused = false;
}

static void count_stop(void *ctx)
{
    tp *p = ctx;
    p->stops++;
}

/* The client speaks first, so it is surely connected when the server acts
 * (a reset that beats the client's connect would be a failed connect). */
static void go_made(tp *p)
{
    assert_int_equal(weft_transport_write(p->base.transport, "go", 2), WEFT_OK);
}

static void abort_on_data(tp *p, const uint8_t *data, size_t len)
{
    weft_transport *t = p->base.transport;
    weft_producer prod = {count_pause, count_resume, count_stop, p};
    assert_int_equal(weft_transport_register_producer(t, &prod), WEFT_OK);
    assert_int_equal(weft_transport_write(t, "doomed", 6), WEFT_OK);
    assert_int_equal(weft_transport_abort(t), WEFT_OK);
    assert_false(p->lost); /* one turn later */
    assert_int_equal(p->stops, 0);
    assert_int_equal(weft_transport_buffered(t), 0); /* buffer dropped */
    assert_int_equal(weft_transport_write(t, "x", 1), WEFT_ECLOSED);
    assert_int_equal(weft_transport_abort(t), WEFT_OK); /* idempotent */
    assert_int_equal(weft_transport_lose_connection(t), WEFT_OK); /* no-ops now */
    assert_int_equal(weft_transport_lose_write_connection(t), WEFT_OK);
    assert_int_equal(weft_transport_buffered(t), 0);
}

static void abort_gives_aborted_and_lost(void **state)
{
    world *w = *state;
    w->server.on_data = abort_on_data;
    w->client.on_made = go_made;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, two_lost);
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    assert_string_equal(s->reason, WEFT_REASON_ABORTED);
    assert_string_equal(c->reason, WEFT_REASON_LOST);
    assert_int_equal(c->rx_len, 0); /* nothing of the dropped buffer arrived */
    assert_int_equal(s->stops, 1);  /* the producer was told */
    assert_int_equal(w->client.lost_hooks, 1);
    assert_string_equal(w->client.lost_hook_reason, WEFT_REASON_LOST);
}

static bool server_made(world *w)
{
    tp *s = proto_of(w, &w->server, 0);
    return s && s->made;
}

/* A peer that sends its last bytes and resets: the bytes still arrive, then
 * ConnectionLost. The peer is a bare socket, so its timing is exact: data and
 * reset both wait in the kernel before the loop looks. */
static void data_before_reset_is_delivered(void **state)
{
    world *w = *state;
    listen_local(w);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(w->port);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    run_until(w, server_made);
    assert_int_equal(send(fd, "last words", 10, 0), 10);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    usleep(10000);
    close(fd);
    usleep(10000);
    run_until(w, all_lost);
    tp *s = proto_of(w, &w->server, 0);
    assert_int_equal(s->rx_len, 10);
    assert_memory_equal(s->rx, "last words", 10);
    assert_string_equal(s->reason, WEFT_REASON_LOST);
}

static void write_a(void *ctx)
{
    world *w = ctx;
    tp *s = proto_of(w, &w->server, 0);
    if (!s->lost)
        w->log[w->nlog++] = weft_transport_write(s->base.transport, "a", 1);
}

static void pause_made_server(tp *p)
{
    assert_int_equal(weft_transport_pause_reading(p->base.transport), WEFT_OK);
}

/* Writing to a peer that closed: the kernel answers with a reset, the next
 * send fails with EPIPE. The process must not get SIGPIPE (MSG_NOSIGNAL):
 * without it this test dies. */
static void write_to_closed_peer_is_lost_not_sigpipe(void **state)
{
    world *w = *state;
    w->server.on_made = pause_made_server;
    listen_local(w);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(w->port);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    run_until(w, server_made);
    close(fd); /* a FIN the paused server does not read */
    weft_call *t[5];
    for (int i = 0; i < 5; i++)
        t[i] = weft_call_later(w->r, (i + 1) * 20 * WEFT_NS_PER_MS, write_a, w);
    run_until(w, all_lost);
    for (int i = 0; i < 5; i++)
        weft_call_release(t[i]);
    tp *s = proto_of(w, &w->server, 0);
    assert_string_equal(s->reason, WEFT_REASON_LOST);
    assert_int_equal(w->log[0], WEFT_OK);
}

#define MANY 20

static void many_made(tp *p)
{
    char msg[32];
    int i = (int)(p - p->w->protos);
    snprintf(msg, sizeof msg, "client-%02d;", i);
    assert_int_equal(weft_transport_write(p->base.transport, msg, 10), WEFT_OK);
}

static bool many_done(world *w)
{
    int lost = 0;
    for (int i = 0; i < w->nprotos; i++)
        lost += w->protos[i].lost;
    return w->nprotos == 2 * MANY && lost == 2 * MANY;
}

static void many_connections_at_once(void **state)
{
    world *w = *state;
    w->server.on_data = echo_data;
    w->client.on_made = many_made;
    w->client.on_data = close_at_ten;
    listen_local(w);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, many_done);
    for (int i = 0; i < w->nprotos; i++) {
        tp *p = &w->protos[i];
        assert_string_equal(p->reason, WEFT_REASON_DONE);
        assert_int_equal(p->rx_len, 10);
        if (p->s == &w->client) {
            char msg[32];
            snprintf(msg, sizeof msg, "client-%02d;", i);
            assert_memory_equal(p->rx, msg, 10); /* its own bytes, not another's */
        }
    }
    assert_int_equal(w->client.lost_hooks, MANY);
    assert_int_equal(w->client.starts, 1);
    assert_int_equal(w->client.stops, 1);
}

static bool client_failed(world *w)
{
    return w->client.failed > 0 && w->client.reconnects_left == 0 && w->client.stops > 0;
}

static void refused_connect(void **state)
{
    world *w = *state;
    listen_local(w);
    weft_listener_close(w->listener); /* the port is closed now */
    w->client.reconnects_left = 1;     /* retry once from the hook */
    weft_connector *cn = NULL;
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, &cn), WEFT_OK);
    assert_int_equal(w->client.failed, 0); /* never synchronous */
    run_until(w, client_failed);
    assert_int_equal(w->client.failed, 2);
    assert_string_equal(w->client.fail_reason, WEFT_REASON_REFUSED);
    assert_int_equal(w->client.built, 0);
    assert_int_equal(w->client.starts, 1);
    assert_int_equal(w->client.stops, 1);
    /* The connector can be started again by hand. */
    assert_int_equal(weft_connector_connect(cn), WEFT_OK);
    assert_int_equal(w->client.starts, 2);
    w->client.stops = 0;
    run_until(w, client_failed);
    assert_int_equal(w->client.failed, 3);
    weft_connector_free(cn);
}

static void connect_timeout(void **state)
{
    world *w = *state;
    /* A listener with a backlog of 0 that never accepts: once one connection
     * waits in its queue, the kernel drops further SYNs, so connects hang. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    int fill[2];
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fill[i] >= 0);
        (void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(20000);
    snprintf(w->desc, sizeof w->desc, "tcp:127.0.0.1:%u:timeout=0.2", (unsigned)ntohs(sa.sin_port));
    weft_time_ns t0 = weft_now(w->r);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, client_failed);
    weft_time_ns dt = weft_now(w->r) - t0;
    assert_string_equal(w->client.fail_reason, WEFT_REASON_TIMED_OUT);
    assert_int_equal(w->client.failed, 1);
    assert_true(dt >= 200 * WEFT_NS_PER_MS);
    assert_true(dt < 2 * WEFT_NS_PER_S);
    close(fill[0]);
    close(fill[1]);
    close(lfd);
}

static void half_close_client_made(tp *p)
{
    weft_transport *t = p->base.transport;
    assert_int_equal(weft_transport_write(t, "ping", 4), WEFT_OK);
    assert_int_equal(weft_transport_lose_write_connection(t), WEFT_OK);
    assert_int_equal(weft_transport_lose_write_connection(t), WEFT_OK);
    assert_int_equal(weft_transport_write(t, "x", 1), WEFT_ECLOSED);
    assert_false(p->write_lost);
}

static void half_close_server_read_lost(tp *p)
{
    weft_transport *t = p->base.transport;
    assert_int_equal(p->rx_len, 4);
    assert_memory_equal(p->rx, "ping", 4);
    /* The peer stopped writing; this side still may. */
    assert_int_equal(weft_transport_write(t, "pong", 4), WEFT_OK);
    assert_int_equal(weft_transport_lose_connection(t), WEFT_OK);
}

static void half_close_client_read_lost(tp *p)
{
    assert_true(p->write_lost);
    assert_int_equal(weft_transport_lose_connection(p->base.transport), WEFT_OK);
}

static void half_close_both_aware(void **state)
{
    world *w = *state;
    w->server.aware = true;
    w->client.aware = true;
    w->client.on_made = half_close_client_made;
    w->server.on_read_lost = half_close_server_read_lost;
    w->client.on_read_lost = half_close_client_read_lost;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, two_lost);
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    assert_true(c->write_lost);
    assert_false(s->write_lost);
    assert_true(s->read_lost);
    assert_true(c->read_lost);
    assert_int_equal(c->rx_len, 4);
    assert_memory_equal(c->rx, "pong", 4);
    assert_string_equal(s->reason, WEFT_REASON_DONE);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
}

static void half_close_unaware_peer(void **state)
{
    world *w = *state;
    w->client.aware = true;
    w->client.on_made = half_close_client_made;
    w->client.on_read_lost = half_close_client_read_lost;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, two_lost);
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    /* The unaware server takes the half-close as the end. */
    assert_false(s->read_lost);
    assert_int_equal(s->rx_len, 4);
    assert_string_equal(s->reason, WEFT_REASON_DONE);
    assert_true(c->write_lost);
    assert_true(c->read_lost);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
}

#define DRAIN_BYTES (12u * 1024u * 1024u) /* more than loopback buffers hold */

static void shut_and_pause_made(tp *p)
{
    weft_transport *t = p->base.transport;
    assert_int_equal(weft_transport_lose_write_connection(t), WEFT_OK);
    assert_int_equal(weft_transport_pause_reading(t), WEFT_OK);
}

static void big_made(tp *p)
{
    uint8_t *buf = malloc(DRAIN_BYTES);
    assert_non_null(buf);
    for (size_t i = 0; i < DRAIN_BYTES; i++)
        buf[i] = pattern(i);
    assert_int_equal(weft_transport_write(p->base.transport, buf, DRAIN_BYTES), WEFT_OK);
    free(buf);
}

static bool server_lost(world *w)
{
    tp *s = proto_of(w, &w->server, 0);
    return s && s->lost;
}

/* An unaware protocol that sees the peer's half-close is done at once, yet
 * what it wrote before still reaches the peer; an aware peer whose both
 * directions are shut is closed without having to ask. */
static void unaware_end_still_drains(void **state)
{
    world *w = *state;
    w->client.aware = true;
    w->client.check_pattern = true;
    w->client.on_made = shut_and_pause_made;
    w->server.on_made = big_made;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, server_lost);
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    /* The server took the half-close as the end of the connection, while
     * its bytes still wait for the paused reader. */
    assert_string_equal(s->reason, WEFT_REASON_DONE);
    assert_true(s->buffered_in_lost > 0); /* still to be sent when it ended */
    assert_non_null(c);
    assert_false(c->lost);
    assert_int_equal(c->rx_len, 0);
    assert_int_equal(weft_transport_resume_reading(c->base.transport), WEFT_OK);
    run_until(w, two_lost);
    assert_int_equal(c->rx_len, DRAIN_BYTES);
    assert_int_equal(c->mismatches, 0);
    assert_true(c->write_lost);
    assert_true(c->read_lost);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
}

/* A push producer writes 8 MiB in 64 KiB chunks while the transport lets it. */
static void produce(tp *p)
{
    weft_transport *t = p->base.transport;
    static uint8_t chunk[CHUNK_BYTES];
    while (!p->producer_paused && p->sent < BIG_BYTES) {
        for (size_t i = 0; i < CHUNK_BYTES; i++)
            chunk[i] = pattern(p->sent + i);
        assert_int_equal(weft_transport_write(t, chunk, CHUNK_BYTES), WEFT_OK);
        p->sent += CHUNK_BYTES;
        size_t b = weft_transport_buffered(t);
        if (b > p->max_buffered)
            p->max_buffered = b;
    }
    if (p->sent == BIG_BYTES && !p->producer_paused) {
        assert_int_equal(weft_transport_unregister_producer(t), WEFT_OK);
        assert_int_equal(weft_transport_unregister_producer(t), WEFT_ESTATE);
        assert_int_equal(weft_transport_lose_connection(t), WEFT_OK);
        p->sent++; /* done */
    }
}

static void producer_resume(void *ctx)
{
    tp *p = ctx;
    count_resume(p);
    produce(p);
}

static void producer_made(tp *p)
{
    weft_transport *t = p->base.transport;
    weft_producer prod = {count_pause, producer_resume, count_stop, p};
    assert_int_equal(weft_transport_register_producer(t, NULL), WEFT_EINVAL);
    assert_int_equal(weft_transport_register_producer(t, &prod), WEFT_OK);
    assert_int_equal(weft_transport_register_producer(t, &prod), WEFT_ESTATE);
    produce(p);
}

static void large_write_with_producer(void **state)
{
    world *w = *state;
    w->server.on_made = producer_made;
    w->client.check_pattern = true;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, two_lost);
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    assert_int_equal(c->rx_len, BIG_BYTES);
    assert_int_equal(c->mismatches, 0);
    assert_true(s->pauses >= 1);
    assert_int_equal(s->resumes, s->pauses);
    assert_true(s->max_buffered <= WEFT_TRANSPORT_HIGH_WATER + CHUNK_BYTES);
    assert_int_equal(s->stops, 0); /* unregistered before the end */
    assert_string_equal(s->reason, WEFT_REASON_DONE);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
}

static void pause_made(tp *p)
{
    assert_int_equal(weft_transport_pause_reading(p->base.transport), WEFT_OK);
    assert_int_equal(weft_transport_pause_reading(p->base.transport), WEFT_OK);
}

static void abc_made(tp *p)
{
    assert_int_equal(weft_transport_write(p->base.transport, "abc", 3), WEFT_OK);
}

static void check_then_resume(void *ctx)
{
    world *w = ctx;
    tp *c = proto_of(w, &w->client, 0);
    assert_non_null(c);
    assert_true(c->made);
    assert_int_equal(c->rx_len, 0); /* paused: nothing delivered */
    w->flag = true;
    assert_int_equal(weft_transport_resume_reading(c->base.transport), WEFT_OK);
}

static bool got_abc(world *w)
{
    tp *c = proto_of(w, &w->client, 0);
    return w->flag && c && c->rx_len == 3;
}

static void pause_reading_holds_data(void **state)
{
    world *w = *state;
    w->client.on_made = pause_made;
    w->server.on_made = abc_made;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    weft_call *t = weft_call_later(w->r, 100 * WEFT_NS_PER_MS, check_then_resume, w);
    run_until(w, got_abc);
    tp *c = proto_of(w, &w->client, 0);
    assert_memory_equal(c->rx, "abc", 3);
    weft_call_release(t);
}

static void enobufs_on_data(tp *p, const uint8_t *data, size_t len)
{
    weft_transport *t = p->base.transport;
    size_t big = WEFT_TRANSPORT_BUFFER_MAX - 10;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    assert_int_equal(weft_transport_write(t, buf, big), WEFT_OK);
    assert_int_equal(weft_transport_write(t, buf, 11), WEFT_ENOBUFS);
    weft_iovec over[2] = {{buf, 5}, {buf, 6}};
    assert_int_equal(weft_transport_writev(t, over, 2), WEFT_ENOBUFS);
    weft_iovec wrap[2] = {{buf, 5}, {buf, SIZE_MAX - 2}};
    assert_int_equal(weft_transport_writev(t, wrap, 2), WEFT_ENOBUFS);
    weft_iovec bad[1] = {{NULL, 3}};
    assert_int_equal(weft_transport_writev(t, bad, 1), WEFT_EINVAL);
    assert_int_equal(weft_transport_buffered(t), big); /* refused writes left no trace */
    assert_int_equal(weft_transport_write(t, buf, 10), WEFT_OK);
    assert_int_equal(weft_transport_buffered(t), WEFT_TRANSPORT_BUFFER_MAX);
    assert_int_equal(weft_transport_write(t, buf, 1), WEFT_ENOBUFS);
    free(buf);
    assert_int_equal(weft_transport_abort(t), WEFT_OK);
}

static void write_buffer_limit(void **state)
{
    world *w = *state;
    w->server.on_data = enobufs_on_data;
    w->client.on_made = go_made;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, two_lost);
    tp *s = proto_of(w, &w->server, 0);
    assert_string_equal(s->reason, WEFT_REASON_ABORTED);
}

static bool client_lost_hooked(world *w)
{
    return w->client.lost_hooks > 0 && w->client.stops > 0;
}

static void server_refuses_protocol(void **state)
{
    world *w = *state;
    w->server.refuse = true;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, client_lost_hooked);
    tp *c = proto_of(w, &w->client, 0);
    assert_non_null(c);
    assert_true(c->made);
    assert_string_equal(c->reason, WEFT_REASON_DONE); /* the socket was closed */
    assert_int_equal(w->server.built, 1);
    assert_null(proto_of(w, &w->server, 0));
}

static bool server_lost_client_failed(world *w)
{
    tp *s = proto_of(w, &w->server, 0);
    return w->client.failed > 0 && s && s->lost;
}

static void client_refuses_protocol(void **state)
{
    world *w = *state;
    w->client.refuse = true;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, server_lost_client_failed);
    assert_string_equal(w->client.fail_reason, WEFT_REASON_NO_PROTOCOL);
    assert_int_equal(w->client.lost_hooks, 0);
    assert_int_equal(w->client.starts, 1);
    assert_int_equal(w->client.stops, 1);
    tp *s = proto_of(w, &w->server, 0);
    assert_string_equal(s->reason, WEFT_REASON_DONE);
}

static bool both_made(world *w)
{
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    return s && c && s->made && c->made;
}

static void free_closes_everything(void **state)
{
    world *w = *state;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, both_made);
    weft_call *later = weft_call_later(w->r, 10 * WEFT_NS_PER_S, cb1, w);
    weft_call_release(later);
    assert_int_equal(weft_call_soon(w->r, cb2, w), WEFT_OK);
    weft_reactor_free(w->r);
    w->r = NULL;
    tp *s = proto_of(w, &w->server, 0);
    tp *c = proto_of(w, &w->client, 0);
    assert_string_equal(s->reason, WEFT_REASON_ABORTED);
    assert_string_equal(c->reason, WEFT_REASON_ABORTED);
    assert_true(s->destroyed);
    assert_true(c->destroyed);
    assert_int_equal(w->nlog, 0); /* pending calls dropped, not run */
    assert_int_equal(w->server.stops, 1);
    assert_int_equal(w->client.stops, 1);
    assert_int_equal(w->client.lost_hooks, 0); /* no hooks while freeing */
}

static void connector_stop_and_free(void **state)
{
    world *w = *state;
    listen_local(w);
    weft_connector *cn = NULL;
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, &cn), WEFT_OK);
    weft_connector_stop(cn);
    assert_int_equal(w->client.failed, 1);
    assert_string_equal(w->client.fail_reason, WEFT_REASON_CONNECT_CANCELLED);
    assert_int_equal(w->client.stops, 1);
    weft_connector_stop(cn); /* idle: nothing */
    assert_int_equal(w->client.failed, 1);
    /* Connect again; free the connector while connected: the connection
     * lives on without its hooks. */
    assert_int_equal(weft_connector_connect(cn), WEFT_OK);
    run_until(w, both_made);
    weft_connector_free(cn);
    assert_int_equal(w->client.stops, 2);
    tp *c = proto_of(w, &w->client, 0);
    assert_int_equal(weft_transport_lose_connection(c->base.transport), WEFT_OK);
    run_until(w, two_lost);
    assert_int_equal(w->client.lost_hooks, 0);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
}

static void close_on_made(tp *p)
{
    assert_int_equal(weft_transport_lose_connection(p->base.transport), WEFT_OK);
}

static bool three_client_hooks(world *w)
{
    return w->client.lost_hooks == 3 && w->client.stops == 1;
}

static void reconnect_from_lost_hook(void **state)
{
    world *w = *state;
    w->server.on_made = close_on_made;
    w->client.reconnects_left = 2;
    listen_local(w);
    assert_int_equal(weft_connect_factory(w->r, w->desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, three_client_hooks);
    assert_int_equal(w->client.built, 3);
    assert_int_equal(w->client.starts, 1); /* one start for the whole series */
    for (int i = 0; i < 3; i++) {
        tp *c = proto_of(w, &w->client, i);
        assert_non_null(c);
        assert_string_equal(c->reason, WEFT_REASON_DONE);
    }
}

static void bad_connects(void **state)
{
    world *w = *state;
    weft_connector *cn = (weft_connector *)1;
    assert_int_equal(weft_connect_factory(w->r, "tcp:no.such.host:80", &w->client.f, &cn),
                     WEFT_ENOTFOUND);
    assert_null(cn);
    assert_int_equal(weft_connect_factory(w->r, "tcp:127.0.0.1", &w->client.f, &cn), WEFT_EENDPOINT);
    assert_int_equal(weft_connect_factory(w->r, "tcp:127.0.0.1:80", NULL, &cn), WEFT_EINVAL);
    assert_int_equal(weft_connect_factory(w->r, NULL, &w->client.f, &cn), WEFT_EINVAL);
    assert_int_equal(w->client.starts, 0);
    assert_int_equal(weft_reactor_run(w->r), WEFT_OK); /* nothing was left behind */
}

/* The reconnecting factory, built only on the interface, on real time:
 * retries after initial * factor, then * factor again, gives up after
 * max_retries. */
static bool three_failures(world *w)
{
    return w->client.failed == 3;
}

static void reconnecting_gives_up_on_real_time(void **state)
{
    world *w = *state;
    listen_local(w);
    weft_listener_close(w->listener);
    weft_reconnecting rc;
    weft_reconnecting_init(&rc, w->r, &w->client.f);
    w->client.connector_factory = &rc.factory;
    rc.initial_delay_ns = 10 * WEFT_NS_PER_MS;
    rc.delay_ns = rc.initial_delay_ns;
    rc.factor = 2.0;
    rc.jitter = 0.0;
    rc.max_retries = 2;
    weft_time_ns t0 = weft_now(w->r);
    assert_int_equal(weft_reconnecting_connect(&rc, w->desc, NULL), WEFT_OK);
    run_until(w, three_failures);
    weft_time_ns dt = weft_now(w->r) - t0;
    assert_true(dt >= 60 * WEFT_NS_PER_MS); /* 20 ms, then 40 ms */
    assert_true(dt < 2 * WEFT_NS_PER_S);
    assert_string_equal(w->client.fail_reason, WEFT_REASON_REFUSED);
    assert_int_equal(rc.retries, 3);
    assert_int_equal(rc.delay_ns, 40 * WEFT_NS_PER_MS);
    assert_int_equal(weft_reactor_run(w->r), WEFT_OK); /* gave up: nothing pending */
    assert_int_equal(w->client.failed, 3);
    /* Between attempts the connector is idle: the factory stops and starts
     * again with each retry, as Twisted's connector does. */
    assert_int_equal(w->client.starts, 3);
    assert_int_equal(w->client.stops, 3);
}

/* The bundled example protocols, the same object code the simulator runs,
 * on real sockets. */
static bool hello_received(world *w)
{
    tp *c = proto_of(w, &w->client, 0);
    return c && c->lost;
}

static weft_factory *g_hb;

static bool heartbeat_done(world *w)
{
    (void)w;
    const weft_proto_stats *st = weft_proto_factory_stats(g_hb);
    return st->closed == 1;
}

static void bundled_examples_on_real_sockets(void **state)
{
    world *w = *state;
    weft_factory *hello = weft_proto_hello_factory(NULL);
    weft_factory *pong = weft_proto_pong_factory(NULL);
    g_hb = weft_proto_heartbeat_factory("interval=5,count=3");
    assert_non_null(hello);
    assert_non_null(pong);
    assert_non_null(g_hb);
    weft_listener *lh = NULL, *lp = NULL;
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=127.0.0.1", hello, &lh), WEFT_OK);
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=127.0.0.1", pong, &lp), WEFT_OK);
    char desc[64];
    snprintf(desc, sizeof desc, "tcp:127.0.0.1:%u", (unsigned)weft_listener_address(lh)->port);
    assert_int_equal(weft_connect_factory(w->r, desc, &w->client.f, NULL), WEFT_OK);
    run_until(w, hello_received);
    tp *c = proto_of(w, &w->client, 0);
    assert_int_equal(c->rx_len, strlen("Hello Twisted"));
    assert_memory_equal(c->rx, "Hello Twisted", c->rx_len);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
    snprintf(desc, sizeof desc, "tcp:127.0.0.1:%u", (unsigned)weft_listener_address(lp)->port);
    assert_int_equal(weft_connect_factory(w->r, desc, g_hb, NULL), WEFT_OK);
    run_until(w, heartbeat_done);
    const weft_proto_stats *hb = weft_proto_factory_stats(g_hb);
    assert_int_equal(hb->connections, 1);
    assert_true(hb->lines_out >= 3);
    assert_true(hb->messages >= 2); /* PONGs back before it closed */
    assert_string_equal(hb->last_reason, WEFT_REASON_DONE);
    /* Free the reactor before the factories its protocols came from. */
    weft_reactor_free(w->r);
    w->r = NULL;
    weft_proto_factory_free(hello);
    weft_proto_factory_free(pong);
    weft_proto_factory_free(g_hb);
}

/* ---------------------------------------------------- out of memory */

static void lenient_echo(tp *p, const uint8_t *data, size_t len)
{
    if (weft_transport_write(p->base.transport, data, len) != WEFT_OK)
        (void)weft_transport_abort(p->base.transport);
}

static void lenient_hello(tp *p)
{
    if (weft_transport_write(p->base.transport, "hello weft", 10) != WEFT_OK)
        (void)weft_transport_lose_connection(p->base.transport);
}

static void lenient_close(tp *p, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    if (p->rx_len >= 10)
        (void)weft_transport_lose_connection(p->base.transport);
}

static bool settled(world *w)
{
    tp *c = proto_of(w, &w->client, 0);
    if (w->client.failed)
        return true;
    return c && c->lost && all_lost(w);
}

/* Fail the n-th allocation of a whole echo exchange, for every n: each
 * failure is an error return or a closed connection, never a crash, a hang
 * or a leak (ASan checks the last). */
static void allocation_failures(void **state)
{
    world *w = *state;
    weft_reactor_free(w->r);
    w->r = NULL;
    long reached_end = 0;
    for (long n = 0; n < 32; n++) { /* an exchange takes 13 */
        memset(w->protos, 0, sizeof w->protos);
        w->nprotos = 0;
        side_init(&w->server, w);
        side_init(&w->client, w);
        w->server.on_data = lenient_echo;
        w->client.on_made = lenient_hello;
        w->client.on_data = lenient_close;
        weft_alloc_fail_after(n);
        weft_reactor *r = weft_reactor_new_epoll();
        if (!r) {
            assert_int_equal(weft_alloc_fail_after(-1), 1);
            continue;
        }
        w->r = r;
        int err = weft_listen(r, "tcp:0:interface=127.0.0.1", &w->server.f, &w->listener);
        if (err == WEFT_OK) {
            snprintf(w->desc, sizeof w->desc, "tcp:127.0.0.1:%u:timeout=5",
                     (unsigned)weft_listener_address(w->listener)->port);
            err = weft_connect_factory(r, w->desc, &w->client.f, NULL);
            if (err == WEFT_OK) {
                w->pred = settled;
                err = weft_reactor_run_until(r, pred_tramp, w, weft_now(r) + 2 * WEFT_NS_PER_S);
                assert_int_equal(err, WEFT_OK);
            } else {
                assert_int_equal(err, WEFT_ENOMEM);
            }
        } else {
            assert_int_equal(err, WEFT_ENOMEM);
        }
        long failed = weft_alloc_fail_after(-1);
        if (failed == 0)
            reached_end++;
        weft_reactor_free(r);
        w->r = NULL;
        for (int i = 0; i < w->nprotos; i++) {
            assert_true(w->protos[i].destroyed);
            free(w->protos[i].rx);
            w->protos[i].rx = NULL;
        }
        assert_int_equal(w->server.starts, w->server.stops);
        assert_int_equal(w->client.starts, w->client.stops);
    }
    assert_true(reached_end > 0); /* the tail of the range ran unharmed */
    w->nprotos = 0;
}

/* --------------------------------------------- weft_connect (Deferred) */

static weft_deferred *pending_d;

static void *value_of(weft_deferred *d)
{
    weft_result res;
    assert_int_equal(weft_deferred_take_result(d, &res), WEFT_OK);
    assert_int_equal(res.kind, WEFT_RESULT_VALUE);
    return res.value;
}

static bool deferred_fired(world *w)
{
    (void)w;
    return weft_deferred_peek(pending_d, NULL) != WEFT_DEFERRED_PENDING;
}

static void deferred_connect(void **state)
{
    world *w = *state;
    w->server.on_data = echo_data;
    w->client.on_made = hello_made;
    w->client.on_data = close_at_ten;
    listen_local(w);
    weft_deferred *d = NULL;
    assert_int_equal(weft_connect(w->r, w->desc, &w->client.f, &d), WEFT_OK);
    assert_non_null(d);
    assert_int_equal(weft_deferred_peek(d, NULL), WEFT_DEFERRED_PENDING);
    pending_d = d;
    run_until(w, deferred_fired);
    weft_result res;
    assert_int_equal(weft_deferred_take_result(d, &res), WEFT_OK);
    assert_int_equal(res.kind, WEFT_RESULT_VALUE);
    tp *c = proto_of(w, &w->client, 0);
    assert_ptr_equal(res.value, &c->base);
    assert_true(c->made);
    assert_ptr_equal(c->base.factory, &w->client.f);
    weft_deferred_unref(d);
    run_until(w, two_lost);
    assert_int_equal(c->rx_len, 10);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
    assert_int_equal(w->client.starts, 1);
    assert_int_equal(w->client.stops, 1);
}

static void deferred_connect_refused(void **state)
{
    world *w = *state;
    listen_local(w);
    weft_listener_close(w->listener);
    weft_deferred *d = NULL;
    assert_int_equal(weft_connect(w->r, w->desc, &w->client.f, &d), WEFT_OK);
    pending_d = d;
    run_until(w, deferred_fired);
    weft_result res;
    assert_int_equal(weft_deferred_take_result(d, &res), WEFT_OK);
    assert_int_equal(res.kind, WEFT_RESULT_FAILURE);
    assert_string_equal(res.failure->type, WEFT_REASON_REFUSED);
    weft_failure_free(res.failure);
    weft_deferred_unref(d);
    assert_int_equal(w->client.failed, 0); /* the Deferred reports it, not the hook */
    assert_int_equal(w->client.starts, 1);
    assert_int_equal(w->client.stops, 1);
    assert_int_equal(weft_reactor_run(w->r), WEFT_OK); /* nothing left behind */
}

static void deferred_connect_cancel_and_free(void **state)
{
    world *w = *state;
    listen_local(w);
    weft_deferred *d = NULL;
    assert_int_equal(weft_connect(w->r, w->desc, &w->client.f, &d), WEFT_OK);
    assert_int_equal(weft_deferred_cancel(d), WEFT_OK);
    weft_result res;
    assert_int_equal(weft_deferred_take_result(d, &res), WEFT_OK);
    assert_int_equal(res.kind, WEFT_RESULT_FAILURE);
    assert_string_equal(res.failure->type, WEFT_REASON_CONNECT_CANCELLED);
    weft_failure_free(res.failure);
    weft_deferred_unref(d);
    assert_int_equal(w->client.stops, w->client.starts);
    /* A connection made through weft_connect and still open when the
     * reactor goes away ends like any other. */
    assert_int_equal(weft_connect(w->r, w->desc, &w->client.f, &d), WEFT_OK);
    pending_d = d;
    run_until(w, deferred_fired);
    tp *c = proto_of(w, &w->client, 0);
    assert_non_null(c);
    assert_ptr_equal(value_of(d), &c->base);
    weft_deferred_unref(d);
    /* A connect still in progress when the reactor goes away fails. */
    assert_int_equal(weft_connect(w->r, w->desc, &w->client.f, &d), WEFT_OK);
    weft_reactor_free(w->r);
    w->r = NULL;
    assert_int_equal(weft_deferred_take_result(d, &res), WEFT_OK);
    assert_int_equal(res.kind, WEFT_RESULT_FAILURE);
    assert_string_equal(res.failure->type, WEFT_REASON_ABORTED);
    weft_failure_free(res.failure);
    weft_deferred_unref(d);
    assert_int_equal(w->client.stops, w->client.starts);
    assert_int_equal(w->server.stops, 1);
    assert_string_equal(c->reason, WEFT_REASON_ABORTED);
    assert_true(c->destroyed);
}

/* ------------------------------------- protocols without optional ops */

/* Only the two required operations: no connection_made, no
 * read_connection_lost, no write_connection_lost, no destroy. The backend
 * must skip the missing ones, as the simulator does. */
typedef struct bare {
    weft_protocol base;
    bool echo;
    char rx[32];
    size_t rx_len;
    bool lost;
    bool disconnecting_in_lost;
    char reason[48];
} bare;

typedef struct bare_factory {
    weft_factory f;
    bool echo;
    bare protos[4];
    int n;
} bare_factory;

static void bare_data(weft_protocol *bp, const uint8_t *data, size_t len)
{
    bare *p = (bare *)bp;
    assert_false(p->lost);
    assert_true(p->rx_len + len <= sizeof p->rx);
    memcpy(p->rx + p->rx_len, data, len);
    p->rx_len += len;
    if (p->echo)
        assert_int_equal(weft_transport_write(bp->transport, data, len), WEFT_OK);
}

static void bare_lost(weft_protocol *bp, const weft_failure *reason)
{
    bare *p = (bare *)bp;
    assert_false(p->lost);
    p->lost = true;
    p->disconnecting_in_lost = bp->transport && weft_transport_disconnecting(bp->transport);
    snprintf(p->reason, sizeof p->reason, "%s", reason->type);
}

static const weft_protocol_ops bare_ops = {
    .data_received = bare_data,
    .connection_lost = bare_lost,
};

static weft_protocol *bare_build(weft_factory *f, const weft_address *peer)
{
    bare_factory *bf = (bare_factory *)f;
    (void)peer;
    assert_true(bf->n < 4);
    bare *p = &bf->protos[bf->n++];
    memset(p, 0, sizeof *p);
    p->base.ops = &bare_ops;
    p->echo = bf->echo;
    return &p->base;
}

static bare_factory bare_server, bare_client;

static bool bare_first_done(world *w)
{
    (void)w;
    return bare_server.n >= 1 && bare_server.protos[0].lost && bare_client.n >= 1 &&
           bare_client.protos[0].lost;
}

static bool bare_second_up(world *w)
{
    (void)w;
    return bare_server.n >= 2 && bare_client.n >= 2;
}

static bool bare_second_done(world *w)
{
    (void)w;
    return bare_server.protos[1].lost && bare_client.protos[1].lost;
}

static void optional_ops_may_be_null(void **state)
{
    world *w = *state;
    memset(&bare_server, 0, sizeof bare_server);
    memset(&bare_client, 0, sizeof bare_client);
    bare_server.f.build_protocol = bare_build;
    bare_server.echo = true;
    bare_client.f.build_protocol = bare_build;
    assert_int_equal(weft_listen(w->r, "tcp:0:interface=127.0.0.1", &bare_server.f, &w->listener),
                     WEFT_OK);
    snprintf(w->desc, sizeof w->desc, "tcp:127.0.0.1:%u",
             (unsigned)weft_listener_address(w->listener)->port);

    /* Through weft_connect: the Deferred hands over the protocol, which
     * writes and half-closes; the server (no read_connection_lost) echoes,
     * sees the end of input as the connection's end, and its echo still
     * drains to the client. */
    weft_deferred *d = NULL;
    assert_int_equal(weft_connect(w->r, w->desc, &bare_client.f, &d), WEFT_OK);
    pending_d = d;
    run_until(w, deferred_fired);
    bare *c = value_of(d);
    weft_deferred_unref(d);
    assert_ptr_equal(c, &bare_client.protos[0]);
    assert_int_equal(weft_transport_write(c->base.transport, "hello", 5), WEFT_OK);
    assert_int_equal(weft_transport_lose_write_connection(c->base.transport), WEFT_OK);
    assert_false(weft_transport_disconnecting(c->base.transport)); /* half-close only */
    run_until(w, bare_first_done);
    bare *s = &bare_server.protos[0];
    assert_int_equal(s->rx_len, 5);
    assert_memory_equal(s->rx, "hello", 5);
    assert_string_equal(s->reason, WEFT_REASON_DONE);
    assert_int_equal(c->rx_len, 5);
    assert_memory_equal(c->rx, "hello", 5);
    assert_string_equal(c->reason, WEFT_REASON_DONE);
    assert_null(c->base.transport);
    assert_null(s->base.transport);
    assert_true(c->disconnecting_in_lost);
    assert_true(s->disconnecting_in_lost);

    /* Through a plain connector: the client protocol has no connection_made
     * at all; it is aborted from outside once both ends exist. */
    weft_connector *cn = NULL;
    assert_int_equal(weft_connect_factory(w->r, w->desc, &bare_client.f, &cn), WEFT_OK);
    run_until(w, bare_second_up);
    bare *c2 = &bare_client.protos[1];
    assert_non_null(c2->base.transport);
    assert_false(c2->lost);
    assert_false(weft_transport_disconnecting(c2->base.transport));
    assert_int_equal(weft_transport_abort(c2->base.transport), WEFT_OK);
    assert_true(weft_transport_disconnecting(c2->base.transport));
    run_until(w, bare_second_done);
    assert_string_equal(c2->reason, WEFT_REASON_ABORTED);
    assert_string_equal(bare_server.protos[1].reason, WEFT_REASON_LOST);
    assert_true(c2->disconnecting_in_lost);
    assert_int_equal(c2->rx_len, 0);
    assert_int_equal(bare_server.protos[1].rx_len, 0);
    weft_connector_free(cn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(timers_run_in_time_order),
        T(timers_cancel_reset_delay),
        T(pass_rule_keeps_io_and_timers_alive),
        T(run_until_and_stop),
        T(random_in_range),
        T(listen_errors_and_factory_counts),
        T(echo_round_trip),
        T(lose_connection_delivers_buffered_data),
        T(abort_gives_aborted_and_lost),
        T(refused_connect),
        T(data_before_reset_is_delivered),
        T(write_to_closed_peer_is_lost_not_sigpipe),
        T(many_connections_at_once),
        T(connect_timeout),
        T(half_close_both_aware),
        T(half_close_unaware_peer),
        T(unaware_end_still_drains),
        T(large_write_with_producer),
        T(pause_reading_holds_data),
        T(write_buffer_limit),
        T(server_refuses_protocol),
        T(client_refuses_protocol),
        T(free_closes_everything),
        T(connector_stop_and_free),
        T(reconnect_from_lost_hook),
        T(reconnecting_gives_up_on_real_time),
        T(bundled_examples_on_real_sockets),
        T(bad_connects),
        T(allocation_failures),
        T(deferred_connect),
        T(deferred_connect_refused),
        T(deferred_connect_cancel_and_free),
        T(optional_ops_may_be_null),
#undef T
    };
    /* WEFT_TEST_FILTER=name (wildcards allowed) runs the matching tests only. */
    const char *filter = getenv("WEFT_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("epoll", tests, NULL, NULL);
}
