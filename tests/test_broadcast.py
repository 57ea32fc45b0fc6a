"""Direct WebSocket writes for broadcasts (edutradex/broadcast.py).

First write_direct itself, step by step on real sockets and eventlet's own semaphore (the
races it must not lose are set up exactly); then a real eventlet web process, with messages
broadcast the way the feed process does in production: through the Socket.IO message queue
on a real Redis, to the board room."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import threading
import time
import zlib

import aiohttp
import pytest
from flask_socketio import SocketIO

from edutradex import broadcast, create_app
from tests.support.live import LiveServer
from tests.support.waiting import wait_for

BOARD_ROOM = "ticks:board"


# ---- write_direct, step by step ------------------------------------------------------

class Stub:
    def __init__(self, **attributes):
        self.__dict__.update(attributes)


class Packet:
    def __init__(self, text: str):
        self.text = text
        self.encodes = 0

    def encode(self) -> str:
        self.encodes += 1
        return self.text


@pytest.fixture
def pair():
    """An Engine.IO socket and its WebSocket as broadcast.write_direct sees them, over a
    real socket pair; `peer` is the client's end."""
    import eventlet
    from eventlet.greenio import GreenSocket
    from eventlet.semaphore import Semaphore
    from eventlet.websocket import RFC6455WebSocket

    server_end, peer = socket.socketpair()
    green = GreenSocket(server_end)
    ws = RFC6455WebSocket(green, {}, extensions={})
    queue = []
    engine_socket = Stub(closing=False, closed=False, upgrading=False, upgraded=True,
                         queue=Stub(qsize=lambda: len(queue)), check_ping_timeout=lambda: True,
                         server=Stub(start_background_task=eventlet.spawn))
    yield Stub(socket=engine_socket, ws=ws, peer=peer, queue=queue, Semaphore=Semaphore)
    peer.close()
    server_end.close()


def read_frame(peer: socket.socket) -> bytes:
    peer.settimeout(None)
    head = peer.recv(2, socket.MSG_WAITALL)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(peer.recv(2, socket.MSG_WAITALL), "big")
    elif length == 127:
        length = int.from_bytes(peer.recv(8, socket.MSG_WAITALL), "big")
    return peer.recv(length, socket.MSG_WAITALL) if length else b""


def test_an_idle_client_is_written_to_at_once(pair):
    assert broadcast.write_direct(pair.socket, pair.ws, Packet("4hello"), broadcast.FrameCache()) == "direct"
    assert read_frame(pair.peer) == b"4hello"


@pytest.mark.parametrize("busy", ["queued", "writing", "writer_waking", "closed"])
def test_a_client_with_anything_in_flight_goes_through_its_queue(pair, busy):
    import eventlet

    lock = pair.ws._sendlock
    if busy == "queued":
        pair.queue.append("an earlier packet")
    elif busy == "writing":
        lock.acquire()
    elif busy == "writer_waking":
        # the writer took a packet from the queue and waits for the lock; the lock is
        # released and reads free until the writer's turn comes
        lock.acquire()
        eventlet.spawn(lambda: (lock.acquire(), lock.release()))
        eventlet.sleep(0)
        lock.release()
        assert not lock.locked() and lock._waiters
    else:
        pair.socket.closed = True
    assert broadcast.write_direct(pair.socket, pair.ws, Packet("4x"), broadcast.FrameCache()) is None
    pair.peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        pair.peer.recv(10)  # nothing was written


def test_a_full_buffer_sends_the_packet_down_the_queue(pair):
    pair.ws.socket.fd.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    filler = b"x" * 65536
    with pytest.raises(BlockingIOError):
        while True:
            pair.ws.socket.fd.send(filler)
    assert broadcast.write_direct(pair.socket, pair.ws, Packet("4x"), broadcast.FrameCache()) is None


def test_a_partial_write_holds_the_lock_until_the_rest_is_out(pair):
    import eventlet

    pair.ws.socket.fd.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = "4" + "y" * 300_000
    assert broadcast.write_direct(pair.socket, pair.ws, Packet(big), broadcast.FrameCache()) == "partial"
    assert pair.ws._sendlock.locked()  # the writer cannot slip a frame into the middle
    assert broadcast.write_direct(pair.socket, pair.ws, Packet("4next"), broadcast.FrameCache()) is None
    received = []
    reader = threading.Thread(target=lambda: received.append(read_frame(pair.peer)))
    reader.start()  # the client reads (another thread); the rest goes out from a green thread
    while reader.is_alive():
        eventlet.sleep(0.01)
    assert received == [big.encode()]
    eventlet.sleep(0.01)
    assert not pair.ws._sendlock.locked()


def test_a_broadcast_frame_is_built_once_per_compression_setting(pair):
    packet, frames = Packet("4board"), broadcast.FrameCache()
    plain = Stub(extensions={}, _pack_message=pair.ws._pack_message)
    deflate = {"permessage-deflate": {"server_no_context_takeover": True, "server_max_window_bits": 15}}
    compressed = [type(pair.ws)(pair.ws.socket, {}, extensions=deflate) for _ in range(3)]
    assert frames.frame(plain, packet, None) == frames.frame(plain, packet, None) == b"\x81\x064board"
    assert len({frames.frame(ws, packet, ws.extensions["permessage-deflate"]) for ws in compressed}) == 1
    assert packet.encodes == 2  # once plain, once compressed, for any number of clients
    other = Packet("4other")
    frames.frame(plain, other, None)
    assert other.encodes == 1  # a new packet, a new frame


def test_a_compressor_with_context_takeover_is_never_shared(pair):
    pair.ws.extensions = {"permessage-deflate": {"server_max_window_bits": 15}}
    assert broadcast.write_direct(pair.socket, pair.ws, Packet("4x"), broadcast.FrameCache()) is None


# ---- a real web process ----------------------------------------------------------------

class RawSocketIOClient:
    """Socket.IO over a WebSocket on a plain socket, read only when asked: a client that
    can stop reading (a slow phone on a bad network) for as long as a test needs."""

    def __init__(self, url: str, *, receive_buffer: int | None = None, deflate: bool = False):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect((host, int(port)))
        self.sock.settimeout(30)
        self.buffer = b""
        offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else ""
        self.sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        self.headers = head.decode()
        assert self.headers.startswith("HTTP/1.1 101"), self.headers
        assert self.read_text().startswith("0")  # Engine.IO open
        self.send_text("40")
        while not self.read_text().startswith("40"):
            pass

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_text(self) -> str:
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._read(2), "big")
        elif length == 127:
            length = int.from_bytes(self._read(8), "big")
        payload = self._read(length)
        if first & 0x40:  # RSV1: compressed, each message on its own (no context takeover)
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        assert first & 0x0F == 1, f"expected a text frame, got opcode {first & 0x0F}"
        return payload.decode()

    def send_text(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 126
        self.sock.sendall(bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload)

    def events(self, name: str, count: int) -> list:
        found = []
        while len(found) < count:
            text = self.read_text()
            if text == "2":
                self.send_text("3")
            elif text.startswith("42"):
                event, payload = json.loads(text[2:])
                if event == name:
                    found.append(payload)
        return found

    def close(self) -> None:
        self.sock.close()


def run_async(main):
    """asyncio.run(main()) on a thread of its own: Playwright's sync API (the browser tests
    in this session) keeps an event loop running on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def health(server: LiveServer) -> dict:
    return server.health()["checks"]




@pytest.fixture
def web(tmp_path, redis_url):
    """A web process with no feed of its own: the test is the price authority, as the feed
    process is in production."""
    server = LiveServer(tmp_path / "web", REDIS_URL=redis_url, EMBEDDED_SERVICES="0")
    server.flask("db", "upgrade")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def external(redis_url):
    return SocketIO(message_queue=redis_url)  # a write-only emitter, like `flask feed run`


def listening(redis_url: str) -> None:
    """The web process subscribes to the message queue when its first client connects."""
    from redis import Redis

    redis = Redis.from_url(redis_url)
    wait_for(lambda: redis.pubsub_numsub("flask-socketio")[0][1] >= 1, message="the web process on the queue")


def blob_message(seq: int) -> dict:
    """Every third message is 240 kB, more than a socket buffer takes at once."""
    size = 240_000 if seq % 3 == 0 else 200
    blob = base64.b64encode(os.urandom(size * 3 // 4)).decode()
    return {"seq": seq, "blob": blob, "sha": hashlib.sha256(blob.encode()).hexdigest()}


def check_stream(messages: list[dict], count: int) -> None:
    assert [m["seq"] for m in messages] == list(range(count))
    for m in messages:
        assert hashlib.sha256(m["blob"].encode()).hexdigest() == m["sha"], f"message {m['seq']} is corrupt"


async def aiohttp_board_client(url: str, compress: int, count: int, ready: asyncio.Event, out: list) -> str:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
                                      compress=compress, max_msg_size=0)
        extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
        assert (await ws.receive_str(timeout=30)).startswith("0")
        await ws.send_str("40")
        while not (await ws.receive_str(timeout=30)).startswith("40"):
            pass
        await ws.send_str('42["subscribe_board"]')
        while True:
            text = await ws.receive_str(timeout=30)
            if text.startswith('42["subscribed"'):
                break
        ready.set()
        while len(out) < count:
            text = await ws.receive_str(timeout=60)
            if text == "2":
                await ws.send_str("3")
            elif text.startswith('42["ticks"'):
                out.append(json.loads(text[2:])[1])
        await ws.close()
        return extensions


@pytest.mark.redis
@pytest.mark.slow
def test_broadcasts_reach_fast_compressed_and_stalled_clients_whole_and_in_order(web, external, redis_url):
    first, count = 45, 120
    stalled = RawSocketIOClient(web.url, receive_buffer=4096)
    stalled.send_text('42["subscribe_board"]')
    assert stalled.events("subscribed", 1)
    received = {"deflate": [], "plain": []}

    async def run():
        ready = [asyncio.Event(), asyncio.Event()]
        tasks = [asyncio.create_task(aiohttp_board_client(web.url, 15, count, ready[0], received["deflate"])),
                 asyncio.create_task(aiohttp_board_client(web.url, 0, count, ready[1], received["plain"]))]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 30)
        listening(redis_url)
        for seq in range(first):
            external.emit("ticks", blob_message(seq), to=BOARD_ROOM)
        # The fast clients get all of these while the stalled one has read nothing: a
        # client that stops reading never holds the broadcast up.
        deadline = time.monotonic() + 60
        while min(len(received["deflate"]), len(received["plain"])) < first:
            assert time.monotonic() < deadline, "the fast clients were held up"
            await asyncio.sleep(0.05)
        # Then the stalled client drains its backlog while broadcasts keep coming, so that
        # direct writes meet its writer finishing the queue (ordering is at stake there).
        draining = asyncio.create_task(asyncio.to_thread(stalled.events, "ticks", count))
        for seq in range(first, count):
            external.emit("ticks", blob_message(seq), to=BOARD_ROOM)
            await asyncio.sleep(0.005)
        return await asyncio.wait_for(asyncio.gather(*tasks, draining), 120)

    deflate_extensions, plain_extensions, stalled_messages = run_async(run)
    assert "permessage-deflate" in deflate_extensions and "server_no_context_takeover" in deflate_extensions
    assert plain_extensions == ""
    for messages in (received["deflate"], received["plain"], stalled_messages):
        check_stream(messages, count)  # every message whole and in order
    stalled.close()

    writes = health(web)["socketio"]["writes"]
    assert writes["direct"] >= count  # the fast clients were written to directly
    assert writes["partial"] >= 1  # a frame larger than the stalled client's buffer had room for
    assert writes["queued"] >= 1  # and what came after it waited in the queue, in order


@pytest.mark.redis
@pytest.mark.slow
def test_compression_is_negotiated_without_server_context_takeover(web, external, redis_url):
    client = RawSocketIOClient(web.url, deflate=True)
    assert "permessage-deflate" in client.headers and "server_no_context_takeover" in client.headers
    client.send_text('42["subscribe_board"]')
    assert client.events("subscribed", 1)
    listening(redis_url)
    frames = [{"symbol": "OTC_GOLD", "mid": 2050.0 + i, "ts_ms": i} for i in range(3)]
    for frame in frames:
        external.emit("ticks", [frame], to=BOARD_ROOM)
    # each message decompresses on its own: the frames do not depend on earlier ones
    assert client.events("ticks", 3) == [[frame] for frame in frames]
    client.close()


@pytest.mark.redis
@pytest.mark.slow
def test_one_web_process_holds_more_than_1024_socket_clients(web):
    clients = [RawSocketIOClient(web.url) for _ in range(1100)]
    try:
        assert health(web)["socketio"]["clients"] >= 1100
    finally:
        for client in clients:
            client.close()


def test_direct_writes_apply_to_eventlet_only(tmp_path):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'x.db'}")
    assert app.config["SOCKETIO_ASYNC_MODE"] == "threading"
    assert "socketio" not in app.extensions["health_checks"]


@pytest.mark.redis
@pytest.mark.slow
def test_direct_writes_can_be_turned_off(tmp_path, redis_url):
    server = LiveServer(tmp_path / "off", REDIS_URL=redis_url, EMBEDDED_SERVICES="0", SOCKETIO_DIRECT_WRITES="0")
    server.flask("db", "upgrade")
    server.start()
    try:
        client = RawSocketIOClient(server.url)
        client.send_text('42["subscribe_board"]')
        assert client.events("subscribed", 1)
        listening(redis_url)
        SocketIO(message_queue=redis_url).emit("ticks", [{"seq": 1}], to=BOARD_ROOM)
        assert client.events("ticks", 1) == [[{"seq": 1}]]  # delivered through engineio's own queue
        assert "socketio" not in health(server)
        client.close()
    finally:
        server.stop()

