#!/usr/bin/env bash
# The benchmark suite: installs what is missing (Debian packages), builds the
# chat app, the load generator and the floor server, then runs every scenario
# against cppchannels, plain Beast and Django Channels (daphne) side by side.
# Prints one table, writes bench/results/latest.json and latest.png.
#
#   bench/run.sh            full run (6-14 minutes)
#   bench/run.sh --quick    smaller scenarios (about 5 minutes)
#   bench/run.sh --help     every option (--reps, --only, --servers, --out)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# What the runner and the Django side need, from Debian (seen by /usr/bin/python3).
missing=()
for p in python3 python3-django-channels python3-daphne gnuplot-nox util-linux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "Installing: ${missing[*]}"
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_dir=${BUILD_DIR:-build}
if [[ -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" -DCHANNELS_BUILD_BENCH=ON -DCHANNELS_BUILD_APPS=ON >/dev/null
  cmake --build "$build_dir" --parallel "$(nproc)" --target chat loadgen floor
else
  BUILD_DIR=$build_dir scripts/build.sh
fi
exec /usr/bin/python3 bench/run.py --build-dir "$build_dir" "$@"
