/* choice_dfs.c: systematic exploration of choice sequences, depth first
 * (weft/sim.h, "Exploration strategies").
 *
 * The explorer keeps one path: for each of the first choices_max questions
 * of the last run, the index of the alternative taken and the question's
 * bound. A run's source replays the path's first plen alternatives and
 * answers alternative 0 (the default) after them, writing every bound it
 * meets back into the path. The next path is found like an odometer from the
 * deepest question of the last run: the first position (from the end) whose
 * alternative can still go up is increased and everything after it dropped.
 * Runs are deterministic, so the questions before that position are the same
 * in the next run; the position itself is the same question and has the same
 * bound. Nothing recurses and nothing is run twice; the space is exhausted
 * when no position can go up. Alternative j of a question with bound n above
 * the alternatives bound a is the value j*(n-1)/(a-1) (both ends included),
 * so few alternatives still reach the extremes of a wide range.
 */
#include <string.h>

#include "weft/sim.h"

struct weft_dfs {
    size_t choices_max;
    uint32_t alternatives_max;
    uint32_t *alt;   /* alternative index taken at each position */
    uint32_t *bound; /* the question's bound at each position */
    size_t plen;     /* positions the next source replays */
    size_t observed; /* positions the current run has reached */
    uint64_t runs;
    bool started;
    bool exhausted;
    bool pruned;
};

typedef struct dfs_src {
    weft_choice base; /* first: the run sees a weft_choice */
    weft_dfs *e;
    size_t pos;
    uint64_t run; /* which run it serves: an older source answers 0, touches nothing */
} dfs_src;

static uint32_t alternatives(const weft_dfs *e, uint32_t n)
{
    return n < e->alternatives_max ? n : e->alternatives_max;
}

static uint32_t alt_value(uint32_t j, uint32_t n, uint32_t a)
{
    if (n <= a || a <= 1)
        return j;
    return (uint32_t)((uint64_t)j * (n - 1) / (a - 1));
}

static uint32_t dfs_choose(weft_choice *c, uint32_t n, const char *label)
{
    dfs_src *s = (dfs_src *)c;
    weft_dfs *e = s->e;
    if (s->run != e->runs)
        return 0;
    if (s->pos >= e->choices_max) {
        e->pruned = true;
        return 0;
    }
    size_t i = s->pos++;
    if (i >= e->plen)
        e->alt[i] = 0;
    e->bound[i] = n;
    e->observed = s->pos;
    uint32_t a = alternatives(e, n);
    if (n > a)
        e->pruned = true;
    uint32_t j = e->alt[i] < a ? e->alt[i] : a - 1;
    return alt_value(j, n, a);
}

static void dfs_free(weft_choice *c)
{
    weft_free(c);
}

static const weft_choice_ops dfs_ops = {dfs_choose, dfs_free};

weft_dfs *weft_dfs_new(size_t choices_max, uint32_t alternatives_max)
{
    if (choices_max == 0 || choices_max > WEFT_DFS_CHOICES_MAX || alternatives_max == 0)
        return NULL;
    weft_dfs *e = weft_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->choices_max = choices_max;
    e->alternatives_max = alternatives_max;
    e->alt = weft_calloc(choices_max, sizeof *e->alt);
    e->bound = weft_calloc(choices_max, sizeof *e->bound);
    if (!e->alt || !e->bound) {
        weft_dfs_free(e);
        return NULL;
    }
    return e;
}

void weft_dfs_free(weft_dfs *e)
{
    if (!e)
        return;
    weft_free(e->alt);
    weft_free(e->bound);
    weft_free(e);
}

/* Move to the next path; false when there is none. */
static bool advance(weft_dfs *e)
{
    for (size_t i = e->observed; i > 0; i--) {
        size_t k = i - 1;
        if (e->alt[k] + 1 < alternatives(e, e->bound[k])) {
            e->alt[k]++;
            e->plen = k + 1;
            return true;
        }
    }
    return false;
}

int weft_dfs_next(weft_dfs *e, weft_choice **out)
{
    if (!e || !out)
        return WEFT_EINVAL;
    *out = NULL;
    if (e->exhausted)
        return WEFT_OK;
    /* Allocated first: on ENOMEM the path stays where it was. */
    dfs_src *s = weft_calloc(1, sizeof *s);
    if (!s)
        return WEFT_ENOMEM;
    if (e->started && !advance(e)) {
        weft_free(s);
        e->exhausted = true;
        return WEFT_OK;
    }
    s->base.ops = &dfs_ops;
    s->base.recording = true;
    s->e = e;
    e->started = true;
    e->observed = 0;
    e->runs++;
    s->run = e->runs;
    *out = &s->base;
    return WEFT_OK;
}

uint64_t weft_dfs_runs(const weft_dfs *e)
{
    return e ? e->runs : 0;
}

bool weft_dfs_exhausted(const weft_dfs *e)
{
    return e && e->exhausted;
}

bool weft_dfs_pruned(const weft_dfs *e)
{
    return e && e->pruned;
}
