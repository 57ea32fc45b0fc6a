"""The live ranking of each competition: by equity, ties to whoever reached that equity first.
With rebuys (``Competition.rebuys_allowed``) by the time-weighted return on the money paid
in instead, as "equity-equivalent" cents (``returns.ranking_cents``: the equity itself for
whoever never topped up), so a rebuy cannot buy a rank; the frames still show the equity.

Who writes, who reads:
- The price authority (the CFD engine) calls ``note_equity(competition_id, updates)`` as it
  re-values accounts: a comparison and a dict write per update, nothing re-ranked.
  ``publish_boards(app)``, run once a second by the engine's housekeeping (so only
  by the process that holds the price authority), re-ranks each live competition in memory, writes the changes to the shared
  board, builds one ``leaderboard`` frame (top 100 plus counts) for room
  ``competition:<id>``, and sends each participant whose rank or equity moved their own
  ``leaderboard_me`` frame over ``user:<id>``. Every LEADERBOARD_PERSIST_SECONDS it writes
  the changed equities and reach times to the participants' rows (the truth), 1,000 rows a
  transaction, once the frames went out, and always before the freeze snapshot; never over a
  row that changed since the equity was valued (a rebuy, a close, a rise/fall stake: see
  PERSIST_PG).
- Web processes read the shared board: ``top``, ``rank_of``, ``counts``, ``frame``.

The shared board is a Redis sorted set per competition when REDIS_URL is set, the same
interface in process otherwise (the embedded default). In Redis:
- the score is minus the equity in integer cents: exact (every integer below 2^53 is a
  double), asserted by ``to_cents``; the reach time is never packed into it;
- the member is ``reach time ms << 32 | participant id`` in 25 decimal digits (the low
  part of the authority's packed key, see ``pack``): Redis orders equal scores by member,
  so equal equity ranks by reach time, then by participant id, never by a name; a
  companion hash maps participant id -> current member.
The database is the truth, the authority's memory at most LEADERBOARD_PERSIST_SECONDS
ahead of it: if Redis loses a board (flushed, restarted), the next publish writes it again
from the authority's ranking, identical, within a second; an authority that restarts loads
the participants' rows (``rebuild``), and the engine's next valuations bring them up to date.

Rebuys: the packed keys and the Redis scores hold the ranking score, not the equity; the
authority keeps the equities (``Publisher.equities``: the frames, the own frames, the saves)
and at each publish scores again, with T = that publish's seconds since the start, every
account that topped up (its score moves with T even at a constant equity; the top-ups are
read from their rows, a small query over the rebuyers only). ``_rows`` scores the same way,
so a rebuild from the database gives the publish's board. Readers that show an equity read
it from the frame or the participant row (``build_frame``, ``standings``), not from a score.

The freeze (``Competition.freeze_minutes``): when it begins, the first publish copies each
participant's equity and reach time to ``frozen_equity`` / ``frozen_equity_at_ms`` (once,
with ``Competition.frozen_at``), and the "frozen" board is built from those columns. The
public pages read the view ``public_view(competition)`` returns; admins read "live"; a
trader's own equity is always live (their participant row).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from flask import Flask, current_app
from sortedcontainers import SortedList
from sqlalchemy import Boolean, Integer, bindparam, case, false, func, or_, select, text, update

from ..extensions import db, socketio
from ..types import utcnow
from .events import competition_room
from .models import CfdPosition, Competition, CompetitionStatus, Participant, ParticipantStatus, PositionStatus
from .returns import cents_of, ranking_cents, return_percent

log = logging.getLogger(__name__)

LIVE, FROZEN = "live", "frozen"
FRAME_SIZE = 100
EXACT_LIMIT = 2 ** 53
HUNDRED = Decimal(100)
PUBLISH_SECONDS = 1.0
INLINE_MAX = 200  # own frames sent inline; more go out from a background task


class InexactEquity(ValueError):
    """An equity that a double score would not hold exactly."""


def to_cents(equity: Decimal) -> int:
    """Equity as integer cents, refused unless exact and below 2^53 in size."""
    cents = equity * HUNDRED
    value = int(cents)
    if cents != value:
        raise InexactEquity(f"equity {equity} is not a whole number of cents")
    if abs(value) >= EXACT_LIMIT:
        raise InexactEquity(f"equity {equity} is too large for an exact score")
    return value


def cents_text(cents: int) -> str:
    """12345 -> "123.45", -5 -> "-0.05" (as f"{Decimal:.2f}" would, without the Decimal)."""
    sign, value = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}{value // 100}.{value % 100:02d}"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Entry:
    participant_id: int
    cents: int
    at_ms: int  # when the account reached this equity

    @property
    def equity(self) -> Decimal:
        return Decimal(self.cents).scaleb(-2)


@dataclass(frozen=True)
class Counts:
    participants: int
    above_start: int  # equity above the starting capital


# ---- packed keys ------------------------------------------------------------------------
# A board entry as one Python int: (2^53 - cents) << 80 | reach time ms << 32 | participant id.
# Ints order as the board does (equity descending, then reach time, then id), compare faster
# than tuples, and are not tracked by the garbage collector: a re-rank of 10,000 moved
# accounts allocates no container the collector then has to walk.
ID_BITS, AT_BITS = 32, 48
ID_MASK = (1 << ID_BITS) - 1
AT_MASK = (1 << AT_BITS) - 1
LOW_BITS = ID_BITS + AT_BITS  # the tie-break part: reach time, then id
LOW_MASK = (1 << LOW_BITS) - 1


def pack(cents: int, at_ms: int, participant_id: int) -> int:
    if not (0 <= at_ms <= AT_MASK and 0 <= participant_id <= ID_MASK):
        raise ValueError(f"reach time {at_ms} or participant {participant_id} out of range")
    return ((EXACT_LIMIT - cents) << LOW_BITS) | (at_ms << ID_BITS) | participant_id


def unpack(key: int) -> Entry:
    return Entry(key & ID_MASK, EXACT_LIMIT - (key >> LOW_BITS), (key >> ID_BITS) & AT_MASK)


def key_cents(key: int) -> int:
    return EXACT_LIMIT - (key >> LOW_BITS)


class Ranking:
    """One board in process: equity descending, then reach time, then participant id (packed keys)."""

    def __init__(self, entries: Iterable[Entry] = ()):
        self._by_id = {e.participant_id: pack(e.cents, e.at_ms, e.participant_id) for e in entries}
        self._keys = SortedList(self._by_id.values())

    @classmethod
    def of_keys(cls, keys: Iterable[int]) -> Ranking:
        ranking = cls()
        ranking._by_id = {key & ID_MASK: key for key in keys}
        ranking._keys = SortedList(ranking._by_id.values())
        return ranking

    def __len__(self) -> int:
        return len(self._keys)

    def cents_of(self, participant_id: int) -> int | None:
        key = self._by_id.get(participant_id)
        return None if key is None else key_cents(key)

    def put(self, entry: Entry) -> None:
        self.put_keys([pack(entry.cents, entry.at_ms, entry.participant_id)])

    def put_many(self, entries: list[Entry]) -> None:
        self.put_keys([pack(e.cents, e.at_ms, e.participant_id) for e in entries])

    def put_keys(self, keys: list[int]) -> None:
        """Many at once: when a good part of the board moved (every tick moves most
        accounts), sorting it again (C's sort) is cheaper than moving each entry."""
        by_id = self._by_id
        if len(keys) * 8 < len(self._keys):
            for key in keys:
                old = by_id.get(key & ID_MASK)
                if old is not None:
                    self._keys.remove(old)
                by_id[key & ID_MASK] = key
                self._keys.add(key)
            return
        for key in keys:
            by_id[key & ID_MASK] = key
        self._keys = SortedList(by_id.values())

    def remove(self, participant_id: int) -> None:
        old = self._by_id.pop(participant_id, None)
        if old is not None:
            self._keys.remove(old)

    def top(self, offset: int, limit: int) -> list[Entry]:
        return [unpack(key) for key in self._keys.islice(offset, offset + limit)]

    def rank_of(self, participant_id: int) -> tuple[int, Entry] | None:
        key = self._by_id.get(participant_id)
        if key is None:
            return None
        return self._keys.index(key) + 1, unpack(key)

    def counts(self, start_cents: int) -> Counts:
        return Counts(len(self._keys), self._keys.bisect_left((EXACT_LIMIT - start_cents) << LOW_BITS))

    def entries(self) -> list[Entry]:
        return [unpack(key) for key in self._keys]

    def keys(self) -> list[int]:
        """The packed keys, best first."""
        return list(self._keys)

    def cents_snapshot(self) -> dict[int, int]:
        return {pid: key_cents(key) for pid, key in self._by_id.items()}

    def ids(self) -> list[int]:
        """Participant ids, best first."""
        return [key & ID_MASK for key in self._keys]


# ---- the shared boards ------------------------------------------------------------------

class MemoryBoards:
    """The embedded default: every reader is in this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._boards: dict[tuple[int, str], Ranking] = {}
        self._frames: dict[tuple[int, str], str] = {}

    def exists(self, competition_id: int, view: str) -> bool:
        return (competition_id, view) in self._boards

    def replace(self, competition_id: int, view: str, entries: list[Entry]) -> None:
        self.replace_keys(competition_id, view, [pack(e.cents, e.at_ms, e.participant_id) for e in entries])

    def apply(self, competition_id: int, view: str, entries: list[Entry]) -> None:
        self.apply_keys(competition_id, view, [pack(e.cents, e.at_ms, e.participant_id) for e in entries])

    def replace_keys(self, competition_id: int, view: str, keys: list[int]) -> None:
        ranking = Ranking.of_keys(keys)
        with self._lock:
            self._boards[(competition_id, view)] = ranking

    def apply_keys(self, competition_id: int, view: str, keys: list[int]) -> None:
        with self._lock:
            self._boards[(competition_id, view)].put_keys(keys)

    def top(self, competition_id: int, view: str, offset: int, limit: int) -> list[Entry]:
        with self._lock:
            ranking = self._boards.get((competition_id, view))
            return ranking.top(offset, limit) if ranking else []

    def rank_of(self, competition_id: int, view: str, participant_id: int) -> tuple[int, Entry] | None:
        with self._lock:
            ranking = self._boards.get((competition_id, view))
            return ranking.rank_of(participant_id) if ranking else None

    def counts(self, competition_id: int, view: str, start_cents: int) -> Counts:
        with self._lock:
            ranking = self._boards.get((competition_id, view))
            return ranking.counts(start_cents) if ranking else Counts(0, 0)

    def set_frame(self, competition_id: int, view: str, frame: str) -> None:
        self._frames[(competition_id, view)] = frame

    def frame_and_rank(self, competition_id: int, view: str, participant_id: int):
        return self.frame(competition_id, view), self.rank_of(competition_id, view, participant_id)

    def frame(self, competition_id: int, view: str) -> str | None:
        return self._frames.get((competition_id, view))

    def drop(self, competition_id: int) -> None:
        with self._lock:
            for key in [k for k in self._frames if k[0] == competition_id]:
                self._frames.pop(key)
            for view in (LIVE, FROZEN):
                self._boards.pop((competition_id, view), None)
                self._frames.pop((competition_id, view), None)


# KEYS: sorted set, hash; ARGV: (participant id, member, score) triples.
APPLY = """
for i = 1, #ARGV, 3 do
  local old = redis.call('hget', KEYS[2], ARGV[i])
  if old then redis.call('zrem', KEYS[1], old) end
  redis.call('zadd', KEYS[1], ARGV[i + 2], ARGV[i + 1])
  redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1])
end
return #ARGV / 3
"""
# KEYS: sorted set, hash; ARGV: participant id -> {rank from 0, member, score} or nil.
RANK_OF = """
local member = redis.call('hget', KEYS[2], ARGV[1])
if not member then return nil end
return {redis.call('zrank', KEYS[1], member), member, redis.call('zscore', KEYS[1], member)}
"""
# KEYS: sorted set, hash, built marker; ARGV[1]: "<pid> <member> <score>\n" per entry. One
# string: packing 40,000 arguments costs the client more than Redis takes to parse this.
REPLACE = r"""
redis.call('del', KEYS[1], KEYS[2])
local zargs, hargs, n = {}, {}, 0
for pid, member, score in string.gmatch(ARGV[1], '(%d+) (%S+) (%S+)\n') do
  zargs[#zargs + 1] = score; zargs[#zargs + 1] = member
  hargs[#hargs + 1] = pid; hargs[#hargs + 1] = member
  n = n + 1
  if #zargs >= 2000 then
    redis.call('zadd', KEYS[1], unpack(zargs)); redis.call('hset', KEYS[2], unpack(hargs))
    zargs, hargs = {}, {}
  end
end
if #zargs > 0 then
  redis.call('zadd', KEYS[1], unpack(zargs)); redis.call('hset', KEYS[2], unpack(hargs))
end
redis.call('set', KEYS[3], 1)
return n
"""
APPLY_CHUNK = 1000


class RedisBoards:
    """A sorted set and a companion hash per competition and view (see the module docstring)."""

    def __init__(self, redis):
        self.redis = redis
        self._apply = redis.register_script(APPLY)
        self._rank_of = redis.register_script(RANK_OF)
        self._replace = redis.register_script(REPLACE)

    @staticmethod
    def _keys(competition_id: int, view: str) -> tuple[str, str, str, str]:
        # v2: the member format of ``pack`` (a board written by an older release, whose
        # members readers could not parse, is left aside and dropped with the competition)
        base = f"edutradex:board:{competition_id}:v2:{view}"
        return f"{base}:rank", f"{base}:member", f"{base}:built", f"{base}:frame"

    @staticmethod
    def _entry(member: bytes | str, score: float) -> Entry:
        low = int(member)
        return Entry(low & ID_MASK, -int(score), low >> ID_BITS)

    def exists(self, competition_id: int, view: str) -> bool:
        return bool(self.redis.exists(self._keys(competition_id, view)[2]))

    def replace(self, competition_id: int, view: str, entries: list[Entry]) -> None:
        self.replace_keys(competition_id, view, [pack(e.cents, e.at_ms, e.participant_id) for e in entries])

    def apply(self, competition_id: int, view: str, entries: list[Entry]) -> None:
        self.apply_keys(competition_id, view, [pack(e.cents, e.at_ms, e.participant_id) for e in entries])

    def replace_keys(self, competition_id: int, view: str, keys: list[int]) -> None:
        ranks, members, built, _ = self._keys(competition_id, view)
        # score = -cents = (key >> LOW_BITS) - 2^53
        payload = "".join([f"{key & ID_MASK} {key & LOW_MASK:025d} {(key >> LOW_BITS) - EXACT_LIMIT}\n"
                           for key in keys])
        self._replace(keys=[ranks, members, built], args=[payload])  # a script: readers never see half a board

    def apply_keys(self, competition_id: int, view: str, keys: list[int]) -> None:
        ranks, members, _, _ = self._keys(competition_id, view)
        for start in range(0, len(keys), APPLY_CHUNK):
            args: list = []
            for key in keys[start:start + APPLY_CHUNK]:
                args += [key & ID_MASK, f"{key & LOW_MASK:025d}", (key >> LOW_BITS) - EXACT_LIMIT]
            self._apply(keys=[ranks, members], args=args)

    def top(self, competition_id: int, view: str, offset: int, limit: int) -> list[Entry]:
        ranks = self._keys(competition_id, view)[0]
        rows = self.redis.zrange(ranks, offset, offset + limit - 1, withscores=True)
        return [self._entry(member, score) for member, score in rows]

    def rank_of(self, competition_id: int, view: str, participant_id: int) -> tuple[int, Entry] | None:
        ranks, members, _, _ = self._keys(competition_id, view)
        return self._ranked(participant_id, self._rank_of(keys=[ranks, members], args=[participant_id]))

    def frame_and_rank(self, competition_id: int, view: str, participant_id: int):
        """The top 100 frame and one participant's rank in one round trip (the board page)."""
        ranks, members, _, frame_key = self._keys(competition_id, view)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(frame_key)
        self._rank_of(keys=[ranks, members], args=[participant_id], client=pipe)
        raw, found = pipe.execute()
        return (raw.decode() if raw is not None else None), self._ranked(participant_id, found)

    @staticmethod
    def _ranked(participant_id: int, found) -> tuple[int, Entry] | None:
        if not found:
            return None
        rank, member, score = found
        return int(rank) + 1, Entry(participant_id, -int(score), int(member) >> ID_BITS)

    def counts(self, competition_id: int, view: str, start_cents: int) -> Counts:
        ranks = self._keys(competition_id, view)[0]
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(ranks)
        pipe.zcount(ranks, "-inf", -start_cents - 1)
        total, above = pipe.execute()
        return Counts(int(total), int(above))

    def set_frame(self, competition_id: int, view: str, frame: str) -> None:
        self.redis.set(self._keys(competition_id, view)[3], frame)

    def frame(self, competition_id: int, view: str) -> str | None:
        raw = self.redis.get(self._keys(competition_id, view)[3])
        return raw.decode() if raw is not None else None

    def drop(self, competition_id: int) -> None:
        keys = list(self.redis.scan_iter(match=f"edutradex:board:{competition_id}:*", count=1000))
        if keys:
            self.redis.delete(*keys)


def boards(app: Flask | None = None):
    """This app's shared boards (Redis when REDIS_URL is set)."""
    app = app or current_app
    store = app.extensions.get("leaderboards")
    if store is None:
        if app.config["REDIS_URL"]:
            from redis import Redis

            store = RedisBoards(Redis.from_url(app.config["REDIS_URL"]))
        else:
            store = MemoryBoards()
        app.extensions["leaderboards"] = store
    return store


# ---- reading (web processes) ------------------------------------------------------------

def public_view(competition: Competition) -> str:
    """What the public sees of a live competition: the snapshot once the freeze began."""
    return FROZEN if competition.frozen_at is not None else LIVE


def top(competition_id: int, offset: int, limit: int, view: str = LIVE) -> list[Entry]:
    return boards().top(competition_id, view, offset, limit)


def rank_of(competition_id: int, participant_id: int, view: str = LIVE) -> tuple[int, Entry] | None:
    return boards().rank_of(competition_id, view, participant_id)


def counts(competition_id: int, starting_capital: Decimal, view: str = LIVE) -> Counts:
    return boards().counts(competition_id, view, to_cents(starting_capital))


def frame(competition_id: int, view: str = LIVE) -> dict | None:
    raw = boards().frame(competition_id, view)
    return json.loads(raw) if raw else None


def frame_and_rank(competition_id: int, participant_id: int, view: str = LIVE) -> tuple[dict | None,
                                                                                      tuple[int, Entry] | None]:
    """The top-100 frame and a participant's rank, together (one Redis round trip)."""
    raw, found = boards().frame_and_rank(competition_id, view, participant_id)
    return (json.loads(raw) if raw else None), found


# ---- the authority: noting equity, re-ranking once a second -----------------------------

class Publisher:
    """The authority's side, in one process: each live competition's ranking as of the last
    publish, the equities noted since, and what each participant was last sent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rankings: dict[int, Ranking] = {}
        self.users: dict[int, dict[int, int]] = {}  # competition -> participant -> user
        self.equities: dict[int, dict[int, Decimal]] = {}  # competition -> participant -> equity published
        self.pending: dict[int, dict[int, tuple[Decimal, int]]] = {}  # competition -> participant -> (equity, at)
        self.sending: set[int] = set()  # competitions whose own frames are still going out
        self.unsaved: dict[int, dict[int, int]] = {}  # packed keys changed since the last database write
        self.saved_at: dict[int, float] = {}
        self.last_rank: dict[int, dict[int, int]] = {}
        self.move: dict[int, dict[int, int]] = {}  # the last rank change: + up, - down
        self.sent: dict[int, dict[int, tuple[int, int]]] = {}  # (rank, cents) last sent to the user
        self.frozen_ranks: dict[int, dict[int, int]] = {}
        self.board_writes: dict[int, tuple[list[int], str]] = {}  # the latest board waiting for its writer
        self.versions: dict[int, dict[int, int]] = {}  # the account version of the engine's latest valuation

    def forget(self, competition_id: int) -> None:
        for table in (self.rankings, self.users, self.equities, self.pending, self.last_rank, self.move,
                      self.sent, self.frozen_ranks, self.unsaved, self.saved_at, self.board_writes, self.versions):
            table.pop(competition_id, None)


def publisher(app: Flask | None = None) -> Publisher:
    app = app or current_app
    return app.extensions.setdefault("leaderboard_publisher", Publisher())


def _start_ms(competition: Competition) -> int:
    return ms(competition.started_at or competition.start_at)


def elapsed_seconds(competition: Competition, now: datetime) -> int:
    """T of the ranking score: whole seconds from the start to ``now`` (as a rebuy counts its
    top-up's seconds, service.rebuy)."""
    return max(0, int((now - (competition.started_at or competition.start_at)).total_seconds()))


def _rows(competition: Competition, frozen: bool, now: datetime | None = None
          ) -> tuple[list[Entry], dict[int, int], dict[int, Decimal]]:
    """The ranked participants from the database: active, not disqualified; their entries
    (scored as a publish at ``now`` would, with rebuys; the frozen board at ``frozen_at``),
    users and equities."""
    p = Participant
    equity, at = (p.frozen_equity, p.frozen_equity_at_ms) if frozen else (p.equity, p.equity_at_ms)
    topped, cent_seconds = ((func.coalesce(p.frozen_topped_up, p.topped_up),
                             func.coalesce(p.frozen_topped_up_cent_seconds, p.topped_up_cent_seconds))
                            if frozen else (p.topped_up, p.topped_up_cent_seconds))
    rows = db.session.execute(select(p.id, p.user_id, equity, at, topped, cent_seconds).where(
        p.competition_id == competition.id, p.status == ParticipantStatus.ACTIVE.value, p.disqualified.is_(False),
        equity.is_not(None))).all()
    start = _start_ms(competition)
    start_cents = to_cents(competition.starting_capital)
    scored = bool(competition.rebuys_allowed)
    elapsed = elapsed_seconds(competition, (competition.frozen_at if frozen else None) or now or utcnow())
    entries = [Entry(pid, ranking_cents(to_cents(value), start_cents, cents_of(topped or 0), cent_seconds or 0, elapsed)
                     if scored else to_cents(value), reached if reached is not None else start)
               for pid, _, value, reached, topped, cent_seconds in rows]
    return entries, {row[0]: row[1] for row in rows}, {row[0]: row[2] for row in rows}


def _top_ups(competition_id: int) -> dict[int, tuple[int, int]]:
    """Participant -> (top-ups in cents, their cent-seconds), for those who topped up."""
    p = Participant
    return {pid: (cents_of(topped), cent_seconds) for pid, topped, cent_seconds in db.session.execute(
        select(p.id, p.topped_up, p.topped_up_cent_seconds).where(
            p.competition_id == competition_id, p.topped_up > 0, p.status == ParticipantStatus.ACTIVE.value,
            p.disqualified.is_(False)))}


def _scored_keys(competition: Competition, ranking: Ranking, equity_keys: list[int], equities: dict[int, Decimal],
                 now: datetime) -> list[int]:
    """With rebuys: the ranking keys of the accounts whose equity moved (``equity_keys``:
    packed equity cents) and of every account that topped up (its score moves with T), as
    scores at ``now``; those of the others' keys that did not change are left out."""
    start_cents = to_cents(competition.starting_capital)
    elapsed = elapsed_seconds(competition, now)
    top_ups = _top_ups(competition.id)
    keys: dict[int, int] = {}
    for key in equity_keys:
        pid = key & ID_MASK
        topped, cent_seconds = top_ups.get(pid, (0, 0))
        score = ranking_cents(key_cents(key), start_cents, topped, cent_seconds, elapsed)
        keys[pid] = ((EXACT_LIMIT - score) << LOW_BITS) | (key & LOW_MASK)
    for pid, (topped, cent_seconds) in top_ups.items():
        old = ranking._by_id.get(pid)
        if pid in keys or old is None or pid not in equities:
            continue
        score = ranking_cents(to_cents(equities[pid]), start_cents, topped, cent_seconds, elapsed)
        key = ((EXACT_LIMIT - score) << LOW_BITS) | (old & LOW_MASK)
        if key != old:
            keys[pid] = key
    return list(keys.values())


def rebuild(competition_id: int, now: datetime | None = None) -> None:
    """Build the competition's boards again from the database (live, and frozen if the
    freeze began), and the authority's ranking; what was noted since the last publish is
    kept for the next one."""
    pub = publisher()
    with pub.lock:
        unsaved = [unpack(key) for key in pub.unsaved.pop(competition_id, {}).values()]
        versions = dict(pub.versions.get(competition_id, {}))
    _persist(unsaved, None, versions)
    competition = db.session.get(Competition, competition_id)
    entries, users, equities = _rows(competition, frozen=False, now=now)
    with pub.lock:
        pub.rankings[competition_id] = Ranking(entries)
        pub.users[competition_id] = users
        pub.equities[competition_id] = equities
        # equities noted since the last publish are newer than the database: kept
        pub.pending[competition_id] = {pid: noted for pid, noted in pub.pending.get(competition_id, {}).items()
                                       if pid in users}
    boards().replace(competition_id, LIVE, entries)
    if competition.frozen_at is not None:  # the snapshot without whoever left the ranking
        frozen_entries, _, frozen_equities = _rows(competition, frozen=True)
        boards().replace(competition_id, FROZEN, frozen_entries)
        ordered = Ranking(frozen_entries)
        with pub.lock:
            pub.frozen_ranks[competition_id] = {pid: rank for rank, pid in enumerate(ordered.ids(), start=1)}
        _freeze_pages(competition, ordered, utcnow(), frozen_equities)


def _ranked_count(competition_id: int) -> int:
    p = Participant
    return db.session.scalar(select(func.count()).select_from(p).where(
        p.competition_id == competition_id, p.status == ParticipantStatus.ACTIVE.value,
        p.disqualified.is_(False))) or 0


def _load(competition_id: int) -> Ranking:
    pub = publisher()
    ranking = pub.rankings.get(competition_id)
    if ranking is None:
        competition = db.session.get(Competition, competition_id)
        entries, users, equities = _rows(competition, frozen=False)
        ranking = pub.rankings.setdefault(competition_id, Ranking(entries))
        pub.users.setdefault(competition_id, users)
        pub.equities.setdefault(competition_id, equities)
        pub.pending.setdefault(competition_id, {})
    return ranking


def note_equity(competition_id: int, updates: Iterable[tuple[int, Decimal, int]],
                versions: dict[int, int] | None = None) -> None:
    """The engine's call: (participant id, equity, at ms) for accounts it re-valued, and the
    account versions it valued them at (the save then writes only rows still at that
    version: a close committed since keeps its equity). The reach time is recorded only
    when the equity changes; ranking waits for the next publish."""
    pub = publisher()
    with pub.lock:
        _load(competition_id)
        if versions:
            pub.versions.setdefault(competition_id, {}).update(versions)
        published, pending = pub.equities[competition_id], pub.pending[competition_id]
        for participant_id, equity, at_ms in updates:  # a Decimal comparison and a dict write: no ranking here
            noted = pending.get(participant_id)
            if noted is None:
                before = published.get(participant_id)
                if before is None or before == equity:  # not ranked, or unchanged
                    continue
                pending[participant_id] = (equity, at_ms)
            elif noted[0] != equity:
                pending[participant_id] = (equity, at_ms)


PERSIST_CHUNK = 1000
# Three arrays, unnested side by side; only while the competition is live (the end writes
# the final equities; a late save must not overwrite them), and never over a row written
# since the equity was reached (a rebuy resets equity and equity_at_ms in its transaction:
# an equity noted before it, saved after it, would undo the reset). ``own``: the equity was
# read from the row (an account the engine does not value): saved only while the row still
# holds it (a rise/fall stake or a close committed since keeps its equity); ``version``: the
# account version the engine valued it at, saved only while the row is still at it.
PERSIST_PG = text(
    "UPDATE competition_participants AS p SET equity = v.equity, equity_at_ms = v.at "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:equities AS numeric[]), CAST(:ats AS bigint[]), "
    "CAST(:own AS boolean[]), CAST(:versions AS integer[])) AS v(id, equity, at, own, version) "
    "WHERE p.id = v.id AND p.competition_id IN (SELECT id FROM competitions WHERE status = 'LIVE') "
    "AND (p.equity_at_ms IS NULL OR p.equity_at_ms <= v.at) AND (NOT v.own OR p.equity = v.equity) "
    "AND (v.version IS NULL OR p.version = v.version)")


def _persist_seconds() -> float:
    return current_app.config.get("LEADERBOARD_PERSIST_SECONDS", 5.0)


def _persist(changed: list[Entry], tracked: set[int] | None = None, versions: dict[int, int] | None = None) -> None:
    """The changed equities and reach times, PERSIST_CHUNK rows a transaction: on PostgreSQL
    one set-based UPDATE each (an executemany is a round trip per row there); on SQLite, in
    process, an executemany. A row whose equity_at_ms is later than the saved reach time
    changed since (a rebuy): left as it is. ``tracked``: the accounts the engine values; the
    others' equities came from their rows and are saved only where the row still holds them
    (None: the caller noted every equity itself, tests and benches). ``versions``: the account
    versions the engine valued its accounts at; a row at another version changed since."""
    table = Participant.__table__
    postgres = db.session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(changed), PERSIST_CHUNK):
        chunk = changed[start:start + PERSIST_CHUNK]
        own = [tracked is not None and e.participant_id not in tracked for e in chunk]
        at_version = [None if mine else (versions or {}).get(e.participant_id) for e, mine in zip(chunk, own, strict=True)]
        if postgres:
            db.session.execute(PERSIST_PG, {"ids": [e.participant_id for e in chunk],
                                            "equities": [e.equity for e in chunk], "ats": [e.at_ms for e in chunk],
                                            "own": own, "versions": at_version})
        else:
            live = select(Competition.id).where(Competition.status == CompetitionStatus.LIVE.value)
            db.session.execute(update(table).where(table.c.id == bindparam("pid"), table.c.competition_id.in_(live),
                                                   or_(table.c.equity_at_ms.is_(None),
                                                       table.c.equity_at_ms <= bindparam("at")),
                                                   or_(bindparam("own", type_=Boolean).is_(false()),
                                                       table.c.equity == bindparam("value")),
                                                   or_(bindparam("v", type_=Integer).is_(None),
                                                       table.c.version == bindparam("v")))
                               .values(equity=bindparam("value"), equity_at_ms=bindparam("at")),
                               [{"pid": e.participant_id, "value": e.equity, "at": e.at_ms, "own": mine, "v": v}
                                for e, mine, v in zip(chunk, own, at_version, strict=True)])
        db.session.commit()


def _exact(competition_id: int, noted: dict[int, tuple[Decimal, int]]) -> list[int]:
    """The noted equities as packed keys of exact cents (``to_cents`` inlined: it runs for
    every moved account each second); an inexact one is an engine bug: logged, left out."""
    changed = []
    for pid, (equity, at) in noted.items():
        cents = equity * HUNDRED
        value = int(cents)
        if cents != value or not -EXACT_LIMIT < value < EXACT_LIMIT or not 0 <= at <= AT_MASK:
            log.error("competition %s participant %s: equity %s at %s ms is not exact cents or out of range; "
                      "not ranked", competition_id, pid, equity, at)
            continue
        changed.append(((EXACT_LIMIT - value) << LOW_BITS) | (at << ID_BITS) | pid)
    return changed


def _freeze_due(competition: Competition, now: datetime) -> bool:
    return bool(competition.freeze_minutes) and competition.frozen_at is None and (
        now >= competition.end_at - timedelta(minutes=competition.freeze_minutes))


def _freeze(competition: Competition, now: datetime) -> bool:
    """Take the snapshot once, when the freeze window begins (every equity saved just before)."""
    taken = db.session.execute(update(Competition).where(Competition.id == competition.id,
                                                         Competition.frozen_at.is_(None))
                               .values(frozen_at=now)).rowcount
    if taken:
        db.session.execute(update(Participant).where(Participant.competition_id == competition.id)
                           .values(frozen_equity=Participant.equity, frozen_equity_at_ms=Participant.equity_at_ms,
                                   frozen_topped_up=Participant.topped_up,
                                   frozen_topped_up_cent_seconds=Participant.topped_up_cent_seconds))
    return bool(taken)


def _details(competition: Competition, ids: list[int], now: datetime) -> dict[int, dict]:
    """Name, trades, return and win rate of the participants a frame shows."""
    from ..auth.models import User

    if not ids:
        return {}
    p = Participant
    rows = db.session.execute(select(p.id, User.name, p.trades_count, p.topped_up, p.topped_up_cent_seconds,
                                     p.equity, p.frozen_equity, p.frozen_topped_up, p.frozen_topped_up_cent_seconds)
                              .join(User, User.id == p.user_id).where(p.id.in_(ids))).all()
    closed = db.session.execute(
        select(CfdPosition.participant_id, func.count(), func.sum(case((CfdPosition.realized_pnl > 0, 1), else_=0)))
        .where(CfdPosition.participant_id.in_(ids), CfdPosition.status == PositionStatus.CLOSED.value)
        .group_by(CfdPosition.participant_id)).all()
    wins = {pid: win_rate(won, total) for pid, total, won in closed}
    elapsed = max(0, int((now - (competition.started_at or competition.start_at)).total_seconds()))
    return {pid: {"name": name, "trades": trades, "topped_up": topped, "cent_seconds": cent_seconds,
                  "win_rate": wins.get(pid),
                  "elapsed": elapsed, "equity": equity, "frozen_equity": frozen,
                  "frozen_topped_up": frozen_topped, "frozen_cent_seconds": frozen_cent_seconds}
            for pid, name, trades, topped, cent_seconds, equity, frozen, frozen_topped, frozen_cent_seconds in rows}


def win_rate(won: int, closed: int) -> str | None:
    """Percent of closed positions that made money; None before the first close."""
    if not closed:
        return None
    return str((Decimal(int(won)) * 100 / closed).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def build_frame(competition: Competition, view: str, entries: list[Entry], moves: dict[int, int], counts_: Counts,
                now: datetime, first_rank: int = 1, equities: dict[int, Decimal] | None = None) -> dict:
    """The public rows of a board: built once per publish for the top 100 (the frame), or
    for a page further down by the page itself. Nothing in it depends on who reads it.
    With rebuys an entry holds a score, not the equity: the equity shown is ``equities``'
    (the authority's) or else the participant row's (``frozen_equity`` for the frozen view)."""
    details = _details(competition, [e.participant_id for e in entries], now)
    # the frozen view: returns as of the snapshot (top-ups then, T at the freeze), as it is ranked
    frozen_elapsed = elapsed_seconds(competition, competition.frozen_at) if (
        view == FROZEN and competition.frozen_at is not None) else None
    rows = []
    for rank, entry in enumerate(entries, start=first_rank):
        info = details.get(entry.participant_id, {})
        equity = entry.equity
        topped, cent_seconds = info.get("topped_up", Decimal("0.00")), info.get("cent_seconds", 0)
        if view == FROZEN and info.get("frozen_topped_up") is not None:  # the snapshot's top-ups
            topped, cent_seconds = info["frozen_topped_up"], info["frozen_cent_seconds"]
        if competition.rebuys_allowed:
            known = (equities or {}).get(entry.participant_id)
            if known is None:
                known = info.get("frozen_equity" if view == FROZEN else "equity")
            equity = known if known is not None else equity
        rows.append({
            "rank": rank, "participant_id": entry.participant_id, "name": info.get("name", "?"),
            "equity": f"{equity:.2f}", "move": moves.get(entry.participant_id, 0),
            "return_percent": str(return_percent(equity, competition.starting_capital, topped, cent_seconds,
                                                 info.get("elapsed", 0) if frozen_elapsed is None else frozen_elapsed)),
            "trades": info.get("trades", 0), "win_rate": info.get("win_rate"),
        })
    return {"id": competition.id, "view": view, "at": now.isoformat(), "at_ms": ms(now),
            "counts": {"participants": counts_.participants, "above_start": counts_.above_start}, "rows": rows}


def _ranks_and_moves(pub: Publisher, competition_id: int, ranking: Ranking) -> dict[int, int]:
    """Each ranked participant's rank now; notes the rank changes (the frame's arrows)."""
    last = pub.last_rank.get(competition_id, {})
    move = pub.move.setdefault(competition_id, {})
    ids = ranking.ids()
    ranks = dict(zip(ids, range(1, len(ids) + 1), strict=True))
    for pid, rank in ranks.items():
        before = last.get(pid)
        if before is not None and before != rank:
            move[pid] = before - rank
    pub.last_rank[competition_id] = ranks
    return ranks


def publish_competition(competition: Competition, now: datetime, tracked: set[int] | None = None) -> dict:
    """One re-rank of one live competition (see the module docstring). Returns the public frame."""
    pub = publisher()
    store = boards()
    if competition.id in pub.rankings and _ranked_count(competition.id) != len(pub.rankings[competition.id]):
        rebuild(competition.id, now)  # someone was disqualified (or left the ranking): from the database again
    with pub.lock:
        ranking = _load(competition.id)
        noted, pub.pending[competition.id] = pub.pending[competition.id], {}
        changed = _exact(competition.id, noted)  # packed equities (saved); with rebuys ranked by score
        if competition.rebuys_allowed:  # only exact equities: the frames, own frames and scores use them
            exact = {key & ID_MASK for key in changed}
            pub.equities[competition.id].update((pid, equity) for pid, (equity, _) in noted.items() if pid in exact)
        else:
            pub.equities[competition.id].update((pid, equity) for pid, (equity, _) in noted.items())
        ranked = (_scored_keys(competition, ranking, changed, pub.equities[competition.id], now)
                  if competition.rebuys_allowed else changed)
        ranking.put_keys(ranked)
        equities = dict(pub.equities[competition.id]) if competition.rebuys_allowed else None
        whole = len(ranked) * 4 >= len(ranking)
        board_keys = ranking.keys() if whole else None
        ranks = _ranks_and_moves(pub, competition.id, ranking)
        entries_top = ranking.top(0, FRAME_SIZE)
        live_counts = ranking.counts(to_cents(competition.starting_capital))
        move = pub.move.get(competition.id, {})
        moves = {e.participant_id: move[e.participant_id] for e in entries_top if e.participant_id in move}
        users = dict(pub.users.get(competition.id, {}))
    with pub.lock:
        pub.unsaved.setdefault(competition.id, {}).update({key & ID_MASK: key for key in changed})
    freezing = _freeze_due(competition, now)
    if freezing:  # every equity saved before the snapshot
        _persist(_take_unsaved(pub, competition.id, now, force=True), tracked, pub.versions.get(competition.id))
    froze = _freeze(competition, now) if freezing else False
    db.session.commit()
    live_frame = None
    if len(ranks) > INLINE_MAX or competition.id in pub.board_writes:
        live_frame = build_frame(competition, LIVE, entries_top, moves, live_counts, now, equities=equities)
        _queue_board_write(pub, competition.id, board_keys if board_keys is not None else ranking_keys(competition.id),
                           json.dumps(live_frame))
    elif whole or not store.exists(competition.id, LIVE):  # most moved (or Redis lost it): write it whole
        store.replace_keys(competition.id, LIVE, board_keys if board_keys is not None else ranking_keys(competition.id))
    elif ranked:
        store.apply_keys(competition.id, LIVE, ranked)
    if competition.frozen_at is not None and (froze or not store.exists(competition.id, FROZEN)):
        frozen_entries, _, frozen_equities = _rows(competition, frozen=True)
        store.replace(competition.id, FROZEN, frozen_entries)
        ordered = Ranking(frozen_entries)
        with pub.lock:
            pub.frozen_ranks[competition.id] = {pid: rank for rank, pid in enumerate(ordered.ids(), start=1)}
        _freeze_pages(competition, ordered, now, frozen_equities)
    if live_frame is None:
        live_frame = build_frame(competition, LIVE, entries_top, moves, live_counts, now, equities=equities)
        store.set_frame(competition.id, LIVE, json.dumps(live_frame))
    db.session.rollback()  # end the reading transaction
    public = live_frame if competition.frozen_at is None else frame(competition.id, FROZEN)
    if competition.frozen_at is None:
        _emit("leaderboard", live_frame, competition_room(competition.id))
    _send_own(pub, competition, ranks, users, ranking, equities)
    # After the frames went out (the room does not wait for the database); commits in
    # chunks: an order waits for a row lock a few ms at most.
    _persist(_take_unsaved(pub, competition.id, now), tracked, pub.versions.get(competition.id))
    return public


def _take_unsaved(pub: Publisher, competition_id: int, now: datetime, force: bool = False) -> list[Entry]:
    """The equities changed since the last save, when a save is due (taken: the next save
    starts from here); nothing otherwise."""
    with pub.lock:
        if not force and now.timestamp() - pub.saved_at.get(competition_id, 0) < _persist_seconds():
            return []
        unsaved = pub.unsaved.get(competition_id, {})
        pub.unsaved[competition_id], pub.saved_at[competition_id] = {}, now.timestamp()
        return [unpack(key) for key in unsaved.values()]


def _queue_board_write(pub: Publisher, competition_id: int, keys: list[int], frame_json: str) -> None:
    """Beyond INLINE_MAX participants the whole board and its frame are written by a
    background task, so the authority's loop does not wait for Redis (17 ms of server time
    for 10,000 entries): the latest board wins, written whole, and the frame after its board,
    so a reader never sees a frame ahead of the ranks. Readers stay at most a publish behind."""
    with pub.lock:
        busy = competition_id in pub.board_writes
        pub.board_writes[competition_id] = (keys, frame_json)
    if not busy:
        socketio.start_background_task(_write_boards, pub, boards(), competition_id)


def _write_boards(pub: Publisher, store, competition_id: int) -> None:
    written = None
    try:
        while True:
            with pub.lock:
                latest = pub.board_writes.get(competition_id)
                if latest is written or competition_id not in pub.rankings:  # nothing newer, or it ended
                    pub.board_writes.pop(competition_id, None)
                    return
            keys, frame_json = written = latest
            store.replace_keys(competition_id, LIVE, keys)
            store.set_frame(competition_id, LIVE, frame_json)
    except Exception:
        with pub.lock:
            pub.board_writes.pop(competition_id, None)
        log.exception("could not write the board of competition %s", competition_id)


def frozen_page_view(page: int) -> str:
    return FROZEN if page == 1 else f"{FROZEN}:{page}"


def _freeze_pages(competition: Competition, ordered: Ranking, now: datetime,
                  equities: dict[int, Decimal] | None = None) -> None:
    """Every page of the frozen board, built once: trades, win rate and return as they were
    when the freeze began (a page built later would show activity since)."""
    store = boards()
    found = ordered.counts(to_cents(competition.starting_capital))
    entries = ordered.entries()
    for start in range(0, max(len(entries), 1), FRAME_SIZE):
        page = start // FRAME_SIZE + 1
        store.set_frame(competition.id, frozen_page_view(page), json.dumps(
            build_frame(competition, FROZEN, entries[start:start + FRAME_SIZE], {}, found, now, first_rank=start + 1,
                        equities=equities)))


def ranking_entries(competition_id: int) -> list[Entry]:
    pub = publisher()
    with pub.lock:
        return pub.rankings[competition_id].entries()


def ranking_keys(competition_id: int) -> list[int]:
    pub = publisher()
    with pub.lock:
        return pub.rankings[competition_id].keys()


def _send_own(pub: Publisher, competition: Competition, ranks: dict[int, int], users: dict[int, int],
              ranking: Ranking, equities: dict[int, Decimal] | None = None) -> None:
    """Each participant's own rank and live equity, when either moved. During the freeze the
    rank is the frozen one (the live rank would tell others' moves); the equity stays live.
    Beyond INLINE_MAX participants they are built and sent by a background task, one batch
    at a time: while one is going out, the next re-ranks skip theirs (the latest wins)."""
    frozen = competition.frozen_at is not None
    if frozen and competition.id not in pub.frozen_ranks:  # this process started during the freeze
        entries = _rows(competition, frozen=True)[0]
        pub.frozen_ranks[competition.id] = {e.participant_id: rank for rank, e in
                                            enumerate(Ranking(entries).entries(), start=1)}
    if competition.id in pub.sending:
        return
    if equities is not None:  # with rebuys the ranking holds scores: the equities, in cents
        cents = {pid: to_cents(equities[pid]) for pid in ranks if pid in equities}
    else:
        cents = {pid: ranking.cents_of(pid) for pid in ranks} if len(ranks) <= INLINE_MAX else ranking.cents_snapshot()
    batch = (competition.id, frozen, pub.frozen_ranks.get(competition.id, {}), ranks, users, cents)
    if len(ranks) <= INLINE_MAX:
        _send_batch(pub, *batch)
    else:
        pub.sending.add(competition.id)
        socketio.start_background_task(_send_batch, pub, *batch)


def _send_batch(pub: Publisher, competition_id: int, frozen: bool, frozen_ranks: dict[int, int],
                ranks: dict[int, int], users: dict[int, int], cents_of: dict[int, int]) -> None:
    from ..core.events import user_room
    from ..message_queue import one_round_trip

    try:
        # With the Redis message queue, every emit is a PUBLISH round trip: 10,000 own frames
        # cost ~1 s of the authority's second one by one; in one pipeline, one round trip.
        with one_round_trip():
            sent = pub.sent.setdefault(competition_id, {})
            for pid, rank in ranks.items():
                cents = cents_of.get(pid)
                if cents is None:
                    continue
                shown = frozen_ranks.get(pid) if frozen else rank
                if sent.get(pid) == (shown, cents) or pid not in users:
                    continue
                sent[pid] = (shown, cents)
                _emit("leaderboard_me", {"id": competition_id, "rank": shown, "frozen": frozen, "of": len(ranks),
                                         "equity": cents_text(cents)}, user_room(users[pid]))
    finally:
        pub.sending.discard(competition_id)


def _emit(event: str, payload: dict, room: str) -> None:
    try:
        socketio.emit(event, payload, to=room)
    except Exception:
        log.exception("could not emit %s to %s", event, room)


def refresh_from_database(competition: Competition, tracked: set[int], now: datetime) -> None:
    """Note the equity the database has for every ranked participant the caller does not
    value itself (``tracked``: the CFD engine's accounts with open positions, whose equity it
    notes as it moves). An account with nothing open has its equity in its row, written in
    the transaction that changed it (a close, a rise/fall settlement, a rebuy): the reach
    time of a change seen here is this publish's time, at most a second late."""
    p = Participant
    rows = db.session.execute(select(p.id, p.equity).where(
        p.competition_id == competition.id, p.status == ParticipantStatus.ACTIVE.value,
        p.disqualified.is_(False), p.equity.is_not(None))).all()
    at_ms = ms(now)
    note_equity(competition.id, [(pid, equity, at_ms) for pid, equity in rows if pid not in tracked])


def publish_boards(app: Flask, now: datetime | None = None, *, tracked: set[int] | None = None) -> int:
    """Re-rank every live competition once (the price authority's CFD engine calls this each
    second). ``tracked``: given by the engine, the accounts whose equity it notes itself;
    everyone else's is read from the database first (refresh_from_database). None: the
    caller noted every change (tests, benches). Returns how many were published."""
    now = now or utcnow()
    done = 0
    with app.app_context():
        try:
            live = list(db.session.scalars(select(Competition).where(
                Competition.status == CompetitionStatus.LIVE.value)))
            pub = publisher()
            for stale in set(pub.rankings) - {c.id for c in live}:  # ended or cancelled: the standings page now
                with pub.lock:
                    pub.forget(stale)
                boards().drop(stale)
            for competition in live:
                try:
                    if tracked is not None:
                        refresh_from_database(competition, tracked, now)
                    publish_competition(competition, now, tracked)
                    done += 1
                except Exception:
                    db.session.rollback()
                    log.exception("could not publish the board of competition %s", competition.id)
        finally:
            db.session.remove()
    return done
