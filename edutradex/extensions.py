"""Extensions, created unbound here and bound to the app in create_app()."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# The engines of the task that runs in a dedicated pool (see Database.dedicated_engine);
# None everywhere else. A ContextVar: each thread and each green thread has its own.
_dedicated: ContextVar[dict | None] = ContextVar("edutradex_dedicated_engines", default=None)

# A dedicated pool serves one task: its one connection, and one more while a listener it
# calls holds the session's connection around a store write.
DEDICATED_POOL_SIZE = 2
DEDICATED_POOL_OVERFLOW = 2


def ping_when_idle(engine: sa.Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that sat in the pool: one idle for
    more than `idle_seconds` (where a database restart or an idle-connection reaper may
    have dropped it) is pinged before use and replaced if dead. SQLAlchemy's pool_pre_ping
    pings at every checkout, a round trip per request in front of every placement; a
    connection in steady use is as alive as its last statement proved it."""
    import time

    from sqlalchemy import event, exc

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= idle_seconds:
            return
        record.info["pings"] = record.info.get("pings", 0) + 1
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            if engine.dialect.name == "postgresql":
                dbapi_connection.rollback()  # the ping's transaction: end it, it is not the caller's
        except Exception as error:
            # the pool discards this connection and checks out another (a fresh one if need be)
            raise exc.DisconnectionError(f"pooled connection found dead after {idle_seconds}s idle") from error


class Database(SQLAlchemy):
    """Flask-SQLAlchemy, plus a connection pool of its own for a long-running task.

    The price feed runs in the web process (embedded) beside the requests. On the shared
    pool, a burst of requests holds every connection, the feed waits for one to write its
    ticks, and its quotes age until placements are refused as stale. Inside
    `dedicated_engine()`, everything the task does through `db` (db.engine, db.session, the
    store's engine.begin()) uses a small pool that no request can take."""

    @property
    def engines(self):
        own = _dedicated.get()
        return own if own is not None else super().engines

    @contextmanager
    def dedicated_engine(self, app) -> Iterator[sa.Engine]:
        """Within the current thread / green thread, `db` uses a pool of its own. PostgreSQL
        only: SQLite is one writer however many pools (and an in-memory database is one
        connection, shared by design), so there the shared engine is kept."""
        shared = self._app_engines[app][None]
        if shared.dialect.name != "postgresql":
            yield shared
            return
        options = {key: value for key, value in app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).items()
                   if key not in {"pool_size", "max_overflow", "poolclass"}}
        engine = sa.create_engine(shared.url, **{**options, "pool_size": DEDICATED_POOL_SIZE,
                                                 "max_overflow": DEDICATED_POOL_OVERFLOW})
        ping_when_idle(engine, app.config["DATABASE_PING_IDLE_SECONDS"])
        token = _dedicated.set({**self._app_engines[app], None: engine})
        try:
            yield engine
        finally:
            self.session.remove()  # its connection goes back to the pool it came from
            _dedicated.reset(token)
            engine.dispose()


db = Database(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
socketio = SocketIO()
limiter = Limiter(key_func=get_remote_address)
mail = Mail()
