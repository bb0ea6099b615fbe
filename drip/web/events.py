"""``POST /events``: lead events from a CRM, one JSON object or a list of up to 500.

Bearer ``DRIP_API_TOKEN`` as ``POST /contacts``. Answers 202 with every
event's outcome when at least one was accepted or already received; 422 when
every event was refused (each outcome names its field and index: nothing of
a refused event is applied, the others of the batch are); 409 when an id was
sent again with another body and nothing else was accepted; 413 for more than
500 events. See docs/operations.md.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from drip.services.deps import Deps
from drip.services.events import ACCEPTED, CONFLICT, DUPLICATE, MAX_BATCH, ingest
from drip.web.responses import ApiError, check_bearer


def events_blueprint(deps: Deps) -> Blueprint:
    bp = Blueprint("drip_events", __name__)

    @bp.post("/events")
    def post_events() -> tuple[Response, int]:
        check_bearer(deps.settings.api_token)
        try:
            payload: Any = request.get_json(silent=True)
        except RecursionError as exc:
            raise ApiError(400, "the body is nested too deeply", "body") from exc
        if payload is None:
            raise ApiError(400, "the body is not JSON: one event object or a list", "body")
        events = payload if isinstance(payload, list) else [payload]
        if len(events) > MAX_BATCH:
            return jsonify(
                {"error": f"at most {MAX_BATCH} events per request", "field": "body"}
            ), 422
        result = ingest(deps, events, deps.clock.now())
        counts = result.counts()
        body = {
            "accepted": [o.id for o in result.of(ACCEPTED)],
            "counts": dict(counts),
            "events": [o.as_dict() for o in result.outcomes],
        }
        if counts[ACCEPTED] or counts[DUPLICATE]:
            return jsonify(body), 202
        if counts[CONFLICT]:
            return jsonify(body), 409
        return jsonify(body), 422

    return bp
