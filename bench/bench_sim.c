/* bench_sim.c: the simulator's event loop against a bare floor.
 *
 * Prints "bench: <name> <value> <unit>" lines:
 * - sim_events_per_s_1m_half: 1,000,000 pending timers with random delays,
 *   each callback rescheduling itself half of the time, run to quiescence;
 * - sim_bytes_per_pending_call: the queue's own accounting (nodes, heap, pass,
 *   slab table) per pending call with 1,000,000 pending, and the process's
 *   resident-memory growth per call as a cross-check;
 * - sim_ns_per_event_100000_concurrent: 100,000 calls due at one instant,
 *   picked in a seeded order (a choice among all remaining at each step);
 * - sim_ns_per_event_10000_trace_off / _trace_text: the same loop without
 *   and with a trace sink (text formatted for every event);
 * - sim_ns_per_event_<n> and floor_ns_per_event_<n> for n = 1e3 .. 1e7
 *   pending (each callback reschedules itself, so n stays constant), and
 *   their ratio. The floor is a bare binary heap of inline
 *   {time, sequence, fn, ctx} entries popping the minimum and calling fn
 *   through its pointer: the least any timer loop can do.
 *
 * Delays are uniform in [0, 1 s) from the bench's own xorshift generator (the
 * simulator's choice source is not involved: random delays rarely tie).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reactor/timerq.h"
#include "weft/reactor.h"
#include "weft/sim.h"

#define DELAY_MAX_NS WEFT_NS_PER_S

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static inline uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static inline int64_t rand_delay(void)
{
    return (int64_t)(rng() % (uint64_t)DELAY_MAX_NS);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * 4096L;
}

/* ------------------------------------------------------------- simulator */

typedef struct sim_ctx {
    weft_reactor *r;
    bool half; /* reschedule half of the time, else always */
    uint64_t budget; /* stop rescheduling when it reaches 0 */
} sim_ctx;

static void sim_cb(void *ctx)
{
    sim_ctx *c = ctx;
    if (c->budget == 0)
        return;
    if (c->half && (rng() & 1))
        return;
    c->budget--;
    weft_call *n = weft_call_later(c->r, rand_delay(), sim_cb, c);
    weft_call_release(n);
}

static size_t sink_bytes;

static void count_sink(const char *line, size_t len, void *ctx)
{
    (void)line;
    (void)ctx;
    sink_bytes += len;
}

static void count_ran(void *ctx)
{
    int *n = ctx;
    (*n)++;
}

static bool with_text; /* set a trace sink: every event is formatted */

static weft_sim *sim_fill(size_t n, sim_ctx *c)
{
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    if (with_text)
        cfg.trace_sink = count_sink;
    weft_sim *s = weft_sim_new(&cfg, weft_choice_seeded(1));
    if (!s) {
        fprintf(stderr, "bench_sim: out of memory\n");
        exit(1);
    }
    c->r = weft_sim_reactor(s);
    for (size_t i = 0; i < n; i++) {
        weft_call *call = weft_call_later(c->r, rand_delay(), sim_cb, c);
        if (!call) {
            fprintf(stderr, "bench_sim: out of memory at %zu\n", i);
            exit(1);
        }
        weft_call_release(call);
    }
    return s;
}

static double sim_ns_per_event(size_t n, uint64_t events)
{
    sim_ctx c = {NULL, false, UINT64_MAX};
    weft_sim *s = sim_fill(n, &c);
    /* Warm up, then measure a fixed number of steps at constant size. */
    for (uint64_t i = 0; i < events / 10; i++)
        weft_sim_step(s);
    double t0 = now_s();
    for (uint64_t i = 0; i < events; i++)
        weft_sim_step(s);
    double dt = now_s() - t0;
    if (weft_sim_pending(s) != n)
        fprintf(stderr, "bench_sim: pending drifted: %zu\n", weft_sim_pending(s));
    weft_sim_free(s);
    return dt * 1e9 / (double)events;
}

/* ----------------------------------------------------------------- floor */

typedef struct floor_entry {
    int64_t time_ns;
    uint64_t seq;
    void (*fn)(void *ctx);
    void *ctx;
} floor_entry;

typedef struct floor_heap {
    floor_entry *h;
    size_t len, cap;
    uint64_t seq;
    int64_t now;
} floor_heap;

static inline bool floor_less(const floor_entry *a, const floor_entry *b)
{
    return a->time_ns < b->time_ns || (a->time_ns == b->time_ns && a->seq < b->seq);
}

static void floor_push(floor_heap *fh, int64_t t, void (*fn)(void *), void *ctx)
{
    if (fh->len == fh->cap) {
        fh->cap = fh->cap ? fh->cap * 2 : 64;
        fh->h = realloc(fh->h, fh->cap * sizeof *fh->h);
        if (!fh->h)
            exit(1);
    }
    floor_entry e = {t, fh->seq++, fn, ctx};
    size_t i = fh->len++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!floor_less(&e, &fh->h[p]))
            break;
        fh->h[i] = fh->h[p];
        i = p;
    }
    fh->h[i] = e;
}

static floor_entry floor_pop(floor_heap *fh)
{
    floor_entry top = fh->h[0];
    floor_entry last = fh->h[--fh->len];
    size_t n = fh->len, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && floor_less(&fh->h[c + 1], &fh->h[c]))
            c++;
        if (!floor_less(&fh->h[c], &last))
            break;
        fh->h[i] = fh->h[c];
        i = c;
    }
    if (n)
        fh->h[i] = last;
    return top;
}

static void floor_cb(void *ctx)
{
    floor_heap *fh = ctx;
    floor_push(fh, fh->now + rand_delay(), floor_cb, fh);
}

/* Keep the callback opaque to the optimiser, as the simulator's is. */
static void (*volatile floor_fn)(void *) = floor_cb;

static double floor_ns_per_event(size_t n, uint64_t events)
{
    floor_heap fh = {NULL, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++)
        floor_push(&fh, rand_delay(), floor_fn, &fh);
    for (uint64_t i = 0; i < events / 10; i++) {
        floor_entry e = floor_pop(&fh);
        fh.now = e.time_ns;
        e.fn(e.ctx);
    }
    double t0 = now_s();
    for (uint64_t i = 0; i < events; i++) {
        floor_entry e = floor_pop(&fh);
        fh.now = e.time_ns;
        e.fn(e.ctx);
    }
    double dt = now_s() - t0;
    free(fh.h);
    return dt * 1e9 / (double)events;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    /* "bench_sim N": only the per-event comparison at N pending (profiling). */
    if (argc > 1) {
        size_t n = (size_t)strtoull(argv[1], NULL, 10);
        double sim = sim_ns_per_event(n, 3000000);
        double flo = floor_ns_per_event(n, 3000000);
        printf("bench: sim_ns_per_event_%zu %.1f ns\n", n, sim);
        printf("bench: floor_ns_per_event_%zu %.1f ns\n", n, flo);
        return 0;
    }
    /* 1M pending, each callback rescheduling half of the time. */
    {
        sim_ctx c = {NULL, true, UINT64_MAX};
        long rss0 = rss_bytes();
        weft_sim *s = sim_fill(1000000, &c);
        long rss1 = rss_bytes();
        size_t pending = weft_sim_pending(s);
        weft_timerq *q = weft__reactor_timerq(weft_sim_reactor(s));
        double per_call = (double)weft__timerq_bytes(q) / (double)pending;
        double t0 = now_s();
        weft_sim_run_until_quiet(s);
        double dt = now_s() - t0;
        uint64_t events = weft_sim_events(s);
        printf("bench: sim_events_per_s_1m_half %.0f events/s\n", (double)events / dt);
        printf("bench: sim_events_1m_half %" PRIu64 " events\n", events);
        printf("bench: sim_bytes_per_pending_call %.1f bytes\n", per_call);
        printf("bench: sim_rss_per_pending_call %.1f bytes\n",
               (double)(rss1 - rss0) / (double)pending);
        printf("bench: sim_call_node_size %zu bytes\n", sizeof(struct weft_call));
        weft_sim_free(s);
    }
    /* 100,000 calls due at the same instant, run in a seeded order: every
     * dispatch asks the choice source among all that are left. */
    {
        int ran = 0;
        weft_sim *s = weft_sim_new(NULL, weft_choice_seeded(7));
        weft_choice_record(weft_sim_choices(s), false);
        for (int i = 0; i < 100000; i++)
            if (weft_call_soon(weft_sim_reactor(s), count_ran, &ran) != WEFT_OK)
                exit(1);
        double t0 = now_s();
        weft_sim_run_until_quiet(s);
        double dt = now_s() - t0;
        printf("bench: sim_ns_per_event_100000_concurrent %.1f ns\n", dt * 1e9 / ran);
        weft_sim_free(s);
    }
    /* What the trace text costs when it is on (off is the default above). */
    {
        double off = 1e300, on = 1e300;
        for (int k = 0; k < 3; k++) {
            with_text = false;
            double a = sim_ns_per_event(10000, 1000000);
            with_text = true;
            double b = sim_ns_per_event(10000, 1000000);
            off = a < off ? a : off;
            on = b < on ? b : on;
        }
        with_text = false;
        printf("bench: sim_ns_per_event_10000_trace_off %.1f ns\n", off);
        printf("bench: sim_ns_per_event_10000_trace_text %.1f ns\n", on);
    }
    /* Interleave the simulator and the floor and keep the best of three
     * rounds of each: the machine is shared, and the minimum is the figure
     * least disturbed by other load. */
    static const size_t sizes[] = {1000, 10000, 100000, 1000000, 10000000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint64_t events = n < 1000000 ? 1000000 : (n < 10000000 ? 1500000 : 2000000);
        int rounds = n < 10000000 ? 3 : 2;
        double sim = 1e300, flo = 1e300;
        for (int k = 0; k < rounds; k++) {
            double a = sim_ns_per_event(n, events);
            double b = floor_ns_per_event(n, events);
            sim = a < sim ? a : sim;
            flo = b < flo ? b : flo;
        }
        printf("bench: sim_ns_per_event_%zu %.1f ns\n", n, sim);
        printf("bench: floor_ns_per_event_%zu %.1f ns\n", n, flo);
        printf("bench: sim_vs_floor_%zu %.2f x\n", n, sim / flo);
        fflush(stdout);
    }
    return 0;
}
