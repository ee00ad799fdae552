/* intn.c: length-prefixed framing (Twisted's Int32/Int16/Int8StringReceiver).
 *
 * Each string is a big-endian unsigned prefix of 1, 2 or 4 bytes followed by
 * that many bytes. A string that lies whole inside the chunk being processed
 * is delivered in place; otherwise its prefix and payload are gathered in
 * part_, which is sized by the announced length once the prefix is complete,
 * and so never holds more than prefix_bytes + string_max bytes.
 *
 * A prefix over string_max is reported before a single payload byte is
 * buffered. From then on the stream's framing is lost, so the receiver is
 * "broken" and ignores what follows (Twisted keeps the bytes and reports the
 * same prefix again on the next data; weft bounds memory instead).
 */
#include <string.h>

#include "protocols/proto_internal.h"

static bool int_runnable(const void *self)
{
    const weft_int_receiver *ir = self;
    return !ir->paused && !ir->broken && !ir->disconnecting;
}

int weft_int_receiver_init(weft_int_receiver *ir, unsigned prefix_bytes, const weft_int_hooks *hooks)
{
    if (!ir || !hooks || !hooks->string_received)
        return WEFT_EINVAL;
    if (prefix_bytes != 1 && prefix_bytes != 2 && prefix_bytes != 4)
        return WEFT_EINVAL;
    weft_protocol base = ir->base;
    memset(ir, 0, sizeof *ir);
    ir->base = base;
    ir->hooks = hooks;
    ir->prefix_bytes = prefix_bytes;
    ir->string_max = WEFT_INT_STRING_MAX_DEFAULT;
    /* Twisted keeps MAX_LENGTH = 99999 for every prefix; a prefix cannot
     * announce more than its own maximum anyway. */
    uint64_t prefix_max = (UINT64_C(1) << (8 * prefix_bytes)) - 1;
    if (ir->string_max > prefix_max)
        ir->string_max = (size_t)prefix_max;
    ir->held_max = WEFT_PROTO_HELD_MAX;
    return WEFT_OK;
}

void weft_int_receiver_cleanup(weft_int_receiver *ir)
{
    if (!ir)
        return;
    weft_free(ir->part_);
    ir->part_ = NULL;
    ir->part_len_ = ir->part_cap_ = 0;
    weft__rx_free(&ir->rx_);
}

int weft_int_receiver_set_string_max(weft_int_receiver *ir, size_t string_max)
{
    uint64_t prefix_max = (UINT64_C(1) << (8 * ir->prefix_bytes)) - 1;
    if ((uint64_t)string_max > prefix_max || string_max > SIZE_MAX / 2)
        return WEFT_EINVAL;
    ir->string_max = string_max;
    return WEFT_OK;
}

static uint64_t read_prefix(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static void fail_and_lose(weft_int_receiver *ir, const char *reason)
{
    if (!ir->error)
        ir->error = reason;
    ir->disconnecting = true;
    ir->part_len_ = 0;
    weft__rx_drop(&ir->rx_);
    weft__proto_lose(&ir->base);
}

int weft_int_receiver_lose_connection(weft_int_receiver *ir, const char *reason)
{
    if (reason && !ir->error)
        ir->error = reason;
    ir->disconnecting = true;
    ir->rx_.in_len = 0;
    return weft__proto_lose(&ir->base);
}

static void too_long(weft_int_receiver *ir, uint64_t length)
{
    ir->broken = true;
    ir->part_len_ = 0;
    weft__rx_drop(&ir->rx_);
    if (ir->hooks->length_limit_exceeded)
        ir->hooks->length_limit_exceeded(ir, length);
    else
        fail_and_lose(ir, WEFT_REASON_FRAME_TOO_LONG);
}

static void deliver(weft_int_receiver *ir, const uint8_t *data, size_t len)
{
    ir->strings_received++;
    ir->hooks->string_received(ir, data, len);
}

static void int_consume(void *self)
{
    weft_int_receiver *ir = self;
    weft_proto_rx_ *rx = &ir->rx_;
    const size_t pb = ir->prefix_bytes;
    while (rx->in_len > 0 && int_runnable(ir)) {
        if (ir->part_len_ == 0 && rx->in_len >= pb) {
            uint64_t length = read_prefix(rx->in, (unsigned)pb);
            if (length > ir->string_max) {
                too_long(ir, length);
                break;
            }
            if (rx->in_len - pb >= length) {
                const uint8_t *s = rx->in + pb;
                rx->in += pb + length;
                rx->in_len -= pb + (size_t)length;
                deliver(ir, s, (size_t)length);
                continue;
            }
        }
        /* Gather into part_: first the prefix, then the payload. */
        size_t want = pb;
        if (ir->part_len_ >= pb) {
            uint64_t length = read_prefix(ir->part_, (unsigned)pb);
            want = pb + (size_t)length;
        }
        size_t take = want - ir->part_len_;
        if (take > rx->in_len)
            take = rx->in_len;
        if (weft__grow(&ir->part_, &ir->part_cap_, ir->part_len_ + take, pb + ir->string_max)) {
            fail_and_lose(ir, WEFT_PROTO_REASON_NO_MEMORY);
            break;
        }
        memcpy(ir->part_ + ir->part_len_, rx->in, take);
        ir->part_len_ += take;
        rx->in += take;
        rx->in_len -= take;
        if (ir->part_len_ == pb && want == pb) {
            uint64_t length = read_prefix(ir->part_, (unsigned)pb);
            if (length > ir->string_max) {
                too_long(ir, length);
                break;
            }
            if (length > 0)
                continue;
        }
        if (ir->part_len_ >= pb) {
            uint64_t length = read_prefix(ir->part_, (unsigned)pb);
            if (ir->part_len_ == pb + length) {
                ir->part_len_ = 0;
                deliver(ir, ir->part_ + pb, (size_t)length);
            }
        }
    }
    if (ir->broken || ir->disconnecting)
        rx->in_len = 0;
}

int weft_int_receiver_feed(weft_int_receiver *ir, const uint8_t *data, size_t len)
{
    if (ir->disconnecting || ir->broken)
        return WEFT_ECLOSED;
    int err = weft__rx_feed(&ir->rx_, ir->held_max, data, len, int_runnable, int_consume, ir);
    if (err)
        fail_and_lose(ir, err == WEFT_ENOBUFS ? WEFT_PROTO_REASON_BUFFER_FULL
                                              : WEFT_PROTO_REASON_NO_MEMORY);
    return err;
}

void weft_int_receiver_data_received(weft_protocol *p, const uint8_t *data, size_t len)
{
    (void)weft_int_receiver_feed((weft_int_receiver *)p, data, len);
}

int weft_int_receiver_send_string(weft_int_receiver *ir, const void *data, size_t len)
{
    uint64_t prefix_max = (UINT64_C(1) << (8 * ir->prefix_bytes)) - 1;
    if ((uint64_t)len > prefix_max || len > ir->string_max)
        return WEFT_ELIMIT;
    if (!ir->base.transport)
        return WEFT_ENOTCONN;
    uint8_t prefix[4];
    for (unsigned i = 0; i < ir->prefix_bytes; i++)
        prefix[i] = (uint8_t)(len >> (8 * (ir->prefix_bytes - 1 - i)));
    weft_iovec iov[2] = {{prefix, ir->prefix_bytes}, {data, len}};
    return weft_transport_writev(ir->base.transport, iov, len > 0 ? 2 : 1);
}

void weft_int_receiver_pause(weft_int_receiver *ir)
{
    if (ir->paused)
        return;
    ir->paused = true;
    if (ir->base.transport)
        (void)weft_transport_pause_reading(ir->base.transport);
}

void weft_int_receiver_resume(weft_int_receiver *ir)
{
    if (!ir->paused)
        return;
    ir->paused = false;
    if (ir->base.transport)
        (void)weft_transport_resume_reading(ir->base.transport);
    if (!ir->rx_.busy && !ir->broken && !ir->disconnecting)
        (void)weft_int_receiver_feed(ir, NULL, 0);
}
