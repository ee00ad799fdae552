/* bench_net: the simulated network's throughput and footprint.
 *
 *   net_pingpong_1conn       one-way messages per wall second, one connection
 *   net_pingpong_10k         the same over 10,000 connections at once
 *   net_idle_pair_bytes      heap bytes per idle connection pair (both sides,
 *                            the connector, allocator overhead included)
 *   net_heartbeat_speedup    virtual seconds per wall second: 1,000 clients,
 *                            a heartbeat each virtual second, one virtual hour
 *
 * Latency (1-20 us) and chunking (max_chunk 64, coalescing on: each delivery
 * may be split, down to one byte) are on for the throughput runs; the
 * *_unchunked lines repeat them with whole writes, for comparison. Choices come
 * from a seeded source with recording off. Messages are 32 bytes; a message
 * counts when its last byte is received. Wall time is read here, in the
 * benchmark, never in the library.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft/reactor.h"
#include "weft/sim.h"

#define MSG_BYTES 32u
#ifndef BENCH_ROUNDS_1
#define BENCH_ROUNDS_1 1000000
#endif

typedef struct bench bench;

typedef struct pp {
    weft_protocol base;
    bench *b;
    uint32_t got;
    uint64_t rounds_left;
} pp;

struct bench {
    weft_sim *sim;
    weft_reactor *r;
    weft_factory server_f, client_f;
    pp *protos;
    size_t nprotos, cap;
    uint64_t messages;
    uint64_t rounds;
    pp **clients;
    size_t nclients;
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Rates are per second of this process's CPU time (the machine is shared:
 * wall time also counts other processes); the wall figure is printed too. */
typedef struct stopwatch {
    double cpu0, wall0, cpu, wall;
} stopwatch;

static void sw_start(stopwatch *sw)
{
    sw->cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    sw->wall0 = clock_s(CLOCK_MONOTONIC);
}

static void sw_stop(stopwatch *sw)
{
    sw->cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - sw->cpu0;
    sw->wall = clock_s(CLOCK_MONOTONIC) - sw->wall0;
}

static const uint8_t g_msg[MSG_BYTES] = "0123456789abcdef0123456789abcdef";

static void pp_made(weft_protocol *p)
{
    (void)p;
}

static void server_data(weft_protocol *bp, const uint8_t *d, size_t n)
{
    pp *p = (pp *)bp;
    (void)d;
    p->got += (uint32_t)n;
    while (p->got >= MSG_BYTES) {
        p->got -= MSG_BYTES;
        p->b->messages++;
        weft_transport_write(bp->transport, g_msg, MSG_BYTES);
    }
}

static void client_data(weft_protocol *bp, const uint8_t *d, size_t n)
{
    pp *p = (pp *)bp;
    (void)d;
    p->got += (uint32_t)n;
    while (p->got >= MSG_BYTES) {
        p->got -= MSG_BYTES;
        p->b->messages++;
        if (p->rounds_left) {
            p->rounds_left--;
            weft_transport_write(bp->transport, g_msg, MSG_BYTES);
        }
    }
}

static void pp_lost(weft_protocol *p, const weft_failure *reason)
{
    (void)p, (void)reason;
}

static const weft_protocol_ops server_ops = {
    .connection_made = pp_made,
    .data_received = server_data,
    .connection_lost = pp_lost,
};

static void client_made(weft_protocol *bp)
{
    pp *p = (pp *)bp;
    bench *b = p->b;
    p->rounds_left = b->rounds;
    if (b->nclients < b->cap)
        b->clients[b->nclients++] = p;
}

static const weft_protocol_ops client_ops = {
    .connection_made = client_made,
    .data_received = client_data,
    .connection_lost = pp_lost,
};

static weft_protocol *build(weft_factory *f, const weft_address *peer)
{
    bench *b = f->ctx;
    (void)peer;
    if (b->nprotos == b->cap * 2)
        return NULL;
    pp *p = &b->protos[b->nprotos++];
    memset(p, 0, sizeof *p);
    p->b = b;
    p->base.ops = f == &b->server_f ? &server_ops : &client_ops;
    return &p->base;
}

/* A simulator with hosts "server" and "client", a listener, and room for
 * conns connections' protocols (allocated here, before any measurement). */
static bench *bench_new(size_t conns, const weft_net_config *net)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->cap = conns;
    b->protos = calloc(conns * 2, sizeof *b->protos);
    b->clients = calloc(conns, sizeof *b->clients);
    if (!b->protos || !b->clients)
        return NULL;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.net = *net;
    weft_choice *c = weft_choice_seeded(1);
    weft_choice_record(c, false);
    b->sim = weft_sim_new(&cfg, c);
    if (!b->sim)
        return NULL;
    b->r = weft_sim_reactor(b->sim);
    b->server_f.build_protocol = build;
    b->server_f.ctx = b;
    b->client_f.build_protocol = build;
    b->client_f.ctx = b;
    weft_sim_add_host(b->sim, "server");
    weft_sim_add_host(b->sim, "client");
    weft_sim_set_current_host(b->sim, "server");
    if (weft_listen(b->r, "tcp:7000", &b->server_f, NULL) != WEFT_OK)
        return NULL;
    return b;
}

/* conns new connections (their connectors in cs when not NULL). */
static int bench_connect(bench *b, size_t conns, weft_connector **cs)
{
    size_t had = b->nclients;
    weft_sim_set_current_host(b->sim, "client");
    for (size_t i = 0; i < conns; i++)
        if (weft_connect_factory(b->r, "tcp:server:7000", &b->client_f, cs ? &cs[i] : NULL) !=
            WEFT_OK)
            return -1;
    if (weft_sim_run_until_quiet(b->sim) != WEFT_OK || b->nclients != had + conns)
        return -1;
    return 0;
}

static void bench_free(bench *b)
{
    weft_sim_free(b->sim);
    free(b->protos);
    free(b->clients);
    free(b);
}

static weft_net_config chunky_net(void)
{
    weft_net_config n;
    memset(&n, 0, sizeof n);
    n.latency_min_ns = 1 * WEFT_NS_PER_US;
    n.latency_max_ns = 20 * WEFT_NS_PER_US;
    n.max_chunk = 64; /* any delivery may be split, down to 1 byte */
    n.coalesce = true;
    n.connect_timeout_ns = 30 * WEFT_NS_PER_S;
    return n;
}

static int pingpong(const weft_net_config *n_in, size_t conns, uint64_t rounds, stopwatch *sw,
                    double *msgs, double *deliveries_per_msg)
{
    weft_net_config n = *n_in;
    bench *b = bench_new(conns, &n);
    if (!b || bench_connect(b, conns, NULL))
        return -1;
    for (size_t i = 0; i < b->nclients; i++)
        b->clients[i]->rounds_left = rounds - 1;
    uint64_t ev0 = weft_sim_events(b->sim);
    sw_start(sw);
    for (size_t i = 0; i < b->nclients; i++)
        weft_transport_write(b->clients[i]->base.transport, g_msg, MSG_BYTES);
    if (weft_sim_run_until_quiet(b->sim) != WEFT_OK)
        return -1;
    sw_stop(sw);
    uint64_t want = (uint64_t)conns * rounds * 2;
    if (b->messages != want) {
        fprintf(stderr, "bench_net: %llu messages, expected %llu\n",
                (unsigned long long)b->messages, (unsigned long long)want);
        return -1;
    }
    *msgs = (double)b->messages;
    *deliveries_per_msg = (double)(weft_sim_events(b->sim) - ev0) / (double)b->messages;
    bench_free(b);
    return 0;
}

static int idle_pair_bytes(size_t conns, double *bytes)
{
    weft_net_config n;
    memset(&n, 0, sizeof n);
    n.latency_min_ns = n.latency_max_ns = 10 * WEFT_NS_PER_US;
    bench *b = bench_new(2 * conns, &n);
    weft_connector **cs = calloc(conns, sizeof *cs);
    if (!b || !cs)
        return -1;
    /* Warm the simulator's own pools (event nodes, heap, labels) with the
     * same number of connects, then drop those connections and connectors:
     * what remains counted is what idle connections hold. */
    if (bench_connect(b, conns, cs) || weft_sim_reset(b->sim, "client", NULL) != WEFT_OK ||
        weft_sim_run_until_quiet(b->sim) != WEFT_OK || weft_sim_open_connections(b->sim) != 0)
        return -1;
    for (size_t i = 0; i < conns; i++)
        weft_connector_free(cs[i]);
    free(cs);
    struct mallinfo2 m0 = mallinfo2();
    size_t before = m0.uordblks;
    if (bench_connect(b, conns, NULL))
        return -1;
    /* Idle: every connect finished, no event pending. */
    if (weft_sim_pending(b->sim) != 0)
        return -1;
    struct mallinfo2 mi = mallinfo2();
    *bytes = (double)(mi.uordblks - before) / (double)conns;
    bench_free(b);
    return 0;
}

/* Heartbeats: each client writes MSG_BYTES every virtual second from its
 * own delayed call; the server acknowledges each with MSG_BYTES back. */
typedef struct hb {
    weft_reactor *r;
    weft_transport *t;
    weft_time_ns end_ns;
} hb;

static void beat_loop(void *ctx)
{
    hb *h = ctx;
    weft_transport_write(h->t, g_msg, MSG_BYTES);
    if (weft_now(h->r) + WEFT_NS_PER_S <= h->end_ns) {
        weft_call *c = weft_call_later(h->r, WEFT_NS_PER_S, beat_loop, h);
        weft_call_release(c);
    }
}

static int heartbeats(size_t clients, int64_t hour_ns, stopwatch *sw, double *virt_s,
                      uint64_t *beats)
{
    weft_net_config n = chunky_net();
    n.latency_min_ns = 1 * WEFT_NS_PER_MS;
    n.latency_max_ns = 5 * WEFT_NS_PER_MS;
    n.max_chunk = 64;
    bench *b = bench_new(clients, &n);
    if (!b || bench_connect(b, clients, NULL))
        return -1;
    hb *hs = calloc(clients, sizeof *hs);
    if (!hs)
        return -1;
    weft_time_ns start = weft_now(b->r);
    /* Spread the clients over the first second, each on its own host's
     * clock: its calls belong to the client host. */
    weft_sim_set_current_host(b->sim, "client");
    for (size_t i = 0; i < clients; i++) {
        hs[i].r = b->r;
        hs[i].t = b->clients[i]->base.transport;
        hs[i].end_ns = start + hour_ns;
        weft_call *c = weft_call_later(b->r, (int64_t)(i * (WEFT_NS_PER_S / clients)),
                                       beat_loop, &hs[i]);
        weft_call_release(c);
    }
    sw_start(sw);
    if (weft_sim_run_until_quiet(b->sim) != WEFT_OK)
        return -1;
    sw_stop(sw);
    *virt_s = (double)(weft_now(b->r) - start) / 1e9;
    *beats = b->messages;
    free(hs);
    bench_free(b);
    return 0;
}

/* An optional argument runs one part: "1conn", "10k", "unchunked", "idle"
 * or "heartbeat" (for profiling); none runs them all. */
static int want(int argc, char **argv, const char *part)
{
    return argc < 2 || strcmp(argv[1], part) == 0;
}

int main(int argc, char **argv)
{
    stopwatch sw;
    double msgs, per, bytes, virt_s;
    uint64_t beats;
    weft_net_config chunky = chunky_net();
    weft_net_config latency_only = chunky;
    latency_only.max_chunk = 0;
    latency_only.coalesce = false;
    if (want(argc, argv, "1conn")) {
    if (pingpong(&chunky, 1, BENCH_ROUNDS_1, &sw, &msgs, &per))
        return 1;
    printf("bench: net_pingpong_1conn %.0f msg/s\n", msgs / sw.cpu);
    printf("bench: net_pingpong_1conn_wall %.0f msg/s\n", msgs / sw.wall);
    printf("bench: net_pingpong_1conn_events_per_msg %.2f events\n", per);
    }
    if (want(argc, argv, "10k")) {
    if (pingpong(&chunky, 10000, 100, &sw, &msgs, &per))
        return 1;
    printf("bench: net_pingpong_10k %.0f msg/s\n", msgs / sw.cpu);
    printf("bench: net_pingpong_10k_wall %.0f msg/s\n", msgs / sw.wall);
    printf("bench: net_pingpong_10k_events_per_msg %.2f events\n", per);
    }
    /* For comparison: latency on, chunking off (whole writes). */
    if (want(argc, argv, "unchunked")) {
    if (pingpong(&latency_only, 1, BENCH_ROUNDS_1, &sw, &msgs, &per))
        return 1;
    printf("bench: net_pingpong_1conn_unchunked %.0f msg/s\n", msgs / sw.cpu);
    if (pingpong(&latency_only, 10000, 100, &sw, &msgs, &per))
        return 1;
    printf("bench: net_pingpong_10k_unchunked %.0f msg/s\n", msgs / sw.cpu);
    }
    if (want(argc, argv, "idle")) {
    if (idle_pair_bytes(10000, &bytes))
        return 1;
    printf("bench: net_idle_pair_bytes %.0f bytes\n", bytes);
    }
    if (want(argc, argv, "heartbeat")) {
    if (heartbeats(1000, 3600 * WEFT_NS_PER_S, &sw, &virt_s, &beats))
        return 1;
    printf("bench: net_heartbeat_speedup %.0f virtual_s/cpu_s\n", virt_s / sw.cpu);
    printf("bench: net_heartbeat_speedup_wall %.0f virtual_s/wall_s\n", virt_s / sw.wall);
    printf("bench: net_heartbeat_messages %llu messages\n", (unsigned long long)beats);
    }
    return 0;
}
