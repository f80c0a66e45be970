#!/usr/bin/python3
"""The benchmark runner: every scenario against cppchannels, the plain-Beast
floor and Django Channels (daphne), side by side in one run.

Each server runs pinned to CPU 0 (one thread for the C++ servers), the load
generator to CPU 1. Every scenario is repeated (--reps, 3 by default) with
the servers' order rotated between repetitions; the table shows medians and
the ratios cppchannels/floor and cppchannels/daphne. Results go to
bench/results/latest.json and a chart to bench/results/latest.png.

Run it through bench/run.sh, which installs what is missing and builds first.
"""
import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import servers  # noqa: E402
from report import fmt, git_commit, loadavg  # noqa: E402

SERVER_CPU = 0
LOADGEN_CPU = 1
SERVERS = ["cppchannels", "floor", "daphne"]

# What each scenario reports: (label, key path in the loadgen's JSON, unit,
# True if higher is better).
ECHO_METRICS = [
    ("msgs/s", ("msgs_per_s",), "", True),
    ("server CPU/msg", ("server_cpu_us_per_op",), "us", False),
    ("rtt p50", ("rtt_us", "p50"), "us", False),
    ("rtt p99", ("rtt_us", "p99"), "us", False),
    ("rtt max", ("rtt_us", "max"), "us", False),
]
FANOUT_METRICS = [
    ("deliveries/s", ("deliveries_per_s",), "", True),
    ("server CPU/delivery", ("server_cpu_us_per_op",), "us", False),
    ("latency p50", ("latency_us", "p50"), "us", False),
    ("latency p99", ("latency_us", "p99"), "us", False),
    ("latency max", ("latency_us", "max"), "us", False),
    ("lost", ("lost",), "", False),
    ("lost %", ("loss_pct",), "%", False),
]
CONNECT_METRICS = [
    ("handshakes/s", ("handshakes_per_s",), "", True),
    ("server CPU/handshake", ("server_cpu_us_per_op",), "us", False),
    ("handshake p99", ("handshake_us", "p99"), "us", False),
    ("RSS/conn", ("rss_bytes_per_conn",), "B", False),
    ("held", ("held",), "", True),
]


def scenarios(quick):
    q = quick
    echo_time = ["--warmup", 0.5 if q else 1, "--duration", 2 if q else 5]
    members = 200 if q else 1000
    daphne_members = 50 if q else 300
    rooms = 400 if q else 2000
    daphne_rooms = 100 if q else 200
    burst = 200  # twice the in-memory layer's capacity of 100 per channel
    room_burst = 20 if q else burst
    fan = ["--connections", members, "--size", 32, "--count", burst, "--duration", 10,
           "--drain", 20 if q else 60, "--idle-drain", 2 if q else 3]
    conns = 2000 if q else 10000
    out = [
        dict(key="echo_k1", title="echo: 100 conns, 32 B, 1 in flight", mode="echo", route="/ws/echo/",
             args=["--connections", 100, "--inflight", 1, "--size", 32, *echo_time], metrics=ECHO_METRICS),
        dict(key="echo_k8", title="echo: 100 conns, 32 B, 8 in flight", mode="echo", route="/ws/echo/",
             args=["--connections", 100, "--inflight", 8, "--size", 32, *echo_time], metrics=ECHO_METRICS),
        # Daphne delivers 1,000-2,500 messages/s here: a room of 1,000 would
        # take minutes to drain, so it gets a room of 300. With one publisher
        # it loses nothing (its channels never reach their capacity of 100);
        # fanout_multi is the burst where it does.
        dict(key="fanout_room", title=f"fanout room/: {members} members, burst of {burst} x 32 B",
             mode="fanout", route="/room/bench{rep}/", args=fan, metrics=FANOUT_METRICS,
             per_server_args={"daphne": ["--connections", daphne_members]}),
        dict(key="fanout_chat", title=f"fanout ws/chat/ (JSON): {members} members, burst of {burst} x 32 B",
             mode="fanout", route="/ws/chat/bench{rep}/", args=fan, metrics=FANOUT_METRICS,
             per_server_args={"daphne": ["--connections", daphne_members]}),
        # Several people talking at once: each member's channel gets up to
        # one message per publisher for every one it can pass on, which is
        # what overflows a capacity of 100 (one publisher never does, on
        # daphne's round-robin event loop).
        dict(key="fanout_multi", title="fanout room/: 50 members, 10 of them publishing, burst of 500 x 32 B",
             mode="fanout", route="/room/multi{rep}/", metrics=FANOUT_METRICS,
             args=["--connections", 40, "--publishers", 10, "--size", 32, "--count", 500, "--duration", 10,
                   "--drain", 20 if q else 40, "--idle-drain", 2 if q else 3]),
        # Many small rooms: a channel layer with thousands of groups. 20,000
        # open files per process caps a server near 20,000 connections, so
        # 2,000 rooms of 5 (10,000 connections) stand for 10,000 rooms. Each
        # room gets the single room's burst, so that the two differ in the
        # number and size of groups, not in how many messages a member's
        # write can gather (10 per room gave a quarter of the deliveries/s).
        dict(key="rooms", title=f"many rooms: {rooms} rooms of 5, one publisher each, burst of {room_burst} x 32 B "
                                f"per room", mode="fanout", route="/room/r{rep}-{{room}}/", metrics=FANOUT_METRICS,
             args=["--rooms", rooms, "--connections", 5, "--size", 32, "--count", rooms * room_burst,
                   "--duration", 10, "--drain", 20 if q else 60, "--idle-drain", 2 if q else 3],
             # Channels' in-memory layer sweeps every channel and group on each
             # send and receive: with thousands, daphne takes seconds to start;
             # and at a few thousand deliveries/s, 10 messages per room.
             per_server_args={"daphne": ["--rooms", daphne_rooms, "--count", daphne_rooms * 10,
                                         "--idle-drain", 10]}),
        dict(key="connect", title=f"connect: {conns} idle connections", mode="connect", route="/ws/echo/",
             args=["--connections", conns, "--hold", 2, "--settle", 1], metrics=CONNECT_METRICS,
             fresh=True, per_server_args={"daphne": ["--connections", min(conns, 2000 if q else 5000)]}),
    ]
    return out


def dig(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def run_loadgen(exe, url, mode, args, pid, timeout=300):
    cmd = servers.pinned([exe, "--mode", mode, "--url", url, *map(str, args), "--pid", str(pid)], LOADGEN_CPU)
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen did not finish within {timeout} s"}
    elapsed = time.monotonic() - t
    lines = p.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"loadgen exited {p.returncode} without a result: {p.stderr.strip()[-500:]}"}
    result["exit_code"] = p.returncode
    result["wall_s"] = round(elapsed, 2)
    if p.stderr.strip():
        result["stderr"] = p.stderr.strip()[-500:]
    return result


class Fleet:
    """The three servers, started lazily and restarted on demand."""

    def __init__(self, exes, routing, only):
        self.exes = exes
        self.routing = routing
        self.only = only
        self.running = {}

    def get(self, name):
        s = self.running.get(name)
        if s and s.alive():
            return s
        if s:
            print(f"  note: {name} had exited:\n{s.output(800)}", flush=True)
        if name == "cppchannels":
            s = servers.start_chat(self.exes["chat"], self.routing, threads=1, cpus=SERVER_CPU)
        elif name == "floor":
            s = servers.start_floor(self.exes["floor"], threads=1, cpus=SERVER_CPU)
        else:
            s = servers.start_daphne(cpus=SERVER_CPU)
        self.running[name] = s
        return s

    def stop(self, name=None):
        for n in [name] if name else list(self.running):
            s = self.running.pop(n, None)
            if s:
                s.stop()


def median_result(runs, metrics):
    med = {}
    for label, path, _, _ in metrics:
        vals = [dig(r, path) for r in runs if "error" not in r]
        vals = [v for v in vals if isinstance(v, (int, float)) and v >= 0]
        med[label] = statistics.median(vals) if vals else None
    return med


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def table(report):
    head = f"{'scenario / metric':<44} {'cppchannels':>12} {'floor':>12} {'daphne':>12} {'cpp/floor':>10} {'cpp/daphne':>10}"
    lines = [head, "-" * len(head)]
    for sc in report["scenarios"]:
        lines.append(sc["title"])
        for label, _, unit, _ in sc["metrics"]:
            m = {s: sc["median"].get(s, {}).get(label) for s in SERVERS}
            r1 = ratio(m["cppchannels"], m["floor"])
            r2 = ratio(m["cppchannels"], m["daphne"])
            lines.append(f"  {label:<42} {fmt(m['cppchannels'], unit):>12} {fmt(m['floor'], unit):>12} "
                         f"{fmt(m['daphne'], unit):>12} {(f'{r1:.2f}x' if r1 is not None else '-'):>10} "
                         f"{(f'{r2:.2f}x' if r2 is not None else '-'):>10}")
        notes = sc.get("notes")
        if notes:
            lines.extend(f"  note: {n}" for n in notes)
    return "\n".join(lines)


def main():
    # Interrupted (Ctrl-C, or SIGTERM from whoever started the run): the
    # finally blocks stop every server this run started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="smaller scenarios, shorter runs (about 5 minutes)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per scenario (3)")
    ap.add_argument("--only", default="", help="comma-separated scenario keys to run")
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset of " + ",".join(SERVERS))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--no-chart", action="store_true")
    a = ap.parse_args()

    exes = {
        "chat": os.path.join(a.build_dir, "apps", "chat", "chat"),
        "floor": os.path.join(a.build_dir, "bench", "floor"),
        "loadgen": os.path.join(a.build_dir, "bench", "loadgen"),
    }
    for name, path in exes.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"error: {path} is missing: build first (bench/run.sh does)")
    routing = os.path.join(ROOT, "routing.yaml")
    reps = a.reps or 3
    chosen = [s for s in a.servers.split(",") if s]
    todo = [s for s in scenarios(a.quick) if not a.only or s["key"] in a.only.split(",")]

    started = time.monotonic()
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": git_commit(),
            "quick": a.quick,
            "reps": reps,
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "loadavg_start": loadavg(),
            "server_cpu": SERVER_CPU,
            "loadgen_cpu": LOADGEN_CPU,
            "servers": {
                "cppchannels": "apps/chat, routing.yaml, --threads 1 --log-level warn",
                "floor": "bench/floor (plain Boost.Beast), --threads 1",
                "daphne": "bench/daphne under Debian's daphne -v 0, InMemoryChannelLayer (capacity 100)",
            },
        },
        "scenarios": [],
    }
    fleet = Fleet(exes, routing, chosen)
    try:
        for sc in todo:
            print(f"== {sc['title']}", flush=True)
            runs = {s: [] for s in chosen}
            for rep in range(reps):
                order = chosen[rep % len(chosen):] + chosen[:rep % len(chosen)]
                for name in order:
                    if sc.get("fresh"):
                        fleet.stop(name)
                    srv = fleet.get(name)
                    srv.wait_idle()
                    url = f"ws://127.0.0.1:{srv.port}{sc['route'].format(rep=rep)}"
                    args = list(sc["args"]) + list(sc.get("per_server_args", {}).get(name, []))
                    r = run_loadgen(exes["loadgen"], url, sc["mode"], args, srv.pid)
                    r["server_rss_kb_after"] = srv.rss_kb()
                    runs[name].append(r)
                    main_label, main_path = sc["metrics"][0][0], sc["metrics"][0][1]
                    extra = f" cpu/op={fmt(r.get('server_cpu_us_per_op'), 'us')}"
                    if sc["mode"] == "fanout":
                        extra += f" lost={r.get('lost')}/{r.get('expected')} drain={r.get('drain_end')}"
                    if sc["mode"] == "connect":
                        extra += f" held={r.get('held')} rss/conn={r.get('rss_bytes_per_conn')}"
                    err = f" ERROR {r['error']}" if "error" in r else (
                        f" (exit {r['exit_code']})" if r.get("exit_code") else "")
                    print(f"  rep {rep + 1} {name:<12} {main_label}={fmt(dig(r, main_path))}{extra}{err}",
                          flush=True)
                    if sc.get("fresh"):
                        fleet.stop(name)
            entry = {
                "key": sc["key"], "title": sc["title"], "mode": sc["mode"], "route": sc["route"],
                "args": [str(x) for x in sc["args"]],
                "per_server_args": {k: [str(x) for x in v] for k, v in sc.get("per_server_args", {}).items()},
                "metrics": [list(m[:3]) + [m[3]] for m in sc["metrics"]],
                "median": {s: median_result(runs[s], sc["metrics"]) for s in chosen},
                "runs": runs,
            }
            notes = []
            for s, extra in sc.get("per_server_args", {}).items():
                if s in chosen:
                    notes.append(f"{s}: {' '.join(map(str, extra))}")
            for s_name in chosen:
                cut = sum(1 for r in runs[s_name] if r.get("drain_end") == "cap")
                if cut:
                    notes.append(f"{s_name}: still delivering when the drain limit ended {cut} of {reps} runs "
                                 f"(its 'lost' counts those undelivered messages too)")
            entry["notes"] = notes
            report["scenarios"].append(entry)
            fleet.stop()  # each scenario starts from fresh servers
    finally:
        fleet.stop()

    report["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    report["meta"]["loadavg_end"] = loadavg()
    text = table(report)
    report["table"] = text
    print()
    print(text)
    each = "1 repetition each" if reps == 1 else f"{reps} repetitions each, medians"
    print(f"\n({each}; {report['meta']['elapsed_s']:.0f} s in all; "
          f"load average {report['meta']['loadavg_start']} at the start, {report['meta']['loadavg_end']} at the end)")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {os.path.relpath(a.out, ROOT)}")
    if not a.no_chart:
        import chart
        png = os.path.splitext(a.out)[0] + ".png"
        try:
            chart.draw(report, png)
            print(f"wrote {os.path.relpath(png, ROOT)}")
        except chart.ChartError as e:
            print(f"no chart: {e}")


if __name__ == "__main__":
    main()
