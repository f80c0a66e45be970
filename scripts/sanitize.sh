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
# The browser test's driver, as in scripts/test.sh (the server it drives is
# the instrumented chat binary).
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# Tests that cannot mean anything under a sanitizer, left out of these runs
# only (the normal build runs them all):
excluded=(
  # Asserts that the server's RSS grows by less than 48 MiB while 100 clients
  # never read. ASan keeps freed memory in quarantine (256 MiB by default)
  # and both sanitizers add shadow memory in proportion to what is touched:
  # RSS then measures the sanitizer, and the test stops early on its bound.
  'NeverReaders\.MemoryStaysBounded'
  # Build examples/echo and examples/embed with the project's ordinary flags,
  # against the installed (instrumented) library or the source tree: they
  # test the CMake package, not the running code, and the add_subdirectory
  # one recompiles the whole framework without instrumentation.
  '^package\.'
)
exclude_regex=$(IFS='|'; echo "${excluded[*]}")

run() {  # sanitizer, build dir
  echo "== $1: building in $2"
  BUILD_DIR=$2 BUILD_TYPE=RelWithDebInfo scripts/build.sh -DCHANNELS_SANITIZE="$1"
  echo "== $1: testing"
  # Every report also goes to a file: the Python and Node tests start the
  # instrumented chat server themselves and do not all look at how it exited.
  local reports=$PWD/$2/sanitizer-reports status=0
  rm -rf "$reports" && mkdir -p "$reports"
  (cd "$2" && ASAN_OPTIONS=$ASAN_OPTIONS:log_path=$reports/asan UBSAN_OPTIONS=$UBSAN_OPTIONS:log_path=$reports/ubsan \
    TSAN_OPTIONS=$TSAN_OPTIONS:log_path=$reports/tsan \
    ctest --output-on-failure --parallel 2 --timeout 600 -E "$exclude_regex" "${ctest_args[@]}") || status=$?
  if compgen -G "$reports/*" >/dev/null; then
    echo "== $1: sanitizer reports (in $reports):"
    for f in "$reports"/*; do echo "--- $f"; cat "$f"; done
    status=1
  fi
  return $status
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# tests/tsan.supp: reports that are not races, each with the reason.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp}
case "$which" in
  address) run address build-asan ;;
  thread) run thread build-tsan ;;
  all) run address build-asan; run thread build-tsan ;;
  *) echo "usage: scripts/sanitize.sh [address|thread|all] [ctest args]" >&2; exit 2 ;;
esac
