#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan, CHANNELS_BUILD_FUZZ=ON)
# and runs each for a bounded time, starting from its seed corpus in
# tests/fuzz/corpus/<target>/. New inputs go to $BUILD_DIR/corpus/<target>/
# (not the repo); a crash stops the run with the input saved under
# $BUILD_DIR/artifacts/: add it to the seed corpus once fixed.
#
# Usage: scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]   (default 30, all four)
#   targets: fuzz_path_pattern fuzz_config fuzz_message_codec fuzz_connection
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(fuzz_path_pattern fuzz_config fuzz_message_codec fuzz_connection)
build_dir=${BUILD_DIR:-build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang++ (Debian: apt-get install clang)" >&2; exit 2; }

export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  CC=clang CXX=clang++ cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCHANNELS_BUILD_FUZZ=ON -DCHANNELS_BUILD_TESTS=OFF -DCHANNELS_BUILD_APPS=OFF -DCHANNELS_BUILD_BENCH=OFF
fi
cmake --build "$build_dir" --parallel "$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
summary=()
for t in "${targets[@]}"; do
  corpus="$build_dir/corpus/$t"
  artifacts="$build_dir/artifacts"
  mkdir -p "$corpus" "$artifacts" "tests/fuzz/corpus/$t"
  log="$build_dir/$t.log"
  echo "== $t: ${seconds} s"
  if "$build_dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
       -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    result=ok
  else
    # What kind of failure: a sanitizer report, a leak, a hang, memory.
    kind=$(grep -o -m1 -E "ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-z-]+|runtime error|ALARM: working on the last Unit|out-of-memory" "$log" || echo "exit status")
    result="FAILED: $kind (see $log; the input is in $artifacts/)"
    status=1
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5 || true
  fi
  # A run that stopped on a crash prints no final stats: take the last status line.
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' ||
          grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  summary+=("$(printf '%-20s %10s execs  cov %-6s %s' "$t" "${execs:-?}" "${cov:-?}" "$result")")
done
echo "== summary (${seconds} s each)"
printf '%s\n' "${summary[@]}"
exit $status
