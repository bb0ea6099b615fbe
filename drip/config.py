"""Settings from ``DRIP_*`` environment variables (and Twilio's own), read once.

Nothing here reads the environment at import time: an entry point calls
``Settings.from_env()`` once and passes the value down. Folders are not created
here either; ``bootstrap`` does that when it needs them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from email.utils import parseaddr
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from drip.errors import ConfigError
from drip.logging import LOG_FORMATS, LOG_LEVELS

#: Signs unsubscribe tokens when DRIP_SECRET_KEY is unset. Fixed rather than
#: random so that links already e-mailed keep working across restarts; bootstrap
#: warns when it is used outside embedded mode.
DEV_SECRET_KEY: Final = "drip-dev-secret-key-do-not-use-in-production"  # noqa: S105 - public on purpose

DEFAULT_HOME: Final = Path(".drip")
DEFAULT_PUBLIC_URL: Final = "http://127.0.0.1:8000"
DEFAULT_EMAIL_FROM: Final = "drip@localhost"

BROKER_SCHEMES: Final = ("redis", "rediss", "amqp", "amqps")
SMTP_SCHEMES: Final = ("smtp", "smtps")

#: Every variable ``Settings.from_env`` reads, in the order of the table below.
ENV_VARS: Final = (
    "DRIP_HOME",
    "DRIP_DATABASE_URL",
    "DRIP_DATABASE_PGBOUNCER",
    "DRIP_BROKER_URL",
    "DRIP_RESULT_BACKEND",
    "DRIP_TICK_SECONDS",
    "DRIP_DISPATCH_BATCH",
    "DRIP_SEND_BATCH",
    "DRIP_SENDING_TIMEOUT_SECONDS",
    "DRIP_CAMPAIGNS_DIR",
    "DRIP_PUBLIC_URL",
    "DRIP_API_TOKEN",
    "DRIP_SECRET_KEY",
    "DRIP_SMTP_URL",
    "DRIP_EMAIL_FROM",
    "DRIP_LOG_FORMAT",
    "DRIP_LOG_LEVEL",
    "DRIP_OUTBOX",
    "DRIP_WEB_SPOOL",
    "DRIP_TWILIO_BASE_URL",
    "DRIP_DEFAULT_TIMEZONE",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "DRIP_CONSOLE_TOKEN",
)

_SECRET_FIELDS: Final = frozenset({"api_token", "secret_key", "twilio_auth_token", "console_token"})
_CREDENTIALS_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _redact(raw: str) -> str:
    """``raw`` with any password between ``user:`` and ``@`` replaced by ``***``."""
    return _CREDENTIALS_IN_URL.sub(r"\1***@", raw)


def _invalid(name: str, value: object, expected: str) -> ConfigError:
    shown = _redact(value) if isinstance(value, str) else value
    return ConfigError(f"{name}={shown!r} is not valid: expected {expected}")


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Process settings. With no variable set, drip runs embedded: SQLite, no broker, console.

    An empty variable counts as unset. Relative paths are relative to the
    working directory.

    | variable | default | meaning |
    |---|---|---|
    | `DRIP_HOME` | `./.drip` | the embedded data folder (SQLite file, outbox); created on demand |
    | `DRIP_DATABASE_URL` | `sqlite:///` + `DRIP_HOME/drip.db` | SQLAlchemy URL of the database; `postgresql://` and `postgres://` mean `postgresql+psycopg://` |
    | `DRIP_DATABASE_PGBOUNCER` | `0` | `1` when PostgreSQL is reached through PgBouncer in transaction pooling: no statement is prepared on the server |
    | `DRIP_BROKER_URL` | unset: embedded, no broker | Celery broker: `redis://`, `rediss://`, `amqp://` or `amqps://` |
    | `DRIP_RESULT_BACKEND` | unset: no results kept | Celery result backend URL |
    | `DRIP_TICK_SECONDS` | `15` | seconds between two dispatches of due sends |
    | `DRIP_DISPATCH_BATCH` | `500` | most due sends claimed by one dispatch |
    | `DRIP_SEND_BATCH` | `50` | send ids handed to one fire task |
    | `DRIP_SENDING_TIMEOUT_SECONDS` | `300` | a send left in `sending` longer than this becomes `unknown` (reported, never resent) |
    | `DRIP_CAMPAIGNS_DIR` | `campaigns` | folder of campaign YAML files and `account.yaml` |
    | `DRIP_PUBLIC_URL` | `http://127.0.0.1:8000` | base URL at which Twilio reaches the webhook app; used to check signatures and build status callback URLs |
    | `DRIP_API_TOKEN` | unset: `POST /contacts` refuses every request | bearer token for `POST /contacts` |
    | `DRIP_SECRET_KEY` | a fixed development key (warned about outside embedded mode) | signs e-mail unsubscribe links; keep it stable or old links break |
    | `DRIP_SMTP_URL` | unset: e-mail printed to the console | `smtp://user:password@host:port` or `smtps://...` |
    | `DRIP_EMAIL_FROM` | `drip@localhost` | sender address of e-mail steps |
    | `DRIP_LOG_FORMAT` | `auto` | `auto` (console on a terminal, JSON otherwise), `json` or `console` |
    | `DRIP_LOG_LEVEL` | `INFO` | `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL` |
    | `DRIP_OUTBOX` | `DRIP_HOME/outbox.jsonl` | file where the console transport appends every message it "sends" |
    | `DRIP_WEB_SPOOL` | `DRIP_HOME/web-spool.db` | SQLite journal of signed Twilio webhooks accepted while the database was down, applied in order once it is back; keep it on persistent storage |
    | `DRIP_TWILIO_BASE_URL` | unset: Twilio's own API | another base URL for the Twilio SDK (a fake Twilio server in tests) |
    | `DRIP_DEFAULT_TIMEZONE` | unset: `default_timezone` of `account.yaml` | IANA zone overriding the account's default zone |
    | `TWILIO_ACCOUNT_SID` | unset | Twilio account; with `TWILIO_AUTH_TOKEN`, texts go through Twilio |
    | `TWILIO_AUTH_TOKEN` | unset | Twilio auth token; also checks webhook signatures. Set both Twilio variables or neither |
    | `DRIP_CONSOLE_TOKEN` | unset: no console | token of the read-only console under `/console/` (login form or `Authorization: Bearer`) |
    """  # noqa: E501 - a Markdown table, copied into the README as is

    home: Path = DEFAULT_HOME
    database_url: str = _sqlite_url(DEFAULT_HOME / "drip.db")
    database_pgbouncer: bool = False
    broker_url: str | None = None
    result_backend: str | None = None
    tick_seconds: int = 15
    dispatch_batch: int = 500
    send_batch: int = 50
    sending_timeout_seconds: int = 300
    campaigns_dir: Path = Path("campaigns")
    public_url: str = DEFAULT_PUBLIC_URL
    api_token: str | None = None
    secret_key: str = DEV_SECRET_KEY
    smtp_url: str | None = None
    email_from: str = DEFAULT_EMAIL_FROM
    log_format: str = "auto"
    log_level: str = "INFO"
    outbox: Path = DEFAULT_HOME / "outbox.jsonl"
    #: None: ``home / "web-spool.db"`` (:attr:`web_spool_path`), wherever ``home`` is.
    web_spool: Path | None = None
    twilio_base_url: str | None = None
    default_timezone: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    console_token: str | None = None

    def __post_init__(self) -> None:
        _check_database_url(self.database_url)
        if self.broker_url is not None:
            _check_broker_url(self.broker_url)
        if self.result_backend is not None and not _URL_SCHEME.match(self.result_backend):
            raise _invalid(
                "DRIP_RESULT_BACKEND", self.result_backend, "a URL such as redis://host:6379/1"
            )
        for name, number in (
            ("DRIP_TICK_SECONDS", self.tick_seconds),
            ("DRIP_DISPATCH_BATCH", self.dispatch_batch),
            ("DRIP_SEND_BATCH", self.send_batch),
            ("DRIP_SENDING_TIMEOUT_SECONDS", self.sending_timeout_seconds),
        ):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise _invalid(name, number, "a whole number greater than 0")
        _check_http_url("DRIP_PUBLIC_URL", self.public_url)
        if self.twilio_base_url is not None:
            _check_http_url("DRIP_TWILIO_BASE_URL", self.twilio_base_url)
        if self.smtp_url is not None:
            _check_smtp_url(self.smtp_url)
        if "@" not in parseaddr(self.email_from)[1]:
            raise _invalid(
                "DRIP_EMAIL_FROM", self.email_from, "an e-mail address such as drip@example.com"
            )
        if self.log_format not in LOG_FORMATS:
            raise _invalid("DRIP_LOG_FORMAT", self.log_format, "one of " + ", ".join(LOG_FORMATS))
        if self.log_level not in LOG_LEVELS:
            raise _invalid("DRIP_LOG_LEVEL", self.log_level, "one of " + ", ".join(LOG_LEVELS))
        if self.default_timezone is not None:
            _check_timezone("DRIP_DEFAULT_TIMEZONE", self.default_timezone)
        if not self.secret_key:
            raise _invalid("DRIP_SECRET_KEY", "", "a non-empty secret")
        if (self.twilio_account_sid is None) != (self.twilio_auth_token is None):
            have, missing = (
                ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
                if self.twilio_auth_token is None
                else ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID")
            )
            raise ConfigError(
                f"{have} is set but {missing} is not: set both to send through Twilio, "
                "or neither to use the console transport"
            )

    def __repr__(self) -> str:
        """Every field, with tokens and keys hidden and passwords cut out of URLs."""
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _SECRET_FIELDS and value is not None:
                value = "***"
            elif isinstance(value, str):
                value = _redact(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read every setting from ``environ`` once; an empty value counts as unset.

        Raises ``ConfigError`` naming the variable, its value and what is expected.
        """

        def get(name: str) -> str | None:
            value = environ.get(name)
            if value is None:
                return None
            value = value.strip()
            return value or None

        def number(name: str, default: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) < 1:
                raise _invalid(name, raw, "a whole number greater than 0")
            return int(raw)

        def flag(name: str) -> bool:
            raw = get(name)
            if raw is None or raw.lower() in _FALSE:
                return False
            if raw.lower() in _TRUE:
                return True
            raise _invalid(name, raw, "1 or 0")

        home = Path(get("DRIP_HOME") or DEFAULT_HOME).expanduser()
        raw_db = get("DRIP_DATABASE_URL")
        database_url = _normalise_database_url(raw_db) if raw_db else _sqlite_url(home / "drip.db")
        outbox = get("DRIP_OUTBOX")
        web_spool = get("DRIP_WEB_SPOOL")
        log_format = get("DRIP_LOG_FORMAT")
        log_level = get("DRIP_LOG_LEVEL")
        if log_level is not None and log_level.upper() == "WARN":
            log_level = "WARNING"
        public_url = get("DRIP_PUBLIC_URL") or DEFAULT_PUBLIC_URL
        twilio_base_url = get("DRIP_TWILIO_BASE_URL")
        return cls(
            home=home,
            database_url=database_url,
            database_pgbouncer=flag("DRIP_DATABASE_PGBOUNCER"),
            broker_url=get("DRIP_BROKER_URL"),
            result_backend=get("DRIP_RESULT_BACKEND"),
            tick_seconds=number("DRIP_TICK_SECONDS", 15),
            dispatch_batch=number("DRIP_DISPATCH_BATCH", 500),
            send_batch=number("DRIP_SEND_BATCH", 50),
            sending_timeout_seconds=number("DRIP_SENDING_TIMEOUT_SECONDS", 300),
            campaigns_dir=Path(get("DRIP_CAMPAIGNS_DIR") or "campaigns").expanduser(),
            public_url=public_url.rstrip("/"),
            api_token=get("DRIP_API_TOKEN"),
            secret_key=get("DRIP_SECRET_KEY") or DEV_SECRET_KEY,
            smtp_url=get("DRIP_SMTP_URL"),
            email_from=get("DRIP_EMAIL_FROM") or DEFAULT_EMAIL_FROM,
            log_format=log_format.lower() if log_format else "auto",
            log_level=log_level.upper() if log_level else "INFO",
            outbox=Path(outbox).expanduser() if outbox else home / "outbox.jsonl",
            web_spool=Path(web_spool).expanduser() if web_spool else None,
            twilio_base_url=twilio_base_url.rstrip("/") if twilio_base_url else None,
            default_timezone=get("DRIP_DEFAULT_TIMEZONE"),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
            console_token=get("DRIP_CONSOLE_TOKEN"),
        )

    @property
    def embedded(self) -> bool:
        """True without a broker: dispatch and sending run inside the drip process."""
        return self.broker_url is None

    @property
    def web_spool_path(self) -> Path:
        """The webhook spool's SQLite file: ``DRIP_WEB_SPOOL``, else ``web-spool.db`` in the home."""
        return self.web_spool if self.web_spool is not None else self.home / "web-spool.db"

    @property
    def twilio_enabled(self) -> bool:
        """True when both Twilio credentials are set: texts go through Twilio."""
        return self.twilio_account_sid is not None and self.twilio_auth_token is not None

    @property
    def secret_key_is_default(self) -> bool:
        """True when unsubscribe links are signed with the public development key."""
        return self.secret_key == DEV_SECRET_KEY

    @property
    def status_callback_url(self) -> str:
        """The URL Twilio posts delivery status to (``POST /twilio/status``)."""
        return f"{self.public_url}/twilio/status"

    def describe(self) -> dict[str, str]:
        """Each variable and the value in effect, safe to print: secrets and passwords hidden."""

        def secret(value: str | None) -> str:
            return "(set)" if value else "(unset)"

        def optional(value: object) -> str:
            return "(unset)" if value is None else str(value)

        return {
            "DRIP_HOME": str(self.home),
            "DRIP_DATABASE_URL": _redact(self.database_url),
            "DRIP_DATABASE_PGBOUNCER": "1" if self.database_pgbouncer else "0",
            "DRIP_BROKER_URL": _redact(self.broker_url) if self.broker_url else "(unset)",
            "DRIP_RESULT_BACKEND": (
                _redact(self.result_backend) if self.result_backend else "(unset)"
            ),
            "DRIP_TICK_SECONDS": str(self.tick_seconds),
            "DRIP_DISPATCH_BATCH": str(self.dispatch_batch),
            "DRIP_SEND_BATCH": str(self.send_batch),
            "DRIP_SENDING_TIMEOUT_SECONDS": str(self.sending_timeout_seconds),
            "DRIP_CAMPAIGNS_DIR": str(self.campaigns_dir),
            "DRIP_PUBLIC_URL": self.public_url,
            "DRIP_API_TOKEN": secret(self.api_token),
            "DRIP_SECRET_KEY": "(development key)" if self.secret_key_is_default else "(set)",
            "DRIP_SMTP_URL": _redact(self.smtp_url) if self.smtp_url else "(unset)",
            "DRIP_EMAIL_FROM": self.email_from,
            "DRIP_LOG_FORMAT": self.log_format,
            "DRIP_LOG_LEVEL": self.log_level,
            "DRIP_OUTBOX": str(self.outbox),
            "DRIP_WEB_SPOOL": str(self.web_spool_path),
            "DRIP_TWILIO_BASE_URL": optional(self.twilio_base_url),
            "DRIP_DEFAULT_TIMEZONE": optional(self.default_timezone),
            "TWILIO_ACCOUNT_SID": optional(self.twilio_account_sid),
            "TWILIO_AUTH_TOKEN": secret(self.twilio_auth_token),
            "DRIP_CONSOLE_TOKEN": secret(self.console_token),
        }


_DB_EXPECTED = (
    "a SQLAlchemy URL such as postgresql+psycopg://user:password@host/db or sqlite:///path"
)


def _parse_database_url(raw: str) -> URL:
    try:
        return make_url(raw)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise _invalid("DRIP_DATABASE_URL", raw, _DB_EXPECTED) from exc


def _normalise_database_url(raw: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3, the driver drip installs."""
    url = _parse_database_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return raw


def _check_database_url(raw: str) -> None:
    url = _parse_database_url(raw)
    try:
        url.get_dialect()
    except NoSuchModuleError as exc:
        raise _invalid(
            "DRIP_DATABASE_URL",
            raw,
            f"a known database ({url.drivername!r} is not); {_DB_EXPECTED}",
        ) from exc


def _check_broker_url(raw: str) -> None:
    expected = "a broker URL starting with " + ", ".join(f"{s}://" for s in BROKER_SCHEMES)
    parts = urlsplit(raw)
    if parts.scheme.lower() not in BROKER_SCHEMES or not raw.lower().startswith(
        parts.scheme.lower() + "://"
    ):
        raise _invalid("DRIP_BROKER_URL", raw, expected)
    try:
        _ = parts.port  # reading the port is what validates it
    except ValueError as exc:
        raise _invalid("DRIP_BROKER_URL", raw, expected + " and a numeric port") from exc


def _check_http_url(name: str, raw: str) -> None:
    parts = urlsplit(raw)
    expected = "an http:// or https:// URL with a host, such as https://drip.example.com"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(name, raw, expected)
    try:
        _ = parts.port  # reading the port is what validates it
    except ValueError as exc:
        raise _invalid(name, raw, expected) from exc


def _check_smtp_url(raw: str) -> None:
    parts = urlsplit(raw)
    expected = "smtp://[user:password@]host[:port] or smtps://[user:password@]host[:port]"
    if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise _invalid("DRIP_SMTP_URL", raw, expected)
    try:
        _ = parts.port  # reading the port is what validates it
    except ValueError as exc:
        raise _invalid("DRIP_SMTP_URL", raw, expected) from exc


def _check_timezone(name: str, key: str) -> None:
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _invalid(name, key, "an IANA time zone such as America/New_York") from exc
