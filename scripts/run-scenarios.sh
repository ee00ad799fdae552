#!/usr/bin/env bash
# What `make run` calls: every bundled scenario (scenarios/*.scn) once with
# its own seed and a determinism check, then a sweep of seeds of each with
# `weft explore`, then a summary table:
#   scenario  run  sweep  seeds  failures  distinct  seeds/s  digest
# (digest: explore's hash over every (seed, trace hash) of the sweep; equal
# digests across builds mean equal runs.)
# Exit status: 0 when every run and every sweep passed, 1 otherwise (2 when
# the command itself is missing or no scenario is found).
#
#   scripts/run-scenarios.sh WEFT [SCENARIO...]
#   WEFT_SWEEP_SEEDS=N   seeds per sweep (default 1000)
#   WEFT_SWEEP_FROM=S    first seed of each sweep (default 1)
set -uo pipefail
weft=${1:?usage: run-scenarios.sh WEFT_BINARY [SCENARIO...]}
shift
seeds=${WEFT_SWEEP_SEEDS:-1000}
from=${WEFT_SWEEP_FROM:-1}
cd "$(dirname "$0")/.."
if [[ ! -x $weft ]]; then
  echo "run-scenarios: $weft is not an executable" >&2
  exit 2
fi
if (($#)); then
  files=("$@")
else
  shopt -s nullglob
  files=(scenarios/*.scn)
  shopt -u nullglob
fi
if ((${#files[@]} == 0)); then
  echo "run-scenarios: no scenario found (scenarios/*.scn)" >&2
  exit 2
fi

# Pick key=value out of a summary line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

rows=()
bad=0
total_start=$(date +%s.%N)
for f in "${files[@]}"; do
  name=$(basename "$f")
  out=$("$weft" run --check-determinism "$f" 2>&1)
  rc=$?
  printf '%s\n' "$out"
  case $rc in
    0) run=PASS ;;
    1) run=FAIL ;;
    *) run=ERROR ;;
  esac
  if ((rc == 2)); then
    rows+=("$(printf '%-28s %-6s %-6s %7s %9s %9s %10s  %s' "$name" "$run" "-" "-" "-" "-" "-" "-")")
    bad=1
    continue
  fi
  out=$("$weft" explore "$f" --seeds "$seeds" --from "$from" --quiet 2>&1)
  rc=$?
  summary=$(grep -E '^(PASS|FAIL) explore ' <<<"$out" | tail -n 1)
  if ((rc != 0)) || [[ -z $summary ]]; then
    printf '%s\n' "$out"
    bad=1
  else
    printf '%s\n' "$summary"
  fi
  sweep=${summary%% *}
  [[ -n $sweep ]] || sweep=ERROR
  [[ $run == PASS ]] || bad=1
  rate=$(field rate "$summary")
  rows+=("$(printf '%-28s %-6s %-6s %7s %9s %9s %10s  %s' "$name" "$run" "$sweep" \
    "$(field seeds "$summary")" "$(field failures "$summary")" \
    "$(field distinct "$summary")" "${rate%/s}" "$(field digest "$summary")")")
done
total_end=$(date +%s.%N)

echo
printf '%-28s %-6s %-6s %7s %9s %9s %10s  %s\n' scenario run sweep seeds failures distinct seeds/s digest
printf '%s\n' "${rows[@]}"
printf 'run: %d scenarios, %s seeds each, %.1f s in all: %s\n' "${#files[@]}" "$seeds" \
  "$(awk -v a="$total_start" -v b="$total_end" 'BEGIN { print b - a }')" "$( ((bad)) && echo FAILED || echo all passed)"
exit $bad
