/* bugs.h: planted ordering bugs (protocols/bugs_*.c). Internal to the
 * library; the scenario registry exposes them by name (scenarios/
 * bugs_registry.c, weft_bugs_register in weft/explore.h).
 *
 * Each bug is a small protocol with a real ordering bug and, behind the
 * argument "fixed", the same protocol with the bug fixed. Like every protocol
 * they see only the reactor and Deferreds. When their own checks find a
 * broken invariant they raise it as Twisted code would raise an exception in
 * a callback: a Failure of type WEFT__BUG_FAILURE that nobody handles, which
 * a scenario run reports as "invariant: unhandled Failure in a Deferred".
 *
 * A bug is one table entry: a protocol name and its factory constructor and
 * destructor, and optionally an action that starts work on a connected
 * client of that protocol and hands back a Deferred.
 */
#ifndef WEFT_PROTOCOLS_BUGS_H
#define WEFT_PROTOCOLS_BUGS_H

#include "weft/defer.h"
#include "weft/reactor.h"

/* Lines of the bug protocols: short text lines ending in "\n". */
#define WEFT__BUG_LINE_MAX 128u

/* What an action receives besides the client: the scenario's arguments
 * after the client's name, reduced to the first number or duration (num,
 * has_num) and the first word or string (str, NULL when none). */
typedef struct weft__bug_args {
    int64_t num;
    bool has_num;
    const char *str;
} weft__bug_args;

typedef struct weft__bug {
    const char *protocol; /* registry protocol name */
    const char *action;   /* registry action name, NULL: none */
    const char *summary;
    /* args: the protocol's argument string ("fixed", "timeout=90", ...).
     * NULL with a message in err when rejected. */
    weft_factory *(*make)(weft_reactor *r, const char *args, char *err, size_t errlen);
    void (*destroy)(weft_factory *f); /* after the simulator is gone */
    /* p: a connected protocol built by make's factory. On WEFT_OK *out is
     * a Deferred whose reference passes to the caller. Other returns fail
     * the run with err. */
    int (*start)(weft_protocol *p, const weft__bug_args *a, weft_deferred **out, char *err,
                 size_t errlen);
} weft__bug;

/* The five bugs and two helpers. */
extern const weft__bug weft__bug_rpc;    /* a timeout racing a response: fired twice */
extern const weft__bug weft__bug_jobs;   /* a write after the peer closed */
extern const weft__bug weft__bug_jobs_client; /* bug-jobs' peer (no bug of its own) */
extern const weft__bug weft__bug_resend; /* a message lost on reconnect */
extern const weft__bug weft__bug_store;  /* bug-resend's server (no bug of its own) */
extern const weft__bug weft__bug_pair;   /* a callback assuming the order of two replies */
extern const weft__bug weft__bug_lock;   /* a lock released twice */

/* ------------------------------------------- shared line connection */

typedef struct weft__bug_conn weft__bug_conn;

typedef struct weft__bug_conn_ops {
    void (*made)(weft__bug_conn *c);
    /* A line without its "\n" (and "\r"), NUL-terminated, borrowed. */
    void (*line)(weft__bug_conn *c, const char *line, size_t len);
    void (*lost)(weft__bug_conn *c, const weft_failure *reason);
    /* Optional: the peer closed its side (half-close aware when set). */
    void (*read_lost)(weft__bug_conn *c);
    /* Optional: the connection is being freed (cancel its timers). */
    void (*destroy)(weft__bug_conn *c);
} weft__bug_conn_ops;

struct weft__bug_conn {
    weft_protocol base; /* first: the reactor sees a protocol */
    const weft__bug_conn_ops *ops;
    void *owner;
    int tag;
    char buf[WEFT__BUG_LINE_MAX + 1];
    size_t len;
};

/* A factory whose protocols are line connections reporting to owner. */
typedef struct weft__bug_factory {
    weft_factory base; /* ctx: this */
    const weft__bug_conn_ops *ops;
    void *owner;
    int tag;
    size_t conn_size; /* bytes per connection, at least sizeof(weft__bug_conn) */
} weft__bug_factory;

/* conn_size 0: a plain weft__bug_conn; larger sizes embed it first. */
void weft__bug_factory_init(weft__bug_factory *f, const weft__bug_conn_ops *ops, void *owner,
                            int tag, size_t conn_size);
/* The owner of p when p is a line connection built with ops (the action's
 * client is of the right protocol), else NULL. */
void *weft__bug_owner(weft_protocol *p, const weft__bug_conn_ops *ops);
/* Write line + "\n". WEFT_ENOTCONN without a transport, else the
 * transport's answer. */
int weft__bug_send(weft__bug_conn *c, const char *line);
/* lose_connection when connected. */
void weft__bug_close(weft__bug_conn *c);
/* Raise an invariant violation (see above): a Failure of type
 * WEFT__BUG_FAILURE with the message, left unhandled. */
#define WEFT__BUG_FAILURE "InvariantBroken"
void weft__bug_violation(const char *msg);
/* Connect f to "HOST:PORT" from the current host; a failed connect is
 * consumed (the scenario's expectations judge its effect). */
int weft__bug_connect(weft_reactor *r, const char *endpoint, weft_factory *f);
/* True when args (space-separated words) holds the word "fixed". */
bool weft__bug_fixed(const char *args);
/* The integer after "key=" in args into *out (left alone when the key is
 * absent). WEFT_EINVAL when the value is not a decimal integer. */
int weft__bug_arg_long(const char *args, const char *key, long *out);

#endif
