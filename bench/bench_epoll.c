/* bench_epoll: the real reactor on 127.0.0.1.
 *
 *   epoll_pingpong_1conn      round trips per second, one connection, 32-byte
 *                             messages (client writes, server echoes)
 *   epoll_pingpong_raw_floor  the same exchange with bare blocking send/recv
 *                             in one thread: the kernel's cost alone
 *   epoll_pingpong_ratio      reactor time per round trip / floor time
 *   epoll_pingpong_100conn    round trips per second, 100 connections at once
 *   epoll_bulk                one-way MiB per second, 256 MiB through a push
 *                             producer in 64 KiB writes
 *   epoll_connects            connections set up and torn down per second
 *                             (connect, accept, connection_made on both sides,
 *                             lose_connection, both connection_lost)
 *   epoll_calls               delayed calls dispatched per second (100,000
 *                             calls due at once, one pass)
 *   epoll_idle_pair_bytes     library heap bytes per idle connection pair
 *                             (both ends in one reactor, the connector
 *                             included; the protocols are the bench's and not
 *                             counted; kernel socket buffers not counted)
 *
 * Wall time is read here with CLOCK_MONOTONIC. Every run checks what it
 * received and exits non-zero on a mismatch.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weft/reactor.h"

#define MSG_BYTES 32u
#define PP_ROUNDS_1 20000u
#define PP_CONNS 100u
#define PP_ROUNDS_EACH 200u
#define BULK_BYTES (256u * 1024u * 1024u)
#define BULK_CHUNK (64u * 1024u)
#define CONNECTS 2000u
#define CALLS 100000u
#define PROTOS_MAX 1024u
#define IDLE_PAIRS 400u

typedef struct bench bench;

typedef struct bp {
    weft_protocol base;
    bench *b;
    bool client;
    uint32_t got;
    uint64_t rounds_left;
    uint64_t received;
    uint64_t sent;
    bool paused;
} bp;

struct bench {
    weft_reactor *r;
    weft_factory server_f, client_f;
    bp protos[PROTOS_MAX];
    size_t nprotos;
    uint64_t done_clients;
    uint64_t lost;
    uint64_t rounds_each;
    uint64_t conns;
    uint64_t bad;
    int mode; /* 0 ping-pong, 1 bulk, 2 connects, 3 idle */
    uint64_t connects_left;
    char desc[64];
    uint64_t calls;
};

static const uint8_t g_msg[MSG_BYTES] = "0123456789abcdef0123456789abcdef";
static uint8_t g_chunk[BULK_CHUNK];

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void produce(bp *p);

static void bulk_pause(void *ctx)
{
    ((bp *)ctx)->paused = true;
}

static void bulk_resume(void *ctx)
{
    bp *p = ctx;
    p->paused = false;
    produce(p);
}

static void produce(bp *p)
{
    weft_transport *t = p->base.transport;
    while (!p->paused && p->sent < BULK_BYTES) {
        if (weft_transport_write(t, g_chunk, BULK_CHUNK) != WEFT_OK) {
            p->b->bad++;
            return;
        }
        p->sent += BULK_CHUNK;
    }
    if (p->sent == BULK_BYTES && !p->paused) {
        (void)weft_transport_unregister_producer(t);
        (void)weft_transport_lose_connection(t);
        p->sent++;
    }
}

static void bp_made(weft_protocol *bpr)
{
    bp *p = (bp *)bpr;
    bench *b = p->b;
    if (b->mode == 0 && p->client) {
        p->rounds_left = b->rounds_each;
        (void)weft_transport_write(bpr->transport, g_msg, MSG_BYTES);
    } else if (b->mode == 1 && !p->client) {
        weft_producer prod = {bulk_pause, bulk_resume, NULL, p};
        (void)weft_transport_register_producer(bpr->transport, &prod);
        produce(p);
    } else if (b->mode == 2 && p->client) {
        (void)weft_transport_lose_connection(bpr->transport);
    }
}

static void bp_data(weft_protocol *bpr, const uint8_t *data, size_t len)
{
    bp *p = (bp *)bpr;
    bench *b = p->b;
    p->received += len;
    if (b->mode == 1)
        return;
    if (!p->client) {
        (void)weft_transport_write(bpr->transport, data, len); /* echo */
        return;
    }
    for (size_t i = 0; i < len; i++)
        if (data[i] != g_msg[(p->got + i) % MSG_BYTES])
            b->bad++;
    p->got += (uint32_t)len;
    while (p->got >= MSG_BYTES) {
        p->got -= MSG_BYTES;
        if (--p->rounds_left == 0) {
            b->done_clients++;
            (void)weft_transport_lose_connection(bpr->transport);
            return;
        }
        (void)weft_transport_write(bpr->transport, g_msg, MSG_BYTES);
    }
}

static void bp_lost(weft_protocol *bpr, const weft_failure *reason)
{
    bp *p = (bp *)bpr;
    if (!weft_failure_check(reason, WEFT_REASON_DONE))
        p->b->bad++;
    p->b->lost++;
}

static const weft_protocol_ops bp_ops = {
    .connection_made = bp_made,
    .data_received = bp_data,
    .connection_lost = bp_lost,
};

static weft_protocol *build(bench *b, bool client)
{
    /* Protocols are reused round-robin: a slot is free again once its
     * connection ended (connects mode runs one connection at a time). */
    bp *p = &b->protos[b->nprotos++ % PROTOS_MAX];
    memset(p, 0, sizeof *p);
    p->base.ops = &bp_ops;
    p->b = b;
    p->client = client;
    return &p->base;
}

static weft_protocol *build_server(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    return build(f->ctx, false);
}

static weft_protocol *build_client(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    return build(f->ctx, true);
}

static void client_lost_hook(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    bench *b = f->ctx;
    (void)reason;
    if (b->mode == 2 && b->connects_left > 0) {
        b->connects_left--;
        if (weft_connector_connect(c) != WEFT_OK)
            b->bad++;
    }
}

static void client_failed_hook(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    bench *b = f->ctx;
    (void)c;
    (void)reason;
    b->bad++;
}

static void bench_init(bench *b, int mode)
{
    memset(b, 0, sizeof *b);
    b->mode = mode;
    b->r = weft_reactor_new_epoll();
    if (!b->r) {
        fprintf(stderr, "bench_epoll: no reactor\n");
        exit(1);
    }
    b->server_f.build_protocol = build_server;
    b->server_f.ctx = b;
    b->client_f.build_protocol = build_client;
    b->client_f.connection_lost = client_lost_hook;
    b->client_f.connection_failed = client_failed_hook;
    b->client_f.ctx = b;
    weft_listener *l;
    if (weft_listen(b->r, "tcp:0:interface=127.0.0.1", &b->server_f, &l) != WEFT_OK) {
        fprintf(stderr, "bench_epoll: listen failed\n");
        exit(1);
    }
    snprintf(b->desc, sizeof b->desc, "tcp:127.0.0.1:%u", (unsigned)weft_listener_address(l)->port);
}

static bool all_lost(void *ctx)
{
    bench *b = ctx;
    return b->done_clients == b->conns && b->lost == 2 * b->conns;
}

static bool lost_n(void *ctx)
{
    bench *b = ctx;
    return b->lost >= b->calls;
}

static void run_or_die(bench *b, bool (*cond)(void *), void *ctx, const char *what)
{
    int rc = weft_reactor_run_until(b->r, cond, ctx, weft_now(b->r) + 120 * WEFT_NS_PER_S);
    if (rc != WEFT_OK || b->bad) {
        fprintf(stderr, "bench_epoll: %s: %s, %llu bad\n", what, weft_err_name(rc),
                (unsigned long long)b->bad);
        exit(1);
    }
}

static double pingpong(unsigned conns, uint64_t rounds_each)
{
    bench *b = calloc(1, sizeof *b);
    bench_init(b, 0);
    b->rounds_each = rounds_each;
    b->conns = conns;
    for (unsigned i = 0; i < conns; i++)
        if (weft_connect_factory(b->r, b->desc, &b->client_f, NULL) != WEFT_OK) {
            fprintf(stderr, "bench_epoll: connect failed\n");
            exit(1);
        }
    double t0 = wall_s();
    run_or_die(b, all_lost, b, "pingpong");
    double dt = wall_s() - t0;
    weft_reactor_free(b->r);
    free(b);
    return (double)conns * (double)rounds_each / dt;
}

/* Bare blocking sockets in one thread: send, the peer receives and sends
 * back, receive. No reactor, no buffering, no callbacks. */
static double raw_floor(uint64_t rounds)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "bench_epoll: raw listen failed\n");
        exit(1);
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "bench_epoll: raw connect failed\n");
        exit(1);
    }
    int s = accept(lfd, NULL, NULL);
    int one = 1;
    (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t buf[MSG_BYTES];
    double t0 = wall_s();
    for (uint64_t i = 0; i < rounds; i++) {
        if (send(c, g_msg, MSG_BYTES, MSG_NOSIGNAL) != MSG_BYTES ||
            recv(s, buf, MSG_BYTES, MSG_WAITALL) != MSG_BYTES ||
            send(s, buf, MSG_BYTES, MSG_NOSIGNAL) != MSG_BYTES ||
            recv(c, buf, MSG_BYTES, MSG_WAITALL) != MSG_BYTES || memcmp(buf, g_msg, MSG_BYTES)) {
            fprintf(stderr, "bench_epoll: raw exchange failed\n");
            exit(1);
        }
    }
    double dt = wall_s() - t0;
    close(c);
    close(s);
    close(lfd);
    return (double)rounds / dt;
}

static bool bulk_done(void *ctx)
{
    bench *b = ctx;
    return b->lost >= 2;
}

static double bulk(void)
{
    bench *b = calloc(1, sizeof *b);
    bench_init(b, 1);
    if (weft_connect_factory(b->r, b->desc, &b->client_f, NULL) != WEFT_OK)
        exit(1);
    double t0 = wall_s();
    run_or_die(b, bulk_done, b, "bulk");
    double dt = wall_s() - t0;
    uint64_t got = 0;
    for (size_t i = 0; i < b->nprotos; i++)
        if (b->protos[i].client)
            got = b->protos[i].received;
    weft_reactor_free(b->r);
    free(b);
    if (got != BULK_BYTES) {
        fprintf(stderr, "bench_epoll: bulk received %llu bytes\n", (unsigned long long)got);
        exit(1);
    }
    return (double)BULK_BYTES / (1024.0 * 1024.0) / dt;
}

static double connects(void)
{
    bench *b = calloc(1, sizeof *b);
    bench_init(b, 2);
    b->connects_left = CONNECTS - 1;
    b->calls = 2u * CONNECTS; /* connection_lost calls expected */
    if (weft_connect_factory(b->r, b->desc, &b->client_f, NULL) != WEFT_OK)
        exit(1);
    double t0 = wall_s();
    run_or_die(b, lost_n, b, "connects");
    double dt = wall_s() - t0;
    weft_reactor_free(b->r);
    free(b);
    return (double)CONNECTS / dt;
}

static void count_call(void *ctx)
{
    ((bench *)ctx)->lost++;
}

static double calls(void)
{
    bench b;
    memset(&b, 0, sizeof b);
    b.r = weft_reactor_new_epoll();
    b.calls = CALLS;
    for (unsigned i = 0; i < CALLS; i++)
        if (weft_call_soon(b.r, count_call, &b) != WEFT_OK)
            exit(1);
    double t0 = wall_s();
    if (weft_reactor_run(b.r) != WEFT_OK || b.lost != CALLS)
        exit(1);
    double dt = wall_s() - t0;
    weft_reactor_free(b.r);
    return (double)CALLS / dt;
}

static bool idle_made(void *ctx)
{
    bench *b = ctx;
    return b->nprotos == 2u * IDLE_PAIRS;
}

static double idle_pair_bytes(void)
{
    bench *b = calloc(1, sizeof *b);
    bench_init(b, 3);
    /* Warm up the delayed-call slab (connect timeouts use it), so its
     * one-time allocation is not charged to the pairs. */
    weft_call *warm = weft_call_later(b->r, WEFT_NS_PER_S, count_call, b);
    (void)weft_call_cancel(warm);
    weft_call_release(warm);
    struct mallinfo2 before = mallinfo2();
    for (unsigned i = 0; i < IDLE_PAIRS; i++)
        if (weft_connect_factory(b->r, b->desc, &b->client_f, NULL) != WEFT_OK)
            exit(1);
    run_or_die(b, idle_made, b, "idle");
    struct mallinfo2 after = mallinfo2();
    weft_reactor_free(b->r);
    free(b);
    return ((double)after.uordblks - (double)before.uordblks) / IDLE_PAIRS;
}

int main(void)
{
    for (size_t i = 0; i < BULK_CHUNK; i++)
        g_chunk[i] = (uint8_t)i;
    double rate = pingpong(1, PP_ROUNDS_1);
    double floor_rate = raw_floor(PP_ROUNDS_1);
    printf("bench: epoll_pingpong_1conn %.0f round_trips/s\n", rate);
    printf("bench: epoll_pingpong_raw_floor %.0f round_trips/s\n", floor_rate);
    printf("bench: epoll_pingpong_ratio %.2f x_floor_time\n", floor_rate / rate);
    rate = pingpong(PP_CONNS, PP_ROUNDS_EACH);
    printf("bench: epoll_pingpong_100conn %.0f round_trips/s\n", rate);
    printf("bench: epoll_bulk %.0f MiB/s\n", bulk());
    printf("bench: epoll_connects %.0f connections/s\n", connects());
    printf("bench: epoll_calls %.0f calls/s\n", calls());
    printf("bench: epoll_idle_pair_bytes %.0f bytes\n", idle_pair_bytes());
    return 0;
}
