"""Error tracking with Sentry, when SENTRY_DSN is set (nothing is imported otherwise).

sentry-sdk's Flask integration reports unhandled errors in requests (with the request's
URL and endpoint, never its body, cookies or the user's address), its RQ
integration failed jobs in `flask worker`, and its logging integration (on by default)
every ERROR line, so a background service that logs an exception (the feed, the
settlement clock) reports it too. A request's event is tagged with its request_id, the
one in its log lines (edutradex/logs.py). Every process builds its app with create_app, so the
web processes, the feed and the worker all report."""

from __future__ import annotations

from flask import Flask, g


def init(app: Flask) -> bool:
    """Start reporting to SENTRY_DSN. Returns whether Sentry is on."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=dsn,
        integrations=[FlaskIntegration(), RqIntegration()],
        environment=app.config.get("SENTRY_ENVIRONMENT") or app.config.get("ENV_NAME"),
        traces_sample_rate=app.config["SENTRY_TRACES_SAMPLE_RATE"],
        send_default_pii=False,
        max_request_body_size="never",  # forms carry passwords, IBANs, identity data
    )

    @app.before_request
    def tag_request_id():
        # after logs' own before_request: the id in the log lines and in X-Request-ID
        sentry_sdk.set_tag("request_id", g.get("request_id"))

    return True
