"""Web entry point: `python wsgi.py` serves the app with eventlet's WSGI server through
socketio.run (Gunicorn 26 removed its eventlet worker).

eventlet must patch the standard library before anything else is imported, and the
PostgreSQL driver must yield to eventlet too (psycogreen). This is the only module that
knows about eventlet; everything else uses socketio.start_background_task / socketio.sleep.
"""

import os

os.environ.setdefault("SOCKETIO_ASYNC_MODE", "eventlet")
if os.environ["SOCKETIO_ASYNC_MODE"] == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()

from edutradex import create_app  # noqa: E402
from edutradex.extensions import socketio  # noqa: E402
from edutradex.runtime import start_background_services  # noqa: E402

app = create_app()

if __name__ == "__main__":
    if app.config["EMBEDDED_SERVICES"]:
        start_background_services(app)
    host = os.environ.get("HOST", "0.0.0.0" if os.environ.get("PORT") else "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    app.logger.info("EduTradeX listening on http://%s:%d", host, port)
    socketio.run(app, host=host, port=port, debug=False, use_reloader=False, log_output=False)
