"""Polling for a condition in tests that talk to real processes."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 20.0, message: str = "condition", interval: float = 0.05):
    """Call `predicate` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
