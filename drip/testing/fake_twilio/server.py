"""The fake Twilio Messages API server: its life cycle, its routes, and what a test can set."""

from __future__ import annotations

import dataclasses
import hmac
import json
import threading
import time
from datetime import date
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import urllib3

from drip.testing.fake_twilio import carrier, codes, lookup, messages
from drip.testing.fake_twilio.callbacks import (
    CallbackSender,
    inbound_params,
    opt_out_type,
    post_signed,
    signed_post,
)
from drip.testing.fake_twilio.codes import API_VERSION, error_body, error_message
from drip.testing.fake_twilio.httpd import Connection, FakeHTTPServer
from drip.testing.fake_twilio.ledger import (
    FAULT_KINDS,
    Arrival,
    Delivery,
    Failure,
    Fault,
    Ledger,
    ReceivedRequest,
    StatusCallbackResult,
)

if TYPE_CHECKING:
    from twilio.request_validator import RequestValidator

    from drip.transports.twilio_sms import TwilioSmsTransport

__all__ = ["DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN", "FakeTwilioServer"]

DEFAULT_ACCOUNT_SID = "AC" + "0" * 30 + "01"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"  # noqa: S105  # a test double's public default


class FakeTwilioServer:
    """The fake Twilio Messages API on ``127.0.0.1``, on a free port unless told otherwise.

    Use as a context manager (``with FakeTwilioServer() as srv: srv.base_url``)
    or call :meth:`start` / :meth:`stop`. ``record_requests=False`` keeps only
    the count (long benchmarks). ``chunked`` and ``gzip`` (also settable while
    it runs) frame its answers chunked and gzip-compress them for a client that
    accepts gzip. Every public method is thread-safe.
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
        chunked: bool = False,
        gzip: bool = False,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.send_status_callbacks = send_status_callbacks
        self.record_requests = record_requests
        self.chunked = chunked
        self.gzip = gzip
        self._host = host
        self._port = port
        self._expected_auth = urllib3.util.make_headers(basic_auth=f"{account_sid}:{auth_token}")[
            "authorization"
        ]
        self._messages_path = f"/{API_VERSION}/Accounts/{account_sid}/Messages"
        self._ledger = Ledger()
        self._lookup = lookup.LookupBook()
        self._callbacks = CallbackSender(
            self._ledger,
            account_sid,
            auth_token,
            delay=callback_delay,
            sequence=callback_sequence,
            reorder_seed=reorder_seed,
        )
        self._httpd: FakeHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None

    @property
    def callback_delay(self) -> float:
        return self._callbacks.delay

    @property
    def callback_sequence(self) -> str:
        return self._callbacks.sequence

    @property
    def reorder_seed(self) -> int | None:
        return self._callbacks.reorder_seed

    # -- life cycle ----------------------------------------------------------

    def start(self) -> FakeTwilioServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = FakeHTTPServer((self._host, self._port), self)
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-twilio",
            daemon=True,
        )
        self._serve_thread.start()
        if self.send_status_callbacks:
            self._callbacks.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close open keep-alive connections, stop the callback thread."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._ledger.lock:
            connections = list(self._ledger.connections)
        for conn in connections:
            conn.close_now()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
        self._callbacks.stop()

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
        with self._ledger.lock:
            self._ledger.failures[to] = Failure(code, status, times)

    def set_delivery(
        self, to: str, status: str = "undelivered", error_code: int | None = 30003
    ) -> None:
        """Make the final status callback for ``to`` report ``status`` (and ``error_code``)."""
        with self._ledger.lock:
            self._ledger.deliveries[to] = Delivery(status, error_code)

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
        """Misbehave for every message; ``kind=None`` stops it.

        ``refuse`` (an outage: every message refused with ``status``/``code``,
        nothing accepted), ``accept_then_error`` (the message is accepted and
        kept, then a gateway answers ``status``), ``accept_then_hang``
        (accepted, then the answer is held ``hang`` seconds so the client times
        out); each for ``seconds`` or ``times`` messages, or until stopped.
        """
        if kind is None:
            with self._ledger.lock:
                self._ledger.fault = None
            return
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        until = time.monotonic() + seconds if seconds is not None else None
        with self._ledger.lock:
            self._ledger.fault = Fault(kind, status, code, until, times, hang)

    def mark_reassigned(self, phone: str, since: date) -> None:
        """Lookup's ``reassigned_number`` says ``yes`` for ``phone`` and any date up to ``since``
        (the number was disconnected then, and may have a new owner)."""
        self._lookup.mark(phone, since)

    def lookup_fault(
        self, kind: str | None, *, status: int = 503, code: int = 20503, hang: float = 30.0
    ) -> None:
        """Misbehave on every Lookup request; ``kind=None`` stops it.

        ``refuse`` (answered ``status``/``code``: 503/20503 an outage, 401/20003
        wrong credentials), ``malformed`` (a 200 whose body is cut short),
        ``hang`` (held ``hang`` seconds, so the client times out).
        """
        if kind is not None and kind not in lookup.LOOKUP_FAULTS:
            raise ValueError(
                f"lookup fault kind must be one of {', '.join(lookup.LOOKUP_FAULTS)}, not {kind!r}"
            )
        fault = lookup.LookupFault(kind, status, code, hang) if kind is not None else None
        self._lookup.set_fault(fault)

    @property
    def lookups(self) -> list[tuple[str, str]]:
        """Every Lookup request received: (phone number, ``LastVerifiedDate`` as sent), in order."""
        with self._lookup.lock:
            return list(self._lookup.asked)

    def blocked(self, sender: str, to: str) -> bool:
        """Whether Twilio would refuse texts from ``sender`` to ``to`` (21610)."""
        with self._ledger.lock:
            return (sender, to) in self._ledger.blocks

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
        kind = opt_out_type(self._ledger, messaging_service_sid or to, from_, body)
        params = inbound_params(self.account_sid, from_, to, body, messaging_service_sid)
        if advanced_opt_out and kind is not None:
            params["OptOutType"] = kind
        _, response = signed_post(None, self._validator(), webhook_url, params, timeout=10)
        return int(response.status_code)

    def reset(self) -> None:
        """Forget requests, counts, failures, faults, delivery outcomes, blocks and callbacks."""
        with self._ledger.lock:
            self._ledger.clear()
        self._lookup.clear()

    # -- what happened -------------------------------------------------------

    def ledger(self) -> list[dict[str, Any]]:
        """Every message accepted, oldest first (a copy; kept when requests are recorded)."""
        with self._ledger.lock:
            return [dict(r) for r in self._ledger.resources.values()]

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every Messages API request received, in order (a copy)."""
        with self._ledger.lock:
            return list(self._ledger.requests)

    @property
    def count(self) -> int:
        """How many Messages API create requests were received (accepted or refused)."""
        with self._ledger.lock:
            return self._ledger.count

    @property
    def accepted(self) -> int:
        """How many messages were accepted (answered 201)."""
        with self._ledger.lock:
            return self._ledger.accepted

    @property
    def connections_opened(self) -> int:
        """How many TCP connections clients opened (keep-alive makes this small)."""
        with self._ledger.lock:
            return self._ledger.connections_opened

    @property
    def callbacks(self) -> list[StatusCallbackResult]:
        """Every status callback POSTed so far, in order (a copy)."""
        with self._ledger.lock:
            return list(self._ledger.callbacks)

    def wait_for_callbacks(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` status callbacks were POSTed; False on timeout."""
        with self._ledger.changed:
            return self._ledger.changed.wait_for(lambda: len(self._ledger.callbacks) >= n, timeout)

    # -- the carrier's clock -------------------------------------------------

    @property
    def arrivals(self) -> list[Arrival]:
        """Every create request's arrival, in order (a copy)."""
        with self._ledger.lock:
            return list(self._ledger.arrivals)

    def queue_expiries(self, segments_per_second: float = 1.0) -> list[str]:
        """The sids the carrier would expire (see :func:`carrier.queue_expiries`)."""
        return carrier.queue_expiries(self.arrivals, segments_per_second)

    def expire_overdue(self, segments_per_second: float = 1.0) -> list[StatusCallbackResult]:
        """Expire (see :meth:`expire`) every message :meth:`queue_expiries` finds overdue."""
        return [self.expire(sid) for sid in self.queue_expiries(segments_per_second)]

    def expire(self, sid: str) -> StatusCallbackResult:
        """Report message ``sid`` expired in the queue: a signed ``failed`` callback with
        ErrorCode 30036 to its StatusCallback, sent now; the receiver's answer is returned."""
        with self._ledger.lock:
            request = next((r for r in self._ledger.requests if r.sid == sid), None)
        if request is None or not request.status_callback:
            raise KeyError(f"no accepted message {sid} with a StatusCallback was recorded")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": request.from_ or "",
            "To": request.to or "",
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": "failed",
            "SmsStatus": "failed",
            "ErrorCode": str(codes.VALIDITY_EXPIRED),
        }
        return post_signed(None, self._validator(), request.status_callback, params, timeout=5)

    def _validator(self) -> RequestValidator:
        from twilio.request_validator import RequestValidator

        return RequestValidator(self.auth_token)

    # -- the HTTP side's calls -----------------------------------------------

    def track(self, conn: Connection, *, add: bool) -> None:
        """Note a client connection opened (``add``) or closed."""
        with self._ledger.lock:
            if add:
                self._ledger.connections.add(conn)
                self._ledger.connections_opened += 1
            else:
                self._ledger.connections.discard(conn)

    def handle(
        self, method: str, target: str, authorization: str | None, body: bytes, arrived: float
    ) -> tuple[int, bytes]:
        """The answer (status, JSON) to one request."""
        path, _, query = target.partition("?")
        if path.startswith("/_fake/"):
            return self._control(method, path, body)
        is_lookup = path.startswith(lookup.LOOKUP_PREFIX)
        if not path.startswith(f"/{API_VERSION}/Accounts/") and not is_lookup:
            return 404, error_body(404, 20404, error_message(20404))
        if authorization is None or not hmac.compare_digest(authorization, self._expected_auth):
            with self._ledger.lock:
                self._ledger.unauthorized += 1
            return 401, error_body(401, 20003, error_message(20003))
        if is_lookup:
            if method != "GET":
                return 405, error_body(405, 20004, "Method not allowed")
            return lookup.answer(self._lookup, path, query)
        if method == "GET" and path == f"/{API_VERSION}/Accounts/{self.account_sid}.json":
            return 200, self._account_resource()
        if path == self._messages_path + ".json":
            if method == "POST":
                return self._create(path, body, arrived)
            if method == "GET":
                with self._ledger.lock:
                    resources = list(self._ledger.resources.values())
                return messages.list_messages(
                    resources, path, parse_qsl(query, keep_blank_values=True)
                )
        if method == "GET" and path.startswith(self._messages_path + "/SM"):
            sid = path[len(self._messages_path) + 1 :].removesuffix(".json")
            with self._ledger.lock:
                resource = self._ledger.resources.get(sid)
            if resource is not None:
                return 200, json.dumps(resource).encode()
        return 404, error_body(404, 20404, error_message(20404))

    def _account_resource(self) -> bytes:
        """The Account resource, as Twilio answers ``GET /2010-04-01/Accounts/{Sid}.json``."""
        sid = self.account_sid
        base = f"/{API_VERSION}/Accounts/{sid}"
        return json.dumps(
            {
                "sid": sid,
                "owner_account_sid": sid,
                "friendly_name": "fake Twilio account",
                "status": "active",
                "type": "Full",
                "auth_token": self.auth_token,
                "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
                "date_updated": "Thu, 01 Jan 2026 00:00:00 +0000",
                "uri": f"{base}.json",
                "subresource_uris": {"messages": f"{base}/Messages.json"},
            }
        ).encode()

    def _create(self, path: str, body: bytes, arrived: float) -> tuple[int, bytes]:
        params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(params)
        if codes.validity_refused(form):
            code = codes.INVALID_VALIDITY_PERIOD
            with self._ledger.lock:
                self._ledger.count += 1
                if self.record_requests:
                    self._ledger.requests.append(
                        ReceivedRequest(
                            "POST", path, self.account_sid, tuple(params), 400, None, code
                        )
                    )
            return 400, error_body(400, code, error_message(code))
        created = messages.create_message(
            self._ledger, self.account_sid, path, params, record=self.record_requests
        )
        note = carrier.arrival(arrived, form, created.sid, created.segments)
        with self._ledger.lock:
            self._ledger.arrivals.append(note)
        callback = form.get("StatusCallback")
        if created.resource is not None and callback and self.send_status_callbacks:
            self._callbacks.enqueue(callback, created.resource, created.delivery)
        if created.then is not None and created.then.kind == "accept_then_hang":
            time.sleep(created.then.hang)  # the client times out first
        return created.status, created.payload

    # -- control endpoints (for a server in another process) -----------------

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if method == "GET" and path == "/_fake/stats":
            return 200, json.dumps(self._ledger.stats()).encode()
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
        if method == "GET" and path == "/_fake/arrivals":
            return 200, json.dumps([dataclasses.asdict(a) for a in self.arrivals]).encode()
        if method == "POST" and path == "/_fake/fault":
            try:
                self.fault(
                    form.get("kind") or None,
                    status=int(form.get("status", 500)),
                    code=int(form.get("code", 20500)),
                    seconds=float(form["seconds"]) if form.get("seconds") else None,
                    times=int(form["times"]) if form.get("times") else None,
                    hang=float(form.get("hang", 30.0)),
                )
            except ValueError as exc:
                return 400, error_body(400, 400, f"bad /_fake/fault request: {exc}")
            return 200, b"{}"
        if method == "POST" and path == "/_fake/reassigned":
            try:
                self.mark_reassigned(form["phone"], date.fromisoformat(form["since"]))
            except (KeyError, ValueError) as exc:
                return 400, error_body(400, 400, f"bad /_fake/reassigned request: {exc}")
            return 200, b"{}"
        if method == "POST" and path == "/_fake/lookup_fault":
            try:
                self.lookup_fault(
                    form.get("kind") or None,
                    status=int(form.get("status", 503)),
                    code=int(form.get("code", 20503)),
                    hang=float(form.get("hang", 30.0)),
                )
            except ValueError as exc:
                return 400, error_body(400, 400, f"bad /_fake/lookup_fault request: {exc}")
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
                return 400, error_body(400, 400, f"bad /_fake/fail request: {exc}")
            return 200, b"{}"
        return 404, error_body(404, 20404, error_message(20404))
