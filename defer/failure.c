/* Failures and the unhandled-failure report.
 *
 * A Failure is one allocation: the struct followed by its type and message
 * strings, so building, copying and freeing cost one call each. When memory
 * runs out, the constructors return a static OutOfMemory Failure instead of
 * NULL; it carries a flag that makes weft_failure_free() a no-op, so callers
 * never need a NULL path. A FirstError owns a copy of its sub-Failure.
 *
 * The unhandled-failure handler and its counter are per thread: one test
 * thread never sees another's reports. Reporting happens at a well-defined
 * moment (the last unref of a Deferred, see deferred.c), never at the whim of a
 * collector, so a test can assert on it deterministically.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "defer/defer_internal.h"

#define FAILURE_STATIC 1u

static weft_failure no_memory_failure = {
    .type = WEFT_FAILURE_NO_MEMORY,
    .message = "out of memory",
    .file = __FILE__,
    .line = __LINE__,
    .sub = NULL,
    .index = 0,
    .flags_ = FAILURE_STATIC,
};

weft_failure *weft__failure_no_memory(void)
{
    return &no_memory_failure;
}

/* One block: struct, type string, message string. */
static weft_failure *failure_alloc(const char *file, int line, const char *type,
                                   const char *message, size_t message_len)
{
    size_t type_len = strlen(type);
    weft_failure *f = weft_malloc(sizeof *f + type_len + 1 + message_len + 1);
    if (!f)
        return NULL;
    char *type_copy = (char *)(f + 1);
    char *message_copy = type_copy + type_len + 1;
    memcpy(type_copy, type, type_len + 1);
    memcpy(message_copy, message, message_len);
    message_copy[message_len] = '\0';
    f->type = type_copy;
    f->message = message_copy;
    f->file = file ? file : "";
    f->line = line;
    f->sub = NULL;
    f->index = 0;
    f->flags_ = 0;
    return f;
}

weft_failure *weft_failure_new_at(const char *file, int line, const char *type,
                                  const char *fmt, ...)
{
    if (!type)
        type = "Failure";
    char small[256];
    const char *message = "";
    size_t message_len = 0;
    char *big = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        if (n < 0) {
            n = 0;
            small[0] = '\0';
        }
        message = small;
        message_len = (size_t)n;
        if ((size_t)n >= sizeof small) {
            big = weft_malloc((size_t)n + 1);
            if (!big)
                return &no_memory_failure;
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            message = big;
        }
    }
    weft_failure *f = failure_alloc(file, line, type, message, message_len);
    weft_free(big);
    return f ? f : &no_memory_failure;
}

/* A copy of f without its sub-chain, or the static OutOfMemory Failure. */
static weft_failure *copy_shallow(const weft_failure *f)
{
    if (f->flags_ & FAILURE_STATIC)
        return &no_memory_failure;
    weft_failure *copy = failure_alloc(f->file, f->line, f->type, f->message,
                                       strlen(f->message));
    if (!copy)
        return &no_memory_failure;
    copy->index = f->index;
    return copy;
}

weft_failure *weft_failure_copy(const weft_failure *f)
{
    if (!f)
        return &no_memory_failure;
    weft_failure *copy = copy_shallow(f);
    if (copy == &no_memory_failure)
        return copy;
    /* Sub-Failures are copied iteratively: nesting depth never grows the
     * C stack. */
    weft_failure *dst = copy;
    for (const weft_failure *src = f->sub; src; src = src->sub) {
        if (src->flags_ & FAILURE_STATIC) {
            dst->sub = &no_memory_failure;
            break;
        }
        weft_failure *sub = copy_shallow(src);
        if (sub == &no_memory_failure) {
            weft_failure_free(copy);
            return &no_memory_failure;
        }
        dst->sub = sub;
        dst = sub;
    }
    return copy;
}

void weft_failure_free(weft_failure *f)
{
    while (f && !(f->flags_ & FAILURE_STATIC)) {
        weft_failure *sub = f->sub;
        weft_free(f);
        f = sub;
    }
}

bool weft_failure_check(const weft_failure *f, const char *type)
{
    return f && type && strcmp(f->type, type) == 0;
}

weft_failure *weft_failure_first_error(const weft_failure *sub, size_t index)
{
    weft_failure *sub_copy = NULL;
    if (sub) {
        sub_copy = weft_failure_copy(sub);
        if (sub_copy == &no_memory_failure && !(sub->flags_ & FAILURE_STATIC))
            return &no_memory_failure;
    }
    weft_failure *f = weft_failure_new(WEFT_FAILURE_FIRST_ERROR, "FirstError[#%zu, %s: %s]",
                                       index, sub ? sub->type : "?",
                                       sub ? sub->message : "");
    if (f == &no_memory_failure) {
        weft_failure_free(sub_copy);
        return f;
    }
    f->sub = sub_copy;
    f->index = index;
    return f;
}

/* ------------------------------------------------- unhandled failures */

static _Thread_local weft_unhandled_fn unhandled_fn;
static _Thread_local void *unhandled_ctx;
static _Thread_local unsigned long unhandled_count;

void weft_set_unhandled_handler(weft_unhandled_fn fn, void *ctx)
{
    unhandled_fn = fn;
    unhandled_ctx = fn ? ctx : NULL;
}

unsigned long weft_unhandled_count(void)
{
    return unhandled_count;
}

void weft_unhandled_reset(void)
{
    unhandled_count = 0;
}

void weft__report_unhandled(const weft_failure *f)
{
    unhandled_count++;
    if (unhandled_fn)
        unhandled_fn(f, unhandled_ctx);
}
