/* The weft command, end to end: the built binary runs as a subprocess on
 * small scenario files written to a temporary directory, and the tests check
 * its exit status and output. The binary is found next to this test's build
 * directory (argv[0] is <build>/tests/test_cli; the command is <build>/weft).
 *
 * The strict parsers of the command (numbers, durations, trace lines), the
 * trace renderings and the strategy seam of explore are tested directly by
 * including the command's files that need nothing beyond the library.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/explore.c"
#include "cli/session.c"
#include "cli/trace.c"
#include "cli/util.c"

static char weft_bin[PATH_MAX + 16];
static char tmp_dir[PATH_MAX];

/* ------------------------------------------------------------ helpers */

typedef struct proc {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err;
} proc;

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static void proc_free(proc *p)
{
    free(p->out);
    free(p->err);
    memset(p, 0, sizeof *p);
}

static void run_weft_signalled(proc *p, const char *const *args, unsigned signal_after_ms);

/* Run weft with args (NULL-terminated), capturing stdout and stderr. */
static void run_weft_argv(proc *p, const char *const *args)
{
    run_weft_signalled(p, args, 0);
}

/* The same, sending SIGINT after signal_after_ms (0: never). */
static void run_weft_signalled(proc *p, const char *const *args, unsigned signal_after_ms)
{
    char out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmp_dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmp_dir);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = weft_bin;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n < 63);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0)
            _exit(126);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(weft_bin, (char *const *)argv);
        _exit(127);
    }
    if (signal_after_ms > 0) {
        usleep(signal_after_ms * 1000u);
        kill(pid, SIGINT);
    }
    int st = 0;
    assert_true(waitpid(pid, &st, 0) == pid);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    p->out = read_all(out_path);
    p->err = read_all(err_path);
}

/* Run weft with its standard error on a pseudo-terminal (isatty is true
 * there); p->err receives what the terminal showed. */
static void run_weft_tty(proc *p, const char *const *args)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    char slave_name[128];
    assert_int_equal(ptsname_r(master, slave_name, sizeof slave_name), 0);
    char out_path[PATH_MAX + 16];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmp_dir);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = weft_bin;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n < 63);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(master);
        int in = open("/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(slave_name, O_RDWR | O_NOCTTY);
        if (in < 0 || o < 0 || e < 0)
            _exit(126);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(weft_bin, (char *const *)argv);
        _exit(127);
    }
    /* Drain the terminal while the command runs: EIO once the last writer
     * closed it. */
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t got = read(master, buf + len, cap - len - 1);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    close(master);
    int st = 0;
    assert_true(waitpid(pid, &st, 0) == pid);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    p->out = read_all(out_path);
    p->err = buf;
}

#define run_weft(p, ...)                                  \
    do {                                                  \
        const char *const args_[] = {__VA_ARGS__, NULL}; \
        run_weft_argv((p), args_);                        \
    } while (0)

/* Fail with both streams shown when the exit status is not the expected one. */
static void expect_status(const proc *p, int status)
{
    if (p->status != status) {
        print_error("exit status %d, expected %d\n--- stdout\n%s--- stderr\n%s---\n", p->status,
                    status, p->out, p->err);
        fail();
    }
}

static void expect_contains(const char *what, const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL) {
        print_error("%s does not contain \"%s\":\n%s\n", what, needle, text);
        fail();
    }
}

/* Write a scenario file into the temporary directory; returns its path (static
 * storage per call slot). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[8][PATH_MAX + 64];
    static unsigned slot;
    char *path = paths[slot++ % 8];
    snprintf(path, PATH_MAX + 64, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* ------------------------------------------------- strict parsing (unit) */

static void parse_u64_is_strict(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_true(cli_parse_u64("0", &v));
    assert_int_equal(v, 0);
    assert_true(cli_parse_u64("18446744073709551615", &v));
    assert_true(v == UINT64_MAX);
    assert_true(cli_parse_u64("0x10", &v));
    assert_int_equal(v, 16);
    assert_true(cli_parse_u64("0XfF", &v));
    assert_int_equal(v, 255);
    v = 7;
    const char *bad[] = {"", "-1", "+1", " 1", "1 ", "12x", "18446744073709551616",
                         "0x", "0x1g", "1.0", "1e3", "0x10000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cli_parse_u64(bad[i], &v)) {
            print_error("'%s' was accepted as %llu\n", bad[i], (unsigned long long)v);
            fail();
        }
        assert_int_equal(v, 7); /* untouched on error */
    }
    assert_false(cli_parse_u64(NULL, &v));
}

static void parse_duration_units_and_fractions(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ns;
    } good[] = {
        {"0s", 0},
        {"1ns", 1},
        {"10us", 10000},
        {"250ms", 250000000},
        {"1.5s", 1500000000},
        {"2m", INT64_C(120000000000)},
        {"1h", INT64_C(3600000000000)},
        {"0.001ms", 1000},
        {"1.000000001s", 1000000001},
        {".5s", 500000000},
        {"9223372036s", INT64_C(9223372036000000000)},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ns = -1;
        if (!cli_parse_duration(good[i].s, &ns) || ns != good[i].ns) {
            print_error("'%s' gave %lld, expected %lld\n", good[i].s, (long long)ns,
                        (long long)good[i].ns);
            fail();
        }
    }
    const char *bad[] = {"",     "5",     "s",      "1.s",  "1.5",  "-1s",    "1 s",
                         "1sec", "1.5ns", "0.1ns",  "1ms2", "1e3s", "9223372037s",
                         "1..5s", "0.0000000000000000001s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns = -1;
        if (cli_parse_duration(bad[i], &ns)) {
            print_error("'%s' was accepted as %lld ns\n", bad[i], (long long)ns);
            fail();
        }
        assert_int_equal(ns, -1);
    }
}

static void format_time_and_lines(void **state)
{
    (void)state;
    char buf[48];
    cli_format_time(12000000, buf, sizeof buf);
    assert_string_equal(buf, "0.012000000s");
    cli_format_time(INT64_C(61000000001), buf, sizeof buf);
    assert_string_equal(buf, "61.000000001s");
    cli_format_time(-1, buf, sizeof buf);
    assert_string_equal(buf, "-0.000000001s");
    cli_format_time(INT64_MIN, buf, sizeof buf);
    assert_string_equal(buf, "-9223372036.854775808s");

    /* Lines end in '\n' or '\0'; a last line without either still counts. */
    const char text[] = "a\nbb\0ccc\n\ndd";
    size_t len = sizeof text - 1;
    assert_int_equal(cli_count_lines(text, len), 5);
    size_t pos = 0, l = 0;
    const char *line = NULL;
    assert_true(cli_next_line(text, len, &pos, &line, &l));
    assert_int_equal(l, 1);
    assert_memory_equal(line, "a", 1);
    assert_true(cli_next_line(text, len, &pos, &line, &l));
    assert_int_equal(l, 2);
    assert_true(cli_next_line(text, len, &pos, &line, &l));
    assert_int_equal(l, 3);
    assert_memory_equal(line, "ccc", 3);
    assert_true(cli_next_line(text, len, &pos, &line, &l));
    assert_int_equal(l, 0);
    assert_true(cli_next_line(text, len, &pos, &line, &l));
    assert_memory_equal(line, "dd", 2);
    assert_false(cli_next_line(text, len, &pos, &line, &l));
    assert_int_equal(cli_count_lines(NULL, 0), 0);
    assert_int_equal(cli_count_lines("x\n", 2), 1);
}

/* The trace renderings read lines the simulator wrote, but must hold up on
 * any text: random lines built from the tokens of real ones (seeded, so a
 * failure repeats) go through both formats under the sanitizers. */
static void trace_render_any_text(void **state)
{
    (void)state;
    static const char *const tokens[] = {
        "0.000000001", "12.5",     "event",     "net.accept", "net.deliver", "net.fin",
        "net.rst",     "net.connect", "net.close", "scn.fail", "scn.record", "conn=",
        "conn=1",      "conn=99999999999999999999", "dir=c>s", "dir=s>c", "dir=",
        "bytes=",      "bytes=7",  "host=",     "host=a",     "from=b",     "to=c:1",
        "to=:",        "a:1>b:2",  ">",         ":",          ">:",         "\"",
        "\\",          "\x01",     "\xff",      "{",          "}",          "=",
        "x",           "",         "seq=3",     "port=80",    "h_0",        "scenario",
    };
    const size_t ntok = sizeof tokens / sizeof tokens[0];
    uint64_t rng = 0x9e3779b97f4a7c15u;
    FILE *sink = fopen("/dev/null", "w");
    assert_non_null(sink);
    char text[4096];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0;
        int lines = (int)(rng % 12);
        for (int l = 0; l < lines; l++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            int words = (int)(rng % 7);
            for (int w = 0; w < words; w++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                const char *t = tokens[rng % ntok];
                size_t n = strlen(t);
                if (len + n + 2 >= sizeof text)
                    break;
                memcpy(text + len, t, n);
                len += n;
                if (rng & 0x100u)
                    text[len++] = ' ';
            }
            if (len + 1 < sizeof text)
                text[len++] = (rng & 0x200u) ? '\n' : '\0';
        }
        assert_int_equal(cli_render_trace(sink, "chrome", "f.scn", text, len), WEFT_OK);
        assert_int_equal(cli_render_trace(sink, "mermaid", "f.scn", text, len), WEFT_OK);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
    }
    assert_int_equal(cli_render_trace(sink, "svg", "f.scn", "", 0), WEFT_EINVAL);
    assert_int_equal(cli_render_trace(sink, "chrome", "f.scn", NULL, 0), WEFT_OK);
    fclose(sink);
}

/* ------------------------------------------------------- usage, help */

static void help_everywhere(void **state)
{
    (void)state;
    proc p;
    run_weft(&p, "--help");
    expect_status(&p, 0);
    expect_contains("stdout", p.out, "usage: weft");
    const char *cmds[] = {"run", "explore", "replay", "trace", "list"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        expect_contains("main help", p.out, cmds[i]);
    }
    proc_free(&p);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: weft %s", cmds[i]);
        run_weft(&p, cmds[i], "--help");
        expect_status(&p, 0);
        expect_contains("stdout", p.out, want);
        proc_free(&p);
        /* --help wins wherever it is; the files are not even read. */
        run_weft(&p, cmds[i], "nonexistent.scn", "--help");
        expect_status(&p, 0);
        expect_contains("stdout", p.out, want);
        proc_free(&p);
        run_weft(&p, cmds[i], "--bogus", "-h");
        expect_status(&p, 0);
        expect_contains("stdout", p.out, want);
        proc_free(&p);
        /* After "--" it is a file name. */
        run_weft(&p, cmds[i], "--", "--help");
        assert_int_equal(p.status, 2);
        proc_free(&p);
        run_weft(&p, "help", cmds[i]);
        expect_status(&p, 0);
        expect_contains("stdout", p.out, want);
        proc_free(&p);
    }
}

static void bad_usage_exits_2(void **state)
{
    (void)state;
    const char *f = write_file("any.scn", "# nothing\n");
    proc p;
    run_weft_argv(&p, (const char *const[]){NULL});
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "usage: weft");
    proc_free(&p);

    run_weft(&p, "frobnicate", f);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "unknown command 'frobnicate'");
    proc_free(&p);

    run_weft(&p, "--bogus");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "'--bogus'");
    proc_free(&p);

    run_weft(&p, "run", f, "--bogus");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "unknown option '--bogus'");
    expect_contains("stderr", p.err, "weft run --help");
    proc_free(&p);

    run_weft(&p, "run", "-x", f);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "unknown option '-x'");
    proc_free(&p);

    /* An option of another subcommand is unknown here. */
    run_weft(&p, "replay", f, "--seeds", "3");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "unknown option '--seeds'");
    proc_free(&p);
    run_weft(&p, "trace", f, "--check-determinism");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "'--check-determinism'");
    proc_free(&p);

    run_weft(&p, "run");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "missing scenario FILE");
    proc_free(&p);

    run_weft(&p, "explore", f, f);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "one scenario FILE");
    proc_free(&p);

    run_weft(&p, "run", f, "--seed");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "'--seed' needs a value");
    proc_free(&p);

    run_weft(&p, "explore", f, "--keep-going=yes");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "takes no value");
    proc_free(&p);

    run_weft(&p, "replay", f, "--seed", "1", "--choices", f);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "exclude each other");
    proc_free(&p);
}

static void numbers_are_strict(void **state)
{
    (void)state;
    const char *f = write_file("any.scn", "# nothing\n");
    static const struct {
        const char *cmd, *opt, *value;
    } cases[] = {
        {"run", "--seed", "12x"},
        {"run", "--seed", "-1"},
        {"run", "--seed", ""},
        {"run", "--seed", "99999999999999999999"},
        {"explore", "--seeds", "0"},
        {"explore", "--seeds", "ten"},
        {"explore", "--from", "1.5"},
        {"run", "--max-events", "1e6"},
        {"run", "--max-events", "0"},
        {"trace", "--max-time", "0ms"},
        {"run", "--max-time", "5"},
        {"run", "--max-time", "1.5xs"},
        {"replay", "--seed", "0x"},
        {"run", "--tail", "-3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proc p;
        run_weft(&p, cases[i].cmd, f, cases[i].opt, cases[i].value);
        expect_status(&p, 2);
        expect_contains("stderr", p.err, cases[i].opt);
        proc_free(&p);
        /* The --opt=value spelling is parsed the same way. */
        char joined[128];
        snprintf(joined, sizeof joined, "%s=%s", cases[i].opt, cases[i].value);
        run_weft(&p, cases[i].cmd, f, joined);
        expect_status(&p, 2);
        expect_contains("stderr", p.err, cases[i].opt);
        proc_free(&p);
    }
    /* The last seed plus one would wrap around. */
    proc p;
    run_weft(&p, "explore", f, "--from", "18446744073709551615", "--seeds", "2");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "past the last seed");
    proc_free(&p);
}

static void unreadable_and_unparsable_files(void **state)
{
    (void)state;
    proc p;
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/does-not-exist.scn", tmp_dir);
    run_weft(&p, "run", missing);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, missing);
    proc_free(&p);

    /* Two bad lines: both are reported, positioned, and nothing runs. */
    const char *bad = write_file("bad.scn", "frobnicate the network\n"
                                            "# fine\n"
                                            "also not a statement \"unterminated\n");
    run_weft(&p, "run", bad);
    expect_status(&p, 2);
    char want1[PATH_MAX + 64], want3[PATH_MAX + 64];
    snprintf(want1, sizeof want1, "%s:1:", bad);
    snprintf(want3, sizeof want3, "%s:3:", bad);
    expect_contains("stderr", p.err, want1);
    expect_contains("stderr", p.err, want3);
    assert_null(strstr(p.out, "PASS"));
    assert_null(strstr(p.out, "FAIL"));
    proc_free(&p);

    /* Many broken lines: reported up to the library's limit, then a note. */
    _Static_assert(WEFT_SCENARIO_DIAGS_MAX < 200, "the file must exceed the limit");
    char *many = malloc(200 * 32);
    assert_non_null(many);
    many[0] = '\0';
    for (int i = 0; i < 200; i++)
        strcat(many, "frobnicate\n");
    const char *manyf = write_file("many.scn", many);
    free(many);
    run_weft(&p, "run", manyf);
    expect_status(&p, 2);
    snprintf(want3, sizeof want3, "%s:%u:1:", manyf, WEFT_SCENARIO_DIAGS_MAX);
    expect_contains("stderr", p.err, want3);
    snprintf(want3, sizeof want3, "%s:%u:1:", manyf, WEFT_SCENARIO_DIAGS_MAX + 1);
    assert_null(strstr(p.err, want3));
    expect_contains("stderr", p.err, "more errors not shown");
    proc_free(&p);

    /* Same on every subcommand. */
    const char *cmds[] = {"explore", "replay", "trace"};
    for (size_t i = 0; i < 3; i++) {
        run_weft(&p, cmds[i], bad);
        expect_status(&p, 2);
        expect_contains("stderr", p.err, want1);
        proc_free(&p);
    }
}

static void plugin_that_does_not_load(void **state)
{
    (void)state;
    const char *f = write_file("any.scn", "# nothing\n");
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/no-such-plugin.so", tmp_dir);
    proc p;
    run_weft(&p, "run", f, "--load", missing);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "no-such-plugin.so");
    proc_free(&p);
    /* A file that is not a shared object. */
    const char *notso = write_file("not-a-plugin.so", "plain text\n");
    run_weft(&p, "run", f, "--load", notso);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "not-a-plugin.so");
    proc_free(&p);
}

/* ------------------------------------------------------------- runs */

/* A Deferred chain that passes: 41 + 1 after 10 ms of virtual time. */
static const char scn_pass[] = "scenario \"chain\"\n"
                               "deferred d\n"
                               "d then add 1\n"
                               "after 10ms: d fire 41\n"
                               "d expect value 42 within 1s\n";
/* The same chain expecting the wrong value. */
static const char scn_fail[] = "scenario \"wrong\"\n"
                               "deferred d\n"
                               "d then add 1\n"
                               "after 10ms: d fire 41\n"
                               "d expect value 43 within 1s\n";
/* Two timers due at the same instant: their order is a choice, so the
 * expected order fails on some seeds and holds on others. */
static const char scn_race[] = "scenario \"race\"\n"
                               "later a 10ms 1\n"
                               "later b 10ms 2\n"
                               "a then record \"a\"\n"
                               "b then record \"b\"\n"
                               "run until quiet\n"
                               "expect order \"a\" \"b\"\n";

/* The value of "key=" in text (first occurrence after from), as a string. */
static bool field(const char *text, const char *key, char *out, size_t len)
{
    const char *at = strstr(text, key);
    if (at == NULL)
        return false;
    at += strlen(key);
    size_t n = strcspn(at, " \n");
    if (n >= len)
        return false;
    memcpy(out, at, n);
    out[n] = '\0';
    return true;
}

static void expect_hash_format(const char *text)
{
    char hash[32];
    assert_true(field(text, "hash=", hash, sizeof hash));
    assert_int_equal(strlen(hash), 16);
    assert_int_equal(strspn(hash, "0123456789abcdef"), 16);
}

/* The seed of the first "FAIL <file> seed=N" line of an explore. */
static uint64_t failing_seed(const char *out)
{
    const char *line = strstr(out, "FAIL ");
    assert_non_null(line);
    char v[32];
    assert_true(field(line, "seed=", v, sizeof v));
    uint64_t seed;
    assert_true(cli_parse_u64(v, &seed));
    return seed;
}

static void run_pass_and_fail(void **state)
{
    (void)state;
    const char *pass = write_file("pass.scn", scn_pass);
    proc p;
    run_weft(&p, "run", pass);
    expect_status(&p, 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "PASS %s seed=1 time=0.010000000s events=", pass);
    expect_contains("stdout", p.out, want);
    expect_hash_format(p.out);
    assert_null(strstr(p.out, "replay:"));
    proc_free(&p);

    const char *failing = write_file("fail.scn", scn_fail);
    run_weft(&p, "run", failing);
    expect_status(&p, 1);
    snprintf(want, sizeof want, "FAIL %s seed=1 ", failing);
    expect_contains("stdout", p.out, want);
    /* The failing expectation, positioned, with what was seen instead. */
    snprintf(want, sizeof want, "%s:5:", failing);
    expect_contains("stdout", p.out, want);
    expect_contains("stdout", p.out, "expected value 43");
    expect_contains("stdout", p.out, "42");
    /* The last trace lines and the one command that replays it. */
    expect_contains("stdout", p.out, "trace lines:");
    expect_contains("stdout", p.out, "scn.end failed");
    snprintf(want, sizeof want, "replay: weft replay %s --seed 1\n", failing);
    expect_contains("stdout", p.out, want);
    proc_free(&p);

    /* A path the shell would split is quoted in the replay command. */
    const char *spaced = write_file("it's failing.scn", scn_fail);
    run_weft(&p, "run", spaced);
    expect_status(&p, 1);
    snprintf(want, sizeof want, "replay: weft replay '%s/it'\\''s failing.scn' --seed 1\n",
             tmp_dir);
    expect_contains("stdout", p.out, want);
    proc_free(&p);

    /* Several files: every verdict is printed, the exit status is the worst. */
    run_weft(&p, "run", pass, failing, pass);
    expect_status(&p, 1);
    snprintf(want, sizeof want, "PASS %s", pass);
    const char *first = strstr(p.out, want);
    assert_non_null(first);
    assert_non_null(strstr(first + 1, want));
    snprintf(want, sizeof want, "FAIL %s", failing);
    expect_contains("stdout", p.out, want);
    expect_contains("stdout", p.out, "run: 3 scenarios, 2 passed, 1 failed\n");
    proc_free(&p);

    /* A file that does not parse stops everything before anything runs. */
    const char *bad = write_file("bad2.scn", "deferred d\nd explode\n");
    run_weft(&p, "run", pass, bad);
    expect_status(&p, 2);
    assert_null(strstr(p.out, "PASS"));
    snprintf(want, sizeof want, "%s:2:", bad);
    expect_contains("stderr", p.err, want);
    proc_free(&p);

    /* An unknown protocol is found by the check against the registry. */
    const char *unknown = write_file("unknown.scn", "host h\nlisten no-such-proto on h:7\n");
    run_weft(&p, "run", unknown);
    expect_status(&p, 2);
    snprintf(want, sizeof want, "%s:2:", unknown);
    expect_contains("stderr", p.err, want);
    expect_contains("stderr", p.err, "no-such-proto");
    proc_free(&p);
}

static void seeds_and_caps(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "seed 77\n%s", scn_pass);
    const char *f = write_file("seeded.scn", text);
    proc p;
    run_weft(&p, "run", f);
    expect_status(&p, 0);
    expect_contains("stdout", p.out, " seed=77 ");
    proc_free(&p);
    run_weft(&p, "run", f, "--seed", "0x10");
    expect_status(&p, 0);
    expect_contains("stdout", p.out, " seed=16 ");
    proc_free(&p);

    /* A cap of one event stops a run that needs two: a runaway verdict,
     * and the replay command carries the cap. */
    const char *race = write_file("race.scn", scn_race);
    run_weft(&p, "run", race, "--max-events", "1");
    expect_status(&p, 1);
    expect_contains("stdout", p.out, "runaway");
    expect_contains("stdout", p.out, "--max-events 1 --seed 1\n");
    proc_free(&p);
    run_weft(&p, "run", f, "--max-time=5ms");
    expect_status(&p, 1);
    expect_contains("stdout", p.out, "--max-time 5000000ns");
    proc_free(&p);
    /* Generous caps change nothing. */
    run_weft(&p, "run", f, "--max-time", "2s", "--max-events", "100");
    expect_status(&p, 0);
    proc_free(&p);
}

static void replay_reproduces_run(void **state)
{
    (void)state;
    const char *race = write_file("race.scn", scn_race);
    /* Find a failing seed, then check that run, replay and trace agree. */
    proc p;
    /* Not the scenario's own seed (1), so that a replay that fell back on
     * the scenario's seed would show. */
    run_weft(&p, "explore", race, "--seeds", "64", "--from", "2");
    expect_status(&p, 1);
    uint64_t seed = failing_seed(p.out);
    assert_true(seed >= 2);
    char run_hash[32], seed_arg[32];
    assert_true(field(strstr(p.out, "FAIL "), "hash=", run_hash, sizeof run_hash));
    proc_free(&p);
    snprintf(seed_arg, sizeof seed_arg, "%llu", (unsigned long long)seed);

    run_weft(&p, "run", race, "--seed", seed_arg);
    expect_status(&p, 1);
    char h[32];
    assert_true(field(p.out, "hash=", h, sizeof h));
    assert_string_equal(h, run_hash);
    proc_free(&p);

    run_weft(&p, "replay", race, "--seed", seed_arg);
    expect_status(&p, 1);
    expect_contains("stdout", p.out, "trace:\n");
    expect_contains("stdout", p.out, "scn.start");
    expect_contains("stdout", p.out, "expected order");
    const char *verdict = strstr(p.out, "FAIL ");
    assert_non_null(verdict);
    assert_true(field(verdict, "hash=", h, sizeof h));
    assert_string_equal(h, run_hash);
    proc_free(&p);

    /* trace: the bare trace on stdout, the verdict on stderr. */
    run_weft(&p, "trace", race, "--seed", seed_arg);
    expect_status(&p, 1);
    assert_null(strstr(p.out, "FAIL"));
    assert_true(strncmp(p.out, "0.000000000 scn.start", 21) == 0);
    assert_true(field(p.err, "hash=", h, sizeof h));
    assert_string_equal(h, run_hash);
    char *seed_trace = strdup(p.out);
    proc_free(&p);

    /* Save the choices of the failing run and replay them: same hash, same
     * trace, line for line. */
    char choices[PATH_MAX + 32];
    snprintf(choices, sizeof choices, "%s/race.choices", tmp_dir);
    run_weft(&p, "run", race, "--seed", seed_arg, "--save-choices", choices);
    expect_status(&p, 1);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "weft replay %s --choices %s\n", race, choices);
    expect_contains("stdout", p.out, want);
    proc_free(&p);
    char *saved = read_all(choices);
    expect_contains("choice file", saved, "order");
    free(saved);

    run_weft(&p, "replay", race, "--choices", choices);
    expect_status(&p, 1);
    snprintf(want, sizeof want, "choices=%s", choices);
    expect_contains("stdout", p.out, want);
    assert_true(field(strstr(p.out, "FAIL "), "hash=", h, sizeof h));
    assert_string_equal(h, run_hash);
    proc_free(&p);

    run_weft(&p, "trace", race, "--choices", choices);
    expect_status(&p, 1);
    assert_string_equal(p.out, seed_trace);
    proc_free(&p);
    free(seed_trace);

    /* A choice file that cannot be written: the failure is still reported,
     * and the exit status says the command could not do all it was asked. */
    char unwritable[PATH_MAX + 32];
    snprintf(unwritable, sizeof unwritable, "%s/no-such-dir/x.choices", tmp_dir);
    run_weft(&p, "run", race, "--seed", seed_arg, "--save-choices", unwritable);
    expect_status(&p, 2);
    expect_contains("stdout", p.out, "expected order");
    expect_contains("stderr", p.err, "no-such-dir/x.choices");
    proc_free(&p);

    /* A choice file that does not exist. */
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/missing.choices", tmp_dir);
    run_weft(&p, "replay", race, "--choices", missing);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "missing.choices");
    proc_free(&p);

    /* A choice file that does not parse is a usage error. */
    const char *junk = write_file("junk.choices", "seven/eight\n");
    run_weft(&p, "replay", race, "--choices", junk);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "junk.choices");
    proc_free(&p);
}

/* A fuzzer's input as the choice source: in the race, the one choice of
 * order takes one byte (value % 2). */
static void replay_from_raw_bytes(void **state)
{
    (void)state;
    const char *race = write_file("race.scn", scn_race);
    const char *zero = write_file("zero.bin", "\x02");
    const char *one = write_file("one.bin", "\x03");
    proc p;
    run_weft(&p, "replay", race, "--bytes", zero);
    expect_status(&p, 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "PASS %s bytes=%s ", race, zero);
    expect_contains("stdout", p.out, want);
    proc_free(&p);

    char choices[PATH_MAX + 32];
    snprintf(choices, sizeof choices, "%s/bytes.choices", tmp_dir);
    run_weft(&p, "replay", race, "--bytes", one, "--save-choices", choices);
    expect_status(&p, 1);
    expect_contains("stdout", p.out, "expected order");
    char h[32], h2[32];
    assert_true(field(strstr(p.out, "FAIL "), "hash=", h, sizeof h));
    proc_free(&p);
    /* Converted to a choice file, the bytes replay the same run. */
    char *saved = read_all(choices);
    expect_contains("choice file", saved, "1/2 order");
    assert_null(strstr(saved, "# seed"));
    free(saved);
    run_weft(&p, "replay", race, "--choices", choices);
    expect_status(&p, 1);
    assert_true(field(strstr(p.out, "FAIL "), "hash=", h2, sizeof h2));
    assert_string_equal(h, h2);
    proc_free(&p);

    run_weft(&p, "trace", race, "--bytes", one, "--seed", "3");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "exclude each other");
    proc_free(&p);
    snprintf(want, sizeof want, "%s/no-such.bin", tmp_dir);
    run_weft(&p, "trace", race, "--bytes", want);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "no-such.bin");
    proc_free(&p);
}

/* An echo server and a scripted client: a network conversation to draw. */
static const char scn_echo[] = "scenario \"echo\"\n"
                               "network latency 1ms..5ms chunk 2\n"
                               "host server desk\n"
                               "listen echo on server:7\n"
                               "peer c connects to server:7 from desk\n"
                               "c expect connected within 1s\n"
                               "c send \"ping\\r\\n\"\n"
                               "c expect \"ping\\r\\n\" within 1s\n"
                               "c close\n"
                               "c expect closed within 1s\n";

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *q = text; (q = strstr(q, needle)) != NULL; q += strlen(needle))
        n++;
    return n;
}

static void trace_formats(void **state)
{
    (void)state;
    const char *echo = write_file("echo.scn", scn_echo);
    proc p;
    run_weft(&p, "trace", echo, "--format", "mermaid");
    expect_status(&p, 0);
    assert_true(strncmp(p.out, "sequenceDiagram\n", 16) == 0);
    expect_contains("mermaid", p.out, "participant h0 as server\n");
    expect_contains("mermaid", p.out, "participant h1 as desk\n");
    expect_contains("mermaid", p.out, "    h1->>h0: connect :7 @");
    expect_contains("mermaid", p.out, "    h0-->>h1: accept conn 1 @");
    /* "ping\r\n" in chunks of at most 2 bytes: 6 bytes each way, in at least
     * three deliveries each way. */
    assert_true(count(p.out, "h1->>h0: 2 bytes") + count(p.out, "h1->>h0: 1 byte") >= 3);
    assert_true(count(p.out, "h0->>h1: 2 bytes") + count(p.out, "h0->>h1: 1 byte") >= 3);
    assert_null(strstr(p.out, "h0->>h1: 3 bytes"));
    expect_contains("mermaid", p.out, "--xh0: FIN @");
    expect_contains("mermaid", p.out, "Note over scenario: end passed @");
    expect_contains("stderr", p.err, "PASS ");
    proc_free(&p);

    run_weft(&p, "trace", echo, "--format=chrome");
    expect_status(&p, 0);
    assert_true(strncmp(p.out, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", 39) == 0);
    size_t len = strlen(p.out);
    assert_true(len > 4 && strcmp(p.out + len - 4, "\n]}\n") == 0);
    assert_int_equal(count(p.out, "{"), count(p.out, "}"));
    expect_contains("chrome", p.out, "\"args\":{\"name\":\"server\"}");
    expect_contains("chrome", p.out, "\"args\":{\"name\":\"desk\"}");
    expect_contains("chrome", p.out, "{\"name\":\"net.deliver\",\"cat\":\"net\",\"ph\":\"i\"");
    /* Virtual time in microseconds, exact to the nanosecond. */
    expect_contains("chrome", p.out, "\"ts\":0.000,");
    /* Every line of the text trace is one event. */
    proc q;
    run_weft(&q, "trace", echo);
    expect_status(&q, 0);
    assert_int_equal(count(p.out, "\"ph\":\"i\""), count(q.out, "\n"));
    proc_free(&q);
    proc_free(&p);

    run_weft(&p, "trace", echo, "--format", "text");
    expect_status(&p, 0);
    assert_true(strncmp(p.out, "0.000000000 scn.start echo\n", 27) == 0);
    proc_free(&p);
    run_weft(&p, "trace", echo, "--format", "svg");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "--format: 'svg'");
    proc_free(&p);
    run_weft(&p, "replay", echo, "--format", "chrome");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "unknown option '--format'");
    proc_free(&p);
}

/* The strategy seam of cli_source: a per-run choice source made from the
 * seed by the caller's function, named in verdicts and replay commands. */
static weft_choice *always(void *ctx, uint64_t seed)
{
    const uint32_t *value = ctx;
    (void)seed;
    return weft_choice_replay(value, 1);
}

static void always_replay(void *ctx, uint64_t seed, FILE *out)
{
    fprintf(out, " --strategy fixed --value %u --seed %llu", *(const uint32_t *)ctx,
            (unsigned long long)seed);
}

static void strategy_seam(void **state)
{
    (void)state;
    const char *race = write_file("race.scn", scn_race);
    const char *files[] = {race};
    cli_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = "test";
    o.files = files;
    o.nfiles = 1;
    o.tail_lines = 3;
    cli_session s;
    assert_int_equal(cli_session_open(&o, &s), CLI_EXIT_PASS);
    for (uint32_t v = 0; v < 2; v++) {
        cli_source src;
        memset(&src, 0, sizeof src);
        src.seed = 42;
        src.make_choices = always;
        src.make_ctx = &v;
        src.strategy = "fixed";
        src.print_replay = always_replay;
        cli_capture cap;
        memset(&cap, 0, sizeof cap);
        weft_run_result res;
        assert_int_equal(cli_run(&o, &s, 0, &src, true, NULL, NULL, &cap, &res), WEFT_OK);
        /* Answer 0 runs a before b; answer 1, b before a. */
        assert_int_equal(res.passed, v == 0);
        assert_int_equal(cap.len, 1);
        assert_int_equal(cap.values[0], v);
        assert_string_equal(cap.labels[0], "order");
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        assert_non_null(mem);
        cli_print_verdict(mem, race, &src, &res, false);
        cli_print_replay_command(mem, &o, race, &src);
        fclose(mem);
        expect_contains("verdict", text, " seed=42 strategy=fixed time=");
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "weft replay %s --strategy fixed --value %u --seed 42\n",
                 race, (unsigned)v);
        expect_contains("replay command", text, want);
        free(text);
        cli_capture_clear(&cap);
        weft_run_result_clear(&res);
    }
    cli_session_close(&s);

    /* A sweep through the seam: every seed answers 1, so every seed fails,
     * and the report names the strategy's replay. */
    uint32_t one = 1;
    cli_source base;
    memset(&base, 0, sizeof base);
    base.make_choices = always;
    base.print_replay = always_replay;
    base.make_ctx = &one;
    base.strategy = "fixed";
    o.seeds = 5;
    o.from = 10;
    o.jobs = 1;
    o.keep_going = true;
    o.tail_lines = 0;
    o.quiet = true;
    /* The sweep prints to the real stdout: send it to a file for reading. */
    char out_path[PATH_MAX + 16];
    snprintf(out_path, sizeof out_path, "%s/seam.out", tmp_dir);
    fflush(stdout);
    int saved_fd = dup(1);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved_fd >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc = cli_explore_with(&o, &base);
    fflush(stdout);
    dup2(saved_fd, 1);
    close(saved_fd);
    assert_int_equal(rc, CLI_EXIT_FAIL);
    char *text = read_all(out_path);
    expect_contains("sweep", text, " seed=14 strategy=fixed ");
    expect_contains("sweep", text, "--strategy fixed --value 1 --seed 12\n");
    expect_contains("sweep", text, " seeds=5 from=10 failures=5 distinct=1 ");
    free(text);
}

static void explore_finds_and_passes(void **state)
{
    (void)state;
    const char *race = write_file("race.scn", scn_race);
    proc p;
    run_weft(&p, "explore", race, "--seeds", "200", "--tail", "3");
    expect_status(&p, 1);
    /* Stops at the first failure, reported with the replay command. */
    uint64_t seed = failing_seed(p.out);
    char want[PATH_MAX + 96];
    snprintf(want, sizeof want, "replay: weft replay %s --seed %llu\n", race,
             (unsigned long long)seed);
    expect_contains("stdout", p.out, want);
    expect_contains("stdout", p.out, "expected order \"a\" \"b\"");
    expect_contains("stdout", p.out, "last 3 of ");
    snprintf(want, sizeof want, "FAIL explore %s seeds=%llu from=1 failures=1 ", race,
             (unsigned long long)seed);
    expect_contains("stdout", p.out, want);
    /* Not a terminal: no progress line. */
    assert_null(strstr(p.err, "\r"));
    proc_free(&p);

    /* --keep-going reports every failing seed and runs them all. */
    run_weft(&p, "explore", race, "--seeds", "40", "--from", "100", "--keep-going", "--tail=0");
    expect_status(&p, 1);
    char v[32];
    const char *summary = strstr(p.out, "FAIL explore");
    assert_non_null(summary);
    assert_true(field(summary, "seeds=", v, sizeof v));
    assert_string_equal(v, "40");
    assert_true(field(summary, "from=", v, sizeof v));
    assert_string_equal(v, "100");
    assert_true(field(summary, "failures=", v, sizeof v));
    uint64_t failures;
    assert_true(cli_parse_u64(v, &failures));
    /* Either order is one choice: about half of 40 seeds fail. */
    assert_true(failures >= 5 && failures <= 35);
    size_t reports = 0;
    for (const char *q = p.out; (q = strstr(q, "replay: weft replay")) != NULL; q++)
        reports++;
    assert_int_equal(reports, failures);
    /* Both orders were seen: at least two different traces. */
    assert_true(field(summary, "distinct=", v, sizeof v));
    assert_true(atoi(v) >= 2);
    proc_free(&p);

    const char *pass = write_file("pass.scn", scn_pass);
    run_weft(&p, "explore", pass, "--seeds", "300");
    expect_status(&p, 0);
    snprintf(want, sizeof want, "PASS explore %s seeds=300 from=1 failures=0 ", pass);
    expect_contains("stdout", p.out, want);
    expect_contains("stdout", p.out, "/s\n");
    proc_free(&p);

    /* The digest covers every (seed, hash): equal for equal sweeps, different
     * when the seeds differ. */
    char d1[32], d2[32], d3[32];
    run_weft(&p, "explore", race, "--seeds", "50", "--keep-going", "--tail", "0");
    assert_true(field(strstr(p.out, " explore "), "digest=", d1, sizeof d1));
    assert_int_equal(strlen(d1), 16);
    proc_free(&p);
    run_weft(&p, "explore", race, "--seeds", "50", "--keep-going", "--tail", "0");
    assert_true(field(strstr(p.out, " explore "), "digest=", d2, sizeof d2));
    proc_free(&p);
    run_weft(&p, "explore", race, "--seeds", "50", "--from", "2", "--keep-going", "--tail", "0");
    assert_true(field(strstr(p.out, " explore "), "digest=", d3, sizeof d3));
    proc_free(&p);
    assert_string_equal(d1, d2);
    assert_string_not_equal(d1, d3);

    /* The saved choices of explore's first failure replay that failure. */
    char choices[PATH_MAX + 32];
    snprintf(choices, sizeof choices, "%s/explore.choices", tmp_dir);
    run_weft(&p, "explore", race, "--seeds", "200", "--from", "2", "--save-choices", choices);
    expect_status(&p, 1);
    char h[32];
    assert_true(field(strstr(p.out, "FAIL "), "hash=", h, sizeof h));
    proc_free(&p);
    run_weft(&p, "replay", race, "--choices", choices);
    expect_status(&p, 1);
    char h2[32];
    assert_true(field(strstr(p.out, "FAIL "), "hash=", h2, sizeof h2));
    assert_string_equal(h, h2);
    proc_free(&p);
}

/* Drop " time=...s rate=.../s" from summary lines: wall-clock figures. */
static void drop_wall_time(char *text)
{
    char *t;
    while ((t = strstr(text, " time=")) != NULL && strstr(t, " rate=") != NULL) {
        char *rate = strstr(t, " rate=");
        char *end = rate + 6;
        while (*end != '\0' && *end != ' ' && *end != '\n')
            end++;
        memmove(t, end, strlen(end) + 1);
    }
}

static void explore_jobs_same_output(void **state)
{
    (void)state;
    const char *race = write_file("race.scn", scn_race);
    const char *echo = write_file("echo.scn", scn_echo);
    const char *files[] = {race, echo};
    for (size_t i = 0; i < 2; i++) {
        proc one, two;
        run_weft(&one, "explore", files[i], "--seeds", "700", "--keep-going", "--tail", "2");
        run_weft(&two, "explore", files[i], "--seeds", "700", "--keep-going", "--tail", "2",
                 "--jobs", "2");
        assert_int_equal(one.status, two.status);
        drop_wall_time(one.out);
        drop_wall_time(two.out);
        assert_string_equal(one.out, two.out);
        proc_free(&one);
        proc_free(&two);
    }
    /* Stopping at the first failure: the same (lowest) failing seed. */
    proc one, two;
    run_weft(&one, "explore", race, "--seeds", "500", "--from", "2", "--check-determinism");
    run_weft(&two, "explore", race, "--seeds", "500", "--from", "2", "--check-determinism",
             "--jobs", "3");
    expect_status(&two, 1);
    drop_wall_time(one.out);
    drop_wall_time(two.out);
    assert_string_equal(one.out, two.out);
    proc_free(&one);
    proc_free(&two);

    const char *bad[] = {"0", "65", "two", ""};
    for (size_t i = 0; i < 4; i++) {
        run_weft(&one, "explore", race, "--jobs", bad[i]);
        expect_status(&one, 2);
        expect_contains("stderr", one.err, "--jobs");
        proc_free(&one);
    }
    run_weft(&one, "run", race, "--jobs", "2");
    expect_status(&one, 2);
    proc_free(&one);
}

static void progress_only_on_a_terminal(void **state)
{
    (void)state;
    const char *pass = write_file("pass.scn", scn_pass);
    proc p;
    run_weft_tty(&p, (const char *const[]){"explore", pass, "--seeds", "200", NULL});
    expect_status(&p, 0);
    expect_contains("terminal", p.err, "\r\033[Kexplore ");
    expect_contains("terminal", p.err, "/200 seeds, ");
    expect_contains("terminal", p.err, " seeds/s, 0 failures");
    /* The line is cleared before the summary, which goes to stdout. */
    const char *last = strrchr(p.err, '\r');
    assert_non_null(last);
    assert_string_equal(last, "\r\033[K");
    expect_contains("stdout", p.out, "PASS explore ");
    assert_null(strstr(p.out, "seeds/s"));
    proc_free(&p);

    run_weft_tty(&p, (const char *const[]){"explore", pass, "--seeds", "50", "--quiet", NULL});
    expect_status(&p, 0);
    assert_string_equal(p.err, "");
    proc_free(&p);

    /* run never draws progress. */
    run_weft_tty(&p, (const char *const[]){"run", pass, NULL});
    expect_status(&p, 0);
    assert_string_equal(p.err, "");
    proc_free(&p);
}

static void explore_interrupted_prints_summary(void **state)
{
    (void)state;
    const char *pass = write_file("pass.scn", scn_pass);
    proc p;
    /* Far more seeds than 400 ms can run. */
    for (int jobs = 1; jobs <= 2; jobs++) {
        /* A signal that lands before the sweep started (a loaded machine)
         * kills the process instead: try again, waiting longer. */
        for (unsigned wait_ms = 300;; wait_ms *= 2) {
            run_weft_signalled(&p,
                               (const char *const[]){"explore", pass, "--seeds", "1000000000",
                                                     "--jobs", jobs == 1 ? "1" : "2", NULL},
                               wait_ms);
            if (strstr(p.out, "explore") != NULL || wait_ms > 5000)
                break;
            proc_free(&p);
        }
        expect_status(&p, 130);
        expect_contains("stdout", p.out, "PASS explore ");
        expect_contains("stdout", p.out, " interrupted\n");
        char v[32];
        assert_true(field(p.out, "seeds=", v, sizeof v));
        uint64_t done;
        assert_true(cli_parse_u64(v, &done));
        assert_true(done >= 1 && done < 1000000000u);
        proc_free(&p);
    }
}

static void check_determinism(void **state)
{
    (void)state;
    const char *pass = write_file("pass.scn", scn_pass);
    const char *race = write_file("race.scn", scn_race);
    proc p;
    run_weft(&p, "run", "--check-determinism", pass);
    expect_status(&p, 0);
    assert_null(strstr(p.out, "NONDETERMINISTIC"));
    expect_contains("stdout", p.out, "PASS ");
    proc_free(&p);

    /* Deterministic but failing: the verdict decides, no divergence. */
    run_weft(&p, "explore", race, "--seeds", "30", "--keep-going", "--check-determinism",
             "--tail", "0");
    expect_status(&p, 1);
    assert_null(strstr(p.out, "NONDETERMINISTIC"));
    expect_contains("stdout", p.out, "nondeterministic=0");
    proc_free(&p);

    run_weft(&p, "explore", pass, "--seeds", "50", "--check-determinism");
    expect_status(&p, 0);
    expect_contains("stdout", p.out, "nondeterministic=0");
    proc_free(&p);
}

/* ------------------------------------------------------------- plugins */

/* The repository root: <root>/build/<config>/weft. */
static void repo_root(char *out, size_t len)
{
    snprintf(out, len, "%s", weft_bin);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(out, '/');
        if (slash != NULL)
            *slash = '\0';
    }
}

/* Compile a plugin from source into the temporary directory. false: no
 * compiler on this machine (the test is skipped then). */
static bool build_plugin(const char *name, const char *source, char *so_path, size_t len)
{
    char root[PATH_MAX + 16], cmd[3 * PATH_MAX];
    repo_root(root, sizeof root);
    const char *src = write_file("plugin.c", source);
    snprintf(so_path, len, "%s/%s", tmp_dir, name);
    snprintf(cmd, sizeof cmd, "cc -std=c11 -shared -fPIC -I'%s/include' -o '%s' '%s' 2>'%s/cc.err'",
             root, so_path, src, tmp_dir);
    return system(cmd) == 0;
}

static const char plugin_source[] =
    "#include <stddef.h>\n"
    "#include \"weft/scenario.h\"\n"
    "static weft_factory *make(weft_reactor *r, const char *args, void *ctx, char *err,\n"
    "                          size_t errlen)\n"
    "{ (void)r; (void)args; (void)ctx; (void)err; (void)errlen; return NULL; }\n"
    "static int act(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,\n"
    "               weft_deferred **out, char *err, size_t errlen)\n"
    "{ (void)w; (void)argc; (void)argv; (void)ctx; (void)err; (void)errlen;\n"
    "  *out = weft_succeed(NULL); return *out ? WEFT_OK : WEFT_ENOMEM; }\n"
    /* Nondeterministic on purpose: a process-wide counter leaks from one run
     * into the next, so two runs of one seed trace different lines. */
    "static int calls;\n"
    "static int drift(weft_world *w, size_t argc, const weft_arg *argv, void *ctx,\n"
    "                 weft_deferred **out, char *err, size_t errlen)\n"
    "{ (void)argc; (void)argv; (void)ctx; (void)err; (void)errlen;\n"
    "  weft_sim_trace(weft_world_sim(w), \"plugin.drift\", \"call %d\", calls++);\n"
    "  *out = weft_succeed(NULL); return *out ? WEFT_OK : WEFT_ENOMEM; }\n"
    "int weft_plugin_init(weft_registry *reg);\n"
    "int weft_plugin_init(weft_registry *reg)\n"
    "{\n"
    "    int err = weft_registry_add_protocol(reg, \"plugged\", make, NULL, NULL);\n"
    "    if (err == WEFT_OK) err = weft_registry_add_action(reg, \"plugged.act\", act, NULL);\n"
    "    if (err == WEFT_OK) err = weft_registry_add_action(reg, \"plugged.drift\", drift, NULL);\n"
    "    return err;\n"
    "}\n";

static void plugin_registers_its_names(void **state)
{
    (void)state;
    char so[PATH_MAX + 64];
    if (!build_plugin("plugged.so", plugin_source, so, sizeof so))
        skip();
    proc p;
    run_weft(&p, "list");
    expect_status(&p, 0);
    assert_null(strstr(p.out, "plugged"));
    proc_free(&p);

    run_weft(&p, "list", "--load", so);
    expect_status(&p, 0);
    expect_contains("stdout", p.out, "protocol plugged\n");
    expect_contains("stdout", p.out, "action plugged.act\n");
    proc_free(&p);

    /* Loading it twice registers the names twice: the second init fails. */
    run_weft(&p, "list", "--load", so, "--load", so);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "plugged.so");
    proc_free(&p);

    run_weft(&p, "list", "extra-file");
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "takes no FILE");
    proc_free(&p);
}

static void plugin_without_init_or_failing(void **state)
{
    (void)state;
    char so[PATH_MAX + 64];
    if (!build_plugin("noinit.so", "int weft_not_init(void);\nint weft_not_init(void) { return 0; }\n",
                      so, sizeof so))
        skip();
    proc p;
    run_weft(&p, "list", "--load", so);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "noinit.so");
    proc_free(&p);

    if (!build_plugin("failinit.so",
                      "#include \"weft/scenario.h\"\n"
                      "int weft_plugin_init(weft_registry *reg);\n"
                      "int weft_plugin_init(weft_registry *reg) { (void)reg; return WEFT_EINVAL; }\n",
                      so, sizeof so))
        skip();
    run_weft(&p, "list", "--load", so);
    expect_status(&p, 2);
    expect_contains("stderr", p.err, "failinit.so");
    proc_free(&p);
}

static void plugin_actions_in_scenarios(void **state)
{
    (void)state;
    char so[PATH_MAX + 64];
    if (!build_plugin("plugged.so", plugin_source, so, sizeof so))
        skip();
    const char *uses = write_file("uses.scn", "call plugged.act as r\n"
                                              "r expect succeeded within 1s\n");
    proc p;
    /* Without the plugin the action is unknown: a positioned error. */
    run_weft(&p, "run", uses);
    expect_status(&p, 2);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:1:", uses);
    expect_contains("stderr", p.err, want);
    proc_free(&p);

    run_weft(&p, "run", "--load", so, uses);
    expect_status(&p, 0);
    expect_contains("stdout", p.out, "PASS ");
    proc_free(&p);

    /* A failure that needs the plugin: the replay command loads it too. */
    const char *pending = write_file("pending.scn", "deferred never\n"
                                                    "call plugged.act as r\n"
                                                    "r expect failure Boom within 1s\n");
    run_weft(&p, "run", "--load", so, pending);
    expect_status(&p, 1);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "replay: weft replay %s --load %s --seed 1\n", pending, so);
    expect_contains("stdout", p.out, cmd);
    proc_free(&p);

    /* A plugin whose action leaks state between runs: the determinism check
     * sees two different traces and names the first differing line. */
    const char *drifts = write_file("drift.scn", "call plugged.drift as r\n"
                                                 "r expect succeeded within 1s\n");
    run_weft(&p, "run", "--load", so, drifts);
    expect_status(&p, 0);
    proc_free(&p);
    run_weft(&p, "run", "--load", so, "--check-determinism", drifts);
    expect_status(&p, 1);
    snprintf(want, sizeof want, "NONDETERMINISTIC %s seed=1", drifts);
    expect_contains("stdout", p.out, want);
    snprintf(want, sizeof want, "FAIL %s seed=1 ", drifts);
    expect_contains("stdout", p.out, want);
    expect_contains("stdout", p.out, " nondeterministic\n");
    expect_contains("stdout", p.out, "first difference at trace line");
    /* Runs 1 and 2 differ in their hashes; the traced runs 3 and 4 name the
     * line: the drift's counter is 2, then 3. */
    expect_contains("stdout", p.out, "plugin.drift call 2\n");
    expect_contains("stdout", p.out, "plugin.drift call 3\n");
    const char *r3 = strstr(p.out, "run 3: ");
    const char *r4 = strstr(p.out, "run 4: ");
    assert_non_null(r3);
    assert_non_null(r4);
    assert_true(r3 < r4);
    proc_free(&p);

    run_weft(&p, "explore", "--load", so, "--check-determinism", "--seeds", "3", drifts);
    expect_status(&p, 1);
    expect_contains("stdout", p.out, "nondeterministic=1");
    proc_free(&p);
}

/* ------------------------------------------------------------- fixture */

static int rm_tree(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/weft-test-cli-XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    return rm_tree(tmp_dir) == 0 ? 0 : -1;
}

/* <build>/tests/test_cli -> <build>/weft */
static int find_weft(const char *argv0)
{
    char self[PATH_MAX];
    if (realpath(argv0, self) == NULL)
        return -1;
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0'; /* <build>/tests */
    slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0'; /* <build> */
    snprintf(weft_bin, sizeof weft_bin, "%s/weft", self);
    return access(weft_bin, X_OK);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (find_weft(argv[0]) != 0) {
        fprintf(stderr, "test_cli: the weft command is not built next to %s (%s)\n", argv[0],
                weft_bin);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_u64_is_strict),
        cmocka_unit_test(parse_duration_units_and_fractions),
        cmocka_unit_test(format_time_and_lines),
        cmocka_unit_test(trace_render_any_text),
        cmocka_unit_test(help_everywhere),
        cmocka_unit_test(bad_usage_exits_2),
        cmocka_unit_test(numbers_are_strict),
        cmocka_unit_test(unreadable_and_unparsable_files),
        cmocka_unit_test(plugin_that_does_not_load),
        cmocka_unit_test(plugin_registers_its_names),
        cmocka_unit_test(plugin_without_init_or_failing),
        cmocka_unit_test(plugin_actions_in_scenarios),
        cmocka_unit_test(run_pass_and_fail),
        cmocka_unit_test(seeds_and_caps),
        cmocka_unit_test(replay_reproduces_run),
        cmocka_unit_test(replay_from_raw_bytes),
        cmocka_unit_test(trace_formats),
        cmocka_unit_test(strategy_seam),
        cmocka_unit_test(explore_finds_and_passes),
        cmocka_unit_test(explore_jobs_same_output),
        cmocka_unit_test(progress_only_on_a_terminal),
        cmocka_unit_test(explore_interrupted_prints_summary),
        cmocka_unit_test(check_determinism),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
