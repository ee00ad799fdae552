/* epoll_internal.h: what the files of the real backend share (epoll.c: the
 * loop, clock, PRNG and teardown; epoll_tcp.c: listeners and connectors;
 * epoll_conn.c: connections and their transport operations). Not a public
 * header.
 *
 * Every object that sits in epoll embeds a weft__ep_obj; epoll's data.ptr
 * points at it, and its kind says which struct
 * contains it. Objects closed while the loop dispatches a batch of events are
 * never freed at once: they go on the reactor's zombie list and are freed at
 * the end of the turn, so a later event of the same batch can still look at
 * them (and see they are dead).
 *
 * Work that must happen "one loop turn later" (an abort's connection_lost, a
 * flush of written bytes, a connect that failed at once) is queued on the
 * reactor's pending list; each turn services, after its I/O and timers, the
 * entries queued before servicing began; work queued while servicing waits
 * for the next turn.
 */
#ifndef WEFT_EPOLL_INTERNAL_H
#define WEFT_EPOLL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "reactor/reactor_internal.h"
#include "reactor/timerq.h"

#define WEFT__EP_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

typedef enum weft__ep_kind {
    WEFT__EP_LISTENER = 1,
    WEFT__EP_CONN,
    WEFT__EP_CONNECTOR,
} weft__ep_kind;

typedef struct weft__ep_obj weft__ep_obj;

/* Doubly linked list node; lists keep creation order (teardown order). */
typedef struct weft__ep_link {
    struct weft__ep_link *prev, *next;
} weft__ep_link;

struct weft__ep_obj {
    weft__ep_kind kind;
    int fd;             /* -1 when closed */
    uint32_t mask;      /* events registered in epoll; 0: not registered */
    bool dead;          /* closed: on the zombie list, freed at end of turn */
    bool pending;       /* on the pending list */
    weft__ep_obj *pending_next;
    weft__ep_obj *zombie_next;
    weft__ep_link link; /* in the reactor's list for its kind */
};

typedef struct weft__ep_reactor {
    weft__timed_reactor base; /* first: the reactor header, then the timer queue */
    int epfd;
    bool running;  /* inside run / run_until */
    bool stopping; /* stop() called */
    bool freeing;  /* inside weft_reactor_free: no new work accepted */
    uint64_t rng_state;
    weft__ep_link conns, listeners, connectors; /* list heads */
    size_t conns_open, listeners_open, connectors_busy;
    weft__ep_obj *pending_head, *pending_tail;
    weft__ep_obj *zombies;
    uint8_t *read_buf; /* scratch for recv, WEFT__EP_READ_BYTES */
} weft__ep_reactor;

#define WEFT__EP_READ_BYTES (64u * 1024u)
#define WEFT__EP_SEND_BYTES_MAX (128u * 1024u) /* per send() call */
#define WEFT__EP_READS_PER_EVENT 16            /* recv() calls per readable event */
#define WEFT__EP_ACCEPTS_PER_EVENT 64
#define WEFT__EP_BACKLOG 1024

/* ---- provided by epoll.c ---- */
void weft__ep_list_init(weft__ep_link *head);
void weft__ep_list_push(weft__ep_link *head, weft__ep_link *node);
void weft__ep_list_remove(weft__ep_link *node);
/* Register obj for `want` events (ADD / MOD / DEL as needed). errno-free: a
 * weft code. */
int weft__ep_watch(weft__ep_reactor *r, weft__ep_obj *obj, uint32_t want);
/* Unregister (if registered) and close obj's fd. */
void weft__ep_close_fd(weft__ep_reactor *r, weft__ep_obj *obj);
/* Queue obj for the next turn (no-op if already queued). */
void weft__ep_defer(weft__ep_reactor *r, weft__ep_obj *obj);
/* Mark obj dead and queue it to be freed at the end of the turn. */
void weft__ep_bury(weft__ep_reactor *r, weft__ep_obj *obj);
/* errno → weft error code. */
int weft__ep_errno(int e);

struct sockaddr_in;
typedef struct weft__ep_conn weft__ep_conn;
typedef struct weft__ep_connector weft__ep_connector;

/* ---- provided by epoll_conn.c ---- */
/* A connected socket (fd is taken): allocate the connection, register it,
 * build its protocol with f. NULL when the socket was closed instead: out of
 * memory, registration failed, or build_protocol returned NULL (*refused). */
weft__ep_conn *weft__ep_conn_open(weft__ep_reactor *r, int fd, weft_factory *f,
                                  const weft_address *peer, bool *refused);
/* Attach the client-side connector (NULL on the server side), whose factory
 * hook runs when the connection ends, then run connection_made. */
void weft__ep_conn_start(weft__ep_conn *c, weft__ep_connector *cn);
/* The connector is being freed: the connection goes on without its hooks. */
void weft__ep_conn_detach(weft__ep_conn *c);
void weft__ep_conn_dispatch(weft__ep_obj *obj, uint32_t events);
void weft__ep_conn_service(weft__ep_obj *obj);
void weft__ep_conn_free(weft__ep_obj *obj);
/* Teardown: every connection ends with ConnectionAborted (peers: reset). */
void weft__ep_conn_close_all(weft__ep_reactor *r);
/* Socket helpers shared by connections and connectors. */
void weft__ep_address_from(const struct sockaddr_in *sa, weft_address *out);
void weft__ep_local_address(int fd, weft_address *out); /* getsockname */
int weft__ep_socket_error(int fd); /* SO_ERROR (or getsockopt's errno) */
void weft__ep_set_nodelay(int fd);

/* ---- provided by epoll_tcp.c ---- */
/* An established connection of the connector ended (reason borrowed): the
 * client factory's connection_lost hook, unless the reactor is freeing. */
void weft__ep_connector_conn_lost(weft__ep_connector *cn, const weft_failure *reason);
int weft__ep_listen(weft_reactor *r, const weft_endpoint *ep, weft_factory *f, weft_listener **out);
int weft__ep_connect(weft_reactor *r, const weft_endpoint *ep, weft_factory *f,
                     weft_connector **out);
/* An epoll event for obj. */
void weft__ep_dispatch(weft__ep_reactor *r, weft__ep_obj *obj, uint32_t events);
/* A pending entry's turn came. */
void weft__ep_service(weft__ep_reactor *r, weft__ep_obj *obj);
/* Free a buried object's memory (no callbacks). */
void weft__ep_free_obj(weft__ep_obj *obj);
/* Teardown: close every connection (ConnectionAborted, destroy), connector
 * and listener. */
void weft__ep_close_all(weft__ep_reactor *r);

#endif
