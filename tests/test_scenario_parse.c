/* test_scenario_parse.c: the scenario language's parser and checker: every
 * statement, every error with its exact position, several errors in one
 * pass, limits, and the registry's names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios/scn_internal.h"
#include "weft/scenario.h"

/* Parse text; returns the rc, leaves diags in *d (caller clears) and the
 * scenario in *out (may be NULL). */
static int parse(const char *text, weft_scenario **out, weft_diags *d)
{
    weft_diags_init(d);
    return weft_scenario_parse(text, strlen(text), "t.scn", out, d);
}

/* The text must parse; returns the scenario. */
static weft_scenario *ok(const char *text)
{
    weft_diags d;
    weft_scenario *sc = NULL;
    int rc = parse(text, &sc, &d);
    if (rc != WEFT_OK) {
        for (size_t i = 0; i < d.count; i++) {
            char *s = weft_diag_format(&d.items[i]);
            print_error("unexpected: %s\n", s);
            weft_free(s);
        }
    }
    assert_int_equal(rc, WEFT_OK);
    assert_int_equal(d.count, 0);
    assert_non_null(sc);
    weft_diags_clear(&d);
    return sc;
}

/* text[0..len) must fail with exactly these diagnostics (joined by '\n'). */
static void bad_n(const char *text, size_t len, const char *want)
{
    weft_diags d;
    weft_diags_init(&d);
    weft_scenario *sc = (weft_scenario *)1;
    int rc = weft_scenario_parse(text, len, "t.scn", &sc, &d);
    assert_int_equal(rc, WEFT_EPARSE);
    assert_null(sc);
    char got[4096] = "";
    for (size_t i = 0; i < d.count; i++) {
        char *s = weft_diag_format(&d.items[i]);
        assert_non_null(s);
        if (i > 0)
            strncat(got, "\n", sizeof got - strlen(got) - 1);
        strncat(got, s, sizeof got - strlen(got) - 1);
        weft_free(s);
    }
    if (strcmp(got, want) != 0)
        print_error("want: %s\ngot:  %s\n", want, got);
    assert_string_equal(got, want);
    weft_diags_clear(&d);
}

static void bad(const char *text, const char *want)
{
    bad_n(text, strlen(text), want);
}

static const scn_stmt *stmt(const weft_scenario *sc, size_t i)
{
    assert_true(i < sc->nstmts);
    return &sc->stmts[i];
}

/* ---------------------------------------------------------- statements */

static void test_header(void **state)
{
    (void)state;
    weft_scenario *sc = ok("# a comment\n"
                           "scenario \"hello world\"   # trailing comment\n"
                           "seed 42\n"
                           "jitter 10us\n"
                           "limit events 5000\n"
                           "limit time 2m\n"
                           "network latency 1ms..5ms chunk 8 coalesce reset 100ppm stall 0.5% "
                           "stall-max 20ms refuse 1% connect-timeout 3s\n");
    assert_string_equal(weft_scenario_name(sc), "hello world");
    assert_string_equal(weft_scenario_file(sc), "t.scn");
    assert_true(weft_scenario_has_seed(sc));
    assert_int_equal(weft_scenario_seed(sc), 42);
    assert_int_equal(sc->jitter_ns, 10000);
    assert_int_equal(sc->max_events, 5000);
    assert_int_equal(sc->max_time_ns, 120 * WEFT_NS_PER_S);
    assert_true(sc->net_set);
    assert_int_equal(sc->net.latency_min_ns, WEFT_NS_PER_MS);
    assert_int_equal(sc->net.latency_max_ns, 5 * WEFT_NS_PER_MS);
    assert_int_equal(sc->net.max_chunk, 8);
    assert_true(sc->net.coalesce);
    assert_int_equal(sc->net.reset_ppm, 100);
    assert_int_equal(sc->net.stall_ppm, 5000);
    assert_int_equal(sc->net.stall_max_ns, 20 * WEFT_NS_PER_MS);
    assert_int_equal(sc->net.refuse_ppm, 10000);
    assert_int_equal(sc->net.connect_timeout_ns, 3 * WEFT_NS_PER_S);
    assert_int_equal(weft_scenario_statements(sc), 6);
    weft_scenario_free(sc);

    /* Defaults: name from the file, seed 1. */
    weft_diags d;
    weft_diags_init(&d);
    assert_int_equal(weft_scenario_parse("", 0, "dir/echo_chunks.scn", &sc, &d), WEFT_OK);
    assert_string_equal(weft_scenario_name(sc), "echo_chunks");
    assert_false(weft_scenario_has_seed(sc));
    assert_int_equal(weft_scenario_seed(sc), 1);
    assert_int_equal(weft_scenario_statements(sc), 0);
    weft_scenario_free(sc);
    weft_diags_clear(&d);
}

static void test_durations(void **state)
{
    (void)state;
    weft_scenario *sc = ok("advance 1ns\nadvance 10us\nadvance 250ms\nadvance 1.5s\n"
                           "advance 2m\nadvance 1h\nadvance 0.000000001s\nrun for 3s\n");
    const int64_t want[] = {1, 10000, 250000000, 1500000000, 120000000000, 3600000000000, 1,
                            3000000000};
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(stmt(sc, i)->kind, SCN_S_ADVANCE);
        assert_int_equal(stmt(sc, i)->dur_ns, want[i]);
    }
    weft_scenario_free(sc);
    bad("advance 5\n", "t.scn:1:9: a duration needs a unit (ns, us, ms, s, m, h): '5'");
    bad("advance 5parsecs\n", "t.scn:1:10: unknown duration unit 'parsecs' (ns, us, ms, s, m, h)");
    bad("advance 0.5ns\n", "t.scn:1:9: duration is not a whole number of nanoseconds");
    bad("advance -1s\n", "t.scn:1:9: a duration cannot be negative");
    bad("advance 99999999999h\n", "t.scn:1:9: duration out of range");
    bad("advance soon\n", "t.scn:1:9: expected a duration such as 250ms, got 'soon'");
    bad("advance\n", "t.scn:1:8: expected a duration such as 250ms, got end of line");
}

static void test_strings(void **state)
{
    (void)state;
    weft_scenario *sc = ok("peer p connects to localhost:7\n"
                           "p send \"HELO x\\r\\n\"\n"
                           "p send \"\\x00\\xff\\t\\\\\\\"\\0\"\n"
                           "p send \"\"\n");
    const scn_stmt *s1 = stmt(sc, 1);
    assert_int_equal(s1->kind, SCN_S_SEND);
    assert_int_equal(s1->nbytes, 8);
    assert_memory_equal(s1->bytes, "HELO x\r\n", 8);
    const scn_stmt *s2 = stmt(sc, 2);
    assert_int_equal(s2->nbytes, 6);
    assert_memory_equal(s2->bytes, "\x00\xff\t\\\"\0", 6);
    assert_int_equal(stmt(sc, 3)->nbytes, 0);
    weft_scenario_free(sc);

    bad("peer p connects to localhost:7\np send \"abc\n", "t.scn:2:8: unterminated string");
    bad("peer p connects to localhost:7\np send \"a\\qb\"\n",
        "t.scn:2:10: unknown escape '\\q' (use \\n \\r \\t \\0 \\\\ \\\" \\xHH)");
    bad("peer p connects to localhost:7\np send \"\\x4\"\n",
        "t.scn:2:9: \\x needs two hexadecimal digits");
    bad("peer p connects to localhost:7\np send \"ab\\", "t.scn:2:11: unterminated string");
}

static void test_world(void **state)
{
    (void)state;
    weft_scenario *sc = ok("host server client mx\n"
                           "listen hello on server:2000\n"
                           "listen echo on server:7 as echo1 with \"greeting=hi\"\n"
                           "listen smtp-server on mx:25 with \"reject=bob\" as mail\n"
                           "client c1 smtp-client connects to mx:25 from client with \"helo=me\"\n"
                           "client c2 echo connects to server:7\n"
                           "peer a connects to server:2000 from client\n"
                           "peer b connects to server:7\n"
                           "peer smtpd listens on mx:2525\n");
    assert_int_equal(stmt(sc, 0)->kind, SCN_S_HOST);
    assert_int_equal(stmt(sc, 2)->kind, SCN_S_HOST);
    const scn_stmt *l = stmt(sc, 3);
    assert_int_equal(l->kind, SCN_S_LISTEN);
    assert_string_equal(l->proto, "hello");
    assert_int_equal(l->proto_col, 8);
    assert_string_equal(sc->ents[l->host].name, "server");
    assert_int_equal(l->port, 2000);
    assert_int_equal(l->subj, -1);
    assert_string_equal(l->args, "");
    l = stmt(sc, 4);
    assert_string_equal(sc->ents[l->subj].name, "echo1");
    assert_int_equal(sc->ents[l->subj].kind, SCN_ENT_LISTENER);
    assert_string_equal(l->args, "greeting=hi");
    l = stmt(sc, 5);
    assert_string_equal(l->args, "reject=bob");
    assert_string_equal(sc->ents[l->subj].name, "mail");
    const scn_stmt *c = stmt(sc, 6);
    assert_int_equal(c->kind, SCN_S_CLIENT);
    assert_string_equal(sc->ents[c->subj].name, "c1");
    assert_string_equal(c->proto, "smtp-client");
    assert_string_equal(sc->ents[c->host].name, "client");
    assert_string_equal(sc->ents[c->host2].name, "mx");
    assert_int_equal(c->port, 25);
    assert_string_equal(c->args, "helo=me");
    c = stmt(sc, 7);
    assert_int_equal(c->host, -1); /* from localhost */
    const scn_stmt *pa = stmt(sc, 8);
    assert_int_equal(pa->kind, SCN_S_PEER_CONNECT);
    assert_string_equal(sc->ents[pa->host].name, "client");
    assert_string_equal(sc->ents[pa->host2].name, "server");
    assert_int_equal(pa->port, 2000);
    const scn_stmt *pl = stmt(sc, 10);
    assert_int_equal(pl->kind, SCN_S_PEER_LISTEN);
    assert_true(sc->ents[pl->subj].peer_listens);
    assert_int_equal(pl->port, 2525);
    weft_scenario_free(sc);

    bad("listen hello on nowhere:1\n", "t.scn:1:17: unknown host 'nowhere'");
    bad("listen hello on localhost\n",
        "t.scn:1:26: expected ':' and a port after the host, got end of line");
    bad("listen hello on localhost:0\n", "t.scn:1:27: port 0 out of range (1..65535)");
    bad("listen hello on localhost:70000\n", "t.scn:1:27: port 70000 out of range (1..65535)");
    bad("listen hello at localhost:1\n", "t.scn:1:14: expected 'on', got 'at'");
    bad("listen \"hello\" on localhost:1\n", "t.scn:1:8: expected a protocol name, got a string");
    bad("listen hello on localhost:1 as x as y\n",
        "t.scn:1:34: unexpected 'as' after the statement");
    bad("host a a\n", "t.scn:1:8: 'a' is already declared (as a host at line 1)");
    bad("host localhost\n", "t.scn:1:6: 'localhost' is already declared (as a host)");
    bad("host\n", "t.scn:1:5: expected at least one host name");
    bad("deferred peer\n", "t.scn:1:10: 'peer' is a reserved word and cannot name a Deferred");
    bad("peer within connects to localhost:1\n",
        "t.scn:1:6: 'within' is a reserved word and cannot name a peer");
    bad("peer p connects to localhost:1\nclient p echo connects to localhost:1\n",
        "t.scn:2:8: 'p' is already declared (as a peer at line 1)");
    bad("peer p dials localhost:1\n", "t.scn:1:8: expected 'connects' or 'listens', got 'dials'");
    /* Several peers may listen on one address (one connection each)... */
    {
        weft_scenario *shared = ok("host mx\npeer a listens on mx:25\npeer b listens on mx:25\n");
        assert_int_equal(stmt(shared, 1)->kind, SCN_S_PEER_LISTEN);
        assert_int_equal(stmt(shared, 2)->kind, SCN_S_PEER_LISTEN);
        assert_int_equal(stmt(shared, 1)->host, stmt(shared, 2)->host);
        assert_int_equal(stmt(shared, 2)->port, 25);
        assert_true(shared->ents[stmt(shared, 2)->subj].peer_listens);
        weft_scenario_free(shared);
    }
    /* ...and one peer never plays more than one. */
    bad("host mx\npeer a listens on mx:25 accepts 2\n",
        "t.scn:2:25: a listening peer plays one connection: declare one more peer listening "
        "on the same address for each further connection");
    bad("host mx laptop\npeer a listens on mx:25 from laptop\n",
        "t.scn:2:25: a listening peer has no 'from': it listens on the host of HOST:PORT");
    bad("host mx\npeer a listens on mx:25 2\n", "t.scn:2:25: unexpected '2' after the statement");
    bad("host mx\npeer a listens on mx\n", "t.scn:2:21: expected ':' and a port after the host, got end of line");
    bad("host mx\npeer a listens mx:25\n", "t.scn:2:16: expected 'on', got 'mx'");
    bad("client c echo connects localhost:1\n", "t.scn:1:24: expected 'to', got 'localhost'");
    bad("deferred d\npeer p connects to d:1\n", "t.scn:2:20: 'd' is a Deferred, not a host");
}

static void test_peer_statements(void **state)
{
    (void)state;
    weft_scenario *sc = ok("peer p connects to localhost:1\n"
                           "p expect connected within 1s\n"
                           "p expect \"Hello\" within 100ms\n"
                           "p expect bytes \"x\"\n"
                           "p expect line \"250 OK\" within 2s\n"
                           "p expect prefix \"220 \" within 2s\n"
                           "p expect match \"^2[0-9]{2} \" within 2s\n"
                           "p expect nothing within 1s\n"
                           "p expect closed within 1s\n"
                           "p expect closed with ConnectionLost within 1s\n"
                           "p expect connect-failed with ConnectionRefused within 1s\n"
                           "p expect open\n"
                           "p close\n"
                           "p abort\n");
    const scn_ekind want[] = {SCN_E_CONNECTED, SCN_E_BYTES,   SCN_E_BYTES,   SCN_E_LINE,
                              SCN_E_PREFIX,    SCN_E_MATCH,   SCN_E_NOTHING, SCN_E_CLOSED,
                              SCN_E_CLOSED,    SCN_E_CONNECT_FAILED, SCN_E_OPEN};
    for (size_t i = 0; i < 11; i++) {
        assert_int_equal(stmt(sc, i + 1)->kind, SCN_S_EXPECT);
        assert_int_equal(stmt(sc, i + 1)->ekind, want[i]);
    }
    assert_true(stmt(sc, 1)->has_within);
    assert_int_equal(stmt(sc, 1)->within_ns, WEFT_NS_PER_S);
    assert_false(stmt(sc, 3)->has_within);
    assert_true(stmt(sc, 6)->has_regex);
    assert_null(stmt(sc, 8)->type);
    assert_string_equal(stmt(sc, 9)->type, "ConnectionLost");
    assert_string_equal(stmt(sc, 10)->type, "ConnectionRefused");
    assert_int_equal(stmt(sc, 12)->kind, SCN_S_CLOSE);
    assert_int_equal(stmt(sc, 13)->kind, SCN_S_ABORT);
    weft_scenario_free(sc);

    const char *pre = "peer p connects to localhost:1\n";
    char buf[256];
#define BAD_AFTER(line, want)                       \
    do {                                            \
        snprintf(buf, sizeof buf, "%s%s", pre, line); \
        bad(buf, want);                             \
    } while (0)
    {
        /* The message after the position is the C library's. */
        weft_diags d;
        weft_scenario *sc2;
        assert_int_equal(parse("peer p connects to localhost:1\np expect match \"(\" within 1s\n",
                               &sc2, &d),
                         WEFT_EPARSE);
        assert_int_equal(d.count, 1);
        char *s = weft_diag_format(&d.items[0]);
        assert_memory_equal(s, "t.scn:2:16: bad regular expression: ", 36);
        weft_free(s);
        weft_diags_clear(&d);
    }
    BAD_AFTER("p expect nothing\n", "t.scn:2:17: 'expect nothing' needs 'within DURATION'");
    BAD_AFTER("p expect open within 1s\n", "t.scn:2:15: 'open' is checked at once and takes no deadline");
    BAD_AFTER("p expect value 5\n",
              "t.scn:2:10: cannot expect 'value' of a peer (a string, bytes, line, prefix, match, "
              "nothing, connected, closed, connect-failed, open, eof)");
    BAD_AFTER("p expect line within 1s\n",
              "t.scn:2:15: expected the expected bytes (a quoted string), got 'within'");
    BAD_AFTER("p send 5\n", "t.scn:2:8: expected the bytes to send (a quoted string), got '5'");
    BAD_AFTER("p fire\n",
              "t.scn:2:3: expected send, shutdown, close, abort or expect after peer 'p', got 'fire'");
    BAD_AFTER("p expect \"x\" within\n",
              "t.scn:2:20: expected a duration such as 250ms, got end of line");
    BAD_AFTER("p close now\n", "t.scn:2:9: unexpected 'now' after the statement");
    BAD_AFTER("p shutdown now\n", "t.scn:2:12: unexpected 'now' after the statement");
    BAD_AFTER("p shutdown \"x\"\n", "t.scn:2:12: unexpected a string after the statement");
    BAD_AFTER("p expect eof \"x\"\n", "t.scn:2:14: unexpected a string after the statement");
    BAD_AFTER("p expect eof within\n", "t.scn:2:20: expected a duration such as 250ms, got end of line");
    BAD_AFTER("p expect eof with ConnectionDone\n", "t.scn:2:14: unexpected 'with' after the statement");
    BAD_AFTER("client c echo connects to localhost:1\nc shutdown\n",
              "t.scn:3:3: expected close, abort or expect after client 'c', got 'shutdown'");
    BAD_AFTER("client c echo connects to localhost:1\nc expect eof within 1s\n",
              "t.scn:3:10: cannot expect 'eof' of a client (connected, closed, connect-failed, open)");
    BAD_AFTER("deferred d\nd expect eof\n",
              "t.scn:3:10: cannot expect 'eof' of a Deferred (value, succeeded, failure, fired, "
              "pending, values, list)");
    BAD_AFTER("p expect closed with \"x\"\n", "t.scn:2:22: expected a reason type, got a string");
#undef BAD_AFTER
}

/* Half-close: `P shutdown` and `P expect eof`; a peer is half-close aware
 * exactly when some `expect eof` names it. */
static void test_half_close(void **state)
{
    (void)state;
    weft_scenario *sc = ok("peer p connects to localhost:1\npeer q connects to localhost:1\n"
                           "p shutdown\nq expect eof within 1s\nat 2s: q shutdown\nq expect eof\n");
    assert_int_equal(stmt(sc, 2)->kind, SCN_S_SHUTDOWN);
    assert_int_equal(stmt(sc, 2)->subj, stmt(sc, 0)->subj);
    assert_int_equal(stmt(sc, 3)->kind, SCN_S_EXPECT);
    assert_int_equal(stmt(sc, 3)->ekind, SCN_E_EOF);
    assert_true(stmt(sc, 3)->has_within);
    assert_int_equal(stmt(sc, 3)->within_ns, WEFT_NS_PER_S);
    assert_int_equal(stmt(sc, 4)->kind, SCN_S_SHUTDOWN);
    assert_int_equal(stmt(sc, 4)->timing, SCN_T_AT);
    assert_false(stmt(sc, 5)->has_within);
    assert_false(sc->ents[stmt(sc, 0)->subj].peer_eof); /* p shuts down, never expects eof */
    assert_true(sc->ents[stmt(sc, 1)->subj].peer_eof);
    weft_scenario_free(sc);
    /* A peer, a client and a Deferred may be called shutdown or eof. */
    sc = ok("peer shutdown connects to localhost:1\npeer eof connects to localhost:1\n"
            "shutdown shutdown\neof expect eof within 1s\n");
    assert_int_equal(stmt(sc, 2)->kind, SCN_S_SHUTDOWN);
    assert_int_equal(stmt(sc, 3)->ekind, SCN_E_EOF);
    weft_scenario_free(sc);
    bad("peer p connects to localhost:1\np shutdown\np shutdown x\n",
        "t.scn:3:12: unexpected 'x' after the statement");
    bad("host h\nh shutdown\n",
        "t.scn:2:1: 'h' is a host: a statement cannot start with it (use crash, restart, partition...)");
}

static void test_client_and_listener(void **state)
{
    (void)state;
    weft_scenario *sc = ok("client c echo connects to localhost:7\n"
                           "c expect connected within 1s\n"
                           "c expect open\n"
                           "c close\n"
                           "c expect closed with ConnectionDone within 1s\n"
                           "c abort\n"
                           "listen echo on localhost:7 as l\n"
                           "l stop\n");
    assert_int_equal(stmt(sc, 7)->kind, SCN_S_STOP);
    weft_scenario_free(sc);
    bad("client c echo connects to localhost:7\nc send \"x\"\n",
        "t.scn:2:3: expected close, abort or expect after client 'c', got 'send'");
    bad("client c echo connects to localhost:7\nc expect \"x\"\n",
        "t.scn:2:10: cannot expect a string of a client (connected, closed, connect-failed, open)");
    bad("listen echo on localhost:7 as l\nl close\n",
        "t.scn:2:3: expected stop or expect after listener 'l', got 'close'");
}

static void test_time(void **state)
{
    (void)state;
    weft_scenario *sc = ok("deferred d\n"
                           "at 2s: d fire 1\n"
                           "after 100ms: d cancel\n"
                           "advance 1s\n"
                           "run until quiet\n"
                           "run until 5s\n"
                           "run for 10ms\n"
                           "at 1.5s: host late\n");
    assert_int_equal(stmt(sc, 1)->kind, SCN_S_FIRE);
    assert_int_equal(stmt(sc, 1)->timing, SCN_T_AT);
    assert_int_equal(stmt(sc, 1)->time_ns, 2 * WEFT_NS_PER_S);
    assert_int_equal(stmt(sc, 2)->timing, SCN_T_AFTER);
    assert_int_equal(stmt(sc, 2)->time_ns, 100 * WEFT_NS_PER_MS);
    assert_int_equal(stmt(sc, 3)->kind, SCN_S_ADVANCE);
    assert_int_equal(stmt(sc, 4)->kind, SCN_S_QUIET);
    assert_int_equal(stmt(sc, 5)->kind, SCN_S_RUN_UNTIL);
    assert_int_equal(stmt(sc, 5)->dur_ns, 5 * WEFT_NS_PER_S);
    assert_int_equal(stmt(sc, 6)->kind, SCN_S_ADVANCE);
    assert_int_equal(stmt(sc, 7)->kind, SCN_S_HOST);
    assert_int_equal(stmt(sc, 7)->timing, SCN_T_AT);
    weft_scenario_free(sc);

    bad("at 2s d fire\n", "t.scn:1:7: expected ':' after the time, got 'd'");
    bad("at 2s:\n", "t.scn:1:7: expected a statement after ':'");
    bad("at 1s: at 2s: advance 1s\n", "t.scn:1:8: at/after cannot be nested");
    bad("at 1s: advance 1s\n", "t.scn:1:8: advance cannot be scheduled with at/after");
    bad("deferred d\nafter 1s: d expect pending\n",
        "t.scn:2:13: expect cannot be scheduled with at/after");
    bad("at 1s: seed 4\n", "t.scn:1:8: seed cannot be scheduled with at/after");
    bad("run until later\n", "t.scn:1:11: expected 'quiet' or a time after 'run until', got 'later'");
    bad("run quietly\n", "t.scn:1:5: expected 'until', got 'quietly'");
}

static void test_faults(void **state)
{
    (void)state;
    weft_scenario *sc = ok("host a b\n"
                           "reset a b\nreset a\npartition a b\nheal a b\nstall b a\nrelease b a\n"
                           "crash a\nrestart a\nat 3s: partition a b\n");
    const scn_kind want[] = {SCN_S_RESET, SCN_S_RESET, SCN_S_PARTITION, SCN_S_HEAL, SCN_S_STALL,
                             SCN_S_RELEASE, SCN_S_CRASH, SCN_S_RESTART, SCN_S_PARTITION};
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(stmt(sc, i + 2)->kind, want[i]);
    assert_int_equal(stmt(sc, 3)->host2, -1);
    assert_string_equal(sc->ents[stmt(sc, 6)->host].name, "b");
    assert_string_equal(sc->ents[stmt(sc, 6)->host2].name, "a");
    weft_scenario_free(sc);
    bad("host a\npartition a\n", "t.scn:2:12: expected a host name, got end of line");
    bad("host a\npartition a a\n", "t.scn:2:13: the two hosts must differ");
    bad("host a b\ncrash a b\n", "t.scn:2:9: unexpected 'b' after the statement");
    bad("crash mars\n", "t.scn:1:7: unknown host 'mars'");
}

static void test_deferreds(void **state)
{
    (void)state;
    weft_scenario *sc = ok("deferred a b c\n"
                           "a then add 1\n"
                           "a then value \"text\"\n"
                           "a then fail KeyError \"no key\"\n"
                           "a catch trap KeyError\n"
                           "a catch recover 0\n"
                           "a both record \"seen\"\n"
                           "a then return b else recover none\n"
                           "a then pass\n"
                           "a fire 5\n"
                           "b fail ValueError \"bad\"\n"
                           "b fail ValueError\n"
                           "c cancel\nc pause\nc unpause\nc timeout 5s\n"
                           "c fire\n"
                           "list l of a b c consume-errors fire-on-one-errback\n"
                           "gather g of a b\n"
                           "list empty of\n"
                           "later t 2s \"done\"\n"
                           "later t2 1ms\n");
    const scn_stmt *s = stmt(sc, 3);
    assert_int_equal(s->kind, SCN_S_ADD_HANDLERS);
    assert_int_equal(s->cb.op, SCN_H_ADD);
    assert_int_equal(s->cb.v.num, 1);
    assert_int_equal(s->eb.op, SCN_H_PASS);
    s = stmt(sc, 4);
    assert_int_equal(s->cb.op, SCN_H_VALUE);
    assert_int_equal(s->cb.v.kind, SCN_V_STR);
    assert_string_equal(s->cb.v.str, "text");
    s = stmt(sc, 5);
    assert_int_equal(s->cb.op, SCN_H_FAIL);
    assert_string_equal(s->cb.type, "KeyError");
    assert_string_equal(s->cb.msg, "no key");
    s = stmt(sc, 6);
    assert_int_equal(s->cb.op, SCN_H_PASS);
    assert_int_equal(s->eb.op, SCN_H_TRAP);
    assert_string_equal(s->eb.type, "KeyError");
    s = stmt(sc, 7);
    assert_int_equal(s->eb.op, SCN_H_RECOVER);
    assert_int_equal(s->eb.v.kind, SCN_V_INT);
    s = stmt(sc, 8);
    assert_int_equal(s->cb.op, SCN_H_RECORD);
    assert_int_equal(s->eb.op, SCN_H_RECORD);
    assert_string_equal(s->cb.label, "seen");
    s = stmt(sc, 9);
    assert_int_equal(s->cb.op, SCN_H_RETURN);
    assert_string_equal(sc->ents[s->cb.target].name, "b");
    assert_int_equal(s->eb.op, SCN_H_RECOVER);
    assert_int_equal(s->eb.v.kind, SCN_V_NONE);
    assert_int_equal(stmt(sc, 10)->cb.op, SCN_H_PASS);
    s = stmt(sc, 11);
    assert_int_equal(s->kind, SCN_S_FIRE);
    assert_int_equal(s->value.num, 5);
    s = stmt(sc, 12);
    assert_int_equal(s->kind, SCN_S_FAIL);
    assert_string_equal(s->type, "ValueError");
    assert_string_equal(s->msg, "bad");
    assert_string_equal(stmt(sc, 13)->msg, "");
    assert_int_equal(stmt(sc, 14)->kind, SCN_S_CANCEL);
    assert_int_equal(stmt(sc, 15)->kind, SCN_S_PAUSE);
    assert_int_equal(stmt(sc, 16)->kind, SCN_S_UNPAUSE);
    assert_int_equal(stmt(sc, 17)->kind, SCN_S_TIMEOUT);
    assert_int_equal(stmt(sc, 17)->dur_ns, 5 * WEFT_NS_PER_S);
    assert_int_equal(stmt(sc, 18)->value.kind, SCN_V_NONE);
    s = stmt(sc, 19);
    assert_int_equal(s->kind, SCN_S_LIST);
    assert_int_equal(s->nmembers, 3);
    assert_int_equal(s->flags, WEFT_DLIST_CONSUME_ERRORS | WEFT_DLIST_FIRE_ON_ONE_ERRBACK);
    assert_int_equal(sc->ents[s->subj].dkind, SCN_D_LIST);
    s = stmt(sc, 20);
    assert_int_equal(s->kind, SCN_S_GATHER);
    assert_int_equal(sc->ents[s->subj].dkind, SCN_D_GATHER);
    assert_int_equal(stmt(sc, 21)->nmembers, 0);
    s = stmt(sc, 22);
    assert_int_equal(s->kind, SCN_S_LATER);
    assert_int_equal(s->dur_ns, 2 * WEFT_NS_PER_S);
    assert_string_equal(s->value.str, "done");
    assert_int_equal(stmt(sc, 23)->value.kind, SCN_V_NONE);
    weft_scenario_free(sc);

    bad("deferred d\nd then recover 1\n",
        "t.scn:2:8: 'recover' works on a Failure: use it with catch, both or else");
    bad("deferred d\nd catch add 1\n", "t.scn:2:9: 'add' works on a value: use it with then or both");
    bad("deferred d\nd then multiply 2\n",
        "t.scn:2:8: unknown handler 'multiply' (add, value, fail, return, record, recover, trap, pass)");
    bad("deferred d\nd then return e\n", "t.scn:2:15: unknown Deferred 'e'");
    bad("deferred d\nd then add x\n", "t.scn:2:12: expected an integer to add, got 'x'");
    bad("deferred d\nd then add 1.5\n", "t.scn:2:12: expected an integer to add, got '1.5'");
    bad("deferred d\nd fire 1 2\n", "t.scn:2:10: unexpected '2' after the statement");
    bad("deferred d\nd fire x\n",
        "t.scn:2:8: expected a value (an integer, a string or none), got 'x'");
    bad("deferred d\nd fail \"x\"\n", "t.scn:2:8: expected a Failure type, got a string");
    bad("deferred d\nd explode\n",
        "t.scn:2:3: expected then, catch, both, fire, fail, cancel, pause, unpause, timeout or "
        "expect after Deferred 'd', got 'explode'");
    bad("deferred d\nlist l of d x\n", "t.scn:2:13: unknown Deferred 'x'");
    bad("deferred d\nlist l of d consume-errors d\n", "t.scn:2:28: options come after the members");
    bad("deferred d\ngather g of d fire-on-one-callback\n",
        "t.scn:2:15: a gather takes only the consume-errors option");
    bad("deferred d\nlist d of d\n", "t.scn:2:6: 'd' is already declared (as a Deferred at line 1)");
    bad("list l d\n", "t.scn:1:8: expected 'of', got 'd'");
    bad("deferred\n", "t.scn:1:9: expected at least one Deferred name");
    bad("later t soon\n", "t.scn:1:9: expected a duration such as 250ms, got 'soon'");
}

static void test_deferred_expectations(void **state)
{
    (void)state;
    weft_scenario *sc = ok("deferred a b\n"
                           "a expect value 5\n"
                           "a expect value \"s\" within 1s\n"
                           "a expect value none\n"
                           "a expect succeeded within 2s\n"
                           "a expect failure KeyError\n"
                           "a expect failure SmtpRejected \"550\" within 1s\n"
                           "a expect pending\n"
                           "a expect fired within 1s\n"
                           "gather g of a b\n"
                           "g expect values 1 \"two\" none within 1s\n"
                           "list l of a b\n"
                           "l expect list ok 1 fail KeyError unfired\n"
                           "expect order \"first\" \"second\"\n"
                           "expect order\n");
    assert_int_equal(stmt(sc, 2)->ekind, SCN_E_VALUE);
    assert_int_equal(stmt(sc, 2)->value.num, 5);
    assert_true(stmt(sc, 3)->has_within);
    assert_int_equal(stmt(sc, 5)->ekind, SCN_E_SUCCEEDED);
    assert_int_equal(stmt(sc, 6)->ekind, SCN_E_FAILURE);
    assert_string_equal(stmt(sc, 7)->msg, "550");
    assert_int_equal(stmt(sc, 8)->ekind, SCN_E_PENDING);
    assert_int_equal(stmt(sc, 9)->ekind, SCN_E_FIRED);
    assert_true(stmt(sc, 9)->has_within);
    const scn_stmt *s = stmt(sc, 11);
    assert_int_equal(s->ekind, SCN_E_VALUES);
    assert_int_equal(s->nitems, 3);
    assert_int_equal(s->items[1].v.kind, SCN_V_STR);
    assert_true(s->has_within);
    s = stmt(sc, 13);
    assert_int_equal(s->ekind, SCN_E_LIST);
    assert_int_equal(s->nitems, 3);
    assert_int_equal(s->items[0].state, 1);
    assert_int_equal(s->items[1].state, 2);
    assert_string_equal(s->items[1].type, "KeyError");
    assert_int_equal(s->items[2].state, 0);
    s = stmt(sc, 14);
    assert_int_equal(s->kind, SCN_S_EXPECT_ORDER);
    assert_int_equal(s->nlabels, 2);
    assert_string_equal(s->labels[1], "second");
    assert_int_equal(stmt(sc, 15)->nlabels, 0);
    weft_scenario_free(sc);

    bad("deferred a\na expect values 1\n", "t.scn:2:10: 'values' applies to a gather; 'a' is not one");
    bad("deferred a\na expect list ok 1\n",
        "t.scn:2:10: 'list' applies to a Deferred list; 'a' is not one");
    bad("deferred a\nlist l of a\nl expect list maybe\n",
        "t.scn:3:15: expected 'ok VALUE', 'fail TYPE' or 'unfired', got 'maybe'");
    bad("deferred a\na expect pending within 1s\n",
        "t.scn:2:18: 'pending' is checked at once and takes no deadline");
    bad("deferred a\na expect connected\n",
        "t.scn:2:10: cannot expect 'connected' of a Deferred (value, succeeded, failure, fired, pending, "
        "values, list)");
    bad("expect chaos\n", "t.scn:1:8: expected 'order' or a name before 'expect', got 'chaos'");
    bad("expect order first\n", "t.scn:1:14: expected a label (a quoted string), got 'first'");
}

static void test_call(void **state)
{
    (void)state;
    weft_scenario *sc = ok("host laptop mx\n"
                           "call smtp.send from laptop mx:25 \"a@x\" \"b@y\" \"hi\" 2s 7 word as m\n"
                           "call tick\n");
    const scn_stmt *s = stmt(sc, 2);
    assert_int_equal(s->kind, SCN_S_CALL);
    assert_string_equal(s->proto, "smtp.send");
    assert_int_equal(s->proto_col, 6);
    assert_string_equal(sc->ents[s->host].name, "laptop");
    assert_int_equal(s->argc, 7);
    assert_int_equal(s->argv[0].kind, WEFT_ARG_WORD);
    assert_string_equal(s->argv[0].str, "mx:25");
    assert_int_equal(s->argv[1].kind, WEFT_ARG_STRING);
    assert_string_equal(s->argv[3].str, "hi");
    assert_int_equal(s->argv[4].kind, WEFT_ARG_DURATION);
    assert_int_equal(s->argv[4].num, 2 * WEFT_NS_PER_S);
    assert_string_equal(s->argv[4].str, "2s");
    assert_int_equal(s->argv[5].kind, WEFT_ARG_INT);
    assert_int_equal(s->argv[5].num, 7);
    assert_int_equal(s->argv[6].kind, WEFT_ARG_WORD);
    assert_string_equal(sc->ents[s->subj].name, "m");
    assert_int_equal(sc->ents[s->subj].dkind, SCN_D_CALL);
    s = stmt(sc, 3);
    assert_int_equal(s->argc, 0);
    assert_int_equal(s->subj, -1);
    weft_scenario_free(sc);
    bad("call \"x\"\n", "t.scn:1:6: expected an action name, got a string");
    bad("call a.b x as\n", "t.scn:1:14: expected a name for the new Deferred, got end of line");
    bad("call a.b as m extra\n", "t.scn:1:15: unexpected 'extra' after the statement");
    bad("call a.b 5parsecs\n", "t.scn:1:11: unknown duration unit 'parsecs' (ns, us, ms, s, m, h)");
}

/* -------------------------------------------------------------- errors */

static void test_lexical_errors(void **state)
{
    (void)state;
    bad("advance 1s ; advance 2s\n", "t.scn:1:12: unexpected character ';'");
    bad("advance 1s\x01\n", "t.scn:1:11: unexpected byte 0x01");
    bad("\xc3\xa9t\xc3\xa9\n", "t.scn:1:1: unexpected byte 0xc3");
    bad("42\n", "t.scn:1:1: expected a statement, got '42'");
    bad("\"x\"\n", "t.scn:1:1: expected a statement, got a string");
    bad("frobnicate\n", "t.scn:1:1: unknown statement or name 'frobnicate'");
    bad_n("advance 1s\0\n", 12, "t.scn:1:11: unexpected byte 0x00");
}

static void test_settings_errors(void **state)
{
    (void)state;
    bad("seed 1\nseed 2\n", "t.scn:2:1: the seed is already set (at line 1)");
    bad("seed -1\n", "t.scn:1:6: expected a seed (a non-negative integer), got '-1'");
    bad("seed 99999999999999999999999\n", "t.scn:1:6: number out of range");
    bad("scenario a\nscenario b\n", "t.scn:2:1: the scenario name is already set (at line 1)");
    bad("scenario\n", "t.scn:1:9: expected the scenario's name, got end of line");
    bad("limit events 0\n", "t.scn:1:7: limit events must be at least 1");
    bad("limit time 0s\n", "t.scn:1:12: limit time must be more than 0");
    bad("limit memory 4\n", "t.scn:1:7: expected 'events' or 'time' after limit, got 'memory'");
    bad("network latency 5ms..1ms\n", "t.scn:1:17: latency range is empty (max below min)");
    bad("network latency 1ms\nnetwork latency 2ms\n", "t.scn:2:9: latency is already set (at line 1)");
    bad("network speed 5\n",
        "t.scn:1:9: unknown network setting 'speed' (latency, chunk, coalesce, reset, stall, "
        "stall-max, refuse, connect-timeout)");
    bad("network reset 5\n", "t.scn:1:15: a rate needs a unit: ppm or % ('5')");
    bad("network reset 101%\n", "t.scn:1:15: a rate is at most 1000000ppm (100%)");
    bad("network\n",
        "t.scn:1:8: expected a network setting (latency, chunk, coalesce, reset, stall, stall-max, "
        "refuse, connect-timeout)");
    bad("jitter 1ms\njitter 2ms\n", "t.scn:2:1: jitter is already set (at line 1)");
    weft_scenario *sc = ok("network coalesce off chunk 0\n");
    assert_false(sc->net.coalesce);
    weft_scenario_free(sc);
}

static void test_names(void **state)
{
    (void)state;
    bad("deferred d\npeer d connects to localhost:1\n",
        "t.scn:2:6: 'd' is already declared (as a Deferred at line 1)");
    bad("d fire\n", "t.scn:1:1: unknown statement or name 'd'");
    bad("host localhost\n", "t.scn:1:6: 'localhost' is already declared (as a host)");
    bad("host a\na fire\n",
        "t.scn:2:1: 'a' is a host: a statement cannot start with it (use crash, restart, "
        "partition...)");
    char name[80];
    memset(name, 'n', 64);
    name[64] = '\0';
    char text[128];
    snprintf(text, sizeof text, "deferred %s\n", name);
    bad(text, "t.scn:1:10: name longer than 63 bytes");
    /* A name used before its declaration is unknown. */
    bad("deferred a\na then return b\ndeferred b\n", "t.scn:2:15: unknown Deferred 'b'");
}

static void test_more_errors(void **state)
{
    (void)state;
    bad("deferred d\nd fire \"\\\x01\"\n",
          "t.scn:2:9: unknown escape (use \\n \\r \\t \\0 \\\\ \\\" \\xHH)");
    bad("deferred d\nd fire 99999999999999999999\n", "t.scn:2:8: number out of range");
    bad("deferred d\nd fire 9223372036854775808\n", "t.scn:2:8: number out of range");
    bad("advance 99999999999999999999999s\n", "t.scn:1:9: duration out of range");
    bad("advance :\n", "t.scn:1:9: expected a duration such as 250ms, got ':'");
    bad("advance ..\n", "t.scn:1:9: expected a duration such as 250ms, got '..'");
    bad("network reset soon\n", "t.scn:1:15: expected a rate such as 100ppm or 0.5%, got 'soon'");
    bad("network reset 0.00001%\n", "t.scn:1:15: a rate must be a whole number of ppm");
    bad("network chunk 2000000000\n", "t.scn:1:15: chunk size too large");
    bad("list 5 of\n", "t.scn:1:6: expected a name for the new Deferred, got '5'");
    bad("call a.b :\n", "t.scn:1:10: unexpected ':' in the action's arguments");
    bad("deferred d\nd then \"x\"\n",
        "t.scn:2:8: expected a handler (add, value, fail, return, record, recover, trap, pass), "
        "got a string");
    bad("peer p connects to localhost:1\np expect\n", "t.scn:2:9: expected what to expect, got end of line");
    bad("peer p connects to localhost:1\np expect match \"a\\0\"\n",
        "t.scn:2:16: a regular expression cannot contain a NUL byte");
    char text[256];
    char name[80];
    memset(name, 'p', 64);
    name[64] = '\0';
    snprintf(text, sizeof text, "listen %s on localhost:1\n", name);
    bad(text, "t.scn:1:8: name longer than 63 bytes");
    snprintf(text, sizeof text, "call %s\n", name);
    bad(text, "t.scn:1:6: name longer than 63 bytes");
    snprintf(text, sizeof text, "deferred d\nd fail %s\n", name);
    bad(text, "t.scn:2:8: name longer than 63 bytes");
    weft_scenario *sc = ok("network coalesce on latency 2ms\n");
    assert_true(sc->net.coalesce);
    assert_int_equal(sc->net.latency_min_ns, 2 * WEFT_NS_PER_MS);
    assert_int_equal(sc->net.latency_max_ns, 2 * WEFT_NS_PER_MS);
    weft_scenario_free(sc);
}

/* The statement and name limits are positioned errors too. */
static void test_count_limits(void **state)
{
    (void)state;
    size_t n = WEFT_SCENARIO_STATEMENTS_MAX + 1;
    size_t len = n * 12;
    char *text = malloc(len + 1);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * 12, "advance 1ns\n", 12);
    text[len] = '\0';
    char want[128];
    snprintf(want, sizeof want, "t.scn:%zu:1: too many statements (at most %u)", n,
             WEFT_SCENARIO_STATEMENTS_MAX);
    bad_n(text, len, want);
    free(text);

    /* 10,001 names: one host statement each. */
    size_t names = 10000;
    text = malloc(names * 16 + 1);
    size_t o = 0;
    for (size_t i = 0; i < names; i++)
        o += (size_t)sprintf(text + o, "host h%zu\n", i);
    snprintf(want, sizeof want, "t.scn:%zu:6: too many names (at most 10000)", names);
    bad_n(text, o, want); /* localhost is the first name */
    free(text);
}

static void test_many_errors_one_pass(void **state)
{
    (void)state;
    bad("host a\n"
        "advance 5\n"              /* 2 */
        "crash b\n"                /* 3 */
        "deferred d\n"
        "d fire x\n"               /* 5 */
        "p send \"x\"\n"           /* 6 */
        "network latency 9ms..1ms\n", /* 7 */
        "t.scn:2:9: a duration needs a unit (ns, us, ms, s, m, h): '5'\n"
        "t.scn:3:7: unknown host 'b'\n"
        "t.scn:5:8: expected a value (an integer, a string or none), got 'x'\n"
        "t.scn:6:1: unknown statement or name 'p'\n"
        "t.scn:7:17: latency range is empty (max below min)");
}

static void test_line_limits(void **state)
{
    (void)state;
    size_t n = WEFT_SCENARIO_LINE_MAX + 10;
    char *text = malloc(n + 64);
    assert_non_null(text);
    /* A comment line exactly at the limit is fine; one byte more is not. */
    memset(text, ' ', WEFT_SCENARIO_LINE_MAX);
    text[0] = '#';
    strcpy(text + WEFT_SCENARIO_LINE_MAX, "\nadvance 1s\n");
    weft_scenario *sc = ok(text);
    assert_int_equal(weft_scenario_statements(sc), 1);
    weft_scenario_free(sc);
    memset(text, ' ', WEFT_SCENARIO_LINE_MAX + 1);
    text[0] = '#';
    strcpy(text + WEFT_SCENARIO_LINE_MAX + 1, "\nadvance 5\n");
    char want[200];
    snprintf(want, sizeof want,
             "t.scn:1:%u: line longer than %u bytes\n"
             "t.scn:2:9: a duration needs a unit (ns, us, ms, s, m, h): '5'",
             WEFT_SCENARIO_LINE_MAX + 1, WEFT_SCENARIO_LINE_MAX);
    bad(text, want);
    free(text);

    /* CRLF line ends and no final newline. */
    sc = ok("seed 3\r\nadvance 1s\r\nadvance 2s");
    assert_int_equal(weft_scenario_statements(sc), 3);
    assert_int_equal(stmt(sc, 2)->dur_ns, 2 * WEFT_NS_PER_S);
    weft_scenario_free(sc);
}

static void test_diag_list_bounded(void **state)
{
    (void)state;
    /* 300 bad lines: at most WEFT_SCENARIO_DIAGS_MAX kept, truncated set. */
    size_t n = 300;
    char *text = malloc(n * 8 + 1);
    assert_non_null(text);
    text[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(text, "bogus!\n");
    weft_diags d;
    weft_scenario *sc;
    assert_int_equal(parse(text, &sc, &d), WEFT_EPARSE);
    assert_int_equal(d.count, WEFT_SCENARIO_DIAGS_MAX);
    assert_true(d.truncated);
    assert_int_equal(d.items[0].line, 1);
    assert_int_equal(d.items[99].line, 100);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(weft_diags_write(&d, f), WEFT_OK);
    long size = ftell(f);
    assert_true(size > 100 * 20);
    fclose(f);
    weft_diags_clear(&d);
    assert_int_equal(d.count, 0);
    free(text);
    /* NULL diags are allowed: errors are only counted. */
    assert_int_equal(weft_scenario_parse("x\n", 2, NULL, &sc, NULL), WEFT_EPARSE);
    assert_null(sc);
}

static void test_diag_format(void **state)
{
    (void)state;
    weft_diags d;
    weft_diags_init(&d);
    assert_int_equal(weft_diags_add(&d, "f.scn", 3, 4, "late %d", 1), WEFT_OK);
    assert_int_equal(weft_diags_add(&d, "f.scn", 1, 9, "early"), WEFT_OK);
    assert_int_equal(weft_diags_add(&d, NULL, 0, 0, "whole file"), WEFT_OK);
    assert_int_equal(d.count, 3);
    char *s = weft_diag_format(&d.items[0]);
    assert_string_equal(s, "<input>: whole file");
    weft_free(s);
    s = weft_diag_format(&d.items[1]);
    assert_string_equal(s, "f.scn:1:9: early");
    weft_free(s);
    s = weft_diag_format(&d.items[2]);
    assert_string_equal(s, "f.scn:3:4: late 1");
    weft_free(s);
    weft_diags_clear(&d);
}

static void test_load(void **state)
{
    (void)state;
    weft_diags d;
    weft_diags_init(&d);
    weft_scenario *sc = (weft_scenario *)1;
    assert_int_equal(weft_scenario_load("/nonexistent/x.scn", &sc, &d), WEFT_EIO);
    assert_null(sc);
    assert_int_equal(d.count, 1);
    char *s = weft_diag_format(&d.items[0]);
    assert_string_equal(s, "/nonexistent/x.scn: cannot read: No such file or directory");
    weft_free(s);
    weft_diags_clear(&d);

    char path[] = "/tmp/weft_scn_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("seed 9\nadvance oops\n", f);
    fclose(f);
    assert_int_equal(weft_scenario_load(path, &sc, &d), WEFT_EPARSE);
    s = weft_diag_format(&d.items[0]);
    char want[128];
    snprintf(want, sizeof want, "%s:2:9: expected a duration such as 250ms, got 'oops'", path);
    assert_string_equal(s, want);
    weft_free(s);
    weft_diags_clear(&d);
    remove(path);
}

static void test_oom(void **state)
{
    (void)state;
    const char *text = "scenario x\nhost a b\ndeferred d e\nd then add 1\n"
                       "list l of d e\npeer p connects to a:1\np expect match \"x+\" within 1s\n"
                       "call act from a x:1 \"s\" as c\nbogus\n";
    /* Fail each allocation in turn: never a crash or leak, and the result is
     * either ENOMEM or the same EPARSE. */
    for (long n = 0; n < 200; n++) {
        weft_diags d;
        weft_diags_init(&d);
        weft_scenario *sc = NULL;
        weft_alloc_fail_after(n);
        int rc = weft_scenario_parse(text, strlen(text), "t.scn", &sc, &d);
        weft_alloc_fail_after(-1);
        assert_true(rc == WEFT_ENOMEM || rc == WEFT_EPARSE);
        assert_null(sc);
        weft_diags_clear(&d);
    }
}

/* ------------------------------------------------------------- checker */

static weft_factory *make_nothing(weft_reactor *r, const char *args, void *ctx, char *err,
                                  size_t errlen)
{
    (void)r;
    (void)args;
    (void)ctx;
    snprintf(err, errlen, "never");
    return NULL;
}

static int act_nothing(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                       weft_deferred **out, char *err, size_t errlen)
{
    (void)w;
    (void)argc;
    (void)argv;
    (void)ctx;
    (void)out;
    snprintf(err, errlen, "never");
    return WEFT_EINVAL;
}

static void test_registry_and_check(void **state)
{
    (void)state;
    weft_registry *reg = weft_registry_new();
    assert_non_null(reg);
    assert_int_equal(weft_registry_add_protocol(reg, "echo", make_nothing, NULL, NULL), WEFT_OK);
    assert_int_equal(weft_registry_add_protocol(reg, "echo", make_nothing, NULL, NULL), WEFT_EEXIST);
    assert_int_equal(weft_registry_add_protocol(reg, "9lives", make_nothing, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_registry_add_protocol(reg, "bad name", make_nothing, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_registry_add_protocol(reg, "", make_nothing, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_registry_add_protocol(reg, "x", NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_registry_add_action(reg, "mail.send", act_nothing, NULL), WEFT_OK);
    assert_int_equal(weft_registry_add_action(reg, "mail.send", act_nothing, NULL), WEFT_EEXIST);
    /* Protocols and actions are separate namespaces. */
    assert_int_equal(weft_registry_add_action(reg, "echo", act_nothing, NULL), WEFT_OK);
    assert_true(weft_registry_has_protocol(reg, "echo"));
    assert_false(weft_registry_has_protocol(reg, "mail.send"));
    assert_true(weft_registry_has_action(reg, "mail.send"));
    assert_int_equal(weft_registry_protocol_count(reg), 1);
    assert_string_equal(weft_registry_protocol_name(reg, 0), "echo");
    assert_null(weft_registry_protocol_name(reg, 1));
    assert_int_equal(weft_registry_action_count(reg), 2);
    assert_string_equal(weft_registry_action_name(reg, 1), "echo");

    weft_scenario *sc = ok("host h\n"
                           "listen echo on h:1\n"
                           "listen ehco on h:2\n"
                           "client c nosuch connects to h:1\n"
                           "call mail.send h:1\n"
                           "call mail.sned h:1 as d\n");
    weft_diags d;
    weft_diags_init(&d);
    assert_int_equal(weft_scenario_check(sc, reg, &d), WEFT_ENOTFOUND);
    assert_int_equal(d.count, 3);
    char *s = weft_diag_format(&d.items[0]);
    assert_string_equal(s, "t.scn:3:8: unknown protocol 'ehco'");
    weft_free(s);
    s = weft_diag_format(&d.items[1]);
    assert_string_equal(s, "t.scn:4:10: unknown protocol 'nosuch'");
    weft_free(s);
    s = weft_diag_format(&d.items[2]);
    assert_string_equal(s, "t.scn:6:6: unknown action 'mail.sned'");
    weft_free(s);
    weft_diags_clear(&d);
    weft_scenario_free(sc);

    sc = ok("listen echo on localhost:1\n");
    assert_int_equal(weft_scenario_check(sc, reg, &d), WEFT_OK);
    assert_int_equal(d.count, 0);
    weft_scenario_free(sc);

    char err[256];
    assert_int_equal(weft_registry_load_plugin(reg, "/nonexistent/plugin.so", err, sizeof err),
                     WEFT_EIO);
    assert_non_null(strstr(err, "/nonexistent/plugin.so: cannot load"));
    weft_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_world),
        cmocka_unit_test(test_peer_statements),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_client_and_listener),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_deferreds),
        cmocka_unit_test(test_deferred_expectations),
        cmocka_unit_test(test_call),
        cmocka_unit_test(test_lexical_errors),
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_more_errors),
        cmocka_unit_test(test_count_limits),
        cmocka_unit_test(test_many_errors_one_pass),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_diag_list_bounded),
        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_registry_and_check),
    };
    return cmocka_run_group_tests_name("scenario_parse", tests, NULL, NULL);
}
