from flask import render_template, request, url_for

from ...contrast import describe_accent
from ...settings import SPECS
from .. import bp
from ..services import settings as service
from ._common import actor, done


@bp.get("/settings")
def settings():
    return render_template("admin/settings.html", rows=service.current_settings(), describe_accent=describe_accent)


@bp.post("/settings/<key>")
def change_setting(key: str):
    changed = service.change_setting(actor(), key, request.form.get("value", ""))
    label = SPECS[key].label
    if changed is None:
        return done(f"{label} is unchanged.", url_for("admin.settings"), "info")
    message = f"{label} set to {service.display(changed[1])}."
    if key == "accent_colour":
        message += " " + describe_accent(changed[1])
    return done(message, url_for("admin.settings"))
