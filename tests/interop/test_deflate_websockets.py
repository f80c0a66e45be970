#!/usr/bin/python3
"""permessage-deflate (RFC 7692) with an independent client: Debian's
python3-websockets, which offers compression by default.

    /usr/bin/python3 tests/interop/test_deflate_websockets.py --chat build/apps/chat/chat

Starts the chat app twice on free loopback ports, with `permessage_deflate`
on and off in a routing file of its own, and checks that compression is
negotiated only when it is on, and that messages (small, large and
compressible, binary, incompressible) come back intact either way. The
last line printed is "N passed, N failed".
"""

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from procs import free_port  # noqa: E402

try:
    import websockets
    from websockets.extensions.permessage_deflate import PerMessageDeflate
except ImportError:  # pragma: no cover - depends on the interpreter
    sys.stderr.write("this test needs python3-websockets: run it with /usr/bin/python3\n")
    sys.exit(2)

HOST = "127.0.0.1"
CHAT_BIN = None
TIMEOUT = 10.0


class Chat:
    """The chat app with its echo route and the given deflate setting, stopped by PID."""

    def __init__(self, deflate):
        self.dir = tempfile.TemporaryDirectory(prefix="deflate-interop-")
        self.port = free_port()
        routing = os.path.join(self.dir.name, "routing.yaml")
        with open(routing, "w") as f:
            f.write("server:\n  port: %d\n  threads: 2\n  max_message_bytes: 4MiB\n"
                    "  permessage_deflate: %s\n"
                    "websocket:\n  - path: ws/echo/\n    consumer: chat.EchoConsumer\n"
                    % (self.port, deflate))
        self.log = open(os.path.join(self.dir.name, "chat.log"), "wb")
        self.proc = subprocess.Popen([CHAT_BIN, "--routing", routing, "--log-level", "warn"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("chat did not start on port %d" % self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.dir.cleanup()

    @property
    def url(self):
        return "ws://%s:%d/ws/echo/" % (HOST, self.port)


MESSAGES = [
    "hello",
    "",
    "caf\u00e9 \u03ba\u03cc\u03c3\u03bc\u03b5 " * 1000,           # compressible text
    bytes(range(256)) * 64,                                        # binary
    os.urandom(200_000),                                           # incompressible
    "x" * 3_000_000,                                               # large, near the limit once inflated
]


async def echo_all(url, **connect_args):
    async with websockets.connect(url, max_size=8 * 1024 * 1024, open_timeout=TIMEOUT, **connect_args) as ws:
        extensions = [type(e).__name__ for e in ws.extensions]
        for m in MESSAGES:
            await ws.send(m)
            back = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if back != m:
                raise AssertionError("echo differs for a %s of %d" % (type(m).__name__, len(m)))
        header = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        return extensions, header


class DeflateOn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.chat = Chat("true")

    @classmethod
    def tearDownClass(cls):
        cls.chat.stop()

    def test_negotiated_when_offered_and_messages_intact(self):
        extensions, header = asyncio.run(echo_all(self.chat.url))
        self.assertEqual(extensions, ["PerMessageDeflate"])
        self.assertIn("permessage-deflate", header)
        # The server bounds its window (12 bits by default) and says so.
        self.assertIn("server_max_window_bits=12", header)

    def test_not_negotiated_when_the_client_does_not_offer_it(self):
        extensions, header = asyncio.run(echo_all(self.chat.url, compression=None))
        self.assertEqual(extensions, [])
        self.assertEqual(header, "")

    def test_client_without_context_takeover(self):
        from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
        factory = ClientPerMessageDeflateFactory(client_no_context_takeover=True, server_no_context_takeover=True)
        extensions, header = asyncio.run(echo_all(self.chat.url, extensions=[factory], compression=None))
        self.assertEqual(extensions, ["PerMessageDeflate"])
        self.assertIn("server_no_context_takeover", header)

    def test_a_compressed_bomb_is_closed_with_1009(self):
        async def bomb():
            async with websockets.connect(self.chat.url, open_timeout=TIMEOUT) as ws:
                await ws.send("z" * (5 * 1024 * 1024))  # a few KiB on the wire, 5 MiB inflated
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                return closed.exception.rcvd.code
        self.assertEqual(asyncio.run(bomb()), 1009)


class DeflateOff(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.chat = Chat("false")

    @classmethod
    def tearDownClass(cls):
        cls.chat.stop()

    def test_offer_declined_and_messages_intact(self):
        extensions, header = asyncio.run(echo_all(self.chat.url))
        self.assertEqual(extensions, [])
        self.assertEqual(header, "")


def main():
    global CHAT_BIN
    parser = argparse.ArgumentParser()
    parser.add_argument("--chat", required=True)
    args, rest = parser.parse_known_args()
    CHAT_BIN = os.path.abspath(args.chat)
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
