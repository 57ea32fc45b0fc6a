"""Configuration classes. Pick one with EDUTRADEX_ENV (development, testing, production)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET = "dev-only-change-me"


def unset_blank_values(environ=os.environ) -> None:
    """An empty value means unset: `.env.example` copied to `.env` lists every variable with
    an empty value, and hosts let one clear a variable's value without removing it."""
    for name in [name for name, value in environ.items() if not value.strip()]:
        del environ[name]


load_dotenv(BASE_DIR / ".env")
unset_blank_values()


def normalise_database_url(url: str) -> str:
    """Heroku-style hosts hand out postgres://, which SQLAlchemy no longer accepts."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET)
    SQLALCHEMY_DATABASE_URI = normalise_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'edutradex.db'}")
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # A pooled connection idle for longer than this is pinged (SELECT 1) before use, and
    # replaced if the server dropped it; one in steady use is not (a round trip per request
    # saved). A connection lost while in use fails that request and invalidates the pool.
    DATABASE_PING_IDLE_SECONDS = float(os.environ.get("DATABASE_PING_IDLE_SECONDS") or "10")
    REDIS_URL = os.environ.get("REDIS_URL") or None

    # Background jobs: "rq" when Redis is configured, "thread" (in-process) otherwise,
    # "sync" (run at once, in the caller) for tests.
    JOBS_MODE = os.environ.get("JOBS_MODE") or ("rq" if REDIS_URL else "thread")
    # With "rq", a process that enqueues while no RQ worker is registered runs the job
    # itself, so a deploy without a `worker` dyno still settles, emails and pays out.
    JOBS_IN_PROCESS_WITHOUT_WORKER = _bool("JOBS_IN_PROCESS_WITHOUT_WORKER", True)
    # Web processes run the price feed and settlement clock: at once without Redis (the
    # embedded default), with Redis whenever no `feed` process holds the price authority.
    EMBEDDED_SERVICES = _bool("EMBEDDED_SERVICES", True)
    # Competition pages for traders (lobby, joining). Off until traders can trade inside a
    # competition (the CFD engine, issue #12): an entry fee for a contest with nothing to
    # trade would take real credits. Admins can prepare competitions meanwhile.
    COMPETITIONS_OPEN = _bool("COMPETITIONS_OPEN", True)

    DEFAULT_DEMO_BALANCE = Decimal(os.environ.get("DEFAULT_DEMO_BALANCE", "10000"))
    DEFAULT_PAYOUT_PERCENT = Decimal(os.environ.get("DEFAULT_PAYOUT_PERCENT", "80"))
    ALLOWED_DURATIONS = [int(s) for s in os.environ.get("ALLOWED_DURATIONS", "5,15,30,60,120,300,900,3600").split(",")]
    MAX_OPEN_TRADES = int(os.environ.get("MAX_OPEN_TRADES", "20"))
    ACCENT_COLOUR = os.environ.get("ACCENT_COLOUR", "#2563eb")  # white text on it: 5.2:1
    # A market whose latest tick is older than this is unavailable for trading.
    FEED_STALE_AFTER_SECONDS = float(os.environ.get("FEED_STALE_AFTER_SECONDS", "10"))
    # A rise/fall entry on a quote older than this is refused ("prices are updating").
    ENTRY_MAX_QUOTE_AGE_MS = int(os.environ.get("ENTRY_MAX_QUOTE_AGE_MS") or "2000")
    # placements are refused while this process's clock and the feed's differ by more
    MAX_CLOCK_SKEW_MS = int(os.environ.get("MAX_CLOCK_SKEW_MS") or "250")
    # Markets: the feed loop, the tick store and the real-feed providers.
    FEED_TICK_INTERVAL_MS = int(os.environ.get("FEED_TICK_INTERVAL_MS", "500"))  # simulated markets
    FEED_EMIT_INTERVAL_MS = int(os.environ.get("FEED_EMIT_INTERVAL_MS", "100"))  # at most one frame per symbol
    FEED_CONFIG_RELOAD_SECONDS = float(os.environ.get("FEED_CONFIG_RELOAD_SECONDS", "1"))
    FEED_SEED = int(os.environ["FEED_SEED"]) if os.environ.get("FEED_SEED") else None
    # provably fair prices: each simulated market's seed is committed per period of this length
    FAIRNESS_PERIOD_SECONDS = float(os.environ.get("FAIRNESS_PERIOD_SECONDS", "3600"))
    TICK_FLUSH_INTERVAL_MS = int(os.environ.get("TICK_FLUSH_INTERVAL_MS", "250"))
    TICK_FLUSH_MAX = int(os.environ.get("TICK_FLUSH_MAX", "500"))
    # the CFD engine re-reads pending orders and open positions this often (a lost notice costs this long)
    CFD_RECONCILE_SECONDS = float(os.environ.get("CFD_RECONCILE_SECONDS", "5"))
    # price alerts: active alerts per user, and how often the alert engine re-reads them (backs up lost notices)
    ALERTS_PER_USER = int(os.environ.get("ALERTS_PER_USER", "50"))
    ALERTS_RECONCILE_SECONDS = float(os.environ.get("ALERTS_RECONCILE_SECONDS", "5"))
    TICK_RETENTION_HOURS = float(os.environ.get("TICK_RETENTION_HOURS", "48"))
    # `flask seed` records this many hours of simulated history for simulated markets that
    # have none, so a new install's charts start full (0: no history).
    SEED_BACKFILL_HOURS = float(os.environ.get("SEED_BACKFILL_HOURS") or "24")
    CANDLE_AGGREGATE_SECONDS = float(os.environ.get("CANDLE_AGGREGATE_SECONDS", "10"))
    CANDLES_MAX = int(os.environ.get("CANDLES_MAX", "5000"))  # per request to the candles API
    TWELVEDATA_API_KEY = os.environ.get("TWELVEDATA_API_KEY") or None
    TWELVEDATA_WS_URL = os.environ.get("TWELVEDATA_WS_URL", "wss://ws.twelvedata.com/v1/quotes/price")
    TWELVEDATA_REST_URL = os.environ.get("TWELVEDATA_REST_URL", "https://api.twelvedata.com")
    FINNHUB_API_KEY = os.environ.get("FINNHUB_API_KEY") or None
    FINNHUB_WS_URL = os.environ.get("FINNHUB_WS_URL", "wss://ws.finnhub.io")
    FINNHUB_SYMBOL_PREFIX = os.environ.get("FINNHUB_SYMBOL_PREFIX", "OANDA:")  # EUR/USD -> OANDA:EUR_USD
    # How often the settlement clock looks for rise/fall trades that have expired.
    SETTLEMENT_INTERVAL_SECONDS = float(os.environ.get("SETTLEMENT_INTERVAL_SECONDS", "0.2"))
    # How often the competition clock starts, ends and settles competitions that are due.
    COMPETITION_CLOCK_INTERVAL_SECONDS = float(os.environ.get("COMPETITION_CLOCK_INTERVAL_SECONDS", "1"))
    # How often the leaderboard writes the equities it ranked to the participants' rows.
    LEADERBOARD_PERSIST_SECONDS = float(os.environ.get("LEADERBOARD_PERSIST_SECONDS", "5"))
    # Tests only: the named crash point SIGKILLs the process (e.g. "competition-prize").
    COMPETITION_CRASH_POINT = os.environ.get("COMPETITION_CRASH_POINT") or None
    PASSWORD_MIN_LENGTH = int(os.environ.get("PASSWORD_MIN_LENGTH", "10"))
    # argon2id parameters (argon2-cffi defaults: time_cost=3, memory_cost=64 MiB)
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 65536

    # Proxies in front of the app that set X-Forwarded-For/-Proto (1 behind a Heroku-style
    # router). 0 ignores those headers: a client could write any address into them.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))

    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    RATELIMIT_AUTH = os.environ.get("RATELIMIT_AUTH", "10 per minute")
    RATELIMIT_HEADERS_ENABLED = True

    WTF_CSRF_TIME_LIMIT = None  # token valid for the session's lifetime
    WTF_CSRF_HEADERS = ["X-CSRFToken"]

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    # /healthz answers status and code to anyone; the checks' details (errors, counters), and
    # /metrics, only to a signed-in admin or a request with the header X-Healthz-Token:
    # <HEALTHZ_TOKEN> (or Authorization: Bearer <HEALTHZ_TOKEN>, as Prometheus sends it).
    HEALTHZ_TOKEN = os.environ.get("HEALTHZ_TOKEN") or None

    # Observability (README "Observability"). Logs: "text" lines, or one JSON object per line
    # ("json", production's default).
    LOG_FORMAT = (os.environ.get("LOG_FORMAT") or "text").strip().lower()
    LOG_LEVEL = os.environ.get("LOG_LEVEL") or "INFO"
    # Errors to Sentry (sentry-sdk, Flask and RQ integrations) when set; nothing when unset.
    SENTRY_DSN = os.environ.get("SENTRY_DSN") or None
    SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT") or None  # default: the EDUTRADEX_ENV name
    SENTRY_TRACES_SAMPLE_RATE = float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE") or "0")
    # /metrics with several processes on one host: the directory they share (read by
    # prometheus_client from the environment, see edutradex/metrics.py); unset: one process.
    PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

    SITE_NAME = os.environ.get("SITE_NAME", "EduTradeX")

    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "EduTradeX <no-reply@edutradex.local>")
    MAIL_OUTBOX_DIR = os.environ.get("MAIL_OUTBOX_DIR", str(BASE_DIR / "instance" / "outbox"))

    SOCKETIO_ASYNC_MODE = os.environ.get("SOCKETIO_ASYNC_MODE", "threading")
    # Several wsgi.py processes on one port (SO_REUSEPORT), on purpose only: without it a
    # second process started on a port in use exits with an error.
    WEB_REUSE_PORT = _bool("WEB_REUSE_PORT", False)
    # `python wsgi.py` with N > 1 binds the port once and forks N web processes that serve on
    # it (pre-fork). They share rooms and the price authority through Redis only: N > 1
    # without REDIS_URL is refused at start (wsgi.py).
    WEB_CONCURRENCY = int(os.environ.get("WEB_CONCURRENCY") or "1")
    # The Engine.IO transports the server accepts (and the page tells the client to use):
    # long-polling needs every request of a session to reach the same process, which several
    # processes behind one port (or dynos behind a router) do not give without sticky
    # sessions. Unset: WebSocket only when this process shares its port (WEB_CONCURRENCY > 1,
    # WEB_REUSE_PORT), else WebSocket then polling.
    SOCKETIO_TRANSPORTS = [transport.strip() for transport in (
        os.environ.get("SOCKETIO_TRANSPORTS")
        or ("websocket" if WEB_CONCURRENCY > 1 or WEB_REUSE_PORT else "websocket,polling")
    ).split(",") if transport.strip()]
    # Broadcasts written straight to idle WebSockets (edutradex/broadcast.py); eventlet only.
    SOCKETIO_DIRECT_WRITES = _bool("SOCKETIO_DIRECT_WRITES", True)

    # Credit wallet (1 credit = 1 EUR). Without STRIPE_SECRET_KEY the demo provider credits
    # deposits at once (the embedded default). Withdrawals are paid by SEPA batches.
    # "demo" chooses the demo provider on purpose (production refuses to start without Stripe
    # keys otherwise); its credits are never withdrawable. Unset: Stripe when its key is set.
    PAYMENTS_PROVIDER = (os.environ.get("PAYMENTS_PROVIDER") or "").strip().lower() or None
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY") or None
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY") or None
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET") or None
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE") or None  # e.g. localstripe: http://127.0.0.1:8420
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
    DEPOSIT_MIN = Decimal(os.environ.get("DEPOSIT_MIN", "5"))
    DEPOSIT_MAX = Decimal(os.environ.get("DEPOSIT_MAX", "1000"))
    WITHDRAWAL_MIN = Decimal(os.environ.get("WITHDRAWAL_MIN", "10"))
    # The platform's bank account that pays withdrawals: the debtor of the SEPA payout
    # batches (pain.001 files) an admin uploads to that bank.
    PAYOUT_DEBTOR_NAME = os.environ.get("PAYOUT_DEBTOR_NAME") or None
    PAYOUT_DEBTOR_IBAN = os.environ.get("PAYOUT_DEBTOR_IBAN") or None
    PAYOUT_DEBTOR_BIC = os.environ.get("PAYOUT_DEBTOR_BIC") or None
    # How often the reconciler restarts payouts whose job was lost or whose provider was down.
    PAYOUT_RECONCILE_SECONDS = float(os.environ.get("PAYOUT_RECONCILE_SECONDS", "60"))
    # Fernet key(s) for KYC data and bank details, comma-separated, newest first (rotation).
    KYC_ENCRYPTION_KEY = os.environ.get("KYC_ENCRYPTION_KEY") or None
    # Key of the identity fingerprints (keyed hashes of KYC details, for fair play); default:
    # derived from SECRET_KEY. Changing it makes earlier submissions match no new one.
    IDENTITY_FINGERPRINT_KEY = os.environ.get("IDENTITY_FINGERPRINT_KEY") or None


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    REDIS_URL = None
    JOBS_MODE = "sync"
    JOBS_IN_PROCESS_WITHOUT_WORKER = False  # RQ tests run their worker themselves
    EMBEDDED_SERVICES = False
    COMPETITIONS_OPEN = True  # the default; test_views tests the switch off
    RATELIMIT_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024
    SOCKETIO_ASYNC_MODE = "threading"
    MAIL_SUPPRESS_SEND = True


class ProductionConfig(Config):
    ENV_NAME = "production"
    LOG_FORMAT = (os.environ.get("LOG_FORMAT") or "json").strip().lower()
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"

    @classmethod
    def validate(cls) -> None:
        if not cls.SECRET_KEY or cls.SECRET_KEY == DEFAULT_SECRET or len(cls.SECRET_KEY) < 16:
            raise RuntimeError(
                "SECRET_KEY is missing, too short or the development default: "
                "set a long random SECRET_KEY before starting in production."
            )
        if not cls.KYC_ENCRYPTION_KEY:
            raise RuntimeError(
                "KYC_ENCRYPTION_KEY is missing: identity documents and bank details are encrypted with it. "
                "Generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
        if cls.STRIPE_SECRET_KEY and not cls.STRIPE_WEBHOOK_SECRET:
            raise RuntimeError("STRIPE_SECRET_KEY is set without STRIPE_WEBHOOK_SECRET: deposits would never be credited.")
        cls.validate_payments()

    @classmethod
    def validate_payments(cls) -> None:
        if cls.PAYMENTS_PROVIDER not in (None, "stripe", "demo"):
            raise RuntimeError(f"PAYMENTS_PROVIDER={cls.PAYMENTS_PROVIDER!r}: use 'stripe' or 'demo'.")
        if cls.PAYMENTS_PROVIDER == "demo":
            return
        missing = [name for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
                   if not getattr(cls, name)]
        if missing:
            raise RuntimeError(
                f"Payments: {', '.join(missing)} missing. Set the Stripe keys, or set PAYMENTS_PROVIDER=demo to run "
                "the demo payment provider on purpose (no real money; its credits are never withdrawable)."
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def get_config(name: str | None = None) -> type[Config]:
    name = name or os.environ.get("EDUTRADEX_ENV")
    if not name:
        refuse_implicit_development()
        name = "development"
    try:
        return CONFIGS[name]
    except KeyError:
        raise RuntimeError(f"Unknown EDUTRADEX_ENV {name!r}; use one of {sorted(CONFIGS)}") from None


def refuse_implicit_development() -> None:
    """A deploy that forgot EDUTRADEX_ENV would run on the development defaults (the
    development SECRET_KEY, a KYC key derived from it, cookies without Secure). PostgreSQL or
    Redis means a deploy, so the environment must then be named."""
    services = []
    if Config.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
        services.append("DATABASE_URL points at PostgreSQL")
    if Config.REDIS_URL:
        services.append("REDIS_URL is set")
    if services:
        raise RuntimeError(
            f"EDUTRADEX_ENV is not set but {' and '.join(services)}: refusing to start on the development defaults "
            "(development SECRET_KEY, insecure cookies). Set EDUTRADEX_ENV=production, or EDUTRADEX_ENV=development "
            "to use these services with the development settings on purpose."
        )
