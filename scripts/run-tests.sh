#!/usr/bin/env bash
# Run every cmocka suite of a build directory, then every fuzz target's corpus
# through its replay main. Prints each suite's output and one closing line:
#   tests: N passed, N failed
# Exit status: 0 when everything passed.
set -uo pipefail
build=${1:?usage: run-tests.sh BUILD_DIR}
passed=0
failed=0
bad_suites=()
for t in "$build"/tests/test_*; do
  [[ -x $t && ! -d $t && $t != *.o && $t != *.d ]] || continue
  out=$("$t" 2>&1)
  rc=$?
  printf '%s\n' "$out"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p))
  failed=$((failed + f))
  if ((rc != 0)); then
    ((f == 0)) && failed=$((failed + 1))
    bad_suites+=("$(basename "$t") (exit $rc)")
  fi
done
for r in "$build"/fuzz/fuzz_*; do
  [[ -x $r && $r != *.o && $r != *.d ]] || continue
  name=$(basename "$r")
  corpus=fuzz/corpus/${name#fuzz_}
  [[ -d $corpus ]] || continue
  if out=$("$r" "$corpus" 2>&1); then
    echo "fuzz corpus $name: $(printf '%s\n' "$out" | tail -n 1)"
    passed=$((passed + 1))
  else
    printf '%s\n' "$out" | tail -n 20
    echo "fuzz corpus $name: FAILED"
    failed=$((failed + 1))
    bad_suites+=("$name corpus")
  fi
done
# The worked example (examples/kv): the user's day end to end.
if [[ -x scripts/example.sh && -d examples/kv ]]; then
  ex=$(scripts/example.sh "$build" 2>&1)
  ex_rc=$?
  printf '%s\n' "$ex" | tail -n 15
  p=$(printf '%s\n' "$ex" | sed -n 's/^example: \([0-9]*\) passed.*/\1/p')
  f=$(printf '%s\n' "$ex" | sed -n 's/^example: [0-9]* passed, \([0-9]*\) failed.*/\1/p')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-1}))
  ((ex_rc != 0)) && bad_suites+=("example.sh (exit $ex_rc)")
fi
echo
if ((${#bad_suites[@]})); then
  echo "failing: ${bad_suites[*]}"
fi
echo "tests: $passed passed, $failed failed"
((failed == 0 && ${#bad_suites[@]} == 0))
