"""Erasure: a contact asks to be forgotten; drip forgets them and remembers the opt-out.

:func:`erase_contact` is the one entry point (``drip contacts erase`` and the
console's compliance action call it). In one transaction it puts the
contact's phone and email on the suppression list as keyed hashes, with its
opt-outs (:mod:`drip.store.suppression`), removes its personal data from
every table (:mod:`drip.store.erasure`), stops its enrollments and cancels
its pending texts, records who erased it and when on the contact row, and
appends a ``contact.erased`` event to the webhook outbox carrying only the
contact's id. Before that transaction commits it rewrites the files of
this machine that may quote the person, the console transport's outbox
file and the webhook spool (a file that cannot be cleaned rolls the
erasure back). Erasing an erased contact changes nothing and says so.

What is kept, and why: docs/compliance.md#erasure-and-retention.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime

import structlog

from drip.errors import DripError, NotFoundError, ValidationError
from drip.services.deps import Deps
from drip.store import erasure as store
from drip.store import outbox, suppression
from drip.store.models import Contact
from drip.store.webhook_spool import Spool
from drip.transports.console import ConsoleTransport

__all__ = ["ErasureFileError", "ErasureResult", "erase_contact"]

log = structlog.get_logger("drip.erasure")

REASON = "the contact was erased"


class ErasureFileError(DripError):
    """A file of this machine could not be cleaned: the erasure was rolled back."""


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """What an erasure did (or that the contact was erased before: ``already``)."""

    contact_id: int
    erased_at: datetime
    by: str
    already: bool
    rows: store.ErasedRows | None = None
    #: Hashes put on the suppression list (phone, email: 0 to 2).
    suppressed: int = 0
    sms_opted_out: bool = False
    email_opted_out: bool = False
    #: Lines of the console outbox file and spool entries rewritten or removed.
    outbox_lines: int = 0
    spool_entries: int = 0

    @property
    def message(self) -> str:
        """The sentence the command prints."""
        if self.already:
            return (
                f"contact {self.contact_id} was already erased on {self.erased_at:%Y-%m-%d %H:%M} "
                f"UTC by {self.by}; nothing changed"
            )
        rows = self.rows
        assert rows is not None
        kept = "opted out of texts" if self.sms_opted_out else "not opted out of texts"
        if self.email_opted_out:
            kept += ", unsubscribed from email"
        parts = [
            f"contact {self.contact_id} erased by {self.by}: personal data removed from "
            f"{rows.messages} message(s), {rows.sends} send(s), {rows.consent_events} consent "
            f"event(s), {rows.lead_events} lead event(s), {rows.outbox_events} webhook event(s)",
            f"{rows.enrollments_stopped} enrollment(s) stopped, {rows.sends_cancelled} pending "
            "text(s) cancelled",
            f"{self.suppressed} hash(es) on the suppression list ({kept}): a contact created "
            "later with that number or email starts the same way",
        ]
        if self.outbox_lines or self.spool_entries:
            parts.append(
                f"files: {self.outbox_lines} outbox line(s) rewritten, "
                f"{self.spool_entries} spooled webhook(s) removed"
            )
        return "; ".join(parts)


def erase_contact(deps: Deps, contact_id: int, now: datetime, *, by: str) -> ErasureResult:
    """Erase one contact (see the module docstring); NotFoundError for an unknown id."""
    by = by.strip()
    if not by:
        raise ValidationError("by: say who erases the contact")
    with deps.sessions.begin() as session:
        contact = session.get(Contact, contact_id, with_for_update=True)
        if contact is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        if contact.erased_at is not None:
            return ErasureResult(contact_id, contact.erased_at, contact.erased_by or "", True)
        pattern = store.needles_of(contact).pattern()
        sms_out = contact.sms_opted_out_at
        email_out = contact.email_opted_out_at if contact.email_opted_out else None
        if contact.email_opted_out and email_out is None:
            email_out = now
        values = [(k, v) for k, v in (("phone", contact.phone), ("email", contact.email)) if v]
        suppressed = 0
        if values:
            suppressed = suppression.remember(
                session,
                suppression.install_key(session, now),
                values,
                contact_id=contact_id,
                now=now,
                sms_opted_out_at=sms_out,
                sms_opted_out_how=contact.sms_opted_out_how,
                email_opted_out_at=email_out,
            )
        rows = store.erase_rows(session, contact, now, by=by, reason=REASON)
        outbox.append(
            session,
            "contact.erased",
            contact_id,
            {"contact": {"id": contact_id}, "erased_at": now.isoformat()},
            now,
        )
        # Before the commit: a file that cannot be cleaned rolls the erasure back, and
        # erasing again (the files' cleaning is idempotent) finishes the work.
        lines, entries = _forget_in_files(deps, pattern)
    log.info(
        "contact_erased",
        contact_id=contact_id,
        by=by,
        suppressed=suppressed,
        outbox_lines=lines,
        spool_entries=entries,
        **rows.as_dict(),
    )
    return ErasureResult(
        contact_id,
        now,
        by,
        False,
        rows,
        suppressed,
        sms_out is not None,
        email_out is not None,
        lines,
        entries,
    )


def _forget_in_files(deps: Deps, pattern: re.Pattern[str] | None) -> tuple[int, int]:
    """The console outbox file and the webhook spool of this machine, without the person."""
    if pattern is None:
        return 0, 0

    def matches(text: str) -> bool:
        return pattern.search(text) is not None

    def redact(text: str) -> str:
        return pattern.sub(store.ERASED, text)

    lines = 0
    seen: set[int] = set()
    for transport in (deps.sms, deps.email):
        if isinstance(transport, ConsoleTransport) and id(transport) not in seen:
            seen.add(id(transport))
            try:
                lines += transport.forget(matches, redact)
            except OSError as exc:
                raise ErasureFileError(
                    f"nothing erased: the outbox file {transport.outbox_path} could not be "
                    f"rewritten ({exc}); erase again once it is writable"
                ) from exc
    spool_path = deps.settings.web_spool_path
    entries = 0
    if spool_path.exists():
        spool = Spool(spool_path)
        try:
            entries = spool.forget(matches)
        except (DripError, sqlite3.Error, OSError) as exc:
            raise ErasureFileError(
                f"nothing erased: the webhook spool {spool_path} could not be cleaned ({exc}); "
                "erase again once the web app is idle"
            ) from exc
        finally:
            spool.close()
    return lines, entries
