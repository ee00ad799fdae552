/* Core: error table and the allocation seam. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "weft/core.h"

static void error_names_and_messages(void **state)
{
    (void)state;
    assert_int_equal(WEFT_OK, 0);
    assert_string_equal(weft_err_name(WEFT_OK), "OK");
    assert_string_equal(weft_err_name(WEFT_EALREADYCALLED), "EALREADYCALLED");
    assert_string_equal(weft_strerror(WEFT_ENOMEM), "out of memory");
    assert_string_equal(weft_strerror(-1), "unknown error");
    assert_string_equal(weft_strerror(WEFT__ERR_COUNT), "unknown error");
    assert_string_equal(weft_err_name(9999), "EUNKNOWN");
    for (int e = 0; e < WEFT__ERR_COUNT; e++) {
        assert_non_null(weft_strerror(e));
        assert_true(strlen(weft_err_name(e)) > 1);
    }
}

static void alloc_fail_after(void **state)
{
    (void)state;
    weft_alloc_fail_after(2);
    void *a = weft_malloc(8);
    void *b = weft_malloc(8);
    void *c = weft_malloc(8);
    void *d = weft_malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_non_null(d);
    assert_int_equal(weft_alloc_fail_after(-1), 1);
    weft_free(a);
    weft_free(b);
    weft_free(d);
    char *s = weft_strdup("weft");
    assert_string_equal(s, "weft");
    weft_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_names_and_messages),
        cmocka_unit_test(alloc_fail_after),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
