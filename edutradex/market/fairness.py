"""Provably fair simulated prices (issue #14): committed seeds, their reveal, the export and
its verification.

Per (market, period) the feed draws a random 32-byte seed and stores sha256(seed), the
commitment, before the period starts (it always holds the next period's row); the seed is
kept encrypted with the KYC cipher and revealed once the period has ended. Tick n of the
period draws its randomness from (seed, symbol, n) (fair_rng), and the tick row records n
(`ticks.seq`). The config log (FairnessLogEntry) says which settings shape the prices from
which tick number, where the walk starts (the period's opening price, or the last recorded
price after a restart) and which tick numbers were not recorded (gaps). The export of a
revealed period holds all of it; tools/verify_prices.py recomputes every tick from it.

Only the feed (FairnessRecorder, one per price authority) writes periods and the log."""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from importlib import util as importlib_util
from pathlib import Path

from flask import current_app
from sqlalchemy import case, func, select, update

from .. import jobs
from ..errors import DomainError
from ..extensions import db
from ..types import utcnow
from ..wallet import crypto
from . import fair_rng, quotes
from .models import FairnessLogEntry, FairnessPeriod, Tick
from .simulator import RandomWalk, WalkConfig

log = logging.getLogger(__name__)

EXPORT_FORMAT = "edutradex-fairness/1"
RESERVE_BLOCK = 600  # tick numbers reserved per database write (5 minutes at 2 ticks a second)
VERIFIER_PATH = Path(__file__).resolve().parents[2] / "tools" / "verify_prices.py"
ANCHOR_QUANTUM = Decimal("1e-8")  # anchors are stored as prices (8 places): the walk starts from that value


def period_ms() -> int:
    return int(current_app.config["FAIRNESS_PERIOD_SECONDS"] * 1000)


def period_start(ts_ms: int, length_ms: int) -> int:
    return ts_ms - ts_ms % length_ms


def config_json(config: WalkConfig) -> str:
    return json.dumps({"volatility_mode": config.volatility_mode, "trend_bias": repr(float(config.trend_bias)),
                       "precision": config.precision, "spread": str(config.spread)}, sort_keys=True)


@dataclass
class _Stream:
    """The feed's state for one symbol's current period."""

    walk: RandomWalk
    start_ms: int
    end_ms: int
    seed: bytes
    next_n: int
    reserved_through: int
    config: WalkConfig  # as last logged
    last_mid: Decimal | None = None
    last_ts_ms: int | None = None
    reanchor: bool = False


class FairnessRecorder:
    """Used by the feed loop: before each simulated step, `draws_for` gives the tick number and
    its draws (opening periods, logging config changes and restarts, reserving numbers);
    after it, `stepped` remembers the price the next period opens from.

    While the database is unreachable the feed keeps ticking (as the tick store's buffer
    does): log entries wait in `pending` and are written with a later step, a reservation
    is retried on the next tick, and a restart resumes after the highest number either
    reserved or recorded. Opening a period needs the database (its seed lives there)."""

    def __init__(self, feed_seed: int | None, tick_interval_ms: int):
        self.feed_seed = feed_seed
        self.tick_interval_ms = tick_interval_ms
        self.streams: dict[str, _Stream] = {}
        self.pending: list[dict] = []  # log entries not written yet (database unreachable)

    def reanchor(self) -> None:
        """The tick store dropped unwritten ticks: each walk restarts, at its next tick, from
        its last quoted price, logged as an anchor, so the ticks after the hole still verify."""
        for stream in self.streams.values():
            stream.reanchor = True

    def forget(self, symbol: str | None = None) -> None:
        if symbol is None:
            self.streams.clear()
        else:
            self.streams.pop(symbol, None)

    def draws_for(self, symbol: str, walk: RandomWalk, now_ms: int,
                  previous_ts_ms: int | None) -> tuple[int, float, tuple[float, float, float]]:
        """(tick number, dt, draws) of the step `walk` is about to take at now_ms."""
        stream = self.streams.get(symbol)
        config = walk.config
        if self.pending:
            self._write_pending()
        if stream is None or stream.walk is not walk or now_ms >= stream.end_ms:
            stream = self._open(symbol, walk, now_ms, previous_ts_ms, stream, config)
        elif stream.reanchor and stream.last_mid is not None:
            walk.log_price = math.log(float(stream.last_mid))
            self._log(symbol, stream.start_ms, "REANCHOR", stream.next_n, config=config_json(config),
                      anchor_mid=stream.last_mid, anchor_ts_ms=stream.last_ts_ms)
            stream.config = config
        elif config is not stream.config and config != stream.config:
            self._log(symbol, stream.start_ms, "CONFIG", stream.next_n, config=config_json(config))
            stream.config = config
        stream.reanchor = False
        n = stream.next_n
        if n > stream.reserved_through:
            try:
                _reserve(symbol, stream.start_ms, n + RESERVE_BLOCK - 1)
                stream.reserved_through = n + RESERVE_BLOCK - 1
            except Exception:  # noqa: BLE001 - retried on the next tick; a restart also resumes after recorded numbers
                log.warning("%s: could not reserve tick numbers (database unreachable); retrying", symbol)
        stream.next_n = n + 1
        dt = fair_rng.step_seconds(now_ms, stream.last_ts_ms)
        return n, dt, fair_rng.draws(stream.seed, symbol, n)

    def release(self) -> None:
        """A clean stop: give back the reserved numbers not used, so the next holder resumes
        right after the last tick instead of recording them as a gap."""
        if self.pending:
            self._write_pending()
        for symbol, stream in self.streams.items():
            _reserve(symbol, stream.start_ms, stream.next_n - 1, give_back=True)
        self.streams.clear()

    def _log(self, symbol: str, start: int, kind: str, from_tick: int, **values) -> None:
        self.pending.append({"symbol": symbol, "period_start_ms": start, "kind": kind, "from_tick": from_tick,
                             "recorded_at": utcnow(), **values})
        self._write_pending()

    def _write_pending(self) -> None:
        try:
            with db.engine.begin() as conn:
                conn.execute(FairnessLogEntry.__table__.insert(), self.pending)
        except Exception:  # noqa: BLE001 - kept, and written with a later step
            log.warning("could not write %d fairness log entries (database unreachable); keeping them",
                        len(self.pending))
            return
        self.pending = []

    def stepped(self, symbol: str, mid: Decimal, ts_ms: int) -> None:
        stream = self.streams[symbol]
        stream.last_mid, stream.last_ts_ms = mid, ts_ms

    def _open(self, symbol: str, walk: RandomWalk, now_ms: int, previous_ts_ms: int | None,
              previous: _Stream | None, config: WalkConfig) -> _Stream:
        """Start (or take over) the period that holds now_ms: its seed, where its numbering
        resumes, and the anchor the walk starts from, logged before the first draw."""
        length = period_ms()
        start = period_start(now_ms, length)
        row = _period_row(symbol, start, length, now_ms, self.feed_seed)
        _period_row(symbol, start + length, length, now_ms, self.feed_seed)  # the next commitment, ahead
        reveal_ended(now_ms)
        if previous is not None and previous.walk is walk and previous.last_mid is not None:
            # the same walk rolls into a new period: it opens from the last price quoted
            kind, anchor_mid, anchor_ts = "OPEN", previous.last_mid, previous.last_ts_ms
            walk.log_price = math.log(float(anchor_mid))
        else:
            # a new walk (feed start, restart, market switched on): it starts from the last
            # recorded price, as if that price had been one tick interval ago
            kind, anchor_ts = "RESTART", (previous_ts_ms if previous_ts_ms is not None
                                          else now_ms - self.tick_interval_ms)
            anchor_mid = Decimal(repr(walk.price)).quantize(ANCHOR_QUANTUM)
            walk.log_price = math.log(float(anchor_mid))
        recorded = db.session.scalar(select(func.max(Tick.seq)).where(
            Tick.symbol == symbol, Tick.ts_ms >= start, Tick.ts_ms < start + length)) or 0
        used = max(row.reserved_through, recorded)
        if recorded < used:
            self._log(symbol, start, "GAP", recorded + 1, to_tick=used)
            log.warning("%s: tick numbers %d..%d of the period were used or reserved but not recorded "
                        "(recorded as a gap)", symbol, recorded + 1, used)
        self._log(symbol, start, kind, used + 1, config=config_json(config), anchor_mid=anchor_mid, anchor_ts_ms=anchor_ts)
        seed = _seed_of(row)
        db.session.remove()
        stream = _Stream(walk, start, start + length, seed, used + 1, used, config,
                         last_mid=anchor_mid, last_ts_ms=anchor_ts)
        self.streams[symbol] = stream
        return stream


def _reserve(symbol: str, start_ms: int, through: int, *, give_back: bool = False) -> None:
    """Raise the period's reservation to `through` (never lower it: a paused former holder
    waking up must not shrink what the current one reserved); `give_back`: set it, on a clean
    stop of the holder."""
    column = FairnessPeriod.reserved_through
    value = through if give_back else case((column < through, through), else_=column)
    with db.engine.begin() as conn:
        conn.execute(update(FairnessPeriod).where(FairnessPeriod.symbol == symbol, FairnessPeriod.start_ms == start_ms)
                     .values(reserved_through=value))


def _seed_of(row: FairnessPeriod) -> bytes:
    if row.seed is not None:
        return bytes.fromhex(row.seed)
    return bytes.fromhex(crypto.decrypt_text(row.seed_encrypted))


def _period_row(symbol: str, start: int, length: int, now_ms: int, feed_seed: int | None) -> FairnessPeriod:
    """The period's row, created with a fresh seed and its commitment if missing."""
    row = db.session.scalar(select(FairnessPeriod).where(FairnessPeriod.symbol == symbol,
                                                         FairnessPeriod.start_ms == start))
    if row is not None:
        return row
    seed = fair_rng.new_seed() if feed_seed is None else fair_rng.replay_seed(feed_seed, symbol, start)
    row = FairnessPeriod(symbol=symbol, start_ms=start, end_ms=start + length, commitment=fair_rng.commitment(seed),
                         seed_encrypted=crypto.encrypt_text(seed.hex()), committed_at_ms=now_ms, reserved_through=0,
                         status="COMMITTED")
    db.session.add(row)
    db.session.commit()
    if now_ms > start:
        log.warning("%s: the period starting at %d ms was committed late, at %d ms (no feed ran before it)",
                    symbol, start, now_ms)
    return row


def reveal_ended(now_ms: int) -> int:
    """Reveal the seed of every period that has ended."""
    rows = db.session.scalars(select(FairnessPeriod).where(FairnessPeriod.seed.is_(None),
                                                           FairnessPeriod.end_ms <= now_ms)).all()
    for row in rows:
        row.seed = crypto.decrypt_text(row.seed_encrypted)
        row.seed_encrypted = None
        row.revealed_at_ms = now_ms
        row.status = "REVEALED"
    if rows:
        db.session.commit()
    return len(rows)


# ---- reading: the page, the export, the verification -----------------------------------------

def current_period(symbol: str, now_ms: int) -> FairnessPeriod | None:
    return db.session.scalar(select(FairnessPeriod).where(
        FairnessPeriod.symbol == symbol, FairnessPeriod.start_ms <= now_ms, FairnessPeriod.end_ms > now_ms))


def next_period(symbol: str, now_ms: int) -> FairnessPeriod | None:
    return db.session.scalar(select(FairnessPeriod).where(FairnessPeriod.symbol == symbol,
                                                          FairnessPeriod.start_ms > now_ms)
                             .order_by(FairnessPeriod.start_ms).limit(1))


def past_periods(symbol: str, now_ms: int, page: int, per_page: int = 24) -> tuple[list[FairnessPeriod], int]:
    where = (FairnessPeriod.symbol == symbol, FairnessPeriod.end_ms <= now_ms)
    total = db.session.scalar(select(func.count(FairnessPeriod.id)).where(*where))
    rows = db.session.scalars(select(FairnessPeriod).where(*where).order_by(FairnessPeriod.start_ms.desc())
                              .offset((page - 1) * per_page).limit(per_page)).all()
    return rows, total


def count_past_after(symbol: str, now_ms: int, start_ms: int) -> int:
    """How many ended periods are newer than the one starting at start_ms (its page)."""
    return db.session.scalar(select(func.count(FairnessPeriod.id)).where(
        FairnessPeriod.symbol == symbol, FairnessPeriod.end_ms <= now_ms, FairnessPeriod.start_ms > start_ms))


def period_containing(symbol: str, ts_ms: int) -> FairnessPeriod | None:
    return db.session.scalar(select(FairnessPeriod).where(
        FairnessPeriod.symbol == symbol, FairnessPeriod.start_ms <= ts_ms, FairnessPeriod.end_ms > ts_ms))


def get_period(symbol: str, start_ms: int) -> FairnessPeriod:
    row = db.session.scalar(select(FairnessPeriod).where(FairnessPeriod.symbol == symbol,
                                                         FairnessPeriod.start_ms == start_ms))
    if row is None:
        raise DomainError(f"{symbol} has no fairness period starting at {start_ms} ms.", status_code=404)
    return row


def export(period: FairnessPeriod) -> dict:
    """The verifier's input. Refused before the seed is revealed."""
    if period.seed is None:
        raise DomainError("This period has not ended yet: its seed is revealed, and its export available, "
                          "once it is over.", status_code=409)
    kept_ms = int(current_app.config["TICK_RETENTION_HOURS"] * 3_600_000)
    if period.end_ms < quotes.now_ms() - kept_ms:
        raise DomainError("The raw ticks of this period have been pruned (they are kept "
                          f"{current_app.config['TICK_RETENTION_HOURS']:g} hours), so it can no longer be exported; "
                          "its verification result above was recorded while they were kept.", status_code=410)
    entries = db.session.scalars(select(FairnessLogEntry).where(
        FairnessLogEntry.symbol == period.symbol, FairnessLogEntry.period_start_ms == period.start_ms)
        .order_by(FairnessLogEntry.from_tick, FairnessLogEntry.id)).all()
    ticks = db.session.execute(select(Tick.seq, Tick.ts_ms, Tick.bid, Tick.ask, Tick.mid).where(
        Tick.symbol == period.symbol, Tick.ts_ms >= period.start_ms, Tick.ts_ms < period.end_ms,
        Tick.seq.is_not(None)).order_by(Tick.seq)).all()
    return {
        "format": EXPORT_FORMAT, "symbol": period.symbol, "period_start_ms": period.start_ms,
        "period_end_ms": period.end_ms, "commitment": period.commitment, "seed": period.seed,
        "config_log": [{"from_tick": e.from_tick, "kind": e.kind, "config": json.loads(e.config),
                        "anchor": None if e.anchor_mid is None else {"mid": str(e.anchor_mid), "ts_ms": e.anchor_ts_ms}}
                       for e in entries if e.kind != "GAP"],
        "gaps": [{"from_tick": e.from_tick, "to_tick": e.to_tick} for e in entries if e.kind == "GAP"],
        "ticks": [{"n": seq, "ts_ms": ts, "bid": str(bid), "ask": str(ask), "mid": str(mid)}
                  for seq, ts, bid, ask, mid in ticks],
    }


@functools.cache
def _verifier():
    """tools/verify_prices.py, the script traders run: the app verifies with the very same code."""
    spec = importlib_util.spec_from_file_location("edutradex_verify_prices", VERIFIER_PATH)
    module = importlib_util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def verify_period(period: FairnessPeriod) -> tuple[str, str]:
    """Recompute a revealed period from the database and record the outcome on its row:
    (VERIFIED, PARTIAL or FAILED, the verifier's message)."""
    data = export(period)
    result = _verifier().verify(data)
    seqs = [t["n"] for t in data["ticks"]]
    period.tick_count = len(seqs)
    period.first_tick = seqs[0] if seqs else None
    period.last_tick = seqs[-1] if seqs else None
    period.status = ("PARTIAL" if result.unverifiable else "VERIFIED") if result.ok else "FAILED"
    period.status_detail = result.message[:300]
    status = period.status
    db.session.commit()
    return status, result.message


def verify_due(now_ms: int, settle_ms: int) -> int:
    """Queue the check of each revealed period whose ticks are all stored (ended more than
    settle_ms ago). A job (an RQ worker in production), so the feed loop never spends the
    recomputation's CPU time between two ticks; the deterministic id queues it once."""
    ids = db.session.scalars(select(FairnessPeriod.id).where(FairnessPeriod.status == "REVEALED",
                                                             FairnessPeriod.end_ms <= now_ms - settle_ms)
                             .order_by(FairnessPeriod.end_ms).limit(50)).all()
    for period_id in ids:
        jobs.enqueue(verify_period_job, period_id, job_id=f"fairness-verify-{period_id}")
    return len(ids)


@jobs.job
def verify_period_job(period_id: int) -> None:
    period = db.session.get(FairnessPeriod, period_id)
    if period is None or period.status != "REVEALED":
        return
    status, message = verify_period(period)
    if status == "FAILED":
        log.error("%s: the period starting at %d ms FAILED verification: %s", period.symbol, period.start_ms, message)
