#!/usr/bin/python3
"""Interoperability tests: the chat app against an independent WebSocket client.

The client is Debian's python3-websockets (10.x, asyncio API), so run this
file with the system interpreter that can import it:

    /usr/bin/python3 tests/interop/test_chat_websockets.py \
        --chat build/apps/chat/chat --routing routing.yaml [unittest args]

CHAT_BIN and CHAT_ROUTING may be used instead of --chat and --routing.
The last line printed is "N passed, N failed"; the exit status is 0 only if
every test passed.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from procs import free_port, run_unittests, wait_listening  # noqa: E402

try:
    import websockets
    import websockets.exceptions
except ImportError:  # pragma: no cover - depends on the interpreter
    sys.stderr.write("this test needs python3-websockets: run it with /usr/bin/python3\n")
    sys.exit(2)

HOST = "127.0.0.1"
MAX_MESSAGE_BYTES = 1024 * 1024  # server.max_message_bytes in routing.yaml
START_TIMEOUT = 10.0  # seconds for a started server to accept connections
STOP_TIMEOUT = 10.0  # seconds for a SIGTERM'd server to exit
STEP_TIMEOUT = 5.0  # seconds for one send/receive round trip

CHAT_BIN = os.environ.get("CHAT_BIN")
CHAT_ROUTING = os.environ.get("CHAT_ROUTING")

# Every server this module started: (description, log path). Their logs are
# printed at the end if a test failed.
SERVER_LOGS = []


class ChatServer:
    """One chat process on 127.0.0.1, stopped by its own PID."""

    def __init__(self, description):
        self.description = description
        self.port = None
        self.proc = None
        self.log_path = None
        self._log = None

    def start(self):
        if not CHAT_BIN or not os.access(CHAT_BIN, os.X_OK):
            raise RuntimeError("chat binary not found or not executable: %r "
                               "(pass --chat or set CHAT_BIN)" % (CHAT_BIN,))
        if not CHAT_ROUTING or not os.path.isfile(CHAT_ROUTING):
            raise RuntimeError("routing file not found: %r "
                               "(pass --routing or set CHAT_ROUTING)" % (CHAT_ROUTING,))
        fd, self.log_path = tempfile.mkstemp(prefix="chat-interop-", suffix=".log")
        self._log = os.fdopen(fd, "wb")
        SERVER_LOGS.append((self.description, self.log_path))
        last_error = None
        for _attempt in range(3):  # the free port may be taken before we bind it
            self.port = free_port()
            self.proc = subprocess.Popen(
                [CHAT_BIN, "--routing", CHAT_ROUTING, "--bind", HOST,
                 "--port", str(self.port), "--threads", "2", "--log-level", "info"],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
            try:
                wait_listening(self.proc, self.port, self.description, START_TIMEOUT)
                return self
            except RuntimeError as exc:
                last_error = exc
                self.stop()
        raise RuntimeError("%s did not start: %s\n%s" % (self.description, last_error, self.log_text()))

    def terminate(self):
        """Sends SIGTERM to this server's PID (if it is still running)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self):
        """SIGTERM, wait; SIGKILL by PID only if it did not exit. Returns the exit code."""
        if self.proc is None:
            return None
        self.terminate()
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        return code

    def close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self):
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def ws_url(self, path):
        return "ws://%s:%d/%s" % (HOST, self.port, path)

    def http_url(self, path):
        return "http://%s:%d/%s" % (HOST, self.port, path)


SERVER = None


def setUpModule():
    global SERVER
    SERVER = ChatServer("shared chat server")
    SERVER.start()


def tearDownModule():
    if SERVER is not None:
        SERVER.stop()
        SERVER.close_log()


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def connect(url, **kwargs):
    # open_timeout bounds the handshake; max_size lets the client receive
    # anything the server may echo.
    kwargs.setdefault("open_timeout", STEP_TIMEOUT)
    kwargs.setdefault("close_timeout", STEP_TIMEOUT)
    kwargs.setdefault("max_size", 4 * MAX_MESSAGE_BYTES)
    return websockets.connect(url, **kwargs)


async def recv(ws, timeout=STEP_TIMEOUT):
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_json(ws, timeout=STEP_TIMEOUT):
    frame = await recv(ws, timeout)
    assert isinstance(frame, str), "expected a text frame, got %r" % (frame[:80],)
    return json.loads(frame)


async def expect_close(ws, timeout=STEP_TIMEOUT):
    """Reads until the server closes; returns (close code, frames read before)."""
    frames = []
    try:
        for _ in range(100):
            frames.append(await recv(ws, timeout))
    except websockets.exceptions.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else exc.code
        return code, frames
    raise AssertionError("connection still open after 100 frames: %r" % (frames[:5],))


class ChatRoomTests(unittest.IsolatedAsyncioTestCase):

    async def test_room_members_receive_message_other_room_does_not(self):
        room, other = unique("room"), unique("other")
        async with connect(SERVER.ws_url("ws/chat/%s/" % room)) as alice, \
                connect(SERVER.ws_url("ws/chat/%s/" % room)) as bob, \
                connect(SERVER.ws_url("ws/chat/%s/" % other)) as carol:
            text = "hello from alice \u00e9\u2603 <b>&"
            await alice.send(json.dumps({"message": text}))
            self.assertEqual(await recv_json(alice), {"message": text})
            self.assertEqual(await recv_json(bob), {"message": text})
            # Carol is in another room: nothing arrives.
            with self.assertRaises(asyncio.TimeoutError):
                got = await recv(carol, timeout=0.5)
                self.fail("client in another room received %r" % (got,))
            # Carol's own room still works, and Alice's message never shows up late.
            await carol.send(json.dumps({"message": "carol here"}))
            self.assertEqual(await recv_json(carol), {"message": "carol here"})
            # Nor does Carol's message reach Alice's room.
            await bob.send(json.dumps({"message": "bob here"}))
            self.assertEqual(await recv_json(alice), {"message": "bob here"})
            self.assertEqual(await recv_json(bob), {"message": "bob here"})

    async def test_invalid_json_closes_1007(self):
        async with connect(SERVER.ws_url("ws/chat/x/")) as ws:
            await ws.send('{"message": "unterminated')
            code, frames = await expect_close(ws)
            self.assertEqual(code, 1007, "frames before close: %r" % (frames,))

    async def test_binary_frame_closes_1003(self):
        async with connect(SERVER.ws_url("ws/chat/x/")) as ws:
            await ws.send(b'{"message": "binary"}')
            code, frames = await expect_close(ws)
            self.assertEqual(code, 1003, "frames before close: %r" % (frames,))

    async def test_object_without_message_gets_error_and_stays_open(self):
        room = unique("err")
        async with connect(SERVER.ws_url("ws/chat/%s/" % room)) as ws:
            await ws.send(json.dumps({"nomessage": 1}))
            reply = await recv_json(ws)
            self.assertIsInstance(reply, dict)
            self.assertIn("error", reply)
            self.assertNotIn("message", reply)
            await ws.send(json.dumps({"message": 5}))  # not a string either
            reply = await recv_json(ws)
            self.assertIn("error", reply)
            await ws.send(json.dumps({"message": "still here"}))
            self.assertEqual(await recv_json(ws), {"message": "still here"})
            self.assertIsNone(ws.close_code)


class GroupRoomTests(unittest.IsolatedAsyncioTestCase):
    CLIENTS = 20
    MESSAGES = 50

    async def test_every_client_gets_every_message_in_sender_order(self):
        n, m = self.CLIENTS, self.MESSAGES
        url = SERVER.ws_url("room/%s/" % unique("grp"))
        clients = []
        receivers = []
        received = [[] for _ in range(n)]  # frames per client, as they arrive
        try:
            for _ in range(n):
                clients.append(await connect(url))

            async def receive_all(client, ws):
                for _ in range(n * m):
                    received[client].append(await ws.recv())

            async def send_all(sender, ws):
                for seq in range(m):
                    await ws.send("s%d:%d" % (sender, seq))

            receivers.extend(asyncio.ensure_future(receive_all(i, ws)) for i, ws in enumerate(clients))
            await asyncio.wait_for(asyncio.gather(*(send_all(i, ws) for i, ws in enumerate(clients))), 20)

            # Wait for every receiver: at most 20 s, and give up after 3 s
            # without a single new frame (whatever is missing is not coming).
            deadline = time.monotonic() + 20
            last_total, last_progress = -1, time.monotonic()
            while time.monotonic() < deadline:
                if all(r.done() for r in receivers):
                    break
                total = sum(len(r) for r in received)
                if total != last_total:
                    last_total, last_progress = total, time.monotonic()
                elif time.monotonic() - last_progress > 3:
                    break
                await asyncio.sleep(0.05)
            for r in receivers:
                if r.done() and r.exception() is not None:
                    raise r.exception()
            if not all(r.done() for r in receivers):
                counts = [len(r) for r in received]
                short = [i for i in range(n) if counts[i] < n * m]
                expected = {"s%d:%d" % (i, q) for i in range(n) for q in range(m)}
                missing = sorted(expected - set(received[short[0]]),
                                 key=lambda t: tuple(int(x) for x in t[1:].split(":")))
                self.fail("%d of %d clients did not receive all %d messages (sent by %d clients x %d); "
                          "frames received per client: %r; client %d is missing %d, e.g. %r"
                          % (len(short), n, n * m, n, m, counts, short[0], len(missing), missing[:10]))

            for client, got in enumerate(received):
                self.assertEqual(len(got), n * m)
                last = [-1] * n
                for frame in got:
                    self.assertIsInstance(frame, str, "client %d got a binary frame" % client)
                    match = re.fullmatch(r"s(\d+):(\d+)", frame)
                    self.assertIsNotNone(match, "client %d got %r" % (client, frame))
                    sender, seq = int(match.group(1)), int(match.group(2))
                    self.assertEqual(seq, last[sender] + 1,
                                     "client %d: from sender %d got seq %d after %d"
                                     % (client, sender, seq, last[sender]))
                    last[sender] = seq
                self.assertEqual(last, [m - 1] * n, "client %d" % client)
            # Nothing beyond the n*m messages.
            with self.assertRaises(asyncio.TimeoutError):
                extra = await recv(clients[0], timeout=0.3)
                self.fail("extra message %r" % (extra,))
        finally:
            for r in receivers:
                r.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
            await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


class EchoTests(unittest.IsolatedAsyncioTestCase):

    async def test_text_stays_text_binary_stays_binary(self):
        big_binary = os.urandom(64 * 1024)
        big_text = "\u00e9a" * (32 * 1024)
        cases = ["hello", "", "\u2603 unicode \U0001F600", big_text,
                 b"\x00\x01\xfe\xff", b"", big_binary]
        async with connect(SERVER.ws_url("ws/echo/")) as ws:
            for sent in cases:
                await ws.send(sent)
                got = await recv(ws)
                self.assertIs(type(got), type(sent),
                              "sent %s of %d, got %s" % (type(sent).__name__, len(sent), type(got).__name__))
                self.assertEqual(got, sent)

    async def test_oversized_binary_message_closes_1009(self):
        await self._oversized(b"x" * (MAX_MESSAGE_BYTES + 1))

    async def test_oversized_text_message_closes_1009(self):
        await self._oversized("y" * (MAX_MESSAGE_BYTES + 1))

    async def _oversized(self, payload):
        async with connect(SERVER.ws_url("ws/echo/")) as ws:
            try:
                await asyncio.wait_for(ws.send(payload), STEP_TIMEOUT)
            except websockets.exceptions.ConnectionClosed:
                pass  # the server may close before it has read everything
            code, frames = await expect_close(ws)
            self.assertEqual(code, 1009, "frames before close: %r" % ([f[:20] for f in frames],))
            self.assertEqual(ws.close_code, 1009)

    async def test_message_at_limit_is_echoed(self):
        payload = os.urandom(MAX_MESSAGE_BYTES)
        async with connect(SERVER.ws_url("ws/echo/")) as ws:
            await ws.send(payload)
            got = await recv(ws, timeout=10)
            self.assertEqual(got, payload)


class HandshakeTests(unittest.IsolatedAsyncioTestCase):

    async def _status(self, path):
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
            async with connect(SERVER.ws_url(path)):
                pass
        return cm.exception.status_code

    async def test_unknown_path_404(self):
        self.assertEqual(await self._status("ws/nope/"), 404)

    async def test_bad_room_name_403(self):
        self.assertEqual(await self._status("ws/chat/bad%20room/"), 403)


class ShutdownTests(unittest.IsolatedAsyncioTestCase):

    async def test_sigterm_closes_1001_and_exits_0(self):
        server = ChatServer("shutdown test server")
        server.start()
        try:
            async with connect(server.ws_url("ws/chat/%s/" % unique("bye"))) as ws:
                await ws.send(json.dumps({"message": "before shutdown"}))
                self.assertEqual(await recv_json(ws), {"message": "before shutdown"})
                server.terminate()
                code, frames = await expect_close(ws, timeout=STOP_TIMEOUT)
                self.assertEqual(code, 1001, "frames before close: %r" % (frames,))
            deadline = time.monotonic() + STOP_TIMEOUT
            while server.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self.assertIsNotNone(server.proc.poll(), "server still running %.0f s after SIGTERM" % STOP_TIMEOUT)
            self.assertEqual(server.proc.returncode, 0)
        finally:
            server.stop()
            server.close_log()

    async def test_sigterm_during_traffic_closes_every_client_1001_within_drain_timeout(self):
        drain_timeout = 5.0  # server.drain_timeout in routing.yaml
        server = ChatServer("shutdown-under-traffic server")
        server.start()
        try:
            rooms = [unique("busy") for _ in range(4)]
            clients = [await connect(server.ws_url("ws/chat/%s/" % rooms[i % 4])) for i in range(20)]
            stop_sending = asyncio.Event()

            async def talk(ws, n):
                # Sends and reads until the server closes; returns its close code.
                async def send_loop():
                    i = 0
                    while not stop_sending.is_set() and i < 10000:
                        try:
                            await ws.send(json.dumps({"message": "c%d m%d" % (n, i)}))
                        except websockets.exceptions.ConnectionClosed:
                            return
                        i += 1
                        await asyncio.sleep(0.005)
                sender = asyncio.ensure_future(send_loop())
                try:
                    for _ in range(1000000):
                        await recv(ws, STOP_TIMEOUT)
                except websockets.exceptions.ConnectionClosed as exc:
                    return exc.rcvd.code if exc.rcvd is not None else exc.code
                except asyncio.TimeoutError:
                    return "still open %.0f s after SIGTERM" % STOP_TIMEOUT
                finally:
                    stop_sending.set()
                    await sender

            talkers = [asyncio.ensure_future(talk(ws, n)) for n, ws in enumerate(clients)]
            await asyncio.sleep(0.5)  # traffic flowing in every room
            started = time.monotonic()
            server.terminate()
            codes = await asyncio.gather(*talkers)
            while server.proc.poll() is None and time.monotonic() - started < STOP_TIMEOUT:
                await asyncio.sleep(0.05)
            took = time.monotonic() - started
            self.assertEqual(codes, [1001] * len(clients))
            self.assertIsNotNone(server.proc.poll(), "server still running %.0f s after SIGTERM" % STOP_TIMEOUT)
            self.assertEqual(server.proc.returncode, 0)
            self.assertLess(took, drain_timeout + 1.0, "exit took %.1f s, drain timeout is %.0f s" % (took, drain_timeout))
            for ws in clients:
                await ws.close()
        finally:
            server.stop()
            server.close_log()


class OriginTests(unittest.IsolatedAsyncioTestCase):
    """routing.yaml's allowed_origins: a page from another site may not open the chat's socket."""

    async def test_other_site_is_refused_403(self):
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
            async with connect(SERVER.ws_url("ws/chat/lobby/"), origin="https://evil.example"):
                pass
        self.assertEqual(cm.exception.status_code, 403)

    async def test_own_origin_is_accepted(self):
        origin = "http://%s:%d" % (HOST, SERVER.port)
        async with connect(SERVER.ws_url("ws/chat/%s/" % unique("origin")), origin=origin) as ws:
            await ws.send(json.dumps({"message": "same site"}))
            self.assertEqual(await recv_json(ws), {"message": "same site"})


class HttpTests(unittest.TestCase):

    def get(self, path):
        with urllib.request.urlopen(SERVER.http_url(path), timeout=STEP_TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read().decode("utf-8")

    def test_lobby_page(self):
        status, headers, body = self.get("chat/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers.get("Content-Type", ""))
        self.assertRegex(body, r'id="room-name-input"')
        self.assertRegex(body, r'id="room-name-submit"')

    def test_room_page_escapes_room_name(self):
        status, _, body = self.get("chat/lo%3Cb%3Eby/")
        self.assertEqual(status, 200)
        for element in ("chat-log", "chat-message-input", "chat-message-submit"):
            self.assertIn('id="%s"' % element, body)
        match = re.search(r'<script id="room-name" type="application/json">(.*?)</script>', body, re.S)
        self.assertIsNotNone(match, "no room-name script element")
        embedded = match.group(1)
        self.assertNotIn("<", embedded)
        self.assertNotIn(">", embedded)
        self.assertNotIn("<b>", body)
        self.assertRegex(embedded, r"\\u003[cC]")
        self.assertEqual(json.loads(embedded), "lo<b>by")

    def test_plain_room_page(self):
        status, _, body = self.get("chat/lobby/")
        self.assertEqual(status, 200)
        match = re.search(r'<script id="room-name" type="application/json">(.*?)</script>', body, re.S)
        self.assertIsNotNone(match)
        self.assertEqual(json.loads(match.group(1)), "lobby")

    def test_unknown_path_404(self):
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.get("nope")
        self.assertEqual(cm.exception.code, 404)
        cm.exception.close()


def main():
    global CHAT_BIN, CHAT_ROUTING
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--chat", default=CHAT_BIN)
    parser.add_argument("--routing", default=CHAT_ROUTING)
    args, rest = parser.parse_known_args()
    CHAT_BIN = os.path.abspath(args.chat) if args.chat else None
    CHAT_ROUTING = os.path.abspath(args.routing) if args.routing else None

    return run_unittests(rest, SERVER_LOGS)


if __name__ == "__main__":
    sys.exit(main())
