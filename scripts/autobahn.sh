#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client (RFC 6455 + RFC 7692, 517 server
# cases) against the chat app's echo route with permessage-deflate on, and
# prints the verdicts. The suite is not part of this project and this script
# never installs it: point AUTOBAHN_TESTSUITE at a checkout of a Python 3 port
# (the folder holding the `autobahntestsuite` package), with Debian's
# python3-autobahn, python3-twisted, python3-txaio, python3-jinja2,
# python3-openssl, python3-service-identity, python3-wsaccel and python3-ujson.
# Not run by CI (the conformance.rfc6455 test is CI's own); see docs/conformance.md.
#
# Usage: AUTOBAHN_TESTSUITE=DIR scripts/autobahn.sh [CASES]
#   CASES: a comma-separated list of case patterns (default "*", all 517;
#          "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*" skips the slow 12/13 sections)
# Environment: BUILD_DIR (default build), REPORT_DIR (default $BUILD_DIR/autobahn)
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${AUTOBAHN_TESTSUITE:-}
if [[ -z "$suite" || ! -d "$suite/autobahntestsuite" ]]; then
  echo "autobahn.sh: set AUTOBAHN_TESTSUITE to the folder holding the autobahntestsuite package" >&2
  echo "             (a Python 3 port of crossbario/autobahn-testsuite; see docs/conformance.md)" >&2
  exit 2
fi
cases=${1:-*}
build_dir=${BUILD_DIR:-build}
report_dir=${REPORT_DIR:-$build_dir/autobahn}
[[ -f "$build_dir/CMakeCache.txt" ]] || cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)" --target chat >/dev/null

work=$(mktemp -d)
chat_pid=
cleanup() {
  if [[ -n "$chat_pid" ]]; then kill "$chat_pid" 2>/dev/null || true; wait "$chat_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port, then the echo route with room for the suite's largest
# messages (16 MiB, and 4 MiB in 65,536 fragments).
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/routing.yaml" <<EOF
server:
  bind: 127.0.0.1
  port: $port
  threads: 2
  max_message_bytes: 20MiB
  # wstest reads a 16 MiB echo slowly (Python UTF-8 validation): Beast's idle
  # timer counts only received bytes, so give the slowest case time to read.
  idle_timeout: 600
  send_queue_max_bytes: 64MiB
  permessage_deflate: true
websocket:
  - path: ws/echo/
    consumer: chat.EchoConsumer
EOF
"$build_dir/apps/chat/chat" --routing "$work/routing.yaml" --log-level warn >"$work/chat.log" 2>&1 &
chat_pid=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done

mkdir -p "$report_dir"
cat >"$work/spec.json" <<EOF
{
  "outdir": "$(realpath "$report_dir")",
  "servers": [{"agent": "cppchannels", "url": "ws://127.0.0.1:$port/ws/echo/"}],
  "cases": [$(sed 's/[^,][^,]*/"&"/g' <<<"$cases")],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF

# wstest with one fix for autobahn 22: close reasons arrive as bytes, which the
# JSON report writer cannot serialise (the run would end in a hang).
cat >"$work/wstest.py" <<'EOF'
import json, sys
from autobahntestsuite import fuzzing, wstest

class _Json:
    def __getattr__(self, name):
        return getattr(json, name)
    @staticmethod
    def dumps(obj, **kw):
        kw.setdefault("default", lambda o: o.decode("utf-8", "replace") if isinstance(o, (bytes, bytearray)) else str(o))
        return json.dumps(obj, **kw)

fuzzing.json = _Json()
sys.argv = ["wstest", "-m", "fuzzingclient", "-s", sys.argv[1]]
wstest.run()
EOF
echo "autobahn: cases [$cases] against ws://127.0.0.1:$port/ws/echo/ (permessage-deflate on)"
start=$(date +%s)
PYTHONPATH="$suite" timeout 3600 /usr/bin/python3 "$work/wstest.py" "$work/spec.json" >"$work/wstest.log" 2>&1 || {
  echo "autobahn: wstest failed; its log:" >&2
  tail -30 "$work/wstest.log" >&2
  exit 1
}
echo "autobahn: finished in $(($(date +%s) - start)) s; report in $report_dir/index.html"

/usr/bin/python3 - "$report_dir/index.json" <<'EOF'
import json, sys, collections
results = json.load(open(sys.argv[1]))["cppchannels"]
counts = collections.Counter()
notable = collections.defaultdict(list)
def key(c):
    return [int(p) for p in c.split(".")]
for case in sorted(results, key=key):
    r = results[case]
    verdict = r["behavior"]
    if r["behaviorClose"] in ("FAILED", "UNCLEAN") and verdict not in ("UNIMPLEMENTED",):
        verdict = "FAILED"
    counts[verdict] += 1
    if verdict != "OK":
        notable[verdict].append(case)
print(f"{len(results)} cases: " + ", ".join(f"{counts[v]} {v}" for v in sorted(counts)))
for verdict, cs in sorted(notable.items()):
    print(f"  {verdict}: {' '.join(cs)}")
sys.exit(1 if counts["FAILED"] else 0)
EOF
