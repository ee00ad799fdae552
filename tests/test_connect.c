/* weft_connect on the simulated network: the Deferred fires with the protocol
 * after connection_made, fails with the connect failure, NoProtocol, or
 * ConnectingCancelled (and the connector stops), and nothing leaks whoever
 * ends first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/sim.h"

#define MS WEFT_NS_PER_MS

/* ------------------------------------------------------ a test protocol */

typedef struct tproto {
    weft_protocol base;
    struct tworld *world;
    bool client;
} tproto;

typedef struct tworld {
    weft_sim *sim;
    weft_reactor *r;
    weft_factory server_f, client_f;
    weft_listener *listener;
    char log[512];
    int client_made, client_lost, server_made, server_lost, destroyed;
    int client_starts, client_stops;
    bool refuse_client; /* client build_protocol returns NULL */
    bool cancel_in_made;
    weft_deferred *d;
    char lost_reason[32];
    const char *expect_peer; /* NULL: "server" */
} tworld;

static void logf_(tworld *w, const char *s)
{
    size_t n = strlen(w->log);
    snprintf(w->log + n, sizeof w->log - n, "%s%s", n ? " " : "", s);
}

static void tp_made(weft_protocol *p)
{
    tproto *t = (tproto *)p;
    if (t->client) {
        t->world->client_made++;
        assert_ptr_equal(p->factory, &t->world->client_f);
        assert_non_null(p->transport);
        logf_(t->world, "made");
        if (t->world->cancel_in_made)
            weft_deferred_cancel(t->world->d);
    } else {
        t->world->server_made++;
    }
}

static void tp_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    (void)p;
    (void)data;
    (void)len;
}

static void tp_lost(weft_protocol *p, const weft_failure *reason)
{
    tproto *t = (tproto *)p;
    if (t->client) {
        t->world->client_lost++;
        snprintf(t->world->lost_reason, sizeof t->world->lost_reason, "%s", reason->type);
        logf_(t->world, "lost");
    } else {
        t->world->server_lost++;
    }
}

static void tp_destroy(weft_protocol *p)
{
    ((tproto *)p)->world->destroyed++;
    free(p);
}

static const weft_protocol_ops tp_ops = {
    .connection_made = tp_made,
    .data_received = tp_data,
    .connection_lost = tp_lost,
    .destroy = tp_destroy,
};

static weft_protocol *build(tworld *w, bool client)
{
    tproto *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->base.ops = &tp_ops;
    t->world = w;
    t->client = client;
    return &t->base;
}

static weft_protocol *server_build(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    return build(f->ctx, false);
}

static weft_protocol *client_build(weft_factory *f, const weft_address *peer)
{
    tworld *w = f->ctx;
    assert_string_equal(peer->host, w->expect_peer ? w->expect_peer : "server");
    if (w->refuse_client)
        return NULL;
    return build(w, true);
}

static void client_start(weft_factory *f)
{
    ((tworld *)f->ctx)->client_starts++;
}

static void client_stop(weft_factory *f)
{
    ((tworld *)f->ctx)->client_stops++;
}

static void world_init(tworld *w, uint64_t seed, bool listen)
{
    memset(w, 0, sizeof *w);
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.net.latency_min_ns = 1 * MS;
    cfg.net.latency_max_ns = 5 * MS;
    cfg.max_events = 100000;
    w->sim = weft_sim_new(&cfg, weft_choice_seeded(seed));
    assert_non_null(w->sim);
    w->r = weft_sim_reactor(w->sim);
    w->server_f.build_protocol = server_build;
    w->server_f.ctx = w;
    w->client_f.build_protocol = client_build;
    w->client_f.start = client_start;
    w->client_f.stop = client_stop;
    w->client_f.ctx = w;
    assert_int_equal(weft_sim_add_host(w->sim, "server"), WEFT_OK);
    if (listen) {
        assert_int_equal(weft_sim_set_current_host(w->sim, "server"), WEFT_OK);
        assert_int_equal(weft_listen(w->r, "tcp:2000", &w->server_f, &w->listener), WEFT_OK);
    }
    assert_int_equal(weft_sim_set_current_host(w->sim, "localhost"), WEFT_OK);
}

static void world_fini(tworld *w)
{
    weft_deferred_unref(w->d);
    weft_sim_free(w->sim);
}

static weft_result on_connected(weft_result in, void *ctx)
{
    tworld *w = ctx;
    weft_protocol *p = in.value;
    assert_non_null(p);
    /* connection_made already ran, and the protocol is the user's again. */
    assert_int_equal(w->client_made, 1);
    assert_ptr_equal(p->ops, &tp_ops);
    assert_ptr_equal(p->factory, &w->client_f);
    logf_(w, "deferred");
    return in;
}

static void expect_failed(weft_deferred *d, const char *type)
{
    weft_result res;
    assert_int_equal(weft_deferred_peek(d, &res), WEFT_DEFERRED_FAILED);
    if (strcmp(res.failure->type, type) != 0)
        print_error("failed with %s (%s), expected %s\n", res.failure->type,
                    res.failure->message, type);
    assert_string_equal(res.failure->type, type);
    weft_deferred_take_result(d, &res);
    weft_failure_free(res.failure);
}

/* --------------------------------------------------------------- tests */

static void connect_fires_after_connection_made(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_deferred_add_callback(w.d, on_connected, &w), WEFT_OK);
    assert_int_equal(w.client_starts, 1);
    assert_int_equal(weft_deferred_peek(w.d, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    weft_result res;
    assert_int_equal(weft_deferred_peek(w.d, &res), WEFT_DEFERRED_SUCCEEDED);
    weft_protocol *p = res.value;
    assert_string_equal(w.log, "made deferred");
    assert_int_equal(w.server_made, 1);
    assert_string_equal(weft_transport_peer(p->transport)->host, "server");
    assert_int_equal(weft_transport_peer(p->transport)->port, 2000);
    /* Cancelling after the fact changes nothing. */
    assert_int_equal(weft_deferred_cancel(w.d), WEFT_OK);
    assert_int_equal(weft_deferred_peek(w.d, NULL), WEFT_DEFERRED_SUCCEEDED);
    /* The connection ends: the wrapper goes with it (ASan checks). */
    assert_int_equal(weft_transport_lose_connection(p->transport), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.client_lost, 1);
    assert_string_equal(w.lost_reason, WEFT_REASON_DONE);
    assert_int_equal(w.client_stops, 1);
    assert_int_equal(weft_sim_open_connections(w.sim), 0);
    world_fini(&w);
}

static void refused_without_listener(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, false);
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    expect_failed(w.d, WEFT_REASON_REFUSED);
    assert_int_equal(w.client_made, 0);
    assert_int_equal(w.client_starts, 1);
    assert_int_equal(w.client_stops, 1);
    world_fini(&w);
}

static void unknown_host_is_unreachable(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    assert_int_equal(weft_connect(w.r, "tcp:nowhere:2000", &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    expect_failed(w.d, WEFT_REASON_UNREACHABLE);
    world_fini(&w);
}

static void connect_timeout_under_partition(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    assert_int_equal(weft_sim_partition(w.sim, "localhost", "server"), WEFT_OK);
    assert_int_equal(weft_connect(w.r, "tcp:host=server:port=2000:timeout=1.5", &w.client_f, &w.d),
                     WEFT_OK);
    assert_int_equal(weft_sim_run_until(w.sim, 1500 * MS - 1), WEFT_OK);
    assert_int_equal(weft_deferred_peek(w.d, NULL), WEFT_DEFERRED_PENDING);
    assert_int_equal(weft_sim_run_until(w.sim, 1500 * MS), WEFT_OK);
    expect_failed(w.d, WEFT_REASON_TIMED_OUT);
    assert_int_equal(w.server_made, 0);
    world_fini(&w);
}

static void malformed_endpoint_and_bad_arguments(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    weft_deferred *d = (weft_deferred *)1;
    assert_int_equal(weft_connect(w.r, "tcp:server:99999", &w.client_f, &d), WEFT_EENDPOINT);
    assert_null(d);
    assert_int_equal(weft_connect(w.r, "udp:server:1", &w.client_f, &d), WEFT_EENDPOINT);
    assert_int_equal(weft_connect(w.r, "tcp:server", &w.client_f, &d), WEFT_EENDPOINT);
    assert_int_equal(w.client_starts, 0);
    assert_int_equal(weft_connect(NULL, "tcp:server:1", &w.client_f, &d), WEFT_EINVAL);
    assert_int_equal(weft_connect(w.r, NULL, &w.client_f, &d), WEFT_EINVAL);
    assert_int_equal(weft_connect(w.r, "tcp:server:1", NULL, &d), WEFT_EINVAL);
    assert_int_equal(weft_connect(w.r, "tcp:server:1", &w.client_f, NULL), WEFT_EINVAL);
    weft_factory nobuild = {0};
    assert_int_equal(weft_connect(w.r, "tcp:server:1", &nobuild, &d), WEFT_EINVAL);
    assert_null(d);
    assert_int_equal(weft_sim_pending(w.sim), 0);
    world_fini(&w);
}

static void no_protocol(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    w.refuse_client = true;
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    expect_failed(w.d, WEFT_REASON_NO_PROTOCOL);
    assert_int_equal(w.client_made, 0);
    assert_int_equal(w.client_stops, 1);
    /* The server saw the connection open and close. */
    assert_int_equal(w.server_made, 1);
    assert_int_equal(w.server_lost, 1);
    world_fini(&w);
}

static void cancel_before_connected(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_deferred_cancel(w.d), WEFT_OK);
    weft_result res;
    assert_int_equal(weft_deferred_peek(w.d, &res), WEFT_DEFERRED_FAILED);
    assert_string_equal(res.failure->message, "connecting to server:2000 was cancelled");
    expect_failed(w.d, WEFT_REASON_CONNECT_CANCELLED);
    assert_int_equal(w.client_stops, 1); /* the connector stopped */
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.client_made, 0);
    assert_int_equal(weft_sim_open_connections(w.sim), 0);
    world_fini(&w);
}

static void cancel_midway_over_seeds(void **state)
{
    (void)state;
    /* Cancel at every moment of the handshake: whatever the timing, the
     * Deferred ends exactly once, the client protocol never half-exists, and
     * nothing stays open. */
    int cancelled = 0, connected = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        for (int64_t at = 0; at <= 12 * MS; at += 1 * MS) {
            tworld w;
            world_init(&w, seed, true);
            assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
            assert_int_equal(weft_sim_run_until(w.sim, at), WEFT_OK);
            assert_int_equal(weft_deferred_cancel(w.d), WEFT_OK);
            weft_result res;
            weft_deferred_state st = weft_deferred_peek(w.d, &res);
            if (st == WEFT_DEFERRED_SUCCEEDED) {
                connected++;
                assert_int_equal(w.client_made, 1);
                weft_protocol *p = res.value;
                weft_transport_abort(p->transport);
            } else {
                cancelled++;
                expect_failed(w.d, WEFT_REASON_CONNECT_CANCELLED);
                assert_int_equal(w.client_made, 0);
            }
            assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
            assert_int_equal(weft_sim_open_connections(w.sim), 0);
            assert_int_equal(w.client_starts, w.client_stops);
            world_fini(&w);
        }
    }
    assert_true(cancelled > 0);
    assert_true(connected > 0);
}

static void cancel_from_connection_made(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    w.cancel_in_made = true;
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    /* Cancelled while connection_made ran: the Deferred fails, but the
     * connection exists and the protocol still owns it. */
    expect_failed(w.d, WEFT_REASON_CONNECT_CANCELLED);
    assert_int_equal(w.client_made, 1);
    assert_int_equal(weft_sim_open_connections(w.sim), 1);
    world_fini(&w);
    assert_int_equal(w.client_lost, 1); /* the reactor closed it */
}

static void reactor_freed_while_connecting(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
    weft_sim_free(w.sim);
    expect_failed(w.d, WEFT_REASON_ABORTED);
    /* The canceller can no longer run. */
    assert_int_equal(weft_deferred_cancel(w.d), WEFT_OK);
    weft_deferred_unref(w.d);
    assert_int_equal(w.client_starts, 1);
    assert_int_equal(w.client_stops, 1);
}

static void reactor_freed_while_connected(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(weft_deferred_peek(w.d, NULL), WEFT_DEFERRED_SUCCEEDED);
    weft_sim_free(w.sim);
    assert_int_equal(w.client_lost, 1);
    assert_string_equal(w.lost_reason, WEFT_REASON_ABORTED);
    assert_int_equal(w.client_stops, 1);
    weft_deferred_unref(w.d);
}

static void dropped_deferred_still_connects(void **state)
{
    (void)state;
    tworld w;
    world_init(&w, 1, true);
    weft_deferred *d;
    assert_int_equal(weft_connect(w.r, "tcp:server:2000", &w.client_f, &d), WEFT_OK);
    weft_deferred_unref(d);
    assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
    assert_int_equal(w.client_made, 1);
    world_fini(&w);
}

static void out_of_memory(void **state)
{
    (void)state;
    bool ok = false;
    for (long n = 0; n < 30 && !ok; n++) {
        tworld w;
        world_init(&w, 1, true);
        weft_alloc_fail_after(n);
        int rc = weft_connect(w.r, "tcp:server:2000", &w.client_f, &w.d);
        weft_alloc_fail_after(-1);
        if (rc == WEFT_OK) {
            ok = true;
            assert_int_equal(weft_sim_run_until_quiet(w.sim), WEFT_OK);
            assert_int_equal(weft_deferred_peek(w.d, NULL), WEFT_DEFERRED_SUCCEEDED);
        } else {
            assert_int_equal(rc, WEFT_ENOMEM);
            assert_null(w.d);
            assert_int_equal(w.client_starts, w.client_stops);
        }
        world_fini(&w);
    }
    assert_true(ok);
}

/* -------------------------------------------- the same on the real reactor */

static bool deferred_fired(void *ctx)
{
    return weft_deferred_peek(ctx, NULL) != WEFT_DEFERRED_PENDING;
}

#define REAL_LIMIT_NS (5 * WEFT_NS_PER_S)

static bool client_gone(void *ctx)
{
    tworld *w = ctx;
    return w->client_lost > 0;
}

static void epoll_world(tworld *w)
{
    memset(w, 0, sizeof *w);
    w->r = weft_reactor_new_epoll();
    assert_non_null(w->r);
    w->expect_peer = "127.0.0.1";
    w->server_f.build_protocol = server_build;
    w->server_f.ctx = w;
    w->client_f.build_protocol = client_build;
    w->client_f.start = client_start;
    w->client_f.stop = client_stop;
    w->client_f.ctx = w;
}

static void real_reactor_connect_and_refused(void **state)
{
    (void)state;
    tworld w;
    epoll_world(&w);
    assert_int_equal(weft_listen(w.r, "tcp:0:interface=127.0.0.1", &w.server_f, &w.listener),
                     WEFT_OK);
    char desc[64];
    unsigned port = weft_listener_address(w.listener)->port;
    snprintf(desc, sizeof desc, "tcp:127.0.0.1:%u", port);
    assert_int_equal(weft_connect(w.r, desc, &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_deferred_add_callback(w.d, on_connected, &w), WEFT_OK);
    assert_int_equal(
        weft_reactor_run_until(w.r, deferred_fired, w.d, weft_now(w.r) + REAL_LIMIT_NS), WEFT_OK);
    weft_result res;
    assert_int_equal(weft_deferred_peek(w.d, &res), WEFT_DEFERRED_SUCCEEDED);
    assert_string_equal(w.log, "made deferred");
    weft_protocol *p = res.value;
    assert_int_equal(weft_transport_peer(p->transport)->port, port);
    assert_int_equal(weft_transport_abort(p->transport), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(w.r, client_gone, &w, weft_now(w.r) + REAL_LIMIT_NS),
                     WEFT_OK);
    assert_string_equal(w.lost_reason, WEFT_REASON_ABORTED);
    weft_deferred_unref(w.d);
    w.d = NULL;

    /* Refused: connect to the port after its listener is closed. */
    weft_listener_close(w.listener);
    assert_int_equal(weft_connect(w.r, desc, &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(
        weft_reactor_run_until(w.r, deferred_fired, w.d, weft_now(w.r) + REAL_LIMIT_NS), WEFT_OK);
    expect_failed(w.d, WEFT_REASON_REFUSED);
    weft_deferred_unref(w.d);
    w.d = NULL;

    /* Cancelled while connecting (the cancel comes before any I/O turn). */
    assert_int_equal(weft_connect(w.r, desc, &w.client_f, &w.d), WEFT_OK);
    assert_int_equal(weft_deferred_cancel(w.d), WEFT_OK);
    expect_failed(w.d, WEFT_REASON_CONNECT_CANCELLED);
    assert_int_equal(w.client_starts, w.client_stops);
    weft_deferred_unref(w.d);
    w.d = NULL;
    weft_reactor_free(w.r);
}

static void real_reactor_freed_while_connecting_and_connected(void **state)
{
    (void)state;
    tworld w;
    epoll_world(&w);
    assert_int_equal(weft_listen(w.r, "tcp:0:interface=127.0.0.1", &w.server_f, &w.listener),
                     WEFT_OK);
    char desc[64];
    snprintf(desc, sizeof desc, "tcp:127.0.0.1:%u",
             (unsigned)weft_listener_address(w.listener)->port);
    weft_deferred *connected = NULL;
    assert_int_equal(weft_connect(w.r, desc, &w.client_f, &connected), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(w.r, deferred_fired, connected,
                                            weft_now(w.r) + REAL_LIMIT_NS),
                     WEFT_OK);
    assert_int_equal(weft_deferred_peek(connected, NULL), WEFT_DEFERRED_SUCCEEDED);
    /* A second one, still connecting when the reactor goes. */
    assert_int_equal(weft_connect(w.r, desc, &w.client_f, &w.d), WEFT_OK);
    weft_reactor_free(w.r);
    expect_failed(w.d, WEFT_REASON_ABORTED);
    assert_int_equal(weft_deferred_cancel(w.d), WEFT_OK); /* no canceller left to run */
    assert_int_equal(w.client_lost, 1);
    assert_string_equal(w.lost_reason, WEFT_REASON_ABORTED);
    assert_int_equal(w.client_starts, w.client_stops);
    weft_deferred_unref(connected);
    weft_deferred_unref(w.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_fires_after_connection_made),
        cmocka_unit_test(refused_without_listener),
        cmocka_unit_test(unknown_host_is_unreachable),
        cmocka_unit_test(connect_timeout_under_partition),
        cmocka_unit_test(malformed_endpoint_and_bad_arguments),
        cmocka_unit_test(no_protocol),
        cmocka_unit_test(cancel_before_connected),
        cmocka_unit_test(cancel_midway_over_seeds),
        cmocka_unit_test(cancel_from_connection_made),
        cmocka_unit_test(reactor_freed_while_connecting),
        cmocka_unit_test(reactor_freed_while_connected),
        cmocka_unit_test(dropped_deferred_still_connects),
        cmocka_unit_test(out_of_memory),
        cmocka_unit_test(real_reactor_connect_and_refused),
        cmocka_unit_test(real_reactor_freed_while_connecting_and_connected),
    };
    return cmocka_run_group_tests_name("connect", tests, NULL, NULL);
}
