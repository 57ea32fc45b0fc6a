"""Credit wallet: balances and the ledger, deposits (Stripe or the demo provider), KYC,
withdrawals and payouts. 1 credit = 1 EUR. Other features move credits only through
``wallet.ledger.post_ledger_entry`` (see its docstring)."""

from urllib.parse import urlsplit

from flask import Blueprint, Flask

bp = Blueprint("wallet", __name__, url_prefix="/wallet")


def _allow_stripe_js(app: Flask) -> None:
    """Stripe.js (or localstripe's stand-in) loads from its own origin, talks to its API
    and, for the real one, renders the card fields and 3-D Secure in frames."""
    parts = urlsplit(app.config["STRIPE_JS_URL"])
    origin = f"{parts.scheme}://{parts.netloc}"
    sources = {"script-src": [origin], "connect-src": [origin], "frame-src": [origin]}
    if parts.netloc == "js.stripe.com":
        sources["connect-src"].append("https://api.stripe.com")
        sources["frame-src"].append("https://hooks.stripe.com")
    extra = app.config.setdefault("CSP_EXTRA_SOURCES", {})
    for directive, values in sources.items():
        current = extra.setdefault(directive, [])
        current.extend(v for v in values if v not in current)


def init_app(app: Flask) -> None:
    from ..extensions import csrf
    from . import cli, crypto, models, views  # noqa: F401 - models: the tables
    from .service import create_wallet_for_new_user
    from .withdrawals import payout_reconciler

    app.extensions["wallet_cipher"] = crypto.build_cipher(app)
    app.extensions.setdefault("on_user_created", []).append(create_wallet_for_new_user)
    app.extensions["background_services"].append(payout_reconciler)
    if app.config.get("STRIPE_SECRET_KEY"):
        _allow_stripe_js(app)
    csrf.exempt(views.stripe_webhook)  # authenticated by Stripe's signature instead
    app.register_blueprint(bp)
    cli.init_app(app)
