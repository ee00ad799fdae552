/* proto_internal.h: what the receivers of protocols/ share. Not public. */
#ifndef WEFT_PROTO_INTERNAL_H
#define WEFT_PROTO_INTERNAL_H

#include "weft/protocols.h"

/* Process the input in rx->in[0..rx->in_len): advance rx->in and lower
 * rx->in_len by what was consumed; stop early (leaving bytes) only when the
 * receiver cannot run on (paused); set in_len to 0 to drop the rest. */
typedef void (*weft__rx_consume_fn)(void *self);
typedef bool (*weft__rx_runnable_fn)(const void *self);

/* The feed loop every receiver shares: re-entrant feeds and feeds while
 * paused append to the held bytes; otherwise data is consumed in place, then
 * held bytes are consumed in order until none are left or the receiver
 * cannot run. WEFT_ENOBUFS when held bytes would pass held_max, WEFT_ENOMEM
 * when the held buffer cannot grow (the caller then drops the connection). */
int weft__rx_feed(weft_proto_rx_ *rx, size_t held_max, const uint8_t *data, size_t len,
                  weft__rx_runnable_fn runnable, weft__rx_consume_fn consume, void *self);
/* Append / prepend to the held bytes, bounded by held_max. */
int weft__rx_hold(weft_proto_rx_ *rx, size_t held_max, const uint8_t *data, size_t len);
int weft__rx_hold_front(weft_proto_rx_ *rx, size_t held_max, const uint8_t *data, size_t len);
/* Drop everything unprocessed (the current input and the held bytes). */
void weft__rx_drop(weft_proto_rx_ *rx);
void weft__rx_free(weft_proto_rx_ *rx);
/* Grow *buf (capacity *cap) to hold need bytes, doubling from 64 but never
 * past limit (need <= limit). WEFT_ENOMEM leaves it unchanged. */
int weft__grow(uint8_t **buf, size_t *cap, size_t need, size_t limit);
/* lose_connection on p's transport if it has one. */
int weft__proto_lose(weft_protocol *p);

/* Examples: the shared factory and argument parsing (examples.c). */
typedef struct weft__chat_conn weft__chat_conn;

typedef struct weft__pfactory {
    weft_factory base; /* first: handed to listen/connect */
    const char *name;  /* WEFT_PROTO_* */
    weft_proto_stats stats;
    /* hello */
    char greeting[128];
    /* chat, line protocols */
    size_t line_max;
    weft__chat_conn **clients; /* chat: connected clients, in connect order */
    size_t nclients, clients_cap;
    uint64_t next_id;
    /* chat-client, heartbeat */
    char text[64];
    uint64_t count, expect;
    int64_t interval_ns;
    /* smtp */
    char helo[64];
    char host[64];
    char reject[128];
    bool silent;
    bool quit;
    int64_t timeout_ns;
    weft_smtp_message last;
} weft__pfactory;

/* Every example protocol starts with this: the reactor may hand a wrapping
 * factory in p->factory (weft_connect, reconnecting), so each protocol keeps
 * the example factory that built it. Protocols without lines leave lr
 * zeroed. */
typedef struct weft__exproto {
    weft_line_receiver lr;
    weft__pfactory *pf;
} weft__exproto;

static inline weft__pfactory *weft__pf(weft_protocol *p)
{
    return ((weft__exproto *)p)->pf;
}

/* Allocate a factory of the named example with its defaults. */
weft__pfactory *weft__pfactory_new(const char *name,
                                   weft_protocol *(*build)(weft_factory *f, const weft_address *peer));
/* Stats bookkeeping shared by every example protocol. */
void weft__stats_made(weft__pfactory *f);
void weft__stats_lost(weft__pfactory *f, const weft_failure *reason);
/* Free the last accepted message (smtp.c). */
void weft__smtp_message_clear(weft_smtp_message *m);
/* build_protocol functions of smtp.c. */
weft_protocol *weft__smtp_server_build(weft_factory *f, const weft_address *peer);
weft_protocol *weft__smtp_client_build(weft_factory *f, const weft_address *peer);
typedef struct weft__kv {
    const char *key;
    const char *value;
} weft__kv;
/* Split "k=v,k=v" (commas or spaces; a word without '=' after a space
 * continues the previous value) into at most max pairs, written into buf
 * (strlen(text) + 1 bytes), which the pairs point into. Returns the number
 * of pairs, -1 on a malformed pair or too many. */
int weft__parse_args(const char *text, char *buf, weft__kv *out, int max);
/* Parse a decimal unsigned value; false on junk or overflow. */
bool weft__parse_u64(const char *s, uint64_t *out);

#endif
