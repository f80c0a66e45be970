#!/usr/bin/python3
"""The deployment in deploy/, for real: nginx in front of two chat processes
on one redis-server, all started by deploy/chat-deploy.sh on free loopback
ports and stopped by their PIDs.

Clients connect through nginx and land on both processes (each hello names
the process); they chat, share presence and history; then one process is
killed and its clients reconnect (through nginx, to the other) and find every
message that had been acknowledged (an ack means: stored in the room's
history). A member of the dead process that does not come back expires from
presence, and the room is told.

Run with the system interpreter (Debian's python3-websockets):
  /usr/bin/python3 test_nginx_deploy.py --chat build/apps/chat/chat
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

try:
    import websockets
    import websockets.exceptions
except ImportError:
    sys.exit("this test needs Python's websockets: apt-get install python3-websockets, and run it with /usr/bin/python3")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(ROOT, "deploy", "chat-deploy.sh")
STEP = 8.0  # seconds for one step to happen
CHAT = None
RUN = None
PORTS = {}


def setUpModule():
    global RUN
    env = dict(os.environ, CHAT=CHAT)
    out = subprocess.run([DEPLOY, "start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("chat-deploy.sh start failed:\n" + out.stderr)
    RUN = out.stdout.strip().splitlines()[-1]
    with open(os.path.join(RUN, "ports")) as f:
        for line in f:
            k, v = line.strip().split("=")
            PORTS[k] = int(v)


def tearDownModule():
    if not RUN:
        return
    subprocess.run([DEPLOY, "stop", RUN], timeout=60)
    # The logs' ends, for a failure (ctest shows a test's output only then).
    for name in ("nginx-error.log", "chat1.log", "chat2.log", "redis.log"):
        path = os.path.join(RUN, name)
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                print("--- %s (end) ---\n%s" % (name, "".join(f.readlines()[-15:])))
    shutil.rmtree(RUN, ignore_errors=True)


def url(path, scheme="ws"):
    return "%s://127.0.0.1:%d/%s" % (scheme, PORTS["NGINX_PORT"], path)


class Client:
    """A chat client like the room page: joins with a name and a member id,
    reads every frame into `frames`, and reconnects with back-off."""

    def __init__(self, room, name):
        self.room, self.name = room, name
        self.member = "m-" + name.lower()
        self.frames = []
        self.hellos = []
        self.ws = None
        self.reader = None
        self.next_ref = 1

    async def connect(self, timeout=STEP):
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            try:
                self.ws = await websockets.connect(url("ws/chat/%s/" % self.room), open_timeout=2, close_timeout=1)
                break
            except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.reader = asyncio.ensure_future(self._read(self.ws))
        await self.ws.send(json.dumps({"type": "join", "name": self.name, "member": self.member}))
        count = len(self.hellos)
        await self.wait(lambda: len(self.hellos) > count, "a hello")
        return self.hellos[-1]

    async def _read(self, ws):
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "hello":
                    self.hellos.append(frame)
                self.frames.append(frame)
        except websockets.exceptions.ConnectionClosed:
            pass

    @property
    def server(self):
        return self.hellos[-1]["server"]

    async def wait(self, predicate, what, timeout=STEP):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("%s (on %s) did not get %s in %.0f s; last frames: %r"
                                     % (self.name, self.hellos[-1]["server"] if self.hellos else "no server",
                                        what, timeout, self.frames[-5:]))
            await asyncio.sleep(0.02)

    def has_message(self, text):
        return any(f.get("message") == text and "event" not in f for f in self.frames)

    def has_event(self, event, member, since=0):
        return any(f.get("event") == event and f["member"]["id"] == member for f in self.frames[since:])

    async def say(self, text):
        """Sends and waits for the ack; returns the message's id."""
        ref = self.next_ref
        self.next_ref += 1
        await self.ws.send(json.dumps({"message": text, "ref": ref}))
        await self.wait(lambda: any(f.get("type") == "ack" and f.get("ref") == ref for f in self.frames),
                        "the ack of %r" % text)
        return next(f["id"] for f in self.frames if f.get("type") == "ack" and f.get("ref") == ref)

    async def closed(self, timeout=STEP):
        await asyncio.wait_for(asyncio.shield(self.reader), timeout)

    async def close(self):
        if self.ws:
            await self.ws.close()
        if self.reader:
            await self.reader


def http_get(path):
    with urllib.request.urlopen(url(path, "http"), timeout=STEP) as resp:
        return resp.headers.get("X-Chat-Upstream"), resp.read().decode()


class DeploymentTest(unittest.IsolatedAsyncioTestCase):

    async def test_two_processes_behind_nginx(self):
        chat_ports = {PORTS["CHAT1_PORT"], PORTS["CHAT2_PORT"]}

        # Plain HTTP is balanced too: nginx names the upstream that answered.
        upstreams = {int(http_get("chat/")[0].rsplit(":", 1)[1]) for _ in range(4)}
        self.assertEqual(upstreams, chat_ports, "nginx sent every page to one process")

        # Four members; round robin puts them on both processes.
        room = "deploy"
        clients = [Client(room, n) for n in ("Alice", "Bob", "Carol", "Dave")]
        try:
            for c in clients:
                await c.connect()
            servers = [c.server for c in clients]
            self.assertEqual(set(servers), {"chat1", "chat2"}, "clients landed on %r" % servers)

            # Presence across processes: the last one sees all four, the first hears of the others.
            self.assertEqual(sorted(m["name"] for m in clients[-1].hellos[-1]["online"]),
                             ["Alice", "Bob", "Carol", "Dave"])
            for other in clients[1:]:
                await clients[0].wait(lambda: clients[0].has_event("join", other.member), "%s's join" % other.name)
            _, body = http_get("chat/api/rooms/")
            self.assertIn({"room": room, "online": 4}, json.loads(body))

            # Chat across processes: everyone gets everyone's message.
            for c in clients:
                await c.say("hello from " + c.name)
            for c in clients:
                for other in clients:
                    await c.wait(lambda: c.has_message("hello from " + other.name),
                                 "%s's message" % other.name)

            # History is shared: a newcomer (on whichever process) gets the messages.
            eve = Client(room, "Eve")
            history = [m["message"] for m in (await eve.connect())["history"]]
            self.assertEqual(history, ["hello from " + c.name for c in clients])
            await eve.close()
            for c in clients:
                await c.wait(lambda: c.has_event("leave", eve.member), "Eve's leave")

            # A member on chat1 that will not come back when chat1 dies.
            frank = None
            for _ in range(4):
                candidate = Client(room, "Frank")
                await candidate.connect()
                if candidate.server == "chat1":
                    frank = candidate
                    break
                await candidate.close()
            self.assertIsNotNone(frank, "four tries and Frank never landed on chat1")

            # Acknowledged messages, from both processes.
            acked = {}
            for i in range(5):
                for c in clients:
                    text = "%s %d" % (c.name, i)
                    acked[await c.say(text)] = text

            # chat1 dies without a goodbye.
            seen_before_kill = {c.name: len(c.frames) for c in clients}
            with open(os.path.join(RUN, "chat1.pid")) as f:
                os.kill(int(f.read()), signal.SIGKILL)
            moved = [c for c in clients if c.server == "chat1"]
            stayed = [c for c in clients if c.server == "chat2"]
            for c in moved:
                await c.closed()
            # They reconnect through nginx: to chat2, with everything acked in the history.
            for c in moved:
                hello = await c.connect(timeout=15)
                self.assertEqual(hello["server"], "chat2")
                got = {m["id"]: m["message"] for m in hello["history"]}
                lost = {i: t for i, t in acked.items() if got.get(i) != t}
                self.assertEqual(lost, {}, "%s reconnected and these acked messages are missing" % c.name)
                self.assertEqual(sorted(m["name"] for m in hello["online"]),
                                 ["Alice", "Bob", "Carol", "Dave", "Frank"])

            # They chat again with those who stayed.
            await moved[0].say("back from " + moved[0].name)
            for c in stayed + moved:
                await c.wait(lambda: c.has_message("back from " + moved[0].name), "the message after the move")

            # Frank's entry expires (nothing touches it now) and the room hears he left.
            started = time.monotonic()
            for c in clients:
                await c.wait(lambda: c.has_event("leave", frank.member, seen_before_kill[c.name]),
                             "Frank's expiry", timeout=40)
            _, body = http_get("chat/api/rooms/")
            self.assertIn({"room": room, "online": 4}, json.loads(body))
            print("Frank expired %.1f s after chat1 was killed" % (time.monotonic() - started))
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chat", required=True, help="the chat binary")
    args, rest = parser.parse_known_args()
    CHAT = os.path.abspath(args.chat)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
