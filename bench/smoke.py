#!/usr/bin/python3
"""CI smoke test for the benchmark suite (ctest label `bench`).

Starts the chat app on a free port, runs each load generator mode against it
for about two seconds, checks that every run succeeds and reports sane
figures, then stops the server by its PID. Also checks that the floor server
answers an echo run, and that the Python parts of the suite compile.

    smoke.py --loadgen PATH --floor PATH --chat PATH --routing routing.yaml
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chart  # noqa: E402
import servers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def loadgen(exe, *args, timeout=60):
    cmd = [exe, *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    result = json.loads(p.stdout.strip().splitlines()[-1])
    print(f"ok: {' '.join(cmd[1:])}\n    {json.dumps(result)}", flush=True)
    return result


def check_chart():
    with open(os.path.join(HERE, "results", "latest.json")) as f:
        report = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        png, svg = os.path.join(tmp, "chart.png"), os.path.join(tmp, "chart.svg")
        chart.draw(report, png)
        with open(png, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                raise AssertionError("chart.png is not a PNG")
        chart.draw(report, svg, terminal="svg")
        with open(svg) as f:
            drawn = f.read()
    scen = {s["key"]: s for s in report["scenarios"]}
    for key, label, title, _ in chart.PANELS:
        for server, row in scen[key]["median"].items():
            v = row.get(label)
            if v is None or v == 0:
                continue
            if label == "RSS/conn":
                v /= 1024
            if f">{chart.human(v)}</tspan>" not in drawn:
                raise AssertionError(f"{title}: no label {chart.human(v)} for {server}")
    for server, colour in chart.COLORS.items():
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        bars = drawn.count(f"fill = 'rgb({r:3d}, {g:3d}, {b:3d})'")
        if bars < len(chart.PANELS) - 1:  # a bar of 0 (nothing lost) draws nothing
            raise AssertionError(f"{bars} bars in {server}'s colour for {len(chart.PANELS)} panels")


def maps_library(pid, library):
    """Whether process `pid` has `library` (a path, symlinks allowed) mapped."""
    want = os.path.basename(os.path.realpath(library))
    with open(f"/proc/{pid}/maps") as f:
        return any(line.rstrip().endswith("/" + want) for line in f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--chat", required=True)
    ap.add_argument("--routing", required=True)
    ap.add_argument("--build-dir", required=True, help="for idle_scale.py: where apps/chat/chat and bench/loadgen are")
    ap.add_argument("--malloc", default="", help="the allocator library chat and floor were linked with (CHANNELS_MALLOC)")
    a = ap.parse_args()

    for f in ("run.py", "servers.py", "report.py", "chart.py", "redis_bench.py", "idle_scale.py", "room_sizes.py",
              "daphne/benchproj/asgi.py",
              "daphne/benchproj/consumers.py", "daphne/benchproj/settings.py",
              "daphne/benchproj/settings_redis.py"):
        path = os.path.join(HERE, f)
        with open(path) as src:
            compile(src.read(), path, "exec")  # a syntax error fails the smoke test

    passed = failed = 0
    chat = servers.start_chat(a.chat, a.routing, threads=1)
    try:
        url = f"ws://127.0.0.1:{chat.port}"
        checks = [
            ("echo", lambda: loadgen(a.loadgen, "--mode", "echo", "--url", url + "/ws/echo/",
                                     "--connections", 10, "--inflight", 4, "--warmup", 0.5, "--duration", 1.5),
             lambda r: r["msgs_per_s"] > 0 and r["rtt_us"]["p50"] > 0 and r["unanswered"] == 0),
            ("fanout room/", lambda: loadgen(a.loadgen, "--mode", "fanout", "--url", url + "/room/smoke/",
                                             "--connections", 50, "--count", 200, "--duration", 2),
             lambda r: r["sent"] == 200 and r["lost"] == 0 and r["received"] == 200 * 50),
            ("fanout ws/chat/", lambda: loadgen(a.loadgen, "--mode", "fanout", "--url", url + "/ws/chat/smoke/",
                                                "--connections", 20, "--count", 100, "--duration", 2),
             lambda r: r["wrap"] == "json" and r["lost"] == 0 and r["received"] == 100 * 20),
            ("fanout, many rooms and publishers", lambda: loadgen(
                a.loadgen, "--mode", "fanout", "--url", url + "/room/smoke-{room}/", "--rooms", 10,
                "--connections", 3, "--count", 50, "--duration", 2),
             lambda r: r["publishers"] == 10 and r["lost"] == 0 and r["received"] == 50 * 3),
            # --also-url spreads connections over servers (the Redis
            # benchmark's two processes); here the same server twice.
            ("fanout over --also-url", lambda: loadgen(
                a.loadgen, "--mode", "fanout", "--url", url + "/room/smoke-also/", "--also-url",
                url + "/room/smoke-also/", "--connections", 20, "--count", 50, "--duration", 2, "--join-wait", 0.3),
             lambda r: r["lost"] == 0 and r["received"] == 50 * 20),
            ("connect", lambda: loadgen(a.loadgen, "--mode", "connect", "--url", url + "/ws/echo/",
                                        "--connections", 300, "--hold", 1, "--settle", 0.5, "--pid", chat.pid),
             lambda r: r["held"] == 300 and r["handshakes_per_s"] > 0 and r["rss_held_kb"] > 0),
        ]
        floor = servers.start_floor(a.floor, threads=1)
        try:
            furl = f"ws://127.0.0.1:{floor.port}"
            checks.append(("floor echo", lambda: loadgen(a.loadgen, "--mode", "echo", "--url", furl + "/ws/echo/",
                                                         "--connections", 4, "--warmup", 0.2, "--duration", 1),
                           lambda r: r["msgs_per_s"] > 0))
            checks.append(("floor fanout ws/chat/", lambda: loadgen(
                a.loadgen, "--mode", "fanout", "--url", furl + "/ws/chat/x/", "--connections", 10, "--count", 50),
                lambda r: r["lost"] == 0))
            if a.malloc:
                # Linked is not enough: the programs must be running on it.
                for name, server in (("chat", chat), ("floor", floor)):
                    if maps_library(server.pid, a.malloc):
                        passed += 1
                    else:
                        failed += 1
                        print(f"FAIL allocator: {name} (pid {server.pid}) does not map {a.malloc}", flush=True)
            for name, run, check in checks:
                try:
                    r = run()
                    if not check(r):
                        raise AssertionError(f"unexpected figures: {r}")
                    passed += 1
                except Exception as e:  # noqa: BLE001 - report every failure
                    failed += 1
                    print(f"FAIL {name}: {e}", flush=True)
        finally:
            floor.stop()
    finally:
        chat.stop()
    # idle_scale.py at a small size: one process, then two sharing a port
    # over a Redis of their own (redis-server comes with the test set).
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [servers.PYTHON, os.path.join(HERE, "idle_scale.py"), "--build-dir", a.build_dir, "--one", "200",
               "--many", "300", "--processes", "2", "--hold", "0.5", "--out", os.path.join(tmp, "idle.json")]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        print(p.stdout, end="", flush=True)
        runs = []
        if p.returncode == 0:
            with open(os.path.join(tmp, "idle.json")) as f:
                runs = json.load(f)["runs"]
        if len(runs) == 2 and all(
                r["held"] == r["connections"] and sum(r.get("per_process", [])) >= r["connections"] for r in runs) and runs[1]["group_send_reached"] == 7:
            passed += 1
        else:
            failed += 1
            print(f"FAIL idle_scale.py: exit {p.returncode}\n{p.stderr[-2000:]}", flush=True)
    # room_sizes.py at a small size: every case delivered, a fit for each server.
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "sizes.json")
        cmd = [servers.PYTHON, os.path.join(HERE, "room_sizes.py"), "--build-dir", a.build_dir, "--connections", "60",
               "--sizes", "1,3,60", "--groups-check", "0", "--burst", "20", "--reps", "1", "--drain", "10",
               "--out", out]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        print(p.stdout, end="", flush=True)
        report = {}
        if p.returncode == 0:
            with open(out) as f:
                report = json.load(f)
        fitted = report.get("servers", {})
        if (set(fitted) == {"cppchannels", "floor"}
                and all(len(s["cases"]) == 3 and all(c["deliveries_per_s"] for c in s["cases"])
                        and s.get("per_delivery_us") is not None for s in fitted.values())):
            passed += 1
        else:
            failed += 1
            print(f"FAIL room_sizes.py: exit {p.returncode}\n{p.stderr[-2000:]}", flush=True)
    # The chart, drawn by gnuplot from the committed results: a PNG, and the
    # same program as SVG, where each bar and its value can be read back.
    try:
        check_chart()
        passed += 1
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL chart.py: {e}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
