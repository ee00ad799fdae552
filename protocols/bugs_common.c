/* bugs_common.c: the line connection the planted-bug protocols share
 * (protocols/bugs.h), and their argument parsing.
 *
 * A connection buffers at most WEFT__BUG_LINE_MAX bytes of a partial line; a
 * longer line drops the connection. Each complete line is handed to the
 * owner's ops as a NUL-terminated copy; the ops may write or close but the
 * protocol is only freed by destroy, after connection_lost, so the loop that
 * splits a chunk never runs on freed memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/bugs.h"

static void conn_made(weft_protocol *p)
{
    weft__bug_conn *c = (weft__bug_conn *)p;
    if (c->ops->made)
        c->ops->made(c);
}

static void conn_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    weft__bug_conn *c = (weft__bug_conn *)p;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (c->len == WEFT__BUG_LINE_MAX) {
                c->len = 0;
                weft__bug_close(c);
                return;
            }
            c->buf[c->len++] = (char)data[i];
            continue;
        }
        size_t n = c->len;
        if (n && c->buf[n - 1] == '\r')
            n--;
        c->buf[n] = '\0';
        c->len = 0;
        if (c->ops->line)
            c->ops->line(c, c->buf, n);
        if (c->base.transport == NULL)
            return; /* lost while handling the line */
    }
}

static void conn_lost(weft_protocol *p, const weft_failure *reason)
{
    weft__bug_conn *c = (weft__bug_conn *)p;
    if (c->ops->lost)
        c->ops->lost(c, reason);
}

static void conn_read_lost(weft_protocol *p)
{
    weft__bug_conn *c = (weft__bug_conn *)p;
    c->ops->read_lost(c);
}

static void conn_destroy(weft_protocol *p)
{
    weft__bug_conn *c = (weft__bug_conn *)p;
    if (c->ops->destroy)
        c->ops->destroy(c);
    weft_free(p);
}

static const weft_protocol_ops conn_ops = {
    .connection_made = conn_made,
    .data_received = conn_data,
    .connection_lost = conn_lost,
    .destroy = conn_destroy,
};

/* Half-close awareness is the presence of read_connection_lost. */
static const weft_protocol_ops conn_ops_halfclose = {
    .connection_made = conn_made,
    .data_received = conn_data,
    .connection_lost = conn_lost,
    .read_connection_lost = conn_read_lost,
    .destroy = conn_destroy,
};

static weft_protocol *factory_build(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    weft__bug_factory *bf = f->ctx;
    weft__bug_conn *c = weft_calloc(1, bf->conn_size);
    if (!c)
        return NULL;
    c->base.ops = bf->ops->read_lost ? &conn_ops_halfclose : &conn_ops;
    c->ops = bf->ops;
    c->owner = bf->owner;
    c->tag = bf->tag;
    return &c->base;
}

void weft__bug_factory_init(weft__bug_factory *f, const weft__bug_conn_ops *ops, void *owner,
                            int tag, size_t conn_size)
{
    memset(f, 0, sizeof *f);
    f->base.build_protocol = factory_build;
    f->base.ctx = f;
    f->ops = ops;
    f->owner = owner;
    f->tag = tag;
    f->conn_size = conn_size < sizeof(weft__bug_conn) ? sizeof(weft__bug_conn) : conn_size;
}

void *weft__bug_owner(weft_protocol *p, const weft__bug_conn_ops *ops)
{
    if (!p || (p->ops != &conn_ops && p->ops != &conn_ops_halfclose))
        return NULL;
    weft__bug_conn *c = (weft__bug_conn *)p;
    return c->ops == ops ? c->owner : NULL;
}

int weft__bug_send(weft__bug_conn *c, const char *line)
{
    if (!c || !c->base.transport)
        return WEFT_ENOTCONN;
    weft_iovec v[2] = {{line, strlen(line)}, {"\n", 1}};
    return weft_transport_writev(c->base.transport, v, 2);
}

void weft__bug_close(weft__bug_conn *c)
{
    if (c && c->base.transport)
        (void)weft_transport_lose_connection(c->base.transport);
}

void weft__bug_violation(const char *msg)
{
    weft_deferred_unref(weft_fail(weft_failure_new(WEFT__BUG_FAILURE, "%s", msg)));
}

static weft_result consume(weft_result in, void *ctx)
{
    (void)in;
    (void)ctx;
    return weft_value(NULL);
}

int weft__bug_connect(weft_reactor *r, const char *endpoint, weft_factory *f)
{
    char desc[WEFT_HOST_MAX + 16];
    if (snprintf(desc, sizeof desc, "tcp:%s", endpoint) >= (int)sizeof desc)
        return WEFT_EENDPOINT;
    weft_deferred *d = NULL;
    int rc = weft_connect(r, desc, f, &d);
    if (rc != WEFT_OK)
        return rc;
    rc = weft_deferred_add_errback(d, consume, NULL);
    weft_deferred_unref(d); /* the connector holds its own until it fires */
    return rc;
}

/* The word w (length n) at the start of a word in args. */
static const char *find_word(const char *args, const char *w, size_t n)
{
    for (const char *p = args; p && *p;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= n && strncmp(p, w, n) == 0)
            return p;
        p = end;
    }
    return NULL;
}

bool weft__bug_fixed(const char *args)
{
    const char *p = find_word(args ? args : "", "fixed", 5);
    return p && (p[5] == '\0' || p[5] == ' ');
}

int weft__bug_arg_long(const char *args, const char *key, long *out)
{
    size_t n = strlen(key);
    const char *p = find_word(args ? args : "", key, n);
    while (p && p[n] != '=')
        p = find_word(p + n, key, n);
    if (!p)
        return WEFT_OK;
    char *end;
    long v = strtol(p + n + 1, &end, 10);
    if (end == p + n + 1 || (*end != '\0' && *end != ' '))
        return WEFT_EINVAL;
    *out = v;
    return WEFT_OK;
}
