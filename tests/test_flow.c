/* Flow control on the simulated network: push producers paused past the
 * high-water mark and resumed below the low-water mark, stopped when the
 * connection goes, the buffer limit, producer misuse, and chunking
 * invariance of a framing protocol over 1,000 seeds. */
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

/* An echo that tolerates refused writes (allocation failures). */
static void echo_back_ok(tproto *p, const uint8_t *d, size_t n)
{
    int rc = weft_transport_write(p->base.transport, d, n);
    assert_true(rc == WEFT_OK || rc == WEFT_ENOMEM || rc == WEFT_ECLOSED);
}

/* ---------------------------------------------------------- Producers */

#define BLOCK 8192u

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 31 + i / 256);
}

typedef struct prod {
    weft_transport *t;
    int pauses, resumes, stops;
    size_t buffered_at_pause, buffered_at_resume;
    bool paused;
    size_t sent, total;
    bool close_when_done;
} prod;

static void pump(prod *p)
{
    uint8_t block[BLOCK];
    while (!p->paused && p->sent < p->total) {
        size_t len = p->total - p->sent < BLOCK ? p->total - p->sent : BLOCK;
        for (size_t i = 0; i < len; i++)
            block[i] = pattern(p->sent + i);
        assert_int_equal(weft_transport_write(p->t, block, len), WEFT_OK);
        p->sent += len;
    }
    if (p->sent == p->total && p->close_when_done) {
        p->close_when_done = false;
        assert_int_equal(weft_transport_unregister_producer(p->t), WEFT_OK);
        assert_int_equal(weft_transport_lose_connection(p->t), WEFT_OK);
    }
}

static void prod_pause(void *ctx)
{
    prod *p = ctx;
    assert_false(p->paused);
    p->paused = true;
    p->pauses++;
    p->buffered_at_pause = weft_transport_buffered(p->t);
}

static void prod_resume(void *ctx)
{
    prod *p = ctx;
    assert_true(p->paused);
    p->paused = false;
    p->resumes++;
    p->buffered_at_resume = weft_transport_buffered(p->t);
    pump(p);
}

static void prod_stop(void *ctx)
{
    prod *p = ctx;
    p->stops++;
}

static weft_producer producer_of(prod *p)
{
    weft_producer wp = {prod_pause, prod_resume, prod_stop, p};
    return wp;
}

static void producer_paused_and_resumed(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    prod p = {.t = ct(w), .total = 1024 * 1024, .close_when_done = true};
    weft_producer wp = producer_of(&p);
    assert_int_equal(weft_transport_register_producer(ct(w), &wp), WEFT_OK);
    /* A slow reader: nothing is delivered, the buffer fills. */
    assert_int_equal(weft_transport_pause_reading(stp(w)), WEFT_OK);
    /* 8 blocks are exactly the high-water mark: not past it yet. */
    p.total = 8 * BLOCK;
    p.close_when_done = false;
    pump(&p);
    assert_int_equal(weft_transport_buffered(ct(w)), WEFT_TRANSPORT_HIGH_WATER);
    assert_int_equal(p.pauses, 0);
    p.total = 1024 * 1024;
    p.close_when_done = true;
    pump(&p);
    assert_int_equal(p.pauses, 1);
    assert_int_equal(p.sent, 9 * BLOCK);
    assert_true(p.buffered_at_pause > WEFT_TRANSPORT_HIGH_WATER);
    assert_int_equal(weft_sim_advance(w->sim, 1 * S), WEFT_OK);
    assert_int_equal(w->server->len, 0);
    assert_int_equal(p.resumes, 0);
    /* The reader catches up: the producer resumes below the low mark and
     * is paused again as often as the reader lags. */
    assert_int_equal(weft_transport_resume_reading(stp(w)), WEFT_OK);
    run(w);
    assert_int_equal(p.sent, p.total);
    assert_true(p.resumes >= 1);
    assert_true(p.buffered_at_resume < WEFT_TRANSPORT_LOW_WATER);
    assert_int_equal(w->server->len, p.total);
    for (size_t i = 0; i < p.total; i++)
        if (w->server->data[i] != pattern(i))
            fail_msg("byte %zu differs", i);
    assert_string_equal(w->server->reason, WEFT_REASON_DONE);
    assert_string_equal(w->client->reason, WEFT_REASON_DONE);
    assert_int_equal(p.stops, 0); /* unregistered before the close */
    world_free(w);
}

static void producer_paused_by_a_slow_network(void **state)
{
    (void)state;
    /* No pause_reading: only latency keeps the bytes in flight. */
    world *w = pair(100 * MS, false);
    prod p = {.t = ct(w), .total = 512 * 1024, .close_when_done = true};
    weft_producer wp = producer_of(&p);
    assert_int_equal(weft_transport_register_producer(ct(w), &wp), WEFT_OK);
    pump(&p);
    assert_int_equal(p.pauses, 1);
    run(w);
    assert_int_equal(w->server->len, p.total);
    assert_int_equal(p.pauses, p.resumes);
    world_free(w);
}

static void producer_stopped_when_connection_lost(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    prod p = {.t = ct(w), .total = 0};
    weft_producer wp = producer_of(&p);
    assert_int_equal(weft_transport_register_producer(ct(w), &wp), WEFT_OK);
    assert_int_equal(weft_transport_abort(stp(w)), WEFT_OK);
    run(w);
    assert_int_equal(p.stops, 1);
    assert_int_equal(p.pauses + p.resumes, 0);
    assert_string_equal(w->client->reason, WEFT_REASON_LOST);
    world_free(w);
}

static void producer_misuse(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    prod p = {.t = ct(w)}, q = {.t = ct(w)};
    weft_producer wp = producer_of(&p), wq = producer_of(&q);
    assert_int_equal(weft_transport_unregister_producer(ct(w)), WEFT_ESTATE);
    assert_int_equal(weft_transport_register_producer(ct(w), NULL), WEFT_EINVAL);
    assert_int_equal(weft_transport_register_producer(ct(w), &wp), WEFT_OK);
    assert_int_equal(weft_transport_register_producer(ct(w), &wq), WEFT_ESTATE);
    assert_int_equal(weft_transport_unregister_producer(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_unregister_producer(ct(w)), WEFT_ESTATE);
    /* Registered while the buffer is already past the mark: paused at once. */
    assert_int_equal(weft_transport_pause_reading(stp(w)), WEFT_OK);
    static uint8_t big[WEFT_TRANSPORT_HIGH_WATER + 1];
    assert_int_equal(weft_transport_write(ct(w), big, sizeof big), WEFT_OK);
    assert_int_equal(weft_transport_register_producer(ct(w), &wq), WEFT_OK);
    assert_int_equal(q.pauses, 1);
    assert_int_equal(weft_transport_unregister_producer(ct(w)), WEFT_OK);
    /* After lose_connection: refused. */
    assert_int_equal(weft_transport_lose_connection(ct(w)), WEFT_OK);
    assert_int_equal(weft_transport_register_producer(ct(w), &wp), WEFT_ECLOSED);
    assert_int_equal(weft_transport_resume_reading(stp(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->server->len, sizeof big);
    assert_int_equal(p.stops + q.stops, 0);
    world_free(w);
}

static void buffer_limit(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    assert_int_equal(weft_transport_pause_reading(stp(w)), WEFT_OK);
    size_t mib = 1024 * 1024;
    uint8_t *block = malloc(mib);
    assert_non_null(block);
    for (size_t i = 0; i < mib; i++)
        block[i] = pattern(i);
    /* One write over the limit is refused whole. */
    static const uint8_t one = 1;
    weft_iovec too_big[2] = {{block, mib}, {NULL, WEFT_TRANSPORT_BUFFER_MAX}};
    too_big[1].base = &one; /* never read: refused on the length */
    assert_int_equal(weft_transport_writev(ct(w), too_big, 2), WEFT_ENOBUFS);
    assert_int_equal(weft_transport_buffered(ct(w)), 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(weft_transport_write(ct(w), block, mib), WEFT_OK);
    assert_int_equal(weft_transport_buffered(ct(w)), WEFT_TRANSPORT_BUFFER_MAX);
    assert_int_equal(weft_transport_write(ct(w), &one, 1), WEFT_ENOBUFS);
    assert_int_equal(weft_transport_buffered(ct(w)), WEFT_TRANSPORT_BUFFER_MAX);
    assert_int_equal(weft_transport_resume_reading(stp(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->server->len, WEFT_TRANSPORT_BUFFER_MAX);
    assert_memory_equal(w->server->data + 15 * mib, block, mib);
    /* Drained: room again. */
    assert_int_equal(weft_transport_write(ct(w), &one, 1), WEFT_OK);
    free(block);
    world_free(w);
}

/* ---------------------------------------- Chunking invariance (framing) */

/* A 2-byte big-endian length-prefixed framing receiver, written for the
 * test: it must see the same messages however the bytes are split. */
typedef struct framer {
    uint8_t buf[512];
    size_t have;
    size_t msgs;
    uint32_t digest; /* over every message, in order, with its length */
} framer;

static void framer_feed(framer *f, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(f->have < sizeof f->buf);
        f->buf[f->have++] = d[i];
        if (f->have >= 2) {
            size_t len = (size_t)f->buf[0] << 8 | f->buf[1];
            if (f->have == 2 + len) {
                f->digest = f->digest * 16777619u ^ (uint32_t)len;
                for (size_t k = 0; k < len; k++)
                    f->digest = (f->digest ^ f->buf[2 + k]) * 16777619u;
                f->msgs++;
                f->have = 0;
            }
        }
    }
}

static framer *g_framer;

static void framing_data(tproto *p, const uint8_t *d, size_t n)
{
    (void)p;
    framer_feed(g_framer, d, n);
}

static void framing_invariance_over_seeds(void **state)
{
    (void)state;
    /* The messages and their expected digest, computed by feeding the whole
     * stream in one piece. */
    uint8_t stream[4096];
    size_t len = 0, count = 0;
    for (size_t m = 0; len + 2 + 60 < sizeof stream && count < 80; m++, count++) {
        size_t ml = (m * 13) % 61;
        stream[len++] = (uint8_t)(ml >> 8);
        stream[len++] = (uint8_t)ml;
        for (size_t k = 0; k < ml; k++)
            stream[len++] = (uint8_t)(m + k * 3);
    }
    framer whole = {0};
    framer_feed(&whole, stream, len);
    assert_int_equal(whole.msgs, count);
    size_t one_byte_runs = 0;
    for (uint64_t seed = 1; seed <= 1000; seed++) {
        weft_net_config n = latency_cfg(0, 2 * MS);
        n.max_chunk = seed % 10 == 0 ? 1 : 1 + seed % 23;
        n.coalesce = seed % 3 != 0;
        world *w = world_new(&n, weft_choice_seeded(seed), false);
        framer f = {0};
        g_framer = &f;
        w->server_data = framing_data;
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        run(w);
        /* Written as messages, several per write, some writes split. */
        size_t off = 0;
        for (int i = 0; off < len; i++) {
            size_t wl = 1 + (size_t)((i * 53 + (int)seed) % 97);
            if (wl > len - off)
                wl = len - off;
            assert_int_equal(weft_transport_write(ct(w), stream + off, wl), WEFT_OK);
            off += wl;
        }
        run(w);
        assert_int_equal(f.msgs, whole.msgs);
        assert_int_equal(f.digest, whole.digest);
        assert_int_equal(f.have, 0);
        assert_true(w->server->max_chunk <= n.max_chunk);
        if (n.max_chunk == 1) {
            assert_int_equal(w->server->chunks, len);
            one_byte_runs++;
        }
        world_free(w);
    }
    assert_true(one_byte_runs >= 100);
}

/* ---------------------------------------------- Limits and allocation */

static void many_small_writes_stay_bounded(void **state)
{
    (void)state;
    world *w = pair(1 * MS, false);
    assert_int_equal(weft_transport_pause_reading(stp(w)), WEFT_OK);
    /* More writes than a pipe queues as separate records: the extra ones
     * join the last; every byte still arrives, in order. */
    enum { WRITES = 6000 };
    for (size_t i = 0; i < WRITES; i++) {
        uint8_t b = pattern(i);
        assert_int_equal(weft_transport_write(ct(w), &b, 1), WEFT_OK);
    }
    assert_int_equal(weft_transport_buffered(ct(w)), WRITES);
    assert_int_equal(weft_transport_resume_reading(stp(w)), WEFT_OK);
    run(w);
    assert_int_equal(w->server->len, WRITES);
    for (size_t i = 0; i < WRITES; i++)
        if (w->server->data[i] != pattern(i))
            fail_msg("byte %zu differs", i);
    /* Whole writes: one delivery per queued record, so fewer than writes. */
    assert_true(w->server->chunks < WRITES);
    assert_true(w->server->chunks >= 4096);
    world_free(w);
}

/* A whole exchange with the N-th allocation failing, for every N up to the
 * exchange's count: each call either works or reports an error, nothing
 * crashes, nothing leaks (under ASan), and the run still ends. */
static void allocation_failures(void **state)
{
    (void)state;
    long failed_runs = 0, last_failed = -1;
    for (long nth = 0; nth < 100; nth++) {
        weft_net_config n = latency_cfg(1 * MS, 3 * MS);
        n.max_chunk = 3;
        n.coalesce = true;
        world *w = world_new(&n, weft_choice_seeded((uint64_t)nth + 1), false);
        w->server_data = echo_back_ok;
        weft_alloc_fail_after(nth);
        weft_listener *l = NULL;
        assert_int_equal(weft_sim_set_current_host(w->sim, "server"), WEFT_OK);
        int lrc = weft_listen(w->r, "tcp:2000", &w->server_f, &l);
        assert_true(lrc == WEFT_OK || lrc == WEFT_ENOMEM);
        assert_int_equal(weft_sim_set_current_host(w->sim, "client"), WEFT_OK);
        weft_connector *c = NULL;
        int crc = weft_connect_factory(w->r, "tcp:server:2000", &w->client_f, &c);
        assert_true(crc == WEFT_OK || crc == WEFT_ENOMEM);
        weft_sim_run_until(w->sim, weft_now(w->r) + 1 * S);
        if (w->client && w->client->made && !w->client->lost) {
            int wrc = weft_transport_write(ct(w), "hello, world", 12);
            assert_true(wrc == WEFT_OK || wrc == WEFT_ENOMEM);
            weft_sim_run_until(w->sim, weft_now(w->r) + 1 * S);
            if (!w->client->lost)
                weft_transport_lose_connection(ct(w));
        }
        if (weft_alloc_fail_after(-1) > 0) {
            failed_runs++;
            last_failed = nth;
        }
        /* Whatever failed, the network still works afterwards. */
        weft_sim_run_until(w->sim, weft_now(w->r) + 60 * S);
        world_free(w);
    }
    /* Every allocation of the exchange was made to fail once, and the last
     * runs went through without a failure. */
    assert_true(failed_runs >= 10);
    assert_true(last_failed < 90);
}

/* The same with more of the network in play: queued writes, a producer,
 * split deliveries, partitions, stalls and a crash. */
static void allocation_failures_everywhere(void **state)
{
    (void)state;
    long failed_runs = 0, last_failed = -1;
    static uint8_t big[3000];
    for (long nth = 0; nth < 200; nth++) {
        weft_net_config n = latency_cfg(1 * MS, 2 * MS);
        n.max_chunk = 700;
        n.coalesce = true;
        world *w = world_new(&n, weft_choice_seeded((uint64_t)nth + 7), false);
        assert_int_equal(weft_sim_add_host(w->sim, "third"), WEFT_OK);
        w->server_data = echo_back_ok;
        listen_on(w, "server", "tcp:2000");
        connect_from(w, "client", "tcp:server:2000");
        connect_from(w, "third", "tcp:server:2000");
        run(w);
        assert_int_equal(w->nprotos, 4);
        weft_alloc_fail_after(nth);
        prod p = {.t = ct(w)};
        weft_producer wp = producer_of(&p);
        int rc = weft_transport_register_producer(ct(w), &wp);
        assert_true(rc == WEFT_OK || rc == WEFT_ENOMEM);
        rc = weft_transport_pause_reading(stp(w));
        assert_true(rc == WEFT_OK || rc == WEFT_ECLOSED);
        for (int i = 0; i < 8; i++) {
            rc = weft_transport_write(ct(w), big, 100 + (size_t)i * 300);
            assert_true(rc == WEFT_OK || rc == WEFT_ENOMEM);
        }
        rc = weft_sim_partition(w->sim, "client", "server");
        assert_true(rc == WEFT_OK || rc == WEFT_ENOMEM);
        rc = weft_sim_stall(w->sim, "third", "server");
        assert_true(rc == WEFT_OK || rc == WEFT_ENOMEM);
        weft_sim_run_until(w->sim, weft_now(w->r) + 10 * MS);
        weft_sim_heal(w->sim, "client", "server");
        weft_sim_release(w->sim, "third", "server");
        weft_transport_resume_reading(stp(w));
        weft_sim_run_until(w->sim, weft_now(w->r) + 1 * S);
        rc = weft_sim_crash(w->sim, "third");
        assert_true(rc == WEFT_OK);
        weft_sim_run_until(w->sim, weft_now(w->r) + 1 * S);
        if (weft_alloc_fail_after(-1) > 0) {
            failed_runs++;
            last_failed = nth;
        }
        weft_sim_run_until(w->sim, weft_now(w->r) + 60 * S);
        world_free(w);
    }
    assert_true(failed_runs >= 20);
    assert_true(last_failed < 190);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(producer_paused_and_resumed),
        cmocka_unit_test(producer_paused_by_a_slow_network),
        cmocka_unit_test(producer_stopped_when_connection_lost),
        cmocka_unit_test(producer_misuse),
        cmocka_unit_test(buffer_limit),
        cmocka_unit_test(framing_invariance_over_seeds),
        cmocka_unit_test(many_small_writes_stay_bounded),
        cmocka_unit_test(allocation_failures),
        cmocka_unit_test(allocation_failures_everywhere),
    };
    return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
