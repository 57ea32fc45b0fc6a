from flask import jsonify, render_template

from .. import bp
from ..services import stats as service


@bp.get("/")
def index():
    return render_template("admin/index.html", stats=service.platform_stats())


@bp.get("/stats/volume.json")
def volume_per_day():
    return jsonify(days=service.volume_per_day())
