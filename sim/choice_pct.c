/* choice_pct.c: PCT-style priority schedules as a choice source (weft/sim.h,
 * "Exploration strategies"), and PCT's probability bound.
 *
 * A run is a priority schedule. Each label ("order", "net.latency", ...) has
 * WEFT_PCT_RANKS positions with distinct priorities, drawn as a random
 * permutation of depth .. depth+RANKS-1 the first time the label is asked.
 * A question with bound n answers the position of highest priority among the
 * first min(n, RANKS); with n above RANKS the position names a band of
 * [0, n) and the value is drawn uniformly inside it. At each of the depth-1
 * change points (question indices drawn at creation, uniformly in [0, steps),
 * sorted) the winner of that question drops to priority depth-1-i (i-th
 * change point), below every initial priority, before the question answers:
 * PCT's "lower the running chain's priority" with positions standing for
 * chains. Labels are told apart by strcmp in the order they first appear (no
 * pointer ordering); past WEFT_PCT_LABELS_MAX labels the rest share the last
 * slot. All randomness comes from one seeded source (weft_choice_seeded, its
 * own record off), so a schedule is a pure function of (seed, depth, steps)
 * and of the questions the run asks.
 */
#include <math.h>
#include <string.h>

#include "weft/sim.h"

typedef struct pct_label {
    const char *name;
    uint32_t prio[WEFT_PCT_RANKS];
} pct_label;

typedef struct pct_src {
    weft_choice base; /* first: the run sees a weft_choice */
    weft_choice *rng;
    uint32_t depth;
    uint64_t asked; /* questions answered so far (n >= 2) */
    uint64_t change_at[WEFT_PCT_DEPTH_MAX];
    uint32_t nchange, next_change;
    pct_label labels[WEFT_PCT_LABELS_MAX];
    uint32_t nlabels;
} pct_src;

static uint32_t rng_below(pct_src *p, uint32_t n)
{
    return weft_choose(p->rng, n, "pct");
}

static pct_label *label_of(pct_src *p, const char *name)
{
    for (uint32_t i = 0; i < p->nlabels; i++) {
        if (strcmp(p->labels[i].name, name) == 0)
            return &p->labels[i];
    }
    if (p->nlabels == WEFT_PCT_LABELS_MAX)
        return &p->labels[WEFT_PCT_LABELS_MAX - 1];
    pct_label *l = &p->labels[p->nlabels++];
    l->name = name;
    /* Fisher-Yates over depth .. depth+RANKS-1: every initial priority is
     * above every lowered one (those are below depth). */
    for (uint32_t i = 0; i < WEFT_PCT_RANKS; i++)
        l->prio[i] = p->depth + i;
    for (uint32_t i = WEFT_PCT_RANKS - 1; i > 0; i--) {
        uint32_t j = rng_below(p, i + 1);
        uint32_t t = l->prio[i];
        l->prio[i] = l->prio[j];
        l->prio[j] = t;
    }
    return l;
}

static uint32_t best_position(const pct_label *l, uint32_t m)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < m; i++) {
        if (l->prio[i] > l->prio[best])
            best = i;
    }
    return best;
}

static uint32_t pct_choose(weft_choice *c, uint32_t n, const char *label)
{
    pct_src *p = (pct_src *)c;
    pct_label *l = label_of(p, label ? label : "");
    uint32_t m = n < WEFT_PCT_RANKS ? n : WEFT_PCT_RANKS;
    uint32_t pos = best_position(l, m);
    uint64_t q = p->asked++;
    if (p->next_change < p->nchange && p->change_at[p->next_change] == q) {
        /* i-th change point (from 1): priority depth - i. */
        l->prio[pos] = p->depth - 1 - p->next_change;
        p->next_change++;
        pos = best_position(l, m);
    }
    /* Several change points may share an index only when steps < depth - 1;
     * creation keeps them distinct, so one test is enough. */
    if (n <= WEFT_PCT_RANKS)
        return pos;
    uint64_t lo = (uint64_t)pos * n / WEFT_PCT_RANKS;
    uint64_t hi = (uint64_t)(pos + 1) * n / WEFT_PCT_RANKS;
    return (uint32_t)(lo + rng_below(p, (uint32_t)(hi - lo)));
}

static void pct_free(weft_choice *c)
{
    pct_src *p = (pct_src *)c;
    weft_choice_free(p->rng);
    weft_free(p);
}

static const weft_choice_ops pct_ops = {pct_choose, pct_free};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

weft_choice *weft_choice_pct(uint64_t seed, uint32_t depth, uint64_t steps)
{
    if (depth == 0 || depth > WEFT_PCT_DEPTH_MAX || steps == 0)
        return NULL;
    pct_src *p = weft_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base.ops = &pct_ops;
    p->base.recording = true;
    p->depth = depth;
    p->rng = weft_choice_seeded(seed);
    if (!p->rng) {
        weft_free(p);
        return NULL;
    }
    weft_choice_record(p->rng, false);
    /* depth-1 distinct change points in [0, steps); fewer when steps is
     * smaller than that (every question is then a change point). */
    if (steps > UINT32_MAX)
        steps = UINT32_MAX; /* far beyond any run: a change point there never comes */
    uint64_t want = depth - 1;
    if (want > steps)
        want = steps;
    while (p->nchange < want) {
        uint64_t k = rng_below(p, (uint32_t)steps);
        bool dup = false;
        for (uint32_t i = 0; i < p->nchange; i++)
            dup = dup || p->change_at[i] == k;
        if (!dup)
            p->change_at[p->nchange++] = k;
    }
    /* Sorted so the run meets them in order; insertion sort, at most 63. */
    for (uint32_t i = 1; i < p->nchange; i++) {
        for (uint32_t j = i; j > 0 && cmp_u64(&p->change_at[j - 1], &p->change_at[j]) > 0; j--) {
            uint64_t t = p->change_at[j];
            p->change_at[j] = p->change_at[j - 1];
            p->change_at[j - 1] = t;
        }
    }
    return &p->base;
}

double weft_pct_probability(uint64_t chains, uint64_t steps, uint32_t depth)
{
    double n = chains ? (double)chains : 1.0;
    double k = steps ? (double)steps : 1.0;
    double d = depth ? (double)depth : 1.0;
    double p = 1.0 / (n * pow(k, d - 1.0));
    return p > 1.0 ? 1.0 : p;
}

uint64_t weft_pct_runs_needed(double p, double confidence)
{
    if (!(p > 0.0))
        return UINT64_MAX;
    if (p >= 1.0)
        return 1;
    if (!(confidence > 0.0))
        return 1;
    if (confidence >= 1.0)
        return UINT64_MAX;
    /* log1p keeps tiny p exact: ln(1 - p) ~ -p. */
    double runs = ceil(log1p(-confidence) / log1p(-p));
    if (!(runs < 18446744073709551615.0))
        return UINT64_MAX;
    return runs < 1.0 ? 1 : (uint64_t)runs;
}
