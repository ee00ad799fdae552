/* weft/testing.h: the helpers pass on the right state, consume results as
 * trial's successResultOf / failureResultOf do, and fail a test with both
 * sides printed on a mismatch. Failing cases run in a child process (a small
 * cmocka group of its own) whose exit status and output are checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "weft/defer.h"
#include "weft/testing.h"

#define V(n) ((void *)(uintptr_t)(n))

static void helpers_pass_and_consume(void **state)
{
    (void)state;
    unsigned long mark = weft_watch_unhandled();
    weft_deferred *d = weft_succeed(V(3));
    assert_ptr_equal(weft_assert_succeeded(d), V(3));
    /* Consumed: the Deferred now holds NULL. */
    assert_ptr_equal(weft_assert_succeeded(d), NULL);
    weft_deferred_unref(d);

    d = weft_fail(weft_failure_new("Kind", "why"));
    weft_failure *f = weft_assert_failed(d, "Kind");
    assert_string_equal(f->message, "why");
    weft_failure_free(f);
    /* Consumed: no unhandled Failure when d goes. */
    weft_deferred_unref(d);

    d = weft_fail(weft_failure_new("Any", "x"));
    weft_failure_free(weft_assert_failed(d, NULL));
    weft_deferred_unref(d);

    d = weft_deferred_new();
    weft_assert_no_result(d);
    weft_deferred_pause(d);
    weft_deferred_callback(d, V(1));
    weft_assert_no_result(d); /* paused: no result yet */
    weft_deferred_unpause(d);
    assert_ptr_equal(weft_assert_succeeded(d), V(1));
    weft_deferred_unref(d);
    weft_assert_no_unhandled(mark);
    weft_set_unhandled_handler(NULL, NULL);
}

/* ------------------------------------------------- failing in a child */

static void child_succeeded_on_pending(void **state)
{
    (void)state;
    weft_deferred *d = weft_deferred_new();
    weft_assert_succeeded(d);
}

static void child_succeeded_on_failure(void **state)
{
    (void)state;
    weft_deferred *d = weft_fail(weft_failure_new("Wrong", "it broke"));
    weft_assert_succeeded(d);
}

static void child_failed_on_value(void **state)
{
    (void)state;
    weft_deferred *d = weft_succeed(V(9));
    weft_assert_failed(d, "Expected");
}

static void child_failed_wrong_type(void **state)
{
    (void)state;
    weft_deferred *d = weft_fail(weft_failure_new("Actual", "details"));
    weft_assert_failed(d, "Expected");
}

static void child_no_result_on_value(void **state)
{
    (void)state;
    weft_deferred *d = weft_succeed(V(5));
    weft_assert_no_result(d);
}

static void child_unhandled(void **state)
{
    (void)state;
    unsigned long mark = weft_watch_unhandled();
    weft_deferred_unref(weft_fail(weft_failure_new("Dropped", "on the floor")));
    weft_assert_no_unhandled(mark);
}

/* Run one test in a child and return its combined output; *status gets the
 * child's exit status. */
static char *run_child(void (*fn)(void **), const char *name, int *status)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        const struct CMUnitTest tests[] = {
            {name, fn, NULL, NULL, NULL},
        };
        int failed = cmocka_run_group_tests_name("child", tests, NULL, NULL);
        fflush(stdout);
        fflush(stderr);
        /* Leave without leak checks: the failing test stopped mid-way. */
        _exit(failed ? 1 : 0);
    }
    close(fds[1]);
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    ssize_t n;
    while ((n = read(fds[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    return out;
}

static void expect_failure(void (*fn)(void **), const char *name, const char *const *needles)
{
    int status = 0;
    char *out = run_child(fn, name, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 0) {
        print_error("the helper did not fail the child test %s:\n%s\n", name, out);
        free(out);
        fail();
    }
    for (; *needles; needles++) {
        if (!strstr(out, *needles)) {
            print_error("missing \"%s\" in the report of %s:\n%s\n", *needles, name, out);
            free(out);
            fail();
        }
    }
    free(out);
}

static void helpers_fail_and_print_both_sides(void **state)
{
    (void)state;
    const char *const pending[] = {"expected a value", "actual:", "no result", NULL};
    expect_failure(child_succeeded_on_pending, "succeeded_on_pending", pending);
    const char *const failure[] = {"expected a value", "Wrong", "it broke", NULL};
    expect_failure(child_succeeded_on_failure, "succeeded_on_failure", failure);
    const char *const value[] = {"expected a Failure of type Expected", "actual:", "value", NULL};
    expect_failure(child_failed_on_value, "failed_on_value", value);
    const char *const wrong[] = {"expected a Failure of type Expected", "Actual", "details",
                                 NULL};
    expect_failure(child_failed_wrong_type, "failed_wrong_type", wrong);
    const char *const no_result[] = {"expected no result", "actual:", "value", NULL};
    expect_failure(child_no_result_on_value, "no_result_on_value", no_result);
    const char *const unhandled[] = {"expected 0 unhandled", "Dropped", "on the floor", NULL};
    expect_failure(child_unhandled, "unhandled", unhandled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(helpers_pass_and_consume),
        cmocka_unit_test(helpers_fail_and_print_both_sides),
    };
    return cmocka_run_group_tests_name("defer_testing", tests, NULL, NULL);
}
