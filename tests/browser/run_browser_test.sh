#!/usr/bin/env bash
# Starts the chat app on a free loopback port, runs the browser test against
# it, and stops the server by its PID. Usage: run_browser_test.sh CHAT ROUTING OUT_DIR
set -euo pipefail
chat=$1 routing=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$chat" --routing "$routing" --bind 127.0.0.1 --port "$port" --threads 2 >"$out/chat-browser-server.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
cd "$here"
node chat_browser_test.mjs "http://127.0.0.1:$port" "$out/chat-room.png"
