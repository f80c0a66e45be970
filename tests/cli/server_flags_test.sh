#!/usr/bin/env bash
# The server's daphne-like flags on the chat executable: --version, --help,
# --access-log -, --proxy-headers, --root-path is accepted, --verbosity 0
# silences info lines, a flag wins over routing.yaml, and --reuse-port lets
# two processes listen on one port (without it the second says what to do).
# Usage: server_flags_test.sh CHAT_BINARY ROUTING_YAML
set -u
chat=$1 routing=$2
passed=0 failed=0
check() {  # name, condition
  if eval "$2"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi
}
py=/usr/bin/python3
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

out=$("$chat" --version 2>&1); rc=$?
check "--version exits 0" "[ $rc -eq 0 ]"
check "--version names the version ($out)" "grep -Eq '^cppchannels [0-9]+\.[0-9]+\.[0-9]+' <<<\"\$out\""

help=$("$chat" --help 2>&1)
for flag in --verbosity --access-log --root-path --proxy-headers --reuse-port --version CHANNELS_REDIS_URL; do
  check "--help lists $flag" "grep -q -- '$flag' <<<\"\$help\""
done

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# GET PATH with extra headers; prints the status line.
get() {
  "$py" - "$1" "$2" "$3" <<'PY'
import socket, sys
port, path, xff = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {xff}, 10.0.0.1\r\nConnection: close\r\n\r\n".encode())
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.split(b"\r\n")[0].decode())
PY
}
wait_port() {  # port
  for _ in $(seq 100); do
    "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# --port overrides routing.yaml's 8000; access lines on stdout; the client
# address from X-Forwarded-For.
port=$(free_port)
(cd "$(dirname "$routing")" && exec "$chat" --routing "$routing" --port "$port" --threads 1 \
   --access-log - --proxy-headers --root-path /app >"$tmp/out" 2>"$tmp/err") &
pid=$!
check "server listens on --port $port" "wait_port $port"
status=$(get "$port" /chat/ 203.0.113.7)
check "GET /chat/ answers 200 ($status)" "grep -q ' 200 ' <<<\"\$status\""
sleep 0.3
check "access line on stdout" "grep -q '\"GET /chat/ HTTP/1.1\" 200 ' '$tmp/out'"
check "access line shows the forwarded client" "grep -q '^.*203.0.113.7:0 - \"GET /chat/' '$tmp/out'"
check "access line has a duration" "grep -Eq '\"GET /chat/ HTTP/1.1\" 200 [0-9]+ [0-9.]+ms' '$tmp/out'"
check "access lines are not on stderr" "! grep -q 'GET /chat/' '$tmp/err'"
kill "$pid"; wait "$pid" 2>/dev/null; pid=

# Without --proxy-headers the header is not trusted.
port=$(free_port)
(cd "$(dirname "$routing")" && exec "$chat" --routing "$routing" --port "$port" --threads 1 \
   --access-log - >"$tmp/out2" 2>"$tmp/err2") &
pid=$!
wait_port "$port"
get "$port" /chat/ 203.0.113.7 >/dev/null
sleep 0.3
check "no --proxy-headers: the socket's address" "grep -q '127.0.0.1:[0-9]* - \"GET /chat/' '$tmp/out2'"
check "no --proxy-headers: header ignored" "! grep -q '203.0.113.7' '$tmp/out2'"
check "info lines by default" "grep -q 'serving on' '$tmp/err2'"
kill "$pid"; wait "$pid" 2>/dev/null; pid=

# --verbosity 0: errors only.
port=$(free_port)
(cd "$(dirname "$routing")" && exec "$chat" --routing "$routing" --port "$port" --threads 1 -v 0 \
   >"$tmp/out3" 2>"$tmp/err3") &
pid=$!
wait_port "$port"
kill "$pid"; wait "$pid" 2>/dev/null; pid=
check "--verbosity 0 hides info lines" "! grep -q 'serving on' '$tmp/err3'"

# --reuse-port: two processes on one port; a third without it cannot bind and says why.
port=$(free_port)
(cd "$(dirname "$routing")" && exec "$chat" --routing "$routing" --port "$port" --threads 1 --reuse-port \
   >/dev/null 2>"$tmp/err4") &
pid=$!
wait_port "$port"
(cd "$(dirname "$routing")" && exec "$chat" --routing "$routing" --port "$port" --threads 1 --reuse-port \
   >/dev/null 2>"$tmp/err5") &
pid2=$!
sleep 1
check "--reuse-port: a second process serves on the same port" "kill -0 $pid2 2>/dev/null && grep -q 'serving on' '$tmp/err5'"
(cd "$(dirname "$routing")" && "$chat" --routing "$routing" --port "$port" --threads 1 >/dev/null 2>"$tmp/err6"); rc=$?
check "without --reuse-port: a third exits non-zero ($rc)" "[ $rc -ne 0 ]"
check "without --reuse-port: it says to use it" "grep -q -- '--reuse-port' '$tmp/err6'"
kill "$pid2"; wait "$pid2" 2>/dev/null
kill "$pid"; wait "$pid" 2>/dev/null; pid=

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
