/* reactor.c: the public reactor functions, dispatched through the backend's
 * operation table, and the factory bookkeeping every backend shares. */
#include <string.h>

#include "reactor/reactor_internal.h"

weft_time_ns weft_now(weft_reactor *r)
{
    return r->ops->now(r);
}

int weft_reactor_run(weft_reactor *r)
{
    return r->ops->run(r);
}

void weft_reactor_stop(weft_reactor *r)
{
    r->ops->stop(r);
}

int weft_reactor_run_until(weft_reactor *r, bool (*cond)(void *ctx), void *ctx,
                           weft_time_ns deadline)
{
    return r->ops->run_until(r, cond, ctx, deadline);
}

void weft_reactor_free(weft_reactor *r)
{
    if (r)
        r->ops->free(r);
}

const char *weft_reactor_name(const weft_reactor *r)
{
    return r->ops->name;
}

uint32_t weft_reactor_random(weft_reactor *r, uint32_t n, const char *label)
{
    if (n <= 1)
        return 0;
    return r->ops->random(r, n, label);
}

int weft_listen(weft_reactor *r, const char *desc, weft_factory *f, weft_listener **out)
{
    weft_endpoint ep;
    weft_listener *l = NULL;
    if (out)
        *out = NULL;
    if (!desc || !f || !f->build_protocol)
        return WEFT_EINVAL;
    int err = weft_endpoint_parse_server(desc, &ep, NULL, 0);
    if (err)
        return err;
    err = r->ops->listen(r, &ep, f, &l);
    if (err == WEFT_OK && out)
        *out = l;
    return err;
}

void weft_listener_close(weft_listener *l)
{
    if (l)
        l->ops->close(l);
}

const weft_address *weft_listener_address(const weft_listener *l)
{
    return l->ops->address(l);
}

int weft_connect_factory(weft_reactor *r, const char *desc, weft_factory *f,
                         weft_connector **out)
{
    weft_endpoint ep;
    weft_connector *c = NULL;
    if (out)
        *out = NULL;
    if (!desc || !f || !f->build_protocol)
        return WEFT_EINVAL;
    int err = weft_endpoint_parse_client(desc, &ep, NULL, 0);
    if (err)
        return err;
    err = r->ops->connect(r, &ep, f, &c);
    if (err == WEFT_OK && out)
        *out = c;
    return err;
}

int weft_connector_connect(weft_connector *c)
{
    return c->ops->connect(c);
}

void weft_connector_stop(weft_connector *c)
{
    c->ops->stop(c);
}

void weft_connector_free(weft_connector *c)
{
    if (c)
        c->ops->free(c);
}

weft_factory *weft_connector_factory(weft_connector *c)
{
    return c->factory;
}

void weft__factory_do_start(weft_factory *f)
{
    if (f->ports_++ == 0 && f->start)
        f->start(f);
}

void weft__factory_do_stop(weft_factory *f)
{
    if (f->ports_ == 0)
        return;
    if (--f->ports_ == 0 && f->stop)
        f->stop(f);
}
