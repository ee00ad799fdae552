/* sim_internal.h: the seam between the simulator core (sim.c, choice.c,
 * trace.c) and the simulated network (net.c). Not public.
 *
 * The core owns the virtual clock, the event queue, the choice source and the
 * trace. The network schedules its deliveries and timeouts as core events, asks
 * every nondeterministic question through weft__sim_choose, and records what it
 * does with weft_sim_trace.
 *
 * Hosts: every event belongs to a host (an index into the network's host
 * table; 0 is "localhost"). Dispatching an event makes its host current;
 * anything scheduled while it runs (weft_call_later from protocol code, or a
 * connect) belongs to the same host. That is how the simulator knows which
 * machine the calling protocol code runs on.
 */
#ifndef WEFT_SIM_INTERNAL_H
#define WEFT_SIM_INTERNAL_H

#include "weft/sim.h"

typedef struct weft_simnet weft_simnet;

/* ---- provided by the core (sim.c) ---- */

/* Schedule an internal event at absolute virtual time `when` (clamped to now
 * if earlier) on host `host`. label is a static string naming the kind of
 * event (trace, runaway verdicts). The returned call has no user handle: it is
 * freed by the core after it runs or when cancelled with weft__sim_cancel.
 * NULL: out of memory. */
weft_call *weft__sim_schedule(weft_sim *s, weft_time_ns when, uint32_t host, const char *label,
                              weft_call_fn fn, void *ctx);
/* Cancel an internal event that has not run yet. */
void weft__sim_cancel(weft_sim *s, weft_call *c);
/* Ask the choice source; traced as "choice <label> <value>/<n>". */
uint32_t weft__sim_choose(weft_sim *s, uint32_t n, const char *label);
/* weft_sim_trace for static kind and format strings (their hashes are
 * memoised by address): the same record, the same hash, less work. */
void weft__sim_tracef(weft_sim *s, const char *kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The fastest note, for hot paths with no text wanted (weft_sim_tracing
 * false): the caller passes the words weft__trace_hash_args would read from
 * the arguments (integers as their 64-bit value, a %s string as
 * weft__sim_static_hash of it), so the record hashes exactly as
 * weft__sim_tracef(s, kind, fmt, args...) would. Tests compare the two. */
void weft__sim_note_words(weft_sim *s, const char *kind, const char *fmt, const uint64_t *words,
                          size_t nwords);
/* The trace's string hash of a static string, memoised by address. */
uint64_t weft__sim_static_hash(weft_sim *s, const char *str);
/* Drop the pending delayed calls made through the reactor API on host (a
 * crash): none runs; droppable ones (defer_later, timeouts, looping calls)
 * release what they hold. The network's own events are left alone. */
void weft__sim_drop_host_calls(weft_sim *s, uint32_t host);
/* A cache hint for the events labelled label, called with an event's ctx
 * while an earlier event runs: far (two events ahead) may only prefetch
 * addresses computed from ctx; near (the next event, far-hinted one event
 * ago) may also read through ctx to prefetch what it points to. Hints must
 * have no effect but on the cache. */
typedef void (*weft__sim_prefetch_fn)(const void *ctx, bool near);
void weft__sim_label_prefetch(weft_sim *s, const char *label, weft__sim_prefetch_fn prefetch);
weft_time_ns weft__sim_now(const weft_sim *s);
uint32_t weft__sim_current_host(const weft_sim *s);
void weft__sim_set_current_host_id(weft_sim *s, uint32_t host);
weft_simnet *weft__sim_net(weft_sim *s);
const weft_sim_config *weft__sim_config(const weft_sim *s);

/* ---- provided by the network (net.c) ---- */

int weft__simnet_new(weft_sim *s, const weft_net_config *cfg, weft_simnet **out);
/* Frees every connection (protocols see connection_lost ConnectionAborted and
 * destroy), listener and connector. */
void weft__simnet_free(weft_simnet *n);
int weft__simnet_set_config(weft_simnet *n, const weft_net_config *cfg);
/* The reactor ops for listen / connect, on the current host. */
int weft__simnet_listen(weft_simnet *n, const weft_endpoint *ep, weft_factory *f,
                        weft_listener **out);
int weft__simnet_connect(weft_simnet *n, const weft_endpoint *ep, weft_factory *f,
                         weft_connector **out);
/* Host table: index of a host by name, created when create is true.
 * Returns UINT32_MAX when absent (or out of memory). */
uint32_t weft__simnet_host(weft_simnet *n, const char *name, bool create);
const char *weft__simnet_host_name(const weft_simnet *n, uint32_t host);
/* Open connections + listeners: the reactor is not idle while any exist. */
size_t weft__simnet_open(const weft_simnet *n);

#endif
