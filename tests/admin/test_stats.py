"""Platform statistics: users, trades, win rate, the house's demo P/L, volume per day,
deposits and withdrawals."""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from edutradex.admin.services.stats import platform_stats, volume_per_day
from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.extensions import db
from edutradex.types import utcnow
from edutradex.wallet.models import Deposit, Withdrawal
from tests.factories import make_user

_keys = iter(range(1, 10_000))


def add_trade(user_id, stake, status="SETTLED", result=None, payout=None, days_ago=0):
    opened = utcnow() - timedelta(days=days_ago)
    ms = int(opened.timestamp() * 1000)
    db.session.add(Trade(
        user_id=user_id, symbol="OTC_EUR_USD", direction="UP", stake=Decimal(stake), payout_percent=Decimal("80.00"),
        potential_payout=Decimal(stake) * Decimal("1.8"), entry_price=Decimal("1.08500"), entry_bid=Decimal("1.08495"),
        entry_ask=Decimal("1.08505"), entry_ts_ms=ms, duration_seconds=60, opened_at=opened,
        expires_at=opened + timedelta(seconds=60), expires_ms=ms + 60_000, status=status, result=result,
        payout=None if payout is None else Decimal(payout), idempotency_key=f"stats-{next(_keys):05d}"))


def test_statistics(app, client, admin, admin_id, target_id):
    with app.app_context():
        idle = make_user("idle@example.com").id
        db.session.execute(update(User).where(User.id == idle).values(last_login_at=utcnow() - timedelta(days=3)))
        add_trade(target_id, "10.00", result="WIN", payout="18.00")
        add_trade(target_id, "20.00", result="LOSS", payout="0.00", days_ago=1)
        add_trade(target_id, "5.00", result="TIE", payout="5.00", days_ago=1)
        add_trade(target_id, "30.00", result="LOSS", payout="0.00", days_ago=3)
        add_trade(target_id, "7.00", status="OPEN")
        add_trade(target_id, "2.00", status="CANCELLED")
        db.session.add_all([
            Deposit(user_id=target_id, amount=Decimal("50.00"), provider="demo", status="completed"),
            Deposit(user_id=target_id, amount=Decimal("70.00"), provider="demo", status="failed"),
            Withdrawal(user_id=target_id, amount=Decimal("15.00"), status="paid", iban_encrypted="x",
                       holder_encrypted="x", iban_masked="DE** 3000"),
            Withdrawal(user_id=target_id, amount=Decimal("9.00"), status="requested", iban_encrypted="x",
                       holder_encrypted="x", iban_masked="DE** 3000"),
        ])
        db.session.commit()

        stats = platform_stats()
        assert (stats.users_total, stats.users_active_24h) == (3, 1)  # only the admin logged in today
        assert (stats.trades.total, stats.trades.open, stats.trades.settled, stats.trades.wins) == (6, 1, 4, 1)
        assert stats.trades.win_rate == Decimal("25.00")
        # stakes 65.00 kept, payouts 23.00 paid back
        assert stats.trades.house_pnl == Decimal("42.00")
        assert (stats.money.deposits, stats.money.withdrawals, stats.money.pending_withdrawals) == (
            Decimal("50.00"), Decimal("15.00"), 1)

        days = volume_per_day()
        assert len(days) == 30 and days[-1]["time"] == utcnow().date().isoformat()
        assert [(d["value"], d["trades"]) for d in days[-4:]] == [
            ("30.00", 1), ("0.00", 0), ("25.00", 2), ("19.00", 3)]

    html = client.get("/admin/").get_data(as_text=True)
    for text in ('data-testid="stat-users">3<', 'data-testid="stat-active-24h">1<', 'data-testid="stat-trades">6<',
                 "25.00 %", 'data-testid="stat-house-pnl">42.00<', 'data-testid="stat-deposits">50.00<',
                 'data-testid="stat-withdrawals">15.00<', 'data-source="/admin/stats/volume.json"'):
        assert text in html, text
    payload = client.get("/admin/stats/volume.json").get_json()
    assert payload["days"][-1] == {"time": utcnow().date().isoformat(), "value": "19.00", "trades": 3}


def test_statistics_on_an_empty_platform(app, client, admin):
    html = client.get("/admin/").get_data(as_text=True)
    assert 'data-testid="stat-win-rate">—<' in html
    assert all(d["value"] == "0.00" for d in client.get("/admin/stats/volume.json").get_json()["days"])
