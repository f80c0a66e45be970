"""What the project's Python tests share: free loopback ports, waiting for a
child to listen, reading a child's output with a deadline, stopping children
by their own PID, and the "N passed, N failed" line every test prints.

Imported by path: sys.path.insert(0, <tests>/support).
"""
import os
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

HOST = "127.0.0.1"


def free_port():
    """A port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(proc, port, what, timeout=10.0):
    """Until `port` accepts a connection; RuntimeError if `proc` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with code %d" % (what, proc.returncode))
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s: port %d not accepting connections after %.0f s" % (what, port, timeout))


def listening(proc, port, timeout=10.0):
    """wait_listening() as a yes or no (the reason is printed)."""
    try:
        wait_listening(proc, port, "server", timeout)
        return True
    except RuntimeError as e:
        print(e, flush=True)
        return False


def stop(proc, timeout=10.0):
    """SIGTERM to the child's PID, wait; SIGKILL only if it did not exit. Returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=timeout)


def read_line(proc, timeout=5.0):
    """One line of the child's stdout (without the newline), or None at EOF or after `timeout`.

    Reads the raw pipe a byte at a time, so nothing is left in a Python buffer
    where the next select() would not see it."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        ch = os.read(proc.stdout.fileno(), 1)
        if not ch:
            break
        if ch == b"\n":
            return buf.decode()
        buf += ch
    return None


class Checks:
    """Named checks for a script-style test, counted for its last line."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, name, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {name} {detail}", flush=True)
        return cond

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)


class _CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def run_unittests(argv, logs=(), log_tail=20000):
    """Runs the calling module's unittest cases; prints the logs [(description,
    path)] if anything failed, removes them, and prints "N passed, N failed".
    Returns the exit status."""
    runner = unittest.TextTestRunner(resultclass=_CountingResult, verbosity=2)
    program = unittest.main(module="__main__", argv=[sys.argv[0]] + list(argv), testRunner=runner, exit=False)
    result = program.result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    ok = failed == 0 and result.wasSuccessful() and result.passed > 0
    for description, path in logs:
        if not ok:
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                text = "(log unavailable)"
            sys.stderr.write("----- %s log -----\n%s\n----- end of log -----\n" % (description, text[-log_tail:]))
        try:
            os.unlink(path)
        except OSError:
            pass
    sys.stderr.flush()
    print("%d passed, %d failed" % (result.passed, failed), flush=True)
    return 0 if ok else 1
