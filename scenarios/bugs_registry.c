/* bugs_registry.c: the planted-bug protocols of protocols/bugs_*.c under
 * their registry names (weft_bugs_register, weft/explore.h).
 *
 * The glue is table-driven: every entry of protocols/bugs.h becomes a
 * protocol (make and destroy forwarded, the entry as context) and, when it
 * has one, an action. An action's first argument names a scenario client of
 * the entry's protocol; the rest reduce to the first number or duration and
 * the first word or string, which is all any bug action takes.
 */
#include <stdio.h>
#include <string.h>

#include "protocols/bugs.h"
#include "weft/explore.h"

static const weft__bug *const bugs[] = {
    &weft__bug_rpc, &weft__bug_jobs, &weft__bug_jobs_client, &weft__bug_store,
    &weft__bug_resend, &weft__bug_pair, &weft__bug_lock,
};

static weft_factory *bug_make(weft_reactor *r, const char *args, void *ctx, char *err,
                              size_t errlen)
{
    const weft__bug *b = ctx;
    return b->make(r, args ? args : "", err, errlen);
}

static void bug_destroy(weft_factory *f, void *ctx)
{
    const weft__bug *b = ctx;
    b->destroy(f);
}

static int bug_action(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,
                      weft_deferred **out, char *err, size_t errlen)
{
    const weft__bug *b = ctx;
    if (argc < 1 || argv[0].kind != WEFT_ARG_WORD) {
        snprintf(err, errlen, "%s: expected a client name first", b->action);
        return WEFT_EINVAL;
    }
    weft_protocol *p = weft_world_client(w, argv[0].str);
    if (p == NULL) {
        snprintf(err, errlen, "%s: client '%s' is not connected", b->action, argv[0].str);
        return WEFT_ESTATE;
    }
    weft__bug_args a;
    memset(&a, 0, sizeof a);
    for (size_t i = 1; i < argc; i++) {
        bool number = argv[i].kind == WEFT_ARG_INT || argv[i].kind == WEFT_ARG_DURATION;
        if (number && !a.has_num) {
            a.num = argv[i].num;
            a.has_num = true;
        } else if (!number && a.str == NULL) {
            a.str = argv[i].str;
        } else {
            snprintf(err, errlen, "%s: unexpected argument '%s'", b->action, argv[i].str);
            return WEFT_EINVAL;
        }
    }
    return b->start(p, &a, out, err, errlen);
}

int weft_bugs_register(weft_registry *reg)
{
    if (reg == NULL)
        return WEFT_EINVAL;
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        const weft__bug *b = bugs[i];
        int rc = weft_registry_add_protocol(reg, b->protocol, bug_make, bug_destroy, (void *)b);
        if (rc == WEFT_OK && b->action != NULL)
            rc = weft_registry_add_action(reg, b->action, bug_action, (void *)b);
        if (rc != WEFT_OK)
            return rc;
    }
    return WEFT_OK;
}
