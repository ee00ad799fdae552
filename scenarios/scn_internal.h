/* scn_internal.h: the parsed form of a scenario, shared by the parser
 * (parse.c), the checker and the runner (run.c). Not public.
 *
 * A scenario is a flat array of statements in file order plus a table of the
 * names it declares. Every name is resolved to an index at parse time, so the
 * runner never looks names up. Everything is owned by the weft_scenario and
 * never changes after parse, so one scenario can be run from several threads
 * (regexec on a compiled regex_t is thread-safe).
 */
#ifndef WEFT_SCN_INTERNAL_H
#define WEFT_SCN_INTERNAL_H

#include <regex.h>

#include "weft/scenario.h"

/* What a name stands for. */
typedef enum scn_ent_kind {
    SCN_ENT_HOST,
    SCN_ENT_PEER,     /* scripted peer (connecting or listening) */
    SCN_ENT_CLIENT,   /* a registry protocol connecting out */
    SCN_ENT_LISTENER, /* a registry protocol listening (when named with `as`) */
    SCN_ENT_DEFERRED, /* deferred, list, gather, later, call ... as */
} scn_ent_kind;

typedef enum scn_dkind {
    SCN_D_PLAIN,
    SCN_D_LIST,
    SCN_D_GATHER,
    SCN_D_LATER,
    SCN_D_CALL,
} scn_dkind;

typedef struct scn_entity {
    char *name;
    scn_ent_kind kind;
    scn_dkind dkind;   /* deferreds */
    bool peer_listens; /* peers */
    bool peer_eof;     /* peers: some `expect eof` names it, so it is half-close
                        * aware (it gets read_connection_lost) */
    int line, col;     /* declaration */
} scn_entity;

/* A value in a Deferred: an integer, a string (points into the scenario), or
 * none (NULL, Python's None). */
typedef enum scn_vkind { SCN_V_NONE, SCN_V_INT, SCN_V_STR } scn_vkind;

typedef struct scn_value {
    scn_vkind kind;
    int64_t num;
    const char *str; /* owned by the scenario's string pool */
    size_t len;
} scn_value;

/* The fixed menu of handlers. */
typedef enum scn_hop {
    SCN_H_NONE,
    SCN_H_ADD,     /* value + n */
    SCN_H_VALUE,   /* replace with a constant */
    SCN_H_FAIL,    /* fail with a named type */
    SCN_H_RETURN,  /* return another named Deferred (chain) */
    SCN_H_RECORD,  /* pass through, record a label */
    SCN_H_RECOVER, /* Failure -> value */
    SCN_H_TRAP,    /* Failure of the type -> its type name, else passes on */
    SCN_H_PASS,    /* pass through */
} scn_hop;

typedef struct scn_handler {
    scn_hop op;
    scn_value v;      /* ADD (num), VALUE, RECOVER */
    const char *type; /* FAIL, TRAP */
    const char *msg;  /* FAIL ("" when none) */
    const char *label; /* RECORD */
    int target;       /* RETURN: entity */
} scn_handler;

typedef enum scn_kind {
    /* settings (applied before the run starts); they come first and end with
     * SCN_S_NETWORK: the runner relies on that order */
    SCN_S_SCENARIO,
    SCN_S_SEED,
    SCN_S_JITTER,
    SCN_S_LIMIT,
    SCN_S_NETWORK,
    /* world */
    SCN_S_HOST,
    SCN_S_LISTEN,
    SCN_S_CLIENT,
    SCN_S_PEER_CONNECT,
    SCN_S_PEER_LISTEN,
    /* peers and clients */
    SCN_S_SEND,
    SCN_S_CLOSE,
    SCN_S_ABORT,
    SCN_S_SHUTDOWN, /* a peer shuts its write side (half-close) */
    SCN_S_STOP, /* listener stops listening */
    /* time */
    SCN_S_ADVANCE,
    SCN_S_RUN_UNTIL,
    SCN_S_QUIET,
    /* faults */
    SCN_S_RESET,
    SCN_S_PARTITION,
    SCN_S_HEAL,
    SCN_S_STALL,
    SCN_S_RELEASE,
    SCN_S_CRASH,
    SCN_S_RESTART,
    /* deferreds */
    SCN_S_DEFERRED,
    SCN_S_LIST,
    SCN_S_GATHER,
    SCN_S_LATER,
    SCN_S_ADD_HANDLERS,
    SCN_S_FIRE,
    SCN_S_FAIL,
    SCN_S_CANCEL,
    SCN_S_PAUSE,
    SCN_S_UNPAUSE,
    SCN_S_TIMEOUT,
    SCN_S_CALL,
    /* checks */
    SCN_S_EXPECT,
    SCN_S_EXPECT_ORDER,
} scn_kind;

typedef enum scn_ekind {
    SCN_E_BYTES,
    SCN_E_LINE,
    SCN_E_PREFIX,
    SCN_E_MATCH,
    SCN_E_NOTHING,
    SCN_E_CONNECTED,
    SCN_E_CLOSED,
    SCN_E_CONNECT_FAILED,
    SCN_E_OPEN,
    SCN_E_VALUE,
    SCN_E_SUCCEEDED,
    SCN_E_FIRED, /* has a result, value or Failure (the Failure counts as handled) */
    SCN_E_FAILURE,
    SCN_E_PENDING,
    SCN_E_VALUES, /* gather */
    SCN_E_LIST,   /* list */
    SCN_E_EOF,    /* a peer: the other end shut its write side */
} scn_ekind;

/* One entry of `expect list`: ok VALUE, fail TYPE or unfired. */
typedef struct scn_item {
    int state; /* 0 unfired, 1 ok, 2 fail */
    scn_value v;
    const char *type;
} scn_item;

typedef struct scn_arg {
    weft_arg_kind kind;
    const char *str; /* pool */
    size_t len;
    int64_t num;
} scn_arg;

typedef enum scn_timing { SCN_T_NOW, SCN_T_AT, SCN_T_AFTER } scn_timing;

typedef struct scn_stmt {
    scn_kind kind;
    int line, col;
    scn_timing timing;
    int64_t time_ns; /* AT: absolute; AFTER: delay */

    int subj;         /* entity of the statement's subject, -1 when none */
    int host, host2;  /* entities (hosts), -1 when none */
    uint16_t port;
    const char *proto; /* LISTEN, CLIENT: registry name; CALL: action */
    int proto_col;
    const char *args; /* `with "..."`, "" when none */
    const char *bytes; /* SEND and data expectations; type names; labels */
    size_t nbytes;
    const char *type;  /* FAIL, expected failure type, closed-with reason */
    const char *msg;   /* FAIL message, expected message substring */
    scn_value value;
    int64_t dur_ns;    /* ADVANCE, RUN_UNTIL (absolute), TIMEOUT, LATER, JITTER */
    bool has_within;
    int64_t within_ns;
    scn_ekind ekind;
    bool has_regex;
    regex_t regex;

    /* ADD_HANDLERS: slot 0 = callback, 1 = errback; `both` sets the same. */
    scn_handler cb, eb;

    /* LIST, GATHER: members; EXPECT_ORDER: labels; VALUES, LIST: items. */
    int *members;
    size_t nmembers;
    unsigned flags;
    const char **labels;
    size_t nlabels;
    scn_item *items;
    size_t nitems;

    /* CALL */
    scn_arg *argv;
    size_t argc;

    /* LIMIT */
    uint64_t limit_events;
    int64_t limit_time_ns;
} scn_stmt;

struct weft_scenario {
    char *file;
    char *name;
    bool has_seed;
    uint64_t seed;
    int64_t jitter_ns;
    uint64_t max_events;   /* 0: default */
    int64_t max_time_ns;   /* 0: default */
    weft_net_config net;
    bool net_set;

    scn_stmt *stmts;
    size_t nstmts;
    scn_entity *ents;
    size_t nents;

    /* String pool: every string the statements point to. */
    char **pool;
    size_t npool, cappool;
};

/* Index of the entity called name, or -1. */
int weft__scn_find(const weft_scenario *sc, const char *name);

/* ---- registry.c, for the runner ---- */

/* How to destroy a factory the registry made. */
typedef struct weft__factory_owner {
    weft_protocol_destroy_fn destroy;
    void *ctx;
} weft__factory_owner;

/* Make a factory of the registered protocol `name`; NULL with a message in
 * err (errlen > 0). *owner says how to destroy the result. */
weft_factory *weft__registry_make(const weft_registry *reg, const char *name, weft_reactor *r,
                                  const char *args, char *err, size_t errlen,
                                  weft__factory_owner *owner);
/* The action called name (and its ctx), or NULL. */
weft_action_fn weft__registry_action(const weft_registry *reg, const char *name, void **ctx);

#endif
