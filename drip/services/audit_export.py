"""The audit export of the console: consent events, opt-outs, messages and operators' actions.

One row per record, for one contact or for every contact opted out in a
range of days (CSV or JSON); ``actor`` names the person behind a consent
change or an action (an operator, the OS user or ``--as`` of the CLI) and
``via`` where they acted. For operators: docs/operations.md#the-console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drip.domain.zones import resolve_timezone
from drip.errors import NotFoundError
from drip.services.console import REVOKED, local, sms_status
from drip.services.deps import Deps
from drip.store import console as store
from drip.store import operators as operators_store
from drip.store import repository as repo
from drip.store.models import Contact

__all__ = ["AUDIT_COLUMNS", "AuditExport", "audit_export"]


AUDIT_COLUMNS = (
    "contact_id",
    "first_name",
    "last_name",
    "phone",
    "email",
    "record",
    "at_utc",
    "at_local",
    "timezone",
    "kind",
    "source",
    "channel",
    "direction",
    "from",
    "to",
    "footer",
    "footer_rule",
    "reason",
    "status",
    "text",
    "detail",
    "send_id",
    "message_id",
    "actor",
    "via",
)


@dataclass(frozen=True, slots=True)
class AuditExport:
    """Consent events, opt-outs and messages (with footer decisions) of some contacts."""

    generated_at: datetime
    scope: str
    rows: tuple[dict[str, Any], ...]
    contacts: tuple[dict[str, Any], ...]
    actions: tuple[dict[str, Any], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "scope": self.scope,
            "times": "at_utc is UTC; at_local is in each contact's zone (timezone)",
            "contacts": list(self.contacts),
            **({"operator_actions": list(self.actions)} if self.actions else {}),
        }


def audit_export(
    deps: Deps,
    now: datetime,
    *,
    contact_id: int | None = None,
    opted_out_from: datetime | None = None,
    opted_out_until: datetime | None = None,
) -> AuditExport:
    """The audit file of one contact, or of every contact opted out in ``[from, until)``."""
    with deps.sessions() as session:
        if contact_id is not None:
            if session.get(Contact, contact_id) is None:
                raise NotFoundError(f"no contact with id {contact_id}")
            ids = [contact_id]
            scope = f"contact {contact_id}"
        else:
            assert opted_out_from is not None and opted_out_until is not None
            ids = store.contacts_opted_out_between(session, opted_out_from, opted_out_until)
            scope = (
                f"contacts opted out from {opted_out_from.isoformat()} "
                f"until {opted_out_until.isoformat()}"
            )
        rows: list[dict[str, Any]] = []
        contacts: list[dict[str, Any]] = []
        for cid in ids:
            c = session.get(Contact, cid)
            assert c is not None
            zone = resolve_timezone(c.timezone, c.phone, deps.account.default_timezone).name
            mine = _audit_rows(session, c, zone)
            rows.extend(mine)
            contacts.append(
                {
                    "id": c.id,
                    "first_name": c.first_name,
                    "last_name": c.last_name,
                    "phone": c.phone,
                    "email": c.email,
                    "timezone": zone,
                    "sms": sms_status(c),
                    "text_status": c.text_status.value,
                    "email_opted_out": c.email_opted_out,
                    "consent_events": [r for r in mine if r["record"] == "consent_event"],
                    "opt_outs": [r for r in mine if r["record"] == "opt_out"],
                    "messages": [r for r in mine if r["record"] == "message"],
                    "operator_actions": [r for r in mine if r["record"] == "operator_action"],
                }
            )
    return AuditExport(now, scope, tuple(rows), tuple(contacts))


def _audit_rows(session: Any, c: Contact, zone: str) -> list[dict[str, Any]]:
    base = {
        "contact_id": c.id,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "phone": c.phone or "",
        "email": c.email or "",
        "timezone": zone,
    }

    def row(record: str, at: datetime, **fields: Any) -> dict[str, Any]:
        out: dict[str, Any] = dict.fromkeys(AUDIT_COLUMNS, "")
        out.update(base)
        out.update(record=record, at_utc=at.isoformat(), at_local=local(at, zone))
        out.update({k: ("" if v is None else v) for k, v in fields.items()})
        return out

    rows = []
    for e in repo.consent_events_of(session, c.id):
        record = "opt_out" if e.kind in REVOKED else "consent_event"
        rows.append(
            row(record, e.at, kind=e.kind.value, source=e.source, text=e.evidence,
                detail=e.detail, actor=e.actor)
        )  # fmt: skip
    if c.email_opted_out and c.email_opted_out_at is not None:
        rows.append(
            row("opt_out", c.email_opted_out_at, kind="email_unsubscribe", source="email link",
                channel="email")
        )  # fmt: skip
    for a in operators_store.actions_of_contact(session, c.id):
        rows.append(
            row("operator_action", a.at, kind=a.action, actor=a.actor, via=a.via,
                detail=a.detail)
        )  # fmt: skip
    messages = repo.messages_of(session, c.id)
    send_ids = [m.send_id for m in messages if m.send_id]
    rules = store.footer_rules_of_contact(session, c.id)
    reasons = {
        d.send_id: d.reason
        for d in repo.decisions_of_sends(session, send_ids)
        if d.outcome == "sent"
    }
    for m in messages:
        outbound = m.direction == "outbound"
        rows.append(
            row(
                "message",
                m.sent_at or m.created_at,
                kind=m.kind.value if m.kind else ("reply" if not outbound else ""),
                channel=m.channel.value,
                direction=m.direction,
                **{"from": m.from_addr, "to": m.to_addr},
                footer=("yes" if m.footer else "no")
                if outbound and m.channel.value == "sms"
                else "",
                footer_rule=rules.get(m.send_id) if m.send_id else None,
                reason=reasons.get(m.send_id) if m.send_id else None,
                status=m.status + (f" {m.error_code}" if m.error_code else ""),
                text=m.body,
                send_id=m.send_id,
                message_id=m.id,
            )
        )
    rows.sort(key=lambda r: (r["at_utc"], r["record"]))
    return rows


#: At most this many actions in one export of a range (narrow the range for more).
ACTIONS_SHOWN = 100_000


def actions_export(deps: Deps, now: datetime, start: datetime, end: datetime) -> AuditExport:
    """Every action people took in ``[start, end)``: on contacts, campaigns and bulks."""
    with deps.sessions() as session:
        found = operators_store.actions_between(session, start, end, ACTIONS_SHOWN)
        rows = []
        for a in found:
            out: dict[str, Any] = dict.fromkeys(AUDIT_COLUMNS, "")
            out.update(
                contact_id="" if a.contact_id is None else a.contact_id,
                record="operator_action",
                at_utc=a.at.isoformat(),
                at_local=local(a.at, "UTC"),
                timezone="UTC",
                kind=a.action,
                actor=a.actor,
                via=a.via,
                detail=a.detail,
                source=a.campaign or (f"bulk {a.bulk_id}" if a.bulk_id is not None else ""),
            )
            rows.append(out)
    scope = f"operator actions from {start.isoformat()} until {end.isoformat()}"
    return AuditExport(now, scope, tuple(rows), (), tuple(rows))
