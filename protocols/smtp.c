/* smtp.c: a small SMTP client whose send() returns a Deferred, and a
 * minimal SMTP server for tests and scenarios.
 *
 * Client. Messages wait in a FIFO; the head is the one being sent. The
 * conversation is a state machine driven by reply lines: greeting 220, HELO
 * 250, then per message MAIL 250, RCPT 250/251, DATA 354, body and "." 250.
 * The head's Deferred fires (value NULL) on that last 250; any 4xx/5xx
 * fails it with SmtpRejected carrying the reply line, then RSET moves on to
 * the next message. Once the queue is empty the client says QUIT (unless
 * quit=0). A lost connection fails every waiting message with the reason; the
 * optional idle timeout (weft_timeout) fails them with Timeout and drops the
 * connection. Deferreds are fired with nothing of ours left on the stack that
 * a callback could invalidate: the message is unlinked first, and a callback
 * that sends again only appends to the queue or starts the next message.
 *
 * Server. Commands are matched case-insensitively; the DATA body is
 * dot-unstuffed and kept, bounded by SMTP_BODY_MAX; the last accepted message
 * is stored in the factory. silent=1 makes it never answer (timeout tests).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "protocols/proto_internal.h"

#define SMTP_BODY_MAX (1024u * 1024u)
#define SMTP_LINE_MAX 4096u

/* ================================================================ Client */

typedef struct smtp_msg {
    char *from, *to, *body;
    weft_deferred *d;
    struct smtp_msg *next;
} smtp_msg;

enum client_state {
    C_GREETING,
    C_HELO,
    C_IDLE,
    C_MAIL,
    C_RCPT,
    C_DATA,
    C_BODY,
    C_RSET,
    C_QUIT,
    C_CLOSED,
};

struct weft_smtp_client {
    weft_line_receiver lr;
    weft__pfactory *pf;
    weft_timeout timeout;
    smtp_msg *head, *tail;
    size_t queued;
    enum client_state state;
    uint64_t delivered, rejected;
};

static weft__pfactory *cfactory(weft_smtp_client *c)
{
    return c->pf;
}

static void msg_free(smtp_msg *m)
{
    weft_free(m->from);
    weft_free(m->to);
    weft_free(m->body);
    weft_free(m);
}

static smtp_msg *pop(weft_smtp_client *c)
{
    smtp_msg *m = c->head;
    if (!m)
        return NULL;
    c->head = m->next;
    if (!c->head)
        c->tail = NULL;
    c->queued--;
    return m;
}

static void send_cmd(weft_smtp_client *c, const char *fmt, const char *arg)
{
    char line[SMTP_LINE_MAX];
    int n = snprintf(line, sizeof line, fmt, arg);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (weft_line_receiver_send_line(&c->lr, line, len) == WEFT_OK) {
        cfactory(c)->stats.lines_out++;
        cfactory(c)->stats.bytes_out += len + 2;
    }
}

static void fail_msg(weft_smtp_client *c, smtp_msg *m, weft_failure *f)
{
    weft_deferred *d = m->d;
    msg_free(m);
    (void)weft_deferred_errback(d, f);
    weft_deferred_unref(d);
}

/* Fail every waiting message with copies of type/message. */
static void fail_all(weft_smtp_client *c, const char *type, const char *message)
{
    smtp_msg *m;
    while ((m = pop(c)) != NULL)
        fail_msg(c, m, weft_failure_new(type, "%s", message));
}

static void send_body(weft_smtp_client *c, const char *body)
{
    const char *p = body;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t l = len;
        if (l > 0 && p[l - 1] == '\r')
            l--;
        weft_iovec iov[3] = {{".", 1}, {p, l}, {"\r\n", 2}};
        bool stuff = l > 0 && p[0] == '.';
        if (weft_transport_writev(c->lr.base.transport, stuff ? iov : iov + 1, stuff ? 3 : 2) ==
            WEFT_OK) {
            cfactory(c)->stats.lines_out++;
            cfactory(c)->stats.bytes_out += l + 2 + (stuff ? 1 : 0);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    send_cmd(c, "%s", ".");
}

/* In C_IDLE: start the next message, or say goodbye. */
static void next(weft_smtp_client *c)
{
    if (c->state != C_IDLE)
        return;
    if (c->head) {
        c->state = C_MAIL;
        send_cmd(c, "MAIL FROM:<%s>", c->head->from);
    } else if (cfactory(c)->quit && c->delivered + c->rejected > 0) {
        c->state = C_QUIT;
        send_cmd(c, "%s", "QUIT");
    }
}

static void reject_head(weft_smtp_client *c, const char *reply)
{
    smtp_msg *m = pop(c);
    c->rejected++;
    cfactory(c)->stats.rejected++;
    c->state = C_RSET;
    send_cmd(c, "%s", "RSET");
    if (m)
        fail_msg(c, m, weft_failure_new(WEFT_FAILURE_SMTP_REJECTED, "%s", reply));
}

/* A reply the conversation cannot go on from: fail everything, quit. */
static void give_up(weft_smtp_client *c, const char *reply)
{
    c->state = C_QUIT;
    send_cmd(c, "%s", "QUIT");
    c->rejected += c->queued;
    cfactory(c)->stats.rejected += c->queued;
    fail_all(c, WEFT_FAILURE_SMTP_REJECTED, reply);
}

static void client_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    weft_smtp_client *c = (weft_smtp_client *)lr;
    weft__pfactory *f = cfactory(c);
    f->stats.lines_in++;
    f->stats.bytes_in += len + lr->delimiter_len;
    weft_timeout_reset(&c->timeout);
    char reply[SMTP_LINE_MAX];
    size_t n = len < sizeof reply - 1 ? len : sizeof reply - 1;
    memcpy(reply, line, n);
    reply[n] = 0;
    int code = -1;
    if (n >= 3 && reply[0] >= '1' && reply[0] <= '5' && reply[1] >= '0' && reply[1] <= '9' &&
        reply[2] >= '0' && reply[2] <= '9' && (n == 3 || reply[3] == ' ' || reply[3] == '-'))
        code = (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
    if (code >= 0 && n > 3 && reply[3] == '-')
        return; /* continuation of a multi-line reply */
    bool ok2 = code >= 200 && code < 300;
    switch (c->state) {
    case C_GREETING:
        if (code == 220) {
            c->state = C_HELO;
            send_cmd(c, "HELO %s", f->helo);
        } else {
            give_up(c, reply);
        }
        break;
    case C_HELO:
        if (ok2) {
            c->state = C_IDLE;
            next(c);
        } else {
            give_up(c, reply);
        }
        break;
    case C_MAIL:
        if (ok2 && c->head) {
            c->state = C_RCPT;
            send_cmd(c, "RCPT TO:<%s>", c->head->to);
        } else {
            reject_head(c, reply);
        }
        break;
    case C_RCPT:
        if (ok2) {
            c->state = C_DATA;
            send_cmd(c, "%s", "DATA");
        } else {
            reject_head(c, reply);
        }
        break;
    case C_DATA:
        if (code == 354 && c->head) {
            c->state = C_BODY;
            send_body(c, c->head->body);
        } else {
            reject_head(c, reply);
        }
        break;
    case C_BODY:
        if (code == 250) {
            smtp_msg *m = pop(c);
            c->delivered++;
            f->stats.messages++;
            c->state = C_IDLE;
            if (m) {
                weft_deferred *d = m->d;
                msg_free(m);
                (void)weft_deferred_callback(d, NULL);
                weft_deferred_unref(d);
            }
            next(c);
        } else {
            reject_head(c, reply);
        }
        break;
    case C_RSET:
        c->state = C_IDLE;
        next(c);
        break;
    case C_QUIT:
        c->state = C_CLOSED;
        weft_line_receiver_lose_connection(lr, NULL);
        break;
    case C_IDLE:
    case C_CLOSED:
    default:
        break; /* unsolicited: ignored */
    }
}

static void client_exceeded(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    weft_smtp_client *c = (weft_smtp_client *)lr;
    cfactory(c)->stats.errors++;
    c->state = C_CLOSED;
    weft_line_receiver_lose_connection(lr, WEFT_REASON_LINE_TOO_LONG);
    fail_all(c, WEFT_REASON_LINE_TOO_LONG, "reply line over the limit");
}

static const weft_line_hooks client_hooks = {client_line, NULL, client_exceeded};

static void client_timed_out(weft_timeout *t, void *ctx)
{
    weft_smtp_client *c = ctx;
    char msg[96];
    snprintf(msg, sizeof msg, "SMTP server silent for %lld ms",
             (long long)(t->timeout_ns / WEFT_NS_PER_MS));
    c->state = C_CLOSED;
    weft_line_receiver_lose_connection(&c->lr, WEFT_REASON_TIMED_OUT);
    fail_all(c, WEFT_FAILURE_TIMEOUT, msg);
}

static void client_made(weft_protocol *p)
{
    weft_smtp_client *c = (weft_smtp_client *)p;
    weft__pfactory *f = weft__pf(p);
    weft__stats_made(f);
    c->state = C_GREETING;
    weft_timeout_init(&c->timeout, p, client_timed_out, c);
    if (f->timeout_ns > 0)
        (void)weft_timeout_set(&c->timeout, f->timeout_ns);
}

static void client_lost(weft_protocol *p, const weft_failure *reason)
{
    weft_smtp_client *c = (weft_smtp_client *)p;
    weft_timeout_cleanup(&c->timeout);
    c->state = C_CLOSED;
    weft__stats_lost(weft__pf(p), reason);
    fail_all(c, reason && reason->type ? reason->type : WEFT_REASON_LOST,
             reason && reason->message ? reason->message : "");
}

static void client_destroy(weft_protocol *p)
{
    weft_smtp_client *c = (weft_smtp_client *)p;
    weft_timeout_cleanup(&c->timeout);
    fail_all(c, WEFT_REASON_ABORTED, "client destroyed");
    weft_line_receiver_cleanup(&c->lr);
    weft_free(c);
}

static const weft_protocol_ops client_ops = {
    .connection_made = client_made,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = client_lost,
    .destroy = client_destroy,
};

weft_protocol *weft__smtp_client_build(weft_factory *f, const weft_address *peer)
{
    weft_smtp_client *c = weft_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lr.base.ops = &client_ops;
    c->pf = (weft__pfactory *)f;
    weft_line_receiver_init(&c->lr, &client_hooks);
    weft_line_receiver_set_line_max(&c->lr, SMTP_LINE_MAX);
    c->state = C_GREETING;
    weft_timeout_init(&c->timeout, &c->lr.base, client_timed_out, c);
    return &c->lr.base;
}

weft_smtp_client *weft_smtp_client_from_protocol(weft_protocol *p)
{
    if (!p || p->ops != &client_ops)
        return NULL;
    return (weft_smtp_client *)p;
}

weft_deferred *weft_smtp_client_send(weft_smtp_client *c, const char *from, const char *to,
                                     const char *body)
{
    if (!c || !from || !to || !body)
        return weft_fail(weft_failure_new(WEFT_FAILURE_SMTP_REJECTED, "%s",
                                          "send: missing client, sender, recipient or body"));
    if (c->state == C_CLOSED || c->state == C_QUIT || !c->lr.base.transport)
        return weft_fail(weft_failure_new(WEFT_REASON_DONE, "%s", "SMTP connection closed"));
    if (strpbrk(from, "\r\n<>") || strpbrk(to, "\r\n<>"))
        return weft_fail(weft_failure_new(WEFT_FAILURE_SMTP_REJECTED, "%s",
                                          "send: bad address"));
    smtp_msg *m = weft_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->from = weft_strdup(from);
    m->to = weft_strdup(to);
    m->body = weft_strdup(body);
    m->d = weft_deferred_new();
    weft_deferred *mine = m->d ? weft_deferred_ref(m->d) : NULL;
    if (!m->from || !m->to || !m->body || !m->d) {
        if (m->d) {
            weft_deferred_unref(mine);
            weft_deferred_unref(m->d);
        }
        msg_free(m);
        return NULL;
    }
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->queued++;
    next(c);
    return mine;
}

uint64_t weft_smtp_client_delivered(const weft_smtp_client *c)
{
    return c->delivered;
}

uint64_t weft_smtp_client_rejected(const weft_smtp_client *c)
{
    return c->rejected;
}

size_t weft_smtp_client_queued(const weft_smtp_client *c)
{
    return c->queued;
}

/* ================================================================ Server */

typedef struct smtp_server {
    weft_line_receiver lr;
    weft__pfactory *pf;
    bool in_data, have_mail, have_rcpt;
    char from[256], to[256];
    uint8_t *body;
    size_t body_len, body_cap;
    bool body_overflow;
} smtp_server;

static weft__pfactory *sfactory(smtp_server *s)
{
    return s->pf;
}

void weft__smtp_message_clear(weft_smtp_message *m)
{
    weft_free(m->from);
    weft_free(m->to);
    weft_free(m->body);
    m->from = m->to = m->body = NULL;
}

static void reply(smtp_server *s, const char *text)
{
    if (weft_line_receiver_send_line(&s->lr, text, strlen(text)) == WEFT_OK) {
        sfactory(s)->stats.lines_out++;
        sfactory(s)->stats.bytes_out += strlen(text) + 2;
    }
}

static void reset_txn(smtp_server *s)
{
    s->in_data = s->have_mail = s->have_rcpt = false;
    s->from[0] = s->to[0] = 0;
    s->body_len = 0;
    s->body_overflow = false;
}

/* "<addr>" after the command's colon, copied to out; false if malformed. */
static bool parse_addr(const char *arg, char *out, size_t cap)
{
    while (*arg == ' ')
        arg++;
    if (*arg != '<')
        return false;
    const char *end = strchr(arg, '>');
    if (!end || (size_t)(end - arg - 1) >= cap)
        return false;
    memcpy(out, arg + 1, (size_t)(end - arg - 1));
    out[end - arg - 1] = 0;
    return true;
}

static void body_append(smtp_server *s, const uint8_t *line, size_t len)
{
    size_t need = s->body_len + len + 2;
    if (need > SMTP_BODY_MAX) {
        s->body_overflow = true;
        return;
    }
    if (weft__grow(&s->body, &s->body_cap, need, SMTP_BODY_MAX)) {
        s->body_overflow = true;
        return;
    }
    if (s->body_len > 0)
        s->body[s->body_len++] = '\n';
    memcpy(s->body + s->body_len, line, len);
    s->body_len += len;
    s->body[s->body_len] = 0;
}

static void accept_message(smtp_server *s)
{
    weft__pfactory *f = sfactory(s);
    weft_smtp_message m = {weft_strdup(s->from), weft_strdup(s->to),
                           weft_strdup(s->body_len ? (const char *)s->body : "")};
    if (!m.from || !m.to || !m.body) {
        weft__smtp_message_clear(&m);
        reply(s, "451 Local error");
        return;
    }
    weft__smtp_message_clear(&f->last);
    f->last = m;
    f->stats.messages++;
    reply(s, "250 Ok: queued");
}

static void server_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    smtp_server *s = (smtp_server *)lr;
    weft__pfactory *f = sfactory(s);
    f->stats.lines_in++;
    f->stats.bytes_in += len + lr->delimiter_len;
    if (f->silent)
        return;
    if (s->in_data) {
        if (len == 1 && line[0] == '.') {
            if (s->body_overflow)
                reply(s, "552 Too much mail data");
            else
                accept_message(s);
            reset_txn(s);
            return;
        }
        if (len > 0 && line[0] == '.') {
            line++;
            len--;
        }
        body_append(s, line, len);
        return;
    }
    char cmd[SMTP_LINE_MAX];
    size_t n = len < sizeof cmd - 1 ? len : sizeof cmd - 1;
    memcpy(cmd, line, n);
    cmd[n] = 0;
    char buf[128];
    if (strncasecmp(cmd, "HELO", 4) == 0 || strncasecmp(cmd, "EHLO", 4) == 0) {
        snprintf(buf, sizeof buf, "250 %s", f->host);
        reply(s, buf);
    } else if (strncasecmp(cmd, "MAIL FROM:", 10) == 0) {
        if (!parse_addr(cmd + 10, s->from, sizeof s->from)) {
            reply(s, "501 Syntax error in parameters");
        } else {
            s->have_mail = true;
            s->have_rcpt = false;
            reply(s, "250 Ok");
        }
    } else if (strncasecmp(cmd, "RCPT TO:", 8) == 0) {
        char to[256];
        if (!s->have_mail) {
            reply(s, "503 Bad sequence of commands");
        } else if (!parse_addr(cmd + 8, to, sizeof to)) {
            reply(s, "501 Syntax error in parameters");
        } else if (f->reject[0] && strcmp(to, f->reject) == 0) {
            f->stats.rejected++;
            reply(s, "550 No such user here");
        } else {
            memcpy(s->to, to, sizeof to);
            s->have_rcpt = true;
            reply(s, "250 Ok");
        }
    } else if (strcasecmp(cmd, "DATA") == 0) {
        if (!s->have_rcpt) {
            reply(s, "503 Bad sequence of commands");
        } else {
            s->in_data = true;
            s->body_len = 0;
            reply(s, "354 End data with <CR><LF>.<CR><LF>");
        }
    } else if (strcasecmp(cmd, "RSET") == 0) {
        reset_txn(s);
        reply(s, "250 Ok");
    } else if (strcasecmp(cmd, "NOOP") == 0) {
        reply(s, "250 Ok");
    } else if (strcasecmp(cmd, "QUIT") == 0) {
        reply(s, "221 Bye");
        weft_line_receiver_lose_connection(lr, NULL);
    } else {
        reply(s, "502 Command not implemented");
    }
}

static void server_exceeded(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    smtp_server *s = (smtp_server *)lr;
    sfactory(s)->stats.errors++;
    reply(s, "500 Line too long");
    weft_line_receiver_lose_connection(lr, WEFT_REASON_LINE_TOO_LONG);
}

static const weft_line_hooks server_hooks = {server_line, NULL, server_exceeded};

static void server_made(weft_protocol *p)
{
    smtp_server *s = (smtp_server *)p;
    weft__pfactory *f = weft__pf(p);
    weft__stats_made(f);
    if (f->silent)
        return;
    char buf[128];
    snprintf(buf, sizeof buf, "220 %s ESMTP weft", f->host);
    reply(s, buf);
}

static void server_lost(weft_protocol *p, const weft_failure *reason)
{
    weft__stats_lost(weft__pf(p), reason);
}

static void server_destroy(weft_protocol *p)
{
    smtp_server *s = (smtp_server *)p;
    weft_line_receiver_cleanup(&s->lr);
    weft_free(s->body);
    weft_free(s);
}

static const weft_protocol_ops server_ops = {
    .connection_made = server_made,
    .data_received = weft_line_receiver_data_received,
    .connection_lost = server_lost,
    .destroy = server_destroy,
};

weft_protocol *weft__smtp_server_build(weft_factory *f, const weft_address *peer)
{
    smtp_server *s = weft_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lr.base.ops = &server_ops;
    s->pf = (weft__pfactory *)f;
    weft_line_receiver_init(&s->lr, &server_hooks);
    weft_line_receiver_set_line_max(&s->lr, SMTP_LINE_MAX);
    return &s->lr.base;
}
