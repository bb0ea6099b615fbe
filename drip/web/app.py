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

Every 4xx/5xx answer of the JSON routes is ``{"error": "...", "field": "..."}``
(``field`` where one field is at fault). A database that cannot be reached is
503 with a generic reason, never a stack trace or connection details; except
for the two Twilio webhooks: Twilio does not retry them, so a verified inbound
text or callback the database cannot take is appended to a durable local
spool (:mod:`drip.web.spool`) and answered 200, then applied in order once
the database is back (while the spool is not empty, new webhooks queue
behind it).

Twilio signatures: ``X-Twilio-Signature`` is checked with twilio's
``RequestValidator`` and ``TWILIO_AUTH_TOKEN`` against ``DRIP_PUBLIC_URL`` +
the request path (+ query string) and the form parameters: the URL Twilio
was told to call, not the Host header a proxy may rewrite. Without
``TWILIO_AUTH_TOKEN`` (embedded mode, no Twilio) nothing can be verified, so
both Twilio webhooks answer 403. A refused request changes nothing: it is
refused before any service is called.

Registration: ``Authorization: Bearer <DRIP_API_TOKEN>``; without a token
configured on the server every request gets 401 (the body says so). The
``sms_consent`` checkbox is consent only when it is true/"on"/"1"/"yes";
absent, unchecked or false is no consent (SPEC C1). Consent needs
``consent_text``, the words shown next to the box.
"""

from __future__ import annotations

import hmac
import html
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import structlog
from flask import Flask, Response, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException

from drip.domain.enums import ConsentSource
from drip.domain.zones import normalize_phone
from drip.errors import NotFoundError, StoreError, ValidationError
from drip.services import callbacks, unsubscribe
from drip.services.contacts import ConsentEvidence, add_contact
from drip.services.deps import Deps
from drip.services.importing import (
    MAX_CONSENT_TEXT,
    FieldError,
    parse_consent_flag,
    parse_contact,
    parse_source,
)
from drip.services.inbound import handle_inbound, sender_address
from drip.services.status import StatusResult, handle_status
from drip.store import repository as repo
from drip.store.models import Contact
from drip.web.spool import Spool

log = structlog.get_logger("drip.web")

EMPTY_TWIML: Final = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
#: Largest request body accepted (Twilio webhooks are a few kB).
MAX_BODY_BYTES: Final = 256 * 1024
#: Twilio ids are 34 characters; the column holds 64.
MAX_SID: Final = 64
MAX_SMS_BODY: Final = 10_000
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


class ApiError(Exception):
    """An answer other than success: HTTP ``status`` with a JSON reason naming ``field``."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        self.status = status
        self.error = error
        self.field = field
        super().__init__(error)


def create_app(deps: Deps) -> Flask:
    """The Flask app of drip's HTTP interface, around ``deps`` (see the module docstring)."""
    app = Flask("drip.web")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["drip.deps"] = deps
    _error_handlers(app)
    _twilio_routes(app, deps)
    _contact_routes(app, deps)
    _health_routes(app, deps)
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
        return _json_error(exc.status, exc.error, exc.field)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return _json_error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(StoreError)
    def _store_error(exc: StoreError) -> Response:
        log.error("database_error", error=str(exc), path=request.path)
        return _json_error(503, "the database is not available; try again")

    @app.errorhandler(SQLAlchemyError)
    def _sql_error(exc: SQLAlchemyError) -> Response:
        log.error("database_error", error=type(exc).__name__, path=request.path)
        return _json_error(503, "the database could not complete the request; try again")


def _twilio_routes(app: Flask, deps: Deps) -> None:
    late = LateCallbacks(deps)
    app.extensions["drip.late_callbacks"] = late
    spool = Spool(deps.settings.home / "web-spool.jsonl")
    drainer = SpoolDrainer(
        spool, lambda kind, payload, at: _apply_webhook(deps, late, kind, payload, at)
    )
    app.extensions["drip.spool"] = spool
    app.extensions["drip.spool_drainer"] = drainer

    def accept(kind: str, payload: dict[str, Any], now: datetime) -> Response:
        """Apply a verified, parsed webhook, or spool it when the database cannot take it."""
        if spool.pending():  # earlier ones wait in the spool: keep the order
            spool.append(kind, payload, now)
            drainer.drain_now()
            return _twiml()
        try:
            _apply_webhook(deps, late, kind, payload, now)
        except (StoreError, OperationalError, InterfaceError) as exc:
            log.error("database_error", error=type(exc).__name__, path=request.path, spooled=True)
            spool.append(kind, payload, now)
            drainer.start()
        return _twiml()

    @app.post("/twilio/sms")
    def twilio_sms() -> Response:
        """Inbound text: keywords, revocation, two-way (SPEC §3)."""
        form = _verified_twilio_form(deps)
        now = deps.clock.now()
        from_phone = _inbound_address(form, "From")
        to_phone = _inbound_address(form, "To")
        sid = _sid(form, "MessageSid") or _sid(form, "SmsSid")
        if sid is None:
            raise ApiError(422, "MessageSid is required", "MessageSid")
        body = form.get("Body", "")
        if len(body) > MAX_SMS_BODY:
            raise ApiError(422, f"Body is longer than {MAX_SMS_BODY} characters", "Body")
        opt_out_type = form.get("OptOutType") or None
        if opt_out_type is not None and len(opt_out_type) > 32:
            raise ApiError(422, "OptOutType is not a Twilio opt-out type", "OptOutType")
        payload = {
            "from_phone": from_phone,
            "to_phone": to_phone,
            "body": body,
            "message_sid": sid,
            "opt_out_type": opt_out_type,
        }
        return accept("sms", payload, now)

    @app.post("/twilio/status")
    def twilio_status() -> Response:
        """Delivery status callback: never moves a status backwards."""
        form = _verified_twilio_form(deps)
        now = deps.clock.now()
        sid = _sid(form, "MessageSid") or _sid(form, "SmsSid")
        if sid is None:
            raise ApiError(422, "MessageSid is required", "MessageSid")
        status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip()
        if not status:
            raise ApiError(422, "MessageStatus is required", "MessageStatus")
        error_code = _error_code(form.get("ErrorCode"))
        error_message = (form.get("ErrorMessage") or "")[:500] or None
        payload = {
            "message_sid": sid,
            "status": status[:32],
            "error_code": error_code,
            "error_message": error_message,
        }
        return accept("status", payload, now)


def _apply_webhook(
    deps: Deps, late: LateCallbacks, kind: str, payload: Mapping[str, Any], now: datetime
) -> None:
    """Apply one webhook (live or from the spool); raises when the database cannot take it."""
    if kind == "sms":
        sid = str(payload["message_sid"])
        try:
            result = handle_inbound(
                deps,
                from_phone=str(payload["from_phone"]),
                to_phone=str(payload["to_phone"]),
                body=str(payload["body"]),
                message_sid=sid,
                opt_out_type=payload.get("opt_out_type"),
                now=now,
            )
        except IntegrityError:
            # Two deliveries of the same message at the same moment: the other one won.
            if _message_seen(deps, sid):
                log.info("webhook_sms", action="duplicate", message_sid=sid)
                return
            raise
        log.info("webhook_sms", action=result.action, message_sid=sid)
        return
    code = payload.get("error_code")
    callback = StatusCallback(
        str(payload["message_sid"]),
        str(payload["status"]),
        int(code) if code is not None else None,
        payload.get("error_message"),
    )
    status_result = callback.apply(deps, now)
    if status_result.action == "unknown_sid":
        # Kept in the database (applied when the message is recorded, whatever restarts),
        # and retried from memory meanwhile for the common case of a few milliseconds.
        callbacks.keep(
            deps,
            message_sid=callback.message_sid,
            status=callback.status,
            error_code=callback.error_code,
            error_message=callback.error_message,
            now=now,
        )
        late.add(callback)
    log.info("webhook_status", action=status_result.action, message_sid=callback.message_sid)


class SpoolDrainer:
    """Drains the spool in a daemon thread every :data:`EVERY` seconds until it is empty."""

    EVERY: Final = 2.0

    def __init__(self, spool: Spool, apply: Callable[[str, Mapping[str, Any], datetime], None]):
        self._spool = spool
        self._apply = apply
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop the background drain (shutdown, tests); the spool keeps what is left."""
        self._stop.set()

    def drain_now(self) -> int:
        applied = self._spool.drain(self._apply)
        if self._spool.pending():
            self.start()
        return applied

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="drip-spool", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while self._spool.pending():
            if self._stop.wait(self.EVERY):
                return
            try:
                self._spool.drain(self._apply)
            except Exception as exc:  # the thread must outlive any one failure
                log.warning("spool_drain_failed", error=type(exc).__name__)


def _contact_routes(app: Flask, deps: Deps) -> None:
    @app.post("/contacts")
    def register_contact() -> tuple[Response, int]:
        """Registration with consent evidence; sends the opt-in confirmation (C3)."""
        _check_bearer(deps)
        fields = _registration_fields()
        now = deps.clock.now()
        return _register(deps, fields, now)

    @app.get("/unsubscribe/<token>")
    def email_unsubscribe_page(token: str) -> tuple[str, int, dict[str, str]]:
        """The link in an email: a confirmation page with a button; changes nothing (SPEC §7).

        Mail scanners and link previewers follow every link of a message, so
        a GET alone must never opt anyone out.
        """
        page = {"Content-Type": "text/html; charset=utf-8"}
        if _unsubscribe_contact(deps, token) is None:
            log.info("unsubscribe_refused", reason="bad token", method="GET")
            return _page("Link not valid", "This unsubscribe link is not valid."), 404, page
        return unsubscribe_form(deps.account.company, token), 200, page

    @app.post("/unsubscribe/<token>")
    def email_unsubscribe(token: str) -> tuple[str, int, dict[str, str]]:
        """The opt-out: the page's button, or an RFC 8058 one-click POST; sets ``email_opted_out``."""
        now = deps.clock.now()
        contact_id = _unsubscribe_contact(deps, token)
        page = {"Content-Type": "text/html; charset=utf-8"}
        if contact_id is None:
            log.info("unsubscribe_refused", reason="bad token", method="POST")
            return _page("Link not valid", "This unsubscribe link is not valid."), 404, page
        with deps.sessions.begin() as session:
            contact = session.get(Contact, contact_id)
            if contact is None:
                return _page("Link not valid", "This unsubscribe link is not valid."), 404, page
            already = contact.email_opted_out
            if not already:
                contact.email_opted_out = True
                contact.email_opted_out_at = now
                contact.updated_at = now
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        log.info("email_unsubscribed", contact_id=contact_id, already=already, one_click=one_click)
        company = html.escape(deps.account.company)
        return (
            _page(
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


# --------------------------------------------------------------------------- late callbacks


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """One delivery status callback, as posted by Twilio."""

    message_sid: str
    status: str
    error_code: int | None
    error_message: str | None

    def apply(self, deps: Deps, now: datetime) -> StatusResult:
        return handle_status(
            deps,
            message_sid=self.message_sid,
            status=self.status,
            error_code=self.error_code,
            error_message=self.error_message,
            now=now,
        )


class LateCallbacks:
    """Status callbacks that arrived before their message row was committed, retried for a while.

    Twilio may call back within milliseconds of accepting a text, before the
    sender (this process, a worker, ``drip run``) has committed the message
    row that carries the ``MessageSid``; a worker records a batch of sends in
    one transaction after all of its provider calls. Such a callback finds
    no message. It is answered 200 at once (Twilio does not retry status
    callbacks) and kept here, in memory, to be applied again after
    :data:`RETRY_DELAYS` (about two minutes in all); a callback whose message
    never appears (a message sent by another system on the same account) is
    then dropped with a log line. At most :data:`MAX_PENDING` are kept. They
    are lost if the process stops: the status stays what the send recorded.

    A daemon thread applies them; it starts with the first late callback and
    ends when none is left, so an idle app runs no thread.
    """

    RETRY_DELAYS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
    MAX_PENDING: Final = 10_000

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._cond = threading.Condition()
        self._pending: list[tuple[float, int, StatusCallback]] = []
        self._thread: threading.Thread | None = None
        self._generation = 0  # bumped by clear(): retries in flight are not re-queued

    def add(self, callback: StatusCallback) -> bool:
        """Keep ``callback`` for retries; False (and logged) when the queue is full."""
        with self._cond:
            if len(self._pending) >= self.MAX_PENDING:
                log.warning("status_callback_dropped", message_sid=callback.message_sid, why="full")
                return False
            self._pending.append((time.monotonic() + self.RETRY_DELAYS[0], 0, callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="drip-late-callbacks", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def clear(self) -> int:
        """Forget every pending callback (shutdown, tests); returns how many were dropped."""
        with self._cond:
            dropped = len(self._pending)
            self._pending.clear()
            self._generation += 1
            self._cond.notify_all()
        return dropped

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._thread = None
                    return
                wake = min(due for due, _, _ in self._pending)
                delay = wake - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                now_mono = time.monotonic()
                due = [item for item in self._pending if item[0] <= now_mono]
                self._pending = [item for item in self._pending if item[0] > now_mono]
                generation = self._generation
            for _, attempt, callback in due:
                with self._cond:
                    if generation != self._generation:
                        break  # cleared meanwhile
                self._retry(attempt, callback, generation)

    def _retry(self, attempt: int, callback: StatusCallback, generation: int) -> None:
        try:
            result = callback.apply(self._deps, self._deps.clock.now())
        except Exception as exc:  # a retry must never kill the thread
            log.warning("status_callback_retry_failed", error=type(exc).__name__)
            result = None
        if result is not None and result.action != "unknown_sid":
            log.info("status_callback_late", message_sid=callback.message_sid, action=result.action)
            return
        attempt += 1
        if attempt >= len(self.RETRY_DELAYS):
            log.info("status_callback_dropped", message_sid=callback.message_sid, why="unknown")
            return
        with self._cond:
            if generation == self._generation:
                self._pending.append(
                    (time.monotonic() + self.RETRY_DELAYS[attempt], attempt, callback)
                )


# --------------------------------------------------------------------------- helpers


def _json_error(status: int, error: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error}
    if field is not None:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def _twiml() -> Response:
    return Response(EMPTY_TWIML, status=200, content_type="text/xml; charset=utf-8")


def _page(title: str, message: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{message}</p></body></html>"
    )


def signed_url(public_url: str) -> str:
    """The URL a Twilio signature covers: the public base, the path and any query string."""
    query = request.query_string.decode("latin-1")
    return public_url.rstrip("/") + request.path + (f"?{query}" if query else "")


def _verified_twilio_form(deps: Deps) -> dict[str, str]:
    """The form of a request whose Twilio signature verifies, without NUL characters; or 403."""
    token = deps.settings.twilio_auth_token
    if not token:
        log.warning("webhook_refused", reason="no TWILIO_AUTH_TOKEN configured", path=request.path)
        raise ApiError(
            403, "signature cannot be checked: the server has no TWILIO_AUTH_TOKEN", "signature"
        )
    signature = request.headers.get("X-Twilio-Signature", "")
    form = request.form
    if not signature or not RequestValidator(token).validate(
        signed_url(deps.settings.public_url), form, signature
    ):
        log.warning("webhook_refused", reason="bad signature", path=request.path)
        raise ApiError(403, "X-Twilio-Signature does not verify", "X-Twilio-Signature")
    # PostgreSQL text cannot hold NUL; Twilio never sends one.
    return {key: value.replace("\x00", "") for key, value in form.items()}


def _message_seen(deps: Deps, sid: str) -> bool:
    with deps.sessions() as session:
        return repo.message_by_sid(session, sid) is not None


def _required_phone(form: Mapping[str, str], name: str) -> str:
    raw = form.get(name, "").strip()
    if not raw:
        raise ApiError(422, f"{name} is required", name)
    try:
        return normalize_phone(raw)
    except ValidationError as exc:
        raise ApiError(422, f"{name}: {exc}", name) from exc


def _inbound_address(form: Mapping[str, str], name: str) -> str:
    """A signed inbound's sender or recipient in any form Twilio sends (SPEC §3); or 422."""
    try:
        return sender_address(form.get(name, ""))
    except ValidationError as exc:
        raise ApiError(422, f"{name}: {exc}", name) from exc


def _sid(form: Mapping[str, str], name: str) -> str | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    if len(raw) > MAX_SID or not raw.isascii() or not raw.isalnum():
        raise ApiError(422, f"{name} is not a Twilio id", name)
    return raw


def _error_code(raw: str | None) -> int | None:
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        raise ApiError(422, "ErrorCode is not a Twilio error code", "ErrorCode")
    return int(value)


def _check_bearer(deps: Deps) -> None:
    expected = deps.settings.api_token
    if not expected:
        raise ApiError(
            401, "registration is disabled: the server has no DRIP_API_TOKEN", "Authorization"
        )
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise ApiError(401, "a valid bearer token is required", "Authorization")


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
