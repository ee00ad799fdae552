/* plugin.c: the kv protocols and actions for weft scenarios, loaded with
 *
 *     weft run --load examples/kv/kv.so examples/kv/server.scn examples/kv/client.scn ...
 *
 * Protocols: "kv-server" (args "delay=MS unordered=0|1") and "kv-client" (no
 * args). Actions, on a scenario client of protocol kv-client that is
 * connected when the `call` statement runs:
 *
 *     call kv.set CLIENT "KEY" "VALUE" as D      D fires with none once stored
 *     call kv.get CLIENT "KEY" EXPECTED as D     D fires with EXPECTED
 *     call kv.del CLIENT "KEY" as D              D fires with none once deleted
 *
 * kv.get names the value it expects (a string or an integer) because a
 * scenario compares values it wrote itself: D fires with that very value when
 * the server's equals it, and fails with KvMismatch naming both otherwise.
 * Every other outcome is the client's (KvNotFound, KvError, the connection's
 * reason). No state outlives a run and nothing is global, so `weft explore
 * --jobs N` may run seeds on several threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kv.h"
#include "weft/scenario.h"

#define KV_FAILURE_MISMATCH "KvMismatch"

int weft_plugin_init(weft_registry *reg);

static weft_factory *make_server(weft_reactor *r, const char *args, void *ctx, char *err,
                                 size_t errlen)
{
    (void)r;
    (void)ctx;
    kv_server_options opt;
    if (kv_server_parse_args(args, &opt, err, errlen) != WEFT_OK)
        return NULL;
    weft_factory *f = kv_server_factory_new(&opt);
    if (f == NULL)
        snprintf(err, errlen, "kv-server: out of memory");
    return f;
}

static void destroy_server(weft_factory *f, void *ctx)
{
    (void)ctx;
    kv_server_factory_free(f);
}

static weft_factory *make_client(weft_reactor *r, const char *args, void *ctx, char *err,
                                 size_t errlen)
{
    (void)r;
    (void)ctx;
    if (args != NULL && args[0] != '\0') {
        snprintf(err, errlen, "kv-client takes no arguments, got \"%s\"", args);
        return NULL;
    }
    weft_factory *f = kv_client_factory_new();
    if (f == NULL)
        snprintf(err, errlen, "kv-client: out of memory");
    return f;
}

static void destroy_client(weft_factory *f, void *ctx)
{
    (void)ctx;
    kv_client_factory_free(f);
}

/* The connected kv-client named by argv[0], or NULL with err set. */
static kv_client *find_client(weft_world *w, const char *action, const weft_arg *arg, char *err,
                              size_t errlen)
{
    if (arg->kind != WEFT_ARG_WORD) {
        snprintf(err, errlen, "%s: the first argument names a scenario client", action);
        return NULL;
    }
    kv_client *c = kv_client_from_protocol(weft_world_client(w, arg->str));
    if (c == NULL)
        snprintf(err, errlen, "%s: client '%s' is not a connected kv-client", action, arg->str);
    return c;
}

static bool plain_string(const weft_arg *a)
{
    return a->kind == WEFT_ARG_STRING && strlen(a->str) == a->len;
}

static int kv_set(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                  weft_deferred **out, char *err, size_t errlen)
{
    (void)ctx;
    if (argc != 3 || !plain_string(&argv[1]) || !plain_string(&argv[2])) {
        snprintf(err, errlen, "usage: kv.set CLIENT \"KEY\" \"VALUE\"");
        return WEFT_EINVAL;
    }
    kv_client *c = find_client(w, "kv.set", &argv[0], err, errlen);
    if (c == NULL)
        return WEFT_ESTATE;
    *out = kv_client_set(c, argv[1].str, argv[2].str);
    return *out ? WEFT_OK : WEFT_ENOMEM;
}

static int kv_del(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                  weft_deferred **out, char *err, size_t errlen)
{
    (void)ctx;
    if (argc != 2 || !plain_string(&argv[1])) {
        snprintf(err, errlen, "usage: kv.del CLIENT \"KEY\"");
        return WEFT_EINVAL;
    }
    kv_client *c = find_client(w, "kv.del", &argv[0], err, errlen);
    if (c == NULL)
        return WEFT_ESTATE;
    *out = kv_client_del(c, argv[1].str);
    return *out ? WEFT_OK : WEFT_ENOMEM;
}

typedef struct get_check {
    const char *key;      /* the scenario's string */
    weft_arg expected;    /* a copy: argv is borrowed for the call */
} get_check;

/* The client's value against the expected one: the scenario's own value on a
 * match (so `expect value` compares it), KvMismatch otherwise. */
static weft_result get_compare(weft_result in, void *ctx)
{
    get_check *gc = ctx;
    char *got = in.value;
    char want[32];
    const char *want_text = gc->expected.str;
    if (gc->expected.kind == WEFT_ARG_INT) {
        snprintf(want, sizeof want, "%" PRId64, gc->expected.num);
        want_text = want;
    }
    bool same = got != NULL && strcmp(got, want_text) == 0;
    weft_result r;
    if (same)
        r = weft_value(gc->expected.kind == WEFT_ARG_INT ? (void *)(intptr_t)gc->expected.num
                                                         : (void *)gc->expected.str);
    else
        r = weft_failed(weft_failure_new(KV_FAILURE_MISMATCH, "%s is \"%.80s\", expected \"%s\"",
                                         gc->key, got ? got : "", want_text));
    weft_free(got);
    return r;
}

static int kv_get(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                  weft_deferred **out, char *err, size_t errlen)
{
    (void)ctx;
    if (argc != 3 || !plain_string(&argv[1]) ||
        !(plain_string(&argv[2]) || argv[2].kind == WEFT_ARG_INT)) {
        snprintf(err, errlen, "usage: kv.get CLIENT \"KEY\" EXPECTED (a string or an integer)");
        return WEFT_EINVAL;
    }
    kv_client *c = find_client(w, "kv.get", &argv[0], err, errlen);
    if (c == NULL)
        return WEFT_ESTATE;
    /* The handler may run after this call returns: its state lives with
     * the run. The strings are the scenario's and live as long as it. */
    get_check *gc = weft_world_alloc(w, sizeof *gc);
    if (gc == NULL)
        return WEFT_ENOMEM;
    gc->key = argv[1].str;
    gc->expected = argv[2];
    weft_deferred *d = kv_client_get(c, argv[1].str);
    if (d == NULL)
        return WEFT_ENOMEM;
    int rc = weft_deferred_add_callback(d, get_compare, gc);
    if (rc != WEFT_OK) {
        weft_deferred_unref(d);
        return rc;
    }
    *out = d;
    return WEFT_OK;
}

int weft_plugin_init(weft_registry *reg)
{
    int rc = weft_registry_add_protocol(reg, "kv-server", make_server, destroy_server, NULL);
    if (rc == WEFT_OK)
        rc = weft_registry_add_protocol(reg, "kv-client", make_client, destroy_client, NULL);
    if (rc == WEFT_OK)
        rc = weft_registry_add_action(reg, "kv.set", kv_set, NULL);
    if (rc == WEFT_OK)
        rc = weft_registry_add_action(reg, "kv.get", kv_get, NULL);
    if (rc == WEFT_OK)
        rc = weft_registry_add_action(reg, "kv.del", kv_del, NULL);
    return rc;
}
