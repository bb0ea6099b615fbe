"""Who is at the console: named operators' sessions, the read-only token, CSRF, login limits.

For operators: docs/operations.md#operators-and-roles.

- **Session cookie** ``drip_console``: an itsdangerous-signed value holding
  the operator's name, a random session id and the time of the last request
  (``HttpOnly``, ``SameSite=Strict``, ``Path=/console/``, ``Secure`` when
  ``DRIP_PUBLIC_URL`` is https). It is signed with ``DRIP_SECRET_KEY`` and a
  salt made from ``DRIP_CONSOLE_TOKEN``; while the key is drip's public
  development key, a random key of this process signs instead (sessions then
  end when the process restarts). Every request re-issues it: a session ends
  after 12 hours without one. The role is read from the database on each
  request, so a disabled operator is out at the next click.
- **Token**: ``Authorization: Bearer DRIP_CONSOLE_TOKEN`` (scripts), or the
  token in the login form, reads every page and the audit export; it takes
  no action.
- **CSRF**: each action form carries a token signed over the session id;
  an action without it, or with another session's, is refused (403).
- **Login limits** (the ``limits`` library): 20 failed logins a minute or 60
  an hour from one address block that address; 100 failures an hour for one
  name block that name. Only failures count, so the real operator logging in
  from another address is not held up by an attacker at one. Scaled out (a
  Redis broker) the counts live in that Redis, shared by every gunicorn
  worker and host; embedded, in the process's memory. Should that Redis not
  answer, logins are not held back (logged): the console is what an
  operator needs when things break. The address is the connecting one, or
  the client's as named by ``DRIP_TRUSTED_PROXIES`` reverse proxies'
  ``X-Forwarded-For`` (drip.web.app).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import structlog
from flask import Blueprint, Response, g, redirect, request
from itsdangerous import BadSignature, URLSafeSerializer
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.wrappers import Response as BaseResponse

from drip.services import operators
from drip.services.deps import Deps

__all__ = ["COOKIE", "IDLE", "Who", "csrf_ok", "csrf_token", "install_auth"]

log = structlog.get_logger("drip.console")

COOKIE: Final = "drip_console"
#: A session ends after this long without a request.
IDLE: Final = timedelta(hours=12)
KEY_ROLE: Final = "token"
ADDRESS_LIMITS: Final = "20/minute;60/hour"
NAME_LIMITS: Final = "100/hour"

Page = Callable[..., Response]


@dataclass(frozen=True, slots=True)
class Who:
    """The person (or the token) behind a request: name, role, session id (empty: bearer)."""

    name: str
    role: str
    session_id: str

    @property
    def is_operator(self) -> bool:
        return self.role != KEY_ROLE

    def may(self, action: str) -> bool:
        """The right to take ``action``; the token may read the audit export, nothing more."""
        if self.role == KEY_ROLE:
            return action == "audit"
        return operators.may(self.role, action)


class Keys:
    """The signing of session cookies and CSRF tokens for one console."""

    def __init__(self, deps: Deps) -> None:
        settings = deps.settings
        if settings.secret_key_is_default:
            secret = secrets.token_hex(32)
            log.warning(
                "console_signing_key",
                detail="DRIP_SECRET_KEY is the development key: console sessions are signed "
                "with a key of this process and end when it restarts",
            )
        else:
            secret = settings.secret_key
        token = settings.console_token or ""
        salt = "drip-console:" + hashlib.sha256(token.encode()).hexdigest()
        self.cookie = URLSafeSerializer(secret, salt=salt)
        self.csrf = URLSafeSerializer(secret, salt=salt + ":csrf")


def csrf_token(who: Who | None) -> str:
    """The CSRF token of this session's forms ('' outside a session)."""
    keys: Keys = g.console_keys
    if who is None or not who.session_id:
        return ""
    return str(keys.csrf.dumps(who.session_id))


def csrf_ok(who: Who) -> bool:
    """The form's ``csrf`` field was signed here for this very session."""
    keys: Keys = g.console_keys
    given = request.form.get("csrf", "")
    if not who.session_id or not given:
        return False
    try:
        value = keys.csrf.loads(given)
    except BadSignature:
        return False
    return isinstance(value, str) and hmac.compare_digest(value, who.session_id)


def _token_ok(deps: Deps, given: str) -> bool:
    expected = deps.settings.console_token or ""
    return bool(expected) and hmac.compare_digest(given.strip().encode(), expected.encode())


class Limiter:
    """Failed logins per address and per name (only failures are counted), in Redis when
    ``broker_url`` is a Redis URL, else in this process's memory."""

    def __init__(self, broker_url: str | None) -> None:
        if broker_url is not None and broker_url.startswith(("redis://", "rediss://")):
            storage = storage_from_string(
                broker_url, key_prefix="drip:console-login", wrap_exceptions=True
            )
        else:
            storage = storage_from_string("memory://")
        self._limiter = MovingWindowRateLimiter(storage)
        self._address: list[RateLimitItem] = parse_many(ADDRESS_LIMITS)
        self._name: list[RateLimitItem] = parse_many(NAME_LIMITS)

    def _keys(self, address: str, name: str) -> list[tuple[RateLimitItem, str]]:
        keyed = [(item, "address:" + address) for item in self._address]
        if name:
            digest = hashlib.sha256(name.encode()).hexdigest()[:32]
            keyed += [(item, "name:" + digest) for item in self._name]
        return keyed

    def blocked(self, address: str, name: str) -> bool:
        try:
            return any(
                not self._limiter.test(item, "console-login", key)
                for item, key in self._keys(address, name)
            )
        except StorageError as exc:
            log.warning("console_login_limits_unavailable", error=type(exc.storage_error).__name__)
            return False

    def failed(self, address: str, name: str) -> None:
        try:
            for item, key in self._keys(address, name):
                self._limiter.hit(item, "console-login", key)
        except StorageError as exc:
            log.warning("console_login_limits_unavailable", error=type(exc.storage_error).__name__)


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _read_cookie(deps: Deps, keys: Keys) -> tuple[Who | None, str | None]:
    """The session's operator, or None with why (None: no cookie at all)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None, None
    try:
        value: Any = keys.cookie.loads(raw)
    except BadSignature:
        return None, "bad cookie"
    if not isinstance(value, dict):
        return None, "bad cookie"
    name, sid, seen = value.get("o"), value.get("s"), value.get("t")
    if not isinstance(name, str) or not isinstance(sid, str) or not isinstance(seen, int):
        return None, "bad cookie"
    if _epoch(deps.clock.now()) - seen > IDLE.total_seconds():
        return None, "expired"
    if value.get("k") == KEY_ROLE:
        return Who(KEY_ROLE, KEY_ROLE, sid), None
    found = operators.active_operator(deps, name)
    if found is None:
        return None, "disabled"
    return Who(found.name, found.role, sid), None


def _bearer(deps: Deps) -> Who | bool | None:
    """The token's reader for a bearer header; False when the header is wrong; None: none."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and _token_ok(deps, given):
        return Who(KEY_ROLE, KEY_ROLE, "")
    return False


def _set_cookie(deps: Deps, response: BaseResponse, who: Who) -> None:
    keys: Keys = g.console_keys
    value = {
        "k": "token" if not who.is_operator else "op",
        "o": who.name,
        "s": who.session_id,
        "t": _epoch(deps.clock.now()),
    }
    response.set_cookie(
        COOKIE,
        keys.cookie.dumps(value),
        max_age=int(IDLE.total_seconds()),
        path="/console/",
        httponly=True,
        samesite="Strict",
        secure=deps.settings.public_url.startswith("https://"),
    )


_LOGIN_ENDPOINTS = ("console.login", "console.login_post")
_ENDED: Final = {
    "expired": "Your session ended after 12 hours without activity. Log in again.",
    "disabled": "Your operator account is disabled. Ask an administrator.",
    "bad cookie": "Your session is not valid here. Log in again.",
}


def install_auth(
    bp: Blueprint, deps: Deps, page: Page, safe_next: Callable[[str | None], str]
) -> None:
    """The guard on every console route, the cookie's renewal, and the login and logout routes."""
    keys = Keys(deps)
    limiter = Limiter(deps.settings.broker_url)

    def login_page(status: int, error: str | None = None, target: str | None = None) -> Response:
        return page(
            "login.html",
            status,
            error=error,
            next=target or safe_next(request.full_path),
            has_token=bool(deps.settings.console_token),
        )

    @bp.before_request
    def _guard() -> Response | None:
        g.console_keys = keys
        g.who = None
        if not (deps.settings.console_token or operators.any_operator(deps)):
            return page("error.html", 404, message="the console is off: no operator and no token")
        if request.endpoint in _LOGIN_ENDPOINTS:
            return None
        bearer = _bearer(deps)
        if bearer is False:
            log.info("console_refused", reason="bad bearer token")
            return login_page(401, "That token is not valid.")
        if isinstance(bearer, Who):
            g.who = bearer
            return None
        who, why = _read_cookie(deps, keys)
        if who is None:
            if why is not None:
                log.info("console_refused", reason=why)
            return login_page(401, _ENDED.get(why or ""))
        g.who = who
        return None

    @bp.after_request
    def _renew(response: Response) -> Response:
        who = g.get("who")
        if isinstance(who, Who) and who.session_id and request.endpoint != "console.logout":
            _set_cookie(deps, response, who)
        return response

    @bp.get("/login")
    def login() -> Response:
        return login_page(200, target=safe_next(request.args.get("next")))

    @bp.post("/login")
    def login_post() -> BaseResponse:
        target = safe_next(request.form.get("next"))
        address = request.remote_addr or "?"
        name = request.form.get("name", "").strip()[:100]
        if limiter.blocked(address, name):
            log.info("console_login", ok=False, reason="too many failures")
            return page(
                "login.html",
                429,
                error="Too many failed logins from this address or for this name. "
                "Wait a while, then try again.",
                next=target,
                has_token=bool(deps.settings.console_token),
            )
        token = request.form.get("token", "")
        if token:
            if not _token_ok(deps, token):
                limiter.failed(address, "")
                log.info("console_login", ok=False, kind="token")
                return login_page(401, "That token is not valid.", target)
            who = Who(KEY_ROLE, KEY_ROLE, secrets.token_urlsafe(18))
        else:
            found = operators.authenticate(deps, name, request.form.get("password", ""))
            if found is None:
                limiter.failed(address, name)
                log.info("console_login", ok=False, kind="operator")
                return login_page(
                    401, "That name and password do not match an active operator.", target
                )
            who = Who(found.name, found.role, secrets.token_urlsafe(18))
        log.info("console_login", ok=True, operator=who.name, role=who.role)
        response = redirect(target, code=303)
        g.who = who  # the after-request hook sets the cookie
        return response

    @bp.post("/logout")
    def logout() -> BaseResponse:
        response = redirect("/console/login", code=303)
        response.delete_cookie(COOKIE, path="/console/")
        return response
