/* bugs_pair.c: planted bug "a callback assuming the order of two replies"
 * (protocols/bugs.h).
 *
 * Protocol bug-pair is a client of an echo server (the primary). Action
 * bugs.pair CLIENT HOST:PORT sends "1" to the primary, connects a second
 * connection to HOST:PORT (another echo server, the secondary), sends "2"
 * there, and fires its Deferred with 10 * primary + secondary, that is 12.
 * The buggy reply handler stores replies in arrival order and takes the
 * first as the primary's: when the secondary answers first (its connect and
 * round trip beat the primary's round trip) the result is 21. The fixed
 * version ("fixed") files each reply under the connection it came from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/bugs.h"

typedef struct pair {
    weft__bug_factory f;      /* first: make returns &f.base; tag 0, the primary */
    weft__bug_factory second; /* tag 1 */
    bool fixed;
    weft_reactor *r;
    weft__bug_conn *conn[2];
    weft_deferred *d; /* borrowed: the run holds it */
    long slot[2];
    int replies;
    bool started;
} pair;

static void pair_made(weft__bug_conn *c)
{
    pair *st = c->owner;
    st->conn[c->tag] = c;
    if (c->tag == 1)
        (void)weft__bug_send(c, "2");
}

static void pair_line(weft__bug_conn *c, const char *line, size_t len)
{
    pair *st = c->owner;
    if (!st->started || st->replies == 2)
        return;
    long v = strtol(line, NULL, 10);
    if (st->fixed)
        st->slot[c->tag] = v;
    else
        st->slot[st->replies] = v; /* the bug: first come is the primary */
    st->replies++;
    if (st->replies < 2)
        return;
    weft_deferred_callback(st->d, (void *)(intptr_t)(10 * st->slot[0] + st->slot[1]));
    weft__bug_close(st->conn[0]);
    weft__bug_close(st->conn[1]);
}

static void pair_lost(weft__bug_conn *c, const weft_failure *reason)
{
    pair *st = c->owner;
    if (st->conn[c->tag] == c)
        st->conn[c->tag] = NULL;
}

static const weft__bug_conn_ops pair_ops = {.made = pair_made, .line = pair_line, .lost = pair_lost};

static weft_factory *pair_make(weft_reactor *r, const char *args, char *err, size_t errlen)
{
    pair *st = weft_calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft__bug_factory_init(&st->f, &pair_ops, st, 0, 0);
    weft__bug_factory_init(&st->second, &pair_ops, st, 1, 0);
    st->r = r;
    st->fixed = weft__bug_fixed(args);
    return &st->f.base;
}

static void pair_destroy(weft_factory *f)
{
    weft_free(f);
}

static int pair_start(weft_protocol *p, const weft__bug_args *a, weft_deferred **out, char *err,
                      size_t errlen)
{
    pair *st = weft__bug_owner(p, &pair_ops);
    if (!st || ((weft__bug_conn *)p)->tag != 0) {
        snprintf(err, errlen, "bugs.pair: the client is not a connected bug-pair client");
        return WEFT_EINVAL;
    }
    if (st->started) {
        snprintf(err, errlen, "bugs.pair: one pair of queries per client");
        return WEFT_ESTATE;
    }
    if (!a->str) {
        snprintf(err, errlen, "bugs.pair: expected the secondary's HOST:PORT");
        return WEFT_EINVAL;
    }
    weft_deferred *d = weft_deferred_new();
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return WEFT_ENOMEM;
    }
    int rc = weft__bug_connect(st->r, a->str, &st->second.base);
    if (rc != WEFT_OK) {
        weft_deferred_unref(d);
        snprintf(err, errlen, "bugs.pair: connecting to %s: %s", a->str, weft_strerror(rc));
        return rc;
    }
    st->d = d;
    st->started = true;
    (void)weft__bug_send(st->conn[0], "1");
    *out = d;
    return WEFT_OK;
}

const weft__bug weft__bug_pair = {
    .protocol = "bug-pair",
    .action = "bugs.pair",
    .summary = "a callback assuming the order of two replies",
    .make = pair_make,
    .destroy = pair_destroy,
    .start = pair_start,
};
