/* net_harness.c: the recording world of net_harness.h. Protocols are slots
 * in the world's fixed array (MAXP), so a test can look at them after they
 * are gone; their received bytes grow in a malloc'd buffer freed by
 * world_free. Test support code: plain malloc and cmocka assertions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/net_harness.h"

static void tp_made(weft_protocol *bp)
{
    tproto *p = (tproto *)bp;
    p->made++;
    p->made_at = weft_now(bp->reactor);
    p->peer = *weft_transport_peer(bp->transport);
    p->host = *weft_transport_host(bp->transport);
    void (*hook)(tproto *) = p->is_client ? p->w->client_made : p->w->server_made;
    if (hook)
        hook(p);
}

static void tp_data(weft_protocol *bp, const uint8_t *d, size_t n)
{
    tproto *p = (tproto *)bp;
    assert_true(n > 0);
    assert_int_equal(p->lost, 0);
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 64;
        while (cap < p->len + n)
            cap *= 2;
        p->data = realloc(p->data, cap);
        assert_non_null(p->data);
        p->cap = cap;
    }
    memcpy(p->data + p->len, d, n);
    p->len += n;
    if (p->chunks == 0 || n < p->min_chunk)
        p->min_chunk = n;
    if (n > p->max_chunk)
        p->max_chunk = n;
    p->chunks++;
    p->last_data_at = weft_now(bp->reactor);
    void (*hook)(tproto *, const uint8_t *, size_t) =
        p->is_client ? p->w->client_data : p->w->server_data;
    if (hook)
        hook(p, d, n);
}

static void tp_lost(weft_protocol *bp, const weft_failure *reason)
{
    tproto *p = (tproto *)bp;
    p->lost++;
    p->lost_at = weft_now(bp->reactor);
    snprintf(p->reason, sizeof p->reason, "%s", reason->type);
    snprintf(p->message, sizeof p->message, "%s", reason->message);
    /* The transport is still ours during the call; writes are refused. */
    p->write_after_lost_rc = weft_transport_write(bp->transport, "x", 1);
    if (p->w->on_lost)
        p->w->on_lost(p);
}

static void tp_read_lost(weft_protocol *bp)
{
    tproto *p = (tproto *)bp;
    p->read_lost++;
    p->read_lost_at = weft_now(bp->reactor);
}

static void tp_write_lost(weft_protocol *bp)
{
    tproto *p = (tproto *)bp;
    p->write_lost++;
    p->write_lost_at = weft_now(bp->reactor);
}

static void tp_destroy(weft_protocol *bp)
{
    tproto *p = (tproto *)bp;
    if (p->lost == 1)
        p->lost_before_destroy = 1;
    p->destroyed++;
}

static const weft_protocol_ops plain_ops = {
    .connection_made = tp_made,
    .data_received = tp_data,
    .connection_lost = tp_lost,
    .destroy = tp_destroy,
};

static const weft_protocol_ops aware_ops = {
    .connection_made = tp_made,
    .data_received = tp_data,
    .connection_lost = tp_lost,
    .read_connection_lost = tp_read_lost,
    .write_connection_lost = tp_write_lost,
    .destroy = tp_destroy,
};

static weft_protocol *build(weft_factory *f, const weft_address *peer)
{
    world *w = f->ctx;
    bool client = f == &w->client_f;
    assert_non_null(peer);
    if ((client && w->client_refuses) || (!client && w->server_refuses))
        return NULL;
    assert_true(w->nprotos < MAXP);
    tproto *p = &w->protos[w->nprotos++];
    memset(p, 0, sizeof *p);
    p->base.ops = w->aware ? &aware_ops : &plain_ops;
    p->w = w;
    p->is_client = client;
    if (client)
        w->client = p;
    else
        w->server = p;
    return &p->base;
}

static void server_start(weft_factory *f)
{
    ((world *)f->ctx)->server_starts++;
}
static void server_stop(weft_factory *f)
{
    ((world *)f->ctx)->server_stops++;
}
static void client_start(weft_factory *f)
{
    ((world *)f->ctx)->client_starts++;
}
static void client_stop(weft_factory *f)
{
    ((world *)f->ctx)->client_stops++;
}

static void client_failed(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    world *w = f->ctx;
    w->failed++;
    w->fail_conn = c;
    w->failed_at = weft_now(w->r);
    snprintf(w->fail_reason, sizeof w->fail_reason, "%s", reason->type);
    if (w->reconnects_left > 0) {
        w->reconnects_left--;
        assert_int_equal(weft_connector_connect(c), WEFT_OK);
    } else if (w->free_in_hook) {
        weft_connector_free(c);
    }
}

static void client_conn_lost(weft_factory *f, weft_connector *c, const weft_failure *reason)
{
    world *w = f->ctx;
    w->flost++;
    w->flost_conn = c;
    snprintf(w->flost_reason, sizeof w->flost_reason, "%s", reason->type);
    if (w->reconnects_left > 0) {
        w->reconnects_left--;
        assert_int_equal(weft_connector_connect(c), WEFT_OK);
    }
}

world *world_new(const weft_net_config *net, weft_choice *choices, bool keep)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    weft_sim_config cfg;
    weft_sim_config_default(&cfg);
    if (net) {
        cfg.net = *net;
        if (!cfg.net.connect_timeout_ns)
            cfg.net.connect_timeout_ns = 30 * S;
    }
    cfg.keep_lines = keep;
    w->sim = weft_sim_new(&cfg, choices);
    assert_non_null(w->sim);
    w->r = weft_sim_reactor(w->sim);
    w->server_f.build_protocol = build;
    w->server_f.start = server_start;
    w->server_f.stop = server_stop;
    w->server_f.ctx = w;
    w->client_f.build_protocol = build;
    w->client_f.start = client_start;
    w->client_f.stop = client_stop;
    w->client_f.connection_failed = client_failed;
    w->client_f.connection_lost = client_conn_lost;
    w->client_f.ctx = w;
    assert_int_equal(weft_sim_add_host(w->sim, "server"), WEFT_OK);
    assert_int_equal(weft_sim_add_host(w->sim, "client"), WEFT_OK);
    return w;
}

void world_free(world *w)
{
    weft_sim_free(w->sim);
    for (int i = 0; i < w->nprotos; i++)
        free(w->protos[i].data);
    free(w);
}

weft_listener *listen_on(world *w, const char *host, const char *desc)
{
    weft_listener *l = NULL;
    assert_int_equal(weft_sim_set_current_host(w->sim, host), WEFT_OK);
    assert_int_equal(weft_listen(w->r, desc, &w->server_f, &l), WEFT_OK);
    assert_non_null(l);
    return l;
}

weft_connector *connect_from(world *w, const char *host, const char *desc)
{
    weft_connector *c = NULL;
    assert_int_equal(weft_sim_set_current_host(w->sim, host), WEFT_OK);
    assert_int_equal(weft_connect_factory(w->r, desc, &w->client_f, &c), WEFT_OK);
    assert_non_null(c);
    return c;
}

void run(world *w)
{
    assert_int_equal(weft_sim_run_until_quiet(w->sim), WEFT_OK);
}

weft_net_config latency_cfg(int64_t lo, int64_t hi)
{
    weft_net_config n;
    memset(&n, 0, sizeof n);
    n.latency_min_ns = lo;
    n.latency_max_ns = hi;
    return n;
}

/* A connected pair with fixed latency lat (default choices: no chunking). */
world *pair(int64_t lat, bool aware)
{
    weft_net_config n = latency_cfg(lat, lat);
    world *w = world_new(&n, NULL, false);
    w->aware = aware;
    listen_on(w, "server", "tcp:2000");
    connect_from(w, "client", "tcp:server:2000");
    run(w);
    assert_non_null(w->client);
    assert_non_null(w->server);
    assert_int_equal(w->client->made, 1);
    assert_int_equal(w->server->made, 1);
    return w;
}

weft_transport *ct(world *w)
{
    return w->client->base.transport;
}

weft_transport *stp(world *w)
{
    return w->server->base.transport;
}

void write_str(weft_transport *t, const char *s)
{
    assert_int_equal(weft_transport_write(t, s, strlen(s)), WEFT_OK);
}

void assert_data(const tproto *p, const char *want)
{
    assert_int_equal(p->len, strlen(want));
    assert_memory_equal(p->data, want, p->len);
}
