/* connect.c: weft_connect, a Deferred of the connected protocol (Twisted's
 * TCP4ClientEndpoint.connect with its _WrappingFactory).
 *
 * A wrapping factory (struct wrap) stands between the connector and the
 * user's factory for one connection attempt:
 * - build_protocol asks the user's factory; NULL fails the Deferred with
 *   NoProtocol. Otherwise the protocol's ops pointer is swapped for a copy
 *   whose connection_made is ours: it restores the user's table, points
 *   p->factory at the user's factory, runs the user's connection_made, and
 *   then fires the Deferred with the protocol.
 * - connection_failed fails the Deferred with (a copy of) the reason.
 * - cancelling the Deferred before it fired fails it with
 *   ConnectingCancelled, then stops the connector.
 * - start and stop are forwarded to the user's factory (counted).
 *
 * Lifetime. The wrap holds one reference on the Deferred and owns the
 * connector. When the attempt ends (connection_failed, or connection_lost of
 * the established connection) the hook frees the connector (backends allow
 * that from inside a hook) and then the wrap. If the reactor is freed first,
 * it stops the wrapping factory while freeing the connector: the wrap then
 * fails a Deferred still pending with ConnectionAborted (so its canceller can
 * never run on freed memory) and frees itself. The user's factory hooks
 * connection_failed / connection_lost are not called: the Deferred reports the
 * failure and the protocol sees its own connection_lost, as in Twisted.
 */
#include <stddef.h>

#include "reactor/reactor_internal.h"

typedef struct wrap {
    weft_factory factory; /* first: the hooks find the wrap from it */
    weft_factory *inner;
    weft_deferred *d; /* our reference */
    weft_connector *connector;
    weft_protocol_ops ops; /* the protocol's table with our connection_made */
    const weft_protocol_ops *user_ops;
    bool settled;  /* d was fired (by us or by the canceller) */
    bool closing;  /* we are freeing the connector ourselves */
    bool started;  /* the inner factory was started through us */
} wrap;

static wrap *wrap_of(weft_factory *f)
{
    return (wrap *)(void *)f;
}

static void wrap_free(wrap *w)
{
    weft_deferred *d = w->d;
    weft_free(w);
    weft_deferred_unref(d);
}

static void wrap_fail(wrap *w, weft_failure *f)
{
    if (w->settled) {
        weft_failure_free(f);
        return;
    }
    w->settled = true;
    weft_deferred_errback(w->d, f);
}

static void wrap_made(weft_protocol *p)
{
    wrap *w = (wrap *)(void *)((char *)(void *)p->ops - offsetof(wrap, ops));
    p->ops = w->user_ops;
    p->factory = w->inner;
    if (p->ops->connection_made)
        p->ops->connection_made(p);
    if (!w->settled) {
        w->settled = true;
        weft_deferred_callback(w->d, p);
    }
}

static weft_protocol *wrap_build(weft_factory *f, const weft_address *peer)
{
    wrap *w = wrap_of(f);
    weft_protocol *p = w->inner->build_protocol(w->inner, peer);
    if (!p) {
        wrap_fail(w, weft_failure_new(WEFT_REASON_NO_PROTOCOL,
                                      "the factory built no protocol for %s:%u",
                                      peer ? peer->host : "?", peer ? (unsigned)peer->port : 0u));
        return NULL;
    }
    w->user_ops = p->ops;
    w->ops = *p->ops;
    w->ops.connection_made = wrap_made;
    p->ops = &w->ops;
    return p;
}

static void wrap_start(weft_factory *f)
{
    wrap *w = wrap_of(f);
    if (!w->started) {
        w->started = true;
        weft__factory_do_start(w->inner);
    }
}

static void wrap_stop(weft_factory *f)
{
    wrap *w = wrap_of(f);
    if (w->started) {
        w->started = false;
        weft__factory_do_stop(w->inner);
    }
    if (w->closing)
        return; /* our own weft_connector_free: the hook frees the wrap */
    /* The reactor is freeing the connector. */
    wrap_fail(w, weft_failure_new(WEFT_REASON_ABORTED, "the reactor was freed while connecting"));
    wrap_free(w);
}

/* The attempt is over: free the connector, then the wrap. */
static void wrap_finish(wrap *w, weft_connector *c)
{
    w->closing = true;
    weft_connector_free(c);
    wrap_free(w);
}

static void wrap_failed(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    wrap *w = wrap_of(f);
    wrap_fail(w, weft_failure_copy(reason));
    wrap_finish(w, c);
}

static void wrap_lost(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    (void)reason;
    wrap_finish(wrap_of(f), c);
}

static void wrap_cancel(weft_deferred *d, void *ctx)
{
    wrap *w = ctx;
    (void)d;
    const weft_endpoint *ep = &w->connector->endpoint;
    wrap_fail(w, weft_failure_new(WEFT_REASON_CONNECT_CANCELLED,
                                  "connecting to %s:%u was cancelled", ep->host,
                                  (unsigned)ep->port));
    /* Last: the backend's connection_failed hook may free w. */
    weft_connector_stop(w->connector);
}

int weft_connect(weft_reactor *r, const char *desc, weft_factory *f, weft_deferred **out)
{
    if (out)
        *out = NULL;
    if (!r || !desc || !f || !f->build_protocol || !out)
        return WEFT_EINVAL;
    wrap *w = weft_calloc(1, sizeof *w);
    if (!w)
        return WEFT_ENOMEM;
    weft_deferred *d = weft_deferred_new_cancellable(wrap_cancel, w);
    if (!d) {
        weft_free(w);
        return WEFT_ENOMEM;
    }
    w->inner = f;
    w->d = weft_deferred_ref(d);
    w->factory.build_protocol = wrap_build;
    w->factory.start = wrap_start;
    w->factory.stop = wrap_stop;
    w->factory.connection_failed = wrap_failed;
    w->factory.connection_lost = wrap_lost;
    w->factory.ctx = f->ctx;
    int err = weft_connect_factory(r, desc, &w->factory, &w->connector);
    if (err) {
        /* Nothing started: the Deferred never fires, its canceller never runs. */
        weft_deferred_unref(d);
        weft_deferred_unref(d);
        weft_free(w);
        return err;
    }
    *out = d;
    return WEFT_OK;
}
