"""Requests Twilio makes to the application: status callbacks and inbound texts, signed.

Each is a form POST signed with ``X-Twilio-Signature`` from the auth token, exactly
as :class:`twilio.request_validator.RequestValidator` checks it. Status callbacks
follow a message through Twilio's lifecycle (``callback_sequence="twilio"``:
``queued`` for a Messaging Service, ``sending``, ``sent``, then the final status;
``"short"``: ``sent`` and the final one), and, with ``reorder_seed``, arrive
repeated and out of order, as Twilio warns they may.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from typing import Any

import requests
from twilio.request_validator import RequestValidator

from drip.testing.fake_twilio.codes import (
    API_VERSION,
    TWILIO_HELP_WORDS,
    TWILIO_OPT_IN_WORDS,
    TWILIO_OPT_OUT_WORDS,
    keyword,
)
from drip.testing.fake_twilio.ledger import Delivery, Ledger, StatusCallbackResult

__all__ = [
    "CALLBACK_SEQUENCES",
    "CallbackSender",
    "callback_statuses",
    "inbound_params",
    "opt_out_type",
    "post_signed",
    "signed_post",
]

CALLBACK_SEQUENCES = ("twilio", "short")


def callback_statuses(
    resource: dict[str, Any],
    final: tuple[str, int | None],
    sequence: str,
    reorder_seed: int | None,
) -> list[tuple[str, int | None]]:
    """The status callbacks of one message, in the order (and number) they are sent."""
    if sequence == "short":
        statuses: list[tuple[str, int | None]] = [("sent", None), final]
    else:
        statuses = [("sending", None), ("sent", None), final]
        if resource.get("status") == "accepted":
            statuses.insert(0, ("queued", None))
    if final[0] == "failed":  # never sent: Twilio reports the failure alone
        statuses = [s for s in statuses if s[0] in ("queued",)] + [final]
    if reorder_seed is not None:
        rng = random.Random(f"{reorder_seed}:{resource['sid']}")
        statuses = statuses + [rng.choice(statuses) for _ in range(2)]
        rng.shuffle(statuses)
    return statuses


def inbound_params(
    account_sid: str, from_: str, to: str, body: str, messaging_service_sid: str | None
) -> dict[str, str]:
    """The parameters Twilio posts to the messaging webhook for an inbound SMS."""
    sid = "SM" + uuid.uuid4().hex
    params = {
        "ToCountry": "US",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "US" if from_.startswith("+1") else "",
        "To": to,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": API_VERSION,
    }
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    return params


def opt_out_type(ledger: Ledger, sender: str, from_: str, body: str) -> str | None:
    """Twilio's STOP filter on an inbound text: an opt-out keyword blocks ``sender`` from
    texting ``from_`` (21610), an opt-in keyword lifts it; the keyword's type, if any."""
    word = keyword(body)
    with ledger.lock:
        if word in TWILIO_OPT_OUT_WORDS:
            ledger.blocks.add((sender, from_))
            return "STOP"
        if word in TWILIO_OPT_IN_WORDS:
            ledger.blocks.discard((sender, from_))
            return "START"
    return "HELP" if word in TWILIO_HELP_WORDS else None


def signed_post(
    session: requests.Session | None,
    validator: RequestValidator,
    url: str,
    params: dict[str, str],
    timeout: float,
) -> tuple[str, requests.Response]:
    """POST ``params`` to ``url`` signed as Twilio signs: the signature and the answer."""
    signature = str(validator.compute_signature(url, params))
    post = session.post if session is not None else requests.post
    headers = {"X-Twilio-Signature": signature}
    return signature, post(url, data=params, headers=headers, timeout=timeout)


def post_signed(
    session: requests.Session | None,
    validator: RequestValidator,
    url: str,
    params: dict[str, str],
    timeout: float,
) -> StatusCallbackResult:
    """:func:`signed_post`, and how the receiver answered (or why it could not be reached)."""
    try:
        signature, response = signed_post(session, validator, url, params, timeout)
    except requests.RequestException as exc:
        signature = str(validator.compute_signature(url, params))
        error = f"{type(exc).__name__}: {exc}"
        return StatusCallbackResult(url, tuple(params.items()), signature, None, error)
    return StatusCallbackResult(url, tuple(params.items()), signature, response.status_code, None)


class CallbackSender:
    """A thread POSTing each accepted message's status callbacks once they are due."""

    def __init__(
        self,
        ledger: Ledger,
        account_sid: str,
        auth_token: str,
        *,
        delay: float,
        sequence: str,
        reorder_seed: int | None,
    ) -> None:
        if sequence not in CALLBACK_SEQUENCES:
            raise ValueError(f"callback_sequence must be 'twilio' or 'short', not {sequence!r}")
        self.sequence = sequence
        self.reorder_seed = reorder_seed
        self.delay = delay
        self._ledger = ledger
        self._account_sid = account_sid
        self._validator = RequestValidator(auth_token)
        self._queue: queue.Queue[tuple[float, str, dict[str, str]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-twilio-callbacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def enqueue(self, url: str, resource: dict[str, Any], delivery: Delivery | None) -> None:
        """Schedule the callbacks of the message ``resource`` to ``url``."""
        common = {
            "AccountSid": self._account_sid,
            "ApiVersion": API_VERSION,
            "From": str(resource["from"] or ""),
            "To": str(resource["to"]),
            "MessageSid": str(resource["sid"]),
            "SmsSid": str(resource["sid"]),
        }
        final = delivery or Delivery("delivered", None)
        due = time.monotonic() + self.delay
        statuses = callback_statuses(
            resource, (final.status, final.error_code), self.sequence, self.reorder_seed
        )
        for status, error_code in statuses:
            params = {**common, "MessageStatus": status, "SmsStatus": status}
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            self._queue.put((due, url, params))

    def _run(self) -> None:
        with requests.Session() as session:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                due, url, params = item
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                result = post_signed(session, self._validator, url, params, timeout=5)
                with self._ledger.changed:
                    self._ledger.callbacks.append(result)
                    self._ledger.changed.notify_all()
