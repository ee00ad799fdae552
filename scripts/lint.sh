#!/usr/bin/env bash
# Determinism lint: simulated paths never read the clock, the environment or
# libc's random numbers. Only the real backend (reactor/epoll*.c) may.
set -uo pipefail
cd "$(dirname "$0")/.."
pattern='\b(clock_gettime|gettimeofday|time\(|rand\(|srand\(|random\(\)|getenv\(|sleep\(|usleep\()'
hits=$(grep -nE "$pattern" core/*.c defer/*.c protocols/*.c sim/*.c scenarios/*.c \
       $(ls reactor/*.c | grep -v '^reactor/epoll') 2>/dev/null \
       | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/?\*|//)' || true)
if [[ -n $hits ]]; then
  echo "lint: forbidden calls in simulated paths:"
  printf '%s\n' "$hits"
  exit 1
fi
echo "lint: ok"
