/* The example protocols over the string transport: exact bytes written,
 * closes and their reasons, the SMTP conversation step by step on both
 * sides, argument strings, the name table; and the timeout policy on the
 * simulator's virtual clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/string_transport.h"
#include "weft/protocols.h"
#include "weft/sim.h"

static weft_address some_peer = {"client", 40000};

/* A protocol built by f, attached to a fresh string transport. */
static weft_protocol *attach(weft_factory *f, string_transport *st, weft_reactor *r)
{
    weft_protocol *p = f->build_protocol(f, &some_peer);
    assert_non_null(p);
    p->factory = f;
    string_transport_init(st);
    string_transport_connect(st, p, r);
    return p;
}

static void detach(string_transport *st, const char *reason)
{
    string_transport_lose(st, reason, true);
    string_transport_free(st);
}

/* ------------------------------------------------------------ Arguments */

static void factory_arguments(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_hello_factory(NULL);
    assert_non_null(f);
    assert_string_equal(weft_proto_factory_name(f), WEFT_PROTO_HELLO);
    assert_non_null(weft_proto_factory_stats(f));
    weft_proto_factory_free(f);
    assert_null(weft_proto_hello_factory("nosuchkey=1"));
    assert_null(weft_proto_hello_factory("=x"));
    assert_null(weft_proto_hello_factory("justaword"));
    assert_null(weft_proto_echo_factory("greeting=x"));
    assert_null(weft_proto_heartbeat_factory("interval=abc"));
    assert_null(weft_proto_heartbeat_factory("interval=0"));
    assert_null(weft_proto_smtp_client_factory("quit=2"));
    assert_null(weft_proto_chat_factory("max_line=-1"));
    assert_null(weft_proto_chat_factory("max_line=99999999999999999999999"));
    /* A value with spaces, then another key after a comma. */
    f = weft_proto_hello_factory("greeting=Good  morning all, ");
    assert_non_null(f);
    string_transport st;
    attach(f, &st, NULL);
    assert_string_equal(string_transport_value(&st), "Good morning all");
    detach(&st, WEFT_REASON_DONE);
    weft_proto_factory_free(f);
    /* A word after a comma does not continue a value. */
    assert_null(weft_proto_hello_factory("greeting=a,b"));
    f = weft_proto_chat_client_factory("text=yo count=3 expect=2");
    assert_non_null(f);
    weft_proto_factory_free(f);
    /* Not ours: no stats, free ignores it. */
    weft_factory other = {0};
    assert_null(weft_proto_factory_stats(&other));
    assert_null(weft_proto_factory_name(NULL));
    weft_proto_factory_free(&other);
    weft_proto_factory_free(NULL);
}

static void builtin_table(void **state)
{
    (void)state;
    size_t n = 0;
    const weft_proto_entry *e = weft_proto_builtins(&n);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(weft_proto_lookup(e[i].name), &e[i]);
        weft_factory *f = e[i].factory_new(NULL);
        assert_non_null(f);
        assert_string_equal(weft_proto_factory_name(f), e[i].name);
        weft_proto_factory_free(f);
    }
    assert_null(weft_proto_lookup("nope"));
    assert_null(weft_proto_lookup(NULL));
    assert_true(weft_proto_lookup(WEFT_PROTO_SMTP_CLIENT)->client);
    assert_false(weft_proto_lookup(WEFT_PROTO_ECHO)->client);
}

/* -------------------------------------------------------- hello, echo */

static void hello_writes_greeting_and_closes(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_hello_factory(NULL);
    string_transport st;
    attach(f, &st, NULL);
    assert_string_equal(string_transport_value(&st), "Hello Twisted");
    assert_int_equal(st.lose_calls, 1);
    assert_int_equal(st.abort_calls, 0);
    detach(&st, WEFT_REASON_DONE);
    const weft_proto_stats *s = weft_proto_factory_stats(f);
    assert_int_equal(s->connections, 1);
    assert_int_equal(s->closed, 1);
    assert_int_equal(s->clean_closes, 1);
    assert_int_equal(s->bytes_out, 13);
    assert_string_equal(s->last_reason, WEFT_REASON_DONE);
    weft_proto_factory_free(f);
}

static void echo_writes_back(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_echo_factory("");
    string_transport st;
    attach(f, &st, NULL);
    string_transport_deliver_str(&st, "abc");
    string_transport_deliver(&st, "\0\xff", 2);
    assert_int_equal(st.len, 5);
    assert_memory_equal(st.data, "abc\0\xff", 5);
    detach(&st, WEFT_REASON_LOST);
    const weft_proto_stats *s = weft_proto_factory_stats(f);
    assert_int_equal(s->bytes_in, 5);
    assert_int_equal(s->bytes_out, 5);
    assert_int_equal(s->clean_closes, 0);
    assert_string_equal(s->last_reason, WEFT_REASON_LOST);
    weft_proto_factory_free(f);
}

/* ----------------------------------------------------------------- chat */

static void chat_relays_to_others(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_chat_factory("max_line=32");
    string_transport a, b, c;
    attach(f, &a, NULL);
    attach(f, &b, NULL);
    attach(f, &c, NULL);
    assert_string_equal(string_transport_value(&a), "WELCOME 1\r\n");
    assert_string_equal(string_transport_value(&c), "WELCOME 3\r\n");
    string_transport_clear(&a);
    string_transport_clear(&b);
    string_transport_clear(&c);
    string_transport_deliver_str(&b, "hi all\r\nsec");
    assert_string_equal(string_transport_value(&a), "2: hi all\r\n");
    assert_string_equal(string_transport_value(&b), "");
    assert_string_equal(string_transport_value(&c), "2: hi all\r\n");
    string_transport_deliver_str(&b, "ond\r\n");
    assert_string_equal(string_transport_value(&a), "2: hi all\r\n2: second\r\n");
    /* QUIT: BYE and a clean close; the others no longer get B's lines. */
    string_transport_clear(&a);
    string_transport_deliver_str(&c, "QUIT\r\nignored\r\n");
    assert_string_equal(string_transport_value(&c), "2: hi all\r\n2: second\r\nBYE\r\n");
    assert_int_equal(c.lose_calls, 1);
    assert_string_equal(string_transport_value(&a), "");
    detach(&c, WEFT_REASON_DONE);
    string_transport_deliver_str(&a, "x\r\n");
    assert_string_equal(string_transport_value(&b), "1: x\r\n");
    /* A line over max_line drops that client. */
    string_transport_deliver_str(&a, "0123456789012345678901234567890123456789\r\n");
    assert_int_equal(a.lose_calls, 1);
    const weft_proto_stats *s = weft_proto_factory_stats(f);
    assert_int_equal(s->errors, 1);
    assert_int_equal(s->messages, 3);
    detach(&a, WEFT_REASON_DONE);
    detach(&b, WEFT_REASON_DONE);
    assert_int_equal(s->closed, 3);
    weft_proto_factory_free(f);
}

static void chat_client_sends_and_counts(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_chat_client_factory("text=yo,count=2,expect=2");
    string_transport st;
    attach(f, &st, NULL);
    assert_string_equal(string_transport_value(&st), "yo 1\r\nyo 2\r\n");
    string_transport_deliver_str(&st, "WELCOME 1\r\n");
    assert_int_equal(st.lose_calls, 0);
    string_transport_deliver_str(&st, "2: a\r\n");
    assert_int_equal(st.lose_calls, 1);
    detach(&st, WEFT_REASON_DONE);
    assert_int_equal(weft_proto_factory_stats(f)->lines_in, 2);
    assert_int_equal(weft_proto_factory_stats(f)->lines_out, 2);
    weft_proto_factory_free(f);
}

static void pong_answers_ping(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_pong_factory(NULL);
    string_transport st;
    attach(f, &st, NULL);
    string_transport_deliver_str(&st, "PING\r\nPIN");
    string_transport_deliver_str(&st, "G\r\nPONG\r\n");
    assert_string_equal(string_transport_value(&st), "PONG\r\nPONG\r\n");
    assert_int_equal(weft_proto_factory_stats(f)->messages, 2);
    detach(&st, WEFT_REASON_DONE);
    weft_proto_factory_free(f);
}

/* ------------------------------------------------------------ SMTP server */

static void smtp_server_conversation(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_smtp_server_factory("host=mx.test,reject=nobody@x");
    string_transport st;
    attach(f, &st, NULL);
    assert_string_equal(string_transport_value(&st), "220 mx.test ESMTP weft\r\n");
#define SAY(in, out)                                                  \
    do {                                                              \
        string_transport_clear(&st);                                  \
        string_transport_deliver_str(&st, in);                        \
        assert_string_equal(string_transport_value(&st), out);        \
    } while (0)
    SAY("DATA\r\n", "503 Bad sequence of commands\r\n");
    SAY("ehlo me\r\n", "250 mx.test\r\n");
    SAY("RCPT TO:<a@x>\r\n", "503 Bad sequence of commands\r\n");
    SAY("MAIL FROM:a@x\r\n", "501 Syntax error in parameters\r\n");
    SAY("MAIL FROM:<a@x>\r\n", "250 Ok\r\n");
    SAY("RCPT TO:<nobody@x>\r\n", "550 No such user here\r\n");
    SAY("RCPT TO:<b@x>\r\n", "250 Ok\r\n");
    SAY("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n");
    SAY("line one\r\n..dotted\r\n\r\n", "");
    SAY(".\r\n", "250 Ok: queued\r\n");
    const weft_smtp_message *m = weft_smtp_server_last(f);
    assert_non_null(m);
    assert_string_equal(m->from, "a@x");
    assert_string_equal(m->to, "b@x");
    assert_string_equal(m->body, "line one\n.dotted\n");
    SAY("NOOP\r\n", "250 Ok\r\n");
    SAY("BOGUS\r\n", "502 Command not implemented\r\n");
    SAY("RSET\r\n", "250 Ok\r\n");
    SAY("DATA\r\n", "503 Bad sequence of commands\r\n");
    SAY("QUIT\r\n", "221 Bye\r\n");
#undef SAY
    assert_int_equal(st.lose_calls, 1);
    detach(&st, WEFT_REASON_DONE);
    const weft_proto_stats *s = weft_proto_factory_stats(f);
    assert_int_equal(s->messages, 1);
    assert_int_equal(s->rejected, 1);
    weft_proto_factory_free(f);
}

static void smtp_server_silent(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_smtp_server_factory("silent=1");
    string_transport st;
    attach(f, &st, NULL);
    string_transport_deliver_str(&st, "HELO x\r\n");
    assert_string_equal(string_transport_value(&st), "");
    assert_null(weft_smtp_server_last(f));
    detach(&st, WEFT_REASON_DONE);
    weft_proto_factory_free(f);
}

/* ------------------------------------------------------------ SMTP client */

typedef struct outcome {
    int succeeded, failed;
    char type[48];
    char message[128];
} outcome;

static weft_result on_ok(weft_result in, void *ctx)
{
    ((outcome *)ctx)->succeeded++;
    return in;
}

static weft_result on_err(weft_result in, void *ctx)
{
    outcome *o = ctx;
    o->failed++;
    snprintf(o->type, sizeof o->type, "%s", in.failure->type);
    snprintf(o->message, sizeof o->message, "%s", in.failure->message);
    return weft_value(NULL); /* handled */
}

static weft_deferred *watch(weft_deferred *d, outcome *o)
{
    assert_non_null(d);
    assert_int_equal(weft_deferred_add_callbacks(d, on_ok, o, on_err, o), WEFT_OK);
    return d;
}

static void smtp_client_delivers(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_smtp_client_factory("helo=me.test");
    string_transport st;
    weft_protocol *p = attach(f, &st, NULL);
    weft_smtp_client *c = weft_smtp_client_from_protocol(p);
    assert_non_null(c);
    assert_null(weft_smtp_client_from_protocol(NULL));
    outcome o = {0};
    weft_deferred *d = watch(weft_smtp_client_send(c, "a@x", "b@y", "Hi\n.hidden\nBye"), &o);
    assert_int_equal(weft_smtp_client_queued(c), 1);
    assert_string_equal(string_transport_value(&st), ""); /* waits for the greeting */
    string_transport_deliver_str(&st, "220 mx ESMTP\r\n");
    assert_string_equal(string_transport_value(&st), "HELO me.test\r\n");
    string_transport_clear(&st);
    string_transport_deliver_str(&st, "250-mx greets you\r\n");
    assert_string_equal(string_transport_value(&st), ""); /* continuation */
    string_transport_deliver_str(&st, "250 mx\r\n");
    assert_string_equal(string_transport_value(&st), "MAIL FROM:<a@x>\r\n");
    string_transport_clear(&st);
    string_transport_deliver_str(&st, "250 Ok\r\n");
    assert_string_equal(string_transport_value(&st), "RCPT TO:<b@y>\r\n");
    string_transport_clear(&st);
    string_transport_deliver_str(&st, "250 Ok\r\n");
    assert_string_equal(string_transport_value(&st), "DATA\r\n");
    string_transport_clear(&st);
    string_transport_deliver_str(&st, "354 go\r\n");
    assert_string_equal(string_transport_value(&st), "Hi\r\n..hidden\r\nBye\r\n.\r\n");
    string_transport_clear(&st);
    assert_int_equal(o.succeeded, 0);
    string_transport_deliver_str(&st, "250 Ok: queued\r\n");
    assert_int_equal(o.succeeded, 1);
    assert_int_equal(o.failed, 0);
    assert_int_equal(weft_smtp_client_delivered(c), 1);
    assert_int_equal(weft_smtp_client_queued(c), 0);
    /* Queue empty after a message: QUIT, then close on 221. */
    assert_string_equal(string_transport_value(&st), "QUIT\r\n");
    string_transport_deliver_str(&st, "221 Bye\r\n");
    assert_int_equal(st.lose_calls, 1);
    weft_deferred_unref(d);
    /* Sending on a closing client fails at once. */
    outcome o2 = {0};
    d = watch(weft_smtp_client_send(c, "a@x", "b@y", "x"), &o2);
    assert_int_equal(o2.failed, 1);
    assert_string_equal(o2.type, WEFT_REASON_DONE);
    weft_deferred_unref(d);
    detach(&st, WEFT_REASON_DONE);
    assert_int_equal(weft_proto_factory_stats(f)->messages, 1);
    weft_proto_factory_free(f);
}

static void smtp_client_rejections(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_smtp_client_factory(NULL);
    string_transport st;
    weft_protocol *p = attach(f, &st, NULL);
    weft_smtp_client *c = weft_smtp_client_from_protocol(p);
    outcome o1 = {0}, o2 = {0}, o3 = {0};
    weft_deferred *d1 = watch(weft_smtp_client_send(c, "a@x", "nobody@y", "1"), &o1);
    weft_deferred *d2 = watch(weft_smtp_client_send(c, "a@x", "b@y", "2"), &o2);
    weft_deferred *d3 = watch(weft_smtp_client_send(c, "a@x", "c@y", "3"), &o3);
    assert_int_equal(weft_smtp_client_queued(c), 3);
    string_transport_deliver_str(&st, "220 hi\r\n250 ok\r\n250 ok\r\n");
    /* RCPT refused: the first fails with the reply, RSET, the next starts. */
    string_transport_clear(&st);
    string_transport_deliver_str(&st, "550 No such user here\r\n");
    assert_int_equal(o1.failed, 1);
    assert_string_equal(o1.type, WEFT_FAILURE_SMTP_REJECTED);
    assert_string_equal(o1.message, "550 No such user here");
    assert_string_equal(string_transport_value(&st), "RSET\r\n");
    string_transport_clear(&st);
    string_transport_deliver_str(&st, "250 ok\r\n");
    assert_string_equal(string_transport_value(&st), "MAIL FROM:<a@x>\r\n");
    /* The second is refused after its data (452), the third then dies with
     * the connection. */
    string_transport_deliver_str(&st, "250 ok\r\n250 ok\r\n354 go\r\n452 mailbox full\r\n");
    assert_int_equal(o2.failed, 1);
    assert_string_equal(o2.message, "452 mailbox full");
    assert_int_equal(weft_smtp_client_rejected(c), 2);
    assert_int_equal(o3.failed, 0);
    detach(&st, WEFT_REASON_LOST);
    assert_int_equal(o3.failed, 1);
    assert_string_equal(o3.type, WEFT_REASON_LOST);
    weft_deferred_unref(d1);
    weft_deferred_unref(d2);
    weft_deferred_unref(d3);
    assert_int_equal(weft_proto_factory_stats(f)->rejected, 2);
    weft_proto_factory_free(f);
}

static void smtp_client_bad_greeting_and_bad_input(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_smtp_client_factory("quit=0");
    string_transport st;
    weft_protocol *p = attach(f, &st, NULL);
    weft_smtp_client *c = weft_smtp_client_from_protocol(p);
    outcome o = {0}, ob = {0};
    weft_deferred *bad = watch(weft_smtp_client_send(c, "a@x", "b\r\nRCPT TO:<c@y>", "x"), &ob);
    assert_int_equal(ob.failed, 1);
    assert_string_equal(ob.message, "send: bad address");
    weft_deferred *d = watch(weft_smtp_client_send(c, "a@x", "b@y", "x"), &o);
    string_transport_deliver_str(&st, "554 go away\r\n");
    assert_int_equal(o.failed, 1);
    assert_string_equal(o.message, "554 go away");
    assert_string_equal(string_transport_value(&st), "QUIT\r\n");
    weft_deferred_unref(d);
    weft_deferred_unref(bad);
    detach(&st, WEFT_REASON_DONE);
    weft_proto_factory_free(f);
}


typedef struct chain_ctx {
    weft_smtp_client *c;
    outcome second;
    weft_deferred *d2;
} chain_ctx;

static weft_result send_again(weft_result in, void *ctx)
{
    chain_ctx *cc = ctx;
    cc->d2 = watch(weft_smtp_client_send(cc->c, "a@x", "b@y", "second"), &cc->second);
    return in;
}

static void smtp_client_callback_sends_next(void **state)
{
    (void)state;
    weft_factory *f = weft_proto_smtp_client_factory(NULL);
    string_transport st;
    weft_protocol *p = attach(f, &st, NULL);
    chain_ctx cc = {weft_smtp_client_from_protocol(p), {0}, NULL};
    weft_deferred *d1 = weft_smtp_client_send(cc.c, "a@x", "b@y", "first");
    assert_int_equal(weft_deferred_add_callback(d1, send_again, &cc), WEFT_OK);
    string_transport_deliver_str(&st, "220 hi\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    string_transport_clear(&st);
    string_transport_deliver_str(&st, "250 queued\r\n");
    /* No QUIT in between: the callback queued the next message first. */
    assert_string_equal(string_transport_value(&st), "MAIL FROM:<a@x>\r\n");
    string_transport_deliver_str(&st, "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
    assert_int_equal(cc.second.succeeded, 1);
    weft_deferred_unref(d1);
    weft_deferred_unref(cc.d2);
    detach(&st, WEFT_REASON_DONE);
    weft_proto_factory_free(f);
}

/* ------------------------------------------------- Timeout on virtual time */

typedef struct tproto {
    weft_protocol base;
    weft_timeout to;
    int fired;
} tproto;

static void count_fired(weft_timeout *t, void *ctx)
{
    ((tproto *)ctx)->fired++;
}

static const weft_protocol_ops tproto_ops = {0};

static void timeout_policy(void **state)
{
    (void)state;
    weft_sim *sim = weft_sim_new(NULL, weft_choice_seeded(1));
    assert_non_null(sim);
    weft_reactor *r = weft_sim_reactor(sim);
    tproto tp = {{&tproto_ops, NULL, NULL, NULL}, {0}, 0};
    string_transport st;
    string_transport_init(&st);
    tp.base.transport = &st.base;
    tp.base.reactor = r;
    weft_timeout_init(&tp.to, &tp.base, NULL, NULL);
    assert_false(weft_timeout_pending(&tp.to));
    assert_int_equal(weft_timeout_set(&tp.to, 10 * WEFT_NS_PER_S), WEFT_TIMEOUT_NONE);
    assert_true(weft_timeout_pending(&tp.to));
    weft_sim_advance(sim, 9 * WEFT_NS_PER_S);
    weft_timeout_reset(&tp.to); /* traffic */
    weft_sim_advance(sim, 9 * WEFT_NS_PER_S);
    assert_int_equal(st.lose_calls, 0);
    weft_sim_advance(sim, 1 * WEFT_NS_PER_S);
    assert_int_equal(st.lose_calls, 1); /* 10 s after the reset */
    assert_true(tp.to.timed_out);
    assert_false(weft_timeout_pending(&tp.to));
    weft_timeout_reset(&tp.to); /* no timer: no-op */
    assert_false(weft_timeout_pending(&tp.to));
    /* set returns the previous period; NONE cancels. */
    assert_int_equal(weft_timeout_set(&tp.to, 5 * WEFT_NS_PER_S), 10 * WEFT_NS_PER_S);
    assert_int_equal(weft_timeout_set(&tp.to, WEFT_TIMEOUT_NONE), 5 * WEFT_NS_PER_S);
    assert_false(weft_timeout_pending(&tp.to));
    weft_sim_advance(sim, 60 * WEFT_NS_PER_S);
    assert_int_equal(st.lose_calls, 1);
    /* Changing the period moves the pending timer. */
    weft_timeout_init(&tp.to, &tp.base, count_fired, &tp);
    weft_timeout_set(&tp.to, 5 * WEFT_NS_PER_S);
    weft_sim_advance(sim, 4 * WEFT_NS_PER_S);
    weft_timeout_set(&tp.to, 3 * WEFT_NS_PER_S);
    weft_sim_advance(sim, 2 * WEFT_NS_PER_S);
    assert_int_equal(tp.fired, 0);
    weft_sim_advance(sim, 1 * WEFT_NS_PER_S);
    assert_int_equal(tp.fired, 1);
    assert_int_equal(st.lose_calls, 1); /* the custom hook replaced the close */
    /* Cleanup cancels a pending timer. */
    weft_timeout_set(&tp.to, 1 * WEFT_NS_PER_S);
    weft_timeout_cleanup(&tp.to);
    weft_sim_advance(sim, 5 * WEFT_NS_PER_S);
    assert_int_equal(tp.fired, 1);
    /* Without a reactor no timer can be pending. */
    tp.base.reactor = NULL;
    weft_timeout_init(&tp.to, &tp.base, NULL, NULL);
    weft_timeout_set(&tp.to, WEFT_NS_PER_S);
    assert_false(weft_timeout_pending(&tp.to));
    weft_sim_free(sim);
    string_transport_free(&st);
}

/* Every allocation failing in turn: constructors and sends return NULL or
 * work, never crash or leak (the sanitizer build checks the leaks). */
static void allocation_failures(void **state)
{
    (void)state;
    for (long n = 0; n < 40; n++) {
        weft_alloc_fail_after(n);
        weft_factory *f = weft_proto_smtp_client_factory("helo=x timeout=0");
        weft_protocol *p = f ? f->build_protocol(f, &some_peer) : NULL;
        weft_deferred *d = NULL;
        string_transport st;
        string_transport_init(&st);
        if (p) {
            p->factory = f;
            string_transport_connect(&st, p, NULL);
            d = weft_smtp_client_send(weft_smtp_client_from_protocol(p), "a@x", "b@y", "body");
            string_transport_deliver_str(&st, "220 hi\r\n250 ok\r\n");
        }
        weft_alloc_fail_after(-1);
        if (p)
            string_transport_lose(&st, WEFT_REASON_LOST, true);
        if (d) {
            weft_result res;
            if (weft_deferred_take_result(d, &res) == WEFT_OK && res.kind == WEFT_RESULT_FAILURE)
                weft_failure_free(res.failure);
            weft_deferred_unref(d);
        }
        string_transport_free(&st);
        weft_proto_factory_free(f);
    }
    for (long n = 0; n < 6; n++) {
        weft_alloc_fail_after(n);
        weft_factory *f = weft_proto_chat_factory("max_line=100");
        weft_alloc_fail_after(-1);
        weft_proto_factory_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(factory_arguments),
        cmocka_unit_test(builtin_table),
        cmocka_unit_test(hello_writes_greeting_and_closes),
        cmocka_unit_test(echo_writes_back),
        cmocka_unit_test(chat_relays_to_others),
        cmocka_unit_test(chat_client_sends_and_counts),
        cmocka_unit_test(pong_answers_ping),
        cmocka_unit_test(smtp_server_conversation),
        cmocka_unit_test(smtp_server_silent),
        cmocka_unit_test(smtp_client_delivers),
        cmocka_unit_test(smtp_client_rejections),
        cmocka_unit_test(smtp_client_bad_greeting_and_bad_input),
        cmocka_unit_test(smtp_client_callback_sends_next),
        cmocka_unit_test(timeout_policy),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests_name("protocols_examples", tests, NULL, NULL);
}
