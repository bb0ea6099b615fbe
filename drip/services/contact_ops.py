"""An operator's changes to one contact: an opt-out taken by phone, the text status.

Each returns the sentence the command prints, saying what changed (or that
nothing did).
"""

from __future__ import annotations

from datetime import datetime

import structlog

from drip.domain.enums import ConsentEventKind, TextStatus
from drip.errors import NotFoundError, ValidationError
from drip.services import consent
from drip.services.deps import Deps
from drip.store.models import Contact

log = structlog.get_logger("drip.contacts")


def record_opt_out(deps: Deps, contact_id: int, *, how: str, by: str, now: datetime) -> str:
    """Revoke SMS consent for every sender, with who took it and how, as a consent event."""
    how = how.strip()
    if not how:
        raise ValidationError('--how: say how the contact asked, e.g. "phone call"')
    with deps.sessions.begin() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        changed = consent.opt_out(
            session,
            contact,
            "operator",
            ConsentEventKind.REVOKED_OPERATOR,
            now,
            evidence=f"opt-out by {how}, recorded by {by}",
            detail=how,
            actor=by,
        )
    if not changed:
        return f"contact {contact_id} had already opted out; nothing changed"
    log.info("opted_out_by_operator", contact_id=contact_id, how=how)
    return (
        f"contact {contact_id} opted out ({how}, recorded by {by}): no more texts from any "
        "sender; pending texts are skipped when they come due"
    )


def change_text_status(
    deps: Deps, contact_id: int, status: TextStatus, *, by: str, now: datetime
) -> str:
    """Set the operator's text status, recorded as a consent event (a revocation)."""
    with deps.sessions() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        before = contact.text_status
    if before is status:
        return f"contact {contact_id} is already {status.value}; nothing changed"
    consent.set_text_status(deps, contact_id, status, now, by=by)
    return f"contact {contact_id}: text status {before.value} -> {status.value} (by {by})"
