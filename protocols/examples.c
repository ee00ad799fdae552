/* examples.c: the small protocols of the tutorials, as factories built from
 * an argument string, plus the name table the scenario registry reads.
 *
 * Every example factory is one weft__pfactory (proto_internal.h): the common
 * weft_factory first, then the counters every example keeps and the settings
 * of all the examples (a handful of bytes each; one struct keeps the free
 * function and the stats accessor trivial). A factory is recognised as ours
 * by its build_protocol function, never by reading past a foreign struct.
 *
 * Protocols are allocated per connection by build_protocol and freed by
 * their destroy op. The chat server keeps its connected clients in an array
 * in connection order, so a relay visits them in a defined order.
 */
#include <stdio.h>
#include <string.h>

#include "protocols/proto_internal.h"

/* ------------------------------------------------------------ Arguments */

int weft__parse_args(const char *text, char *buf, weft__kv *out, int max)
{
    int n = 0;
    const char *r = text;
    char *w = buf;
    for (;;) {
        bool comma = false;
        while (*r == ',' || *r == ' ' || *r == '\t') {
            comma = comma || *r == ',';
            r++;
        }
        if (!*r)
            break;
        size_t len = 0;
        while (r[len] && r[len] != ',' && r[len] != ' ' && r[len] != '\t')
            len++;
        const char *eq = memchr(r, '=', len);
        if (!eq) {
            /* A word without '=' continues the previous value after a space:
             * "greeting=Hello Twisted". */
            if (n == 0 || comma)
                return -1;
            w[-1] = ' ';
            memcpy(w, r, len);
            w[len] = 0;
            w += len + 1;
            r += len;
            continue;
        }
        if (eq == r || n >= max)
            return -1;
        memcpy(w, r, len);
        w[len] = 0;
        out[n].key = w;
        w[eq - r] = 0;
        out[n].value = w + (eq - r) + 1;
        n++;
        w += len + 1;
        r += len;
    }
    return n;
}

bool weft__parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* Apply "key=value" settings. Returns false on an unknown key or bad value. */
static bool apply_args(weft__pfactory *f, const char *args, const char *const *allowed)
{
    if (!args || !*args)
        return true;
    char *copy = weft_malloc(strlen(args) + 1);
    if (!copy)
        return false;
    weft__kv kv[16];
    int n = weft__parse_args(args, copy, kv, 16);
    bool ok = n >= 0;
    for (int i = 0; ok && i < n; i++) {
        const char *k = kv[i].key, *v = kv[i].value;
        bool known = false;
        for (size_t j = 0; allowed[j]; j++)
            known = known || strcmp(allowed[j], k) == 0;
        uint64_t u = 0;
        if (!known)
            ok = false;
        else if (strcmp(k, "greeting") == 0)
            ok = copy_text(f->greeting, sizeof f->greeting, v);
        else if (strcmp(k, "text") == 0)
            ok = copy_text(f->text, sizeof f->text, v) && strchr(v, '\r') == NULL;
        else if (strcmp(k, "helo") == 0)
            ok = copy_text(f->helo, sizeof f->helo, v);
        else if (strcmp(k, "host") == 0)
            ok = copy_text(f->host, sizeof f->host, v);
        else if (strcmp(k, "reject") == 0)
            ok = copy_text(f->reject, sizeof f->reject, v);
        else if (!weft__parse_u64(v, &u))
            ok = false;
        else if (strcmp(k, "max_line") == 0)
            ok = u >= 1 && u <= (1u << 24) && (f->line_max = (size_t)u, true);
        else if (strcmp(k, "count") == 0)
            f->count = u;
        else if (strcmp(k, "expect") == 0)
            f->expect = u;
        else if (strcmp(k, "interval") == 0)
            ok = u >= 1 && u <= UINT64_C(86400000) &&
                 (f->interval_ns = (int64_t)u * WEFT_NS_PER_MS, true);
        else if (strcmp(k, "timeout") == 0)
            ok = u <= UINT64_C(86400000) && (f->timeout_ns = (int64_t)u * WEFT_NS_PER_MS, true);
        else if (strcmp(k, "silent") == 0)
            ok = u <= 1 && (f->silent = u == 1, true);
        else if (strcmp(k, "quit") == 0)
            ok = u <= 1 && (f->quit = u == 1, true);
        else
            ok = false;
    }
    weft_free(copy);
    return ok;
}

/* -------------------------------------------------------------- Factory */

weft__pfactory *weft__pfactory_new(const char *name,
                                   weft_protocol *(*build)(weft_factory *f, const weft_address *peer))
{
    weft__pfactory *f = weft_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->base.build_protocol = build;
    f->name = name;
    copy_text(f->greeting, sizeof f->greeting, "Hello Twisted");
    f->line_max = WEFT_LINE_MAX_DEFAULT;
    copy_text(f->text, sizeof f->text, "hi");
    f->count = 1;
    f->interval_ns = WEFT_NS_PER_S;
    copy_text(f->helo, sizeof f->helo, "weft");
    copy_text(f->host, sizeof f->host, "mail.example");
    f->quit = true;
    f->next_id = 1;
    return f;
}

void weft__stats_made(weft__pfactory *f)
{
    f->stats.connections++;
}

void weft__stats_lost(weft__pfactory *f, const weft_failure *reason)
{
    f->stats.closed++;
    const char *type = reason && reason->type ? reason->type : "";
    if (strcmp(type, WEFT_REASON_DONE) == 0)
        f->stats.clean_closes++;
    snprintf(f->stats.last_reason, sizeof f->stats.last_reason, "%s", type);
}

static int write_counted(weft__pfactory *f, weft_protocol *p, const void *data, size_t len)
{
    if (!p->transport)
        return WEFT_ENOTCONN;
    int err = weft_transport_write(p->transport, data, len);
    if (!err)
        f->stats.bytes_out += len;
    return err;
}

static int send_line_counted(weft__pfactory *f, weft_line_receiver *lr, const char *line)
{
    int err = weft_line_receiver_send_line(lr, line, strlen(line));
    if (!err) {
        f->stats.lines_out++;
        f->stats.bytes_out += strlen(line) + lr->delimiter_len;
    }
    return err;
}

/* ---------------------------------------------------------------- hello */

typedef weft__exproto hello_proto;

static void hello_made(weft_protocol *p)
{
    weft__pfactory *f = weft__pf(p);
    weft__stats_made(f);
    (void)write_counted(f, p, f->greeting, strlen(f->greeting));
    (void)weft_transport_lose_connection(p->transport);
}

static void hello_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    (weft__pf(p))->stats.bytes_in += len;
}

static void simple_lost(weft_protocol *p, const weft_failure *reason)
{
    weft__stats_lost(weft__pf(p), reason);
}

static void simple_destroy(weft_protocol *p)
{
    weft_free(p);
}

static const weft_protocol_ops hello_ops = {
    .connection_made = hello_made,
    .data_received = hello_data,
    .connection_lost = simple_lost,
    .destroy = simple_destroy,
};

static weft_protocol *hello_build(weft_factory *f, const weft_address *peer)
{
    hello_proto *h = weft_calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->lr.base.ops = &hello_ops;
    h->pf = (weft__pfactory *)f;
    return &h->lr.base;
}

/* ----------------------------------------------------------------- echo */

static void echo_made(weft_protocol *p)
{
    weft__stats_made(weft__pf(p));
}

static void echo_data(weft_protocol *p, const uint8_t *data, size_t len)
{
    weft__pfactory *f = weft__pf(p);
    f->stats.bytes_in += len;
    (void)write_counted(f, p, data, len);
}

static const weft_protocol_ops echo_ops = {
    .connection_made = echo_made,
    .data_received = echo_data,
    .connection_lost = simple_lost,
    .destroy = simple_destroy,
};

static weft_protocol *echo_build(weft_factory *f, const weft_address *peer)
{
    weft__exproto *e = weft_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->lr.base.ops = &echo_ops;
    e->pf = (weft__pfactory *)f;
    return &e->lr.base;
}

/* ----------------------------------------------------------------- chat */

struct weft__chat_conn {
    weft_line_receiver lr;
    weft__pfactory *pf;
    uint64_t id;
    bool listed;
};

static weft__pfactory *lr_factory(weft_line_receiver *lr)
{
    return weft__pf(&lr->base);
}

static void chat_unlist(weft__chat_conn *c)
{
    weft__pfactory *f = lr_factory(&c->lr);
    if (!c->listed)
        return;
    for (size_t i = 0; i < f->nclients; i++) {
        if (f->clients[i] == c) {
            memmove(f->clients + i, f->clients + i + 1, (f->nclients - i - 1) * sizeof *f->clients);
            f->nclients--;
            break;
        }
    }
    c->listed = false;
}

static void chat_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    weft__chat_conn *c = (weft__chat_conn *)lr;
    weft__pfactory *f = lr_factory(lr);
    f->stats.lines_in++;
    f->stats.bytes_in += len + lr->delimiter_len;
    if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
        send_line_counted(f, lr, "BYE");
        chat_unlist(c);
        weft_line_receiver_lose_connection(lr, NULL);
        return;
    }
    char head[32];
    int hl = snprintf(head, sizeof head, "%llu: ", (unsigned long long)c->id);
    f->stats.messages++;
    for (size_t i = 0; i < f->nclients; i++) {
        weft__chat_conn *o = f->clients[i];
        if (o == c || !o->lr.base.transport)
            continue;
        weft_iovec iov[3] = {{head, (size_t)hl}, {line, len}, {o->lr.delimiter, o->lr.delimiter_len}};
        if (weft_transport_writev(o->lr.base.transport, iov, 3) == WEFT_OK) {
            f->stats.lines_out++;
            f->stats.bytes_out += (size_t)hl + len + o->lr.delimiter_len;
        }
    }
}

static void line_exceeded(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    lr_factory(lr)->stats.errors++;
    weft_line_receiver_lose_connection(lr, WEFT_REASON_LINE_TOO_LONG);
}

static const weft_line_hooks chat_hooks = {chat_line, NULL, line_exceeded};

static void chat_made(weft_protocol *p)
{
    weft__chat_conn *c = (weft__chat_conn *)p;
    weft__pfactory *f = weft__pf(p);
    weft__stats_made(f);
    c->id = f->next_id++;
    if (f->nclients == f->clients_cap) {
        size_t ncap = f->clients_cap ? f->clients_cap * 2 : 8;
        weft__chat_conn **nc = weft_realloc(f->clients, ncap * sizeof *nc);
        if (nc) {
            f->clients = nc;
            f->clients_cap = ncap;
        }
    }
    if (f->nclients < f->clients_cap) {
        f->clients[f->nclients++] = c;
        c->listed = true;
    }
    char hello[48];
    snprintf(hello, sizeof hello, "WELCOME %llu", (unsigned long long)c->id);
    send_line_counted(f, &c->lr, hello);
}

static void chat_lost(weft_protocol *p, const weft_failure *reason)
{
    chat_unlist((weft__chat_conn *)p);
    weft__stats_lost(weft__pf(p), reason);
}

static void line_destroy(weft_protocol *p)
{
    weft_line_receiver_cleanup((weft_line_receiver *)p);
    weft_free(p);
}

static const weft_protocol_ops chat_ops = {
    .connection_made = chat_made,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = chat_lost,
    .destroy = line_destroy,
};

static weft_protocol *chat_build(weft_factory *fb, const weft_address *peer)
{
    weft__pfactory *f = (weft__pfactory *)fb;
    weft__chat_conn *c = weft_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lr.base.ops = &chat_ops;
    c->pf = f;
    weft_line_receiver_init(&c->lr, &chat_hooks);
    weft_line_receiver_set_line_max(&c->lr, f->line_max);
    return &c->lr.base;
}

/* ---------------------------------------------------------- chat-client */

typedef struct chat_client {
    weft_line_receiver lr;
    weft__pfactory *pf;
    uint64_t received;
} chat_client;

static void chat_client_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    chat_client *c = (chat_client *)lr;
    weft__pfactory *f = lr_factory(lr);
    f->stats.lines_in++;
    f->stats.bytes_in += len + lr->delimiter_len;
    c->received++;
    if (f->expect > 0 && c->received == f->expect)
        weft_line_receiver_lose_connection(lr, NULL);
}

static const weft_line_hooks chat_client_hooks = {chat_client_line, NULL, line_exceeded};

static void chat_client_made(weft_protocol *p)
{
    chat_client *c = (chat_client *)p;
    weft__pfactory *f = weft__pf(p);
    weft__stats_made(f);
    for (uint64_t i = 1; i <= f->count; i++) {
        char line[96];
        snprintf(line, sizeof line, "%s %llu", f->text, (unsigned long long)i);
        send_line_counted(f, &c->lr, line);
    }
}

static const weft_protocol_ops chat_client_ops = {
    .connection_made = chat_client_made,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = simple_lost,
    .destroy = line_destroy,
};

static weft_protocol *chat_client_build(weft_factory *fb, const weft_address *peer)
{
    weft__pfactory *f = (weft__pfactory *)fb;
    chat_client *c = weft_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lr.base.ops = &chat_client_ops;
    c->pf = f;
    weft_line_receiver_init(&c->lr, &chat_client_hooks);
    weft_line_receiver_set_line_max(&c->lr, f->line_max);
    return &c->lr.base;
}

/* ------------------------------------------------------ heartbeat, pong */

typedef struct heartbeat {
    weft_line_receiver lr;
    weft__pfactory *pf;
    weft_call *tick;
    uint64_t sent, pongs;
} heartbeat;

static void heartbeat_tick(void *ctx)
{
    heartbeat *h = ctx;
    weft__pfactory *f = lr_factory(&h->lr);
    weft_call_release(h->tick);
    h->tick = NULL;
    if (!h->lr.base.transport || h->lr.disconnecting)
        return;
    if (f->count > 0 && h->sent >= f->count) {
        weft_line_receiver_lose_connection(&h->lr, NULL);
        return;
    }
    if (send_line_counted(f, &h->lr, "PING") == WEFT_OK)
        h->sent++;
    h->tick = weft_call_later(h->lr.base.reactor, f->interval_ns, heartbeat_tick, h);
}

static void heartbeat_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    heartbeat *h = (heartbeat *)lr;
    weft__pfactory *f = lr_factory(lr);
    f->stats.lines_in++;
    f->stats.bytes_in += len + lr->delimiter_len;
    if (len == 4 && memcmp(line, "PONG", 4) == 0) {
        h->pongs++;
        f->stats.messages++;
    }
}

static const weft_line_hooks heartbeat_hooks = {heartbeat_line, NULL, line_exceeded};

static void heartbeat_made(weft_protocol *p)
{
    heartbeat *h = (heartbeat *)p;
    weft__pfactory *f = weft__pf(p);
    weft__stats_made(f);
    if (p->reactor)
        h->tick = weft_call_later(p->reactor, f->interval_ns, heartbeat_tick, h);
}

static void heartbeat_lost(weft_protocol *p, const weft_failure *reason)
{
    heartbeat *h = (heartbeat *)p;
    if (h->tick) {
        if (weft_call_active(h->tick))
            (void)weft_call_cancel(h->tick);
        weft_call_release(h->tick);
        h->tick = NULL;
    }
    weft__stats_lost(weft__pf(p), reason);
}

static void heartbeat_destroy(weft_protocol *p)
{
    heartbeat *h = (heartbeat *)p;
    if (h->tick) { /* connection_lost never came (should not happen) */
        if (weft_call_active(h->tick))
            (void)weft_call_cancel(h->tick);
        weft_call_release(h->tick);
    }
    line_destroy(p);
}

static const weft_protocol_ops heartbeat_ops = {
    .connection_made = heartbeat_made,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = heartbeat_lost,
    .destroy = heartbeat_destroy,
};

static weft_protocol *heartbeat_build(weft_factory *f, const weft_address *peer)
{
    heartbeat *h = weft_calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->lr.base.ops = &heartbeat_ops;
    h->pf = (weft__pfactory *)f;
    weft_line_receiver_init(&h->lr, &heartbeat_hooks);
    return &h->lr.base;
}

static void pong_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    weft__pfactory *f = lr_factory(lr);
    f->stats.lines_in++;
    f->stats.bytes_in += len + lr->delimiter_len;
    if (len == 4 && memcmp(line, "PING", 4) == 0) {
        f->stats.messages++;
        send_line_counted(f, lr, "PONG");
    }
}

static const weft_line_hooks pong_hooks = {pong_line, NULL, line_exceeded};

static void line_made(weft_protocol *p)
{
    weft__stats_made(weft__pf(p));
}

static const weft_protocol_ops pong_ops = {
    .connection_made = line_made,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = simple_lost,
    .destroy = line_destroy,
};

static weft_protocol *pong_build(weft_factory *f, const weft_address *peer)
{
    weft__exproto *e = weft_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->lr.base.ops = &pong_ops;
    e->pf = (weft__pfactory *)f;
    weft_line_receiver_init(&e->lr, &pong_hooks);
    return &e->lr.base;
}

/* -------------------------------------------------------- Constructors */

static weft_factory *make(const char *name,
                          weft_protocol *(*build)(weft_factory *f, const weft_address *peer),
                          const char *args, const char *const *allowed)
{
    weft__pfactory *f = weft__pfactory_new(name, build);
    if (!f)
        return NULL;
    if (!apply_args(f, args, allowed)) {
        weft_free(f);
        return NULL;
    }
    return &f->base;
}

static const char *const no_args[] = {NULL};

weft_factory *weft_proto_hello_factory(const char *args)
{
    static const char *const allowed[] = {"greeting", NULL};
    return make(WEFT_PROTO_HELLO, hello_build, args, allowed);
}

weft_factory *weft_proto_echo_factory(const char *args)
{
    return make(WEFT_PROTO_ECHO, echo_build, args, no_args);
}

weft_factory *weft_proto_chat_factory(const char *args)
{
    static const char *const allowed[] = {"max_line", NULL};
    return make(WEFT_PROTO_CHAT, chat_build, args, allowed);
}

weft_factory *weft_proto_chat_client_factory(const char *args)
{
    static const char *const allowed[] = {"text", "count", "expect", "max_line", NULL};
    weft_factory *f = make(WEFT_PROTO_CHAT_CLIENT, chat_client_build, args, allowed);
    return f;
}

weft_factory *weft_proto_smtp_server_factory(const char *args)
{
    static const char *const allowed[] = {"host", "reject", "silent", NULL};
    return make(WEFT_PROTO_SMTP_SERVER, weft__smtp_server_build, args, allowed);
}

weft_factory *weft_proto_smtp_client_factory(const char *args)
{
    static const char *const allowed[] = {"helo", "timeout", "quit", NULL};
    return make(WEFT_PROTO_SMTP_CLIENT, weft__smtp_client_build, args, allowed);
}

weft_factory *weft_proto_heartbeat_factory(const char *args)
{
    static const char *const allowed[] = {"interval", "count", NULL};
    weft__pfactory *f = weft__pfactory_new(WEFT_PROTO_HEARTBEAT, heartbeat_build);
    if (!f)
        return NULL;
    f->count = 0; /* forever unless told */
    if (!apply_args(f, args, allowed)) {
        weft_free(f);
        return NULL;
    }
    return &f->base;
}

weft_factory *weft_proto_pong_factory(const char *args)
{
    return make(WEFT_PROTO_PONG, pong_build, args, no_args);
}

static bool ours(const weft_factory *f)
{
    if (!f)
        return false;
    weft_protocol *(*b)(weft_factory *, const weft_address *) = f->build_protocol;
    return b == hello_build || b == echo_build || b == chat_build || b == chat_client_build ||
           b == heartbeat_build || b == pong_build || b == weft__smtp_server_build ||
           b == weft__smtp_client_build;
}

const weft_proto_stats *weft_proto_factory_stats(const weft_factory *f)
{
    return ours(f) ? &((const weft__pfactory *)f)->stats : NULL;
}

const char *weft_proto_factory_name(const weft_factory *f)
{
    return ours(f) ? ((const weft__pfactory *)f)->name : NULL;
}

void weft_proto_factory_free(weft_factory *fb)
{
    if (!ours(fb))
        return;
    weft__pfactory *f = (weft__pfactory *)fb;
    weft__smtp_message_clear(&f->last);
    weft_free(f->clients);
    weft_free(f);
}

const weft_smtp_message *weft_smtp_server_last(const weft_factory *fb)
{
    if (!ours(fb) || fb->build_protocol != weft__smtp_server_build)
        return NULL;
    const weft__pfactory *f = (const weft__pfactory *)fb;
    return f->last.from ? &f->last : NULL;
}

/* ---------------------------------------------------------------- Table */

static const weft_proto_entry builtins[] = {
    {WEFT_PROTO_HELLO, "writes a greeting (\"Hello Twisted\") and closes", weft_proto_hello_factory,
     false},
    {WEFT_PROTO_ECHO, "writes back what it receives", weft_proto_echo_factory, false},
    {WEFT_PROTO_CHAT, "line chat server: relays each line to the other clients",
     weft_proto_chat_factory, false},
    {WEFT_PROTO_CHAT_CLIENT, "sends lines, counts the lines it receives",
     weft_proto_chat_client_factory, true},
    {WEFT_PROTO_SMTP_SERVER, "minimal SMTP server", weft_proto_smtp_server_factory, false},
    {WEFT_PROTO_SMTP_CLIENT, "SMTP client: send() returns a Deferred", weft_proto_smtp_client_factory,
     true},
    {WEFT_PROTO_HEARTBEAT, "writes PING every interval, counts PONG", weft_proto_heartbeat_factory,
     true},
    {WEFT_PROTO_PONG, "answers PING with PONG", weft_proto_pong_factory, false},
};

const weft_proto_entry *weft_proto_builtins(size_t *count)
{
    if (count)
        *count = sizeof builtins / sizeof builtins[0];
    return builtins;
}

const weft_proto_entry *weft_proto_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}
