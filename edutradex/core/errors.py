"""Errors as pages, JSON or HTMX toast fragments, depending on who asked."""

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..errors import DomainError

CSRF_MESSAGE = "Your session expired or the form's security token is missing. Reload the page and try again."


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(message: str, status: int):
    if request.headers.get("HX-Request"):
        response = render_template("errors/_toast.html", message=message), status
        return response[0], status, {"HX-Retarget": "#toasts", "HX-Reswap": "beforeend"}
    if wants_json():
        return jsonify(error=message), status
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app):
    @app.errorhandler(CSRFError)
    def csrf_error(err):
        return error_response(CSRF_MESSAGE, 400)

    @app.errorhandler(DomainError)
    def domain_error(err):
        return error_response(err.message, err.status_code)

    @app.errorhandler(HTTPException)
    def http_error(err):
        messages = {
            403: "You do not have access to this page.",
            404: "That page does not exist.",
            405: "That action is not allowed here.",
            429: "Too many attempts. Wait a minute and try again.",
        }
        return error_response(messages.get(err.code, err.description), err.code)

    @app.errorhandler(500)
    def server_error(err):
        return error_response("Something went wrong on our side. Please try again.", 500)
