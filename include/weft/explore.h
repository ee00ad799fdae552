/* weft/explore.h: hunting ordering bugs in scenarios: the planted bugs that
 * exercise the hunt, and shrinking a failing scenario run.
 *
 * The exploration strategies themselves are choice sources (weft/sim.h,
 * "Exploration strategies"): seeded (random), PCT-style priority schedules
 * and the systematic depth-first explorer. docs/exploration.md describes
 * the strategies, the planted bugs and the figures `make bugs` prints.
 */
#ifndef WEFT_EXPLORE_H
#define WEFT_EXPLORE_H

#include "weft/scenario.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- Planted bugs
 *
 * Register the planted-bug protocols and actions (the scenarios in scenarios/bugs/ use
 * them). Each buggy protocol takes the argument "fixed" for its fixed
 * version. Protocols: bug-rpc, bug-jobs, bug-jobs-client, bug-store,
 * bug-resend, bug-pair, bug-lock; actions (each on a connected client of its protocol, named
 * first): bugs.rpc CLIENT TIMEOUT, bugs.resend CLIENT HOST:PORT COUNT,
 * bugs.pair CLIENT HOST:PORT, bugs.lock CLIENT WORKERS. WEFT_EEXIST when a
 * name is taken (nothing is undone), WEFT_ENOMEM, WEFT_EINVAL for NULL. */
int weft_bugs_register(weft_registry *reg);

/* ----------------------------------------------------- Shrinking a run
 *
 * Minimise the choice list of a failing run of sc (weft_shrink_choices on
 * replays of it) while it still fails the same way: its first failure,
 * with every run of digits read as one placeholder, is the same text (so
 * "got value 21" and "got value 31" match, "got value 21" and "still
 * pending" do not), and dispatches no more events and asks no more questions
 * than the given run (the shrunk trace is never the longer). opt gives the
 * seed (use_seed, so traces keep naming it) and the runaway caps; its
 * choices, sink and keep_trace are ignored (opt may be NULL). values[0..len) is the failing list (borrowed).
 *
 * On WEFT_OK *out (weft_free) holds the minimal list, *out_len its length,
 * and *tests the candidate runs tried (tests may be NULL). WEFT_ESTATE: the
 * given list does not fail (nothing to shrink; *out NULL). Errors of the
 * runs (WEFT_ENOMEM, WEFT_ENOTFOUND) are returned as they are. Deterministic:
 * the same inputs give the same list. */
int weft_scenario_shrink(const weft_scenario *sc, const weft_registry *reg,
                         const weft_run_options *opt, const uint32_t *values, size_t len,
                         size_t max_tests, uint32_t **out, size_t *out_len, size_t *tests);

/* The failure signature used above: failures[0] of a failed run with digit
 * runs replaced by '#', in a new string (weft_free). NULL for a passed run
 * or out of memory. */
char *weft_run_failure_key(const weft_run_result *r);

#ifdef __cplusplus
}
#endif
#endif
