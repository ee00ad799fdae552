/* Deferred lists, gathers, lock, semaphore and queue: Twisted's flags and edge
 * cases (empty lists, already-fired members, consumeErrors, cancellation),
 * FIFO waiters, cancelled waiters, size/backlog limits, and out-of-memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft/defer.h"
#include "weft/testing.h"

#define V(n) ((void *)(uintptr_t)(n))
#define N(p) ((uintptr_t)(p))

static unsigned long unhandled_mark;

static int setup(void **state)
{
    (void)state;
    weft_unhandled_reset();
    unhandled_mark = weft_watch_unhandled();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    weft_set_unhandled_handler(NULL, NULL);
    weft_alloc_fail_after(-1);
    return 0;
}

static weft_failure *boom(const char *type)
{
    return weft_failure_new(type, "%s happened", type);
}

/* Record what a member passes on after the list's pair. */
static weft_result record_after(weft_result in, void *ctx)
{
    weft_result *slot = ctx;
    *slot = in;
    if (in.kind == WEFT_RESULT_FAILURE)
        return weft_value(V(999)); /* handled here, so not reported */
    return in;
}

/* ------------------------------------------------------ DeferredList */

static void list_fires_when_all_reported(void **state)
{
    (void)state;
    weft_deferred *m[3] = {weft_deferred_new(), weft_succeed(V(2)), weft_deferred_new()};
    weft_deferred *l = weft_deferred_list(m, 3, 0);
    assert_non_null(l);
    weft_assert_no_result(l);
    weft_deferred_errback(m[2], boom("Three"));
    weft_assert_no_result(l);
    weft_deferred_callback(m[0], V(1));
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_int_equal(r->count, 3);
    assert_true(r->items[0].reported && r->items[0].succeeded);
    assert_ptr_equal(r->items[0].value, V(1));
    assert_true(r->items[1].succeeded);
    assert_ptr_equal(r->items[1].value, V(2));
    assert_true(r->items[2].reported);
    assert_false(r->items[2].succeeded);
    assert_string_equal(r->items[2].failure->type, "Three");
    /* Without CONSUME_ERRORS the member still holds its Failure. */
    weft_failure_free(weft_assert_failed(m[2], "Three"));
    for (int i = 0; i < 3; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(l);
    weft_assert_no_unhandled(unhandled_mark);
}

static void list_member_failure_unhandled_unless_consumed(void **state)
{
    (void)state;
    weft_deferred *m = weft_deferred_new();
    weft_deferred *l = weft_deferred_list(&m, 1, 0);
    weft_deferred_errback(m, boom("Kept"));
    weft_deferred_unref(m);
    /* The member's Failure was still unhandled; the list's copy is not. */
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
    weft_deferred_unref(l);
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);

    m = weft_deferred_new();
    l = weft_deferred_list(&m, 1, WEFT_DLIST_CONSUME_ERRORS);
    weft_result after = weft_value(V(5));
    weft_deferred_add_both(m, record_after, &after);
    weft_deferred_errback(m, boom("Consumed"));
    assert_int_equal(after.kind, WEFT_RESULT_VALUE);
    assert_null(after.value);
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_string_equal(r->items[0].failure->type, "Consumed");
    weft_deferred_unref(m);
    weft_deferred_unref(l);
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
}

static void list_member_later_errback_sees_failure(void **state)
{
    (void)state;
    weft_deferred *m = weft_deferred_new();
    weft_deferred *l = weft_deferred_list(&m, 1, 0);
    weft_result after = weft_value(NULL);
    weft_deferred_add_both(m, record_after, &after);
    weft_deferred_errback(m, boom("Seen"));
    assert_int_equal(after.kind, WEFT_RESULT_FAILURE);
    weft_deferred_unref(m);
    weft_deferred_unref(l);
    weft_assert_no_unhandled(unhandled_mark);
}

static void empty_list_fires_at_once_but_not_with_fire_on_one_callback(void **state)
{
    (void)state;
    weft_deferred *l = weft_deferred_list(NULL, 0, 0);
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_int_equal(r->count, 0);
    weft_deferred_unref(l);

    l = weft_deferred_list(NULL, 0, WEFT_DLIST_FIRE_ON_ONE_ERRBACK);
    r = weft_assert_succeeded(l);
    assert_int_equal(r->count, 0);
    weft_deferred_unref(l);

    l = weft_deferred_list(NULL, 0, WEFT_DLIST_FIRE_ON_ONE_CALLBACK);
    weft_assert_no_result(l);
    weft_deferred_unref(l);

    weft_deferred *m = weft_deferred_new();
    assert_null(weft_deferred_list(NULL, 1, 0)); /* members NULL with n > 0 */
    weft_deferred_unref(m);
}

static void fire_on_one_callback_reports_index(void **state)
{
    (void)state;
    weft_deferred *m[3] = {weft_deferred_new(), weft_deferred_new(), weft_deferred_new()};
    weft_deferred *l = weft_deferred_list(m, 3, WEFT_DLIST_FIRE_ON_ONE_CALLBACK);
    weft_deferred_errback(m[0], boom("Zero"));
    weft_assert_no_result(l);
    weft_deferred_callback(m[2], V(30));
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_int_equal(r->index, 2);
    assert_ptr_equal(r->items[2].value, V(30));
    /* Later members are passed through untouched. */
    weft_deferred_callback(m[1], V(10));
    assert_ptr_equal(weft_assert_succeeded(m[1]), V(10));
    weft_failure_free(weft_assert_failed(m[0], "Zero"));
    for (int i = 0; i < 3; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(l);
    weft_assert_no_unhandled(unhandled_mark);
}

static void fire_on_one_callback_all_failed_gives_list(void **state)
{
    (void)state;
    weft_deferred *m[2] = {weft_fail(boom("A")), weft_deferred_new()};
    weft_deferred *l = weft_deferred_list(m, 2, WEFT_DLIST_FIRE_ON_ONE_CALLBACK |
                                                    WEFT_DLIST_CONSUME_ERRORS);
    weft_assert_no_result(l);
    weft_deferred_errback(m[1], boom("B"));
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_false(r->items[0].succeeded);
    assert_false(r->items[1].succeeded);
    assert_string_equal(r->items[1].failure->type, "B");
    for (int i = 0; i < 2; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(l);
    weft_assert_no_unhandled(unhandled_mark);
}

static void fire_on_one_errback_gives_first_error(void **state)
{
    (void)state;
    weft_deferred *m[3] = {weft_succeed(V(1)), weft_deferred_new(), weft_deferred_new()};
    weft_deferred *l = weft_deferred_list(m, 3, WEFT_DLIST_FIRE_ON_ONE_ERRBACK |
                                                    WEFT_DLIST_CONSUME_ERRORS);
    weft_deferred_errback(m[2], boom("Two"));
    weft_failure *f = weft_assert_failed(l, WEFT_FAILURE_FIRST_ERROR);
    assert_int_equal(f->index, 2);
    assert_non_null(f->sub);
    assert_string_equal(f->sub->type, "Two");
    weft_failure_free(f);
    /* A second failure after the list fired is consumed, not reported. */
    weft_deferred_errback(m[1], boom("One"));
    for (int i = 0; i < 3; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(l);
    weft_assert_no_unhandled(unhandled_mark);
}

static void first_error_of_list_is_unhandled_once(void **state)
{
    (void)state;
    weft_deferred *m = weft_deferred_new();
    weft_deferred *l = weft_deferred_list(&m, 1, WEFT_DLIST_FIRE_ON_ONE_ERRBACK |
                                                     WEFT_DLIST_CONSUME_ERRORS);
    weft_deferred_errback(m, boom("Sub"));
    weft_deferred_unref(m);
    weft_deferred_unref(l);
    /* One report: the list's FirstError. Its sub-Failure is not separate. */
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
}

static void cancel_list_cancels_pending_members(void **state)
{
    (void)state;
    weft_deferred *m[3] = {weft_deferred_new(), weft_succeed(V(2)), weft_deferred_new()};
    weft_deferred *l = weft_deferred_list(m, 3, WEFT_DLIST_CONSUME_ERRORS);
    weft_deferred_cancel(l);
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_string_equal(r->items[0].failure->type, WEFT_FAILURE_CANCELLED);
    assert_true(r->items[1].succeeded);
    assert_string_equal(r->items[2].failure->type, WEFT_FAILURE_CANCELLED);
    /* Already fired: cancelling does nothing more. */
    weft_deferred_cancel(l);
    for (int i = 0; i < 3; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(l);
    weft_assert_no_unhandled(unhandled_mark);
}

static void cancel_list_with_paused_member_stays_pending(void **state)
{
    (void)state;
    weft_deferred *m[2] = {weft_deferred_new(), weft_deferred_new()};
    weft_deferred_pause(m[1]);
    weft_deferred *l = weft_deferred_list(m, 2, WEFT_DLIST_CONSUME_ERRORS);
    weft_deferred_cancel(l);
    /* Twisted's DeferredList.cancel only cancels members: m[1] is paused. */
    weft_assert_no_result(l);
    weft_deferred_unpause(m[1]);
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_string_equal(r->items[1].failure->type, WEFT_FAILURE_CANCELLED);
    for (int i = 0; i < 2; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(l);
}

static void list_freed_before_members_fire(void **state)
{
    (void)state;
    weft_deferred *m[2] = {weft_deferred_new(), weft_deferred_new()};
    weft_deferred *l = weft_deferred_list(m, 2, WEFT_DLIST_CONSUME_ERRORS);
    weft_deferred_unref(l);
    weft_deferred_callback(m[0], V(1));
    weft_deferred_errback(m[1], boom("Late"));
    assert_ptr_equal(weft_assert_succeeded(m[0]), V(1));
    assert_ptr_equal(weft_assert_succeeded(m[1]), NULL); /* still consumed */
    weft_deferred_unref(m[0]);
    weft_deferred_unref(m[1]);

    /* Members freed while the list waits on others: the list holds them. */
    m[0] = weft_deferred_new();
    m[1] = weft_deferred_new();
    l = weft_deferred_list(m, 2, 0);
    weft_deferred *keep = weft_deferred_ref(m[1]);
    weft_deferred_unref(m[0]);
    weft_deferred_unref(m[1]);
    weft_deferred_cancel(l);
    weft_dlist_result *r = weft_assert_succeeded(l);
    assert_int_equal(r->count, 2);
    weft_failure_free(weft_assert_failed(keep, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(keep);
    weft_deferred_unref(l);
    /* m[0]'s Cancelled Failure was unhandled (no CONSUME_ERRORS). */
    assert_int_equal(weft_unhandled_count() - unhandled_mark, 1);
}

static void list_out_of_memory_is_clean(void **state)
{
    (void)state;
    for (long n = 0; n < 12; n++) {
        weft_deferred *m[3] = {weft_succeed(V(1)), weft_deferred_new(), weft_deferred_new()};
        weft_deferred_add_callback(m[1], NULL, NULL);
        weft_alloc_fail_after(n);
        weft_deferred *l = weft_deferred_list(m, 3, 0);
        long failed = weft_alloc_fail_after(-1);
        if (l) {
            weft_deferred_callback(m[1], V(2));
            weft_deferred_callback(m[2], V(3));
            weft_dlist_result *r = weft_assert_succeeded(l);
            assert_ptr_equal(r->items[2].value, V(3));
            weft_deferred_unref(l);
        } else {
            assert_int_equal(failed, 1);
            weft_deferred_callback(m[1], V(2));
        }
        for (int i = 0; i < 3; i++)
            weft_deferred_unref(m[i]);
    }
    weft_assert_no_unhandled(unhandled_mark);
}

/* -------------------------------------------------------------- gather */

static void gather_values_in_order(void **state)
{
    (void)state;
    weft_deferred *m[3] = {weft_deferred_new(), weft_succeed(V(2)), weft_deferred_new()};
    weft_deferred *g = weft_gather(m, 3, false);
    weft_deferred_callback(m[2], V(3));
    weft_assert_no_result(g);
    weft_deferred_callback(m[0], V(1));
    weft_gather_result *r = weft_assert_succeeded(g);
    assert_int_equal(r->count, 3);
    assert_ptr_equal(r->values[0], V(1));
    assert_ptr_equal(r->values[1], V(2));
    assert_ptr_equal(r->values[2], V(3));
    for (int i = 0; i < 3; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(g);

    g = weft_gather(NULL, 0, false);
    r = weft_assert_succeeded(g);
    assert_int_equal(r->count, 0);
    weft_deferred_unref(g);
}

static void gather_first_failure(void **state)
{
    (void)state;
    weft_deferred *m[3] = {weft_deferred_new(), weft_deferred_new(), weft_deferred_new()};
    weft_deferred *g = weft_gather(m, 3, true);
    weft_deferred_callback(m[0], V(1));
    weft_deferred_errback(m[1], boom("Mid"));
    weft_failure *f = weft_assert_failed(g, WEFT_FAILURE_FIRST_ERROR);
    assert_int_equal(f->index, 1);
    assert_string_equal(f->sub->type, "Mid");
    weft_failure_free(f);
    weft_deferred_errback(m[2], boom("Later"));
    for (int i = 0; i < 3; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(g);
    weft_assert_no_unhandled(unhandled_mark);
}

static void gather_is_cancellable(void **state)
{
    (void)state;
    weft_deferred *m[2] = {weft_deferred_new(), weft_deferred_new()};
    weft_deferred *g = weft_gather(m, 2, true);
    weft_deferred_cancel(g);
    weft_failure *f = weft_assert_failed(g, WEFT_FAILURE_FIRST_ERROR);
    assert_int_equal(f->index, 0);
    assert_string_equal(f->sub->type, WEFT_FAILURE_CANCELLED);
    weft_failure_free(f);
    /* Both members were cancelled, although the gather fired on the first. */
    assert_true(weft_deferred_called(m[1]));
    for (int i = 0; i < 2; i++)
        weft_deferred_unref(m[i]);
    weft_deferred_unref(g);
    weft_assert_no_unhandled(unhandled_mark);
}

/* ------------------------------------------------------------- lock */

static void lock_waiters_are_fifo(void **state)
{
    (void)state;
    weft_lock *lock = weft_lock_new();
    assert_false(weft_lock_locked(lock));
    weft_deferred *a = weft_lock_acquire(lock);
    assert_ptr_equal(weft_assert_succeeded(a), lock);
    assert_true(weft_lock_locked(lock));
    weft_deferred *b = weft_lock_acquire(lock);
    weft_deferred *c = weft_lock_acquire(lock);
    weft_assert_no_result(b);
    weft_assert_no_result(c);
    assert_int_equal(weft_lock_release(lock), WEFT_OK);
    assert_true(weft_lock_locked(lock)); /* handed straight to b */
    assert_ptr_equal(weft_assert_succeeded(b), lock);
    weft_assert_no_result(c);
    assert_int_equal(weft_lock_release(lock), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(c), lock);
    assert_int_equal(weft_lock_release(lock), WEFT_OK);
    assert_false(weft_lock_locked(lock));
    assert_int_equal(weft_lock_release(lock), WEFT_ENOTLOCKED);
    weft_deferred_unref(a);
    weft_deferred_unref(b);
    weft_deferred_unref(c);
    weft_lock_free(lock);
    assert_int_equal(weft_lock_release(NULL), WEFT_EINVAL);
}

static void lock_cancel_waiter_skips_it(void **state)
{
    (void)state;
    weft_lock *lock = weft_lock_new();
    weft_deferred *a = weft_lock_acquire(lock);
    weft_deferred *b = weft_lock_acquire(lock);
    weft_deferred *c = weft_lock_acquire(lock);
    weft_deferred_cancel(b);
    weft_failure_free(weft_assert_failed(b, WEFT_FAILURE_CANCELLED));
    weft_deferred_cancel(a); /* acquired: cancelling does nothing */
    assert_ptr_equal(weft_assert_succeeded(a), lock);
    weft_lock_release(lock);
    assert_ptr_equal(weft_assert_succeeded(c), lock);
    /* Freeing with waiters fails them with Cancelled. */
    weft_deferred *d = weft_lock_acquire(lock);
    weft_lock_free(lock);
    weft_failure_free(weft_assert_failed(d, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(a);
    weft_deferred_unref(b);
    weft_deferred_unref(c);
    weft_deferred_unref(d);
    weft_assert_no_unhandled(unhandled_mark);
}

/* ---------------------------------------------------------- semaphore */

static void semaphore_tokens_and_fifo(void **state)
{
    (void)state;
    assert_null(weft_semaphore_new(0));
    weft_semaphore *sem = weft_semaphore_new(2);
    assert_int_equal(weft_semaphore_tokens(sem), 2);
    assert_int_equal(weft_semaphore_release(sem), WEFT_ENOTLOCKED);
    weft_deferred *d[4];
    for (int i = 0; i < 4; i++)
        d[i] = weft_semaphore_acquire(sem);
    assert_int_equal(weft_semaphore_tokens(sem), 0);
    assert_ptr_equal(weft_assert_succeeded(d[0]), sem);
    assert_ptr_equal(weft_assert_succeeded(d[1]), sem);
    weft_assert_no_result(d[2]);
    weft_deferred_cancel(d[2]);
    weft_failure_free(weft_assert_failed(d[2], WEFT_FAILURE_CANCELLED));
    assert_int_equal(weft_semaphore_release(sem), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(d[3]), sem);
    assert_int_equal(weft_semaphore_tokens(sem), 0);
    assert_int_equal(weft_semaphore_release(sem), WEFT_OK);
    assert_int_equal(weft_semaphore_release(sem), WEFT_OK);
    assert_int_equal(weft_semaphore_tokens(sem), 2);
    assert_int_equal(weft_semaphore_release(sem), WEFT_ENOTLOCKED);
    for (int i = 0; i < 4; i++)
        weft_deferred_unref(d[i]);
    weft_semaphore_free(sem);
}

static void semaphore_many_waiters_in_order(void **state)
{
    (void)state;
    enum { COUNT = 100 };
    weft_semaphore *sem = weft_semaphore_new(1);
    weft_deferred *held = weft_semaphore_acquire(sem);
    weft_deferred *w[COUNT];
    for (int i = 0; i < COUNT; i++)
        w[i] = weft_semaphore_acquire(sem);
    for (int i = 0; i < COUNT; i++) {
        weft_assert_no_result(w[i]);
        weft_semaphore_release(sem);
        assert_ptr_equal(weft_assert_succeeded(w[i]), sem);
        if (i + 1 < COUNT)
            weft_assert_no_result(w[i + 1]);
    }
    for (int i = 0; i < COUNT; i++)
        weft_deferred_unref(w[i]);
    weft_deferred_unref(held);
    weft_semaphore_free(sem);
}

/* -------------------------------------------------------------- queue */

static void queue_put_then_get_and_get_then_put(void **state)
{
    (void)state;
    weft_dqueue *q = weft_dqueue_new(SIZE_MAX, SIZE_MAX);
    weft_deferred *d;
    assert_int_equal(weft_dqueue_put(q, V(1)), WEFT_OK);
    assert_int_equal(weft_dqueue_put(q, V(2)), WEFT_OK);
    assert_int_equal(weft_dqueue_pending(q), 2);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(d), V(1));
    weft_deferred_unref(d);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(d), V(2));
    weft_deferred_unref(d);
    weft_deferred *w1, *w2;
    assert_int_equal(weft_dqueue_get(q, &w1), WEFT_OK);
    assert_int_equal(weft_dqueue_get(q, &w2), WEFT_OK);
    assert_int_equal(weft_dqueue_waiting(q), 2);
    weft_assert_no_result(w1);
    assert_int_equal(weft_dqueue_put(q, V(3)), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(w1), V(3));
    weft_assert_no_result(w2);
    assert_int_equal(weft_dqueue_put(q, V(4)), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(w2), V(4));
    assert_int_equal(weft_dqueue_pending(q), 0);
    weft_deferred_unref(w1);
    weft_deferred_unref(w2);
    /* Buffered values wrap around the ring in order. */
    for (int round = 0; round < 3; round++) {
        for (uintptr_t i = 0; i < 7; i++)
            weft_dqueue_put(q, V(i + 10));
        for (uintptr_t i = 0; i < 7; i++) {
            weft_dqueue_get(q, &d);
            assert_ptr_equal(weft_assert_succeeded(d), V(i + 10));
            weft_deferred_unref(d);
        }
    }
    weft_dqueue_free(q);
}

static void queue_limits(void **state)
{
    (void)state;
    weft_dqueue *q = weft_dqueue_new(0, 0);
    weft_deferred *d = V(1);
    assert_int_equal(weft_dqueue_put(q, V(1)), WEFT_EOVERFLOW);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_EUNDERFLOW);
    assert_null(d);
    weft_dqueue_free(q);

    q = weft_dqueue_new(1, 1);
    assert_int_equal(weft_dqueue_put(q, V(1)), WEFT_OK);
    assert_int_equal(weft_dqueue_put(q, V(2)), WEFT_EOVERFLOW);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_OK);
    weft_deferred_unref(d);
    weft_deferred *w;
    assert_int_equal(weft_dqueue_get(q, &w), WEFT_OK);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_EUNDERFLOW);
    /* A waiter takes a put even with size 0 of room to spare. */
    assert_int_equal(weft_dqueue_put(q, V(5)), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(w), V(5));
    weft_deferred_unref(w);
    weft_dqueue_free(q);

    q = weft_dqueue_new(0, 1);
    assert_int_equal(weft_dqueue_get(q, &w), WEFT_OK);
    assert_int_equal(weft_dqueue_put(q, V(6)), WEFT_OK); /* size 0, but a waiter */
    assert_ptr_equal(weft_assert_succeeded(w), V(6));
    weft_deferred_unref(w);
    weft_dqueue_free(q);
    assert_int_equal(weft_dqueue_get(NULL, &d), WEFT_EINVAL);
    assert_int_equal(weft_dqueue_get(NULL, NULL), WEFT_EINVAL);
}

static void queue_cancel_waiter_and_free(void **state)
{
    (void)state;
    weft_dqueue *q = weft_dqueue_new(SIZE_MAX, 2);
    weft_deferred *a, *b, *c;
    weft_dqueue_get(q, &a);
    weft_dqueue_get(q, &b);
    assert_int_equal(weft_dqueue_get(q, &c), WEFT_EUNDERFLOW);
    weft_deferred_cancel(a);
    weft_failure_free(weft_assert_failed(a, WEFT_FAILURE_CANCELLED));
    assert_int_equal(weft_dqueue_waiting(q), 1);
    assert_int_equal(weft_dqueue_get(q, &c), WEFT_OK); /* room again */
    weft_dqueue_put(q, V(7));
    assert_ptr_equal(weft_assert_succeeded(b), V(7));
    weft_dqueue_free(q);
    weft_failure_free(weft_assert_failed(c, WEFT_FAILURE_CANCELLED));
    weft_deferred_unref(a);
    weft_deferred_unref(b);
    weft_deferred_unref(c);
    weft_assert_no_unhandled(unhandled_mark);
}

/* ------------------------------------- waiters that already have a result */

/* One rule for lock, semaphore and queue: a waiter fired by hand is skipped
 * (and released); the lock, token or value goes to the next waiter, back to
 * the gate, or into the buffer. Never lost. */
static void lock_skips_waiters_fired_by_hand(void **state)
{
    (void)state;
    weft_lock *lock = weft_lock_new();
    weft_deferred *a = weft_lock_acquire(lock);
    weft_deferred *b = weft_lock_acquire(lock);
    weft_deferred *c = weft_lock_acquire(lock);
    weft_deferred *e = weft_lock_acquire(lock);
    assert_int_equal(weft_deferred_callback(b, V(5)), WEFT_OK);
    assert_int_equal(weft_deferred_errback(c, weft_failure_new("E", "by hand")), WEFT_OK);
    assert_int_equal(weft_lock_release(lock), WEFT_OK); /* a's: to e, past b and c */
    assert_true(weft_lock_locked(lock));
    assert_ptr_equal(weft_assert_succeeded(b), V(5));
    weft_failure_free(weft_assert_failed(c, "E"));
    assert_ptr_equal(weft_assert_succeeded(e), lock);
    /* The only waiter fired by hand: the lock is free again. */
    weft_deferred *f = weft_lock_acquire(lock);
    assert_int_equal(weft_deferred_callback(f, V(6)), WEFT_OK);
    assert_int_equal(weft_lock_release(lock), WEFT_OK);
    assert_false(weft_lock_locked(lock));
    assert_int_equal(weft_lock_release(lock), WEFT_ENOTLOCKED);
    weft_deferred *g = weft_lock_acquire(lock);
    assert_ptr_equal(weft_assert_succeeded(g), lock);
    /* Paused and fired by hand: skipped; paused but not fired: served. */
    weft_deferred *h = weft_lock_acquire(lock);
    weft_deferred *k = weft_lock_acquire(lock);
    assert_int_equal(weft_deferred_pause(h), WEFT_OK);
    assert_int_equal(weft_deferred_pause(k), WEFT_OK);
    assert_int_equal(weft_deferred_callback(h, V(8)), WEFT_OK);
    assert_int_equal(weft_lock_release(lock), WEFT_OK);
    assert_true(weft_lock_locked(lock));
    assert_true(weft_deferred_called(k));
    assert_int_equal(weft_deferred_unpause(h), WEFT_OK);
    assert_int_equal(weft_deferred_unpause(k), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(h), V(8));
    assert_ptr_equal(weft_assert_succeeded(k), lock);
    weft_deferred *all[] = {a, b, c, e, f, g, h, k};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        weft_deferred_unref(all[i]);
    weft_lock_free(lock);
    weft_assert_no_unhandled(unhandled_mark);
}

static void semaphore_skips_waiters_fired_by_hand(void **state)
{
    (void)state;
    weft_semaphore *sem = weft_semaphore_new(2);
    weft_deferred *a = weft_semaphore_acquire(sem);
    weft_deferred *b = weft_semaphore_acquire(sem);
    weft_deferred *w1 = weft_semaphore_acquire(sem);
    weft_deferred *w2 = weft_semaphore_acquire(sem);
    weft_deferred *w3 = weft_semaphore_acquire(sem);
    assert_int_equal(weft_deferred_callback(w1, V(1)), WEFT_OK);
    assert_int_equal(weft_deferred_callback(w3, V(3)), WEFT_OK);
    assert_int_equal(weft_semaphore_release(sem), WEFT_OK); /* to w2, past w1 */
    assert_ptr_equal(weft_assert_succeeded(w2), sem);
    assert_int_equal(weft_semaphore_tokens(sem), 0);
    assert_int_equal(weft_semaphore_release(sem), WEFT_OK); /* w3 skipped: back */
    assert_int_equal(weft_semaphore_tokens(sem), 1);
    assert_int_equal(weft_semaphore_release(sem), WEFT_OK);
    assert_int_equal(weft_semaphore_tokens(sem), 2);
    assert_int_equal(weft_semaphore_release(sem), WEFT_ENOTLOCKED);
    assert_ptr_equal(weft_assert_succeeded(w1), V(1));
    assert_ptr_equal(weft_assert_succeeded(w3), V(3));
    weft_deferred *all[] = {a, b, w1, w2, w3};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        weft_deferred_unref(all[i]);
    weft_semaphore_free(sem);
    weft_assert_no_unhandled(unhandled_mark);
}

static void queue_skips_getters_fired_by_hand(void **state)
{
    (void)state;
    weft_dqueue *q = weft_dqueue_new(1, SIZE_MAX);
    weft_deferred *w1, *w2, *w3, *d;
    assert_int_equal(weft_dqueue_get(q, &w1), WEFT_OK);
    assert_int_equal(weft_dqueue_get(q, &w2), WEFT_OK);
    assert_int_equal(weft_deferred_callback(w1, V(1)), WEFT_OK);
    assert_int_equal(weft_dqueue_put(q, V(7)), WEFT_OK); /* to w2, past w1 */
    assert_ptr_equal(weft_assert_succeeded(w2), V(7));
    assert_ptr_equal(weft_assert_succeeded(w1), V(1));
    assert_int_equal(weft_dqueue_waiting(q), 0);
    /* The only getter fired by hand: the value is buffered, not lost. */
    assert_int_equal(weft_dqueue_get(q, &w3), WEFT_OK);
    assert_int_equal(weft_deferred_errback(w3, weft_failure_new("E", "by hand")), WEFT_OK);
    assert_int_equal(weft_dqueue_put(q, V(8)), WEFT_OK);
    assert_int_equal(weft_dqueue_pending(q), 1);
    assert_int_equal(weft_dqueue_waiting(q), 0);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(d), V(8));
    weft_deferred_unref(d);
    weft_failure_free(weft_assert_failed(w3, "E"));
    weft_deferred_unref(w1);
    weft_deferred_unref(w2);
    weft_deferred_unref(w3);
    weft_dqueue_free(q);

    /* No room in the buffer: the put is refused, the value stays yours. */
    q = weft_dqueue_new(0, 1);
    assert_int_equal(weft_dqueue_get(q, &w1), WEFT_OK);
    assert_int_equal(weft_deferred_callback(w1, V(1)), WEFT_OK);
    assert_int_equal(weft_dqueue_put(q, V(9)), WEFT_EOVERFLOW);
    assert_int_equal(weft_dqueue_waiting(q), 0);
    /* A full backlog of getters fired by hand makes room for a new one. */
    assert_int_equal(weft_dqueue_get(q, &w2), WEFT_OK);
    assert_int_equal(weft_deferred_callback(w2, V(2)), WEFT_OK);
    assert_int_equal(weft_dqueue_waiting(q), 1);
    assert_int_equal(weft_dqueue_get(q, &w3), WEFT_OK);
    assert_int_equal(weft_dqueue_waiting(q), 1);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_EUNDERFLOW); /* w3 is live */
    assert_int_equal(weft_dqueue_put(q, V(10)), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(w3), V(10));
    weft_deferred_unref(w1);
    weft_deferred_unref(w2);
    weft_deferred_unref(w3);
    weft_dqueue_free(q);
    weft_assert_no_unhandled(unhandled_mark);
}

static void sync_out_of_memory_is_clean(void **state)
{
    (void)state;
    weft_alloc_fail_after(0);
    assert_null(weft_lock_new());
    weft_alloc_fail_after(0);
    assert_null(weft_semaphore_new(1));
    weft_alloc_fail_after(0);
    assert_null(weft_dqueue_new(1, 1));
    weft_alloc_fail_after(-1);

    weft_lock *lock = weft_lock_new();
    weft_deferred *a = weft_lock_acquire(lock);
    weft_alloc_fail_after(1); /* the waiter is built, the ring is not */
    assert_null(weft_lock_acquire(lock));
    weft_alloc_fail_after(-1);
    assert_int_equal(weft_lock_release(lock), WEFT_OK);
    assert_false(weft_lock_locked(lock));
    weft_deferred_unref(a);
    weft_lock_free(lock);

    weft_dqueue *q = weft_dqueue_new(SIZE_MAX, SIZE_MAX);
    weft_alloc_fail_after(0);
    assert_int_equal(weft_dqueue_put(q, V(1)), WEFT_ENOMEM);
    weft_alloc_fail_after(-1);
    assert_int_equal(weft_dqueue_pending(q), 0);
    weft_dqueue_put(q, V(1));
    weft_deferred *d = NULL;
    weft_alloc_fail_after(0);
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_ENOMEM);
    weft_alloc_fail_after(-1);
    assert_int_equal(weft_dqueue_pending(q), 1); /* not lost */
    assert_int_equal(weft_dqueue_get(q, &d), WEFT_OK);
    assert_ptr_equal(weft_assert_succeeded(d), V(1));
    weft_deferred_unref(d);
    weft_dqueue_free(q);
}

static weft_result chain_ctx(weft_result in, void *ctx)
{
    (void)in;
    return weft_chain(weft_deferred_ref(ctx));
}

static weft_result add_one(weft_result in, void *ctx)
{
    (void)ctx;
    return weft_value(V(N(in.value) + 1));
}

/* Everything at once; any allocation may fail. Nothing may crash or leak. */
static void composite(void)
{
    weft_deferred *m[3] = {weft_deferred_new(), weft_deferred_new(), weft_deferred_new()};
    if (!m[0] || !m[1] || !m[2]) {
        for (int i = 0; i < 3; i++)
            weft_deferred_unref(m[i]);
        return;
    }
    weft_deferred_add_callback(m[0], chain_ctx, m[1]);
    for (int k = 0; k < 6; k++)
        weft_deferred_add_callback(m[1], add_one, NULL);
    weft_deferred *chained = weft_deferred_new();
    if (chained)
        weft_deferred_chain_to(m[2], chained);
    weft_deferred *l = weft_deferred_list(m, 3, WEFT_DLIST_CONSUME_ERRORS);
    weft_deferred *g = weft_gather(m, 3, true);
    weft_lock *lock = weft_lock_new();
    weft_deferred *held = lock ? weft_lock_acquire(lock) : NULL;
    weft_deferred *waiter = lock ? weft_lock_acquire(lock) : NULL;
    weft_dqueue *q = weft_dqueue_new(2, 2);
    weft_deferred *got = NULL;
    if (q) {
        weft_dqueue_get(q, &got);
        weft_dqueue_put(q, V(1));
        weft_dqueue_put(q, V(2));
    }
    weft_deferred_callback(m[0], V(1));
    weft_deferred_callback(m[1], V(2));
    weft_deferred_errback(m[2], boom("Third"));
    weft_deferred_cancel(waiter);
    if (lock)
        weft_lock_release(lock);
    weft_result r;
    weft_deferred *all[] = {l, g, chained, held, waiter, got, m[0], m[1], m[2]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (all[i] && weft_deferred_take_result(all[i], &r) == WEFT_OK &&
            r.kind == WEFT_RESULT_FAILURE)
            weft_failure_free(r.failure);
        weft_deferred_unref(all[i]);
    }
    weft_lock_free(lock);
    weft_dqueue_free(q);
}

static void every_allocation_failure_is_clean(void **state)
{
    (void)state;
    long n = 0;
    for (; n < 500; n++) {
        weft_alloc_fail_after(n);
        composite();
        if (weft_alloc_fail_after(-1) == 0)
            break;
    }
    /* The sweep reached the end: some run needed no failure at all. */
    assert_true(n > 10);
    assert_true(n < 500);
    weft_assert_no_unhandled(unhandled_mark);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(list_fires_when_all_reported),
        T(list_member_failure_unhandled_unless_consumed),
        T(list_member_later_errback_sees_failure),
        T(empty_list_fires_at_once_but_not_with_fire_on_one_callback),
        T(fire_on_one_callback_reports_index),
        T(fire_on_one_callback_all_failed_gives_list),
        T(fire_on_one_errback_gives_first_error),
        T(first_error_of_list_is_unhandled_once),
        T(cancel_list_cancels_pending_members),
        T(cancel_list_with_paused_member_stays_pending),
        T(list_freed_before_members_fire),
        T(list_out_of_memory_is_clean),
        T(gather_values_in_order),
        T(gather_first_failure),
        T(gather_is_cancellable),
        T(lock_waiters_are_fifo),
        T(lock_cancel_waiter_skips_it),
        T(semaphore_tokens_and_fifo),
        T(semaphore_many_waiters_in_order),
        T(queue_put_then_get_and_get_then_put),
        T(queue_limits),
        T(queue_cancel_waiter_and_free),
        T(lock_skips_waiters_fired_by_hand),
        T(semaphore_skips_waiters_fired_by_hand),
        T(queue_skips_getters_fired_by_hand),
        T(sync_out_of_memory_is_clean),
        T(every_allocation_failure_is_clean),
#undef T
    };
    return cmocka_run_group_tests_name("defer_combinators", tests, NULL, NULL);
}
