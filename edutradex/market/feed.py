"""The one price authority: the feed loop, the only producer of ticks.

Each pass of the loop:
1. reloads the catalogue when an admin change was announced (or every
   FEED_CONFIG_RELOAD_SECONDS), so volatility, bias, spread, precision and `active` apply
   from the next tick without a restart;
2. steps the simulator for every active OTC / SYNTHETIC market whose tick is due, and takes
   the prices the real-feed adapters received for FOREX markets;
3. publishes each tick as the latest quote (quotes.publish_quote), buffers it for the tick
   store, and hands it to the coalescer, which emits at most one Socket.IO frame per symbol
   per FEED_EMIT_INTERVAL_MS to the room ticks:<SYMBOL>;
4. flushes the tick buffer in one batched INSERT every TICK_FLUSH_INTERVAL_MS;
5. now and then aggregates completed minutes into candles and prunes raw ticks that are
   older than TICK_RETENTION_HOURS and already aggregated.

Embedded default: a background task of the web process. Production: `flask feed run`, with
quotes in Redis and frames through Socket.IO's Redis message queue. A Redis lock keeps a
second feed process on standby, so there is exactly one authority; a holder that loses the
lock (or renews it late) stops producing at once, discards what it has not written, and
stands by again; its late writes are fenced out (see authority.py)."""

from __future__ import annotations

import collections
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from flask import Flask, current_app

from ..extensions import db, socketio
from . import candles, config_signal, fairness, quotes, store, ticks
from .authority import LOCK_KEY, AuthorityLock, AuthorityLost  # noqa: F401 - LOCK_KEY: where the lock lives
from .models import Market, MarketType
from .simulator import Simulator, WalkConfig, quote_from_mid

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "edutradex:feed:heartbeat"
HEARTBEAT_TTL_MS = 3_600_000
TICK_EVENT = "tick"
BOARD_EVENT = "ticks"
BOARD_ROOM = "ticks:board"
MIN_GAP = 0.9  # of an interval: the least time between two frames of a symbol (see TickCoalescer)
CLOCK_SLACK = 0.0005  # seconds; float clocks must not postpone a due flush by a whole pass


def room(symbol: str) -> str:
    return f"ticks:{symbol}"


@dataclass(frozen=True)
class MarketSnapshot:
    symbol: str
    name: str
    market_type: str
    active: bool
    volatility_mode: str
    trend_bias: Decimal
    precision: int
    spread: Decimal
    initial_price: Decimal | None
    provider_symbol: str | None

    @classmethod
    def of(cls, market: Market) -> MarketSnapshot:
        return cls(market.symbol, market.name, market.market_type, market.active, market.volatility_mode,
                   market.trend_bias, market.precision, market.spread, market.initial_price, market.provider_symbol)

    @property
    def simulated(self) -> bool:
        return self.market_type != MarketType.FOREX.value

    @property
    def walk_config(self) -> WalkConfig:
        return WalkConfig(self.volatility_mode, float(self.trend_bias), self.precision, self.spread)


def tick_frame(quote: quotes.Quote, precision: int) -> dict:
    return {"symbol": quote.symbol, "bid": float(quote.bid), "ask": float(quote.ask), "mid": float(quote.mid),
            "ts_ms": quote.ts_ms, "high": float(quote.mid), "low": float(quote.mid), "precision": precision}


class TickCoalescer:
    """At most one frame per symbol per interval. A tick for a symbol that has not been sent
    for an interval goes out at once (no added latency at ordinary tick rates); faster ticks
    are merged into the symbol's pending frame (newest price, with the high and low of the mid
    since the last frame, so live candles keep their wicks) and sent when the interval is up.
    One payload per symbol per interval, however many clients watch it.

    A frame may go 90 % of an interval after the symbol's last one (MIN_GAP), not a full
    interval. With a full interval, a feed that ticks on the interval's own grid would keep
    any lag it once picked up (a frame sent 30 ms late books the next slot 30 ms late, and
    every later tick, due on the grid, waits for it), so every later price would reach the
    screen that much late for good. With the 10 % margin the lag shrinks by 10 ms a frame
    and each tick goes out as it is made. A faster feed is held to a frame per 90-100 ms.
    """

    def __init__(self, emit: Callable[[str, dict], None], interval: float = 0.1, clock=time.monotonic,
                 emit_board: Callable[[list[dict]], None] | None = None):
        self.emit = emit
        self.emit_board = emit_board
        self.interval = interval
        self.clock = clock
        self.pending: dict[str, dict] = {}
        self.slot: dict[str, float] = {}  # symbol -> when its next frame may go out
        self.frames_sent = 0

    def add(self, quote: quotes.Quote, precision: int) -> None:
        frame = self.pending.get(quote.symbol)
        if frame is None:
            self.pending[quote.symbol] = tick_frame(quote, precision)
            return
        mid = float(quote.mid)
        frame.update(bid=float(quote.bid), ask=float(quote.ask), mid=mid, ts_ms=quote.ts_ms, precision=precision,
                     high=max(frame["high"], mid), low=min(frame["low"], mid))

    def _ready(self, symbol: str, now: float) -> bool:
        slot = self.slot.get(symbol)
        return slot is None or now >= slot - CLOCK_SLACK

    def due(self) -> bool:
        now = self.clock()
        return any(self._ready(symbol, now) for symbol in self.pending)

    def ready_at(self) -> float | None:
        """When the earliest pending frame may go out (on `clock`), or None if none waits."""
        if not self.pending:
            return None
        return min(self.slot.get(symbol, float("-inf")) - CLOCK_SLACK for symbol in self.pending)

    def flush(self) -> int:
        now = self.clock()
        ready = [symbol for symbol in self.pending if self._ready(symbol, now)]
        frames = []
        for symbol in ready:
            frame = self.pending.pop(symbol)
            self.emit(symbol, frame)
            frames.append(frame)
            self.slot[symbol] = now + self.interval * MIN_GAP
        if frames and self.emit_board is not None:
            # Pages that watch the whole board (the Markets page) get the same frames in
            # one message: one send per client per flush instead of one per symbol.
            self.emit_board(frames)
        self.frames_sent += len(ready)
        return len(ready)


def socketio_emit(symbol: str, frame: dict) -> None:
    socketio.emit(TICK_EVENT, frame, to=room(symbol))


def socketio_emit_board(frames: list[dict]) -> None:
    socketio.emit(BOARD_EVENT, frames, to=BOARD_ROOM)


class PriceFeed:
    def __init__(self, app: Flask, *, seed: int | None = None, emit: Callable[[str, dict], None] = socketio_emit,
                 emit_board: Callable[[list[dict]], None] | None = socketio_emit_board, clock_ms: Callable[[], int] = quotes.now_ms, monotonic: Callable[[], float] = time.monotonic,
                 adapters: bool = True):
        config = app.config
        self.app = app
        self.clock_ms = clock_ms
        self.monotonic = monotonic
        self.simulator = Simulator(seed if seed is not None else config.get("FEED_SEED"))
        # committed seeds: every simulated step draws from its period's seed (provably fair)
        self.fairness = fairness.FairnessRecorder(self.simulator.seed, config["FEED_TICK_INTERVAL_MS"])
        self.dropped_seen = 0  # the tick store's drops the walks have re-anchored after
        self.authority: AuthorityLock | None = None  # set while run() holds the price authority
        self.tick_interval = config["FEED_TICK_INTERVAL_MS"] / 1000
        self.reload_interval = config["FEED_CONFIG_RELOAD_SECONDS"]
        self.retention_ms = int(config["TICK_RETENTION_HOURS"] * 3_600_000)
        self.tick_ids = store.TickIds()
        self.writer = store.TickWriter(config["TICK_FLUSH_INTERVAL_MS"] / 1000, config["TICK_FLUSH_MAX"], clock=monotonic)
        self.writer.on_flushed = self.tell_tick_listeners
        self.emit_board = emit_board
        self.coalescer = TickCoalescer(emit, config["FEED_EMIT_INTERVAL_MS"] / 1000, clock=monotonic,
                                       emit_board=self.emit_frames)
        self.markets: dict[str, MarketSnapshot] = {}
        self.last_step: dict[str, int] = {}  # symbol -> ts_ms of its last simulated tick
        self.next_step: dict[str, int] = {}  # symbol -> ts_ms its next tick is due
        self.received: collections.deque = collections.deque()  # (symbol, price, bid, ask, ts_ms, source)
        self.use_adapters = adapters
        self.adapters: list = []
        self.config_version: tuple[int, int] | None = None
        self.next_reload = 0.0
        self.next_aggregate = monotonic() + config["CANDLE_AGGREGATE_SECONDS"]
        self.next_prune = monotonic() + 60
        self.next_heartbeat = 0.0
        self.last_tick_ms: int | None = None
        self.ticks_produced = 0
        self.running = False

    # ---- catalogue -----------------------------------------------------------------------
    def reload_markets(self) -> None:
        markets = {m.symbol: MarketSnapshot.of(m) for m in db.session.scalars(db.select(Market))}
        for symbol, market in markets.items():
            if market.simulated and market.active and (symbol in self.simulator.walks or market.initial_price):
                start = None if symbol in self.simulator.walks else self._start_price(market)
                self.simulator.configure(symbol, market.walk_config, start)
            else:
                self.simulator.forget(symbol)
                self.last_step.pop(symbol, None)
                self.next_step.pop(symbol, None)
        db.session.remove()
        self.markets = markets
        self.next_reload = self.monotonic() + self.reload_interval
        for adapter in self.adapters:
            adapter.update_symbols(self._provider_symbols())

    def _start_price(self, market: MarketSnapshot) -> Decimal:
        """Carry on from the last recorded price, so a restart does not make prices jump."""
        last = ticks.tick_at_or_before(market.symbol, self.clock_ms())
        return last.mid if last is not None else market.initial_price

    def _config_changed(self) -> bool:
        version = config_signal.version()
        changed = version != self.config_version
        self.config_version = version
        return changed

    def _provider_symbols(self) -> dict[str, str]:
        return {m.provider_symbol: m.symbol for m in self.markets.values()
                if not m.simulated and m.active and m.provider_symbol}

    # ---- producing ticks ----------------------------------------------------------------
    def receive_price(self, symbol: str, price: Decimal, bid: Decimal | None = None, ask: Decimal | None = None,
                      source: str = "FEED") -> None:
        """Called by the adapters (from their own task) for each provider price."""
        self.received.append((symbol, price, bid, ask, self.clock_ms(), source))

    def publish(self, market: MarketSnapshot, bid: Decimal, ask: Decimal, mid: Decimal, ts_ms: int,
                source: str, seq: int | None = None) -> quotes.Quote:
        if self.authority is not None:
            self.authority.check()  # never a tick past the lease's deadline
        quote = quotes.Quote(market.symbol, bid, ask, mid, self.tick_ids.next(), ts_ms, source)
        quotes.publish_quote(quote, self.authority)
        self.writer.add(store.TickRow(quote.tick_id, market.symbol, ts_ms, bid, ask, mid, source, self.writer.epoch,
                                      seq))
        self.coalescer.add(quote, market.precision)
        self.last_tick_ms = ts_ms
        self.ticks_produced += 1
        return quote

    def step_simulated(self, now_ms: int) -> int:
        produced = 0
        due_ms = int(self.tick_interval * 1000)
        if self.writer.dropped != self.dropped_seen:  # ticks lost unwritten: restart the walks' proofs after them
            self.dropped_seen = self.writer.dropped
            self.fairness.reanchor()
        for symbol in list(self.simulator.walks):
            market = self.markets.get(symbol)
            last = self.last_step.get(symbol)
            next_due = self.next_step.get(symbol)
            if market is None or (next_due is not None and now_ms < next_due):
                continue
            seq, dt, draws = self.fairness.draws_for(symbol, self.simulator.walks[symbol], now_ms, last)
            price = self.simulator.step(symbol, dt, draws)
            self.last_step[symbol] = now_ms
            # keep to the interval's grid, so waking a little late does not slow the tick rate
            on_grid = next_due is not None and now_ms - next_due < due_ms
            self.next_step[symbol] = (next_due if on_grid else now_ms) + due_ms
            self.publish(market, price.bid, price.ask, price.mid, now_ms, "SIM", seq)
            self.fairness.stepped(symbol, price.mid, now_ms)
            produced += 1
        return produced

    def drain_received(self) -> int:
        produced = 0
        while self.received:
            symbol, price, bid, ask, ts_ms, source = self.received.popleft()
            market = self.markets.get(symbol)
            if market is None or market.simulated or not market.active:
                continue
            rounded = quote_from_mid(price, market.precision, market.spread)
            if bid is not None and ask is not None and bid <= ask:
                quantum = Decimal(1).scaleb(-market.precision)
                rounded = type(rounded)(bid.quantize(quantum), ask.quantize(quantum), rounded.mid)
            self.publish(market, rounded.bid, rounded.ask, rounded.mid, ts_ms, source)
            produced += 1
        return produced

    # ---- one pass ----------------------------------------------------------------------
    def run_once(self) -> int:
        now = self.monotonic()
        changed = self._config_changed()
        if changed or now >= self.next_reload:
            self.reload_markets()
        produced = self.step_simulated(self.clock_ms()) + self.drain_received()
        if self.coalescer.due():
            self.coalescer.flush()
        if self.writer.due():
            self.flush_ticks()
        if now >= self.next_aggregate:
            self.maintain()
        if now >= self.next_heartbeat:
            self.beat()
        return produced

    def watermark_ms(self) -> int:
        """The time up to which every tick this feed will make is already made: one ms
        before now (a tick may still be made this very ms), and before any provider price
        received but not yet turned into a tick."""
        through = self.clock_ms() - 1
        if self.received:
            through = min(through, self.received[0][4] - 1)
        return through

    def flush_ticks(self, final: bool = False) -> int:
        try:
            return self.writer.flush(self.watermark_ms(), final=final)
        except store.StaleAuthority as exc:
            raise AuthorityLost(str(exc)) from exc

    def emit_frames(self, frames: list[dict]) -> None:
        """A flush's frames, in one message: to the board room, then to each frame listener
        (app.extensions["frame_listeners"], e.g. the watchlists). A failing listener is logged."""
        if self.emit_board is not None:
            self.emit_board(frames)
        for listener in self.app.extensions.get("frame_listeners", ()):
            try:
                listener(frames)
            except Exception:
                log.exception("frame listener %r failed", listener)

    # ---- tick listeners (the CFD engine) ---------------------------------------------------
    def _tick_listeners(self) -> list:
        return self.app.extensions.get("tick_listeners", [])

    def tell_tick_listeners(self, rows: list[store.TickRow]) -> None:
        """After a flush committed: each listener gets the rows just written, in tick-id
        order (possibly none: a flush is also the listeners' heartbeat). A failing listener
        is logged and never stops the feed; it catches up from the tick store (its own
        watermark)."""
        for listener in self._tick_listeners():
            try:
                listener(rows)
            except Exception:
                log.exception("tick listener %r failed", listener)
                db.session.rollback()
                db.session.remove()

    def tell_authority(self, held: bool) -> None:
        """Tell the listeners that have `on_authority` that this process took (True) or lost /
        gave up (False) the price authority."""
        for listener in self._tick_listeners():
            on_authority = getattr(listener, "on_authority", None)
            if on_authority is None:
                continue
            try:
                on_authority(held)
            except Exception:
                log.exception("tick listener %r failed on taking / losing the authority", listener)
                db.session.rollback()
                db.session.remove()

    def maintain(self, prune: bool | None = None) -> None:
        """Aggregate finished minutes into candles; prune old raw ticks once aggregated."""
        now = self.monotonic()
        self.next_aggregate = now + self.app.config["CANDLE_AGGREGATE_SECONDS"]
        prune = now >= self.next_prune if prune is None else prune
        now_ms = self.clock_ms()
        for symbol in self.markets:
            try:
                candles.aggregate(symbol, now_ms)
                if prune:
                    done = candles.aggregated_until(symbol)
                    if done is not None:
                        store.prune_ticks(symbol, min(now_ms - self.retention_ms, done * 1000))
            except Exception:
                log.exception("candle aggregation failed for %s", symbol)
                db.session.rollback()
            finally:
                db.session.remove()
        if prune:
            self.next_prune = now + 300
        try:  # reveal ended periods (also of idle markets); queue the check of those whose ticks are all stored
            fairness.reveal_ended(now_ms)
            fairness.verify_due(now_ms, settle_ms=int(self.writer.flush_interval * 4000) + 1000)
        except Exception:
            log.exception("fairness reveal / verification failed")
            db.session.rollback()
        finally:
            db.session.remove()

    def beat(self) -> None:
        self.next_heartbeat = self.monotonic() + 1.0
        write_heartbeat({"ts_ms": self.clock_ms(), "last_tick_ms": self.last_tick_ms, "pid": os.getpid(),
                         "epoch": self.writer.epoch, "ticks_dropped": self.writer.dropped}, self.authority)

    def seconds_to_next_event(self, longest: float) -> float:
        """How long the loop may sleep: until the next simulated tick is due or a held-back
        frame may go out, and at most `longest`. Waking on time, not on a fixed pause, keeps
        the tick-to-screen latency down to the fan-out itself."""
        waits = [longest]
        if self.next_step:
            waits.append((min(self.next_step.values()) - self.clock_ms()) / 1000)
        ready = self.coalescer.ready_at()
        if ready is not None:
            waits.append(ready - self.monotonic())
        return max(0.0, min(waits))

    # ---- the loop ------------------------------------------------------------------------
    def start_adapters(self) -> None:
        from .adapters import build_adapters

        self.adapters = build_adapters(self.app.config, self._provider_symbols(), self.receive_price, self.store_history)
        for adapter in self.adapters:
            socketio.start_background_task(adapter.run, lambda: not self.running)

    def store_history(self, symbol: str, bars: list[dict]) -> None:
        """Provider history for a symbol with no candles yet (its chart starts filled);
        called from an adapter's task."""
        now_s = self.clock_ms() // 1000
        complete = [candles.Bar(b["start_s"], b["open"], b["high"], b["low"], b["close"], 0)
                    for b in bars if b["start_s"] + candles.MINUTE <= now_s]
        with self.app.app_context():
            try:
                if candles.aggregated_until(symbol) is None:
                    candles.store_minutes(symbol, complete)
            finally:
                db.session.remove()

    def run(self, seconds: float | None = None) -> None:
        """Run until stop() (or for `seconds`): stand by until this process holds the price
        authority, produce while it holds it, stand by again if it is lost."""
        pause = min(self.tick_interval, self.coalescer.interval, self.writer.flush_interval) / 4
        deadline = None if seconds is None else self.monotonic() + seconds
        lock = AuthorityLock(self.app, monotonic=self.monotonic)
        # A pool of its own: in a web process the requests share the other one, and a
        # burst of them must never hold up the ticks (stale quotes would refuse trades).
        with self.app.app_context(), db.dedicated_engine(self.app):
            self.running = True
            try:
                while self.running and self._stand_by(lock, deadline):
                    try:
                        self._produce(lock, deadline, pause)
                    except AuthorityLost as exc:
                        log.error("lost the price authority (%s): stopped producing ticks", exc)
                        self._forget_tenure(lock)
                        if lock.redis is None:
                            log.critical("another process took the price authority over the same database; "
                                         "this one stops producing for good (run one feed, or set REDIS_URL)")
                            return
            finally:
                self.running = False
                self._finish(lock)

    def _past(self, deadline: float | None) -> bool:
        return deadline is not None and self.monotonic() >= deadline

    def _stand_by(self, lock: AuthorityLock, deadline: float | None) -> bool:
        """Wait until this process holds the authority (True), or until stop() / the deadline."""
        warned = False
        while self.running and not self._past(deadline):
            if lock.acquire(self.clock_ms()):
                self.authority = lock
                self.writer.epoch = lock.epoch
                log.info("took the price authority (epoch %d)", lock.epoch)
                self.tell_authority(True)
                return True
            if not warned:
                log.warning("another feed process holds the price authority; standing by")
                warned = True
            self.received.clear()
            socketio.sleep(lock.renew_every / 2)
        return False

    def _produce(self, lock: AuthorityLock, deadline: float | None, pause: float) -> None:
        self.reload_markets()
        if self.use_adapters and not self.adapters:
            self.start_adapters()
        log.info("price feed running: %d markets, tick every %.0f ms", len(self.markets),
                 self.tick_interval * 1000)
        while self.running and not self._past(deadline):
            lock.renew()
            try:
                self.run_once()
            except AuthorityLost:
                raise
            except Exception:
                log.exception("feed pass failed; carrying on")
                db.session.rollback()
                db.session.remove()
            socketio.sleep(self.seconds_to_next_event(pause))

    def _forget_tenure(self, lock: AuthorityLock) -> None:
        """After losing the authority: nothing unwritten may be written any more, and a later
        tenure starts its walks again from the last recorded prices."""
        lock.release()
        self.authority = None
        self.tell_authority(False)
        self.writer.forget()
        self.fairness.forget()
        self.coalescer.pending.clear()
        self.received.clear()
        for symbol in list(self.simulator.walks):
            self.simulator.forget(symbol)
        self.last_step.clear()
        self.next_step.clear()
        db.session.rollback()
        db.session.remove()

    def _finish(self, lock: AuthorityLock) -> None:
        """Stopping: write the last batch and mark the stop clean, while still the holder."""
        try:
            if self.authority is not None and lock.held():
                self.flush_ticks(final=True)
                try:
                    self.fairness.release()
                except Exception:  # the next holder then records the unused numbers as a gap
                    log.exception("could not give back the unused fairness tick numbers")
        except AuthorityLost as exc:
            log.error("could not write the last ticks: %s", exc)
        finally:
            if self.authority is not None:
                self.tell_authority(False)
            self.authority = None
            lock.release()

    def stop(self) -> None:
        self.running = False


# ---- heartbeat, lock and health ---------------------------------------------------------

# The embedded feed's heartbeat (one app per web process), and when it was written (this
# process's monotonic clock). Tests that run a feed clear it.
_local_heartbeat: dict = {}
_local_heartbeat_written: list[float] = []


def write_heartbeat(beat: dict, lock: AuthorityLock | None = None) -> None:
    """Written by the authority; with its `lock`, only while it still holds it."""
    if current_app.config["REDIS_URL"]:
        from .. import jobs

        if lock is not None:
            lock.fenced_set(HEARTBEAT_KEY, json.dumps(beat), px=HEARTBEAT_TTL_MS)
        else:
            jobs.redis_connection().set(HEARTBEAT_KEY, json.dumps(beat), px=HEARTBEAT_TTL_MS)
    else:
        _local_heartbeat.clear()
        _local_heartbeat.update(beat)
        _local_heartbeat_written[:] = [time.monotonic()]


def read_heartbeat() -> dict | None:
    """The feed's last heartbeat: from Redis, or from this process (the embedded feed)."""
    if current_app.config["REDIS_URL"]:
        from .. import jobs

        raw = jobs.redis_connection().get(HEARTBEAT_KEY)
        return json.loads(raw) if raw else None
    return dict(_local_heartbeat) or None


def read_heartbeat_with_age(now_ms: Callable[[], int]) -> tuple[dict | None, int | None, int]:
    """(heartbeat, its age in ms, the reader's `now_ms()` at the read). The age never relies
    on the writer's clock: it is what the heartbeat's TTL has run down in Redis, or the time
    on this process's monotonic clock since the embedded feed wrote it."""
    if current_app.config["REDIS_URL"]:
        from .. import jobs

        pipe = jobs.redis_connection().pipeline(transaction=True)
        pipe.get(HEARTBEAT_KEY)
        pipe.pttl(HEARTBEAT_KEY)
        before = now_ms()
        raw, ttl = pipe.execute()
        return heartbeat_reading(raw, ttl, (before + now_ms()) // 2)
    read_at = now_ms()
    if not _local_heartbeat or not _local_heartbeat_written:
        return None, None, read_at
    return dict(_local_heartbeat), int((time.monotonic() - _local_heartbeat_written[0]) * 1000), read_at


def heartbeat_reading(raw: bytes | str | None, ttl: int, read_at: int) -> tuple[dict | None, int | None, int]:
    """`read_heartbeat_with_age`'s answer from a GET and a PTTL of HEARTBEAT_KEY read together
    (in one MULTI) around `read_at`."""
    if not raw:
        return None, None, read_at
    return json.loads(raw), (HEARTBEAT_TTL_MS - ttl if ttl >= 0 else None), read_at


def feed_health() -> tuple[bool, dict]:
    """OK when the feed's heartbeat and its last tick are recent. Read from Redis in a
    production web process (the feed runs elsewhere), from this process otherwise."""
    config = current_app.config
    beat = read_heartbeat()
    if beat is None:
        if not config["REDIS_URL"] and not config["EMBEDDED_SERVICES"]:
            return True, {"running": False, "detail": "no feed in this process (embedded services off)"}
        return False, {"running": False, "detail": "no heartbeat from the price feed"}
    now = quotes.now_ms()
    stale_ms = config["FEED_STALE_AFTER_SECONDS"] * 1000
    heartbeat_age = (now - beat["ts_ms"]) / 1000
    last_tick = beat.get("last_tick_ms")
    tick_age = None if last_tick is None else round((now - last_tick) / 1000, 3)
    simulated_active = db.session.scalar(db.select(db.func.count(Market.id)).where(
        Market.active.is_(True), Market.market_type != MarketType.FOREX.value))
    ok = heartbeat_age * 1000 <= stale_ms and (not simulated_active or (tick_age is not None and tick_age * 1000 <= stale_ms))
    return ok, {"running": True, "last_tick_age_s": tick_age, "heartbeat_age_s": round(heartbeat_age, 3),
                "epoch": beat.get("epoch"), "ticks_dropped": beat.get("ticks_dropped", 0)}


def run_feed_service(app: Flask) -> None:
    """The background service registered for the embedded web process and `flask feed run`."""
    feed = PriceFeed(app)
    app.extensions["price_feed"] = feed
    feed.run()
