from flask import render_template
from sqlalchemy import func, select

from ..auth.models import User
from ..extensions import db
from . import bp


@bp.route("/")
def index():
    users = db.session.scalar(select(func.count()).select_from(User))
    active = db.session.scalar(select(func.count()).select_from(User).where(User.active.is_(True)))
    return render_template("admin/index.html", users=users, active=active)
