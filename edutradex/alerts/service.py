"""Setting, listing and deleting price alerts, and reading their notifications.

Refused, with nothing written: an unknown or inactive market, a level that is not a plain
positive number with at most the market's decimals (or above MAX_LEVEL), a market with no
price yet (nothing to say which side of the level it is on), an alert that would fire at
once (``"EUR/USD OTC is already above 1.10000 (now 1.10230)."``: we refuse rather than
create-and-fire, so a typo never sends an email), an unknown expiry, and a user's
ALERTS_PER_USER-th + 1 active alert. Each service commits its own transaction, then tells
the engine (listener.notify)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select, update

from ..auth.models import User
from ..errors import Conflict, DomainError, NotFound, found
from ..extensions import db
from ..market.models import Market
from ..market.quotes import latest_quote
from ..parsing import parse_decimal
from ..templating import datetime_utc
from ..types import utcnow
from . import book
from .models import AlertFire, AlertKind, AlertStatus, PriceAlert

MAX_LEVEL = Decimal("1000000000")
# the choices of the form's "Expires" field
EXPIRIES: dict[str, tuple[str, timedelta | None]] = {
    "": ("Never", None),
    "1h": ("In 1 hour", timedelta(hours=1)),
    "1d": ("In 1 day", timedelta(days=1)),
    "7d": ("In 7 days", timedelta(days=7)),
    "30d": ("In 30 days", timedelta(days=30)),
}
KIND_LABELS = {AlertKind.ABOVE.value: "Above", AlertKind.BELOW.value: "Below", AlertKind.CROSSING.value: "Crossing"}
NOTIFICATIONS_PER_PAGE = 50


@dataclass(frozen=True)
class Choices:
    kinds: dict[str, str]
    expiries: dict[str, tuple[str, timedelta | None]]


CHOICES = Choices(KIND_LABELS, EXPIRIES)  # what the alert form offers (templates: alert_choices)


def _price(value: Decimal, precision: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-precision)):f}"


def create_alert(user_id: int, symbol: str, kind: str, level: str, *, repeat: bool = False,
                 expires: str = "") -> PriceAlert:
    market = db.session.scalar(select(Market).where(Market.symbol == (symbol or "").strip().upper(),
                                                    Market.active.is_(True)))
    if market is None:
        raise DomainError(f"Unknown market {symbol!r}.", field="symbol")
    if kind not in KIND_LABELS:
        raise DomainError("Choose above, below or crossing.", field="kind")
    value = parse_decimal(level, "Price", places=market.precision, minimum=Decimal(0), above_minimum=True,
                          maximum=MAX_LEVEL, example=_price(market.initial_price or Decimal("1.1"), market.precision))
    if expires not in EXPIRIES:
        raise DomainError("Choose when the alert expires from the list.", field="expires")
    quote = latest_quote(market.symbol)
    if quote is None:
        raise Conflict(f"{market.name} has no price yet to set an alert against. Try again in a moment.",
                       field="level")
    watching = book.first_watch(kind, quote.mid, value)
    if watching is None:
        now, at = _price(quote.mid, market.precision), _price(value, market.precision)
        side = ("at" if quote.mid == value else
                "above" if quote.mid > value else "below")
        raise Conflict(f"{market.name} is already {side} {at} (now {now}): this alert would fire at once. "
                       f"Choose a level the price has not reached.", field="level")
    # one at a time per user: two tabs cannot both take the last place (PostgreSQL row lock)
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update())
    limit = current_app.config["ALERTS_PER_USER"]
    active = db.session.scalar(select(func.count()).select_from(PriceAlert).where(
        PriceAlert.user_id == user_id, PriceAlert.status == AlertStatus.ACTIVE.value))
    if active >= limit:
        db.session.rollback()
        raise Conflict(f"You have {active} active alerts, the most allowed ({limit}). Delete one first.")
    delta = EXPIRIES[expires][1]
    alert = PriceAlert(user_id=user_id, symbol=market.symbol, kind=kind, level=value, repeat=bool(repeat),
                       watching=watching, expires_at=utcnow() + delta if delta else None,
                       created_price=quote.mid.quantize(Decimal("0.00000001")), last_tick_id=quote.tick_id)
    db.session.add(alert)
    db.session.commit()
    _tell_engine(alert.id)
    return alert


def delete_alert(user_id: int, alert_id: int) -> None:
    """Someone else's alert (or none) is a 404: its existence is not disclosed."""
    deleted = db.session.execute(
        update(PriceAlert).where(PriceAlert.id == alert_id, PriceAlert.user_id == user_id,
                                 PriceAlert.status != AlertStatus.DELETED.value)
        .values(status=AlertStatus.DELETED.value, version=PriceAlert.version + 1)
        .returning(PriceAlert.id)).first()
    if deleted is None:
        db.session.rollback()
        raise NotFound("No such alert.")
    db.session.commit()
    _tell_engine(alert_id)


def _tell_engine(alert_id: int) -> None:
    from .listener import notify

    notify(alert_id)


@dataclass(frozen=True)
class AlertRow:
    alert: PriceAlert
    market_name: str
    level: str
    description: str


def describe(alert: PriceAlert, market_name: str, precision: int) -> str:
    level = _price(alert.level, precision)
    if alert.kind == AlertKind.ABOVE:
        what = f"rises to {level} or above"
    elif alert.kind == AlertKind.BELOW:
        what = f"falls to {level} or below"
    else:
        what = f"crosses {level}"
    return f"{market_name} {what}, {'every time' if alert.repeat else 'once'}"


def list_alerts(user_id: int) -> list[AlertRow]:
    """The user's alerts that are not deleted, newest first."""
    rows = db.session.execute(
        select(PriceAlert, Market.name, Market.precision).join(Market, Market.symbol == PriceAlert.symbol)
        .where(PriceAlert.user_id == user_id, PriceAlert.status != AlertStatus.DELETED.value)
        .order_by(PriceAlert.id.desc())).all()
    return [AlertRow(alert, name, _price(alert.level, precision), describe(alert, name, precision))
            for alert, name, precision in rows]


def alert_for_user(user_id: int, alert_id: int) -> PriceAlert:
    alert = db.session.get(PriceAlert, alert_id)
    return found(alert if alert is not None and alert.user_id == user_id else None, "No such alert.")


# ---- notifications (the fires) ------------------------------------------------------------

def unread_count(user_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(AlertFire).where(
        AlertFire.user_id == user_id, AlertFire.read_at.is_(None))) or 0


RECENT_TOAST_SECONDS = 60


def recent_unread(user_id: int, seconds: int = RECENT_TOAST_SECONDS, limit: int = 3) -> list[dict]:
    """The user's unread fires of the last `seconds`, newest first, as the `alert_fired`
    frame carries them (events.py: a new connection's catch-up)."""
    since = utcnow() - timedelta(seconds=seconds)
    rows = db.session.execute(select(AlertFire.id, AlertFire.message, AlertFire.tick_id, AlertFire.created_at).where(
        AlertFire.user_id == user_id, AlertFire.read_at.is_(None), AlertFire.created_at >= since)
        .order_by(AlertFire.id.desc()).limit(limit)).all()
    return [fire_frame(*row) for row in rows]


def fire_frame(fire_id: int, message: str, tick_id: int, at: datetime) -> dict:
    """A fire as the browser gets it (`alert_fired`, the catch-up): alerts.js toasts the
    message and adds the row to a live /notifications page."""
    return {"fire_id": fire_id, "message": message, "tick_id": tick_id, "at": datetime_utc(at)}


def notifications(user_id: int, page: int = 1, per_page: int = NOTIFICATIONS_PER_PAGE):
    """The user's notifications, newest first, one page (a Flask-SQLAlchemy Pagination)."""
    return db.paginate(select(AlertFire).where(AlertFire.user_id == user_id).order_by(AlertFire.id.desc()),
                       page=page, per_page=per_page, error_out=False)


def mark_read(user_id: int, fire_id: int | None = None) -> int:
    """One notification (404 if not the user's) or all of them. Returns the unread count."""
    query = update(AlertFire).where(AlertFire.user_id == user_id, AlertFire.read_at.is_(None))
    if fire_id is not None:
        owned = db.session.scalar(select(AlertFire.id).where(AlertFire.id == fire_id, AlertFire.user_id == user_id))
        if owned is None:
            db.session.rollback()
            raise NotFound("No such notification.")
        query = query.where(AlertFire.id == fire_id)
    db.session.execute(query.values(read_at=utcnow()))
    db.session.commit()
    return unread_count(user_id)


def expires_label(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
