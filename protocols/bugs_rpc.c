/* bugs_rpc.c: planted bug "a timeout racing a response" (protocols/bugs.h).
 *
 * Protocol bug-rpc is a client of an echo server; action bugs.rpc CLIENT
 * TIMEOUT sends "ping" and hands back a Deferred that fires with 1 when the
 * echo comes back, or fails with Timeout after TIMEOUT. The reply cancels the
 * timer and closes the connection. But a reply still on its way when the
 * timeout strikes arrives later, and the buggy reply handler fires the
 * Deferred again (AlreadyCalled: Twisted would raise AlreadyCalledError from
 * dataReceived). It only happens when the round trip is longer than the
 * timeout: the reply's delivery ordered after the timer. The fixed version
 * ("fixed") remembers that the call is settled and drops a late reply.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "protocols/bugs.h"

typedef struct rpc {
    weft__bug_factory f; /* first: make returns &f.base */
    weft_reactor *r;
    bool fixed;
    weft__bug_conn *conn;
    weft_deferred *d; /* borrowed: the run holds it */
    weft_call *timer;
    bool started, settled;
} rpc;

static void rpc_made(weft__bug_conn *c)
{
    rpc *st = c->owner;
    st->conn = c;
}

static void rpc_line(weft__bug_conn *c, const char *line, size_t len)
{
    rpc *st = c->owner;
    if (!st->started || strcmp(line, "ping") != 0)
        return;
    if (st->fixed && st->settled) {
        weft__bug_close(c); /* the timeout settled the call: a late reply */
        return;
    }
    if (st->timer) {
        (void)weft_call_cancel(st->timer);
        weft_call_release(st->timer);
        st->timer = NULL;
    }
    st->settled = true;
    int rc = weft_deferred_callback(st->d, (void *)(intptr_t)1);
    if (rc == WEFT_EALREADYCALLED)
        weft__bug_violation("bugs.rpc: the reply fired the call's Deferred after the timeout "
                            "had failed it (AlreadyCalled)");
    weft__bug_close(c);
}

static void rpc_lost(weft__bug_conn *c, const weft_failure *reason)
{
    rpc *st = c->owner;
    if (st->conn == c)
        st->conn = NULL;
}

static const weft__bug_conn_ops rpc_ops = {.made = rpc_made, .line = rpc_line, .lost = rpc_lost};

static void rpc_timeout(void *ctx)
{
    rpc *st = ctx;
    weft_call_release(st->timer);
    st->timer = NULL;
    st->settled = true;
    weft_deferred_errback(st->d, weft_failure_new(WEFT_FAILURE_TIMEOUT, "no reply in time"));
    /* The connection stays for the reply (closing would stop reading). */
}

static weft_factory *rpc_make(weft_reactor *r, const char *args, char *err, size_t errlen)
{
    rpc *st = weft_calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft__bug_factory_init(&st->f, &rpc_ops, st, 0, 0);
    st->r = r;
    st->fixed = weft__bug_fixed(args);
    return &st->f.base;
}

static void rpc_destroy(weft_factory *f)
{
    weft_free(f); /* the timer, if any, went with the simulator */
}

static int rpc_start(weft_protocol *p, const weft__bug_args *a, weft_deferred **out, char *err,
                     size_t errlen)
{
    rpc *st = weft__bug_owner(p, &rpc_ops);
    if (!st) {
        snprintf(err, errlen, "bugs.rpc: the client is not a connected bug-rpc client");
        return WEFT_EINVAL;
    }
    if (st->started) {
        snprintf(err, errlen, "bugs.rpc: one call per client");
        return WEFT_ESTATE;
    }
    if (!a->has_num || a->num <= 0) {
        snprintf(err, errlen, "bugs.rpc: expected a timeout (a positive duration)");
        return WEFT_EINVAL;
    }
    weft_deferred *d = weft_deferred_new();
    weft_call *t = d ? weft_call_later(st->r, a->num, rpc_timeout, st) : NULL;
    if (!t) {
        weft_deferred_unref(d);
        snprintf(err, errlen, "out of memory");
        return WEFT_ENOMEM;
    }
    st->d = d;
    st->timer = t;
    st->started = true;
    /* Not sent (the connection is gone): the timer settles the call. */
    (void)weft__bug_send(st->conn, "ping");
    *out = d;
    return WEFT_OK;
}

const weft__bug weft__bug_rpc = {
    .protocol = "bug-rpc",
    .action = "bugs.rpc",
    .summary = "a timeout racing a response: the Deferred fired twice",
    .make = rpc_make,
    .destroy = rpc_destroy,
    .start = rpc_start,
};
