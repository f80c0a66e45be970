#!/usr/bin/python3
"""docs/tutorial.md cannot rot: each block marked <!-- file: PATH --> must equal
that file of examples/tutorial/ (and every file there is shown), and the app
those files build must serve the tutorial's echo and chat rooms.

Usage: tutorial_test.py --source DIR --mysite BIN --client BIN
"""
import argparse, os, pathlib, re, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--source", required=True)
ap.add_argument("--mysite", required=True)
ap.add_argument("--client", required=True)
args = ap.parse_args()
src = pathlib.Path(args.source)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from procs import Checks, free_port, listening, read_line, stop  # noqa: E402

check = Checks()

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

port = free_port()
server = subprocess.Popen([args.mysite, "--routing", str(src / "examples/tutorial/routing.yaml"), "--port", str(port),
                           "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
clients = []
try:
    check("mysite listens", listening(server, port))
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
    stop(server)

check.finish()
