"""EduTradeX: an educational trading platform. ``create_app`` builds the Flask app."""

from __future__ import annotations

import importlib

from flask import Flask

from config import Config, ProductionConfig, get_config

from . import broadcast, extensions, logs, metrics, sentry
from .extensions import csrf, db, limiter, login_manager, migrate, socketio

# Feature packages, each a blueprint (and optionally socket events, CLI, background
# services). Order is the navigation order.
FEATURES = ("core", "auth", "market", "binary", "admin", "wallet", "competitions", "journal", "watchlist", "alerts")


def create_app(config: str | type[Config] | None = None, **overrides) -> Flask:
    config_class = config if isinstance(config, type) else get_config(config)
    if issubclass(config_class, ProductionConfig):
        config_class.validate()

    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(config_class)
    app.config.update(overrides)
    logs.configure(app)
    sentry.init(app)
    metrics.init_app(app)
    app.extensions["background_services"] = []
    app.extensions["health_checks"] = {}

    _init_database(app)
    migrate.init_app(app, db, render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    # Not the bare name `mail`: importing the edutradex.mail module (email sending) sets the
    # package attribute `mail` to that module, shadowing the extension imported here.
    extensions.mail.init_app(app)
    _import_socket_events()
    # SocketIO keeps its options between init_app calls; drop a queue manager left by an
    # earlier app in this process (tests build many apps) so the config here decides.
    socketio.server_options.pop("client_manager", None)
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        message_queue=app.config["REDIS_URL"],
        cors_allowed_origins=app.config.get("SOCKETIO_CORS_ORIGINS"),
        transports=_socketio_transports(app),  # always given: SocketIO keeps options between init_app calls
    )
    metrics.count_emits(socketio.server)
    if app.config["SOCKETIO_DIRECT_WRITES"]:
        writes = broadcast.install(socketio.server)
        if writes is not None:
            app.extensions["health_checks"]["socketio"] = lambda: (
                True, {"clients": len(socketio.server.eio.sockets), "writes": dict(writes)})

    from . import cli, jobs, security, settings, templating  # noqa: F401 - settings: its model

    jobs.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    cli.init_app(app)

    for name in FEATURES:
        feature = importlib.import_module(f"{__name__}.{name}")
        feature.init_app(app)
    _trust_proxies(app)
    return app


def _socketio_transports(app: Flask) -> list[str]:
    """SOCKETIO_TRANSPORTS (config.py): the transports the server accepts; the page tells the
    client the same (base.html's socketio-transports meta tag, read by app.js)."""
    transports = list(app.config["SOCKETIO_TRANSPORTS"])
    unknown = [transport for transport in transports if transport not in ("websocket", "polling")]
    if unknown or not transports:
        raise RuntimeError(f"SOCKETIO_TRANSPORTS={','.join(transports)!r}: use websocket, polling or both "
                           "(comma-separated)")
    app.config["SOCKETIO_TRANSPORTS"] = transports
    return transports


def _trust_proxies(app: Flask) -> None:
    """Behind a router every request comes from the router: take the client's address
    (rate limits, the audit log) and scheme from the X-Forwarded-* headers that the
    TRUSTED_PROXIES proxies in front of the app append, and from nothing else."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies < 0:
        raise RuntimeError(f"TRUSTED_PROXIES must be 0 or more, not {proxies}")
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Outermost, around Socket.IO's middleware too.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)


def _import_socket_events() -> None:
    """Socket.IO handlers live in each feature's events.py. They must be imported before
    the first socketio.init_app so that SocketIO keeps them in its handler list and
    registers them on every server it builds (tests build many apps per process)."""
    import importlib.util

    for name in FEATURES:
        module = f"{__name__}.{name}.events"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def _init_database(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        from pathlib import Path

        from sqlalchemy.pool import StaticPool

        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if uri in ("sqlite://", "sqlite:///:memory:"):
            options["poolclass"] = StaticPool
        else:
            Path(uri.split("sqlite:///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    if not uri.startswith("sqlite"):
        from .extensions import ping_when_idle

        with app.app_context():
            for engine in db.engines.values():
                ping_when_idle(engine, app.config["DATABASE_PING_IDLE_SECONDS"])
    if uri.startswith("sqlite"):
        from sqlalchemy import event

        with app.app_context():
            @event.listens_for(db.engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):
                # WAL lets readers work while the one writer writes; busy_timeout makes a
                # second writer wait instead of failing at once.
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()


__all__ = ["create_app"]
