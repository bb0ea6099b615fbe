"""What a replay gives: the messages sent, the decisions not to send, what happened.

The values (:class:`ScenarioResult` and its parts) are what the reports print;
:func:`read_back` reads them from a run's database once the clock has reached
the end. A run that cannot go on raises :class:`ReplayError`; an expectation
that does not hold is a :class:`Mismatch` (see
:mod:`drip.replay.runner.checking`), not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from drip.domain.account import AccountSettings
from drip.domain.enums import Channel, MessageKind, SenderRole, SendState
from drip.errors import DripError
from drip.replay.scenario import Expectation, Scenario
from drip.services.deps import Deps
from drip.store import repository as repo
from drip.store.models import ScheduledSend
from drip.transports.recording import RecordingTransport


class ReplayError(DripError):
    """A scenario could not be run (not a failed expectation: a broken run)."""


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One outbound message the provider accepted."""

    position: int  # 1-based, in send order, as ``expect`` counts
    at: datetime  # UTC
    local: datetime  # aware, in the contact's zone
    day: int  # local date difference from the start
    sender: SenderRole
    kind: MessageKind
    channel: Channel
    footer: bool
    footer_rule: str | None
    reason: str
    body: str
    subject: str | None
    segments: int | None
    send_id: int | None
    campaign: str | None
    step: str | None
    #: The ValidityPeriod it was handed to the provider with (None: without one).
    validity: int | None = None
    #: The provider status at the end of the run, and its error code.
    status: str = ""
    error_code: int | None = None
    #: Reason codes its send was deferred with before it went.
    deferrals: tuple[str, ...] = ()
    #: The address it came from (the sender's number for a text).
    from_addr: str = ""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision not to send (now): skipped, deferred, failed, cancelled, rescheduled."""

    at: datetime
    local: datetime
    day: int
    outcome: str
    code: str
    reason: str
    send_id: int
    kind: MessageKind
    channel: Channel
    sender: SenderRole
    campaign: str | None
    step: str | None
    deferred_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Happening:
    """Something the scenario did (registration, an event) and what the service said."""

    at: datetime
    local: datetime
    day: int
    what: str
    text: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Expectation ``position`` and the message sent in its place, and what differs."""

    position: int
    expected: Expectation | None
    actual: OutMessage | None
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario did and whether its expectations held."""

    scenario: Scenario
    contact_id: int
    start: datetime
    end: datetime
    messages: tuple[OutMessage, ...]
    decisions: tuple[DecisionRecord, ...]
    happenings: tuple[Happening, ...]
    mismatches: tuple[Mismatch, ...]
    pending: int
    seconds: float

    @property
    def checked(self) -> bool:
        return self.scenario.expect is not None

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.scenario.zone))

    def day_of(self, at: datetime) -> int:
        return day_number(self.scenario, at)


def day_number(scenario: Scenario, at: datetime) -> int:
    """The local date difference between ``at`` and the scenario's start."""
    local = at.astimezone(ZoneInfo(scenario.zone)).date()
    return (local - scenario.start.date()).days


def read_back(
    deps: Deps,
    transport: RecordingTransport,
    scenario: Scenario,
    contact_ids: Sequence[int],
    end: datetime,
) -> tuple[list[OutMessage], list[DecisionRecord], int]:
    """The contact's messages sent by ``end``, the decisions not to send, and pending sends.

    ``contact_ids``: every contact the person has been (erased, then added again).
    """
    s = scenario
    zone = ZoneInfo(s.zone)
    with deps.sessions() as session:
        sends = {x.id: x for cid in contact_ids for x in repo.sends_of_contact(session, cid)}
        decisions = repo.decisions_of_sends(session, list(sends))
        names = {
            cid: row.name
            for cid, row in repo.campaigns_by_id(
                session, (x.campaign_id for x in sends.values() if x.campaign_id)
            ).items()
        }
        rows = [m for cid in contact_ids for m in repo.messages_of(session, cid)]
    sent_decisions = [d for d in decisions if d.outcome == "sent"]  # in time order
    messages: list[OutMessage] = []
    outbound = [
        m for m in rows if m.direction == "outbound" and m.sent_at is not None and m.sent_at <= end
    ]
    outbound.sort(key=lambda m: (m.sent_at or m.created_at, m.id))
    validity = {x.sid: x.msg.validity_seconds for x in transport.sms}
    went: dict[int, datetime] = {}  # send id -> when its previous message went
    for m in outbound:
        assert m.sent_at is not None
        send = sends.get(m.send_id) if m.send_id else None
        # A send that went twice (put back after an expiry) has a sent decision each time.
        decided = next(
            (d for d in reversed(sent_decisions) if d.send_id == m.send_id and d.at <= m.sent_at),
            None,
        )
        role = send.sender_role if send else _role_of(deps.account, m.from_addr)
        messages.append(
            OutMessage(
                position=len(messages) + 1,
                at=m.sent_at,
                local=m.sent_at.astimezone(zone),
                day=day_number(s, m.sent_at),
                sender=role,
                kind=m.kind or MessageKind.MANUAL,
                channel=m.channel,
                footer=m.footer,
                footer_rule=decided.footer_rule if decided else None,
                reason=decided.reason if decided else "",
                body=m.body,
                subject=m.subject,
                segments=m.segments,
                send_id=m.send_id,
                campaign=names.get(send.campaign_id) if send and send.campaign_id else None,
                step=send.step_id if send else None,
                validity=validity.get(m.provider_sid or ""),
                status=m.status,
                error_code=m.error_code,
                deferrals=_deferrals(decisions, m.send_id, went, m.sent_at),
                from_addr=m.from_addr,
            )
        )
    records: list[DecisionRecord] = []
    cancelled_ids = {d.send_id for d in decisions if d.outcome == "cancelled"}
    for d in decisions:
        if d.outcome == "sent" or d.at > end:
            continue
        send = sends[d.send_id]
        records.append(
            _record(
                s,
                send,
                names,
                at=d.at,
                outcome=d.outcome,
                code=d.code,
                reason=d.reason,
                deferred_until=d.deferred_until,
            )
        )
    pending = 0
    for send in sends.values():
        if send.state is SendState.PENDING:
            pending += 1
        elif (
            send.state is SendState.CANCELLED
            and send.id not in cancelled_ids
            and send.updated_at <= end
        ):
            # stop_on_reply and STOP cancel without a decision row: show them too.
            records.append(
                _record(
                    s,
                    send,
                    names,
                    at=send.updated_at,
                    outcome="cancelled",
                    code=send.decision_code or "cancelled",
                    reason=send.decision_reason or "cancelled",
                    deferred_until=None,
                )
            )
    records.sort(key=lambda r: (r.at, r.send_id))
    return messages, records, pending


def _deferrals(
    decisions: Sequence[Any], send_id: int | None, went: dict[int, datetime], sent_at: datetime
) -> tuple[str, ...]:
    """The codes the send was deferred with since its previous message (a requeued send
    goes twice), in order, once each; records this message's time in ``went``."""
    if send_id is None:
        return ()
    since = went.get(send_id)
    went[send_id] = sent_at
    codes = [
        d.code
        for d in decisions
        if d.send_id == send_id
        and d.outcome == "deferred"
        and d.at <= sent_at
        and (since is None or d.at > since)
    ]
    return tuple(dict.fromkeys(codes))


def _record(
    s: Scenario,
    send: ScheduledSend,
    names: dict[int, str],
    *,
    at: datetime,
    outcome: str,
    code: str,
    reason: str,
    deferred_until: datetime | None,
) -> DecisionRecord:
    return DecisionRecord(
        at=at,
        local=at.astimezone(ZoneInfo(s.zone)),
        day=day_number(s, at),
        outcome=outcome,
        code=code,
        reason=reason,
        send_id=send.id,
        kind=send.kind,
        channel=send.channel,
        sender=send.sender_role,
        campaign=names.get(send.campaign_id) if send.campaign_id else None,
        step=send.step_id,
        deferred_until=deferred_until,
    )


def _role_of(account: AccountSettings, phone: str) -> SenderRole:
    if account.concierge_phone and phone == account.concierge_phone:
        return SenderRole.CONCIERGE
    return SenderRole.AGENT
