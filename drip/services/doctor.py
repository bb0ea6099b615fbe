"""``drip doctor``: is this deployment wired right? One check, one line, each.

Checks, in order (docs/operations.md, "drip doctor"):

- ``mode``: embedded or scaled out, and what a scaled-out drip must not run
  with (SQLite, the public development secret key);
- ``database``: reachable and at the shipped migration head (embedded, a
  database not created yet is a note: ``drip db upgrade`` creates it);
- ``broker``: reachable, when ``DRIP_BROKER_URL`` is set;
- ``twilio``: the credentials work (one authenticated request: the account);
  unset, a note when embedded (texts go to the console), a failure when scaled out;
- ``public url``: https outside embedded mode, and the webhook path answers
  from this host (embedded and not running, a note);
- ``clock``: within :data:`MAX_CLOCK_SKEW_SECONDS` of the database's;
- ``dispatch``: the last dispatch tick, when the database has one (scaled
  out, older than two minutes is a failure: beat or its worker is down);
- ``web spool``, ``outbox file``, ``metrics dir``: writable; the spool not
  holding webhooks the database could take;
- ``webhook outbox``: no event waiting longer than :data:`BACKLOG_SECONDS`;
- ``lead events``: none stored and not applied for longer than the retake delay
  (ten minutes: a process stopped between storing and applying them);
- ``account``: ``account.yaml`` and the campaigns lint without errors.

Nothing is created or changed: folders that do not exist yet are judged by
the nearest one that does.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from drip.config import Settings
from drip.errors import DripError

if TYPE_CHECKING:
    from drip.store.gauges import Gauges

__all__ = ["BACKLOG_SECONDS", "MAX_CLOCK_SKEW_SECONDS", "Check", "run_checks"]

#: Most seconds between this host's clock and the database's.
MAX_CLOCK_SKEW_SECONDS: Final = 2.0
#: A webhook event or a spooled webhook waiting longer than this is a backlog.
BACKLOG_SECONDS: Final = 900.0
#: A scaled-out dispatch tick older than this means beat (or its worker) is down.
TICK_SILENT_SECONDS: Final = 120.0
#: Seconds each network probe (broker, Twilio, the webhook URL) may take.
TIMEOUT: Final = 5.0

OK: Final = "ok"
FAIL: Final = "FAIL"
NOTE: Final = "note"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: ``status`` is ok, FAIL or note (skipped, or fine with a remark)."""

    name: str
    status: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<5} {self.name}: {self.detail}"


Wall = Callable[[], datetime]


def run_checks(settings: Settings, wall: Wall) -> list[Check]:
    """Every check of the module docstring for ``settings``; ``wall`` reads this host's clock."""
    return list(_checks(settings, wall))


def _checks(settings: Settings, wall: Wall) -> Iterator[Check]:
    yield _mode(settings)
    engine, database = _database(settings)
    yield database
    if settings.broker_url is not None:
        yield _broker(settings.broker_url, settings.describe()["DRIP_BROKER_URL"])
    else:
        yield Check("broker", NOTE, "none: embedded (drip run dispatches and sends in-process)")
    yield _twilio(settings)
    yield _public_url(settings)
    if engine is not None:
        try:
            yield _clock(engine, wall)
            yield from _backlogs(settings, engine, wall)
        finally:
            engine.dispose()
    yield _writable("web spool", settings.web_spool_path)
    yield _spool_backlog(settings)
    yield _writable("outbox file", settings.outbox)
    if settings.prometheus_multiproc_dir is not None:
        yield _writable("metrics dir", settings.prometheus_multiproc_dir / "probe", folder=True)
    yield _account(settings)


def _mode(settings: Settings) -> Check:
    if settings.embedded:
        return Check("mode", OK, "embedded: SQLite or PostgreSQL, no broker, one process")
    wrong = []
    if settings.database_url.startswith("sqlite"):
        wrong.append("DRIP_DATABASE_URL is SQLite: a scaled-out drip needs PostgreSQL")
    if settings.secret_key_is_default:
        wrong.append("DRIP_SECRET_KEY is unset: unsubscribe links are signed with a public key")
    if wrong:
        return Check("mode", FAIL, "scaled out (broker set), but " + "; ".join(wrong))
    return Check("mode", OK, "scaled out: PostgreSQL, a broker, Celery workers and one beat")


def _database(settings: Settings) -> tuple[Engine | None, Check]:
    from drip.store.engine import make_engine, safe_url
    from drip.store.schema_version import database_revision, shipped_head

    url = safe_url(settings.database_url)
    sqlite_file = _sqlite_file(settings.database_url)
    if sqlite_file is not None and not sqlite_file.exists():
        status = NOTE if settings.embedded else FAIL
        return None, Check(
            "database", status, f"{url} does not exist yet: `drip db upgrade` creates it"
        )
    engine = make_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    try:
        revision = database_revision(engine)
    except (DripError, SQLAlchemyError) as exc:
        engine.dispose()
        return None, Check("database", FAIL, f"{url} cannot be reached: {_first_line(exc)}")
    head = shipped_head()
    if revision != head:
        at = revision or "no schema"
        detail = f"{url} is at {at}, not at {head}: run `drip db upgrade`"
        return engine, Check("database", FAIL, detail)
    return engine, Check("database", OK, f"{url} at revision {revision} (the latest)")


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _broker(url: str, shown: str) -> Check:
    from kombu.connection import Connection
    from kombu.exceptions import KombuError

    try:
        with Connection(url, connect_timeout=TIMEOUT) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT
            )
    except (KombuError, OSError) as exc:
        return Check("broker", FAIL, f"{shown} cannot be reached: {_first_line(exc)}")
    return Check("broker", OK, f"{shown} answers")


def _twilio(settings: Settings) -> Check:
    if not settings.twilio_enabled:
        if settings.embedded:
            return Check("twilio", NOTE, "TWILIO_* unset: texts go to the console transport")
        return Check(
            "twilio",
            FAIL,
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are unset: a scaled-out drip would only "
            "print its texts",
        )
    from drip.transports.twilio_sms import TwilioSmsTransport

    assert settings.twilio_account_sid is not None and settings.twilio_auth_token is not None
    transport = TwilioSmsTransport(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        base_url=settings.twilio_base_url,
        timeout=TIMEOUT,
    )
    try:
        status = transport.account_status()
    except DripError as exc:
        return Check("twilio", FAIL, f"credentials not accepted: {_first_line(exc)}")
    finally:
        transport.close()
    sid = settings.twilio_account_sid
    shown = f"{sid[:6]}...{sid[-4:]}" if len(sid) > 10 else sid
    if status != "active":
        return Check("twilio", FAIL, f"account {shown} is {status}, not active")
    return Check("twilio", OK, f"account {shown} is active")


def _public_url(settings: Settings) -> Check:
    base = settings.public_url
    if not settings.embedded and not base.startswith("https://"):
        return Check(
            "public url",
            FAIL,
            f"DRIP_PUBLIC_URL={base} is not https: Twilio must reach the webhooks over TLS",
        )
    target = f"{base}/twilio/sms"
    try:
        urllib.request.urlopen(target, timeout=TIMEOUT)  # noqa: S310 - the operator's own URL
    except urllib.error.HTTPError as exc:
        if exc.code == 405:  # the route exists and takes POST only: drip's webhook app
            return Check("public url", OK, f"{target} answers from this host")
        why = f"HTTP {exc.code} (is DRIP_PUBLIC_URL the drip web app?)"
    except (urllib.error.URLError, OSError) as exc:
        why = _first_line(getattr(exc, "reason", exc))
    else:
        why = "it answered GET with 200, so it is not drip's webhook route"
    if settings.embedded:
        return Check("public url", NOTE, f"{target} does not answer ({why}); `drip run` serves it")
    return Check("public url", FAIL, f"{target} does not answer from this host: {why}")


def _clock(engine: Engine, wall: Wall) -> Check:
    from drip.store.probe import database_now

    before = wall()
    try:
        theirs = database_now(engine)
    except SQLAlchemyError as exc:
        return Check("clock", FAIL, f"cannot read the database's clock: {_first_line(exc)}")
    after = wall()
    ours = before + (after - before) / 2
    skew = (theirs - ours).total_seconds()
    detail = f"{abs(skew):.2f} s {'behind' if skew < 0 else 'ahead of'} the database's"
    if abs(skew) > MAX_CLOCK_SKEW_SECONDS:
        return Check("clock", FAIL, f"this host is {detail} (more than 2 s): run NTP")
    return Check("clock", OK, f"this host is {detail}")


def _backlogs(settings: Settings, engine: Engine, wall: Wall) -> Iterator[Check]:
    from sqlalchemy.orm import Session

    from drip.store import gauges

    now = wall()
    try:
        with Session(engine) as session:
            values = gauges.read(session, now)
    except SQLAlchemyError as exc:
        yield Check("dispatch", FAIL, f"cannot read the schedule: {_first_line(exc)}")
        return
    tick = values.dispatch_tick_at
    if tick is None:
        yield Check("dispatch", NOTE, "no dispatch tick has run yet")
    else:
        age = (now - tick).total_seconds()
        silent = age > TICK_SILENT_SECONDS and not settings.embedded
        status = FAIL if silent else OK
        hint = ": is Celery beat running, with a worker on the dispatch queue?" if silent else ""
        yield Check("dispatch", status, f"last tick {age:.0f} s ago{hint}")
    if values.outbox_oldest_at is None:
        yield Check("webhook outbox", OK, "nothing waiting")
    else:
        waited = (now - values.outbox_oldest_at).total_seconds()
        status = FAIL if waited > BACKLOG_SECONDS else OK
        yield Check(
            "webhook outbox",
            status,
            f"{values.outbox_pending} event(s) waiting, the oldest for {waited:.0f} s"
            + (": `drip webhooks status` names the receiver" if status == FAIL else ""),
        )
    yield inbox_check(values, now)


def inbox_check(values: Gauges, now: datetime) -> Check:
    """Lead events stored and not applied: a batch is applied within seconds of being
    stored, so one older than the retake delay was left by a process that stopped."""
    from drip.services.event_timing import RETAKE_AFTER

    if values.inbox_oldest_at is None:
        return Check("lead events", OK, "none stored and waiting")
    waited = (now - values.inbox_oldest_at).total_seconds()
    status = FAIL if waited > RETAKE_AFTER.total_seconds() else OK
    return Check(
        "lead events",
        status,
        f"{values.inbox_unapplied} stored and not applied, the oldest for {waited:.0f} s"
        + (": `drip events apply-stored` applies them" if status == FAIL else ""),
    )


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _writable(name: str, path: Path, *, folder: bool = False) -> Check:
    """``path`` (a file; ``folder``: its parent is the folder) can be written by this user."""
    target = path.parent
    existing = _nearest_existing(path if path.exists() and not folder else target)
    ok = os.access(existing, os.W_OK if existing.is_file() else os.W_OK | os.X_OK)
    where = path.parent if folder else path
    if not ok:
        return Check(name, FAIL, f"{where} is not writable by this user ({existing})")
    made = "" if (path.exists() or (folder and target.exists())) else " (created on first use)"
    return Check(name, OK, f"{where} is writable{made}")


def _spool_backlog(settings: Settings) -> Check:
    path = settings.web_spool_path
    if not path.exists():
        return Check("web spool backlog", OK, "empty")
    from drip.store.webhook_spool import Spool

    spool = Spool(path)
    try:
        waiting = spool.pending()
    finally:
        spool.close()
    if waiting:
        return Check(
            "web spool backlog",
            FAIL,
            f"{waiting} Twilio webhook(s) wait in {path}: the web app applies them once it "
            "reaches the database (is it running?)",
        )
    return Check("web spool backlog", OK, "empty")


def _account(settings: Settings) -> Check:
    from drip.campaigns.lint import lint_paths

    folder = settings.campaigns_dir
    if not (folder / "account.yaml").exists():
        return Check("account", NOTE, f"no {folder / 'account.yaml'}: drip's defaults apply")
    report = lint_paths(folder)
    if not report.ok:
        first = report.errors[0]
        return Check("account", FAIL, f"{report.summary()}; first: {first} (`drip lint {folder}`)")
    return Check("account", OK, f"{folder}: {report.summary()}")


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
