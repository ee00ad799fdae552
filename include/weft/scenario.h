/* weft/scenario.h: the scenario language: parse a .scn file, check its names
 * against a registry of protocols and actions, and run it in the simulator.
 *
 * A scenario is a script, one statement a line, that builds a small world
 * (hosts, listeners running protocols under test, clients, scripted peers,
 * Deferred chains), drives it (send, close, faults, fire, at a virtual time or
 * after a delay) and states what must happen (expectations with deadlines).
 * docs/scenarios.md is the language reference.
 *
 * The pieces:
 *   weft_diags      errors of a file, each "file:line:col: message".
 *   weft_scenario   a parsed scenario (immutable after parse; one scenario can
 *                   be run any number of times, also from several threads).
 *   weft_registry   protocols and actions by name: the code under test.
 *   weft_world      what an action sees while a scenario runs.
 *   weft_scenario_run   one run on one choice source, with its verdict.
 *
 * Nothing here prints or exits. Every function that can fail returns a weft
 * error code (weft/core.h) and, where it says so, adds diagnostics.
 */
#ifndef WEFT_SCENARIO_H
#define WEFT_SCENARIO_H

#include <stdio.h>

#include "weft/core.h"
#include "weft/defer.h"
#include "weft/reactor.h"
#include "weft/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- Diagnostics */

/* Limits of the language, each a defined error when exceeded. */
#define WEFT_SCENARIO_LINE_MAX 4096u       /* bytes per line, delimiter excluded */
#define WEFT_SCENARIO_STATEMENTS_MAX 100000u
#define WEFT_SCENARIO_NAME_MAX 63u         /* identifiers, host names */
#define WEFT_SCENARIO_DIAGS_MAX 100u       /* errors kept per list; the rest set `truncated` */

/* One error. line and col are 1-based (col counts bytes); line 0 means the
 * error concerns the whole file (e.g. it cannot be read). file and msg are
 * owned by the list that holds the diagnostic. */
typedef struct weft_diag {
    char *file;
    int line;
    int col;
    char *msg;
} weft_diag;

/* A list of diagnostics, in file order (line, then column, then the order
 * found). Zero-initialise it (or weft_diags_init), pass it to the parser and
 * the checker, release it with weft_diags_clear. */
typedef struct weft_diags {
    weft_diag *items;
    size_t count;
    size_t cap;
    bool truncated; /* more than WEFT_SCENARIO_DIAGS_MAX: the rest were dropped */
} weft_diags;

void weft_diags_init(weft_diags *d);
/* Frees every diagnostic; d is empty and reusable afterwards. */
void weft_diags_clear(weft_diags *d);
/* Append one. file is copied (NULL: "<input>"). WEFT_ENOMEM on failure. */
int weft_diags_add(weft_diags *d, const char *file, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* "file:line:col: message" in a new string the caller frees with weft_free
 * (NULL: out of memory). Line 0 renders as "file: message". */
char *weft_diag_format(const weft_diag *d);
/* Write every diagnostic, one per line, to out (the caller's stream). Returns
 * WEFT_EIO when writing fails. */
int weft_diags_write(const weft_diags *d, FILE *out);

/* ------------------------------------------------------------ Scenario */

typedef struct weft_scenario weft_scenario;
typedef struct weft_registry weft_registry;
typedef struct weft_world weft_world;

/* Parse text[0..len) (it need not be NUL-terminated and may contain any
 * bytes). filename names the source in diagnostics and verdicts (copied; NULL:
 * "<input>"). Syntax and the scenario's own names (hosts, peers, Deferreds,
 * clients, listeners) are checked here; protocol and action names are checked
 * against a registry by weft_scenario_check (and again by weft_scenario_run).
 *
 * All errors found are appended to diags (which may be NULL to discard them).
 * On WEFT_OK *out is a new scenario the caller frees with weft_scenario_free.
 * On WEFT_EPARSE at least one diagnostic was added and *out is NULL: a
 * scenario that does not parse is never built. WEFT_ENOMEM: out of memory,
 * *out is NULL. text is not referenced after the call. Never crashes on any
 * input. */
int weft_scenario_parse(const char *text, size_t len, const char *filename, weft_scenario **out,
                        weft_diags *diags);

/* Read and parse the file at path. A file that cannot be read gives WEFT_EIO
 * and a diagnostic "path: cannot read: <reason>". Otherwise as parse. */
int weft_scenario_load(const char *path, weft_scenario **out, weft_diags *diags);

/* Resolve the protocol and action names of sc in reg: every unknown name is
 * a positioned diagnostic ("file:line:col: unknown protocol 'x'"). Argument
 * strings are judged by the constructors when the run builds the world (a
 * rejected one fails the run at that statement). WEFT_OK, WEFT_ENOTFOUND
 * (diagnostics added; diags may be NULL) or WEFT_EINVAL (NULL sc or reg). */
int weft_scenario_check(const weft_scenario *sc, const weft_registry *reg, weft_diags *diags);

void weft_scenario_free(weft_scenario *sc); /* NULL allowed */

/* Accessors: strings are owned by sc and valid until weft_scenario_free. */
const char *weft_scenario_name(const weft_scenario *sc);     /* the header's name, else the file's base name */
const char *weft_scenario_file(const weft_scenario *sc);     /* the filename given to parse */
bool weft_scenario_has_seed(const weft_scenario *sc);        /* a `seed` statement was given */
uint64_t weft_scenario_seed(const weft_scenario *sc);        /* that seed, else 1 */
size_t weft_scenario_statements(const weft_scenario *sc);    /* number of statements */

/* ------------------------------------------------------------ Registry
 *
 * The code under test, by name. Names are 1..WEFT_SCENARIO_NAME_MAX bytes of
 * [A-Za-z0-9_.-], starting with a letter. A registry is filled before runs and
 * only read during them, so one registry can serve runs on several threads. */

/* Build a factory for the protocol `name` with its argument string (the
 * scenario's `with "..."` text; "" when none). Called once per listener or
 * client per run, on the run's thread; r is the run's reactor. Return NULL
 * and write a message into err (errlen > 0) to reject the arguments: the run
 * then fails with that message at the statement's position. The factory
 * belongs to the registrant's code: the run calls destroy(f, ctx) (when not
 * NULL) after the simulator is freed, so no protocol still uses it. */
typedef weft_factory *(*weft_protocol_make_fn)(weft_reactor *r, const char *args, void *ctx,
                                               char *err, size_t errlen);
typedef void (*weft_protocol_destroy_fn)(weft_factory *f, void *ctx);

/* A scenario argument as an action receives it. Byte strings keep their
 * bytes (str is also NUL-terminated, len excludes the NUL); words (names,
 * host:port) are strings too; integers and durations (in ns) have num set. */
typedef enum weft_arg_kind {
    WEFT_ARG_STRING,   /* "..." with escapes decoded */
    WEFT_ARG_WORD,     /* a bare word: name, host, host:port */
    WEFT_ARG_INT,      /* 42, -7 */
    WEFT_ARG_DURATION, /* 250ms: num is nanoseconds */
} weft_arg_kind;

typedef struct weft_arg {
    weft_arg_kind kind;
    const char *str; /* always set: the decoded string or the token's text */
    size_t len;
    int64_t num; /* INT and DURATION */
} weft_arg;

/* Start work and hand back a Deferred. Called when the scenario's `call`
 * statement runs, on the simulator's reactor (weft_world_reactor) with the
 * statement's `from` host current. On WEFT_OK *out must hold a Deferred whose
 * reference passes to the run (the scenario names it and makes expectations
 * on it). Any other return is a failure of the run, with err (NUL-terminated,
 * errlen > 0) as its message. argv[0..argc) is borrowed for the call. */
typedef int (*weft_action_fn)(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                              weft_deferred **out, char *err, size_t errlen);

/* NULL: out of memory. */
weft_registry *weft_registry_new(void);
/* Frees the registry and closes the plugins it loaded. Scenarios checked
 * against it stay valid. NULL allowed. */
void weft_registry_free(weft_registry *reg);

/* Register a protocol or an action. name is copied; ctx is the caller's and
 * is passed back on every call. WEFT_EEXIST: the name is taken (in that
 * kind); WEFT_EINVAL: bad name or NULL function. destroy may be NULL. */
int weft_registry_add_protocol(weft_registry *reg, const char *name, weft_protocol_make_fn make,
                               weft_protocol_destroy_fn destroy, void *ctx);
int weft_registry_add_action(weft_registry *reg, const char *name, weft_action_fn fn, void *ctx);

/* The protocols of weft/protocols.h (hello, echo, line-based chat, smtp
 * client and server, ...) and their actions (smtp.send, ...), under the names
 * listed in docs/scenarios.md. WEFT_EEXIST if one is already registered. */
int weft_registry_add_builtins(weft_registry *reg);

/* Load a shared object and call its
 *     int weft_plugin_init(weft_registry *reg);
 * which registers protocols and actions and returns WEFT_OK. The object
 * stays loaded until the registry is freed. On failure (cannot load, no
 * weft_plugin_init, init returned an error) returns WEFT_EIO / WEFT_ENOTFOUND
 * / init's code with a message in err (errlen > 0). */
#define WEFT_PLUGIN_INIT_SYMBOL "weft_plugin_init"
typedef int (*weft_plugin_init_fn)(weft_registry *reg);
int weft_registry_load_plugin(weft_registry *reg, const char *path, char *err, size_t errlen);

/* Lookups, and listing in registration order (name: NULL past the end). */
bool weft_registry_has_protocol(const weft_registry *reg, const char *name);
bool weft_registry_has_action(const weft_registry *reg, const char *name);
size_t weft_registry_protocol_count(const weft_registry *reg);
const char *weft_registry_protocol_name(const weft_registry *reg, size_t i);
size_t weft_registry_action_count(const weft_registry *reg);
const char *weft_registry_action_name(const weft_registry *reg, size_t i);

/* --------------------------------------------------------------- World
 *
 * What an action may use while it runs. Everything returned is owned by the
 * run and valid until the run ends. */

weft_reactor *weft_world_reactor(weft_world *w);
weft_sim *weft_world_sim(weft_world *w);
/* The host the action runs on (the `from` host; "localhost" when none). */
const char *weft_world_host(weft_world *w);
/* The protocol instance of the scenario's client `name` while it is
 * connected; NULL otherwise. */
weft_protocol *weft_world_client(weft_world *w, const char *name);
/* A factory of registered protocol `proto` with args, owned by the run
 * (destroyed after the simulator). NULL with err set when unknown/rejected. */
weft_factory *weft_world_factory(weft_world *w, const char *proto, const char *args, char *err,
                                 size_t errlen);
/* Connect f from the action's host to endpoint ("HOST:PORT" or a client
 * endpoint description "tcp:..."), with the run's checks (a write after close
 * by the connected protocol is reported) around the factory. *out (the
 * caller's reference) fires with the connected protocol once its
 * connection_made has run, or fails with the connect Failure (e.g.
 * ConnectionRefused). One connection per factory (WEFT_ESTATE for a second
 * one while the first is connecting). f stays the caller's and must outlive
 * the run: use weft_world_factory, or memory from weft_world_alloc. */
int weft_world_connect(weft_world *w, const char *endpoint, weft_factory *f, weft_deferred **out);
/* size bytes of zeroed memory owned by the run (freed when the run ends):
 * for state an action's handlers need, whether or not they ever run. NULL:
 * out of memory. */
void *weft_world_alloc(weft_world *w, size_t size);
/* Report an invariant violation found by the action's own code: the run fails
 * with "file:line: message" (the position of the `call` statement). */
void weft_world_violation(weft_world *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ----------------------------------------------------------------- Run */

typedef struct weft_run_options {
    /* The choice source, owned by the run from here on (freed by it, also on
     * error). NULL: seeded with `seed` when use_seed, else the scenario's. */
    weft_choice *choices;
    uint64_t seed;
    bool use_seed;
    /* Trace lines as they happen (also the run's own step lines). */
    weft_trace_sink sink;
    void *sink_ctx;
    bool keep_trace; /* copy the whole trace text into the result */
    /* Runaway caps. 0: the scenario's `limit` statements, else the defaults
     * below. */
    uint64_t max_events;
    int64_t max_time_ns;
} weft_run_options;

#define WEFT_SCENARIO_DEFAULT_MAX_EVENTS UINT64_C(1000000)
#define WEFT_SCENARIO_DEFAULT_MAX_TIME_NS (INT64_C(3600) * WEFT_NS_PER_S)

/* Zero everything (defaults: the scenario's seed, no sink, default caps). */
void weft_run_options_init(weft_run_options *opt);

typedef struct weft_run_result {
    bool passed;
    uint64_t seed;            /* the seed used (meaningless with given choices) */
    weft_time_ns elapsed_ns;  /* virtual time at the end */
    uint64_t events;          /* events dispatched */
    uint64_t trace_hash;
    /* "passed", or the first failure: "file:line: expected ..., got ...". */
    char *verdict;
    /* Every failure in the order found (verdict is failures[0]). */
    char **failures;
    size_t nfailures;
    /* keep_trace: the whole trace, every line ending in '\n'. */
    char *trace_text;
    size_t trace_len;
    /* Every choice made, in order (values and their bounds): what a choice
     * file saves and weft_choice_replay replays. */
    uint32_t *choices;
    uint32_t *choice_bounds;
    size_t nchoices;
} weft_run_result;

/* Run sc once. reg must resolve every name of sc (weft_scenario_check); opt
 * may be NULL (defaults). *out is filled in (call weft_run_result_clear to
 * free it, also after an error). A failing scenario is not an error: the
 * return is WEFT_OK with out->passed false and out->verdict set. Errors (then
 * out is zeroed, verdict NULL): WEFT_ENOTFOUND (a name does not resolve),
 * WEFT_ENOMEM (anywhere in the run), WEFT_EINVAL (NULL sc, reg or out). The
 * options' choice source is consumed in every case. The calling thread's
 * unhandled-failure handler (weft/defer.h) is used by the run and reset to
 * the default when it returns. */
int weft_scenario_run(const weft_scenario *sc, const weft_registry *reg,
                      const weft_run_options *opt, weft_run_result *out);

/* Free what a result holds and zero it. NULL and zeroed results allowed. */
void weft_run_result_clear(weft_run_result *r);

#ifdef __cplusplus
}
#endif
#endif
