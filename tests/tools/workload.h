/* workload.h: the determinism workload, shared by tests/test_determinism.c
 * and the workload program that scripts/determinism.sh builds with several
 * compilers. Header-only (static functions) so both link it without a
 * library file.
 *
 * Many timers due at a few shared instants (so their order is a choice),
 * cancelling and rescheduling each other; Deferreds fired by those timers,
 * with add_timeout timers due at the same instant as the callbacks (a race the
 * choice source decides) and defer_later Deferreds. Every outcome is written
 * to the trace with weft_sim_trace, so the trace hash covers what happened,
 * not only when.
 */
#ifndef WEFT_TESTS_WORKLOAD_H
#define WEFT_TESTS_WORKLOAD_H

#include <stdint.h>
#include <string.h>

#include "weft/defer.h"
#include "weft/reactor.h"
#include "weft/sim.h"

#define WL_TIMERS 48
#define WL_DEFERREDS 12
#define WL_MS WEFT_NS_PER_MS

typedef struct wl wl;

typedef struct wl_dctx {
    wl *w;
    int k;
} wl_dctx;

typedef struct wl_timer {
    wl *w;
    int idx;
    weft_call *call;
} wl_timer;

struct wl {
    weft_sim *sim;
    weft_reactor *r;
    bool concurrent; /* false: every timer at its own instant */
    wl_timer timers[WL_TIMERS];
    weft_call *extra[WL_TIMERS];
    weft_deferred *d[WL_DEFERREDS];
    weft_deferred *later[4];
    wl_dctx dctx[WL_DEFERREDS + 4];
};

static weft_result wl_cb(weft_result in, void *ctx)
{
    wl_dctx *c = ctx;
    weft_sim_trace(c->w->sim, "wl", "d%d callback %d", c->k, (int)(intptr_t)in.value);
    return in;
}

static weft_result wl_eb(weft_result in, void *ctx)
{
    wl_dctx *c = ctx;
    weft_sim_trace(c->w->sim, "wl", "d%d errback %s", c->k, in.failure->type);
    return weft_value((void *)(intptr_t)-1); /* handled */
}

static void wl_follow_up(void *ctx)
{
    wl_timer *t = ctx;
    weft_sim_trace(t->w->sim, "wl", "follow-up of t%d", t->idx);
}

static void wl_fire(void *ctx)
{
    wl_timer *t = ctx;
    wl *w = t->w;
    int i = t->idx;
    weft_deferred *d = w->d[i % WL_DEFERREDS];
    int rc = weft_deferred_callback(d, (void *)(intptr_t)i);
    weft_sim_trace(w->sim, "wl", "t%d fires d%d: %s", i, i % WL_DEFERREDS, weft_err_name(rc));
    if (i % 5 == 0 && i + 1 < WL_TIMERS) {
        rc = weft_call_cancel(w->timers[i + 1].call);
        weft_sim_trace(w->sim, "wl", "t%d cancels t%d: %s", i, i + 1, weft_err_name(rc));
    }
    if (i % 7 == 3 && i + 2 < WL_TIMERS) {
        rc = weft_call_reset(w->timers[i + 2].call, w->concurrent ? 0 : 5 * WL_MS);
        weft_sim_trace(w->sim, "wl", "t%d resets t%d: %s", i, i + 2, weft_err_name(rc));
    }
    if (i % 4 == 1)
        w->extra[i] = weft_call_later(w->r, i % 8 == 1 ? 0 : WL_MS, wl_follow_up, t);
    if (w->concurrent)
        weft_sim_trace(w->sim, "wl", "coin %u", (unsigned)weft_reactor_random(w->r, 3, "wl-coin"));
}

static weft_result wl_later_value(void *ctx)
{
    return weft_value(ctx);
}

/* Run the workload on a fresh simulator with choices; returns the trace hash
 * (0 on setup failure). choices is taken over. */
static uint64_t wl_run_with(weft_choice *choices, bool concurrent, const weft_sim_config *cfg_in);

/* Same, and copy the run's choice record into *values (weft_malloc'd, the
 * caller frees it with weft_free) before the simulator goes. */
static uint64_t wl_run_record(weft_choice *choices, bool concurrent, const weft_sim_config *cfg_in,
                              uint32_t **values, size_t *len);

static uint64_t wl_run_with(weft_choice *choices, bool concurrent, const weft_sim_config *cfg_in)
{
    return wl_run_record(choices, concurrent, cfg_in, NULL, NULL);
}

static uint64_t wl_run_record(weft_choice *choices, bool concurrent, const weft_sim_config *cfg_in,
                              uint32_t **values, size_t *len)
{
    weft_sim_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        weft_sim_config_default(&cfg);
    wl w;
    memset(&w, 0, sizeof w);
    w.sim = weft_sim_new(&cfg, choices);
    if (!w.sim)
        return 0;
    w.r = weft_sim_reactor(w.sim);
    w.concurrent = concurrent;
    for (int k = 0; k < WL_DEFERREDS; k++) {
        w.d[k] = weft_deferred_new();
        w.dctx[k] = (wl_dctx){&w, k};
        weft_deferred_add_callbacks(w.d[k], wl_cb, &w.dctx[k], wl_eb, &w.dctx[k]);
        /* Timeouts due exactly when some timers fire (2 ms): a race. */
        if (k % 3 == 0)
            weft_deferred_add_timeout(w.d[k], w.r, 2 * WL_MS + (concurrent ? 0 : k), NULL, NULL);
        weft_deferred_add_callbacks(w.d[k], wl_cb, &w.dctx[k], wl_eb, &w.dctx[k]);
    }
    for (int i = 0; i < WL_TIMERS; i++) {
        int64_t at = concurrent ? (int64_t)(i % 4) * WL_MS : (int64_t)i * 10 * WL_MS + 7;
        w.timers[i] = (wl_timer){&w, i, NULL};
        w.timers[i].call = weft_call_later(w.r, at, wl_fire, &w.timers[i]);
    }
    for (int j = 0; j < 4; j++) {
        w.later[j] = weft_defer_later(w.r, concurrent ? (int64_t)(j % 2 + 1) * WL_MS
                                                      : (int64_t)j * 10 * WL_MS + 3,
                                      wl_later_value, (void *)(intptr_t)(100 + j));
        w.dctx[WL_DEFERREDS + j] = (wl_dctx){&w, 100 + j};
        weft_deferred_add_callbacks(w.later[j], wl_cb, &w.dctx[WL_DEFERREDS + j], wl_eb,
                                    &w.dctx[WL_DEFERREDS + j]);
    }
    weft_sim_run_until_quiet(w.sim);
    uint64_t h = weft_sim_trace_hash(w.sim);
    if (values) {
        const uint32_t *rec;
        size_t n = weft_choice_recorded(weft_sim_choices(w.sim), &rec, NULL);
        *values = weft_malloc(n ? n * sizeof *rec : 1);
        if (*values && n)
            memcpy(*values, rec, n * sizeof *rec);
        *len = *values ? n : 0;
    }
    for (int i = 0; i < WL_TIMERS; i++) {
        weft_call_release(w.timers[i].call);
        weft_call_release(w.extra[i]);
    }
    for (int k = 0; k < WL_DEFERREDS; k++)
        weft_deferred_unref(w.d[k]);
    for (int j = 0; j < 4; j++)
        weft_deferred_unref(w.later[j]);
    weft_sim_free(w.sim);
    return h;
}

static uint64_t wl_run(uint64_t seed)
{
    return wl_run_with(weft_choice_seeded(seed), true, NULL);
}

#endif
