"""Web entry point: `python wsgi.py` serves the app with eventlet's WSGI server
(Gunicorn 26 removed its eventlet worker).

Every Socket.IO client holds one green thread of the server's pool for as long as it is
connected, so the pool size is the process's connection limit: eventlet's default of 1,024
(and socketio.run's listen backlog of 50) would turn away the 1,025th watcher of the
Markets page. WEB_MAX_CONNECTIONS and WEB_LISTEN_BACKLOG set them.

WEB_CONCURRENCY=N (N > 1) uses N cores: the port is bound once, then N web processes are
forked to serve on it, supervised by this one (`supervise`). They need Redis (rooms over the
message queue, one price authority) and WebSocket-only Socket.IO clients (SOCKETIO_TRANSPORTS).

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
    global _stopping
    if _stopping:  # already stopping (a second Ctrl-C, or the signal from both the tty and a pre-fork parent):
        return     # a second KeyboardInterrupt would cut the feed's clean stop short
    _stopping = True
    _interrupt_main()


def _interrupt_main():
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
    _wake_the_hub_on_signals()


def _wake_the_hub_on_signals() -> None:
    """The handler only schedules the KeyboardInterrupt with the hub; a hub asleep in epoll
    (an idle server: no request, no feed, its next timer up to a minute away) would act on it
    that late, after the platform's grace period. Python writes a byte to the wakeup fd at
    every signal: a green thread reading it wakes the hub, which then runs the schedule."""
    import eventlet

    readable, writable = os.pipe()
    os.set_blocking(readable, False)
    os.set_blocking(writable, False)
    signal.set_wakeup_fd(writable)

    def drain():
        while True:
            os.read(readable, 512)  # green: waits in the hub

    eventlet.spawn(drain)


_main_greenlet = None
_stopping = False
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


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


def serve(listener, max_connections: int) -> None:
    """This process serves on `listener` until SIGTERM / SIGINT, then stops its services."""
    import eventlet.wsgi

    app.extensions["health_checks"]["web_process"] = lambda: (True, {"pid": os.getpid()})
    install_signal_handlers()
    try:
        # A pre-fork child holds SIGTERM / SIGINT from its fork until its handlers are in
        # place: one sent meanwhile (a stop right after a start) is handled here, not fatal.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if app.config["EMBEDDED_SERVICES"]:
            start_web_services(app)
        eventlet.wsgi.server(listener, app, max_size=max_connections, log_output=False)
    except KeyboardInterrupt:  # stopped before the server served (the server returns on it)
        pass
    finally:
        stop_services()
        # Stopped. Python gives back the default action (death) to the signals it handled
        # when the interpreter finalises: a late duplicate of the stop signal (the host's and
        # the pre-fork parent's) would then kill the exiting process, exit -15. Ignored now.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


# Pre-fork (WEB_CONCURRENCY > 1). Children dying this soon after their start, this many times
# in a row, cannot start (a bad setting, the database down): replacing them would loop for
# ever, so the parent stops them all and exits 1.
START_UP_SECONDS = 5.0
START_UP_FAILURES = 3
# How long the parent waits for its children to stop after SIGTERM / SIGINT before killing them.
STOP_SECONDS = 30.0


def supervise(processes: int, serve_child) -> int:
    """The pre-fork parent: forks `processes` children that each run `serve_child()` (serving
    on the listener bound before the fork), and returns the exit code.

    The parent stays as it was at import: it has created the app but opened no database or
    Redis connection and run no green thread (create_app opens none; the pools connect
    lazily), so each child starts from a clean state. It waits with the unpatched os/time,
    never running eventlet's hub. SIGTERM / SIGINT are forwarded to every child as SIGTERM;
    each stops its services (the feed, in the one holding the price authority, stops
    cleanly) and exits; the parent then exits 0, or 1 if a child failed or had to be
    killed after STOP_SECONDS. A child that dies while serving is logged and replaced; when
    START_UP_FAILURES in a row die within START_UP_SECONDS of their start, the parent stops
    the others and exits 1."""
    from eventlet import patcher

    real_os, real_time = patcher.original("os"), patcher.original("time")
    children: dict[int, float] = {}  # pid -> start (monotonic)
    state = {"stopping": False, "code": 0, "quick_deaths": 0}

    def forward(signum, frame):
        if not state["stopping"]:
            app.logger.info("web parent: signal %d, stopping %d web processes", signum, len(children))
        state["stopping"] = True
        for pid in list(children):
            _signal_child(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(processes):
        children[_fork_child(serve_child)] = real_time.monotonic()
    stop_by = None
    while children:
        pid, status = real_os.waitpid(-1, real_os.WNOHANG)
        if pid == 0 or pid not in children:
            if state["stopping"]:
                stop_by = stop_by or real_time.monotonic() + STOP_SECONDS
                if real_time.monotonic() > stop_by:
                    app.logger.error("web parent: %d web processes still running after %.0fs, killing them",
                                     len(children), STOP_SECONDS)
                    for child in list(children):
                        _signal_child(child, signal.SIGKILL)
                    state["code"] = 1
                    stop_by = float("inf")
            real_time.sleep(0.05)
            continue
        started = children.pop(pid)
        code = real_os.waitstatus_to_exitcode(status)
        if state["stopping"]:
            if code != 0:
                app.logger.error("web process %d exited with %d while stopping", pid, code)
                state["code"] = 1
            continue
        quick = real_time.monotonic() - started < START_UP_SECONDS
        state["quick_deaths"] = state["quick_deaths"] + 1 if quick else 0
        if state["quick_deaths"] >= START_UP_FAILURES:
            app.logger.error("web process %d exited with %d: %d web processes in a row exited within %.0fs of "
                             "their start, stopping the others", pid, code, START_UP_FAILURES, START_UP_SECONDS)
            state["code"] = 1
            forward(signal.SIGTERM, None)
            continue
        app.logger.error("web process %d exited with %d: starting another", pid, code)
        children[_fork_child(serve_child)] = real_time.monotonic()
    app.logger.info("web parent: every web process stopped, exiting with %d", state["code"])
    return state["code"]


def _signal_child(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # exited already; waitpid collects it
        pass


def _fork_child(serve_child) -> int:
    """Fork a web process: in the parent, return its pid; in the child, run `serve_child`
    and exit (never return: the parent's loop must not run in a child)."""
    from eventlet import hubs, patcher

    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # eventlet warns at every fork
        pid = patcher.original("os").fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return pid
    # The child, with SIGTERM / SIGINT held until serve() has its own handlers in place: the
    # parent's would forward them to the siblings, the defaults would kill it uncleanly.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # The parent's hub was never run, but its epoll instance is shared with the parent and
    # every sibling after the fork: a hub of its own.
    inherited = hubs.get_hub()
    hubs.use_hub()
    poller = getattr(inherited, "poll", None)
    if poller is not None and hasattr(poller, "close"):
        poller.close()
    # The Socket.IO queue manager skips the messages carrying its own host_id: inherited, it
    # would be every sibling's too, and an emit in one process (the feed's ticks) would reach
    # no client of another. A host_id of its own.
    manager = socketio.server.manager
    if hasattr(manager, "host_id"):
        import uuid

        manager.host_id = uuid.uuid4().hex
    from edutradex.extensions import db

    with app.app_context():  # no connection was opened before the fork; drop any pooled one unused
        for engine in db.engines.values():
            engine.dispose(close=False)
    app.logger.info("web process %d serving", os.getpid())
    code = 0
    try:
        serve_child()
    except Exception:
        app.logger.exception("web process %d failed", os.getpid())
        code = 1
    raise SystemExit(code)  # atexit runs (metrics files, logs), and nothing of the parent's loop


def web_processes(processes: int) -> int:
    """How many web processes to run for WEB_CONCURRENCY: more than one only where the
    processes share what one process would hold.

    Without Redis it is one, with a warning, not a refusal: a Heroku-style Python buildpack
    sets WEB_CONCURRENCY by dyno size (for gunicorn), and the one-dyno deploy with PostgreSQL
    alone must still start. The other misconfigurations are refused: someone asked for them."""
    if processes < 1:
        raise SystemExit(f"EduTradeX: WEB_CONCURRENCY={processes}: use 1 or more web processes.")
    if processes == 1:
        return 1
    if socketio.server.eio.async_mode != "eventlet":
        raise SystemExit("EduTradeX: WEB_CONCURRENCY > 1 needs SOCKETIO_ASYNC_MODE=eventlet (the default).")
    if not app.config["REDIS_URL"]:
        app.logger.warning("WEB_CONCURRENCY=%d ignored: several web processes need REDIS_URL (without Redis each "
                           "would have its own Socket.IO rooms, so a client would miss what another process emits, "
                           "and its own price feed); running one web process. Set REDIS_URL, or WEB_CONCURRENCY=1 "
                           "to silence this.", processes)
        return 1
    if "polling" in app.config["SOCKETIO_TRANSPORTS"]:
        raise SystemExit(f"EduTradeX: WEB_CONCURRENCY={processes} with SOCKETIO_TRANSPORTS including polling: a "
                         "long-polling client's requests would reach any of the processes, not the one holding "
                         "its session. Leave SOCKETIO_TRANSPORTS unset (WebSocket only) or set it to websocket.")
    return processes


if __name__ == "__main__":
    host = os.environ.get("HOST", "0.0.0.0" if os.environ.get("PORT") else "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    max_connections = int(os.environ.get("WEB_MAX_CONNECTIONS", "10000"))
    backlog = int(os.environ.get("WEB_LISTEN_BACKLOG", "1024"))
    processes = web_processes(app.config["WEB_CONCURRENCY"])
    if socketio.server.eio.async_mode == "eventlet":
        listener = listen(host, port, backlog)  # before the services: a refused start makes no tick
        if processes > 1:
            app.logger.info("EduTradeX listening on http://%s:%d: %d web processes (up to %d connections each)",
                            host, port, processes, max_connections)
            raise SystemExit(supervise(processes, lambda: serve(listener, max_connections)))
        app.logger.info("EduTradeX listening on http://%s:%d (up to %d connections)", host, port, max_connections)
        serve(listener, max_connections)
    else:  # SOCKETIO_ASYNC_MODE=threading: the development server, for debugging only
        if app.config["EMBEDDED_SERVICES"]:
            start_web_services(app)
        socketio.run(app, host=host, port=port, debug=False, use_reloader=False, log_output=False,
                     allow_unsafe_werkzeug=True)
