#!/usr/bin/python3
"""Idle connections at scale: server memory per connection, and how many one
machine holds.

Two runs, each bounded in time:

- one process: one chat server (`--threads 1`, in-memory layer) holds
  --one idle WebSockets on ws/echo/ (19,000 by default: open files are
  capped at 20,000 per process on these machines);
- several processes: --processes chat servers on one port (`--reuse-port`,
  SO_REUSEPORT), sharing a Redis channel layer on a redis-server of their own,
  hold --many idle WebSockets (50,000 by default), opened by several load
  generator processes (each under the same open-files cap); then a message
  sent to a group from one process reaches a member on another, to show the
  layer is live while they are held.

RSS per connection is (RSS while holding - RSS before) / connections, summed
over the servers. Prints a table and writes bench/results/idle_scale.json.

    idle_scale.py --build-dir build [--one N] [--many N] [--processes P] [--hold S]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
from redis_bench import Redis  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PER_LOADGEN = 16000  # connections per load generator process (open files: 20,000)

ROUTING = """\
channel_layer:
  backend: {backend}
  hosts: [{url}]
websocket:
  - path: ws/echo/
    consumer: chat.EchoConsumer
  - path: room/<str:group>/
    consumer: chat.RoomConsumer
"""


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_sockets(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def start_chat(chat, routing_path, port):
    cmd = [chat, "--routing", routing_path, "--bind", "127.0.0.1", "--port", str(port), "--threads", "1",
           "--log-level", "warn", "--reuse-port"]
    return servers.Server("cppchannels", cmd, port, cwd=os.path.dirname(routing_path))


def hold(loadgen, port, connections, hold_s, procs):
    """Opens `connections` idle WebSockets to `port` from as many load generator
    processes as needed, and samples the servers while all are held."""
    n_gen = max(1, -(-connections // PER_LOADGEN))
    shares = [connections // n_gen + (1 if i < connections % n_gen else 0) for i in range(n_gen)]
    # Enough loopback source addresses for everyone's ephemeral ports.
    sources = max(1, -(-connections // 20000))
    base = [rss_kb(p.pid) for p in procs]
    # The generators finish opening at different times and each holds from
    # then: the first must still hold when the last is done and the servers
    # have been sampled.
    hold_s = hold_s + 2 + connections / 1000
    gens = []
    for share in shares:
        cmd = [loadgen, "--mode", "connect", "--url", f"ws://127.0.0.1:{port}/ws/echo/", "--connections",
               str(share), "--hold", str(hold_s), "--sources", str(sources), "--settle", "1"]
        gens.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    # Every generator says "holding" once its connections are open.
    deadline = time.monotonic() + 60 + connections / 500
    holding = 0
    for g in gens:
        while time.monotonic() < deadline:
            line = g.stderr.readline()
            if not line:
                break
            if "holding" in line:
                holding += 1
                break
    sample = None
    if holding == len(gens):
        time.sleep(0.5)
        sample = {"rss_kb": [rss_kb(p.pid) for p in procs], "sockets": [open_sockets(p.pid) for p in procs]}
    results = []
    for g in gens:
        try:
            out, err = g.communicate(timeout=hold_s + 60)
        except subprocess.TimeoutExpired:
            g.kill()
            out, err = g.communicate()
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            results.append({"error": f"loadgen exited {g.returncode}: {err.strip()[-300:]}"})
    held = sum(r.get("held", 0) for r in results)
    row = {"connections": connections, "held": held, "load_generators": len(gens), "base_rss_kb": base,
           "loadgen": results}
    if sample:
        row.update(sample)
        grown = sum(sample["rss_kb"]) - sum(base)
        row["rss_mib"] = sum(sample["rss_kb"]) / 1024
        row["rss_bytes_per_conn"] = grown * 1024 / held if held else None
        row["per_process"] = [s - 1 for s in sample["sockets"]]  # less the listening socket
    return row


def group_send_across(port):
    """A message sent to a group by one member reaches the 7 others (so the
    Redis layer is live while the connections are held). The kernel hashes
    each connection to one of the processes: with 8 members over 3, all on
    one process is a 1 in 2,187 chance, so the message almost surely crosses."""
    code = r"""
import asyncio, sys, websockets
async def main(port):
    url = f"ws://127.0.0.1:{port}/room/idle-scale/"
    members = [await websockets.connect(url, open_timeout=5) for _ in range(8)]
    await asyncio.sleep(0.5)
    await members[0].send("across")
    got = 0
    for m in members[1:]:
        try:
            while True:
                if await asyncio.wait_for(m.recv(), 5) == "across":
                    got += 1
                    break
        except asyncio.TimeoutError:
            pass
    print(got)
asyncio.run(main(int(sys.argv[1])))
"""
    p = subprocess.run([servers.PYTHON, "-c", code, str(port)], capture_output=True, text=True, timeout=60)
    try:
        return int(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return f"error: {p.stderr.strip()[-300:]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--one", type=int, default=19000, help="idle connections on one process (0: skip)")
    ap.add_argument("--many", type=int, default=50000, help="idle connections over several processes (0: skip)")
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--hold", type=float, default=5, help="seconds to hold them")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "idle_scale.json"))
    a = ap.parse_args()
    chat = os.path.abspath(os.path.join(a.build_dir, "apps", "chat", "chat"))
    loadgen = os.path.abspath(os.path.join(a.build_dir, "bench", "loadgen"))
    report = {"runs": []}
    tmp = tempfile.TemporaryDirectory(prefix="idle-scale-")

    if a.one:
        routing = os.path.join(tmp.name, "memory.yaml")
        with open(routing, "w") as f:
            f.write(ROUTING.replace("  hosts: [{url}]\n", "").format(backend="memory"))
        port = servers.free_port()
        proc = start_chat(chat, routing, port)
        try:
            proc.wait_idle()
            row = hold(loadgen, port, a.one, a.hold, [proc])
        finally:
            proc.stop()
        row["name"] = "one process, in-memory layer"
        report["runs"].append(row)

    if a.many:
        redis = Redis()
        routing = os.path.join(tmp.name, "redis.yaml")
        with open(routing, "w") as f:
            f.write(ROUTING.format(backend="redis", url=redis.url))
        port = servers.free_port()
        procs = []
        try:
            for _ in range(a.processes):
                procs.append(start_chat(chat, routing, port))
            for p in procs:
                p.wait_idle()
            row = hold(loadgen, port, a.many, a.hold, procs)
            row["group_send_reached"] = group_send_across(port)
        finally:
            for p in procs:
                p.stop()
            redis.stop()
        row["name"] = f"{a.processes} processes on one port (SO_REUSEPORT), Redis layer"
        report["runs"].append(row)

    print(f"{'idle WebSockets':52} {'held':>8} {'server RSS':>11} {'per conn':>10}  sockets per process")
    ok = True
    for r in report["runs"]:
        per = r.get("rss_bytes_per_conn")
        print(f"{r['name']:52} {r['held']:>8,} {r.get('rss_mib', 0):>8.1f} MiB "
              f"{(per or 0) / 1024:>6.2f} KiB  {r.get('per_process', '-')}")
        if "group_send_reached" in r:
            print(f"  a group_send on one process reached {r['group_send_reached']} of 7 other members "
                  f"(members land on processes by the kernel's hash)")
        ok = ok and r["held"] == r["connections"] and per is not None
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
