/* kv.h: a small line-based key-value protocol, the worked example of weft.
 *
 * The wire protocol. Requests and replies are lines ending in "\n" (a "\r"
 * before it is ignored; replies are sent with "\r\n"):
 *
 *   SET KEY VALUE   ->  OK
 *   GET KEY         ->  VALUE TEXT    or  NOTFOUND
 *   DEL KEY         ->  OK            or  NOTFOUND
 *   QUIT            ->  BYE, then the server closes
 *   anything else   ->  ERR REASON
 *
 * A KEY is 1..KV_KEY_MAX bytes without spaces or control bytes; a VALUE is the
 * rest of the line after the key's space, 0..KV_VALUE_MAX bytes without
 * control bytes. Replies come in the order of the requests, so a client may
 * pipeline: send many requests, then match each reply with the oldest request
 * still waiting.
 *
 * Everything here is written against weft/reactor.h, weft/defer.h and
 * weft/protocols.h only: the same object file runs on the simulator (tests,
 * scenarios) and on the real epoll reactor (main_real.c).
 *
 * Single-threaded like the reactor: a factory and its protocols belong to the
 * thread running their reactor.
 */
#ifndef KV_H
#define KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/defer.h"
#include "weft/protocols.h"
#include "weft/reactor.h"

#define KV_KEY_MAX 64u      /* bytes of a key */
#define KV_VALUE_MAX 1024u  /* bytes of a value */
#define KV_LINE_MAX (KV_KEY_MAX + KV_VALUE_MAX + 8u) /* request line, without "\n" */
#define KV_KEYS_MAX 4096u   /* keys one server stores */
#define KV_PENDING_MAX 1024u /* requests waiting on one connection (either side) */

/* Failure types of the client's Deferreds (besides the connection's reasons,
 * weft/reactor.h, when it is lost with requests waiting). */
#define KV_FAILURE_NOT_FOUND "KvNotFound"     /* NOTFOUND; message: the key */
#define KV_FAILURE_ERROR "KvError"            /* ERR; message: the server's reason */
#define KV_FAILURE_BAD_REPLY "KvBadReply"     /* a reply that does not fit the request */
#define KV_FAILURE_BAD_REQUEST "KvBadRequest" /* refused before sending: bad key or value */
#define KV_FAILURE_BUSY "KvBusy"              /* KV_PENDING_MAX requests already waiting */

/* Reason a server records when a client floods it past KV_PENDING_MAX. */
#define KV_REASON_OVERLOAD "KvOverload"

/* ------------------------------------------------------------- Server */

typedef struct kv_server_options {
    /* Time to answer each request (0: at once). Requests are answered one
     * after the other, in order. */
    int64_t delay_ns;
    /* The planted ordering bug (docs/tutorial.md): with a delay, answer each
     * request from its own timer. Two requests whose timers are due together
     * race, and the replies can leave in the wrong order. */
    bool unordered;
} kv_server_options;

/* Parse "delay=MS unordered=0|1" (pairs separated by spaces or commas; NULL
 * or "" gives the defaults: no delay, ordered). WEFT_EINVAL with a message in
 * err (errlen > 0) for an unknown key or a bad value; *out is written only on
 * success. */
int kv_server_parse_args(const char *args, kv_server_options *out, char *err, size_t errlen);

/* A server factory with its own store, shared by every connection it
 * accepts. opt is copied (NULL: defaults). The caller owns the factory and
 * frees it with kv_server_factory_free once no protocol it built is alive
 * (after the reactor is freed, or every connection is closed). NULL: out of
 * memory or a negative delay. */
weft_factory *kv_server_factory_new(const kv_server_options *opt);
void kv_server_factory_free(weft_factory *f); /* NULL allowed */

/* Inspection, for tests. The stored value of key (borrowed: valid until the
 * next request changes it or the factory is freed), or NULL. */
const char *kv_server_lookup(const weft_factory *f, const char *key);
size_t kv_server_keys(const weft_factory *f);      /* keys stored */
uint64_t kv_server_requests(const weft_factory *f); /* request lines answered */

/* ------------------------------------------------------------- Client */

typedef struct kv_client kv_client;

/* A client factory. Owned by the caller, freed with kv_client_factory_free
 * once no protocol it built is alive. NULL: out of memory. */
weft_factory *kv_client_factory_new(void);
void kv_client_factory_free(weft_factory *f); /* NULL allowed */

/* The client behind a protocol built by a client factory (for instance the
 * value weft_connect's Deferred fires with); NULL for any other protocol.
 * Borrowed: valid until the protocol is destroyed, after its connection is
 * lost. */
kv_client *kv_client_from_protocol(weft_protocol *p);

/* Requests. Each returns a new Deferred (the caller's reference) and sends
 * the request at once; key and value are copied. NULL: out of memory.
 *
 * get: fires with the value, a NUL-terminated string the caller owns and
 *      frees with weft_free (whoever takes the value from the Deferred); fails
 *      with KvNotFound (message: the key).
 * set: fires with NULL once stored.
 * del: fires with NULL once deleted; fails with KvNotFound.
 * All three fail with KvError (the server's reason), KvBadReply, or the
 * connection's reason (ConnectionLost, ConnectionDone...) when it is lost
 * before the reply; at once with KvBadRequest for a bad key or value, KvBusy
 * past KV_PENDING_MAX waiting requests, or the reason the connection was
 * lost with (ConnectionDone if it is closing) after the fact.
 *
 * Cancelling one fails it with Cancelled; its reply is still read (and
 * dropped) so the later replies stay matched with their requests. */
weft_deferred *kv_client_get(kv_client *c, const char *key);
weft_deferred *kv_client_set(kv_client *c, const char *key, const char *value);
weft_deferred *kv_client_del(kv_client *c, const char *key);

/* Say QUIT and close once the server answers BYE (requests still waiting are
 * answered first). WEFT_ECLOSED if the connection is already closing. */
int kv_client_quit(kv_client *c);
/* Requests sent and not yet answered. */
size_t kv_client_pending(const kv_client *c);

/* ------------------------------------------------------------- Plugin */

/* Registers the protocols "kv-server" (args: kv_server_parse_args) and
 * "kv-client" (no args), and the actions kv.get, kv.set, kv.del (plugin.c,
 * docs/tutorial.md). Declared in weft/scenario.h as weft_plugin_init_fn. */

#endif
