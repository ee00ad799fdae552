/* string_transport.h: an in-memory weft_transport for unit tests.
 *
 * Records every write, and every lose_connection, abort, half-close and
 * pause/resume call. Unlike Twisted's StringTransport it can end the
 * connection honestly: string_transport_lose() delivers connection_lost with
 * the reason given, once, clears p->transport, and then runs destroy.
 * Writes after lose_connection/abort return WEFT_ECLOSED, as a real transport.
 * weft_transport_disconnecting is true after lose_connection or abort (the
 * disconnecting field) and once connection_lost was delivered.
 * It calls nothing in the library, so it links into every test binary.
 */
#ifndef WEFT_TEST_STRING_TRANSPORT_H
#define WEFT_TEST_STRING_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/reactor.h"

typedef struct string_transport {
    weft_transport base;
    weft_protocol *protocol;
    uint8_t *data; /* everything written, in order (malloc'd) */
    size_t len, cap;
    size_t writes;           /* write/writev calls that were accepted */
    unsigned lose_calls, abort_calls, half_close_calls;
    unsigned pause_calls, resume_calls;
    bool disconnecting;      /* lose_connection or abort was called */
    bool aborted;
    bool write_closed;
    bool reading_paused;
    bool lost;               /* connection_lost was delivered */
    bool has_producer;
    weft_producer producer;
    weft_address peer, host;
} string_transport;

void string_transport_init(string_transport *st);
/* Free the recorded bytes. */
void string_transport_free(string_transport *st);
/* Attach p (sets p->transport, p->reactor = r) and run connection_made. */
void string_transport_connect(string_transport *st, weft_protocol *p, weft_reactor *r);
/* data_received(data, len) on the attached protocol. */
void string_transport_deliver(string_transport *st, const void *data, size_t len);
void string_transport_deliver_str(string_transport *st, const char *s);
/* connection_lost with a Failure of the given type (e.g. WEFT_REASON_DONE),
 * then destroy (if destroy is true and the protocol has one). Once only. */
void string_transport_lose(string_transport *st, const char *reason_type, bool destroy);
/* The recorded bytes as a NUL-terminated string (valid until the next write
 * or clear), and clearing them. */
const char *string_transport_value(string_transport *st);
void string_transport_clear(string_transport *st);

#endif
