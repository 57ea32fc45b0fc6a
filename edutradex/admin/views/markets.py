from flask import render_template, request, url_for

from ...market import service as market_service
from ...market.models import VolatilityMode
from ...market.quotes import latest_quote
from .. import bp
from ..services import markets as service
from ._common import actor, done


@bp.get("/markets")
def markets():
    return render_template("admin/markets.html", rows=service.markets_with_quotes())


@bp.get("/markets/<symbol>")
def market_detail(symbol: str):
    market = market_service.get_market(symbol)
    return render_template("admin/market_detail.html", market=market, quote=latest_quote(market.symbol),
                           fields=service.editable_fields(market), modes=[m.value for m in VolatilityMode],
                           labels=service.LABELS, hints=service.HINTS, value=service.form_value,
                           optional=service.OPTIONAL)


@bp.post("/markets/<symbol>")
def update_market(symbol: str):
    market = market_service.get_market(symbol)
    changes = {field: request.form[field] for field in service.editable_fields(market) if field in request.form}
    changed = service.change_market(actor(), market.symbol, changes)
    url = url_for("admin.market_detail", symbol=market.symbol)
    if not changed:
        return done(f"{market.name}: nothing changed.", url, "info")
    return done(f"{market.name}: {service.changed_labels(changed)} updated; live from the next tick.", url)
