/* line.c: the line receiver (Twisted's LineReceiver).
 *
 * Input is split at the delimiter. A line that lies whole inside the chunk
 * being processed is handed to line_received where it lies; only a trailing
 * partial line is copied, into part_, which never holds more than
 * line_max + delimiter_len bytes: when it would, the line is too long. When a
 * partial line is pending, the next bytes are appended to it just far enough
 * to find the delimiter (which may straddle the two), and the consumed count
 * tells where the rest of the chunk resumes.
 *
 * Invariants between two steps of the loop: part_ holds no complete
 * delimiter, except right after set_delimiter (which re-queues it, see
 * requeue_all); the unprocessed input is part_ + rx_.in + rx_.held, in that
 * order. Hooks may call any function here: mode switches and pauses only set
 * flags the loop reads, feeds append to held, clear empties all three.
 *
 * As Twisted's LineReceiver, the loop stops once the transport says it is
 * disconnecting (weft_transport_disconnecting: this side called
 * lose_connection or abort, e.g. from line_received): no further line of the
 * chunk is delivered, and the unparsed rest is dropped, as are line-mode
 * bytes that arrive later. Raw mode is not affected (Twisted checks only
 * after a line). A transport without the query never says so.
 */
#include <string.h>

#include "protocols/proto_internal.h"

/* The transport is going away: lines are no longer delivered. */
static bool transport_closing(weft_line_receiver *lr)
{
    return lr->base.transport != NULL && weft_transport_disconnecting(lr->base.transport);
}

static bool line_runnable(const void *self)
{
    const weft_line_receiver *lr = self;
    return !lr->paused && !lr->disconnecting;
}

int weft_line_receiver_init(weft_line_receiver *lr, const weft_line_hooks *hooks)
{
    if (!lr || !hooks || !hooks->line_received)
        return WEFT_EINVAL;
    weft_protocol base = lr->base;
    memset(lr, 0, sizeof *lr);
    lr->base = base;
    lr->hooks = hooks;
    memcpy(lr->delimiter, "\r\n", 2);
    lr->delimiter_len = 2;
    lr->line_max = WEFT_LINE_MAX_DEFAULT;
    lr->held_max = WEFT_PROTO_HELD_MAX;
    lr->line_mode = true;
    return WEFT_OK;
}

void weft_line_receiver_cleanup(weft_line_receiver *lr)
{
    if (!lr)
        return;
    weft_free(lr->part_);
    lr->part_ = NULL;
    lr->part_len_ = lr->part_cap_ = 0;
    weft__rx_free(&lr->rx_);
}

/* The whole unprocessed input, part_ + in + held, becomes held again. */
static int requeue_all(weft_line_receiver *lr)
{
    weft_proto_rx_ *rx = &lr->rx_;
    int err = weft__rx_hold_front(rx, lr->held_max, rx->in, rx->in_len);
    if (!err)
        err = weft__rx_hold_front(rx, lr->held_max, lr->part_, lr->part_len_);
    if (!err) {
        rx->in_len = 0;
        lr->part_len_ = 0;
    }
    return err;
}

int weft_line_receiver_set_delimiter(weft_line_receiver *lr, const void *delim, size_t len)
{
    if (!lr || !delim || len == 0 || len > WEFT_LINE_DELIMITER_MAX)
        return WEFT_EINVAL;
    memcpy(lr->delimiter, delim, len);
    lr->delimiter_len = len;
    /* The pending partial line may now contain a delimiter: scan it again. */
    if (lr->part_len_ == 0)
        return WEFT_OK;
    int err = requeue_all(lr);
    if (!err && !lr->rx_.busy)
        err = weft_line_receiver_feed(lr, NULL, 0);
    return err;
}

int weft_line_receiver_set_line_max(weft_line_receiver *lr, size_t line_max)
{
    if (!lr || line_max == 0 || line_max > SIZE_MAX / 2)
        return WEFT_EINVAL;
    lr->line_max = line_max;
    return WEFT_OK;
}

static void fail_and_lose(weft_line_receiver *lr, const char *reason)
{
    if (!lr->error)
        lr->error = reason;
    lr->disconnecting = true;
    weft__rx_drop(&lr->rx_);
    lr->part_len_ = 0;
    weft__proto_lose(&lr->base);
}

int weft_line_receiver_lose_connection(weft_line_receiver *lr, const char *reason)
{
    if (reason && !lr->error)
        lr->error = reason;
    lr->disconnecting = true;
    lr->rx_.in_len = 0;
    return weft__proto_lose(&lr->base);
}

static void exceeded(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    /* Twisted clears its buffer before the call: everything unparsed goes. */
    lr->part_len_ = 0;
    weft__rx_drop(&lr->rx_);
    if (lr->hooks->line_length_exceeded)
        lr->hooks->line_length_exceeded(lr, data, len);
    else
        fail_and_lose(lr, WEFT_REASON_LINE_TOO_LONG);
}

static const uint8_t *find_delim(const weft_line_receiver *lr, const uint8_t *p, size_t len)
{
    size_t dl = lr->delimiter_len;
    if (len < dl)
        return NULL;
    const uint8_t *end = p + len - dl + 1;
    uint8_t first = lr->delimiter[0];
    if (len < 32) { /* short scans (small chunks): a plain loop beats memchr */
        for (; p < end; p++)
            if (*p == first && memcmp(p, lr->delimiter, dl) == 0)
                return p;
        return NULL;
    }
    while (p < end) {
        const uint8_t *q = memchr(p, first, (size_t)(end - p));
        if (!q)
            return NULL;
        if (memcmp(q, lr->delimiter, dl) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}

static void deliver_line(weft_line_receiver *lr, const uint8_t *line, size_t len)
{
    lr->lines_received++;
    lr->hooks->line_received(lr, line, len);
}

/* One step with no partial line pending: parse rx.in in place. */
static void step_direct(weft_line_receiver *lr)
{
    weft_proto_rx_ *rx = &lr->rx_;
    size_t dl = lr->delimiter_len;
    const uint8_t *in = rx->in;
    const uint8_t *d = find_delim(lr, in, rx->in_len);
    if (d) {
        size_t n = (size_t)(d - in);
        if (n > lr->line_max) {
            exceeded(lr, in, rx->in_len);
            return;
        }
        rx->in += n + dl;
        rx->in_len -= n + dl;
        deliver_line(lr, in, n);
        return;
    }
    if (rx->in_len >= lr->line_max + dl) {
        exceeded(lr, in, rx->in_len);
        return;
    }
    if (weft__grow(&lr->part_, &lr->part_cap_, rx->in_len, lr->line_max + dl)) {
        fail_and_lose(lr, WEFT_PROTO_REASON_NO_MEMORY);
        return;
    }
    memcpy(lr->part_, in, rx->in_len);
    lr->part_len_ = rx->in_len;
    rx->in_len = 0;
}

/* One step with a partial line pending: extend it far enough to find the
 * delimiter or to prove the line too long. */
static void step_partial(weft_line_receiver *lr)
{
    weft_proto_rx_ *rx = &lr->rx_;
    size_t dl = lr->delimiter_len;
    size_t cap = lr->line_max + dl;
    size_t old = lr->part_len_;
    if (old >= cap) { /* line_max was lowered under a pending line */
        exceeded(lr, lr->part_, old);
        return;
    }
    size_t take = cap - old;
    if (take > rx->in_len)
        take = rx->in_len;
    if (weft__grow(&lr->part_, &lr->part_cap_, old + take, cap)) {
        fail_and_lose(lr, WEFT_PROTO_REASON_NO_MEMORY);
        return;
    }
    memcpy(lr->part_ + old, rx->in, take);
    size_t from = old >= dl - 1 ? old - (dl - 1) : 0;
    const uint8_t *d = find_delim(lr, lr->part_ + from, old + take - from);
    if (d) {
        size_t n = (size_t)(d - lr->part_);
        if (n + dl <= old) { /* cannot happen: set_delimiter re-queues */
            lr->part_len_ = old;
            if (requeue_all(lr))
                fail_and_lose(lr, WEFT_PROTO_REASON_BUFFER_FULL);
            return;
        }
        size_t used = n + dl - old;
        rx->in += used;
        rx->in_len -= used;
        lr->part_len_ = 0;
        /* part_ is not written again until the hook returns. */
        deliver_line(lr, lr->part_, n);
        return;
    }
    if (old + take >= cap) {
        exceeded(lr, lr->part_, old + take);
        return;
    }
    lr->part_len_ = old + take;
    rx->in += take;
    rx->in_len -= take;
}

/* Twisted returns from dataReceived once the transport is disconnecting;
 * what was not parsed can never become a line, so it goes. */
static void stop_closing(weft_line_receiver *lr)
{
    lr->part_len_ = 0;
    weft__rx_drop(&lr->rx_);
}

static void line_consume(void *self)
{
    weft_line_receiver *lr = self;
    weft_proto_rx_ *rx = &lr->rx_;
    while (rx->in_len > 0 && !lr->paused && !lr->disconnecting) {
        if (lr->line_mode && transport_closing(lr)) {
            stop_closing(lr);
            return;
        }
        if (!lr->line_mode) {
            if (lr->part_len_ > 0) {
                size_t n = lr->part_len_;
                lr->part_len_ = 0;
                if (lr->hooks->raw_data_received)
                    lr->hooks->raw_data_received(lr, lr->part_, n);
                continue;
            }
            const uint8_t *d = rx->in;
            size_t n = rx->in_len;
            rx->in += n;
            rx->in_len = 0;
            if (lr->hooks->raw_data_received)
                lr->hooks->raw_data_received(lr, d, n);
            continue;
        }
        uint64_t lines_before = lr->lines_received;
        if (lr->part_len_ == 0)
            step_direct(lr);
        else
            step_partial(lr);
        /* After a line, even one whose hook switched to raw mode. */
        if (lr->lines_received != lines_before && transport_closing(lr)) {
            stop_closing(lr);
            return;
        }
    }
    if (lr->disconnecting)
        rx->in_len = 0;
}

int weft_line_receiver_feed(weft_line_receiver *lr, const uint8_t *data, size_t len)
{
    if (lr->disconnecting)
        return WEFT_ECLOSED;
    int err = weft__rx_feed(&lr->rx_, lr->held_max, data, len, line_runnable, line_consume, lr);
    if (err)
        fail_and_lose(lr, err == WEFT_ENOBUFS ? WEFT_PROTO_REASON_BUFFER_FULL
                                              : WEFT_PROTO_REASON_NO_MEMORY);
    return err;
}

void weft_line_receiver_data_received(weft_protocol *p, const uint8_t *data, size_t len)
{
    (void)weft_line_receiver_feed((weft_line_receiver *)p, data, len);
}

void weft_line_receiver_set_raw_mode(weft_line_receiver *lr)
{
    lr->line_mode = false;
}

int weft_line_receiver_set_line_mode(weft_line_receiver *lr, const void *extra, size_t len)
{
    lr->line_mode = true;
    if (!extra || len == 0)
        return WEFT_OK;
    /* extra comes before anything not yet processed. When called from a hook
     * the rest of the current input is still in rx.in: it goes after extra. */
    weft_proto_rx_ *rx = &lr->rx_;
    int err = weft__rx_hold_front(rx, lr->held_max, rx->in, rx->in_len);
    if (!err) {
        rx->in_len = 0;
        err = weft__rx_hold_front(rx, lr->held_max, extra, len);
    }
    if (err)
        return err;
    if (!rx->busy)
        return weft_line_receiver_feed(lr, NULL, 0);
    return WEFT_OK;
}

size_t weft_line_receiver_clear_line_buffer(weft_line_receiver *lr, uint8_t *out, size_t out_max)
{
    weft_proto_rx_ *rx = &lr->rx_;
    const uint8_t *parts[3] = {lr->part_, rx->in, rx->held};
    size_t lens[3] = {lr->part_len_, rx->in_len, rx->held_len};
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        if (out && total < out_max && lens[i] > 0) {
            size_t n = lens[i] < out_max - total ? lens[i] : out_max - total;
            memcpy(out + total, parts[i], n);
        }
        total += lens[i];
    }
    lr->part_len_ = 0;
    weft__rx_drop(rx);
    return total;
}

int weft_line_receiver_send_line(weft_line_receiver *lr, const void *line, size_t len)
{
    if (!lr->base.transport)
        return WEFT_ENOTCONN;
    weft_iovec iov[2] = {{line, len}, {lr->delimiter, lr->delimiter_len}};
    if (len == 0)
        return weft_transport_write(lr->base.transport, lr->delimiter, lr->delimiter_len);
    return weft_transport_writev(lr->base.transport, iov, 2);
}

void weft_line_receiver_pause(weft_line_receiver *lr)
{
    if (lr->paused)
        return;
    lr->paused = true;
    if (lr->base.transport)
        (void)weft_transport_pause_reading(lr->base.transport);
}

void weft_line_receiver_resume(weft_line_receiver *lr)
{
    if (!lr->paused || lr->stopped)
        return;
    lr->paused = false;
    if (lr->base.transport)
        (void)weft_transport_resume_reading(lr->base.transport);
    /* Inside a hook the running loop picks the held bytes up itself. */
    if (!lr->rx_.busy)
        (void)weft_line_receiver_feed(lr, NULL, 0);
}

void weft_line_receiver_stop_producing(weft_line_receiver *lr)
{
    weft_line_receiver_pause(lr);
    lr->stopped = true;
}
