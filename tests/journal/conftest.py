"""Closed trades for the journal: settled rise/fall trades and closed CFD positions, written
as the settlement and the engine leave them (the journal only reads them)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from edutradex.binary.models import Trade
from edutradex.competitions.models import CfdPosition
from edutradex.extensions import db

_keys = itertools.count(1)
STAKE = Decimal("10.00")


def settled_trade(user_id: int, symbol: str, pnl: str, closed_at: datetime, *, participant_id: int | None = None,
                  status: str = "SETTLED") -> int:
    """A settled rise/fall trade of stake 10.00 whose net result is `pnl` (-10.00 = a loss)."""
    pnl_d = Decimal(pnl)
    payout = STAKE + pnl_d
    result = "WIN" if pnl_d > 0 else "LOSS" if pnl_d < 0 else "TIE"
    opened = closed_at - timedelta(minutes=1)
    trade = Trade(user_id=user_id, participant_id=participant_id, symbol=symbol, direction="UP", stake=STAKE,
                  payout_percent=Decimal("80.00"), potential_payout=Decimal("18.00"), entry_price=Decimal("1.10000"),
                  entry_bid=Decimal("1.09995"), entry_ask=Decimal("1.10005"), entry_ts_ms=int(opened.timestamp() * 1000),
                  duration_seconds=60, opened_at=opened, expires_at=closed_at,
                  expires_ms=int(closed_at.timestamp() * 1000), status=status,
                  result=result if status == "SETTLED" else None, rule="COMPARE" if status == "SETTLED" else None,
                  exit_price=Decimal("1.10010") if status == "SETTLED" else None,
                  payout=payout if status == "SETTLED" else None,
                  settled_at=closed_at if status == "SETTLED" else None, idempotency_key=f"journal-{next(_keys)}")
    db.session.add(trade)
    db.session.commit()
    return trade.id


def closed_position(competition_id: int, participant_id: int, user_id: int, symbol: str, pnl: str,
                    closed_at: datetime, *, status: str = "CLOSED") -> int:
    position = CfdPosition(competition_id=competition_id, participant_id=participant_id, user_id=user_id,
                           symbol=symbol, side="BUY", lots=Decimal("0") if status == "CLOSED" else Decimal("1"),
                           opened_lots=Decimal("1"), contract_size=Decimal("100000"), quote_currency="USD",
                           leverage=30, margin=Decimal("0.00"), open_price=Decimal("1.10000"), status=status,
                           realized_pnl=Decimal(pnl) if status == "CLOSED" else Decimal("0.00"),
                           close_price=Decimal("1.10100") if status == "CLOSED" else None,
                           close_reason="MANUAL" if status == "CLOSED" else None,
                           opened_at=closed_at - timedelta(minutes=5),
                           closed_at=closed_at if status == "CLOSED" else None)
    db.session.add(position)
    db.session.commit()
    return position.id
