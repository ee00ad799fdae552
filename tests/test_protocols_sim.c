/* The example protocols end to end on the simulator, over many seeds, with
 * latency and chunking (max_chunk 1..8, coalescing) on: hello, echo, chat,
 * heartbeat/pong and the SMTP client against the SMTP server (delivered,
 * rejected, silent server, refused, crash, many connections at once), and
 * the same seed giving the same trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/protocols.h"
#include "weft/sim.h"

#define MS WEFT_NS_PER_MS
#define S WEFT_NS_PER_S

static weft_sim *mksim(uint64_t seed)
{
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    cfg.net.latency_min_ns = 1 * MS;
    cfg.net.latency_max_ns = 20 * MS;
    cfg.net.max_chunk = 1 + (size_t)(seed % 8);
    cfg.net.coalesce = true;
    cfg.net.connect_timeout_ns = 5 * S;
    cfg.max_events = 5000000;
    cfg.max_time_ns = 3600 * S;
    weft_sim *s = weft_sim_new(&cfg, weft_choice_seeded(seed));
    assert_non_null(s);
    assert_int_equal(weft_sim_add_host(s, "server"), WEFT_OK);
    assert_int_equal(weft_sim_add_host(s, "client"), WEFT_OK);
    return s;
}

static void listen_at(weft_sim *s, const char *host, const char *desc, weft_factory *f)
{
    assert_int_equal(weft_sim_set_current_host(s, host), WEFT_OK);
    assert_int_equal(weft_listen(weft_sim_reactor(s), desc, f, NULL), WEFT_OK);
}

/* ------------------------------------------------ A raw recording client */

typedef struct raw {
    weft_protocol base;
    struct rawf *f;
    uint8_t data[8192];
    size_t len;
    size_t chunks, max_chunk;
    char reason[48];
    int made, lost;
} raw;

typedef struct rawf {
    weft_factory base;
    const uint8_t *script; /* written on connect, in pieces of piece bytes */
    size_t script_len, piece;
    size_t close_after; /* lose_connection once this many bytes arrived */
    raw *last;
    int built;
} rawf;

static void raw_made(weft_protocol *p)
{
    raw *r = (raw *)p;
    r->made++;
    rawf *f = r->f;
    for (size_t off = 0; off < f->script_len; off += f->piece) {
        size_t n = f->script_len - off < f->piece ? f->script_len - off : f->piece;
        assert_int_equal(weft_transport_write(p->transport, f->script + off, n), WEFT_OK);
    }
}

static void raw_data(weft_protocol *p, const uint8_t *d, size_t n)
{
    raw *r = (raw *)p;
    assert_true(r->len + n <= sizeof r->data);
    memcpy(r->data + r->len, d, n);
    r->len += n;
    r->chunks++;
    if (n > r->max_chunk)
        r->max_chunk = n;
    if (r->f->close_after && r->len == r->f->close_after)
        weft_transport_lose_connection(p->transport);
}

static void raw_lost(weft_protocol *p, const weft_failure *reason)
{
    raw *r = (raw *)p;
    r->lost++;
    snprintf(r->reason, sizeof r->reason, "%s", reason->type);
}

static void raw_destroy(weft_protocol *p)
{
    (void)p; /* owned by the test */
}

static const weft_protocol_ops raw_ops = {
    .connection_made = raw_made,
    .data_received = raw_data,
    .connection_lost = raw_lost,
    .destroy = raw_destroy,
};

static weft_protocol *raw_build(weft_factory *fb, const weft_address *peer)
{
    rawf *f = (rawf *)fb;
    raw *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->base.ops = &raw_ops;
    r->f = f;
    f->last = r;
    f->built++;
    return &r->base;
}

static void raw_connect(weft_sim *s, rawf *f, const char *desc)
{
    f->base.build_protocol = raw_build;
    assert_int_equal(weft_sim_set_current_host(s, "client"), WEFT_OK);
    weft_connector *c = NULL;
    assert_int_equal(weft_connect_factory(weft_sim_reactor(s), desc, &f->base, &c), WEFT_OK);
}

/* ---------------------------------------------------------------- hello */

static void hello_over_seeds(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 300; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *hf = weft_proto_hello_factory(NULL);
        listen_at(s, "server", "tcp:2000", hf);
        rawf cf = {0};
        raw_connect(s, &cf, "tcp:server:2000");
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        raw *r = cf.last;
        assert_non_null(r);
        assert_int_equal(r->len, 13);
        assert_memory_equal(r->data, "Hello Twisted", 13);
        assert_true(r->max_chunk <= 1 + seed % 8);
        assert_int_equal(r->lost, 1);
        assert_string_equal(r->reason, WEFT_REASON_DONE);
        const weft_proto_stats *st = weft_proto_factory_stats(hf);
        assert_int_equal(st->connections, 1);
        assert_int_equal(st->clean_closes, 1);
        weft_sim_free(s);
        weft_proto_factory_free(hf);
        free(r);
    }
}

/* ----------------------------------------------------------------- echo */

static void echo_over_seeds(void **state)
{
    (void)state;
    uint8_t script[3000];
    for (uint64_t seed = 0; seed < 300; seed++) {
        weft_choice *gen = weft_choice_seeded(seed ^ 0xabcdef);
        size_t len = 1 + weft_choose(gen, sizeof script, "len");
        for (size_t i = 0; i < len; i++)
            script[i] = (uint8_t)weft_choose(gen, 256, "byte");
        size_t piece = 1 + weft_choose(gen, 200, "piece");
        weft_choice_free(gen);
        weft_sim *s = mksim(seed);
        weft_factory *ef = weft_proto_echo_factory(NULL);
        listen_at(s, "server", "tcp:7", ef);
        rawf cf = {0};
        cf.script = script;
        cf.script_len = len;
        cf.piece = piece;
        cf.close_after = len;
        raw_connect(s, &cf, "tcp:server:7");
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        raw *r = cf.last;
        assert_int_equal(r->len, len);
        assert_memory_equal(r->data, script, len);
        assert_string_equal(r->reason, WEFT_REASON_DONE);
        const weft_proto_stats *st = weft_proto_factory_stats(ef);
        assert_int_equal(st->bytes_in, len);
        assert_int_equal(st->bytes_out, len);
        assert_int_equal(st->clean_closes, 1);
        weft_sim_free(s);
        weft_proto_factory_free(ef);
        free(r);
    }
}

/* ----------------------------------------------------------------- chat */

static void chat_over_seeds(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 200; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *chat = weft_proto_chat_factory(NULL);
        listen_at(s, "server", "tcp:6667", chat);
        rawf fa = {0}, fb = {0};
        raw_connect(s, &fa, "tcp:server:6667");
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        raw_connect(s, &fb, "tcp:server:6667");
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        raw *a = fa.last, *b = fb.last;
        assert_int_equal(weft_transport_write(a->base.transport, "hello th", 8), WEFT_OK);
        assert_int_equal(weft_transport_write(a->base.transport, "ere\r\nQU", 7), WEFT_OK);
        assert_int_equal(weft_transport_write(a->base.transport, "IT\r\n", 4), WEFT_OK);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        const char *ea = "WELCOME 1\r\nBYE\r\n";
        const char *eb = "WELCOME 2\r\n1: hello there\r\n";
        assert_int_equal(a->len, strlen(ea));
        assert_memory_equal(a->data, ea, strlen(ea));
        assert_int_equal(b->len, strlen(eb));
        assert_memory_equal(b->data, eb, strlen(eb));
        assert_string_equal(a->reason, WEFT_REASON_DONE);
        assert_int_equal(b->lost, 0);
        weft_transport_lose_connection(b->base.transport);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        assert_int_equal(weft_proto_factory_stats(chat)->closed, 2);
        weft_sim_free(s);
        weft_proto_factory_free(chat);
        free(a);
        free(b);
    }
}

/* ------------------------------------------------------ heartbeat, pong */

static void heartbeat_over_seeds(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 200; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *pong = weft_proto_pong_factory(NULL);
        weft_factory *hb = weft_proto_heartbeat_factory("interval=1000,count=5");
        listen_at(s, "server", "tcp:9", pong);
        assert_int_equal(weft_sim_set_current_host(s, "client"), WEFT_OK);
        assert_int_equal(weft_connect_factory(weft_sim_reactor(s), "tcp:server:9", hb, NULL),
                         WEFT_OK);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        const weft_proto_stats *h = weft_proto_factory_stats(hb);
        assert_int_equal(h->lines_out, 5);
        assert_int_equal(h->messages, 5); /* PONGs */
        assert_int_equal(h->clean_closes, 1);
        assert_int_equal(weft_proto_factory_stats(pong)->messages, 5);
        /* Five pings a second apart, closed at the sixth tick. */
        assert_true(weft_now(weft_sim_reactor(s)) >= 6 * S);
        assert_true(weft_now(weft_sim_reactor(s)) < 6 * S + 100 * MS);
        weft_sim_free(s);
        weft_proto_factory_free(hb);
        weft_proto_factory_free(pong);
    }
}

/* ----------------------------------------------------------------- SMTP */

typedef struct mail_job {
    const char *from, *to, *body;
    int succeeded, failed;
    char type[48], message[128];
    weft_time_ns done_at;
    weft_reactor *r;
} mail_job;

static weft_result job_send(weft_result in, void *ctx)
{
    mail_job *j = ctx;
    weft_smtp_client *c = weft_smtp_client_from_protocol(in.value);
    assert_non_null(c);
    weft_deferred *d = weft_smtp_client_send(c, j->from, j->to, j->body);
    assert_non_null(d);
    return weft_chain(d);
}

static weft_result job_ok(weft_result in, void *ctx)
{
    mail_job *j = ctx;
    j->succeeded++;
    j->done_at = weft_now(j->r);
    return in;
}

static weft_result job_err(weft_result in, void *ctx)
{
    mail_job *j = ctx;
    j->failed++;
    j->done_at = weft_now(j->r);
    snprintf(j->type, sizeof j->type, "%s", in.failure->type);
    snprintf(j->message, sizeof j->message, "%s", in.failure->message);
    return weft_value(NULL);
}

/* Connect a smtp-client to desc and send j once connected; the Deferred of
 * the whole (connect, then send) is returned. */
static weft_deferred *start_job(weft_sim *s, weft_factory *cf, const char *desc, mail_job *j)
{
    weft_deferred *d = NULL;
    j->r = weft_sim_reactor(s);
    assert_int_equal(weft_sim_set_current_host(s, "client"), WEFT_OK);
    assert_int_equal(weft_connect(weft_sim_reactor(s), desc, cf, &d), WEFT_OK);
    assert_int_equal(weft_deferred_add_callback(d, job_send, j), WEFT_OK);
    assert_int_equal(weft_deferred_add_callbacks(d, job_ok, j, job_err, j), WEFT_OK);
    return d;
}

static void smtp_delivered_over_seeds(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 300; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *srv = weft_proto_smtp_server_factory("host=mail.test");
        weft_factory *cli = weft_proto_smtp_client_factory(NULL);
        listen_at(s, "server", "tcp:25", srv);
        mail_job j = {"alice@client", "bob@server", "Subject: hi\n\n.leading dot\nbye\n", 0, 0,
                      "", "", 0, NULL};
        weft_deferred *d = start_job(s, cli, "tcp:server:25", &j);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        if (j.succeeded != 1)
            fail_msg("seed %llu: %s %s", (unsigned long long)seed, j.type, j.message);
        const weft_smtp_message *m = weft_smtp_server_last(srv);
        assert_non_null(m);
        assert_string_equal(m->from, "alice@client");
        assert_string_equal(m->to, "bob@server");
        assert_string_equal(m->body, "Subject: hi\n\n.leading dot\nbye");
        /* The client said QUIT: both sides closed cleanly. */
        assert_int_equal(weft_proto_factory_stats(cli)->clean_closes, 1);
        assert_int_equal(weft_proto_factory_stats(srv)->clean_closes, 1);
        assert_int_equal(weft_sim_open_connections(s), 0);
        weft_deferred_unref(d);
        weft_sim_free(s);
        weft_proto_factory_free(cli);
        weft_proto_factory_free(srv);
    }
}

static void smtp_rejected_over_seeds(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 200; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *srv = weft_proto_smtp_server_factory("reject=nobody@server");
        weft_factory *cli = weft_proto_smtp_client_factory(NULL);
        listen_at(s, "server", "tcp:25", srv);
        mail_job j = {"alice@client", "nobody@server", "x", 0, 0, "", "", 0, NULL};
        weft_deferred *d = start_job(s, cli, "tcp:server:25", &j);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        assert_int_equal(j.succeeded, 0);
        assert_int_equal(j.failed, 1);
        assert_string_equal(j.type, WEFT_FAILURE_SMTP_REJECTED);
        assert_string_equal(j.message, "550 No such user here");
        assert_null(weft_smtp_server_last(srv));
        assert_int_equal(weft_sim_open_connections(s), 0);
        weft_deferred_unref(d);
        weft_sim_free(s);
        weft_proto_factory_free(cli);
        weft_proto_factory_free(srv);
    }
}

static void smtp_silent_server_times_out(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 100; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *srv = weft_proto_smtp_server_factory("silent=1");
        weft_factory *cli = weft_proto_smtp_client_factory("timeout=2000");
        listen_at(s, "server", "tcp:25", srv);
        mail_job j = {"a@client", "b@server", "x", 0, 0, "", "", 0, NULL};
        weft_deferred *d = start_job(s, cli, "tcp:server:25", &j);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        assert_int_equal(j.failed, 1);
        assert_string_equal(j.type, WEFT_FAILURE_TIMEOUT);
        assert_string_equal(j.message, "SMTP server silent for 2000 ms");
        /* 2 s after the connection was made (a connect takes up to two
         * one-way trips of at most 20 ms). */
        if (!(j.done_at >= 2 * S && j.done_at <= 2 * S + 40 * MS))
            fail_msg("seed %llu: done at %lld ns", (unsigned long long)seed, (long long)j.done_at);
        weft_deferred_unref(d);
        weft_sim_free(s);
        weft_proto_factory_free(cli);
        weft_proto_factory_free(srv);
    }
}

static void smtp_refused_and_crash(void **state)
{
    (void)state;
    for (uint64_t seed = 0; seed < 100; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *cli = weft_proto_smtp_client_factory(NULL);
        mail_job j = {"a@client", "b@server", "x", 0, 0, "", "", 0, NULL};
        weft_deferred *d = start_job(s, cli, "tcp:server:25", &j);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        assert_int_equal(j.failed, 1);
        assert_string_equal(j.type, WEFT_REASON_REFUSED);
        weft_deferred_unref(d);
        /* A server that crashes mid-conversation: the message fails with
         * the connection's loss. */
        weft_factory *srv = weft_proto_smtp_server_factory(NULL);
        listen_at(s, "server", "tcp:25", srv);
        mail_job k = {"a@client", "b@server", "x", 0, 0, "", "", 0, NULL};
        d = start_job(s, cli, "tcp:server:25", &k);
        /* The conversation takes a dozen one-way trips of at least 1 ms. */
        assert_int_equal(weft_sim_advance(s, 5 * MS), WEFT_OK);
        assert_int_equal(weft_sim_crash(s, "server"), WEFT_OK);
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        assert_int_equal(k.succeeded, 0);
        assert_int_equal(k.failed, 1);
        if (strcmp(k.type, WEFT_REASON_LOST) != 0 && strcmp(k.type, WEFT_REASON_REFUSED) != 0)
            fail_msg("seed %llu: %s", (unsigned long long)seed, k.type);
        weft_deferred_unref(d);
        weft_sim_free(s);
        weft_proto_factory_free(cli);
        weft_proto_factory_free(srv);
    }
}

static void smtp_many_connections_at_once(void **state)
{
    (void)state;
    enum { N = 100 };
    for (uint64_t seed = 0; seed < 20; seed++) {
        weft_sim *s = mksim(seed);
        weft_factory *srv = weft_proto_smtp_server_factory(NULL);
        weft_factory *cli = weft_proto_smtp_client_factory(NULL);
        listen_at(s, "server", "tcp:25", srv);
        static mail_job jobs[N];
        weft_deferred *ds[N];
        for (int i = 0; i < N; i++) {
            mail_job j = {"a@client", "b@server", "message", 0, 0, "", "", 0, NULL};
            jobs[i] = j;
            ds[i] = start_job(s, cli, "tcp:server:25", &jobs[i]);
        }
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        for (int i = 0; i < N; i++) {
            assert_int_equal(jobs[i].succeeded, 1);
            weft_deferred_unref(ds[i]);
        }
        assert_int_equal(weft_proto_factory_stats(srv)->messages, N);
        assert_int_equal(weft_proto_factory_stats(cli)->messages, N);
        assert_int_equal(weft_proto_factory_stats(cli)->clean_closes, N);
        assert_int_equal(weft_sim_open_connections(s), 0);
        weft_sim_free(s);
        weft_proto_factory_free(cli);
        weft_proto_factory_free(srv);
    }
}

static uint64_t smtp_trace_hash(uint64_t seed)
{
    weft_sim *s = mksim(seed);
    weft_factory *srv = weft_proto_smtp_server_factory(NULL);
    weft_factory *cli = weft_proto_smtp_client_factory(NULL);
    listen_at(s, "server", "tcp:25", srv);
    mail_job j = {"a@client", "b@server", "one\ntwo\n", 0, 0, "", "", 0, NULL};
    weft_deferred *d = start_job(s, cli, "tcp:server:25", &j);
    assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
    uint64_t h = weft_sim_trace_hash(s);
    weft_deferred_unref(d);
    weft_sim_free(s);
    weft_proto_factory_free(cli);
    weft_proto_factory_free(srv);
    return h;
}

static void same_seed_same_trace(void **state)
{
    (void)state;
    int differ = 0;
    uint64_t first = smtp_trace_hash(0);
    for (uint64_t seed = 0; seed < 50; seed++) {
        uint64_t h = smtp_trace_hash(seed);
        assert_true(h == smtp_trace_hash(seed));
        differ += h != first;
    }
    assert_true(differ > 0);
}

/* ------------------------- Framing through the network, 1,000 seeds */

typedef struct framed {
    union {
        weft_protocol base;
        weft_line_receiver lr;
        weft_int_receiver ir;
        weft_netstring_receiver nr;
    } u;
    int kind; /* 0 line, 1 int32, 2 netstring */
    uint8_t got[4096];
    size_t got_len;  /* messages joined with their lengths */
    size_t count;
} framed;

static void framed_add(framed *f, const uint8_t *d, size_t n)
{
    assert_true(f->got_len + n + 2 <= sizeof f->got);
    f->got[f->got_len++] = (uint8_t)(n >> 8);
    f->got[f->got_len++] = (uint8_t)n;
    memcpy(f->got + f->got_len, d, n);
    f->got_len += n;
    f->count++;
}

static void fr_line(weft_line_receiver *lr, const uint8_t *d, size_t n)
{
    framed_add((framed *)lr, d, n);
}

static void fr_int(weft_int_receiver *ir, const uint8_t *d, size_t n)
{
    framed_add((framed *)ir, d, n);
}

static void fr_ns(weft_netstring_receiver *nr, const uint8_t *d, size_t n)
{
    framed_add((framed *)nr, d, n);
}

static const weft_line_hooks fr_line_hooks = {fr_line, NULL, NULL};
static const weft_int_hooks fr_int_hooks = {fr_int, NULL};
static const weft_netstring_hooks fr_ns_hooks = {fr_ns};

static void fr_destroy(weft_protocol *p)
{
    framed *f = (framed *)p;
    if (f->kind == 0)
        weft_line_receiver_cleanup(&f->u.lr);
    else if (f->kind == 1)
        weft_int_receiver_cleanup(&f->u.ir);
    else
        weft_netstring_receiver_cleanup(&f->u.nr);
}

static void fr_made(weft_protocol *p)
{
    (void)p;
}

static void fr_lost(weft_protocol *p, const weft_failure *reason)
{
    (void)p;
    (void)reason;
}

static const weft_protocol_ops fr_ops[3] = {
    {fr_made, weft_line_receiver_data_received, fr_lost, NULL, NULL, fr_destroy},
    {fr_made, weft_int_receiver_data_received, fr_lost, NULL, NULL, fr_destroy},
    {fr_made, weft_netstring_receiver_data_received, fr_lost, NULL, NULL, fr_destroy},
};

typedef struct frf {
    weft_factory base;
    framed proto;
    int kind;
} frf;

static weft_protocol *fr_build(weft_factory *fb, const weft_address *peer)
{
    frf *f = (frf *)fb;
    framed *p = &f->proto;
    memset(p, 0, sizeof *p);
    p->kind = f->kind;
    p->u.base.ops = &fr_ops[f->kind];
    if (f->kind == 0)
        weft_line_receiver_init(&p->u.lr, &fr_line_hooks);
    else if (f->kind == 1)
        weft_int_receiver_init(&p->u.ir, 4, &fr_int_hooks);
    else
        weft_netstring_receiver_init(&p->u.nr, &fr_ns_hooks);
    return &p->u.base;
}

static void framing_through_network(void **state)
{
    (void)state;
    static uint8_t wire[4096];
    static uint8_t expect[4096];
    for (uint64_t seed = 0; seed < 1000; seed++) {
        int kind = (int)(seed % 3);
        weft_choice *gen = weft_choice_seeded(seed * 7 + 3);
        size_t wl = 0, el = 0, nmsg = 1 + weft_choose(gen, 12, "n");
        for (size_t i = 0; i < nmsg; i++) {
            size_t n = weft_choose(gen, 100, "len");
            uint8_t msg[100];
            for (size_t k = 0; k < n; k++) /* no '\r' or '\n' inside lines */
                msg[k] = (uint8_t)(kind == 0 ? 'a' + weft_choose(gen, 26, "c")
                                             : weft_choose(gen, 256, "b"));
            if (kind == 0) {
                memcpy(wire + wl, msg, n);
                memcpy(wire + wl + n, "\r\n", 2);
                wl += n + 2;
            } else if (kind == 1) {
                uint8_t pre[4] = {0, 0, (uint8_t)(n >> 8), (uint8_t)n};
                memcpy(wire + wl, pre, 4);
                memcpy(wire + wl + 4, msg, n);
                wl += n + 4;
            } else {
                wl += (size_t)snprintf((char *)wire + wl, 8, "%zu:", n);
                memcpy(wire + wl, msg, n);
                wire[wl + n] = ',';
                wl += n + 1;
            }
            expect[el++] = (uint8_t)(n >> 8);
            expect[el++] = (uint8_t)n;
            memcpy(expect + el, msg, n);
            el += n;
        }
        size_t piece = 1 + weft_choose(gen, 64, "piece");
        weft_choice_free(gen);
        weft_sim *s = mksim(seed);
        static frf sf;
        memset(&sf, 0, sizeof sf);
        sf.kind = kind;
        sf.base.build_protocol = fr_build;
        listen_at(s, "server", "tcp:4000", &sf.base);
        rawf cf = {0};
        cf.script = wire;
        cf.script_len = wl;
        cf.piece = piece;
        raw_connect(s, &cf, "tcp:server:4000");
        assert_int_equal(weft_sim_run_until_quiet(s), WEFT_OK);
        if (sf.proto.count != nmsg || sf.proto.got_len != el ||
            memcmp(sf.proto.got, expect, el) != 0)
            fail_msg("seed %llu kind %d: %zu of %zu messages", (unsigned long long)seed, kind,
                     sf.proto.count, nmsg);
        weft_sim_free(s);
        free(cf.last);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hello_over_seeds),
        cmocka_unit_test(echo_over_seeds),
        cmocka_unit_test(chat_over_seeds),
        cmocka_unit_test(heartbeat_over_seeds),
        cmocka_unit_test(smtp_delivered_over_seeds),
        cmocka_unit_test(smtp_rejected_over_seeds),
        cmocka_unit_test(smtp_silent_server_times_out),
        cmocka_unit_test(smtp_refused_and_crash),
        cmocka_unit_test(smtp_many_connections_at_once),
        cmocka_unit_test(same_seed_same_trace),
        cmocka_unit_test(framing_through_network),
    };
    return cmocka_run_group_tests_name("protocols_sim", tests, NULL, NULL);
}
