#!/usr/bin/python3
"""The Redis benchmark: one room of 1,000 members spread over two server
processes that share a Redis channel layer, one publisher, side by side for
cppchannels (two chat processes, backend: redis) and Django Channels (two
daphne processes, channels_redis 4's RedisChannelLayer) in the same run.

For each side and repetition, the load generator opens --members connections
to ws/chat/<room>/ alternately on process A and process B, plus one
publisher on A, then publishes --count JSON chat messages as fast as A reads
them. Every message is one group_send through Redis to two process keys and
reaches every member: half of them through A's receive loop, half through
B's. Measured: group_sends/s and deliveries/s (over the time from the first
publish to the last delivery), delivery latency (publisher's send to a
member's receive, one clock: the same load generator process), lost
deliveries, and the CPU time used by the two servers and by redis-server.

Two scenarios: "burst", --count messages as fast as A reads them
(throughput; latency there is mostly queueing), and "paced", --paced
messages, one every 4 s (the latency of one group_send through Redis when
the servers are idle; daphne needs about that long per message on a busy
2-core machine).
Every run is bounded: a count of messages, and the load generator's own
timeout. Nothing is pinned to a CPU (four processes share the machine).
Results: a table on stdout (cppchannels/daphne ratios) and a JSON file
(bench/results/redis.json by default).

    bench/run-redis.sh [--quick] [--reps N] [--count N] [--paced N] [--members N]
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
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import servers  # noqa: E402
from report import fmt, loadavg  # noqa: E402

SIDES = ["cppchannels", "daphne"]

# (label, key in the row, unit, higher is better)
METRICS = [
    ("group_sends/s", "group_sends_per_s", "", True),
    ("deliveries/s", "deliveries_per_s", "", True),
    ("latency p50", "latency_p50_us", "us", False),
    ("latency p99", "latency_p99_us", "us", False),
    ("latency max", "latency_max_us", "us", False),
    ("servers' CPU/delivery", "server_cpu_us_per_delivery", "us", False),
    ("redis CPU/group_send", "redis_cpu_us_per_group_send", "us", False),
    ("lost", "lost", "", False),
]

# Only what the benchmark uses: the chat route, on Redis. Written to a
# temporary file so that capacity can match daphne's.
ROUTING = """\
channel_layer:
  backend: redis
  hosts: [{url}]
  capacity: {capacity}
websocket:
  - path: ws/chat/<str:room_name>/
    consumer: chat.ChatConsumer
"""


class Redis(servers.Server):
    def __init__(self):
        port = servers.free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="redis-bench-")
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", self.dir.name, "--loglevel", "warning"]
        super().__init__("redis-server", cmd, port)
        self.url = f"redis://127.0.0.1:{port}"

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    def stop(self, timeout=10):
        super().stop(timeout)
        self.dir.cleanup()


def start_cpp(chat, routing_path, name):
    port = servers.free_port()
    cmd = [chat, "--routing", routing_path, "--bind", "127.0.0.1", "--port", str(port), "--threads", "1",
           "--log-level", "warn"]
    return servers.Server(name, cmd, port)


def start_daphne(redis_url, capacity, name):
    port = servers.free_port()
    cmd = [servers.PYTHON, "-m", "daphne", "-v", "0", "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
           "benchproj.asgi:application"]
    env = dict(os.environ, PYTHONPATH=servers.DAPHNE_DIR, DJANGO_SETTINGS_MODULE="benchproj.settings_redis",
               CHANNELS_REDIS_HOSTS=redis_url, CHANNELS_REDIS_CAPACITY=str(capacity))
    return servers.Server(name, cmd, port, cwd=servers.DAPHNE_DIR, env=env, ready_timeout=60)


def run_once(loadgen, procs, redis, room, a, count, rate):
    url = f"ws://127.0.0.1:{procs[0].port}/ws/chat/{room}/"
    also = f"ws://127.0.0.1:{procs[1].port}/ws/chat/{room}/"
    cmd = [loadgen, "--mode", "fanout", "--url", url, "--also-url", also, "--connections", str(a.members),
           "--count", str(count), "--rate", str(rate), "--size", "32", "--duration", "60", "--join-wait", "1",
           "--drain", str(a.drain), "--idle-drain", "5"]
    for p in procs:
        p.wait_idle()
    cpu0 = [p.cpu_seconds() for p in procs]
    rcpu0 = redis.cpu_seconds()
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.members / 50 + a.drain + 180)
    except subprocess.TimeoutExpired:
        return {"error": "the load generator did not finish in time"}
    wall = time.monotonic() - t
    cpu = sum(p_.cpu_seconds() for p_ in procs) - sum(cpu0)
    rcpu = redis.cpu_seconds() - rcpu0
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"loadgen exited {p.returncode} without a result: {p.stderr.strip()[-500:]}"}
    span = r.get("delivery_span_s") or 0
    received = r.get("received", 0)
    row = {
        "group_sends_per_s": r["sent"] / span if span else None,
        "deliveries_per_s": r.get("deliveries_per_s"),
        "latency_p50_us": r["latency_us"]["p50"],
        "latency_p99_us": r["latency_us"]["p99"],
        "latency_max_us": r["latency_us"]["max"],
        # Includes handshakes and joins (the same work on both sides).
        "server_cpu_us_per_delivery": cpu * 1e6 / received if received else None,
        "redis_cpu_us_per_group_send": rcpu * 1e6 / r["sent"] if r.get("sent") else None,
        "lost": r.get("lost"),
        "exit_code": p.returncode,
        "wall_s": round(wall, 2),
        "loadgen": r,
    }
    if p.stderr.strip():
        row["stderr"] = p.stderr.strip()[-500:]
    return row


def main():
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="fewer messages and one repetition")
    ap.add_argument("--reps", type=int, default=1, help="repetitions per side and scenario (1)")
    ap.add_argument("--members", type=int, default=1000, help="room members, split over the two processes")
    ap.add_argument("--count", type=int, default=None, help="burst: messages published (30; 10 with --quick)")
    ap.add_argument("--paced", type=int, default=None, help="paced: messages published, one every 4 s (6; 3)")
    ap.add_argument("--capacity", type=int, default=1000,
                    help="channel layer capacity on both sides (per process key)")
    ap.add_argument("--drain", type=float, default=120, help="longest wait for deliveries after the last send")
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "redis.json"))
    a = ap.parse_args()
    a.count = a.count or (10 if a.quick else 30)
    a.paced = a.paced or (3 if a.quick else 6)
    sides = [s for s in a.sides.split(",") if s]

    chat = os.path.join(a.build_dir, "apps", "chat", "chat")
    loadgen = os.path.join(a.build_dir, "bench", "loadgen")
    for path in (chat, loadgen):
        if not os.access(path, os.X_OK):
            sys.exit(f"error: {path} is missing: build first (bench/run-redis.sh does)")

    started = time.monotonic()
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "members": a.members, "count": a.count, "paced": a.paced, "reps": a.reps, "capacity": a.capacity,
            "cpus": os.cpu_count(), "kernel": platform.release(), "loadavg_start": loadavg(),
            "sides": {
                "cppchannels": "2 x apps/chat --threads 1, backend: redis",
                "daphne": "2 x daphne -v 0 (bench/daphne, settings_redis: channels_redis.core.RedisChannelLayer)",
            },
        },
    }
    scenarios = [("burst", a.count, 0), ("paced", a.paced, 0.25)]
    report["runs"] = {sc: {s: [] for s in sides} for sc, _, _ in scenarios}
    redis = Redis()
    tmp = tempfile.TemporaryDirectory(prefix="redis-bench-")
    routing = os.path.join(tmp.name, "routing.yaml")
    with open(routing, "w") as f:
        f.write(ROUTING.format(url=redis.url, capacity=a.capacity))
    procs = {}
    try:
        procs["cppchannels"] = [start_cpp(chat, routing, f"cppchannels {x}") for x in "AB"] \
            if "cppchannels" in sides else []
        procs["daphne"] = [start_daphne(redis.url, a.capacity, f"daphne {x}") for x in "AB"] \
            if "daphne" in sides else []
        for sc, count, rate in scenarios:
            print(f"== {sc}: {count} group_sends" + (f" at {rate}/s" if rate else " as fast as they are read"),
                  flush=True)
            for rep in range(a.reps):
                order = sides[rep % len(sides):] + sides[:rep % len(sides)]
                for side in order:
                    row = run_once(loadgen, procs[side], redis, f"redisbench{sc}{rep}{side[0]}", a, count, rate)
                    report["runs"][sc][side].append(row)
                    if "error" in row:
                        print(f"  rep {rep + 1} {side:<12} ERROR {row['error']}", flush=True)
                    else:
                        print(f"  rep {rep + 1} {side:<12} group_sends/s={fmt(row['group_sends_per_s'])} "
                              f"deliveries/s={fmt(row['deliveries_per_s'])} p50={fmt(row['latency_p50_us'], 'us')} "
                              f"p99={fmt(row['latency_p99_us'], 'us')} lost={row['lost']} "
                              f"drain={row['loadgen'].get('drain_end')} wall={row['wall_s']} s", flush=True)
                    for p in procs[side]:
                        if not p.alive():
                            raise RuntimeError(f"{p.name} exited:\n{p.output()}")
    finally:
        for side in procs.values():
            for p in side:
                p.stop()
        redis.stop()
        tmp.cleanup()

    lines = [f"one room of {a.members} members over 2 processes on one Redis, 1 publisher, 32 B messages"]
    report["median"], report["ratio_cpp_over_daphne"] = {}, {}
    for sc, count, rate in scenarios:
        median = {}
        for side in sides:
            ok = [r for r in report["runs"][sc][side] if "error" not in r]
            median[side] = {}
            for label, key, _, _ in METRICS:
                vals = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
                median[side][label] = statistics.median(vals) if vals else None
        report["median"][sc] = median
        title = f"{sc}: {count} group_sends" + (f" at {rate}/s" if rate else " as fast as A reads them")
        head = f"{title:<46} {'cppchannels':>12} {'daphne':>12} {'cpp/daphne':>11}"
        lines += ["", head, "-" * len(head)]
        ratios = {}
        for label, _, unit, _ in METRICS:
            if rate and label not in ("latency p50", "latency p99", "latency max", "lost"):
                continue  # paced: the rate is set, and CPU would mostly be the handshakes
            c, d = median.get("cppchannels", {}).get(label), median.get("daphne", {}).get(label)
            r = c / d if c is not None and d else None
            ratios[label] = r
            lines.append(f"  {label:<44} {fmt(c, unit):>12} {fmt(d, unit):>12} "
                         f"{(f'{r:.2f}x' if r is not None else '-'):>11}")
        report["ratio_cpp_over_daphne"][sc] = ratios
    report["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    report["meta"]["loadavg_end"] = loadavg()
    report["table"] = "\n".join(lines)
    print()
    print(report["table"])
    print(f"\n({a.reps} repetition(s) per side; {report['meta']['elapsed_s']:.0f} s in all; load average "
          f"{report['meta']['loadavg_start']} at the start, {report['meta']['loadavg_end']} at the end)")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {os.path.relpath(a.out, ROOT)}")
    # Lost deliveries are a result (reported above), not a failure of the run.
    return 1 if any("error" in r for per_side in report["runs"].values() for rows in per_side.values()
                    for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
