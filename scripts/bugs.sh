#!/usr/bin/env bash
# make bugs: hunt each planted bug of scenarios/bugs/ with the three
# exploration strategies of `weft explore` (random seeds, PCT schedules,
# systematic depth-first), shrink the first failing run each one found, and
# sweep each fixed version. Prints a table and one "bench:" line per figure:
#   bench: bugs.<bug>.<strategy>.runs N runs          runs until the first failure
#   bench: bugs.<bug>.<strategy>.time_ms T ms         wall time of that hunt (the
#                                                     whole explore command, with
#                                                     its start-up and the report)
#   bench: bugs.<bug>.<strategy>.trace_before N lines trace of the failing run
#   bench: bugs.<bug>.<strategy>.trace_after N lines  trace of the shrunk run
#   bench: bugs.<bug>.<strategy>.choices_before N / choices_after N
# Usage: scripts/bugs.sh [WEFT] (default build/release-gcc/weft, built first
# by the make target). BUGS_SEEDS caps each hunt (default 2000), and
# BUGS_FIXED_SEEDS the sweep of each fixed version (default 2000).
set -euo pipefail
weft=${1:-build/release-gcc/weft}
seeds=${BUGS_SEEDS:-2000}
fixed_seeds=${BUGS_FIXED_SEEDS:-2000}
bugs=(rpc jobs resend pair lock)
strategies=(random pct systematic)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

field() { # field NAME LINE: the value of NAME=VALUE in LINE
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2" | head -n1
}

printf '%-7s %-11s %6s %10s %18s %16s\n' bug strategy runs time-ms 'trace before>after' 'choices before>after'
for bug in "${bugs[@]}"; do
  scn=scenarios/bugs/$bug.scn
  for strat in "${strategies[@]}"; do
    t0=$(date +%s%N)
    out=$("$weft" explore "$scn" --strategy "$strat" --seeds "$seeds" --quiet --tail 0 \
      --save-choices "$tmp/$bug.$strat.choices" 2>&1) && rc=0 || rc=$?
    t1=$(date +%s%N)
    summary=$(grep -E '^(PASS|FAIL) explore ' <<<"$out" | tail -n1)
    if [[ $rc -ne 1 ]]; then
      printf '%-7s %-11s %6s\n' "$bug" "$strat" "not found (exit $rc)"
      status=1
      continue
    fi
    if [[ $strat == systematic ]]; then
      runs=$(field runs "$summary")
    else
      runs=$(field seeds "$summary")
    fi
    ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
    # Shrink the failing run from what the report says replays it.
    replay=$(grep -E '^replay: weft replay ' <<<"$out" | head -n1)
    args=${replay#replay: weft replay $scn}
    # shellcheck disable=SC2086
    sh=$(cd "$tmp" && "$OLDPWD/$weft" shrink "$OLDPWD/$scn" $args \
      --save-choices "$tmp/$bug.$strat.min" 2>&1) && src=0 || src=$?
    line=$(grep -E '^shrunk ' <<<"$sh" || true)
    if [[ $src -ne 0 || -z $line ]]; then
      printf '%-7s %-11s %6s %10s %s\n' "$bug" "$strat" "$runs" "$ms" "shrink failed (exit $src)"
      status=1
      continue
    fi
    read -r cb ca <<<"$(sed -n 's/.*choices \([0-9]*\) -> \([0-9]*\),.*/\1 \2/p' <<<"$line")"
    read -r tb ta <<<"$(sed -n 's/.*trace lines \([0-9]*\) -> \([0-9]*\),.*/\1 \2/p' <<<"$line")"
    printf '%-7s %-11s %6s %10s %18s %16s\n' "$bug" "$strat" "$runs" "$ms" "$tb>$ta" "$cb>$ca"
    {
      echo "bench: bugs.$bug.$strat.runs $runs runs"
      echo "bench: bugs.$bug.$strat.time_ms $ms ms"
      echo "bench: bugs.$bug.$strat.trace_before $tb lines"
      echo "bench: bugs.$bug.$strat.trace_after $ta lines"
      echo "bench: bugs.$bug.$strat.choices_before $cb choices"
      echo "bench: bugs.$bug.$strat.choices_after $ca choices"
    } >>"$tmp/bench"
  done
done
echo
for bug in "${bugs[@]}"; do
  scn=scenarios/bugs/${bug}_fixed.scn
  out=$("$weft" explore "$scn" --seeds "$fixed_seeds" --quiet 2>&1) && rc=0 || rc=$?
  summary=$(grep -E '^(PASS|FAIL) explore ' <<<"$out" | tail -n1)
  echo "fixed: $summary"
  [[ $rc -eq 0 ]] || status=1
done
echo
cat "$tmp/bench" 2>/dev/null || true
exit $status
