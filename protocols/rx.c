/* rx.c: the receive loop the framing receivers share.
 *
 * A receiver consumes its input in place: a chunk handed to it by the
 * transport is parsed where it lies, and only a trailing partial frame is
 * copied (into the receiver's own bounded buffer). Two situations need bytes
 * to wait: the receiver is paused in the middle of a chunk, or a hook feeds
 * more data while the loop is running (Twisted's _busyReceiving). Those bytes
 * go to the "held" buffer, bounded by held_max, and the loop that is already
 * running consumes them in order once the current input is done. That makes
 * every re-entrant call a plain append: nothing recurses.
 *
 * Held bytes are consumed from a second buffer (cur) swapped with held, so
 * hooks may append to held while the loop reads cur; whatever a stop leaves
 * unconsumed goes back to the front of held.
 */
#include <string.h>

#include "protocols/proto_internal.h"

int weft__grow(uint8_t **buf, size_t *cap, size_t need, size_t limit)
{
    if (need <= *cap)
        return WEFT_OK;
    size_t ncap = *cap ? *cap * 2 : 64;
    if (ncap < need)
        ncap = need;
    if (ncap > limit)
        ncap = limit;
    if (ncap < need)
        ncap = need;
    uint8_t *nb = weft_realloc(*buf, ncap);
    if (!nb)
        return WEFT_ENOMEM;
    *buf = nb;
    *cap = ncap;
    return WEFT_OK;
}

int weft__rx_hold(weft_proto_rx_ *rx, size_t held_max, const uint8_t *data, size_t len)
{
    if (len == 0)
        return WEFT_OK;
    if (len > held_max || rx->held_len > held_max - len)
        return WEFT_ENOBUFS;
    int err = weft__grow(&rx->held, &rx->held_cap, rx->held_len + len, held_max);
    if (err)
        return err;
    memcpy(rx->held + rx->held_len, data, len);
    rx->held_len += len;
    return WEFT_OK;
}

int weft__rx_hold_front(weft_proto_rx_ *rx, size_t held_max, const uint8_t *data, size_t len)
{
    if (len == 0)
        return WEFT_OK;
    if (len > held_max || rx->held_len > held_max - len)
        return WEFT_ENOBUFS;
    int err = weft__grow(&rx->held, &rx->held_cap, rx->held_len + len, held_max);
    if (err)
        return err;
    memmove(rx->held + len, rx->held, rx->held_len);
    memcpy(rx->held, data, len);
    rx->held_len += len;
    return WEFT_OK;
}

void weft__rx_drop(weft_proto_rx_ *rx)
{
    rx->in_len = 0;
    rx->held_len = 0;
}

void weft__rx_free(weft_proto_rx_ *rx)
{
    weft_free(rx->held);
    weft_free(rx->cur);
    memset(rx, 0, sizeof *rx);
}

/* Consume data[0..len); put back what was left. */
static int run_one(weft_proto_rx_ *rx, size_t held_max, const uint8_t *data, size_t len,
                   weft__rx_consume_fn consume, void *self)
{
    rx->in = data;
    rx->in_len = len;
    consume(self);
    const uint8_t *rest = rx->in;
    size_t rest_len = rx->in_len;
    rx->in = NULL;
    rx->in_len = 0;
    return weft__rx_hold_front(rx, held_max, rest, rest_len);
}

int weft__rx_feed(weft_proto_rx_ *rx, size_t held_max, const uint8_t *data, size_t len,
                  weft__rx_runnable_fn runnable, weft__rx_consume_fn consume, void *self)
{
    int err = WEFT_OK;
    if (rx->busy || !runnable(self) || rx->held_len > 0) {
        err = weft__rx_hold(rx, held_max, data, len);
        if (err || rx->busy || !runnable(self))
            return err;
        data = NULL;
        len = 0;
    }
    rx->busy = true;
    if (len > 0)
        err = run_one(rx, held_max, data, len, consume, self);
    while (!err && rx->held_len > 0 && runnable(self)) {
        /* Swap: the loop reads cur while hooks append to a fresh held. */
        uint8_t *buf = rx->held;
        size_t n = rx->held_len, cap = rx->held_cap;
        rx->held = rx->cur;
        rx->held_cap = rx->cur_cap;
        rx->held_len = 0;
        rx->cur = buf;
        rx->cur_cap = cap;
        err = run_one(rx, held_max, rx->cur, n, consume, self);
    }
    rx->busy = false;
    return err;
}

int weft__proto_lose(weft_protocol *p)
{
    if (!p->transport)
        return WEFT_ENOTCONN;
    return weft_transport_lose_connection(p->transport);
}
