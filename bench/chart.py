"""Draws the benchmark results (bench/results/latest.json) as one PNG: a small
bar chart per scenario's headline figure, the three servers side by side."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"cppchannels": "#2a6fdb", "floor": "#8c8c8c", "daphne": "#2e9e5b"}

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


def human(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2g}"


def draw(report, path):
    scen = {s["key"]: s for s in report["scenarios"]}
    panels = [p for p in PANELS if p[0] in scen]
    if not panels:
        return
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (key, label, title, log) in zip(axes.flat, panels):
        med = scen[key]["median"]
        names = [n for n in ("cppchannels", "floor", "daphne") if n in med]
        vals = []
        for n in names:
            v = med[n].get(label)
            if v is not None and label == "RSS/conn":
                v = v / 1024
            vals.append(v if v is not None else 0)
        bars = ax.bar(names, vals, color=[COLORS[n] for n in names])
        for b, v in zip(bars, vals):
            ax.annotate(human(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8)
        if log and all(v > 0 for v in vals):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.margins(y=0.15)
    meta = report.get("meta", {})
    fig.suptitle(f"cppchannels vs plain Beast (floor) vs Django Channels (daphne), one core each; "
                 f"rates vary with the shared machine's load, CPU per operation much less; "
                 f"\nmedian of {meta.get('reps', '?')}{' (quick)' if meta.get('quick') else ''}, "
                 f"commit {meta.get('commit', '?')}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json"
    dst = sys.argv[2] if len(sys.argv) > 2 else src.rsplit(".", 1)[0] + ".png"
    with open(src) as f:
        draw(json.load(f), dst)
