/* timerq.c: the delayed-call queue (see timerq.h for the layout).
 *
 * Invariants:
 * - every pending call c is either in the heap (state HEAP,
 *   heap[pos[c->idx]].idx == c->idx) or in the pass (state PASS,
 *   pass[pos[c->idx]].idx == c->idx and not gone, head <= pos < pass_len);
 * - the pass's live slots are sorted by (time, sequence) and counted by its
 *   Fenwick tree; pass_head is the first live slot;
 * - the heap is a 4-ary min-heap on (time, ord); ords are unique among
 *   pending calls and ordered as their sequence numbers, so the order is
 *   (time, sequence), total, and never depends on addresses;
 * - the live pass entries are sorted by (time, sequence);
 * - a node is freed exactly when it is no longer pending and no handle holds
 *   it.
 *
 * The heap array is allocated 64-byte aligned and shifted by three entries so
 * that the four children of any node (4i+1 .. 4i+4) sit in one cache line.
 */
#include <stdlib.h>
#include <string.h>

#include "reactor/timerq.h"

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

#define CHUNK_NODES WEFT__TIMERQ_CHUNK_NODES
_Static_assert(WEFT__TIMERQ_CHUNK_NODES == 1024u, "weft__timerq_node() shifts by 10");
_Static_assert(sizeof(weft__tq_entry) == 16, "four heap entries per cache line");
#define HEAP_SHIFT 3u
#define CACHE_LINE 64u

static inline void set_state(weft_call *c, unsigned st)
{
    c->meta = (uint16_t)((c->meta & ~WEFT__CALL_STATE_MASK) | (st << WEFT__CALL_STATE_SHIFT));
}

static inline weft_call *node_of(const weft_timerq *q, const weft__tq_entry *e)
{
    return weft__timerq_node(q, e->idx);
}

/* (time, ord): ord follows the sequence numbers, so this is the (time,
 * sequence) order without reading a node, ties included. */
static inline bool entry_less(const weft_timerq *q, const weft__tq_entry *a,
                              const weft__tq_entry *b)
{
    (void)q;
    if (a->time_ns != b->time_ns)
        return a->time_ns < b->time_ns;
    return a->ord < b->ord;
}

static int ord_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* next_ord would wrap: give the pending calls ords 0..n-1 in their current
 * order (which is their sequence order), so every comparison stays the same.
 * Once per 2^32 schedulings. */
static int ord_renumber(weft_timerq *q)
{
    size_t n = q->len + q->pass_live;
    uint64_t *keys = weft_malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return WEFT_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < q->len; i++)
        keys[k++] = (uint64_t)q->heap[i].ord << 32 | q->heap[i].idx;
    for (size_t i = q->pass_head; i < q->pass_len; i++)
        if (q->pass[i].idx != WEFT__TQ_GONE)
            keys[k++] = (uint64_t)q->pass[i].ord << 32 | q->pass[i].idx;
    qsort(keys, k, sizeof *keys, ord_cmp);
    for (size_t r = 0; r < k; r++) {
        uint32_t idx = (uint32_t)keys[r];
        weft_call *c = weft__timerq_node(q, idx);
        weft__tq_entry *e = weft__call_state(c) == WEFT__CALL_HEAP ? &q->heap[q->pos[idx]]
                                                                   : &q->pass[q->pos[idx]];
        e->ord = (uint32_t)r;
    }
    weft_free(keys);
    q->next_ord = (uint32_t)k;
    return WEFT_OK;
}

/* A fresh sequence number and ord for c. */
static int take_order(weft_timerq *q, weft_call *c, uint32_t *ord)
{
    if (q->next_ord == UINT32_MAX) {
        int err = ord_renumber(q);
        if (err)
            return err;
    }
    *ord = q->next_ord++;
    c->k.seq = q->next_seq++;
    return WEFT_OK;
}

/* Grow an array geometrically: doubling while small, by a quarter when big
 * (bounds the slack of the per-call arrays). */
static size_t grow_cap(size_t cap, size_t first)
{
    if (cap == 0)
        return first;
    return cap < ((size_t)1 << 20) ? cap * 2 : cap + cap / 4;
}

void weft__timerq_init(weft_timerq *q, weft_reactor *owner)
{
    memset(q, 0, sizeof *q);
    q->owner = owner;
    if (owner)
        owner->timers = q;
}

/* Take pending call c out of the queue, mark it cancelled and run its
 * dropped hook. The node is freed here unless a handle holds it (the handle
 * owner, or the queue's destruction, frees it then). */
static void drop_call(weft_timerq *q, weft_call *c);

void weft__timerq_destroy(weft_timerq *q)
{
    q->dropping = true;
    for (size_t k = 0; k < q->nchunks; k++) {
        for (size_t i = 0; i < CHUNK_NODES; i++) {
            weft_call *c = &q->chunks[k][i];
            if (weft__call_pending(c))
                drop_call(q, c);
        }
    }
    for (size_t i = 0; i < q->nchunks; i++)
        weft_free(q->chunks[i]);
    weft_free(q->chunks);
    weft_free(q->pos);
    weft_free(q->heap_mem);
    weft_free(q->pass);
    weft_free(q->pass_fen);
    memset(q, 0, sizeof *q);
}

/* ---------------------------------------------------------------- nodes */

static weft_call *node_alloc(weft_timerq *q)
{
    if (!q->free_list) {
        if ((q->nchunks + 1) * CHUNK_NODES > WEFT__TIMERQ_MAX)
            return NULL;
        if (q->nchunks == q->chunks_cap) {
            size_t cap = grow_cap(q->chunks_cap, 4);
            weft_call **chunks = weft_realloc(q->chunks, cap * sizeof *chunks);
            if (!chunks)
                return NULL;
            q->chunks = chunks;
            uint32_t *pos = weft_realloc(q->pos, cap * CHUNK_NODES * sizeof *pos);
            if (!pos)
                return NULL; /* chunks grew: harmless, cap stays */
            q->pos = pos;
            q->chunks_cap = cap;
        }
        weft_call *chunk = weft_malloc(CHUNK_NODES * sizeof *chunk);
        if (!chunk)
            return NULL;
        uint32_t base = (uint32_t)(q->nchunks * CHUNK_NODES);
        q->chunks[q->nchunks++] = chunk;
        /* Thread the free list so nodes are handed out in index order within
         * a chunk (cache friendly; order never affects behaviour). */
        for (size_t i = CHUNK_NODES; i-- > 0;) {
            chunk[i].meta = 0;
            chunk[i].idx = base + (uint32_t)i;
            chunk[i].u.next_free = q->free_list;
            q->free_list = &chunk[i];
        }
    }
    weft_call *c = q->free_list;
    q->free_list = c->u.next_free;
    q->live++;
    return c;
}

static void node_free(weft_timerq *q, weft_call *c)
{
    c->meta = 0;
    c->u.next_free = q->free_list;
    q->free_list = c;
    q->live--;
}

/* ----------------------------------------------------------------- heap */

static inline void place(weft_timerq *q, size_t i, weft__tq_entry e)
{
    q->heap[i] = e;
    q->pos[e.idx] = (uint32_t)i;
}

static void sift_up(weft_timerq *q, size_t i, weft__tq_entry e)
{
    weft__tq_entry *h = q->heap;
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!entry_less(q, &e, &h[parent]))
            break;
        place(q, i, h[parent]);
        i = parent;
    }
    place(q, i, e);
}

static void sift_down(weft_timerq *q, size_t i, weft__tq_entry e)
{
    weft__tq_entry *h = q->heap;
    size_t n = q->len;
    for (;;) {
        size_t first = 4 * i + 1;
        if (first >= n)
            break;
        size_t end = first + 4 < n ? first + 4 : n;
        /* The next level down is one of four cache lines: ask for all of
         * them while this level is compared (memory-level parallelism). */
        if (4 * first + 1 < n) {
            for (size_t j = first; j < end; j++)
                PREFETCH(&h[4 * j + 1]);
        }
        size_t best = first;
        for (size_t j = first + 1; j < end; j++)
            if (entry_less(q, &h[j], &h[best]))
                best = j;
        if (!entry_less(q, &h[best], &e))
            break;
        place(q, i, h[best]);
        i = best;
    }
    place(q, i, e);
}

static int heap_grow(weft_timerq *q)
{
    if (q->cap >= WEFT__TIMERQ_MAX)
        return WEFT_ELIMIT;
    size_t cap = grow_cap(q->cap, 64);
    if (cap > WEFT__TIMERQ_MAX)
        cap = WEFT__TIMERQ_MAX;
    size_t bytes = (cap + HEAP_SHIFT) * sizeof(weft__tq_entry) + CACHE_LINE;
    void *mem = weft_malloc(bytes);
    if (!mem)
        return WEFT_ENOMEM;
    uintptr_t base = ((uintptr_t)mem + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1);
    weft__tq_entry *heap = (weft__tq_entry *)base + HEAP_SHIFT;
    if (q->len)
        memcpy(heap, q->heap, q->len * sizeof *heap);
    weft_free(q->heap_mem);
    q->heap_mem = mem;
    q->heap = heap;
    q->cap = cap;
    return WEFT_OK;
}

/* Push c (its sequence number and ord taken here). */
static int heap_push(weft_timerq *q, weft_call *c, weft_time_ns when_ns)
{
    if (q->len == q->cap) {
        int err = heap_grow(q);
        if (err)
            return err;
    }
    weft__tq_entry e = {when_ns, c->idx, 0};
    int err = take_order(q, c, &e.ord);
    if (err)
        return err;
    set_state(c, WEFT__CALL_HEAP);
    sift_up(q, q->len++, e);
    return WEFT_OK;
}

/* Remove heap[i]; returns the entry. */
static weft__tq_entry heap_remove(weft_timerq *q, size_t i)
{
    weft__tq_entry out = q->heap[i];
    weft__tq_entry last = q->heap[--q->len];
    if (i < q->len) {
        if (i > 0 && entry_less(q, &last, &q->heap[(i - 1) / 4]))
            sift_up(q, i, last);
        else
            sift_down(q, i, last);
    }
    return out;
}

bool weft__timerq_second_due(const weft_timerq *q, weft_time_ns limit_ns)
{
    size_t end = q->len < 5 ? q->len : 5;
    for (size_t j = 1; j < end; j++)
        if (q->heap[j].time_ns <= limit_ns)
            return true;
    return false;
}

weft_call *weft__timerq_pop(weft_timerq *q, weft_time_ns *time_ns)
{
    if (q->len == 0)
        return NULL;
    weft__tq_entry e = heap_remove(q, 0);
    /* The next root's node is read at the next pop: start loading it now so
     * the miss overlaps with running this call. */
    if (q->len)
        PREFETCH(node_of(q, &q->heap[0]));
    *time_ns = e.time_ns;
    return node_of(q, &e);
}

/* ----------------------------------------------------------------- pass */

/* Fenwick tree over the pass slots: fen[i] (1-based) counts the live slots in
 * (i - lowbit(i), i]. */
static void fen_build(weft_timerq *q)
{
    size_t n = q->pass_len;
    uint32_t *fen = q->pass_fen;
    for (size_t i = 1; i <= n; i++)
        fen[i] = 1;
    for (size_t i = 1; i <= n; i++) {
        size_t j = i + (i & (~i + 1));
        if (j <= n)
            fen[j] += fen[i];
    }
    size_t top = 1;
    while (top * 2 <= n)
        top *= 2;
    q->pass_fen_top = n ? top : 0;
}

static void fen_dec(weft_timerq *q, size_t slot)
{
    for (size_t i = slot + 1; i <= q->pass_len; i += i & (~i + 1))
        q->pass_fen[i]--;
}

/* Slot of the live entry of 0-based rank r (r < pass_live). */
static size_t fen_find(const weft_timerq *q, size_t r)
{
    size_t pos = 0;
    uint32_t rem = (uint32_t)r + 1;
    for (size_t step = q->pass_fen_top; step; step >>= 1) {
        if (pos + step <= q->pass_len && q->pass_fen[pos + step] < rem) {
            pos += step;
            rem -= q->pass_fen[pos];
        }
    }
    return pos; /* the 1-based position pos + 1, as a 0-based slot */
}

static void pass_reset(weft_timerq *q)
{
    q->pass_head = q->pass_len = q->pass_live = 0;
    q->pass_fen_top = 0;
}

static void pass_remove(weft_timerq *q, size_t slot)
{
    q->pass[slot].idx = WEFT__TQ_GONE;
    fen_dec(q, slot);
    if (--q->pass_live == 0) {
        pass_reset(q);
        return;
    }
    while (q->pass[q->pass_head].idx == WEFT__TQ_GONE)
        q->pass_head++;
}

static size_t pass_slot(const weft_timerq *q, size_t i)
{
    return i == 0 ? q->pass_head : fen_find(q, i);
}

const weft__tq_entry *weft__timerq_pass_at(const weft_timerq *q, size_t i)
{
    return &q->pass[pass_slot(q, i)];
}

static bool pass_reserve(weft_timerq *q, size_t n)
{
    if (n < q->pass_cap)
        return true;
    size_t cap = grow_cap(q->pass_cap, 16);
    weft__tq_entry *p = weft_realloc(q->pass, cap * sizeof *p);
    if (!p)
        return false;
    q->pass = p;
    uint32_t *fen = weft_realloc(q->pass_fen, (cap + 1) * sizeof *fen);
    if (!fen)
        return false; /* pass grew, cap did not: harmless */
    q->pass_fen = fen;
    q->pass_cap = cap;
    return true;
}

size_t weft__timerq_fill_pass(weft_timerq *q, weft_time_ns limit_ns)
{
    if (q->pass_live)
        return q->pass_live;
    pass_reset(q);
    size_t n = 0;
    while (q->len > 0 && q->heap[0].time_ns <= limit_ns) {
        if (!pass_reserve(q, n))
            break; /* run with what we have; the rest stays in the heap */
        weft__tq_entry e = heap_remove(q, 0);
        set_state(node_of(q, &e), WEFT__CALL_PASS);
        q->pos[e.idx] = (uint32_t)n;
        q->pass[n++] = e;
    }
    q->pass_len = q->pass_live = n;
    fen_build(q);
    return n;
}

int weft__timerq_unpass(weft_timerq *q)
{
    size_t n = q->pass_live;
    while (q->cap - q->len < n) {
        int err = heap_grow(q);
        if (err)
            return err;
    }
    for (size_t i = q->pass_head; i < q->pass_len; i++) {
        weft__tq_entry e = q->pass[i];
        if (e.idx == WEFT__TQ_GONE)
            continue;
        set_state(node_of(q, &e), WEFT__CALL_HEAP);
        sift_up(q, q->len++, e);
    }
    pass_reset(q);
    return WEFT_OK;
}

weft_call *weft__timerq_pass_take(weft_timerq *q, size_t i, weft_time_ns *time_ns)
{
    size_t slot = pass_slot(q, i);
    weft__tq_entry e = q->pass[slot];
    pass_remove(q, slot);
    *time_ns = e.time_ns;
    return node_of(q, &e);
}

/* ---------------------------------------------------------------- calls */

weft_call *weft__timerq_add(weft_timerq *q, weft_time_ns when_ns, unsigned label, bool handle,
                            weft_call_fn fn, void *ctx)
{
    return weft__timerq_add_flags(q, when_ns, label, handle ? WEFT__CALL_HANDLE : 0u, fn, ctx);
}

weft_call *weft__timerq_add_flags(weft_timerq *q, weft_time_ns when_ns, unsigned label,
                                  unsigned flags, weft_call_fn fn, void *ctx)
{
    if (q->dropping)
        return NULL;
    weft_call *c = node_alloc(q);
    if (!c)
        return NULL;
    c->u.fn = fn;
    c->ctx = ctx;
    c->q = q;
    c->host = q->tag;
    flags &= WEFT__CALL_API | WEFT__CALL_HANDLE | WEFT__CALL_DROPPABLE;
    c->meta = (uint16_t)((label & WEFT__CALL_LABEL_MAX) | flags);
    if (heap_push(q, c, when_ns) != WEFT_OK) {
        node_free(q, c);
        return NULL;
    }
    return c;
}

weft_time_ns weft__timerq_due(const weft_timerq *q, const weft_call *c)
{
    switch (weft__call_state(c)) {
    case WEFT__CALL_HEAP:
        return q->heap[q->pos[c->idx]].time_ns;
    case WEFT__CALL_PASS:
        return q->pass[q->pos[c->idx]].time_ns;
    default:
        return c->k.time_ns;
    }
}

static weft__tq_entry take_pending(weft_timerq *q, weft_call *c)
{
    weft__tq_entry e;
    uint32_t at = q->pos[c->idx];
    if (weft__call_state(c) == WEFT__CALL_HEAP) {
        e = heap_remove(q, at);
    } else {
        e = q->pass[at];
        pass_remove(q, at);
    }
    return e;
}

void weft__timerq_cancel(weft_timerq *q, weft_call *c)
{
    weft__tq_entry e = take_pending(q, c);
    c->k.time_ns = e.time_ns;
    set_state(c, WEFT__CALL_CANCELLED);
    if (!(c->meta & WEFT__CALL_HANDLE))
        node_free(q, c);
}

static void drop_call(weft_timerq *q, weft_call *c)
{
    bool hook = (c->meta & WEFT__CALL_DROPPABLE) != 0;
    void *ctx = c->ctx;
    weft__timerq_cancel(q, c); /* c may be freed from here on */
    if (hook) {
        weft__dropped_fn dropped;
        memcpy(&dropped, ctx, sizeof dropped); /* ctx's first member */
        dropped(ctx);
    }
}

size_t weft__timerq_drop_host(weft_timerq *q, uint16_t host)
{
    /* Each node index is visited once, so calls the hooks schedule are
     * dropped only when they land on an index not yet visited: the sweep
     * ends whatever the hooks do. */
    size_t n = 0;
    for (size_t k = 0; k < q->nchunks; k++) {
        for (size_t i = 0; i < CHUNK_NODES; i++) {
            weft_call *c = &q->chunks[k][i];
            if (weft__call_pending(c) && c->host == host && (c->meta & WEFT__CALL_API)) {
                drop_call(q, c);
                n++;
            }
        }
    }
    return n;
}

int weft__timerq_rekey(weft_timerq *q, weft_call *c, weft_time_ns when_ns)
{
    if (weft__call_state(c) == WEFT__CALL_HEAP) {
        /* In place: new key, then restore the heap order. */
        uint32_t ord;
        int err = take_order(q, c, &ord); /* may renumber: read pos after */
        if (err)
            return err;
        size_t i = q->pos[c->idx];
        weft__tq_entry e = {when_ns, c->idx, ord};
        q->heap[i] = e;
        if (i > 0 && entry_less(q, &e, &q->heap[(i - 1) / 4]))
            sift_up(q, i, e);
        else
            sift_down(q, i, e);
        return WEFT_OK;
    }
    /* In the pass: make room in the heap first so failure changes nothing. */
    if (q->len == q->cap) {
        int err = heap_grow(q);
        if (err)
            return err;
    }
    if (q->next_ord == UINT32_MAX) {
        int err = ord_renumber(q);
        if (err)
            return err;
    }
    pass_remove(q, q->pos[c->idx]);
    return heap_push(q, c, when_ns); /* cannot fail now */
}

void weft__timerq_fire(weft_timerq *q, weft_call *c, weft_time_ns time_ns)
{
    c->k.time_ns = time_ns;
    set_state(c, WEFT__CALL_CALLED);
    if (!(c->meta & WEFT__CALL_HANDLE))
        node_free(q, c);
}

void weft__timerq_release(weft_timerq *q, weft_call *c)
{
    c->meta = (uint16_t)(c->meta & ~WEFT__CALL_HANDLE);
    if (!weft__call_pending(c))
        node_free(q, c);
}

size_t weft__timerq_pending(const weft_timerq *q)
{
    return q->len + q->pass_live;
}

bool weft__timerq_next_time(const weft_timerq *q, weft_time_ns *t)
{
    bool any = false;
    weft_time_ns best = 0;
    if (q->len) {
        best = q->heap[0].time_ns;
        any = true;
    }
    if (q->pass_live) {
        weft_time_ns p = q->pass[q->pass_head].time_ns;
        if (!any || p < best)
            best = p;
        any = true;
    }
    if (any)
        *t = best;
    return any;
}

size_t weft__timerq_bytes(const weft_timerq *q)
{
    size_t bytes = q->nchunks * CHUNK_NODES * sizeof(weft_call);
    bytes += q->chunks_cap * sizeof(weft_call *);
    bytes += q->chunks_cap * CHUNK_NODES * sizeof(uint32_t);
    if (q->heap_mem)
        bytes += (q->cap + HEAP_SHIFT) * sizeof(weft__tq_entry) + CACHE_LINE;
    bytes += q->pass_cap * sizeof(weft__tq_entry);
    if (q->pass_fen)
        bytes += (q->pass_cap + 1) * sizeof(uint32_t);
    return bytes;
}
