/* fuzz_defer.c: programs of Deferred operations, run on the library and on
 * the reference model (fuzz/reference_model.c), which must agree.
 *
 * The input decodes into a program (reference_model.h): up to 8 Deferreds
 * (plain, with one of three cancellers, already succeeded or failed, lists
 * with any flags, gathers), handler pairs from a menu (pass, replace the
 * value, fail, trap a type, return another Deferred, fire or cancel another
 * Deferred, add a pair to another Deferred, pause or unpause one, all from
 * inside the handler), callback, errback, cancel, pause,
 * unpause, chain_to, take_result, addTimeout and advancing the simulator's
 * virtual clock, and a DeferredLock, a DeferredSemaphore and a
 * DeferredQueue (acquire, release, put, get). Every program ends the same way: rounds of "unpause and
 * cancel every Deferred (and fire by hand a list that ignored the cancel),
 * run the clock out" until one resumes nothing and runs no handler, then
 * every Deferred's final
 * state, then the number of Failures reported unhandled once every
 * reference is released.
 *
 * The library's transcript is built by the handlers themselves; the model
 * writes its own. Any difference prints the program and both transcripts
 * and aborts. The sanitizers add the memory properties: no leak, no use
 * after free, whatever the program. A program that agrees then runs once
 * more on the library with one allocation failing (the n-th, n from the
 * input's last byte, below 64): its outcome is not compared, but it must
 * not crash or leak (steps whose constructor failed are skipped).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/defer.h"
#include "weft/reactor.h"
#include "weft/sim.h"

#include "fuzz/reference_model.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define V(n) ((void *)(uintptr_t)(n))
#define SMALL_VALUE_MAX 4096u

typedef struct harness {
    const wm_program *p;
    wm_trace *t;
    weft_deferred *d[WM_SLOTS_MAX];
    /* The result structure each list or gather fired with (recorded by a
     * pass-through pair the harness adds first), to render values. */
    const void *list_result[WM_SLOTS_MAX];
    bool is_gather[WM_SLOTS_MAX];
    int slot_ids[WM_SLOTS_MAX];
    weft_sim *sim;
    unsigned long calls; /* handler calls so far */
    weft_lock *lock;
    weft_semaphore *sem;
    weft_dqueue *queue;
} harness;

static harness H;

static void render_failure(const weft_failure *f, wm_trace *t)
{
    size_t idx[WM_SLOTS_MAX + 2];
    size_t depth = 0;
    wm_tracef(t, "F:");
    while (f && weft_failure_check(f, WEFT_FAILURE_FIRST_ERROR) && f->sub &&
           depth < WM_SLOTS_MAX + 2) {
        wm_tracef(t, "FirstError(");
        idx[depth++] = f->index;
        f = f->sub;
    }
    wm_tracef(t, "%s", f ? f->type : "(null)");
    while (depth > 0)
        wm_tracef(t, "@%zu)", idx[--depth]);
}

static void render_short_value(void *v, wm_trace *t)
{
    if ((uintptr_t)v < SMALL_VALUE_MAX) {
        wm_tracef(t, "%d", (int)(uintptr_t)v);
        return;
    }
    if (v == (void *)H.lock || v == (void *)H.sem) {
        wm_tracef(t, "%s", v == (void *)H.lock ? "K" : "S");
        return;
    }
    for (int s = 0; s < WM_SLOTS_MAX; s++) {
        if (H.list_result[s] == v) {
            wm_tracef(t, "%c%d", H.is_gather[s] ? 'G' : 'L', s);
            return;
        }
    }
    wm_tracef(t, "?%p", v);
}

static void render_result(weft_result r, wm_trace *t)
{
    if (r.kind == WEFT_RESULT_FAILURE) {
        render_failure(r.failure, t);
        return;
    }
    void *v = r.value;
    int s = -1;
    if ((uintptr_t)v >= SMALL_VALUE_MAX) {
        for (int k = 0; k < WM_SLOTS_MAX; k++)
            if (H.list_result[k] == v)
                s = k;
    }
    if (s < 0) {
        render_short_value(v, t);
        return;
    }
    if (H.is_gather[s]) {
        const weft_gather_result *g = v;
        wm_tracef(t, "G%d{", s);
        for (size_t i = 0; i < g->count; i++) {
            if (i)
                wm_tracef(t, ",");
            render_short_value(g->values[i], t);
        }
        wm_tracef(t, "}");
        return;
    }
    const weft_dlist_result *l = v;
    wm_tracef(t, "L%d@%zu{", s, l->index);
    for (size_t i = 0; i < l->count; i++) {
        const weft_dlist_item *it = &l->items[i];
        if (i)
            wm_tracef(t, ";");
        if (!it->reported) {
            wm_tracef(t, "-");
        } else if (it->succeeded) {
            wm_tracef(t, "ok:");
            render_short_value(it->value, t);
        } else {
            wm_tracef(t, "fail:");
            render_failure(it->failure, t);
        }
    }
    wm_tracef(t, "}");
}

static weft_result pass(weft_result in)
{
    return in;
}

static weft_result handler(weft_result in, void *ctx)
{
    const wm_act *a = ctx;
    bool failed = in.kind == WEFT_RESULT_FAILURE;
    H.calls++;
    wm_tracef(H.t, "h%d d%d %s in=", a->id, a->slot, failed ? "eb" : "cb");
    render_result(in, H.t);
    wm_tracef(H.t, "\n");
    switch (a->kind) {
    case WM_A_VALUE:
        return weft_value(V(a->n));
    case WM_A_FAIL:
        return weft_failed(weft_failure_new(wm_type_names[a->t], "fuzz failure %u", a->t));
    case WM_A_TRAP:
        if (failed && weft_failure_check(in.failure, wm_type_names[a->t]))
            return weft_value(V(a->n));
        return pass(in);
    case WM_A_CHAIN:
        if (a->j < WM_SLOTS_MAX && H.d[a->j])
            return weft_chain(weft_deferred_ref(H.d[a->j]));
        return pass(in);
    case WM_A_FIRE:
        if (a->j < WM_SLOTS_MAX && H.d[a->j]) {
            int rc = weft_deferred_callback(H.d[a->j], V(a->n));
            wm_tracef(H.t, "h%d fire d%d -> %s\n", a->id, a->j, weft_err_name(rc));
        }
        return pass(in);
    case WM_A_CANCEL:
        if (a->j < WM_SLOTS_MAX && H.d[a->j]) {
            weft_deferred_cancel(H.d[a->j]);
            wm_tracef(H.t, "h%d cancel d%d done\n", a->id, a->j);
        }
        return pass(in);
    case WM_A_ADD:
        if (a->j < WM_SLOTS_MAX && H.d[a->j]) {
            const wm_act *sub = &H.p->acts[a->sub];
            weft_handler_fn fn = sub->kind == WM_A_NONE ? NULL : handler;
            int rc = weft_deferred_add_callbacks(H.d[a->j], fn, (void *)sub, fn, (void *)sub);
            wm_tracef(H.t, "h%d add d%d -> %s\n", a->id, a->j, weft_err_name(rc));
        }
        return pass(in);
    case WM_A_PAUSE:
        if (a->j < WM_SLOTS_MAX && H.d[a->j])
            weft_deferred_pause(H.d[a->j]);
        return pass(in);
    case WM_A_UNPAUSE:
        if (a->j < WM_SLOTS_MAX && H.d[a->j]) {
            int rc = weft_deferred_unpause(H.d[a->j]);
            wm_tracef(H.t, "h%d unpause d%d -> %s\n", a->id, a->j, weft_err_name(rc));
        }
        return pass(in);
    default:
        return pass(in);
    }
}

static weft_result recorder(weft_result in, void *ctx)
{
    int s = *(const int *)ctx;
    /* The first pair on a list: it sees the list's own result, unless the
     * list was fired by hand (callback, chain_to) with a small value, the
     * lock, the semaphore or another list's result, which are known. */
    if (in.kind != WEFT_RESULT_VALUE || (uintptr_t)in.value < SMALL_VALUE_MAX ||
        in.value == (void *)H.lock || in.value == (void *)H.sem)
        return in;
    for (int k = 0; k < WM_SLOTS_MAX; k++)
        if (H.list_result[k] == in.value)
            return in;
    H.list_result[s] = in.value;
    return in;
}

static void canceller(weft_deferred *d, void *ctx)
{
    int s = *(const int *)ctx;
    int kind = H.p->canceller[s];
    wm_tracef(H.t, "canceller d%d\n", s);
    if (kind == 2 || kind == 3) {
        int rc = kind == 2 ? weft_deferred_callback(d, V(77))
                           : weft_deferred_errback(d, weft_failure_new("E2", "canceller"));
        wm_tracef(H.t, "canceller d%d fired -> %s\n", s, weft_err_name(rc));
    }
}

/* The allocation-failure pass: one allocation fails somewhere in the run. */
static bool oom_pass;

/* A constructor returned NULL: skip that step in the allocation-failure
 * pass, abort otherwise (nothing should fail in the compared run). */
static bool give_up(const char *what)
{
    if (oom_pass)
        return true;
    fprintf(stderr, "fuzz_defer: out of memory in %s\n", what);
    abort();
}

static void lib_run(const wm_program *p, wm_trace *t)
{
    memset(&H, 0, sizeof H);
    H.p = p;
    H.t = t;
    for (int s = 0; s < WM_SLOTS_MAX; s++)
        H.slot_ids[s] = s;
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    /* No choices: concurrent timers run in the order they were scheduled. */
    H.sim = weft_sim_new(&cfg, weft_choice_replay(NULL, 0));
    if (!H.sim && give_up("weft_sim_new"))
        return;
    weft_reactor *r = weft_sim_reactor(H.sim);
    weft_unhandled_reset();
    H.lock = weft_lock_new();
    H.sem = weft_semaphore_new(WM_SEM_TOKENS);
    H.queue = weft_dqueue_new(WM_QUEUE_SIZE, SIZE_MAX);
    if ((!H.lock || !H.sem || !H.queue) && give_up("lock, semaphore or queue")) {
        weft_lock_free(H.lock);
        weft_semaphore_free(H.sem);
        weft_dqueue_free(H.queue);
        weft_sim_free(H.sim);
        return;
    }

    for (int i = 0; i < p->nops; i++) {
        const wm_op *op = &p->ops[i];
        wm_tracef(t, "op%d %s\n", i, op_names[op->kind]);
        int rc = WEFT_OK;
        bool uses_d = op->kind != WM_O_NEW && op->kind != WM_O_LIST && op->kind != WM_O_GATHER &&
                      op->kind != WM_O_ADVANCE && op->kind != WM_O_ACQUIRE &&
                      op->kind != WM_O_RELEASE && op->kind != WM_O_PUT && op->kind != WM_O_GET;
        weft_deferred *d = uses_d ? H.d[op->d] : NULL;
        switch (op->kind) {
        case WM_O_NEW: {
            int s = op->new_slot;
            weft_deferred *nd;
            if (op->arg >= 1 && op->arg <= 3)
                nd = weft_deferred_new_cancellable(canceller, &H.slot_ids[s]);
            else if (op->arg == 4)
                nd = weft_succeed(V(op->arg2));
            else if (op->arg == 5)
                nd = weft_fail(weft_failure_new(wm_type_names[op->arg2], "fuzz"));
            else
                nd = weft_deferred_new();
            if (!nd && give_up("new"))
                break;
            H.d[s] = nd;
            break;
        }
        case WM_O_ADD: {
            const wm_act *cb = &p->acts[op->cb], *eb = &p->acts[op->eb];
            rc = weft_deferred_add_callbacks(d, cb->kind == WM_A_NONE ? NULL : handler,
                                             (void *)cb, eb->kind == WM_A_NONE ? NULL : handler,
                                             (void *)eb);
            break;
        }
        case WM_O_CALLBACK:
            rc = weft_deferred_callback(d, V(op->arg));
            break;
        case WM_O_ERRBACK:
            rc = weft_deferred_errback(d, weft_failure_new(wm_type_names[op->arg], "fuzz"));
            break;
        case WM_O_CANCEL:
            rc = weft_deferred_cancel(d);
            break;
        case WM_O_PAUSE:
            rc = weft_deferred_pause(d);
            break;
        case WM_O_UNPAUSE:
            rc = weft_deferred_unpause(d);
            break;
        case WM_O_CHAIN_TO:
            rc = weft_deferred_chain_to(d, H.d[op->arg]);
            break;
        case WM_O_LIST:
        case WM_O_GATHER: {
            int s = op->new_slot;
            weft_deferred *members[WM_MEMBERS_MAX];
            bool missing = false;
            for (unsigned k = 0; k < op->nmembers; k++) {
                members[k] = H.d[op->members[k]];
                missing |= members[k] == NULL;
            }
            if (missing) /* a member whose constructor failed (allocation pass) */
                break;
            H.is_gather[s] = op->kind == WM_O_GATHER;
            weft_deferred *nd = op->kind == WM_O_GATHER
                                    ? weft_gather(members, op->nmembers, op->arg != 0)
                                    : weft_deferred_list(members, op->nmembers, op->arg);
            if (!nd && give_up("list"))
                break;
            H.d[s] = nd;
            if (weft_deferred_add_callback(nd, recorder, &H.slot_ids[s]) != WEFT_OK &&
                give_up("recorder"))
                break;
            break;
        }
        case WM_O_TIMEOUT:
            rc = weft_deferred_add_timeout(d, r, (int64_t)op->arg * WEFT_NS_PER_MS, NULL, NULL);
            break;
        case WM_O_ADVANCE:
            rc = weft_sim_advance(H.sim, (int64_t)op->arg * WEFT_NS_PER_MS);
            break;
        case WM_O_ACQUIRE: {
            weft_deferred *nd = op->arg ? weft_semaphore_acquire(H.sem) : weft_lock_acquire(H.lock);
            if (!nd && give_up("acquire"))
                break;
            H.d[op->new_slot] = nd;
            break;
        }
        case WM_O_RELEASE:
            rc = op->arg ? weft_semaphore_release(H.sem) : weft_lock_release(H.lock);
            break;
        case WM_O_PUT:
            rc = weft_dqueue_put(H.queue, V(op->arg));
            break;
        case WM_O_GET: {
            weft_deferred *nd = NULL;
            rc = weft_dqueue_get(H.queue, &nd);
            if (rc != WEFT_OK && give_up("get"))
                rc = WEFT_OK;
            H.d[op->new_slot] = nd;
            break;
        }
        case WM_O_TAKE: {
            weft_result out;
            rc = weft_deferred_take_result(d, &out);
            if (rc == WEFT_OK) {
                wm_tracef(t, "take d%d: ", op->d);
                render_result(out, t);
                wm_tracef(t, "\n");
                if (out.kind == WEFT_RESULT_FAILURE)
                    weft_failure_free(out.failure);
            }
            break;
        }
        default:
            break;
        }
        wm_tracef(t, "op%d -> %s\n", i, weft_err_name(rc));
    }

    for (int round = 0; round < WM_TEARDOWN_ROUNDS_MAX; round++) {
        wm_tracef(t, "teardown %d\n", round);
        unsigned long calls = H.calls;
        bool resumed = false;
        for (int s = 0; s < p->nslots; s++) {
            if (!H.d[s])
                continue;
            while (weft_deferred_unpause(H.d[s]) == WEFT_OK)
                resumed = true;
            weft_deferred_cancel(H.d[s]);
            if (!weft_deferred_called(H.d[s]))
                weft_deferred_callback(H.d[s], V(0));
        }
        weft_sim_run_until_quiet(H.sim);
        if (!resumed && calls == H.calls)
            break;
    }
    for (int s = 0; s < p->nslots; s++) {
        if (!H.d[s])
            continue;
        wm_tracef(t, "final d%d: ", s);
        weft_result out;
        if (weft_deferred_peek(H.d[s], &out) == WEFT_DEFERRED_PENDING)
            wm_tracef(t, "pending");
        else
            render_result(out, t);
        wm_tracef(t, "\n");
    }
    /* After the teardown no waiter is left (each was cancelled), unless an
     * allocation failed; freeing then fails the waiters with Cancelled. */
    weft_lock_free(H.lock);
    weft_semaphore_free(H.sem);
    weft_dqueue_free(H.queue);
    for (int s = 0; s < p->nslots; s++)
        weft_deferred_unref(H.d[s]);
    wm_tracef(t, "unhandled %lu\n", weft_unhandled_count());
    weft_sim_free(H.sim);
    weft_unhandled_reset();
}

static wm_program prog;
static wm_trace lib_t, model_t, desc_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wm_decode(data, size, &prog);
    wm_trace_init(&lib_t);
    wm_trace_init(&model_t);
    lib_run(&prog, &lib_t);
    wm_model_run(&prog, &model_t);
    if (lib_t.len == model_t.len && memcmp(lib_t.text, model_t.text, lib_t.len) == 0) {
        /* The same program once more with the n-th allocation failing (n
         * from the input's last byte): no comparison (the outcome changes),
         * but no crash, no leak, no use after free. */
        if (size > 0) {
            wm_trace_init(&lib_t);
            oom_pass = true;
            weft_alloc_fail_after(data[size - 1] % 64);
            lib_run(&prog, &lib_t);
            weft_alloc_fail_after(-1);
            oom_pass = false;
        }
        return 0;
    }
    wm_trace_init(&desc_t);
    wm_describe(&prog, &desc_t);
    size_t at = 0;
    while (at < lib_t.len && at < model_t.len && lib_t.text[at] == model_t.text[at])
        at++;
    size_t line = 1;
    for (size_t i = 0; i < at; i++)
        line += lib_t.text[i] == '\n';
    fprintf(stderr,
            "fuzz_defer: the library and the reference model differ (first at transcript "
            "line %zu)\n--- program\n%s--- library\n%s--- model\n%s",
            line, desc_t.text, lib_t.text, model_t.text);
    abort();
}
