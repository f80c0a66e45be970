"""Starting and stopping the servers under test (cppchannels' chat app, the
plain-Beast floor, Django Channels under daphne) for the benchmark runner and
the smoke test. Every server is started on a free loopback port, optionally
pinned to CPUs with taskset, and stopped by its own PID (SIGTERM, then SIGKILL)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DAPHNE_DIR = os.path.join(HERE, "daphne")
PYTHON = "/usr/bin/python3"  # Debian's: the one that sees daphne and channels


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd, cpus):
    """cmd under `taskset -c cpus` (taskset execs it: the PID stays the server's)."""
    if cpus is None or not shutil.which("taskset"):
        return cmd
    return ["taskset", "-c", str(cpus), *cmd]


class Server:
    def __init__(self, name, cmd, port, cwd=None, env=None, ready_timeout=30):
        self.name = name
        self.port = port
        self.log = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        try:
            self._wait_ready(ready_timeout)
        except Exception:
            self.stop()
            raise

    def _wait_ready(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within {timeout} s:\n{self.output()}")

    def output(self, limit=4000):
        self.log.flush()
        self.log.seek(0)
        data = self.log.read().decode(errors="replace")
        return data[-limit:]

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        """User + system CPU time the server has used so far: the sum of its
        threads' /proc/<pid>/task/*/schedstat (nanoseconds), else
        /proc/<pid>/stat (clock ticks of 10 ms, coarse for a short burst)."""
        try:
            total, found = 0, False
            for task in os.listdir(f"/proc/{self.pid}/task"):
                try:
                    with open(f"/proc/{self.pid}/task/{task}/schedstat") as f:
                        total += int(f.read().split()[0])
                        found = True
                except (OSError, IndexError, ValueError):
                    pass  # a thread that just exited
            if found:
                return total / 1e9
        except OSError:
            pass
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def rss_kb(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def wait_idle(self, quiet=0.3, limit=15.0):
        """Waits until the server used (almost) no CPU for `quiet` seconds:
        the previous run's disconnects are done. Bounded by `limit`."""
        end = time.monotonic() + limit
        last = self.cpu_seconds()
        while time.monotonic() < end:
            time.sleep(quiet)
            now = self.cpu_seconds()
            if now - last < 0.02:
                return True
            last = now
        return False

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def start_chat(exe, routing, threads=1, cpus=None, log_level="warn"):
    port = free_port()
    cmd = pinned([exe, "--routing", routing, "--bind", "127.0.0.1", "--port", str(port),
                  "--threads", str(threads), "--log-level", log_level], cpus)
    # routing.yaml names templates relative to the project root.
    return Server("cppchannels", cmd, port, cwd=os.path.dirname(os.path.abspath(routing)))


def start_floor(exe, threads=1, cpus=None):
    port = free_port()
    cmd = pinned([exe, "--bind", "127.0.0.1", "--port", str(port), "--threads", str(threads)], cpus)
    return Server("floor", cmd, port)


def start_daphne(cpus=None):
    port = free_port()
    # -v 0: no access log line per connection (cppchannels runs at warn too).
    cmd = pinned([PYTHON, "-m", "daphne", "-v", "0",
                  "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
                  "benchproj.asgi:application"], cpus)
    env = dict(os.environ, PYTHONPATH=DAPHNE_DIR, DJANGO_SETTINGS_MODULE="benchproj.settings")
    return Server("daphne", cmd, port, cwd=DAPHNE_DIR, env=env, ready_timeout=60)
