"""The two Twilio webhooks: inbound texts and delivery status callbacks.

Twilio signatures: ``X-Twilio-Signature`` is checked with twilio's
``RequestValidator`` and ``TWILIO_AUTH_TOKEN`` against ``DRIP_PUBLIC_URL`` +
the request path (+ query string) and the form parameters: the URL Twilio
was told to call, not the Host header a proxy may rewrite. Without
``TWILIO_AUTH_TOKEN`` (embedded mode, no Twilio) nothing can be verified, so
both webhooks answer 403. A refused request changes nothing: it is refused
before any service is called.

Twilio does not retry either webhook, so a verified inbound text or callback
the database cannot take is appended to the webhook spool
(:mod:`drip.store.webhook_spool`, a SQLite journal) and answered 200; the
spool's background thread (:class:`drip.web.spool.SpoolDrainer`) applies it
once the database is back. While the spool has entries, new webhooks are
appended behind them, so they are applied in the order they arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import structlog
from flask import Flask, Response, request
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from twilio.request_validator import RequestValidator

from drip.errors import StoreError, ValidationError
from drip.services import callbacks
from drip.services.deps import Deps
from drip.services.inbound import handle_inbound, sender_address
from drip.services.status import StatusResult, handle_status
from drip.store import repository as repo
from drip.web.responses import ApiError, twiml
from drip.web.spool import Spool, SpoolDrainer

__all__ = ["LateCallbacks", "StatusCallback", "register_twilio_routes", "signed_url"]

log = structlog.get_logger("drip.web")

#: Twilio ids are 34 characters; the column holds 64.
MAX_SID: Final = 64
MAX_SMS_BODY: Final = 10_000


def register_twilio_routes(app: Flask, deps: Deps) -> None:
    """``POST /twilio/sms`` and ``POST /twilio/status``, with the spool behind them."""
    late = LateCallbacks(deps)
    app.extensions["drip.late_callbacks"] = late
    spool = Spool(deps.settings.web_spool_path)
    drainer = SpoolDrainer(
        spool, lambda kind, payload, at: _apply_webhook(deps, late, kind, payload, at)
    )
    app.extensions["drip.spool"] = spool
    app.extensions["drip.spool_drainer"] = drainer
    if spool.has_pending():  # left by an outage before this process started
        drainer.wake()

    def accept(kind: str, payload: dict[str, Any], now: datetime) -> Response:
        """Apply a verified, parsed webhook, or spool it when the database cannot take it."""
        if spool.has_pending():  # earlier ones wait in the spool: keep the order
            spool.append(kind, payload, now)
            drainer.wake()
            return twiml()
        try:
            _apply_webhook(deps, late, kind, payload, now)
        except (StoreError, OperationalError, InterfaceError) as exc:
            log.error("database_error", error=type(exc).__name__, path=request.path, spooled=True)
            spool.append(kind, payload, now)
            drainer.wake()
        return twiml()

    @app.post("/twilio/sms")
    def twilio_sms() -> Response:
        """Inbound text: keywords, revocation, two-way (docs/compliance.md)."""
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


def _inbound_address(form: Mapping[str, str], name: str) -> str:
    """A signed inbound's sender or recipient in any form Twilio sends; or 422."""
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
