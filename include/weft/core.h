/* weft/core.h: the project-wide error codes, time type and allocation seam.
 *
 * Every module returns the same error codes. Values are never renumbered: new
 * codes are appended to WEFT_ERROR_MAP. WEFT_OK is 0.
 *
 * Library code never exits or prints. It returns one of these codes (or NULL
 * from constructors, which then means WEFT_ENOMEM unless documented otherwise).
 */
#ifndef WEFT_CORE_H
#define WEFT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, message). Append only. */
#define WEFT_ERROR_MAP(X)                                                        \
    X(OK, "success")                                                           \
    X(ENOMEM, "out of memory")                                                 \
    X(EINVAL, "invalid argument")                                              \
    X(EALREADYCALLED, "already called: a Deferred or delayed call fires once") \
    X(EALREADYCANCELLED, "delayed call was already cancelled")                 \
    X(ENOTPAUSED, "unpause without a matching pause")                          \
    X(ESELFCHAIN, "a callback returned the Deferred it is attached to")        \
    X(ENOTLOCKED, "release of a lock or semaphore that is not held")           \
    X(EOVERFLOW, "queue is full")                                              \
    X(EUNDERFLOW, "too many waiters on an empty queue")                        \
    X(ESTATE, "operation not allowed in the current state")                    \
    X(EENDPOINT, "malformed endpoint description")                             \
    X(EADDRINUSE, "address already in use")                                    \
    X(ECONNREFUSED, "connection refused")                                      \
    X(ETIMEDOUT, "timed out")                                                  \
    X(ECONNRESET, "connection reset by peer")                                  \
    X(ENOTCONN, "not connected")                                               \
    X(EHOSTUNREACH, "host unreachable")                                        \
    X(ENOBUFS, "buffer limit reached")                                         \
    X(ELIMIT, "a configured limit was exceeded")                               \
    X(EPARSE, "parse error")                                                   \
    X(ENOTFOUND, "no such name")                                               \
    X(EIO, "input/output error")                                               \
    X(EEXIST, "already exists")                                                \
    X(ECLOSED, "closed")

typedef enum weft_err {
#define WEFT__ERR_ENUM(name, msg) WEFT_##name,
    WEFT_ERROR_MAP(WEFT__ERR_ENUM)
#undef WEFT__ERR_ENUM
    WEFT__ERR_COUNT
} weft_err;

/* A static, human-readable message for an error code ("unknown error" for
 * values outside the enum). Never NULL. */
const char *weft_strerror(int err);

/* The stable name of an error code without the WEFT_ prefix, e.g. "EINVAL".
 * Never NULL. */
const char *weft_err_name(int err);

/* Time in the reactor: integer nanoseconds. In the simulator it is virtual
 * time since the start of the run; on the real reactor, a monotonic clock. */
typedef int64_t weft_time_ns;

#define WEFT_NS_PER_US INT64_C(1000)
#define WEFT_NS_PER_MS INT64_C(1000000)
#define WEFT_NS_PER_S INT64_C(1000000000)

/* Allocation seam. All library allocations go through these, so tests can make
 * the N-th allocation fail and check that every path returns WEFT_ENOMEM
 * cleanly. The hook is per thread; NULL restores the C library allocator.
 *
 * weft_alloc_fail_after(n): the next n allocations succeed, the one after
 * fails, then all succeed again. n < 0 disables. Returns how many allocations
 * have failed through this mechanism since the last call. */
void *weft_malloc(size_t size);
void *weft_calloc(size_t count, size_t size);
void *weft_realloc(void *ptr, size_t size);
void weft_free(void *ptr);
char *weft_strdup(const char *s);
long weft_alloc_fail_after(long n);

#ifdef __cplusplus
}
#endif
#endif
