#!/usr/bin/python3
"""cppchannels-client driven over pipes against the chat server: lines typed
go out (--json wraps them), messages received are printed, and refusals and
closes are reported with their status, code and reason.

Usage: client_test.py --client BIN --chat BIN --routing routing.yaml
"""
import argparse, os, socket, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--client", required=True)
ap.add_argument("--chat", required=True)
ap.add_argument("--routing", required=True)
args = ap.parse_args()

passed = failed = 0
def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {name} {detail}")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return True
        except OSError:
            time.sleep(0.1)
    return False

def read_line(proc, timeout=5.0):
    """One stdout line, or None after `timeout` (os.read on the raw pipe, bounded)."""
    import select
    buf = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        ch = os.read(proc.stdout.fileno(), 1)
        if not ch:
            break
        if ch == b"\n":
            return buf.decode()
        buf += ch
    return None

port = free_port()
server = subprocess.Popen([args.chat, "--routing", args.routing, "--port", str(port), "--threads", "1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    check("chat server listens", wait_port(port))
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
    server.terminate()
    server.wait(timeout=10)

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
