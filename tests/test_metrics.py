"""/metrics: what moves when the platform works, who may read it, and one scrape adding up
the samples of several processes (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edutradex import jobs
from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.binary.settlement import settle_due_trades
from edutradex.extensions import db, socketio
from edutradex.market.quotes import now_ms
from tests.binary.conftest import add_tick, make_market, publish, tick_and_quote  # noqa: F401
from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.support.deploy import ROOT
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test
from tests.support.web import csrf_token

TOKEN = "metrics-token-0123456789"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
SYMBOL = "OTC_EUR_USD"


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(response.get_data(as_text=True))


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def scraped(app, client):
    """The test client, and a scraper's token configured."""
    app.config["HEALTHZ_TOKEN"] = TOKEN
    return client


# ---- who may read it -----------------------------------------------------------------------

def test_metrics_are_for_admins_and_the_token_holder_only(app, client):
    app.config["HEALTHZ_TOKEN"] = TOKEN
    refused = client.get("/metrics")
    assert refused.status_code == 401 and "edutradex_" not in refused.get_data(as_text=True)
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"X-Healthz-Token": "wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    for headers in (SCRAPER, {"X-Healthz-Token": TOKEN}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200 and "edutradex_http_requests_total" in response.get_data(as_text=True)

    with app.app_context():
        make_user("trader@example.com", password="correct-horse-1")
        make_admin("boss@example.com", password="correct-horse-1")
    login = {"csrf_token": csrf_token(client), "password": "correct-horse-1"}
    client.post("/login", data={**login, "email": "trader@example.com"})
    assert client.get("/metrics").status_code == 403  # a trader, signed in: not for them
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    client.post("/login", data={**login, "csrf_token": csrf_token(client), "email": "boss@example.com"})
    assert client.get("/metrics").status_code == 200


def test_without_a_token_configured_no_header_opens_metrics(app, client):
    assert app.config["HEALTHZ_TOKEN"] is None
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer None"}).status_code == 401


# ---- requests ------------------------------------------------------------------------------

def test_requests_are_counted_and_timed_by_endpoint_not_path(scraped):
    before = scrape(scraped)
    for _ in range(3):
        assert scraped.get("/healthz").status_code == 200
    assert scraped.get("/trade/SOME_SYMBOL").status_code == 302  # to the login page
    assert scraped.get("/no/such/page/12345").status_code == 404
    after = scrape(scraped)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("edutradex_http_requests_total", endpoint="core.healthz", method="GET", status="200") == 3
    assert moved("edutradex_http_request_duration_seconds_count", endpoint="core.healthz", method="GET") == 3
    assert moved("edutradex_http_request_duration_seconds_bucket", endpoint="core.healthz", method="GET",
                 le="+Inf") == 3
    assert moved("edutradex_http_request_duration_seconds_sum", endpoint="core.healthz", method="GET") > 0
    assert moved("edutradex_http_requests_total", endpoint="binary.trade", method="GET", status="302") == 1
    assert moved("edutradex_http_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    labels = {value for (_name, pairs) in after for _key, value in pairs}
    assert not any("SOME_SYMBOL" in label or "12345" in label for label in labels)  # no path in any label


# ---- placements and settlements ---------------------------------------------------------

def test_a_placement_and_its_settlement_lag_are_observed(app, scraped, auth, monkeypatch):
    from edutradex.binary import settlement

    with app.app_context():
        make_market(SYMBOL)
        tick_id = tick_and_quote(SYMBOL, "1.10000").id
        user_id = make_user("joe@example.com").id
    auth.login()
    with app.app_context():
        publish(SYMBOL, "1.10000", tick_id=tick_id)
    before = scrape(scraped)
    page = scraped.get(f"/trade/{SYMBOL}").get_data(as_text=True)
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    headers = auth.htmx_headers(f"/trade/{SYMBOL}")
    placed = scraped.post("/trade/place", headers=headers, data={
        "symbol": SYMBOL, "direction": "UP", "stake": "10.00", "duration": "5", "idempotency_key": key})
    assert placed.status_code == 200
    refused = scraped.post("/trade/place", headers=headers, data={
        "symbol": SYMBOL, "direction": "UP", "stake": "99999", "duration": "5", "idempotency_key": key + "x"})
    assert refused.status_code == 400

    with app.app_context():
        trade = db.session.scalars(db.select(Trade).where(Trade.user_id == user_id)).one()
        add_tick(SYMBOL, trade.expires_ms, "1.2")
        add_tick(SYMBOL, trade.expires_ms + 1, "1.2")
        settles_at = trade.expires_ms + 1_200  # the settler runs 1.2 s after the expiry
        monkeypatch.setattr(settlement, "now_ms", lambda: settles_at)
        [settled] = settle_due_trades(SYMBOL, trade.expires_ms)
        assert settled.result == "WIN" and settled.payout == Decimal("18.00")
    after = scrape(scraped)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("edutradex_placements_total", kind="rise_fall", outcome="placed") == 1
    assert moved("edutradex_placements_total", kind="rise_fall", outcome="refused") == 1
    assert moved("edutradex_placement_duration_seconds_count", kind="rise_fall") == 2
    assert moved("edutradex_settlements_total", result="WIN") == 1
    assert moved("edutradex_settlement_lag_seconds_count") == 1
    assert moved("edutradex_settlement_lag_seconds_sum") == pytest.approx(1.2)
    assert moved("edutradex_settlement_lag_seconds_bucket", le="1.0") == 0
    assert moved("edutradex_settlement_lag_seconds_bucket", le="1.5") == 1


def test_cfd_orders_are_counted_placed_and_refused(app, scraped):
    from edutradex.competitions.models import Competition
    from tests.competitions.cfd import live_account, quote
    from tests.factories import PASSWORD
    from tests.support.web import AuthActions

    with app.app_context():
        competition_id, _participant_id, user_id = live_account(allowed_markets=["OTC_EUR_USD"])
        url = f"/competitions/{db.session.get(Competition, competition_id).slug}/trade"
        email = db.session.get(User, user_id).email
        quote("OTC_EUR_USD", "1.08500", "1.08510", tick_id=7)
    AuthActions(scraped).login(email, PASSWORD)
    before = scrape(scraped)

    def order(**fields):
        html = scraped.get(url).get_data(as_text=True)
        key = html.split('id="cfd-client-key" name="client_key" value="', 1)[1].split('"', 1)[0]
        data = {"client_key": key, "symbol": "OTC_EUR_USD", "side": "BUY", "order_type": "MARKET", "lots": "0.10",
                "price": "", "stop_loss": "", "take_profit": "", "leverage": "30", **fields}
        return scraped.post(url + "/orders", data=data,
                            headers={"HX-Request": "true", "X-CSRFToken": csrf_token(scraped, url)})

    assert order().status_code == 200
    refused = order(lots="-1")
    assert refused.status_code == 422 and "Lots: must be more than 0." in refused.get_data(as_text=True)
    after = scrape(scraped)
    assert (value(after, "edutradex_placements_total", kind="cfd", outcome="placed")
            - value(before, "edutradex_placements_total", kind="cfd", outcome="placed")) == 1
    assert (value(after, "edutradex_placements_total", kind="cfd", outcome="refused")
            - value(before, "edutradex_placements_total", kind="cfd", outcome="refused")) == 1
    assert (value(after, "edutradex_http_requests_total", endpoint="competitions.place", method="POST", status="200")
            - value(before, "edutradex_http_requests_total", endpoint="competitions.place", method="POST",
                    status="200")) == 1


def test_observing_many_at_once_is_observing_each():
    from prometheus_client import CollectorRegistry, Histogram

    from edutradex.metrics import LAG_BUCKETS, observe_many

    registry = CollectorRegistry()
    one_by_one = Histogram("one_by_one", "each", buckets=LAG_BUCKETS, registry=registry)
    at_once = Histogram("at_once", "all", buckets=LAG_BUCKETS, registry=registry)
    amounts = [0.0, 0.1, 0.1000001, 0.25, 0.3, 1.0, 1.7, 59.9, 60.0, 300.0, 301.5, 7200.0] * 3
    for amount in amounts:
        one_by_one.observe(amount)
    observe_many(at_once, amounts)
    observe_many(at_once, [])
    samples = parse(generate_latest(registry).decode())
    for (name, labels), figure in samples.items():
        if name.startswith("one_by_one"):
            assert samples[(name.replace("one_by_one", "at_once"), labels)] == pytest.approx(figure), name


# ---- Socket.IO -----------------------------------------------------------------------------

def test_socketio_clients_and_emits(app, scraped):
    before = scrape(scraped)
    first = socketio.test_client(app, flask_test_client=scraped)
    second = socketio.test_client(app)
    assert first.is_connected() and second.is_connected()
    during = scrape(scraped)
    assert value(during, "edutradex_socketio_clients") - value(before, "edutradex_socketio_clients") == 2
    with app.app_context():
        for _ in range(4):
            socketio.emit("notice", {"message": "hello"})
    assert [m["name"] for m in second.get_received()].count("notice") == 4
    first.disconnect()
    second.disconnect()
    after = scrape(scraped)
    assert value(after, "edutradex_socketio_clients") == value(before, "edutradex_socketio_clients")
    assert (value(after, "edutradex_socketio_emits_total", event="notice")
            - value(before, "edutradex_socketio_emits_total", event="notice")) == 4


# ---- read at scrape time: the feed, the queue -------------------------------------------

def test_the_feed_tick_age_is_read_per_active_market_at_scrape_time(app, scraped):
    with app.app_context():
        make_market(SYMBOL)
        make_market("OTC_GBP_USD")
        make_market("OTC_OFF", active=False)
        publish(SYMBOL, "1.10000", ts_ms=now_ms() - 3_000)
        publish("OTC_OFF", "1.10000")
    samples = scrape(scraped)
    assert 3.0 <= value(samples, "edutradex_feed_tick_age_seconds", symbol=SYMBOL) < 10.0
    assert ("edutradex_feed_tick_age_seconds", frozenset({("symbol", "OTC_GBP_USD")})) not in samples  # no price yet
    assert ("edutradex_feed_tick_age_seconds", frozenset({("symbol", "OTC_OFF")})) not in samples  # inactive


@pytest.mark.redis
def test_rq_queue_depth_and_failed_jobs_are_read_from_redis(tmp_path, redis_url):
    from rq import SimpleWorker

    from tests import job_targets

    app = build_app(f"sqlite:///{tmp_path / 'q.db'}", REDIS_URL=redis_url, JOBS_MODE="rq",
                    JOBS_IN_PROCESS_WITHOUT_WORKER=False, HEALTHZ_TOKEN=TOKEN)
    client = app.test_client()
    with app.app_context():
        for n in range(3):
            jobs.enqueue(job_targets.rename_user, 10_000 + n, "nobody")  # no such user: the job fails
    samples = scrape(client)
    assert value(samples, "edutradex_metrics_read_failed", part="queue") == 0
    assert value(samples, "edutradex_rq_queue_depth", queue=jobs.QUEUE_NAME) == 3
    assert value(samples, "edutradex_rq_failed_jobs", queue=jobs.QUEUE_NAME) == 0
    assert value(samples, "edutradex_rq_workers", queue=jobs.QUEUE_NAME) == 0
    with app.app_context():
        SimpleWorker([jobs.QUEUE_NAME], connection=jobs.redis_connection()).work(burst=True)
    samples = scrape(client)
    assert value(samples, "edutradex_rq_queue_depth", queue=jobs.QUEUE_NAME) == 0
    assert value(samples, "edutradex_rq_failed_jobs", queue=jobs.QUEUE_NAME) == 3


@pytest.mark.redis
def test_a_scrape_while_redis_is_unreachable_says_which_part_is_missing(tmp_path):
    from tests.support.servers import free_port

    app = build_app(f"sqlite:///{tmp_path / 'r.db'}", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", JOBS_MODE="rq",
                    JOBS_IN_PROCESS_WITHOUT_WORKER=False, HEALTHZ_TOKEN=TOKEN)
    with app.app_context():
        make_market(SYMBOL)
    client = app.test_client()
    samples = scrape(client)  # still answers: what is written in processes is there
    assert value(samples, "edutradex_metrics_read_failed", part="feed") == 1
    assert value(samples, "edutradex_metrics_read_failed", part="queue") == 1
    assert not any(name.startswith(("edutradex_rq_", "edutradex_feed_")) for name, _ in samples)
    assert ("edutradex_socketio_clients", frozenset()) in samples


def test_in_process_jobs_and_their_failures_are_counted(tmp_path):
    from tests import job_targets

    app = build_app(f"sqlite:///{tmp_path / 'j.db'}", JOBS_MODE="thread", HEALTHZ_TOKEN=TOKEN)
    client = app.test_client()
    before = scrape(client)
    with app.app_context():
        jobs.enqueue(job_targets.rename_user, 424242, "nobody", job_id="failing",
                     at=datetime.now(UTC) + timedelta(seconds=1))  # waiting: not finished
        assert value(scrape(client), "edutradex_jobs_in_process") == value(before, "edutradex_jobs_in_process") + 1
    deadline = now_ms() + 5_000
    while app.extensions["jobs_in_process"] and now_ms() < deadline:
        socketio.sleep(0.02)
    after = scrape(client)
    assert value(after, "edutradex_jobs_in_process") == value(before, "edutradex_jobs_in_process")
    assert (value(after, "edutradex_jobs_in_process_failed_total")
            - value(before, "edutradex_jobs_in_process_failed_total")) == 1


# ---- several processes: PROMETHEUS_MULTIPROC_DIR ----------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from tests.conftest import build_app
    app = build_app(sys.argv[1])
    client = app.test_client()
    for _ in range(int(sys.argv[2])):
        assert client.get("/healthz").status_code == 200
    from edutradex import metrics
    metrics.SOCKETIO_CLIENTS.inc(int(sys.argv[3]))
    if sys.argv[4] == "crash":  # dies without a word: no exit handlers
        import os
        os._exit(0)
    """)

SCRAPER_PROCESS = textwrap.dedent("""
    import sys
    from tests.conftest import build_app
    app = build_app(sys.argv[1], HEALTHZ_TOKEN="t")
    sys.stdout.write(app.test_client().get("/metrics", headers={"X-Healthz-Token": "t"}).get_data(as_text=True))
    """)

JOB_HORSES = textwrap.dedent("""
    import os
    from edutradex import metrics
    for n in range(3):  # what an RQ worker does: one forked process per job, one after the other
        pid = os.fork()
        if pid == 0:
            metrics.forked_for_job()
            metrics.SETTLEMENTS.labels("WIN").inc(n + 1)
            os._exit(0)
        os.waitpid(pid, 0)
    """)


def run_python(code: str, multiproc_dir, *args) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir), "EDUTRADEX_ENV": "testing"}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_one_scrape_adds_up_the_samples_of_every_process(tmp_path):
    shared = tmp_path / "prometheus"
    database = f"sqlite:///{tmp_path / 'm.db'}"
    run_python(WRITER, shared, database, 3, 2, "exit")  # exits: its live gauge leaves with it
    run_python(WRITER, shared, database, 5, 4, "crash")  # dies: its gauge lingers until a process looks
    run_python(JOB_HORSES, shared)
    samples = parse(run_python(SCRAPER_PROCESS, shared, database))
    assert value(samples, "edutradex_http_requests_total", endpoint="core.healthz", method="GET", status="200") == 8
    assert value(samples, "edutradex_http_request_duration_seconds_count", endpoint="core.healthz", method="GET") == 8
    assert value(samples, "edutradex_socketio_clients") == 0  # neither writer runs any more
    assert value(samples, "edutradex_settlements_total", result="WIN") == 1 + 2 + 3  # no horse lost another's
    # Files per process: the two writers, the forking parent, its job processes together (not
    # one set per job), the scraper.
    writers = {name.removesuffix(".db").removesuffix("_job").rsplit("_", 1)[1] + ("_job" if "_job" in name else "")
               for name in os.listdir(shared)}
    assert len(writers) == 5 and len([w for w in writers if w.endswith("_job")]) == 1, sorted(os.listdir(shared))


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("fork", [True, False], ids=["fork", "procfile"])
def test_the_worker_writes_one_set_of_files_for_all_its_jobs(tmp_path, redis_url, fork):
    """`flask worker --fork` forks a process per job: their samples add up in one scrape, in
    files named after the worker (not a new set per job, which would grow without end). The
    Procfile's `flask worker` runs the jobs in itself: its own files hold them."""
    from tests import job_targets
    from tests.support.deploy import procfile, production_env

    shared = tmp_path / "prometheus"
    database = f"sqlite:///{tmp_path / 'w.db'}"
    app = build_app(database, REDIS_URL=redis_url, JOBS_MODE="rq", JOBS_IN_PROCESS_WITHOUT_WORKER=False)
    with app.app_context():
        for seconds in (0.2, 0.4, 0.6, 2.0):
            jobs.enqueue(job_targets.observe_settlement_lag, seconds)
        db.engine.dispose()
    environment = {**os.environ, **production_env(database, REDIS_URL=redis_url, PROMETHEUS_MULTIPROC_DIR=str(shared)),
                   "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])}
    environment.pop("SENTRY_DSN", None)
    command = f"{procfile()['worker']} {'--fork ' if fork else ''}--burst"
    done = subprocess.run(["sh", "-c", command], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    job_files = sorted(name for name in os.listdir(shared) if name.endswith("_job.db"))
    if fork:
        assert job_files and len({name.rsplit("_", 2)[-2] for name in job_files}) == 1, sorted(os.listdir(shared))
    else:
        assert job_files == [], sorted(os.listdir(shared))
    samples = parse(run_python(SCRAPER_PROCESS, shared, database))
    assert value(samples, "edutradex_settlement_lag_seconds_count") == 4
    assert value(samples, "edutradex_settlement_lag_seconds_bucket", le="0.5") == 2
    assert value(samples, "edutradex_settlement_lag_seconds_sum") == pytest.approx(3.2)


@pytest.mark.slow
def test_two_eventlet_web_processes_answer_for_each_other(tmp_path):
    """The Procfile's web process (wsgi.py, eventlet) twice on one database and one metrics
    directory: the Socket.IO client connected to one is in the other's /metrics, and leaves
    it when its process stops. The first runs the embedded feed: its tick ages are there."""
    import json

    import requests
    import socketio as socketio_client

    from tests.support.live import LiveServer

    shared = tmp_path / "prometheus"
    first = LiveServer(tmp_path / "first", PROMETHEUS_MULTIPROC_DIR=str(shared), LOG_FORMAT="json").prepare()
    second = LiveServer(tmp_path / "second", PROMETHEUS_MULTIPROC_DIR=str(shared), EMBEDDED_SERVICES="0",
                        DATABASE_URL=first.env["DATABASE_URL"])
    watcher = socketio_client.Client()

    def scraped() -> dict:
        response = requests.get(first.url + "/metrics", timeout=10,
                                headers={"Authorization": f"Bearer {first.env['HEALTHZ_TOKEN']}"})
        assert response.status_code == 200
        return parse(response.text)

    def clients_become(expected: int) -> float:
        deadline = time.monotonic() + 10
        while (seen := value(scraped(), "edutradex_socketio_clients")) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return seen

    try:
        first.start()
        second.start()
        watcher.connect(second.url, transports=["websocket"])
        assert clients_become(1) == 1
        samples = scraped()
        ages = [figure for (name, _labels), figure in samples.items() if name == "edutradex_feed_tick_age_seconds"]
        assert ages and max(ages) < 5  # the simulated markets tick
        watcher.disconnect()
        assert clients_become(0) == 0
        watcher.connect(second.url, transports=["websocket"])
        assert clients_become(1) == 1
        second.kill()  # SIGKILL: no exit handler runs; the next scrape drops the dead process's clients
        assert value(scraped(), "edutradex_socketio_clients") == 0
    finally:
        if watcher.connected:
            watcher.disconnect()
        second.stop()
        first.stop()
    lines = first.log_path.read_text().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)  # every line of the web process is JSON
