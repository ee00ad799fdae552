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
 *
 * weft_scenario_shrink (weft/explore.h) puts a scenario behind the
 * predicate: a candidate is replayed with the original seed and caps, and it
 * "fails the same way" when its first failure reads the same with every run
 * of digits taken as one placeholder: the same expectation or invariant,
 * whatever the times, values and connection numbers in its text. A candidate
 * must also dispatch no more events and ask no more questions than the
 * original run, so the shrunk run's trace is never the longer one.
 */
#include <string.h>

#include "weft/explore.h"
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

/* ------------------------------------------------- shrinking scenario runs */

char *weft_run_failure_key(const weft_run_result *r)
{
    if (r == NULL || r->passed)
        return NULL;
    const char *f = r->nfailures > 0 ? r->failures[0] : r->verdict;
    if (f == NULL)
        f = "";
    size_t n = strlen(f);
    char *key = weft_malloc(n + 1);
    if (!key)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool digit = f[i] >= '0' && f[i] <= '9';
        if (!digit)
            key[k++] = f[i];
        else if (i == 0 || !(f[i - 1] >= '0' && f[i - 1] <= '9'))
            key[k++] = '#';
    }
    key[k] = '\0';
    return key;
}

typedef struct scn_shrink {
    const weft_scenario *sc;
    const weft_registry *reg;
    weft_run_options base;
    const char *key;
    uint64_t events_max; /* a candidate may not dispatch more events */
    size_t asked_max;    /* nor ask more questions */
} scn_shrink;

/* One replay of values; *key_out (when not NULL) gets its failure key,
 * *events its events and *asked the questions it asked. */
static int replay_once(const scn_shrink *ss, const uint32_t *values, size_t len, bool *fails,
                       char **key_out, uint64_t *events, size_t *asked)
{
    weft_run_options ro = ss->base;
    ro.choices = weft_choice_replay(values, len);
    if (!ro.choices)
        return WEFT_ENOMEM;
    weft_run_result res;
    int rc = weft_scenario_run(ss->sc, ss->reg, &ro, &res);
    if (rc != WEFT_OK) {
        weft_run_result_clear(&res);
        return rc;
    }
    char *key = weft_run_failure_key(&res);
    bool oom = !res.passed && key == NULL;
    *fails = key != NULL && (ss->key == NULL || strcmp(key, ss->key) == 0) &&
             res.events <= ss->events_max && res.nchoices <= ss->asked_max;
    if (events)
        *events = res.events;
    if (asked)
        *asked = res.nchoices;
    weft_run_result_clear(&res);
    if (oom)
        return WEFT_ENOMEM;
    if (key_out)
        *key_out = key;
    else
        weft_free(key);
    return WEFT_OK;
}

static int still_fails(const uint32_t *values, size_t len, void *ctx, bool *fails)
{
    return replay_once(ctx, values, len, fails, NULL, NULL, NULL);
}

int weft_scenario_shrink(const weft_scenario *sc, const weft_registry *reg,
                         const weft_run_options *opt, const uint32_t *values, size_t len,
                         size_t max_tests, uint32_t **out, size_t *out_len, size_t *tests)
{
    if (tests)
        *tests = 0;
    if (!sc || !reg || !out || !out_len || (len > 0 && !values))
        return WEFT_EINVAL;
    *out = NULL;
    *out_len = 0;
    scn_shrink ss;
    memset(&ss, 0, sizeof ss);
    ss.sc = sc;
    ss.reg = reg;
    if (opt) {
        ss.base.seed = opt->seed;
        ss.base.use_seed = opt->use_seed;
        ss.base.max_events = opt->max_events;
        ss.base.max_time_ns = opt->max_time_ns;
    }
    char *key = NULL;
    bool fails = false;
    uint64_t events = 0;
    size_t asked = 0;
    ss.events_max = UINT64_MAX;
    ss.asked_max = SIZE_MAX;
    int rc = replay_once(&ss, values, len, &fails, &key, &events, &asked);
    if (rc != WEFT_OK)
        return rc;
    if (!fails) {
        weft_free(key);
        return WEFT_ESTATE;
    }
    ss.key = key;
    ss.events_max = events;
    ss.asked_max = asked;
    uint32_t *list = weft_malloc((len ? len : 1) * sizeof *list);
    if (!list) {
        weft_free(key);
        return WEFT_ENOMEM;
    }
    if (len)
        memcpy(list, values, len * sizeof *list);
    size_t n = len;
    rc = weft_shrink_choices(list, &n, max_tests, still_fails, &ss, tests);
    weft_free(key);
    if (rc != WEFT_OK) {
        weft_free(list);
        return rc;
    }
    *out = list;
    *out_len = n;
    return WEFT_OK;
}
