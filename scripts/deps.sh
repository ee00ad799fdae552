#!/usr/bin/env bash
# Install what the build needs when it is missing (Debian 12). Quiet when all
# is present.
set -euo pipefail
need=()
[[ -f /usr/include/cmocka.h ]] || need+=(libcmocka-dev)
command -v lcov >/dev/null 2>&1 || need+=(lcov)
command -v clang >/dev/null 2>&1 || need+=(clang)
[[ -n "$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ]] || need+=(libclang-rt-dev)
((${#need[@]} == 0)) && exit 0
echo "deps: installing ${need[*]}"
if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
