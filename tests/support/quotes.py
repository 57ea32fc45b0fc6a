"""No quote outlives a test: the process-local latest quotes are cleared before and after.

`fresh_quotes` is autouse: importing it into a test module or a conftest makes it apply to
every test there (`from tests.support.quotes import fresh_quotes  # noqa: F401`)."""

from __future__ import annotations

import pytest

from edutradex.market import quotes


@pytest.fixture(autouse=True)
def fresh_quotes():
    quotes.clear_local_quotes()
    yield
    quotes.clear_local_quotes()
