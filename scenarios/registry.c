/* registry.c: protocols and actions by name, plugins, and the checker that
 * resolves a scenario's registry names.
 *
 * A registry is two arrays kept in registration order (listing is therefore
 * deterministic); lookups are linear, which is plenty for the tens of names a
 * test binary registers. Plugins are shared objects opened with dlopen and
 * kept open until the registry is freed, because the functions they
 * registered live in them.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "scenarios/scn_internal.h"

typedef struct reg_protocol {
    char *name;
    weft_protocol_make_fn make;
    weft_protocol_destroy_fn destroy;
    void *ctx;
} reg_protocol;

typedef struct reg_action {
    char *name;
    weft_action_fn fn;
    void *ctx;
} reg_action;

struct weft_registry {
    reg_protocol *protocols;
    size_t nprotocols;
    reg_action *actions;
    size_t nactions;
    void **plugins;
    size_t nplugins;
};

weft_registry *weft_registry_new(void)
{
    return weft_calloc(1, sizeof(weft_registry));
}

void weft_registry_free(weft_registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->nprotocols; i++)
        weft_free(reg->protocols[i].name);
    for (size_t i = 0; i < reg->nactions; i++)
        weft_free(reg->actions[i].name);
    weft_free(reg->protocols);
    weft_free(reg->actions);
    /* Close in reverse order of loading: a later plugin may use an earlier. */
    for (size_t i = reg->nplugins; i > 0; i--)
        dlclose(reg->plugins[i - 1]);
    weft_free(reg->plugins);
    weft_free(reg);
}

static bool valid_name(const char *name)
{
    if (name == NULL)
        return false;
    size_t n = strlen(name);
    if (n == 0 || n > WEFT_SCENARIO_NAME_MAX)
        return false;
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static const reg_protocol *find_protocol(const weft_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->nprotocols; i++)
        if (strcmp(reg->protocols[i].name, name) == 0)
            return &reg->protocols[i];
    return NULL;
}

static const reg_action *find_action(const weft_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->nactions; i++)
        if (strcmp(reg->actions[i].name, name) == 0)
            return &reg->actions[i];
    return NULL;
}

int weft_registry_add_protocol(weft_registry *reg, const char *name, weft_protocol_make_fn make,
                               weft_protocol_destroy_fn destroy, void *ctx)
{
    if (reg == NULL || make == NULL || !valid_name(name))
        return WEFT_EINVAL;
    if (find_protocol(reg, name) != NULL)
        return WEFT_EEXIST;
    reg_protocol *np = weft_realloc(reg->protocols, (reg->nprotocols + 1) * sizeof *np);
    if (np == NULL)
        return WEFT_ENOMEM;
    reg->protocols = np;
    char *copy = weft_strdup(name);
    if (copy == NULL)
        return WEFT_ENOMEM;
    reg->protocols[reg->nprotocols++] = (reg_protocol){copy, make, destroy, ctx};
    return WEFT_OK;
}

int weft_registry_add_action(weft_registry *reg, const char *name, weft_action_fn fn, void *ctx)
{
    if (reg == NULL || fn == NULL || !valid_name(name))
        return WEFT_EINVAL;
    if (find_action(reg, name) != NULL)
        return WEFT_EEXIST;
    reg_action *na = weft_realloc(reg->actions, (reg->nactions + 1) * sizeof *na);
    if (na == NULL)
        return WEFT_ENOMEM;
    reg->actions = na;
    char *copy = weft_strdup(name);
    if (copy == NULL)
        return WEFT_ENOMEM;
    reg->actions[reg->nactions++] = (reg_action){copy, fn, ctx};
    return WEFT_OK;
}

int weft_registry_load_plugin(weft_registry *reg, const char *path, char *err, size_t errlen)
{
    if (reg == NULL || path == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "no plugin path");
        return WEFT_EINVAL;
    }
    void **np = weft_realloc(reg->plugins, (reg->nplugins + 1) * sizeof *np);
    if (np == NULL)
        return WEFT_ENOMEM;
    reg->plugins = np;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        if (errlen > 0) {
            const char *why = dlerror();
            snprintf(err, errlen, "%s: cannot load: %s", path, why ? why : "unknown error");
        }
        return WEFT_EIO;
    }
    weft_plugin_init_fn init;
    void *sym = dlsym(h, WEFT_PLUGIN_INIT_SYMBOL);
    /* POSIX: a data pointer from dlsym converts to a function pointer. */
    memcpy(&init, &sym, sizeof init);
    if (sym == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "%s: no %s function", path, WEFT_PLUGIN_INIT_SYMBOL);
        dlclose(h);
        return WEFT_ENOTFOUND;
    }
    reg->plugins[reg->nplugins++] = h;
    int rc = init(reg);
    if (rc != WEFT_OK && errlen > 0)
        snprintf(err, errlen, "%s: %s failed: %s", path, WEFT_PLUGIN_INIT_SYMBOL, weft_strerror(rc));
    /* The plugin stays loaded even when init failed: it may have registered
     * some names before failing. */
    return rc;
}

bool weft_registry_has_protocol(const weft_registry *reg, const char *name)
{
    return reg != NULL && name != NULL && find_protocol(reg, name) != NULL;
}

bool weft_registry_has_action(const weft_registry *reg, const char *name)
{
    return reg != NULL && name != NULL && find_action(reg, name) != NULL;
}

size_t weft_registry_protocol_count(const weft_registry *reg)
{
    return reg ? reg->nprotocols : 0;
}

const char *weft_registry_protocol_name(const weft_registry *reg, size_t i)
{
    return reg && i < reg->nprotocols ? reg->protocols[i].name : NULL;
}

size_t weft_registry_action_count(const weft_registry *reg)
{
    return reg ? reg->nactions : 0;
}

const char *weft_registry_action_name(const weft_registry *reg, size_t i)
{
    return reg && i < reg->nactions ? reg->actions[i].name : NULL;
}

/* ---------------------------------------------------- for the runner */

weft_factory *weft__registry_make(const weft_registry *reg, const char *name, weft_reactor *r,
                                  const char *args, char *err, size_t errlen,
                                  weft__factory_owner *owner)
{
    const reg_protocol *rp = find_protocol(reg, name);
    if (rp == NULL) {
        snprintf(err, errlen, "unknown protocol '%s'", name);
        return NULL;
    }
    err[0] = '\0';
    weft_factory *f = rp->make(r, args ? args : "", rp->ctx, err, errlen);
    if (f == NULL && err[0] == '\0')
        snprintf(err, errlen, "protocol '%s' rejected its arguments \"%s\"", name, args ? args : "");
    owner->destroy = rp->destroy;
    owner->ctx = rp->ctx;
    return f;
}

weft_action_fn weft__registry_action(const weft_registry *reg, const char *name, void **ctx)
{
    const reg_action *ra = find_action(reg, name);
    if (ra == NULL)
        return NULL;
    *ctx = ra->ctx;
    return ra->fn;
}

/* ------------------------------------------------------------ checker */

int weft_scenario_check(const weft_scenario *sc, const weft_registry *reg, weft_diags *diags)
{
    if (sc == NULL || reg == NULL)
        return WEFT_EINVAL;
    int rc = WEFT_OK;
    for (size_t i = 0; i < sc->nstmts; i++) {
        const scn_stmt *st = &sc->stmts[i];
        if (st->kind == SCN_S_LISTEN || st->kind == SCN_S_CLIENT) {
            if (find_protocol(reg, st->proto) == NULL) {
                weft_diags_add(diags, sc->file, st->line, st->proto_col,
                               "unknown protocol '%s'", st->proto);
                rc = WEFT_ENOTFOUND;
            }
        } else if (st->kind == SCN_S_CALL) {
            if (find_action(reg, st->proto) == NULL) {
                weft_diags_add(diags, sc->file, st->line, st->proto_col, "unknown action '%s'",
                               st->proto);
                rc = WEFT_ENOTFOUND;
            }
        }
    }
    return rc;
}
