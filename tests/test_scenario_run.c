/* test_scenario_run.c: the scenario runner: each expectation kind passing
 * and failing with its failure text, invariants, liveness and runaway
 * verdicts, the world seen by actions, determinism, and the bundled
 * scenarios over a seed sweep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft/protocols.h"
#include "weft/scenario.h"

static weft_registry *reg;

/* ------------------------------------------- test protocols and actions */

/* "late-writer": closes, then writes (a write after close). */
typedef struct late {
    weft_protocol base;
} late;

static void late_made(weft_protocol *p)
{
    weft_transport_lose_connection(p->transport);
    weft_transport_write(p->transport, "too late", 8);
}

static void late_data(weft_protocol *p, const uint8_t *d, size_t n)
{
    (void)p;
    (void)d;
    (void)n;
}

static void late_lost(weft_protocol *p, const weft_failure *r)
{
    (void)p;
    (void)r;
}

static void late_destroy(weft_protocol *p)
{
    free(p);
}

static const weft_protocol_ops late_ops = {late_made, late_data, late_lost, NULL, NULL, late_destroy};

static weft_protocol *late_build(weft_factory *f, const weft_address *a)
{
    (void)f;
    (void)a;
    late *l = calloc(1, sizeof *l);
    l->base.ops = &late_ops;
    return &l->base;
}

/* "spinner": reschedules a zero-delay call forever (a runaway). */
static void spin(void *ctx)
{
    weft_reactor *r = ctx;
    weft_call_soon(r, spin, r);
}

static void spin_made(weft_protocol *p)
{
    weft_call_soon(p->reactor, spin, p->reactor);
}

static const weft_protocol_ops spin_ops = {spin_made, late_data, late_lost, NULL, NULL, late_destroy};

static weft_protocol *spin_build(weft_factory *f, const weft_address *a)
{
    (void)f;
    (void)a;
    late *l = calloc(1, sizeof *l);
    l->base.ops = &spin_ops;
    return &l->base;
}

/* "prober": uses every transport operation through the runner's proxy,
 * reports what it saw in one line, then aborts. What the proxy said about
 * disconnecting before and after the close (-1: not asked yet). */
static int probe_disc_before = -1, probe_disc_after = -1;

static void probe_made(weft_protocol *p)
{
    weft_transport *t = p->transport;
    const weft_address *peer = weft_transport_peer(t);
    const weft_address *host = weft_transport_host(t);
    int rc1 = weft_transport_pause_reading(t);
    int rc2 = weft_transport_resume_reading(t);
    char line[200];
    int n = snprintf(line, sizeof line, "peer=%s host=%s:%u pause=%d resume=%d buffered=%zu\n",
                     peer->host, host->host, (unsigned)host->port, rc1, rc2,
                     weft_transport_buffered(t));
    weft_iovec iov[2] = {{line, (size_t)n}, {"bye\n", 4}};
    weft_transport_writev(t, iov, 2);
    probe_disc_before = weft_transport_disconnecting(t);
    weft_transport_lose_connection(t);
    probe_disc_after = weft_transport_disconnecting(t);
    /* A second close after close: refused by the transport or accepted,
     * but never a crash; a writev after close is a violation. */
    weft_transport_writev(t, iov, 1);
}

static const weft_protocol_ops probe_ops = {probe_made, late_data, late_lost, NULL, NULL,
                                            late_destroy};

static weft_protocol *probe_build(weft_factory *f, const weft_address *a)
{
    (void)f;
    (void)a;
    late *l = calloc(1, sizeof *l);
    l->base.ops = &probe_ops;
    return &l->base;
}

/* "half-writer": writes "bye\n" and shuts its write side at once; closes
 * when it hears anything back (so a peer's write after the half-close shows).
 * Not half-close aware. */
static void hw_made(weft_protocol *p)
{
    weft_transport_write(p->transport, "bye\n", 4);
    weft_transport_lose_write_connection(p->transport);
}

static void hw_data(weft_protocol *p, const uint8_t *d, size_t n)
{
    (void)d;
    (void)n;
    weft_transport_lose_connection(p->transport);
}

static const weft_protocol_ops hw_ops = {
    .connection_made = hw_made,
    .data_received = hw_data,
    .connection_lost = late_lost,
    .destroy = late_destroy,
};

static weft_protocol *hw_build(weft_factory *f, const weft_address *a)
{
    (void)f;
    (void)a;
    late *l = calloc(1, sizeof *l);
    l->base.ops = &hw_ops;
    return &l->base;
}

/* "half-reader": half-close aware; counts what it reads and, when the other
 * end shuts its write side, answers "eof after N bytes\n" and closes. */
typedef struct half_reader {
    weft_protocol base;
    size_t got_bytes;
} half_reader;

static void hr_data(weft_protocol *p, const uint8_t *d, size_t n)
{
    (void)d;
    ((half_reader *)p)->got_bytes += n;
}

static void hr_read_lost(weft_protocol *p)
{
    char line[64];
    int n = snprintf(line, sizeof line, "eof after %zu bytes\n", ((half_reader *)p)->got_bytes);
    weft_transport_write(p->transport, line, (size_t)n);
    weft_transport_lose_connection(p->transport);
}

static const weft_protocol_ops hr_ops = {
    .data_received = hr_data,
    .connection_lost = late_lost,
    .read_connection_lost = hr_read_lost,
    .destroy = late_destroy,
};

static weft_protocol *hr_build(weft_factory *f, const weft_address *a)
{
    (void)f;
    (void)a;
    half_reader *h = calloc(1, sizeof *h);
    h->base.ops = &hr_ops;
    return &h->base;
}

/* "reconnector": a client behind weft_reconnecting (one retry, no jitter):
 * each connection writes "hello N\n", N counting connections from 1. */
typedef struct reconnector {
    weft_reconnecting rc; /* first: its factory is what the runner connects */
    weft_factory inner;
    int connections;
} reconnector;

static void rcn_made(weft_protocol *p)
{
    reconnector *x = (reconnector *)p->factory; /* rc.factory is its first member */
    char line[32];
    int n = snprintf(line, sizeof line, "hello %d\n", ++x->connections);
    weft_transport_write(p->transport, line, (size_t)n);
}

static const weft_protocol_ops rcn_ops = {
    .connection_made = rcn_made,
    .data_received = late_data,
    .connection_lost = late_lost,
    .destroy = late_destroy,
};

static weft_protocol *rcn_build(weft_factory *f, const weft_address *a)
{
    (void)f;
    (void)a;
    late *l = calloc(1, sizeof *l);
    l->base.ops = &rcn_ops;
    return &l->base;
}

static weft_factory *make_reconnector(weft_reactor *r, const char *args, void *ctx, char *err,
                                      size_t errlen)
{
    (void)args;
    (void)ctx;
    (void)err;
    (void)errlen;
    reconnector *x = calloc(1, sizeof *x);
    x->inner.build_protocol = rcn_build;
    x->inner.ctx = x;
    weft_reconnecting_init(&x->rc, r, &x->inner);
    x->rc.initial_delay_ns = 100 * WEFT_NS_PER_MS;
    x->rc.jitter = 0;
    x->rc.max_retries = 1;
    weft_reconnecting_reset_delay(&x->rc);
    return &x->rc.factory;
}

static void destroy_reconnector(weft_factory *f, void *ctx)
{
    (void)ctx;
    free((reconnector *)f);
}

static weft_factory *make_test_factory(weft_reactor *r, const char *args, void *ctx, char *err,
                                       size_t errlen)
{
    (void)r;
    if (strcmp(args, "bad") == 0) {
        snprintf(err, errlen, "bad is not a good argument");
        return NULL;
    }
    weft_factory *f = calloc(1, sizeof *f);
    f->build_protocol = ctx;
    return f;
}

static void destroy_test_factory(weft_factory *f, void *ctx)
{
    (void)ctx;
    free(f);
}

/* "test.value N": an already-fired Deferred with N. */
static int act_value(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                     weft_deferred **out, char *err, size_t errlen)
{
    (void)w;
    (void)ctx;
    if (argc != 1 || argv[0].kind != WEFT_ARG_INT) {
        snprintf(err, errlen, "usage: test.value N");
        return WEFT_EINVAL;
    }
    *out = weft_succeed((void *)(intptr_t)argv[0].num);
    return *out ? WEFT_OK : WEFT_ENOMEM;
}

/* "test.fail TYPE": an already-failed Deferred. */
static int act_fail(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                    weft_deferred **out, char *err, size_t errlen)
{
    (void)w;
    (void)ctx;
    (void)err;
    (void)errlen;
    *out = weft_fail(weft_failure_new(argc ? argv[0].str : "Oops", "from test.fail"));
    return WEFT_OK;
}

/* "test.world CLIENT": fires with 1 when the client is connected, checks
 * the world's accessors, reports a violation on request. */
static int act_world(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                     weft_deferred **out, char *err, size_t errlen)
{
    (void)ctx;
    (void)err;
    (void)errlen;
    if (argc >= 1 && strcmp(argv[0].str, "violate") == 0) {
        weft_world_violation(w, "the action saw something wrong: %d", 42);
        *out = weft_succeed(NULL);
        return WEFT_OK;
    }
    weft_protocol *p = argc >= 1 ? weft_world_client(w, argv[0].str) : NULL;
    int ok = weft_world_reactor(w) != NULL && weft_world_sim(w) != NULL &&
             weft_sim_from_reactor(weft_world_reactor(w)) == weft_world_sim(w);
    char *mem = weft_world_alloc(w, 64);
    ok = ok && mem != NULL && mem[63] == 0;
    intptr_t v = (p != NULL && p->transport != NULL) ? 1 : 0;
    if (!ok)
        v = -1;
    if (strcmp(weft_world_host(w), "there") == 0)
        v += 10;
    *out = weft_succeed((void *)v);
    return WEFT_OK;
}

/* "test.error": the action itself fails. */
static int act_error(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                     weft_deferred **out, char *err, size_t errlen)
{
    (void)w;
    (void)argc;
    (void)argv;
    (void)ctx;
    (void)out;
    snprintf(err, errlen, "no can do");
    return WEFT_EIO;
}

static int setup(void **state)
{
    (void)state;
    reg = weft_registry_new();
    if (reg == NULL || weft_registry_add_builtins(reg) != WEFT_OK)
        return -1;
    weft_registry_add_protocol(reg, "late-writer", make_test_factory, destroy_test_factory,
                               (void *)(uintptr_t)late_build);
    weft_registry_add_protocol(reg, "spinner", make_test_factory, destroy_test_factory,
                               (void *)(uintptr_t)spin_build);
    weft_registry_add_protocol(reg, "prober", make_test_factory, destroy_test_factory,
                               (void *)(uintptr_t)probe_build);
    weft_registry_add_protocol(reg, "half-writer", make_test_factory, destroy_test_factory,
                               (void *)(uintptr_t)hw_build);
    weft_registry_add_protocol(reg, "half-reader", make_test_factory, destroy_test_factory,
                               (void *)(uintptr_t)hr_build);
    weft_registry_add_protocol(reg, "reconnector", make_reconnector, destroy_reconnector, NULL);
    weft_registry_add_action(reg, "test.value", act_value, NULL);
    weft_registry_add_action(reg, "test.fail", act_fail, NULL);
    weft_registry_add_action(reg, "test.world", act_world, NULL);
    weft_registry_add_action(reg, "test.error", act_error, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    weft_registry_free(reg);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static weft_scenario *parse_ok(const char *text)
{
    weft_diags d;
    weft_diags_init(&d);
    weft_scenario *sc = NULL;
    int rc = weft_scenario_parse(text, strlen(text), "t.scn", &sc, &d);
    for (size_t i = 0; i < d.count; i++) {
        char *s = weft_diag_format(&d.items[i]);
        print_error("%s\n", s);
        weft_free(s);
    }
    assert_int_equal(rc, WEFT_OK);
    weft_diags_clear(&d);
    return sc;
}

/* Run text with a seed; returns the verdict in buf. */
static bool run_text(const char *text, uint64_t seed, char *verdict, size_t vlen)
{
    weft_scenario *sc = parse_ok(text);
    weft_run_options o;
    weft_run_options_init(&o);
    o.seed = seed;
    o.use_seed = true;
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, reg, &o, &r), WEFT_OK);
    snprintf(verdict, vlen, "%s", r.verdict);
    bool passed = r.passed;
    assert_true(passed == (strcmp(r.verdict, "passed") == 0));
    assert_true(passed == (r.nfailures == 0));
    weft_run_result_clear(&r);
    weft_scenario_free(sc);
    return passed;
}

static void passes(const char *text)
{
    char v[1024];
    if (!run_text(text, 1, v, sizeof v))
        print_error("verdict: %s\n", v);
    assert_string_equal(v, "passed");
}

static void fails_with(const char *text, const char *want)
{
    char v[1024];
    assert_false(run_text(text, 1, v, sizeof v));
    if (strcmp(v, want) != 0)
        print_error("want: %s\ngot:  %s\n", want, v);
    assert_string_equal(v, want);
}

/* The failure list must contain want (anywhere). */
static void fails_including(const char *text, const char *want)
{
    weft_scenario *sc = parse_ok(text);
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, reg, NULL, &r), WEFT_OK);
    assert_false(r.passed);
    bool found = false;
    for (size_t i = 0; i < r.nfailures; i++) {
        if (strcmp(r.failures[i], want) == 0)
            found = true;
    }
    if (!found) {
        print_error("want: %s\n", want);
        for (size_t i = 0; i < r.nfailures; i++)
            print_error("got:  %s\n", r.failures[i]);
    }
    assert_true(found);
    weft_run_result_clear(&r);
    weft_scenario_free(sc);
}

/* An echo server and a connected peer: the test's statements start at line 5. */
#define ECHO0 "network latency 1ms..5ms\nlisten echo on localhost:7\npeer p connects to localhost:7\n"
#define ECHO ECHO0 "p expect connected within 1s\n"

/* --------------------------------------------------- peer expectations */

static void test_bytes(void **state)
{
    (void)state;
    passes(ECHO "p send \"abc\"\np expect \"abc\" within 1s\np close\n");
    passes(ECHO "p send \"abcdef\"\np expect bytes \"abc\" within 1s\np expect \"def\" within 1s\n"
                "p close\n");
    fails_with(ECHO "p send \"abd\"\np expect \"abc\" within 1s\n",
               "t.scn:6: p: expected \"abc\" within 1s, got \"abd\"");
    fails_with(ECHO "p send \"ab\"\np expect \"abc\" within 1s\n",
               "t.scn:6: p: expected \"abc\" within 1s, got \"ab\" after 1s");
    /* No deadline: checked at once, before anything arrived. */
    fails_with(ECHO "p send \"abc\"\np expect \"abc\"\n",
               "t.scn:6: p: expected \"abc\", got nothing");
    fails_with(ECHO "p send \"\\x01\\r\\n\"\np expect \"x\" within 1s\n",
               "t.scn:6: p: expected \"x\" within 1s, got \"\\x01\\r\\n\"");
}

static void test_lines(void **state)
{
    (void)state;
    passes(ECHO "p send \"250 OK\\r\\n220 hi\\nxyz 42\\r\\n\"\n"
                "p expect line \"250 OK\" within 1s\n"
                "p expect prefix \"220\" within 1s\n"
                "p expect match \"^[a-z]+ [0-9]+$\" within 1s\n"
                "p close\n");
    fails_with(ECHO "p send \"250 OK\\r\\n\"\np expect line \"250 Ok\" within 1s\n",
               "t.scn:6: p: expected line \"250 Ok\" within 1s, got line \"250 OK\"");
    fails_with(ECHO "p send \"550 no\\r\\n\"\np expect prefix \"250\" within 1s\n",
               "t.scn:6: p: expected prefix \"250\" within 1s, got line \"550 no\"");
    fails_with(ECHO "p send \"abc\\r\\n\"\np expect match \"^[0-9]+$\" within 1s\n",
               "t.scn:6: p: expected match \"^[0-9]+$\" within 1s, got line \"abc\"");
    fails_with(ECHO "p send \"no end\"\np expect line \"no end\" within 1s\n",
               "t.scn:6: p: expected line \"no end\" within 1s, got \"no end\" (no end of line yet) "
               "after 1s");
}

static void test_nothing(void **state)
{
    (void)state;
    passes(ECHO "p expect connected within 1s\np expect nothing within 1s\np close\n");
    fails_with(ECHO "p send \"x\"\np expect nothing within 1s\n",
               "t.scn:6: p: expected nothing within 1s, got \"x\"");
}

static void test_connection_states(void **state)
{
    (void)state;
    passes(ECHO "p expect connected within 1s\np expect open\np close\n"
                "p expect closed with ConnectionDone within 1s\n");
    passes(ECHO "p expect connected within 1s\np abort\np expect closed with ConnectionAborted "
                "within 1s\n");
    passes("peer p connects to localhost:9\np expect connect-failed with ConnectionRefused within 1s\n");
    fails_with("peer p connects to localhost:9\np expect connected within 1s\n",
               "t.scn:2: p: expected connected within 1s, got connect failed with ConnectionRefused");
    fails_with(ECHO "p expect connect-failed within 1s\n",
               "t.scn:5: p: expected connect-failed within 1s, got connected after 1s");
    fails_with(ECHO "p expect connected within 1s\np close\np expect closed with ConnectionLost within 1s\n",
               "t.scn:7: p: expected closed with ConnectionLost within 1s, got closed with "
               "ConnectionDone");
    fails_with(ECHO0 "p expect open\n", "t.scn:4: p: expected open, got still connecting");
    fails_with(ECHO "p expect closed within 50ms\n",
               "t.scn:5: p: expected closed within 50ms, got connected after 50ms");
    /* Hello closes by itself. */
    passes("listen hello on localhost:2000\npeer v connects to localhost:2000\n"
           "v expect \"Hello Twisted\" within 1s\nv expect closed with ConnectionDone within 1s\n");
    /* A listening peer and a registry client talking. */
    passes("host a b\npeer srv listens on b:5\nclient c echo connects to b:5 from a\n"
           "srv expect connected within 1s\nc expect connected within 1s\nsrv send \"ping\"\n"
           "srv expect \"ping\" within 1s\nc close\nc expect closed within 1s\n"
           "srv expect closed within 1s\n");
}

/* Several peers listening on one address take its connections in the order
 * they were declared, one each; later connections are refused. */
#define POOL0 "host a b\nnetwork latency 1ms\npeer s1 listens on b:5\npeer s2 listens on b:5\n" \
              "client c1 echo connects to b:5 from a\nadvance 100ms\n"                      \
              "client c2 echo connects to b:5 from a\nadvance 100ms\n"
/* ...POOL0 ends at line 8. */
static void test_listening_peers_share_an_address(void **state)
{
    (void)state;
    passes(POOL0 "s1 expect connected\ns2 expect connected\nc1 expect connected\n"
                 "c2 expect connected\ns1 send \"one\"\ns2 send \"two\"\n"
                 "s2 expect \"two\" within 1s\ns1 expect \"one\" within 1s\n"
                 "s1 close\ns2 close\nc1 expect closed within 1s\nc2 expect closed within 1s\n"
                 "s1 expect closed within 1s\ns2 expect closed within 1s\n");
    /* The first connection goes to the first declared peer. */
    fails_with(POOL0 "s2 send \"x\"\ns1 expect \"x\" within 1s\n",
               "t.scn:10: s1: expected \"x\" within 1s, got nothing after 1s");
    /* A third connection finds no peer left: the factory refuses it, the
     * connection ends at once (ConnectionDone), as a Twisted factory that
     * builds no protocol. */
    passes(POOL0 "client c3 echo connects to b:5 from a\n"
                 "c3 expect closed with ConnectionDone within 1s\n"
                 "s1 close\ns2 close\ns1 expect closed within 1s\ns2 expect closed within 1s\n");
    /* A peer whose turn never comes never connects. */
    fails_with("host a b\npeer s1 listens on b:5\npeer s2 listens on b:5\n"
               "client c1 echo connects to b:5 from a\ns2 expect connected within 1s\n",
               "t.scn:5: s2: expected connected within 1s, got not connecting after 1s");
    /* A reconnecting client: each connection goes to the next peer. */
#define RECON "host a b\nnetwork latency 1ms\npeer s1 listens on b:5\npeer s2 listens on b:5\n" \
              "client c reconnector connects to b:5 from a\ns1 expect line \"hello 1\" within 1s\n" \
              "s1 close\ns1 expect closed within 1s\n"
    passes(RECON "s2 expect line \"hello 2\" within 1s\ns2 close\ns2 expect closed within 1s\n"
                 "c expect closed with ConnectionDone within 1s\n");
    fails_with(RECON "s1 expect connected within 1s\ns2 expect line \"hello 1\" within 1s\n",
               "t.scn:10: s2: expected line \"hello 1\" within 1s, got line \"hello 2\"");
#undef RECON
    /* One peer alone still plays one connection. */
    passes("host a b\nnetwork latency 1ms\npeer s1 listens on b:5\n"
           "client c1 echo connects to b:5 from a\nadvance 100ms\n"
           "client c2 echo connects to b:5 from a\n"
           "c2 expect closed with ConnectionDone within 1s\ns1 close\n"
           "s1 expect closed within 1s\nc1 expect closed within 1s\n");
    /* Another address is another line; a registry listener cannot join one. */
    fails_with("host a b\nnetwork latency 1ms\npeer s1 listens on b:5\npeer s2 listens on b:6\n"
               "client c1 echo connects to b:6 from a\ns2 expect connected within 1s\n"
               "s1 expect connected within 1s\n",
               "t.scn:7: s1: expected connected within 1s, got not connecting after 1s");
    fails_with("host a b\npeer s1 listens on b:5\nlisten echo on b:5\n",
               "t.scn:3: listen failed: address already in use");
    /* After a crash the address is free again: a later peer listens anew. */
    passes("host a b\nnetwork latency 1ms\npeer s1 listens on b:5\ncrash b\nrestart b\n"
           "peer s2 listens on b:5\nclient c1 echo connects to b:5 from a\n"
           "s2 expect connected within 1s\ns2 close\nc1 expect closed within 1s\n"
           "s2 expect closed within 1s\n");
}

/* `P shutdown`: the code under test sees the half-close as the network
 * shows it (read_connection_lost when half-close aware, else ConnectionDone). */
#define HALF(proto) "network latency 1ms..5ms\nlisten " proto " on localhost:7\n" \
                    "peer p connects to localhost:7\np expect connected within 1s\n"
/* ...HALF ends at line 4. */
static void test_peer_shutdown(void **state)
{
    (void)state;
    /* A half-close-aware server reads to the end, answers, closes. */
    passes(HALF("half-reader") "p send \"abc\"\np shutdown\n"
                               "p expect line \"eof after 3 bytes\" within 1s\n"
                               "p expect closed with ConnectionDone within 1s\n");
    /* It saw every byte written before the shutdown, none after. */
    fails_with(HALF("half-reader") "p send \"abc\"\np shutdown\n"
                                   "p expect line \"eof after 4 bytes\" within 1s\n",
               "t.scn:7: p: expected line \"eof after 4 bytes\" within 1s, got line "
               "\"eof after 3 bytes\"");
    /* A server that is not half-close aware ends with ConnectionDone after
     * what it had written (echo sends the bytes back first). */
    passes(HALF("echo") "p send \"abc\"\np shutdown\np expect \"abc\" within 1s\n"
                        "p expect closed with ConnectionDone within 1s\n");
    /* The peer's write side is shut: no more sends, no second shutdown. */
    fails_with(HALF("echo") "p shutdown\np send \"x\"\n",
               "t.scn:6: p send: write after close (WEFT_ECLOSED)");
    /* A second shutdown is a no-op, as on the transport. */
    passes(HALF("half-reader") "p shutdown\np shutdown\n"
                               "p expect line \"eof after 0 bytes\" within 1s\n"
                               "p expect closed with ConnectionDone within 1s\n");
    passes(HALF("echo") "p close\np shutdown\np expect closed with ConnectionDone within 1s\n");
    fails_with(ECHO0 "p shutdown\n", "t.scn:4: p shutdown: not connected (still connecting)");
    fails_with("peer p connects to localhost:9\np expect connect-failed within 1s\np shutdown\n",
               "t.scn:3: p shutdown: not connected (connect failed)");
    /* Scheduled like any statement. */
    passes(HALF("half-reader") "after 100ms: p shutdown\np expect nothing within 50ms\n"
                               "p expect line \"eof after 0 bytes\" within 1s\n"
                               "p expect closed with ConnectionDone within 1s\n");
}

/* `P expect eof`: the other end shut its write side; the peer may still
 * write. Only a peer some `expect eof` names is half-close aware. */
static void test_peer_eof(void **state)
{
    (void)state;
    /* The connection stays open for the peer to write; the other end has
     * closed its side already, so the peer ends with its own close. */
    passes(HALF("half-writer") "p expect line \"bye\" within 1s\np expect eof within 1s\n"
                               "p expect open\np send \"more\"\np close\n"
                               "p expect closed with ConnectionDone within 1s\n");
    /* The bytes written after the eof arrive: the half-writer closes on
     * them (a registry client, so its close shows). */
#define HALFC "host a b\nnetwork latency 1ms\npeer s listens on b:5\n"                    \
              "client c half-writer connects to b:5 from a\ns expect line \"bye\" within 1s\n" \
              "s expect eof within 1s\n"
    passes(HALFC "s send \"ok\"\nc expect closed within 1s\ns close\n"
                 "s expect closed with ConnectionDone within 1s\n");
    fails_with(HALFC "c expect closed within 1s\n",
               "t.scn:7: c: expected closed within 1s, got connected after 1s");
#undef HALFC
    /* eof is independent of the bytes before it; data expectations after it
     * fail at once instead of waiting for bytes that cannot come. */
    fails_with(HALF("half-writer") "p expect eof within 1s\np expect line \"bye\"\n"
                                   "p expect \"more\" within 10s\n",
               "t.scn:7: p: expected \"more\" within 10s, got nothing and the other end shut its "
               "write side");
    fails_with(HALF("half-writer") "p expect eof within 1s\np expect line \"bye!\" within 10s\n",
               "t.scn:6: p: expected line \"bye!\" within 10s, got line \"bye\"");
    fails_with(HALF("half-writer") "p expect eof within 1s\np expect \"bye\\nx\" within 10s\n",
               "t.scn:6: p: expected \"bye\\nx\" within 10s, got \"bye\\n\" and the other end "
               "shut its write side");
    /* Both sides shut: the connection ends. */
    passes(HALF("half-writer") "p expect eof within 1s\np shutdown\np expect line \"bye\"\n"
                               "p expect closed with ConnectionDone within 1s\n");
    /* The other end's full close sends the same end of stream: an aware
     * peer sees the eof and closes its side itself (Twisted's
     * readConnectionLost)... */
    passes("listen hello on localhost:2000\npeer v connects to localhost:2000\n"
           "v expect \"Hello Twisted\" within 1s\nv expect eof within 1s\nv close\n"
           "v expect closed with ConnectionDone within 1s\n");
    /* ...but a connection lost without one is no eof. */
    fails_with("host a b\nlisten echo on b:7\npeer p connects to b:7 from a\n"
               "p expect connected within 1s\nreset a b\np expect eof within 1s\n",
               "t.scn:6: p: expected eof within 1s, got closed with ConnectionLost");
    fails_with(HALF("echo") "p abort\np expect eof within 1s\n",
               "t.scn:6: p: expected eof within 1s, got closed with ConnectionAborted");
    fails_with(HALF("echo") "p expect eof within 100ms\n",
               "t.scn:5: p: expected eof within 100ms, got connected after 100ms");
    fails_with(HALF("echo") "p expect eof\n", "t.scn:5: p: expected eof, got connected");
    fails_with("peer p connects to localhost:9\np expect eof within 1s\n",
               "t.scn:2: p: expected eof within 1s, got connect failed with ConnectionRefused");
    /* An aware peer left half-open is still connected at the end. */
    fails_including(HALF("half-writer") "p expect line \"bye\" within 1s\np expect eof within 1s\n",
                    "t.scn:3: liveness: peer p is still connected at the end (close it, or "
                    "declare it with `p expect open`)");
    /* A peer with no `expect eof` is not half-close aware: the half-close
     * ends its connection (ConnectionDone), as before. */
    passes(HALF("half-writer") "p expect line \"bye\" within 1s\n"
                               "p expect closed with ConnectionDone within 1s\n");
}

static void test_peer_misuse(void **state)
{
    (void)state;
    fails_with(ECHO0 "p send \"x\"\n", "t.scn:4: p send: not connected (still connecting)");
    fails_with(ECHO "p expect connected within 1s\np close\np send \"x\"\n",
               "t.scn:7: p send: write after close (WEFT_ECLOSED)");
    fails_with("peer p connects to localhost:9\np close\n", "t.scn:2: p close: not connected");
    fails_with("listen echo on localhost:7\nlisten echo on localhost:7\n",
               "t.scn:2: listen failed: address already in use");
    fails_with("listen late-writer on localhost:1 with \"bad\"\n",
               "t.scn:1: listen late-writer: bad is not a good argument");
}

/* ------------------------------------------------ Deferred expectations */

static void test_deferred_values(void **state)
{
    (void)state;
    passes("deferred d\nd then add 2\nd fire 40\nd expect value 42\nd expect succeeded\n");
    passes("deferred d\nd then value \"s\"\nd fire\nd expect value \"s\"\n");
    passes("deferred d\nd fire none\nd expect value none\n");
    passes("deferred d\nd fire 0\nd expect value none\n"); /* none is 0 */
    fails_with("deferred d\nd fire 41\nd expect value 42\n",
               "t.scn:3: d: expected value 42, got value 41");
    fails_with("deferred d\nd fire \"41\"\nd expect value 41\n",
               "t.scn:3: d: expected value 41, got value \"41\"");
    fails_with("deferred d\nd fire 41\nd expect value \"41\"\n",
               "t.scn:3: d: expected value \"41\", got value 41");
    fails_with("deferred d\nd expect value 1 within 2s\n",
               "t.scn:2: d: expected value 1 within 2s, got still pending after 2s");
    fails_with("deferred d\nd pause\nd fire 1\nd expect succeeded\n",
               "t.scn:4: d: expected succeeded, got still pending (paused)");
    fails_with("deferred d\nd fail KeyError \"k\"\nd expect value 1\n",
               "t.scn:3: d: expected value 1, got failure KeyError \"k\"");
    fails_with("deferred d\nd fire \"x\"\nd then add 1\n",
               "t.scn:3: 'add 1' on d: the value is a string, not a number");
}

static void test_deferred_failures(void **state)
{
    (void)state;
    passes("deferred d\nd fail KeyError \"no such key\"\nd expect failure KeyError\n");
    passes("deferred d\nd fail KeyError \"no such key\"\nd expect failure KeyError \"such\"\n");
    fails_with("deferred d\nd fail KeyError \"no such key\"\nd expect failure ValueError\n",
               "t.scn:3: d: expected failure ValueError, got failure KeyError \"no such key\"");
    fails_with("deferred d\nd fail KeyError \"no such key\"\nd expect failure KeyError \"bogus\"\n",
               "t.scn:3: d: expected failure KeyError \"bogus\", got failure KeyError \"no such key\"");
    fails_with("deferred d\nd fire 3\nd expect failure KeyError\n",
               "t.scn:3: d: expected failure KeyError, got value 3");
    passes("deferred d\nd cancel\nd expect failure Cancelled\n");
    passes("deferred d\nd timeout 1s\nd expect failure Timeout within 2s\n");
    fails_with("deferred d\nd timeout 1s\nd expect failure Timeout within 500ms\n",
               "t.scn:3: d: expected failure Timeout within 500ms, got still pending after 500ms");
}

static void test_fired(void **state)
{
    (void)state;
    passes("deferred d\nd fire 1\nd expect fired\n");
    /* A Failure seen by `fired` counts as handled. */
    passes("deferred d\nd fail E\nd expect fired\n");
    passes("deferred d\nafter 1s: d fail E\nd expect fired within 1s\n");
    fails_with("deferred d\nd expect fired within 1s\n",
               "t.scn:2: d: expected fired within 1s, got still pending after 1s");
}

static void test_pending(void **state)
{
    (void)state;
    passes("deferred d\nd expect pending\n");
    fails_with("deferred d\nd fire 1\nd expect pending\n", "t.scn:3: d: expected pending, got value 1");
}

static void test_handlers_and_order(void **state)
{
    (void)state;
    passes("deferred d\nd then record \"a\"\nd then fail E\nd then record \"skipped\"\n"
           "d catch record \"b\"\nd catch trap E\nd both record \"c\"\nd fire 1\n"
           "d expect value \"E\"\nexpect order \"a\" \"b\" \"c\"\n");
    fails_with("deferred d\nd then record \"a\"\nd then record \"b\"\nd fire 1\nexpect order \"b\" \"a\"\n",
               "t.scn:5: expected order \"b\" \"a\", got order \"a\" \"b\"");
    fails_with("expect order \"x\"\n", "t.scn:1: expected order \"x\", got no recorded handler");
    /* trap of another type passes the Failure on; recover turns it into a value. */
    passes("deferred d\nd catch trap KeyError\nd catch recover 7\nd fail ValueError\nd expect value 7\n");
    /* return: the chain waits for another Deferred. */
    passes("deferred a b\na then return b\na fire 1\na expect pending\nb fire 5\na expect value 5\n");
    fails_with("deferred a b\na then return b\nb fire 5\nb expect value 5\na fire 1\n"
               "b expect value 5\n",
               "t.scn:6: b: expected value 5, got value none");
    /* pair: then ... else */
    passes("deferred d\nd then fail E else recover 1\nd then add 1 else recover 100\nd fire 0\n"
           "d expect value 100\n");
    /* unpause without pause */
    fails_with("deferred d\nd unpause\n", "t.scn:2: d unpause: it is not paused");
}

static void test_lists_and_gathers(void **state)
{
    (void)state;
    passes("deferred a b\ngather g of a b\nb fire 2\na fire 1\ng expect values 1 2\n");
    fails_with("deferred a b\ngather g of a b\nb fire 2\na fire 1\ng expect values 2 1\n",
               "t.scn:5: g: expected values 2 1, got values 1 2");
    passes("deferred a b\ngather g of a b consume-errors\na fail KeyError\n"
           "g expect failure FirstError\nb fire 1\n");
    passes("deferred a b c\nlist l of a b c consume-errors\na fire 1\nb fail KeyError\nc fire \"z\"\n"
           "l expect list ok 1 fail KeyError ok \"z\"\n");
    fails_with("deferred a b\nlist l of a b consume-errors\na fire 1\nb fail KeyError\n"
               "l expect list ok 1 ok 2\n",
               "t.scn:5: l: expected list ok 1 ok 2, got list ok 1 fail KeyError");
    passes("deferred a b\nlist l of a b fire-on-one-callback\nb fire 9\nl expect succeeded\n"
           "a expect pending\n");
    passes("list empty of\nempty expect list\n");
}

static void test_time_statements(void **state)
{
    (void)state;
    passes("deferred d\nat 2s: d fire 1\nrun until 1s\nd expect pending\nrun until 2s\n"
           "d expect value 1\n");
    passes("deferred d\nafter 1s: d fire 1\nadvance 999ms\nd expect pending\nadvance 1ms\n"
           "d expect value 1\n");
    passes("deferred d\nafter 5s: d fire 1\nrun until quiet\nd expect value 1\n");
    passes("later t 3s 9\nt expect value 9 within 3s\n");
    fails_with("later t 3s 9\nt expect value 9 within 2999ms\n",
               "t.scn:2: t: expected value 9 within 2999ms, got still pending after 2999ms");
    fails_with("advance 2s\nat 1s: host late\n", "t.scn:2: at 1s: that time has passed (it is 2s)");
    fails_with("advance 2s\nrun until 1s\n", "t.scn:2: run until 1s: the time is already 2s");
    /* A scheduled statement failing stops the run. */
    fails_with("deferred d\nafter 1s: d unpause\nadvance 2s\n", "t.scn:2: d unpause: it is not paused");
}

static void test_faults(void **state)
{
    (void)state;
    passes("host a b\nlisten echo on b:7\npeer p connects to b:7 from a\np expect connected within 1s\n"
           "reset a b\np expect closed with ConnectionLost within 1s\n");
    passes("host a b\nlisten echo on b:7\npeer p connects to b:7 from a\np expect connected within 1s\n"
           "crash b\np expect closed with ConnectionLost within 1s\nrestart b\n");
    passes("host a b\nnetwork latency 1ms\nlisten echo on b:7\npeer p connects to b:7 from a\n"
           "p expect connected within 1s\npartition a b\np send \"x\"\np expect nothing within 5s\n"
           "heal a b\np expect \"x\" within 1s\np close\n");
    passes("host a b\nnetwork latency 1ms\nlisten echo on b:7\npeer p connects to b:7 from a\n"
           "p expect connected within 1s\nstall a b\np send \"x\"\np expect nothing within 5s\n"
           "release a b\np expect \"x\" within 1s\np close\n");
}

/* --------------------------------------------------------- invariants */

static void test_fired_twice(void **state)
{
    (void)state;
    fails_with("deferred d\nd fire 1\nd fire 2\nd expect value 1\n",
               "t.scn:3: invariant: Deferred d fired twice (AlreadyCalled)");
    /* Not stopping: the rest of the script still ran. */
    fails_including("deferred d\nd fire 1\nd fail E\ndeferred e\ne expect value 1\n",
                    "t.scn:5: e: expected value 1, got still pending");
}

static void test_write_after_close(void **state)
{
    (void)state;
    fails_with("listen late-writer on localhost:1\npeer p connects to localhost:1\n"
               "p expect closed within 1s\n",
               "t.scn:1: invariant: protocol 'late-writer' wrote after its connection was closed "
               "(WEFT_ECLOSED)");
}

static void test_proxy_transport(void **state)
{
    (void)state;
    fails_including("host srv cli\nlisten prober on srv:80\npeer p connects to srv:80 from cli\n"
                    "p expect line \"peer=cli host=srv:80 pause=0 resume=0 buffered=0\" within 1s\n"
                    "p expect line \"bye\" within 1s\np expect closed within 1s\n",
                    "t.scn:2: invariant: protocol 'prober' wrote after its connection was closed "
                    "(WEFT_ECLOSED)");
    /* Only that violation: the expectations all held. */
    weft_scenario *sc = parse_ok("host srv cli\nlisten prober on srv:80\n"
                                 "peer p connects to srv:80 from cli\n"
                                 "p expect line \"peer=cli host=srv:80 pause=0 resume=0 "
                                 "buffered=0\" within 1s\n"
                                 "p expect line \"bye\" within 1s\np expect closed within 1s\n");
    weft_run_result r;
    probe_disc_before = probe_disc_after = -1;
    assert_int_equal(weft_scenario_run(sc, reg, NULL, &r), WEFT_OK);
    assert_int_equal(r.nfailures, 1);
    /* The proxy forwards weft_transport_disconnecting. */
    assert_int_equal(probe_disc_before, 0);
    assert_int_equal(probe_disc_after, 1);
    weft_run_result_clear(&r);
    weft_scenario_free(sc);
}

static void test_unhandled(void **state)
{
    (void)state;
    fails_with("deferred d\nd fail KeyError \"lost\"\n",
               "t.scn:1: invariant: Deferred d ended with an unhandled Failure KeyError: lost");
    fails_with("call test.fail Bad\n",
               "t.scn: invariant: a Deferred returned by an unnamed call ended with an unhandled "
               "Failure Bad: from test.fail");
    /* Handled by an errback: fine. */
    passes("deferred d\nd catch recover 0\nd fail KeyError \"lost\"\n");
    /* A Failure inside a chain that the code under test drops. */
    passes("call test.fail Bad as f\nf expect failure Bad\n");
}

static void test_liveness(void **state)
{
    (void)state;
    fails_with("deferred d\n",
               "t.scn:1: liveness: Deferred d is still pending at the end (declare it with "
               "`d expect pending`)");
    passes("deferred d\nd expect pending\n");
    fails_with(ECHO "p expect connected within 1s\n",
               "t.scn:3: liveness: peer p is still connected at the end (close it, or declare it "
               "with `p expect open`)");
    passes(ECHO "p expect connected within 1s\np expect open\n");
    fails_with(ECHO "p send \"abc\"\np expect \"ab\" within 1s\np close\np expect closed within 1s\n",
               "t.scn:3: liveness: peer p received 1 byte(s) no expectation consumed: \"c\"");
    fails_with("host a\nlisten echo on a:7\nclient c echo connects to a:7\nc expect connected within 1s\n",
               "t.scn:3: liveness: client c is still connected at the end (close it, or declare it "
               "with `c expect open`)");
}

/* The verdict must start with head and contain part (counts that depend on
 * the network's exact choices are left out). */
static void fails_like(const char *text, const char *head, const char *part)
{
    char v[1024];
    assert_false(run_text(text, 1, v, sizeof v));
    if (strncmp(v, head, strlen(head)) != 0 || strstr(v, part) == NULL)
        print_error("want: %s...%s...\ngot:  %s\n", head, part, v);
    assert_memory_equal(v, head, strlen(head));
    assert_non_null(strstr(v, part));
}

static void test_runaway(void **state)
{
    (void)state;
    fails_like("limit events 500\nlisten spinner on localhost:1\npeer p connects to localhost:1\n"
               "p expect closed within 10s\n",
               "t.scn:4: runaway: event cap of 500 reached while waiting for an expectation, after "
               "500 events at 0s; the event that kept rescheduling: 'call' (",
               " times)");
    fails_like("limit time 10s\nlisten heartbeat on localhost:1\nlisten pong on localhost:2\n"
               "client hb heartbeat connects to localhost:2\nrun until quiet\n",
               "t.scn:5: runaway: virtual time cap of 10s reached while running until quiet, after ",
               " events at 10s; the event that kept rescheduling: 'net.deliver' (");
    /* The end of the script drains too, under the same caps. */
    fails_like("limit events 100\nlisten spinner on localhost:1\npeer p connects to localhost:1\n",
               "t.scn: runaway: event cap of 100 reached while running until quiet at the end, after "
               "100 events at 0s; the event that kept rescheduling: 'call' (",
               " times)");
    /* Caps given in the options override the scenario's. */
    weft_scenario *sc = parse_ok("limit events 100000\nlisten spinner on localhost:1\n"
                                 "peer p connects to localhost:1\n");
    weft_run_options o;
    weft_run_options_init(&o);
    o.max_events = 50;
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, reg, &o, &r), WEFT_OK);
    assert_false(r.passed);
    assert_int_equal(r.events, 50);
    assert_non_null(strstr(r.verdict, "event cap of 50 reached"));
    weft_run_result_clear(&r);
    weft_scenario_free(sc);
}

/* -------------------------------------------------------------- world */

static void test_actions(void **state)
{
    (void)state;
    passes("call test.value 5 as v\nv expect value 5\n");
    fails_with("call test.value x as v\n", "t.scn:1: action 'test.value' failed: usage: test.value N");
    fails_with("call test.error as v\n", "t.scn:1: action 'test.error' failed: no can do");
    passes("host there\nlisten echo on there:7\nclient c echo connects to there:7\n"
           "c expect connected within 1s\ncall test.world from there c as w\nw expect value 11\n"
           "c close\n");
    passes("call test.world nobody as w\nw expect value 0\n");
    fails_with("call test.world violate as w\nw expect succeeded\n",
               "t.scn:1: the action saw something wrong: 42");
    /* smtp.send usage errors */
    fails_with("call smtp.send localhost:25 as m\n",
               "t.scn:1: action 'smtp.send' failed: usage: smtp.send HOST:PORT \"FROM\" \"TO\" "
               "\"BODY\" [OPTIONS]");
    fails_with("call smtp.send localhost:25 \"a\" \"b\" \"c\" \"nonsense=1\" as m\n",
               "t.scn:1: action 'smtp.send' failed: protocol 'smtp-client' rejected its arguments "
               "\"nonsense=1\" (or out of memory)");
}

static void test_run_errors(void **state)
{
    (void)state;
    weft_scenario *sc = parse_ok("listen nosuch on localhost:1\n");
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, reg, NULL, &r), WEFT_ENOTFOUND);
    weft_run_result_clear(&r);
    assert_int_equal(weft_scenario_run(NULL, reg, NULL, &r), WEFT_EINVAL);
    assert_int_equal(weft_scenario_run(sc, NULL, NULL, &r), WEFT_EINVAL);
    /* The given choice source is consumed even on error. */
    weft_run_options o;
    weft_run_options_init(&o);
    o.choices = weft_choice_seeded(3);
    assert_int_equal(weft_scenario_run(sc, reg, &o, &r), WEFT_ENOTFOUND);
    weft_scenario_free(sc);
    weft_run_result_clear(NULL);
}

/* Every allocation of a run fails once in turn: the run ends with ENOMEM or
 * a verdict, never a crash or a leak (under SAN=1). */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const char *const files[] = {"scenarios/hello_twisted.scn", "scenarios/promise.scn",
                                        "scenarios/smtp_rejected.scn"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        weft_diags d;
        weft_diags_init(&d);
        weft_scenario *sc = NULL;
        assert_int_equal(weft_scenario_load(files[f], &sc, &d), WEFT_OK);
        size_t enomem = 0, passed = 0;
        for (long n = 0; n < 250; n++) {
            weft_run_result r;
            weft_alloc_fail_after(n);
            int rc = weft_scenario_run(sc, reg, NULL, &r);
            weft_alloc_fail_after(-1);
            assert_true(rc == WEFT_OK || rc == WEFT_ENOMEM);
            if (rc == WEFT_ENOMEM) {
                enomem++;
                assert_null(r.verdict);
            } else {
                assert_non_null(r.verdict);
                passed += r.passed;
            }
            weft_run_result_clear(&r);
        }
        assert_true(enomem > 0);
        assert_true(passed > 0); /* late failures hit nothing: the run passes */
        weft_scenario_free(sc);
        weft_diags_clear(&d);
    }
}

/* -------------------------------------------------------- determinism */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static weft_scenario *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "scenarios/%s", name);
    weft_diags d;
    weft_diags_init(&d);
    weft_scenario *sc = NULL;
    int rc = weft_scenario_load(path, &sc, &d);
    if (rc != WEFT_OK)
        weft_diags_write(&d, stderr);
    assert_int_equal(rc, WEFT_OK);
    assert_int_equal(weft_scenario_check(sc, reg, &d), WEFT_OK);
    weft_diags_clear(&d);
    return sc;
}

static void test_determinism(void **state)
{
    (void)state;
    weft_scenario *sc = load("smtp_many.scn");
    uint64_t hashes[20];
    for (uint64_t seed = 0; seed < 20; seed++) {
        weft_run_options o;
        weft_run_options_init(&o);
        o.seed = seed;
        o.use_seed = true;
        weft_run_result a, b;
        assert_int_equal(weft_scenario_run(sc, reg, &o, &a), WEFT_OK);
        assert_int_equal(weft_scenario_run(sc, reg, &o, &b), WEFT_OK);
        assert_true(a.passed);
        assert_int_equal(a.trace_hash, b.trace_hash);
        assert_int_equal(a.events, b.events);
        assert_int_equal(a.elapsed_ns, b.elapsed_ns);
        assert_int_equal(a.nchoices, b.nchoices);
        assert_true(a.nchoices > 0);
        assert_memory_equal(a.choices, b.choices, a.nchoices * sizeof *a.choices);
        assert_int_equal(a.seed, seed);
        hashes[seed] = a.trace_hash;
        /* Replaying the recorded choices reproduces the run. */
        weft_run_options ro;
        weft_run_options_init(&ro);
        ro.choices = weft_choice_replay(a.choices, a.nchoices);
        weft_run_result c;
        assert_int_equal(weft_scenario_run(sc, reg, &ro, &c), WEFT_OK);
        assert_int_equal(c.trace_hash, a.trace_hash);
        weft_run_result_clear(&a);
        weft_run_result_clear(&b);
        weft_run_result_clear(&c);
    }
    /* Different seeds explore different runs. */
    size_t distinct = 0;
    for (size_t i = 0; i < 20; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || hashes[j] == hashes[i];
        distinct += !seen;
    }
    assert_true(distinct >= 18);
    /* The scenario's own seed is used when none is given. */
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, reg, NULL, &r), WEFT_OK);
    assert_int_equal(r.seed, 1000);
    weft_run_result_clear(&r);
    weft_scenario_free(sc);
}

typedef struct sink_buf {
    char text[1 << 16];
    size_t len;
    size_t lines;
} sink_buf;

static void sink(const char *line, size_t len, void *ctx)
{
    sink_buf *b = ctx;
    b->lines++;
    if (b->len + len + 1 < sizeof b->text) {
        memcpy(b->text + b->len, line, len);
        b->len += len;
        b->text[b->len++] = '\n';
    }
}

static void test_trace(void **state)
{
    (void)state;
    weft_scenario *sc = load("hello_twisted.scn");
    static sink_buf sb;
    memset(&sb, 0, sizeof sb);
    weft_run_options o;
    weft_run_options_init(&o);
    o.keep_trace = true;
    o.sink = sink;
    o.sink_ctx = &sb;
    weft_run_result r;
    assert_int_equal(weft_scenario_run(sc, reg, &o, &r), WEFT_OK);
    assert_true(r.passed);
    assert_non_null(r.trace_text);
    assert_int_equal(r.trace_len, sb.len);
    assert_memory_equal(r.trace_text, sb.text, sb.len);
    assert_non_null(strstr(r.trace_text, "scn.start hello twisted\n"));
    assert_non_null(strstr(r.trace_text, "net.listen host=server port=2000"));
    assert_non_null(strstr(r.trace_text, "scn.end passed\n"));
    /* The hash does not depend on whether text is kept. */
    weft_run_result q;
    assert_int_equal(weft_scenario_run(sc, reg, NULL, &q), WEFT_OK);
    assert_int_equal(q.trace_hash, r.trace_hash);
    assert_null(q.trace_text);
    weft_run_result_clear(&q);
    weft_run_result_clear(&r);
    weft_scenario_free(sc);
}

/* Every bundled scenario passes for a sweep of seeds. */
static void test_bundled_sweep(void **state)
{
    (void)state;
    DIR *dir = opendir("scenarios");
    assert_non_null(dir);
    char *names[64];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && n < 64) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".scn") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(dir);
    assert_true(n >= 11);
    const char *seeds_env = getenv("WEFT_SWEEP_SEEDS");
    uint64_t seeds = seeds_env ? strtoull(seeds_env, NULL, 10) : 300;
    for (size_t i = 0; i < n; i++) {
        weft_scenario *sc = load(names[i]);
        for (uint64_t s = 0; s < seeds; s++) {
            weft_run_options o;
            weft_run_options_init(&o);
            o.seed = s;
            o.use_seed = true;
            weft_run_result r;
            assert_int_equal(weft_scenario_run(sc, reg, &o, &r), WEFT_OK);
            if (!r.passed)
                print_error("%s seed %llu: %s\n", names[i], (unsigned long long)s, r.verdict);
            assert_true(r.passed);
            weft_run_result_clear(&r);
        }
        weft_scenario_free(sc);
        free(names[i]);
    }
    (void)read_file;
}

/* Trace hashes do not depend on how the scenario's path was typed: the same
 * file loaded through two different paths gives the same trace and hash,
 * passing or failing; only the verdict text keeps the path as given. */
static void run_path(const char *path, weft_run_result *r)
{
    weft_diags d;
    weft_diags_init(&d);
    weft_scenario *sc = NULL;
    assert_int_equal(weft_scenario_load(path, &sc, &d), WEFT_OK);
    weft_diags_clear(&d);
    weft_run_options o;
    weft_run_options_init(&o);
    o.seed = 5;
    o.use_seed = true;
    o.keep_trace = true;
    assert_int_equal(weft_scenario_run(sc, reg, &o, r), WEFT_OK);
    weft_scenario_free(sc);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_hash_independent_of_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-scnpath-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[64], pass_a[96], pass_b[96], fail_a[96], fail_b[96];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(pass_a, sizeof pass_a, "%s/ok.scn", dir);
    snprintf(pass_b, sizeof pass_b, "%s/sub/../ok.scn", dir);
    snprintf(fail_a, sizeof fail_a, "%s/bad.scn", dir);
    snprintf(fail_b, sizeof fail_b, "%s/./sub/../bad.scn", dir);
    write_text(pass_a, ECHO "p send \"abc\"\np expect \"abc\" within 1s\np close\n");
    write_text(fail_a, ECHO "p send \"abd\"\np expect \"abc\" within 1s\n");

    weft_run_result a, b;
    run_path(pass_a, &a);
    run_path(pass_b, &b);
    assert_true(a.passed);
    assert_true(b.passed);
    assert_int_equal(a.trace_hash, b.trace_hash);
    assert_int_equal(a.trace_len, b.trace_len);
    assert_memory_equal(a.trace_text, b.trace_text, a.trace_len);
    weft_run_result_clear(&a);
    weft_run_result_clear(&b);

    run_path(fail_a, &a);
    run_path(fail_b, &b);
    assert_false(a.passed);
    assert_false(b.passed);
    /* The verdicts name the file as it was given... */
    char want[160];
    snprintf(want, sizeof want, "%s:6: p: expected \"abc\" within 1s, got \"abd\"", fail_a);
    assert_string_equal(a.verdict, want);
    snprintf(want, sizeof want, "%s:6: p: expected \"abc\" within 1s, got \"abd\"", fail_b);
    assert_string_equal(b.verdict, want);
    /* ...the traces by its base name only, so they and their hashes agree. */
    assert_int_equal(a.trace_hash, b.trace_hash);
    assert_int_equal(a.trace_len, b.trace_len);
    assert_memory_equal(a.trace_text, b.trace_text, a.trace_len);
    assert_non_null(memmem(a.trace_text, a.trace_len, "scn.fail bad.scn:6: p: expected", 31));
    assert_null(memmem(a.trace_text, a.trace_len, dir, strlen(dir)));
    weft_run_result_clear(&a);
    weft_run_result_clear(&b);

    /* A different base name is a different scenario identity. */
    char fail_c[96];
    snprintf(fail_c, sizeof fail_c, "%s/other.scn", dir);
    write_text(fail_c, ECHO "p send \"abd\"\np expect \"abc\" within 1s\n");
    run_path(fail_a, &a);
    run_path(fail_c, &b);
    assert_false(a.passed);
    assert_false(b.passed);
    assert_true(a.trace_hash != b.trace_hash);
    weft_run_result_clear(&a);
    weft_run_result_clear(&b);

    assert_int_equal(unlink(pass_a), 0);
    assert_int_equal(unlink(fail_a), 0);
    assert_int_equal(unlink(fail_c), 0);
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_nothing),
        cmocka_unit_test(test_connection_states),
        cmocka_unit_test(test_listening_peers_share_an_address),
        cmocka_unit_test(test_peer_shutdown),
        cmocka_unit_test(test_peer_eof),
        cmocka_unit_test(test_peer_misuse),
        cmocka_unit_test(test_deferred_values),
        cmocka_unit_test(test_deferred_failures),
        cmocka_unit_test(test_fired),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_handlers_and_order),
        cmocka_unit_test(test_lists_and_gathers),
        cmocka_unit_test(test_time_statements),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_fired_twice),
        cmocka_unit_test(test_write_after_close),
        cmocka_unit_test(test_proxy_transport),
        cmocka_unit_test(test_unhandled),
        cmocka_unit_test(test_liveness),
        cmocka_unit_test(test_runaway),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_hash_independent_of_path),
        cmocka_unit_test(test_bundled_sweep),
    };
    return cmocka_run_group_tests_name("scenario_run", tests, setup, teardown);
}
