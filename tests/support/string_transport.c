/* string_transport.c: see string_transport.h. */
#include <stdlib.h>
#include <string.h>

#include "tests/support/string_transport.h"

static int st_append(string_transport *st, const void *data, size_t len)
{
    if (len == 0)
        return WEFT_OK;
    if (st->len + len + 1 > st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 256;
        while (ncap < st->len + len + 1)
            ncap *= 2;
        uint8_t *nd = realloc(st->data, ncap);
        if (!nd)
            return WEFT_ENOMEM;
        st->data = nd;
        st->cap = ncap;
    }
    memcpy(st->data + st->len, data, len);
    st->len += len;
    st->data[st->len] = 0;
    return WEFT_OK;
}

static int st_write(weft_transport *t, const void *data, size_t len)
{
    string_transport *st = (string_transport *)t;
    if (st->disconnecting || st->write_closed || st->lost)
        return WEFT_ECLOSED;
    if (len == 0)
        return WEFT_OK;
    st->writes++;
    return st_append(st, data, len);
}

static int st_writev(weft_transport *t, const weft_iovec *iov, size_t n)
{
    string_transport *st = (string_transport *)t;
    if (st->disconnecting || st->write_closed || st->lost)
        return WEFT_ECLOSED;
    st->writes++;
    for (size_t i = 0; i < n; i++) {
        int err = st_append(st, iov[i].base, iov[i].len);
        if (err)
            return err;
    }
    return WEFT_OK;
}

static int st_lose(weft_transport *t)
{
    string_transport *st = (string_transport *)t;
    st->lose_calls++;
    st->disconnecting = true;
    return WEFT_OK;
}

static int st_abort(weft_transport *t)
{
    string_transport *st = (string_transport *)t;
    st->abort_calls++;
    st->disconnecting = true;
    st->aborted = true;
    return WEFT_OK;
}

static int st_lose_write(weft_transport *t)
{
    string_transport *st = (string_transport *)t;
    st->half_close_calls++;
    st->write_closed = true;
    return WEFT_OK;
}

static int st_pause(weft_transport *t)
{
    string_transport *st = (string_transport *)t;
    st->pause_calls++;
    st->reading_paused = true;
    return WEFT_OK;
}

static int st_resume(weft_transport *t)
{
    string_transport *st = (string_transport *)t;
    st->resume_calls++;
    st->reading_paused = false;
    return WEFT_OK;
}

static int st_reg(weft_transport *t, const weft_producer *p)
{
    string_transport *st = (string_transport *)t;
    if (st->has_producer)
        return WEFT_ESTATE;
    st->producer = *p;
    st->has_producer = true;
    return WEFT_OK;
}

static int st_unreg(weft_transport *t)
{
    string_transport *st = (string_transport *)t;
    st->has_producer = false;
    return WEFT_OK;
}

static const weft_address *st_peer(weft_transport *t)
{
    return &((string_transport *)t)->peer;
}

static const weft_address *st_host(weft_transport *t)
{
    return &((string_transport *)t)->host;
}

static size_t st_buffered(weft_transport *t)
{
    (void)t;
    return 0;
}

static bool st_disconnecting(weft_transport *t)
{
    const string_transport *st = (const string_transport *)t;
    return st->disconnecting || st->lost;
}

static const weft_transport_ops st_ops = {
    .write = st_write,
    .writev = st_writev,
    .lose_connection = st_lose,
    .abort = st_abort,
    .lose_write_connection = st_lose_write,
    .pause_reading = st_pause,
    .resume_reading = st_resume,
    .register_producer = st_reg,
    .unregister_producer = st_unreg,
    .peer = st_peer,
    .host = st_host,
    .buffered = st_buffered,
    .disconnecting = st_disconnecting,
};

void string_transport_init(string_transport *st)
{
    memset(st, 0, sizeof *st);
    st->base.ops = &st_ops;
    strcpy(st->peer.host, "192.168.1.1");
    st->peer.port = 54321;
    strcpy(st->host.host, "10.0.0.1");
    st->host.port = 12345;
}

void string_transport_free(string_transport *st)
{
    free(st->data);
    st->data = NULL;
    st->len = st->cap = 0;
}

void string_transport_connect(string_transport *st, weft_protocol *p, weft_reactor *r)
{
    st->protocol = p;
    p->transport = &st->base;
    p->reactor = r;
    if (p->ops && p->ops->connection_made)
        p->ops->connection_made(p);
}

void string_transport_deliver(string_transport *st, const void *data, size_t len)
{
    if (st->protocol && !st->lost)
        st->protocol->ops->data_received(st->protocol, data, len);
}

void string_transport_deliver_str(string_transport *st, const char *s)
{
    string_transport_deliver(st, s, strlen(s));
}

void string_transport_lose(string_transport *st, const char *reason_type, bool destroy)
{
    if (!st->protocol || st->lost)
        return;
    st->lost = true;
    weft_failure reason;
    memset(&reason, 0, sizeof reason);
    reason.type = reason_type;
    reason.message = "";
    reason.file = __FILE__;
    reason.line = __LINE__;
    weft_protocol *p = st->protocol;
    if (p->ops->connection_lost)
        p->ops->connection_lost(p, &reason);
    p->transport = NULL;
    if (destroy && p->ops->destroy)
        p->ops->destroy(p);
    st->protocol = NULL;
}

const char *string_transport_value(string_transport *st)
{
    return st->data ? (const char *)st->data : "";
}

void string_transport_clear(string_transport *st)
{
    st->len = 0;
    if (st->data)
        st->data[0] = 0;
}
