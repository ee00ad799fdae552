/* Property test: many seeded, generated scenarios of Deferreds (handlers that
 * pass, replace, fail, trap, return another Deferred or fire another one;
 * callback, errback, pause, unpause, cancel) run on weft and on a small
 * reference model of the chain semantics written independently (recursive,
 * arrays, no references), and the two must agree on every handler call and
 * what it received, every return code, every final state and the number of
 * unhandled Failures. A mismatch prints the seed and both transcripts;
 * WEFT_MODEL_SEED=<n> replays one seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/defer.h"
#include "weft/testing.h"

#define V(n) ((void *)(uintptr_t)(n))
#define N(p) ((int)(uintptr_t)(p))

enum { MAX_DEFERREDS = 5, MAX_OPS = 32, MAX_PAIRS = 4 * MAX_OPS };

/* ------------------------------------------------------------ PRNG */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int rng_below(int n)
{
    return (int)(rng_next() % (uint64_t)n);
}

/* --------------------------------------------------------- scenarios */

typedef enum { A_NONE, A_PASS, A_VALUE, A_FAIL, A_TRAP, A_CHAIN, A_FIRE, A_ADD } akind;

typedef struct action {
    int id;
    akind kind;
    int arg;  /* VALUE: value; FAIL, TRAP: type; CHAIN, FIRE, ADD: Deferred index */
    int arg2; /* TRAP: value on recovery; FIRE: value fired */
} action;

typedef enum { O_ADD, O_CALLBACK, O_ERRBACK, O_PAUSE, O_UNPAUSE, O_CANCEL, O_CHAIN_TO } okind;

typedef struct op {
    okind kind;
    int d;
    int arg; /* CALLBACK: value; ERRBACK: type; CHAIN_TO: target */
    action cb, eb;
} op;

typedef struct scenario {
    int n_deferreds;
    int canceller[MAX_DEFERREDS]; /* 0: none, 1: does nothing, 2: fires 100 */
    int n_ops;
    op ops[MAX_OPS];
} scenario;

static const char *const type_names[] = {"E0", "E1", "E2", WEFT_FAILURE_CANCELLED,
                                         WEFT_FAILURE_SELF_CHAIN, WEFT_FAILURE_ALREADY_CALLED};
enum { T_CANCELLED = 3, T_SELF_CHAIN = 4, T_ALREADY_CALLED = 5 };

/* The pass-through pair that A_ADD appends from inside a handler. */
static const action late_pass = {900, A_PASS, 0, 0};

static action gen_action(int id, int n)
{
    action a = {id, A_NONE, 0, 0};
    int r = rng_below(20);
    if (r < 3)
        a.kind = A_NONE;
    else if (r < 6)
        a.kind = A_PASS;
    else if (r < 9)
        a.kind = A_VALUE;
    else if (r < 12)
        a.kind = A_FAIL;
    else if (r < 15)
        a.kind = A_TRAP;
    else if (r < 18)
        a.kind = A_CHAIN;
    else if (r < 19)
        a.kind = A_FIRE;
    else
        a.kind = A_ADD;
    switch (a.kind) {
    case A_VALUE:
        a.arg = rng_below(10);
        break;
    case A_FAIL:
        a.arg = rng_below(3);
        break;
    case A_TRAP:
        a.arg = rng_below(4);
        a.arg2 = rng_below(10);
        break;
    case A_CHAIN:
    case A_FIRE:
    case A_ADD:
        a.arg = rng_below(n);
        a.arg2 = 20 + rng_below(10);
        break;
    default:
        break;
    }
    return a;
}

static void gen_scenario(scenario *s)
{
    memset(s, 0, sizeof *s);
    s->n_deferreds = 1 + rng_below(MAX_DEFERREDS);
    for (int i = 0; i < s->n_deferreds; i++)
        s->canceller[i] = rng_below(3);
    s->n_ops = 1 + rng_below(MAX_OPS);
    int next_id = 0;
    for (int i = 0; i < s->n_ops; i++) {
        op *o = &s->ops[i];
        int r = rng_below(20);
        o->d = rng_below(s->n_deferreds);
        if (r < 9) {
            o->kind = O_ADD;
            o->cb = gen_action(next_id++, s->n_deferreds);
            o->eb = gen_action(next_id++, s->n_deferreds);
        } else if (r < 13) {
            o->kind = O_CALLBACK;
            o->arg = rng_below(10);
        } else if (r < 15) {
            o->kind = O_ERRBACK;
            o->arg = rng_below(3);
        } else if (r < 17) {
            o->kind = O_PAUSE;
        } else if (r < 19) {
            o->kind = O_UNPAUSE;
        } else if (rng_below(2)) {
            o->kind = O_CANCEL;
        } else {
            o->kind = O_CHAIN_TO;
            o->arg = rng_below(s->n_deferreds);
        }
    }
}

/* Transcripts: one for weft, one for the model. */
typedef struct transcript {
    char buf[16384];
    size_t len;
} transcript;

static void tr_add(transcript *t, const char *fmt, ...)
{
    if (t->len >= sizeof t->buf - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n;
    if (t->len > sizeof t->buf - 1)
        t->len = sizeof t->buf - 1;
}

/* ------------------------------------------------------------- weft side */

static weft_deferred *W[MAX_DEFERREDS];
static transcript wt;

static int type_id(const weft_failure *f)
{
    for (int i = 0; i < (int)(sizeof type_names / sizeof type_names[0]); i++)
        if (weft_failure_check(f, type_names[i]))
            return i;
    return 99;
}

static weft_result w_handler(weft_result in, void *ctx)
{
    const action *a = ctx;
    bool failed = in.kind == WEFT_RESULT_FAILURE;
    if (failed)
        tr_add(&wt, "h%d(f%d)", a->id, type_id(in.failure));
    else
        tr_add(&wt, "h%d(v%d)", a->id, N(in.value));
    switch (a->kind) {
    case A_NONE:
    case A_PASS:
        return in;
    case A_VALUE:
        return weft_value(V(a->arg));
    case A_FAIL:
        return weft_failed(weft_failure_new(type_names[a->arg], "generated"));
    case A_TRAP:
        if (failed && type_id(in.failure) == a->arg)
            return weft_value(V(a->arg2));
        return in;
    case A_CHAIN:
        return weft_chain(weft_deferred_ref(W[a->arg]));
    case A_FIRE:
        tr_add(&wt, "fire%d=%d", a->arg, weft_deferred_callback(W[a->arg], V(a->arg2)));
        return in;
    case A_ADD:
        tr_add(&wt, "add%d=%d", a->arg,
               weft_deferred_add_callbacks(W[a->arg], w_handler, (void *)&late_pass, w_handler,
                                           (void *)&late_pass));
        return in;
    }
    return in;
}

static void w_canceller(weft_deferred *d, void *ctx)
{
    intptr_t kind = (intptr_t)ctx;
    tr_add(&wt, "canceller");
    if (kind == 2)
        weft_deferred_callback(d, V(100));
}

static unsigned long run_weft(const scenario *s)
{
    unsigned long before = weft_unhandled_count();
    for (int i = 0; i < s->n_deferreds; i++) {
        W[i] = s->canceller[i] ? weft_deferred_new_cancellable(w_canceller,
                                                               (void *)(intptr_t)s->canceller[i])
                               : weft_deferred_new();
        assert_non_null(W[i]);
    }
    for (int i = 0; i < s->n_ops; i++) {
        const op *o = &s->ops[i];
        weft_deferred *d = W[o->d];
        int rc = 0;
        switch (o->kind) {
        case O_ADD:
            rc = weft_deferred_add_callbacks(d, o->cb.kind == A_NONE ? NULL : w_handler,
                                             (void *)&o->cb,
                                             o->eb.kind == A_NONE ? NULL : w_handler,
                                             (void *)&o->eb);
            break;
        case O_CALLBACK:
            rc = weft_deferred_callback(d, V(o->arg));
            break;
        case O_ERRBACK:
            rc = weft_deferred_errback(d, weft_failure_new(type_names[o->arg], "op"));
            break;
        case O_PAUSE:
            rc = weft_deferred_pause(d);
            break;
        case O_UNPAUSE:
            rc = weft_deferred_unpause(d);
            break;
        case O_CANCEL:
            rc = weft_deferred_cancel(d);
            break;
        case O_CHAIN_TO:
            rc = weft_deferred_chain_to(d, W[o->arg]);
            break;
        }
        tr_add(&wt, " o%d=%d;", i, rc);
    }
    tr_add(&wt, " end:");
    for (int i = 0; i < s->n_deferreds; i++) {
        weft_result r;
        weft_deferred_state st = weft_deferred_peek(W[i], &r);
        if (st == WEFT_DEFERRED_PENDING)
            tr_add(&wt, " d%d:pending(called=%d,paused=%u)", i, weft_deferred_called(W[i]),
                   weft_deferred_paused(W[i]));
        else if (st == WEFT_DEFERRED_SUCCEEDED)
            tr_add(&wt, " d%d:v%d", i, N(r.value));
        else
            tr_add(&wt, " d%d:f%d", i, type_id(r.failure));
    }
    /* Settle everything (remove user pauses, fire what never fired) so that
     * every pair runs and every reference cycle through chain_to pairs is
     * broken; then count the Failures left unhandled when the last
     * references go. */
    tr_add(&wt, " cleanup:");
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < s->n_deferreds; i++) {
            while (weft_deferred_unpause(W[i]) == WEFT_OK)
                tr_add(&wt, "u%d", i);
            if (!weft_deferred_called(W[i]))
                tr_add(&wt, "c%d=%d", i, weft_deferred_callback(W[i], V(0)));
        }
    }
    for (int i = 0; i < s->n_deferreds; i++)
        weft_deferred_unref(W[i]);
    return weft_unhandled_count() - before;
}

/* ------------------------------------------------------------ the model */

typedef struct mres {
    bool failed;
    int v; /* value, or type id */
} mres;

typedef struct mret {
    int kind; /* 0: result, 1: chain */
    mres res;
    int chain;
} mret;

typedef struct mpair {
    int outer;    /* >= 0: a continuation for that Deferred */
    int chain_to; /* >= 0: forward the result to that Deferred */
    const action *cb, *eb;
} mpair;

typedef struct mdef {
    bool called, running, suppress, canceller_ran;
    int canceller;
    int paused;
    int waiting; /* index waited on, or -1 */
    mres result;
    mpair pairs[MAX_PAIRS];
    int head, tail;
} mdef;

static mdef M[MAX_DEFERREDS];
static unsigned long model_waits; /* continuations appended, for coverage */
static transcript mt;

static void model_run(int i);

static int model_fire(int i, mres res)
{
    mdef *d = &M[i];
    if (d->called) {
        if (d->suppress) {
            d->suppress = false;
            return WEFT_OK;
        }
        return WEFT_EALREADYCALLED;
    }
    d->called = true;
    d->result = res;
    if (d->paused == 0)
        model_run(i);
    return WEFT_OK;
}

/* add_callbacks: append, and run now if fired, unpaused and not running. */
static int model_add(int i, mpair p)
{
    mdef *d = &M[i];
    assert_true(d->tail < MAX_PAIRS);
    d->pairs[d->tail++] = p;
    if (d->called && d->paused == 0)
        model_run(i);
    return WEFT_OK;
}

static mret model_exec(const action *a, mres in)
{
    mret out = {0, in, -1};
    if (in.failed)
        tr_add(&mt, "h%d(f%d)", a->id, in.v);
    else
        tr_add(&mt, "h%d(v%d)", a->id, in.v);
    switch (a->kind) {
    case A_NONE:
    case A_PASS:
        break;
    case A_VALUE:
        out.res = (mres){false, a->arg};
        break;
    case A_FAIL:
        out.res = (mres){true, a->arg};
        break;
    case A_TRAP:
        if (in.failed && in.v == a->arg)
            out.res = (mres){false, a->arg2};
        break;
    case A_CHAIN:
        out.kind = 1;
        out.chain = a->arg;
        break;
    case A_FIRE:
        tr_add(&mt, "fire%d=%d", a->arg, model_fire(a->arg, (mres){false, a->arg2}));
        break;
    case A_ADD:
        tr_add(&mt, "add%d=%d", a->arg, model_add(a->arg, (mpair){-1, -1, &late_pass, &late_pass}));
        break;
    }
    return out;
}

/* The handler's return becomes d's result; a returned Deferred is either
 * stolen (it has a settled result) or waited for. */
static void model_settle(int i, mret out)
{
    mdef *d = &M[i];
    if (out.kind == 0) {
        d->result = out.res;
        return;
    }
    int j = out.chain;
    mdef *r = &M[j];
    if (j == i) {
        d->result = (mres){true, T_SELF_CHAIN};
        return;
    }
    for (int x = j; M[x].waiting >= 0;) {
        x = M[x].waiting;
        if (x == i) {
            d->result = (mres){true, T_SELF_CHAIN};
            return;
        }
    }
    bool settled = r->called && r->paused == 0 && !r->running && r->waiting < 0 &&
                   r->head == r->tail;
    if (settled) {
        d->result = r->result;
        r->result = (mres){false, 0};
        return;
    }
    assert_true(r->tail < MAX_PAIRS);
    r->pairs[r->tail++] = (mpair){i, -1, NULL, NULL};
    model_waits++;
    d->paused++;
    d->waiting = j;
}

static void model_run(int i)
{
    mdef *d = &M[i];
    if (d->running)
        return;
    d->running = true;
    while (d->paused == 0 && d->head < d->tail) {
        mpair p = d->pairs[d->head++];
        if (p.outer >= 0) {
            mdef *outer = &M[p.outer];
            outer->result = d->result;
            outer->waiting = -1;
            outer->paused--;
            d->result = (mres){false, 0};
            model_run(p.outer);
            continue;
        }
        if (p.chain_to >= 0) {
            /* chainDeferred: the target gets d's result, d keeps NULL. */
            mdef *t = &M[p.chain_to];
            if (t->called) {
                if (t->suppress) {
                    t->suppress = false;
                    d->result = (mres){false, 0};
                } else {
                    d->result = (mres){true, T_ALREADY_CALLED};
                }
                continue;
            }
            t->called = true;
            t->result = d->result;
            d->result = (mres){false, 0};
            if (t->paused == 0)
                model_run(p.chain_to);
            continue;
        }
        const action *a = d->result.failed ? p.eb : p.cb;
        if (a->kind == A_NONE)
            continue;
        model_settle(i, model_exec(a, d->result));
    }
    d->running = false;
}

static int model_unpause(int i)
{
    mdef *d = &M[i];
    if (d->paused <= (d->waiting >= 0 ? 1 : 0))
        return WEFT_ENOTPAUSED;
    d->paused--;
    if (d->paused == 0 && d->called)
        model_run(i);
    return WEFT_OK;
}

static void model_cancel(int i)
{
    while (M[i].called && M[i].waiting >= 0)
        i = M[i].waiting;
    mdef *d = &M[i];
    if (d->called)
        return;
    if (d->canceller == 0) {
        d->suppress = true;
    } else if (!d->canceller_ran) {
        d->canceller_ran = true;
        tr_add(&mt, "canceller");
        if (d->canceller == 2)
            model_fire(i, (mres){false, 100});
    }
    if (!d->called)
        model_fire(i, (mres){true, T_CANCELLED});
}

static unsigned long run_model(const scenario *s)
{
    memset(M, 0, sizeof M);
    for (int i = 0; i < s->n_deferreds; i++) {
        M[i].waiting = -1;
        M[i].canceller = s->canceller[i];
    }
    for (int i = 0; i < s->n_ops; i++) {
        const op *o = &s->ops[i];
        mdef *d = &M[o->d];
        int rc = WEFT_OK;
        switch (o->kind) {
        case O_ADD:
            rc = model_add(o->d, (mpair){-1, -1, &o->cb, &o->eb});
            break;
        case O_CHAIN_TO:
            rc = o->arg == o->d ? WEFT_ESELFCHAIN
                                : model_add(o->d, (mpair){-1, o->arg, NULL, NULL});
            break;
        case O_CALLBACK:
            rc = model_fire(o->d, (mres){false, o->arg});
            break;
        case O_ERRBACK:
            rc = model_fire(o->d, (mres){true, o->arg});
            break;
        case O_PAUSE:
            d->paused++;
            break;
        case O_UNPAUSE:
            rc = model_unpause(o->d);
            break;
        case O_CANCEL:
            model_cancel(o->d);
            break;
        }
        tr_add(&mt, " o%d=%d;", i, rc);
    }
    tr_add(&mt, " end:");
    for (int i = 0; i < s->n_deferreds; i++) {
        mdef *d = &M[i];
        bool pending = !d->called || d->paused || d->waiting >= 0 || d->head < d->tail;
        if (pending)
            tr_add(&mt, " d%d:pending(called=%d,paused=%d)", i, d->called, d->paused);
        else if (d->result.failed)
            tr_add(&mt, " d%d:f%d", i, d->result.v);
        else
            tr_add(&mt, " d%d:v%d", i, d->result.v);
    }
    tr_add(&mt, " cleanup:");
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < s->n_deferreds; i++) {
            while (model_unpause(i) == WEFT_OK)
                tr_add(&mt, "u%d", i);
            if (!M[i].called)
                tr_add(&mt, "c%d=%d", i, model_fire(i, (mres){false, 0}));
        }
    }
    unsigned long unhandled = 0;
    for (int i = 0; i < s->n_deferreds; i++) {
        mdef *d = &M[i];
        if (d->called && d->waiting < 0 && d->result.failed)
            unhandled++;
    }
    return unhandled;
}

/* ----------------------------------------------------------- the tests */

static void describe_scenario(const scenario *s)
{
    static const char *const akinds[] = {"none", "pass", "value", "fail", "trap", "chain", "fire",
                                         "add"};
    static const char *const okinds[] = {"add",     "callback", "errback", "pause",
                                         "unpause", "cancel",   "chain_to"};
    print_error("  %d Deferreds, cancellers:", s->n_deferreds);
    for (int i = 0; i < s->n_deferreds; i++)
        print_error(" %d", s->canceller[i]);
    print_error("\n");
    for (int i = 0; i < s->n_ops; i++) {
        const op *o = &s->ops[i];
        print_error("  o%d: %s d%d arg=%d", i, okinds[o->kind], o->d, o->arg);
        if (o->kind == O_ADD)
            print_error(" cb=h%d:%s(%d,%d) eb=h%d:%s(%d,%d)", o->cb.id, akinds[o->cb.kind],
                        o->cb.arg, o->cb.arg2, o->eb.id, akinds[o->eb.kind], o->eb.arg,
                        o->eb.arg2);
        print_error("\n");
    }
}

static void check_seed(uint64_t seed)
{
    static scenario s;
    rng_state = seed;
    gen_scenario(&s);
    wt.len = 0;
    wt.buf[0] = '\0';
    mt.len = 0;
    mt.buf[0] = '\0';
    unsigned long w_unhandled = run_weft(&s);
    unsigned long m_unhandled = run_model(&s);
    if (strcmp(wt.buf, mt.buf) != 0 || w_unhandled != m_unhandled) {
        print_error("seed %llu: weft and the model disagree (replay: WEFT_MODEL_SEED=%llu)\n",
                    (unsigned long long)seed, (unsigned long long)seed);
        describe_scenario(&s);
        print_error("  weft:  %s unhandled=%lu\n", wt.buf, w_unhandled);
        print_error("  model: %s unhandled=%lu\n", mt.buf, m_unhandled);
        fail();
    }
}

static void generated_chains_match_the_model(void **state)
{
    (void)state;
    const char *one = getenv("WEFT_MODEL_SEED");
    if (one) {
        check_seed(strtoull(one, NULL, 10));
        return;
    }
    for (uint64_t seed = 1; seed <= 20000; seed++)
        check_seed(seed);
}

/* The generator reaches the interesting cases: otherwise the property test
 * could pass by exercising nothing. */
static void generator_covers_the_semantics(void **state)
{
    (void)state;
    int chains_waited = 0, self_chains = 0, cancels_forwarded = 0, fires_nested = 0;
    int late_adds_run = 0, chain_to_refused = 0;
    model_waits = 0;
    for (uint64_t seed = 1; seed <= 2000; seed++) {
        static scenario s;
        rng_state = seed;
        gen_scenario(&s);
        mt.len = 0;
        mt.buf[0] = '\0';
        run_model(&s);
        if (strstr(mt.buf, "f4"))
            self_chains++;
        if (strstr(mt.buf, "fire"))
            fires_nested++;
        if (strstr(mt.buf, "h900("))
            late_adds_run++;
        if (strstr(mt.buf, "f5"))
            chain_to_refused++;
        if (model_waits) {
            chains_waited++;
            model_waits = 0;
        }
        if (strstr(mt.buf, "f3") && strstr(mt.buf, "canceller"))
            cancels_forwarded++;
    }
    assert_true(chains_waited > 50);
    assert_true(self_chains > 10);
    assert_true(fires_nested > 50);
    assert_true(cancels_forwarded > 10);
    assert_true(late_adds_run > 50);
    assert_true(chain_to_refused > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_chains_match_the_model),
        cmocka_unit_test(generator_covers_the_semantics),
    };
    return cmocka_run_group_tests_name("defer_model", tests, NULL, NULL);
}
