/* net_harness.h: a recording world on the simulated network, shared by the
 * network suites (test_net, test_faults, test_flow).
 *
 * A world is one simulator with two hosts, "server" and "client", and two
 * factories whose protocols (tproto) record everything the reactor tells
 * them: bytes and chunk sizes, every callback with its count and virtual
 * time, the reasons, the addresses. Hooks in the world let a test act from
 * inside the callbacks. The helpers assert with cmocka, so they are called
 * from inside a cmocka test only; the file itself defines no globals.
 */
#ifndef WEFT_TESTS_NET_HARNESS_H
#define WEFT_TESTS_NET_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/reactor.h"
#include "weft/sim.h"

#define MS WEFT_NS_PER_MS
#define S WEFT_NS_PER_S
#define MAXP 64

typedef struct world world;

typedef struct tproto {
    weft_protocol base;
    world *w;
    bool is_client;
    uint8_t *data;
    size_t len, cap;
    size_t chunks, min_chunk, max_chunk;
    int made, lost, read_lost, write_lost, destroyed;
    int lost_before_destroy;
    char reason[40];
    char message[64];
    weft_time_ns made_at, lost_at, read_lost_at, write_lost_at, last_data_at;
    weft_address peer, host;
    int write_after_lost_rc;
} tproto;

struct world {
    weft_sim *sim;
    weft_reactor *r;
    weft_factory server_f, client_f;
    tproto protos[MAXP];
    int nprotos;
    tproto *server, *client; /* the last built on each side */
    int failed, flost;
    char fail_reason[40], flost_reason[40];
    weft_time_ns failed_at;
    weft_connector *fail_conn, *flost_conn;
    int server_starts, server_stops, client_starts, client_stops;
    bool server_refuses, client_refuses, aware;
    int reconnects_left; /* reconnect from the factory hooks */
    bool free_in_hook;
    void (*server_made)(tproto *p);
    void (*client_made)(tproto *p);
    void (*server_data)(tproto *p, const uint8_t *d, size_t n);
    void (*client_data)(tproto *p, const uint8_t *d, size_t n);
    void (*on_lost)(tproto *p);
};

/* A world on a new simulator (net may be NULL: defaults; a zero connect
 * timeout becomes 30 s; choices may be NULL: the default source; keep: keep
 * trace text) with hosts "server" and "client". Free with world_free. */
world *world_new(const weft_net_config *net, weft_choice *choices, bool keep);
/* Frees the simulator (protocols still open see their end), then the
 * recorded bytes and the world. */
void world_free(world *w);
/* Listen on host with the server factory / connect from host with the client
 * factory; both assert success. */
weft_listener *listen_on(world *w, const char *host, const char *desc);
weft_connector *connect_from(world *w, const char *host, const char *desc);
/* Run the simulator until nothing is left to do. */
void run(world *w);
/* A network configuration with latency in [lo, hi] and nothing else set. */
weft_net_config latency_cfg(int64_t lo, int64_t hi);
/* A connected pair with fixed latency lat (default choices: no chunking),
 * half-close aware protocols if aware; both sides made once. */
world *pair(int64_t lat, bool aware);
/* The last client's / server's transport. */
weft_transport *ct(world *w);
weft_transport *stp(world *w);
void write_str(weft_transport *t, const char *s);
/* p received exactly want. */
void assert_data(const tproto *p, const char *want);

#endif
