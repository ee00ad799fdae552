/* timeout.c: the idle-timeout policy (Twisted's TimeoutMixin).
 *
 * One delayed call on the protocol's reactor, owned through its handle:
 * set() schedules or moves it, reset() moves it on traffic, and when it runs
 * the handle is released first (so a reset from inside the hook finds no
 * timer, as in Twisted where __timeoutCall is cleared before
 * timeoutConnection), then the hook runs. cleanup() cancels and releases.
 */
#include "protocols/proto_internal.h"

void weft_timeout_init(weft_timeout *t, weft_protocol *p, weft_timeout_fn on_timeout, void *ctx)
{
    t->protocol = p;
    t->timeout_ns = WEFT_TIMEOUT_NONE;
    t->on_timeout = on_timeout;
    t->ctx = ctx;
    t->timed_out = false;
    t->call_ = NULL;
}

static void drop_call(weft_timeout *t)
{
    if (!t->call_)
        return;
    if (weft_call_active(t->call_))
        (void)weft_call_cancel(t->call_);
    weft_call_release(t->call_);
    t->call_ = NULL;
}

static void timed_out(void *ctx)
{
    weft_timeout *t = ctx;
    if (t->call_) {
        weft_call_release(t->call_);
        t->call_ = NULL;
    }
    t->timed_out = true;
    if (t->on_timeout)
        t->on_timeout(t, t->ctx);
    else if (t->protocol && t->protocol->transport)
        (void)weft_transport_lose_connection(t->protocol->transport);
}

int64_t weft_timeout_set(weft_timeout *t, int64_t timeout_ns)
{
    int64_t prev = t->timeout_ns;
    if (timeout_ns < 0)
        timeout_ns = WEFT_TIMEOUT_NONE;
    t->timeout_ns = timeout_ns;
    if (timeout_ns == WEFT_TIMEOUT_NONE) {
        drop_call(t);
        return prev;
    }
    if (t->call_ && weft_call_active(t->call_)) {
        if (weft_call_reset(t->call_, timeout_ns) == WEFT_OK)
            return prev;
    }
    drop_call(t);
    if (t->protocol && t->protocol->reactor)
        t->call_ = weft_call_later(t->protocol->reactor, timeout_ns, timed_out, t);
    return prev;
}

void weft_timeout_reset(weft_timeout *t)
{
    if (t->call_ && t->timeout_ns != WEFT_TIMEOUT_NONE && weft_call_active(t->call_))
        (void)weft_call_reset(t->call_, t->timeout_ns);
}

void weft_timeout_cleanup(weft_timeout *t)
{
    drop_call(t);
}

bool weft_timeout_pending(const weft_timeout *t)
{
    return t->call_ != NULL && weft_call_active(t->call_);
}
