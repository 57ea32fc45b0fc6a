"""The browser against several web processes on one port (WEB_CONCURRENCY=2): it connects by
WebSocket only, as the page says, never falling back to long-polling (whose requests could
reach another process)."""

import pytest

from tests.test_web_concurrency import cluster  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.redis]


@pytest.mark.parametrize("cluster", ["sqlite"], indirect=True)  # the database makes no difference here
def test_the_page_connects_by_websocket_only(cluster, page):  # noqa: F811 - the fixture
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(cluster.url + "/login")
    page.wait_for_function("() => window.EduTradeX && window.EduTradeX.socket && window.EduTradeX.socket.connected")
    assert page.evaluate("() => window.EduTradeX.socket.io.opts.transports") == ["websocket"]
    assert page.evaluate("() => window.EduTradeX.socket.io.engine.transport.name") == "websocket"
    assert errors == []
