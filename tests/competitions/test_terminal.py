"""The CFD terminal over HTTP (/competitions/<slug>/trade): who may open it, each HTMX
action's fragment and error fragment, and bad input from HTTP (someone else's ids, a
missing CSRF token, a replayed form) changing nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from edutradex.competitions import service
from edutradex.competitions.models import CfdFill, CfdOrder, CfdPosition, Competition
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.competitions.cfd import account, join, live_account, quote
from tests.competitions.conftest import open_competition, trader
from tests.factories import PASSWORD
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test
from tests.support.web import AuthActions, csrf_token

D = Decimal
KEY = re.compile(r'id="cfd-client-key" name="client_key" value="([0-9a-f]+)"')


@pytest.fixture
def desk(app, client):
    """A LIVE CFD competition, its trader logged in, EUR/USD OTC quoted 1.08500 / 1.08510."""
    with app.app_context():
        cid, pid, uid = live_account(allowed_markets=["OTC_EUR_USD", "SYNTHETIC"])
        slug = db.session.get(Competition, cid).slug
        email = _email(uid)
        quote("OTC_EUR_USD", "1.08500", "1.08510", tick_id=7)
    AuthActions(client).login(email, PASSWORD)
    return {"cid": cid, "pid": pid, "uid": uid, "slug": slug, "url": f"/competitions/{slug}/trade"}


def _email(user_id: int) -> str:
    from edutradex.auth.models import User

    return db.session.get(User, user_id).email


def headers(client, desk) -> dict:
    return {"HX-Request": "true", "X-CSRFToken": csrf_token(client, desk["url"])}


def ticket(client, desk, **overrides) -> dict:
    html = client.get(desk["url"]).get_data(as_text=True)
    data = {"client_key": KEY.search(html).group(1), "symbol": "OTC_EUR_USD", "side": "BUY", "order_type": "MARKET",
            "lots": "0.10", "price": "", "stop_loss": "1.08000", "take_profit": "1.09000", "leverage": "30"}
    data.update(overrides)
    return data


def count(app, model, **where) -> int:
    with app.app_context():
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return db.session.scalar(query)


def place(client, desk, **overrides):
    return client.post(desk["url"] + "/orders", data=ticket(client, desk, **overrides), headers=headers(client, desk))


def open_position_id(app, desk) -> int:
    with app.app_context():
        return db.session.scalar(select(CfdPosition.id).where(CfdPosition.participant_id == desk["pid"]))


# ---- who may open the terminal ----------------------------------------------------------------

def test_the_terminal_of_a_live_competition_shows_ticket_chart_tabs_and_account(app, client, desk):
    response = client.get(desk["url"])
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="trade-chart"' in html and 'data-symbol="OTC_EUR_USD"' in html
    # Only the competition's markets: EUR/USD OTC and the synthetic indices.
    assert "Volatility 10 Index" in html and "GBP/USD OTC" not in html and "Gold OTC" not in html
    assert 'data-lot-min="0.01" data-lot-step="0.01" data-lot-max="50"' in html
    assert "at most 30:1 here" in html and '<option value="30" selected>30:1</option>' in html
    assert 'data-testid="no-positions"' in html and 'data-testid="no-orders"' in html
    assert 'data-testid="no-history"' in html
    assert "stop-loss and take-profit trigger on the <b>bid</b>" in html and "shows the <b>mid</b>" in html
    assert 'data-testid="balance">10,000.00' in html and 'data-testid="margin-level">—' in html
    assert 'data-account="competition"' in html  # the header badge shows the competition account
    assert KEY.search(html)
    assert 'style="' not in html and "<script>" not in html  # the CSP forbids inline styles and scripts


def test_the_competition_page_links_to_the_terminal_when_live(client, desk):
    page = client.get(f"/competitions/{desk['cid']}").get_data(as_text=True)
    assert f'href="{desk["url"]}" data-testid="open-terminal"' in page


def test_who_else_sees_what(app, client, auth):
    with app.app_context():
        cid, _, _ = live_account()
        live_slug = db.session.get(Competition, cid).slug
        soon = open_competition(min_participants=1)
        outsider = trader()
        service.join_competition(soon.id, outsider)
        rise_fall = open_competition(kind="RISE_FALL", min_participants=1)
        service.join_competition(rise_fall.id, outsider)
        draft = service.create_competition({**_draft_terms(), "name": "Draft", "slug": "a-draft"})
        soon_slug, rf_slug, draft_slug, soon_id = soon.slug, rise_fall.slug, draft.slug, soon.id
        email = _email(outsider)
    assert client.get(f"/competitions/{live_slug}/trade").status_code == 302  # to the login
    AuthActions(client).login(email, PASSWORD)
    not_joined = client.get(f"/competitions/{live_slug}/trade")
    assert not_joined.status_code == 403 and "You are not in this competition" in not_joined.get_data(as_text=True)
    waiting = client.get(f"/competitions/{soon_slug}/trade")
    assert waiting.status_code == 200 and "Trading opens when the competition starts" in waiting.get_data(as_text=True)
    assert "Starts in" in waiting.get_data(as_text=True)  # the countdown
    assert "rise/fall competition" in client.get(f"/competitions/{rf_slug}/trade").get_data(as_text=True)
    assert client.get(f"/competitions/{draft_slug}/trade").status_code == 404
    assert client.get("/competitions/no-such-thing/trade").status_code == 404
    with app.app_context():  # ended: the results are on the competition's page
        db.session.get(Competition, soon_id).status = "ENDED"
        db.session.commit()
    ended = client.get(f"/competitions/{soon_slug}/trade")
    assert ended.status_code == 302 and ended.headers["Location"].endswith(f"/competitions/{soon_id}")
    # And nobody outside a live desk may act on it.
    assert client.post(f"/competitions/{live_slug}/trade/orders", data={"lots": "1"},
                       headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/competitions")}
                       ).status_code == 404


def _draft_terms() -> dict:
    now = utcnow().replace(microsecond=0)
    return {"name": "x", "entry_fee": "0", "min_participants": 1, "max_participants": 5,
            "registration_opens_at": now - timedelta(hours=1), "registration_closes_at": now + timedelta(hours=1),
            "start_at": now + timedelta(hours=1), "end_at": now + timedelta(hours=2), "prize_table": ["100"]}


# ---- placing orders ---------------------------------------------------------------------------

def test_a_market_buy_answers_with_the_book_the_proof_and_a_new_key(app, client, desk):
    data = ticket(client, desk)
    response = client.post(desk["url"] + "/orders", data=data, headers=headers(client, desk))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('data-testid="position-row"') == 1 and 'data-open="1.08510"' in html  # bought at the ask
    assert 'data-stop-loss="1.08000"' in html and 'data-take-profit="1.09000"' in html
    assert "tick #7" in html and "bid 1.08500 / ask 1.08510" in html  # the fill's proof, in History
    assert 'data-testid="fairness-link"' in html  # the proof links to the fairness period of its tick
    assert 'id="cfd-account" data-testid="account-bar" aria-label="Competition account" hx-swap-oob="true"' in html
    assert 'data-testid="used-margin">361.70' in html  # 0.1 x 100,000 x 1.0851 / 30
    new_key = KEY.search(html).group(1)
    assert new_key != data["client_key"]
    assert "Buy 0.1 lots EUR/USD OTC filled at 1.08510." in html  # the toast
    assert count(app, CfdPosition, participant_id=desk["pid"]) == 1


def test_a_placement_answers_with_what_it_changed_not_the_whole_book(app, client, desk):
    first = place(client, desk)
    assert 'id="cfd-positions"' in first.get_data(as_text=True)  # the tab was empty: sent whole
    second = place(client, desk, lots="0.20", stop_loss="", take_profit="")
    assert second.status_code == 200
    html = second.get_data(as_text=True)
    ids = []
    with app.app_context():
        ids = list(db.session.scalars(select(CfdPosition.id).where(CfdPosition.participant_id == desk["pid"])
                                      .order_by(CfdPosition.id)))
    # One row, the new one, on top of the positions tab; its fill on top of History.
    assert html.count('data-testid="position-row"') == 1 and f'id="position-{ids[1]}"' in html
    assert f'id="position-{ids[0]}"' not in html and 'id="cfd-positions"' not in html
    assert '<template><tbody hx-swap-oob="afterbegin:#cfd-positions tbody"><tr class="cfd-position"' in html
    assert html.count('data-testid="fill-row"') == 1 and 'hx-swap-oob="afterbegin:#cfd-history tbody"' in html
    assert f'data-position-id="{ids[1]}"' in html and 'id="cfd-history"' not in html
    assert 'id="cfd-orders"' not in html  # untouched
    assert 'id="count-positions" class="badge" hx-swap-oob="true">2<' in html
    assert 'id="count-orders" class="badge" hx-swap-oob="true">0<' in html
    assert 'data-testid="used-margin">1,085.10' in html  # 361.70 + 0.2 x 100,000 x 1.0851 / 30
    assert "Buy 0.2 lots EUR/USD OTC filled at 1.08510." in html
    assert KEY.search(html).group(1) and re.search(r'id="ticket-error"[^>]*hx-swap-oob="true"></p>', html)


def test_a_pending_order_answers_with_its_row_and_leaves_positions_and_history_alone(app, client, desk):
    place(client, desk)
    limit = dict(order_type="LIMIT", price="1.08000", stop_loss="", take_profit="")
    first = place(client, desk, **limit).get_data(as_text=True)
    assert 'id="cfd-orders"' in first and first.count('data-testid="order-row"') == 1  # the empty tab, whole
    html = place(client, desk, **{**limit, "price": "1.07900"}).get_data(as_text=True)
    assert html.count('data-testid="order-row"') == 1 and 'data-price="1.07900"' in html
    assert 'hx-swap-oob="afterbegin:#cfd-orders tbody"><tr class="cfd-order"' in html
    assert "position-row" not in html and "fill-row" not in html and 'id="cfd-history"' not in html
    assert 'id="count-orders" class="badge" hx-swap-oob="true">2<' in html
    assert 'id="count-positions" class="badge" hx-swap-oob="true">1<' in html


def test_a_placement_reads_the_competition_and_the_account_once_before_its_locks(app, client, desk):
    place(client, desk)
    data, sent_headers = ticket(client, desk, stop_loss="", take_profit=""), headers(client, desk)
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        assert client.post(desk["url"] + "/orders", data=data, headers=sent_headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", note)
    # The view's desk rows are the service's: one lookup by slug, one of the participant by user
    # (then the locks read both again, and the answer reads them after the commit).
    assert sum("FROM competitions WHERE competitions.slug" in s for s in seen) == 1, seen
    assert sum("FROM competition_participants WHERE competition_participants.competition_id" in s
               for s in seen) == 1, seen
    assert len(seen) <= 17, seen  # 19 when the service read them again


def test_a_replayed_form_answers_with_the_whole_book(app, client, desk):
    data = ticket(client, desk)
    client.post(desk["url"] + "/orders", data=data, headers=headers(client, desk))
    place(client, desk, stop_loss="", take_profit="")
    again = client.post(desk["url"] + "/orders", data=data, headers=headers(client, desk)).get_data(as_text=True)
    # Its row may or may not be on the page: the book is sent whole, each row once.
    assert again.count('data-testid="position-row"') == 2 and 'id="cfd-positions"' in again
    assert again.count('data-testid="fill-row"') == 2
    assert count(app, CfdPosition, participant_id=desk["pid"]) == 2


def test_a_replayed_form_places_one_order(app, client, desk):
    data = ticket(client, desk)
    first = client.post(desk["url"] + "/orders", data=data, headers=headers(client, desk))
    again = client.post(desk["url"] + "/orders", data=data, headers=headers(client, desk))
    assert first.status_code == again.status_code == 200
    assert count(app, CfdOrder, participant_id=desk["pid"]) == 1
    assert count(app, CfdPosition, participant_id=desk["pid"]) == 1
    with app.app_context():
        assert account(desk["pid"]).used_margin == D("361.70")


def test_plain_forms_without_javascript_go_back_to_the_page_with_the_message(app, client, desk):
    token = csrf_token(client, desk["url"])
    placed = client.post(desk["url"] + "/orders", data={**ticket(client, desk), "csrf_token": token})
    assert placed.status_code == 302 and placed.headers["Location"].endswith(f"{desk['url']}?symbol=OTC_EUR_USD")
    page = client.get(placed.headers["Location"]).get_data(as_text=True)
    assert "filled at 1.08510" in page and page.count('data-testid="position-row"') == 1
    closed = client.post(f"{desk['url']}/positions/{open_position_id(app, desk)}/close", data={"csrf_token": token})
    assert closed.status_code == 302 and closed.headers["Location"].endswith(desk["url"])
    assert "lots closed at 1.08500" in client.get(desk["url"]).get_data(as_text=True)


def test_a_refused_order_answers_each_message_by_its_field_and_changes_nothing(app, client, desk):
    for overrides, slot, words in (
        ({"lots": "0.005"}, "lots", "Lots"),
        ({"lots": "NaN"}, "lots", "Lots"),
        ({"lots": "1e9"}, "lots", "Lots"),
        ({"lots": "-1"}, "lots", "Lots"),
        ({"lots": "99999999999999999999"}, "lots", "Lots"),
        ({"stop_loss": "1.09500"}, "stop_loss", "Stop-loss"),
        ({"take_profit": "1.08000", "stop_loss": ""}, "take_profit", "Take-profit"),
        ({"leverage": "31"}, "leverage", "Leverage"),
        ({"order_type": "LIMIT", "price": "1.09000"}, "price", ""),
        ({"order_type": "LIMIT", "price": "1.08000", "stop_loss": "", "take_profit": "",
          "expires_at": "2000-01-01T00:00"}, "expires_at", "Expiry"),
    ):
        response = place(client, desk, **overrides)
        assert 400 <= response.status_code < 500, overrides
        assert response.headers["HX-Reswap"] == "none"
        html = response.get_data(as_text=True)
        message = re.search(rf'id="{slot}-error" role="alert" data-testid="{slot}-error" hx-swap-oob="true">([^<]*)<',
                            html).group(1)
        assert message and words in message, (overrides, message)
        assert re.search(r'id="ticket-error"[^>]*hx-swap-oob="true"></p>', html)  # nothing else said
    assert count(app, CfdOrder, participant_id=desk["pid"]) == 0
    with app.app_context():
        assert account(desk["pid"]).used_margin == 0


def test_a_market_not_allowed_here_is_refused_by_the_ticket(app, client, desk):
    with app.app_context():
        quote("OTC_GOLD", "2050.00", "2050.30")
    response = place(client, desk, symbol="OTC_GOLD", stop_loss="", take_profit="")
    assert 400 <= response.status_code < 500
    assert "not traded in this competition" in response.get_data(as_text=True)
    assert count(app, CfdOrder) == 0


def test_missing_csrf_is_refused_and_nothing_placed(app, client, desk):
    response = client.post(desk["url"] + "/orders", data=ticket(client, desk), headers={"HX-Request": "true"})
    assert response.status_code == 400 and "security token" in response.get_data(as_text=True)
    assert count(app, CfdOrder) == 0


def test_a_pending_limit_order_can_be_modified_and_cancelled(app, client, desk):
    response = place(client, desk, order_type="LIMIT", price="1.08000", stop_loss="1.07500", take_profit="1.08800")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('data-testid="order-row"') == 1 and "limit order at 1.08000 placed" in html
    with app.app_context():
        order_id = db.session.scalar(select(CfdOrder.id))
    changed = client.post(f"{desk['url']}/orders/{order_id}/modify", data={"price": "1.08100", "stop_loss": "",
                                                                           "take_profit": "1.08800"},
                          headers=headers(client, desk))
    assert changed.status_code == 200 and 'data-price="1.08100"' in changed.get_data(as_text=True)
    wrong = client.post(f"{desk['url']}/orders/{order_id}/modify", data={"price": "1.09000"},
                        headers=headers(client, desk))
    assert 400 <= wrong.status_code < 500 and f'id="order-{order_id}-error"' in wrong.get_data(as_text=True)
    cancelled = client.post(f"{desk['url']}/orders/{order_id}/cancel", headers=headers(client, desk))
    assert cancelled.status_code == 200 and 'data-testid="no-orders"' in cancelled.get_data(as_text=True)
    with app.app_context():
        order = db.session.get(CfdOrder, order_id)
        assert (order.status, order.price) == ("CANCELLED", D("1.08100"))


# ---- positions: SL/TP, close ------------------------------------------------------------------

def test_edit_sl_tp_then_close_in_part_and_in_full(app, client, desk):
    assert place(client, desk, lots="0.30").status_code == 200
    position_id = open_position_id(app, desk)
    url = f"{desk['url']}/positions/{position_id}"
    saved = client.post(url + "/modify", data={"stop_loss": "1.08200", "take_profit": ""}, headers=headers(client, desk))
    assert saved.status_code == 200
    assert 'data-stop-loss="1.08200"' in saved.get_data(as_text=True)
    assert 'data-take-profit=""' in saved.get_data(as_text=True)
    wrong = client.post(url + "/modify", data={"stop_loss": "1.09000"}, headers=headers(client, desk))
    assert 400 <= wrong.status_code < 500 and wrong.headers["HX-Reswap"] == "none"
    assert "Stop-loss" in re.search(rf'id="position-{position_id}-error"[^>]*>([^<]*)<',
                                    wrong.get_data(as_text=True)).group(1)
    with app.app_context():
        quote("OTC_EUR_USD", "1.08710", "1.08720", tick_id=9)
    part = client.post(url + "/close", data={"lots": "0.10"}, headers=headers(client, desk))
    assert part.status_code == 200
    html = part.get_data(as_text=True)
    assert 'data-lots="0.2"' in html and "+20.00" in html  # (1.08710 - 1.08510) x 0.1 x 100,000
    assert re.search(r'data-label="Now"[^>]*>1\.08710</td>', html)  # the rest valued at the bid
    assert re.search(r'data-testid="position-pnl">\+40\.00</td>', html)
    full = client.post(url + "/close", headers=headers(client, desk))
    assert full.status_code == 200
    html = full.get_data(as_text=True)
    assert 'data-testid="no-positions"' in html and html.count('data-testid="fill-row"') == 3
    assert "tick #9" in html and "bid 1.08710 / ask 1.08720" in html and "manual close" in html
    with app.app_context():
        acc = account(desk["pid"])
        assert (acc.cash, acc.used_margin) == (D("10060.00"), D("0.00"))  # +20 + 40


def test_someone_elses_ids_are_404_and_change_nothing(app, client, desk):
    with app.app_context():
        other_pid, other_uid = join(desk["cid"])
    other = app.test_client()
    AuthActions(other).login(_email_in(app, other_uid), PASSWORD)
    other_desk = {**desk, "pid": other_pid}
    assert place(other, other_desk).status_code == 200
    assert place(other, other_desk, order_type="LIMIT", price="1.08000", client_key="f" * 32,
                 stop_loss="", take_profit="").status_code == 200
    with app.app_context():
        position_id = db.session.scalar(select(CfdPosition.id).where(CfdPosition.user_id == other_uid))
        order_id = db.session.scalar(select(CfdOrder.id).where(CfdOrder.user_id == other_uid,
                                                               CfdOrder.status == "PENDING"))
    base = desk["url"]
    for path, data in ((f"{base}/positions/{position_id}/close", {}),
                       (f"{base}/positions/{position_id}/modify", {"stop_loss": "1.08400"}),
                       (f"{base}/orders/{order_id}/cancel", {}),
                       (f"{base}/orders/{order_id}/modify", {"price": "1.07000"}),
                       (f"{base}/positions/999999/close", {}),
                       (f"{base}/positions/99999999999999999999/close", {})):
        response = client.post(path, data=data, headers=headers(client, desk))
        assert response.status_code == 404, path
    with app.app_context():
        position, order = db.session.get(CfdPosition, position_id), db.session.get(CfdOrder, order_id)
        assert (position.status, position.stop_loss, order.status, order.price) == (
            "OPEN", D("1.08000"), "PENDING", D("1.08000"))
        assert db.session.scalar(select(func.count()).select_from(CfdFill)) == 1


def test_a_position_of_another_competition_is_not_found_through_this_one(app, client, desk):
    from edutradex.competitions import lifecycle

    with app.app_context():
        second = open_competition(min_participants=1)
        service.join_competition(second.id, desk["uid"])
        assert lifecycle.start_competition(second.id, second.start_at) == "LIVE"
        second_desk = {**desk, "url": f"/competitions/{second.slug}/trade"}
    assert place(client, second_desk).status_code == 200
    with app.app_context():
        position_id = db.session.scalar(select(CfdPosition.id).where(CfdPosition.competition_id == second.id))
    response = client.post(f"{desk['url']}/positions/{position_id}/close", headers=headers(client, desk))
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(CfdPosition, position_id).status == "OPEN"


def _email_in(app, user_id: int) -> str:
    with app.app_context():
        return _email(user_id)


# ---- reading -----------------------------------------------------------------------------------

def test_the_preview_gives_margin_and_pnl_at_sl_and_tp_before_sending(client, desk):
    figures = client.get(desk["url"] + "/preview", query_string={
        "symbol": "OTC_EUR_USD", "side": "BUY", "order_type": "MARKET", "lots": "1", "leverage": "30",
        "stop_loss": "1.08010", "take_profit": "1.09510"}).get_json()
    # At the ask 1.08510: margin 100,000 x 1.0851 / 30; SL -50 pips, TP +100 pips on one lot.
    assert figures == {"price": "1.08510", "required_margin": "3617.00", "free_margin": "10000.00",
                       "pnl_at_stop_loss": "-500.00", "pnl_at_take_profit": "1000.00", "message": "", "fits": True}
    short = client.get(desk["url"] + "/preview", query_string={
        "symbol": "OTC_EUR_USD", "side": "SELL", "order_type": "LIMIT", "price": "1.09000", "lots": "50",
        "leverage": "10"}).get_json()
    assert short["required_margin"] == "545000.00" and short["fits"] is False
    typing = client.get(desk["url"] + "/preview", query_string={"symbol": "OTC_EUR_USD", "lots": "abc"}).get_json()
    assert typing["required_margin"] is None and typing["price"] == "1.08510"


def test_the_book_fragment_refreshes_tabs_and_account(app, client, desk):
    assert place(client, desk).status_code == 200
    response = client.get(desk["url"] + "/book", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.count('data-testid="position-row"') == 1
    assert 'hx-swap-oob="true"' in html and "cfd-client-key" not in html  # the ticket's key stays


def test_the_account_bar_warns_at_the_margin_call_and_the_stop_out_level(app, client, desk):
    # 2.7 lots at 1.08510, 30:1: 9,765.90 USD of margin on a 10,000 account.
    assert place(client, desk, lots="2.70", stop_loss="", take_profit="").status_code == 200

    def bar(bid: str) -> str:
        with app.app_context():
            quote("OTC_EUR_USD", bid, str(D(bid) + D("0.0001")))
        html = client.get(desk["url"] + "/book", headers={"HX-Request": "true"}).get_data(as_text=True)
        return re.search(r'<section class="card cfd-account".*?</section>', html, re.S).group(0)

    calm = bar("1.08500")  # equity 9,973.00: 102.12 %
    assert 'data-level="ok"' in calm and "102.12 %" in calm and "Margin call" not in calm
    call = bar("1.08400")  # equity 9,703.00: 99.36 %
    assert 'data-level="warning"' in call and "99.36 %" in call and "Margin call: the margin level is under 100.00 %" in call
    out = bar("1.06600")  # equity 4,843.00: 49.59 %
    assert 'data-level="danger"' in out and "49.59 %" in out and "Below the 50.00 % stop-out level" in out


def test_a_competition_that_ends_stops_the_actions(app, client, desk):
    data = ticket(client, desk)
    with app.app_context():
        db.session.get(Competition, desk["cid"]).status = "ENDED"
        db.session.commit()
    response = client.post(desk["url"] + "/orders", data=data, headers={
        "HX-Request": "true", "X-CSRFToken": csrf_token(client, "/competitions")})
    assert response.status_code == 409 and "trading is closed" in response.get_data(as_text=True)
    assert count(app, CfdOrder) == 0
    # A page left open moves on to the results at its next refresh.
    refresh = client.get(desk["url"] + "/book", headers={"HX-Request": "true"})
    assert refresh.status_code == 204 and refresh.headers["HX-Redirect"] == f"/competitions/{desk['cid']}"
