/* Deferred lists and gathers (Twisted's DeferredList and gatherResults).
 *
 * A list is a Deferred plus a shared state record. Each member gets one pair
 * whose context is that member's slot in the state; the pair records the
 * member's result while the list has not fired, fires the list when the flags
 * say so, and passes the member's result on (or NULL for a Failure with
 * CONSUME_ERRORS). Everything the list fires with is allocated up front, so
 * firing never allocates except for the Failure copies it records.
 *
 * Lifetimes. The state is reference counted: one reference for the list
 * Deferred (dropped when that Deferred is freed, which also frees the result
 * structures it fired with) and one per member pair not yet run or dropped.
 * The state holds a reference on every member until the list fires, is
 * cancelled to completion or is freed; members point back only through their
 * pair, so no cycle outlives the list Deferred.
 */
#include <string.h>

#include "defer/defer_internal.h"

typedef struct dlist dlist;

typedef struct member_slot {
    dlist *list;
    size_t index;
} member_slot;

struct dlist {
    uint32_t refs;
    unsigned flags;
    bool gather;
    weft_deferred *d;         /* weak: NULL once the list Deferred is freed */
    weft_deferred **members;  /* strong references while the list waits */
    size_t n;
    size_t finished;
    weft_dlist_result *result;
    weft_gather_result *gathered;
    member_slot slots[];
};

static void state_unref(dlist *st)
{
    if (--st->refs > 0)
        return;
    weft_free(st->members);
    weft_free(st);
}

static void release_members(dlist *st)
{
    weft_deferred **members = st->members;
    if (!members)
        return;
    st->members = NULL;
    for (size_t i = 0; i < st->n; i++)
        weft_deferred_unref(members[i]);
    weft_free(members);
}

/* Fire the list with its complete result. */
static void fire_all(dlist *st)
{
    weft_deferred *d = st->d;
    if (st->gather) {
        for (size_t i = 0; i < st->n; i++)
            st->gathered->values[i] = st->result->items[i].value;
        weft_deferred_callback(d, st->gathered);
    } else {
        weft_deferred_callback(d, st->result);
    }
}

weft_result weft__dlist_member_cb(weft_result in, void *ctx)
{
    member_slot *slot = ctx;
    dlist *st = slot->list;
    if (st->d && !weft_deferred_called(st->d)) {
        weft_dlist_item *item = &st->result->items[slot->index];
        item->reported = true;
        item->succeeded = true;
        item->value = in.value;
        st->finished++;
        if (st->flags & WEFT_DLIST_FIRE_ON_ONE_CALLBACK) {
            st->result->index = slot->index;
            weft_deferred_callback(st->d, st->result);
            release_members(st);
        } else if (st->finished == st->n) {
            fire_all(st);
            release_members(st);
        }
    }
    state_unref(st);
    return in;
}

weft_result weft__dlist_member_eb(weft_result in, void *ctx)
{
    member_slot *slot = ctx;
    dlist *st = slot->list;
    bool consume = (st->flags & WEFT_DLIST_CONSUME_ERRORS) != 0;
    if (st->d && !weft_deferred_called(st->d)) {
        weft_dlist_item *item = &st->result->items[slot->index];
        item->reported = true;
        item->succeeded = false;
        item->failure = weft_failure_copy(in.failure);
        st->finished++;
        if (st->flags & WEFT_DLIST_FIRE_ON_ONE_ERRBACK) {
            weft_deferred_errback(st->d, weft_failure_first_error(in.failure, slot->index));
            release_members(st);
        } else if (st->finished == st->n) {
            fire_all(st);
            release_members(st);
        }
    }
    state_unref(st);
    return consume ? weft_value(NULL) : in;
}

void weft__dlist_member_dropped(void *ctx)
{
    member_slot *slot = ctx;
    state_unref(slot->list);
}

void weft__dlist_cancel(weft_deferred *d, void *ctx)
{
    (void)d;
    dlist *st = ctx;
    weft_deferred **members = st->members;
    if (!members)
        return;
    /* Work on a snapshot: members firing may fire the list, which would
     * otherwise release the array under the loop. */
    st->members = NULL;
    st->refs++;
    for (size_t i = 0; i < st->n; i++)
        weft_deferred_cancel(members[i]);
    if (st->d && !weft_deferred_called(st->d) && !st->members) {
        st->members = members;
    } else {
        for (size_t i = 0; i < st->n; i++)
            weft_deferred_unref(members[i]);
        weft_free(members);
    }
    state_unref(st);
}

void weft__dlist_finalize(void *ctx)
{
    dlist *st = ctx;
    st->d = NULL;
    release_members(st);
    for (size_t i = 0; i < st->n; i++)
        weft_failure_free(st->result->items[i].failure);
    weft_free(st->result);
    weft_free(st->gathered);
    st->result = NULL;
    st->gathered = NULL;
    state_unref(st);
}

static weft_deferred *list_new(weft_deferred *const *members, size_t n, unsigned flags,
                               bool gather)
{
    if (n && !members)
        return NULL;
    if (n > (SIZE_MAX - sizeof(dlist)) / sizeof(member_slot) / 2)
        return NULL;
    dlist *st = weft_calloc(1, sizeof *st + n * sizeof(member_slot));
    if (!st)
        return NULL;
    st->refs = 1;
    st->flags = flags;
    st->gather = gather;
    st->n = n;
    st->result = weft_calloc(1, sizeof *st->result + n * sizeof(weft_dlist_item));
    st->members = weft_calloc(n ? n : 1, sizeof *st->members);
    if (gather)
        st->gathered = weft_calloc(1, sizeof *st->gathered + n * sizeof(void *));
    weft_deferred *d = NULL;
    if (st->result && st->members && (!gather || st->gathered))
        d = weft__deferred_new_list(st);
    if (!d) {
        weft_free(st->result);
        weft_free(st->gathered);
        weft_free(st->members);
        weft_free(st);
        return NULL;
    }
    st->d = d;
    st->result->count = n;
    if (gather)
        st->gathered->count = n;
    for (size_t i = 0; i < n; i++) {
        st->slots[i].list = st;
        st->slots[i].index = i;
        st->members[i] = weft_deferred_ref(members[i]);
    }
    /* The list holds a reference on itself while attaching, so a member that
     * fires it (and a callback that drops the last user reference) cannot
     * free it under the loop. */
    weft_deferred_ref(d);
    if (n == 0 && !(flags & WEFT_DLIST_FIRE_ON_ONE_CALLBACK))
        fire_all(st);
    for (size_t i = 0; i < n; i++) {
        st->refs++;
        int rc = weft_deferred_add_callbacks(members[i], weft__dlist_member_cb, &st->slots[i],
                                             weft__dlist_member_eb, &st->slots[i]);
        if (rc != WEFT_OK) {
            /* The pairs already attached stay and pass results through. */
            st->refs--;
            weft_result dropped;
            if (weft_deferred_take_result(d, &dropped) == WEFT_OK &&
                dropped.kind == WEFT_RESULT_FAILURE)
                weft_failure_free(dropped.failure);
            weft_deferred_unref(d);
            weft_deferred_unref(d);
            return NULL;
        }
    }
    weft_deferred_unref(d);
    return d;
}

weft_deferred *weft_deferred_list(weft_deferred *const *members, size_t n, unsigned flags)
{
    return list_new(members, n, flags, false);
}

weft_deferred *weft_gather(weft_deferred *const *members, size_t n, bool consume_errors)
{
    unsigned flags = WEFT_DLIST_FIRE_ON_ONE_ERRBACK;
    if (consume_errors)
        flags |= WEFT_DLIST_CONSUME_ERRORS;
    return list_new(members, n, flags, true);
}
