/* The same protocol object files on the real epoll reactor over loopback
 * TCP: the SMTP client against the SMTP server (delivered, rejected, many at
 * once) and the hello server with the chat client counting its greeting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/protocols.h"

#define DEADLINE_NS (10 * WEFT_NS_PER_S)

typedef struct job {
    int succeeded, failed;
    char type[48], message[128];
    const char *to;
} job;

static weft_result send_it(weft_result in, void *ctx)
{
    job *j = ctx;
    weft_smtp_client *c = weft_smtp_client_from_protocol(in.value);
    assert_non_null(c);
    return weft_chain(weft_smtp_client_send(c, "a@local", j->to, "hello\n.dot\n"));
}

static weft_result ok(weft_result in, void *ctx)
{
    ((job *)ctx)->succeeded++;
    return in;
}

static weft_result err(weft_result in, void *ctx)
{
    job *j = ctx;
    j->failed++;
    snprintf(j->type, sizeof j->type, "%s", in.failure->type);
    snprintf(j->message, sizeof j->message, "%s", in.failure->message);
    return weft_value(NULL);
}

typedef struct many {
    job *jobs;
    size_t n;
} many;

static bool all_done(void *ctx)
{
    many *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        if (m->jobs[i].succeeded + m->jobs[i].failed == 0)
            return false;
    return true;
}

static void smtp_over_tcp(void **state)
{
    (void)state;
    weft_reactor *r = weft_reactor_new_epoll();
    assert_non_null(r);
    weft_factory *srv = weft_proto_smtp_server_factory("reject=nobody@local");
    weft_factory *cli = weft_proto_smtp_client_factory("timeout=5000");
    weft_listener *l = NULL;
    assert_int_equal(weft_listen(r, "tcp:0:interface=127.0.0.1", srv, &l), WEFT_OK);
    char desc[64];
    snprintf(desc, sizeof desc, "tcp:127.0.0.1:%u", (unsigned)weft_listener_address(l)->port);
    enum { N = 20 };
    job jobs[N];
    weft_deferred *ds[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].to = i % 5 == 4 ? "nobody@local" : "b@local";
        assert_int_equal(weft_connect(r, desc, cli, &ds[i]), WEFT_OK);
        assert_int_equal(weft_deferred_add_callback(ds[i], send_it, &jobs[i]), WEFT_OK);
        assert_int_equal(weft_deferred_add_callbacks(ds[i], ok, &jobs[i], err, &jobs[i]), WEFT_OK);
    }
    many m = {jobs, N};
    assert_int_equal(weft_reactor_run_until(r, all_done, &m, weft_now(r) + DEADLINE_NS), WEFT_OK);
    for (int i = 0; i < N; i++) {
        if (i % 5 == 4) {
            assert_int_equal(jobs[i].failed, 1);
            assert_string_equal(jobs[i].type, WEFT_FAILURE_SMTP_REJECTED);
            assert_string_equal(jobs[i].message, "550 No such user here");
        } else {
            if (jobs[i].succeeded != 1)
                fail_msg("mail %d: %s %s", i, jobs[i].type, jobs[i].message);
        }
        weft_deferred_unref(ds[i]);
    }
    const weft_smtp_message *msg = weft_smtp_server_last(srv);
    assert_non_null(msg);
    assert_string_equal(msg->body, "hello\n.dot");
    assert_int_equal(weft_proto_factory_stats(srv)->messages, N - N / 5);
    weft_listener_close(l);
    weft_reactor_free(r);
    weft_proto_factory_free(cli);
    weft_proto_factory_free(srv);
}

static bool closed_once(void *ctx)
{
    return weft_proto_factory_stats(ctx)->closed == 1;
}

static void hello_over_tcp(void **state)
{
    (void)state;
    weft_reactor *r = weft_reactor_new_epoll();
    assert_non_null(r);
    weft_factory *hello = weft_proto_hello_factory("greeting=Hello Twisted, ");
    weft_factory *cc = weft_proto_chat_client_factory("count=0");
    weft_listener *l = NULL;
    assert_int_equal(weft_listen(r, "tcp:0:interface=127.0.0.1", hello, &l), WEFT_OK);
    char desc[64];
    snprintf(desc, sizeof desc, "tcp:127.0.0.1:%u", (unsigned)weft_listener_address(l)->port);
    assert_int_equal(weft_connect_factory(r, desc, cc, NULL), WEFT_OK);
    assert_int_equal(weft_reactor_run_until(r, closed_once, cc, weft_now(r) + DEADLINE_NS), WEFT_OK);
    /* The greeting has no delimiter: no line, 13 bytes, a clean close. */
    const weft_proto_stats *s = weft_proto_factory_stats(cc);
    assert_int_equal(s->lines_in, 0);
    assert_int_equal(s->clean_closes, 1);
    assert_int_equal(weft_proto_factory_stats(hello)->bytes_out, 13);
    weft_listener_close(l);
    weft_reactor_free(r);
    weft_proto_factory_free(cc);
    weft_proto_factory_free(hello);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(smtp_over_tcp),
        cmocka_unit_test(hello_over_tcp),
    };
    return cmocka_run_group_tests_name("protocols_epoll", tests, NULL, NULL);
}
