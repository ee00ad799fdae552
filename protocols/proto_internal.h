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
typedef struct weft__kv {
    const char *key;
    char *value; /* points into a copy owned by the caller */
} weft__kv;
/* Split "k=v,k=v" (commas or spaces) into at most max pairs. The text is
 * modified in place. Returns the number of pairs, -1 on a malformed pair or
 * too many. */
int weft__parse_args(char *text, weft__kv *out, int max);
/* Parse a decimal unsigned value; false on junk or overflow. */
bool weft__parse_u64(const char *s, uint64_t *out);

#endif
