/* weft/sim.h: the deterministic simulator: a reactor with a virtual clock,
 * one choice source for every nondeterministic decision, an in-memory network
 * with faults, and a trace of everything that happened.
 *
 * Same configuration, same choices: same trace, byte for byte, on every
 * compiler and optimisation level. See docs/simulator.md.
 */
#ifndef WEFT_SIM_H
#define WEFT_SIM_H

#include <stdio.h>

#include "weft/core.h"
#include "weft/reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------- Choice source
 *
 * "Pick a number in [0, n)", with a label saying what is being decided. n is
 * at least 1; with n == 1 the answer is 0 and implementations may skip
 * consuming input. Value 0 is always the "default" choice: the one a run makes
 * when it has no reason to do otherwise (first event first, whole writes,
 * minimum latency, no fault). Shrinking lowers values toward 0. */
typedef struct weft_choice weft_choice;

typedef struct weft_choice_ops {
    uint32_t (*choose)(weft_choice *c, uint32_t n, const char *label);
    void (*free)(weft_choice *c);
} weft_choice_ops;

struct weft_choice {
    const weft_choice_ops *ops;
    /* Recording (see weft_choice_record): every answer, in order. */
    uint32_t *rec_values;
    uint32_t *rec_bounds;
    const char **rec_labels; /* static strings, as passed to weft_choose */
    size_t rec_len, rec_cap;
    bool recording;
    bool rec_incomplete; /* the record could not grow: it misses choices */
    uint64_t count; /* choices made */
};

/* n <= 1 answers 0 without consuming input and is not recorded. label must
 * be a static string (it is kept in the record). */
uint32_t weft_choose(weft_choice *c, uint32_t n, const char *label);
void weft_choice_free(weft_choice *c); /* NULL is fine */

/* Seeded: SplitMix64 expands the seed into xoshiro256** state; bounded values
 * use Lemire's multiply-and-reject method (docs/simulator.md specifies it). */
weft_choice *weft_choice_seeded(uint64_t seed);
/* The fuzzer's input: bytes are copied. Each choice with n <= 256 takes one
 * byte (value % n), larger n take four bytes (little endian, % n). When the
 * bytes run out every answer is 0. Never fails. */
weft_choice *weft_choice_bytes(const uint8_t *data, size_t len);
/* Replay a recorded list: the i-th choice answers values[i] (clamped to n-1
 * when the run asks for a smaller n); past the end, 0. Copied. */
weft_choice *weft_choice_replay(const uint32_t *values, size_t len);

/* Start (or stop) recording every answer of c. Sources start with recording
 * on. The record stays in c; read it with weft_choice_recorded (pointers valid
 * until the next choice or weft_choice_free; either out pointer may be NULL).
 * A record that cannot grow (out of memory) stops recording; then
 * weft_choice_record_complete is false. */
void weft_choice_record(weft_choice *c, bool on);
size_t weft_choice_recorded(const weft_choice *c, const uint32_t **values, const uint32_t **bounds);
bool weft_choice_record_complete(const weft_choice *c);

/* Choice files: text, one "value/bound label" per line, '#' comments, blank
 * lines ignored; a bare "value" (no bound) is accepted for hand-written files.
 * save writes the record (WEFT_EIO on a write error); load parses into a
 * caller-freed (weft_free) array (*values NULL when empty). load returns
 * WEFT_EPARSE with err naming the line ("line N: ...") on bad input: not a
 * number, value >= bound, bound 0, numbers above 2^32-1, junk. */
int weft_choice_save(const weft_choice *c, FILE *out);
int weft_choice_load(FILE *in, uint32_t **values, size_t *len, char *err, size_t errlen);

/* --------------------------------------------------------------- Trace
 *
 * One record per dispatched event, per choice made through the simulator and
 * per weft_sim_trace call. The text line "<seconds.nanoseconds> <kind>
 * <detail>" is a pure rendering of the record and is produced only when a sink
 * is set or keep_lines is on. The trace hash is always kept; it is computed
 * over a canonical encoding of the records (docs/simulator.md), so it is the
 * same with text on or off. The line given to a sink has no newline and is
 * borrowed for the call. */
typedef void (*weft_trace_sink)(const char *line, size_t len, void *ctx);

/* ------------------------------------------------------------- Network
 *
 * Hosts have names; each listens on ports of its own. A connection is two
 * byte pipes: bytes arrive in order, exactly once, while it lives. Every
 * delivery is an event on the receiving host (label "net.deliver", traced as
 * "net.deliver conn=ID dir=c>s|s>c bytes=N"). The choice source decides, per
 * delivery: its latency ("net.latency", 0 = latency_min_ns), with coalesce on
 * how many following writes it joins ("net.coalesce", 0 = none), and with
 * max_chunk set whether to split it ("net.split", 0 = whole) and where
 * ("net.chunk", 0 = the largest piece). Questions with one possible answer
 * are not asked; fault rates of 0 ask nothing. docs/network.md has the whole
 * model: connects, closes, faults and the reasons each side sees. */

typedef struct weft_net_config {
    int64_t latency_min_ns; /* one-way delivery delay bounds (default 0, 0) */
    int64_t latency_max_ns;
    /* Chunking: each delivery carries between 1 and max_chunk bytes
     * (0: whole writes, no splitting); joining consecutive writes into one
     * delivery is a choice when coalesce is on. */
    size_t max_chunk;
    bool coalesce;
    /* Fault rates, per million decisions at each opportunity (0: never), at
     * most 1000000. A strike is traced as "net.fault ...". */
    uint32_t reset_ppm;   /* per data delivery: reset the connection */
    uint32_t stall_ppm;   /* per delivery: hold the pipe for 1..stall_max_ns */
    int64_t stall_max_ns;
    uint32_t refuse_ppm;  /* per connect reaching its host: refuse */
    int64_t connect_timeout_ns; /* default when the endpoint gives none: 30 s */
} weft_net_config;

typedef struct weft_sim_config {
    /* Events due within jitter_ns of the earliest are concurrent: their order
     * is a choice (0: only events at the same instant). >= 0. */
    int64_t jitter_ns;
    /* Runaway caps: a run stops with WEFT_ELIMIT, leaving the queue as it
     * is, when max_events events were dispatched or the next event is due
     * after max_time_ns (0: no cap; max_time_ns >= 0). */
    uint64_t max_events;
    weft_time_ns max_time_ns;
    weft_net_config net;
    /* Trace. */
    weft_trace_sink trace_sink;
    void *trace_ctx;
    bool keep_lines; /* keep the whole trace text in memory */
} weft_sim_config;

void weft_sim_config_default(weft_sim_config *cfg);

typedef struct weft_sim weft_sim;

/* A simulator. choices is owned by the simulator from here on (freed with
 * it, also when weft_sim_new fails); NULL choices: every answer is the default
 * 0. cfg is copied; NULL: weft_sim_config_default. NULL result: out of memory
 * or a negative jitter_ns / max_time_ns. */
weft_sim *weft_sim_new(const weft_sim_config *cfg, weft_choice *choices);
/* Frees the simulator, its network, its choices and every delayed call
 * without running it: weft_call handles, released or not, are invalid after
 * this. Not from inside one of its events. NULL is fine. */
void weft_sim_free(weft_sim *s);
weft_reactor *weft_sim_reactor(weft_sim *s);
weft_sim *weft_sim_from_reactor(weft_reactor *r); /* NULL if not a simulator */
weft_choice *weft_sim_choices(weft_sim *s);

/* Run: dispatch the next event (WEFT_ESTATE: none pending); until nothing is
 * pending; until the virtual clock reaches t (events at t included; the clock
 * then stands at t, or stays if it is past t); advance by dt (same, to
 * now + dt; WEFT_EINVAL for dt < 0). WEFT_ELIMIT when a runaway cap stopped
 * it. From inside one of the simulator's own events every run function
 * (these and weft_reactor_run / run_until) returns WEFT_ESTATE and does
 * nothing: runs never nest. Concurrent events are picked with
 * choose(k, "order") (docs/simulator.md). */
int weft_sim_step(weft_sim *s);
int weft_sim_run_until_quiet(weft_sim *s);
int weft_sim_run_until(weft_sim *s, weft_time_ns t);
int weft_sim_advance(weft_sim *s, int64_t dt_ns);
size_t weft_sim_pending(const weft_sim *s);
/* Time of the next pending event; false when none. */
bool weft_sim_next_time(const weft_sim *s, weft_time_ns *t);
uint64_t weft_sim_events(const weft_sim *s); /* dispatched so far */
/* The label of the event that was dispatched most often (runaway verdicts). */
const char *weft_sim_hottest_event(const weft_sim *s, uint64_t *count);

/* Trace. */
uint64_t weft_sim_trace_hash(const weft_sim *s);
/* Append a note (its line: the time, kind, then the formatted text).
 * Scenario runners and tests use it to record their own steps. The note is
 * hashed from kind, fmt and the argument values (docs/simulator.md), and
 * formatted only when text is wanted, so it is cheap with text off; %p
 * arguments count as 0 in the hash. NULL kind: "note". */
void weft_sim_trace(weft_sim *s, const char *kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
bool weft_sim_tracing(const weft_sim *s); /* text is wanted: format lines */
/* The kept lines (keep_lines): a NUL-separated buffer. */
const char *weft_sim_trace_text(const weft_sim *s, size_t *len);

/* Hosts and faults. Host names are 1 to WEFT_HOST_MAX-1 bytes, copied.
 * "localhost" always exists. Host arguments name existing hosts: an unknown
 * name is WEFT_ENOTFOUND, a NULL or empty one WEFT_EINVAL. Every fault is
 * traced ("net.fault partition a b", "net.fault crash h", ...). What each
 * side of a connection sees (connection_lost reasons, weft/reactor.h):
 *   reset            both sides ConnectionLost at once; bytes in flight dropped
 *   partition a b    traffic both ways held (not lost) until heal; connects
 *                    between a and b time out (ConnectTimedOut)
 *   stall a b        traffic from a to b held until release, then delivered in
 *                    order
 *   crash h          h's pending delayed calls are dropped without running
 *                    (helpers release what they hold: docs/network.md);
 *                    every connection of h: both sides ConnectionLost ("host
 *                    crashed"); h's listeners are closed (their factories
 *                    stopped); connects from h fail, connects to h are refused
 *   restart h        h is up again, with no listeners
 * EINVAL: a == b, or a bad name. ESTATE: partitioning a partitioned pair,
 * healing one that is not, and the same for stall/release and crash/restart. */
/* EEXIST if taken, ELIMIT past 65536 hosts. */
int weft_sim_add_host(weft_sim *s, const char *name);
/* Replace the network configuration (copied); applies to what happens next.
 * WEFT_EINVAL for negative or inverted bounds or a rate over 1000000. */
int weft_sim_set_net(weft_sim *s, const weft_net_config *net);
int weft_sim_partition(weft_sim *s, const char *a, const char *b);
int weft_sim_heal(weft_sim *s, const char *a, const char *b);
int weft_sim_crash(weft_sim *s, const char *host);
int weft_sim_restart(weft_sim *s, const char *host);
int weft_sim_stall(weft_sim *s, const char *a, const char *b);
int weft_sim_release(weft_sim *s, const char *a, const char *b);
/* Reset every connection between a and b (b NULL: every connection of a). */
int weft_sim_reset(weft_sim *s, const char *a, const char *b);
/* Abort, from a's end, every connection between a and b (b NULL: every
 * connection of a), as if a's protocols had called weft_transport_abort:
 * a's side sees ConnectionAborted one turn later, the other side
 * ConnectionLost after the latency; bytes a had not delivered are dropped. */
int weft_sim_abort(weft_sim *s, const char *a, const char *b);
/* Connections with at least one side not yet told it is lost. */
size_t weft_sim_open_connections(const weft_sim *s);

/* The reactor's listen/connect on the simulator need a "current host":
 * which simulated machine the calling code runs on. Defaults to "localhost";
 * a host named here is created on demand. Inside an event, the current host
 * is the event's. Listening with an interface ("tcp:80:interface=db") listens
 * on the host of that name instead; "", "*", "0.0.0.0" and "::" mean the
 * current host. A client endpoint's host names the host to connect to. */
int weft_sim_set_current_host(weft_sim *s, const char *host);

/* ------------------------------------------------ Exploration strategies
 *
 * Two more choice sources for hunting ordering bugs (docs/exploration.md),
 * beside the seeded one (plain random runs).
 *
 * PCT-style priority schedules. PCT (probabilistic concurrency testing)
 * gives each of n concurrent chains a random priority, always runs the
 * highest, and at d-1 random steps among k lowers the running chain's
 * priority below every other; a bug of depth d (d ordering constraints) is
 * then hit with probability at least 1/(n * k^(d-1)) per run. Here the
 * chains are the answers of a question: per label, the first
 * WEFT_PCT_RANKS positions (for "order", the concurrent events in their
 * canonical order) get random, distinct priorities, and a question answers
 * the highest-priority position below its bound. A question with more
 * answers than ranks is cut into WEFT_PCT_RANKS bands of equal width
 * (latencies, chunk sizes, fault draws): the highest-priority band wins and
 * the value inside it is drawn at random. At d-1 change points, drawn
 * uniformly among the first `steps` questions (questions with one answer are
 * not asked and not counted), the winning position of that question's label
 * drops below every other, for the rest of the run. Everything comes from
 * the seed: same seed, depth and steps, same answers.
 *
 * weft_choice_pct: depth >= 1 (1: no change points); steps >= 1 (the
 * expected number of questions per run, e.g. measured by a first run).
 * NULL: out of memory or a bad argument (depth 0, steps 0, depth above
 * WEFT_PCT_DEPTH_MAX). The source is freed with weft_choice_free (or by the
 * simulator or run that owns it). */
#define WEFT_PCT_RANKS 8u
#define WEFT_PCT_DEPTH_MAX 64u
#define WEFT_PCT_LABELS_MAX 32u /* labels with their own priorities; others share the last */
weft_choice *weft_choice_pct(uint64_t seed, uint32_t depth, uint64_t steps);

/* PCT's bound for one run: 1 / (chains * steps^(depth-1)), in (0, 1]
 * (0 arguments count as 1). And how many independent runs a per-run
 * probability p asks for to hit at least once with the given confidence
 * (e.g. 0.95): ceil(ln(1 - confidence) / ln(1 - p)); 1 when p >= 1,
 * UINT64_MAX when p <= 0 or the count does not fit. */
double weft_pct_probability(uint64_t chains, uint64_t steps, uint32_t depth);
uint64_t weft_pct_runs_needed(double p, double confidence);

/* Systematic exploration: every choice sequence, depth first, within two
 * bounds: the first choices_max questions of a run are enumerated (later
 * ones answer 0, the default), and each question tries at most
 * alternatives_max answers: all of them when its bound n is at most that,
 * else alternatives_max values spread evenly over [0, n) with both ends
 * included (0 and n-1: the shortest and the longest latency, no split and
 * the smallest piece...). The first run answers 0 everywhere; each next run
 * keeps the previous run's answers up to the deepest question that still has
 * an untried alternative, takes that alternative, and answers 0 after it.
 * Runs are deterministic, so a prefix always meets the same questions, and
 * no sequence is run twice.
 *
 * An explorer hands out one choice source per run: call weft_dfs_next
 * after the previous run has finished (its source may still be alive, but it
 * must not be asked anything more). *out is the new source (the caller's, or
 * give it to a run); *out is NULL and WEFT_OK when the space is exhausted.
 * The explorer must outlive every source it made. weft_dfs_new: NULL on out
 * of memory or bad bounds (choices_max 0 or above WEFT_DFS_CHOICES_MAX,
 * alternatives_max 0). */
#define WEFT_DFS_CHOICES_MAX (1u << 20)
typedef struct weft_dfs weft_dfs;
weft_dfs *weft_dfs_new(size_t choices_max, uint32_t alternatives_max);
void weft_dfs_free(weft_dfs *e); /* NULL allowed */
int weft_dfs_next(weft_dfs *e, weft_choice **out);
uint64_t weft_dfs_runs(const weft_dfs *e);    /* sources handed out */
bool weft_dfs_exhausted(const weft_dfs *e);   /* every sequence within the bounds was run */
/* Whether the bounds cut something off so far: a run asked more than
 * choices_max questions, or a question had more answers than
 * alternatives_max. Exhausted and not pruned: the whole space was run. */
bool weft_dfs_pruned(const weft_dfs *e);

/* Shrinking (implemented in scenarios/shrink.c, usable on any test):
 * minimise a failing choice list while `still_fails` says the run it
 * replays fails the same way. The list is changed in place: spans are
 * deleted (halves, quarters, ... down to single choices), then every value is
 * lowered toward 0 (to 0 at once, then by halving the distance, then by one);
 * passes repeat until none makes progress or max_tests candidate runs were
 * tried (0: WEFT_SHRINK_TESTS_DEFAULT). Deterministic: the same list and the
 * same predicate give the same result. The predicate returns WEFT_OK and sets
 * *fails, or an error that stops the shrink and is returned (the list then
 * holds the smallest failing list found so far). It receives a candidate
 * (borrowed for the call). Trailing zeros are dropped without a test: the
 * list is meant for weft_choice_replay, which answers 0 past its end. *len
 * is updated; tests (may be NULL) receives the number of candidates tried. */
#define WEFT_SHRINK_TESTS_DEFAULT 20000u
typedef int (*weft_shrink_fn)(const uint32_t *values, size_t len, void *ctx, bool *fails);
int weft_shrink_choices(uint32_t *values, size_t *len, size_t max_tests, weft_shrink_fn still_fails,
                        void *ctx, size_t *tests);

#ifdef __cplusplus
}
#endif
#endif
