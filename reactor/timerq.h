/* timerq.h: the delayed-call queue shared by the reactor backends. Internal.
 *
 * A queue holds pending calls keyed by (time, sequence). The sequence number
 * is handed out when a call is scheduled (or re-keyed by reset/delay), so
 * equal times keep their scheduling order as the default order.
 *
 * Layout: a 4-ary min-heap of 16-byte entries {time, node index, ord} with
 * the whole key inline (the four children of a node share one cache line, and
 * no comparison reads a node, ties included), plus a "pass"
 * array: the calls of the current pass, taken out of the heap together and
 * sorted by (time, sequence). A backend starts a pass with every call due up
 * to some limit and then takes them out one by one in any order it likes (the
 * simulator asks its choice source). Calls scheduled meanwhile go to the heap
 * and wait for the next pass: that is the rule "a call scheduled while calls
 * are running never runs in the same pass".
 *
 * Call nodes come from slabs with a free list; steady state allocates nothing.
 * Each node has a fixed index; where its entry sits (heap or pass position)
 * is kept in a dense array indexed by node, not in the node, so moving
 * entries during a sift writes to a small hot array instead of to scattered
 * nodes. A node is 40 bytes; with its heap entry and position a pending call
 * costs 60 bytes plus the arrays' growth slack.
 *
 * A backend embeds the queue anywhere in its reactor struct; weft__timerq_init
 * points the reactor header's `timers` at it, which is how reactor/call.c finds
 * it from a plain weft_reactor pointer.
 */
#ifndef WEFT_TIMERQ_H
#define WEFT_TIMERQ_H

#include <stddef.h>
#include <stdint.h>

#include "reactor/reactor_internal.h"

/* Call states. */
enum {
    WEFT__CALL_FREE = 0,
    WEFT__CALL_HEAP = 1,      /* pending, in the heap */
    WEFT__CALL_PASS = 2,      /* pending, in the current pass */
    WEFT__CALL_CALLED = 3,    /* ran (or is running) */
    WEFT__CALL_CANCELLED = 4, /* cancelled before it ran */
};

/* Bits of weft_call.meta. */
#define WEFT__CALL_LABEL_BITS 10u
#define WEFT__CALL_LABEL_MAX ((1u << WEFT__CALL_LABEL_BITS) - 1u)
#define WEFT__CALL_STATE_SHIFT 10u
#define WEFT__CALL_STATE_MASK (7u << WEFT__CALL_STATE_SHIFT)
#define WEFT__CALL_API 0x2000u    /* made through the reactor API (call.c) */
#define WEFT__CALL_HANDLE 0x4000u /* a user holds a handle to it */
#define WEFT__CALL_DROPPABLE 0x8000u /* ctx begins with a weft__dropped_fn */

/* Dropped calls. A call added with WEFT__CALL_DROPPABLE (weft__call_later_ex)
 * has a ctx whose first member is a weft__dropped_fn: when the call is freed
 * without running (the queue destroyed with it pending, or dropped with its
 * host by weft__timerq_drop_host), the queue calls that function with ctx
 * instead of the call's fn, so whatever ctx holds can be released. The call
 * is already out of the queue and marked cancelled then: the hook must not
 * cancel or release its handle (the queue frees the node). */
/* weft__dropped_fn: reactor/reactor_internal.h. */

/* Most calls one queue holds (node indexes and positions are 32-bit). */
#define WEFT__TIMERQ_MAX ((size_t)UINT32_MAX - 1024u)
#define WEFT__TIMERQ_CHUNK_NODES 1024u

typedef struct weft_timerq weft_timerq;

struct weft_call {
    union {
        weft_call_fn fn;     /* pending: what to run */
        weft_call *next_free; /* free: the free list */
    } u;
    void *ctx;
    weft_timerq *q;
    union {
        uint64_t seq;        /* pending: order among equal times */
        weft_time_ns time_ns; /* ran or cancelled: when it was due */
    } k;
    uint32_t idx;  /* fixed slab index: q->pos[idx] is where its entry is */
    uint16_t host; /* owner tag (the simulator's host) */
    uint16_t meta; /* label id, state, handle bit */
};

/* A heap or pass entry. ord orders calls due at the same time: it follows
 * the calls' sequence numbers (q->next_ord; renumbered 0..n-1 in the same
 * order if it would wrap), so comparisons never read the nodes. */
typedef struct weft__tq_entry {
    weft_time_ns time_ns;
    uint32_t idx; /* the call's node index; WEFT__TQ_GONE: a pass tombstone */
    uint32_t ord;
} weft__tq_entry;
#define WEFT__TQ_GONE UINT32_MAX

struct weft_timerq {
    weft__tq_entry *heap; /* heap[0] is the root; 64-byte aligned + 3 */
    void *heap_mem;
    size_t len, cap;
    /* The pass: slots [0, pass_len) in (time, sequence) order; taken and
     * cancelled calls leave tombstones, so slots never move. pass_head is the
     * first live slot; a Fenwick tree over the slots (pass_fen, 1-based)
     * counts live ones, so the i-th live call is found in O(log k). */
    weft__tq_entry *pass;
    uint32_t *pass_fen;
    size_t pass_head, pass_len, pass_live, pass_cap, pass_fen_top;
    uint64_t next_seq;
    uint32_t next_ord; /* see weft__tq_entry */
    weft_call *free_list;
    weft_call **chunks;
    size_t nchunks, chunks_cap;
    uint32_t *pos; /* by node index: position in the heap or the pass */
    size_t live; /* nodes handed out and not yet freed */
    weft_reactor *owner; /* for now() in reset/delay */
    /* Label ids for named calls (weft__call_later_ex): the simulator's label
     * table; NULL (the epoll backend): every call is label 0. */
    unsigned (*label_of)(weft_reactor *owner, const char *label);
    uint16_t tag;        /* stamped as host on new calls */
    bool dropping;       /* hooks of dropped calls are running: refuse adds */
};

/* A reactor header followed by its queue: a convenient layout for a backend
 * (the epoll backend uses it), not a rule. */
typedef struct weft__timed_reactor {
    struct weft_reactor base;
    weft_timerq timers;
} weft__timed_reactor;

static inline weft_timerq *weft__reactor_timerq(weft_reactor *r)
{
    return r->timers;
}

static inline unsigned weft__call_state(const weft_call *c)
{
    return (c->meta & WEFT__CALL_STATE_MASK) >> WEFT__CALL_STATE_SHIFT;
}

static inline unsigned weft__call_label(const weft_call *c)
{
    return c->meta & WEFT__CALL_LABEL_MAX;
}

/* The node with index idx. */
static inline weft_call *weft__timerq_node(const weft_timerq *q, uint32_t idx)
{
    return &q->chunks[idx >> 10][idx & 1023u];
}

static inline bool weft__call_pending(const weft_call *c)
{
    unsigned st = weft__call_state(c);
    return st == WEFT__CALL_HEAP || st == WEFT__CALL_PASS;
}

/* Also sets owner->timers = q (owner may be NULL: a bare queue). */
void weft__timerq_init(weft_timerq *q, weft_reactor *owner);
/* Drops every pending call (the droppable ones' hooks run, in node order;
 * adds are refused meanwhile), then frees every node, pending or held by a
 * handle, and the arrays. */
void weft__timerq_destroy(weft_timerq *q);
/* Drop every pending call tagged with host that was made through the
 * reactor API (WEFT__CALL_API; the backend's own events are left alone):
 * each is cancelled (freed unless a handle holds it) and a droppable one's
 * hook runs, in node order. Hooks may schedule new calls. Returns how many
 * were dropped. */
size_t weft__timerq_drop_host(weft_timerq *q, uint16_t host);

/* Schedule fn(ctx) at when_ns. handle: the caller gets a handle it must
 * release. NULL: out of memory, queue full, or the queue is dropping its
 * calls (being destroyed). */
weft_call *weft__timerq_add(weft_timerq *q, weft_time_ns when_ns, unsigned label, bool handle,
                            weft_call_fn fn, void *ctx);
/* The same with extra meta bits (WEFT__CALL_API, WEFT__CALL_DROPPABLE). */
weft_call *weft__timerq_add_flags(weft_timerq *q, weft_time_ns when_ns, unsigned label,
                                  unsigned flags, weft_call_fn fn, void *ctx);
/* Take a pending call out (heap or pass) and mark it cancelled; frees it when
 * no handle holds it. The caller checked it is pending. */
void weft__timerq_cancel(weft_timerq *q, weft_call *c);
/* Re-key a pending call: due at when_ns with a fresh sequence number (it moves
 * to the heap if it was in the pass). */
int weft__timerq_rekey(weft_timerq *q, weft_call *c, weft_time_ns when_ns);
/* When a pending call is due. */
weft_time_ns weft__timerq_due(const weft_timerq *q, const weft_call *c);

size_t weft__timerq_pending(const weft_timerq *q);
/* Earliest due time among pending calls; false when none. */
bool weft__timerq_next_time(const weft_timerq *q, weft_time_ns *t);

/* The heap part. */
static inline bool weft__timerq_heap_top(const weft_timerq *q, weft_time_ns *t)
{
    if (q->len == 0)
        return false;
    *t = q->heap[0].time_ns;
    return true;
}
/* True when a second heap entry (besides the root) is due at or before
 * limit_ns: the root is not alone. */
bool weft__timerq_second_due(const weft_timerq *q, weft_time_ns limit_ns);
/* Start loading what the next dispatch will touch, while the current one
 * runs. During a pass, the next call is one of the pass's: the contexts of
 * its first live calls. Otherwise the next root's context (its node was
 * fetched by the last pop) and the nodes of the root's children, among which
 * is the root after next. A hint only: no effect on behaviour. */
static inline void weft__timerq_prefetch_next(const weft_timerq *q)
{
#if defined(__GNUC__)
    if (q->pass_live) {
        size_t seen = 0;
        for (size_t i = q->pass_head; i < q->pass_len && seen < 4; i++) {
            if (q->pass[i].idx == WEFT__TQ_GONE)
                continue;
            __builtin_prefetch(weft__timerq_node(q, q->pass[i].idx)->ctx);
            seen++;
        }
        return;
    }
    size_t n = q->len;
    if (n == 0)
        return;
    const weft__tq_entry *h = q->heap;
    __builtin_prefetch(weft__timerq_node(q, h[0].idx)->ctx);
    size_t end = n < 5 ? n : 5;
    for (size_t j = 1; j < end; j++)
        __builtin_prefetch(weft__timerq_node(q, h[j].idx));
#else
    (void)q;
#endif
}

/* The call that becomes the root when the root is popped (the smallest of
 * its children), if no other call is scheduled meanwhile; NULL when the heap
 * has no second entry. */
static inline const weft_call *weft__timerq_after_next(const weft_timerq *q)
{
    size_t n = q->len;
    if (n < 2)
        return NULL;
    const weft__tq_entry *h = q->heap;
    size_t end = n < 5 ? n : 5, best = 1;
    for (size_t j = 2; j < end; j++)
        if (h[j].time_ns < h[best].time_ns ||
            (h[j].time_ns == h[best].time_ns && h[j].ord < h[best].ord))
            best = j;
    return weft__timerq_node(q, h[best].idx);
}

/* Remove the root. The call stays in its pending state until
 * weft__timerq_fire; *time_ns gets its due time. */
weft_call *weft__timerq_pop(weft_timerq *q, weft_time_ns *time_ns);

/* The pass. Fill: move every heap entry due at or before limit_ns into the
 * (empty) pass, in (time, sequence) order; returns how many are in it.
 * WEFT_ENOMEM is reported as 0 moved with the heap untouched. */
size_t weft__timerq_fill_pass(weft_timerq *q, weft_time_ns limit_ns);
static inline size_t weft__timerq_pass_size(const weft_timerq *q)
{
    return q->pass_live;
}
/* The i-th (0-based, in (time, sequence) order) live entry of the pass;
 * i < weft__timerq_pass_size(q). O(1) for i == 0, O(log k) otherwise. */
const weft__tq_entry *weft__timerq_pass_at(const weft_timerq *q, size_t i);
/* Remove the i-th entry from the pass and return its call (still pending
 * until weft__timerq_fire). */
weft_call *weft__timerq_pass_take(weft_timerq *q, size_t i, weft_time_ns *time_ns);

/* End the pass early: its calls go back to the heap with their keys, to be
 * taken again with whatever is due by then. WEFT_ENOMEM leaves the pass. */
int weft__timerq_unpass(weft_timerq *q);

/* Mark a taken call as called at time_ns, freeing the node when no handle
 * holds it. Read what you need (fn, ctx, seq, label, host) first. */
void weft__timerq_fire(weft_timerq *q, weft_call *c, weft_time_ns time_ns);
/* The handle's owner lets go; frees the node if it is no longer pending. */
void weft__timerq_release(weft_timerq *q, weft_call *c);

/* Bytes the queue has allocated (nodes, heap, pass, slab table). */
size_t weft__timerq_bytes(const weft_timerq *q);

#endif
