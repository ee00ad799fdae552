/* reference_model.h: programs of Deferred operations, and a small reference
 * model of Twisted's Deferred semantics (with weft's documented departures,
 * docs/deferred.md) that runs them.
 *
 * fuzz_defer decodes its input into a wm_program, runs it on the library and
 * on this model, and compares the two transcripts line by line. The model is
 * written from the specification (Twisted 22.4's Deferred, DeferredList,
 * gatherResults and addTimeout, docs/deferred.md), not from the library's
 * code: plain arrays indexed by slot, no reference counts, nested calls where
 * Twisted nests (a handler that fires another Deferred runs that Deferred's
 * chain inside its own call). Depth is bounded by the program's size limits
 * below, so the recursion is bounded too.
 *
 * The transcript: one line per operation with its return code, one per
 * handler call with what it received, one per canceller call and per side
 * effect of a handler, then the final state of every Deferred and the number
 * of unhandled Failures once everything is released.
 */
#ifndef WEFT_FUZZ_REFERENCE_MODEL_H
#define WEFT_FUZZ_REFERENCE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Program size limits: what bounds every loop and the model's nesting. */
#define WM_SLOTS_MAX 8   /* Deferreds in one program */
#define WM_OPS_MAX 64    /* operations in one program */
#define WM_ACTS_MAX 160  /* handler actions (two to four per add) */
#define WM_MEMBERS_MAX 4 /* members of one list or gather */
#define WM_TYPES 3       /* the program's own Failure types E0..E2 */
/* Each program has one DeferredLock, one DeferredSemaphore of WM_SEM_TOKENS
 * tokens and one DeferredQueue of WM_QUEUE_SIZE values (backlog unbounded). */
#define WM_SEM_TOKENS 2
#define WM_QUEUE_SIZE 2
#define WM_TRACE_MAX 65536u
/* Teardown rounds at most (each handler runs once, so far fewer suffice). */
#define WM_TEARDOWN_ROUNDS_MAX 512

/* Failure types as small numbers: the program's E0..E2, then the library's. */
enum {
    WM_T_E0,
    WM_T_E1,
    WM_T_E2,
    WM_T_CANCELLED,
    WM_T_TIMEOUT,
    WM_T_FIRST_ERROR,
    WM_T_ALREADY_CALLED,
    WM_T_SELF_CHAIN,
    WM_T_COUNT
};
extern const char *const wm_type_names[WM_T_COUNT];

/* What a handler does. Every kind but NONE records the call first. */
typedef enum wm_act_kind {
    WM_A_NONE,   /* NULL handler: pass-through, not recorded */
    WM_A_PASS,   /* return the input */
    WM_A_VALUE,  /* return value n */
    WM_A_FAIL,   /* return a new Failure of type t */
    WM_A_TRAP,   /* a Failure of type t becomes value n; anything else passes */
    WM_A_CHAIN,  /* return Deferred j (weft_chain); pass when j does not exist */
    WM_A_FIRE,   /* callback(j, n), record the code, pass the input */
    WM_A_CANCEL, /* cancel(j), pass the input */
    WM_A_ADD,    /* add_both(j, sub), record the code, pass the input */
    WM_A_PAUSE,  /* pause(j), pass the input */
    WM_A_UNPAUSE, /* unpause(j), record the code, pass the input */
    WM_A_COUNT
} wm_act_kind;

typedef struct wm_act {
    uint8_t kind;
    uint8_t t;  /* failure type */
    uint8_t j;  /* slot */
    uint8_t n;  /* value */
    int id;     /* index in the program's acts */
    int slot;   /* the Deferred it was added to */
    int sub;    /* ADD: the act added (both paths; never an ADD itself), else -1 */
} wm_act;

typedef enum wm_op_kind {
    WM_O_NEW,       /* arg: 0 plain, 1..3 canceller (noop, fires 77, fails E2), 4 succeed(n), 5 fail(t) */
    WM_O_ADD,       /* d, acts cb and eb */
    WM_O_CALLBACK,  /* d, n */
    WM_O_ERRBACK,   /* d, t */
    WM_O_CANCEL,    /* d */
    WM_O_PAUSE,     /* d */
    WM_O_UNPAUSE,   /* d */
    WM_O_CHAIN_TO,  /* d, other */
    WM_O_LIST,      /* members, flags */
    WM_O_GATHER,    /* members, consume */
    WM_O_TIMEOUT,   /* d, ms */
    WM_O_ADVANCE,   /* ms */
    WM_O_TAKE,      /* d: take_result */
    WM_O_ACQUIRE,   /* arg 0: the lock, 1: the semaphore; new_slot: the acquire Deferred */
    WM_O_RELEASE,   /* arg 0: the lock, 1: the semaphore */
    WM_O_PUT,       /* arg: value put on the queue */
    WM_O_GET,       /* new_slot: the get Deferred */
    WM_O_COUNT
} wm_op_kind;

typedef struct wm_op {
    uint8_t kind;
    uint8_t d;
    uint8_t arg;   /* n, t, ms, flags, other: see above */
    uint8_t arg2;  /* NEW: value or type */
    int cb, eb;    /* ADD: indices into acts (-1 none) */
    uint8_t nmembers;
    uint8_t members[WM_MEMBERS_MAX];
    uint8_t new_slot; /* NEW, LIST, GATHER: the slot created */
} wm_op;

typedef struct wm_program {
    wm_op ops[WM_OPS_MAX];
    int nops;
    wm_act acts[WM_ACTS_MAX];
    int nacts;
    int nslots;
    /* The canceller of each slot (0 none, 1 noop, 2 fires 77, 3 fails E2;
     * 4, 5, 6: the library's own, of a lock, semaphore or queue waiter). */
    uint8_t canceller[WM_SLOTS_MAX];
} wm_program;

/* A transcript. Appending past WM_TRACE_MAX sets `full` and drops the rest
 * (both sides would truncate identically). */
typedef struct wm_trace {
    char text[WM_TRACE_MAX];
    size_t len;
    bool full;
} wm_trace;

void wm_trace_init(wm_trace *t);
void wm_tracef(wm_trace *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Decode bytes into a program (every input is a valid program). */
void wm_decode(const uint8_t *data, size_t size, wm_program *p);
/* The program as text, one operation a line (for failure reports). */
void wm_describe(const wm_program *p, wm_trace *out);
/* Run p on the model, appending its transcript to t. */
void wm_model_run(const wm_program *p, wm_trace *t);

#endif
