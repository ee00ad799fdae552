/* bugs_resend.c: planted bug "a message lost on reconnect" (protocols/
 * bugs.h).
 *
 * Protocol bug-store is a server that answers each line "MSG n" with
 * "ACK n". Protocol bug-resend is its client: action bugs.resend CLIENT
 * HOST:PORT COUNT sends MSG 1..COUNT, one every interval=MS (default 20),
 * reconnects to HOST:PORT 5 ms after the connection is lost to a reset, and
 * 300 ms after the last message fires its Deferred with the number of
 * distinct messages acknowledged. The buggy client counts a message as
 * delivered once written: a message in flight when the reset strikes, or
 * written while it is disconnected, is gone, and the count comes out short.
 * It only happens when the reset lands between a write and its delivery (or
 * in the reconnect gap). The fixed version ("fixed") keeps every
 * unacknowledged message and sends them again after reconnecting; the server
 * acknowledges a repeat again, and the client counts each message once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/bugs.h"

#define RESEND_MAX 64
#define RESEND_RECONNECT_MS 5
#define RESEND_SETTLE_MS 300

/* ------------------------------------------------------------ server */

static void store_line(weft__bug_conn *c, const char *line, size_t len)
{
    if (strncmp(line, "MSG ", 4) != 0)
        return;
    char out[WEFT__BUG_LINE_MAX];
    snprintf(out, sizeof out, "ACK %s", line + 4);
    (void)weft__bug_send(c, out);
}

static const weft__bug_conn_ops store_ops = {.line = store_line};

static weft_factory *store_make(weft_reactor *r, const char *args, char *err, size_t errlen)
{
    weft__bug_factory *f = weft_calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft__bug_factory_init(f, &store_ops, NULL, 0, 0);
    return &f->base;
}

static void plain_destroy(weft_factory *f)
{
    weft_free(f);
}

const weft__bug weft__bug_store = {
    .protocol = "bug-store",
    .action = NULL,
    .summary = "acknowledges each MSG n with ACK n (the server of bug-resend)",
    .make = store_make,
    .destroy = plain_destroy,
    .start = NULL,
};

/* ------------------------------------------------------------ client */

typedef struct resend {
    weft__bug_factory f; /* first: make returns &f.base */
    weft_reactor *r;
    bool fixed;
    long interval_ms;
    char endpoint[WEFT_HOST_MAX + 8];
    weft__bug_conn *conn;
    weft_deferred *d; /* borrowed: the run holds it */
    long count, next; /* messages 1..count; next to send */
    bool acked[RESEND_MAX + 1];
    long nacked;
    weft_call *tick, *settle, *reconnect;
    bool started, finished;
} resend;

static void send_msg(resend *st, long n)
{
    char line[32];
    snprintf(line, sizeof line, "MSG %ld", n);
    (void)weft__bug_send(st->conn, line); /* not connected: the bug loses it */
}

static void settle(void *ctx)
{
    resend *st = ctx;
    weft_call_release(st->settle);
    st->settle = NULL;
    st->finished = true;
    weft_deferred_callback(st->d, (void *)(intptr_t)st->nacked);
    weft__bug_close(st->conn);
}

static void tick(void *ctx)
{
    resend *st = ctx;
    weft_call_release(st->tick);
    st->tick = NULL;
    send_msg(st, st->next++);
    if (st->next <= st->count)
        st->tick = weft_call_later(st->r, st->interval_ms * WEFT_NS_PER_MS, tick, st);
    else
        st->settle = weft_call_later(st->r, RESEND_SETTLE_MS * WEFT_NS_PER_MS, settle, st);
}

static void do_reconnect(void *ctx)
{
    resend *st = ctx;
    weft_call_release(st->reconnect);
    st->reconnect = NULL;
    (void)weft__bug_connect(st->r, st->endpoint, &st->f.base);
}

static void resend_made(weft__bug_conn *c)
{
    resend *st = c->owner;
    st->conn = c;
    if (!st->started || !st->fixed)
        return;
    for (long n = 1; n < st->next; n++) {
        if (!st->acked[n])
            send_msg(st, n);
    }
}

static void resend_line(weft__bug_conn *c, const char *line, size_t len)
{
    resend *st = c->owner;
    if (strncmp(line, "ACK ", 4) != 0)
        return;
    char *end;
    long n = strtol(line + 4, &end, 10);
    if (end == line + 4 || *end != '\0' || n < 1 || n > st->count || st->acked[n])
        return;
    st->acked[n] = true;
    st->nacked++;
}

static void resend_lost(weft__bug_conn *c, const weft_failure *reason)
{
    resend *st = c->owner;
    if (st->conn == c)
        st->conn = NULL;
    /* Reconnect after a reset; not after our own close, nor when the run
     * tears the world down (ConnectionAborted). */
    if (st->started && !st->finished && !st->reconnect &&
        strcmp(reason->type, WEFT_REASON_LOST) == 0)
        st->reconnect = weft_call_later(st->r, RESEND_RECONNECT_MS * WEFT_NS_PER_MS, do_reconnect,
                                        st);
}

static const weft__bug_conn_ops resend_ops = {
    .made = resend_made, .line = resend_line, .lost = resend_lost};

static weft_factory *resend_make(weft_reactor *r, const char *args, char *err, size_t errlen)
{
    long interval = 20;
    if (weft__bug_arg_long(args, "interval", &interval) != WEFT_OK || interval < 1 ||
        interval > 3600000) {
        snprintf(err, errlen, "bug-resend: interval=MS takes milliseconds (1 to 3600000)");
        return NULL;
    }
    resend *st = weft_calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft__bug_factory_init(&st->f, &resend_ops, st, 0, 0);
    st->r = r;
    st->fixed = weft__bug_fixed(args);
    st->interval_ms = interval;
    return &st->f.base;
}

static int resend_start(weft_protocol *p, const weft__bug_args *a, weft_deferred **out, char *err,
                        size_t errlen)
{
    resend *st = weft__bug_owner(p, &resend_ops);
    if (!st) {
        snprintf(err, errlen, "bugs.resend: the client is not a connected bug-resend client");
        return WEFT_EINVAL;
    }
    if (st->started) {
        snprintf(err, errlen, "bugs.resend: one run per client");
        return WEFT_ESTATE;
    }
    if (!a->has_num || a->num < 1 || a->num > RESEND_MAX || !a->str ||
        strlen(a->str) >= sizeof st->endpoint) {
        snprintf(err, errlen, "bugs.resend: expected HOST:PORT and a count of messages (1 to %d)",
                 RESEND_MAX);
        return WEFT_EINVAL;
    }
    weft_deferred *d = weft_deferred_new();
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return WEFT_ENOMEM;
    }
    snprintf(st->endpoint, sizeof st->endpoint, "%s", a->str);
    st->count = (long)a->num;
    st->next = 1;
    st->d = d;
    st->started = true;
    tick(st); /* the first message now, the rest on the timer */
    *out = d;
    return WEFT_OK;
}

const weft__bug weft__bug_resend = {
    .protocol = "bug-resend",
    .action = "bugs.resend",
    .summary = "a message lost on reconnect",
    .make = resend_make,
    .destroy = plain_destroy,
    .start = resend_start,
};
