"""A fair gate between a competition's trades and the steps that close it (PostgreSQL).

Every placement (rise/fall and CFD) and every CFD trigger holds the competition row FOR
SHARE until its commit, and the end (or a cancel) updates that row: they exclude each
other, so no trade opens behind the closer. But PostgreSQL's row locks are not queued
for share lockers: a new FOR SHARE joins the lockers already there even while an UPDATE
waits, so a steady stream of placements can starve the end for as long as it lasts (a CI
run saw the end wait 15 s behind eight traders placing in a loop).

The heavyweight lock manager does queue fairly: a shared request waits behind a waiting
exclusive one. So each placement also takes a shared transaction-scoped advisory lock on
the competition, in the same statement as its row lock and evaluated before it (the
scan's target list is computed below the row-locking node), and the closing steps take
the exclusive one first, only when the competition is due. Once the end asks, the
placements in flight finish, new ones wait, the end commits, and they see ENDED.

SQLite has one writer at a time (queued by its busy timeout): nothing to add there.
"""

from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from .models import Competition

GATE_CLASS = 0x45445843  # "EDXC": the advisory-lock namespace of competitions (an int4)


def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def shared(competition_id: int) -> list:
    """The extra column a FOR SHARE select of the competition row adds (none on SQLite)."""
    return [func.pg_advisory_xact_lock_shared(GATE_CLASS, competition_id)] if _postgres() else []


def close(competition_id: int, *conditions) -> None:
    """Take the exclusive gate for this transaction, if the competition row matches
    ``conditions`` (e.g. LIVE and due), so an end that is not due blocks nobody."""
    if _postgres():
        db.session.execute(select(func.pg_advisory_xact_lock(GATE_CLASS, Competition.id))
                           .where(Competition.id == competition_id, *conditions))
