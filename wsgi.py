"""Web entry point: `python wsgi.py` serves the app with eventlet's WSGI server
(Gunicorn 26 removed its eventlet worker).

Every Socket.IO client holds one green thread of the server's pool for as long as it is
connected, so the pool size is the process's connection limit: eventlet's default of 1,024
(and socketio.run's listen backlog of 50) would turn away the 1,025th watcher of the
Markets page. WEB_MAX_CONNECTIONS and WEB_LISTEN_BACKLOG set them.

eventlet must patch the standard library before anything else is imported, and the
PostgreSQL driver must yield to eventlet too (psycogreen). This is the only module that
knows about eventlet; everything else uses socketio.start_background_task / socketio.sleep.
"""

import os
import signal
import warnings

if not os.environ.get("SOCKETIO_ASYNC_MODE", "").strip():  # empty means unset, as everywhere (config.py)
    os.environ["SOCKETIO_ASYNC_MODE"] = "eventlet"
# eventlet warns at import, before logging is set up: keep its warning for the log (a JSON
# line in production, not raw text before the first one).
with warnings.catch_warnings(record=True) as _early_warnings:
    if os.environ["SOCKETIO_ASYNC_MODE"] == "eventlet":
        import eventlet

        eventlet.monkey_patch()
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()

from edutradex import create_app  # noqa: E402
from edutradex.extensions import socketio  # noqa: E402
from edutradex.runtime import start_web_services, stop_web_services  # noqa: E402

app = create_app()
for _warning in _early_warnings:
    warnings.showwarning(_warning.message, _warning.category, _warning.filename, _warning.lineno)


def _terminate(signum, frame):
    """A platform restart (SIGTERM), or Ctrl-C, stops the server: KeyboardInterrupt in the
    main greenlet, the one serving, whose `finally` stops the services cleanly.

    Python runs a signal handler in whatever greenlet the signal interrupts. Raised there, the
    KeyboardInterrupt would kill that greenlet mid-work (the price feed in the middle of a
    flush: its stop then unclean, the restart recording a gap and refunding the open trades)
    before it reached the main greenlet. So it is raised in the main greenlet only, from the
    hub, as eventlet's own kill() does; the interrupted greenlet carries on."""
    import greenlet
    from eventlet import hubs

    if greenlet.getcurrent() is _main_greenlet:
        raise KeyboardInterrupt
    hubs.get_hub().schedule_call_global(0, _main_greenlet.throw, KeyboardInterrupt)


def install_signal_handlers() -> None:
    """SIGTERM and SIGINT both end up as a KeyboardInterrupt in the calling (main) greenlet."""
    import greenlet

    global _main_greenlet
    _main_greenlet = greenlet.getcurrent()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)


_main_greenlet = None


def stop_services(seconds: float = 5.0) -> None:
    """Stop this process's price feed while it still holds the authority, so it writes its
    last ticks and marks the stop clean: a restart is then no crash (no recorded gap, and
    the trades open across it settle at their recorded prices, not refunded)."""
    import time

    stop_web_services(app)
    feed = app.extensions.get("price_feed")
    if feed is None:
        return
    feed.stop()
    stopping = time.monotonic() + seconds
    while feed.authority is not None and time.monotonic() < stopping:
        socketio.sleep(0.05)


def listen(host: str, port: int, backlog: int):
    """The listening socket. eventlet.listen sets SO_REUSEPORT unless told not to, and then
    a second wsgi.py started by mistake on the same port binds too and the kernel spreads
    connections over both: a request lands in either process. Port sharing happens only
    when WEB_REUSE_PORT asks for it; otherwise a second start fails here, loudly."""
    import errno

    import eventlet

    try:
        return eventlet.listen((host, port), backlog=backlog, reuse_port=app.config["WEB_REUSE_PORT"])
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(f"EduTradeX: {host}:{port} is already in use (is another wsgi.py running?). "
                         "Stop it or choose another PORT; WEB_REUSE_PORT=1 shares a port on purpose.") from None


if __name__ == "__main__":
    host = os.environ.get("HOST", "0.0.0.0" if os.environ.get("PORT") else "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    max_connections = int(os.environ.get("WEB_MAX_CONNECTIONS", "10000"))
    backlog = int(os.environ.get("WEB_LISTEN_BACKLOG", "1024"))
    if socketio.server.eio.async_mode == "eventlet":
        import eventlet.wsgi

        listener = listen(host, port, backlog)  # before the services: a refused start makes no tick
        if app.config["EMBEDDED_SERVICES"]:
            start_web_services(app)
        app.logger.info("EduTradeX listening on http://%s:%d (up to %d connections)", host, port, max_connections)
        install_signal_handlers()
        try:
            eventlet.wsgi.server(listener, app, max_size=max_connections, log_output=False)
        finally:  # the server returns on Ctrl-C / SIGTERM
            stop_services()
    else:  # SOCKETIO_ASYNC_MODE=threading: the development server, for debugging only
        if app.config["EMBEDDED_SERVICES"]:
            start_web_services(app)
        socketio.run(app, host=host, port=port, debug=False, use_reloader=False, log_output=False,
                     allow_unsafe_werkzeug=True)
