"""Wallet pages: thin views over the services. HTMX requests get fragments (and an
HX-Trigger so the other panels refresh); plain form posts get a redirect and a flash."""

from __future__ import annotations

import json

from flask import (
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required

from ..errors import DomainError
from ..extensions import limiter
from ..parsing import parse_page
from ..trading_account import use_credits
from . import bp
from .amounts import parse_credit_amount
from .deposits import deposit_limits, get_user_deposit, pay_deposit, recent_deposits, start_deposit
from .kyc import COUNTRIES, latest_submission, submit_kyc
from .models import DepositStatus
from .providers import stripe_enabled
from .service import ENTRY_LABELS, get_wallet, history, history_csv
from .webhooks import handle_stripe_webhook
from .withdrawals import (
    bank_details,
    cancel_withdrawal,
    request_withdrawal,
    save_bank_account,
    user_withdrawals,
    withdrawal_blockers,
)

# Each card deposit creates Stripe objects and each request writes: enough for people,
# not for a script hammering the payment provider on our account.
MONEY_ACTIONS_LIMIT = "30 per minute"


def _is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _done(message: str, template: str | None = None, **context):
    """After a successful action: the refreshed fragment for HTMX, else back to the page."""
    if not _is_htmx():
        flash(message, "success")
        return redirect(url_for("wallet.index"))
    body = render_template(template, **context) if template else ""
    trigger = json.dumps({"wallet-changed": True, "wallet-toast": message})
    return body, 200, {"HX-Trigger": trigger}


def _refused(exc: DomainError, template: str, **context):
    """A refused form (HTMX): the same fragment again, with what was typed and each message
    next to its field (DomainError.field_errors); a plain post gets the error page."""
    if not _is_htmx():
        raise exc
    return render_template(template, error=exc, values=request.form, **context), exc.status_code


def _page_number() -> int:
    return parse_page(request.args.get("page"))


def _panels(user_id: int) -> dict:
    low, high = deposit_limits()
    wallet = get_wallet(user_id)
    use_credits(wallet)  # the wallet page: the header shows the credit wallet
    return {
        "wallet": wallet,
        "stripe_mode": stripe_enabled(),
        "deposit_min": low,
        "deposit_max": high,
        "deposits": recent_deposits(user_id),
        "withdrawals": user_withdrawals(user_id),
        "blockers": withdrawal_blockers(user_id),
        "kyc": latest_submission(user_id),
        "bank": bank_details(user_id),
        "countries": COUNTRIES,
        "labels": ENTRY_LABELS,
    }


@bp.route("")
@login_required
def index():
    context = _panels(current_user.id)
    context["page"] = history(current_user.id, _page_number())
    return render_template("wallet/index.html", **context)


@bp.route("/summary")
@login_required
def summary():
    return render_template("wallet/_summary.html", wallet=get_wallet(current_user.id))


@bp.route("/history")
@login_required
def history_page():
    if not _is_htmx():
        return redirect(url_for("wallet.index", page=_page_number()))
    return render_template("wallet/_history.html", page=history(current_user.id, _page_number()), labels=ENTRY_LABELS)


@bp.route("/history.csv")
@login_required
def history_export():
    rows = stream_with_context(history_csv(current_user.id))
    return Response(rows, mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=edutradex-wallet-history.csv"})


@bp.route("/deposits", methods=["POST"])
@limiter.limit(MONEY_ACTIONS_LIMIT)
@login_required
def deposit():
    amount = parse_credit_amount(request.form.get("amount"))
    created = start_deposit(current_user.id, amount)
    if created.status == DepositStatus.COMPLETED.value:
        return _done(f"Demo deposit: {created.amount:.2f} credits added.", "wallet/_deposits.html",
                     deposits=recent_deposits(current_user.id))
    if not _is_htmx():
        flash("Enter your card to finish the deposit.", "info")
        return redirect(url_for("wallet.index"))
    checkout = render_template("wallet/_checkout.html", deposit=created,
                               publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"])
    return checkout, 200, {"HX-Trigger": json.dumps({"wallet-changed": True})}  # lists show it pending


@bp.route("/deposits/<int:deposit_id>/pay", methods=["POST"])
@limiter.limit(MONEY_ACTIONS_LIMIT)
@login_required
def pay(deposit_id: int):
    """Called by wallet.js with the card token from Stripe.js; answers JSON."""
    payload = request.get_json(silent=True) or {}
    token = payload.get("token") if isinstance(payload.get("token"), str) else ""
    try:
        result = pay_deposit(current_user.id, deposit_id, token)
    except DomainError as exc:
        return jsonify(error=exc.message), exc.status_code
    return jsonify(status=result.status, client_secret=result.client_secret,
                   status_url=url_for("wallet.deposit_status", deposit_id=deposit_id))


@bp.route("/deposits/<int:deposit_id>")
@login_required
def deposit_status(deposit_id: int):
    found = get_user_deposit(current_user.id, deposit_id)
    response = render_template("wallet/_deposit_status.html", deposit=found)
    if found.status == DepositStatus.COMPLETED.value:
        return response, 200, {"HX-Trigger": json.dumps({"wallet-changed": True})}
    return response


@bp.route("/deposits/list")
@login_required
def deposits_list():
    return render_template("wallet/_deposits.html", deposits=recent_deposits(current_user.id))


@bp.route("/withdrawals", methods=["POST"])
@limiter.limit(MONEY_ACTIONS_LIMIT)
@login_required
def withdraw():
    amount = parse_credit_amount(request.form.get("amount"))
    created = request_withdrawal(current_user.id, amount)
    return _done(f"Withdrawal of {created.amount:.2f} credits requested.", "wallet/_withdrawals.html",
                 **_panels(current_user.id))


@bp.route("/withdrawals/<int:withdrawal_id>/cancel", methods=["POST"])
@login_required
def cancel_withdrawal_view(withdrawal_id: int):
    cancelled = cancel_withdrawal(current_user.id, withdrawal_id)
    return _done(f"Withdrawal cancelled: {cancelled.amount:.2f} credits are back in your wallet.",
                 "wallet/_withdrawals.html", **_panels(current_user.id))


@bp.route("/withdrawals/panel")
@login_required
def withdrawals_panel():
    return render_template("wallet/_withdrawals.html", **_panels(current_user.id))


@bp.route("/bank-account", methods=["POST"])
@limiter.limit(MONEY_ACTIONS_LIMIT)
@login_required
def bank_account():
    try:
        save_bank_account(current_user.id, request.form.get("iban", ""), request.form.get("holder", ""))
    except DomainError as exc:
        return _refused(exc, "wallet/_bank.html", bank=bank_details(current_user.id))
    return _done("Bank account saved.", "wallet/_bank.html", bank=bank_details(current_user.id))


@bp.route("/kyc", methods=["POST"])
@limiter.limit(MONEY_ACTIONS_LIMIT)
@login_required
def kyc():
    form = request.form
    try:
        submit_kyc(current_user.id, form.get("legal_name", ""), form.get("date_of_birth", ""), form.get("country", ""),
                   form.get("address", ""), form.get("id_number", ""))
    except DomainError as exc:
        return _refused(exc, "wallet/_kyc.html", kyc=latest_submission(current_user.id), countries=COUNTRIES)
    return _done("Identity details sent for review.", "wallet/_kyc.html", kyc=latest_submission(current_user.id),
                 countries=COUNTRIES)


@bp.route("/webhooks/stripe", methods=["POST"])
def stripe_webhook():
    """Stripe's calls. CSRF-exempt: the signature (STRIPE_WEBHOOK_SECRET) authenticates."""
    if not stripe_enabled():
        return jsonify(error="Stripe is not configured."), 404
    try:
        outcome = handle_stripe_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
    except DomainError as exc:
        return jsonify(error=exc.message), exc.status_code
    return jsonify(received=True, outcome=outcome)
