from decimal import Decimal

import pytest
from sqlalchemy import select, update

from edutradex.auth.models import User
from edutradex.extensions import db
from tests.factories import make_user


def _roundtrip(app):
    with app.app_context():
        user = make_user()
        # 0.1 + 0.2 is the classic float trap: it must stay exact in SQL arithmetic too.
        db.session.execute(update(User).where(User.id == user.id).values(demo_balance=Decimal("0.10")))
        db.session.execute(update(User).where(User.id == user.id).values(demo_balance=User.demo_balance + Decimal("0.20")))
        db.session.commit()
        exact = db.session.scalar(select(User.id).where(User.id == user.id, User.demo_balance == Decimal("0.30")))
        balance = db.session.scalar(select(User.demo_balance).where(User.id == user.id))
        return exact, balance, user.id


def test_money_is_exact_on_sqlite(app):
    exact, balance, user_id = _roundtrip(app)
    assert exact == user_id
    assert balance == Decimal("0.30") and isinstance(balance, Decimal)


@pytest.mark.postgres
def test_money_is_exact_on_postgres(pg_app):
    exact, balance, user_id = _roundtrip(pg_app)
    assert exact == user_id
    assert balance == Decimal("0.30")


def test_floats_and_extra_places_are_refused(app):
    with app.app_context():
        user = make_user()
        user.demo_balance = 10.5
        with pytest.raises(Exception, match="float"):
            db.session.commit()
        db.session.rollback()
        user = db.session.get(User, user.id)
        user.demo_balance = Decimal("1.005")
        with pytest.raises(Exception, match="decimal places"):
            db.session.commit()


def test_non_negative_balance_is_enforced_by_the_database(app):
    with app.app_context():
        user = make_user()
        with pytest.raises(Exception, match="(?i)check"):
            db.session.execute(update(User).where(User.id == user.id).values(demo_balance=Decimal("-1.00")))
            db.session.commit()
