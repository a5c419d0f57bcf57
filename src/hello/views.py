"""HTTP routes."""

from flask import Blueprint, current_app, jsonify

bp = Blueprint("hello", __name__)


@bp.get("/")
def index():
    cfg = current_app.config
    return jsonify(message=cfg["GREETING"], instance=cfg["INSTANCE"], version=cfg["APP_VERSION"])


@bp.get("/health")
def health():
    # Cheap and dependency-free: the ALB target group calls it every few seconds.
    return jsonify(status="ok")
