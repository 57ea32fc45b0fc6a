"""The ledger: the one way credits move.

``post_ledger_entry`` moves an amount from a debit account to a credit account (either may
be the outside world: a card payment, a bank payout, an admin adjustment) in the caller's
transaction:

1. a replayed idempotency key returns the entries already written and changes nothing;
2. each balance changes with one conditional UPDATE (``balance >= :amount`` for the debit),
   so concurrent debits can never overdraw, and the balance before/after come from the
   database's RETURNING, in the order the row lock was taken;
3. the entries are inserted with ON CONFLICT DO NOTHING on (idempotency_key, leg): if a
   concurrent posting with the same key won the race, the balance changes are undone and
   its entries are returned.

Each wallet also keeps its withdrawable part: credits posted with ``withdrawable=False``
(demo-provider deposits) never raise it, a WITHDRAWAL takes only withdrawable credits, and
any other debit spends the non-withdrawable credits first. Code that gives credits back
(a competition refund, say) decides whether they were withdrawable when taken.

The caller commits. Nothing here commits or rolls back, so a movement and the business
change that caused it (a deposit marked completed, a withdrawal created) commit together.

Competitions, for example (keys name the business event, so a retry is harmless; the full
list is in competitions/service.py and competitions/lifecycle.py)::

    pool = platform_account(PlatformAccountKind.PRIZE_POOL, f"competition:{cid}")
    post_ledger_entry(EntryType.COMPETITION_ENTRY, fee, debit=wallet_account(uid), credit=pool,
                      idempotency_key=f"competition-entry:{cid}:{uid}", reference=f"competition:{cid}")
    post_ledger_entry(EntryType.PLATFORM_FEE, fee_total, debit=pool,
                      credit=platform_account(PlatformAccountKind.PLATFORM_REVENUE),
                      idempotency_key=f"competition-fee:{cid}", reference=f"competition:{cid}")
    post_ledger_entry(EntryType.COMPETITION_PRIZE, prize, debit=pool, credit=wallet_account(winner),
                      idempotency_key=f"competition-prize:{cid}:{winner}", reference=f"competition:{cid}")
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..errors import Conflict, DomainError
from ..extensions import db
from ..parsing import parse_decimal
from ..types import utcnow
from .models import EntryType, LedgerEntry, PlatformAccount, PlatformAccountKind, Wallet

CENT = Decimal("0.01")
LEDGER_CEILING = Decimal("100000000000000")  # 10^14: a NUMERIC(18, 2) balance can still take it

# Which wallet running total an entry type moves, and in which direction (per unit of the
# entry's signed amount on the wallet).
WALLET_TOTALS: dict[str, tuple[str, int]] = {
    EntryType.DEPOSIT: ("total_deposited", 1),
    EntryType.WITHDRAWAL: ("total_withdrawn", -1),
    EntryType.WITHDRAWAL_REVERSAL: ("total_withdrawn", -1),
    EntryType.COMPETITION_ENTRY: ("total_spent_competitions", -1),
    EntryType.COMPETITION_REFUND: ("total_spent_competitions", -1),
    EntryType.COMPETITION_PRIZE: ("total_won_competitions", 1),
}
TOTAL_COLUMNS = ("total_deposited", "total_withdrawn", "total_spent_competitions", "total_won_competitions")
# Movements across the platform's boundary: the only ones allowed to have a single leg.
EXTERNAL_TYPES = frozenset({EntryType.DEPOSIT, EntryType.PAYOUT, EntryType.PAYOUT_RETURN, EntryType.ADJUSTMENT})


class InsufficientFunds(DomainError):
    pass


@dataclass(frozen=True)
class Account:
    """A wallet (by wallet id) or a platform account (by kind and reference)."""

    wallet_id: int | None = None
    kind: str | None = None
    reference: str = ""

    @property
    def label(self) -> str:
        if self.wallet_id is not None:
            return f"wallet:{self.wallet_id}"
        return f"platform:{self.kind}:{self.reference}".rstrip(":")


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def dialect_insert(table):
    """INSERT with ON CONFLICT support (PostgreSQL and SQLite both have it)."""
    if _dialect() == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def get_or_create_wallet(user_id: int) -> Wallet:
    """The user's wallet, created on first use for accounts that predate the wallet."""
    wallet = db.session.scalar(select(Wallet).where(Wallet.user_id == user_id))
    if wallet is not None:
        return wallet
    db.session.execute(dialect_insert(Wallet.__table__).values(user_id=user_id).on_conflict_do_nothing(index_elements=["user_id"]))
    return db.session.scalar(select(Wallet).where(Wallet.user_id == user_id))


def wallet_account(user_id: int) -> Account:
    return Account(wallet_id=get_or_create_wallet(user_id).id)


def wallet_accounts(user_ids: list[int]) -> dict[int, Account]:
    """wallet_account for many users with one query per 1,000 (wallets created as needed)."""
    found: dict[int, Account] = {}
    for offset in range(0, len(user_ids), 1000):
        chunk = user_ids[offset:offset + 1000]
        missing = set(chunk) - {uid for uid, in db.session.execute(select(Wallet.user_id).where(Wallet.user_id.in_(chunk)))}
        if missing:
            db.session.execute(dialect_insert(Wallet.__table__).values([{"user_id": uid} for uid in sorted(missing)])
                               .on_conflict_do_nothing(index_elements=["user_id"]))
        found.update((uid, Account(wallet_id=wid)) for uid, wid in db.session.execute(
            select(Wallet.user_id, Wallet.id).where(Wallet.user_id.in_(chunk))))
    return found


def platform_account(kind: PlatformAccountKind | str, reference: str = "") -> Account:
    return Account(kind=PlatformAccountKind(kind).value, reference=reference)


def _platform_account_id(account: Account) -> int:
    table = PlatformAccount.__table__
    query = select(table.c.id).where(table.c.kind == account.kind, table.c.reference == account.reference)
    found = db.session.scalar(query)
    if found is None:
        db.session.execute(dialect_insert(table).values(kind=account.kind, reference=account.reference)
                           .on_conflict_do_nothing(index_elements=["kind", "reference"]))
        found = db.session.scalar(query)
    return found


def parse_amount(amount: Decimal) -> Decimal:
    """Ledger amounts come from code, never straight from a form: Decimal (or int), positive,
    whole cents."""
    if isinstance(amount, bool | float) or not isinstance(amount, Decimal | int):
        raise TypeError("ledger amounts are Decimal")
    return parse_decimal(amount, "Amount", places=2, minimum=Decimal(0), above_minimum=True, maximum=LEDGER_CEILING)


@dataclass
class _Leg:
    account: Account
    side: str  # "debit" | "credit"
    table: object = None
    row_id: int = 0
    before: Decimal | None = None
    after: Decimal | None = None
    withdrawable_before: Decimal | None = None  # wallets only: what an undo restores


def _withdrawable_change(table, entry_type: str, side: str, amount: Decimal, withdrawable: bool):
    """The wallet's new withdrawable part. A payout request spends only withdrawable
    credits; any other spending takes the credits that cannot be paid out first."""
    column = table.c.withdrawable_balance
    if side == "credit":
        return column + amount if withdrawable else column
    if entry_type == EntryType.WITHDRAWAL:
        return column - amount
    remaining = table.c.balance - amount
    return case((column < remaining, column), else_=remaining)


def _apply(leg: _Leg, entry_type: str, amount: Decimal, withdrawable: bool = True) -> bool:
    """Change one balance with a conditional UPDATE. False when a debit would overdraw
    (for a withdrawal: would take more than the withdrawable part)."""
    table = leg.table
    signed = amount if leg.side == "credit" else -amount
    values = {"balance": table.c.balance + amount if leg.side == "credit" else table.c.balance - amount}
    is_wallet = leg.account.wallet_id is not None
    total = WALLET_TOTALS.get(entry_type) if is_wallet else None
    if total is not None:
        column, direction = total
        delta = signed * direction
        values[column] = table.c[column] + delta
    if is_wallet:
        # Read under the row lock, so an undo can put back exactly what was there.
        leg.withdrawable_before = db.session.scalar(
            select(table.c.withdrawable_balance).where(table.c.id == leg.row_id).with_for_update())
        values["withdrawable_balance"] = _withdrawable_change(table, entry_type, leg.side, amount, withdrawable)
    statement = update(table).where(table.c.id == leg.row_id).values(**values).returning(table.c.balance)
    if leg.side == "debit":
        statement = statement.where(table.c.balance >= amount)
        if is_wallet and entry_type == EntryType.WITHDRAWAL:
            statement = statement.where(table.c.withdrawable_balance >= amount)
    after = db.session.execute(statement).scalar_one_or_none()
    if after is None:
        return False
    leg.after = after
    leg.before = after - signed
    return True


def _undo(leg: _Leg, entry_type: str, amount: Decimal) -> None:
    """Put the row back as it was before ``_apply`` (the row lock is still ours)."""
    table = leg.table
    values = {"balance": table.c.balance - amount if leg.side == "credit" else table.c.balance + amount}
    total = WALLET_TOTALS.get(entry_type) if leg.account.wallet_id is not None else None
    if total is not None:
        column, direction = total
        values[column] = table.c[column] - (amount if leg.side == "credit" else -amount) * direction
    if leg.withdrawable_before is not None:
        values["withdrawable_balance"] = leg.withdrawable_before
    db.session.execute(update(table).where(table.c.id == leg.row_id).values(**values))


def _refresh_identity_map(legs: list[_Leg]) -> None:
    """Loaded Wallet/PlatformAccount objects must see the new balances, without marking
    them dirty (an ORM flush must never write a stale balance back)."""
    for leg in legs:
        model = Wallet if leg.account.wallet_id is not None else PlatformAccount
        obj = db.session.identity_map.get(db.session.identity_key(model, leg.row_id))
        if obj is not None:
            set_committed_value(obj, "balance", leg.after)
            if model is Wallet:
                db.session.expire(obj, [*TOTAL_COLUMNS, "withdrawable_balance"])


def _existing(idempotency_key: str) -> list[LedgerEntry]:
    return list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.idempotency_key == idempotency_key)
                                   .order_by(LedgerEntry.id)))


def _check_replay(entries: list[LedgerEntry], entry_type: str, amount: Decimal) -> list[LedgerEntry]:
    for entry in entries:
        if entry.entry_type != entry_type or abs(entry.amount) != amount:
            raise Conflict("This operation was already recorded with different details.")
    return entries


def post_ledger_entry(entry_type: EntryType | str, amount: Decimal, *, debit: Account | None, credit: Account | None,
                      idempotency_key: str, reference: str, reason: str | None = None,
                      actor_id: int | None = None, withdrawable: bool = True) -> list[LedgerEntry]:
    """Move ``amount`` from ``debit`` to ``credit`` (None = outside the platform). Returns
    the entries (one per account leg). Raises InsufficientFunds if the debit account
    cannot cover it; then nothing has changed. ``withdrawable=False`` credits a wallet with
    credits that are never paid out (the demo payment provider's)."""
    entry_type = EntryType(entry_type).value
    amount = parse_amount(amount)
    if debit is None and credit is None:
        raise ValueError("a movement needs at least one account")
    if debit == credit:
        raise ValueError("a movement needs two different accounts")
    if (debit is None or credit is None) and entry_type not in EXTERNAL_TYPES:
        raise ValueError(f"{entry_type} moves credits inside the platform: give both accounts")
    if not idempotency_key:
        raise ValueError("every movement needs an idempotency key")

    db.session.flush()
    existing = _existing(idempotency_key)
    if existing:
        return _check_replay(existing, entry_type, amount)

    legs = [_Leg(account, side) for account, side in ((debit, "debit"), (credit, "credit")) if account is not None]
    for leg in legs:
        if leg.account.wallet_id is not None:
            leg.table, leg.row_id = Wallet.__table__, leg.account.wallet_id
        else:
            leg.table, leg.row_id = PlatformAccount.__table__, _platform_account_id(leg.account)
    # One lock order for every posting (wallets, then platform accounts, each by id), so
    # two postings touching the same rows in opposite directions cannot deadlock.
    applied: list[_Leg] = []
    for leg in sorted(legs, key=lambda leg: (leg.table is not Wallet.__table__, leg.row_id)):
        if not _apply(leg, entry_type, amount, withdrawable):
            for done in applied:
                _undo(done, entry_type, amount)
            if leg.account.wallet_id is None:
                raise InsufficientFunds(f"The platform account {leg.account.label} cannot cover {amount} credits.")
            raise InsufficientFunds("Not enough credits in the wallet for this.")
        applied.append(leg)

    other = {id(leg): (legs[1 - i].account.label if len(legs) == 2 else "external") for i, leg in enumerate(legs)}
    rows = [{
        "wallet_id": leg.account.wallet_id,
        "platform_account_id": None if leg.account.wallet_id is not None else leg.row_id,
        "entry_type": entry_type,
        "leg": leg.side,
        "amount": amount if leg.side == "credit" else -amount,
        "balance_before": leg.before,
        "balance_after": leg.after,
        "counterparty": other[id(leg)],
        "reference": reference,
        "idempotency_key": idempotency_key,
        "reason": reason,
        "actor_id": actor_id,
    } for leg in legs]
    now = utcnow()
    for row in rows:
        row["created_at"] = now
    table = LedgerEntry.__table__
    inserted = db.session.execute(
        dialect_insert(table).values(rows).on_conflict_do_nothing(index_elements=["idempotency_key", "leg"]).returning(table.c.id)
    ).scalars().all()
    if len(inserted) != len(rows):
        # A concurrent posting with this key committed first: undo ours, return theirs.
        for leg in applied:
            _undo(leg, entry_type, amount)
        if inserted:
            raise Conflict("This operation was recorded twice with different accounts.")
        return _check_replay(_existing(idempotency_key), entry_type, amount)
    _refresh_identity_map(legs)
    return list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(inserted)).order_by(LedgerEntry.id)))


def post_ledger_entries(entry_type: EntryType | str, debit: Account, credits: list[tuple[Account, Decimal, str]], *,
                        reference: str) -> int:
    """Many movements from one platform account to distinct wallets (a competition's prizes),
    written exactly as ``post_ledger_entry`` would write them one after the other, in the
    caller's transaction. On PostgreSQL a few set-based statements do it whatever the
    count (wallet rows locked in id order, then the platform account); elsewhere it posts
    them one by one. Every key must be new: a key already recorded raises Conflict (the
    caller's own gate, e.g. a status flip, makes the whole batch happen once). Returns the
    number of movements."""
    entry_type = EntryType(entry_type).value
    if debit is None or debit.wallet_id is not None:
        raise ValueError("the batch debits one platform account")
    moves = [(account, parse_amount(amount), key) for account, amount, key in credits]
    if not moves:
        return 0
    wallet_ids = [account.wallet_id for account, _, _ in moves]
    if None in wallet_ids or len(set(wallet_ids)) != len(wallet_ids):
        raise ValueError("the batch credits distinct wallets")
    keys = [key for _, _, key in moves]
    if not all(keys) or len(set(keys)) != len(keys):
        raise ValueError("every movement needs its own idempotency key")
    db.session.flush()
    entries = LedgerEntry.__table__
    for offset in range(0, len(keys), 1000):
        if db.session.scalar(select(entries.c.id).where(entries.c.idempotency_key.in_(keys[offset:offset + 1000]))
                             .limit(1)) is not None:
            raise Conflict("Some of these movements were already recorded.")
    if _dialect() != "postgresql":
        for account, amount, key in moves:
            post_ledger_entry(entry_type, amount, debit=debit, credit=account, idempotency_key=key, reference=reference)
        return len(moves)

    from sqlalchemy import BigInteger, column, values

    from ..types import Money

    wallets = Wallet.__table__
    total_column = WALLET_TOTALS.get(entry_type)
    after_of: dict[int, Decimal] = {}
    ordered = sorted(zip(wallet_ids, (amount for _, amount, _ in moves), strict=True))
    for offset in range(0, len(ordered), 1000):
        chunk = ordered[offset:offset + 1000]
        db.session.execute(select(wallets.c.id).where(wallets.c.id.in_([wid for wid, _ in chunk]))
                           .order_by(wallets.c.id).with_for_update())
        amounts = values(column("wid", BigInteger), column("amount", Money()), name="credit").data(chunk)
        changes = {"balance": wallets.c.balance + amounts.c.amount,
                   "withdrawable_balance": wallets.c.withdrawable_balance + amounts.c.amount}
        if total_column is not None:
            name, direction = total_column
            changes[name] = wallets.c[name] + amounts.c.amount * direction
        after_of.update(db.session.execute(update(wallets).where(wallets.c.id == amounts.c.wid).values(**changes)
                                           .returning(wallets.c.id, wallets.c.balance)).all())
    if len(after_of) != len(moves):
        raise ValueError("a wallet of the batch does not exist")
    total = sum((amount for _, amount, _ in moves), Decimal("0.00"))
    accounts = PlatformAccount.__table__
    debit_id = _platform_account_id(debit)
    debit_after = db.session.execute(
        update(accounts).where(accounts.c.id == debit_id, accounts.c.balance >= total)
        .values(balance=accounts.c.balance - total).returning(accounts.c.balance)).scalar_one_or_none()
    if debit_after is None:
        raise InsufficientFunds(f"The platform account {debit.label} cannot cover {total} credits.")
    running = debit_after + total
    now = utcnow()
    rows = []
    for account, amount, key in moves:
        common = {"entry_type": entry_type, "reference": reference, "idempotency_key": key, "reason": None,
                  "actor_id": None, "created_at": now}
        rows.append({**common, "wallet_id": None, "platform_account_id": debit_id, "leg": "debit", "amount": -amount,
                     "balance_before": running, "balance_after": running - amount, "counterparty": account.label})
        running -= amount
        after = after_of[account.wallet_id]
        rows.append({**common, "wallet_id": account.wallet_id, "platform_account_id": None, "leg": "credit",
                     "amount": amount, "balance_before": after - amount, "balance_after": after,
                     "counterparty": debit.label})
    for offset in range(0, len(rows), 2000):
        chunk = rows[offset:offset + 2000]
        inserted = db.session.execute(
            dialect_insert(entries).values(chunk).on_conflict_do_nothing(index_elements=["idempotency_key", "leg"])
            .returning(entries.c.id)).scalars().all()
        if len(inserted) != len(chunk):
            raise Conflict("Some of these movements were recorded concurrently.")
    for model, ids in ((Wallet, after_of), (PlatformAccount, [debit_id])):
        for row_id in ids:
            obj = db.session.identity_map.get(db.session.identity_key(model, row_id))
            if obj is not None:
                db.session.expire(obj)
    return len(moves)
