"""Recompute the books and compare (``flask wallet verify``).

1. Every account (wallet or platform account): balance == sum of its entries, and each
   entry continues the previous one (before == previous after, after == before + amount).
2. Every wallet's running totals == the sums of its entries by type.
3. Every internal movement's legs cancel out; only deposits, payouts and adjustments may
   cross the platform's boundary.
4. The platform-wide sum: wallets + pending withdrawals + prize pools + platform revenue
   == completed deposits - paid withdrawals + net admin adjustments, where deposits and
   paid withdrawals are read from the deposits and withdrawals tables, not the ledger.
5. The pending-withdrawals account holds exactly the open withdrawals.
6. The checks other features register in app.extensions['ledger_checks'] (competitions:
   every prize pool holds exactly its participants' fees, and is empty once settled or
   cancelled).
"""

from __future__ import annotations

from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from .ledger import EXTERNAL_TYPES, TOTAL_COLUMNS, WALLET_TOTALS
from .models import (
    ZERO,
    Deposit,
    DepositStatus,
    LedgerEntry,
    PlatformAccount,
    PlatformAccountKind,
    Wallet,
    Withdrawal,
    WithdrawalStatus,
)
from .withdrawals import OPEN_STATUSES


def _sum(query) -> Decimal:
    return db.session.scalar(query) or ZERO


def _check_chains(problems: list[str], column, label: str) -> None:
    query = (select(column, LedgerEntry.id, LedgerEntry.amount, LedgerEntry.balance_before, LedgerEntry.balance_after)
             .where(column.is_not(None)).order_by(column, LedgerEntry.id).execution_options(yield_per=1000))
    previous_account, previous_after = None, ZERO
    for account_id, entry_id, amount, before, after in db.session.execute(query):
        if account_id != previous_account:
            previous_account, previous_after = account_id, ZERO
        if before != previous_after:
            problems.append(f"{label} {account_id}: entry {entry_id} starts at {before}, previous entry ended at {previous_after}")
        if after != before + amount:
            problems.append(f"{label} {account_id}: entry {entry_id} {before} + {amount} != {after}")
        previous_after = after


def verify_ledger() -> list[str]:
    problems: list[str] = []

    sums = dict(db.session.execute(select(LedgerEntry.wallet_id, func.sum(LedgerEntry.amount))
                                   .where(LedgerEntry.wallet_id.is_not(None)).group_by(LedgerEntry.wallet_id)).all())
    by_type: dict[tuple[int, str], Decimal] = {
        (wallet_id, entry_type): total for wallet_id, entry_type, total in db.session.execute(
            select(LedgerEntry.wallet_id, LedgerEntry.entry_type, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.wallet_id.is_not(None)).group_by(LedgerEntry.wallet_id, LedgerEntry.entry_type))
    }
    for wallet in db.session.scalars(select(Wallet).order_by(Wallet.id)):
        expected = sums.get(wallet.id) or ZERO
        if wallet.balance != expected:
            problems.append(f"wallet {wallet.id} (user {wallet.user_id}): balance {wallet.balance} != entries {expected}")
        for column in TOTAL_COLUMNS:
            recomputed = sum(((by_type.get((wallet.id, entry_type)) or ZERO) * direction
                              for entry_type, (col, direction) in WALLET_TOTALS.items() if col == column), ZERO)
            if getattr(wallet, column) != recomputed:
                problems.append(f"wallet {wallet.id}: {column} {getattr(wallet, column)} != entries {recomputed}")
    _check_chains(problems, LedgerEntry.wallet_id, "wallet")

    platform_sums = dict(db.session.execute(
        select(LedgerEntry.platform_account_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.platform_account_id.is_not(None)).group_by(LedgerEntry.platform_account_id)).all())
    for account in db.session.scalars(select(PlatformAccount).order_by(PlatformAccount.id)):
        expected = platform_sums.get(account.id) or ZERO
        if account.balance != expected:
            problems.append(f"platform account {account.kind}:{account.reference}: balance {account.balance} != entries {expected}")
    _check_chains(problems, LedgerEntry.platform_account_id, "platform account")

    legs = (select(LedgerEntry.idempotency_key, func.min(LedgerEntry.entry_type), func.count(), func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.idempotency_key))
    for key, entry_type, count, total in db.session.execute(legs):
        if count == 2 and total != 0:
            problems.append(f"movement {key}: its two legs sum to {total}, not 0")
        if count == 1 and entry_type not in EXTERNAL_TYPES:
            problems.append(f"movement {key} ({entry_type}) has one leg but never leaves the platform")

    held = _sum(select(func.sum(Wallet.balance))) + _sum(select(func.sum(PlatformAccount.balance)))
    deposited = _sum(select(func.sum(Deposit.amount)).where(Deposit.status == DepositStatus.COMPLETED.value))
    paid_out = _sum(select(func.sum(Withdrawal.amount)).where(Withdrawal.status == WithdrawalStatus.PAID.value))
    adjusted = _sum(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.entry_type == "adjustment"))
    if held != deposited - paid_out + adjusted:
        problems.append(f"platform: accounts hold {held} but deposits {deposited} - paid withdrawals {paid_out} "
                        f"+ adjustments {adjusted} = {deposited - paid_out + adjusted}")
    ledger_deposits = _sum(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.entry_type == "deposit"))
    if ledger_deposits != deposited:
        problems.append(f"deposits: completed deposits {deposited} != deposit entries {ledger_deposits}")

    open_withdrawals = _sum(select(func.sum(Withdrawal.amount)).where(Withdrawal.status.in_(OPEN_STATUSES)))
    pending = _sum(select(func.sum(PlatformAccount.balance))
                   .where(PlatformAccount.kind == PlatformAccountKind.PENDING_WITHDRAWALS.value))
    if pending != open_withdrawals:
        problems.append(f"pending withdrawals account holds {pending} but open withdrawals total {open_withdrawals}")
    for check in current_app.extensions.get("ledger_checks", []):
        problems.extend(check())
    return problems


def platform_totals() -> dict[str, Decimal]:
    totals = {"wallets": _sum(select(func.sum(Wallet.balance)))}
    for kind in PlatformAccountKind:
        totals[kind.value] = _sum(select(func.sum(PlatformAccount.balance)).where(PlatformAccount.kind == kind.value))
    return totals
