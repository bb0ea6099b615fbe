"""The webhook app: Twilio inbound and status webhooks, registration, email unsubscribe, health.

``create_app(deps)`` builds a Flask app around already-built dependencies;
nothing is built at import time (``drip serve`` and :mod:`drip.web.wsgi`
call it). Every handler reads the clock once and passes ``now`` down.

Routes and answers:

| route | answers |
|---|---|
| ``POST /twilio/sms`` | 200 empty TwiML; 403 bad/missing signature or no ``TWILIO_AUTH_TOKEN``; 422 bad field |
| ``POST /twilio/status`` | 200 empty TwiML (also for an unknown MessageSid); 403; 422 |
| ``POST /contacts`` | 201 ``{"contact_id", "created", "sms_consent", ...}``; 401 token; 400 body; 422 field |
| ``GET /unsubscribe/<token>`` | 200 HTML page with a button, changes nothing; 404 tampered token |
| ``POST /unsubscribe/<token>`` | 200 HTML "unsubscribed" (button or RFC 8058 one-click); 404 |
| ``GET /healthz`` | 200 ``{"ok": true}``; 503 ``{"ok": false, "error": ...}`` |
| ``GET /metrics`` | 200 Prometheus text format (:mod:`drip.web.metrics`) |

Every 4xx/5xx answer of the JSON routes is ``{"error": "...", "field": "..."}``
(``field`` where one field is at fault). A database that cannot be reached is
503 with a generic reason, never a stack trace or connection details; except
for the two Twilio webhooks (:mod:`drip.web.twilio_webhooks`): Twilio does not
retry them, so a verified inbound text or callback the database cannot take
is kept in the webhook spool and answered 200, then applied in order once the
database is back.

Registration: ``Authorization: Bearer <DRIP_API_TOKEN>``; without a token
configured on the server every request gets 401 (the body says so). The
``sms_consent`` checkbox is consent only when it is true/"on"/"1"/"yes";
absent, unchecked or false is no consent (docs/compliance.md). Consent needs
``consent_text``, the words shown next to the box.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any, Final

import structlog
from flask import Flask, Response, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from drip.domain.enums import ConsentSource
from drip.errors import NotFoundError, StoreError, ValidationError
from drip.services import unsubscribe
from drip.services.consent import ConsentEvidence
from drip.services.contacts import add_contact
from drip.services.deps import Deps
from drip.services.importing import (
    MAX_CONSENT_TEXT,
    FieldError,
    parse_consent_flag,
    parse_contact,
    parse_source,
)
from drip.store import repository as repo
from drip.store.models import Contact
from drip.web.responses import ApiError, check_bearer, html_page, json_error
from drip.web.twilio_webhooks import register_twilio_routes

log = structlog.get_logger("drip.web")

#: Largest request body accepted (Twilio webhooks are a few kB).
MAX_BODY_BYTES: Final = 256 * 1024
REGISTRATION_FIELDS: Final = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "state",
    "timezone",
    "agent_phone",
    "sms_consent",
    "consent_text",
    "source",
    "campaign",
)


def create_app(deps: Deps) -> Flask:
    """The Flask app of drip's HTTP interface, around ``deps`` (see the module docstring)."""
    app = Flask("drip.web")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if deps.settings.trusted_proxies:
        # Only the client address: Twilio's signatures are checked against DRIP_PUBLIC_URL.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=deps.settings.trusted_proxies)  # type: ignore[method-assign]
    app.extensions["drip.deps"] = deps
    _error_handlers(app)
    register_twilio_routes(app, deps)
    _contact_routes(app, deps)
    _health_routes(app, deps)
    from drip.web.metrics import register_metrics  # GET /metrics (Prometheus)

    register_metrics(app, deps)
    from drip.web.events import events_blueprint  # lead events from a CRM

    app.register_blueprint(events_blueprint(deps))
    # --- console (issue 14): the read-only console under /console/, on when DRIP_CONSOLE_TOKEN is set
    from drip.web.console import register_console

    register_console(app, deps)
    # --- end console ---
    return app


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return json_error(exc.status, exc.error, exc.field)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return json_error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(StoreError)
    def _store_error(exc: StoreError) -> Response:
        log.error("database_error", error=str(exc), path=request.path)
        return json_error(503, "the database is not available; try again")

    @app.errorhandler(SQLAlchemyError)
    def _sql_error(exc: SQLAlchemyError) -> Response:
        log.error("database_error", error=type(exc).__name__, path=request.path)
        return json_error(503, "the database could not complete the request; try again")


def _contact_routes(app: Flask, deps: Deps) -> None:
    @app.post("/contacts")
    def register_contact() -> tuple[Response, int]:
        """Registration with consent evidence; sends the opt-in confirmation."""
        check_bearer(deps.settings.api_token)
        fields = _registration_fields()
        now = deps.clock.now()
        return _register(deps, fields, now)

    @app.get("/unsubscribe/<token>")
    def email_unsubscribepage(token: str) -> tuple[str, int, dict[str, str]]:
        """The link in an email: a confirmation page with a button; changes nothing.

        Mail scanners and link previewers follow every link of a message, so
        a GET alone must never opt anyone out.
        """
        page = {"Content-Type": "text/html; charset=utf-8"}
        if _unsubscribe_contact(deps, token) is None:
            log.info("unsubscribe_refused", reason="bad token", method="GET")
            return html_page("Link not valid", "This unsubscribe link is not valid."), 404, page
        return unsubscribe_form(deps.account.company, token), 200, page

    @app.post("/unsubscribe/<token>")
    def email_unsubscribe(token: str) -> tuple[str, int, dict[str, str]]:
        """The opt-out: the page's button, or an RFC 8058 one-click POST; sets ``email_opted_out``."""
        now = deps.clock.now()
        contact_id = _unsubscribe_contact(deps, token)
        page = {"Content-Type": "text/html; charset=utf-8"}
        if contact_id is None:
            log.info("unsubscribe_refused", reason="bad token", method="POST")
            return html_page("Link not valid", "This unsubscribe link is not valid."), 404, page
        with deps.sessions.begin() as session:
            contact = session.get(Contact, contact_id)
            if contact is None:
                return html_page("Link not valid", "This unsubscribe link is not valid."), 404, page
            already = contact.email_opted_out
            if not already:
                contact.email_opted_out = True
                contact.email_opted_out_at = now
                contact.updated_at = now
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        log.info("email_unsubscribed", contact_id=contact_id, already=already, one_click=one_click)
        company = html.escape(deps.account.company)
        return (
            html_page(
                "Unsubscribed",
                f"You will receive no more emails from {company}. "
                "Text messages are not affected by this link; reply STOP to a text to stop those.",
            ),
            200,
            page,
        )


def _unsubscribe_contact(deps: Deps, token: str) -> int | None:
    """The contact a genuine token names and that exists, else None."""
    contact_id = unsubscribe.contact_of(deps.settings.secret_key, token)
    if contact_id is None:
        return None
    with deps.sessions() as session:
        return contact_id if session.get(Contact, contact_id) is not None else None


def unsubscribe_form(company: str, token: str) -> str:
    """The confirmation page: what the button does, and the button (a POST to the same URL)."""
    name = html.escape(company)
    action = html.escape(f"/unsubscribe/{token}")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Unsubscribe</title></head><body><h1>Unsubscribe from {name} emails?</h1>"
        f"<form method='post' action='{action}'>"
        "<button type='submit'>Unsubscribe</button></form>"
        "<p>Nothing changes until you press the button. Text messages are not affected.</p>"
        "</body></html>"
    )


def _health_routes(app: Flask, deps: Deps) -> None:
    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """200 when the database answers ``SELECT 1``, else 503 with the reason."""
        try:
            with deps.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (StoreError, SQLAlchemyError) as exc:
            # The details (driver, host, user, database) go to the log, never to the caller.
            log.error(
                "health_database_down", error=str(exc).splitlines()[0][:300] if str(exc) else ""
            )
            return jsonify({"ok": False, "error": "the database is not available"}), 503
        return jsonify({"ok": True}), 200


# --------------------------------------------------------------------------- helpers


def _registration_fields() -> dict[str, str | None]:
    """The registration fields from a JSON object or a form, as text (None when absent)."""
    if request.is_json:
        try:
            payload = request.get_json(silent=True)
        except RecursionError as exc:  # 50,000 nested arrays: not a registration
            raise ApiError(400, "the body is nested too deeply", "body") from exc
        if not isinstance(payload, dict):
            raise ApiError(400, "the body is not a JSON object", "body")
        fields: dict[str, str | None] = {}
        for name in REGISTRATION_FIELDS:
            value = payload.get(name)
            if value is None:
                fields[name] = None
            elif isinstance(value, bool):
                fields[name] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                fields[name] = str(value)
            else:
                raise ApiError(422, f"{name} must be text", name)
        return fields
    return {name: request.form.get(name) for name in REGISTRATION_FIELDS}


def _register(deps: Deps, fields: dict[str, str | None], now: datetime) -> tuple[Response, int]:
    try:
        source = parse_source(fields.get("source"), ConsentSource.REGISTRATION, "source")
        data = parse_contact(fields, source)
        consent = parse_consent_flag(fields.get("sms_consent"))
        evidence = None
        if consent:
            consent_text = (fields.get("consent_text") or "").strip()
            if not consent_text:
                raise FieldError(
                    "consent_text", "is required with sms_consent: the words shown by the box"
                )
            if len(consent_text) > MAX_CONSENT_TEXT or "\x00" in consent_text:
                raise FieldError("consent_text", "is too long or has control characters")
            if data.phone is None:
                raise FieldError("phone", "is required with sms_consent: there is no number")
            evidence = ConsentEvidence(now, source, consent_text)
        campaign = (fields.get("campaign") or "").strip() or None
        if campaign is not None:
            _check_campaign(deps, campaign)
        result = add_contact(deps, data, evidence, now)
    except FieldError as exc:
        raise ApiError(422, str(exc), exc.field) from exc
    except ValidationError as exc:
        field = str(exc).split(":", 1)[0] if ":" in str(exc) else "body"
        raise ApiError(422, str(exc), field if field in REGISTRATION_FIELDS else "body") from exc
    except NotFoundError as exc:
        raise ApiError(422, f"agent_phone: {exc}", "agent_phone") from exc
    except IntegrityError as exc:
        raise ApiError(409, "this contact was changed at the same moment; retry", "phone") from exc
    with deps.sessions() as session:
        contact = session.get(Contact, result.contact_id)
        textable = (
            contact is not None
            and contact.sms_consent_at is not None
            and contact.sms_opted_out_at is None
        )
    body: dict[str, Any] = {
        "contact_id": result.contact_id,
        "created": result.created,
        "sms_consent": textable,
        "opt_in_confirmation": result.confirmation.outcome if result.confirmation else None,
    }
    if campaign is not None:
        from drip.services.enrollment import enroll

        enrolled = enroll(deps, result.contact_id, campaign, now)
        body["enrollment"] = {
            "campaign": campaign,
            "enrollment_id": enrolled.enrollment_id,
            "created": enrolled.created,
            "sends": enrolled.sends,
        }
    if result.notes:
        body["notes"] = list(result.notes)
    return jsonify(body), 201


def _check_campaign(deps: Deps, name: str) -> None:
    """An optional ``campaign`` must name a campaign that takes enrollments (else 422)."""
    from drip.domain.enums import CampaignStatus

    with deps.sessions() as session:
        row = repo.campaign_by_name(session, name)
        if row is None:
            raise FieldError("campaign", f"no campaign named {name!r}")
        if row.status is CampaignStatus.ARCHIVED:
            raise FieldError("campaign", f"{name!r} is archived: it takes no new enrollments")
