#!/usr/bin/env bash
# OSS-Fuzz style build of weft's fuzz targets.
#
# On OSS-Fuzz (or ClusterFuzzLite) the environment provides CC, CFLAGS,
# LIB_FUZZING_ENGINE and OUT; run from the repository root:
#   $CC $CFLAGS -c <library sources>      (once, into $WORK)
#   $CC $CFLAGS $LIB_FUZZING_ENGINE fuzz/fuzz_<name>.c libweft-fuzz.a -o $OUT/fuzz_<name>
# plus $OUT/fuzz_<name>_seed_corpus.zip (when zip is available),
# $OUT/fuzz_<name>.dict for each target that has a dictionary, and the
# bundled scenarios in $OUT/scenarios for fuzz_schedule.
#
# Standalone, the defaults build libFuzzer binaries with ASan and UBSan:
#   CC=clang  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer  OUT=build/fuzz-clang  WORK=$OUT/obj
# Library objects are rebuilt only when their source or a header is newer.
# Usage: fuzz/build.sh [TARGET...]   (default: every fuzz/fuzz_*.c)
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-clang}
CFLAGS=${CFLAGS:--O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined}
LIB_FUZZING_ENGINE=${LIB_FUZZING_ENGINE:--fsanitize=fuzzer}
OUT=${OUT:-build/fuzz-clang}
WORK=${WORK:-$OUT/obj}
JOBS=${JOBS:-2}
mkdir -p "$OUT" "$WORK"
out_abs=$(cd "$OUT" && pwd)

std="-std=c11 -D_GNU_SOURCE -Iinclude -I. -Wall -Wextra -Wno-unused-parameter"
newest_header=$(ls -t include/weft/*.h */*.h 2>/dev/null | head -n 1)

objs=()
todo=()
for src in $(ls core/*.c defer/*.c reactor/*.c protocols/*.c sim/*.c scenarios/*.c | sort); do
  obj=$WORK/${src//\//_}
  obj=${obj%.c}.o
  objs+=("$obj")
  if [[ ! -f $obj || $src -nt $obj || $newest_header -nt $obj ]]; then
    todo+=("$src")
  fi
done
export CC CFLAGS WORK std
if ((${#todo[@]})); then
  printf '%s\n' "${todo[@]}" | xargs -P "$JOBS" -I{} sh -c \
    'o="$WORK/$(echo {} | tr / _)"; $CC $CFLAGS $std -c {} -o "${o%.c}.o"'
fi
rm -f "$WORK/libweft-fuzz.a"
ar rcs "$WORK/libweft-fuzz.a" "${objs[@]}"

if (($#)); then
  targets=("$@")
else
  targets=($(ls fuzz/fuzz_*.c | sort | sed 's|fuzz/\(.*\)\.c|\1|'))
fi
for t in "${targets[@]}"; do
  t=${t#fuzz_}
  # shellcheck disable=SC2086
  $CC $CFLAGS $std $LIB_FUZZING_ENGINE "fuzz/fuzz_$t.c" "$WORK/libweft-fuzz.a" -lm -ldl \
    -o "$OUT/fuzz_$t"
  if [[ -f fuzz/$t.dict ]]; then
    cp "fuzz/$t.dict" "$OUT/fuzz_$t.dict"
  fi
  if [[ -d fuzz/corpus/$t ]] && command -v zip >/dev/null 2>&1; then
    rm -f "$OUT/fuzz_${t}_seed_corpus.zip"
    (cd "fuzz/corpus/$t" && zip -q -r "$out_abs/fuzz_${t}_seed_corpus.zip" .)
  fi
done
# fuzz_schedule reads the bundled scenarios; on OSS-Fuzz it finds them here.
rm -rf "$OUT/scenarios"
mkdir -p "$OUT/scenarios/bugs"
cp scenarios/*.scn "$OUT/scenarios/"
cp scenarios/bugs/*.scn "$OUT/scenarios/bugs/" 2>/dev/null || true
echo "fuzz build: ${#targets[@]} targets in $OUT"
