#!/usr/bin/env bash
# What `make fuzz` runs: build the libFuzzer targets (fuzz/build.sh: clang,
# -fsanitize=fuzzer,address,undefined, into build/fuzz-clang), then
#   1. each target for FUZZ_SECONDS (default 60), starting from a copy of its
#      committed seed corpus (fuzz/corpus/<name>, never written to) with its
#      dictionary; one line each:
#        fuzz: <target> <runs> runs in <s> s, <n> execs/s, corpus <files>: ok|CRASH
#   2. the bug hunt: fuzz_schedule pinned to each planted bug of
#      scenarios/bugs/ (WEFT_FUZZ_SCENARIO) until the first failure or
#      FUZZ_BUG_SECONDS (default 60); one line each:
#        fuzz: bug <name> found in <s> s (<runs> runs)   or   NOT found in <s> s
#      and each fixed version (<name>_fixed.scn) for FUZZ_FIXED_SECONDS
#      (default 10), which must not fail.
# Findings go to build/fuzz-clang/artifacts/ (crash files; for schedules
# also schedule-*.bytes with the `weft replay FILE --bytes F` command).
# Exit status: 0 when no target crashed, every planted bug was found and no
# fixed version failed; 1 otherwise.
#
#   FUZZ_SECONDS=10 make fuzz       a smoke run (CI)
#   FUZZ_TARGETS="defer framing"    only these targets
#   FUZZ_BUGS=0                     skip the bug hunt
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
bug_seconds=${FUZZ_BUG_SECONDS:-60}
fixed_seconds=${FUZZ_FIXED_SECONDS:-10}
out=build/fuzz-clang
art=$out/artifacts
work=$out/work

scripts/deps.sh || exit 1
mkdir -p "$out"
if ! fuzz/build.sh >"$out/build.log" 2>&1; then
  cat "$out/build.log"
  echo "fuzz: build failed"
  exit 1
fi
mkdir -p "$art" "$work"
art_abs=$(cd "$art" && pwd)

if [[ -n ${FUZZ_TARGETS:-} ]]; then
  targets=($FUZZ_TARGETS)
else
  targets=($(ls fuzz/fuzz_*.c | sort | sed 's|fuzz/fuzz_\(.*\)\.c|\1|'))
fi

# stat value from -print_final_stats output
stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" <<<"$2" | tail -n 1; }

bad=0
for t in "${targets[@]}"; do
  corpus=$work/$t
  rm -rf "$corpus"
  mkdir -p "$corpus"
  [[ -d fuzz/corpus/$t ]] && cp fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
  dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict=fuzz/$t.dict)
  start=$(date +%s.%N)
  log=$("$out/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art_abs/$t-" "$corpus" 2>&1)
  rc=$?
  end=$(date +%s.%N)
  runs=$(stat number_of_executed_units "$log")
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  rate=$(awk -v r="${runs:-0}" -v s="$wall" 'BEGIN { printf "%d", (s > 0 ? r / s : 0) }')
  files=$(ls "$corpus" | wc -l)
  if ((rc == 0)); then
    verdict=ok
  else
    verdict=CRASH
    bad=1
    printf '%s\n' "$log" | grep -v '^#' | tail -n 40
  fi
  echo "fuzz: $t ${runs:-0} runs in $wall s, $rate execs/s, corpus $files: $verdict"
done

if [[ ${FUZZ_BUGS:-1} != 0 && -x $out/fuzz_schedule ]]; then
  shopt -s nullglob
  for scn in scenarios/bugs/*.scn; do
    name=$(basename "$scn" .scn)
    [[ $name == *_fixed ]] && continue
    start=$(date +%s.%N)
    log=$(WEFT_FUZZ_SCENARIO=$scn WEFT_FUZZ_ARTIFACTS=$art_abs "$out/fuzz_schedule" \
          -max_total_time="$bug_seconds" -timeout=10 -print_final_stats=1 \
          -artifact_prefix="$art_abs/bug-$name-" 2>&1)
    rc=$?
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    runs=$(stat number_of_executed_units "$log")
    [[ -n $runs ]] || runs=$(grep -oE '^#[0-9]+' <<<"$log" | tail -n 1 | tr -d '#')
    if ((rc != 0)) && grep -q 'failed under' <<<"$log"; then
      echo "fuzz: bug $name found in $wall s (${runs:-?} runs)"
      grep -m 1 -A 1 'failed under' <<<"$log" | tail -n 1 | sed 's/^ */      /'
      grep -m 1 -oE 'replay with: .*' <<<"$log" | sed 's/^/      /'
    else
      echo "fuzz: bug $name NOT found in $wall s"
      bad=1
    fi
    fixed=scenarios/bugs/${name}_fixed.scn
    [[ -f $fixed ]] || continue
    log=$(WEFT_FUZZ_SCENARIO=$fixed WEFT_FUZZ_ARTIFACTS=$art_abs "$out/fuzz_schedule" \
          -max_total_time="$fixed_seconds" -timeout=10 -print_final_stats=1 \
          -artifact_prefix="$art_abs/fixed-$name-" 2>&1)
    rc=$?
    runs=$(stat number_of_executed_units "$log")
    if ((rc == 0)); then
      echo "fuzz: fixed ${name}_fixed passes ${runs:-0} runs in $fixed_seconds s"
    else
      echo "fuzz: fixed ${name}_fixed FAILED"
      printf '%s\n' "$log" | grep -v '^#' | tail -n 20
      bad=1
    fi
  done
fi
echo "fuzz: $( ((bad)) && echo FAILED || echo all passed) (artifacts in $art)"
exit $bad
