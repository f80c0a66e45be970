#!/usr/bin/env bash
# The Redis benchmark (bench/redis_bench.py): a room of 1,000 members over two
# cppchannels processes on one Redis, then the same over two daphne processes
# with channels_redis, printed side by side with ratios; writes
# bench/results/redis.json. Installs what is missing and builds first.
#
#   bench/run-redis.sh            a burst of 30 group_sends and 6 paced ones per side (about 5 minutes)
#   bench/run-redis.sh --quick    10 and 3
#   bench/run-redis.sh --help     every option
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server, channels_redis, daphne: the --test set has them all.
scripts/install-deps.sh --test
build_dir=${BUILD_DIR:-build}
if [[ -f "$build_dir/CMakeCache.txt" ]]; then
  cmake --build "$build_dir" --parallel "$(nproc)" --target chat loadgen
else
  BUILD_DIR=$build_dir scripts/build.sh
fi
exec /usr/bin/python3 bench/redis_bench.py --build-dir "$build_dir" "$@"
