/* reference_model.c: the program decoder and the reference model of
 * Deferred semantics that fuzz_defer compares the library against.
 *
 * The model follows Twisted 22.4's Deferred._runCallbacks: each run works a
 * stack of Deferreds, the top one takes its next (callback, errback) pair,
 * a handler that returns an unfired Deferred leaves a continuation on it and
 * pauses, and the continuation later moves the result back and resumes the
 * waiting Deferred. On top of Twisted it applies weft's departures
 * (docs/deferred.md): a Deferred on a run stack counts as running (handlers
 * added to it are appended, it is not stolen from), a Deferred that is still
 * paused when a continuation resumes it is popped and the inner carries on,
 * unpausing below the wait's own pause is ENOTPAUSED, a handler returning its
 * own Deferred (or one that waits on it) fails with SelfChain, and a list's
 * result is frozen once the list fired. DeferredList, gatherResults, cancel
 * (with and without canceller) and addTimeout follow Twisted's code paths.
 *
 * Representation: slots are array indices; a result is a small tagged record
 * (value, list result, gather result, Failure text, or "waiting on slot j").
 * There are no reference counts: every Deferred lives until the end of the
 * program, and at the end a Deferred still holding a Failure is counted as
 * unhandled, which is what releasing it does in the library.
 *
 * This file is #included by fuzz_defer.c (the fuzz build links one object
 * per target).
 */
#include "fuzz/reference_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const wm_type_names[WM_T_COUNT] = {
    "E0",        "E1",         "E2",           "Cancelled",
    "Timeout",   "FirstError", "AlreadyCalled", "SelfChain",
};

/* ------------------------------------------------------------ transcript */

void wm_trace_init(wm_trace *t)
{
    t->len = 0;
    t->full = false;
    t->text[0] = '\0';
}

void wm_tracef(wm_trace *t, const char *fmt, ...)
{
    if (t->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->text + t->len, WM_TRACE_MAX - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= WM_TRACE_MAX - t->len) {
        t->full = true;
        t->text[t->len] = '\0';
        return;
    }
    t->len += (size_t)n;
}

/* --------------------------------------------------------------- decoder */

typedef struct reader {
    const uint8_t *p;
    size_t n, i;
} reader;

static unsigned rd(reader *r)
{
    return r->i < r->n ? r->p[r->i++] : 0;
}

static void decode_act(reader *r, wm_program *p, int slot, bool nested, int *out)
{
    wm_act *a = &p->acts[p->nacts];
    memset(a, 0, sizeof *a);
    unsigned b = rd(r);
    /* An added act never adds again: nesting stays one level deep. */
    a->kind = (uint8_t)(b % (nested ? WM_A_ADD : WM_A_COUNT));
    a->id = p->nacts;
    a->slot = slot;
    a->sub = -1;
    *out = p->nacts++;
    switch (a->kind) {
    case WM_A_ADD:
        a->j = (uint8_t)(rd(r) % WM_SLOTS_MAX);
        decode_act(r, p, a->j, true, &a->sub);
        break;
    case WM_A_PAUSE:
    case WM_A_UNPAUSE:
        a->j = (uint8_t)(rd(r) % WM_SLOTS_MAX);
        break;
    case WM_A_VALUE:
        a->n = (uint8_t)rd(r);
        break;
    case WM_A_FAIL:
        a->t = (uint8_t)(rd(r) % WM_TYPES);
        break;
    case WM_A_TRAP: {
        /* Trap one of the program's types, or Cancelled / Timeout. */
        a->t = (uint8_t)(rd(r) % (WM_TYPES + 2));
        a->n = (uint8_t)rd(r);
        break;
    }
    case WM_A_CHAIN:
    case WM_A_CANCEL:
        a->j = (uint8_t)(rd(r) % WM_SLOTS_MAX);
        break;
    case WM_A_FIRE:
        a->j = (uint8_t)(rd(r) % WM_SLOTS_MAX);
        a->n = (uint8_t)rd(r);
        break;
    default:
        break;
    }
}

void wm_decode(const uint8_t *data, size_t size, wm_program *p)
{
    memset(p, 0, sizeof *p);
    reader r = {data, size, 0};
    while (p->nops < WM_OPS_MAX && r.i < r.n) {
        wm_op op;
        memset(&op, 0, sizeof op);
        op.cb = op.eb = -1;
        op.kind = (uint8_t)(rd(&r) % WM_O_COUNT);
        bool ok = true;
        switch (op.kind) {
        case WM_O_NEW:
            op.arg = (uint8_t)(rd(&r) % 6);
            op.arg2 = (uint8_t)rd(&r);
            if (op.arg == 5)
                op.arg2 %= WM_TYPES;
            if (p->nslots >= WM_SLOTS_MAX) {
                ok = false;
                break;
            }
            op.new_slot = (uint8_t)p->nslots;
            p->canceller[p->nslots] = op.arg >= 1 && op.arg <= 3 ? op.arg : 0;
            p->nslots++;
            break;
        case WM_O_ADD:
            op.d = (uint8_t)rd(&r);
            if (p->nslots == 0 || p->nacts + 4 > WM_ACTS_MAX) {
                ok = false;
                rd(&r);
                break;
            }
            op.d %= (uint8_t)p->nslots;
            decode_act(&r, p, op.d, false, &op.cb);
            decode_act(&r, p, op.d, false, &op.eb);
            break;
        case WM_O_CALLBACK:
        case WM_O_ERRBACK:
        case WM_O_CHAIN_TO:
        case WM_O_TIMEOUT:
            op.d = (uint8_t)rd(&r);
            op.arg = (uint8_t)rd(&r);
            if (p->nslots == 0) {
                ok = false;
                break;
            }
            op.d %= (uint8_t)p->nslots;
            if (op.kind == WM_O_ERRBACK)
                op.arg %= WM_TYPES;
            else if (op.kind == WM_O_CHAIN_TO)
                op.arg %= (uint8_t)p->nslots;
            else if (op.kind == WM_O_TIMEOUT)
                op.arg %= 8;
            break;
        case WM_O_CANCEL:
        case WM_O_PAUSE:
        case WM_O_UNPAUSE:
        case WM_O_TAKE:
            op.d = (uint8_t)rd(&r);
            if (p->nslots == 0) {
                ok = false;
                break;
            }
            op.d %= (uint8_t)p->nslots;
            break;
        case WM_O_LIST:
        case WM_O_GATHER: {
            unsigned b = rd(&r);
            op.nmembers = (uint8_t)(p->nslots ? b % (WM_MEMBERS_MAX + 1) : 0);
            for (unsigned i = 0; i < op.nmembers; i++)
                op.members[i] = (uint8_t)(rd(&r) % (unsigned)p->nslots);
            op.arg = (uint8_t)(rd(&r) % (op.kind == WM_O_LIST ? 8 : 2));
            if (p->nslots >= WM_SLOTS_MAX) {
                ok = false;
                break;
            }
            op.new_slot = (uint8_t)p->nslots++;
            break;
        }
        case WM_O_ADVANCE:
            op.arg = (uint8_t)(rd(&r) % 8);
            break;
        case WM_O_RELEASE:
            op.arg = (uint8_t)(rd(&r) % 2);
            break;
        case WM_O_PUT:
            op.arg = (uint8_t)rd(&r);
            break;
        case WM_O_ACQUIRE:
        case WM_O_GET:
            if (op.kind == WM_O_ACQUIRE)
                op.arg = (uint8_t)(rd(&r) % 2);
            if (p->nslots >= WM_SLOTS_MAX) {
                ok = false;
                break;
            }
            op.new_slot = (uint8_t)p->nslots;
            p->canceller[p->nslots] = op.kind == WM_O_GET ? 6 : (uint8_t)(4 + op.arg);
            p->nslots++;
            break;
        default:
            ok = false;
            break;
        }
        if (ok)
            p->ops[p->nops++] = op;
    }
}

static const char *const act_names[WM_A_COUNT] = {
    "none", "pass", "value", "fail", "trap", "chain", "fire", "cancel", "add", "pause", "unpause"};
static const char *const op_names[WM_O_COUNT] = {
    "new",   "add",    "callback", "errback", "cancel",  "pause", "unpause",
    "chain_to", "list", "gather", "timeout", "advance", "take", "acquire", "release", "put",
    "get"};

static void describe_one(const wm_act *a, wm_trace *out)
{
    wm_tracef(out, "%s", act_names[a->kind]);
    switch (a->kind) {
    case WM_A_VALUE:
        wm_tracef(out, "(%u)", a->n);
        break;
    case WM_A_FAIL:
        wm_tracef(out, "(%s)", wm_type_names[a->t]);
        break;
    case WM_A_TRAP:
        wm_tracef(out, "(%s->%u)", wm_type_names[a->t], a->n);
        break;
    case WM_A_CHAIN:
    case WM_A_CANCEL:
        wm_tracef(out, "(d%u)", a->j);
        break;
    case WM_A_FIRE:
        wm_tracef(out, "(d%u,%u)", a->j, a->n);
        break;
    case WM_A_PAUSE:
    case WM_A_UNPAUSE:
        wm_tracef(out, "(d%u)", a->j);
        break;
    default:
        break;
    }
}

static void describe_act(const wm_program *p, const wm_act *a, wm_trace *out)
{
    describe_one(a, out);
    if (a->kind == WM_A_ADD) {
        wm_tracef(out, "(d%u, h%d=", a->j, a->sub);
        describe_one(&p->acts[a->sub], out);
        wm_tracef(out, ")");
    }
}

void wm_describe(const wm_program *p, wm_trace *out)
{
    for (int i = 0; i < p->nops; i++) {
        const wm_op *op = &p->ops[i];
        wm_tracef(out, "%2d %s", i, op_names[op->kind]);
        switch (op->kind) {
        case WM_O_NEW:
            wm_tracef(out, " d%u kind=%u arg=%u", op->new_slot, op->arg, op->arg2);
            break;
        case WM_O_ADD:
            wm_tracef(out, " d%u h%d=", op->d, op->cb);
            describe_act(p, &p->acts[op->cb], out);
            wm_tracef(out, " h%d=", op->eb);
            describe_act(p, &p->acts[op->eb], out);
            break;
        case WM_O_LIST:
        case WM_O_GATHER:
            wm_tracef(out, " d%u flags=%u members", op->new_slot, op->arg);
            for (unsigned m = 0; m < op->nmembers; m++)
                wm_tracef(out, " d%u", op->members[m]);
            break;
        case WM_O_ADVANCE:
            wm_tracef(out, " %ums", op->arg);
            break;
        case WM_O_ACQUIRE:
            wm_tracef(out, " d%u %s", op->new_slot, op->arg ? "semaphore" : "lock");
            break;
        case WM_O_GET:
            wm_tracef(out, " d%u", op->new_slot);
            break;
        case WM_O_RELEASE:
            wm_tracef(out, " %s", op->arg ? "semaphore" : "lock");
            break;
        case WM_O_PUT:
            wm_tracef(out, " %u", op->arg);
            break;
        default:
            wm_tracef(out, " d%u arg=%u", op->d, op->arg);
            break;
        }
        wm_tracef(out, "\n");
    }
}

/* ----------------------------------------------------------------- model */

#define FAIL_TEXT_MAX 256

enum { R_VALUE, R_LIST, R_GATHER, R_FAIL, R_WAIT, R_CHAIN, R_OBJ /* n 0: the lock, 1: the semaphore */ };

typedef struct mres {
    uint8_t kind;
    int n;       /* value; list/gather/wait/chain: slot */
    uint8_t t;   /* R_FAIL: type */
    char f[FAIL_TEXT_MAX]; /* R_FAIL: rendering, FirstError with its subs */
} mres;

enum { P_USER, P_NOP, P_CONT, P_CHAIN_TO, P_MEMBER, P_TIMEOUT };

typedef struct mpair {
    uint8_t kind;
    int a, b; /* USER: act indices (-1 none); CONT/CHAIN_TO: slot; MEMBER: list slot, index; TIMEOUT: timer */
} mpair;

#define PAIRS_MAX 1024

typedef struct mdef {
    bool exists, called, running, suppress, canceller_ran;
    int paused;
    mres result;
    int canceller;
    mpair pairs[PAIRS_MAX];
    int npairs, next;
    int list; /* -1, or itself: this slot is a list */
} mdef;

typedef struct mitem {
    bool reported, succeeded;
    mres value; /* or the Failure */
} mitem;

typedef struct mlist {
    bool gather, holding, cancelling;
    unsigned flags;
    int n, finished, index;
    int members[WM_MEMBERS_MAX];
    mitem items[WM_MEMBERS_MAX];
} mlist;

#define TIMERS_MAX WM_OPS_MAX

typedef struct mtimer {
    int64_t due_ms;
    int seq, slot;
    bool active, timed_out;
} mtimer;

typedef struct model {
    const wm_program *p;
    wm_trace *t;
    mdef d[WM_SLOTS_MAX];
    mlist lists[WM_SLOTS_MAX];
    mtimer timers[TIMERS_MAX];
    int ntimers;
    int64_t now_ms;
    int depth; /* nesting of runs, bounded by the program's size */
    /* The lock, the semaphore and the queue: FIFO lists of waiting slots. */
    bool locked;
    int tokens;
    int lock_wait[WM_SLOTS_MAX], nlock_wait;
    int sem_wait[WM_SLOTS_MAX], nsem_wait;
    int get_wait[WM_SLOTS_MAX], nget_wait;
    mres pending[WM_QUEUE_SIZE];
    int npending;
    unsigned long calls; /* handler calls so far */
} model;

enum { FLAG_FOOC = 1, FLAG_FOOE = 2, FLAG_CONSUME = 4 };

static void model_bug(const char *what)
{
    fprintf(stderr, "reference model: %s\n", what);
    abort();
}

static mres r_value(int n)
{
    mres r;
    memset(&r, 0, sizeof r);
    r.kind = R_VALUE;
    r.n = n;
    return r;
}

static mres r_fail(int type)
{
    mres r;
    memset(&r, 0, sizeof r);
    r.kind = R_FAIL;
    r.t = (uint8_t)type;
    snprintf(r.f, sizeof r.f, "%s", wm_type_names[type]);
    return r;
}

static mres r_first_error(const mres *sub, int index)
{
    mres r = r_fail(WM_T_FIRST_ERROR);
    snprintf(r.f, sizeof r.f, "FirstError(%.*s@%d)", FAIL_TEXT_MAX - 32, sub->f, index);
    return r;
}

static void render_short(const mres *r, char *buf, size_t cap)
{
    switch (r->kind) {
    case R_VALUE:
        snprintf(buf, cap, "%d", r->n);
        break;
    case R_LIST:
        snprintf(buf, cap, "L%d", r->n);
        break;
    case R_GATHER:
        snprintf(buf, cap, "G%d", r->n);
        break;
    case R_OBJ:
        snprintf(buf, cap, "%s", r->n ? "S" : "K");
        break;
    case R_FAIL:
        snprintf(buf, cap, "F:%s", r->f);
        break;
    default:
        snprintf(buf, cap, "?");
        break;
    }
}

static void render_full(const model *m, const mres *r, wm_trace *t)
{
    char buf[FAIL_TEXT_MAX + 8];
    if (r->kind != R_LIST && r->kind != R_GATHER) {
        render_short(r, buf, sizeof buf);
        wm_tracef(t, "%s", buf);
        return;
    }
    const mlist *l = &m->lists[r->n];
    if (r->kind == R_GATHER) {
        wm_tracef(t, "G%d{", r->n);
        for (int i = 0; i < l->n; i++) {
            render_short(&l->items[i].value, buf, sizeof buf);
            wm_tracef(t, "%s%s", i ? "," : "", buf);
        }
        wm_tracef(t, "}");
        return;
    }
    wm_tracef(t, "L%d@%d{", r->n, l->index);
    for (int i = 0; i < l->n; i++) {
        const mitem *it = &l->items[i];
        if (i)
            wm_tracef(t, ";");
        if (!it->reported) {
            wm_tracef(t, "-");
        } else if (it->succeeded) {
            render_short(&it->value, buf, sizeof buf);
            wm_tracef(t, "ok:%s", buf);
        } else {
            wm_tracef(t, "fail:F:%s", it->value.f);
        }
    }
    wm_tracef(t, "}");
}

static void m_run(model *m, int start);
static int m_fire(model *m, int s, mres res);
static void m_cancel(model *m, int s);
static void m_add_pair(model *m, int s, mpair p);
static int m_unpause(model *m, int s);

static void append_pair(model *m, int s, mpair p)
{
    mdef *d = &m->d[s];
    if (d->npairs >= PAIRS_MAX)
        model_bug("pair array full");
    d->pairs[d->npairs++] = p;
}

static bool exists(const model *m, int s)
{
    return s >= 0 && s < WM_SLOTS_MAX && m->d[s].exists;
}

/* A handler of the program: record, act, return the new result. */
static mres m_call(model *m, const wm_act *a, const mres *in)
{
    bool failed = in->kind == R_FAIL;
    m->calls++;
    wm_tracef(m->t, "h%d d%d %s in=", a->id, a->slot, failed ? "eb" : "cb");
    render_full(m, in, m->t);
    wm_tracef(m->t, "\n");
    switch (a->kind) {
    case WM_A_VALUE:
        return r_value(a->n);
    case WM_A_FAIL:
        return r_fail(a->t);
    case WM_A_TRAP:
        if (failed && in->t == a->t && strcmp(in->f, wm_type_names[a->t]) == 0)
            return r_value(a->n);
        return *in;
    case WM_A_CHAIN:
        if (exists(m, a->j)) {
            mres r;
            memset(&r, 0, sizeof r);
            r.kind = R_CHAIN;
            r.n = a->j;
            return r;
        }
        return *in;
    case WM_A_FIRE:
        if (exists(m, a->j)) {
            int rc = m_fire(m, a->j, r_value(a->n));
            wm_tracef(m->t, "h%d fire d%d -> %s\n", a->id, a->j,
                      rc == 0 ? "OK" : "EALREADYCALLED");
        }
        return *in;
    case WM_A_CANCEL:
        if (exists(m, a->j)) {
            m_cancel(m, a->j);
            wm_tracef(m->t, "h%d cancel d%d done\n", a->id, a->j);
        }
        return *in;
    case WM_A_ADD:
        if (exists(m, a->j)) {
            m_add_pair(m, a->j, (mpair){P_USER, a->sub, a->sub});
            wm_tracef(m->t, "h%d add d%d -> OK\n", a->id, a->j);
        }
        return *in;
    case WM_A_PAUSE:
        if (exists(m, a->j))
            m->d[a->j].paused++;
        return *in;
    case WM_A_UNPAUSE:
        if (exists(m, a->j)) {
            int rc = m_unpause(m, a->j);
            wm_tracef(m->t, "h%d unpause d%d -> %s\n", a->id, a->j, rc ? "ENOTPAUSED" : "OK");
        }
        return *in;
    default:
        return *in;
    }
}

/* The handler's return value becomes cur's result (Twisted's handling of a
 * returned Deferred, with weft's SelfChain and running rules). */
static void m_settle(model *m, int cur, mres out)
{
    mdef *c = &m->d[cur];
    if (out.kind != R_CHAIN) {
        c->result = out;
        return;
    }
    int r = out.n;
    if (r == cur) {
        c->result = r_fail(WM_T_SELF_CHAIN);
        return;
    }
    for (int x = r, steps = 0; m->d[x].called && m->d[x].result.kind == R_WAIT; steps++) {
        if (steps > WM_SLOTS_MAX)
            model_bug("waiting chain longer than the slots");
        x = m->d[x].result.n;
        if (x == cur) {
            c->result = r_fail(WM_T_SELF_CHAIN);
            return;
        }
    }
    mdef *rd_ = &m->d[r];
    if (rd_->called && rd_->paused == 0 && !rd_->running && rd_->result.kind != R_WAIT &&
        rd_->next == rd_->npairs) {
        c->result = rd_->result;
        rd_->result = r_value(0);
        return;
    }
    append_pair(m, r, (mpair){P_CONT, cur, 0});
    c->paused++;
    mres w;
    memset(&w, 0, sizeof w);
    w.kind = R_WAIT;
    w.n = r;
    c->result = w;
}

static void fire_all(model *m, int ls)
{
    mlist *l = &m->lists[ls];
    mres v;
    memset(&v, 0, sizeof v);
    v.kind = l->gather ? R_GATHER : R_LIST;
    v.n = ls;
    m_fire(m, ls, v);
}

/* The pair DeferredList adds to member `index` of list `ls`. */
static void m_member(model *m, int cur, int ls, int index)
{
    mlist *l = &m->lists[ls];
    mres *res = &m->d[cur].result;
    bool failed = res->kind == R_FAIL;
    if (!m->d[ls].called) {
        mitem *it = &l->items[index];
        it->reported = true;
        it->succeeded = !failed;
        it->value = *res;
        l->finished++;
        if (!failed && (l->flags & FLAG_FOOC)) {
            l->index = index;
            mres v;
            memset(&v, 0, sizeof v);
            v.kind = R_LIST;
            v.n = ls;
            m_fire(m, ls, v);
            l->holding = false;
        } else if (failed && (l->flags & FLAG_FOOE)) {
            m_fire(m, ls, r_first_error(res, index));
            l->holding = false;
        } else if (l->finished == l->n) {
            fire_all(m, ls);
            l->holding = false;
        }
    }
    if (failed && (l->flags & FLAG_CONSUME))
        m->d[cur].result = r_value(0);
}

static void m_timeout_pair(model *m, int cur, int timer)
{
    mtimer *tm = &m->timers[timer];
    mres *res = &m->d[cur].result;
    if (tm->timed_out && res->kind == R_FAIL && res->t == WM_T_CANCELLED)
        *res = r_fail(WM_T_TIMEOUT);
    tm->active = false;
}

static void m_run(model *m, int start)
{
    if (m->d[start].running)
        return;
    if (++m->depth > 4 * WM_OPS_MAX)
        model_bug("runs nested deeper than the program allows");
    int stack[WM_SLOTS_MAX + 1];
    int sp = 0;
    m->d[start].running = true;
    stack[sp++] = start;
    while (sp > 0) {
        int cur = stack[sp - 1];
        mdef *c = &m->d[cur];
        if (c->paused || c->next == c->npairs) {
            c->running = false;
            sp--;
            continue;
        }
        mpair p = c->pairs[c->next++];
        switch (p.kind) {
        case P_NOP:
            break;
        case P_CONT: {
            mdef *outer = &m->d[p.a];
            outer->result = c->result;
            c->result = r_value(0);
            outer->paused--;
            if (sp > WM_SLOTS_MAX)
                model_bug("run stack overflow");
            outer->running = true;
            stack[sp++] = p.a;
            break;
        }
        case P_CHAIN_TO: {
            mdef *o = &m->d[p.a];
            if (o->called) {
                if (o->suppress) {
                    o->suppress = false;
                    c->result = r_value(0);
                } else {
                    c->result = r_fail(WM_T_ALREADY_CALLED);
                }
                break;
            }
            o->called = true;
            o->result = c->result;
            c->result = r_value(0);
            if (o->paused == 0) {
                if (sp > WM_SLOTS_MAX)
                    model_bug("run stack overflow");
                o->running = true;
                stack[sp++] = p.a;
            }
            break;
        }
        case P_MEMBER:
            m_member(m, cur, p.a, p.b);
            break;
        case P_TIMEOUT:
            m_timeout_pair(m, cur, p.a);
            break;
        case P_USER: {
            bool failed = c->result.kind == R_FAIL;
            int ai = failed ? p.b : p.a;
            if (ai < 0 || m->p->acts[ai].kind == WM_A_NONE)
                break;
            mres in = c->result;
            mres out = m_call(m, &m->p->acts[ai], &in);
            m_settle(m, cur, out);
            break;
        }
        default:
            model_bug("unknown pair");
        }
    }
    m->depth--;
}

static int m_fire(model *m, int s, mres res)
{
    mdef *d = &m->d[s];
    if (d->called) {
        if (d->suppress) {
            d->suppress = false;
            return 0;
        }
        return 1;
    }
    d->called = true;
    d->result = res;
    if (d->paused == 0)
        m_run(m, s);
    return 0;
}

static void fifo_remove(int *items, int *n, int s)
{
    for (int i = 0; i < *n; i++) {
        if (items[i] == s) {
            memmove(items + i, items + i + 1, (size_t)(*n - i - 1) * sizeof *items);
            (*n)--;
            return;
        }
    }
}

static int fifo_pop(int *items, int *n)
{
    int s = items[0];
    memmove(items, items + 1, (size_t)(*n - 1) * sizeof *items);
    (*n)--;
    return s;
}

static mres r_obj(int n)
{
    mres r = r_value(0);
    r.kind = R_OBJ;
    r.n = n;
    return r;
}

static void m_canceller(model *m, int s)
{
    int kind = m->d[s].canceller;
    /* A waiter of the lock, semaphore or queue leaves its line. */
    if (kind == 4) {
        fifo_remove(m->lock_wait, &m->nlock_wait, s);
        return;
    }
    if (kind == 5) {
        fifo_remove(m->sem_wait, &m->nsem_wait, s);
        return;
    }
    if (kind == 6) {
        fifo_remove(m->get_wait, &m->nget_wait, s);
        return;
    }
    wm_tracef(m->t, "canceller d%d\n", s);
    if (kind == 2 || kind == 3) {
        int rc = m_fire(m, s, kind == 2 ? r_value(77) : r_fail(WM_T_E2));
        wm_tracef(m->t, "canceller d%d fired -> %s\n", s, rc == 0 ? "OK" : "EALREADYCALLED");
    }
}

static void m_cancel(model *m, int s)
{
    int steps = 0;
    while (m->d[s].called && m->d[s].result.kind == R_WAIT) {
        if (++steps > WM_SLOTS_MAX)
            model_bug("waiting chain longer than the slots");
        s = m->d[s].result.n;
    }
    mdef *d = &m->d[s];
    if (d->called)
        return;
    if (d->list >= 0) {
        mlist *l = &m->lists[s];
        if (!l->holding || l->cancelling)
            return;
        l->cancelling = true;
        int members[WM_MEMBERS_MAX];
        memcpy(members, l->members, sizeof members);
        for (int i = 0; i < l->n; i++)
            m_cancel(m, members[i]);
        l->cancelling = false;
        if (m->d[s].called)
            l->holding = false;
        return;
    }
    if (d->canceller) {
        if (!d->canceller_ran) {
            d->canceller_ran = true;
            m_canceller(m, s);
        }
    } else {
        d->suppress = true;
    }
    if (!m->d[s].called)
        m_fire(m, s, r_fail(WM_T_CANCELLED));
}

static void m_add_pair(model *m, int s, mpair p)
{
    append_pair(m, s, p);
    if (m->d[s].called && m->d[s].paused == 0)
        m_run(m, s);
}

/* 0, or 2 (ENOTPAUSED): the wait on another Deferred owns one pause. */
static int m_unpause(model *m, int s)
{
    mdef *d = &m->d[s];
    int own = d->result.kind == R_WAIT ? 1 : 0;
    if (d->paused <= own)
        return 2;
    d->paused--;
    if (d->paused == 0 && d->called)
        m_run(m, s);
    return 0;
}

static bool m_pending(const mdef *d)
{
    return !d->called || d->paused || d->running || d->next < d->npairs ||
           d->result.kind == R_WAIT;
}

static void m_run_timers(model *m, int64_t until_ms, bool all)
{
    for (;;) {
        int best = -1;
        for (int i = 0; i < m->ntimers; i++) {
            const mtimer *tm = &m->timers[i];
            if (!tm->active || (!all && tm->due_ms > until_ms))
                continue;
            if (best < 0 || tm->due_ms < m->timers[best].due_ms)
                best = i; /* equal due: the earlier sequence (lower index) stays */
        }
        if (best < 0)
            break;
        mtimer *tm = &m->timers[best];
        m->now_ms = tm->due_ms;
        tm->active = false;
        tm->timed_out = true;
        m_cancel(m, tm->slot);
    }
    if (!all && until_ms > m->now_ms)
        m->now_ms = until_ms;
}

static const char *m_rc(int rc)
{
    static const char *const names[] = {"OK",     "EALREADYCALLED", "ENOTPAUSED", "ESELFCHAIN",
                                        "ESTATE", "ENOTLOCKED",     "EOVERFLOW"};
    return names[rc];
}

static void m_new_slot(model *m, int s)
{
    mdef *d = &m->d[s];
    memset(d, 0, sizeof *d);
    d->exists = true;
    d->list = -1;
    d->canceller = m->p->canceller[s];
    d->result = r_value(0);
}

void wm_model_run(const wm_program *p, wm_trace *t)
{
    static model mstore;
    model *m = &mstore;
    memset(m, 0, sizeof *m);
    m->p = p;
    m->t = t;
    m->tokens = WM_SEM_TOKENS;
    for (int i = 0; i < p->nops; i++) {
        const wm_op *op = &p->ops[i];
        wm_tracef(t, "op%d %s\n", i, op_names[op->kind]);
        int rc = 0;
        switch (op->kind) {
        case WM_O_NEW: {
            int s = op->new_slot;
            m_new_slot(m, s);
            if (op->arg == 4) {
                m->d[s].called = true;
                m->d[s].result = r_value(op->arg2);
            } else if (op->arg == 5) {
                m->d[s].called = true;
                m->d[s].result = r_fail(op->arg2);
            }
            break;
        }
        case WM_O_ADD:
            m_add_pair(m, op->d, (mpair){P_USER, op->cb, op->eb});
            break;
        case WM_O_CALLBACK:
            rc = m_fire(m, op->d, r_value(op->arg));
            break;
        case WM_O_ERRBACK:
            rc = m_fire(m, op->d, r_fail(op->arg));
            break;
        case WM_O_CANCEL:
            m_cancel(m, op->d);
            break;
        case WM_O_PAUSE:
            m->d[op->d].paused++;
            break;
        case WM_O_UNPAUSE:
            rc = m_unpause(m, op->d);
            break;
        case WM_O_CHAIN_TO:
            if (op->d == op->arg) {
                rc = 3;
                break;
            }
            m_add_pair(m, op->d, (mpair){P_CHAIN_TO, op->arg, 0});
            break;
        case WM_O_LIST:
        case WM_O_GATHER: {
            int s = op->new_slot;
            m_new_slot(m, s);
            m->d[s].list = s;
            m->d[s].canceller = 0;
            mlist *l = &m->lists[s];
            memset(l, 0, sizeof *l);
            l->gather = op->kind == WM_O_GATHER;
            l->flags = l->gather ? FLAG_FOOE | (op->arg ? FLAG_CONSUME : 0) : op->arg;
            l->n = op->nmembers;
            l->holding = true;
            for (int k = 0; k < l->n; k++)
                l->members[k] = op->members[k];
            if (l->n == 0 && !(l->flags & FLAG_FOOC)) {
                fire_all(m, s);
                l->holding = false;
            }
            for (int k = 0; k < l->n; k++)
                m_add_pair(m, l->members[k], (mpair){P_MEMBER, s, k});
            /* The harness's recorder pair (pass-through) on the list. */
            m_add_pair(m, s, (mpair){P_NOP, 0, 0});
            break;
        }
        case WM_O_TIMEOUT: {
            if (m->ntimers >= TIMERS_MAX)
                model_bug("too many timers");
            int k = m->ntimers++;
            m->timers[k] = (mtimer){m->now_ms + op->arg, k, op->d, true, false};
            m_add_pair(m, op->d, (mpair){P_TIMEOUT, k, 0});
            break;
        }
        case WM_O_ADVANCE:
            m_run_timers(m, m->now_ms + op->arg, false);
            break;
        case WM_O_ACQUIRE: {
            int s = op->new_slot;
            m_new_slot(m, s);
            if (op->arg == 0) {
                if (!m->locked) {
                    m->locked = true;
                    m_fire(m, s, r_obj(0));
                } else {
                    m->lock_wait[m->nlock_wait++] = s;
                }
            } else if (m->tokens > 0) {
                m->tokens--;
                m_fire(m, s, r_obj(1));
            } else {
                m->sem_wait[m->nsem_wait++] = s;
            }
            break;
        }
        case WM_O_RELEASE: {
            /* Twisted hands the token to the first waiter. A waiter fired by
             * hand meanwhile makes Twisted's release raise AlreadyCalled with
             * the lock left held; weft skips such waiters, and the token goes
             * to the next one or back (docs/deferred.md, departure 13). */
            bool held = op->arg == 0 ? m->locked : m->tokens < WM_SEM_TOKENS;
            if (!held) {
                rc = 5;
                break;
            }
            int *wait = op->arg == 0 ? m->lock_wait : m->sem_wait;
            int *nwait = op->arg == 0 ? &m->nlock_wait : &m->nsem_wait;
            bool handed = false;
            while (*nwait > 0 && !handed)
                handed = m_fire(m, fifo_pop(wait, nwait), r_obj(op->arg)) == 0;
            if (!handed) {
                if (op->arg == 0)
                    m->locked = false;
                else
                    m->tokens++;
            }
            break;
        }
        case WM_O_PUT: {
            /* Twisted's put calls back the first getter (AlreadyCalled, and
             * the value lost, if it was fired by hand); weft skips getters
             * fired by hand, as release does, and buffers the value if none
             * is left (docs/deferred.md, departure 13). */
            bool handed = false;
            while (m->nget_wait > 0 && !handed)
                handed = m_fire(m, fifo_pop(m->get_wait, &m->nget_wait), r_value(op->arg)) == 0;
            if (handed)
                break;
            if (m->npending < WM_QUEUE_SIZE)
                m->pending[m->npending++] = r_value(op->arg);
            else
                rc = 6;
            break;
        }
        case WM_O_GET: {
            int s = op->new_slot;
            m_new_slot(m, s);
            if (m->npending > 0) {
                mres v = m->pending[0];
                memmove(m->pending, m->pending + 1, (size_t)(m->npending - 1) * sizeof *m->pending);
                m->npending--;
                m_fire(m, s, v);
            } else {
                m->get_wait[m->nget_wait++] = s;
            }
            break;
        }
        case WM_O_TAKE: {
            mdef *d = &m->d[op->d];
            if (m_pending(d)) {
                rc = 4;
                break;
            }
            wm_tracef(t, "take d%d: ", op->d);
            render_full(m, &d->result, t);
            wm_tracef(t, "\n");
            d->result = r_value(0);
            break;
        }
        default:
            break;
        }
        wm_tracef(t, "op%d -> %s\n", i, m_rc(rc));
    }

    /* Teardown: resume and cancel everything (firing what ignores cancel),
     * run the clock out. */
    /* Handlers can pause Deferreds again, so rounds go on until one that
     * resumed nothing and ran no handler (each handler runs once: bounded). */
    for (int round = 0; round < WM_TEARDOWN_ROUNDS_MAX; round++) {
        wm_tracef(t, "teardown %d\n", round);
        unsigned long calls = m->calls;
        bool resumed = false;
        for (int s = 0; s < p->nslots; s++) {
            if (!m->d[s].exists)
                continue;
            while (m_unpause(m, s) == 0)
                resumed = true;
            m_cancel(m, s);
            /* A list can ignore cancel (an empty one that fires on one
             * callback never fires by itself): fire it by hand. */
            if (!m->d[s].called)
                m_fire(m, s, r_value(0));
        }
        m_run_timers(m, 0, true);
        if (!resumed && calls == m->calls)
            break;
    }
    int unhandled = 0;
    for (int s = 0; s < p->nslots; s++) {
        if (!m->d[s].exists)
            continue;
        mdef *d = &m->d[s];
        wm_tracef(t, "final d%d: ", s);
        if (m_pending(d)) {
            wm_tracef(t, "pending");
        } else {
            render_full(m, &d->result, t);
        }
        wm_tracef(t, "\n");
        if (d->called && d->result.kind == R_FAIL)
            unhandled++;
    }
    wm_tracef(t, "unhandled %d\n", unhandled);
}
