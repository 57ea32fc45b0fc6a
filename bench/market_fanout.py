"""Fan-out benchmark: N Socket.IO clients, in separate processes on loopback, each subscribed
to 10 symbols that tick 10 times a second; one web process (wsgi.py, eventlet) with the feed
embedded. Reports delivered frames/s (and the share of the ideal N x 100/s) and the p50/p99
latency from the tick's server timestamp to its arrival at the client.

    .venv/bin/python -m bench.market_fanout            # 100, 500, 1000, 2000 clients
    .venv/bin/python -m bench.market_fanout 100 500    # chosen levels
    FANOUT_MODE=symbols .venv/bin/python -m bench.market_fanout   # one room per symbol

FANOUT_CLIENT=lean (default) speaks Engine.IO v4 / Socket.IO v5 over hand-parsed WebSocket
frames; FANOUT_CLIENT=sio uses python-socketio's AsyncClient, which costs about 0.1 ms of
client CPU per message: at 2,000 clients (20,000 messages/s) the clients alone need more
than this machine's two cores, and they, not the server, set the figures. SOCKETIO_DIRECT_WRITES=0
measures the server without edutradex/broadcast.py.

Two ways to watch 10 symbols: FANOUT_MODE=board (default; what the Markets page does) joins
the one board room and gets every symbol's frames in one message per flush;
FANOUT_MODE=symbols joins ten symbol rooms (what a chart does for its one symbol) and gets
a message per symbol per frame. "frames" are tick frames either way.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["OTC_EUR_USD", "OTC_GBP_USD", "OTC_USD_JPY", "OTC_GOLD", "VOLATILITY_10", "VOLATILITY_25",
           "VOLATILITY_50", "VOLATILITY_100", "BENCH_A", "BENCH_B"]
CLIENT_PROCESSES = 4
MEASURE_SECONDS = 8
MODE = os.environ.get("FANOUT_MODE", "board")
# lean: Engine.IO v4 / Socket.IO v5 over WebSocket frames parsed by hand (lean_client_main),
# so that on a 2-core machine the load generator does not eat the server's CPU; sio: the
# full python-socketio AsyncClient.
CLIENT = os.environ.get("FANOUT_CLIENT", "lean")


# ---- a client process ------------------------------------------------------------------

async def lean_client_main(url: str, count: int, start_at: float, seconds: float, subscribe: list[str] | None = None,
                           ts_key: bytes = b"ts_ms", by_stamp: float = 0.0,
                           per_minute: bool = False) -> dict:
    """Engine.IO v4 / Socket.IO v5 over a WebSocket spoken by an asyncio Protocol: frames
    parsed by hand, tick times pulled out with a regular expression. Per message it costs a
    fraction of what the python-socketio client does, so more of the 2 cores are left to
    the server being measured. ``subscribe``: the Socket.IO packets sent once connected
    (the tick rooms by default); ``ts_key``: the frame's server time in ms. The distinct
    server times seen come back as ``stamps`` (frames sent, as far as any client saw).
    ``by_stamp`` (seconds of grace): count the frames whose server time is in the window,
    whenever they arrive (up to the grace after it), so that no frame is counted by some
    clients and not others at the window's edges. ``per_minute``: the latencies come back per
    minute since `start_at` ({"0": [...], "1": [...]}, for a soak)."""
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").split(":")
    if subscribe is None:
        subscribe = ['42["subscribe_board"]'] if MODE == "board" else \
            [f'42["subscribe",{{"symbol":"{symbol}"}}]' for symbol in SYMBOLS]
    ts_pattern = re.compile(rb'"' + ts_key + rb'":(\d+)')
    end_at = start_at + seconds
    stats = {"connected": 0, "frames": 0, "messages": 0}
    latencies: list[int] = []
    minutes: dict[str, list[int]] = {}
    stamps: set[int] = set()

    class Connection(asyncio.Protocol):
        def __init__(self):
            self.buffer = bytearray()
            self.frames = 0
            self.upgraded = False
            self.ready = loop.create_future()
            self.closed = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport
            transport.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())

        def send_text(self, text: str) -> None:
            payload = text.encode()  # client frames are masked; a zero key leaves the bytes as they are
            self.transport.write(bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload)

        def data_received(self, data: bytes) -> None:
            buffer = self.buffer
            buffer += data
            if not self.upgraded:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                if not buffer.startswith(b"HTTP/1.1 101"):
                    self.transport.close()
                    return
                self.upgraded = True
                del buffer[:end + 4]
            while len(buffer) >= 2:
                length, offset = buffer[1] & 0x7F, 2
                if length == 126:
                    length, offset = int.from_bytes(buffer[2:4], "big"), 4
                elif length == 127:
                    length, offset = int.from_bytes(buffer[2:10], "big"), 10
                if len(buffer) < offset + length:
                    return
                opcode, payload = buffer[0] & 0x0F, bytes(buffer[offset:offset + length])
                del buffer[:offset + length]
                if opcode == 1:
                    self.message(payload)
                elif opcode == 8:
                    self.transport.close()

        def message(self, payload: bytes) -> None:
            if payload.startswith(b"42"):
                now = time.time()
                times = ts_pattern.findall(payload)
                if by_stamp:
                    times = [t for t in times if start_at * 1000 <= int(t) < end_at * 1000]
                if times if by_stamp else start_at <= now < end_at:
                    stats["messages"] += 1
                    stats["frames"] += len(times)
                    self.frames += len(times)
                    now_ms = int(now * 1000)
                    into = minutes.setdefault(str(int((now - start_at) // 60)), []) if per_minute else latencies
                    into.extend(now_ms - int(t) for t in times)
                    stamps.update(int(t) for t in times)
            elif payload == b"2":  # Engine.IO ping
                self.send_text("3")
            elif payload.startswith(b"40"):  # Socket.IO connected
                for packet in subscribe:
                    self.send_text(packet)
                self.ready.set_result(True)
            elif payload.startswith(b"0"):  # Engine.IO open
                self.send_text("40")

        def connection_lost(self, exc):
            if not self.ready.done():
                self.ready.set_result(False)
            self.closed.set_result(True)

    async def one(semaphore):
        async with semaphore:
            try:
                _, connection = await loop.create_connection(Connection, host, int(port))
                ok = await asyncio.wait_for(connection.ready, 30)
            except (OSError, TimeoutError):
                return None
        stats["connected"] += ok
        return connection if ok else None

    semaphore = asyncio.Semaphore(50)  # connections being opened at once
    connections = await asyncio.gather(*(one(semaphore) for _ in range(count)))
    await asyncio.sleep(max(0.0, end_at - time.time()) + 0.2 + by_stamp)
    for connection in connections:
        if connection is not None:
            connection.transport.close()
    return {**stats, "latencies": minutes if per_minute else latencies, "stamps": sorted(stamps),
            "per_client": [c.frames for c in connections if c is not None]}


async def client_main(url: str, count: int, start_at: float, seconds: float) -> dict:
    import socketio

    latencies: list[int] = []
    frames = 0
    messages = 0
    connected = 0
    end_at = start_at + seconds

    async def one(semaphore):
        nonlocal frames, connected
        sio = socketio.AsyncClient(reconnection=False)

        def received(batch):
            nonlocal frames, messages
            now = time.time()
            if start_at <= now < end_at:
                messages += 1
                frames += len(batch)
                now_ms = int(now * 1000)
                latencies.extend(now_ms - frame["ts_ms"] for frame in batch)

        @sio.on("tick")
        async def on_tick(frame):
            received([frame])

        @sio.on("ticks")
        async def on_ticks(batch):
            received(batch)

        async with semaphore:
            try:
                await sio.connect(url, transports=["websocket"], wait_timeout=30)
            except Exception:  # noqa: BLE001 - counted as not connected
                return None
        if MODE == "board":
            await sio.emit("subscribe_board")
        else:
            for symbol in SYMBOLS:
                await sio.emit("subscribe", {"symbol": symbol})
        connected += 1
        return sio

    semaphore = asyncio.Semaphore(25)
    clients = await asyncio.gather(*(one(semaphore) for _ in range(count)))
    await asyncio.sleep(max(0.0, end_at - time.time()) + 0.2)
    for sio in clients:
        if sio is not None:
            await sio.disconnect()
    return {"connected": connected, "frames": frames, "messages": messages, "latencies": latencies}


# ---- the driver --------------------------------------------------------------------------

def prepare(env: dict) -> None:
    code = """
from decimal import Decimal
from edutradex import create_app
from edutradex.extensions import db
from edutradex.market.models import Market
from edutradex.market.service import seed_markets
app = create_app(); app.app_context().push(); db.create_all(); seed_markets()
for symbol in ("BENCH_A", "BENCH_B"):
    db.session.add(Market(symbol=symbol, name=symbol, market_type="SYNTHETIC", active=True,
        payout_percent=Decimal("80"), min_stake=Decimal("1"), max_stake=Decimal("1000"),
        volatility_mode="HIGH", trend_bias=Decimal("0"), precision=3, spread=Decimal("0.01"),
        initial_price=Decimal("100")))
db.session.commit()
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_level(url: str, clients: int, *, module: str = "bench.market_fanout", extra: tuple[str, ...] = (),
              frames_per_client_s: int = len(SYMBOLS) * 10) -> dict:
    """Clients in CLIENT_PROCESSES processes (``module --client url count start seconds
    *extra``), measured for MEASURE_SECONDS once everyone had time to connect."""
    per_process = [clients // CLIENT_PROCESSES + (1 if i < clients % CLIENT_PROCESSES else 0)
                   for i in range(CLIENT_PROCESSES)]
    start_at = time.time() + 4 + clients / 150  # time to connect everyone first
    procs = [subprocess.Popen([sys.executable, "-m", module, "--client", url, str(n), str(start_at),
                               str(MEASURE_SECONDS), *extra], cwd=ROOT, stdout=subprocess.PIPE)
             for n in per_process if n]
    results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    latencies = [v for r in results for v in r["latencies"]]
    frames = sum(r["frames"] for r in results)
    messages = sum(r["messages"] for r in results)
    connected = sum(r["connected"] for r in results)
    ideal = connected * frames_per_client_s
    return {"clients": clients, "connected": connected, "frames_per_s": frames / MEASURE_SECONDS,
            "messages_per_s": messages / MEASURE_SECONDS, "frames": frames,
            "stamps": sorted({t for r in results for t in r.get("stamps", [])}),
            "per_client": [n for r in results for n in r.get("per_client", [])],
            "ideal_per_s": ideal, "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99)}


def main(levels: list[int]) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.live import LiveServer

    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        server = LiveServer(Path(tmp), FEED_TICK_INTERVAL_MS="100", FEED_EMIT_INTERVAL_MS="100",
                            EMBEDDED_SERVICES="1", TICK_FLUSH_INTERVAL_MS="250")
        prepare(server.env)
        server.start()
        try:
            print(f"one web process (eventlet, feed embedded), {len(SYMBOLS)} symbols x 10 ticks/s, mode {MODE}, {CLIENT} clients, "
                  f"clients in {CLIENT_PROCESSES} processes, {os.cpu_count()} cores, {MEASURE_SECONDS}s per level")
            print(f"{'clients':>8} {'connected':>9} {'messages/s':>10} {'frames/s':>10} {'ideal/s':>9} {'delivered':>9} "
                  f"{'p50 ms':>7} {'p99 ms':>7}")
            for clients in levels:
                r = run_level(server.url, clients)
                share = r["frames_per_s"] / r["ideal_per_s"] if r["ideal_per_s"] else 0
                print(f"{r['clients']:>8} {r['connected']:>9} {r['messages_per_s']:>10.0f} {r['frames_per_s']:>10.0f} "
                      f"{r['ideal_per_s']:>9} "
                      f"{share:>8.0%} {r['p50_ms']:>7.0f} {r['p99_ms']:>7.0f}", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, count, start_at, seconds = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
        run = lean_client_main if CLIENT == "lean" else client_main
        print(json.dumps(asyncio.run(run(url, count, start_at, seconds))))
    else:
        main([int(a) for a in sys.argv[1:]] or [100, 500, 1000, 2000])
