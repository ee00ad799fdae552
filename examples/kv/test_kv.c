/* test_kv.c: the kv protocol's unit tests, run on weft's simulator.
 *
 * This is the file a user of weft writes for their own protocol: a small
 * simulated world (a server host, a client host, a network with latency and
 * chunking), the real client against the real server, and the helpers of
 * weft/testing.h to look at what each Deferred holds. Chunking goes down to
 * one byte per delivery; sweeps run hundreds of seeds and check that every
 * seed behaves and that the same seed gives the same run. A raw peer (a
 * protocol that records bytes) drives each side on its own for bad input and
 * misuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "weft/sim.h"
#include "weft/testing.h"

#define MS WEFT_NS_PER_MS

/* ------------------------------------------------------------ A world */

typedef struct world {
    weft_sim *sim;
    weft_reactor *r;
    weft_factory *server;
    weft_factory *client_factory;
    kv_client *c;
} world;

typedef struct net_shape {
    size_t max_chunk;
    bool coalesce;
    int64_t latency_max_ns;
    int64_t jitter_ns;
} net_shape;

static const net_shape plain = {0, false, 5 * MS, 0};

/* The seed of the last world opened: printed with every mismatch, so that a
 * failure in a sweep says which seed to replay. */
static uint64_t world_seed;

static void name_seed_if(bool mismatch)
{
    if (mismatch)
        print_error("in the world of seed %" PRIu64 ":\n", world_seed);
}

static bool fired(void *ctx)
{
    return weft_deferred_peek(ctx, NULL) != WEFT_DEFERRED_PENDING;
}

/* A simulator seeded with seed, hosts db and web, a kv server on db:7000
 * and, unless server_only, a kv client connected to it from web. */
static void world_open_ex(world *w, uint64_t seed, const net_shape *shape,
                          const kv_server_options *opt, bool server_only)
{
    memset(w, 0, sizeof *w);
    world_seed = seed;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.jitter_ns = shape->jitter_ns;
    cfg.net.latency_min_ns = 100 * WEFT_NS_PER_US;
    cfg.net.latency_max_ns = shape->latency_max_ns;
    cfg.net.max_chunk = shape->max_chunk;
    cfg.net.coalesce = shape->coalesce;
    cfg.max_events = 10000000;
    w->sim = weft_sim_new(&cfg, weft_choice_seeded(seed));
    assert_non_null(w->sim);
    w->r = weft_sim_reactor(w->sim);
    assert_int_equal(weft_sim_add_host(w->sim, "db"), WEFT_OK);
    assert_int_equal(weft_sim_add_host(w->sim, "web"), WEFT_OK);
    w->server = kv_server_factory_new(opt);
    assert_non_null(w->server);
    assert_int_equal(weft_sim_set_current_host(w->sim, "db"), WEFT_OK);
    assert_int_equal(weft_listen(w->r, "tcp:7000", w->server, NULL), WEFT_OK);
    if (server_only)
        return;
    w->client_factory = kv_client_factory_new();
    assert_non_null(w->client_factory);
    assert_int_equal(weft_sim_set_current_host(w->sim, "web"), WEFT_OK);
    weft_deferred *d = NULL;
    assert_int_equal(weft_connect(w->r, "tcp:db:7000", w->client_factory, &d), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(w->r, fired, d, 10 * WEFT_NS_PER_S), WEFT_OK);
    w->c = kv_client_from_protocol(weft_assert_succeeded(d));
    assert_non_null(w->c);
    weft_deferred_unref(d);
}

static void world_open(world *w, uint64_t seed, const net_shape *shape,
                       const kv_server_options *opt)
{
    world_open_ex(w, seed, shape, opt, false);
}

static void settle_all(world *w)
{
    int rc = weft_sim_run_until_quiet(w->sim);
    assert_int_equal(rc, WEFT_OK);
}

static void world_close(world *w)
{
    weft_sim_free(w->sim);
    kv_client_factory_free(w->client_factory);
    kv_server_factory_free(w->server);
    memset(w, 0, sizeof *w);
}

/* The value of a GET, compared and freed. */
static void expect_got(weft_deferred *d, const char *want)
{
    name_seed_if(weft_deferred_peek(d, NULL) != WEFT_DEFERRED_SUCCEEDED);
    char *got = weft_assert_succeeded(d);
    assert_non_null(got);
    name_seed_if(strcmp(got, want) != 0);
    assert_string_equal(got, want);
    weft_free(got);
    weft_deferred_unref(d);
}

static void expect_done(weft_deferred *d)
{
    name_seed_if(weft_deferred_peek(d, NULL) != WEFT_DEFERRED_SUCCEEDED);
    assert_null(weft_assert_succeeded(d));
    weft_deferred_unref(d);
}

static void expect_failed(weft_deferred *d, const char *type, const char *message_part)
{
    weft_result r;
    name_seed_if(weft_deferred_peek(d, &r) != WEFT_DEFERRED_FAILED ||
                 !weft_failure_check(r.failure, type));
    weft_failure *f = weft_assert_failed(d, type);
    if (message_part != NULL && strstr(f->message, message_part) == NULL)
        fail_msg("failure %s: message '%s' lacks '%s'", f->type, f->message, message_part);
    weft_failure_free(f);
    weft_deferred_unref(d);
}

/* ------------------------------------------------------------ A raw peer */

/* Records what it receives; the test writes through box->p. */
typedef struct raw_box {
    weft_factory factory; /* ctx: this */
    weft_protocol *p;     /* while connected */
    char data[16384];
    size_t len;
    char reason[48];
    bool made, lost;
} raw_box;

typedef struct raw_proto {
    weft_protocol base;
    raw_box *box;
} raw_proto;

static void raw_made(weft_protocol *p)
{
    raw_box *b = ((raw_proto *)p)->box;
    b->made = true;
    b->p = p;
}

static void raw_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    raw_box *b = ((raw_proto *)p)->box;
    assert_true(b->len + len < sizeof b->data);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void raw_lost(weft_protocol *p, const weft_failure *reason)
{
    raw_box *b = ((raw_proto *)p)->box;
    b->lost = true;
    b->p = NULL;
    snprintf(b->reason, sizeof b->reason, "%s", reason->type);
}

static void raw_destroy(weft_protocol *p)
{
    free(p);
}

static const weft_protocol_ops raw_ops = {
    .connection_made = raw_made,
    .data_received = raw_data,
    .connection_lost = raw_lost,
    .destroy = raw_destroy,
};

static weft_protocol *raw_build(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    raw_proto *rp = calloc(1, sizeof *rp);
    assert_non_null(rp);
    rp->base.ops = &raw_ops;
    rp->box = f->ctx;
    return &rp->base;
}

static void raw_init(raw_box *b)
{
    memset(b, 0, sizeof *b);
    b->factory.build_protocol = raw_build;
    b->factory.ctx = b;
}

static void raw_send(raw_box *b, const char *text)
{
    assert_non_null(b->p);
    assert_int_equal(weft_transport_write(b->p->transport, text, strlen(text)), WEFT_OK);
}

/* A raw client connected to the world's server. */
static void raw_connect(world *w, raw_box *b)
{
    raw_init(b);
    assert_int_equal(weft_sim_set_current_host(w->sim, "web"), WEFT_OK);
    weft_deferred *d = NULL;
    assert_int_equal(weft_connect(w->r, "tcp:db:7000", &b->factory, &d), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(w->r, fired, d, 10 * WEFT_NS_PER_S), WEFT_OK);
    weft_assert_succeeded(d);
    weft_deferred_unref(d);
    assert_true(b->made);
}

/* ------------------------------------------------------------ The client */

static void test_pipelined_requests_each_get_their_reply(void **state)
{
    (void)state;
    unsigned long mark = weft_watch_unhandled();
    world w;
    world_open(&w, 1, &plain, NULL);
    weft_deferred *s1 = kv_client_set(w.c, "user:1", "alice");
    weft_deferred *s2 = kv_client_set(w.c, "user:2", "bob with spaces");
    weft_deferred *g1 = kv_client_get(w.c, "user:1");
    weft_deferred *g2 = kv_client_get(w.c, "user:2");
    weft_deferred *g3 = kv_client_get(w.c, "user:3");
    weft_deferred *d1 = kv_client_del(w.c, "user:1");
    weft_deferred *d1again = kv_client_del(w.c, "user:1");
    weft_deferred *g1gone = kv_client_get(w.c, "user:1");
    /* Sent, not answered: nothing has a result before the reactor runs. */
    weft_assert_no_result(s1);
    weft_assert_no_result(g1gone);
    assert_int_equal(kv_client_pending(w.c), 8);
    settle_all(&w);
    assert_int_equal(kv_client_pending(w.c), 0);
    expect_done(s1);
    expect_done(s2);
    expect_got(g1, "alice");
    expect_got(g2, "bob with spaces");
    expect_failed(g3, KV_FAILURE_NOT_FOUND, "user:3");
    expect_done(d1);
    expect_failed(d1again, KV_FAILURE_NOT_FOUND, "user:1");
    expect_failed(g1gone, KV_FAILURE_NOT_FOUND, "user:1");
    assert_null(kv_server_lookup(w.server, "user:1"));
    assert_string_equal(kv_server_lookup(w.server, "user:2"), "bob with spaces");
    assert_int_equal(kv_server_keys(w.server), 1);
    assert_int_equal(kv_server_requests(w.server), 8);
    world_close(&w);
    weft_assert_no_unhandled(mark);
}

/* A callback that sends the next request from inside the first one's chain. */
typedef struct chain_ctx {
    kv_client *c;
    weft_deferred *next;
} chain_ctx;

static weft_result then_get(weft_result in, void *ctx)
{
    chain_ctx *cc = ctx;
    assert_null(in.value);
    cc->next = kv_client_get(cc->c, "k");
    return in;
}

static void test_request_from_a_callback(void **state)
{
    (void)state;
    world w;
    world_open(&w, 2, &plain, NULL);
    chain_ctx cc = {w.c, NULL};
    weft_deferred *s = kv_client_set(w.c, "k", "v");
    assert_int_equal(weft_deferred_add_callback(s, then_get, &cc), WEFT_OK);
    settle_all(&w);
    expect_done(s);
    assert_non_null(cc.next);
    expect_got(cc.next, "v");
    world_close(&w);
}

static void test_bad_requests_fail_at_once_and_send_nothing(void **state)
{
    (void)state;
    world w;
    world_open(&w, 3, &plain, NULL);
    char long_key[KV_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    char long_value[KV_VALUE_MAX + 2];
    memset(long_value, 'v', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    expect_failed(kv_client_get(w.c, ""), KV_FAILURE_BAD_REQUEST, "bad key");
    expect_failed(kv_client_get(w.c, "two words"), KV_FAILURE_BAD_REQUEST, NULL);
    expect_failed(kv_client_get(w.c, "tab\there"), KV_FAILURE_BAD_REQUEST, NULL);
    expect_failed(kv_client_get(w.c, long_key), KV_FAILURE_BAD_REQUEST, NULL);
    expect_failed(kv_client_set(w.c, "k", "line\r\nGET x"), KV_FAILURE_BAD_REQUEST, "bad value");
    expect_failed(kv_client_set(w.c, "k", long_value), KV_FAILURE_BAD_REQUEST, NULL);
    expect_failed(kv_client_del(w.c, "a\nb"), KV_FAILURE_BAD_REQUEST, NULL);
    assert_int_equal(kv_client_pending(w.c), 0);
    /* The limits themselves are allowed. */
    long_key[KV_KEY_MAX] = '\0';
    long_value[KV_VALUE_MAX] = '\0';
    weft_deferred *s = kv_client_set(w.c, long_key, long_value);
    weft_deferred *g = kv_client_get(w.c, long_key);
    settle_all(&w);
    expect_done(s);
    expect_got(g, long_value);
    assert_int_equal(kv_server_requests(w.server), 2);
    world_close(&w);
}

static void test_cancelled_request_keeps_replies_matched(void **state)
{
    (void)state;
    unsigned long mark = weft_watch_unhandled();
    world w;
    world_open(&w, 4, &plain, NULL);
    weft_deferred *s = kv_client_set(w.c, "a", "1");
    weft_deferred *s2 = kv_client_set(w.c, "b", "2");
    weft_deferred *ga = kv_client_get(w.c, "a");
    weft_deferred *gb = kv_client_get(w.c, "b");
    assert_int_equal(weft_deferred_cancel(ga), WEFT_OK);
    weft_failure *f = weft_assert_failed(ga, WEFT_FAILURE_CANCELLED);
    weft_failure_free(f);
    weft_deferred_unref(ga);
    settle_all(&w);
    expect_done(s);
    expect_done(s2);
    /* The cancelled GET's reply was read and dropped: b gets b's value. */
    expect_got(gb, "2");
    world_close(&w);
    weft_assert_no_unhandled(mark);
}

static void test_pending_limit(void **state)
{
    (void)state;
    world w;
    world_open(&w, 5, &plain, NULL);
    weft_deferred **ds = calloc(KV_PENDING_MAX, sizeof *ds);
    assert_non_null(ds);
    for (size_t i = 0; i < KV_PENDING_MAX; i++) {
        ds[i] = kv_client_get(w.c, "nothing");
        weft_assert_no_result(ds[i]);
    }
    expect_failed(kv_client_get(w.c, "one-too-many"), KV_FAILURE_BUSY, NULL);
    settle_all(&w);
    for (size_t i = 0; i < KV_PENDING_MAX; i++)
        expect_failed(ds[i], KV_FAILURE_NOT_FOUND, "nothing");
    free(ds);
    /* Room again. */
    weft_deferred *s = kv_client_set(w.c, "x", "y");
    settle_all(&w);
    expect_done(s);
    world_close(&w);
}

static void test_quit_closes_and_later_requests_fail(void **state)
{
    (void)state;
    world w;
    world_open(&w, 6, &plain, NULL);
    weft_deferred *s = kv_client_set(w.c, "k", "v");
    assert_int_equal(kv_client_quit(w.c), WEFT_OK);
    assert_int_equal(kv_client_quit(w.c), WEFT_ECLOSED);
    /* Closing: refused at once, nothing sent. */
    expect_failed(kv_client_get(w.c, "k"), WEFT_REASON_DONE, NULL);
    settle_all(&w);
    expect_done(s);
    assert_string_equal(kv_server_lookup(w.server, "k"), "v");
    /* The connection is gone; the protocol was destroyed: w.c is dangling. */
    assert_int_equal(weft_sim_open_connections(w.sim), 0);
    world_close(&w);
}

/* ---------------------------------------------------------- Faults */

static void test_crash_mid_request_fails_pending_with_the_reason(void **state)
{
    (void)state;
    unsigned long mark = weft_watch_unhandled();
    world w;
    kv_server_options slow = {50 * MS, false};
    world_open(&w, 7, &plain, &slow);
    weft_deferred *s = kv_client_set(w.c, "k", "v");
    weft_deferred *g = kv_client_get(w.c, "k");
    weft_deferred *g2 = kv_client_get(w.c, "k");
    /* Run until the SET was answered (about 50ms), then the host dies
     * while the GETs are being worked on. */
    assert_int_equal(weft_reactor_run_until(w.r, fired, s, weft_now(w.r) + WEFT_NS_PER_S), WEFT_OK);
    expect_done(s);
    weft_assert_no_result(g);
    assert_int_equal(weft_sim_crash(w.sim, "db"), WEFT_OK);
    settle_all(&w);
    expect_failed(g, WEFT_REASON_LOST, NULL);
    expect_failed(g2, WEFT_REASON_LOST, NULL);
    world_close(&w);
    weft_assert_no_unhandled(mark);
}

/* A request made from the errback of a request the loss failed: refused at
 * once with the same reason (the client is still alive inside its
 * connection_lost). */
typedef struct after_loss {
    kv_client *c;
    weft_deferred *late;
} after_loss;

static weft_result request_again(weft_result in, void *ctx)
{
    after_loss *al = ctx;
    al->late = kv_client_get(al->c, "k");
    return in; /* pass the Failure on */
}

static void test_reset_then_request_fails_with_the_reason(void **state)
{
    (void)state;
    unsigned long mark = weft_watch_unhandled();
    world w;
    world_open(&w, 8, &plain, NULL);
    after_loss al = {w.c, NULL};
    weft_deferred *g = kv_client_get(w.c, "k");
    assert_int_equal(weft_deferred_add_errback(g, request_again, &al), WEFT_OK);
    assert_int_equal(weft_sim_reset(w.sim, "db", "web"), WEFT_OK);
    settle_all(&w);
    expect_failed(g, WEFT_REASON_LOST, NULL);
    assert_non_null(al.late);
    expect_failed(al.late, WEFT_REASON_LOST, NULL);
    world_close(&w);
    weft_assert_no_unhandled(mark);
}

/* ------------------------------------------------------- Chunking, seeds */

/* One conversation; returns the trace hash. Every outcome is checked. */
static uint64_t conversation(uint64_t seed, const net_shape *shape, const kv_server_options *opt)
{
    world w;
    world_open(&w, seed, shape, opt);
    char big[KV_VALUE_MAX + 1];
    for (size_t i = 0; i < KV_VALUE_MAX; i++)
        big[i] = (char)('a' + (i * 7 + seed) % 26);
    big[KV_VALUE_MAX] = '\0';
    weft_deferred *s1 = kv_client_set(w.c, "a", "1");
    weft_deferred *s2 = kv_client_set(w.c, "big", big);
    weft_deferred *g1 = kv_client_get(w.c, "a");
    weft_deferred *g2 = kv_client_get(w.c, "big");
    weft_deferred *d1 = kv_client_del(w.c, "a");
    weft_deferred *g3 = kv_client_get(w.c, "a");
    weft_deferred *s3 = kv_client_set(w.c, "a", "2");
    weft_deferred *g4 = kv_client_get(w.c, "a");
    settle_all(&w);
    expect_done(s1);
    expect_done(s2);
    expect_got(g1, "1");
    expect_got(g2, big);
    expect_done(d1);
    expect_failed(g3, KV_FAILURE_NOT_FOUND, "a");
    expect_done(s3);
    expect_got(g4, "2");
    uint64_t hash = weft_sim_trace_hash(w.sim);
    world_close(&w);
    return hash;
}

static void test_chunking_down_to_one_byte(void **state)
{
    (void)state;
    static const size_t chunks[] = {1, 2, 3, 7, 64, 0};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        for (uint64_t seed = 1; seed <= 20; seed++) {
            net_shape shape = {chunks[i], true, 3 * MS, 0};
            conversation(seed, &shape, NULL);
        }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 300 seeds with one-byte chunks, coalescing, jitter and a slow server:
 * every seed passes, the same seed gives the same trace, and the seeds
 * really make different runs. */
static void test_seed_sweep(void **state)
{
    (void)state;
    enum { SEEDS = 300 };
    uint64_t hashes[SEEDS];
    net_shape shape = {1, true, 3 * MS, 1 * MS};
    kv_server_options opt = {2 * MS, false};
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        hashes[seed - 1] = conversation(seed, &shape, &opt);
        if (seed % 50 == 0)
            assert_int_equal(conversation(seed, &shape, &opt), hashes[seed - 1]);
    }
    qsort(hashes, SEEDS, sizeof hashes[0], cmp_u64);
    size_t distinct = 1;
    for (size_t i = 1; i < SEEDS; i++)
        distinct += hashes[i] != hashes[i - 1];
    assert_true(distinct > SEEDS * 9 / 10);
}

/* The planted bug (kv-server unordered=1): a SET and, 1ms later, a GET of
 * the same key. Some seed breaks read-your-write; the sweep must find it,
 * and that seed must break it again. */
static bool read_your_write(uint64_t seed, bool unordered)
{
    world w;
    net_shape shape = {0, false, 3 * MS, 0};
    kv_server_options opt = {2 * MS, unordered};
    world_open(&w, seed, &shape, &opt);
    weft_deferred *s = kv_client_set(w.c, "user:1", "alice");
    assert_int_equal(weft_sim_advance(w.sim, 1 * MS), WEFT_OK);
    weft_deferred *g = kv_client_get(w.c, "user:1");
    settle_all(&w);
    weft_result rs, rg;
    bool ok = weft_deferred_peek(s, &rs) == WEFT_DEFERRED_SUCCEEDED &&
              weft_deferred_peek(g, &rg) == WEFT_DEFERRED_SUCCEEDED && rg.value != NULL &&
              strcmp(rg.value, "alice") == 0;
    /* Take whatever they hold, so nothing is reported unhandled. */
    weft_deferred_take_result(s, &rs);
    weft_deferred_take_result(g, &rg);
    if (rs.kind == WEFT_RESULT_FAILURE)
        weft_failure_free(rs.failure);
    if (rg.kind == WEFT_RESULT_FAILURE)
        weft_failure_free(rg.failure);
    else
        weft_free(rg.value);
    weft_deferred_unref(s);
    weft_deferred_unref(g);
    world_close(&w);
    return ok;
}

static void test_sweep_finds_the_planted_bug(void **state)
{
    (void)state;
    uint64_t found = 0;
    for (uint64_t seed = 1; seed <= 300 && found == 0; seed++)
        if (!read_your_write(seed, true))
            found = seed;
    assert_true(found != 0);
    assert_false(read_your_write(found, true));
    /* The fixed server passes that seed and the whole sweep. */
    for (uint64_t seed = 1; seed <= 300; seed++)
        assert_true(read_your_write(seed, false));
}

/* ------------------------------------------------------------ The server */

static void test_server_errors_and_recovery(void **state)
{
    (void)state;
    world w;
    net_shape shape = {1, true, 2 * MS, 0};
    world_open_ex(&w, 9, &shape, NULL, true);
    raw_box b;
    raw_connect(&w, &b);
    raw_send(&b, "FLY\r\nGET\r\nGET a b\r\nSET k\r\nSET  v\r\n\r\nDEL\r\nget k\r\nSET k v\x01\r\n"
                 "SET k v\nGET k\r\nQUIT now\r\n");
    settle_all(&w);
    assert_string_equal(b.data, "ERR unknown command\r\n"
                                "ERR usage: GET KEY\r\n"
                                "ERR usage: GET KEY\r\n"
                                "ERR usage: SET KEY VALUE\r\n"
                                "ERR usage: SET KEY VALUE\r\n"
                                "ERR empty line\r\n"
                                "ERR usage: DEL KEY\r\n"
                                "ERR unknown command\r\n"
                                "ERR bad value\r\n"
                                "OK\r\n"
                                "VALUE v\r\n"
                                "ERR unknown command\r\n");
    assert_false(b.lost);
    b.len = 0;
    raw_send(&b, "SET empty \r\nGET empty\r\nQUIT\r\nGET k\r\n");
    settle_all(&w);
    assert_string_equal(b.data, "OK\r\nVALUE \r\nBYE\r\n");
    assert_true(b.lost);
    assert_string_equal(b.reason, WEFT_REASON_DONE);
    world_close(&w);
}

static void test_server_line_too_long_closes(void **state)
{
    (void)state;
    world w;
    net_shape shape = {512, true, 2 * MS, 0};
    world_open_ex(&w, 10, &shape, NULL, true);
    raw_box b;
    raw_connect(&w, &b);
    char line[KV_LINE_MAX + 16];
    memcpy(line, "SET k ", 6);
    memset(line + 6, 'x', sizeof line - 6 - 1);
    line[sizeof line - 1] = '\0';
    raw_send(&b, "SET a 1\r\n");
    raw_send(&b, line);
    settle_all(&w);
    assert_string_equal(b.data, "OK\r\nERR line too long\r\n");
    assert_true(b.lost);
    assert_string_equal(kv_server_lookup(w.server, "a"), "1");
    assert_null(kv_server_lookup(w.server, "k"));
    world_close(&w);
}

static void test_server_delay_keeps_order_and_crash_writes_nothing(void **state)
{
    (void)state;
    world w;
    kv_server_options slow = {10 * MS, false};
    world_open_ex(&w, 11, &plain, &slow, true);
    raw_box b;
    raw_connect(&w, &b);
    raw_send(&b, "SET a 1\r\nGET a\r\nDEL a\r\nGET a\r\n");
    /* After 25ms of server time two requests are answered at most. */
    assert_int_equal(weft_sim_advance(w.sim, 25 * MS), WEFT_OK);
    assert_true(kv_server_requests(w.server) <= 2);
    settle_all(&w);
    assert_string_equal(b.data, "OK\r\nVALUE 1\r\nOK\r\nNOTFOUND\r\n");
    /* Requests waiting when the connection dies are dropped, their timers
     * cancelled: nothing is written after the close. */
    raw_send(&b, "SET b 2\r\nSET c 3\r\n");
    assert_int_equal(weft_sim_advance(w.sim, 6 * MS), WEFT_OK);
    uint64_t before = kv_server_requests(w.server);
    assert_int_equal(weft_sim_abort(w.sim, "web", "db"), WEFT_OK);
    settle_all(&w);
    assert_int_equal(kv_server_requests(w.server), before);
    assert_int_equal(weft_sim_pending(w.sim), 0);
    world_close(&w);
}

static void test_server_store_full(void **state)
{
    (void)state;
    world w;
    world_open(&w, 12, &plain, NULL);
    char key[16];
    for (unsigned i = 0; i < KV_KEYS_MAX; i += 512) {
        weft_deferred *ds[512];
        for (unsigned j = 0; j < 512; j++) {
            snprintf(key, sizeof key, "k%05u", i + j);
            ds[j] = kv_client_set(w.c, key, "v");
        }
        settle_all(&w);
        for (unsigned j = 0; j < 512; j++)
            expect_done(ds[j]);
    }
    assert_int_equal(kv_server_keys(w.server), KV_KEYS_MAX);
    weft_deferred *full = kv_client_set(w.c, "one-more", "v");
    weft_deferred *over = kv_client_set(w.c, "k00007", "overwritten"); /* existing key: fine */
    weft_deferred *d = kv_client_del(w.c, "k00000");
    weft_deferred *now = kv_client_set(w.c, "one-more", "v");
    settle_all(&w);
    expect_failed(full, KV_FAILURE_ERROR, "store full");
    expect_done(over);
    expect_done(d);
    expect_done(now);
    assert_string_equal(kv_server_lookup(w.server, "k00007"), "overwritten");
    /* Keys stay sorted: every lookup by bisection finds its key. */
    for (unsigned i = 1; i < KV_KEYS_MAX; i++) {
        snprintf(key, sizeof key, "k%05u", i);
        assert_non_null(kv_server_lookup(w.server, key));
    }
    world_close(&w);
}

/* A raw server answers the client: replies that do not fit and replies
 * nobody asked for drop the connection. */
static void test_client_bad_replies(void **state)
{
    (void)state;
    unsigned long mark = weft_watch_unhandled();
    static const struct {
        const char *reply;
        const char *type;
    } cases[] = {
        {"OK\r\n", KV_FAILURE_BAD_REPLY},          /* OK to a GET */
        {"VALUE\r\n", KV_FAILURE_BAD_REPLY},       /* no space, no value */
        {"VALUES x\r\n", KV_FAILURE_BAD_REPLY},
        {"ERR\r\n", KV_FAILURE_ERROR},             /* bare ERR: still an error */
        {"ERR nope\n", KV_FAILURE_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        weft_sim *sim = weft_sim_new(NULL, weft_choice_seeded(i + 1));
        assert_non_null(sim);
        weft_reactor *r = weft_sim_reactor(sim);
        raw_box srv;
        raw_init(&srv);
        assert_int_equal(weft_listen(r, "tcp:7000", &srv.factory, NULL), WEFT_OK);
        weft_factory *cf = kv_client_factory_new();
        weft_deferred *cd = NULL;
        assert_int_equal(weft_connect(r, "tcp:localhost:7000", cf, &cd), WEFT_OK);
        assert_int_equal(weft_sim_run_until_quiet(sim), WEFT_OK);
        kv_client *c = kv_client_from_protocol(weft_assert_succeeded(cd));
        weft_deferred_unref(cd);
        weft_deferred *g = kv_client_get(c, "k");
        weft_deferred *g2 = kv_client_get(c, "k2");
        assert_int_equal(weft_sim_run_until_quiet(sim), WEFT_OK);
        assert_string_equal(srv.data, "GET k\r\nGET k2\r\n");
        raw_send(&srv, cases[i].reply);
        assert_int_equal(weft_sim_run_until_quiet(sim), WEFT_OK);
        expect_failed(g, cases[i].type, NULL);
        if (strcmp(cases[i].type, KV_FAILURE_BAD_REPLY) == 0) {
            /* The stream is out of step: the client closed, g2 fails. */
            expect_failed(g2, WEFT_REASON_DONE, NULL);
            assert_true(srv.lost);
        } else {
            weft_assert_no_result(g2);
            raw_send(&srv, "VALUE two\r\nVALUE unasked\r\n");
            assert_int_equal(weft_sim_run_until_quiet(sim), WEFT_OK);
            expect_got(g2, "two");
            assert_true(srv.lost); /* the unasked reply closed the connection */
        }
        weft_sim_free(sim);
        kv_client_factory_free(cf);
    }
    weft_assert_no_unhandled(mark);
}

static void test_server_args(void **state)
{
    (void)state;
    kv_server_options o;
    char err[128];
    assert_int_equal(kv_server_parse_args(NULL, &o, err, sizeof err), WEFT_OK);
    assert_int_equal(o.delay_ns, 0);
    assert_false(o.unordered);
    assert_int_equal(kv_server_parse_args("delay=25, unordered=1", &o, err, sizeof err), WEFT_OK);
    assert_int_equal(o.delay_ns, 25 * MS);
    assert_true(o.unordered);
    static const char *const bad[] = {"delay", "delay=", "delay=-1", "delay=1x", "unordered=2",
                                      "speed=3", "delay=99999999999", "=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.delay_ns = 77;
        err[0] = '\0';
        assert_int_equal(kv_server_parse_args(bad[i], &o, err, sizeof err), WEFT_EINVAL);
        assert_int_equal(o.delay_ns, 77);
        assert_non_null(strstr(err, "kv-server: bad argument"));
    }
    kv_server_options neg = {-1, false};
    assert_null(kv_server_factory_new(&neg));
    assert_null(kv_client_from_protocol(NULL));
}

/* Requests sent from the connect Deferred's callback, while the protocol is
 * certainly alive (the Deferred's value is borrowed: once the connection is
 * lost the protocol is gone). */
typedef struct oom_run {
    weft_deferred *s, *g;
} oom_run;

static weft_result oom_connected(weft_result in, void *ctx)
{
    oom_run *o = ctx;
    kv_client *c = kv_client_from_protocol(in.value);
    assert_non_null(c);
    o->s = kv_client_set(c, "k", "v");
    o->g = kv_client_get(c, "k");
    return weft_value(NULL);
}

static void drop_result(weft_deferred *d, bool value_is_ours)
{
    weft_result res;
    if (d != NULL && weft_deferred_take_result(d, &res) == WEFT_OK) {
        if (res.kind == WEFT_RESULT_FAILURE)
            weft_failure_free(res.failure);
        else if (value_is_ours)
            weft_free(res.value);
    }
}

/* Every allocation of a whole conversation fails in turn: each run ends
 * without a crash or a leak (the sanitizer build checks the leaks), and the
 * runs where nothing failed deliver the value. */
static void test_out_of_memory_anywhere(void **state)
{
    (void)state;
    int complete = 0;
    for (long n = 0; n < 400; n++) {
        weft_sim *sim = weft_sim_new(NULL, weft_choice_seeded(1));
        weft_factory *sf = kv_server_factory_new(NULL);
        weft_factory *cf = kv_client_factory_new();
        assert_non_null(sim);
        assert_non_null(sf);
        assert_non_null(cf);
        weft_reactor *r = weft_sim_reactor(sim);
        oom_run o = {NULL, NULL};
        weft_deferred *cd = NULL;
        weft_alloc_fail_after(n);
        if (weft_listen(r, "tcp:7000", sf, NULL) == WEFT_OK &&
            weft_connect(r, "tcp:localhost:7000", cf, &cd) == WEFT_OK &&
            weft_deferred_add_callback(cd, oom_connected, &o) == WEFT_OK)
            weft_sim_run_until_quiet(sim);
        long failed = weft_alloc_fail_after(-1);
        weft_result res;
        if (failed == 0) {
            /* Nothing failed: the whole conversation happened. */
            assert_non_null(o.g);
            assert_int_equal(weft_deferred_peek(o.g, &res), WEFT_DEFERRED_SUCCEEDED);
            assert_string_equal(res.value, "v");
            complete++;
        }
        drop_result(cd, false);
        drop_result(o.s, false);
        drop_result(o.g, true);
        weft_sim_free(sim);
        /* Those still pending were failed by the free. */
        drop_result(cd, false);
        drop_result(o.s, false);
        drop_result(o.g, true);
        weft_deferred_unref(cd);
        weft_deferred_unref(o.s);
        weft_deferred_unref(o.g);
        kv_client_factory_free(cf);
        kv_server_factory_free(sf);
    }
    assert_true(complete > 0);
    weft_unhandled_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_requests_each_get_their_reply),
        cmocka_unit_test(test_request_from_a_callback),
        cmocka_unit_test(test_bad_requests_fail_at_once_and_send_nothing),
        cmocka_unit_test(test_cancelled_request_keeps_replies_matched),
        cmocka_unit_test(test_pending_limit),
        cmocka_unit_test(test_quit_closes_and_later_requests_fail),
        cmocka_unit_test(test_crash_mid_request_fails_pending_with_the_reason),
        cmocka_unit_test(test_reset_then_request_fails_with_the_reason),
        cmocka_unit_test(test_chunking_down_to_one_byte),
        cmocka_unit_test(test_seed_sweep),
        cmocka_unit_test(test_sweep_finds_the_planted_bug),
        cmocka_unit_test(test_server_errors_and_recovery),
        cmocka_unit_test(test_server_line_too_long_closes),
        cmocka_unit_test(test_server_delay_keeps_order_and_crash_writes_nothing),
        cmocka_unit_test(test_server_store_full),
        cmocka_unit_test(test_client_bad_replies),
        cmocka_unit_test(test_server_args),
        cmocka_unit_test(test_out_of_memory_anywhere),
    };
    return cmocka_run_group_tests_name("example_kv", tests, NULL, NULL);
}
