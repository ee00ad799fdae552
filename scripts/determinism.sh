#!/usr/bin/env bash
# Trace hashes must agree across compilers, optimisation levels and
# sanitizers. Builds libweft.a in four configurations, links the determinism
# workload (tests/tools/workload_main.c) against each, runs it for a fixed set
# of seeds and compares the outputs line by line.
#
#   scripts/determinism.sh [SEEDS]     (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-200}
jobs=${JOBS:-2}
out=build/determinism
mkdir -p "$out"

# name  make-arguments                      build-dir
configs=(
  "gcc-O0     CONFIG=debug   CC=gcc         build/debug-gcc"
  "gcc-O2     CONFIG=release CC=gcc         build/release-gcc"
  "clang-O2   CONFIG=release CC=clang       build/release-clang"
  "gcc-asan   CONFIG=asan    CC=gcc         build/asan-gcc"
)

flags_for() {
  case $1 in
    gcc-O0) echo "gcc -O0 -g" ;;
    gcc-O2) echo "gcc -O2 -DNDEBUG" ;;
    clang-O2) echo "clang -O2 -DNDEBUG" ;;
    gcc-asan) echo "gcc -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" ;;
  esac
}

names=()
for line in "${configs[@]}"; do
  read -r name cfg cc dir <<<"$line"
  names+=("$name")
  echo "determinism: building $name"
  if ! make --no-print-directory -s -j"$jobs" "$cfg" "$cc" "$dir/libweft.a" >"$out/$name.build.log" 2>&1; then
    cat "$out/$name.build.log"
    echo "determinism: FAILED to build libweft.a for $name"
    exit 1
  fi
  read -r -a cflags <<<"$(flags_for "$name")"
  "${cflags[@]}" -std=c11 -D_GNU_SOURCE -Iinclude -I. -Itests -Wall -Wextra -Werror \
    -o "$out/workload-$name" tests/tools/workload_main.c "$dir/libweft.a" -lm -ldl
  echo "determinism: running $name ($seeds seeds)"
  "$out/workload-$name" "$seeds" >"$out/$name.txt"
done

# The same check through the weft command: every bundled scenario (planted
# bugs included, failures and all) swept over the same seeds by each build;
# the explore digest covers every seed's verdict and trace hash.
scn_seeds=${SCN_SEEDS:-200}
scn_files=$(ls scenarios/*.scn scenarios/bugs/*.scn 2>/dev/null | sort)
for line in "${configs[@]}"; do
  read -r name cfg cc dir <<<"$line"
  if ! make --no-print-directory -s -j"$jobs" "$cfg" "$cc" "$dir/weft" >>"$out/$name.build.log" 2>&1; then
    cat "$out/$name.build.log"
    echo "determinism: FAILED to build weft for $name"
    exit 1
  fi
  echo "determinism: sweeping scenarios with $name ($scn_seeds seeds each)"
  : >"$out/$name.scn.txt"
  for f in $scn_files; do
    rc=0
    res=$("$dir/weft" explore "$f" --seeds "$scn_seeds" --keep-going --quiet 2>/dev/null | tail -n 1) || rc=$?
    if ((rc > 1)); then
      echo "determinism: weft explore $f failed to run under $name (exit $rc)"
      exit 1
    fi
    digest=$(printf '%s\n' "$res" | sed -n 's/.*\(digest=[0-9a-f]*\).*/\1/p')
    if [[ -z $digest ]]; then
      echo "determinism: weft explore $f printed no digest under $name"
      exit 1
    fi
    echo "$f $digest" >>"$out/$name.scn.txt"
  done
done

ref=${names[0]}
status=0
for name in "${names[@]:1}"; do
  if ! cmp -s "$out/$ref.scn.txt" "$out/$name.scn.txt"; then
    echo "determinism: MISMATCH in scenario sweeps between $ref and $name:"
    diff "$out/$ref.scn.txt" "$out/$name.scn.txt" | head -n 10
    status=1
  fi
done
nscn=$(wc -l <"$out/$ref.scn.txt")
for name in "${names[@]:1}"; do
  if ! cmp -s "$out/$ref.txt" "$out/$name.txt"; then
    echo "determinism: MISMATCH between $ref and $name; first differing lines:"
    diff "$out/$ref.txt" "$out/$name.txt" | head -n 10
    status=1
  fi
done
total=$(tail -n 1 "$out/$ref.txt")
if ((status)); then
  echo "determinism: FAILED: trace hashes differ across builds (outputs in $out/)"
  exit 1
fi
echo "determinism: OK: ${#names[@]} builds (${names[*]}) agree on $seeds seeds x 2 workloads, $total"
echo "determinism: OK: and on $nscn scenarios x $scn_seeds seeds through the weft command"
