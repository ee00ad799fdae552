/* explore.c: `weft explore FILE --seeds N [--from S]`: a sweep of seeds.
 *
 * Seeds run in order, from S to S+N-1, without keeping trace text; a failing
 * seed is run again with its trace kept for the report (and the two hashes
 * must agree). The trace hash of every seed is kept, and at the end the number
 * of distinct hashes says how many different runs (orderings, splits, faults)
 * the sweep actually covered. The progress line is drawn on standard error
 * only when it is a terminal, at most every CLI_PROGRESS_INTERVAL_S seconds of
 * wall time; the wall clock serves throughput figures and nothing else.
 * Ctrl-C stops the sweep after the seed in progress and still prints the
 * summary (marked "interrupted"; exit 130 when nothing failed).
 *
 * With --jobs N, N worker threads run seeds (a scenario and a registry are
 * read-only during runs, and the library keeps its per-run state off globals)
 * while the main thread consumes their outcomes strictly in seed order through
 * a window of CLI_JOBS_WINDOW slots: reports, the first failure, the digest
 * and every figure are those of the sequential sweep; only the wall time
 * changes. Workers claim CLI_JOBS_BATCH seeds at a time and never run more
 * than the window ahead of the consumer.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t count_distinct(uint64_t *hashes, size_t n)
{
    if (n == 0)
        return 0;
    qsort(hashes, n, sizeof *hashes, cmp_u64);
    size_t d = 1;
    for (size_t i = 1; i < n; i++)
        d += hashes[i] != hashes[i - 1];
    return d;
}

/* FNV-1a 64 over the little-endian bytes of v: the sweep's digest covers
 * every (seed, trace hash) pair in order, so two builds that agree on one
 * digest agree on every run of the sweep. */
static void digest_add(uint64_t *h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        *h ^= (v >> (8 * i)) & 0xffu;
        *h *= UINT64_C(0x100000001b3);
    }
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct progress {
    bool on;
    bool drawn;
    double start_s, last_s;
} progress;

static void progress_draw(progress *p, const char *file, uint64_t done, uint64_t total,
                          uint64_t failures, bool force)
{
    if (!p->on)
        return;
    double now = cli_wall_seconds();
    if (!force && now - p->last_s < CLI_PROGRESS_INTERVAL_S)
        return;
    p->last_s = now;
    double el = now - p->start_s;
    double rate = el > 0 ? (double)done / el : 0.0;
    fprintf(stderr, "\r\033[Kexplore %s: %llu/%llu seeds, %.0f seeds/s, %llu failure%s", file,
            (unsigned long long)done, (unsigned long long)total, rate,
            (unsigned long long)failures, failures == 1 ? "" : "s");
    fflush(stderr);
    p->drawn = true;
}

static void progress_clear(progress *p)
{
    if (p->on && p->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        p->drawn = false;
    }
}

/* One seed's outcome. r: CLI_EXIT_PASS, CLI_EXIT_FAIL (the determinism check
 * saw a divergence, described in report) or CLI_EXIT_USAGE (a library error,
 * already printed). */
typedef struct outcome {
    weft_run_result res;
    int r;
    char *report; /* malloc'd text, or NULL */
    size_t report_len;
} outcome;

/* The source of one seed: the seeded generator, or base's strategy. */
static void seed_source(const cli_source *base, uint64_t seed, cli_source *src)
{
    memset(src, 0, sizeof *src);
    src->seed = seed;
    if (base != NULL) {
        src->make_choices = base->make_choices;
        src->print_replay = base->print_replay;
        src->make_ctx = base->make_ctx;
        src->strategy = base->strategy;
    }
}

static void run_seed(const cli_opts *o, const cli_session *s, const cli_source *base,
                     uint64_t seed, outcome *oc)
{
    memset(oc, 0, sizeof *oc);
    cli_source src;
    seed_source(base, seed, &src);
    if (o->check_determinism) {
        /* The divergence report is buffered: the consumer prints it in seed
         * order, after clearing the progress line. */
        FILE *mem = open_memstream(&oc->report, &oc->report_len);
        oc->r = cli_run_twice(mem ? mem : stdout, o, s, 0, &src, &oc->res);
        if (mem != NULL)
            fclose(mem);
        return;
    }
    int err = cli_run(o, s, 0, &src, false, NULL, NULL, NULL, &oc->res);
    oc->r = err == WEFT_OK ? CLI_EXIT_PASS : CLI_EXIT_USAGE;
    if (err != WEFT_OK)
        fprintf(stderr, "weft explore: %s seed %llu: %s\n", o->files[0],
                (unsigned long long)seed, weft_strerror(err));
}

static void outcome_clear(outcome *oc)
{
    weft_run_result_clear(&oc->res);
    free(oc->report);
    memset(oc, 0, sizeof *oc);
}

typedef struct pool {
    const cli_opts *o;
    const cli_session *s;
    const cli_source *base;
    pthread_mutex_t mu;
    pthread_cond_t ready; /* a slot was filled */
    pthread_cond_t space; /* a slot was consumed, or stop */
    outcome slots[CLI_JOBS_WINDOW];
    bool filled[CLI_JOBS_WINDOW];
    uint64_t next;     /* next index to claim */
    uint64_t consumed; /* indices below are consumed */
    uint64_t total;
    bool stop;
    pthread_t threads[CLI_JOBS_MAX];
    size_t nthreads;
} pool;

static void *worker(void *arg)
{
    pool *pl = arg;
    outcome batch[CLI_JOBS_BATCH];
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        /* Claim up to a batch of consecutive indices inside the window: one
         * lock and one wake-up per batch, not per seed. */
        while (!pl->stop && pl->next < pl->total && pl->next >= pl->consumed + CLI_JOBS_WINDOW)
            pthread_cond_wait(&pl->space, &pl->mu);
        if (pl->stop || pl->next >= pl->total)
            break;
        uint64_t first = pl->next;
        uint64_t room = pl->consumed + CLI_JOBS_WINDOW - first;
        uint64_t left = pl->total - first;
        uint64_t n = CLI_JOBS_BATCH;
        if (n > room)
            n = room;
        if (n > left)
            n = left;
        pl->next = first + n;
        pthread_mutex_unlock(&pl->mu);
        for (uint64_t i = 0; i < n; i++)
            run_seed(pl->o, pl->s, pl->base, pl->o->from + first + i, &batch[i]);
        pthread_mutex_lock(&pl->mu);
        /* The slots are free: every index claimed is below consumed + window
         * at claim time, so the index one window earlier was consumed. */
        for (uint64_t i = 0; i < n; i++) {
            pl->slots[(first + i) % CLI_JOBS_WINDOW] = batch[i];
            pl->filled[(first + i) % CLI_JOBS_WINDOW] = true;
        }
        pthread_cond_broadcast(&pl->ready);
    }
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

/* Start the workers; false (nothing to clean) when no thread could start. */
static bool pool_start(pool *pl, const cli_opts *o, const cli_session *s,
                       const cli_source *base)
{
    memset(pl, 0, sizeof *pl);
    pl->o = o;
    pl->s = s;
    pl->base = base;
    pl->total = o->seeds;
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->ready, NULL);
    pthread_cond_init(&pl->space, NULL);
    for (size_t i = 0; i < o->jobs; i++) {
        if (pthread_create(&pl->threads[pl->nthreads], NULL, worker, pl) != 0)
            break;
        pl->nthreads++;
    }
    if (pl->nthreads == 0) {
        pthread_cond_destroy(&pl->space);
        pthread_cond_destroy(&pl->ready);
        pthread_mutex_destroy(&pl->mu);
        return false;
    }
    return true;
}

/* The outcome of index k, in order (k == consumed). */
static void pool_take(pool *pl, uint64_t k, outcome *oc)
{
    pthread_mutex_lock(&pl->mu);
    while (!pl->filled[k % CLI_JOBS_WINDOW])
        pthread_cond_wait(&pl->ready, &pl->mu);
    *oc = pl->slots[k % CLI_JOBS_WINDOW];
    pl->filled[k % CLI_JOBS_WINDOW] = false;
    pl->consumed = k + 1;
    pthread_cond_broadcast(&pl->space);
    pthread_mutex_unlock(&pl->mu);
}

/* Stop claiming, wait for the runs in flight, drop what was not consumed. */
static void pool_finish(pool *pl)
{
    pthread_mutex_lock(&pl->mu);
    pl->stop = true;
    pthread_cond_broadcast(&pl->space);
    pthread_mutex_unlock(&pl->mu);
    for (size_t i = 0; i < pl->nthreads; i++)
        pthread_join(pl->threads[i], NULL);
    for (size_t i = 0; i < CLI_JOBS_WINDOW; i++) {
        if (pl->filled[i])
            outcome_clear(&pl->slots[i]);
    }
    pthread_cond_destroy(&pl->space);
    pthread_cond_destroy(&pl->ready);
    pthread_mutex_destroy(&pl->mu);
}

int cli_cmd_explore(const cli_opts *o)
{
    return cli_explore_with(o, NULL);
}

int cli_explore_with(const cli_opts *o, const cli_source *base)
{
    if (o->seeds - 1 > UINT64_MAX - o->from)
        return cli_usage_error(o->cmd, "--from %llu with --seeds %llu runs past the last seed",
                               (unsigned long long)o->from, (unsigned long long)o->seeds);
    cli_session s;
    int rc = cli_session_open(o, &s);
    if (rc != CLI_EXIT_PASS)
        return rc;
    /* The hashes grow with the sweep (a huge --seeds that is interrupted
     * never allocates for seeds it did not run). Without memory for them the
     * sweep goes on and only the distinct count is lost. */
    uint64_t *hashes = NULL;
    size_t hashes_cap = 0;
    bool hashes_lost = false;
    /* Ctrl-C ends the sweep after the seed in progress, with its summary. */
    struct sigaction on_int, old_int;
    memset(&on_int, 0, sizeof on_int);
    on_int.sa_handler = on_sigint;
    sigemptyset(&on_int.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &on_int, &old_int);
    progress p = {!o->quiet && isatty(STDERR_FILENO), false, cli_wall_seconds(), 0};
    p.last_s = p.start_s;
    uint64_t done = 0, failures = 0, nondet = 0;
    uint64_t digest = UINT64_C(0xcbf29ce484222325);
    bool saved = false;
    const char *file = o->files[0];
    /* The pool is large (its window of outcomes): on the heap. */
    pool *pl = NULL;
    if (o->jobs > 1) {
        pl = malloc(sizeof *pl);
        if (pl != NULL && !pool_start(pl, o, &s, base)) {
            free(pl);
            pl = NULL;
        }
    }
    for (uint64_t k = 0; k < o->seeds; k++) {
        cli_source src;
        seed_source(base, o->from + k, &src);
        outcome oc;
        if (pl != NULL)
            pool_take(pl, k, &oc);
        else
            run_seed(o, &s, base, src.seed, &oc);
        int r = oc.r;
        if (oc.report_len > 0) {
            progress_clear(&p);
            fwrite(oc.report, 1, oc.report_len, stdout);
        }
        if (r == CLI_EXIT_FAIL)
            nondet++;
        weft_run_result res = oc.res;
        memset(&oc.res, 0, sizeof oc.res);
        outcome_clear(&oc);
        if (r == CLI_EXIT_USAGE) {
            progress_clear(&p);
            rc = CLI_EXIT_USAGE;
            break;
        }
        if (!hashes_lost && done == hashes_cap) {
            size_t cap = hashes_cap ? hashes_cap * 2 : 1024;
            uint64_t *h = cap <= SIZE_MAX / sizeof *h ? realloc(hashes, cap * sizeof *h) : NULL;
            if (h == NULL) {
                hashes_lost = true;
            } else {
                hashes = h;
                hashes_cap = cap;
            }
        }
        if (!hashes_lost)
            hashes[done] = res.trace_hash;
        done++;
        digest_add(&digest, src.seed);
        digest_add(&digest, res.trace_hash);
        bool failed = !res.passed || r == CLI_EXIT_FAIL;
        if (failed) {
            failures++;
            if (failures == 1 || o->keep_going) {
                progress_clear(&p);
                bool save = o->save_choices != NULL && !saved && !res.passed;
                cli_print_verdict(stdout, file, &src, &res, r == CLI_EXIT_FAIL);
                if (!res.passed &&
                    cli_report_failure(stdout, o, &s, 0, &src, &res, save) == CLI_EXIT_USAGE)
                    rc = CLI_EXIT_USAGE;
                fflush(stdout);
                saved = saved || save;
            }
        }
        weft_run_result_clear(&res);
        if (failed && !o->keep_going)
            break;
        if (interrupted)
            break;
        progress_draw(&p, file, done, o->seeds, failures, done == 1);
    }
    if (pl != NULL) {
        pool_finish(pl);
        free(pl);
    }
    progress_clear(&p);
    double el = cli_wall_seconds() - p.start_s;
    size_t distinct = hashes_lost ? 0 : count_distinct(hashes, (size_t)done);
    free(hashes);
    if (rc == CLI_EXIT_PASS)
        rc = failures ? CLI_EXIT_FAIL : CLI_EXIT_PASS;
    sigaction(SIGINT, &old_int, NULL);
    fprintf(stdout,
            "%s explore %s seeds=%llu from=%llu failures=%llu distinct=",
            rc == CLI_EXIT_PASS ? "PASS" : "FAIL", file, (unsigned long long)done,
            (unsigned long long)o->from, (unsigned long long)failures);
    if (hashes_lost)
        fprintf(stdout, "unknown");
    else
        fprintf(stdout, "%zu", distinct);
    fprintf(stdout, " digest=%016llx time=%.3fs rate=%.0f/s", (unsigned long long)digest, el,
            el > 0 ? (double)done / el : 0.0);
    if (o->check_determinism)
        fprintf(stdout, " nondeterministic=%llu", (unsigned long long)nondet);
    if (interrupted) {
        fprintf(stdout, " interrupted");
        if (rc == CLI_EXIT_PASS)
            rc = CLI_EXIT_INTERRUPTED;
    }
    fprintf(stdout, "\n");
    fflush(stdout);
    cli_session_close(&s);
    return rc;
}
