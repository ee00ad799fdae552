/* Deferred benchmarks. Prints one "bench: <name> <value> <unit>" line each:
 *
 *   defer.chain10_ns_per_callback     whole life of a Deferred with 10 callbacks
 *                                     (create, add 10, fire, free), per callback
 *   defer.floor.chain10_ns_per_callback  the same work as a plain loop of
 *                                     indirect calls over an array passing a
 *                                     tagged value, with the same allocation
 *                                     pattern (object + doubling array)
 *   defer.ratio_to_floor.chain10      the ratio of the two
 *   defer.fire_100k_ns_per_callback   firing one Deferred holding 100,000 and
 *   defer.fire_1m_ns_per_callback     1,000,000 callbacks: equal per-callback
 *                                     costs mean firing is linear
 *   defer.bytes_per_pending           heap bytes (malloc's own accounting,
 *                                     overhead included) per pending Deferred
 *                                     with one callback pair
 *   defer.nested_1m_ms                build and resolve 1,000,000 nested
 *                                     chained Deferreds (Twisted's
 *                                     test_boundedStackDepth shape), then free
 *   defer.nested_1m_unwind_ms         of which the final unwind
 *
 * Timing uses CLOCK_MONOTONIC (benchmarks only; the library never reads a
 * clock). Each timed figure is the best of a few runs.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "weft/defer.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void report(const char *name, double value, const char *unit)
{
    printf("bench: %s %.*f %s\n", name, value < 10 ? 2 : 1, value, unit);
    fflush(stdout);
}

static volatile uintptr_t sink;

/* ------------------------------------------------------------ weft */

static weft_result inc(weft_result in, void *ctx)
{
    (void)ctx;
    return weft_value((char *)in.value + 1);
}

/* The handler reached through a volatile so the compiler cannot see it. */
static weft_handler_fn volatile inc_fn = inc;

static double weft_chain10(long deferreds)
{
    weft_handler_fn fn = inc_fn;
    double t0 = now_ns();
    for (long i = 0; i < deferreds; i++) {
        weft_deferred *d = weft_deferred_new();
        for (int k = 0; k < 10; k++)
            weft_deferred_add_callback(d, fn, NULL);
        weft_deferred_callback(d, NULL);
        weft_result r;
        weft_deferred_take_result(d, &r);
        sink += (uintptr_t)r.value;
        weft_deferred_unref(d);
    }
    return (now_ns() - t0) / (double)(deferreds * 10);
}

/* ----------------------------------------------------------- floor */

typedef struct tagged {
    int kind;
    void *v;
} tagged;

typedef tagged (*floor_fn)(tagged in, void *ctx);

typedef struct floor_pair {
    floor_fn cb;
    void *cb_ctx;
    floor_fn eb;
    void *eb_ctx;
} floor_pair;

typedef struct floor_obj {
    floor_pair one;
    floor_pair *pairs;
    uint32_t cap, count;
    tagged result;
} floor_obj;

static tagged floor_inc(tagged in, void *ctx)
{
    (void)ctx;
    in.v = (char *)in.v + 1;
    return in;
}

static floor_fn volatile floor_inc_fn = floor_inc;

static void floor_add(floor_obj *o, floor_fn cb)
{
    floor_pair p = {cb, NULL, NULL, NULL};
    if (o->count == 0 && !o->pairs) {
        o->one = p;
        o->count = 1;
        return;
    }
    if (!o->pairs) {
        o->pairs = malloc(4 * sizeof *o->pairs);
        o->cap = 4;
        o->pairs[0] = o->one;
    } else if (o->count == o->cap) {
        o->cap *= 2;
        o->pairs = realloc(o->pairs, o->cap * sizeof *o->pairs);
    }
    o->pairs[o->count++] = p;
}

static double floor_chain10(long objects)
{
    floor_fn fn = floor_inc_fn;
    double t0 = now_ns();
    for (long i = 0; i < objects; i++) {
        floor_obj *o = malloc(sizeof *o);
        o->pairs = NULL;
        o->cap = 0;
        o->count = 0;
        for (int k = 0; k < 10; k++)
            floor_add(o, fn);
        o->result = (tagged){0, NULL};
        floor_pair *pairs = o->pairs ? o->pairs : &o->one;
        for (uint32_t k = 0; k < o->count; k++) {
            floor_fn f = o->result.kind ? pairs[k].eb : pairs[k].cb;
            if (f)
                o->result = f(o->result, o->result.kind ? pairs[k].eb_ctx : pairs[k].cb_ctx);
        }
        sink += (uintptr_t)o->result.v;
        free(o->pairs);
        free(o);
    }
    return (now_ns() - t0) / (double)(objects * 10);
}

/* ------------------------------------------------- one huge Deferred */

static double fire_many(long callbacks)
{
    weft_deferred *d = weft_deferred_new();
    for (long k = 0; k < callbacks; k++)
        weft_deferred_add_callback(d, inc_fn, NULL);
    double t0 = now_ns();
    weft_deferred_callback(d, NULL);
    double per = (now_ns() - t0) / (double)callbacks;
    weft_result r;
    weft_deferred_take_result(d, &r);
    if ((long)(uintptr_t)r.value != callbacks)
        fprintf(stderr, "bench_defer: wrong result %ld\n", (long)(uintptr_t)r.value);
    weft_deferred_unref(d);
    return per;
}

/* --------------------------------------------------------- memory */

static double bytes_per_pending(long count)
{
    weft_deferred **all = malloc((size_t)count * sizeof *all);
    struct mallinfo2 before = mallinfo2();
    for (long i = 0; i < count; i++) {
        all[i] = weft_deferred_new();
        weft_deferred_add_callbacks(all[i], inc_fn, NULL, inc_fn, NULL);
    }
    struct mallinfo2 after = mallinfo2();
    for (long i = 0; i < count; i++)
        weft_deferred_unref(all[i]);
    free(all);
    return (double)(after.uordblks - before.uordblks) / (double)count;
}

/* ------------------------------------------------- nested chains */

static weft_result return_ctx(weft_result in, void *ctx)
{
    (void)in;
    return weft_chain(weft_deferred_ref(ctx));
}

static double nested(long count, double *unwind_ms)
{
    double t0 = now_ns();
    weft_deferred **inners = malloc((size_t)count * sizeof *inners);
    for (long i = 0; i < count; i++)
        inners[i] = weft_deferred_new();
    weft_deferred *top = weft_deferred_new();
    weft_deferred *last = weft_deferred_new();
    weft_deferred_add_callback(top, return_ctx, inners[0]);
    weft_deferred_add_callback(top, inc_fn, NULL);
    for (long i = 0; i + 1 < count; i++)
        weft_deferred_add_callback(inners[i], return_ctx, inners[i + 1]);
    weft_deferred_add_callback(inners[count - 1], return_ctx, last);
    weft_deferred_callback(top, NULL);
    for (long i = 0; i < count; i++)
        weft_deferred_callback(inners[i], NULL);
    double t1 = now_ns();
    weft_deferred_callback(last, (void *)(uintptr_t)41);
    double t2 = now_ns();
    weft_result r;
    if (weft_deferred_take_result(top, &r) != WEFT_OK || (uintptr_t)r.value != 42)
        fprintf(stderr, "bench_defer: nested chain did not resolve\n");
    for (long i = 0; i < count; i++)
        weft_deferred_unref(inners[i]);
    free(inners);
    weft_deferred_unref(top);
    weft_deferred_unref(last);
    *unwind_ms = (t2 - t1) / 1e6;
    return (now_ns() - t0) / 1e6;
}

static double best3(double (*fn)(long), long n)
{
    double best = fn(n);
    for (int i = 0; i < 2; i++) {
        double t = fn(n);
        if (t < best)
            best = t;
    }
    return best;
}

int main(void)
{
    /* Warm the allocator and caches once. */
    weft_chain10(100000);
    floor_chain10(100000);

    double chain10 = best3(weft_chain10, 1000000);
    double floor10 = best3(floor_chain10, 1000000);
    report("defer.chain10_ns_per_callback", chain10, "ns");
    report("defer.floor.chain10_ns_per_callback", floor10, "ns");
    report("defer.ratio_to_floor.chain10", chain10 / floor10, "x");

    double fire100k = best3(fire_many, 100000);
    double fire1m = best3(fire_many, 1000000);
    report("defer.fire_100k_ns_per_callback", fire100k, "ns");
    report("defer.fire_1m_ns_per_callback", fire1m, "ns");

    report("defer.bytes_per_pending", bytes_per_pending(100000), "bytes");

    double unwind = 0, best_unwind = 0;
    double best_total = nested(1000000, &best_unwind);
    for (int i = 0; i < 2; i++) {
        double total = nested(1000000, &unwind);
        if (total < best_total) {
            best_total = total;
            best_unwind = unwind;
        }
    }
    report("defer.nested_1m_ms", best_total, "ms");
    report("defer.nested_1m_unwind_ms", best_unwind, "ms");
    return 0;
}
