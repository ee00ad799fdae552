/* weft/testing.h: cmocka helpers for testing code that uses Deferreds.
 *
 * Header only. Include <cmocka.h> (with its usual prerequisites) first:
 *
 *     #include <setjmp.h>
 *     #include <stdarg.h>
 *     #include <stddef.h>
 *     #include <stdint.h>
 *     #include <cmocka.h>
 *     #include "weft/testing.h"
 *
 * The helpers mirror trial's successResultOf, failureResultOf and
 * assertNoResult, plus a check that no unhandled Failure was reported during
 * a test. On a mismatch they print both sides (what was expected, what the
 * Deferred actually holds) and fail the test at the caller's line.
 *
 *   void *v = weft_assert_succeeded(d);          value; d's result becomes NULL
 *   weft_failure *f = weft_assert_failed(d, T);  Failure (caller frees), T may be NULL
 *   weft_assert_no_result(d);                    d has no result yet
 *   unsigned long mark = weft_watch_unhandled(); records unhandled Failures
 *   weft_assert_no_unhandled(mark);              none since the mark
 */
#ifndef WEFT_TESTING_H
#define WEFT_TESTING_H

#ifndef CMOCKA_H_
#error "include <cmocka.h> before weft/testing.h"
#endif

#include <stdio.h>
#include <string.h>

#include "weft/defer.h"

static inline const char *weft__testing_state_name(weft_deferred_state s)
{
    switch (s) {
    case WEFT_DEFERRED_PENDING:
        return "no result (pending, paused or waiting)";
    case WEFT_DEFERRED_SUCCEEDED:
        return "a value";
    case WEFT_DEFERRED_FAILED:
        return "a Failure";
    }
    return "?";
}

/* Print what d holds, for a mismatch report. */
static inline void weft__testing_describe(const weft_deferred *d)
{
    weft_result r;
    weft_deferred_state s = weft_deferred_peek(d, &r);
    if (s == WEFT_DEFERRED_SUCCEEDED)
        print_error("  actual:   value %p\n", r.value);
    else if (s == WEFT_DEFERRED_FAILED)
        print_error("  actual:   Failure %s: %s (raised at %s:%d)\n", r.failure->type,
                    r.failure->message, r.failure->file, r.failure->line);
    else
        print_error("  actual:   %s (called=%d, paused=%u)\n", weft__testing_state_name(s),
                    (int)weft_deferred_called(d), weft_deferred_paused(d));
}

/* successResultOf: d must hold a value. Returns it and leaves NULL in d. */
static inline void *weft_assert_succeeded_at(weft_deferred *d, const char *file, int line)
{
    weft_result r = weft_value(NULL);
    if (!d) {
        print_error("weft_assert_succeeded: the Deferred is NULL\n");
        _fail(file, line);
        return NULL;
    }
    if (weft_deferred_peek(d, &r) != WEFT_DEFERRED_SUCCEEDED) {
        print_error("weft_assert_succeeded: expected a value\n");
        weft__testing_describe(d);
        _fail(file, line);
        return NULL;
    }
    weft_deferred_take_result(d, &r);
    return r.value;
}
#define weft_assert_succeeded(d) weft_assert_succeeded_at((d), __FILE__, __LINE__)

/* failureResultOf: d must hold a Failure, of type `type` unless type is NULL.
 * Returns it (the caller frees it) and leaves the value NULL in d, so no
 * unhandled failure is reported for d. */
static inline weft_failure *weft_assert_failed_at(weft_deferred *d, const char *type,
                                                  const char *file, int line)
{
    weft_result r = weft_value(NULL);
    if (!d) {
        print_error("weft_assert_failed: the Deferred is NULL\n");
        _fail(file, line);
        return NULL;
    }
    weft_deferred_state s = weft_deferred_peek(d, &r);
    if (s != WEFT_DEFERRED_FAILED) {
        print_error("weft_assert_failed: expected a Failure%s%s\n", type ? " of type " : "",
                    type ? type : "");
        weft__testing_describe(d);
        _fail(file, line);
        return NULL;
    }
    if (type && !weft_failure_check(r.failure, type)) {
        print_error("weft_assert_failed: expected a Failure of type %s\n", type);
        weft__testing_describe(d);
        _fail(file, line);
        return NULL;
    }
    weft_deferred_take_result(d, &r);
    return r.failure;
}
#define weft_assert_failed(d, type) weft_assert_failed_at((d), (type), __FILE__, __LINE__)

/* assertNoResult: d must not have a result yet. Leaves d unchanged. */
static inline void weft_assert_no_result_at(const weft_deferred *d, const char *file, int line)
{
    if (!d) {
        print_error("weft_assert_no_result: the Deferred is NULL\n");
        _fail(file, line);
        return;
    }
    if (weft_deferred_peek(d, NULL) != WEFT_DEFERRED_PENDING) {
        print_error("weft_assert_no_result: expected no result\n");
        weft__testing_describe(d);
        _fail(file, line);
    }
}
#define weft_assert_no_result(d) weft_assert_no_result_at((d), __FILE__, __LINE__)

/* The last unhandled Failure seen by the watcher (per translation unit). */
typedef struct weft__testing_unhandled {
    char type[64];
    char message[192];
    char where[96];
} weft__testing_unhandled;

static weft__testing_unhandled weft__testing_last_unhandled;

static inline void weft__testing_record_unhandled(const weft_failure *f, void *ctx)
{
    weft__testing_unhandled *last = (weft__testing_unhandled *)ctx;
    snprintf(last->type, sizeof last->type, "%s", f->type);
    snprintf(last->message, sizeof last->message, "%s", f->message);
    snprintf(last->where, sizeof last->where, "%s:%d", f->file, f->line);
}

/* Install a handler that remembers the last unhandled Failure (replacing any
 * handler the thread had) and return a mark for weft_assert_no_unhandled(). */
static inline unsigned long weft_watch_unhandled(void)
{
    memset(&weft__testing_last_unhandled, 0, sizeof weft__testing_last_unhandled);
    weft_set_unhandled_handler(weft__testing_record_unhandled, &weft__testing_last_unhandled);
    return weft_unhandled_count();
}

/* No unhandled Failure was reported on this thread since `mark`. */
static inline void weft_assert_no_unhandled_at(unsigned long mark, const char *file, int line)
{
    unsigned long now = weft_unhandled_count();
    if (now != mark) {
        print_error("weft_assert_no_unhandled: expected 0 unhandled Failures\n");
        print_error("  actual:   %lu, the last: %s: %s (raised at %s)\n", now - mark,
                    weft__testing_last_unhandled.type[0] ? weft__testing_last_unhandled.type
                                                         : "(not recorded: call "
                                                           "weft_watch_unhandled first)",
                    weft__testing_last_unhandled.message, weft__testing_last_unhandled.where);
        _fail(file, line);
    }
}
#define weft_assert_no_unhandled(mark) weft_assert_no_unhandled_at((mark), __FILE__, __LINE__)

#endif
