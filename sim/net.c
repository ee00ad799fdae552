/* net.c: the simulated network (first cut: the host table and configuration;
 * listen and connect report WEFT_ENOTCONN until the pipes land).
 *
 * Hosts live in an array indexed by host id, in creation order; host 0 is
 * "localhost", created with the network. Names are unique and looked up by a
 * linear scan, which keeps lookups deterministic and cheap for the few dozen
 * hosts a scenario uses.
 */
#include <string.h>

#include "reactor/reactor_internal.h"
#include "sim/sim_internal.h"

typedef struct net_host {
    char name[WEFT_HOST_MAX];
    bool up;
    uint16_t next_port;
} net_host;

struct weft_simnet {
    weft_sim *sim;
    weft_net_config cfg;
    net_host *hosts;
    uint32_t hosts_len, hosts_cap;
};

#define NET_EPHEMERAL_FIRST 49152u
#define NET_DEFAULT_CONNECT_TIMEOUT_NS (30 * WEFT_NS_PER_S)

static int check_config(const weft_net_config *cfg)
{
    if (cfg->latency_min_ns < 0 || cfg->latency_max_ns < cfg->latency_min_ns)
        return WEFT_EINVAL;
    if (cfg->reset_ppm > 1000000u || cfg->stall_ppm > 1000000u || cfg->refuse_ppm > 1000000u)
        return WEFT_EINVAL;
    if (cfg->stall_max_ns < 0 || cfg->connect_timeout_ns < 0)
        return WEFT_EINVAL;
    return WEFT_OK;
}

int weft__simnet_set_config(weft_simnet *n, const weft_net_config *cfg)
{
    if (!n || !cfg)
        return WEFT_EINVAL;
    int err = check_config(cfg);
    if (err)
        return err;
    n->cfg = *cfg;
    if (n->cfg.connect_timeout_ns == 0)
        n->cfg.connect_timeout_ns = NET_DEFAULT_CONNECT_TIMEOUT_NS;
    return WEFT_OK;
}

int weft__simnet_new(weft_sim *s, const weft_net_config *cfg, weft_simnet **out)
{
    *out = NULL;
    weft_simnet *n = weft_calloc(1, sizeof *n);
    if (!n)
        return WEFT_ENOMEM;
    n->sim = s;
    weft_net_config def;
    memset(&def, 0, sizeof def);
    int err = weft__simnet_set_config(n, cfg ? cfg : &def);
    if (err) {
        weft_free(n);
        return err;
    }
    if (weft__simnet_host(n, "localhost", true) != 0) {
        weft__simnet_free(n);
        return WEFT_ENOMEM;
    }
    *out = n;
    return WEFT_OK;
}

void weft__simnet_free(weft_simnet *n)
{
    if (!n)
        return;
    weft_free(n->hosts);
    weft_free(n);
}

uint32_t weft__simnet_host(weft_simnet *n, const char *name, bool create)
{
    if (!n || !name)
        return UINT32_MAX;
    size_t len = strlen(name);
    if (len == 0 || len >= WEFT_HOST_MAX)
        return UINT32_MAX;
    for (uint32_t i = 0; i < n->hosts_len; i++)
        if (strcmp(n->hosts[i].name, name) == 0)
            return i;
    if (!create)
        return UINT32_MAX;
    if (n->hosts_len == n->hosts_cap) {
        uint32_t cap = n->hosts_cap ? n->hosts_cap * 2 : 8;
        net_host *h = weft_realloc(n->hosts, cap * sizeof *h);
        if (!h)
            return UINT32_MAX;
        n->hosts = h;
        n->hosts_cap = cap;
    }
    net_host *h = &n->hosts[n->hosts_len];
    memset(h, 0, sizeof *h);
    memcpy(h->name, name, len + 1);
    h->up = true;
    h->next_port = NET_EPHEMERAL_FIRST;
    return n->hosts_len++;
}

const char *weft__simnet_host_name(const weft_simnet *n, uint32_t host)
{
    if (!n || host >= n->hosts_len)
        return NULL;
    return n->hosts[host].name;
}

size_t weft__simnet_open(const weft_simnet *n)
{
    (void)n;
    return 0;
}

int weft__simnet_listen(weft_simnet *n, const weft_endpoint *ep, weft_factory *f,
                        weft_listener **out)
{
    (void)n, (void)ep, (void)f;
    if (out)
        *out = NULL;
    return WEFT_ENOTCONN;
}

int weft__simnet_connect(weft_simnet *n, const weft_endpoint *ep, weft_factory *f,
                         weft_connector **out)
{
    (void)n, (void)ep, (void)f;
    if (out)
        *out = NULL;
    return WEFT_ENOTCONN;
}

/* ------------------------------------------------------ Public faults */

int weft_sim_add_host(weft_sim *s, const char *name)
{
    if (!s || !name)
        return WEFT_EINVAL;
    size_t len = strlen(name);
    if (len == 0 || len >= WEFT_HOST_MAX)
        return WEFT_EINVAL;
    weft_simnet *n = weft__sim_net(s);
    if (weft__simnet_host(n, name, false) != UINT32_MAX)
        return WEFT_EEXIST;
    return weft__simnet_host(n, name, true) == UINT32_MAX ? WEFT_ENOMEM : WEFT_OK;
}

int weft_sim_set_net(weft_sim *s, const weft_net_config *net)
{
    if (!s)
        return WEFT_EINVAL;
    return weft__simnet_set_config(weft__sim_net(s), net);
}

int weft_sim_set_current_host(weft_sim *s, const char *host)
{
    if (!s || !host)
        return WEFT_EINVAL;
    uint32_t id = weft__simnet_host(weft__sim_net(s), host, true);
    if (id == UINT32_MAX)
        return strlen(host) == 0 || strlen(host) >= WEFT_HOST_MAX ? WEFT_EINVAL : WEFT_ENOMEM;
    weft__sim_set_current_host_id(s, id);
    return WEFT_OK;
}

int weft_sim_partition(weft_sim *s, const char *a, const char *b)
{
    (void)s, (void)a, (void)b;
    return WEFT_ENOTCONN;
}

int weft_sim_heal(weft_sim *s, const char *a, const char *b)
{
    (void)s, (void)a, (void)b;
    return WEFT_ENOTCONN;
}

int weft_sim_crash(weft_sim *s, const char *host)
{
    (void)s, (void)host;
    return WEFT_ENOTCONN;
}

int weft_sim_restart(weft_sim *s, const char *host)
{
    (void)s, (void)host;
    return WEFT_ENOTCONN;
}

int weft_sim_stall(weft_sim *s, const char *a, const char *b)
{
    (void)s, (void)a, (void)b;
    return WEFT_ENOTCONN;
}

int weft_sim_release(weft_sim *s, const char *a, const char *b)
{
    (void)s, (void)a, (void)b;
    return WEFT_ENOTCONN;
}

int weft_sim_reset(weft_sim *s, const char *a, const char *b)
{
    (void)s, (void)a, (void)b;
    return WEFT_ENOTCONN;
}

size_t weft_sim_open_connections(const weft_sim *s)
{
    (void)s;
    return 0;
}
