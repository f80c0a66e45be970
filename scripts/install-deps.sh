#!/usr/bin/env bash
# Installs what cppchannels needs from Debian 12's packages, and nothing that
# is already there. Safe to run again. Usage: scripts/install-deps.sh [--test]
#   --test   also what the test suite needs: Python websockets and Chromium for the
#            interop and browser tests, redis-server for the Redis layer's tests, and Django
#            Channels with channels_redis and daphne for the Redis interop tests
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  # Boost 1.81 only: the 1.74 -dev packages conflict with it.
  libboost1.81-dev libboost-regex1.81-dev
  libfmt-dev libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libssl-dev
  # The Redis channel layer: hiredis' async API, driven by Asio.
  libhiredis-dev
  libgtest-dev
  # The programs' allocator (CHANNELS_MALLOC in CMakeLists.txt).
  libtcmalloc-minimal4
  # The conformance tests compress permessage-deflate frames by hand.
  zlib1g-dev
)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(python3 python3-websockets chromium
    # The deployment test: nginx in front of two chat processes (deploy/).
    nginx
    # The TLS tests make a self-signed certificate with the openssl command.
    openssl
    # Tests start their own redis-server on a free loopback port.
    redis-server
    # The peer for wire compatibility: Debian's Django Channels stack.
    python3-channels-redis python3-django-channels python3-daphne
    # The benchmarks' smoke test draws their chart.
    gnuplot-nox)
  # Node.js comes with machines of this kind; Debian's own is the fallback.
  command -v node >/dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "Installing: ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "error: run as root, or install sudo, to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
