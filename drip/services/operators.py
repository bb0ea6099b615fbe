"""Console operators: named accounts with a role, and the log of what people did.

For operators: docs/operations.md#operators-and-roles.

Passwords are stored as Argon2id hashes (argon2-cffi, its default
parameters); a wrong name costs the same hash as a wrong password, so the
time of an answer does not tell which names exist. Roles:

- ``viewer``: reads every page;
- ``operator``: also the contact and enrollment actions (text status, an
  opt-out taken by phone, assign, pause or resume a contact's enrollments);
- ``compliance``: every action (campaign pause/resume, bulk cancel, erase)
  and the audit export.

Every action, from the console or the CLI, is appended to
``operator_actions`` with the person's name (:func:`record_action`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from drip.errors import NotFoundError, ValidationError
from drip.services.deps import Deps
from drip.store import operators as store
from drip.store.models import OPERATOR_ROLES, Operator, OperatorAction

log = structlog.get_logger("drip.operators")

ROLES: Final = OPERATOR_ROLES
#: The actions an ``operator`` may take: on one contact and its enrollments.
CONTACT_ACTIONS: Final = frozenset(
    {"text_status", "opt_out", "assign", "pause_contact", "resume_contact"}
)
#: What only ``compliance`` may do: actions on many contacts, erasure, the audit export.
COMPLIANCE_ACTIONS: Final = frozenset(
    {"campaign_pause", "campaign_resume", "bulk_cancel", "erase", "audit"}
)
RIGHTS: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset(),
    "operator": CONTACT_ACTIONS,
    "compliance": CONTACT_ACTIONS | COMPLIANCE_ACTIONS,
}
MIN_PASSWORD: Final = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
#: argon2-cffi's defaults (Argon2id, RFC 9106's low-memory profile).
HASHER = PasswordHasher()


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verified against when the name is unknown, so that answer takes as long as a wrong one."""
    return hasher.hash("drip: no such operator")


def may(role: str, action: str) -> bool:
    """Whether ``role`` has the right to take ``action``."""
    return action in RIGHTS.get(role, frozenset())


@dataclass(frozen=True, slots=True)
class OperatorView:
    """An operator as listed and as the console knows it (no hash)."""

    name: str
    role: str
    active: bool
    created_at: datetime
    disabled_at: datetime | None


def _view(row: Operator) -> OperatorView:
    return OperatorView(row.name, row.role, row.active, row.created_at, row.disabled_at)


def check_name(name: str) -> str:
    """The operator name, or a ValidationError saying what a name may hold."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"NAME {name!r}: 1-100 letters, digits and . _ @ - (starting with a letter or digit)"
        )
    return name


def add_operator(deps: Deps, name: str, role: str, password: str, now: datetime) -> OperatorView:
    """Create an operator with a hashed password; an existing name is refused."""
    name = check_name(name)
    if role not in ROLES:
        raise ValidationError(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD} characters")
    hashed = HASHER.hash(password)
    with deps.sessions.begin() as session:
        if store.by_name(session, name) is not None:
            raise ValidationError(f"an operator named {name!r} exists already")
        row = Operator(name=name, role=role, password_hash=hashed, active=True, created_at=now)
        session.add(row)
        session.flush()
        view = _view(row)
    log.info("operator_added", operator=name, role=role)
    return view


def list_operators(deps: Deps) -> tuple[OperatorView, ...]:
    """Every operator, by name."""
    with deps.sessions() as session:
        return tuple(_view(r) for r in store.all_operators(session))


def disable_operator(deps: Deps, name: str, now: datetime) -> str:
    """Stop an operator from logging in; their open sessions end at their next request."""
    with deps.sessions.begin() as session:
        row = store.by_name(session, name.strip())
        if row is None:
            raise NotFoundError(f"no operator named {name.strip()!r}")
        if not row.active:
            return f"operator {row.name} was already disabled; nothing changed"
        row.active = False
        row.disabled_at = now
    log.info("operator_disabled", operator=name.strip())
    return f"operator {name.strip()} disabled: cannot log in; open sessions end"


def authenticate(deps: Deps, name: str, password: str) -> OperatorView | None:
    """The active operator with this name and password, else None (whatever was wrong)."""
    with deps.sessions() as session:
        row = store.by_name(session, name.strip())
        stored = row.password_hash if row is not None else _dummy_hash(HASHER)
        try:
            HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row.active:
            return None
        return _view(row)


def active_operator(deps: Deps, name: str) -> OperatorView | None:
    """The operator called ``name`` when it may still act (exists and is active)."""
    with deps.sessions() as session:
        row = store.by_name(session, name)
        return _view(row) if row is not None and row.active else None


def any_operator(deps: Deps) -> bool:
    """At least one active operator exists (the console then has a login form)."""
    with deps.sessions() as session:
        return store.any_active(session)


def record_action(
    deps: Deps,
    now: datetime,
    *,
    actor: str,
    via: str,
    action: str,
    detail: str,
    contact_id: int | None = None,
    campaign: str | None = None,
    bulk_id: int | None = None,
) -> None:
    """Append one action, with who took it and what it changed, to ``operator_actions``."""
    with deps.sessions.begin() as session:
        store.add_action(
            session,
            OperatorAction(
                at=now,
                actor=actor,
                via=via,
                action=action,
                contact_id=contact_id,
                campaign=campaign,
                bulk_id=bulk_id,
                detail=detail,
            ),
        )
    log.info("operator_action", actor=actor, via=via, action=action, contact_id=contact_id)
