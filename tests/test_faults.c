/* Faults of the simulated network, each with its reason on both sides:
 * resets, partitions and heals, stalls and releases, host crashes and
 * restarts, refused connects, and the random fault rates drawn through the
 * choice source. */
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

static bool trace_has(world *w, const char *needle)
{
    size_t len;
    const char *t = weft_sim_trace_text(w->sim, &len);
    return t && memmem(t, len, needle, strlen(needle)) != NULL;
}

static world *traced_pair(int64_t lat)
{
    weft_net_config n = latency_cfg(lat, lat);
    world *w = world_new(&n, NULL, true);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_non_null(w->client);
    assert_non_null(w->server);
    return w;
}

/* -------------------------------------------------------------- Reset */

static void reset_both_sides_lost(void **state)
{
    (void)state;
    world *w = traced_pair(5 * MS);
    write_str(ct(w), "in flight");
    write_str(stp(w), "also in flight");
    weft_time_ns t0 = weft_now(w->r);
    assert_int_equal(weft_sim_reset(w->sim, "client", "server"), WEFT_OK);
    run(w);
    assert_int_equal(w->client->len, 0);
    assert_int_equal(w->server->len, 0);
    assert_string_equal(w->client->reason, WEFT_REASON_LOST);
    assert_string_equal(w->server->reason, WEFT_REASON_LOST);
    assert_int_equal(w->client->lost_at, t0);
    assert_int_equal(w->server->lost_at, t0);
    assert_int_equal(w->flost, 1);
    assert_string_equal(w->flost_reason, WEFT_REASON_LOST);
    assert_true(trace_has(w, "net.fault reset conn=1"));
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    /* Nothing left between them: a second reset is harmless. */
    assert_int_equal(weft_sim_reset(w->sim, "client", "server"), WEFT_OK);
    assert_int_equal(weft_sim_reset(w->sim, "nobody", NULL), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_reset(w->sim, "client", "nobody"), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_reset(w->sim, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_sim_reset(w->sim, "client", ""), WEFT_EINVAL);
    world_free(w);
}

static void reset_every_connection_of_a_host(void **state)
{
    (void)state;
    world *w = traced_pair(1 * MS);
    assert_int_equal(weft_sim_add_host(w->sim, "third"), WEFT_OK);
    connect_from(w, "third", "tcp:server:2000");
    run(w);
    tproto *third = w->client;
    assert_int_equal(weft_sim_open_connections(w->sim), 2);
    /* Only the connections of "third". */
    assert_int_equal(weft_sim_reset(w->sim, "third", NULL), WEFT_OK);
    run(w);
    assert_string_equal(third->reason, WEFT_REASON_LOST);
    assert_int_equal(w->protos[0].lost + w->protos[1].lost, 0);
    assert_int_equal(weft_sim_open_connections(w->sim), 1);
    /* All of the server's. */
    assert_int_equal(weft_sim_reset(w->sim, "server", NULL), WEFT_OK);
    run(w);
    assert_string_equal(w->protos[0].reason, WEFT_REASON_LOST);
    assert_string_equal(w->protos[1].reason, WEFT_REASON_LOST);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

static void abort_fault_from_one_end(void **state)
{
    (void)state;
    world *w = traced_pair(5 * MS);
    write_str(stp(w), "dropped");
    write_str(ct(w), "arrives? no: the server end is gone");
    weft_time_ns t0 = weft_now(w->r);
    assert_int_equal(weft_sim_abort(w->sim, "server", "client"), WEFT_OK);
    assert_int_equal(w->server->lost, 0); /* one turn later */
    run(w);
    assert_string_equal(w->server->reason, WEFT_REASON_ABORTED);
    assert_int_equal(w->server->lost_at, t0);
    assert_string_equal(w->client->reason, WEFT_REASON_LOST);
    assert_int_equal(w->client->lost_at, t0 + 5 * MS);
    assert_int_equal(w->client->len, 0);
    assert_int_equal(w->server->len, 0);
    assert_true(trace_has(w, "net.fault abort conn=1 side=server"));
    assert_int_equal(weft_sim_abort(w->sim, "server", NULL), WEFT_OK); /* nothing left */
    assert_int_equal(weft_sim_abort(w->sim, "nowhere", NULL), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_abort(w->sim, "", NULL), WEFT_EINVAL);
    assert_int_equal(weft_sim_abort(w->sim, "server", "nowhere"), WEFT_ENOTFOUND);
    world_free(w);
}

/* ---------------------------------------------------------- Partition */

static void partition_holds_traffic_until_heal(void **state)
{
    (void)state;
    world *w = traced_pair(2 * MS);
    assert_int_equal(weft_sim_partition(w->sim, "server", "client"), WEFT_OK);
    assert_true(trace_has(w, "net.fault partition server client"));
    write_str(ct(w), "up");
    write_str(ct(w), "stream");
    write_str(stp(w), "down");
    assert_int_equal(weft_sim_advance(w->sim, 10 * S), WEFT_OK);
    assert_int_equal(w->server->len, 0);
    assert_int_equal(w->client->len, 0);
    assert_int_equal(weft_transport_buffered(ct(w)), 8);
    assert_true(trace_has(w, "net.hold conn=1"));
    /* Writes while partitioned queue behind. */
    write_str(ct(w), "!");
    weft_time_ns healed = weft_now(w->r);
    assert_int_equal(weft_sim_heal(w->sim, "client", "server"), WEFT_OK);
    run(w);
    assert_data(w->server, "upstream!");
    assert_data(w->client, "down");
    /* Held bytes were long due: they arrive at the heal. */
    assert_int_equal(w->client->last_data_at, healed);
    assert_int_equal(w->client->lost + w->server->lost, 0);
    assert_true(trace_has(w, "net.fault heal client server"));
    world_free(w);
}

static void partition_misuse(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, false);
    assert_int_equal(weft_sim_partition(w->sim, "client", "client"), WEFT_EINVAL);
    assert_int_equal(weft_sim_partition(w->sim, "client", "nowhere"), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_partition(w->sim, NULL, "client"), WEFT_EINVAL);
    assert_int_equal(weft_sim_partition(w->sim, "client", ""), WEFT_EINVAL);
    assert_int_equal(weft_sim_heal(w->sim, "nowhere", "client"), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_stall(w->sim, "client", "nowhere"), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_heal(w->sim, "client", "server"), WEFT_ESTATE);
    assert_int_equal(weft_sim_partition(w->sim, "client", "server"), WEFT_OK);
    assert_int_equal(weft_sim_partition(w->sim, "server", "client"), WEFT_ESTATE);
    assert_int_equal(weft_sim_heal(w->sim, "server", "client"), WEFT_OK);
    assert_int_equal(weft_sim_heal(w->sim, "server", "client"), WEFT_ESTATE);
    assert_int_equal(weft_sim_stall(w->sim, "client", "client"), WEFT_EINVAL);
    assert_int_equal(weft_sim_release(w->sim, "client", "server"), WEFT_ESTATE);
    assert_int_equal(weft_sim_stall(w->sim, "client", "server"), WEFT_OK);
    assert_int_equal(weft_sim_stall(w->sim, "client", "server"), WEFT_ESTATE);
    assert_int_equal(weft_sim_stall(w->sim, "server", "client"), WEFT_OK); /* directed */
    assert_int_equal(weft_sim_release(w->sim, "client", "server"), WEFT_OK);
    assert_int_equal(weft_sim_release(w->sim, "server", "client"), WEFT_OK);
    world_free(w);
}

static void connect_during_partition_times_out(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    world *w = world_new(&n, NULL, true);
    listen_on(w, "server", "tcp:2000");
    assert_int_equal(weft_sim_partition(w->sim, "client", "server"), WEFT_OK);
    connect_from(w, "client", "tcp:host=server:port=2000:timeout=2");
    /* Healing after the SYN was lost does not save the attempt. */
    assert_int_equal(weft_sim_advance(w->sim, 1 * S), WEFT_OK);
    assert_int_equal(weft_sim_heal(w->sim, "client", "server"), WEFT_OK);
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_TIMED_OUT);
    assert_int_equal(w->failed_at, 2 * S);
    assert_null(w->server);
    assert_true(trace_has(w, "net.syn_lost"));
    /* Other hosts are not affected by the partition. */
    assert_int_equal(weft_sim_partition(w->sim, "client", "server"), WEFT_OK);
    assert_int_equal(weft_sim_add_host(w->sim, "other"), WEFT_OK);
    connect_from(w, "other", "tcp:server:2000");
    run(w);
    assert_int_equal(w->client->made, 1);
    world_free(w);
}

/* -------------------------------------------------------------- Stall */

static void stall_one_direction_then_release(void **state)
{
    (void)state;
    world *w = traced_pair(1 * MS);
    assert_int_equal(weft_sim_stall(w->sim, "client", "server"), WEFT_OK);
    write_str(ct(w), "held");
    write_str(stp(w), "flows");
    assert_int_equal(weft_sim_advance(w->sim, 5 * S), WEFT_OK);
    assert_int_equal(w->server->len, 0);
    assert_data(w->client, "flows");
    write_str(ct(w), " in order");
    weft_time_ns t0 = weft_now(w->r);
    assert_int_equal(weft_sim_release(w->sim, "client", "server"), WEFT_OK);
    run(w);
    assert_data(w->server, "held in order");
    /* The held bytes at once, the new ones after their latency. */
    assert_int_equal(w->server->last_data_at, t0 + 1 * MS);
    assert_true(trace_has(w, "net.fault stall client>server"));
    assert_true(trace_has(w, "net.fault release client>server"));
    /* A close while stalled waits too, then completes. */
    assert_int_equal(weft_sim_stall(w->sim, "client", "server"), WEFT_OK);
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    assert_int_equal(weft_sim_advance(w->sim, 1 * S), WEFT_OK);
    assert_int_equal(w->server->lost + w->client->lost, 0);
    assert_int_equal(weft_sim_release(w->sim, "client", "server"), WEFT_OK);
    run(w);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    world_free(w);
}

/* -------------------------------------------------------------- Crash */

static void crash_resets_everything_and_restart(void **state)
{
    (void)state;
    world *w = traced_pair(2 * MS);
    write_str(ct(w), "lost with the host");
    assert_int_equal(weft_sim_crash(w->sim, "server"), WEFT_OK);
    assert_int_equal(weft_sim_crash(w->sim, "server"), WEFT_ESTATE);
    assert_int_equal(weft_sim_crash(w->sim, "nowhere"), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_crash(w->sim, ""), WEFT_EINVAL);
    assert_int_equal(weft_sim_crash(w->sim, NULL), WEFT_EINVAL);
    assert_int_equal(weft_sim_restart(w->sim, "nowhere"), WEFT_ENOTFOUND);
    assert_int_equal(weft_sim_restart(w->sim, "client"), WEFT_ESTATE); /* it is up */
    /* The listener is gone at once. */
    assert_int_equal(w->server_stops, 1);
    run(w);
    assert_int_equal(w->server->len, 0);
    assert_string_equal(w->server->reason, WEFT_REASON_LOST);
    assert_string_equal(w->server->message, "host crashed");
    assert_string_equal(w->client->reason, WEFT_REASON_LOST);
    assert_int_equal(w->server->destroyed + w->client->destroyed, 2);
    assert_true(trace_has(w, "net.fault crash server"));
    /* While down: connects to it are refused, listening there fails. */
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    assert_int_equal(weft_sim_set_current_host(w->sim, "server"), WEFT_OK);
    assert_int_equal(weft_listen(w->r, "tcp:2000", &w->server_f, NULL), WEFT_EHOSTUNREACH);
    /* Connecting from a down host fails too. */
    weft_connector *c = NULL;
    assert_int_equal(weft_connect_factory(w->r, "tcp:client:1", &w->client_f, &c), WEFT_OK);
    run(w);
    assert_int_equal(w->failed, 2);
    assert_string_equal(w->fail_reason, WEFT_REASON_UNREACHABLE);
    /* Restart: up, with no listeners until the application listens again. */
    assert_int_equal(weft_sim_restart(w->sim, "server"), WEFT_OK);
    assert_int_equal(weft_sim_restart(w->sim, "server"), WEFT_ESTATE);
    assert_true(trace_has(w, "net.fault restart server"));
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 3);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->client->made, 1);
    assert_int_equal(w->server->made, 1);
    world_free(w);
}

static void crash_fails_pending_connects(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * S, 1 * S);
    world *w = world_new(&n, NULL, false);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000"); /* SYN in flight */
    assert_int_equal(weft_sim_advance(w->sim, 500 * MS), WEFT_OK);
    assert_int_equal(weft_sim_crash(w->sim, "client"), WEFT_OK);
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_LOST);
    assert_null(w->server); /* the SYN died with its host */
    /* Accepted, answer in flight, then the server crashes. */
    assert_int_equal(weft_sim_restart(w->sim, "client"), WEFT_OK);
    connect_from(w, "client", "tcp:server:2000");
    assert_int_equal(weft_sim_advance(w->sim, 1500 * MS), WEFT_OK);
    assert_non_null(w->server);
    assert_int_equal(weft_sim_crash(w->sim, "server"), WEFT_OK);
    run(w);
    assert_int_equal(w->failed, 2);
    assert_string_equal(w->fail_reason, WEFT_REASON_LOST);
    assert_string_equal(w->server->reason, WEFT_REASON_LOST);
    assert_null(w->client);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    world_free(w);
}

/* ------------------------------------------------------ Random faults */

static void refuse_rate(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    n.refuse_ppm = 1000000; /* always */
    world *w = world_new(&n, weft_choice_seeded(5), true);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    assert_null(w->server);
    assert_true(trace_has(w, "choice fault.refuse"));
    assert_true(trace_has(w, "reason=refused (fault)"));
    world_free(w);
    /* Over seeds, a middle rate refuses some and accepts some. */
    int refused = 0, made = 0;
    for (uint64_t seed = 1; seed <= 100; seed++) {
        n.refuse_ppm = 500000;
        w = world_new(&n, weft_choice_seeded(seed), false);
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        run(w);
        refused += w->failed;
        made += w->client != NULL;
        assert_int_equal(w->failed + (w->client != NULL), 1);
        world_free(w);
    }
    assert_true(refused > 20 && made > 20);
}

static void reset_rate_keeps_a_prefix(void **state)
{
    (void)state;
    char msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    int resets = 0, whole = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        weft_net_config n = latency_cfg(0, 1 * MS);
        n.max_chunk = 16;
        n.reset_ppm = 20000; /* 2% per delivery */
        world *w = world_new(&n, weft_choice_seeded(seed), false);
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        run(w);
        for (size_t off = 0; off < sizeof msg; off += 20)
            assert_int_equal(weft_transport_write(ct(w), msg + off, 20), WEFT_OK);
        assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
        run(w);
        /* Whatever happened, what arrived is a prefix, in order. */
        assert_true(w->server->len <= sizeof msg);
        if (w->server->len)
            assert_memory_equal(w->server->data, msg, w->server->len);
        if (strcmp(w->server->reason, WEFT_REASON_LOST) == 0) {
            resets++;
            assert_string_equal(w->client->reason, WEFT_REASON_LOST);
            assert_int_equal(w->client->lost_at, w->server->lost_at);
        } else {
            whole++;
            assert_string_equal(w->server->reason, WEFT_REASON_DONE);
            assert_int_equal(w->server->len, sizeof msg);
        }
        world_free(w);
    }
    assert_true(resets > 10);
    assert_true(whole > 10);
}

static void stall_rate_delays_but_keeps_order(void **state)
{
    (void)state;
    int slower = 0;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        weft_net_config n = latency_cfg(1 * MS, 1 * MS);
        n.stall_ppm = 300000;
        n.stall_max_ns = 2 * S;
        n.max_chunk = 4;
        world *w = world_new(&n, weft_choice_seeded(seed), false);
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        run(w);
        weft_time_ns t0 = weft_now(w->r);
        write_str(ct(w), "0123456789abcdef");
        run(w);
        assert_data(w->server, "0123456789abcdef");
        assert_true(w->server->last_data_at - t0 <= 1 * MS + 16 * 2 * S);
        slower += w->server->last_data_at - t0 > 1 * MS;
        world_free(w);
    }
    assert_true(slower > 10);
}

static void zero_rates_ask_nothing(void **state)
{
    (void)state;
    world *w = traced_pair(1 * MS);
    write_str(ct(w), "x");
    run(w);
    assert_false(trace_has(w, "choice fault."));
    world_free(w);
}

/* Answer 0 is the documented "no fault" default: replaying an all-zero
 * list (or running past its end) with every rate just short of "always"
 * asks the rate questions and strikes nothing. At the full rate the same
 * zero answers do strike. */
static void zero_answers_strike_no_fault(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    n.reset_ppm = 999999;
    n.stall_ppm = 999999;
    n.stall_max_ns = 1 * S;
    n.refuse_ppm = 999999;
    n.max_chunk = 4;
    const uint32_t zeros[64] = {0};
    world *w = world_new(&n, weft_choice_replay(zeros, 64), true);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 0);
    assert_non_null(w->client);
    weft_time_ns t0 = weft_now(w->r);
    write_str(ct(w), "0123456789abcdef");
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    run(w);
    assert_data(w->server, "0123456789abcdef");
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_true(w->server->last_data_at - t0 <= 1 * MS); /* no stall */
    assert_true(trace_has(w, "choice fault.refuse 0/1000000"));
    assert_true(trace_has(w, "choice fault.reset 0/1000000"));
    assert_true(trace_has(w, "choice fault.stall 0/1000000"));
    assert_false(trace_has(w, "net.fault"));
    world_free(w);
    /* Rate 1000000 is "always": even answer 0 strikes. */
    n.refuse_ppm = 1000000;
    w = world_new(&n, weft_choice_replay(NULL, 0), true);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    world_free(w);
    /* And the top answer strikes at the smallest rate. */
    n = latency_cfg(1 * MS, 1 * MS);
    n.refuse_ppm = 1;
    const uint32_t top[] = {999999};
    w = world_new(&n, weft_choice_replay(top, 1), true);
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    world_free(w);
}

/* --------------------------------------- Optional protocol operations */

typedef struct bare {
    weft_protocol base;
    int destroyed;
} bare;

static bare g_bare[4];
static int g_nbare;

static weft_protocol *build_bare(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    if (g_nbare == 4)
        return NULL;
    bare *b = &g_bare[g_nbare++];
    memset(b, 0, sizeof *b);
    b->base.ops = f->ctx; /* the ops table to test */
    return &b->base;
}

/* Every protocol operation left NULL: the network skips it. Bytes sent to a
 * protocol without data_received are dropped; connects, closes, resets and a
 * crash all complete. */
static void null_protocol_ops_are_skipped(void **state)
{
    (void)state;
    static const weft_protocol_ops none = {0};
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    n.max_chunk = 3;
    world *w = world_new(&n, weft_choice_seeded(3), true);
    weft_factory f;
    memset(&f, 0, sizeof f);
    f.build_protocol = build_bare;
    f.ctx = (void *)&none;
    g_nbare = 0;
    assert_int_equal(weft_sim_set_current_host(w->sim, "server"), WEFT_OK);
    assert_int_equal(weft_listen(w->r, "tcp:2000", &f, NULL), WEFT_OK);
    assert_int_equal(weft_sim_set_current_host(w->sim, "client"), WEFT_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(weft_connect_factory(w->r, "tcp:server:2000", &f, NULL), WEFT_OK);
    run(w);
    assert_int_equal(g_nbare, 4);
    assert_int_equal(weft_sim_open_connections(w->sim), 2);
    /* Find a client side (built on the client host) and write through it. */
    for (int i = 0; i < 4; i++) {
        weft_transport *t = g_bare[i].base.transport;
        assert_non_null(t);
        assert_int_equal(weft_transport_write(t, "hello", 5), WEFT_OK);
    }
    assert_int_equal(weft_transport_lose_connection(g_bare[0].base.transport), WEFT_OK);
    run(w);
    assert_int_equal(weft_sim_crash(w->sim, "server"), WEFT_OK);
    run(w);
    assert_int_equal(weft_sim_open_connections(w->sim), 0);
    assert_true(trace_has(w, "net.deliver"));
    world_free(w);
}

/* --------------------------------------------- A crash drops timers */

static void must_not_run(void *ctx)
{
    int *ran = ctx;
    (*ran)++;
}

static weft_deferred *loop_noop(void *ctx, uint64_t count)
{
    (void)ctx, (void)count;
    return NULL;
}

/* The crashed host's pending delayed calls are dropped: none runs, handles
 * report them cancelled, the helpers release what they hold (Deferreds fail
 * with Cancelled, a looping call stops). Other hosts' calls are untouched. */
static void crash_drops_the_hosts_calls(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, true);
    int ran_client = 0, ran_server = 0;
    assert_int_equal(weft_sim_set_current_host(w->sim, "client"), WEFT_OK);
    weft_call *mine = weft_call_later(w->r, 5 * S, must_not_run, &ran_client);
    assert_int_equal(weft_call_soon(w->r, must_not_run, &ran_client), WEFT_OK);
    weft_deferred *dl = weft_defer_later(w->r, 5 * S, NULL, NULL);
    weft_deferred *guarded = weft_deferred_new();
    assert_int_equal(weft_deferred_add_timeout(guarded, w->r, 5 * S, NULL, NULL), WEFT_OK);
    weft_looping_call *lc = weft_looping_call_new(w->r, loop_noop, NULL);
    weft_deferred *done = NULL;
    assert_int_equal(weft_looping_call_start(lc, 1 * S, false, &done), WEFT_OK);
    assert_int_equal(weft_sim_set_current_host(w->sim, "server"), WEFT_OK);
    weft_call *theirs = weft_call_later(w->r, 5 * S, must_not_run, &ran_server);
    assert_int_equal(weft_sim_crash(w->sim, "client"), WEFT_OK);
    assert_false(weft_call_active(mine));
    assert_int_equal(weft_call_cancel(mine), WEFT_EALREADYCANCELLED);
    assert_true(weft_call_active(theirs));
    weft_result res;
    assert_int_equal(weft_deferred_peek(dl, &res), WEFT_DEFERRED_FAILED);
    assert_string_equal(res.failure->type, WEFT_FAILURE_CANCELLED);
    assert_int_equal(weft_deferred_peek(guarded, &res), WEFT_DEFERRED_FAILED);
    assert_string_equal(res.failure->type, WEFT_FAILURE_CANCELLED);
    assert_false(weft_looping_call_running(lc));
    assert_int_equal(weft_deferred_peek(done, &res), WEFT_DEFERRED_SUCCEEDED);
    assert_true(trace_has(w, "sim.dropped host=client calls=5"));
    run(w);
    assert_int_equal(ran_client, 0);
    assert_int_equal(ran_server, 1);
    /* Restarted, the host schedules again. */
    assert_int_equal(weft_sim_restart(w->sim, "client"), WEFT_OK);
    assert_int_equal(weft_sim_set_current_host(w->sim, "client"), WEFT_OK);
    assert_int_equal(weft_looping_call_start(lc, 1 * S, true, NULL), WEFT_OK);
    assert_int_equal(weft_looping_call_stop(lc), WEFT_OK);
    weft_call_release(mine);
    weft_call_release(theirs);
    weft_looping_call_free(lc);
    for (weft_deferred **d = (weft_deferred *[]){dl, guarded, done, NULL}; *d; d++) {
        weft_result r2;
        if (weft_deferred_take_result(*d, &r2) == WEFT_OK && r2.kind == WEFT_RESULT_FAILURE)
            weft_failure_free(r2.failure);
        weft_deferred_unref(*d);
    }
    world_free(w);
}

static void config_validation(void **state)
{
    (void)state;
    world *w = world_new(NULL, NULL, false);
    weft_net_config n = latency_cfg(5, 4);
    assert_int_equal(weft_sim_set_net(w->sim, &n), WEFT_EINVAL);
    n = latency_cfg(-1, 4);
    assert_int_equal(weft_sim_set_net(w->sim, &n), WEFT_EINVAL);
    n = latency_cfg(0, 0);
    n.reset_ppm = 1000001;
    assert_int_equal(weft_sim_set_net(w->sim, &n), WEFT_EINVAL);
    n.reset_ppm = 0;
    n.stall_max_ns = -1;
    assert_int_equal(weft_sim_set_net(w->sim, &n), WEFT_EINVAL);
    n.stall_max_ns = 0;
    assert_int_equal(weft_sim_set_net(w->sim, &n), WEFT_OK);
    assert_int_equal(weft_sim_set_net(w->sim, NULL), WEFT_EINVAL);
    /* A new config applies to what happens next. */
    n = latency_cfg(4 * MS, 4 * MS);
    assert_int_equal(weft_sim_set_net(w->sim, &n), WEFT_OK);
    listen_on(w, "server", "tcp:1");
    connect_from(w, "client", "tcp:server:1");
    run(w);
    assert_int_equal(w->client->made_at, 8 * MS);
    world_free(w);
    /* Huge bounds mean "very late", never an overflow (UBSan checks). */
    n = latency_cfg(0, INT64_MAX);
    n.stall_ppm = 1000000;
    n.stall_max_ns = INT64_MAX;
    n.connect_timeout_ns = INT64_MAX;
    /* SYN at once; the answer: the longest latency plus the longest stall. */
    const uint32_t vals[] = {0, UINT32_MAX, 0, UINT32_MAX};
    w = world_new(&n, weft_choice_replay(vals, 4), false);
    listen_on(w, "server", "tcp:1");
    connect_from(w, "client", "tcp:server:1");
    assert_int_equal(weft_sim_run_until(w->sim, 1000 * S), WEFT_OK);
    assert_non_null(w->server);
    assert_int_equal(w->failed, 1); /* the endpoint's 30 s ran out first */
    assert_string_equal(w->fail_reason, WEFT_REASON_TIMED_OUT);
    weft_time_ns next = 0;
    assert_true(weft_sim_next_time(w->sim, &next));
    assert_true(next == INT64_MAX); /* saturated */
    world_free(w);
}

/* ----------------------------------------------- Reconnecting client */

static void reconnecting_client_across_a_crash(void **state)
{
    (void)state;
    weft_net_config n = latency_cfg(1 * MS, 1 * MS);
    world *w = world_new(&n, NULL, false);
    listen_on(w, "server", "tcp:2000");
    weft_reconnecting rc;
    weft_reconnecting_init(&rc, w->r, &w->client_f);
    rc.jitter = 0.0; /* exact delays: initial * e, then * e again */
    assert_int_equal(weft_sim_set_current_host(w->sim, "client"), WEFT_OK);
    weft_connector *c = NULL;
    assert_int_equal(weft_reconnecting_connect(&rc, "tcp:server:2000", &c), WEFT_OK);
    assert_int_equal(weft_sim_run_until(w->sim, 1 * S), WEFT_OK);
    tproto *first = w->client;
    assert_non_null(first);
    assert_int_equal(first->made_at, 2 * MS);
    weft_reconnecting_reset_delay(&rc);
    /* The server crashes at 1 s and comes back (listening) at 5 s. */
    assert_int_equal(weft_sim_crash(w->sim, "server"), WEFT_OK);
    assert_int_equal(weft_sim_run_until(w->sim, 5 * S), WEFT_OK);
    assert_string_equal(first->reason, WEFT_REASON_LOST);
    assert_string_equal(w->flost_reason, WEFT_REASON_LOST);
    assert_ptr_equal(w->client, first); /* the retry at 3.718 s was refused */
    assert_int_equal(w->failed, 1);
    assert_string_equal(w->fail_reason, WEFT_REASON_REFUSED);
    assert_int_equal(w->failed_at, 1 * S + 2718281828 + 2 * MS);
    assert_int_equal(weft_sim_restart(w->sim, "server"), WEFT_OK);
    listen_on(w, "server", "tcp:2000");
    assert_int_equal(weft_sim_run_until(w->sim, 20 * S), WEFT_OK);
    /* The next retry, 7.389 s after the refusal, connects. */
    assert_ptr_not_equal(w->client, first);
    assert_int_equal(w->client->made, 1);
    assert_int_equal(w->client->made_at,
                     1 * S + 2718281828 + 2 * MS + 7389056098 + 2 * MS);
    weft_reconnecting_stop_trying(&rc);
    world_free(w);
}

/* ------------------------------------------------ Everything at once */

static uint8_t stream_byte(unsigned id, size_t i)
{
    return i == 0 ? (uint8_t)id : (uint8_t)(id * 37u + i * 11u + i / 7u);
}

/* Each client sends its stream in varied writes, then closes. */
static void chaos_client_made(tproto *p)
{
    unsigned id = (unsigned)(p - p->w->protos) + 1;
    uint8_t buf[64];
    size_t off = 0;
    for (int k = 0; off < 400; k++) {
        size_t len = 1 + (size_t)(k * 29 + (int)id) % 60;
        if (len > 400 - off)
            len = 400 - off;
        for (size_t i = 0; i < len; i++)
            buf[i] = stream_byte(id, off + i);
        int rc = weft_transport_write(p->base.transport, buf, len);
        assert_true(rc == WEFT_OK);
        off += len;
    }
    if (id % 3 == 0)
        assert_int_equal(weft_transport_lose_write_connection(p->base.transport), WEFT_OK);
    else if (id % 3 == 1)
        assert_int_equal(weft_transport_lose_connection(p->base.transport), WEFT_OK);
}

static void chaos_echo(tproto *p, const uint8_t *d, size_t n)
{
    int rc = weft_transport_write(p->base.transport, d, n);
    assert_true(rc == WEFT_OK || rc == WEFT_ECLOSED);
}

/* Random faults at every rate, crashes and partitions at seed-chosen times,
 * over many seeds: whatever happens, every byte that arrives is the right
 * one in the right place, every protocol that was made is lost and
 * destroyed exactly once, and nothing leaks. */
static void chaos_invariants(void **state)
{
    (void)state;
    size_t made = 0, done = 0, lost = 0, bytes = 0, full = 0;
    for (uint64_t seed = 1; seed <= 150; seed++) {
        weft_net_config n = latency_cfg(0, 5 * MS);
        n.max_chunk = 1 + seed % 16;
        n.coalesce = seed % 2 == 0;
        n.reset_ppm = 3000;
        n.stall_ppm = 30000;
        n.stall_max_ns = 200 * MS;
        n.refuse_ppm = 100000;
        world *w = world_new(&n, weft_choice_seeded(seed), false);
        w->aware = seed % 4 == 0;
        w->client_made = chaos_client_made;
        w->server_data = chaos_echo;
        assert_int_equal(weft_sim_add_host(w->sim, "other"), WEFT_OK);
        listen_on(w, "server", "tcp:2000");
        listen_on(w, "other", "tcp:2000");
        for (int i = 0; i < 6; i++)
            connect_from(w, i % 2 ? "client" : "other",
                         i % 3 ? "tcp:server:2000" : "tcp:other:2000");
        weft_time_ns fault_at = (weft_time_ns)(seed % 7) * MS;
        assert_int_equal(weft_sim_run_until(w->sim, fault_at), WEFT_OK);
        switch (seed % 5) {
        case 0:
            assert_int_equal(weft_sim_crash(w->sim, "server"), WEFT_OK);
            break;
        case 1:
            assert_int_equal(weft_sim_partition(w->sim, "client", "server"), WEFT_OK);
            break;
        case 2:
            assert_int_equal(weft_sim_stall(w->sim, "server", "other"), WEFT_OK);
            break;
        case 3:
            assert_int_equal(weft_sim_reset(w->sim, "other", NULL), WEFT_OK);
            break;
        default:
            break;
        }
        assert_int_equal(weft_sim_run_until(w->sim, fault_at + 50 * MS), WEFT_OK);
        if (seed % 5 == 1)
            assert_int_equal(weft_sim_heal(w->sim, "client", "server"), WEFT_OK);
        if (seed % 5 == 2)
            assert_int_equal(weft_sim_release(w->sim, "server", "other"), WEFT_OK);
        assert_int_equal(weft_sim_run_until(w->sim, 100 * S), WEFT_OK);
        /* Every byte received is in its place. */
        for (int i = 0; i < w->nprotos; i++) {
            tproto *p = &w->protos[i];
            assert_int_equal(p->made, 1);
            if (p->len == 0)
                continue;
            unsigned id = p->is_client ? (unsigned)i + 1 : p->data[0];
            for (size_t k = 0; k < p->len; k++)
                if (p->data[k] != stream_byte(id, k))
                    fail_msg("seed %llu proto %d byte %zu", (unsigned long long)seed, i, k);
            if (p->is_client)
                assert_true(p->len <= 400);
            bytes += p->len;
            full += p->is_client && p->len == 400;
        }
        for (int i = 0; i < w->nprotos; i++) {
            made++;
            done += strcmp(w->protos[i].reason, WEFT_REASON_DONE) == 0;
            lost += strcmp(w->protos[i].reason, WEFT_REASON_LOST) == 0;
        }
        tproto *all = w->protos;
        int count = w->nprotos;
        weft_sim_free(w->sim);
        w->sim = NULL;
        for (int i = 0; i < count; i++) {
            assert_int_equal(all[i].lost, 1);
            assert_int_equal(all[i].destroyed, 1);
            assert_int_equal(all[i].lost_before_destroy, 1);
        }
        for (int i = 0; i < w->nprotos; i++)
            free(w->protos[i].data);
        free(w);
    }
    /* The runs did varied things: clean ends, resets, whole echoes. */
    assert_true(made > 500);
    assert_true(done > 100);
    assert_true(lost > 50);
    assert_true(full > 50);
    assert_true(bytes > 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reset_both_sides_lost),
        cmocka_unit_test(reset_every_connection_of_a_host),
        cmocka_unit_test(abort_fault_from_one_end),
        cmocka_unit_test(partition_holds_traffic_until_heal),
        cmocka_unit_test(partition_misuse),
        cmocka_unit_test(connect_during_partition_times_out),
        cmocka_unit_test(stall_one_direction_then_release),
        cmocka_unit_test(crash_resets_everything_and_restart),
        cmocka_unit_test(crash_fails_pending_connects),
        cmocka_unit_test(refuse_rate),
        cmocka_unit_test(reset_rate_keeps_a_prefix),
        cmocka_unit_test(stall_rate_delays_but_keeps_order),
        cmocka_unit_test(zero_rates_ask_nothing),
        cmocka_unit_test(zero_answers_strike_no_fault),
        cmocka_unit_test(null_protocol_ops_are_skipped),
        cmocka_unit_test(crash_drops_the_hosts_calls),
        cmocka_unit_test(config_validation),
        cmocka_unit_test(reconnecting_client_across_a_crash),
        cmocka_unit_test(chaos_invariants),
    };
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
