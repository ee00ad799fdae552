/* util.c: strict parsing of numbers and durations, time formatting, the wall
 * clock used for throughput figures, and line iteration over trace text.
 *
 * Parsing is strict on purpose: a seed typed as "12x" or "-1" is a usage
 * error, never a silent 0 or a wrapped value, because a seed that is not the
 * one the user meant replays a different run. The wall clock is read only to
 * report seeds per second; nothing a run does depends on it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (*s == '\0')
            return false;
    }
    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a') + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A') + 10;
        else
            return false;
        if (v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

bool cli_parse_duration(const char *s, int64_t *out_ns)
{
    if (s == NULL || *s == '\0')
        return false;
    const char *p = s;
    uint64_t whole = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (whole > (UINT64_MAX - d) / 10)
            return false;
        whole = whole * 10 + d;
        p++;
        digits++;
    }
    /* Up to 18 fractional digits, kept as numerator / 10^frac_digits. */
    uint64_t frac = 0;
    uint64_t frac_scale = 1;
    if (*p == '.') {
        p++;
        size_t fdigits = 0;
        while (*p >= '0' && *p <= '9') {
            if (fdigits == 18)
                return false;
            frac = frac * 10 + (uint64_t)(*p - '0');
            frac_scale *= 10;
            p++;
            fdigits++;
        }
        if (fdigits == 0)
            return false;
        digits += fdigits;
    }
    if (digits == 0)
        return false;
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", UINT64_C(60) * 1000000000},
        {"h", UINT64_C(3600) * 1000000000},
    };
    uint64_t unit_ns = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].name) == 0) {
            unit_ns = units[i].ns;
            break;
        }
    }
    if (unit_ns == 0)
        return false;
    if (whole > (uint64_t)INT64_MAX / unit_ns)
        return false;
    uint64_t ns = whole * unit_ns;
    if (frac != 0) {
        /* frac / frac_scale * unit_ns must be a whole number of ns. Cancel
         * common powers of ten first so that frac * u stays in range. */
        uint64_t g = frac_scale;
        uint64_t u = unit_ns;
        while (g % 10 == 0 && u % 10 == 0) {
            g /= 10;
            u /= 10;
        }
        if (frac > UINT64_MAX / u)
            return false;
        uint64_t num = frac * u;
        if (num % g != 0)
            return false;
        uint64_t part = num / g;
        if (part > (uint64_t)INT64_MAX - ns)
            return false;
        ns += part;
    }
    *out_ns = (int64_t)ns;
    return true;
}

void cli_format_time(int64_t ns, char *buf, size_t len)
{
    const char *sign = "";
    uint64_t v;
    if (ns < 0) {
        sign = "-";
        v = (uint64_t)(-(ns + 1)) + 1;
    } else {
        v = (uint64_t)ns;
    }
    snprintf(buf, len, "%s%llu.%09llus", sign, (unsigned long long)(v / 1000000000u),
             (unsigned long long)(v % 1000000000u));
}

double cli_wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool cli_next_line(const char *text, size_t len, size_t *pos, const char **line,
                   size_t *line_len)
{
    if (text == NULL || *pos >= len)
        return false;
    size_t start = *pos;
    size_t end = start;
    while (end < len && text[end] != '\n' && text[end] != '\0')
        end++;
    *line = text + start;
    *line_len = end - start;
    *pos = end < len ? end + 1 : end;
    return true;
}

size_t cli_count_lines(const char *text, size_t len)
{
    size_t pos = 0, n = 0, l;
    const char *line;
    while (cli_next_line(text, len, &pos, &line, &l))
        n++;
    return n;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "weft%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'weft%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    return CLI_EXIT_USAGE;
}
