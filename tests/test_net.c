/* The simulated network: hosts, listeners, connects (made, refused, timed out,
 * refused by a factory), every transport operation, every close / abort /
 * half-close ordering, addresses, latency bounds, chunking and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/reactor.h"
#include "weft/sim.h"

#include "tests/support/net_harness.h"

/* --------------------------------------------------- Hosts, listeners */

static void hosts_by_name(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, false);
    assert_int_equal(weft_sim_add_host(w->sim, "server"), WEFT_EEXIST);
    assert_int_equal(weft_sim_add_host(w->sim, "localhost"), WEFT_EEXIST); /* host 0 */
    assert_int_equal(weft_sim_add_host(w->sim, ""), WEFT_EINVAL);
    char longname[WEFT_HOST_MAX + 1];
    memset(longname, 'h', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(weft_sim_add_host(w->sim, longname), WEFT_EINVAL);
    longname[WEFT_HOST_MAX - 1] = '\0'; /* 63 bytes: the longest allowed */
    assert_int_equal(weft_sim_add_host(w->sim, longname), WEFT_OK);
    assert_int_equal(weft_sim_add_host(w->sim, NULL), WEFT_EINVAL);
    assert_int_equal(weft_sim_set_current_host(w->sim, ""), WEFT_EINVAL);
    /* Created on demand by set_current_host. */
    assert_int_equal(weft_sim_set_current_host(w->sim, "fresh"), WEFT_OK);
    assert_int_equal(weft_sim_add_host(w->sim, "fresh"), WEFT_EEXIST);
    world_free(w);
}

static void listen_addresses_and_conflicts(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, false);
    weft_listener *a = listen_on(w, "server", "tcp:2000");
    assert_string_equal(weft_listener_address(a)->host, "server");
    assert_int_equal(weft_listener_address(a)->port, 2000);
    assert_int_equal(w->server_starts, 1);
    /* Same host and port: in use. Another host: fine. */
    weft_listener *dup = (weft_listener *)1;
    assert_int_equal(weft_listen(w->r, "tcp:2000", &w->server_f, &dup), WEFT_EADDRINUSE);
    assert_null(dup);
    weft_listener *b = listen_on(w, "client", "tcp:2000");
    assert_string_equal(weft_listener_address(b)->host, "client");
    assert_int_equal(w->server_starts, 1); /* doStart counts ports: start once */
    /* The interface names the host. */
    weft_listener *c = NULL;
    assert_int_equal(weft_listen(w->r, "tcp:port=2001:interface=other", &w->server_f, &c),
                     WEFT_OK);
    assert_string_equal(weft_listener_address(c)->host, "other");
    /* Port 0: a free port from the host's counter, deterministic. */
    weft_listener *d = listen_on(w, "server", "tcp:0");
    weft_listener *e = listen_on(w, "server", "tcp:0");
    assert_int_equal(weft_listener_address(d)->port, 49152);
    assert_int_equal(weft_listener_address(e)->port, 49153);
    weft_listener_close(a);
    weft_listener_close(b);
    weft_listener_close(c);
    weft_listener_close(d);
    assert_int_equal(w->server_stops, 0);
    weft_listener_close(e);
    assert_int_equal(w->server_stops, 1);
    /* Closed: the port is free again, and connects are refused meanwhile. */
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    a = listen_on(w, "server", "tcp:2000");
    weft_listener_close(a);
    /* Bad descriptions are the parser's errors. */
    assert_int_equal(weft_listen(w->r, "tcp:notaport", &w->server_f, NULL), WEFT_EENDPOINT);
    world_free(w);
}

/* ------------------------------------------------------------ Connect */

static void greet(tproto *p)
{
    write_str(p->base.transport, "hello");
}

static void connect_exchange_and_addresses(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(3 * MS, 3 * MS);
    world *w = world_new(&n, NULL, false);
    w->server_made = greet;
    listen_on(w, "server", "tcp:2000");
    weft_connector *c = connect_from(w, "client", "tcp:server:2000");
    assert_int_equal(w->client_starts, 1);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    run(w);
    /* SYN after 3 ms (server made), answer after 3 more (client made), the
     * greeting 3 ms after it was written. */
    assert_int_equal(w->server->made_at, 3 * MS);
    assert_int_equal(w->client->made_at, 6 * MS);
    assert_data(w->client, "hello");
    assert_int_equal(w->client->last_data_at, 6 * MS);
    assert_int_equal(weft_sim_open_connections(w->sim), 1);
    /* Addresses: the server's port, the client's ephemeral port. */
    assert_string_equal(w->client->host.host, "client");
    assert_int_equal(w->client->host.port, 49152);
    assert_string_equal(w->client->peer.host, "server");
    assert_int_equal(w->client->peer.port, 2000);
    assert_string_equal(w->server->host.host, "server");
    assert_int_equal(w->server->host.port, 2000);
    assert_string_equal(w->server->peer.host, "client");
    assert_int_equal(w->server->peer.port, 49152);
    assert_ptr_equal(w->server->base.factory, &w->server_f);
    assert_ptr_equal(w->client->base.factory, &w->client_f);
    assert_ptr_equal(w->client->base.reactor, w->r);
    assert_ptr_equal(weft_connector_factory(c), &w->client_f);
    /* Client to server. */
    write_str(ct(w), "ping");
    run(w);
    assert_data(w->server, "ping");
    assert_int_equal(w->server->last_data_at, 9 * MS);
    /* A second connection from the same host gets the next port. */
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->client->host.port, 49153);
    assert_int_equal(weft_sim_open_connections(w->sim), 2);
    assert_int_equal(w->failed, 0);
    world_free(w);
}

static void connect_refused_without_listener(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(2 * MS, 2 * MS);
    world *w = world_new(&n, NULL, false);
    weft_connector *c = connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    assert_ptr_equal(w->fail_conn, c);
    assert_int_equal(w->failed_at, 4 * MS); /* there and back */
    assert_int_equal(w->nprotos, 0);
    /* doStart / doStop around the attempt. */
    assert_int_equal(w->client_starts, 1);
    assert_int_equal(w->client_stops, 1);
    /* Retry by hand after a listener appears. */
    listen_on(w, "server", "tcp:2000");
    assert_int_equal(weft_sim_set_current_host(w->sim, "client"), WEFT_OK);
    assert_int_equal(weft_connector_connect(c), WEFT_OK);
    assert_int_equal(weft_connector_connect(c), WEFT_ESTATE); /* already connecting */
    run(w);
    assert_int_equal(w->failed, 1);
    assert_int_equal(w->client->made, 1);
    assert_int_equal(w->client_starts, 2);
    assert_int_equal(weft_connector_connect(c), WEFT_ESTATE); /* connected */
    world_free(w);
}

static void connect_unknown_host(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, false);
    connect_from(w, "client", "tcp:nowhere:80");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_UNREACHABLE);
    world_free(w);
}

static void connect_timeout_from_endpoint(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    world *w = world_new(&n, NULL, false);
    listen_on(w, "server", "tcp:2000");
    assert_int_equal(weft_sim_partition(w->sim, "client", "server"), WEFT_OK);
    connect_from(w, "client", "tcp:host=server:port=2000:timeout=5");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_TIMED_OUT);
    assert_int_equal(w->failed_at, 5 * S);
    assert_int_equal(w->server_starts, 1);
    assert_int_equal(w->nprotos, 0);
    /* Default timeout: 30 s. */
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 2);
    assert_int_equal(w->failed_at, 35 * S);
    world_free(w);
}

static void answer_after_timeout_resets_server(void **state)
{
    (void)state;
    /* The server accepts at 3 s, the answer would arrive at 6 s, the client
     * gave up at 4 s: the server side gets reset. */
    weft_net_config n = latency_cfg(3 * S, 3 * S);
    world *w = world_new(&n, NULL, false);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:host=server:port=2000:timeout=4");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_TIMED_OUT);
    assert_non_null(w->server);
    assert_null(w->client);
    assert_int_equal(w->server->lost, 1);
    assert_string_equal(w->server->reason, WEFT_REASON_LOST);
    assert_int_equal(w->server->destroyed, 1);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void server_factory_refuses(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, false);
    w->server_refuses = true;
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    /* The client connects, then sees a clean close. */
    assert_null(w->server);
    assert_int_equal(w->client->made, 1);
    assert_int_equal(w->client->lost, 1);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    assert_int_equal(w->flost, 1);
    assert_string_equal(w->flost_reason, WEFT_REASON_DONE);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void client_factory_refuses(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, false);
    w->client_refuses = true;
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_NO_PROTOCOL);
    assert_int_equal(w->server->lost, 1);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_int_equal(w->client_stops, 1);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void connector_stop_and_free(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * S, 1 * S);
    world *w = world_new(&n, NULL, false);
    listen_on(w, "server", "tcp:2000");
    weft_connector *c = connect_from(w, "client", "tcp:server:2000");
    assert_int_equal(weft_sim_advance(w->sim, 500 * MS), WEFT_OK);
    weft_connector_stop(c);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_CONNECT_CANCELLED);
    weft_connector_stop(c); /* not connecting: nothing */
    assert_int_equal(w->failed, 1);
    run(w);
    assert_int_equal(w->nprotos, 0); /* the SYN never arrived */
    /* Free while connecting: no hook, factory stopped. */
    weft_connector *d = connect_from(w, "client", "tcp:server:2000");
    assert_int_equal(w->client_starts, 2);
    weft_connector_free(d);
    assert_int_equal(w->client_stops, 2);
    run(w);
    assert_int_equal(w->failed, 1);
    assert_int_equal(w->nprotos, 0);
    /* Free from inside connection_failed. */
    w->free_in_hook = true;
    weft_connector_free(c);
    connect_from(w, "client", "tcp:server:9");
    run(w);
    assert_int_equal(w->failed, 2);
    world_free(w); /* leak-free under ASan */
}

static void reconnect_from_hooks(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    world *w = world_new(&n, NULL, false);
    w->reconnects_left = 2;
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    /* Refused three times: twice retried from the hook. */
    assert_int_equal(w->failed, 3);
    assert_int_equal(w->client_starts, 1); /* stayed started across retries */
    assert_int_equal(w->client_stops, 1);
    /* Connection lost: reconnect from connection_lost. */
    listen_on(w, "server", "tcp:2000");
    weft_connector *c = connect_from(w, "client", "tcp:server:2000");
    run(w);
    tproto *first = w->client;
    assert_int_equal(first->made, 1);
    w->reconnects_left = 1;
    assert_int_equal(weft_transport_lose_connection(w->server->base.transport), WEFT_OK);
    run(w);
    assert_int_equal(first->lost, 1);
    assert_int_equal(w->flost, 1);
    assert_ptr_equal(w->flost_conn, c);
    assert_ptr_not_equal(w->client, first);
    assert_int_equal(w->client->made, 1);
    assert_int_equal(weft_sim_open_connections(w->sim), 1);
    world_free(w);
}

/* --------------------------------------------------------- Transport */

static void write_writev_and_misuse(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    assert_int_equal(weft_transport_write(ct(w), "", 0), WEFT_OK); /* nothing */
    assert_int_equal(weft_transport_write(ct(w), NULL, 3), WEFT_EINVAL);
    weft_iovec v[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
    assert_int_equal(weft_transport_writev(ct(w), v, 3), WEFT_OK);
    assert_int_equal(weft_transport_buffered(ct(w)), 5);
    write_str(ct(w), "f");
    assert_int_equal(weft_transport_buffered(ct(w)), 6);
    run(w);
    assert_data(w->server, "abcdef");
    /* Whole writes by default: a writev is one delivery. */
    assert_int_equal(w->server->chunks, 2);
    assert_int_equal(weft_transport_buffered(ct(w)), 0);
    assert_int_equal(weft_transport_writev(ct(w), NULL, 1), WEFT_EINVAL);
    assert_int_equal(weft_transport_writev(ct(w), NULL, 0), WEFT_OK);
    world_free(w);
}

static void close_drains_data_in_flight(void **state)
{
    (void)state;
    world *w = pair(5 * MS, false);
    weft_time_ns t0 = weft_now(w->r);
    write_str(ct(w), "one");
    write_str(ct(w), "two");
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK); /* no-op */
    assert_int_equal(weft_transport_write(ct(w), "late", 4), WEFT_ECLOSED);
    run(w);
    assert_data(w->server, "onetwo");
    assert_int_equal(w->server->lost, 1);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_int_equal(w->server->lost_at, t0 + 5 * MS);
    assert_int_equal(w->client->lost, 1);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    assert_true(w->client->lost_at >= w->server->lost_at);
    assert_int_equal(w->client->write_after_lost_rc, WEFT_ECLOSED);
    assert_int_equal(w->server->destroyed, 1);
    assert_int_equal(w->client->destroyed, 1);
    assert_int_equal(w->client->lost_before_destroy, 1);
    assert_null(w->client->base.transport);
    /* Client factory's connection_lost hook, with the connector. */
    assert_int_equal(w->flost, 1);
    assert_string_equal(w->flost_reason, WEFT_REASON_DONE);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void abort_drops_buffer(void **state)
{
    (void)state;
    world *w = pair(5 * MS, false);
    write_str(ct(w), "never");
    assert_int_equal(weft_transport_abort(ct(w)), WEFT_OK);
    /* One turn later, not inside abort. */
    assert_int_equal(w->client->lost, 0);
    assert_int_equal(weft_transport_abort(ct(w)), WEFT_OK); /* idempotent */
    assert_int_equal(weft_transport_write(ct(w), "x", 1), WEFT_ECLOSED);
    assert_int_equal(weft_transport_buffered(ct(w)), 0);
    weft_time_ns t0 = weft_now(w->r);
    run(w);
    assert_int_equal(w->client->lost, 1);
    assert_string_equal(w->client->reason, WEFT_REASON_ABORTED);
    assert_int_equal(w->client->lost_at, t0);
    assert_int_equal(w->server->len, 0);
    assert_int_equal(w->server->lost, 1);
    assert_string_equal(w->server->reason, WEFT_REASON_LOST);
    assert_int_equal(w->server->lost_at, t0 + 5 * MS);
    assert_int_equal(w->flost, 1);
    assert_string_equal(w->flost_reason, WEFT_REASON_ABORTED);
    assert_int_equal(w->server->destroyed + w->client->destroyed, 2);
    world_free(w);
}

static void abort_drops_incoming_too(void **state)
{
    (void)state;
    world *w = pair(5 * MS, false);
    write_str(stp(w), "to-client");
    assert_int_equal(weft_transport_abort(ct(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->client->len, 0);
    assert_string_equal(w->client->reason, WEFT_REASON_ABORTED);
    assert_string_equal(w->server->reason, WEFT_REASON_LOST);
    world_free(w);
}

static void both_close_at_once(void **state)
{
    (void)state;
    world *w = pair(5 * MS, false);
    write_str(ct(w), "c");
    write_str(stp(w), "s");
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_lose_connection(stp(w)), WEFT_OK);
    run(w);
    /* Each stopped reading when it closed: the crossing bytes are dropped
     * by the receiver, and both end cleanly. */
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_int_equal(w->client->lost + w->server->lost, 2);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void close_then_abort(void **state)
{
    (void)state;
    world *w = pair(5 * MS, false);
    write_str(ct(w), "data");
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_abort(ct(w)), WEFT_OK); /* abort wins */
    run(w);
    assert_int_equal(w->server->len, 0);
    assert_string_equal(w->client->reason, WEFT_REASON_ABORTED);
    assert_string_equal(w->server->reason, WEFT_REASON_LOST);
    world_free(w);
}

static void echo_back(tproto *p, const uint8_t *d, size_t n)
{
    assert_int_equal(weft_transport_write(p->base.transport, d, n), WEFT_OK);
}

static void half_close_aware_peer(void **state)
{
    (void)state;
    world *w = pair(2 * MS, true);
    w->server_data = echo_back;
    write_str(ct(w), "abc");
    assert_int_equal(weft_transport_lose_write_connection(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_lose_write_connection(ct(w)), WEFT_OK); /* again: no-op */
    assert_int_equal(weft_transport_write(ct(w), "x", 1), WEFT_ECLOSED);
    run(w);
    /* The server read everything, then EOF; it can still write. */
    assert_data(w->server, "abc");
    assert_int_equal(w->server->read_lost, 1);
    assert_int_equal(w->server->lost, 0);
    assert_int_equal(w->client->write_lost, 1);
    assert_data(w->client, "abc"); /* the echo came back over the open half */
    assert_int_equal(w->client->lost, 0);
    write_str(stp(w), "more");
    assert_int_equal(weft_transport_lose_connection(stp(w)), WEFT_OK);
    run(w);
    assert_data(w->client, "abcmore");
    assert_int_equal(w->client->read_lost, 1);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_int_equal(w->client->destroyed + w->server->destroyed, 2);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void half_close_plain_peer(void **state)
{
    (void)state;
    world *w = pair(2 * MS, false);
    write_str(ct(w), "abc");
    assert_int_equal(weft_transport_lose_write_connection(ct(w)), WEFT_OK);
    run(w);
    /* Not half-close aware: the connection ends for the server... */
    assert_data(w->server, "abc");
    assert_int_equal(w->server->lost, 1);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    /* ...and its close reaches the client, which ends too. */
    assert_int_equal(w->client->lost, 1);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void close_after_half_close(void **state)
{
    (void)state;
    world *w = pair(2 * MS, true);
    assert_int_equal(weft_transport_lose_write_connection(ct(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->client->write_lost, 1);
    assert_int_equal(w->client->lost, 0);
    /* The write side is already shut: lose_connection ends it at once
     * (next turn), without waiting for the peer. */
    weft_time_ns t0 = weft_now(w->r);
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->client->lost, 1);
    assert_int_equal(w->client->lost_at, t0);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    world_free(w);
}

static void pause_and_resume_reading(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    assert_int_equal(weft_transport_pause_reading(stp(w)), WEFT_OK);
    write_str(ct(w), "a");
    write_str(ct(w), "b");
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->server->len, 0); /* held, FIN included */
    assert_int_equal(w->server->lost, 0);
    assert_int_equal(weft_transport_buffered(ct(w)), 2);
    assert_int_equal(weft_transport_resume_reading(stp(w)), WEFT_OK);
    assert_int_equal(weft_transport_resume_reading(stp(w)), WEFT_OK); /* not paused: no-op */
    run(w);
    assert_data(w->server, "ab");
    assert_int_equal(w->server->chunks, 2);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    world_free(w);
}

static void lost_transport_ops_refused(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    /* Keep the transport of a lost side: the connection object lives on
     * only while events of it are pending, so check from connection_lost. */
    assert_int_equal(weft_transport_abort(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_pause_reading(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_lose_write_connection(ct(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->client->write_after_lost_rc, WEFT_ECLOSED);
    assert_int_equal(w->server->write_after_lost_rc, WEFT_ECLOSED);
    world_free(w);
}

static void reactor_free_aborts_open_connections(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    write_str(ct(w), "in flight");
    tproto *c = w->client, *s = w->server;
    weft_sim_free(w->sim);
    w->sim = NULL;
    assert_int_equal(c->lost, 1);
    assert_string_equal(c->reason, WEFT_REASON_ABORTED);
    assert_int_equal(s->lost, 1);
    assert_string_equal(s->reason, WEFT_REASON_ABORTED);
    assert_int_equal(c->destroyed + s->destroyed, 2);
    assert_int_equal(w->server_stops, 1); /* the listener's factory stopped */
    assert_int_equal(w->client_stops, 1);
    assert_int_equal(w->flost, 0);      /* no reconnect hooks during free */
    for (int i = 0; i < w->nprotos; i++)
        free(w->protos[i].data);
    free(w);
}

/* --------------------------------------- Latency, chunking, determinism */

static void latency_within_bounds(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        weft_net_config n = latency_cfg(2 * MS, 7 * MS);
        world *w = world_new(&n, weft_choice_seeded(seed), false);
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        run(w);
        assert_true(w->server->made_at >= 2 * MS && w->server->made_at <= 7 * MS);
        weft_time_ns d = w->client->made_at - w->server->made_at;
        assert_true(d >= 2 * MS && d <= 7 * MS);
        weft_time_ns t0 = weft_now(w->r);
        for (int i = 0; i < 20; i++) {
            char b = (char)('a' + i);
            assert_int_equal(weft_transport_write(ct(w), &b, 1), WEFT_OK);
        }
        weft_time_ns first = -1;
        while (w->server->len < 20) {
            size_t before = w->server->len;
            assert_int_equal(weft_sim_step(w->sim), WEFT_OK);
            if (w->server->len > before) {
                weft_time_ns at = weft_now(w->r) - t0;
                assert_true(at >= 2 * MS && at <= 7 * MS);
                if (first < 0)
                    first = at;
            }
        }
        /* In order, exactly once. */
        assert_data(w->server, "abcdefghijklmnopqrst");
        world_free(w);
    }
}

static void one_byte_chunks(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(0, 0);
    n.max_chunk = 1;
    world *w = world_new(&n, weft_choice_seeded(3), false);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    write_str(ct(w), "chunked bytes");
    run(w);
    assert_data(w->server, "chunked bytes");
    assert_int_equal(w->server->chunks, 13);
    assert_int_equal(w->server->max_chunk, 1);
    world_free(w);
}

static void chunking_preserves_stream(void **state)
{
    (void)state;
    uint8_t msg[3000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + i / 251);
    size_t split_runs = 0, joined_runs = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        weft_net_config n = latency_cfg(0, 3 * MS);
        n.max_chunk = 1 + seed % 64;
        n.coalesce = true;
        world *w = world_new(&n, weft_choice_seeded(seed), false);
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        run(w);
        /* Writes of varied sizes, some interleaved with time passing. */
        size_t off = 0;
        for (int i = 0; off < sizeof msg; i++) {
            size_t len = 1 + (size_t)((i * 37 + (int)seed) % 200);
            if (len > sizeof msg - off)
                len = sizeof msg - off;
            assert_int_equal(weft_transport_write(ct(w), msg + off, len), WEFT_OK);
            off += len;
            if (i % 3 == 0)
                assert_int_equal(weft_sim_advance(w->sim, 1 * MS), WEFT_OK);
        }
        assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
        run(w);
        assert_int_equal(w->server->len, sizeof msg);
        assert_memory_equal(w->server->data, msg, sizeof msg);
        assert_true(w->server->max_chunk <= n.max_chunk);
        assert_string_equal(w->server->reason, WEFT_REASON_DONE);
        if (w->server->chunks > 16)
            split_runs++;
        if (w->server->max_chunk > 1)
            joined_runs++;
        world_free(w);
    }
    /* The choices really varied the split. */
    assert_true(split_runs > 0);
    assert_true(joined_runs > 0);
}

/* Small writes (the sizes around a pipe's inline capacity), several queued
 * at once or one at a time, split and joined, echoed from data_received: both
 * streams arrive whole and in order, and an idle pair keeps working after its
 * pipes emptied. */
static void small_writes_echoed_in_order(void **state)
{
    (void)state;
    uint8_t msg[1500];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 13 + i / 97);
    size_t queued_runs = 0;
    for (uint64_t seed = 1; seed <= 120; seed++) {
        weft_net_config n = latency_cfg(0, 2 * MS);
        n.max_chunk = seed % 3 == 0 ? 0 : 1 + seed % 40;
        n.coalesce = seed % 2 == 0;
        world *w = world_new(&n, weft_choice_seeded(seed), false);
        w->server_data = echo_back;
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        run(w);
        size_t off = 0;
        for (int i = 0; off < sizeof msg; i++) {
            /* 1..40 bytes: below, at and past 32. */
            size_t len = 1 + (size_t)((i * 11 + (int)seed) % 40);
            if (len > sizeof msg - off)
                len = sizeof msg - off;
            assert_int_equal(weft_transport_write(ct(w), msg + off, len), WEFT_OK);
            off += len;
            if (weft_transport_buffered(ct(w)) > 32)
                queued_runs++;
            if ((i + (int)seed) % 4 == 0)
                run(w); /* drain: the pipes go idle */
        }
        run(w);
        assert_int_equal(weft_transport_buffered(ct(w)), 0);
        assert_int_equal(weft_transport_buffered(stp(w)), 0);
        assert_int_equal(w->server->len, sizeof msg);
        assert_memory_equal(w->server->data, msg, sizeof msg);
        assert_int_equal(w->client->len, sizeof msg);
        assert_memory_equal(w->client->data, msg, sizeof msg);
        /* Idle, then one more exchange of exactly 32 and then 33 bytes. */
        assert_int_equal(weft_transport_write(ct(w), msg, 32), WEFT_OK);
        run(w);
        assert_int_equal(weft_transport_write(ct(w), msg + 32, 33), WEFT_OK);
        run(w);
        assert_int_equal(w->server->len, sizeof msg + 65);
        assert_memory_equal(w->server->data + sizeof msg, msg, 65);
        assert_int_equal(w->client->len, sizeof msg + 65);
        assert_memory_equal(w->client->data + sizeof msg, msg, 65);
        assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
        run(w);
        assert_string_equal(w->server->reason, WEFT_REASON_DONE);
        world_free(w);
    }
    /* Some runs really had more bytes queued than a pipe holds inline. */
    assert_true(queued_runs > 0);
}

static uint64_t scripted_run(uint64_t seed, char **text, size_t *text_len)
{
    weft_net_config n = latency_cfg(1 * MS, 9 * MS);
    n.max_chunk = 8;
    n.coalesce = true;
    world *w = world_new(&n, weft_choice_seeded(seed), text != NULL);
    w->server_data = echo_back;
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    for (int i = 0; i < w->nprotos; i++) {
        tproto *p = &w->protos[i];
        if (p->is_client) {
            write_str(p->base.transport, "the quick brown fox");
            write_str(p->base.transport, " jumps");
        }
    }
    run(w);
    uint64_t h = weft_sim_trace_hash(w->sim);
    if (text) {
        const char *t = weft_sim_trace_text(w->sim, text_len);
        *text = malloc(*text_len + 1);
        memcpy(*text, t, *text_len);
    }
    world_free(w);
    return h;
}

static void same_seed_same_trace(void **state)
{
    (void)state;
    char *ta, *tb;
    size_t la, lb;
    uint64_t a = scripted_run(42, &ta, &la);
    uint64_t b = scripted_run(42, &tb, &lb);
    assert_true(a == b);
    assert_int_equal(la, lb);
    assert_memory_equal(ta, tb, la);
    /* The trace names deliveries with connection, direction and bytes. */
    assert_true(memmem(ta, la, "net.deliver conn=1 dir=c>s bytes=", 33) != NULL);
    assert_true(memmem(ta, la, "net.deliver conn=2 dir=s>c bytes=", 33) != NULL);
    assert_true(memmem(ta, la, "choice net.latency", 18) != NULL);
    free(ta);
    free(tb);
    /* Keeping text does not change the hash; other seeds give other runs. */
    assert_true(scripted_run(42, NULL, NULL) == a);
    int differ = 0;
    for (uint64_t seed = 1; seed <= 5; seed++)
        differ += scripted_run(seed, NULL, NULL) != a;
    assert_true(differ >= 4);
}

static void default_run_asks_no_network_choice(void **state)
{
    (void)state;
    /* Fixed latency, no chunking, no faults: not one network question. */
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    world *w = world_new(&n, weft_choice_seeded(1), true);
    w->server_data = echo_back;
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    write_str(ct(w), "hi");
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    run(w);
    size_t len;
    const char *t = weft_sim_trace_text(w->sim, &len);
    assert_null(memmem(t, len, "choice net.", 11));
    assert_null(memmem(t, len, "choice fault.", 13));
    assert_non_null(memmem(t, len, "net.deliver", 11));
    world_free(w);
}

/* Protocol code runs on its own host: deliveries are events of the
 * receiving host, and what the code does from there belongs to that host. */
static world *g_host_world;

static void connect_onward(tproto *p, const uint8_t *d, size_t n)
{
    (void)p, (void)d, (void)n;
    world *w = g_host_world;
    assert_int_equal(weft_connect_factory(w->r, "tcp:third:1", &w->client_f, NULL), WEFT_OK);
}

static void events_run_on_the_receiving_host(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    world *w = world_new(&n, NULL, true);
    g_host_world = w;
    assert_int_equal(weft_sim_add_host(w->sim, "third"), WEFT_OK);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    w->server_data = connect_onward;
    write_str(ct(w), "go");
    run(w);
    size_t len;
    const char *t = weft_sim_trace_text(w->sim, &len);
    /* The SYN and the client's bytes are events on the server, the answer
     * one on the client. */
    assert_non_null(memmem(t, len, "event net.syn seq=", 18));
    const char *syn = memmem(t, len, "event net.syn seq=", 18);
    assert_non_null(strstr(syn, "host=server"));
    /* The connect made by the server's data_received comes from "server". */
    assert_non_null(memmem(t, len, "net.connect from=server to=third:1", 34));
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hosts_by_name),
        cmocka_unit_test(listen_addresses_and_conflicts),
        cmocka_unit_test(connect_exchange_and_addresses),
        cmocka_unit_test(connect_refused_without_listener),
        cmocka_unit_test(connect_unknown_host),
        cmocka_unit_test(connect_timeout_from_endpoint),
        cmocka_unit_test(answer_after_timeout_resets_server),
        cmocka_unit_test(server_factory_refuses),
        cmocka_unit_test(client_factory_refuses),
        cmocka_unit_test(connector_stop_and_free),
        cmocka_unit_test(reconnect_from_hooks),
        cmocka_unit_test(write_writev_and_misuse),
        cmocka_unit_test(close_drains_data_in_flight),
        cmocka_unit_test(abort_drops_buffer),
        cmocka_unit_test(abort_drops_incoming_too),
        cmocka_unit_test(both_close_at_once),
        cmocka_unit_test(close_then_abort),
        cmocka_unit_test(half_close_aware_peer),
        cmocka_unit_test(half_close_plain_peer),
        cmocka_unit_test(close_after_half_close),
        cmocka_unit_test(pause_and_resume_reading),
        cmocka_unit_test(lost_transport_ops_refused),
        cmocka_unit_test(reactor_free_aborts_open_connections),
        cmocka_unit_test(latency_within_bounds),
        cmocka_unit_test(one_byte_chunks),
        cmocka_unit_test(chunking_preserves_stream),
        cmocka_unit_test(small_writes_echoed_in_order),
        cmocka_unit_test(same_seed_same_trace),
        cmocka_unit_test(default_run_asks_no_network_choice),
        cmocka_unit_test(events_run_on_the_receiving_host),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
