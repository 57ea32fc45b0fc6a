"""Sample competitions for a laptop (`flask seed`, which `make run` runs; never the deploy's
`flask seed --reference`): so a new user finds something to join and trade in the lobby.

Both are free (no credits move), published through the same service as an admin's, and
recurring: when one starts, the competition clock schedules the next day's.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..types import utcnow
from . import service
from .models import Competition

# Registration is open from the seed; trading starts this long after it.
STARTS_AFTER = timedelta(minutes=5)

SAMPLES = (
    {"name": "Daily CFD Sprint", "slug": "daily-cfd-sprint", "kind": "CFD", "length": timedelta(hours=23),
     "description": "A free practice contest: every trader starts with 10,000 USD of competition money and trades "
                    "CFDs (buy or sell, leverage, stop-loss and take-profit) on the simulated markets. The best "
                    "equity at the end ranks first. No credits are involved. A new one starts every day."},
    {"name": "Rise/Fall Hour", "slug": "rise-fall-hour", "kind": "RISE_FALL", "length": timedelta(hours=1),
     "description": "A free one-hour rise/fall tournament: everyone starts with 10,000 USD of competition money and "
                    "trades UP/DOWN with it. The best balance at the end ranks first. No credits are involved. "
                    "A new one starts every day."},
)


def seed_sample_competitions() -> str | None:
    """Publish the samples when there is no competition at all yet (idempotent)."""
    if db.session.scalar(select(func.count(Competition.id))):
        return None
    now = utcnow().replace(second=0, microsecond=0)
    start = now + STARTS_AFTER + timedelta(minutes=1)
    names = []
    for sample in SAMPLES:
        competition = service.create_competition({
            "name": sample["name"], "slug": sample["slug"], "kind": sample["kind"],
            "description": sample["description"], "entry_fee": "0", "starting_capital": "10000",
            "min_participants": 1, "max_participants": 1000, "registration_opens_at": now,
            "registration_closes_at": start, "start_at": start, "end_at": start + sample["length"],
            "repeats": "DAILY", "prize_table": [],
        })
        service.publish_competition(competition.id, now=now)
        names.append(sample["name"])
    return f"Competitions: published the samples {', '.join(names)} (free, daily; trading starts {start:%H:%M} UTC)."
