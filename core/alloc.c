/* The allocation seam. Every library allocation passes through here so that a
 * test can fail the N-th one and walk every out-of-memory path. The countdown
 * is thread-local: no state is shared between threads. */
#include <stdlib.h>
#include <string.h>

#include "weft/core.h"

static _Thread_local long fail_countdown = -1;
static _Thread_local long failed_count;

static bool should_fail(void)
{
    if (fail_countdown < 0)
        return false;
    if (fail_countdown == 0) {
        fail_countdown = -1;
        failed_count++;
        return true;
    }
    fail_countdown--;
    return false;
}

long weft_alloc_fail_after(long n)
{
    long failed = failed_count;
    failed_count = 0;
    fail_countdown = n < 0 ? -1 : n;
    return failed;
}

void *weft_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *weft_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *weft_realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void weft_free(void *ptr)
{
    free(ptr);
}

char *weft_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = weft_malloc(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}
