"""Draws the benchmark results (bench/results/latest.json) as one PNG: a small
bar chart per scenario's headline figure, the three servers side by side.

Drawn by gnuplot (Debian's gnuplot-nox, cairo terminal). Not matplotlib:
on Debian 12 its dependencies reach libboost-dev, which is Boost 1.74 and
conflicts with the libboost1.81-dev this project builds with."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

COLORS = {"cppchannels": "#2a6fdb", "floor": "#8c8c8c", "daphne": "#2e9e5b"}
SERVERS = ("cppchannels", "floor", "daphne")

# (scenario key, metric label, title, log scale)
PANELS = [
    ("echo_k1", "msgs/s", "echo, 1 in flight: msgs/s", False),
    ("echo_k8", "msgs/s", "echo, 8 in flight: msgs/s", False),
    ("echo_k1", "server CPU/msg", "echo, 1 in flight: server CPU per msg (us)", False),
    ("fanout_room", "deliveries/s", "fanout room/: deliveries/s", False),
    ("fanout_multi", "lost %", "fanout, 10 publishers: messages lost (%)", False),
    ("fanout_room", "server CPU/delivery", "fanout room/: server CPU per delivery (us)", False),
    ("fanout_chat", "server CPU/delivery", "fanout ws/chat/: server CPU per delivery (us)", False),
    ("fanout_multi", "server CPU/delivery", "fanout, 10 publishers: server CPU per delivery (us)", False),
    ("rooms", "server CPU/delivery", "many rooms: server CPU per delivery (us)", False),
    ("connect", "handshakes/s", "connect: handshakes/s", False),
    ("connect", "server CPU/handshake", "connect: server CPU per handshake (us)", True),
    ("connect", "RSS/conn", "idle connection: server RSS (KiB)", False),
]


class ChartError(Exception):
    """The chart could not be drawn (the runner says so and carries on)."""


def human(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2g}"


def quoted(s):
    """A gnuplot string literal (double quotes: backslash escapes, \\n a new line)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def script(report, path, data_dir, terminal="pngcairo"):
    """The gnuplot program for `report`, its data files written to data_dir.
    The smoke test draws the same program as SVG, to read what it drew."""
    scen = {s["key"]: s for s in report["scenarios"]}
    panels = [p for p in PANELS if p[0] in scen]
    if not panels:
        return None
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    meta = report.get("meta", {})
    title = (f"cppchannels vs plain Beast (floor) vs Django Channels (daphne), one core each; "
             f"rates vary with the shared machine's load, CPU per operation much less;\n"
             f"median of {meta.get('reps', '?')}{' (quick)' if meta.get('quick') else ''}, "
             f"commit {meta.get('commit', '?')}")
    out = [
        f"set terminal {terminal} size {int(378 * cols)},{int(270 * rows + 60)} font 'DejaVu Sans,8'",
        f"set output {quoted(path)}",
        "set style fill solid 1.0 noborder",
        "set boxwidth 0.6",
        "unset key",
        "set grid ytics lc rgb '#dddddd'",
        "set border 3",
        "set tics nomirror",
        f"set multiplot layout {rows},{cols} title {quoted(title)} font 'DejaVu Sans,10'",
    ]
    for i, (key, label, panel_title, log) in enumerate(panels):
        med = scen[key]["median"]
        names = [n for n in SERVERS if n in med]
        vals = []
        for n in names:
            v = med[n].get(label)
            if v is not None and label == "RSS/conn":
                v = v / 1024
            vals.append(v if v is not None else 0)
        data = os.path.join(data_dir, f"panel{i}.dat")
        with open(data, "w") as f:
            for x, (n, v) in enumerate(zip(names, vals)):
                f.write(f"{x} {v!r} {n} {int(COLORS[n][1:], 16)} {human(v)}\n")
        top = max(vals) if vals else 0
        use_log = log and vals and all(v > 0 for v in vals)
        out += [
            f"set title {quoted(panel_title)} font 'DejaVu Sans,9'",
            f"set xrange [-0.6:{len(names) - 0.4}]",
            "set xtics (" + ", ".join(f"{quoted(n)} {x}" for x, n in enumerate(names)) + ")",
            "set logscale y" if use_log else "unset logscale y",
            # 4M rather than 4x10^6 on the axis of a rate.
            "set format y '%.0s%c'" if top >= 10000 else "set format y '%g'",
            (f"set yrange [{min(vals) / 2!r}:{top * 4!r}]" if use_log
             else f"set yrange [0:{(top * 1.18 if top > 0 else 1)!r}]"),
            # Each bar in its server's colour, its value written above it.
            f"plot {quoted(data)} using 1:2:(0.6):4 with boxes lc rgb variable, "
            f"'' using 1:2:5 with labels offset 0,0.7",
        ]
    out.append("unset multiplot")
    return "\n".join(out) + "\n"


def draw(report, path, terminal="pngcairo"):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        raise ChartError("gnuplot is missing (apt-get install gnuplot-nox)")
    with tempfile.TemporaryDirectory() as tmp:
        program = script(report, os.path.abspath(path), tmp, terminal)
        if program is None:
            return
        p = subprocess.run([gnuplot], input=program, text=True, capture_output=True, timeout=60)
        if p.returncode != 0:
            raise ChartError(f"gnuplot failed: {p.stderr.strip()[-500:]}")


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json"
    dst = sys.argv[2] if len(sys.argv) > 2 else src.rsplit(".", 1)[0] + ".png"
    with open(src) as f:
        draw(json.load(f), dst)
