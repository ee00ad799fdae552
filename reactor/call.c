/* call.c: the public delayed-call functions of weft/reactor.h, shared by every
 * backend that embeds the timer queue (reactor/timerq.h).
 *
 * Handle rules (as Twisted's DelayedCall): cancel, reset and delay work only on
 * a pending call; after it ran they report WEFT_EALREADYCALLED, after a cancel
 * WEFT_EALREADYCANCELLED. A call is marked called just before its function
 * runs, so cancelling itself from inside reports WEFT_EALREADYCALLED. The node
 * lives until it is no longer pending and the handle was released.
 */
#include "reactor/timerq.h"

/* Label id 0 is "call": user delayed calls (see sim.c's label table). */
#define USER_CALL_LABEL 0u

static weft_time_ns add_sat(weft_time_ns a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

weft_call *weft__call_later_ex(weft_reactor *r, int64_t delay_ns, const char *label,
                               bool droppable, weft_call_fn fn, void *ctx)
{
    if (!r || !fn || delay_ns < 0)
        return NULL;
    weft_timerq *q = weft__reactor_timerq(r);
    unsigned id = USER_CALL_LABEL;
    if (label && q->label_of)
        id = q->label_of(r, label);
    weft_time_ns when = add_sat(r->ops->now(r), delay_ns);
    unsigned flags = WEFT__CALL_API | WEFT__CALL_HANDLE | (droppable ? WEFT__CALL_DROPPABLE : 0u);
    return weft__timerq_add_flags(q, when, id, flags, fn, ctx);
}

weft_call *weft_call_later(weft_reactor *r, int64_t delay_ns, weft_call_fn fn, void *ctx)
{
    return weft__call_later_ex(r, delay_ns, NULL, false, fn, ctx);
}

weft_call *weft_call_later_labelled(weft_reactor *r, int64_t delay_ns, const char *label,
                                    weft_call_fn fn, void *ctx)
{
    return weft__call_later_ex(r, delay_ns, label, false, fn, ctx);
}

int weft_call_soon(weft_reactor *r, weft_call_fn fn, void *ctx)
{
    if (!r || !fn)
        return WEFT_EINVAL;
    weft_timerq *q = weft__reactor_timerq(r);
    weft_call *c =
        weft__timerq_add_flags(q, r->ops->now(r), USER_CALL_LABEL, WEFT__CALL_API, fn, ctx);
    return c ? WEFT_OK : WEFT_ENOMEM;
}

static int check_pending(const weft_call *c)
{
    if (!c)
        return WEFT_EINVAL;
    switch (weft__call_state(c)) {
    case WEFT__CALL_HEAP:
    case WEFT__CALL_PASS:
        return WEFT_OK;
    case WEFT__CALL_CALLED:
        return WEFT_EALREADYCALLED;
    case WEFT__CALL_CANCELLED:
        return WEFT_EALREADYCANCELLED;
    default:
        return WEFT_EINVAL; /* a freed node: misuse */
    }
}

int weft_call_cancel(weft_call *c)
{
    int err = check_pending(c);
    if (err)
        return err;
    weft__timerq_cancel(c->q, c);
    return WEFT_OK;
}

int weft_call_reset(weft_call *c, int64_t delay_ns)
{
    int err = check_pending(c);
    if (err)
        return err;
    if (delay_ns < 0)
        return WEFT_EINVAL;
    weft_reactor *r = c->q->owner;
    return weft__timerq_rekey(c->q, c, add_sat(r->ops->now(r), delay_ns));
}

int weft_call_delay(weft_call *c, int64_t delay_ns)
{
    int err = check_pending(c);
    if (err)
        return err;
    weft_reactor *r = c->q->owner;
    weft_time_ns now = r->ops->now(r);
    weft_time_ns when = add_sat(weft__timerq_due(c->q, c), delay_ns);
    if (when < now)
        when = now; /* sooner than now: due now, never in the past */
    return weft__timerq_rekey(c->q, c, when);
}

bool weft_call_active(const weft_call *c)
{
    return c && weft__call_pending(c);
}

weft_time_ns weft_call_time(const weft_call *c)
{
    if (!c)
        return 0;
    return weft__timerq_due(c->q, c);
}

void weft_call_release(weft_call *c)
{
    if (!c || !(c->meta & WEFT__CALL_HANDLE))
        return;
    weft__timerq_release(c->q, c);
}
