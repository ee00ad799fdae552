/* weft/protocols.h: reusable protocols written against the reactor interface
 * (Twisted's protocols/basic.py and policies.py), and the small example
 * protocols the bundled scenarios use.
 *
 * Everything here includes only weft/reactor.h and weft/defer.h: the same
 * object file runs on the real reactor and on the simulator.
 *
 * FRAMING RECEIVERS IN ONE PARAGRAPH
 * A receiver is embedded as the FIRST member of the user's protocol struct
 * (itself starting with a weft_protocol, so the reactor sees a protocol). The
 * user's weft_protocol_ops sets .data_received to the receiver's
 * *_data_received function (or calls *_feed from its own), and calls
 * *_cleanup from .destroy (or connection_lost) to free the receiver's buffers.
 * Hooks receive borrowed bytes, valid only during the call. Each receiver keeps
 * two bounded buffers: the partial frame (never larger than the frame limit
 * plus its framing bytes) and the bytes held back while paused or fed
 * re-entrantly (never larger than held_max, default WEFT_PROTO_HELD_MAX; past
 * it the connection is dropped with reason WEFT_PROTO_REASON_BUFFER_FULL).
 * Complete frames that lie whole inside one received chunk are delivered in
 * place, without copying.
 *
 * "Drop the connection" below means weft_transport_lose_connection on the
 * protocol's transport (when it has one), after setting the receiver's
 * `error` to the reason's Failure type name. No recursion anywhere: a hook
 * that feeds data back, switches modes or clears buffers only changes state
 * that the running loop reads.
 */
#ifndef WEFT_PROTOCOLS_H
#define WEFT_PROTOCOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/defer.h"
#include "weft/reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reason recorded when held-back bytes pass held_max. */
#define WEFT_PROTO_REASON_BUFFER_FULL "ReceiveBufferFull"
/* Reason recorded when a receive buffer could not be allocated. */
#define WEFT_PROTO_REASON_NO_MEMORY "OutOfMemory"

/* Bytes held back while paused (the rest of a chunk, plus anything a
 * transport delivers before honouring the pause): as much as a transport may
 * buffer. Allocated only when needed. */
#define WEFT_PROTO_HELD_MAX WEFT_TRANSPORT_BUFFER_MAX

/* Internal state shared by the receivers: do not touch. */
typedef struct weft_proto_rx_ {
    uint8_t *held;      /* bytes waiting: paused, re-entrant feeds, extra */
    size_t held_len, held_cap;
    uint8_t *cur;       /* the held bytes being processed now */
    size_t cur_cap;
    const uint8_t *in;  /* the input being processed: in[0..in_len) */
    size_t in_len;
    bool busy;
} weft_proto_rx_;

/* ======================================================== Line receiver */

#define WEFT_LINE_MAX_DEFAULT 16384u
#define WEFT_LINE_DELIMITER_MAX 16u

typedef struct weft_line_receiver weft_line_receiver;

typedef struct weft_line_hooks {
    /* A complete line, without its delimiter. Required. */
    void (*line_received)(weft_line_receiver *lr, const uint8_t *line, size_t len);
    /* Raw mode data. NULL: raw data is dropped. */
    void (*raw_data_received)(weft_line_receiver *lr, const uint8_t *data, size_t len);
    /* A line over line_max. data is what Twisted passes: the overlong line,
     * its delimiter and the rest of the chunk when a delimiter was seen; the
     * first line_max + delimiter_len bytes when none was. Everything
     * unparsed is dropped after the call. NULL: the default, which drops the
     * connection with error = WEFT_REASON_LINE_TOO_LONG. */
    void (*line_length_exceeded)(weft_line_receiver *lr, const uint8_t *data, size_t len);
} weft_line_hooks;

struct weft_line_receiver {
    weft_protocol base; /* first: the reactor sees this */
    const weft_line_hooks *hooks;
    /* Settings (use the setters). */
    uint8_t delimiter[WEFT_LINE_DELIMITER_MAX];
    size_t delimiter_len; /* default 2: "\r\n" */
    size_t line_max;      /* default WEFT_LINE_MAX_DEFAULT */
    size_t held_max;      /* default WEFT_PROTO_HELD_MAX */
    /* State, read-only for users. */
    bool line_mode;     /* true until set_raw_mode */
    bool paused;        /* pause_producing (or stop_producing) */
    bool stopped;       /* stop_producing: paused for good */
    bool disconnecting; /* the receiver (or weft_line_receiver_lose_connection)
                           dropped the connection: no more lines delivered */
    const char *error;  /* NULL, or the reason type of a drop it decided */
    uint64_t lines_received;
    /* Internal. */
    uint8_t *part_;     /* partial line, < line_max + delimiter_len bytes */
    size_t part_len_, part_cap_;
    weft_proto_rx_ rx_;
};

/* Initialise (no allocation): defaults as in Twisted, line mode. hooks is
 * borrowed and must outlive the receiver. WEFT_EINVAL: NULL hooks or no
 * line_received. */
int weft_line_receiver_init(weft_line_receiver *lr, const weft_line_hooks *hooks);
/* Free the buffers. The struct may be initialised again afterwards. */
void weft_line_receiver_cleanup(weft_line_receiver *lr);

/* 1 to WEFT_LINE_DELIMITER_MAX bytes, copied; else WEFT_EINVAL. Takes effect
 * for the next line searched. */
int weft_line_receiver_set_delimiter(weft_line_receiver *lr, const void *delim, size_t len);
/* line_max >= 1, else WEFT_EINVAL. A partial line already longer than the new
 * limit is reported as exceeded on the next data. */
int weft_line_receiver_set_line_max(weft_line_receiver *lr, size_t line_max);

/* Put in weft_protocol_ops.data_received; p must be a weft_line_receiver. */
void weft_line_receiver_data_received(weft_protocol *p, const uint8_t *data, size_t len);
/* Feed bytes (borrowed for the call). Re-entrant calls (from a hook) only
 * append to the held bytes, which the running loop then processes in order.
 * Returns WEFT_OK, or the error that made it drop the connection
 * (WEFT_ENOBUFS, WEFT_ENOMEM); bytes after a drop are ignored (WEFT_ECLOSED). */
int weft_line_receiver_feed(weft_line_receiver *lr, const uint8_t *data, size_t len);

/* Raw mode: the rest of the current chunk (when called from line_received)
 * and all later data go to raw_data_received. */
void weft_line_receiver_set_raw_mode(weft_line_receiver *lr);
/* Back to line mode; extra (copied, may be NULL/0) is processed before any
 * data not yet processed. WEFT_ENOBUFS / WEFT_ENOMEM: extra did not fit. */
int weft_line_receiver_set_line_mode(weft_line_receiver *lr, const void *extra, size_t len);

/* Twisted's clearLineBuffer: drop every unparsed byte (the partial line, the
 * rest of the chunk being processed, the held bytes). Up to out_max of them
 * are copied to out (may be NULL) in order. Returns how many were dropped. */
size_t weft_line_receiver_clear_line_buffer(weft_line_receiver *lr, uint8_t *out, size_t out_max);

/* Write line + delimiter (one writev). The transport's error, or
 * WEFT_ENOTCONN without a transport. */
int weft_line_receiver_send_line(weft_line_receiver *lr, const void *line, size_t len);

/* pauseProducing: stop delivering (and pause the transport's reading);
 * resumeProducing: deliver what was held, then continue; stopProducing: pause
 * for good (resume does nothing afterwards). */
void weft_line_receiver_pause(weft_line_receiver *lr);
void weft_line_receiver_resume(weft_line_receiver *lr);
void weft_line_receiver_stop_producing(weft_line_receiver *lr);

/* Drop the connection with a recorded reason and stop delivering lines, even
 * from the chunk being processed. A plain weft_transport_lose_connection has
 * the same effect on delivery (the receiver checks
 * weft_transport_disconnecting before each line, as Twisted checks
 * transport.disconnecting); this call also records the reason. reason may be
 * NULL (error stays as is). */
int weft_line_receiver_lose_connection(weft_line_receiver *lr, const char *reason);

/* ============================================ Length-prefixed framing */

#define WEFT_INT_STRING_MAX_DEFAULT 99999u

typedef struct weft_int_receiver weft_int_receiver;

typedef struct weft_int_hooks {
    /* A complete string (payload without its prefix). Required. */
    void (*string_received)(weft_int_receiver *ir, const uint8_t *data, size_t len);
    /* A prefix announced `length` > string_max. The payload is never
     * buffered; the stream is dropped from there on (the framing is lost).
     * NULL: the default, drop the connection with error =
     * WEFT_REASON_FRAME_TOO_LONG. */
    void (*length_limit_exceeded)(weft_int_receiver *ir, uint64_t length);
} weft_int_hooks;

struct weft_int_receiver {
    weft_protocol base; /* first */
    const weft_int_hooks *hooks;
    unsigned prefix_bytes; /* 4 (default), 2 or 1; big-endian */
    size_t string_max;     /* default WEFT_INT_STRING_MAX_DEFAULT */
    size_t held_max;
    /* State, read-only for users. */
    bool paused;
    bool broken;           /* a limit was exceeded: later bytes are dropped */
    bool disconnecting;
    const char *error;
    uint64_t strings_received;
    /* Internal. */
    uint8_t *part_;        /* prefix + partial payload */
    size_t part_len_, part_cap_;
    weft_proto_rx_ rx_;
};

/* prefix_bytes: 1, 2 or 4, else WEFT_EINVAL (also for NULL hooks or no
 * string_received). No allocation. hooks is borrowed and must outlive ir.
 * string_max starts at 99999, clamped to what the prefix can express. */
int weft_int_receiver_init(weft_int_receiver *ir, unsigned prefix_bytes, const weft_int_hooks *hooks);
/* Free the buffers; the struct may be initialised again afterwards. */
void weft_int_receiver_cleanup(weft_int_receiver *ir);
/* WEFT_EINVAL when string_max does not fit the prefix (>= 2^(8*prefix)). */
int weft_int_receiver_set_string_max(weft_int_receiver *ir, size_t string_max);
/* Put in weft_protocol_ops.data_received; p must be a weft_int_receiver. */
void weft_int_receiver_data_received(weft_protocol *p, const uint8_t *data, size_t len);
/* Feed bytes (borrowed for the call); as weft_line_receiver_feed. Bytes
 * after a limit was exceeded or the connection dropped: WEFT_ECLOSED. */
int weft_int_receiver_feed(weft_int_receiver *ir, const uint8_t *data, size_t len);
/* Prefix + data in one writev. WEFT_ELIMIT when len does not fit the prefix
 * or exceeds string_max (nothing written); WEFT_ENOTCONN without transport. */
int weft_int_receiver_send_string(weft_int_receiver *ir, const void *data, size_t len);
/* As the line receiver's pause / resume / lose_connection. */
void weft_int_receiver_pause(weft_int_receiver *ir);
void weft_int_receiver_resume(weft_int_receiver *ir);
int weft_int_receiver_lose_connection(weft_int_receiver *ir, const char *reason);

/* ========================================================= Netstrings */

typedef struct weft_netstring_receiver weft_netstring_receiver;

typedef struct weft_netstring_hooks {
    void (*string_received)(weft_netstring_receiver *nr, const uint8_t *data, size_t len);
} weft_netstring_hooks;

struct weft_netstring_receiver {
    weft_protocol base; /* first */
    const weft_netstring_hooks *hooks;
    size_t string_max;  /* default WEFT_INT_STRING_MAX_DEFAULT (99999) */
    size_t held_max;
    /* State, read-only. */
    bool paused;
    bool broken_peer;   /* bad input seen: connection dropped, error = BadFrame */
    bool disconnecting;
    const char *error;
    const char *detail; /* static text naming what was wrong, or NULL */
    uint64_t strings_received;
    /* Internal. */
    int state_;         /* length, payload, comma */
    uint64_t length_;
    size_t digits_;
    bool leading_zero_;
    uint8_t *part_;
    size_t part_len_, part_cap_;
    weft_proto_rx_ rx_;
};

/* The rules (Twisted's NetstringReceiver): "<len>:<data>,", len is "0" or
 * has no leading zero, at most ceil(log10(string_max)) + 1 digits (checked
 * while the digits arrive), and at most string_max. A missing length, a
 * missing colon, a wrong trailing character or a length over the limit
 * drops the connection: broken_peer = true, error = WEFT_REASON_BAD_FRAME. */
/* init: WEFT_EINVAL for NULL hooks or no string_received; no allocation;
 * hooks borrowed. cleanup frees the buffers. string_max >= 1. */
int weft_netstring_receiver_init(weft_netstring_receiver *nr, const weft_netstring_hooks *hooks);
void weft_netstring_receiver_cleanup(weft_netstring_receiver *nr);
int weft_netstring_receiver_set_string_max(weft_netstring_receiver *nr, size_t string_max);
/* Put in weft_protocol_ops.data_received; p must be a netstring receiver. */
void weft_netstring_receiver_data_received(weft_protocol *p, const uint8_t *data, size_t len);
/* As weft_int_receiver_feed (WEFT_ECLOSED after bad input). */
int weft_netstring_receiver_feed(weft_netstring_receiver *nr, const uint8_t *data, size_t len);
/* "<len>:" data "," in one writev (data is copied by the transport).
 * WEFT_ENOTCONN without transport. No limit is applied on sending. */
int weft_netstring_receiver_send_string(weft_netstring_receiver *nr, const void *data, size_t len);
/* As the line receiver's pause / resume. */
void weft_netstring_receiver_pause(weft_netstring_receiver *nr);
void weft_netstring_receiver_resume(weft_netstring_receiver *nr);

/* ===================================================== Timeout policy */

#define WEFT_TIMEOUT_NONE INT64_C(-1)

typedef struct weft_timeout weft_timeout;
/* Called when the protocol was idle for the timeout. */
typedef void (*weft_timeout_fn)(weft_timeout *t, void *ctx);

/* Twisted's TimeoutMixin as a member of a protocol struct. */
struct weft_timeout {
    weft_protocol *protocol; /* borrowed: its reactor and transport are used */
    int64_t timeout_ns;      /* WEFT_TIMEOUT_NONE: no timeout */
    weft_timeout_fn on_timeout; /* NULL: drop the connection */
    void *ctx;
    bool timed_out;          /* it fired at least once */
    weft_call *call_;        /* pending timer handle (owned) */
};

/* No timer yet (timeout_ns = NONE). on_timeout may be NULL (default: drop
 * the connection with weft_transport_lose_connection). */
void weft_timeout_init(weft_timeout *t, weft_protocol *p, weft_timeout_fn on_timeout, void *ctx);
/* setTimeout: returns the previous timeout (NONE if there was none).
 * NONE cancels the pending timer; otherwise the pending timer is reset to
 * timeout_ns from now, or one is scheduled on p->reactor. A negative value
 * other than NONE is treated as NONE. If scheduling fails (no reactor, out of
 * memory) no timer is pending. */
int64_t weft_timeout_set(weft_timeout *t, int64_t timeout_ns);
/* resetTimeout: on traffic. No-op when no timer is pending. */
void weft_timeout_reset(weft_timeout *t);
/* Cancel and release the timer (call from connection_lost). */
void weft_timeout_cleanup(weft_timeout *t);
bool weft_timeout_pending(const weft_timeout *t);

/* ======================================================= Examples
 *
 * Each example has a stable name (for the scenario registry), a factory
 * constructor taking an argument string, and the free function below. The
 * argument string is "key=value" pairs separated by commas or spaces (NULL or
 * "" for the defaults); a word without '=' after a space continues the
 * previous value ("greeting=Hello Twisted"). Unknown keys or bad values
 * return NULL from the constructor (as does out of memory).
 *
 * Factories are allocated by the constructor and owned by the caller, who
 * frees them with weft_proto_factory_free once no protocol they built is
 * alive (after the reactor using them is freed, or all their connections
 * are closed). Protocols are allocated by build_protocol and freed by
 * their destroy op (the reactor calls it). Stats are kept in the factory and
 * live as long as it. */

#define WEFT_PROTO_HELLO "hello"
#define WEFT_PROTO_ECHO "echo"
#define WEFT_PROTO_CHAT "chat"               /* line chat server */
#define WEFT_PROTO_CHAT_CLIENT "chat-client" /* sends lines, counts replies */
#define WEFT_PROTO_SMTP_SERVER "smtp-server"
#define WEFT_PROTO_SMTP_CLIENT "smtp-client"
#define WEFT_PROTO_HEARTBEAT "heartbeat"     /* PING every interval, counts PONG */
#define WEFT_PROTO_PONG "pong"               /* answers PING with PONG */

/* Counters every example factory keeps. */
typedef struct weft_proto_stats {
    uint64_t connections;  /* connection_made calls */
    uint64_t closed;       /* connection_lost calls */
    uint64_t clean_closes; /* ... with ConnectionDone */
    uint64_t bytes_in, bytes_out;
    uint64_t lines_in, lines_out;
    uint64_t messages;     /* smtp: messages accepted (server) or delivered
                              (client); heartbeat: PONGs; chat: lines relayed */
    uint64_t rejected;     /* smtp: messages rejected; others 0 */
    uint64_t errors;       /* framing errors (too long lines...) */
    char last_reason[48];  /* type of the last connection_lost reason */
} weft_proto_stats;

/* "hello": writes the greeting (default "Hello Twisted") and closes.
 * Args: greeting=TEXT (no separators inside). */
weft_factory *weft_proto_hello_factory(const char *args);
/* "echo": writes back whatever it receives. No args. */
weft_factory *weft_proto_echo_factory(const char *args);
/* "chat": a line server. Each line from one client is sent to every other
 * client as "<id>: <line>\r\n" (id: connection number from 1); "QUIT" closes
 * that client's connection. Greets with "WELCOME <id>\r\n". Args: max_line=N. */
weft_factory *weft_proto_chat_factory(const char *args);
/* "chat-client": after connecting sends `count` lines "<text> <i>" (default
 * text=hi, count=1), counts the lines it receives, and closes after it has
 * received `expect` lines (default 0: never). Args: text=, count=, expect=. */
weft_factory *weft_proto_chat_client_factory(const char *args);
/* "smtp-server": a minimal SMTP server: 220 greeting, HELO/EHLO, MAIL FROM,
 * RCPT TO, DATA (dot-terminated, dot-unstuffed), RSET, NOOP, QUIT. A
 * recipient equal to reject=ADDR gets "550 No such user"; silent=1 never
 * answers anything (for timeout tests). Args: host=NAME, reject=ADDR,
 * silent=1. */
weft_factory *weft_proto_smtp_server_factory(const char *args);
/* "smtp-client": see weft_smtp_client_send. Args: helo=NAME (default
 * "weft"), timeout=MS (idle timeout in milliseconds, 0: none; default 0),
 * quit=0|1 (default 1: say QUIT, and so close, as soon as the queue is empty
 * after at least one message was delivered or rejected). */
weft_factory *weft_proto_smtp_client_factory(const char *args);
/* "heartbeat": writes "PING\r\n" every interval (default 1000 ms) and counts
 * "PONG" lines. Args: interval=MS, count=N (stop and close after N pings;
 * 0: forever). */
weft_factory *weft_proto_heartbeat_factory(const char *args);
/* "pong": answers each "PING" line with "PONG". */
weft_factory *weft_proto_pong_factory(const char *args);

/* The stats of a factory made by one of the constructors above (NULL for any
 * other factory). Borrowed: valid until weft_proto_factory_free. */
const weft_proto_stats *weft_proto_factory_stats(const weft_factory *f);
/* The name constant of the example a factory was made for, or NULL. */
const char *weft_proto_factory_name(const weft_factory *f);
/* Free a factory made by one of the constructors above. NULL is allowed. */
void weft_proto_factory_free(weft_factory *f);

/* The examples by name, for registries. */
typedef struct weft_proto_entry {
    const char *name;
    const char *summary;
    weft_factory *(*factory_new)(const char *args);
    bool client; /* meant to connect rather than listen */
} weft_proto_entry;
const weft_proto_entry *weft_proto_builtins(size_t *count);
const weft_proto_entry *weft_proto_lookup(const char *name);

/* ---------------------------------------------------------- SMTP client */

#define WEFT_FAILURE_SMTP_REJECTED "SmtpRejected"

typedef struct weft_smtp_client weft_smtp_client;

/* The SMTP client protocol behind a weft_protocol built by the smtp-client
 * factory (the value a weft_connect Deferred fires with), recognised by its
 * ops table once connection_made has run. NULL when p is not one. Borrowed:
 * valid until the protocol is destroyed, which happens after its connection
 * is lost. */
weft_smtp_client *weft_smtp_client_from_protocol(weft_protocol *p);

/* Queue a message (from, to and body are copied; body lines are separated by
 * "\n" or "\r\n" and dot-stuffed on the wire). Returns a Deferred (caller's
 * reference) that fires with the value NULL when the server answers 250 after
 * the data; fails with a Failure of type WEFT_FAILURE_SMTP_REJECTED whose
 * message is the server's reply line when it answers 4xx/5xx at any step;
 * with the connection_lost reason's type and message if the connection drops
 * first; with WEFT_FAILURE_TIMEOUT when the client's idle timeout strikes.
 * Messages are sent one after the other over the one connection.
 * NULL: out of memory. A send on a closed (or quitting) client returns a
 * Deferred already failed with ConnectionDone; an address containing CR, LF,
 * '<' or '>' one already failed with SmtpRejected ("send: bad address"). */
weft_deferred *weft_smtp_client_send(weft_smtp_client *c, const char *from, const char *to,
                                     const char *body);
/* Messages delivered / rejected / waiting on this connection. */
uint64_t weft_smtp_client_delivered(const weft_smtp_client *c);
uint64_t weft_smtp_client_rejected(const weft_smtp_client *c);
size_t weft_smtp_client_queued(const weft_smtp_client *c);

/* ---------------------------------------------------------- SMTP server */

/* The last message the server side of a factory accepted (borrowed, valid
 * until the next message or the factory's free), or NULL. */
typedef struct weft_smtp_message {
    char *from;
    char *to;
    char *body; /* lines joined with "\n", dot-unstuffed */
} weft_smtp_message;
const weft_smtp_message *weft_smtp_server_last(const weft_factory *f);

#ifdef __cplusplus
}
#endif
#endif
