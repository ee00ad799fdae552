/* Deferreds: one chain of (callback, errback) pairs run from an explicit work
 * list, with Twisted's semantics (docs/deferred.md lists the departures).
 *
 * Storage. The first pair lives inline in the Deferred; a second one moves
 * the pairs to a heap array read with a cursor, so firing n pairs is O(n) and
 * a pending Deferred with one pair is a single 72-byte allocation. Consumed
 * slots are reused: the array is compacted only when more than half of it is
 * consumed, which keeps appends amortised O(1).
 *
 * The run loop. Running a Deferred pushes it on a run stack linked through
 * run_next (no allocation, so running never fails). The loop always works on
 * the top: a paused top is popped, a top with no pairs left is popped, and a
 * continuation pair (the marker an outer Deferred left on the inner one it
 * waits for) moves the inner's result into the outer, unpauses it and pushes
 * it. chain_to pairs work the same way. So a million Deferreds nested through
 * returned Deferreds, or a chain_to chain a million long, resolve with
 * constant C stack depth. Every Deferred on a run stack carries F_RUNNING:
 * handlers added to it are appended and picked up by the loop, never run
 * recursively, and nothing may take its result while it is there.
 *
 * References. The run stack holds a reference on each Deferred it carries.
 * An outer Deferred waiting on an inner one holds a reference on the inner
 * (in its result); the inner's continuation pair points back weakly, and an
 * outer freed while it waits turns its continuation into an orphan marker.
 * Freeing goes through a per-thread work list, so releasing a long chain of
 * references never recurses either. Pairs freed without running are dropped:
 * a chain_to pair releases its target, a list member's pair tells its list,
 * and an owned pair (weft_deferred_add_both_owned) runs its dropped hook.
 */
#include <string.h>

#include "defer/defer_internal.h"

enum {
    F_CALLED = 1u << 0,     /* callback/errback happened */
    F_RUNNING = 1u << 1,    /* on a run stack */
    F_SUPPRESS = 1u << 2,   /* swallow the next fire (cancel without canceller) */
    F_CANCELLER_RAN = 1u << 3,
    F_HEAP = 1u << 4,       /* pairs live in cbs.heap */
    F_ONE = 1u << 5,        /* the inline pair is occupied */
};

#define PAUSED_MAX UINT16_MAX
#define PAIRS_MAX (UINT32_MAX / 2)

typedef struct pair {
    weft_handler_fn cb;
    void *cb_ctx;
    weft_handler_fn eb;
    void *eb_ctx;
} pair;

struct weft_deferred {
    uint32_t refs;
    uint16_t paused;
    uint8_t flags;
    uint8_t kind; /* of result: WEFT_RESULT_VALUE / FAILURE / DEFERRED (waiting) */
    union {
        void *value;
        weft_failure *failure;
        weft_deferred *deferred;
    } result;
    weft_canceller_fn canceller;
    void *canceller_ctx;
    weft_deferred *run_next; /* run stack or free list link */
    union {
        pair one;
        struct {
            pair *pairs;
            uint32_t cap;
            uint32_t count;
            uint32_t cursor;
        } heap;
    } cbs;
};

/* The memory aim: a pending Deferred with one pair is one allocation that
 * malloc serves from an 80-byte chunk. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct weft_deferred) == 72,
               "a Deferred is 72 bytes on 64-bit targets");

/* Markers recognised by the run loop by address. They are never called; each
 * body differs so that no linker or optimiser can fold two into one. */
static const char marker_tags[3];

static weft_result marker_continue(weft_result in, void *ctx)
{
    (void)in;
    (void)ctx;
    return weft_value((void *)&marker_tags[0]);
}

static weft_result marker_orphan(weft_result in, void *ctx)
{
    (void)in;
    (void)ctx;
    return weft_value((void *)&marker_tags[1]);
}

static weft_result marker_chain_to(weft_result in, void *ctx)
{
    (void)in;
    (void)ctx;
    return weft_value((void *)&marker_tags[2]);
}

/* An owned pair (weft_deferred_add_both_owned) is {handler, ctx, dropped,
 * &owned_tag}: the tag in the errback context marks it, the errback path runs
 * the handler of the callback slot, and the errback slot keeps the dropped
 * hook (cast through a generic function type, and back before the call). */
static const char owned_tag;

typedef void (*generic_fn)(void);

static weft_handler_fn dropped_as_handler(weft_dropped_fn f)
{
    return (weft_handler_fn)(generic_fn)f;
}

static weft_dropped_fn handler_as_dropped(weft_handler_fn f)
{
    return (weft_dropped_fn)(generic_fn)f;
}

static unsigned kind_of(const weft_deferred *d)
{
    return d->kind;
}

static void set_value(weft_deferred *d, void *value)
{
    d->kind = WEFT_RESULT_VALUE;
    d->result.value = value;
}

static void set_failure(weft_deferred *d, weft_failure *f)
{
    d->kind = WEFT_RESULT_FAILURE;
    d->result.failure = f;
}

static void set_waiting(weft_deferred *d, weft_deferred *inner)
{
    d->kind = WEFT_RESULT_DEFERRED;
    d->result.deferred = inner;
}

static weft_result get_result(const weft_deferred *d)
{
    weft_result r;
    r.kind = (weft_result_kind)kind_of(d);
    r.value = d->result.value;
    if (r.kind == WEFT_RESULT_FAILURE)
        r.failure = d->result.failure;
    else if (r.kind == WEFT_RESULT_DEFERRED)
        r.deferred = d->result.deferred;
    return r;
}

/* ------------------------------------------------------------ pairs */

static bool has_pairs(const weft_deferred *d)
{
    if (d->flags & F_HEAP)
        return d->cbs.heap.cursor < d->cbs.heap.count;
    return (d->flags & F_ONE) != 0;
}

/* The growth cases of append_pair: leaving the inline slot, and a full
 * array (compacted when mostly consumed, else doubled). Out of line so that
 * the common append stays small enough to inline. */
static int append_slow(weft_deferred *d, const pair *p)
{
    if (!(d->flags & F_HEAP)) {
        pair *pairs = weft_malloc(4 * sizeof *pairs);
        if (!pairs)
            return WEFT_ENOMEM;
        pairs[0] = d->cbs.one;
        pairs[1] = *p;
        d->cbs.heap.pairs = pairs;
        d->cbs.heap.cap = 4;
        d->cbs.heap.count = 2;
        d->cbs.heap.cursor = 0;
        d->flags = (uint8_t)((d->flags & ~F_ONE) | F_HEAP);
        return WEFT_OK;
    }
    uint32_t live = d->cbs.heap.count - d->cbs.heap.cursor;
    if (d->cbs.heap.cursor >= d->cbs.heap.count / 2) {
        /* Most of the array is consumed: slide the live part down. Its cost
         * is paid by the consumed slots, so appends stay O(1) amortised. */
        memmove(d->cbs.heap.pairs, d->cbs.heap.pairs + d->cbs.heap.cursor, live * sizeof(pair));
        d->cbs.heap.cursor = 0;
        d->cbs.heap.count = live;
    } else {
        if (d->cbs.heap.cap >= PAIRS_MAX)
            return WEFT_ELIMIT;
        uint32_t cap = d->cbs.heap.cap * 2;
        pair *pairs = weft_realloc(d->cbs.heap.pairs, cap * sizeof *pairs);
        if (!pairs)
            return WEFT_ENOMEM;
        d->cbs.heap.pairs = pairs;
        d->cbs.heap.cap = cap;
    }
    d->cbs.heap.pairs[d->cbs.heap.count++] = *p;
    return WEFT_OK;
}

static inline void set_pair(pair *dst, weft_handler_fn cb, void *cb_ctx, weft_handler_fn eb,
                            void *eb_ctx)
{
    /* Field by field: building a pair on the stack and copying it costs a
     * store-forwarding stall on every append. */
    dst->cb = cb;
    dst->cb_ctx = cb_ctx;
    dst->eb = eb;
    dst->eb_ctx = eb_ctx;
}

/* Invariant: in heap mode cursor < count, or both are 0 (take_pair resets
 * them when the last pair is taken). */
static inline int append4(weft_deferred *d, weft_handler_fn cb, void *cb_ctx, weft_handler_fn eb,
                          void *eb_ctx)
{
    uint8_t flags = d->flags;
    if (!(flags & (F_HEAP | F_ONE))) {
        set_pair(&d->cbs.one, cb, cb_ctx, eb, eb_ctx);
        d->flags = (uint8_t)(flags | F_ONE);
        return WEFT_OK;
    }
    if ((flags & F_HEAP) && d->cbs.heap.count < d->cbs.heap.cap) {
        set_pair(&d->cbs.heap.pairs[d->cbs.heap.count++], cb, cb_ctx, eb, eb_ctx);
        return WEFT_OK;
    }
    pair p = {cb, cb_ctx, eb, eb_ctx};
    return append_slow(d, &p);
}

static inline int append_pair(weft_deferred *d, const pair *p)
{
    return append4(d, p->cb, p->cb_ctx, p->eb, p->eb_ctx);
}

static bool take_pair(weft_deferred *d, pair *out)
{
    if (d->flags & F_HEAP) {
        if (d->cbs.heap.cursor == d->cbs.heap.count)
            return false;
        *out = d->cbs.heap.pairs[d->cbs.heap.cursor++];
        if (d->cbs.heap.cursor == d->cbs.heap.count) {
            d->cbs.heap.cursor = 0;
            d->cbs.heap.count = 0;
        }
        return true;
    }
    if (!(d->flags & F_ONE))
        return false;
    *out = d->cbs.one;
    d->flags &= (uint8_t)~F_ONE;
    return true;
}

/* ------------------------------------------------ life and references */

static _Thread_local weft_deferred *free_head;
static _Thread_local bool freeing;

static weft_deferred *deferred_alloc(weft_canceller_fn canceller, void *ctx)
{
    weft_deferred *d = weft_malloc(sizeof *d);
    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    d->refs = 1;
    d->canceller = canceller;
    d->canceller_ctx = canceller ? ctx : NULL;
    set_value(d, NULL);
    return d;
}

weft_deferred *weft_deferred_new(void)
{
    return deferred_alloc(NULL, NULL);
}

weft_deferred *weft_deferred_new_cancellable(weft_canceller_fn canceller, void *ctx)
{
    return deferred_alloc(canceller, ctx);
}

weft_deferred *weft__deferred_new_list(void *state)
{
    return deferred_alloc(weft__dlist_cancel, state);
}

weft_deferred *weft_succeed(void *value)
{
    weft_deferred *d = deferred_alloc(NULL, NULL);
    if (!d)
        return NULL;
    d->flags |= F_CALLED;
    set_value(d, value);
    return d;
}

weft_deferred *weft_fail(weft_failure *f)
{
    weft_deferred *d = deferred_alloc(NULL, NULL);
    if (!d) {
        weft_failure_free(f);
        return NULL;
    }
    d->flags |= F_CALLED;
    set_failure(d, f ? f : weft_failure_new(WEFT_FAILURE_BAD_RESULT, "weft_fail(NULL)"));
    return d;
}

weft_deferred *weft_deferred_ref(weft_deferred *d)
{
    if (d)
        d->refs++;
    return d;
}

/* Find the continuation `outer` left on `inner` and make it an orphan: when
 * inner's chain reaches it, the result is dropped (a Failure is reported). */
static void orphan_continuation(weft_deferred *inner, weft_deferred *outer)
{
    pair *p = NULL;
    if (inner->flags & F_HEAP) {
        for (uint32_t i = inner->cbs.heap.cursor; i < inner->cbs.heap.count; i++) {
            pair *q = &inner->cbs.heap.pairs[i];
            if (q->cb == marker_continue && q->cb_ctx == outer) {
                p = q;
                break;
            }
        }
    } else if ((inner->flags & F_ONE) && inner->cbs.one.cb == marker_continue &&
               inner->cbs.one.cb_ctx == outer) {
        p = &inner->cbs.one;
    }
    if (p) {
        p->cb = p->eb = marker_orphan;
        p->cb_ctx = p->eb_ctx = NULL;
    }
}

static void drop_pair(pair *p)
{
    if (p->cb == marker_chain_to)
        weft_deferred_unref(p->cb_ctx);
    else if (p->cb == weft__dlist_member_cb)
        weft__dlist_member_dropped(p->cb_ctx);
    else if (p->eb_ctx == &owned_tag)
        handler_as_dropped(p->eb)(p->cb_ctx);
}

static void destroy(weft_deferred *d)
{
    switch (kind_of(d)) {
    case WEFT_RESULT_FAILURE:
        weft__report_unhandled(d->result.failure);
        weft_failure_free(d->result.failure);
        break;
    case WEFT_RESULT_DEFERRED:
        orphan_continuation(d->result.deferred, d);
        weft_deferred_unref(d->result.deferred);
        break;
    default:
        break;
    }
    set_value(d, NULL);
    pair p;
    while (take_pair(d, &p))
        drop_pair(&p);
    if (d->canceller == weft__dlist_cancel)
        weft__dlist_finalize(d->canceller_ctx);
    if (d->flags & F_HEAP)
        weft_free(d->cbs.heap.pairs);
    weft_free(d);
}

void weft_deferred_unref(weft_deferred *d)
{
    if (!d || d->refs == 0)
        return;
    if (--d->refs > 0)
        return;
    d->run_next = free_head;
    free_head = d;
    if (freeing)
        return;
    freeing = true;
    while (free_head) {
        weft_deferred *x = free_head;
        free_head = x->run_next;
        destroy(x);
    }
    freeing = false;
}

/* ---------------------------------------------------------- run loop */

static void push(weft_deferred **top, weft_deferred *d)
{
    d->refs++;
    d->flags |= F_RUNNING;
    d->run_next = *top;
    *top = d;
}

/* A handler's return value becomes cur's result. cur is on the run stack. */
static void settle(weft_deferred *cur, weft_result out)
{
    switch (out.kind) {
    case WEFT_RESULT_VALUE:
        set_value(cur, out.value);
        return;
    case WEFT_RESULT_FAILURE:
        set_failure(cur, out.failure ? out.failure
                                     : weft_failure_new(WEFT_FAILURE_BAD_RESULT,
                                                        "a handler returned weft_failed(NULL)"));
        return;
    case WEFT_RESULT_DEFERRED:
        break;
    default:
        set_failure(cur, weft_failure_new(WEFT_FAILURE_BAD_RESULT,
                                          "a handler returned an unknown result kind %d",
                                          (int)out.kind));
        return;
    }
    weft_deferred *r = out.deferred;
    if (!r) {
        set_failure(cur, weft_failure_new(WEFT_FAILURE_BAD_RESULT,
                                          "a handler returned weft_chain(NULL)"));
        return;
    }
    if (r == cur) {
        /* Twisted waits on itself forever here; weft fails the chain. */
        weft_deferred_unref(r);
        set_failure(cur, weft_failure_new(WEFT_FAILURE_SELF_CHAIN,
                                          "a callback returned the Deferred it is attached to"));
        return;
    }
    /* A cycle (r waits, through others, on cur) could never fire: Twisted
     * waits forever, weft fails the chain as for a Deferred returning itself.
     * The walk is as long as r's waiting chain, which is empty in the usual
     * case of a freshly made Deferred. */
    for (const weft_deferred *x = r; kind_of(x) == WEFT_RESULT_DEFERRED;) {
        x = x->result.deferred;
        if (x == cur) {
            weft_deferred_unref(r);
            set_failure(cur, weft_failure_new(WEFT_FAILURE_SELF_CHAIN,
                                              "a callback returned a Deferred that waits on it"));
            return;
        }
    }
    if ((r->flags & F_CALLED) && r->paused == 0 && !(r->flags & F_RUNNING) &&
        kind_of(r) != WEFT_RESULT_DEFERRED && !has_pairs(r)) {
        /* r already has its result: steal it, r keeps NULL. */
        cur->kind = r->kind;
        cur->result = r->result;
        set_value(r, NULL);
        weft_deferred_unref(r);
        return;
    }
    if (cur->paused == PAUSED_MAX) {
        weft_deferred_unref(r);
        set_failure(cur, weft_failure_new("Limit", "pause count limit reached"));
        return;
    }
    pair cont = {marker_continue, cur, marker_continue, cur};
    if (append_pair(r, &cont) != WEFT_OK) {
        weft_deferred_unref(r);
        set_failure(cur, weft__failure_no_memory());
        return;
    }
    cur->paused++;
    set_waiting(cur, r);
}

static void run(weft_deferred *start)
{
    if (start->flags & F_RUNNING)
        return;
    weft_deferred *top = NULL;
    push(&top, start);
    while (top) {
        weft_deferred *cur = top;
        pair p;
        if (cur->paused || !take_pair(cur, &p)) {
            top = cur->run_next;
            cur->run_next = NULL;
            cur->flags &= (uint8_t)~F_RUNNING;
            weft_deferred_unref(cur);
            continue;
        }
        if (p.cb == marker_continue) {
            /* cur is the inner Deferred an outer one waits on. */
            weft_deferred *outer = p.cb_ctx;
            outer->kind = cur->kind;
            outer->result = cur->result;
            set_value(cur, NULL);
            outer->paused--;
            cur->refs--; /* outer's reference on cur; the stack still holds one */
            push(&top, outer);
            continue;
        }
        if (p.cb == marker_orphan) {
            if (kind_of(cur) == WEFT_RESULT_FAILURE) {
                weft__report_unhandled(cur->result.failure);
                weft_failure_free(cur->result.failure);
            }
            set_value(cur, NULL);
            continue;
        }
        if (p.cb == marker_chain_to) {
            weft_deferred *other = p.cb_ctx;
            if (other->flags & F_CALLED) {
                if (other->flags & F_SUPPRESS) {
                    other->flags &= (uint8_t)~F_SUPPRESS;
                    if (kind_of(cur) == WEFT_RESULT_FAILURE)
                        weft_failure_free(cur->result.failure);
                    set_value(cur, NULL);
                } else {
                    if (kind_of(cur) == WEFT_RESULT_FAILURE)
                        weft_failure_free(cur->result.failure);
                    set_failure(cur, weft_failure_new(WEFT_FAILURE_ALREADY_CALLED,
                                                      "chain_to: the target Deferred was already called"));
                }
                weft_deferred_unref(other);
                continue;
            }
            other->flags |= F_CALLED;
            other->kind = cur->kind;
            other->result = cur->result;
            set_value(cur, NULL);
            if (other->paused == 0)
                push(&top, other);
            weft_deferred_unref(other); /* the pair's reference */
            continue;
        }
        bool failed = kind_of(cur) == WEFT_RESULT_FAILURE;
        bool eb_slot = failed && p.eb_ctx != &owned_tag;
        weft_handler_fn fn = eb_slot ? p.eb : p.cb;
        void *ctx = eb_slot ? p.eb_ctx : p.cb_ctx;
        if (!fn)
            continue;
        weft_result in = get_result(cur);
        weft_result out = fn(in, ctx);
        if (failed && !(out.kind == WEFT_RESULT_FAILURE && out.failure == in.failure))
            weft_failure_free(in.failure);
        settle(cur, out);
    }
}

/* ------------------------------------------------------------ firing */

static int fire(weft_deferred *d, bool failed, void *value, weft_failure *f)
{
    if (d->flags & F_CALLED) {
        if (d->flags & F_SUPPRESS) {
            d->flags &= (uint8_t)~F_SUPPRESS;
            weft_failure_free(f);
            return WEFT_OK;
        }
        weft_failure_free(f);
        return WEFT_EALREADYCALLED;
    }
    d->flags |= F_CALLED;
    if (failed)
        set_failure(d, f);
    else
        set_value(d, value);
    if (d->paused == 0)
        run(d);
    return WEFT_OK;
}

int weft_deferred_callback(weft_deferred *d, void *value)
{
    if (!d)
        return WEFT_EINVAL;
    return fire(d, false, value, NULL);
}

int weft_deferred_errback(weft_deferred *d, weft_failure *f)
{
    if (!d || !f) {
        weft_failure_free(f);
        return WEFT_EINVAL;
    }
    return fire(d, true, NULL, f);
}

static inline int add_pair(weft_deferred *d, weft_handler_fn callback, void *cb_ctx,
                           weft_handler_fn errback, void *eb_ctx)
{
    if (!d)
        return WEFT_EINVAL;
    int rc = append4(d, callback, callback ? cb_ctx : NULL, errback, errback ? eb_ctx : NULL);
    if (rc != WEFT_OK)
        return rc;
    if ((d->flags & F_CALLED) && d->paused == 0)
        run(d);
    return WEFT_OK;
}

int weft_deferred_add_callbacks(weft_deferred *d, weft_handler_fn callback, void *cb_ctx,
                                weft_handler_fn errback, void *eb_ctx)
{
    return add_pair(d, callback, cb_ctx, errback, eb_ctx);
}

int weft_deferred_add_callback(weft_deferred *d, weft_handler_fn callback, void *ctx)
{
    return add_pair(d, callback, ctx, NULL, NULL);
}

int weft_deferred_add_errback(weft_deferred *d, weft_handler_fn errback, void *ctx)
{
    return add_pair(d, NULL, NULL, errback, ctx);
}

int weft_deferred_add_both(weft_deferred *d, weft_handler_fn handler, void *ctx)
{
    return add_pair(d, handler, ctx, handler, ctx);
}

int weft_deferred_add_both_owned(weft_deferred *d, weft_handler_fn handler,
                                 weft_dropped_fn dropped, void *ctx)
{
    if (!handler || !dropped)
        return WEFT_EINVAL;
    return add_pair(d, handler, ctx, dropped_as_handler(dropped), (void *)&owned_tag);
}

int weft_deferred_chain_to(weft_deferred *d, weft_deferred *other)
{
    if (!d || !other)
        return WEFT_EINVAL;
    if (d == other)
        return WEFT_ESELFCHAIN;
    pair p = {marker_chain_to, other, marker_chain_to, other};
    int rc = append_pair(d, &p);
    if (rc != WEFT_OK)
        return rc;
    other->refs++;
    if ((d->flags & F_CALLED) && d->paused == 0)
        run(d);
    return WEFT_OK;
}

int weft_deferred_pause(weft_deferred *d)
{
    if (!d)
        return WEFT_EINVAL;
    if (d->paused == PAUSED_MAX)
        return WEFT_ELIMIT;
    d->paused++;
    return WEFT_OK;
}

int weft_deferred_unpause(weft_deferred *d)
{
    if (!d)
        return WEFT_EINVAL;
    /* While d waits on another Deferred, one pause belongs to that wait. */
    unsigned chain_pause = kind_of(d) == WEFT_RESULT_DEFERRED ? 1u : 0u;
    if (d->paused <= chain_pause)
        return WEFT_ENOTPAUSED;
    d->paused--;
    if (d->paused == 0 && (d->flags & F_CALLED))
        run(d);
    return WEFT_OK;
}

int weft_deferred_cancel(weft_deferred *d)
{
    if (!d)
        return WEFT_EINVAL;
    weft_deferred_ref(d);
    /* A Deferred waiting on another forwards the cancel to it; walk the whole
     * waiting chain in a loop rather than recursively. */
    while ((d->flags & F_CALLED) && kind_of(d) == WEFT_RESULT_DEFERRED) {
        weft_deferred *inner = weft_deferred_ref(d->result.deferred);
        weft_deferred_unref(d);
        d = inner;
    }
    if (!(d->flags & F_CALLED)) {
        if (d->canceller == weft__dlist_cancel) {
            /* DeferredList.cancel: cancel the members, every time, and let
             * them decide the list's result. */
            d->canceller(d, d->canceller_ctx);
        } else {
            if (d->canceller) {
                if (!(d->flags & F_CANCELLER_RAN)) {
                    d->flags |= F_CANCELLER_RAN;
                    d->canceller(d, d->canceller_ctx);
                }
            } else {
                d->flags |= F_SUPPRESS;
            }
            if (!(d->flags & F_CALLED))
                fire(d, true, NULL, weft_failure_new(WEFT_FAILURE_CANCELLED, "Deferred was cancelled"));
        }
    }
    weft_deferred_unref(d);
    return WEFT_OK;
}

/* -------------------------------------------------------- inspection */

weft_deferred_state weft_deferred_peek(const weft_deferred *d, weft_result *out)
{
    if (!d || !(d->flags & F_CALLED) || d->paused || (d->flags & F_RUNNING) || has_pairs(d) ||
        kind_of(d) == WEFT_RESULT_DEFERRED)
        return WEFT_DEFERRED_PENDING;
    weft_result r = get_result(d);
    if (out)
        *out = r;
    return r.kind == WEFT_RESULT_FAILURE ? WEFT_DEFERRED_FAILED : WEFT_DEFERRED_SUCCEEDED;
}

bool weft_deferred_called(const weft_deferred *d)
{
    return d && (d->flags & F_CALLED);
}

unsigned weft_deferred_paused(const weft_deferred *d)
{
    return d ? d->paused : 0;
}

int weft_deferred_take_result(weft_deferred *d, weft_result *out)
{
    if (!d || !out)
        return WEFT_EINVAL;
    if (weft_deferred_peek(d, out) == WEFT_DEFERRED_PENDING)
        return WEFT_ESTATE;
    set_value(d, NULL);
    return WEFT_OK;
}
