/* fuzz_parser.c: arbitrary text into the scenario parser.
 *
 * Property: any bytes either parse into a scenario (which then also goes
 * through the checker against the built-in registry and, when it checks,
 * runs under small runaway caps to a verdict) or give WEFT_EPARSE
 * with at least one diagnostic, each positioned inside the text: line 1 to
 * the number of lines, column 1 to one past the end of that line, a
 * non-empty message, and a rendering "fuzz.scn:LINE:COL: message". Parsing
 * the same text twice gives the same outcome and the same diagnostics
 * (the parser keeps no state between calls). Out of memory is the only other
 * accepted outcome. Anything else, a crash or a hang is a bug; a violated
 * property prints what was wrong and aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parser_fail(const char *what, const weft_diags *d)
{
    fprintf(stderr, "fuzz_parser: %s\n", what);
    if (d)
        weft_diags_write(d, stderr);
    abort();
}

/* Length of line `line` (1-based) of text, without its '\n'; SIZE_MAX when
 * the text has fewer lines. */
static size_t line_length(const uint8_t *text, size_t len, int line)
{
    int at = 1;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            if (at == line)
                return i - start;
            at++;
            start = i + 1;
        }
    }
    return SIZE_MAX;
}

static void check_diags(const uint8_t *data, size_t size, const weft_diags *d)
{
    if (d->count == 0)
        parser_fail("EPARSE without a diagnostic", d);
    for (size_t i = 0; i < d->count; i++) {
        const weft_diag *g = &d->items[i];
        if (g->line < 1 || g->col < 1)
            parser_fail("diagnostic without a position", d);
        size_t ll = line_length(data, size, g->line);
        if (ll == SIZE_MAX)
            parser_fail("diagnostic on a line past the end of the text", d);
        if ((size_t)g->col > ll + 1)
            parser_fail("diagnostic column past the end of its line", d);
        if (!g->msg || !g->msg[0])
            parser_fail("diagnostic without a message", d);
        if (i > 0) {
            const weft_diag *p = &d->items[i - 1];
            if (p->line > g->line || (p->line == g->line && p->col > g->col))
                parser_fail("diagnostics out of file order", d);
        }
        char *text = weft_diag_format(g);
        if (text) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "fuzz.scn:%d:%d: ", g->line, g->col);
            if (strncmp(text, prefix, strlen(prefix)) != 0)
                parser_fail("diagnostic rendering is not file:line:col: message", d);
            weft_free(text);
        }
    }
}

static weft_registry *parser_registry(void)
{
    static weft_registry *reg;
    if (!reg) {
        reg = weft_registry_new();
        if (!reg || weft_registry_add_builtins(reg) != WEFT_OK)
            parser_fail("cannot build the built-in parser_registry", NULL);
    }
    return reg;
}

/* A scenario that parses and checks also runs, under small runaway caps:
 * passing or failing is its own business, but the run must end with a
 * verdict (or out of memory), never crash or hang. */
static void run_small(const weft_scenario *sc)
{
    weft_run_options opt;
    weft_run_options_init(&opt);
    opt.use_seed = true;
    opt.seed = 1;
    opt.max_events = 20000;
    opt.max_time_ns = 120 * WEFT_NS_PER_S;
    weft_run_result res;
    int rc = weft_scenario_run(sc, parser_registry(), &opt, &res);
    if (rc == WEFT_OK && !res.verdict)
        parser_fail("a run ended without a verdict", NULL);
    if (rc != WEFT_OK && rc != WEFT_ENOMEM)
        parser_fail("the runner returned an error for a checked scenario", NULL);
    weft_run_result_clear(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weft_diags d1, d2;
    weft_diags_init(&d1);
    weft_diags_init(&d2);
    weft_scenario *sc = NULL, *sc2 = NULL;
    int rc = weft_scenario_parse((const char *)data, size, "fuzz.scn", &sc, &d1);
    if (rc == WEFT_ENOMEM) {
        if (sc)
            parser_fail("ENOMEM with a scenario", &d1);
        weft_diags_clear(&d1);
        return 0;
    }
    if (rc == WEFT_OK) {
        if (!sc)
            parser_fail("OK without a scenario", &d1);
        if (!weft_scenario_name(sc) || !weft_scenario_file(sc) ||
            strcmp(weft_scenario_file(sc), "fuzz.scn") != 0)
            parser_fail("accessors of a parsed scenario", &d1);
        weft_diags cd;
        weft_diags_init(&cd);
        int crc = weft_scenario_check(sc, parser_registry(), &cd);
        if (crc == WEFT_ENOTFOUND)
            check_diags(data, size, &cd);
        else if (crc != WEFT_OK && crc != WEFT_ENOMEM)
            parser_fail("check returned an unexpected code", &cd);
        weft_diags_clear(&cd);
        if (crc == WEFT_OK)
            run_small(sc);
    } else if (rc == WEFT_EPARSE) {
        if (sc)
            parser_fail("EPARSE with a scenario", &d1);
        check_diags(data, size, &d1);
    } else {
        fprintf(stderr, "fuzz_parser: parse returned %s\n", weft_err_name(rc));
        abort();
    }

    /* Same text, same outcome. */
    int rc2 = weft_scenario_parse((const char *)data, size, "fuzz.scn", &sc2, &d2);
    if (rc2 != WEFT_ENOMEM) {
        if (rc2 != rc || d2.count != d1.count || d2.truncated != d1.truncated)
            parser_fail("a second parse of the same text differs", &d2);
        for (size_t i = 0; i < d1.count; i++) {
            if (d1.items[i].line != d2.items[i].line || d1.items[i].col != d2.items[i].col ||
                strcmp(d1.items[i].msg, d2.items[i].msg) != 0)
                parser_fail("a second parse gives other diagnostics", &d2);
        }
        if (sc && sc2 && weft_scenario_statements(sc) != weft_scenario_statements(sc2))
            parser_fail("a second parse gives another number of statements", &d2);
    }
    weft_scenario_free(sc);
    weft_scenario_free(sc2);
    weft_diags_clear(&d1);
    weft_diags_clear(&d2);
    return 0;
}
