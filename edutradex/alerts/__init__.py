"""Price alerts: above / below / crossing a price, once or every time, evaluated by the price
authority (listener.py, a tick listener like the CFD engine) and delivered live (a toast and
the bell's notifications) and by email, each once per trigger."""

from flask import Blueprint, Flask

bp = Blueprint("alerts", __name__)


def init_app(app: Flask) -> None:
    from . import events, listener, models, service, views  # noqa: F401 - Socket.IO, tables, pages

    listener.init_app(app)
    app.register_blueprint(bp)

    @app.context_processor
    def unread_notifications():
        return {"unread_notifications": views.unread_for_nav, "alert_choices": service.CHOICES}
