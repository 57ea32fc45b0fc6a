"""Real races: threads released at the same instant, each with its own app context (its
own session and database connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from edutradex.extensions import db


def run_in_threads(app, count: int, work: Callable[[int], object], timeout: float = 60) -> list:
    """work(i) in `count` threads; returns each outcome in thread order, an exception
    object where work raised (for the test to assert on)."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def worker(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                outcomes[i] = work(i)
            except Exception as exc:  # noqa: BLE001 - handed to the test
                outcomes[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes
