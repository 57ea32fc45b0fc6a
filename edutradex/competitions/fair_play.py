"""Fair play (issue #13): flags for an admin, never an automatic punishment.

``scan(competition_id)`` looks for, in a handful of set-based queries over the whole
competition (never a query per participant):

- SHARED_DEVICE: two or more participants seen on one browser (the device-id cookie of
  devices.py, recorded when they join and when they open a trade page);
- SHARED_IDENTITY: two or more participants whose KYC submissions name one person, by the
  keyed fingerprints of the document (country + number) or of the name + date of birth
  stored at submission (wallet/crypto.identity_fingerprints): nobody's details are decrypted;
- MIRRORED_TRADES: two participants opening opposite positions (BUY / SELL, or UP / DOWN in
  a RISE_FALL competition) on one symbol within MIRROR_WINDOW_MS of each other, at least
  MIRROR_MIN_PAIRS times: one wins what the other loses;
- STALE_QUOTE_PROFIT: a participant more than STALE_PROFIT_SHARE of whose positive realised
  P&L comes from positions opened (market order) or closed (by hand) on a quote older than
  FEED_STALE_AFTER_SECONDS when the fill was made (CfdFill: ``created_at`` - ``tick_ts_ms``).
  Fills the engine makes at a tick (limit, stop, SL, TP, stop-out, the end) are at that
  tick by construction and are not counted.

Each flag is stored once per (competition, kind, participants): a re-scan refreshes an
OPEN flag's evidence and leaves a dismissed or acted-on flag as the admin left it. The scan
runs as a job (deterministic id ``competition-<id>-fair-play``) when a competition ends,
every SCAN_INTERVAL_SECONDS while it is LIVE (the lifecycle clock), and when an admin asks.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import current_app
from sqlalchemy import BigInteger, and_, case, func, literal, or_, select, true, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from .. import jobs
from ..auth.models import User
from ..binary.models import Trade
from ..errors import Conflict, DomainError, NotFound
from ..extensions import db
from ..types import utcnow
from ..wallet.models import KycSubmission
from . import service
from .fair_play_models import CompetitionFlag, FlagKind, FlagStatus, ParticipantDevice
from .models import CfdFill, CfdPosition, Competition, CompetitionStatus, Participant, ParticipantStatus

log = logging.getLogger(__name__)

MIRROR_WINDOW_MS = 1000  # opposite positions opened this close together are "at once"
MIRROR_MIN_PAIRS = 3  # a pair of participants is flagged from this many mirrored openings
STALE_PROFIT_SHARE = Decimal("0.5")  # flagged when the stale share of positive realised P&L is above this
SCAN_INTERVAL_SECONDS = 300  # how often the clock re-scans each LIVE competition
EVIDENCE_ROWS = 100  # at most this many pairs / trades kept in one flag's evidence

KIND_LABELS = {
    FlagKind.SHARED_DEVICE.value: "Accounts on one device",
    FlagKind.SHARED_IDENTITY.value: "Accounts of one KYC identity",
    FlagKind.MIRRORED_TRADES.value: "Mirrored trades",
    FlagKind.STALE_QUOTE_PROFIT.value: "Profit from stale quotes",
}


class EpochMs(FunctionElement):
    """Milliseconds since the epoch of a (naive UTC) timestamp column, in SQL."""
    type = BigInteger()
    inherit_cache = True
    name = "epoch_ms"


@compiles(EpochMs)
def _epoch_ms_sqlite(element, compiler, **kw):
    return f"CAST(ROUND((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400000) AS INTEGER)"


@compiles(EpochMs, "postgresql")
def _epoch_ms_postgresql(element, compiler, **kw):
    return f"CAST(ROUND(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000) AS BIGINT)"


@dataclass
class Finding:
    kind: str
    user_ids: list[int]
    evidence: dict

    @property
    def key(self) -> str:
        """The sorted user ids; hashed when there are too many for the column (a device
        shared by a whole classroom)."""
        key = ",".join(str(u) for u in self.user_ids)
        return key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment is not None else None


def _active(competition_id: int):
    return and_(Participant.competition_id == competition_id, Participant.status == ParticipantStatus.ACTIVE.value)


# ---- the checks -------------------------------------------------------------------------

def _group_by_users(matches: dict[str, dict[int, dict]], kind: str, label_of) -> list[Finding]:
    """{thing shared: {user id: seen}} -> one finding per set of users sharing something."""
    by_users: dict[tuple[int, ...], list[dict]] = defaultdict(list)
    for thing, seen in sorted(matches.items()):
        if len(seen) < 2:
            continue
        users = tuple(sorted(seen))
        by_users[users].append({**label_of(thing), "seen": [{"user_id": u, **seen[u]} for u in users]})
    return [Finding(kind, list(users), {"matches": items}) for users, items in by_users.items()]


def shared_devices(competition_id: int) -> list[Finding]:
    d = ParticipantDevice
    rows = db.session.execute(
        select(d.device_id, d.user_id, d.first_seen_at, d.last_seen_at)
        .join(Participant, and_(Participant.competition_id == d.competition_id, Participant.user_id == d.user_id))
        .where(d.competition_id == competition_id, _active(competition_id))).all()
    matches: dict[str, dict[int, dict]] = defaultdict(dict)
    for device_id, user_id, first, last in rows:
        matches[device_id][user_id] = {"first_seen_at": _iso(first), "last_seen_at": _iso(last)}
    return _group_by_users(matches, FlagKind.SHARED_DEVICE.value, lambda device: {"device": device[:12]})


def shared_identities(competition_id: int) -> list[Finding]:
    k = KycSubmission
    rows = db.session.execute(
        select(k.document_fingerprint, k.person_fingerprint, k.user_id, k.submitted_at, k.status)
        .join(Participant, Participant.user_id == k.user_id)
        .where(_active(competition_id),
               or_(k.document_fingerprint.is_not(None), k.person_fingerprint.is_not(None)))).all()
    matches: dict[str, dict[int, dict]] = defaultdict(dict)
    for document, person, user_id, submitted_at, status in rows:
        seen = {"submitted_at": _iso(submitted_at), "kyc_status": status}
        if document:
            matches[f"document:{document}"].setdefault(user_id, seen)
        if person:
            matches[f"person:{person}"].setdefault(user_id, seen)

    def label(thing: str) -> dict:
        what, fingerprint = thing.split(":", 1)
        return {"match": "ID document" if what == "document" else "name and date of birth",
                "fingerprint": fingerprint[:12]}

    return _group_by_users(matches, FlagKind.SHARED_IDENTITY.value, label)


def _opposite_openings(competition_id: int, model, side_column: str):
    """Every pair (a, b) of openings by two participants of the competition on one symbol,
    opposite sides, within MIRROR_WINDOW_MS. Each opening falls in a bucket of
    MIRROR_WINDOW_MS; partners are looked for in the same and the two next buckets only,
    by equality (a hash join, no quadratic comparison of every opening with every other)."""
    opened_ms = EpochMs(model.opened_at)
    openings = (select(Participant.user_id, model.id.label("row_id"), getattr(model, side_column).label("side"),
                       model.opened_at, model.symbol, opened_ms.label("ms"),
                       (opened_ms // MIRROR_WINDOW_MS).label("bucket"))
                .join(Participant, Participant.id == model.participant_id)
                .where(Participant.competition_id == competition_id).cte("openings"))
    offsets = union_all(*(select(literal(n).label("n")) for n in (-1, 0, 1))).subquery("offsets")
    a, b = openings.alias("a"), openings.alias("b")
    return db.session.execute(
        select(a.c.user_id, a.c.row_id, a.c.side, a.c.opened_at, b.c.user_id, b.c.row_id, b.c.side, b.c.opened_at,
               a.c.symbol, b.c.ms - a.c.ms)
        .select_from(a).join(offsets, true()).join(b, and_(b.c.symbol == a.c.symbol,
                                                                  b.c.bucket == a.c.bucket + offsets.c.n))
        .where(b.c.side != a.c.side, a.c.user_id < b.c.user_id,
               (b.c.ms - a.c.ms).between(-MIRROR_WINDOW_MS, MIRROR_WINDOW_MS))
        .order_by(a.c.opened_at, a.c.row_id, b.c.row_id)).all()


def mirrored_trades(competition_id: int, kind: str) -> list[Finding]:
    if kind == "RISE_FALL":
        rows = _opposite_openings(competition_id, Trade, "direction")
    else:
        rows = _opposite_openings(competition_id, CfdPosition, "side")
    pairs: dict[tuple[int, int], list] = defaultdict(list)
    for row in rows:
        pairs[(row[0], row[4])].append(row)
    findings = []
    for (user_a, user_b), found in sorted(pairs.items()):
        # one opening matched twice counts once: distinct openings on each side
        count = min(len({r[1] for r in found}), len({r[5] for r in found}))
        if count < MIRROR_MIN_PAIRS:
            continue
        findings.append(Finding(FlagKind.MIRRORED_TRADES.value, [user_a, user_b], {
            "pairs_count": count, "window_ms": MIRROR_WINDOW_MS, "trade_kind": kind,
            "pairs": [{"symbol": symbol, "gap_ms": int(gap),
                       "a": {"user_id": ua, "trade_id": ida, "side": sa, "opened_at": _iso(ta)},
                       "b": {"user_id": ub, "trade_id": idb, "side": sb, "opened_at": _iso(tb)}}
                      for ua, ida, sa, ta, ub, idb, sb, tb, symbol, gap in found[:EVIDENCE_ROWS]]}))
    return findings


def stale_quote_profits(competition_id: int) -> list[Finding]:
    """Every profitable close of the competition with whether its position was opened or
    closed on a stale quote (one query), summed per participant here."""
    limit_ms = int(current_app.config["FEED_STALE_AFTER_SECONDS"] * 1000)
    close, opening = aliased(CfdFill), aliased(CfdFill)
    open_age = EpochMs(opening.created_at) - opening.tick_ts_ms
    close_age = EpochMs(close.created_at) - close.tick_ts_ms
    stale = or_(and_(opening.reason == "MARKET", open_age > limit_ms),
                and_(close.reason == "MANUAL", close_age > limit_ms))
    rows = db.session.execute(
        select(close.user_id, close.position_id, close.symbol, opening.side, close.realized_pnl,
               opening.created_at, open_age, close.created_at, close_age, case((stale, 1), else_=0))
        .join(opening, and_(opening.position_id == close.position_id, opening.action == "OPEN"))
        .where(close.competition_id == competition_id, close.action == "CLOSE", close.realized_pnl > 0)
        .order_by(close.user_id, close.id)).all()
    total: dict[int, Decimal] = defaultdict(Decimal)
    from_stale: dict[int, Decimal] = defaultdict(Decimal)
    trades: dict[int, list[dict]] = defaultdict(list)
    for user_id, position_id, symbol, side, pnl, opened_at, open_ms, closed_at, close_ms, is_stale in rows:
        total[user_id] += pnl
        if is_stale:
            from_stale[user_id] += pnl
            trades[user_id].append({"position_id": position_id, "symbol": symbol, "side": side,
                                    "realized_pnl": str(pnl), "opened_at": _iso(opened_at),
                                    "open_quote_age_ms": int(open_ms), "closed_at": _iso(closed_at),
                                    "close_quote_age_ms": int(close_ms)})
    return [Finding(FlagKind.STALE_QUOTE_PROFIT.value, [user_id], {
        "stale_profit": str(from_stale[user_id]), "total_profit": str(total[user_id]),
        "share_percent": str((from_stale[user_id] * 100 / total[user_id]).quantize(Decimal("0.1"))),
        "stale_after_ms": limit_ms, "trades": trades[user_id][:EVIDENCE_ROWS]})
        for user_id in sorted(from_stale) if from_stale[user_id] > total[user_id] * STALE_PROFIT_SHARE]


# ---- the scan ---------------------------------------------------------------------------

def findings(competition: Competition) -> list[Finding]:
    found = [*shared_devices(competition.id), *shared_identities(competition.id),
             *mirrored_trades(competition.id, competition.kind)]
    if competition.kind != "RISE_FALL":
        found += stale_quote_profits(competition.id)
    return found


def _insert_ignoring_duplicates(rows: list[dict]) -> None:
    """A scan running at the same time inserted the same flag: keep theirs."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(insert(CompetitionFlag).values(rows).on_conflict_do_nothing(
        index_elements=["competition_id", "kind", "participants_key"]))


def scan(competition_id: int) -> dict[str, int]:
    """Compute and store the competition's flags, in one transaction. Returns how many
    flags were new and how many open ones got fresher evidence."""
    try:
        competition = db.session.get(Competition, competition_id)
        if competition is None:
            raise NotFound("This competition does not exist.")
        now = utcnow()
        existing = {(f.kind, f.participants_key): f for f in db.session.scalars(
            select(CompetitionFlag).where(CompetitionFlag.competition_id == competition_id))}
        new, refreshed = [], 0
        for finding in findings(competition):
            flag = existing.get((finding.kind, finding.key))
            if flag is None:
                new.append({"competition_id": competition_id, "kind": finding.kind, "participants_key": finding.key,
                            "user_ids": finding.user_ids, "evidence": finding.evidence,
                            "status": FlagStatus.OPEN.value, "actions": [], "created_at": now, "updated_at": now})
            elif flag.status == FlagStatus.OPEN.value and flag.evidence != finding.evidence:
                flag.evidence, flag.updated_at = finding.evidence, now
                refreshed += 1
        if new:
            _insert_ignoring_duplicates(new)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return {"new": len(new), "refreshed": refreshed}


@jobs.job
def scan_job(competition_id: int) -> None:
    scan(competition_id)


def scan_job_id(competition_id: int) -> str:
    return f"competition-{competition_id}-fair-play"


def enqueue_scan(competition_id: int) -> None:
    """Queue a scan; one already queued or running for the competition is enough."""
    jobs.enqueue(scan_job, competition_id, job_id=scan_job_id(competition_id))


def enqueue_live_scans() -> int:
    """The clock's periodic scan: every SCAN_INTERVAL_SECONDS, a scan of each LIVE
    competition (the first SCAN_INTERVAL_SECONDS after the clock starts: none)."""
    state = current_app.extensions.setdefault("fair_play_scans", {})
    now = time.monotonic()
    if now < state.setdefault("next_at", now + SCAN_INTERVAL_SECONDS):
        return 0
    state["next_at"] = now + SCAN_INTERVAL_SECONDS
    live = db.session.scalars(select(Competition.id).where(Competition.status == CompetitionStatus.LIVE.value)).all()
    db.session.rollback()
    for competition_id in live:
        enqueue_scan(competition_id)
    return len(live)


# ---- the admin's side -------------------------------------------------------------------

def open_flag_count(competition_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(CompetitionFlag).where(
        CompetitionFlag.competition_id == competition_id, CompetitionFlag.status == FlagStatus.OPEN.value))


def flags_page(competition_id: int, page: int, per_page: int):
    """Open flags first, then the newest."""
    query = (select(CompetitionFlag).where(CompetitionFlag.competition_id == competition_id)
             .order_by(case((CompetitionFlag.status == FlagStatus.OPEN.value, 0), else_=1),
                       CompetitionFlag.created_at.desc(), CompetitionFlag.id.desc()))
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


@dataclass(frozen=True)
class Person:
    user_id: int
    email: str
    name: str
    disqualified: bool


def people(competition_id: int, flags: list[CompetitionFlag]) -> dict[int, Person]:
    """The accounts the flags name, with whether they are disqualified (one query)."""
    ids = {u for flag in flags for u in flag.user_ids}
    if not ids:
        return {}
    rows = db.session.execute(
        select(User.id, User.email, User.name, Participant.disqualified)
        .outerjoin(Participant, and_(Participant.user_id == User.id, Participant.competition_id == competition_id))
        .where(User.id.in_(ids))).all()
    return {uid: Person(uid, email, name, bool(dq)) for uid, email, name, dq in rows}


def _flag(competition_id: int, flag_id: int) -> CompetitionFlag:
    flag = db.session.get(CompetitionFlag, flag_id)
    if flag is None or flag.competition_id != competition_id:
        raise NotFound("There is no such fair-play flag.")
    return flag


def _note(raw: str | None) -> str:
    note = (raw or "").strip()
    if len(note) < 3:
        raise DomainError("Write a note (at least 3 characters): why this flag is dismissed.")
    if len(note) > 500:
        raise DomainError("Note: at most 500 characters.")
    return note


def dismiss(competition_id: int, flag_id: int, note: str, *, actor) -> CompetitionFlag:
    """An admin found nothing wrong: the flag is closed with their note (audited)."""
    from ..admin.services.audit import record_audit

    note = _note(note)
    flag = _flag(competition_id, flag_id)
    try:
        done = db.session.execute(
            update(CompetitionFlag).where(CompetitionFlag.id == flag.id, CompetitionFlag.status == FlagStatus.OPEN.value)
            .values(status=FlagStatus.DISMISSED.value, note=note, decided_by=actor.user_id, decided_at=utcnow())
            .returning(CompetitionFlag.id)).scalar_one_or_none()
        if done is None:
            raise Conflict("This flag has already been decided.")
        record_audit(actor, "competition.fair_play_dismiss", "competition", competition_id,
                     before={"flag_id": flag.id, "kind": flag.kind, "user_ids": flag.user_ids},
                     after={"status": FlagStatus.DISMISSED.value}, note=note)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    db.session.refresh(flag)
    return flag


def disqualify_from_flag(competition_id: int, flag_id: int, user_id: int | str | None, reason: str, *,
                         actor) -> CompetitionFlag:
    """Disqualify one of the flag's participants through service.disqualify (audited); the
    flag records the action in the same transaction."""
    flag = _flag(competition_id, flag_id)
    try:
        user_id = int(user_id)
    except (TypeError, ValueError):
        raise DomainError("Choose which trader of this flag to disqualify.") from None
    if user_id not in flag.user_ids:
        raise DomainError("This trader is not named by this flag.")
    if flag.status == FlagStatus.DISMISSED.value:
        raise Conflict("This flag was dismissed.")
    reason = (reason or "").strip()
    at = utcnow()
    flag.actions = [*flag.actions, {"action": "disqualify", "user_id": user_id, "by": actor.user_id,
                                    "at": _iso(at), "reason": reason}]
    flag.status, flag.decided_by, flag.decided_at = FlagStatus.ACTED.value, actor.user_id, at
    flag.note = reason[:500] or None
    if len(reason) >= 3:  # shorter: service.disqualify refuses it with its own message
        reason = f"Fair play (flag {flag.id}, {KIND_LABELS[flag.kind].lower()}): {reason}"
    try:
        service.disqualify(competition_id, user_id, reason, actor=actor)
    except BaseException:
        db.session.rollback()  # the flag stays as it was
        raise
    db.session.refresh(flag)
    return flag


def record_device(competition_id: int, user_id: int, device_id: str | None) -> None:
    """Note that this participant used this device (an upsert: first and last sighting)."""
    if not device_id:
        return
    now = utcnow()
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ParticipantDevice).values(competition_id=competition_id, user_id=user_id,
                                                 device_id=device_id, first_seen_at=now, last_seen_at=now)
    try:
        db.session.execute(statement.on_conflict_do_update(
            index_elements=["competition_id", "user_id", "device_id"], set_={"last_seen_at": now}))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
