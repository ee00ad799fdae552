/* diag.c: lists of positioned diagnostics ("file:line:col: message").
 *
 * The parser and the checker add errors as they find them; the list keeps at
 * most WEFT_SCENARIO_DIAGS_MAX and then only notes that more were dropped, so
 * a hostile file cannot make the error list grow without bound. Sorting keeps
 * the file order (line, column) and, for equal positions, the order found (a
 * stable insertion, never a comparison of addresses).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "weft/scenario.h"

void weft_diags_init(weft_diags *d)
{
    memset(d, 0, sizeof *d);
}

void weft_diags_clear(weft_diags *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++) {
        weft_free(d->items[i].file);
        weft_free(d->items[i].msg);
    }
    weft_free(d->items);
    memset(d, 0, sizeof *d);
}

static bool diag_before(const weft_diag *a, int line, int col)
{
    return a->line < line || (a->line == line && a->col <= col);
}

int weft_diags_add(weft_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
    if (d == NULL)
        return WEFT_OK;
    if (d->count >= WEFT_SCENARIO_DIAGS_MAX) {
        d->truncated = true;
        return WEFT_OK;
    }
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        weft_diag *items = weft_realloc(d->items, cap * sizeof *items);
        if (items == NULL)
            return WEFT_ENOMEM;
        d->items = items;
        d->cap = cap;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *f = weft_strdup(file ? file : "<input>");
    char *m = weft_strdup(buf);
    if (f == NULL || m == NULL) {
        weft_free(f);
        weft_free(m);
        return WEFT_ENOMEM;
    }
    /* Stable insertion in (line, col) order. */
    size_t at = d->count;
    while (at > 0 && !diag_before(&d->items[at - 1], line, col))
        at--;
    memmove(&d->items[at + 1], &d->items[at], (d->count - at) * sizeof *d->items);
    d->items[at].file = f;
    d->items[at].line = line;
    d->items[at].col = col;
    d->items[at].msg = m;
    d->count++;
    return WEFT_OK;
}

char *weft_diag_format(const weft_diag *d)
{
    const char *file = d->file ? d->file : "<input>";
    const char *msg = d->msg ? d->msg : "";
    size_t n = strlen(file) + strlen(msg) + 48;
    char *s = weft_malloc(n);
    if (s == NULL)
        return NULL;
    if (d->line <= 0)
        snprintf(s, n, "%s: %s", file, msg);
    else
        snprintf(s, n, "%s:%d:%d: %s", file, d->line, d->col, msg);
    return s;
}

int weft_diags_write(const weft_diags *d, FILE *out)
{
    if (d == NULL || out == NULL)
        return WEFT_EINVAL;
    for (size_t i = 0; i < d->count; i++) {
        char *s = weft_diag_format(&d->items[i]);
        if (s == NULL)
            return WEFT_ENOMEM;
        int rc = fprintf(out, "%s\n", s);
        weft_free(s);
        if (rc < 0)
            return WEFT_EIO;
    }
    if (d->truncated && fprintf(out, "(more errors not shown)\n") < 0)
        return WEFT_EIO;
    return WEFT_OK;
}
