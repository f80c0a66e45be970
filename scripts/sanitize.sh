#!/usr/bin/env bash
# Builds and runs the whole test suite under sanitizers, each in its own
# build directory: AddressSanitizer + UndefinedBehaviorSanitizer, and
# ThreadSanitizer. Usage: scripts/sanitize.sh [address|thread|all] [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
shift || true
ctest_args=("$@")
scripts/install-deps.sh --test

run() {  # sanitizer, build dir
  echo "== $1: building in $2"
  BUILD_DIR=$2 BUILD_TYPE=RelWithDebInfo scripts/build.sh -DCHANNELS_SANITIZE="$1"
  echo "== $1: testing"
  (cd "$2" && ctest --output-on-failure --parallel 2 --timeout 600 "${ctest_args[@]}")
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
case "$which" in
  address) run address build-asan ;;
  thread) run thread build-tsan ;;
  all) run address build-asan; run thread build-tsan ;;
  *) echo "usage: scripts/sanitize.sh [address|thread|all] [ctest args]" >&2; exit 2 ;;
esac
