"""Wallet rules that are not deposits, withdrawals or KYC: creation, history, admin
adjustments and the withdrawal switch."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from ..auth.models import User
from ..errors import Conflict, DomainError, Forbidden, found
from ..extensions import db
from ..parsing import parse_decimal
from .ledger import get_or_create_wallet, parse_amount, platform_account, post_ledger_entry, wallet_account
from .models import EntryType, LedgerEntry, PlatformAccountKind, Wallet
from .notify import after_commit, commit, live_update

FUNDING_CEILING = Decimal("1000000.00")  # one funding at most: a typo of a few zeros is refused

HISTORY_PAGE_SIZE = 20

ENTRY_LABELS = {
    EntryType.DEPOSIT: "Deposit",
    EntryType.WITHDRAWAL: "Withdrawal",
    EntryType.WITHDRAWAL_REVERSAL: "Withdrawal returned",
    EntryType.PAYOUT: "Payout",
    EntryType.PAYOUT_RETURN: "Payout returned by the bank",
    EntryType.COMPETITION_ENTRY: "Competition entry",
    EntryType.COMPETITION_REFUND: "Competition refund",
    EntryType.COMPETITION_PRIZE: "Competition prize",
    EntryType.PLATFORM_FEE: "Platform fee",
    EntryType.ADJUSTMENT: "Adjustment",
}


def create_wallet_for_new_user(user: User) -> None:
    """on_user_created hook: runs inside registration, before its commit."""
    db.session.add(Wallet(user_id=user.id))


def get_wallet(user_id: int) -> Wallet:
    """The user's wallet; one created lazily for an older account is committed at once."""
    wallet = get_or_create_wallet(user_id)
    commit()
    return wallet


@dataclass(frozen=True)
class HistoryPage:
    entries: list[LedgerEntry]
    page: int
    pages: int
    total: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def history(user_id: int, page: int = 1, per_page: int = HISTORY_PAGE_SIZE) -> HistoryPage:
    wallet = get_or_create_wallet(user_id)
    total = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.wallet_id == wallet.id))
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    entries = list(db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.wallet_id == wallet.id)
        .order_by(LedgerEntry.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ))
    return HistoryPage(entries, page, pages, total)


def history_csv(user_id: int) -> Iterator[str]:
    """The whole history, oldest first, streamed in chunks."""
    wallet = get_or_create_wallet(user_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    writer.writerow(["id", "created_at_utc", "type", "amount", "balance_before", "balance_after", "reference", "reason"])
    yield flush()
    query = (select(LedgerEntry).where(LedgerEntry.wallet_id == wallet.id).order_by(LedgerEntry.id)
             .execution_options(yield_per=500))
    for entry in db.session.scalars(query):
        writer.writerow([entry.id, entry.created_at.strftime("%Y-%m-%d %H:%M:%S"), entry.entry_type, f"{entry.amount:.2f}",
                         f"{entry.balance_before:.2f}", f"{entry.balance_after:.2f}", entry.reference,
                         _csv_safe(entry.reason or "")])
        yield flush()


def _csv_safe(text: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


class AdjustmentAlreadyMade(Conflict):
    """The form's key was used already: the adjustment it names was made once, and this
    attempt changed nothing."""

    def __init__(self, entry: LedgerEntry):
        super().__init__("This form was already submitted: the adjustment was made once.")
        self.entry = entry


def fund_platform_revenue(amount: str, reason: str) -> Decimal:
    """The operator puts credits into platform revenue from outside (an ADJUSTMENT with no
    debit account, like an admin's credit to a wallet): what guaranteed pools are topped up
    from when fees have not earned enough. Returns the new revenue balance."""
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise DomainError("Give a reason (at least 3 characters): it is kept on the ledger entry.")
    if len(reason) > 500:
        raise DomainError("Keep the reason under 500 characters.")
    size = parse_decimal(amount, "Amount", places=2, minimum=Decimal(0), above_minimum=True,
                         maximum=FUNDING_CEILING, example="500.00")
    try:
        [entry] = post_ledger_entry(EntryType.ADJUSTMENT, size, debit=None,
                                    credit=platform_account(PlatformAccountKind.PLATFORM_REVENUE),
                                    idempotency_key=f"revenue-funding:{uuid.uuid4().hex}", reference="platform",
                                    reason=reason)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return entry.balance_after


def adjust_credits(user_id: int, amount: Decimal, reason: str, actor_id: int, *,
                   idempotency_key: str | None = None) -> LedgerEntry:
    """An admin's correction: positive credits the wallet, negative debits it (never below
    zero). The reason is mandatory and kept on the entry with the admin's id. No admin
    adjusts their own credits (four eyes). A replayed ``idempotency_key`` (a form submitted
    twice) raises AdjustmentAlreadyMade and changes nothing."""
    if actor_id == user_id:
        raise Forbidden("You cannot adjust your own credits. Ask another admin.")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give a reason for the adjustment.")
    if len(reason) > 500:
        raise DomainError("Keep the reason under 500 characters.")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount == 0:
        raise DomainError("The adjustment must be a non-zero amount of credits.")
    found(db.session.get(User, user_id), "No such user.")
    size = parse_amount(abs(amount))
    account = wallet_account(user_id)
    key = idempotency_key or f"adjustment:{uuid.uuid4().hex}"
    # The wallet's row lock makes a concurrent second submit wait for the first to commit,
    # so it sees the first one's entry below instead of racing it.
    db.session.execute(select(Wallet.id).where(Wallet.id == account.wallet_id).with_for_update())
    earlier = db.session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key).limit(1))
    if earlier is not None:
        if earlier.wallet_id != account.wallet_id or earlier.amount != amount:
            raise Conflict("This form was already used for another adjustment. Reload the page and try again.")
        raise AdjustmentAlreadyMade(earlier)
    entries = post_ledger_entry(
        EntryType.ADJUSTMENT, size,
        debit=account if amount < 0 else None,
        credit=account if amount > 0 else None,
        idempotency_key=key,
        reference=f"user:{user_id}", reason=reason, actor_id=actor_id,
    )
    entry = entries[0]
    after_commit(lambda: live_update(user_id, entry.balance_after, f"Your wallet was adjusted by {amount:+.2f} credits."))
    commit()
    return entry


def set_withdrawals_enabled(user_id: int, enabled: bool) -> Wallet:
    wallet = get_or_create_wallet(user_id)
    wallet.withdrawals_enabled = enabled
    commit()
    return wallet
