"""A local HTTP server that speaks Twilio's Messages API: the test double for every SMS test.

It answers the real twilio SDK (see :class:`drip.transports.twilio_sms.TwilioSmsTransport`
with ``base_url``) the way api.twilio.com does, for the one call drip makes:

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with a form body
  (``From``, ``To``, ``Body``, ``StatusCallback``), HTTP basic auth with the
  account sid and auth token. ``201`` with a message resource (``sid`` ``SM`` +
  32 hex digits, ``status`` ``queued``), or Twilio's JSON error body
  ``{"code", "message", "more_info", "status"}``: ``401``/20003 on wrong
  credentials, ``400``/21602-21604 on a missing parameter, or the failure
  injected for the destination number with :meth:`FakeTwilioServer.fail`.
- ``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`` fetches a
  message it accepted (when requests are recorded).
- ``GET /2010-04-01/Accounts/{AccountSid}/Messages.json`` lists the messages
  it accepted like Twilio's Messages list: newest first, filtered by ``To``,
  ``From``, ``DateSent``, ``DateSent<`` and ``DateSent>`` (a date
  ``YYYY-MM-DD`` or an ISO 8601 instant, as the SDK sends), in pages of
  ``PageSize`` (default 50, at most 1,000) with ``next_page_uri`` (Twilio's
  Message resource and paging docs, https://www.twilio.com/docs/messaging/api/message-resource
  and https://www.twilio.com/docs/usage/twilios-response#pagination, checked
  2026-11-30).

Fault modes (:meth:`FakeTwilioServer.fault`, ``POST /_fake/fault``), for the
fault suite: ``refuse`` (an outage: every message refused with the given
status/code, nothing accepted), ``accept_then_error`` (the message is accepted
and kept in the ledger, then a gateway answers 500/502), ``accept_then_hang``
(accepted, then the answer is held ``hang`` seconds so the client times out);
each for ``seconds`` or ``times`` messages.

With ``send_status_callbacks=True`` a background thread POSTs ``sent`` then
``delivered`` (or the outcome set with :meth:`FakeTwilioServer.set_delivery`)
to each message's ``StatusCallback``, signed with ``X-Twilio-Signature`` from
the auth token exactly as :class:`twilio.request_validator.RequestValidator`
checks it.

Fidelity to Twilio (see :class:`_TwilioFidelity`): 21617 for a body over
1,600 characters, 21211 for a ``To`` that is not a phone number, the STOP
block (:meth:`deliver_inbound` posts a signed inbound to drip's webhook as
Twilio does; after an opt-out keyword the sender is blocked for that
recipient, 21610, until START), the Messaging Service path
(``MessagingServiceSid``: first status ``accepted``, ``from`` null,
``num_segments`` 0), status callbacks through Twilio's lifecycle
(``callback_sequence="twilio"``: ``queued`` (Messaging Service only),
``sending``, ``sent``, then the final status; ``"short"``: ``sent`` and the
final one), and ``reorder_seed`` to repeat and shuffle them.

Control endpoints, for a server run as its own process (``python -m
drip.testing.fake_twilio --port 8099``): ``GET /_fake/stats``, ``POST
/_fake/reset``, ``POST /_fake/fail`` (form ``to``, ``code``, ``status``,
``times``), ``GET /_fake/requests``.

Built for load: a thread per connection, HTTP/1.1 keep-alive, each answer
written in one ``send`` with Nagle off, no per-request logging.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hmac
import io
import json
import queue
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlencode

if TYPE_CHECKING:
    from drip.transports.twilio_sms import TwilioSmsTransport

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "Arrival",
    "FakeTwilioServer",
    "ReceivedRequest",
    "StatusCallbackResult",
    "main",
]

DEFAULT_ACCOUNT_SID = "AC" + "0" * 30 + "01"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"  # noqa: S105  # a test double's public default
API_VERSION = "2010-04-01"

# The messages Twilio gives for the codes drip cares about; others get a generic one.
_ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone"
    " number via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21635: "The 'To' number {to} is a landline and cannot receive SMS.",
    30001: "Queue overflow",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered (carrier violation)",
}


def num_segments(body: str) -> int:
    """How many SMS segments ``body`` takes, counted as Twilio's segment calculator does.

    GSM-7 (160/153) or else UCS-2 (70/67 units), filled by grapheme cluster:
    see :func:`drip.domain.message.sms_size`.
    """
    from drip.domain.message import sms_size

    return sms_size(body).segments


@dataclass(frozen=True)
class ReceivedRequest:
    """One Messages API request the server received, and what it answered."""

    method: str
    path: str
    account_sid: str
    params: tuple[tuple[str, str], ...]
    status: int
    sid: str | None  # the message sid when accepted
    error_code: int | None  # the Twilio error code when refused

    def param(self, name: str) -> str | None:
        """The first value of form field ``name``, or None."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def from_(self) -> str | None:
        return self.param("From")

    @property
    def to(self) -> str | None:
        return self.param("To")

    @property
    def body(self) -> str | None:
        return self.param("Body")

    @property
    def status_callback(self) -> str | None:
        return self.param("StatusCallback")


@dataclass(frozen=True)
class StatusCallbackResult:
    """One status callback the server POSTed: where, what, and how the receiver answered."""

    url: str
    params: tuple[tuple[str, str], ...]
    signature: str
    response_status: int | None  # None when the receiver could not be reached
    error: str | None


# --- fidelity to Twilio (issue 11) ----------------------------------------------

#: Twilio's default opt-out and opt-in keywords (the STOP filter of every long
#: code): https://help.twilio.com/hc/en-us/articles/223134027 and
#: https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out (checked 2026-11-30).
TWILIO_OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
TWILIO_OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
TWILIO_HELP_WORDS = frozenset({"HELP", "INFO"})
MAX_BODY = 1600


def _keyword(body: str) -> str:
    return " ".join(body.strip().strip(".!?").split()).upper()


@functools.lru_cache(maxsize=4096)
def _valid_to(to: str) -> bool:
    """What Twilio accepts as a ``To`` phone number (else 21211): a possible E.164 number.

    ``+1`` and ten ASCII digits is answered without parsing (parsing costs
    about 20 us a number): for country code 1 libphonenumber's only
    possible national length is 10 (7 is local only), and it strips no
    national prefix ``1`` that would leave 9 digits. tests/unit pins this
    shortcut against ``phonenumbers`` itself.
    """
    if len(to) == 12 and to.startswith("+1") and to[2:].isascii() and to[2:].isdigit():
        return True
    import phonenumbers

    try:
        number = phonenumbers.parse(to, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


class _TwilioFidelity:
    """Twilio behaviours beyond accept/refuse: limits, the STOP block, services, callbacks."""

    _lock: threading.Lock
    account_sid: str
    auth_token: str

    def _init_fidelity(self, callback_sequence: str, reorder_seed: int | None) -> None:
        if callback_sequence not in ("twilio", "short"):
            raise ValueError(
                f"callback_sequence must be 'twilio' or 'short', not {callback_sequence!r}"
            )
        self.callback_sequence = callback_sequence
        self.reorder_seed = reorder_seed
        self._blocks: set[tuple[str, str]] = set()

    def blocked(self, sender: str, to: str) -> bool:
        """Whether Twilio would refuse texts from ``sender`` to ``to`` (21610)."""
        with self._lock:
            return (sender, to) in self._blocks

    def _refusal(self, form: dict[str, str]) -> tuple[int, int] | None:
        """Twilio's refusal of a well-formed create request, or None."""
        to = form.get("To", "")
        if len(form.get("Body", "")) > MAX_BODY:
            return 400, 21617
        if not to.startswith("whatsapp:") and not _valid_to(to):
            return 400, 21211
        sender = form.get("MessagingServiceSid") or form.get("From", "")
        with self._lock:
            if (sender, to) in self._blocks:
                return 400, 21610
        return None

    def _shape_resource(self, resource: dict[str, Any], form: dict[str, str]) -> None:
        """A message sent through a Messaging Service starts ``accepted``, ``from`` null."""
        if form.get("MessagingServiceSid"):
            resource["status"] = "accepted"
            resource["from"] = None
            resource["num_segments"] = "0"

    def _callback_statuses(
        self, resource: dict[str, Any], final: tuple[str, int | None]
    ) -> list[tuple[str, int | None]]:
        """The status callbacks of one message, in the order (and number) they are sent."""
        if self.callback_sequence == "short":
            statuses: list[tuple[str, int | None]] = [("sent", None), final]
        else:
            statuses = [("sending", None), ("sent", None), final]
            if resource.get("status") == "accepted":
                statuses.insert(0, ("queued", None))
        if final[0] == "failed":  # never sent: Twilio reports the failure alone
            statuses = [s for s in statuses if s[0] in ("queued",)] + [final]
        if self.reorder_seed is not None:
            import random

            rng = random.Random(f"{self.reorder_seed}:{resource['sid']}")
            statuses = statuses + [rng.choice(statuses) for _ in range(2)]
            rng.shuffle(statuses)
        return statuses

    def deliver_inbound(
        self,
        webhook_url: str,
        from_: str,
        to: str,
        body: str,
        *,
        advanced_opt_out: bool = False,
        messaging_service_sid: str | None = None,
    ) -> int:
        """A text from ``from_`` to the Twilio number ``to``, as Twilio delivers it; the HTTP status.

        The webhook gets the parameters Twilio sends with an inbound SMS,
        signed with ``X-Twilio-Signature``. Twilio's STOP filter acts first:
        an opt-out keyword blocks ``to`` (or the Messaging Service) from
        texting ``from_`` (21610) and START/UNSTOP/YES lifts it. With
        ``advanced_opt_out`` the webhook carries ``OptOutType`` for
        keywords, as Twilio's Advanced Opt-Out does.
        """
        import requests
        from twilio.request_validator import RequestValidator

        word = _keyword(body)
        sender = messaging_service_sid or to
        opt_out_type: str | None = None
        with self._lock:
            if word in TWILIO_OPT_OUT_WORDS:
                self._blocks.add((sender, from_))
                opt_out_type = "STOP"
            elif word in TWILIO_OPT_IN_WORDS:
                self._blocks.discard((sender, from_))
                opt_out_type = "START"
            elif word in TWILIO_HELP_WORDS:
                opt_out_type = "HELP"
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
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        if messaging_service_sid:
            params["MessagingServiceSid"] = messaging_service_sid
        if advanced_opt_out and opt_out_type is not None:
            params["OptOutType"] = opt_out_type
        signature = str(RequestValidator(self.auth_token).compute_signature(webhook_url, params))
        response = requests.post(
            webhook_url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10
        )
        return int(response.status_code)

    def _clear_fidelity(self) -> None:
        self._blocks.clear()


@dataclass
class _Failure:
    code: int
    status: int
    remaining: int | None


@dataclass
class _Fault:
    kind: str  # refuse | accept_then_error | accept_then_hang
    status: int
    code: int
    until: float | None  # time.monotonic() deadline, or None
    remaining: int | None
    hang: float

    def active(self) -> bool:
        if self.until is not None and time.monotonic() >= self.until:
            return False
        return self.remaining is None or self.remaining > 0


FAULT_KINDS = ("refuse", "accept_then_error", "accept_then_hang")
#: Twilio's page size: 50 by default, at most 1,000.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class _Delivery:
    status: str
    error_code: int | None


# -- the carrier's clock: ValidityPeriod, arrival times, queue expiry (30036) ----------------

#: Twilio accepts a ValidityPeriod of 1 to 36,000 seconds (error 21624 otherwise;
#: https://www.twilio.com/docs/api/errors/21624, checked 2026-11-30).
MAX_VALIDITY_PERIOD = 36_000
INVALID_VALIDITY_PERIOD = 21624
VALIDITY_EXPIRED = 30036
_ERROR_MESSAGES[INVALID_VALIDITY_PERIOD] = "Invalid validity period value"
_ERROR_MESSAGES[VALIDITY_EXPIRED] = "Validity Period Expired"


@dataclass(frozen=True)
class Arrival:
    """When a Messages API create request arrived (``time.time()``), from whom, its validity."""

    at: float
    from_: str | None
    to: str | None
    validity: int | None
    segments: int
    sid: str | None  # None when refused


class _CarrierClock:
    """Arrival times and ValidityPeriod per request, and the carrier queue's expiry.

    Twilio releases each sender's queue at its rate (a US long code one
    segment per second) and drops a message that waited longer than its
    ValidityPeriod with error 30036, reported by a ``failed`` status callback.
    :meth:`queue_expiries` models that queue from the recorded arrivals;
    :meth:`expire` sends the signed ``failed``/30036 callback of one message.
    """

    account_sid: str
    auth_token: str
    _lock: threading.Lock
    _arrivals: list[Arrival]
    _requests: list[ReceivedRequest]
    _count: int
    record_requests: bool

    @property
    def arrivals(self) -> list[Arrival]:
        """Every create request's arrival, in order (a copy)."""
        with self._lock:
            return list(self._arrivals)

    def _note_arrival(
        self, at: float, form: dict[str, str], sid: str | None, segments: int | None
    ) -> None:
        """Record one create request's arrival; ``segments`` None: count them from the body."""
        raw = form.get("ValidityPeriod")
        arrival = Arrival(
            at,
            form.get("From"),
            form.get("To"),
            int(raw) if raw else None,
            num_segments(form.get("Body", "")) if segments is None else segments,
            sid,
        )
        with self._lock:
            self._arrivals.append(arrival)

    def _refuse_validity(
        self, path: str, params: list[tuple[str, str]], form: dict[str, str]
    ) -> tuple[int, bytes] | None:
        """Twilio's 400/21624 for a ValidityPeriod that is not a whole number in 1..36,000."""
        raw = form.get("ValidityPeriod")
        if raw is None or (raw.isdigit() and 1 <= int(raw) <= MAX_VALIDITY_PERIOD):
            return None
        with self._lock:
            self._count += 1
            if self.record_requests:
                self._requests.append(
                    ReceivedRequest(
                        "POST",
                        path,
                        self.account_sid,
                        tuple(params),
                        400,
                        None,
                        INVALID_VALIDITY_PERIOD,
                    )
                )
        message = _ERROR_MESSAGES[INVALID_VALIDITY_PERIOD]
        return 400, _error_body(400, INVALID_VALIDITY_PERIOD, message)

    def queue_expiries(self, segments_per_second: float = 1.0) -> list[str]:
        """The sids the carrier would expire: each sender's queue drained at its rate, in
        arrival order; a message whose turn comes after its ValidityPeriod is dropped."""
        free: dict[str, float] = {}
        expired: list[str] = []
        for arrival in self.arrivals:
            if arrival.sid is None or arrival.from_ is None:
                continue
            start = max(free.get(arrival.from_, 0.0), arrival.at)
            if arrival.validity is not None and start - arrival.at > arrival.validity:
                expired.append(arrival.sid)
                continue
            free[arrival.from_] = start + arrival.segments / segments_per_second
        return expired

    def expire_overdue(self, segments_per_second: float = 1.0) -> list[StatusCallbackResult]:
        """Expire (see :meth:`expire`) every message :meth:`queue_expiries` finds overdue."""
        return [self.expire(sid) for sid in self.queue_expiries(segments_per_second)]

    def expire(self, sid: str) -> StatusCallbackResult:
        """Report message ``sid`` expired in the queue: a signed ``failed`` callback with
        ErrorCode 30036 to its StatusCallback, sent now; the receiver's answer is returned."""
        import requests
        from twilio.request_validator import RequestValidator

        with self._lock:
            request = next((r for r in self._requests if r.sid == sid), None)
        if request is None or not request.status_callback:
            raise KeyError(f"no accepted message {sid} with a StatusCallback was recorded")
        url = request.status_callback
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": request.from_ or "",
            "To": request.to or "",
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": "failed",
            "SmsStatus": "failed",
            "ErrorCode": str(VALIDITY_EXPIRED),
        }
        signature = str(RequestValidator(self.auth_token).compute_signature(url, params))
        try:
            response = requests.post(
                url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5
            )
            return StatusCallbackResult(
                url, tuple(params.items()), signature, response.status_code, None
            )
        except requests.RequestException as exc:
            return StatusCallbackResult(
                url, tuple(params.items()), signature, None, f"{type(exc).__name__}: {exc}"
            )


#: ``SO_TIMESTAMPNS`` (Linux; Python's socket module does not name it): the kernel stamps
#: each read with the time the bytes reached the socket.
_SO_TIMESTAMPNS = 35
_STAMP_SPACE = socket.CMSG_SPACE(16)  # struct timespec: two 64-bit integers


class _StampedReader(io.RawIOBase):
    """A connection's bytes, with the kernel's receive time of the latest read.

    A request's arrival is when its bytes reached the server's socket, as at
    Twilio's edge. Stamping it when a handler thread gets to it instead adds
    this process's scheduling delay: on a loaded machine (a fault server and
    the test itself sharing the GIL, other tests on the cores) that bunches
    arrivals that came evenly paced, so a sender seems to exceed its rate.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.received_at: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        nbytes, ancillary, _flags, _address = self._sock.recvmsg_into([buffer], _STAMP_SPACE)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                self.received_at = seconds + nanoseconds / 1e9
        return nbytes


def _stamped(sock: socket.socket) -> _StampedReader | None:
    """A :class:`_StampedReader` of ``sock``, or None where the kernel gives no stamps."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return None
    return _StampedReader(sock)


class _HttpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    request_queue_size = 1024  # several client processes connect at once

    def __init__(self, address: tuple[str, int], fake: FakeTwilioServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


_MAX_LINE = 65536
_MAX_HEADERS = 100
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class _Handler(socketserver.StreamRequestHandler):
    """A lean HTTP/1.1 server loop (keep-alive, Content-Length bodies).

    ``http.server`` parses headers with the ``email`` package, which costs more
    than everything else a request does here; this reads them directly.
    """

    disable_nagle_algorithm = True
    server: _HttpServer
    _stamps: _StampedReader | None

    def setup(self) -> None:
        super().setup()
        self._stamps = _stamped(self.connection)
        if self._stamps is not None:
            self.rfile.close()  # the makefile() reader would hold the socket open
            self.rfile = io.BufferedReader(self._stamps)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # the client closed or stop() shut the socket
            while self._handle_one():
                pass

    def _handle_one(self) -> bool:
        """Serve one request; False when the connection should close."""
        line = self.rfile.readline(_MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # stray empty lines between requests
            line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/") or len(line) > _MAX_LINE:
            self._reply(400, _error_body(400, 400, "Bad request line"), keep_alive=False)
            return False
        method, target, version = parts
        # The request line came with the request's first bytes (the client waits
        # for each answer, so the buffer held nothing before it).
        stamped = self._stamps.received_at if self._stamps is not None else None
        arrived = time.time() if stamped is None else stamped
        headers: dict[str, str] = {}
        while True:
            raw = self.rfile.readline(_MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(headers) >= _MAX_HEADERS or len(raw) > _MAX_LINE:
                self._reply(431, _error_body(431, 431, "Headers too large"), keep_alive=False)
                return False
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._reply(
                411, _error_body(411, 411, "A Content-Length is required"), keep_alive=False
            )
            return False
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            self._reply(400, _error_body(400, 400, "Bad Content-Length"), keep_alive=False)
            return False
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:  # the client went away mid-body
            return False
        try:
            status, payload = self.server.fake._handle(
                method.upper(), target, headers.get("authorization"), body, arrived
            )
        except Exception as exc:  # a bug in the double must show, not hang the client
            message = f"fake Twilio server error: {type(exc).__name__}: {exc}"
            self._reply(500, _error_body(500, 20500, message), keep_alive=False)
            raise
        self._reply(status, payload, keep_alive=keep_alive)
        return keep_alive

    def _reply(self, status: int, payload: bytes, *, keep_alive: bool) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(payload)}\r\n"
        )
        if status == 401:
            head += 'WWW-Authenticate: Basic realm="Twilio API"\r\n'
        head += "Connection: keep-alive\r\n\r\n" if keep_alive else "Connection: close\r\n\r\n"
        self.wfile.write(head.encode("latin-1") + payload)


def _unquote_plus(text: str) -> str:
    """``urllib.parse.unquote_plus`` (UTF-8, errors replaced), quicker on ASCII text."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    if text.isascii():  # what unquote does, without splitting around non-ASCII runs
        return unquote_to_bytes(text).decode("utf-8", "replace")
    return unquote(text, errors="replace")


def _parse_form(body: bytes) -> list[tuple[str, str]]:
    """A form body's fields, as ``parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)``.

    parse_qsl's argument checks and per-field coercion were about half of
    what parsing cost a request here; tests/unit pins the two equal.
    """
    fields = []
    for field in body.decode("utf-8", "replace").split("&"):
        if field:
            name, _, value = field.partition("=")
            fields.append((_unquote_plus(name), _unquote_plus(value)))
    return fields


def _missing_parameter(form: dict[str, str]) -> tuple[int, int] | None:
    """Twilio's 400 for a create without a To, a sender or content, else None."""
    if not form.get("To", ""):
        return (400, 21604)
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return (400, 21603)
    if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
        return (400, 21602)
    return None


def _error_body(status: int, code: int, message: str) -> bytes:
    return json.dumps(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
    ).encode()


class FakeTwilioServer(_TwilioFidelity, _CarrierClock):
    """The fake Twilio Messages API on ``127.0.0.1``, on a free port unless told otherwise.

    Use as a context manager (``with FakeTwilioServer() as srv: srv.base_url``)
    or call :meth:`start` / :meth:`stop`. ``record_requests=False`` keeps only
    the count (long benchmarks). Every public method is thread-safe.
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        send_status_callbacks: bool = False,
        callback_delay: float = 0.0,
        record_requests: bool = True,
        callback_sequence: str = "twilio",
        reorder_seed: int | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.send_status_callbacks = send_status_callbacks
        self.callback_delay = callback_delay
        self.record_requests = record_requests
        self._host = host
        self._port = port
        self._expected_auth = "Basic " + base64.b64encode(
            f"{account_sid}:{auth_token}".encode()
        ).decode("ascii")
        self._messages_path = f"/{API_VERSION}/Accounts/{account_sid}/Messages"
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._resources: dict[str, dict[str, Any]] = {}
        self._count = 0
        self._accepted = 0
        self._failures: dict[str, _Failure] = {}
        self._fault: _Fault | None = None
        self._unauthorized = 0  # requests refused 401/20003 (wrong credentials)
        self._deliveries: dict[str, _Delivery] = {}
        self._callbacks: list[StatusCallbackResult] = []
        self._callback_cond = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._connections_opened = 0
        self._httpd: _HttpServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._callback_queue: queue.Queue[tuple[float, str, dict[str, str]] | None] = queue.Queue()
        self._callback_thread: threading.Thread | None = None
        self._init_fidelity(callback_sequence, reorder_seed)
        self._arrivals: list[Arrival] = []  # the carrier's clock section below

    # -- life cycle ----------------------------------------------------------

    def start(self) -> FakeTwilioServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = _HttpServer((self._host, self._port), self)
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-twilio",
            daemon=True,
        )
        self._serve_thread.start()
        if self.send_status_callbacks:
            self._callback_thread = threading.Thread(
                target=self._callback_loop, name="fake-twilio-callbacks", daemon=True
            )
            self._callback_thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close open keep-alive connections, stop the callback thread."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
        if self._callback_thread is not None:
            self._callback_queue.put(None)
            self._callback_thread.join(timeout=5)
            self._callback_thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another (the CLI)."""
        self.start()
        while self._httpd is not None:
            time.sleep(0.2)

    def __enter__(self) -> FakeTwilioServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake Twilio server is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``TwilioSmsTransport(base_url=...)`` takes."""
        return f"http://{self._host}:{self.port}"

    def transport(self, **kwargs: Any) -> TwilioSmsTransport:
        """A real :class:`TwilioSmsTransport` pointed at this server, with its credentials."""
        from drip.transports.twilio_sms import TwilioSmsTransport

        return TwilioSmsTransport(
            self.account_sid, self.auth_token, base_url=self.base_url, **kwargs
        )

    # -- behaviour -----------------------------------------------------------

    def fail(self, to: str, code: int = 21610, status: int = 400, times: int | None = None) -> None:
        """Answer messages to ``to`` with Twilio error ``code`` and HTTP ``status``.

        ``times=None`` for every message from now on, else only the next ``times``.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 or None, not {times}")
        with self._lock:
            self._failures[to] = _Failure(code, status, times)

    def set_delivery(
        self, to: str, status: str = "undelivered", error_code: int | None = 30003
    ) -> None:
        """Make the final status callback for ``to`` report ``status`` (and ``error_code``)."""
        with self._lock:
            self._deliveries[to] = _Delivery(status, error_code)

    def fault(
        self,
        kind: str | None,
        *,
        status: int = 500,
        code: int = 20500,
        seconds: float | None = None,
        times: int | None = None,
        hang: float = 30.0,
    ) -> None:
        """Misbehave for every message (see the module docstring); ``kind=None`` stops it."""
        if kind is None:
            with self._lock:
                self._fault = None
            return
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        until = time.monotonic() + seconds if seconds is not None else None
        with self._lock:
            self._fault = _Fault(kind, status, code, until, times, hang)

    def ledger(self) -> list[dict[str, Any]]:
        """Every message accepted, oldest first (a copy; kept when requests are recorded)."""
        with self._lock:
            return [dict(r) for r in self._resources.values()]

    def reset(self) -> None:
        """Forget requests, counts, failures, delivery outcomes and callbacks."""
        with self._lock:
            self._fault = None
            self._unauthorized = 0
            self._requests.clear()
            self._resources.clear()
            self._count = 0
            self._accepted = 0
            self._connections_opened = 0
            self._failures.clear()
            self._deliveries.clear()
            self._callbacks.clear()
            self._clear_fidelity()
            self._arrivals.clear()

    # -- what happened -------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every Messages API request received, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        """How many Messages API requests were received (accepted or refused)."""
        with self._lock:
            return self._count

    @property
    def accepted(self) -> int:
        """How many messages were accepted (answered 201)."""
        with self._lock:
            return self._accepted

    @property
    def connections_opened(self) -> int:
        """How many TCP connections clients opened (keep-alive makes this small)."""
        with self._lock:
            return self._connections_opened

    @property
    def callbacks(self) -> list[StatusCallbackResult]:
        """Every status callback POSTed so far, in order (a copy)."""
        with self._lock:
            return list(self._callbacks)

    def wait_for_callbacks(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` status callbacks were POSTed; False on timeout."""
        with self._callback_cond:
            return self._callback_cond.wait_for(lambda: len(self._callbacks) >= n, timeout)

    # -- the request handler's side ------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
                self._connections_opened += 1
            else:
                self._connections.discard(conn)

    def _handle(
        self,
        method: str,
        raw_path: str,
        authorization: str | None,
        body: bytes,
        arrived: float,
    ) -> tuple[int, bytes]:
        path = raw_path.split("?", 1)[0]
        if path.startswith("/_fake/"):
            return self._control(method, path, body)
        if not path.startswith(f"/{API_VERSION}/Accounts/"):
            return 404, _error_body(404, 20404, _ERROR_MESSAGES[20404])
        if authorization is None or not hmac.compare_digest(authorization, self._expected_auth):
            with self._lock:
                self._unauthorized += 1
            return 401, _error_body(401, 20003, _ERROR_MESSAGES[20003])
        if method == "POST" and path == self._messages_path + ".json":
            params = _parse_form(body)
            form = dict(params)
            refused = self._refuse_validity(path, params, form)
            if refused is not None:
                return refused
            status, payload, sid, segments = self._create_message(path, params, form)
            self._note_arrival(arrived, form, sid, segments)
            return status, payload
        if method == "GET" and path == self._messages_path + ".json":
            query = raw_path.split("?", 1)[1] if "?" in raw_path else ""
            return self._list_messages(path, parse_qsl(query, keep_blank_values=True))
        if method == "GET" and path.startswith(self._messages_path + "/SM"):
            sid = path[len(self._messages_path) + 1 :].removesuffix(".json")
            with self._lock:
                resource = self._resources.get(sid)
            if resource is not None:
                return 200, json.dumps(resource).encode()
        return 404, _error_body(404, 20404, _ERROR_MESSAGES[20404])

    def _create_message(
        self, path: str, params: list[tuple[str, str]], form: dict[str, str]
    ) -> tuple[int, bytes, str | None, int | None]:
        """(status, answer, sid if accepted, segments if counted) of one create request."""
        to = form.get("To", "")
        error = _missing_parameter(form) or self._refusal(form)
        accepted_then: _Fault | None = None
        with self._lock:
            self._count += 1
            fault = self._fault
            if error is None and fault is not None and fault.active():
                if fault.remaining is not None:
                    fault.remaining -= 1
                if fault.kind == "refuse":
                    error = (fault.status, fault.code)
                else:
                    accepted_then = fault
            if error is None:
                failure = self._failures.get(to)
                if failure is not None:
                    error = (failure.status, failure.code)
                    if failure.remaining is not None:
                        failure.remaining -= 1
                        if failure.remaining <= 0:
                            del self._failures[to]
            if error is not None:
                status, code = error
                if self.record_requests:
                    self._requests.append(
                        ReceivedRequest(
                            "POST", path, self.account_sid, tuple(params), status, None, code
                        )
                    )
                template = _ERROR_MESSAGES.get(code, f"Error {code} (injected by the fake server)")
                return status, _error_body(status, code, template.format(to=to)), None, None
            self._accepted += 1
        sid = "SM" + uuid.uuid4().hex
        segments = num_segments(form.get("Body", ""))
        resource = self._resource(sid, form, segments)
        payload = json.dumps(resource).encode()
        with self._lock:
            if self.record_requests:
                self._requests.append(
                    ReceivedRequest("POST", path, self.account_sid, tuple(params), 201, sid, None)
                )
                self._resources[sid] = resource
            delivery = self._deliveries.get(to)
        callback = form.get("StatusCallback")
        if callback and self.send_status_callbacks:
            self._enqueue_callbacks(callback, resource, delivery)
        if accepted_then is not None and accepted_then.kind == "accept_then_error":
            # A gateway in front of the API failed after the message was created.
            message = "Bad gateway (injected by the fake server after accepting the message)"
            error_body = _error_body(accepted_then.status, accepted_then.code, message)
            # The carrier's clock notes only what was answered 201 as accepted.
            return accepted_then.status, error_body, None, segments
        if accepted_then is not None:  # accept_then_hang: the client times out first
            time.sleep(accepted_then.hang)
        return 201, payload, sid, segments

    # -- the Messages list ---------------------------------------------------

    def _list_messages(self, path: str, query: list[tuple[str, str]]) -> tuple[int, bytes]:
        params = dict(query)
        try:
            size = int(params.get("PageSize") or DEFAULT_PAGE_SIZE)
            page = int(params.get("Page") or 0)
            after = _date_filter(params.get("DateSent>"))
            before = _date_filter(params.get("DateSent<"))
            on = _date_filter(params.get("DateSent"))
        except ValueError as exc:
            return 400, _error_body(400, 20001, f"Invalid parameter: {exc}")
        if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
            return 400, _error_body(400, 20001, "Invalid PageSize or Page")
        to, from_ = params.get("To"), params.get("From")
        with self._lock:
            resources = list(self._resources.values())
        found = []
        for resource in reversed(resources):  # newest first, as Twilio lists them
            if to and resource["to"] != to:
                continue
            if from_ and resource["from"] != from_:
                continue
            sent = resource.get("date_sent")
            if after or before or on:
                if not sent:
                    continue
                when = parsedate_to_datetime(str(sent))
                if after and not _on_or_after(when, after):
                    continue
                if before and not _on_or_before(when, before):
                    continue
                if on and not (_on_or_after(when, on) and _on_or_before(when, on)):
                    continue
            found.append(resource)
        chunk = found[page * size : (page + 1) * size]
        kept = [(k, v) for k, v in query if k not in ("Page", "PageToken", "PageSize")]

        def uri(n: int) -> str:
            extra = [*kept, ("PageSize", str(size)), ("Page", str(n))]
            if n > 0 and chunk:
                extra.append(("PageToken", "PA" + str(found[n * size - 1]["sid"])))
            return f"{path}?{urlencode(extra)}"

        more = (page + 1) * size < len(found)
        body = {
            "messages": chunk,
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0),
            "uri": uri(page),
        }
        return 200, json.dumps(body).encode()

    def _resource(self, sid: str, form: dict[str, str], segments: int) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        body = form.get("Body", "")
        resource: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": now,  # handed to the carrier at once in this double
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": form.get("To"),
            "uri": f"{base}.json",
        }
        self._shape_resource(resource, form)
        return resource

    # -- status callbacks ----------------------------------------------------

    def _enqueue_callbacks(
        self, url: str, resource: dict[str, Any], delivery: _Delivery | None
    ) -> None:
        common = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": str(resource["from"] or ""),
            "To": str(resource["to"]),
            "MessageSid": str(resource["sid"]),
            "SmsSid": str(resource["sid"]),
        }
        final = delivery or _Delivery("delivered", None)
        due = time.monotonic() + self.callback_delay
        statuses = self._callback_statuses(resource, (final.status, final.error_code))
        for status, error_code in statuses:
            params = {**common, "MessageStatus": status, "SmsStatus": status}
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            self._callback_queue.put((due, url, params))

    def _callback_loop(self) -> None:
        import requests
        from twilio.request_validator import RequestValidator

        validator = RequestValidator(self.auth_token)
        session = requests.Session()
        try:
            while True:
                item = self._callback_queue.get()
                if item is None:
                    return
                due, url, params = item
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                signature = str(validator.compute_signature(url, params))
                status: int | None = None
                error: str | None = None
                try:
                    response = session.post(
                        url,
                        data=params,
                        headers={"X-Twilio-Signature": signature},
                        timeout=5,
                    )
                    status = response.status_code
                except requests.RequestException as exc:
                    error = f"{type(exc).__name__}: {exc}"
                result = StatusCallbackResult(url, tuple(params.items()), signature, status, error)
                with self._callback_cond:
                    self._callbacks.append(result)
                    self._callback_cond.notify_all()
        finally:
            session.close()

    # -- control endpoints (for a server in another process) -----------------

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if method == "GET" and path == "/_fake/stats":
            with self._lock:
                stats = {
                    "count": self._count,
                    "accepted": self._accepted,
                    "unauthorized": self._unauthorized,
                    "callbacks": len(self._callbacks),
                    "callbacks_failed": sum(
                        1
                        for c in self._callbacks
                        if c.response_status is None or c.response_status >= 400
                    ),
                }
            return 200, json.dumps(stats).encode()
        if method == "GET" and path == "/_fake/requests":
            rows = [
                {
                    "status": r.status,
                    "sid": r.sid,
                    "error_code": r.error_code,
                    "params": dict(r.params),
                }
                for r in self.requests
            ]
            return 200, json.dumps(rows).encode()
        if method == "GET" and path == "/_fake/ledger":
            return 200, json.dumps(self.ledger()).encode()
        if method == "POST" and path == "/_fake/fault":
            try:
                kind = form.get("kind") or None
                self.fault(
                    kind,
                    status=int(form.get("status", 500)),
                    code=int(form.get("code", 20500)),
                    seconds=float(form["seconds"]) if form.get("seconds") else None,
                    times=int(form["times"]) if form.get("times") else None,
                    hang=float(form.get("hang", 30.0)),
                )
            except ValueError as exc:
                return 400, _error_body(400, 400, f"bad /_fake/fault request: {exc}")
            return 200, b"{}"
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            return 200, b"{}"
        if method == "POST" and path == "/_fake/fail":
            try:
                times = int(form["times"]) if form.get("times") else None
                self.fail(
                    form["to"], int(form.get("code", 21610)), int(form.get("status", 400)), times
                )
            except (KeyError, ValueError) as exc:
                return 400, _error_body(400, 400, f"bad /_fake/fail request: {exc}")
            return 200, b"{}"
        return 404, _error_body(404, 20404, _ERROR_MESSAGES[20404])


def _date_filter(raw: str | None) -> datetime | date | None:
    """A DateSent filter value: ``YYYY-MM-DD`` (a day) or an ISO 8601 instant."""
    if not raw:
        return None
    text = raw.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _on_or_after(when: datetime, bound: datetime | date) -> bool:
    if isinstance(bound, datetime):
        return when >= bound
    return when.astimezone(UTC).date() >= bound


def _on_or_before(when: datetime, bound: datetime | date) -> bool:
    if isinstance(bound, datetime):
        return when <= bound
    return when.astimezone(UTC).date() <= bound


def _parse_failure(spec: str) -> tuple[str, int, int]:
    to, _, rest = spec.partition(":")
    code, _, status = rest.partition(":")
    return to, int(code or 21610), int(status or 400)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m drip.testing.fake_twilio``: serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m drip.testing.fake_twilio",
        description="A local fake of Twilio's Messages API, for tests, benchmarks and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument(
        "--status-callbacks", action="store_true", help="POST signed sent/delivered callbacks"
    )
    parser.add_argument("--callback-delay", type=float, default=0.0)
    parser.add_argument(
        "--record", action="store_true", help="keep every request (GET /_fake/requests)"
    )
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="TO[:CODE[:STATUS]]",
        help="always refuse messages to TO (default code 21610, status 400); repeatable",
    )
    args = parser.parse_args(argv)
    server = FakeTwilioServer(
        args.account_sid,
        args.auth_token,
        host=args.host,
        port=args.port,
        send_status_callbacks=args.status_callbacks,
        callback_delay=args.callback_delay,
        record_requests=args.record,
    )
    for spec in args.fail:
        to, code, status = _parse_failure(spec)
        server.fail(to, code=code, status=status)

    def _stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    server.start()
    print(
        f"fake Twilio listening on {server.base_url}\n"
        f"  TWILIO_ACCOUNT_SID={server.account_sid}\n"
        f"  TWILIO_AUTH_TOKEN={server.auth_token}\n"
        f"  stats: GET {server.base_url}/_fake/stats",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
