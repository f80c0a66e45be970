#!/usr/bin/env bash
# Runs the browser test: it starts the chat app on a free loopback port
# itself (to restart it mid-test), stops it by its PID, and leaves the server
# log and a screenshot of the room page in OUT_DIR.
# Usage: run_browser_test.sh CHAT ROUTING OUT_DIR
set -euo pipefail
chat=$1 routing=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
: >"$out/chat-browser-server.log"
cd "$here"
node chat_browser_test.mjs "$chat" "$routing" "$out"
