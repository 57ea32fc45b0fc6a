from decimal import Decimal

from flask import render_template, request, url_for

from ...auth.models import Role
from ...extensions import db
from ...parsing import parse_decimal
from .. import bp
from ..services import users as service
from ..services.parsing import InputError, new_form_key, parse_form_key, parse_reason
from ._common import PER_PAGE, actor, done, page_number

ADJUSTMENT_LIMIT = Decimal("1000000000")


@bp.get("/users")
def users():
    search = request.args.get("q", "").strip()[:100]
    pagination = db.paginate(service.user_query(search), page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("admin/users.html", pagination=pagination, search=search)


@bp.get("/users/<int:user_id>")
def user_detail(user_id: int):
    user = service.get_user(user_id)
    return render_template("admin/user_detail.html", user=user, overview=service.user_overview(user.id),
                           roles=[role.value for role in Role], wallet_installed=service.feature_installed("wallet"),
                           adjustment_key=new_form_key())


@bp.post("/users/<int:user_id>/deactivate")
def deactivate_user(user_id: int):
    user = service.set_user_active(actor(), user_id, False)
    return done(f"{user.email} is deactivated; their sessions have ended.", url_for("admin.user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/activate")
def activate_user(user_id: int):
    user = service.set_user_active(actor(), user_id, True)
    return done(f"{user.email} is active again.", url_for("admin.user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/reset-demo")
def reset_demo_balance(user_id: int):
    balance = service.reset_user_demo_balance(actor(), user_id)
    return done(f"Demo balance reset to {balance:,.2f}.", url_for("admin.user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/role")
def change_role(user_id: int):
    user = service.change_role(actor(), user_id, request.form.get("role", ""))
    return done(f"{user.email} is now {user.role}.", url_for("admin.user_detail", user_id=user_id))


@bp.post("/users/<int:user_id>/credits")
def adjust_credits(user_id: int):
    amount = parse_decimal(request.form.get("amount"), "Amount", places=2, minimum=-ADJUSTMENT_LIMIT,
                           maximum=ADJUSTMENT_LIMIT, nonzero=True, example="25.00 or -10.00", error=InputError)
    reason = parse_reason(request.form.get("reason"))
    adjustment = service.adjust_user_credits(actor(), user_id, amount, reason, parse_form_key(request.form.get("form_key")))
    if adjustment.repeated:
        return done(f"This form was already submitted: credits were adjusted by {amount:+,.2f} once.",
                    url_for("admin.user_detail", user_id=user_id), "info")
    return done(f"Credits adjusted by {amount:+,.2f}.", url_for("admin.user_detail", user_id=user_id))
