/* defer_internal.h: what the files of defer/ share. Not a public header.
 *
 * deferred.c owns the Deferred struct and its run loop. The list/gather code
 * (dlist.c) plugs into it through two recognised function pointers: its
 * canceller (which may run repeatedly and has no Cancelled fallback, as
 * Twisted's DeferredList.cancel) and its member handlers (whose context is
 * released when a member drops them without running).
 */
#ifndef WEFT_DEFER_INTERNAL_H
#define WEFT_DEFER_INTERNAL_H

#include "weft/defer.h"

/* failure.c */
weft_failure *weft__failure_no_memory(void);
void weft__report_unhandled(const weft_failure *f);

/* deferred.c */
weft_deferred *weft__deferred_new_list(void *state);

/* dlist.c */
void weft__dlist_cancel(weft_deferred *d, void *ctx);
void weft__dlist_finalize(void *ctx);
weft_result weft__dlist_member_cb(weft_result in, void *ctx);
weft_result weft__dlist_member_eb(weft_result in, void *ctx);
void weft__dlist_member_dropped(void *ctx);

#endif
