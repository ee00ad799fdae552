/* kv.c: the key-value server and its pipelining client (kv.h).
 *
 * Both sides are weft line receivers with "\n" as the delimiter (a "\r"
 * before it is dropped), so a person typing into a socket works as well as a
 * program; both write "\r\n".
 *
 * Server. The store is an array of (key, value) kept sorted by key, searched
 * by bisection: no hashing, no pointer order, the same behaviour on every run.
 * Without a delay a request is answered inside the line callback. With one,
 * each connection keeps a FIFO of request lines; the head waits on a delayed
 * call and, once answered, the next one starts its delay, so replies leave in
 * request order. The planted bug (unordered) gives every request its own timer
 * at arrival: two timers due together are concurrent events, and which runs
 * first is the simulator's choice. When the connection is lost every pending
 * timer is cancelled, so no reply is ever written after the close.
 *
 * Client. Each request is written at once and appended to a FIFO with its
 * Deferred; each reply line settles the oldest entry. A Deferred is always
 * unlinked before it fires, so a callback may send more requests (they are
 * appended) or close the connection (the loss arrives later, from the
 * reactor). A lost connection fails every waiting request with a copy of the
 * reason. Limits: KV_PENDING_MAX waiting requests per connection on either
 * side, KV_LINE_MAX bytes per line, KV_KEYS_MAX keys per store.
 */
#include "kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_REPLY_MAX (KV_VALUE_MAX + 16u)

/* ================================================================ Common */

static bool key_ok(const char *s, size_t len)
{
    if (len == 0 || len > KV_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

static bool value_ok(const char *s, size_t len)
{
    if (len > KV_VALUE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

static char *dup_bytes(const char *s, size_t len)
{
    char *p = weft_malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* A line without its "\r", and whether it starts with word (then *rest is
 * what follows the word and one space). */
static bool starts_with(const char *line, size_t len, const char *word, const char **rest,
                        size_t *rest_len)
{
    size_t n = strlen(word);
    if (len < n || memcmp(line, word, n) != 0)
        return false;
    if (len == n) {
        *rest = line + n;
        *rest_len = 0;
        return true;
    }
    if (line[n] != ' ')
        return false;
    *rest = line + n + 1;
    *rest_len = len - n - 1;
    return true;
}

static size_t strip_cr(const uint8_t *line, size_t len)
{
    return len > 0 && line[len - 1] == '\r' ? len - 1 : len;
}

/* ================================================================ Server */

typedef struct kv_entry {
    char *key;
    char *value;
} kv_entry;

typedef struct kv_server {
    weft_factory base; /* first: what listen() is given */
    kv_server_options opt;
    kv_entry *entries; /* sorted by key (strcmp) */
    size_t count, cap;
    uint64_t requests;
} kv_server;

typedef struct kv_conn kv_conn;

typedef struct kv_request {
    struct kv_request *next;
    kv_conn *conn;
    weft_call *call; /* its delay, while pending (ours) */
    size_t len;
    char line[]; /* NUL-terminated */
} kv_request;

struct kv_conn {
    weft_line_receiver lr; /* first: the reactor sees a protocol */
    kv_server *srv;
    kv_request *head, *tail;
    size_t queued;
    bool closing; /* QUIT answered or a limit hit: no more replies */
};

/* Bisection: the index of key, or where it would go (*found false). */
static size_t store_find(const kv_server *s, const char *key, bool *found)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(s->entries[mid].key, key);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* NULL on success, else the ERR reason. */
static const char *store_set(kv_server *s, const char *key, const char *value, size_t value_len)
{
    bool found;
    size_t i = store_find(s, key, &found);
    char *v = dup_bytes(value, value_len);
    if (v == NULL)
        return "out of memory";
    if (found) {
        weft_free(s->entries[i].value);
        s->entries[i].value = v;
        return NULL;
    }
    if (s->count == KV_KEYS_MAX) {
        weft_free(v);
        return "store full";
    }
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        kv_entry *ne = weft_realloc(s->entries, cap * sizeof *ne);
        if (ne == NULL) {
            weft_free(v);
            return "out of memory";
        }
        s->entries = ne;
        s->cap = cap;
    }
    char *k = weft_strdup(key);
    if (k == NULL) {
        weft_free(v);
        return "out of memory";
    }
    memmove(&s->entries[i + 1], &s->entries[i], (s->count - i) * sizeof *s->entries);
    s->entries[i].key = k;
    s->entries[i].value = v;
    s->count++;
    return NULL;
}

static bool store_del(kv_server *s, const char *key)
{
    bool found;
    size_t i = store_find(s, key, &found);
    if (!found)
        return false;
    weft_free(s->entries[i].key);
    weft_free(s->entries[i].value);
    memmove(&s->entries[i], &s->entries[i + 1], (s->count - i - 1) * sizeof *s->entries);
    s->count--;
    return true;
}

static void reply(kv_conn *c, const char *fmt_word, const char *text)
{
    if (c->closing || c->lr.base.transport == NULL)
        return;
    char buf[KV_REPLY_MAX];
    int n = text ? snprintf(buf, sizeof buf, "%s %s\r\n", fmt_word, text)
                 : snprintf(buf, sizeof buf, "%s\r\n", fmt_word);
    if (n < 0 || (size_t)n >= sizeof buf)
        n = snprintf(buf, sizeof buf, "ERR reply too long\r\n");
    int rc = weft_transport_write(c->lr.base.transport, buf, (size_t)n);
    if (rc == WEFT_ENOBUFS) {
        /* The peer does not read its replies: give up on it. */
        c->closing = true;
        weft_line_receiver_lose_connection(&c->lr, WEFT_PROTO_REASON_BUFFER_FULL);
    }
}

static void drop_requests(kv_conn *c)
{
    while (c->head != NULL) {
        kv_request *r = c->head;
        c->head = r->next;
        if (r->call != NULL) {
            if (weft_call_active(r->call))
                weft_call_cancel(r->call);
            weft_call_release(r->call);
        }
        weft_free(r);
    }
    c->tail = NULL;
    c->queued = 0;
}

/* Stop answering and close (QUIT, or a limit). Requests still queued are
 * dropped: the client sees the connection close instead of their replies. */
static void close_conn(kv_conn *c, const char *reason)
{
    c->closing = true;
    drop_requests(c);
    weft_line_receiver_lose_connection(&c->lr, reason);
}

/* Answer one request line (without its delimiter). */
static void answer(kv_conn *c, const char *line, size_t len)
{
    kv_server *s = c->srv;
    const char *rest;
    size_t rest_len;
    char key[KV_KEY_MAX + 1];
    if (c->closing)
        return;
    s->requests++;
    if (len == 0) {
        reply(c, "ERR", "empty line");
    } else if (starts_with(line, len, "GET", &rest, &rest_len) ||
               starts_with(line, len, "DEL", &rest, &rest_len)) {
        bool get = line[0] == 'G';
        if (!key_ok(rest, rest_len)) {
            reply(c, "ERR", get ? "usage: GET KEY" : "usage: DEL KEY");
            return;
        }
        memcpy(key, rest, rest_len);
        key[rest_len] = '\0';
        bool found;
        size_t i = store_find(s, key, &found);
        if (!found)
            reply(c, "NOTFOUND", NULL);
        else if (get)
            reply(c, "VALUE", s->entries[i].value);
        else {
            store_del(s, key);
            reply(c, "OK", NULL);
        }
    } else if (starts_with(line, len, "SET", &rest, &rest_len)) {
        const char *sp = memchr(rest, ' ', rest_len);
        size_t key_len = sp ? (size_t)(sp - rest) : rest_len;
        if (sp == NULL || !key_ok(rest, key_len)) {
            reply(c, "ERR", "usage: SET KEY VALUE");
            return;
        }
        const char *value = sp + 1;
        size_t value_len = rest_len - key_len - 1;
        if (!value_ok(value, value_len)) {
            reply(c, "ERR", value_len > KV_VALUE_MAX ? "value too long" : "bad value");
            return;
        }
        memcpy(key, rest, key_len);
        key[key_len] = '\0';
        const char *why = store_set(s, key, value, value_len);
        reply(c, why ? "ERR" : "OK", why);
    } else if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
        reply(c, "BYE", NULL);
        close_conn(c, NULL);
    } else {
        reply(c, "ERR", "unknown command");
    }
}

static void request_due(void *ctx);

static bool schedule(kv_request *r)
{
    r->call = weft_call_later(r->conn->lr.base.reactor, r->conn->srv->opt.delay_ns, request_due, r);
    return r->call != NULL;
}

static void request_due(void *ctx)
{
    kv_request *r = ctx;
    kv_conn *c = r->conn;
    /* Unlink r wherever it is (only the head, unless unordered). */
    kv_request **pp = &c->head;
    kv_request *prev = NULL;
    while (*pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = r->next;
    if (c->tail == r)
        c->tail = prev;
    c->queued--;
    weft_call_release(r->call);
    answer(c, r->line, r->len);
    weft_free(r);
    if (!c->closing && !c->srv->opt.unordered && c->head != NULL && c->head->call == NULL &&
        !schedule(c->head))
        close_conn(c, WEFT_PROTO_REASON_NO_MEMORY);
}

static void server_line(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    kv_conn *c = (kv_conn *)lr;
    len = strip_cr(data, len);
    if (c->srv->opt.delay_ns == 0) {
        answer(c, (const char *)data, len);
        return;
    }
    if (c->closing)
        return;
    if (c->queued >= KV_PENDING_MAX) {
        close_conn(c, KV_REASON_OVERLOAD);
        return;
    }
    kv_request *r = weft_malloc(sizeof *r + len + 1);
    if (r == NULL) {
        close_conn(c, WEFT_PROTO_REASON_NO_MEMORY);
        return;
    }
    r->next = NULL;
    r->conn = c;
    r->call = NULL;
    r->len = len;
    memcpy(r->line, data, len);
    r->line[len] = '\0';
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->queued++;
    if ((c->srv->opt.unordered || c->head == r) && !schedule(r))
        close_conn(c, WEFT_PROTO_REASON_NO_MEMORY);
}

static void server_line_too_long(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
    kv_conn *c = (kv_conn *)lr;
    drop_requests(c);
    reply(c, "ERR", "line too long");
    close_conn(c, WEFT_REASON_LINE_TOO_LONG);
}

static const weft_line_hooks server_hooks = {
    .line_received = server_line,
    .line_length_exceeded = server_line_too_long,
};

static void server_lost(weft_protocol *p, const weft_failure *reason)
{
    (void)reason;
    kv_conn *c = (kv_conn *)p;
    c->closing = true;
    drop_requests(c);
}

static void server_destroy(weft_protocol *p)
{
    kv_conn *c = (kv_conn *)p;
    drop_requests(c);
    weft_line_receiver_cleanup(&c->lr);
    weft_free(c);
}

/* Required by the reactor interface even when there is nothing to do. */
static void nothing_to_greet(weft_protocol *p)
{
    (void)p;
}

static const weft_protocol_ops server_ops = {
    .connection_made = nothing_to_greet,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = server_lost,
    .destroy = server_destroy,
};

static weft_protocol *server_build(weft_factory *f, const weft_address *peer)
{
    (void)peer;
    kv_conn *c = weft_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (weft_line_receiver_init(&c->lr, &server_hooks) != WEFT_OK ||
        weft_line_receiver_set_delimiter(&c->lr, "\n", 1) != WEFT_OK ||
        weft_line_receiver_set_line_max(&c->lr, KV_LINE_MAX + 1) != WEFT_OK) {
        weft_free(c);
        return NULL;
    }
    c->lr.base.ops = &server_ops;
    c->srv = f->ctx;
    return &c->lr.base;
}

int kv_server_parse_args(const char *args, kv_server_options *out, char *err, size_t errlen)
{
    kv_server_options o = {0, false};
    const char *p = args ? args : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        size_t n = strcspn(p, " ,");
        char item[64];
        if (n >= sizeof item) {
            snprintf(err, errlen, "kv-server: argument too long: '%.20s...'", p);
            return WEFT_EINVAL;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        p += n;
        char *eq = strchr(item, '=');
        const char *val = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        bool digits = *val != '\0' && strspn(val, "0123456789") == strlen(val) && strlen(val) <= 9;
        long long num = digits ? atoll(val) : -1;
        if (strcmp(item, "delay") == 0 && digits && num <= 3600000)
            o.delay_ns = (int64_t)num * WEFT_NS_PER_MS;
        else if (strcmp(item, "unordered") == 0 && digits && num <= 1)
            o.unordered = num == 1;
        else {
            snprintf(err, errlen,
                     "kv-server: bad argument '%s%s%s' (expected delay=MS, unordered=0|1)", item,
                     eq ? "=" : "", val);
            return WEFT_EINVAL;
        }
    }
    *out = o;
    return WEFT_OK;
}

weft_factory *kv_server_factory_new(const kv_server_options *opt)
{
    if (opt != NULL && opt->delay_ns < 0)
        return NULL;
    kv_server *s = weft_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (opt != NULL)
        s->opt = *opt;
    s->base.build_protocol = server_build;
    s->base.ctx = s;
    return &s->base;
}

void kv_server_factory_free(weft_factory *f)
{
    if (f == NULL)
        return;
    kv_server *s = f->ctx;
    for (size_t i = 0; i < s->count; i++) {
        weft_free(s->entries[i].key);
        weft_free(s->entries[i].value);
    }
    weft_free(s->entries);
    weft_free(s);
}

const char *kv_server_lookup(const weft_factory *f, const char *key)
{
    const kv_server *s = f->ctx;
    bool found;
    size_t i = store_find(s, key, &found);
    return found ? s->entries[i].value : NULL;
}

size_t kv_server_keys(const weft_factory *f)
{
    return ((const kv_server *)f->ctx)->count;
}

uint64_t kv_server_requests(const weft_factory *f)
{
    return ((const kv_server *)f->ctx)->requests;
}

/* ================================================================ Client */

typedef enum kv_op { OP_GET, OP_SET, OP_DEL, OP_QUIT } kv_op;

typedef struct kv_pending {
    struct kv_pending *next;
    kv_op op;
    weft_deferred *d; /* our reference; NULL for QUIT */
    char key[KV_KEY_MAX + 1];
} kv_pending;

struct kv_client {
    weft_line_receiver lr; /* first */
    kv_pending *head, *tail;
    size_t pending;
    bool closing; /* QUIT sent, or we closed */
    bool lost;
    char lost_type[48];
    char lost_msg[128];
};

static const char *op_name(kv_op op)
{
    static const char *const names[] = {"GET", "SET", "DEL", "QUIT"};
    return names[op];
}

/* Settle one request (already unlinked) with r, then drop our reference. A
 * request its owner cancelled has fired already: r is then released here. */
static void settle(kv_pending *q, weft_result r)
{
    if (q->d != NULL) {
        if (weft_deferred_called(q->d)) {
            if (r.kind == WEFT_RESULT_FAILURE)
                weft_failure_free(r.failure);
            else
                weft_free(r.value);
        } else if (r.kind == WEFT_RESULT_FAILURE) {
            weft_deferred_errback(q->d, r.failure);
        } else {
            weft_deferred_callback(q->d, r.value);
        }
        weft_deferred_unref(q->d);
    } else if (r.kind == WEFT_RESULT_FAILURE) {
        weft_failure_free(r.failure);
    }
    weft_free(q);
}

static kv_pending *pop(kv_client *c)
{
    kv_pending *q = c->head;
    if (q != NULL) {
        c->head = q->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->pending--;
    }
    return q;
}

static void client_line(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    kv_client *c = (kv_client *)lr;
    const char *line = (const char *)data;
    const char *rest;
    size_t rest_len;
    len = strip_cr(data, len);
    kv_pending *q = pop(c);
    if (q == NULL) {
        /* A reply nobody asked for: the stream can no longer be trusted. */
        c->closing = true;
        weft_line_receiver_lose_connection(lr, KV_FAILURE_BAD_REPLY);
        return;
    }
    weft_result r;
    bool bad = false;
    if (q->op == OP_GET && starts_with(line, len, "VALUE", &rest, &rest_len) && len > 5) {
        char *v = dup_bytes(rest, rest_len);
        r = v ? weft_value(v)
              : weft_failed(weft_failure_new(WEFT_FAILURE_NO_MEMORY, "GET %s: the value", q->key));
    } else if ((q->op == OP_SET || q->op == OP_DEL) && len == 2 && memcmp(line, "OK", 2) == 0) {
        r = weft_value(NULL);
    } else if ((q->op == OP_GET || q->op == OP_DEL) && len == 8 && memcmp(line, "NOTFOUND", 8) == 0) {
        r = weft_failed(weft_failure_new(KV_FAILURE_NOT_FOUND, "%s", q->key));
    } else if (starts_with(line, len, "ERR", &rest, &rest_len)) {
        r = weft_failed(weft_failure_new(KV_FAILURE_ERROR, "%.*s", (int)rest_len, rest));
    } else if (q->op == OP_QUIT && len == 3 && memcmp(line, "BYE", 3) == 0) {
        r = weft_value(NULL);
        weft_line_receiver_lose_connection(lr, NULL);
    } else {
        bad = true;
        r = weft_failed(weft_failure_new(KV_FAILURE_BAD_REPLY, "reply '%.*s' to %s %s",
                                         (int)(len > 80 ? 80 : len), line, op_name(q->op), q->key));
    }
    settle(q, r);
    if (bad) {
        c->closing = true;
        weft_line_receiver_lose_connection(lr, KV_FAILURE_BAD_REPLY);
    }
}

static const weft_line_hooks client_hooks = {
    .line_received = client_line,
    /* A reply over the limit: the default drops the connection (LineTooLong),
     * which fails every waiting request. */
};

static void client_lost(weft_protocol *p, const weft_failure *reason)
{
    kv_client *c = (kv_client *)p;
    c->lost = true;
    c->closing = true;
    snprintf(c->lost_type, sizeof c->lost_type, "%s", reason ? reason->type : WEFT_REASON_DONE);
    snprintf(c->lost_msg, sizeof c->lost_msg, "%s", reason ? reason->message : "");
    kv_pending *q;
    while ((q = pop(c)) != NULL)
        settle(q, weft_failed(weft_failure_new(c->lost_type, "%s", c->lost_msg)));
}

static void client_destroy(weft_protocol *p)
{
    kv_client *c = (kv_client *)p;
    kv_pending *q;
    while ((q = pop(c)) != NULL)
        settle(q, weft_failed(weft_failure_new(WEFT_REASON_ABORTED, "client destroyed")));
    weft_line_receiver_cleanup(&c->lr);
    weft_free(c);
}

static const weft_protocol_ops client_ops = {
    .connection_made = nothing_to_greet,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = client_lost,
    .destroy = client_destroy,
};

static weft_protocol *client_build(weft_factory *f, const weft_address *peer)
{
    (void)f;
    (void)peer;
    kv_client *c = weft_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (weft_line_receiver_init(&c->lr, &client_hooks) != WEFT_OK ||
        weft_line_receiver_set_delimiter(&c->lr, "\n", 1) != WEFT_OK ||
        weft_line_receiver_set_line_max(&c->lr, KV_VALUE_MAX + 16) != WEFT_OK) {
        weft_free(c);
        return NULL;
    }
    c->lr.base.ops = &client_ops;
    return &c->lr.base;
}

weft_factory *kv_client_factory_new(void)
{
    weft_factory *f = weft_calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->build_protocol = client_build;
    return f;
}

void kv_client_factory_free(weft_factory *f)
{
    weft_free(f);
}

kv_client *kv_client_from_protocol(weft_protocol *p)
{
    return p != NULL && p->ops == &client_ops ? (kv_client *)p : NULL;
}

size_t kv_client_pending(const kv_client *c)
{
    return c->pending;
}

/* Write the request line and queue it. Returns the caller's Deferred. */
static weft_deferred *request(kv_client *c, kv_op op, const char *key, const char *value)
{
    size_t key_len = key ? strlen(key) : 0;
    size_t value_len = value ? strlen(value) : 0;
    if (op != OP_QUIT && !key_ok(key ? key : "", key_len))
        return weft_fail(weft_failure_new(KV_FAILURE_BAD_REQUEST, "%s: bad key", op_name(op)));
    if (op == OP_SET && !value_ok(value ? value : "", value_len))
        return weft_fail(weft_failure_new(KV_FAILURE_BAD_REQUEST, "SET %s: bad value", key));
    if (c->lost)
        return weft_fail(weft_failure_new(c->lost_type, "%s", c->lost_msg));
    if (c->closing || c->lr.base.transport == NULL)
        return weft_fail(weft_failure_new(WEFT_REASON_DONE, "the connection is closing"));
    if (c->pending >= KV_PENDING_MAX)
        return weft_fail(weft_failure_new(KV_FAILURE_BUSY, "%zu requests waiting", c->pending));

    kv_pending *q = weft_calloc(1, sizeof *q);
    weft_deferred *d = op == OP_QUIT ? NULL : weft_deferred_new();
    if (q == NULL || (op != OP_QUIT && d == NULL)) {
        weft_free(q);
        weft_deferred_unref(d);
        return NULL;
    }
    q->op = op;
    q->d = d;
    if (key)
        memcpy(q->key, key, key_len + 1);

    char buf[KV_LINE_MAX + 2];
    int n = op == OP_SET ? snprintf(buf, sizeof buf, "SET %s %s\r\n", key, value)
          : op == OP_QUIT ? snprintf(buf, sizeof buf, "QUIT\r\n")
                          : snprintf(buf, sizeof buf, "%s %s\r\n", op_name(op), key);
    int rc = weft_transport_write(c->lr.base.transport, buf, (size_t)n);
    if (rc != WEFT_OK) {
        weft_free(q);
        weft_deferred_unref(d);
        if (rc == WEFT_ECLOSED)
            c->closing = true;
        return weft_fail(weft_failure_new(rc == WEFT_ECLOSED ? WEFT_REASON_DONE : KV_FAILURE_BUSY,
                                          "%s: write: %s", op_name(op), weft_strerror(rc)));
    }
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->pending++;
    return d ? weft_deferred_ref(d) : NULL;
}

weft_deferred *kv_client_get(kv_client *c, const char *key)
{
    return request(c, OP_GET, key, NULL);
}

weft_deferred *kv_client_set(kv_client *c, const char *key, const char *value)
{
    return request(c, OP_SET, key, value);
}

weft_deferred *kv_client_del(kv_client *c, const char *key)
{
    return request(c, OP_DEL, key, NULL);
}

int kv_client_quit(kv_client *c)
{
    if (c->closing || c->lost)
        return WEFT_ECLOSED;
    size_t before = c->pending;
    weft_deferred *d = request(c, OP_QUIT, NULL, NULL);
    if (d != NULL) {
        /* Refused before sending (a failed Deferred): the write failed. */
        weft_result r;
        weft_deferred_take_result(d, &r);
        if (r.kind == WEFT_RESULT_FAILURE)
            weft_failure_free(r.failure);
        weft_deferred_unref(d);
        return WEFT_ECLOSED;
    }
    if (c->pending == before)
        return WEFT_ENOMEM;
    c->closing = true;
    return WEFT_OK;
}
