"""Helpers for the fair-play tests: positions opened at a chosen moment, and a LIVE
competition with a mirrored pair of traders."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

from edutradex.competitions import positions
from edutradex.competitions.models import CfdPosition
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.competitions.cfd import at, join, live_account

EURUSD = "OTC_EUR_USD"


def open_at(participant_id: int, side: str, moment, *, symbol: str = EURUSD, lots: str = "0.1",
            tick: positions.At | None = None) -> int:
    """A market position opened at `moment` (the server's opening time)."""
    participant = positions.lock_account(participant_id)
    position = positions.open_position(participant, symbol=symbol, side=side, lots=Decimal(lots), leverage=30,
                                       at=tick or at("1.08500", "1.08510"), rule="market", reason="MARKET",
                                       order=None)
    db.session.flush()
    db.session.execute(update(CfdPosition).where(CfdPosition.id == position.id).values(opened_at=moment))
    db.session.commit()
    return position.id


def mirrored_pairs(count: int = 3, start: datetime | None = None) -> tuple[int, int, int]:
    """(competition id, user a, user b): a LIVE competition where a buys and b sells the
    same symbol 400 ms apart, `count` times a minute apart."""
    cid, pa, ua = live_account()
    pb, ub = join(cid)
    start = start or utcnow() - timedelta(minutes=30)
    for n in range(count):
        open_at(pa, "BUY", start + timedelta(minutes=n))
        open_at(pb, "SELL", start + timedelta(minutes=n, milliseconds=400))
    return cid, ua, ub
