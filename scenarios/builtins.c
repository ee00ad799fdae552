/* builtins.c: the protocols of weft/protocols.h and their actions, for
 * registries (weft_registry_add_builtins).
 *
 * Every example protocol is registered under its stable name; its argument
 * string is the constructor's "key=value" list. One action is built in:
 *
 *   call smtp.send [from HOST] HOST:PORT "FROM" "TO" "BODY" [OPTIONS] as NAME
 *
 * connects an smtp-client from HOST to HOST:PORT, queues one message once
 * connected, and gives the scenario a Deferred that fires (with none) when the
 * server accepts it, or fails: SmtpRejected with the server's reply line, the
 * connection's reason (ConnectionRefused, ConnectionLost...), or Timeout.
 * OPTIONS is either the smtp-client's argument string ("helo=me timeout=500")
 * or a duration, short for the client's idle timeout ("2s" = "timeout=2000").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "weft/protocols.h"
#include "weft/scenario.h"

static weft_factory *make_builtin(weft_reactor *r, const char *args, void *ctx, char *err,
                                  size_t errlen)
{
    (void)r;
    const weft_proto_entry *e = ctx;
    weft_factory *f = e->factory_new(args);
    if (f == NULL)
        snprintf(err, errlen, "protocol '%s' rejected its arguments \"%s\" (or out of memory)",
                 e->name, args);
    return f;
}

static void destroy_builtin(weft_factory *f, void *ctx)
{
    (void)ctx;
    weft_proto_factory_free(f);
}

/* ------------------------------------------------------------ smtp.send */

typedef struct smtp_job {
    const char *from, *to, *body; /* the scenario's strings: live as long as it */
} smtp_job;

/* Once connected: queue the message and make the chain wait for it. */
static weft_result smtp_connected(weft_result in, void *ctx)
{
    smtp_job *job = ctx;
    weft_smtp_client *c = weft_smtp_client_from_protocol(in.value);
    if (c == NULL)
        return weft_failed(weft_failure_new("NotSmtpClient", "the connection is not an smtp-client"));
    weft_deferred *d = weft_smtp_client_send(c, job->from, job->to, job->body);
    if (d == NULL)
        return weft_failed(weft_failure_new(WEFT_FAILURE_NO_MEMORY, "queueing the message"));
    return weft_chain(d);
}

static int smtp_send(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                     weft_deferred **out, char *err, size_t errlen)
{
    (void)ctx;
    if (argc < 4 || argc > 5) {
        snprintf(err, errlen, "usage: smtp.send HOST:PORT \"FROM\" \"TO\" \"BODY\" [OPTIONS]");
        return WEFT_EINVAL;
    }
    for (size_t i = 1; i < 4; i++)
        if (argv[i].kind != WEFT_ARG_STRING || strlen(argv[i].str) != argv[i].len) {
            snprintf(err, errlen, "smtp.send: argument %zu must be a string without NUL bytes", i + 1);
            return WEFT_EINVAL;
        }
    if (argv[0].kind != WEFT_ARG_WORD && argv[0].kind != WEFT_ARG_STRING) {
        snprintf(err, errlen, "smtp.send: the first argument is HOST:PORT");
        return WEFT_EINVAL;
    }
    char opts[128] = "";
    if (argc == 5) {
        if (argv[4].kind == WEFT_ARG_DURATION)
            snprintf(opts, sizeof opts, "timeout=%" PRId64, argv[4].num / WEFT_NS_PER_MS);
        else if (argv[4].kind == WEFT_ARG_STRING)
            snprintf(opts, sizeof opts, "%s", argv[4].str);
        else {
            snprintf(err, errlen, "smtp.send: OPTIONS is a string or a duration");
            return WEFT_EINVAL;
        }
    }
    smtp_job *job = weft_world_alloc(w, sizeof *job);
    if (job == NULL)
        return WEFT_ENOMEM;
    job->from = argv[1].str;
    job->to = argv[2].str;
    job->body = argv[3].str;
    weft_factory *f = weft_world_factory(w, WEFT_PROTO_SMTP_CLIENT, opts, err, errlen);
    if (f == NULL)
        return WEFT_EINVAL;
    weft_deferred *d = NULL;
    int rc = weft_world_connect(w, argv[0].str, f, &d);
    if (rc != WEFT_OK) {
        snprintf(err, errlen, "smtp.send: connect to %s: %s", argv[0].str, weft_strerror(rc));
        return rc;
    }
    rc = weft_deferred_add_callback(d, smtp_connected, job);
    if (rc != WEFT_OK) {
        weft_deferred_unref(d);
        return rc;
    }
    *out = d;
    return WEFT_OK;
}

int weft_registry_add_builtins(weft_registry *reg)
{
    size_t n = 0;
    const weft_proto_entry *e = weft_proto_builtins(&n);
    for (size_t i = 0; i < n; i++) {
        int rc = weft_registry_add_protocol(reg, e[i].name, make_builtin, destroy_builtin,
                                            (void *)(uintptr_t)&e[i]);
        if (rc != WEFT_OK)
            return rc;
    }
    return weft_registry_add_action(reg, "smtp.send", smtp_send, NULL);
}
