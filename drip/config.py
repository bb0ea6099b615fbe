"""Settings from ``DRIP_*`` environment variables (and Twilio's own), read once.

Nothing here reads the environment at import time: an entry point calls
``Settings.from_env()`` once and passes the value down. Folders are not created
here either; ``bootstrap`` does that when it needs them.

Every variable is one row of :data:`VARIABLES` (its name, ``Settings`` field,
reading, default, check, display and one-line doc); ``Settings``, its
``from_env`` and ``describe``, and the documentation's table
(``python -m drip.config --markdown``) are all made from that table. To add a
setting, add a row and a field of the same name.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Final
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

_CREDENTIALS_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_WHOLE_NUMBER = re.compile(r"[0-9]+")


def _redact(raw: str) -> str:
    """``raw`` with any password between ``user:`` and ``@`` replaced by ``***``."""
    return _CREDENTIALS_IN_URL.sub(r"\1***@", raw)


def _invalid(name: str, value: object, expected: str) -> ConfigError:
    shown = _redact(value) if isinstance(value, str) else value
    return ConfigError(f"{name}={shown!r} is not valid: expected {expected}")


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# -- reading a value (``name``, the stripped non-empty text) ---------------------------


def _text(_name: str, raw: str) -> str:
    return raw


def _path(_name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _url(_name: str, raw: str) -> str:
    return raw.rstrip("/")


def _lower(_name: str, raw: str) -> str:
    return raw.lower()


def _level(_name: str, raw: str) -> str:
    return "WARNING" if raw.upper() == "WARN" else raw.upper()


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _flag(name: str, raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _invalid(name, raw, "1 or 0")


def _whole_number(name: str, raw: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) < 1:
        raise _invalid(name, raw, "a whole number greater than 0")
    return int(raw)


def _count(name: str, raw: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise _invalid(name, raw, "a whole number, 0 or more")
    return int(raw)


def _database_url(_name: str, raw: str) -> str:
    return _normalise_database_url(raw)


# -- checking a value (``name``, the value; raises ConfigError) -------------------------


def _check_number(name: str, number: object) -> None:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise _invalid(name, number, "a whole number greater than 0")


def _check_result_backend(name: str, raw: str) -> None:
    if not _URL_SCHEME.match(raw):
        raise _invalid(name, raw, "a URL such as redis://host:6379/1")


def _check_email(name: str, raw: str) -> None:
    if "@" not in parseaddr(raw)[1]:
        raise _invalid(name, raw, "an e-mail address such as drip@example.com")


def _check_log_format(name: str, raw: str) -> None:
    if raw not in LOG_FORMATS:
        raise _invalid(name, raw, "one of " + ", ".join(LOG_FORMATS))


def _check_log_level(name: str, raw: str) -> None:
    if raw not in LOG_LEVELS:
        raise _invalid(name, raw, "one of " + ", ".join(LOG_LEVELS))


def _check_secret(name: str, raw: str) -> None:
    if not raw:
        raise _invalid(name, "", "a non-empty secret")


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


# -- showing a value (``describe``: safe to print, secrets hidden) ----------------------


def _show(value: object) -> str:
    return "(unset)" if value is None else str(value)


def _show_url(value: object) -> str:
    return _redact(value) if isinstance(value, str) and value else "(unset)"


def _show_flag(value: object) -> str:
    return "1" if value else "0"


def _show_secret(value: object) -> str:
    return "(set)" if value else "(unset)"


def _show_signing_key(value: object) -> str:
    return "(development key)" if value == DEV_SECRET_KEY else "(set)"


#: Who needs a variable: every way of running drip, or one of them.
EVERY_MODE: Final = "every mode"
NEEDED_BY: Final = (EVERY_MODE, "embedded", "scale-out", "web app", "Twilio", "e-mail", "tests")


@dataclass(frozen=True, slots=True)
class Variable:
    """One setting: its environment variable, its ``Settings`` field, and how it is read.

    ``parse`` turns the variable's text (stripped; empty means unset) into the
    value, ``default`` is the value when unset (``in_home``: a default under
    ``DRIP_HOME`` instead), ``check`` validates a value however it was made
    (``from_env`` or the constructor), ``show`` prints it with secrets hidden.
    """

    env: str
    field: str
    doc: str
    default_doc: str
    needed_by: str = EVERY_MODE
    default: object = None
    in_home: Callable[[Path], object] | None = None
    parse: Callable[[str, str], object] = _text
    check: Callable[[str, Any], None] | None = None
    show: Callable[[object], str] = _show
    secret: bool = False

    def default_for(self, home: Path) -> object:
        """The value when the variable is unset, given the home folder in effect."""
        return self.in_home(home) if self.in_home is not None else self.default


#: Every setting, in the order of the documentation's table. ``Settings``, its
#: ``from_env`` and ``describe``, and :func:`markdown_table` all come from here.
VARIABLES: Final[tuple[Variable, ...]] = (
    Variable(
        "DRIP_HOME",
        "home",
        "the embedded data folder (SQLite file, outbox); created on demand",
        "`.drip` (in the working directory)",
        needed_by="embedded",
        default=DEFAULT_HOME,
        parse=_path,
    ),
    Variable(
        "DRIP_DATABASE_URL",
        "database_url",
        "SQLAlchemy URL of the database; `postgresql://` and `postgres://` mean "
        "`postgresql+psycopg://`",
        "`sqlite:///` + `DRIP_HOME/drip.db`",
        in_home=lambda home: _sqlite_url(home / "drip.db"),
        parse=_database_url,
        check=lambda _name, raw: _check_database_url(raw),
        show=_show_url,
    ),
    Variable(
        "DRIP_DATABASE_PGBOUNCER",
        "database_pgbouncer",
        "`1` when PostgreSQL is reached through PgBouncer in transaction pooling: psycopg "
        "prepares no statement on the server (otherwise after 5 runs on a connection)",
        "`0`",
        needed_by="scale-out",
        default=False,
        parse=_flag,
        show=_show_flag,
    ),
    Variable(
        "DRIP_BROKER_URL",
        "broker_url",
        "Celery broker: `redis://`, `rediss://`, `amqp://` or `amqps://`",
        "unset: embedded, no broker",
        needed_by="scale-out",
        check=lambda _name, raw: _check_broker_url(raw),
        show=_show_url,
    ),
    Variable(
        "DRIP_RESULT_BACKEND",
        "result_backend",
        "Celery result backend URL",
        "unset: no results kept",
        needed_by="scale-out",
        check=_check_result_backend,
        show=_show_url,
    ),
    Variable(
        "DRIP_TICK_SECONDS",
        "tick_seconds",
        "seconds between two dispatches of due sends",
        "`15`",
        default=15,
        parse=_whole_number,
        check=_check_number,
    ),
    Variable(
        "DRIP_DISPATCH_BATCH",
        "dispatch_batch",
        "most due sends claimed by one dispatch",
        "`500`",
        default=500,
        parse=_whole_number,
        check=_check_number,
    ),
    Variable(
        "DRIP_SEND_BATCH",
        "send_batch",
        "send ids handed to one fire task",
        "`50`",
        default=50,
        parse=_whole_number,
        check=_check_number,
    ),
    Variable(
        "DRIP_SENDING_TIMEOUT_SECONDS",
        "sending_timeout_seconds",
        "a send left in `sending` longer than this becomes `unknown` (reported, never resent)",
        "`300`",
        default=300,
        parse=_whole_number,
        check=_check_number,
    ),
    Variable(
        "DRIP_LOOKUP_TIMEOUT_SECONDS",
        "lookup_timeout_seconds",
        "how long a reassigned-numbers check (Twilio Lookup) may take; past it the check "
        "has no answer and `reassigned_numbers.on_unknown` decides",
        "`5`",
        default=5,
        parse=_whole_number,
        check=_check_number,
    ),
    Variable(
        "DRIP_CAMPAIGNS_DIR",
        "campaigns_dir",
        "folder of campaign YAML files and `account.yaml`",
        "`campaigns`",
        default=Path("campaigns"),
        parse=_path,
    ),
    Variable(
        "DRIP_PUBLIC_URL",
        "public_url",
        "base URL at which Twilio reaches the webhook app; used to check signatures and "
        "build status callback URLs",
        f"`{DEFAULT_PUBLIC_URL}`",
        needed_by="web app",
        default=DEFAULT_PUBLIC_URL,
        parse=_url,
        check=_check_http_url,
    ),
    Variable(
        "DRIP_TRUSTED_PROXIES",
        "trusted_proxies",
        "how many reverse proxies in front of the web app add `X-Forwarded-For`; the "
        "console's login limits then count the client's address they name",
        "`0`: the connecting address",
        needed_by="web app",
        default=0,
        parse=_count,
    ),
    Variable(
        "DRIP_API_TOKEN",
        "api_token",
        "bearer token for `POST /contacts`",
        "unset: `POST /contacts` refuses every request",
        needed_by="web app",
        show=_show_secret,
        secret=True,
    ),
    Variable(
        "DRIP_SECRET_KEY",
        "secret_key",
        "signs e-mail unsubscribe links and console sessions; keep it stable or old links break",
        "a fixed development key (warned about outside embedded mode)",
        default=DEV_SECRET_KEY,
        check=_check_secret,
        show=_show_signing_key,
        secret=True,
    ),
    Variable(
        "DRIP_SMTP_URL",
        "smtp_url",
        "`smtp://user:password@host:port` or `smtps://...`",
        "unset: e-mail printed to the console",
        needed_by="e-mail",
        check=lambda _name, raw: _check_smtp_url(raw),
        show=_show_url,
    ),
    Variable(
        "DRIP_EMAIL_FROM",
        "email_from",
        "sender address of e-mail steps",
        f"`{DEFAULT_EMAIL_FROM}`",
        needed_by="e-mail",
        default=DEFAULT_EMAIL_FROM,
        check=_check_email,
    ),
    Variable(
        "DRIP_LOG_FORMAT",
        "log_format",
        "`auto` (console on a terminal, JSON otherwise), `json` or `console`",
        "`auto`",
        default="auto",
        parse=_lower,
        check=_check_log_format,
    ),
    Variable(
        "DRIP_LOG_LEVEL",
        "log_level",
        "`DEBUG`, `INFO`, `WARNING` (or `WARN`), `ERROR` or `CRITICAL`",
        "`INFO` (`WARNING` for one-shot `drip` commands)",
        default="INFO",
        parse=_level,
        check=_check_log_level,
    ),
    Variable(
        "DRIP_OUTBOX",
        "outbox",
        'file where the console transport appends every message it "sends"',
        "`DRIP_HOME/outbox.jsonl`",
        in_home=lambda home: home / "outbox.jsonl",
        parse=_path,
    ),
    Variable(
        "DRIP_WEB_SPOOL",
        "web_spool",
        "SQLite journal of signed Twilio webhooks accepted while the database was down, "
        "applied in order once it is back; keep it on persistent storage",
        "in `DRIP_HOME`: `web-spool.db`",
        needed_by="web app",
        parse=_path,
    ),
    Variable(
        "DRIP_TWILIO_BASE_URL",
        "twilio_base_url",
        "another base URL for the Twilio SDK (a fake Twilio server in tests)",
        "unset: Twilio's own API",
        needed_by="tests",
        parse=_url,
        check=_check_http_url,
    ),
    Variable(
        "DRIP_DEFAULT_TIMEZONE",
        "default_timezone",
        "IANA zone overriding the account's default zone",
        "unset: `default_timezone` of `account.yaml`",
        check=_check_timezone,
    ),
    Variable(
        "TWILIO_ACCOUNT_SID",
        "twilio_account_sid",
        "Twilio account; with `TWILIO_AUTH_TOKEN`, texts go through Twilio",
        "unset",
        needed_by="Twilio",
    ),
    Variable(
        "TWILIO_AUTH_TOKEN",
        "twilio_auth_token",
        "Twilio auth token; also checks webhook signatures. Set both Twilio variables or neither",
        "unset",
        needed_by="Twilio",
        show=_show_secret,
        secret=True,
    ),
    Variable(
        "DRIP_METRICS_PORT",
        "metrics_port",
        "port on which a Celery worker serves `/metrics` (its pool's counters and circuits); "
        "the web app always serves `/metrics`",
        "unset: the worker serves none",
        needed_by="scale-out",
        parse=_whole_number,
        check=_check_number,
    ),
    Variable(
        "PROMETHEUS_MULTIPROC_DIR",
        "prometheus_multiproc_dir",
        "prometheus-client's folder of per-process metric files: set it (to an empty folder, "
        "emptied at each start) for gunicorn's workers and the Celery pool, so `/metrics` adds "
        "up every process",
        "unset: each process reports its own",
        needed_by="scale-out",
        parse=_path,
    ),
    Variable(
        "DRIP_CONSOLE_TOKEN",
        "console_token",
        "read-only key of the console under `/console/` (login form or `Authorization: Bearer`): "
        "every page and the audit export, no action",
        "unset: only named operators (`drip operators add`) open the console",
        needed_by="web app",
        show=_show_secret,
        secret=True,
    ),
)

#: Every variable ``Settings.from_env`` reads, in the order of the table.
ENV_VARS: Final = tuple(v.env for v in VARIABLES)
_DEFAULTS: Final[dict[str, Any]] = {v.field: v.default_for(DEFAULT_HOME) for v in VARIABLES}


def markdown_table() -> str:
    """The settings as a Markdown table (variable, default, who needs it, meaning)."""
    lines = ["| variable | default | needed by | meaning |", "|---|---|---|---|"]
    lines += [f"| `{v.env}` | {v.default_doc} | {v.needed_by} | {v.doc} |" for v in VARIABLES]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Settings:
    """Process settings. With no variable set, drip runs embedded: SQLite, no broker, console.

    An empty variable counts as unset. Relative paths are relative to the
    working directory. Each field is one variable of :data:`VARIABLES`, where
    its default, its reading and its documentation live
    (``python -m drip.config --markdown`` prints the table, as in
    docs/operations.md).
    """

    home: Path = _DEFAULTS["home"]
    database_url: str = _DEFAULTS["database_url"]
    database_pgbouncer: bool = _DEFAULTS["database_pgbouncer"]
    broker_url: str | None = _DEFAULTS["broker_url"]
    result_backend: str | None = _DEFAULTS["result_backend"]
    tick_seconds: int = _DEFAULTS["tick_seconds"]
    dispatch_batch: int = _DEFAULTS["dispatch_batch"]
    send_batch: int = _DEFAULTS["send_batch"]
    sending_timeout_seconds: int = _DEFAULTS["sending_timeout_seconds"]
    lookup_timeout_seconds: int = _DEFAULTS["lookup_timeout_seconds"]
    campaigns_dir: Path = _DEFAULTS["campaigns_dir"]
    public_url: str = _DEFAULTS["public_url"]
    trusted_proxies: int = _DEFAULTS["trusted_proxies"]
    api_token: str | None = _DEFAULTS["api_token"]
    secret_key: str = _DEFAULTS["secret_key"]
    smtp_url: str | None = _DEFAULTS["smtp_url"]
    email_from: str = _DEFAULTS["email_from"]
    log_format: str = _DEFAULTS["log_format"]
    log_level: str = _DEFAULTS["log_level"]
    outbox: Path = _DEFAULTS["outbox"]
    #: None: ``home / "web-spool.db"`` (:attr:`web_spool_path`), wherever ``home`` is.
    web_spool: Path | None = _DEFAULTS["web_spool"]
    twilio_base_url: str | None = _DEFAULTS["twilio_base_url"]
    default_timezone: str | None = _DEFAULTS["default_timezone"]
    twilio_account_sid: str | None = _DEFAULTS["twilio_account_sid"]
    twilio_auth_token: str | None = _DEFAULTS["twilio_auth_token"]
    metrics_port: int | None = _DEFAULTS["metrics_port"]
    prometheus_multiproc_dir: Path | None = _DEFAULTS["prometheus_multiproc_dir"]
    console_token: str | None = _DEFAULTS["console_token"]

    def __post_init__(self) -> None:
        for variable in VARIABLES:
            value = getattr(self, variable.field)
            if variable.check is not None and value is not None:
                variable.check(variable.env, value)
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
        for variable in VARIABLES:
            value = getattr(self, variable.field)
            if variable.secret and value is not None:
                value = "***"
            elif isinstance(value, str):
                value = _redact(value)
            shown.append(f"{variable.field}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read every setting from ``environ`` once; an empty value counts as unset.

        Raises ``ConfigError`` naming the variable, its value and what is expected.
        """
        raw: dict[str, str] = {}
        for variable in VARIABLES:
            value = environ.get(variable.env)
            if value is not None and value.strip():
                raw[variable.env] = value.strip()
        values: dict[str, Any] = {}
        for variable in VARIABLES:  # DRIP_HOME first: other defaults are inside it
            text = raw.get(variable.env)
            if text is not None:
                values[variable.field] = variable.parse(variable.env, text)
            else:
                values[variable.field] = variable.default_for(values.get("home", DEFAULT_HOME))
        return cls(**values)

    @property
    def web_spool_path(self) -> Path:
        """The webhook spool's SQLite file: ``DRIP_WEB_SPOOL``, else ``web-spool.db`` in the home."""
        return self.web_spool if self.web_spool is not None else self.home / "web-spool.db"

    @property
    def embedded(self) -> bool:
        """True without a broker: dispatch and sending run inside the drip process."""
        return self.broker_url is None

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
        return {v.env: v.show(getattr(self, v.field)) for v in VARIABLES}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m drip.config``: the settings in effect, or ``--markdown``: their table."""
    parser = argparse.ArgumentParser(
        prog="python -m drip.config",
        description="Print the settings in effect (secrets hidden), or the table of variables.",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print every variable as a Markdown table"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    for name, value in Settings.from_env().describe().items():
        sys.stdout.write(f"{name}={value}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
