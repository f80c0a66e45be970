"""Formatting and context shared by the benchmark runners (run.py, redis_bench.py)."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fmt(v, unit=""):
    if v is None:
        return "-"
    if unit == "us":
        if v >= 10000:
            return f"{v / 1000:.2f} ms"
        # CPU per delivery is a fraction of a microsecond: two decimals there.
        return f"{v:.0f} us" if v >= 100 else f"{v:.1f} us" if v >= 1 else f"{v:.2f} us"
    if unit == "%":
        return f"{v:.1f}%"
    if unit == "B":
        return f"{v / 1024:.1f} KiB" if v >= 1024 else f"{v:.0f} B"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:.2f}"


def loadavg():
    """The 1-minute load average: how busy the shared machine was."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
