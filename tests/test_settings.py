"""Settings are cached per app: a change made here is read back at once, a change made by
another process is seen once the cache ages out."""

import json

from sqlalchemy import update

from edutradex import settings
from edutradex.extensions import db
from edutradex.settings import Setting, get_setting, set_setting


def test_a_change_is_visible_to_the_next_read(app):
    with app.app_context():
        assert get_setting("max_open_trades") == app.config["MAX_OPEN_TRADES"]
        set_setting("max_open_trades", "7")
        db.session.commit()
        assert get_setting("max_open_trades") == 7


def test_a_rolled_back_change_is_not_kept(app):
    with app.app_context():
        set_setting("site_name", "Rolled Back")
        db.session.rollback()
        assert get_setting("site_name") == app.config["SITE_NAME"]


def test_a_change_from_another_process_is_seen_after_the_cache_ages(app, monkeypatch):
    with app.app_context():
        set_setting("max_open_trades", "7")
        db.session.commit()
        assert get_setting("max_open_trades") == 7
        # Another web process writes the row: this process still has 7 cached...
        db.session.execute(update(Setting).where(Setting.key == "max_open_trades").values(value=json.dumps(9)))
        db.session.commit()
        assert get_setting("max_open_trades") == 7
        # ...until the cache is older than CACHE_SECONDS.
        monkeypatch.setattr(settings, "CACHE_SECONDS", 0.0)
        assert get_setting("max_open_trades") == 9


def test_each_app_has_its_own_cache(app, tmp_path):
    from tests.conftest import build_app

    other = build_app(f"sqlite:///{tmp_path / 'other.db'}")
    with app.app_context():
        set_setting("site_name", "First")
        db.session.commit()
    with other.app_context():
        assert get_setting("site_name") == other.config["SITE_NAME"]
