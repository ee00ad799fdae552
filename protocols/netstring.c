/* netstring.c: netstrings, "<len>:<data>," (Twisted's NetstringReceiver).
 *
 * A byte-at-a-time state machine for the length and the comma, and in-place
 * delivery for payloads that lie whole (with their comma) inside the chunk
 * being processed; otherwise the payload is gathered in part_, never more
 * than string_max bytes. The length is validated as its digits arrive:
 * "0" or no leading zero, at most ceil(log10(string_max)) + 1 digits, never
 * more than string_max; so a hostile peer cannot make the receiver parse or
 * buffer more than a handful of bytes before it is refused.
 *
 * Bad input drops the connection, sets broken_peer and error = BadFrame,
 * and the receiver ignores everything after it.
 */
#include <string.h>

#include "protocols/proto_internal.h"

enum { NS_LENGTH, NS_PAYLOAD, NS_COMMA };

static bool ns_runnable(const void *self)
{
    const weft_netstring_receiver *nr = self;
    return !nr->paused && !nr->broken_peer && !nr->disconnecting;
}

int weft_netstring_receiver_init(weft_netstring_receiver *nr, const weft_netstring_hooks *hooks)
{
    if (!nr || !hooks || !hooks->string_received)
        return WEFT_EINVAL;
    weft_protocol base = nr->base;
    memset(nr, 0, sizeof *nr);
    nr->base = base;
    nr->hooks = hooks;
    nr->string_max = WEFT_INT_STRING_MAX_DEFAULT;
    nr->held_max = WEFT_PROTO_HELD_MAX;
    nr->state_ = NS_LENGTH;
    return WEFT_OK;
}

void weft_netstring_receiver_cleanup(weft_netstring_receiver *nr)
{
    if (!nr)
        return;
    weft_free(nr->part_);
    nr->part_ = NULL;
    nr->part_len_ = nr->part_cap_ = 0;
    weft__rx_free(&nr->rx_);
}

int weft_netstring_receiver_set_string_max(weft_netstring_receiver *nr, size_t string_max)
{
    if (string_max == 0 || string_max > SIZE_MAX / 2)
        return WEFT_EINVAL;
    nr->string_max = string_max;
    return WEFT_OK;
}

/* ceil(log10(m)) + 1, in integers: the smallest k with 10^k >= m, plus one. */
static size_t digits_max(size_t m)
{
    size_t k = 0;
    uint64_t p = 1;
    while (p < m) {
        p *= 10;
        k++;
    }
    return k + 1;
}

static void bad(weft_netstring_receiver *nr, const char *what)
{
    nr->broken_peer = true;
    if (!nr->error)
        nr->error = WEFT_REASON_BAD_FRAME;
    nr->detail = what;
    nr->disconnecting = true;
    nr->part_len_ = 0;
    weft__rx_drop(&nr->rx_);
    weft__proto_lose(&nr->base);
}

static void deliver(weft_netstring_receiver *nr, const uint8_t *data, size_t len)
{
    static const uint8_t empty[1] = {0};
    nr->strings_received++;
    nr->hooks->string_received(nr, data ? data : empty, len);
}

static void ns_consume(void *self)
{
    weft_netstring_receiver *nr = self;
    weft_proto_rx_ *rx = &nr->rx_;
    while (rx->in_len > 0 && ns_runnable(nr)) {
        uint8_t c = rx->in[0];
        switch (nr->state_) {
        case NS_LENGTH:
            if (c >= '0' && c <= '9') {
                if (nr->digits_ > 0 && nr->leading_zero_) {
                    bad(nr, "length with a leading zero");
                    break;
                }
                if (nr->digits_ == 0) {
                    nr->leading_zero_ = c == '0';
                    nr->length_ = 0;
                }
                nr->digits_++;
                if (nr->digits_ > digits_max(nr->string_max)) {
                    bad(nr, "length specification too long");
                    break;
                }
                nr->length_ = nr->length_ * 10 + (uint64_t)(c - '0');
                if (nr->length_ > nr->string_max) {
                    bad(nr, "length over the maximum");
                    break;
                }
                rx->in++;
                rx->in_len--;
            } else if (c == ':') {
                if (nr->digits_ == 0) {
                    bad(nr, "missing length");
                    break;
                }
                rx->in++;
                rx->in_len--;
                nr->part_len_ = 0;
                nr->state_ = nr->length_ == 0 ? NS_COMMA : NS_PAYLOAD;
            } else {
                bad(nr, nr->digits_ == 0 ? "missing length" : "missing colon");
            }
            break;
        case NS_PAYLOAD: {
            size_t need = (size_t)nr->length_ - nr->part_len_;
            if (nr->part_len_ == 0 && rx->in_len > need) {
                /* Whole payload and its comma are here: no copy. */
                if (rx->in[need] != ',') {
                    bad(nr, "missing comma");
                    break;
                }
                const uint8_t *s = rx->in;
                rx->in += need + 1;
                rx->in_len -= need + 1;
                nr->state_ = NS_LENGTH;
                nr->digits_ = 0;
                deliver(nr, s, need);
                break;
            }
            size_t take = need < rx->in_len ? need : rx->in_len;
            if (weft__grow(&nr->part_, &nr->part_cap_, nr->part_len_ + take, nr->string_max)) {
                bad(nr, "out of memory");
                nr->error = WEFT_PROTO_REASON_NO_MEMORY;
                break;
            }
            memcpy(nr->part_ + nr->part_len_, rx->in, take);
            nr->part_len_ += take;
            rx->in += take;
            rx->in_len -= take;
            if (nr->part_len_ == nr->length_)
                nr->state_ = NS_COMMA;
            break;
        }
        case NS_COMMA:
        default:
            if (c != ',') {
                bad(nr, "missing comma");
                break;
            }
            rx->in++;
            rx->in_len--;
            nr->state_ = NS_LENGTH;
            nr->digits_ = 0;
            {
                size_t n = nr->part_len_;
                nr->part_len_ = 0;
                deliver(nr, nr->part_, n);
            }
            break;
        }
    }
    if (nr->broken_peer || nr->disconnecting)
        rx->in_len = 0;
}

int weft_netstring_receiver_feed(weft_netstring_receiver *nr, const uint8_t *data, size_t len)
{
    if (nr->broken_peer || nr->disconnecting)
        return WEFT_ECLOSED;
    int err = weft__rx_feed(&nr->rx_, nr->held_max, data, len, ns_runnable, ns_consume, nr);
    if (err) {
        bad(nr, "receive buffer full");
        nr->error = err == WEFT_ENOBUFS ? WEFT_PROTO_REASON_BUFFER_FULL : WEFT_PROTO_REASON_NO_MEMORY;
    }
    return err;
}

void weft_netstring_receiver_data_received(weft_protocol *p, const uint8_t *data, size_t len)
{
    (void)weft_netstring_receiver_feed((weft_netstring_receiver *)p, data, len);
}

int weft_netstring_receiver_send_string(weft_netstring_receiver *nr, const void *data, size_t len)
{
    if (!nr->base.transport)
        return WEFT_ENOTCONN;
    char head[24];
    size_t hl = 0;
    char digits[21];
    size_t nd = 0;
    size_t v = len;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (nd > 0)
        head[hl++] = digits[--nd];
    head[hl++] = ':';
    weft_iovec iov[3] = {{head, hl}, {data, len}, {",", 1}};
    return weft_transport_writev(nr->base.transport, iov, 3);
}

void weft_netstring_receiver_pause(weft_netstring_receiver *nr)
{
    if (nr->paused)
        return;
    nr->paused = true;
    if (nr->base.transport)
        (void)weft_transport_pause_reading(nr->base.transport);
}

void weft_netstring_receiver_resume(weft_netstring_receiver *nr)
{
    if (!nr->paused)
        return;
    nr->paused = false;
    if (nr->base.transport)
        (void)weft_transport_resume_reading(nr->base.transport);
    if (!nr->rx_.busy && !nr->broken_peer && !nr->disconnecting)
        (void)weft_netstring_receiver_feed(nr, NULL, 0);
}
