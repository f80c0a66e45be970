#!/usr/bin/python3
"""docs/tutorial.md cannot rot: each block marked <!-- file: PATH --> must equal
that file of examples/tutorial/ (and every file there is shown), and the app
those files build must serve the tutorial's echo and chat rooms.

Usage: tutorial_test.py --source DIR --mysite BIN --client BIN
"""
import argparse, pathlib, re, select, socket, subprocess, sys, time, os

ap = argparse.ArgumentParser()
ap.add_argument("--source", required=True)
ap.add_argument("--mysite", required=True)
ap.add_argument("--client", required=True)
args = ap.parse_args()
src = pathlib.Path(args.source)

passed = failed = 0
def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {name} {detail}")

doc = (src / "docs/tutorial.md").read_text()
blocks = re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```\n", doc, re.S)
shown = set()
for path, body in blocks:
    shown.add(path)
    f = src / path
    check(f"{path} exists", f.is_file())
    if f.is_file():
        check(f"docs/tutorial.md block equals {path}", f.read_text() == body)
for f in sorted((src / "examples/tutorial").iterdir()):
    rel = f"examples/tutorial/{f.name}"
    check(f"{rel} is shown in the tutorial", rel in shown)

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
    buf = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        ch = os.read(proc.stdout.fileno(), 1)
        if not ch or ch == b"\n":
            return buf.decode() if ch else None
        buf += ch
    return None

port = free_port()
server = subprocess.Popen([args.mysite, "--routing", str(src / "examples/tutorial/routing.yaml"), "--port", str(port),
                           "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
clients = []
try:
    check("mysite listens", wait_port(port))
    base = f"ws://127.0.0.1:{port}"
    echo = subprocess.Popen([args.client, f"{base}/ws/echo/"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    clients.append(echo)
    echo.stdin.write(b"hello\n"); echo.stdin.flush()
    check("step 2: echo", read_line(echo) == "hello")
    a = subprocess.Popen([args.client, "--json", f"{base}/ws/chat/lobby/"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    b = subprocess.Popen([args.client, "--json", f"{base}/ws/chat/lobby/"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    clients += [a, b]
    time.sleep(0.5)
    a.stdin.write(b"hello everyone\n"); a.stdin.flush()
    check("step 4: the sender sees it", read_line(a) == '{"message":"hello everyone"}')
    check("step 4: the room sees it", read_line(b) == '{"message":"hello everyone"}')
finally:
    for c in clients:
        c.kill(); c.wait(timeout=5)
    server.terminate()
    server.wait(timeout=10)

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
