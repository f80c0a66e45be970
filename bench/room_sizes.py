#!/usr/bin/python3
"""Where the many-rooms gap comes from: the same connections, grouped into
rooms of different sizes.

The "many rooms" target compares 2,000 rooms of 5 with one room of 1,000 and
asks for no cost that grows with the number of groups. This holds the
connections fixed (10,000 by default: the open-files cap allows no more
than about 20,000 per process) and changes only how many members share a
room, from rooms of 1 to a single room of all of them; each room has one
publisher that sends the same burst. Then, at rooms of 5, it changes only
the number of rooms (and so of connections).

For cppchannels and the plain-Beast floor, alternating in one sitting, it
prints deliveries/s and server CPU per delivery for each size, and fits the
CPU per delivery in rooms of m members to

    cpu per delivery = per_delivery + per_message / m

by least squares over 1/m: what a publish costs once (reading the frame,
building the message, finding the group) against what each member's
delivery costs.
With that split, deliveries/s in rooms of m is 1 / (per_delivery +
per_message / m), so rooms of 5 stay within 20% of a large room only when
per_message is under a quarter of 5 x per_delivery.

    bench/room_sizes.py [--connections 10000] [--sizes 1,2,5,10,50,1000,10000]
                        [--burst 200] [--reps 3] [--servers cppchannels,floor]

Run bench/run.sh once first (it installs and builds); this reads the builds
in build/ (or --build-dir). Server on CPU 0, load generator on CPU 1.
"""
import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from report import git_commit, loadavg  # noqa: E402
from run import Fleet, run_loadgen  # noqa: E402


def fit(points):
    """Least squares of y = a + b*x over (x, y): (a, b)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None, None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--connections", type=int, default=10000, help="members in all, at every room size (10000)")
    ap.add_argument("--sizes", default="1,2,5,10,50,1000,10000", help="members per room (each divides --connections)")
    ap.add_argument("--groups-check", type=int, default=5,
                    help="room size at which the number of rooms is also varied (0: skip)")
    ap.add_argument("--burst", type=int, default=200, help="messages each room's publisher sends (200)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--servers", default="cppchannels,floor")
    ap.add_argument("--drain", type=float, default=60, help="seconds a burst may take to arrive, at most")
    ap.add_argument("--out", default="", help="write the figures as JSON here too")
    a = ap.parse_args()

    sizes = [int(s) for s in a.sizes.split(",")]
    bad = [m for m in sizes if m < 1 or a.connections % m]
    if bad:
        sys.exit(f"room sizes {bad} do not divide --connections {a.connections}: pick sizes that do")
    loadgen = os.path.join(a.build_dir, "bench", "loadgen")
    exes = {"chat": os.path.join(a.build_dir, "apps", "chat", "chat"),
            "floor": os.path.join(a.build_dir, "bench", "floor")}
    program = {"cppchannels": "chat", "floor": "floor"}
    names = [s for s in a.servers.split(",") if s]
    for n in names:
        if n not in program:
            sys.exit(f"unknown server {n!r}: choose from {', '.join(program)}")
        if not os.access(exes[program[n]], os.X_OK):
            sys.exit(f"{exes[program[n]]} is missing: run bench/run.sh (or scripts/build.sh) first")
    if not os.access(loadgen, os.X_OK):
        sys.exit(f"{loadgen} is missing: run bench/run.sh (or scripts/build.sh) first")

    # (members per room, connections): the size scan, then the group-count check.
    cases = [(m, a.connections) for m in sizes]
    g = a.groups_check
    if g and a.connections // 10 >= g and (a.connections // 10) % g == 0:
        cases.append((g, a.connections // 10))

    print(f"commit {git_commit()}, load average {loadavg()}; {a.reps} bursts of {a.burst} x 32 B per room "
          f"and case, servers alternating", flush=True)
    runs = {}  # (server, members, connections) -> [result]
    fleet = Fleet(exes, os.path.join(ROOT, "routing.yaml"), names)  # pinned, restarted if one exits
    n = 0
    try:
        for rep in range(a.reps):
            for m, conns in cases:
                for name in names:
                    srv = fleet.get(name)
                    srv.wait_idle()
                    n += 1
                    rooms = conns // m
                    url = f"ws://127.0.0.1:{srv.port}/room/sizes{n}-{{room}}/"
                    args = ["--rooms", rooms, "--connections", m, "--size", 32, "--count", rooms * a.burst,
                            "--duration", 10, "--drain", a.drain, "--idle-drain", 3]
                    r = run_loadgen(loadgen, url, "fanout", args, srv.pid)
                    if "error" in r or r.get("lost") or r.get("connect_failed"):
                        print(f"  {name}: rooms of {m} x {rooms}: failed or lost messages: "
                              f"{ {k: r.get(k) for k in ('error', 'lost', 'connect_failed', 'stderr')} }", flush=True)
                    else:
                        runs.setdefault((name, m, conns), []).append(r)
                    print(f"  rep {rep + 1} {name:<12} rooms of {m:<6} x {rooms:<6} "
                          f"{r.get('deliveries_per_s', 0) / 1e6:6.2f}M deliveries/s "
                          f"{r.get('server_cpu_us_per_op') or 0:6.3f} us/delivery", flush=True)
    finally:
        fleet.stop()

    def med(name, m, conns, key):
        vals = [r[key] for r in runs.get((name, m, conns), []) if isinstance(r.get(key), (int, float))]
        return statistics.median(vals) if vals else None

    report = {"commit": git_commit(), "connections": a.connections, "burst": a.burst, "reps": a.reps, "servers": {}}
    print()
    head = f"{'members per room':<28}" + "".join(f"{n + ' rate':>18}{'us/delivery':>12}{'x largest':>10}" for n in names)
    print(head)
    print("-" * len(head))
    largest = max(sizes)
    for m, conns in cases:
        k = conns // m
        label = f"{m} ({k} room{'s' if k != 1 else ''}" + (f", {conns} conns)" if conns != a.connections else ")")
        line = f"{label:<28}"
        for name in names:
            rate, cpu = med(name, m, conns, "deliveries_per_s"), med(name, m, conns, "server_cpu_us_per_op")
            top = med(name, largest, a.connections, "deliveries_per_s")
            line += f"{(f'{rate / 1e6:.2f}M' if rate else '-'):>18}{(f'{cpu:.3f}' if cpu else '-'):>12}"
            line += f"{(f'{rate / top:.2f}x' if rate and top else '-'):>10}"
            report["servers"].setdefault(name, {}).setdefault("cases", []).append(
                {"members": m, "connections": conns, "deliveries_per_s": rate, "cpu_us_per_delivery": cpu})
        print(line)
    print()
    for name in names:
        # Over 1/m, so that each size weighs alike (CPU per message in a room
        # of 10,000 is thousands of us, and would swamp the small rooms). The
        # fit is over the sizes only: the group-count case has other connections.
        pts = [(1 / m, cpu) for m in sizes if (cpu := med(name, m, a.connections, "server_cpu_us_per_op"))]
        per_del, per_msg = fit(pts) if len(set(x for x, _ in pts)) >= 2 else (None, None)
        if per_del is None:
            print(f"{name}: too few sizes measured to fit")
            continue
        five = 1 / (per_del + per_msg / 5) if per_del + per_msg / 5 > 0 else None
        print(f"{name}: CPU per published message = {per_msg:.2f} us + members x {per_del:.3f} us "
              f"(rooms of 5 at {per_del * 5 / (per_del * 5 + per_msg):.2f}x of an unbounded room by this fit"
              f"{f', {five:.2f}M deliveries/s' if five else ''})")
        report["servers"][name].update(per_message_us=per_msg, per_delivery_us=per_del)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)
    missing = [(n, m, c) for n in names for m, c in cases if (n, m, c) not in runs]
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
