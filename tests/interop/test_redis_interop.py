#!/usr/bin/python3
"""Wire compatibility with Django Channels: cppchannels' Redis layer and the
real channels_redis 4 RedisChannelLayer on one Redis, both ways.

Needs Debian's python3-channels-redis, python3-django-channels and
python3-websockets (seen only by /usr/bin/python3) and redis-server:

    /usr/bin/python3 tests/interop/test_redis_interop.py \
        --chat build/apps/chat/chat --peer build/tests/redis_peer \
        --routing routing.yaml [unittest args]

Starts its own redis-server processes and chat servers on free loopback
ports and stops each by its PID. The last line printed is "N passed, N
failed"; the exit status is 0 only if every test passed.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from procs import free_port, run_unittests, wait_listening  # noqa: E402

try:
    import redis as redis_sync
    import websockets
    from django.conf import settings
    settings.configure()  # channels.layers reads Django settings lazily
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer
except ImportError as exc:  # pragma: no cover - depends on the interpreter
    sys.stderr.write("this test needs python3-channels-redis, python3-django-channels and "
                     "python3-websockets: run it with /usr/bin/python3 (%s)\n" % exc)
    sys.exit(2)

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
STEP_TIMEOUT = 5.0

CHAT_BIN = PEER_BIN = ROUTING = None
PROCESS_LOGS = []  # (description, path): printed if a test fails


class Process:
    """A child process with a log file, stopped by its own PID."""

    def __init__(self, description):
        self.description = description
        self.proc = None
        fd, self.log_path = tempfile.mkstemp(prefix="redis-interop-", suffix=".log")
        self.log = os.fdopen(fd, "wb")
        PROCESS_LOGS.append((description, self.log_path))

    def spawn(self, argv, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", self.log)
        self.proc = subprocess.Popen(argv, stderr=self.log, **kwargs)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None


class Redis(Process):
    def __init__(self):
        super().__init__("redis-server")
        for _ in range(3):
            self.port = free_port()
            self.spawn(["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "",
                        "--appendonly", "no", "--loglevel", "warning"])
            try:
                wait_listening(self.proc, self.port, "redis-server", START_TIMEOUT)
                break
            except RuntimeError:
                self.stop()
        else:
            raise RuntimeError("redis-server did not start")
        self.url = "redis://%s:%d" % (HOST, self.port)
        self.client = redis_sync.Redis(host=HOST, port=self.port)


class ChatServer(Process):
    def __init__(self, redis_urls, layer="redis", routing=None):
        super().__init__("chat server on " + layer)
        for _ in range(3):
            self.port = free_port()
            argv = [CHAT_BIN, "--routing", routing or ROUTING, "--bind", HOST, "--port", str(self.port),
                    "--threads", "2", "--layer", layer]
            for url in redis_urls:
                argv += ["--redis", url]
            self.spawn(argv)
            try:
                wait_listening(self.proc, self.port, "chat server", START_TIMEOUT)
                return
            except RuntimeError:
                self.stop()
        raise RuntimeError("chat server did not start")

    def ws_url(self, path):
        return "ws://%s:%d/%s" % (HOST, self.port, path)


class Daphne(Process):
    """Django Channels served by daphne: the benchmark's Django project
    (bench/daphne, the Channels tutorial's ChatConsumer on ws/chat/<room>/)
    with channels_redis' RedisChannelLayer on the given hosts."""

    PROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "daphne")

    def __init__(self, redis_urls):
        super().__init__("daphne")
        env = dict(os.environ, PYTHONPATH=self.PROJECT, DJANGO_SETTINGS_MODULE="benchproj.settings_redis",
                   CHANNELS_REDIS_HOSTS=",".join(redis_urls))
        for _ in range(3):
            self.port = free_port()
            self.spawn([sys.executable, "-m", "daphne", "-v", "1", "-b", HOST, "-p", str(self.port),
                        "benchproj.asgi:application"], cwd=self.PROJECT, env=env)
            try:
                # Django and daphne import slowly on a busy machine.
                wait_listening(self.proc, self.port, "daphne", timeout=60)
                return
            except RuntimeError:
                self.stop()
        raise RuntimeError("daphne did not start")

    def ws_url(self, path):
        return "ws://%s:%d/%s" % (HOST, self.port, path)


class Peer(Process):
    """tests/interop/redis_peer: a cppchannels RedisChannelLayer, one JSON line per command."""

    def __init__(self, redis_urls, keys=()):
        super().__init__("redis_peer")
        argv = [PEER_BIN]
        for url in redis_urls:
            argv += ["--redis", url]
        for k in keys:
            argv += ["--key", k]
        self.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready = json.loads(self.proc.stdout.readline())
        if not ready.get("ready"):
            raise RuntimeError("redis_peer did not connect: %r" % (ready,))
        self.client_prefix = ready["client_prefix"]

    def call(self, **command):
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("redis_peer exited")
        return json.loads(line)

    def stop(self):
        if self.proc is not None and self.proc.stdin:
            self.proc.stdin.close()
        super().stop()


def to_peer(value):
    """Python message -> redis_peer's JSON (bytes as {"__bytes__": hex})."""
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, dict):
        return {k: to_peer(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_peer(v) for v in value]
    return value


def unique(prefix):
    return "%s%s" % (prefix, uuid.uuid4().hex[:12])


REDIS = SERVER = PEER = None


def setUpModule():
    global REDIS, SERVER, PEER
    REDIS = Redis()
    SERVER = ChatServer([REDIS.url])
    PEER = Peer([REDIS.url])


def tearDownModule():
    for p in (PEER, SERVER, REDIS):
        if p is not None:
            p.stop()


async def recv_json(ws, timeout=STEP_TIMEOUT):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def wait_members(redis, group, n):
    """group_add reaches Redis after the WebSocket handshake: wait for it."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        members = redis.client.zrange("asgi:group:" + group, 0, -1)
        if len(members) >= n:
            return [m.decode() for m in members]
        await asyncio.sleep(0.02)
    raise AssertionError("group %s has %r, not %d members" % (group, redis.client.zrange("asgi:group:" + group, 0, -1), n))


class LayerTest(unittest.IsolatedAsyncioTestCase):
    """Each test gets a channels_redis layer on its own event loop."""

    HOSTS = None
    KEYS = None

    async def asyncSetUp(self):
        kwargs = {"hosts": self.HOSTS or [REDIS.url]}
        if self.KEYS:
            kwargs["symmetric_encryption_keys"] = self.KEYS
        self.layer = RedisChannelLayer(**kwargs)

    async def asyncTearDown(self):
        await self.layer.close_pools()

    async def receive(self, channel, timeout=STEP_TIMEOUT):
        return await asyncio.wait_for(self.layer.receive(channel), timeout)


class ChatWithDjangoChannelsTests(LayerTest):

    async def test_channels_redis_group_send_reaches_cpp_chat_client(self):
        room = unique("r")
        async with websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as ws:
            await wait_members(REDIS, "chat_" + room, 1)
            await self.layer.group_send("chat_" + room, {"type": "chat.message", "message": "from django \u00e9"})
            self.assertEqual(await recv_json(ws), {"message": "from django \u00e9"})

    async def test_cpp_consumer_group_send_reaches_channels_redis_receive(self):
        room = unique("r")
        mine = await self.layer.new_channel()
        await self.layer.group_add("chat_" + room, mine)
        async with websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as ws:
            await wait_members(REDIS, "chat_" + room, 2)
            await ws.send(json.dumps({"message": "from cpp"}))
            self.assertEqual(await recv_json(ws), {"message": "from cpp"})
            self.assertEqual(await self.receive(mine), {"type": "chat.message", "message": "from cpp"})

    async def test_room_shared_by_both_kinds_of_member_in_order(self):
        room = unique("r")
        mine = await self.layer.new_channel()
        await self.layer.group_add("chat_" + room, mine)
        async with websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as a, \
                websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as b:
            await wait_members(REDIS, "chat_" + room, 3)
            for i in range(10):
                await self.layer.group_send("chat_" + room, {"type": "chat.message", "message": "py %d" % i})
                await a.send(json.dumps({"message": "cpp %d" % i}))
            for ws in (a, b):
                got = [(await recv_json(ws))["message"] for _ in range(20)]
                self.assertEqual([m for m in got if m.startswith("py")], ["py %d" % i for i in range(10)])
                self.assertEqual([m for m in got if m.startswith("cpp")], ["cpp %d" % i for i in range(10)])
            got = [(await self.receive(mine))["message"] for _ in range(20)]
            self.assertEqual([m for m in got if m.startswith("py")], ["py %d" % i for i in range(10)])
            self.assertEqual([m for m in got if m.startswith("cpp")], ["cpp %d" % i for i in range(10)])

    async def test_channels_redis_send_to_cpp_consumer_channel(self):
        room = unique("r")
        async with websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as ws:
            [cpp_channel] = await wait_members(REDIS, "chat_" + room, 1)
            self.assertRegex(cpp_channel, r"^specific\.[0-9a-f]{32}![0-9a-f]{32}$")
            await self.layer.send(cpp_channel, {"type": "chat.message", "message": "direct"})
            self.assertEqual(await recv_json(ws), {"message": "direct"})


class LayerToLayerTests(LayerTest):

    async def test_cpp_send_to_channels_redis_channel(self):
        mine = await self.layer.new_channel()
        msg = {"type": "x.y", "n": 1, "b": b"\x00\xff", "f": 1.5, "l": [1, "two"], "u": "\u2603"}
        self.assertEqual(PEER.call(op="send", channel=mine, message=to_peer(msg)), {"error": ""})
        self.assertEqual(await self.receive(mine), msg)

    async def test_every_type_survives_a_round_trip_through_cpp(self):
        peer_channel = PEER.call(op="new_channel")["channel"]
        mine = await self.layer.new_channel()
        msg = {"type": "round.trip", "reply_to": mine, "int": -5, "big": 2 ** 40, "float": 0.1,
               "true": True, "none": None, "bytes": bytes(range(256)), "empty": b"",
               "list": [1, [2, [3]], {"k": "v"}], "map": {"nested": {"x": 1}},
               "text": "\u00e9\u2603\U0001F600", "long": "x" * 70000}
        await self.layer.send(peer_channel, msg)
        echoed = PEER.call(op="echo", channel=peer_channel, timeout=STEP_TIMEOUT)
        self.assertIsNotNone(echoed["message"], "the C++ peer received nothing")
        self.assertEqual(await self.receive(mine), msg)

    async def test_group_send_both_ways_between_layers(self):
        group = unique("g")
        peer_channel = PEER.call(op="new_channel")["channel"]
        mine = await self.layer.new_channel()
        self.assertEqual(PEER.call(op="group_add", group=group, channel=peer_channel), {"error": ""})
        await self.layer.group_add(group, mine)
        await self.layer.group_send(group, {"type": "from.python", "v": b"\x01"})
        got = PEER.call(op="receive", channel=peer_channel, timeout=STEP_TIMEOUT)["message"]
        self.assertEqual(got, {"type": "from.python", "v": {"__bytes__": "01"}})
        self.assertEqual(await self.receive(mine), {"type": "from.python", "v": b"\x01"})
        reply = PEER.call(op="group_send", group=group, message={"type": "from.cpp"})
        self.assertEqual(reply, {"delivered": 2, "dropped": 0})
        self.assertEqual(await self.receive(mine), {"type": "from.cpp"})
        self.assertEqual(PEER.call(op="receive", channel=peer_channel, timeout=STEP_TIMEOUT)["message"],
                         {"type": "from.cpp"})

    async def test_capacity_is_shared_the_same_way(self):
        # A channel that nobody reads, at channels_redis' capacity: both
        # sides refuse the next direct send.
        channel = "specific.%s!nobody" % uuid.uuid4().hex
        small = RedisChannelLayer(hosts=[REDIS.url], capacity=2)
        try:
            await small.send(channel, {"type": "a"})
            reply = PEER.call(op="send", channel=channel, message={"type": "b"})
            self.assertEqual(reply, {"error": ""})
            from channels.exceptions import ChannelFull
            for _ in range(98):
                PEER.call(op="send", channel=channel, message={"type": "c"})
            with self.assertRaises(ChannelFull):
                await self.layer.send(channel, {"type": "d"})  # capacity 100: 100 are waiting
            self.assertIn("full", PEER.call(op="send", channel=channel, message={"type": "e"})["error"])
        finally:
            await small.close_pools()


class EncryptedTests(LayerTest):
    KEYS = ["interop-secret", "older-secret"]

    async def test_encrypted_both_ways(self):
        peer = Peer([REDIS.url], keys=["interop-secret"])
        try:
            peer_channel = peer.call(op="new_channel")["channel"]
            mine = await self.layer.new_channel()
            await self.layer.send(peer_channel, {"type": "secret", "reply_to": mine, "b": b"\x00"})
            echoed = peer.call(op="echo", channel=peer_channel, timeout=STEP_TIMEOUT)
            self.assertIsNotNone(echoed["message"], "the C++ peer could not read Fernet from channels_redis")
            self.assertEqual(await self.receive(mine), {"type": "secret", "reply_to": mine, "b": b"\x00"})
            # What Redis holds is a Fernet token, not msgpack.
            other = "specific.%s!peek" % uuid.uuid4().hex
            peer.call(op="send", channel=other, message={"type": "peek"})
            [member] = REDIS.client.zrange("asgi" + other[:other.index("!") + 1], 0, -1)
            self.assertTrue(member[12:].startswith(b"gAAAAA"), member[:30])
        finally:
            peer.stop()


class TwoHostTests(unittest.IsolatedAsyncioTestCase):
    """Sharded over two Redis servers, as channels_redis shards."""

    @classmethod
    def setUpClass(cls):
        cls.shards = [Redis(), Redis()]
        cls.urls = [r.url for r in cls.shards]
        cls.peer = Peer(cls.urls)
        cls.server = ChatServer(cls.urls)

    @classmethod
    def tearDownClass(cls):
        for p in [cls.server, cls.peer] + cls.shards:
            p.stop()

    async def asyncSetUp(self):
        self.layer = RedisChannelLayer(hosts=self.urls)

    async def asyncTearDown(self):
        await self.layer.close_pools()

    async def test_groups_live_on_the_hashed_host_for_both(self):
        # crc32("chat_lobby") & 0xFFF = 2156 -> host 1 of 2.
        group = "chat_lobby"
        async with websockets.connect(self.server.ws_url("ws/chat/lobby/"), open_timeout=STEP_TIMEOUT) as ws:
            await wait_members(self.shards[1], group, 1)
            self.assertEqual(self.shards[0].client.zcard("asgi:group:" + group), 0)
            await self.layer.group_send(group, {"type": "chat.message", "message": "sharded"})
            self.assertEqual(await recv_json(ws), {"message": "sharded"})

    async def test_direct_sends_arrive_both_ways(self):
        # channels_redis' send() hashes the full channel name, its receive()
        # the non-local part; the C++ side reads every host, and writes where
        # channels_redis reads. Several channels cover both hash outcomes.
        for _ in range(6):
            peer_channel = self.peer.call(op="new_channel")["channel"]
            await self.layer.send(peer_channel, {"type": "py.to.cpp"})
            got = self.peer.call(op="receive", channel=peer_channel, timeout=STEP_TIMEOUT)["message"]
            self.assertEqual(got, {"type": "py.to.cpp"}, peer_channel)
            mine = await self.layer.new_channel()
            self.assertEqual(self.peer.call(op="send", channel=mine, message={"type": "cpp.to.py"}), {"error": ""})
            self.assertEqual(await asyncio.wait_for(self.layer.receive(mine), STEP_TIMEOUT), {"type": "cpp.to.py"})


class DaphneTests(unittest.IsolatedAsyncioTestCase):
    """One room, two servers: the C++ chat app and Django Channels' tutorial
    ChatConsumer under daphne, on one Redis, with real WebSocket clients on
    both. C++ sends type chat.message, Django chat_message: each side's
    handler naming takes the other's."""

    @classmethod
    def setUpClass(cls):
        cls.daphne = Daphne([REDIS.url])

    @classmethod
    def tearDownClass(cls):
        cls.daphne.stop()

    async def test_cpp_group_send_reaches_django_consumer(self):
        room = unique("d")
        async with websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as cpp, \
                websockets.connect(self.daphne.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as dj:
            await wait_members(REDIS, "chat_" + room, 2)
            await cpp.send(json.dumps({"message": "from cpp \u00e9"}))
            self.assertEqual(await recv_json(dj), {"message": "from cpp \u00e9"})
            self.assertEqual(await recv_json(cpp), {"message": "from cpp \u00e9"})

    async def test_django_group_send_reaches_cpp_clients(self):
        room = unique("d")
        async with websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as c1, \
                websockets.connect(SERVER.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as c2, \
                websockets.connect(self.daphne.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as dj:
            await wait_members(REDIS, "chat_" + room, 3)
            for i in range(5):
                await dj.send(json.dumps({"message": "from django %d" % i}))
            for ws in (c1, c2, dj):
                self.assertEqual([(await recv_json(ws))["message"] for _ in range(5)],
                                 ["from django %d" % i for i in range(5)])


class KilledProcessTests(unittest.IsolatedAsyncioTestCase):
    """Two chat processes on one Redis; one dies by SIGKILL (no goodbye: its
    memberships stay in Redis). The survivor's clients keep chatting, its
    group_sends skip the dead process' full key instead of failing, and
    that key expires by itself."""

    EXPIRY = 4

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        # The repository's routing with a short expiry, so the dead process'
        # key can be seen to expire.
        with open(ROUTING) as f:
            text = f.read()
        assert "\n  expiry: 60\n" in text, "routing.yaml's expiry line moved: update this test"
        fd, cls.routing = tempfile.mkstemp(prefix="redis-interop-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text.replace("\n  expiry: 60\n", "\n  expiry: %d\n" % cls.EXPIRY))
        cls.a = ChatServer([cls.redis.url], routing=cls.routing)
        cls.b = ChatServer([cls.redis.url], routing=cls.routing)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.a, cls.b, cls.redis):
            p.stop()
        os.unlink(cls.routing)

    async def test_sigkill_leaves_the_survivor_working(self):
        room = unique("k")
        group = "chat_" + room
        url = "ws/chat/%s/" % room
        layer = RedisChannelLayer(hosts=[self.redis.url])
        try:
            async with websockets.connect(self.a.ws_url(url), open_timeout=STEP_TIMEOUT) as a1, \
                    websockets.connect(self.b.ws_url(url), open_timeout=STEP_TIMEOUT) as b1, \
                    websockets.connect(self.b.ws_url(url), open_timeout=STEP_TIMEOUT) as b2:
                members = await wait_members(self.redis, group, 3)
                for sender in (a1, b1):
                    await sender.send(json.dumps({"message": "hello"}))
                    for ws in (a1, b1, b2):
                        self.assertEqual(await recv_json(ws), {"message": "hello"})
                # A's one consumer is the member whose process part differs.
                processes = [m[:m.index("!") + 1] for m in members]
                [a_key] = ["asgi" + p for p in processes if processes.count(p) == 1]

                os.kill(self.a.proc.pid, signal.SIGKILL)
                self.a.proc.wait(timeout=STOP_TIMEOUT)
                self.assertEqual(self.a.proc.returncode, -signal.SIGKILL)
                with self.assertRaises(Exception):  # its client sees the connection drop
                    await asyncio.wait_for(a1.recv(), STEP_TIMEOUT)

                # The dead consumer is still a member (nobody discarded it):
                # more messages than its key's capacity (100) go to the room,
                # in rounds the survivor reads as it goes.
                self.assertEqual(len(await wait_members(self.redis, group, 3)), 3)
                sent, t0 = 0, time.monotonic()
                for round_ in range(6):
                    sender = (b1, b2)[round_ % 2]  # one sender per round: its order is kept
                    for i in range(25):
                        await sender.send(json.dumps({"message": "m%d" % (sent + i)}))
                    for ws in (b1, b2):
                        self.assertEqual([(await recv_json(ws))["message"] for _ in range(25)],
                                         ["m%d" % (sent + i) for i in range(25)])
                    sent += 25
                # Full, never over; unless this took longer than the expiry,
                # and group_send trimmed the oldest (as channels_redis does).
                if time.monotonic() - t0 < self.EXPIRY - 1:
                    self.assertEqual(self.redis.client.zcard(a_key), 100)
                else:
                    self.assertLessEqual(self.redis.client.zcard(a_key), 100)

                # A group_send from outside the survivor still reaches it.
                await layer.group_send(group, {"type": "chat.message", "message": "from python"})
                for ws in (b1, b2):
                    self.assertEqual(await recv_json(ws), {"message": "from python"})

                # The dead process' key expires by itself once nothing writes to it.
                ttl = self.redis.client.ttl(a_key)
                self.assertTrue(0 < ttl <= self.EXPIRY, ttl)
                deadline = time.monotonic() + self.EXPIRY + STEP_TIMEOUT
                while self.redis.client.exists(a_key) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                self.assertFalse(self.redis.client.exists(a_key), "the dead process' key did not expire")
                await b2.send(json.dumps({"message": "still here"}))
                for ws in (b1, b2):
                    self.assertEqual(await recv_json(ws), {"message": "still here"})
                self.assertTrue(self.b.proc.poll() is None)
        finally:
            await layer.close_pools()


async def pubsub_close(layer, tries=50):
    """flush() channels_redis' pub/sub layer without its Debian 12 hang: its
    reader task can survive a single cancel() (redis-py issue 2551), so
    cancel it until it is gone first."""
    for shard in layer._get_layer()._shards:
        task = shard._receive_task
        for _ in range(tries):
            if task is None or task.done():
                break
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.wait({task}, timeout=0.037)
    await layer.flush()


async def wait_subscribers(redis, channel, n):
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        [(_, count)] = redis.client.pubsub_numsub(channel)
        if count >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("%s has %d subscribed processes, not %d" % (channel, count, n))


class PubSubTests(unittest.IsolatedAsyncioTestCase):
    """channels_redis' RedisPubSubChannelLayer and the chat app on --layer redis-pubsub."""

    @classmethod
    def setUpClass(cls):
        cls.server = ChatServer([REDIS.url], layer="redis-pubsub")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def asyncSetUp(self):
        self.layer = RedisPubSubChannelLayer(hosts=[REDIS.url])

    async def asyncTearDown(self):
        await pubsub_close(self.layer)

    async def test_group_send_both_ways(self):
        room = unique("p")
        group = "chat_" + room
        mine = await self.layer.new_channel()
        await self.layer.group_add(group, mine)
        async with websockets.connect(self.server.ws_url("ws/chat/%s/" % room), open_timeout=STEP_TIMEOUT) as ws:
            await wait_subscribers(REDIS, "asgi__group__" + group, 2)
            await self.layer.group_send(group, {"type": "chat.message", "message": "from django"})
            self.assertEqual(await recv_json(ws), {"message": "from django"})
            self.assertEqual(await asyncio.wait_for(self.layer.receive(mine), STEP_TIMEOUT),
                             {"type": "chat.message", "message": "from django"})
            await ws.send(json.dumps({"message": "from cpp"}))
            self.assertEqual(await recv_json(ws), {"message": "from cpp"})
            self.assertEqual(await asyncio.wait_for(self.layer.receive(mine), STEP_TIMEOUT),
                             {"type": "chat.message", "message": "from cpp"})
        self.assertEqual(REDIS.client.keys("*%s*" % room), [])  # pub/sub stores nothing

    async def test_send_to_cpp_consumer_channel(self):
        before = set(REDIS.client.pubsub_channels("asgispecific.*"))
        async with websockets.connect(self.server.ws_url("ws/chat/%s/" % unique("p")),
                                      open_timeout=STEP_TIMEOUT) as ws:
            deadline = time.monotonic() + STEP_TIMEOUT
            new = set()
            while not new and time.monotonic() < deadline:
                new = set(REDIS.client.pubsub_channels("asgispecific.*")) - before
                await asyncio.sleep(0.02)
            self.assertEqual(len(new), 1, "the C++ consumer's channel is not subscribed: %r" % (new,))
            cpp_channel = new.pop().decode()
            self.assertRegex(cpp_channel, r"^asgispecific\.[0-9a-f]{32}$")
            await self.layer.send(cpp_channel, {"type": "chat.message", "message": "direct"})
            self.assertEqual(await recv_json(ws), {"message": "direct"})


def main():
    global CHAT_BIN, PEER_BIN, ROUTING
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--chat")
    parser.add_argument("--peer")
    parser.add_argument("--routing")
    args, rest = parser.parse_known_args()
    CHAT_BIN, PEER_BIN, ROUTING = (os.path.abspath(p) if p else None for p in (args.chat, args.peer, args.routing))
    for what, path in (("--chat", CHAT_BIN), ("--peer", PEER_BIN), ("--routing", ROUTING)):
        if not path or not os.path.exists(path):
            sys.stderr.write("missing %s (got %r)\n" % (what, path))
            print("0 passed, 1 failed")
            return 1

    return run_unittests(rest, PROCESS_LOGS)


if __name__ == "__main__":
    sys.exit(main())
