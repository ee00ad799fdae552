#!/usr/bin/env bash
# The user's day with the kv example (examples/kv, docs/tutorial.md), end to
# end, against one build directory's libweft.a and weft command:
#
#   scripts/example.sh [BUILD_DIR]          (default build/debug-gcc)
#
#  1. build the example (plugin, cmocka tests, real-reactor binary)
#  2. run its cmocka tests on the simulator
#  3. run its scenarios with `weft run --load kv.so`, twice each
#     (--check-determinism)
#  4. sweep 1,000 seeds of each scenario with `weft explore`
#  5. hunt the planted ordering bug: explore finds a failing seed, the
#     printed replay command reproduces it (same trace hash), shrink
#     minimises it and the minimal choice file replays the same failure;
#     the fuzz target's replay build fails on the saved input that libFuzzer
#     found and passes generated inputs on the fixed scenario
#  6. real reactor: serve on 127.0.0.1 (a free port the kernel picks), run
#     the demo client and a raw /dev/tcp conversation, stop the server with
#     SIGTERM; every step bounded in time
#
# Closing line: "example: N passed, M failed" (cmocka tests count one each,
# every other step one). Exit status 0 when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build/debug-gcc}
[[ $build = /* ]] || build=$root/$build
weft=$build/weft
out=$build/examples/kv
ex=examples/kv
passed=0
failed=0
failures=()

ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $*"; }

finish() {
  echo
  ((${#failures[@]})) && echo "failing: ${failures[*]}"
  echo "example: $passed passed, $failed failed"
  ((failed == 0))
  exit
}

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [[ ! -f $build/libweft.a || ! -x $weft ]]; then
  bad "build: $build has no libweft.a or weft command (run make first)"
  finish
fi

# 1. Build.
if make --no-print-directory -s -C "$ex" BUILD="$build" all >"$tmp/build.log" 2>&1; then
  ok "build: kv.so, test_kv, kv-real in $out"
else
  cat "$tmp/build.log"
  bad "build"
  finish
fi

# 2. cmocka tests.
t_out=$("$out/test_kv" 2>&1)
t_rc=$?
printf '%s\n' "$t_out"
p=$(printf '%s\n' "$t_out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | head -n 1)
f=$(printf '%s\n' "$t_out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | head -n 1)
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if ((t_rc != 0)); then
  ((${f:-0} == 0)) && failed=$((failed + 1))
  failures+=("test_kv (exit $t_rc)")
fi

# 3. Scenarios, each run twice and compared.
scns=$(ls "$ex"/*.scn | sort)
for s in $scns; do
  if "$weft" run --load "$out/kv.so" --check-determinism "$s"; then
    ok "run $s"
  else
    bad "run $s"
  fi
done

# 4. 1,000 seeds of each.
for s in $scns; do
  if "$weft" explore --load "$out/kv.so" "$s" --seeds 1000 --quiet; then
    ok "explore $s"
  else
    bad "explore $s"
  fi
done

# 5. The planted bug: found, replayed, shrunk.
bug=$ex/bugs/unordered.scn
"$weft" explore --load "$out/kv.so" "$bug" --seeds 1000 --quiet >"$tmp/hunt.out" 2>&1
rc=$?
first=$(grep -m1 '^FAIL ' "$tmp/hunt.out")
replay=$(sed -n 's/^replay: //p' "$tmp/hunt.out" | head -n 1)
seed=$(printf '%s\n' "$first" | sed -n 's/.* seed=\([0-9]*\) .*/\1/p')
hash=$(printf '%s\n' "$first" | sed -n 's/.* hash=\([0-9a-f]*\).*/\1/p')
if ((rc == 1)) && [[ -n $seed && -n $hash && $replay == "weft replay "* ]]; then
  ok "hunt: explore found the planted bug at seed $seed"
  echo "  $first"
  # The replay command as printed, with the weft binary of this build.
  read -r -a words <<<"${replay#weft }"
  "$weft" "${words[@]}" >"$tmp/replay.out" 2>&1
  rrc=$?
  if ((rrc == 1)) && grep -q "^FAIL .* hash=$hash" "$tmp/replay.out"; then
    ok "hunt: the printed replay command reproduces it (hash $hash)"
  else
    tail -n 5 "$tmp/replay.out"
    bad "hunt: replay of seed $seed (exit $rrc, want hash $hash)"
  fi
  "$weft" shrink --load "$out/kv.so" "$bug" --seed "$seed" \
    --save-choices "$tmp/bug.min.choices" >"$tmp/shrink.out" 2>&1
  src=$?
  "$weft" replay --load "$out/kv.so" "$bug" --choices "$tmp/bug.min.choices" >"$tmp/min.out" 2>&1
  mrc=$?
  if ((src == 0 && mrc == 1)) && grep -q '^shrunk ' "$tmp/shrink.out" && grep -q '^FAIL ' "$tmp/min.out"; then
    ok "hunt: $(grep '^shrunk ' "$tmp/shrink.out" | sed 's/^shrunk [^:]*: //'); the minimal file still fails"
  else
    tail -n 5 "$tmp/shrink.out" "$tmp/min.out"
    bad "hunt: shrink (exit $src) or replay of the minimal choices (exit $mrc)"
  fi
else
  tail -n 20 "$tmp/hunt.out"
  bad "hunt: explore of $bug (exit $rc) did not report a failing seed with its replay"
fi

# 5b. Fuzz inputs through the replay build of examples/kv/fuzz_kv.c: the
# input libFuzzer found for the planted bug still fails (the target aborts)
# and replays with the weft command; deterministic inputs pass the fixed
# scenario.
if make --no-print-directory -s -C "$ex" BUILD="$build" fuzz-replay >"$tmp/fbuild.log" 2>&1; then
  found=$ex/fuzz/unordered-found.bytes
  # In a subshell, so that the shell's "Aborted" notice goes to the log.
  (KV_FUZZ_SCENARIO=$bug KV_FUZZ_ARTIFACTS=$tmp "$out/fuzz_kv_replay" "$found"; exit $?) >"$tmp/fz.out" 2>&1
  frc=$?
  "$weft" replay --load "$out/kv.so" "$bug" --bytes "$found" >"$tmp/fzr.out" 2>&1
  wrc=$?
  if ((frc != 0 && wrc == 1)) && grep -q '^fuzz_kv: .*expected' "$tmp/fz.out" &&
     grep -q '^FAIL ' "$tmp/fzr.out"; then
    ok "fuzz: the saved input $found fails the planted bug, also with weft replay --bytes"
  else
    tail -n 5 "$tmp/fz.out" "$tmp/fzr.out"
    bad "fuzz: the saved input no longer fails $bug (target exit $frc, replay exit $wrc)"
  fi
  mkdir -p "$tmp/inputs"
  awk 'BEGIN { srand(7); for (f = 0; f < 64; f++) { s = ""; for (i = 0; i < 48; i++) s = s sprintf("%c", 1 + int(rand() * 254)); printf "%s", s > ("'"$tmp"'/inputs/in" f); } }'
  if KV_FUZZ_SCENARIO=$ex/readwrite.scn KV_FUZZ_ARTIFACTS=$tmp "$out/fuzz_kv_replay" "$tmp/inputs" >"$tmp/fzp.out" 2>&1; then
    ok "fuzz: $(tail -n 1 "$tmp/fzp.out") of readwrite.scn, all passed"
  else
    tail -n 5 "$tmp/fzp.out"
    bad "fuzz: inputs on readwrite.scn"
  fi
else
  cat "$tmp/fbuild.log"
  bad "fuzz: build of fuzz_kv_replay"
fi

# 6. The same kv.o on the real reactor.
"$out/kv-real" serve 0 30 >"$tmp/serve.out" 2>&1 &
server_pid=$!
port=
for _ in $(seq 50); do
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/serve.out")
  [[ -n $port ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $port ]]; then
  cat "$tmp/serve.out"
  bad "real: the server did not report its port"
else
  ok "real: serving on 127.0.0.1:$port"
  if timeout 10 "$out/kv-real" demo "$port"; then
    ok "real: demo client, pipelined SET/GET/GET/DEL/QUIT"
  else
    bad "real: demo client"
  fi
  raw=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "SET lang C11\nGET lang\nGET nope\nDEL lang\nQUIT\n" >&3
    cat <&3' _ "$port" | tr -d '\r')
  if [[ $raw == $'OK\nVALUE C11\nNOTFOUND\nOK\nBYE' ]]; then
    ok "real: raw /dev/tcp conversation"
  else
    printf '%s\n' "$raw"
    bad "real: raw /dev/tcp conversation"
  fi
  kill -TERM "$server_pid"
  for _ in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if wait "$server_pid" && grep -q '^served [0-9]* requests' "$tmp/serve.out"; then
    ok "real: SIGTERM stops the server cleanly ($(grep '^served' "$tmp/serve.out"))"
  else
    cat "$tmp/serve.out"
    bad "real: server shutdown"
  fi
  server_pid=
fi

finish
