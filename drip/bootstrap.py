"""Build everything drip talks to, in one place, from settings: never at import time.

``build`` is the only function that chooses a transport, opens an engine or
picks a clock; entry points (CLI, Celery worker, web app, replay) call it
once and hand the resulting ``Deps`` to services.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from drip.clock import Clock, SystemClock
from drip.config import Settings
from drip.domain.account import AccountSettings
from drip.logging import configure_logging
from drip.services.deps import Deps
from drip.store.engine import make_engine, session_factory
from drip.transports.base import EmailTransport, SmsTransport
from drip.transports.console import ConsoleTransport
from drip.transports.lookup import NumberLookup
from drip.transports.pacing import Pacer

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = structlog.get_logger("drip.bootstrap")


def load_settings() -> Settings:
    """Settings from the environment, read once per process, with logging configured."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_format, settings.log_level)
    # Libraries that narrate routine work at INFO: keep their warnings only.
    for chatty in ("alembic", "twilio.http_client"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return settings


def ensure_home(settings: Settings) -> None:
    """Create the embedded data folder when the database is a SQLite file in it."""
    if settings.database_url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)


def load_account(settings: Settings) -> AccountSettings:
    """``campaigns/account.yaml`` if present (defaults otherwise), with env overrides."""
    path = Path(settings.campaigns_dir) / "account.yaml"
    if path.exists():
        from drip.campaigns.account_file import load_account as parse_file

        account = parse_file(path)
    else:
        account = AccountSettings()
    if settings.default_timezone:
        account = replace(account, default_timezone=settings.default_timezone)
    return account


def build_sms(settings: Settings) -> SmsTransport:
    if settings.twilio_enabled:
        from drip.transports.twilio_sms import TwilioSmsTransport

        assert settings.twilio_account_sid is not None and settings.twilio_auth_token is not None
        return TwilioSmsTransport(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            base_url=settings.twilio_base_url,
        )
    return _console(settings)


def build_lookup(settings: Settings) -> NumberLookup | None:
    """The reassigned-numbers check: Twilio Lookup v2 when Twilio is configured, else None.

    Without Twilio there is no source to ask, so a text that needs the check
    gets no answer and follows ``reassigned_numbers.on_unknown``.
    """
    if not settings.twilio_enabled:
        return None
    from drip.transports.twilio_lookup import TwilioLookup

    assert settings.twilio_account_sid is not None and settings.twilio_auth_token is not None
    return TwilioLookup(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        base_url=settings.twilio_base_url,
        timeout=float(settings.lookup_timeout_seconds),
    )


def build_pacer(settings: Settings, account: AccountSettings) -> Pacer:
    """Pacing, always on: in Redis when scaled out, in process when embedded.

    Without a ``senders:`` section in account.yaml every number sends at the
    carrier's default (a US long code, 1 segment/s).
    """
    from drip.transports.pacing import LocalPacer, RedisPacer

    if settings.broker_url is not None and settings.broker_url.startswith(("redis", "rediss")):
        return RedisPacer(account.senders, settings.broker_url)
    return LocalPacer(account.senders)


def build_email(settings: Settings) -> EmailTransport:
    if settings.smtp_url:
        from drip.transports.smtp_email import SmtpEmailTransport

        return SmtpEmailTransport(settings.smtp_url, settings.email_from)
    return _console(settings)


def _console(settings: Settings) -> ConsoleTransport:
    settings.outbox.parent.mkdir(parents=True, exist_ok=True)
    return ConsoleTransport(settings.outbox, sys.stdout)


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    sms: SmsTransport | None = None,
    email: EmailTransport | None = None,
    account: AccountSettings | None = None,
    pacer: Pacer | None = None,
    engine: Engine | None = None,
    lookup: NumberLookup | None = None,
) -> Deps:
    """The dependencies of every service; tests and replay pass their own parts."""
    settings = settings or load_settings()
    # Idempotent; also masks phone numbers and emails for callers (tests,
    # replay) that pass their own settings and skipped load_settings.
    configure_logging(settings.log_format, settings.log_level)
    ensure_home(settings)
    if not settings.embedded and settings.secret_key_is_default:
        log.warning("secret_key_default", hint="set DRIP_SECRET_KEY so unsubscribe links are safe")
    engine = engine or make_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    account = account or load_account(settings)
    return Deps(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        sms=sms or build_sms(settings),
        email=email or build_email(settings),
        clock=clock or SystemClock(),
        account=account,
        pacer=pacer or build_pacer(settings, account),
        lookup=lookup if lookup is not None else _lookup_if_wanted(settings, account),
    )


def _lookup_if_wanted(settings: Settings, account: AccountSettings) -> NumberLookup | None:
    """Build the Lookup client only when the account checks reassigned numbers."""
    return build_lookup(settings) if account.reassigned_numbers.enabled else None
