/* weft/defer.h: Deferreds, Failures, Deferred lists and gathers, lock,
 * semaphore and queue, with Twisted's semantics (see docs/deferred.md for the
 * few documented departures).
 *
 * OWNERSHIP IN ONE PARAGRAPH
 * - Values (void *) are the user's. The library never frees or dereferences a
 *   value, except the result structures it allocates itself (weft_dlist_result,
 *   weft_gather_result), which belong to the Deferred that carries them.
 * - A weft_failure is allocated by the library. Whoever holds it owns it:
 *   errback() takes it; a handler borrows the Failure it receives and either
 *   returns it (weft_failed(in.failure)) to pass it on, or returns something
 *   else, and then the library frees it after the handler returns.
 * - A weft_deferred is reference counted. Every constructor returns one
 *   reference that the caller owns and must release with weft_deferred_unref().
 *   A handler that returns weft_chain(d) hands its reference to d over to the
 *   chain. A Deferred whose last reference goes while it holds a Failure that no
 *   errback handled reports it to the unhandled-failure handler.
 * - Contexts (void *ctx) are the user's; the library only passes them back.
 *
 * Nothing here allocates per callback beyond one slot in the Deferred's
 * callback array, and no path recurses on the length of a chain (lists nested
 * in lists recurse once per level, see docs/deferred.md).
 *
 * Not thread-safe: a Deferred and everything chained to it belong to one
 * thread at a time. The unhandled-failure handler and counter are per thread.
 */
#ifndef WEFT_DEFER_H
#define WEFT_DEFER_H

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- Failure */

/* Stable Failure type names used by the library. Types are compared by name
 * (strcmp); users pick their own names freely. */
#define WEFT_FAILURE_CANCELLED "Cancelled"
#define WEFT_FAILURE_TIMEOUT "Timeout"
#define WEFT_FAILURE_FIRST_ERROR "FirstError"
#define WEFT_FAILURE_SELF_CHAIN "SelfChain"
#define WEFT_FAILURE_ALREADY_CALLED "AlreadyCalled"
#define WEFT_FAILURE_NO_MEMORY "OutOfMemory"
#define WEFT_FAILURE_QUEUE_OVERFLOW "QueueOverflow"
#define WEFT_FAILURE_QUEUE_UNDERFLOW "QueueUnderflow"
/* A handler returned weft_failed(NULL) or weft_chain(NULL). */
#define WEFT_FAILURE_BAD_RESULT "BadResult"

typedef struct weft_failure {
    const char *type;    /* stable type name, never NULL */
    const char *message; /* human-readable detail, never NULL (may be "") */
    const char *file;    /* where it arose: source file (static string) */
    int line;            /*                 and line */
    /* For FirstError (lists and gathers): the member's Failure and index. */
    struct weft_failure *sub;
    size_t index;
    /* Library use: do not touch. */
    uint32_t flags_;
} weft_failure;

/* A new Failure. type and message are copied. Never returns NULL: when memory
 * runs out, a static Failure of type WEFT_FAILURE_NO_MEMORY is returned (it is
 * safe to pass on and to free). Caller owns the result. */
weft_failure *weft_failure_new_at(const char *file, int line, const char *type,
                                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define weft_failure_new(type, ...) \
    weft_failure_new_at(__FILE__, __LINE__, (type), __VA_ARGS__)

/* A FirstError Failure wrapping a copy of sub (sub stays the caller's). */
weft_failure *weft_failure_first_error(const weft_failure *sub, size_t index);

/* A deep copy (never NULL, as weft_failure_new). Caller owns it. */
weft_failure *weft_failure_copy(const weft_failure *f);

/* Frees f (and its sub-Failure). NULL is allowed. */
void weft_failure_free(weft_failure *f);

/* True when f's type equals type (Twisted's check() for one type). */
bool weft_failure_check(const weft_failure *f, const char *type);

/* ------------------------------------------------------------- Result */

typedef struct weft_deferred weft_deferred;

typedef enum weft_result_kind {
    WEFT_RESULT_VALUE,
    WEFT_RESULT_FAILURE,
    WEFT_RESULT_DEFERRED, /* only as a handler's return: chain to it */
} weft_result_kind;

typedef struct weft_result {
    weft_result_kind kind;
    union {
        void *value;
        weft_failure *failure;
        weft_deferred *deferred;
    };
} weft_result;

static inline weft_result weft_value(void *value)
{
    weft_result r;
    r.kind = WEFT_RESULT_VALUE;
    r.value = value;
    return r;
}

static inline weft_result weft_failed(weft_failure *failure)
{
    weft_result r;
    r.kind = WEFT_RESULT_FAILURE;
    r.failure = failure;
    return r;
}

/* Return from a handler to make the chain wait for d. Hands the caller's
 * reference on d to the chain. */
static inline weft_result weft_chain(weft_deferred *d)
{
    weft_result r;
    r.kind = WEFT_RESULT_DEFERRED;
    r.deferred = d;
    return r;
}

/* A callback or errback. `in` is a value in a callback slot and a Failure in
 * an errback slot (borrowed: see the ownership paragraph above). The return
 * value becomes the chain's new result: a value continues on the callback path,
 * a Failure on the errback path, a Deferred pauses the chain until it fires.
 * Returning the Deferred being run, or one that waits on it (directly or
 * through others), fails the chain with a SelfChain Failure; weft_failed(NULL)
 * and weft_chain(NULL) give a BadResult Failure. */
typedef weft_result (*weft_handler_fn)(weft_result in, void *ctx);

/* Called by weft_deferred_cancel() on a Deferred that has not fired, at most
 * once in its life; d is borrowed. It may fire d (that result stands); if it
 * does not, d fails with Cancelled. */
typedef void (*weft_canceller_fn)(weft_deferred *d, void *ctx);

/* ----------------------------------------------------------- Deferred */

/* A new, unfired Deferred; the caller owns one reference. NULL: out of memory. */
weft_deferred *weft_deferred_new(void);
/* Same, with a canceller run (at most once) by weft_deferred_cancel(). */
weft_deferred *weft_deferred_new_cancellable(weft_canceller_fn canceller, void *ctx);
/* Already-fired Deferreds (Twisted's succeed/fail). fail takes f (even when it
 * returns NULL for lack of memory, f is then freed). */
weft_deferred *weft_succeed(void *value);
weft_deferred *weft_fail(weft_failure *f);

/* Reference counting. ref returns d (NULL stays NULL). unref of the last
 * reference frees the Deferred: pending handlers are dropped without running,
 * the references it held are released, and a Failure it still holds is
 * reported as unhandled. unref(NULL) does nothing. Freeing never recurses, however
 * long the chain of Deferreds it releases. */
weft_deferred *weft_deferred_ref(weft_deferred *d);
void weft_deferred_unref(weft_deferred *d);

/* Fire once and run the chain now (unless paused). WEFT_EALREADYCALLED on a
 * second call (the one call after a canceller-less cancel() is swallowed and
 * returns WEFT_OK, as in Twisted). WEFT_EINVAL for a NULL d or f. errback
 * takes ownership of f whatever it returns. d is borrowed: the chain holds its
 * own reference while it runs. */
int weft_deferred_callback(weft_deferred *d, void *value);
int weft_deferred_errback(weft_deferred *d, weft_failure *f);

/* Append a (callback, errback) pair; a NULL function is a pass-through. If d
 * has a result and is not paused, the chain runs now; if d's chain is already
 * running (the call comes from a handler), the running loop picks the pair up
 * after the current handler returns. The contexts stay the caller's and must
 * live until the pair ran or d is freed. WEFT_ENOMEM leaves d unchanged. */
int weft_deferred_add_callbacks(weft_deferred *d, weft_handler_fn callback, void *cb_ctx,
                                weft_handler_fn errback, void *eb_ctx);
int weft_deferred_add_callback(weft_deferred *d, weft_handler_fn callback, void *ctx);
int weft_deferred_add_errback(weft_deferred *d, weft_handler_fn errback, void *ctx);
int weft_deferred_add_both(weft_deferred *d, weft_handler_fn handler, void *ctx);

/* Runs instead of an owned handler whose Deferred is freed first. */
typedef void (*weft_dropped_fn)(void *ctx);

/* add_both for a handler that owns ctx: once d is either run through the pair
 * or freed, exactly one of handler (on whichever path the chain reaches it, as
 * add_both) and dropped (d freed before its chain reached the pair: never
 * fired, paused, or waiting on another Deferred) has run, once, so whichever
 * runs can release ctx. dropped runs inside the weft_deferred_unref that frees
 * d: it must not touch d, and should only release what ctx holds (it may unref
 * Deferreds; freeing never recurses). WEFT_EINVAL for a NULL d, handler or
 * dropped; on any error neither runs. Otherwise as add_both. */
int weft_deferred_add_both_owned(weft_deferred *d, weft_handler_fn handler,
                                 weft_dropped_fn dropped, void *ctx);

/* Twisted's chainDeferred: other gets d's result (other.callback / errback as
 * a pair on d) and d's result becomes NULL; if other has already fired, d's
 * chain gets an AlreadyCalled Failure instead. The pair holds its own
 * reference on other (the caller keeps theirs). WEFT_ESELFCHAIN if d == other,
 * WEFT_ENOMEM leaves both unchanged. */
int weft_deferred_chain_to(weft_deferred *d, weft_deferred *other);

/* pause() adds one to the pause count (WEFT_ELIMIT past 65535); unpause()
 * removes one and, at zero, runs the chain. Unpausing a Deferred that is not
 * paused is WEFT_ENOTPAUSED (Twisted leaves such a Deferred hung forever; weft
 * refuses), and so is removing the pause that belongs to a wait on another
 * Deferred. */
int weft_deferred_pause(weft_deferred *d);
int weft_deferred_unpause(weft_deferred *d);

/* Twisted's cancel() (docs/deferred.md): not fired: run the canceller (once)
 * or, without one, swallow the next fire; then fail with Cancelled unless the
 * canceller fired d. Waiting on another Deferred: cancel that one (walking the
 * waiting chain iteratively). Fired: nothing. WEFT_OK; WEFT_EINVAL for NULL.
 * d is borrowed. */
int weft_deferred_cancel(weft_deferred *d);

/* Inspection. */
typedef enum weft_deferred_state {
    WEFT_DEFERRED_PENDING,   /* not fired, or fired but paused / waiting on another */
    WEFT_DEFERRED_SUCCEEDED, /* fired, chain ran, result is a value */
    WEFT_DEFERRED_FAILED,    /* fired, chain ran, result is a Failure */
} weft_deferred_state;

/* The state and, when not pending, the current result (borrowed: the value or
 * Failure stays in d). Pending also covers: paused, waiting on another
 * Deferred, and running (inspected from one of its own handlers). `out` may
 * be NULL and is left untouched when pending. */
weft_deferred_state weft_deferred_peek(const weft_deferred *d, weft_result *out);
/* callback/errback happened (false for NULL). */
bool weft_deferred_called(const weft_deferred *d);
/* The pause count, including the one a wait on another Deferred holds. */
unsigned weft_deferred_paused(const weft_deferred *d);

/* Take the result out of a fired Deferred (Twisted's successResultOf and
 * failureResultOf consume it the same way): on success *out holds the value or
 * the Failure (now the caller's) and d's result becomes the value NULL, so no
 * unhandled failure is reported. WEFT_ESTATE if d is pending. */
int weft_deferred_take_result(weft_deferred *d, weft_result *out);

/* Unhandled failures: the handler receives the Failure (borrowed) when a
 * Deferred holding an unhandled Failure is freed. Per thread. NULL restores
 * the default, which counts silently. Returns the number of unhandled failures
 * reported on this thread since the last call to weft_unhandled_reset(). */
typedef void (*weft_unhandled_fn)(const weft_failure *f, void *ctx);
void weft_set_unhandled_handler(weft_unhandled_fn fn, void *ctx);
unsigned long weft_unhandled_count(void);
void weft_unhandled_reset(void);

/* ---------------------------------------------------- Lists and gathers */

enum {
    WEFT_DLIST_FIRE_ON_ONE_CALLBACK = 1u << 0,
    WEFT_DLIST_FIRE_ON_ONE_ERRBACK = 1u << 1,
    WEFT_DLIST_CONSUME_ERRORS = 1u << 2,
};

typedef struct weft_dlist_item {
    bool reported;   /* the member has fired */
    bool succeeded;
    void *value;     /* when succeeded */
    weft_failure *failure; /* otherwise: a copy owned by the result */
} weft_dlist_item;

typedef struct weft_dlist_result {
    size_t count;
    size_t index; /* FIRE_ON_ONE_CALLBACK: the member that fired it */
    weft_dlist_item items[];
} weft_dlist_result;

/* Twisted's DeferredList over members[0..n). Takes no reference from the
 * caller (it holds its own on each member until it fires). The list fires with
 * a weft_dlist_result * value owned by the list Deferred (valid while a
 * reference to the list Deferred is held; items record the members that had
 * reported when it fired). With FIRE_ON_ONE_ERRBACK it fails with a FirstError
 * (sub = a copy of the member's Failure, index = its position). Cancelling the
 * list cancels every member that has not fired; the list's result then comes
 * from the members (no Cancelled of its own). NULL: out of memory, or members
 * NULL with n > 0. */
weft_deferred *weft_deferred_list(weft_deferred *const *members, size_t n, unsigned flags);

typedef struct weft_gather_result {
    size_t count;
    void *values[];
} weft_gather_result;

/* gatherResults: a weft_gather_result * of all values in order (owned by the
 * gather Deferred, like a list's result), or the first Failure as a
 * FirstError. consume_errors as in Twisted. Cancellable like a list. */
weft_deferred *weft_gather(weft_deferred *const *members, size_t n, bool consume_errors);

/* ------------------------------------------- Lock, semaphore, queue */

typedef struct weft_lock weft_lock;
typedef struct weft_semaphore weft_semaphore;
typedef struct weft_dqueue weft_dqueue;

/* A DeferredLock. acquire() returns a Deferred (caller's reference) firing
 * with the lock as its value once held; waiters are FIFO and cancellable.
 * release() hands the lock to the next waiter synchronously; WEFT_ENOTLOCKED if
 * it is not held. free() with waiters cancels them.
 *
 * Waiters that already have a result (fired by hand) are skipped by release()
 * and put(), for the lock, the semaphore and the queue alike: the lock or token
 * goes to the next waiter or back to the gate, the value to the next getter or
 * into the buffer (or WEFT_EOVERFLOW, the value staying the caller's). Nothing
 * is handed to a Deferred that cannot take it (docs/deferred.md). */
weft_lock *weft_lock_new(void);
void weft_lock_free(weft_lock *lock);
weft_deferred *weft_lock_acquire(weft_lock *lock);
int weft_lock_release(weft_lock *lock);
bool weft_lock_locked(const weft_lock *lock);

/* A DeferredSemaphore with `tokens` tokens (>= 1, else NULL). acquire() fires
 * with the semaphore as its value, otherwise as the lock. */
weft_semaphore *weft_semaphore_new(unsigned tokens);
void weft_semaphore_free(weft_semaphore *sem);
weft_deferred *weft_semaphore_acquire(weft_semaphore *sem);
int weft_semaphore_release(weft_semaphore *sem); /* ENOTLOCKED past the limit */
unsigned weft_semaphore_tokens(const weft_semaphore *sem);

/* A DeferredQueue. size: buffered values allowed (SIZE_MAX: unbounded);
 * backlog: waiting getters allowed (SIZE_MAX: unbounded). */
weft_dqueue *weft_dqueue_new(size_t size, size_t backlog);
void weft_dqueue_free(weft_dqueue *q);
/* The first waiter that has no result yet gets value synchronously (waiters
 * fired by hand are skipped and released); else it is buffered; else
 * WEFT_EOVERFLOW (value stays the caller's). */
int weft_dqueue_put(weft_dqueue *q, void *value);
/* *out: a Deferred (caller's reference) of the next value; WEFT_EUNDERFLOW
 * when the backlog of waiters is full (then *out is NULL). A full backlog
 * first releases the waiters fired by hand, which then make room. */
int weft_dqueue_get(weft_dqueue *q, weft_deferred **out);
size_t weft_dqueue_pending(const weft_dqueue *q);
/* Waiting getters, counting those fired by hand that no put or full-backlog
 * get has released yet. */
size_t weft_dqueue_waiting(const weft_dqueue *q);

#ifdef __cplusplus
}
#endif
#endif
