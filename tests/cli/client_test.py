#!/usr/bin/python3
"""cppchannels-client driven over pipes against the chat server: lines typed
go out (--json wraps them), messages received are printed, and refusals and
closes are reported with their status, code and reason. Then over wss:// to
the chat server with a self-signed certificate (made with the openssl
command): trusted with --ca-file, refused with a clear error without it, and
let through with --insecure.

Usage: client_test.py --client BIN --chat BIN --routing routing.yaml
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

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

def wss_checks(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)
    port = free_port()
    server = subprocess.Popen([args.chat, "--routing", args.routing, "--port", str(port), "--threads", "1",
                               "--cert", cert, "--key", key],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        check("TLS chat server listens", listening(server, port))
        url = f"wss://127.0.0.1:{port}/ws/chat/tls/"
        # Trusting the server's certificate: a line goes out and comes back.
        a = subprocess.Popen([args.client, "--json", "--ca-file", cert, url], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        a.stdin.write(b"hello over tls\n"); a.stdin.flush()
        check("wss: the broadcast comes back", read_line(a, timeout=10) == '{"message":"hello over tls"}')
        out, err = a.communicate(b"", timeout=10)
        check("wss: end of input exits 0", a.returncode == 0, (a.returncode, err))
        # Not trusting it: refused before any HTTP, and the flags to use are named.
        r = subprocess.run([args.client, url], input=b"", capture_output=True, timeout=15)
        check("wss: untrusted certificate exits 1", r.returncode == 1, r.returncode)
        check("wss: untrusted certificate explained",
              b"certificate failed verification" in r.stderr and b"--ca-file" in r.stderr
              and b"--insecure" in r.stderr, r.stderr)
        # Trusted, but issued for 127.0.0.1, not localhost: the name is checked too.
        r = subprocess.run([args.client, "--ca-file", cert, url.replace("127.0.0.1", "localhost")], input=b"",
                           capture_output=True, timeout=15)
        check("wss: name mismatch explained", r.returncode == 1 and b"mismatch" in r.stderr
              and b"issued for other names" in r.stderr, r.stderr)
        # --insecure: no check at all.
        r = subprocess.run([args.client, "--json", "--insecure", url], input=b"unchecked\n", capture_output=True,
                           timeout=15)
        check("wss --insecure: the broadcast comes back", b'{"message":"unchecked"}' in r.stdout, (r.stdout, r.stderr))
        check("wss --insecure: exits 0", r.returncode == 0, (r.returncode, r.stderr))
        # A CA file that does not exist is refused by the flag itself.
        r = subprocess.run([args.client, "--ca-file", os.path.join(tmp, "nope.pem"), url], input=b"",
                           capture_output=True, timeout=15)
        check("wss: missing --ca-file refused", r.returncode != 0 and b"nope.pem" in r.stderr, r.stderr)
    finally:
        stop(server)

# The certificate is made by the openssl command (scripts/install-deps.sh --test).
if check("openssl command available", shutil.which("openssl") is not None):
    with tempfile.TemporaryDirectory() as tmp:
        wss_checks(tmp)

check.finish()
