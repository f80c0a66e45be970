#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, tests
# over real sockets with the framework's client, and interoperability tests
# with Python's websockets. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The browser test's driver (playwright-core, from the lock file; it uses
# Debian's Chromium, never a browser download of its own).
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --parallel 2 --timeout 300 "$@"
