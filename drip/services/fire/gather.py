"""Gather: what deciding and sending a batch needs, read once (step 1 of the fire path).

One read transaction gathers the batch's sends still ``queued``, their
contacts, agents, campaigns, conversations and recent sends
(:func:`gather`). The in-memory :class:`States` is then updated as the batch
goes, so a later send of the batch sees an earlier one (its footer, its
marketing count). A slow batch re-reads its contacts' right to be texted
(:func:`refresh`), so a STOP that arrives meanwhile is honoured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.orm import Session

from drip.domain.campaign import Campaign
from drip.domain.enums import Channel, SenderRole
from drip.domain.frequency import lookback
from drip.domain.policy import DAY, ContactState, ConversationState
from drip.domain.reassigned import number_digest
from drip.domain.zones import resolve_states, resolve_timezone
from drip.services import fire_checks
from drip.services.deps import Deps
from drip.services.senders import Sender, resolve_sender
from drip.store import agents as agents_store
from drip.store import fire_gather, number_checks
from drip.store import repository as repo
from drip.store.fire_gather import FireContact, FireSend
from drip.store.models import Contact

#: A batch re-reads the rest of its contacts' right to be texted, and their
#: enrollments, once this many seconds have passed since it last did: a STOP
#: that arrives while a slow provider holds the batch is honoured for the
#: sends after it. In the normal fast path this costs one query a second.
REFRESH_AFTER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Template:
    """The raw text to render: the campaign step's current text, or the send's own body."""

    body: str
    subject: str | None
    footer: str


@dataclass
class Prepared:
    """One claimed send with everything needed to decide and send it."""

    send: FireSend
    contact: FireContact
    campaign: Campaign | None
    sender: Sender | None
    #: False once the enrollment ended (stop_on_reply, a reply between claim and fire).
    enrollment_active: bool = True
    #: Set when the send cannot even be prepared (e.g. a stored campaign that no
    #: longer validates): it fails alone instead of stranding its batch.
    problem: str | None = None

    def template(self) -> Template | None:
        """The text to render, or None when its step is no longer in the campaign."""
        send, campaign = self.send, self.campaign
        footer_override = campaign.opt_out.footer if campaign else None
        if send.body is not None:
            return Template(send.body, None, footer_override or "")
        if campaign is None or send.step_id is None:
            return None
        try:
            step = campaign.step(send.step_id)
        except KeyError:
            return None
        return Template(step.body, step.subject, footer_override or "")

    def conversation_key(self) -> tuple[str, int]:
        """The (sender phone, contact) pair whose conversation this send is part of."""
        return (self.sender.phone if self.sender else "", self.contact.id)


@dataclass
class States:
    """Fire-time state, updated in memory as the batch goes so later sends see earlier ones."""

    conversations: dict[tuple[str, int], ConversationState]
    marketing: dict[int, list[datetime]]
    last_sent: dict[int, datetime]
    #: When the reassigned-numbers check last said "no", by number digest (when it is on).
    verified: dict[str, datetime] = field(default_factory=dict)
    #: Why the check got no answer earlier in this batch (it is not asked again in the batch).
    lookup_down: str | None = None

    def note_sent(self, p: Prepared, footer: bool, now: datetime) -> None:
        """What a sent send changes for the sends after it in this batch."""
        send = p.send
        if footer and send.channel is Channel.SMS:
            key = p.conversation_key()
            conversation = self.conversations.get(key, ConversationState())
            self.conversations[key] = replace(conversation, footer_last_sent_at=now)
        if send.kind.is_marketing and send.channel is Channel.SMS:
            self.marketing.setdefault(p.contact.id, []).append(now)
        if send.enrollment_id is not None and fire_checks.counts_for_catch_up(
            send.due_at, send.catching_up, now
        ):
            self.last_sent[send.enrollment_id] = now


def gather(
    deps: Deps, session: Session, ids: list[int], now: datetime
) -> tuple[list[Prepared], States]:
    """The batch's sends still ``queued``, prepared, and the state deciding them reads."""
    # Plain rows, not ORM entities: nothing gathered is written back through the ORM
    # (drip.store.fire_gather); only sends still queued are the batch's.
    gathered = fire_gather.queued_sends(session, ids)
    if not gathered:
        return [], States({}, {}, {})
    campaigns: dict[int, Campaign] = {}
    broken: dict[int, str] = {}
    wanted = {g.send.campaign_id for g in gathered if g.send.campaign_id}
    for cid, name, version, definition in fire_gather.campaign_rows(session, wanted):
        try:
            campaigns[cid] = deps.campaigns.get(cid, version, definition)
        except Exception as exc:  # a stored definition current code rejects: fail its sends only
            broken[cid] = f"failed: stored campaign {name!r} is invalid ({exc}); run drip sync"
    prepared: list[Prepared] = []
    # A deactivated agent's number sends nothing more, even as the account's default agent.
    gone = agents_store.inactive_phones(session)
    for g in gathered:
        send = g.send
        sender = resolve_sender(
            send.sender_role,
            g.agent,
            deps.account,
            send.sender_phone,
            compliance=send.kind.is_compliance,
        )
        if sender is not None and sender.phone in gone:
            sender = resolve_sender(
                SenderRole.CONCIERGE, None, deps.account, compliance=send.kind.is_compliance
            )
        campaign = campaigns.get(send.campaign_id) if send.campaign_id else None
        problem = broken.get(send.campaign_id) if send.campaign_id else None
        prepared.append(Prepared(send, g.contact, campaign, sender, g.enrollment_active, problem))
    pairs = [
        (p.sender.phone, p.contact.id)
        for p in prepared
        if p.sender is not None and p.send.channel is Channel.SMS
    ]
    repo.ensure_conversations(session, pairs)
    conversations = {
        key: ConversationState(footer, two_way)
        for key, (footer, two_way) in fire_gather.conversation_times(session, pairs).items()
    }
    since = now - lookback(deps.account.frequency_cap, DAY)
    marketing = repo.marketing_sent_since(session, {g.contact.id for g in gathered}, since)
    last_sent = repo.enrollment_last_sent(
        session, (g.send.enrollment_id for g in gathered if g.send.enrollment_id is not None)
    )
    verified: dict[str, datetime] = {}
    if deps.account.reassigned_numbers.enabled:
        key = deps.settings.secret_key
        digests = {number_digest(key, g.contact.phone) for g in gathered if g.contact.phone}
        verified = number_checks.last_verified(session, digests)
    return prepared, States(conversations, dict(marketing), last_sent, verified)


def refresh(deps: Deps, remaining: list[Prepared]) -> None:
    """Re-read the remaining sends' contacts' right to be texted and their enrollments."""
    with deps.sessions() as session:
        fresh = repo.contacts_by_id(session, {p.contact.id for p in remaining})
        active = repo.active_enrollment_ids(
            session, (p.send.enrollment_id for p in remaining if p.send.enrollment_id)
        )
        for p in remaining:
            row = fresh.get(p.contact.id)
            if row is not None:
                p.contact = replace(
                    p.contact,
                    sms_consent_at=row.sms_consent_at,
                    sms_opted_out_at=row.sms_opted_out_at,
                    text_status=row.text_status,
                    text_status_by=row.text_status_by,
                    email_opted_out=row.email_opted_out,
                )
            if p.send.enrollment_id is not None:
                p.enrollment_active = p.send.enrollment_id in active


def contact_state(
    contact: Contact | FireContact, deps: Deps, marketing: list[datetime]
) -> ContactState:
    """The policy's view of a contact row: its zone set and every state that may apply."""
    zone = resolve_timezone(contact.timezone, contact.phone, deps.account.default_timezone)
    states = resolve_states(contact.state, contact.phone)
    return ContactState(
        timezone=zone.name,
        zones=zone.zones,
        zone_detail=zone.detail,
        has_phone=contact.phone is not None,
        sms_consent_at=contact.sms_consent_at,
        sms_opted_out_at=contact.sms_opted_out_at,
        text_status=contact.text_status,
        text_status_by=contact.text_status_by,
        has_email=bool(contact.email),
        email_opted_out=contact.email_opted_out,
        state=states[0] if states else None,
        states=states,
        marketing_sent=tuple(marketing),
    )
