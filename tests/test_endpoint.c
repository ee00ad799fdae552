/* Endpoint descriptions: the grammar, escapes, defaults and every error with
 * its message and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weft/reactor.h"

static void server_port_only(void **state)
{
    (void)state;
    weft_endpoint ep;
    char err[128] = "junk";
    assert_int_equal(weft_endpoint_parse_server("tcp:2000", &ep, err, sizeof err), WEFT_OK);
    assert_int_equal(ep.port, 2000);
    assert_string_equal(ep.host, "");
    assert_int_equal(ep.timeout_ns, 0);
    assert_string_equal(err, ""); /* cleared on success */
    assert_int_equal(weft_endpoint_parse_server("tcp:0", &ep, NULL, 0), WEFT_OK);
    assert_int_equal(ep.port, 0); /* any free port */
    assert_int_equal(weft_endpoint_parse_server("tcp:65535", &ep, NULL, 0), WEFT_OK);
    assert_int_equal(ep.port, 65535);
    assert_int_equal(weft_endpoint_parse_server("tcp:00080", &ep, NULL, 0), WEFT_OK);
    assert_int_equal(ep.port, 80);
}

static void server_keywords(void **state)
{
    (void)state;
    weft_endpoint ep;
    assert_int_equal(weft_endpoint_parse_server("tcp:port=80:interface=10.0.0.1", &ep, NULL, 0),
                     WEFT_OK);
    assert_int_equal(ep.port, 80);
    assert_string_equal(ep.host, "10.0.0.1");
    /* Keywords in any order, positional port with a keyword interface. */
    assert_int_equal(weft_endpoint_parse_server("tcp:interface=server:443", &ep, NULL, 0),
                     WEFT_OK);
    assert_int_equal(ep.port, 443);
    assert_string_equal(ep.host, "server");
    assert_int_equal(weft_endpoint_parse_server("tcp:port=7:interface=", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "");
}

static void prefix_is_case_insensitive(void **state)
{
    (void)state;
    weft_endpoint ep;
    assert_int_equal(weft_endpoint_parse_server("TCP:81", &ep, NULL, 0), WEFT_OK);
    assert_int_equal(ep.port, 81);
    assert_int_equal(weft_endpoint_parse_client("tCp:h:82", &ep, NULL, 0), WEFT_OK);
    assert_int_equal(ep.port, 82);
}

static void client_forms(void **state)
{
    (void)state;
    weft_endpoint ep;
    assert_int_equal(weft_endpoint_parse_client("tcp:server:2000", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "server");
    assert_int_equal(ep.port, 2000);
    assert_int_equal(ep.timeout_ns, 30 * WEFT_NS_PER_S);

    memset(&ep, 0x55, sizeof ep);
    assert_int_equal(
        weft_endpoint_parse_client("tcp:host=example:port=80:timeout=5", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "example");
    assert_int_equal(ep.port, 80);
    assert_int_equal(ep.timeout_ns, 5 * WEFT_NS_PER_S);

    /* Mixed: keyword host, positional port, as Twisted accepts. */
    assert_int_equal(weft_endpoint_parse_client("tcp:host=h:99", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "h");
    assert_int_equal(ep.port, 99);
    assert_int_equal(weft_endpoint_parse_client("tcp:port=99:h", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "h");
    assert_int_equal(ep.port, 99);
    assert_int_equal(weft_endpoint_parse_client("tcp:h:1:timeout=0.25", &ep, NULL, 0), WEFT_OK);
    assert_int_equal(ep.timeout_ns, 250 * WEFT_NS_PER_MS);
    assert_int_equal(weft_endpoint_parse_client("tcp:h:1:timeout=1.000000001", &ep, NULL, 0),
                     WEFT_OK);
    assert_int_equal(ep.timeout_ns, WEFT_NS_PER_S + 1);
}

static void escapes(void **state)
{
    (void)state;
    weft_endpoint ep;
    /* An escaped colon stays in the host; an escaped '=' is not a keyword. */
    assert_int_equal(weft_endpoint_parse_client("tcp:fe80\\:\\:1:80", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "fe80::1");
    assert_int_equal(ep.port, 80);
    assert_int_equal(weft_endpoint_parse_client("tcp:a\\=b:80", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "a=b");
    assert_int_equal(weft_endpoint_parse_client("tcp:host=a\\\\b:port=8\\0", &ep, NULL, 0),
                     WEFT_OK);
    assert_string_equal(ep.host, "a\\b");
    assert_int_equal(ep.port, 80);
    /* '=' after the first one belongs to the value. */
    assert_int_equal(weft_endpoint_parse_client("tcp:host=a=b:1", &ep, NULL, 0), WEFT_OK);
    assert_string_equal(ep.host, "a=b");
}

static void host_length_limit(void **state)
{
    (void)state;
    weft_endpoint ep;
    char desc[256], err[256];
    char host[WEFT_HOST_MAX + 1];
    memset(host, 'h', WEFT_HOST_MAX - 1);
    host[WEFT_HOST_MAX - 1] = '\0';
    snprintf(desc, sizeof desc, "tcp:%s:1", host);
    assert_int_equal(weft_endpoint_parse_client(desc, &ep, err, sizeof err), WEFT_OK);
    assert_int_equal(strlen(ep.host), WEFT_HOST_MAX - 1);
    host[WEFT_HOST_MAX - 1] = 'h';
    host[WEFT_HOST_MAX] = '\0';
    snprintf(desc, sizeof desc, "tcp:%s:1", host);
    assert_int_equal(weft_endpoint_parse_client(desc, &ep, err, sizeof err), WEFT_EENDPOINT);
    assert_non_null(strstr(err, "host longer than 63 bytes at column 5"));
}

/* Parse, expect EENDPOINT and exactly this message. */
static void expect_error(bool server, const char *desc, const char *message)
{
    weft_endpoint ep;
    memset(&ep, 0x5a, sizeof ep);
    weft_endpoint before = ep;
    char err[200];
    int rc = server ? weft_endpoint_parse_server(desc, &ep, err, sizeof err)
                    : weft_endpoint_parse_client(desc, &ep, err, sizeof err);
    if (rc != WEFT_EENDPOINT || strcmp(err, message) != 0)
        print_error("desc \"%s\": rc %d, err \"%s\", expected \"%s\"\n", desc, rc, err, message);
    assert_int_equal(rc, WEFT_EENDPOINT);
    assert_string_equal(err, message);
    /* Output untouched on error. */
    assert_memory_equal(&ep, &before, sizeof ep);
}

static void server_errors(void **state)
{
    (void)state;
    expect_error(true, "tcp:99999", "tcp:99999: port out of range at column 5");
    expect_error(true, "tcp:65536", "tcp:65536: port out of range at column 5");
    expect_error(true, "tcp:123456789012345678901234567890",
                 "tcp:123456789012345678901234567890: port out of range at column 5");
    expect_error(true, "tcp:-1", "tcp:-1: port '-1' is not a decimal number at column 5");
    expect_error(true, "tcp:+80", "tcp:+80: port '+80' is not a decimal number at column 5");
    expect_error(true, "tcp:8o", "tcp:8o: port '8o' is not a decimal number at column 5");
    expect_error(true, "tcp:", "tcp:: empty port at column 5");
    expect_error(true, "tcp", "tcp: missing ':' and arguments after the endpoint type at column 4");
    expect_error(true, "", ": missing endpoint type (expected 'tcp:') at column 1");
    expect_error(true, ":80", ":80: missing endpoint type (expected 'tcp:') at column 1");
    expect_error(true, "udp:80", "udp:80: unknown endpoint type 'udp' at column 1");
    expect_error(true, "tcpx:80", "tcpx:80: unknown endpoint type 'tcpx' at column 1");
    expect_error(true, "tcp:80:81", "tcp:80:81: unexpected positional argument at column 8");
    expect_error(true, "tcp:80:port=81", "tcp:80:port=81: port given twice at column 8");
    expect_error(true, "tcp:interface=a", "tcp:interface=a: missing port at column 16");
    expect_error(true, "tcp:80:interface=a:interface=b",
                 "tcp:80:interface=a:interface=b: interface given twice at column 20");
    expect_error(true, "tcp:80:backlog=5",
                 "tcp:80:backlog=5: unknown keyword 'backlog' (expected port or interface) at "
                 "column 8");
    expect_error(true, "tcp:80:=5", "tcp:80:=5: empty keyword name at column 8");
    expect_error(true, "tcp:80\\", "tcp:80\\: backslash at the end of the description at column 7");
    expect_error(true, "tcp:80:interface=a b",
                 "tcp:80:interface=a b: invalid character (byte 0x20) in interface at column 18");
    expect_error(true, "tcp:1:2:3:4:5:6:7:8",
                 "tcp:1:2:3:4:5:6:7:8: too many arguments (at most 7) at column 19");
}

static void client_errors(void **state)
{
    (void)state;
    expect_error(false, "tcp:h:0", "tcp:h:0: port out of range at column 7");
    expect_error(false, "tcp:h:99999", "tcp:h:99999: port out of range at column 7");
    expect_error(false, "tcp:h", "tcp:h: missing port at column 6");
    expect_error(false, "tcp:port=1", "tcp:port=1: missing host at column 11");
    expect_error(false, "tcp::80", "tcp::80: empty host at column 5");
    expect_error(false, "tcp:host=:80", "tcp:host=:80: empty host at column 10");
    expect_error(false, "tcp:h:80:x", "tcp:h:80:x: unexpected positional argument at column 10");
    expect_error(false, "tcp:h:80:host=g", "tcp:h:80:host=g: host given twice at column 10");
    expect_error(false, "tcp:host=g:h:80", "tcp:host=g:h:80: host given twice at column 5");
    expect_error(false, "tcp:h:80:port=1", "tcp:h:80:port=1: port given twice at column 7");
    expect_error(false, "tcp:h:80:timeout=0",
                 "tcp:h:80:timeout=0: timeout must be positive at column 18");
    expect_error(false, "tcp:h:80:timeout=-3",
                 "tcp:h:80:timeout=-3: timeout '-3' is not a number of seconds at column 18");
    expect_error(false, "tcp:h:80:timeout=1.",
                 "tcp:h:80:timeout=1.: timeout '1.' is not a number of seconds at column 18");
    expect_error(false, "tcp:h:80:timeout=.5",
                 "tcp:h:80:timeout=.5: timeout '.5' is not a number of seconds at column 18");
    expect_error(false, "tcp:h:80:timeout=1.2.3",
                 "tcp:h:80:timeout=1.2.3: timeout '1.2.3' is not a number of seconds at column "
                 "18");
    expect_error(false, "tcp:h:80:timeout=0.0000000001",
                 "tcp:h:80:timeout=0.0000000001: timeout finer than a nanosecond at column 18");
    expect_error(false, "tcp:h:80:timeout=99999999999",
                 "tcp:h:80:timeout=99999999999: timeout out of range at column 18");
    expect_error(false, "tcp:h:80:timeout=", "tcp:h:80:timeout=: empty timeout at column 18");
    expect_error(false, "tcp:h:80:timeout=1:timeout=2",
                 "tcp:h:80:timeout=1:timeout=2: timeout given twice at column 20");
    expect_error(false, "tcp:h:80:bindAddress=x",
                 "tcp:h:80:bindAddress=x: unknown keyword 'bindAddress' (expected host, port or "
                 "timeout) at column 10");
    expect_error(false, "tcp:h\x01:80",
                 "tcp:h\x01:80: invalid character (byte 0x01) in host at column 5");
}

static void bad_arguments_and_small_buffers(void **state)
{
    (void)state;
    weft_endpoint ep;
    char err[8];
    assert_int_equal(weft_endpoint_parse_server(NULL, &ep, NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_endpoint_parse_client("tcp:h:1", NULL, NULL, 0), WEFT_EINVAL);
    /* A short error buffer is truncated and terminated, never overrun. */
    memset(err, 'x', sizeof err);
    assert_int_equal(weft_endpoint_parse_server("tcp:99999", &ep, err, sizeof err),
                     WEFT_EENDPOINT);
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_memory_equal(err, "tcp:999", 7);
    /* errlen 0: err not touched. */
    err[0] = 'q';
    assert_int_equal(weft_endpoint_parse_server("tcp:x", &ep, err, 0), WEFT_EENDPOINT);
    assert_int_equal(err[0], 'q');
    /* A very long value is refused without overflowing anything. */
    char desc[1024];
    memcpy(desc, "tcp:", 4);
    memset(desc + 4, '7', sizeof desc - 5);
    desc[sizeof desc - 1] = '\0';
    char big[256];
    assert_int_equal(weft_endpoint_parse_server(desc, &ep, big, sizeof big), WEFT_EENDPOINT);
    /* The description is quoted shortened to 45 bytes plus "...". */
    char want[128];
    snprintf(want, sizeof want, "%.45s...: port too long at column 5", desc);
    assert_string_equal(big, want);
    assert_int_equal(strlen(big), 45 + strlen("...: port too long at column 5"));
}

/* ------------------------------------------- generated descriptions */

static uint64_t rng_state;

static uint32_t rng(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Append s with ':', '=' and '\\' escaped. */
static void append_escaped(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 3 < cap; s++) {
        if (*s == ':' || *s == '=' || *s == '\\')
            buf[n++] = '\\';
        buf[n++] = *s;
    }
    buf[n] = '\0';
}

static void append(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s", s);
}

/* Any client endpoint, written in a random one of the accepted forms, parses
 * back to itself. */
static void generated_clients_round_trip(void **state)
{
    (void)state;
    static const char alphabet[] = "abcXYZ09.-_:=\\";
    rng_state = 0x9e3779b97f4a7c15u;
    for (int iter = 0; iter < 20000; iter++) {
        char host[WEFT_HOST_MAX];
        size_t hlen = 1 + rng(WEFT_HOST_MAX - 1);
        for (size_t i = 0; i < hlen; i++)
            host[i] = alphabet[rng(sizeof alphabet - 1)];
        host[hlen] = '\0';
        uint16_t port = (uint16_t)(1 + rng(65535));
        int64_t timeout_ns = 1 + (int64_t)rng(1000000) * (int64_t)rng(1000000);
        bool with_timeout = rng(2);
        char portbuf[8], tbuf[40];
        snprintf(portbuf, sizeof portbuf, "%u", (unsigned)port);
        snprintf(tbuf, sizeof tbuf, "%lld.%09lld", (long long)(timeout_ns / WEFT_NS_PER_S),
                 (long long)(timeout_ns % WEFT_NS_PER_S));
        char desc[512] = "";
        append(desc, sizeof desc, rng(2) ? "tcp" : "TCP");
        switch (rng(4)) {
        case 0: /* positional */
            append(desc, sizeof desc, ":");
            append_escaped(desc, sizeof desc, host);
            append(desc, sizeof desc, ":");
            append(desc, sizeof desc, portbuf);
            break;
        case 1: /* keywords, port first */
            append(desc, sizeof desc, ":port=");
            append(desc, sizeof desc, portbuf);
            append(desc, sizeof desc, ":host=");
            append_escaped(desc, sizeof desc, host);
            break;
        case 2: /* keyword host, positional port */
            append(desc, sizeof desc, ":host=");
            append_escaped(desc, sizeof desc, host);
            append(desc, sizeof desc, ":");
            append(desc, sizeof desc, portbuf);
            break;
        default: /* positional host, keyword port */
            append(desc, sizeof desc, ":port=");
            append(desc, sizeof desc, portbuf);
            append(desc, sizeof desc, ":");
            append_escaped(desc, sizeof desc, host);
            break;
        }
        if (with_timeout) {
            append(desc, sizeof desc, ":timeout=");
            append(desc, sizeof desc, tbuf);
        }
        weft_endpoint ep;
        char err[200];
        int rc = weft_endpoint_parse_client(desc, &ep, err, sizeof err);
        if (rc != WEFT_OK)
            print_error("\"%s\": %s\n", desc, err);
        assert_int_equal(rc, WEFT_OK);
        assert_string_equal(ep.host, host);
        assert_int_equal(ep.port, port);
        assert_int_equal(ep.timeout_ns, with_timeout ? timeout_ns : 30 * WEFT_NS_PER_S);
    }
}

/* Random bytes from a hostile alphabet: never a crash, always a definite
 * answer, and every error message names a column inside the description. */
static void generated_garbage_is_rejected_cleanly(void **state)
{
    (void)state;
    static const char alphabet[] = "tcpTCP:=\\0123456789.hostpr ti-";
    rng_state = 12345;
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 50000; iter++) {
        char desc[48];
        size_t len = rng(sizeof desc);
        for (size_t i = 0; i < len; i++)
            desc[i] = alphabet[rng(sizeof alphabet - 1)];
        if (rng(2) && len >= 4)
            memcpy(desc, "tcp:", 4);
        desc[len] = '\0';
        weft_endpoint ep;
        char err[160];
        for (int server = 0; server < 2; server++) {
            memset(err, 'x', sizeof err);
            int rc = server ? weft_endpoint_parse_server(desc, &ep, err, sizeof err)
                            : weft_endpoint_parse_client(desc, &ep, err, sizeof err);
            assert_true(memchr(err, '\0', sizeof err) != NULL);
            if (rc == WEFT_OK) {
                ok++;
                assert_string_equal(err, "");
                continue;
            }
            bad++;
            assert_int_equal(rc, WEFT_EENDPOINT);
            const char *col = strstr(err, " at column ");
            assert_non_null(col);
            long c = strtol(col + strlen(" at column "), NULL, 10);
            assert_true(c >= 1 && c <= (long)len + 1);
        }
    }
    assert_true(ok > 100);
    assert_true(bad > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_port_only),
        cmocka_unit_test(server_keywords),
        cmocka_unit_test(prefix_is_case_insensitive),
        cmocka_unit_test(client_forms),
        cmocka_unit_test(escapes),
        cmocka_unit_test(host_length_limit),
        cmocka_unit_test(server_errors),
        cmocka_unit_test(client_errors),
        cmocka_unit_test(bad_arguments_and_small_buffers),
        cmocka_unit_test(generated_clients_round_trip),
        cmocka_unit_test(generated_garbage_is_rejected_cleanly),
    };
    return cmocka_run_group_tests_name("endpoint", tests, NULL, NULL);
}
