#!/usr/bin/python3
"""cppchannels-client driven over pipes against the chat server: lines typed
go out (--json wraps them), messages received are printed, and refusals and
closes are reported with their status, code and reason.

Usage: client_test.py --client BIN --chat BIN --routing routing.yaml
"""
import argparse, os, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--client", required=True)
ap.add_argument("--chat", required=True)
ap.add_argument("--routing", required=True)
args = ap.parse_args()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from procs import Checks, free_port, listening, read_line, stop  # noqa: E402

check = Checks()

port = free_port()
server = subprocess.Popen([args.chat, "--routing", args.routing, "--port", str(port), "--threads", "1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    check("chat server listens", listening(server, port))
    base = f"ws://127.0.0.1:{port}"

    # Two clients in one room: a line typed in one is printed by both.
    a = subprocess.Popen([args.client, "--json", f"{base}/ws/chat/pipes/"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    b = subprocess.Popen([args.client, f"{base}/ws/chat/pipes/"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)  # both joined the room
    a.stdin.write(b"hello from a pipe\n"); a.stdin.flush()
    check("sender prints the broadcast", read_line(a) == '{"message":"hello from a pipe"}')
    check("other member prints it", read_line(b) == '{"message":"hello from a pipe"}')
    # Without --json the line goes as typed.
    b.stdin.write(b'{"message": "raw json"}\n'); b.stdin.flush()
    check("raw line reaches the room", read_line(a) == '{"message":"raw json"}')
    # A line that is not JSON: the chat consumer closes with 1007 and a reason.
    b.stdin.write(b"not json\n"); b.stdin.flush()
    out, err = b.communicate(timeout=10)
    check("close code reported", b"code 1007" in err, err)
    check("close reason reported", b"invalid JSON" in err, err)
    check("abnormal close exits non-zero", b.returncode == 1, b.returncode)
    # End of input: the client closes normally and exits 0.
    out, err = a.communicate(b"", timeout=10)
    check("end of input exits 0", a.returncode == 0, (a.returncode, err))

    # Refused handshakes say what the server answered.
    r = subprocess.run([args.client, f"{base}/no/such/route/"], input=b"", capture_output=True, timeout=10)
    check("404 refusal exits 1", r.returncode == 1, r.returncode)
    check("404 refusal explained", b"HTTP 404" in r.stderr and b"no WebSocket route" in r.stderr, r.stderr)
    r = subprocess.run([args.client, f"{base}/ws/chat/bad%20room/"], input=b"", capture_output=True, timeout=10)
    check("403 refusal explained", b"HTTP 403" in r.stderr, r.stderr)
    r = subprocess.run([args.client, f"ws://127.0.0.1:{free_port()}/x/"], input=b"", capture_output=True,
                       timeout=15)
    check("refused TCP connection explained", r.returncode == 1 and b"cannot connect" in r.stderr, r.stderr)
finally:
    stop(server)

check.finish()
