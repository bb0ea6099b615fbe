"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for tests.

    with SmtpTestServer() as smtp:
        transport = SmtpEmailTransport(smtp.url(), "agent@example.com")
        ...
        smtp.messages[0].message["Subject"]

``users`` makes the server require ``AUTH`` (PLAIN and LOGIN) with those
credentials; ``tls_context`` offers STARTTLS with that server-side context.
:meth:`SmtpTestServer.reject` makes it refuse a recipient with a given reply.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from ssl import SSLContext
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["ReceivedEmail", "SmtpTestServer"]


@dataclass(frozen=True, eq=False)
class ReceivedEmail:
    """One message the server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    authenticated: bool


class _Handler:
    def __init__(self, owner: SmtpTestServer) -> None:
        self._owner = owner

    async def handle_RCPT(  # noqa: N802  # aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._owner._rejection(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self._owner._store(
            ReceivedEmail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=parsed,
                raw=raw,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8")
        password = auth_data.password.decode("utf-8")
        ok = login in self._users and self._users[login] == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class SmtpTestServer:
    """An aiosmtpd ``SMTP`` server on its own event loop and thread, storing what it accepts.

    The server is asyncio's ``loop.create_server`` with aiosmtpd's ``SMTP`` as the
    protocol, so that port 0 binds a free port and ``server.sockets`` reports it
    (aiosmtpd's threaded ``Controller`` connects to its own port to start, which
    port 0 does not allow).
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        tls_context: SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._users = dict(users) if users else None
        self._tls_context = tls_context
        self._lock = threading.Condition()
        self._messages: list[ReceivedEmail] = []
        self._rejections: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self) -> SmtpTestServer:
        """Start the server in its own thread and event loop; returns self."""
        if self._loop is not None:
            return self
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": True}  # as aiosmtpd's Controller sets
        if self._users is not None:
            kwargs.update(
                authenticator=_Authenticator(self._users),
                auth_required=True,
                # Plain-text AUTH is fine on loopback in tests; with TLS, demand it first.
                auth_require_tls=self._tls_context is not None,
            )
        if self._tls_context is not None:
            kwargs.update(tls_context=self._tls_context)
        handler = _Handler(self)
        loop = asyncio.new_event_loop()
        bound: Future[asyncio.Server] = Future()
        thread = threading.Thread(
            target=_serve,
            args=(
                loop,
                lambda: SMTP(handler, loop=loop, **kwargs),
                self.host,
                self._requested_port or 0,
                bound,
            ),
            name="smtp-test-server",
            daemon=True,
        )
        thread.start()
        server = bound.result()  # raises what binding raised
        self._port = int(server.sockets[0].getsockname()[1])
        self._loop = loop
        self._thread = thread
        return self

    def stop(self) -> None:
        """Drop open sessions, close the listener and end the server's thread."""
        loop, self._loop = self._loop, None
        thread, self._thread = self._thread, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SmtpTestServer:
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
        if self._port is None:
            raise RuntimeError("the SMTP test server is not started")
        return self._port

    def url(
        self, user: str | None = None, password: str | None = None, *, scheme: str = "smtp"
    ) -> str:
        """The ``SmtpEmailTransport`` URL for this server, with credentials when given."""
        cred = ""
        if user is not None:
            cred = quote(user, safe="")
            if password is not None:
                cred += ":" + quote(password, safe="")
            cred += "@"
        return f"{scheme}://{cred}{self.host}:{self.port}"

    def reject(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Answer ``RCPT TO:<address>`` with ``reply`` (e.g. a 4xx for a temporary refusal)."""
        with self._lock:
            self._rejections[address] = reply

    @property
    def messages(self) -> list[ReceivedEmail]:
        """Every message accepted so far, in order (a copy)."""
        with self._lock:
            return list(self._messages)

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` messages were accepted; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._messages) >= n, timeout)

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._rejections.clear()

    def _rejection(self, address: str) -> str | None:
        with self._lock:
            return self._rejections.get(address)

    def _store(self, received: ReceivedEmail) -> None:
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()


def _serve(
    loop: asyncio.AbstractEventLoop,
    protocol: Callable[[], SMTP],
    host: str,
    port: int,
    bound: Future[asyncio.Server],
) -> None:
    """Bind ``host:port`` (0: a free port) and serve on ``loop`` until it is stopped.

    The listening server goes to ``bound`` (or what binding raised); when the loop
    stops, open sessions are cancelled and the listener closed.
    """
    asyncio.set_event_loop(loop)
    try:
        server = loop.run_until_complete(loop.create_server(protocol, host=host, port=port))
    except BaseException as exc:  # start() raises it
        bound.set_exception(exc)
        loop.close()
        return
    bound.set_result(server)
    try:
        loop.run_forever()
    finally:
        server.close()
        sessions = asyncio.all_tasks(loop)
        for task in sessions:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
        loop.run_until_complete(server.wait_closed())
        loop.close()
