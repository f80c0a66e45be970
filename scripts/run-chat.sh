#!/usr/bin/env bash
# Installs what is missing, builds, and starts the chat app on
# http://127.0.0.1:8000/chat/ with the in-memory layer (no Redis needed).
# Extra arguments go to the chat executable (--port 9000, --threads 4, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
echo "Chat: open http://127.0.0.1:8000/chat/ (Ctrl-C stops the server)"
exec build/apps/chat/chat --routing routing.yaml "$@"
