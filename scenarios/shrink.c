/* shrink.c: minimise a failing choice list (weft_shrink_choices, declared
 * in weft/sim.h under "Exploration strategies").
 *
 * The list is what a replay source answers, question by question; past its
 * end every answer is 0. So trailing zeros never matter and are trimmed
 * without a test. Each pass first deletes spans (chunks of half the list,
 * then a quarter, ... then single choices, each chunk size swept from the
 * front; a deletion that still fails is kept and the sweep continues at the
 * same index), then lowers each value: straight to 0, else a bisection
 * between the highest value known to pass and the lowest known to fail. A
 * deletion shifts the later choices onto other questions; the predicate
 * judges the result, so anything kept is a real failing run. Passes repeat
 * until one changes nothing or the test budget is spent. Everything is in
 * index order with no randomness: the same input and predicate give the same
 * output. The predicate runs on a separate candidate buffer, so an error
 * from it leaves the best list found so far in place.
 */
#include <string.h>

#include "weft/sim.h"

typedef struct shrinker {
    uint32_t *values;
    size_t len;
    uint32_t *cand;
    size_t max_tests, tests;
    weft_shrink_fn fn;
    void *ctx;
    int err;
} shrinker;

static void trim_zeros(shrinker *s)
{
    while (s->len > 0 && s->values[s->len - 1] == 0)
        s->len--;
}

/* Run the candidate cand[0..len); true when it still fails. */
static bool try_candidate(shrinker *s, size_t len)
{
    if (s->err || s->tests >= s->max_tests)
        return false;
    s->tests++;
    bool fails = false;
    int rc = s->fn(s->cand, len, s->ctx, &fails);
    if (rc != WEFT_OK) {
        s->err = rc;
        return false;
    }
    return fails;
}

static bool out_of_budget(const shrinker *s)
{
    return s->err != WEFT_OK || s->tests >= s->max_tests;
}

static bool delete_pass(shrinker *s)
{
    bool progress = false;
    for (size_t chunk = s->len / 2 ? s->len / 2 : 1; chunk >= 1 && !out_of_budget(s);
         chunk /= 2) {
        size_t i = 0;
        while (i < s->len && !out_of_budget(s)) {
            size_t n = chunk < s->len - i ? chunk : s->len - i;
            memcpy(s->cand, s->values, i * sizeof *s->cand);
            memcpy(s->cand + i, s->values + i + n, (s->len - i - n) * sizeof *s->cand);
            if (try_candidate(s, s->len - n)) {
                memcpy(s->values, s->cand, (s->len - n) * sizeof *s->values);
                s->len -= n;
                trim_zeros(s);
                progress = true;
            } else {
                i += n;
            }
        }
        if (chunk == 1)
            break;
    }
    return progress;
}

static bool lower_pass(shrinker *s)
{
    bool progress = false;
    for (size_t i = 0; i < s->len && !out_of_budget(s); i++) {
        uint32_t hi = s->values[i]; /* fails */
        if (hi == 0)
            continue;
        memcpy(s->cand, s->values, s->len * sizeof *s->cand);
        uint32_t lo = 0; /* the value to try first; then: passes */
        s->cand[i] = 0;
        if (try_candidate(s, s->len)) {
            hi = 0;
        } else {
            while (hi - lo > 1 && !out_of_budget(s)) {
                uint32_t mid = lo + (hi - lo) / 2;
                s->cand[i] = mid;
                if (try_candidate(s, s->len))
                    hi = mid;
                else
                    lo = mid;
            }
        }
        if (hi != s->values[i]) {
            s->values[i] = hi;
            progress = true;
        }
    }
    trim_zeros(s);
    return progress;
}

int weft_shrink_choices(uint32_t *values, size_t *len, size_t max_tests, weft_shrink_fn still_fails,
                        void *ctx, size_t *tests)
{
    if (tests)
        *tests = 0;
    if (!len || !still_fails || (*len > 0 && !values))
        return WEFT_EINVAL;
    shrinker s;
    memset(&s, 0, sizeof s);
    s.values = values;
    s.len = *len;
    s.max_tests = max_tests ? max_tests : WEFT_SHRINK_TESTS_DEFAULT;
    s.fn = still_fails;
    s.ctx = ctx;
    trim_zeros(&s);
    if (s.len > 0) {
        s.cand = weft_malloc(s.len * sizeof *s.cand);
        if (!s.cand)
            return WEFT_ENOMEM;
        for (;;) {
            bool progress = delete_pass(&s);
            progress = lower_pass(&s) || progress;
            if (!progress || out_of_budget(&s))
                break;
        }
        weft_free(s.cand);
    }
    *len = s.len;
    if (tests)
        *tests = s.tests;
    return s.err;
}
