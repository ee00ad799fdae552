/* main_real.c: the kv protocol on the real epoll reactor. The same kv.o
 * that the simulator tests and the scenarios exercised is linked here
 * unchanged; only this file knows it runs on sockets.
 *
 *   kv-real serve PORT [SECONDS]   listen on 127.0.0.1:PORT (0: any free port),
 *                                  print "listening on 127.0.0.1:N", serve until
 *                                  SIGINT/SIGTERM or for SECONDS
 *   kv-real demo PORT              connect to 127.0.0.1:PORT, pipeline SET, GET,
 *                                  GET of a missing key, DEL, QUIT; check every
 *                                  reply; exit 0 when all are right (5 s bound)
 *
 * Signals only set a flag; a looping call on the reactor looks at it every
 * 50ms and stops the run, so no reactor code runs inside a signal handler.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static weft_deferred *watch_signals(void *ctx, uint64_t intervals)
{
    (void)intervals;
    if (stop_requested)
        weft_reactor_stop(ctx);
    return NULL;
}

static int parse_port(const char *s, unsigned long *port)
{
    char *end;
    *port = strtoul(s, &end, 10);
    return *s != '\0' && *end == '\0' && *port <= 65535 ? 0 : -1;
}

static int serve(weft_reactor *r, unsigned long port, double seconds)
{
    weft_factory *f = kv_server_factory_new(NULL);
    char desc[64];
    snprintf(desc, sizeof desc, "tcp:%lu:interface=127.0.0.1", port);
    weft_listener *l = NULL;
    int rc = f ? weft_listen(r, desc, f, &l) : WEFT_ENOMEM;
    if (rc != WEFT_OK) {
        fprintf(stderr, "kv-real: listen %s: %s\n", desc, weft_strerror(rc));
        kv_server_factory_free(f);
        return 1;
    }
    const weft_address *a = weft_listener_address(l);
    printf("listening on %s:%u\n", a->host, (unsigned)a->port);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    weft_looping_call *lc = weft_looping_call_new(r, watch_signals, r);
    if (lc == NULL || weft_looping_call_start(lc, 50 * WEFT_NS_PER_MS, false, NULL) != WEFT_OK) {
        fprintf(stderr, "kv-real: out of memory\n");
        return 1;
    }
    if (seconds > 0)
        rc = weft_reactor_run_until(r, NULL, NULL,
                                    weft_now(r) + (int64_t)(seconds * (double)WEFT_NS_PER_S));
    else
        rc = weft_reactor_run(r);
    printf("served %llu requests, %zu keys\n", (unsigned long long)kv_server_requests(f),
           kv_server_keys(f));
    weft_looping_call_free(lc);
    weft_listener_close(l);
    weft_reactor_free(r);
    kv_server_factory_free(f);
    return 0;
}

/* ------------------------------------------------------------------ demo */

typedef struct demo {
    weft_deferred *set, *get, *missing, *del;
    int failures;
    bool connected;
} demo;

static weft_result demo_connected(weft_result in, void *ctx)
{
    demo *dm = ctx;
    kv_client *c = kv_client_from_protocol(in.value);
    dm->connected = true;
    /* Pipelined: four requests before the first reply. */
    dm->set = kv_client_set(c, "greeting", "hello from the real reactor");
    dm->get = kv_client_get(c, "greeting");
    dm->missing = kv_client_get(c, "no-such-key");
    dm->del = kv_client_del(c, "greeting");
    kv_client_quit(c);
    return weft_value(NULL);
}

static bool demo_done(void *ctx)
{
    demo *dm = ctx;
    weft_deferred *all[] = {dm->set, dm->get, dm->missing, dm->del};
    for (size_t i = 0; i < 4; i++)
        if (all[i] == NULL || weft_deferred_peek(all[i], NULL) == WEFT_DEFERRED_PENDING)
            return false;
    return true;
}

/* Report one outcome; value_want NULL means a failure of type fail_want. */
static void check(demo *dm, const char *what, weft_deferred *d, const char *value_want,
                  const char *fail_want)
{
    weft_result r;
    if (d == NULL || weft_deferred_take_result(d, &r) != WEFT_OK) {
        printf("  %-22s no result\n", what);
        dm->failures++;
        return;
    }
    if (r.kind == WEFT_RESULT_FAILURE) {
        bool ok = fail_want != NULL && weft_failure_check(r.failure, fail_want);
        printf("  %-22s failure %s: %s%s\n", what, r.failure->type, r.failure->message,
               ok ? "" : "   <-- unexpected");
        dm->failures += !ok;
        weft_failure_free(r.failure);
    } else {
        const char *v = r.value;
        bool ok = fail_want == NULL &&
                  (value_want == NULL ? v == NULL : v != NULL && strcmp(v, value_want) == 0);
        printf("  %-22s %s%s%s%s\n", what, v ? "value \"" : "ok", v ? v : "", v ? "\"" : "",
               ok ? "" : "   <-- unexpected");
        dm->failures += !ok;
        weft_free(r.value); /* GET values are ours; SET/DEL give NULL */
    }
    weft_deferred_unref(d);
}

static int run_demo(weft_reactor *r, unsigned long port)
{
    weft_factory *f = kv_client_factory_new();
    char desc[64];
    snprintf(desc, sizeof desc, "tcp:127.0.0.1:%lu:timeout=2", port);
    demo dm;
    memset(&dm, 0, sizeof dm);
    weft_deferred *cd = NULL;
    int rc = f ? weft_connect(r, desc, f, &cd) : WEFT_ENOMEM;
    if (rc == WEFT_OK)
        rc = weft_deferred_add_callback(cd, demo_connected, &dm);
    if (rc != WEFT_OK) {
        fprintf(stderr, "kv-real: connect %s: %s\n", desc, weft_strerror(rc));
        return 1;
    }
    rc = weft_reactor_run_until(r, demo_done, &dm, weft_now(r) + 5 * WEFT_NS_PER_S);
    int status = 0;
    weft_result cr;
    if (weft_deferred_peek(cd, &cr) == WEFT_DEFERRED_FAILED) {
        printf("demo: connect failed: %s: %s\n", cr.failure->type, cr.failure->message);
        status = 1;
    } else if (rc != WEFT_OK) {
        printf("demo: no complete answer within 5s (%s)\n", weft_strerror(rc));
        status = 1;
    } else {
        /* Let the QUIT finish (bounded), then judge the replies. */
        weft_reactor_run_until(r, NULL, NULL, weft_now(r) + 2 * WEFT_NS_PER_S);
        printf("demo: 127.0.0.1:%lu\n", port);
        check(&dm, "SET greeting", dm.set, NULL, NULL);
        check(&dm, "GET greeting", dm.get, "hello from the real reactor", NULL);
        check(&dm, "GET no-such-key", dm.missing, NULL, KV_FAILURE_NOT_FOUND);
        check(&dm, "DEL greeting", dm.del, NULL, NULL);
        dm.set = dm.get = dm.missing = dm.del = NULL;
        status = dm.failures ? 1 : 0;
        printf("demo: %s\n", status ? "FAILED" : "all replies right");
    }
    weft_deferred *left[] = {dm.set, dm.get, dm.missing, dm.del};
    weft_reactor_free(r);
    for (size_t i = 0; i < 4; i++) {
        weft_result lr;
        if (left[i] && weft_deferred_take_result(left[i], &lr) == WEFT_OK) {
            if (lr.kind == WEFT_RESULT_FAILURE)
                weft_failure_free(lr.failure);
            else
                weft_free(lr.value);
        }
        weft_deferred_unref(left[i]);
    }
    if (weft_deferred_take_result(cd, &cr) == WEFT_OK && cr.kind == WEFT_RESULT_FAILURE)
        weft_failure_free(cr.failure);
    weft_deferred_unref(cd);
    kv_client_factory_free(f);
    return status;
}

int main(int argc, char **argv)
{
    unsigned long port;
    if (argc < 3 || parse_port(argv[2], &port) != 0 ||
        !((strcmp(argv[1], "serve") == 0 && argc <= 4) ||
          (strcmp(argv[1], "demo") == 0 && argc == 3 && port > 0))) {
        fprintf(stderr, "usage: kv-real serve PORT [SECONDS]\n"
                        "       kv-real demo PORT\n");
        return 2;
    }
    weft_reactor *r = weft_reactor_new_epoll();
    if (r == NULL) {
        fprintf(stderr, "kv-real: cannot create the epoll reactor\n");
        return 1;
    }
    if (strcmp(argv[1], "serve") == 0)
        return serve(r, port, argc == 4 ? atof(argv[3]) : 0);
    return run_demo(r, port);
}
