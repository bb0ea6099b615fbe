"""Frozen, validated scenario values: what a scenario file says once it has been read.

A :class:`Scenario` holds its contact, agent, account settings (the project's,
extended by the file), its :class:`Event` list (each an :data:`Action` at a
:class:`DayTime`) and its :class:`Expectation` list. Nothing here reads a file:
:mod:`drip.replay.scenario.reader` builds these values, and only valid ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drip.campaigns.yamlsource import Position
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign
from drip.domain.enums import Channel, ConsentSource, MessageKind, SenderRole, TextStatus
from drip.domain.schedule import at_local
from drip.replay.scenario.format import DEFAULT_TAIL, NO_VALIDITY


@dataclass(frozen=True, slots=True)
class DayTime:
    """``day N`` (the start's local time) or ``day N HH:MM``, relative to a scenario's start."""

    day: int
    time: time | None = None

    def wall(self, start: datetime) -> datetime:
        """The local wall-clock time (naive) this stands for, given the naive local ``start``."""
        return datetime.combine(start.date() + timedelta(days=self.day), self.time or start.time())

    def instant(self, start: datetime, zone: str) -> datetime:
        """The UTC instant, DST-correct (``at_local``: skipped times move to the gap's end)."""
        wall = self.wall(start)
        return at_local(wall.date(), wall.time(), zone)

    def __str__(self) -> str:
        return f"day {self.day}" + (f" {self.time:%H:%M}" if self.time else "")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    first_name: str
    last_name: str
    phone: str


@dataclass(frozen=True, slots=True)
class ContactSpec:
    first_name: str
    last_name: str = ""
    phone: str | None = None
    email: str | None = None
    state: str | None = None
    source: ConsentSource = ConsentSource.REGISTRATION
    sms_consent: bool = True
    #: The CRM's fields, given to the contact's lead.created event when ``sync:`` is used.
    lead_source: str | None = None
    stage: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class ManualText:
    """``text: BODY``: a manual text, from the agent unless ``from: concierge``."""

    body: str
    sender: SenderRole = SenderRole.AGENT


@dataclass(frozen=True, slots=True)
class Enroll:
    """``enroll: REF``: enroll the contact in the campaign REF names."""

    ref: str
    campaign: Campaign
    path: Path


@dataclass(frozen=True, slots=True)
class Reply:
    """``reply: BODY``: an inbound text from the contact to the agent or concierge."""

    body: str
    to: SenderRole = SenderRole.AGENT
    opt_out_type: str | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    """``consent: true|false``: consent recorded again, or revoked by an operator."""

    given: bool


@dataclass(frozen=True, slots=True)
class SetTextStatus:
    """``text_status: ...``: an operator marks the contact (not) textable."""

    status: TextStatus


@dataclass(frozen=True, slots=True)
class Bulk:
    """``bulk: BODY``: a bulk text from the agent, due now; ``expires_at: "day N HH:MM"``
    (``drip bulk --expires-at``): skipped (expired) if it cannot go by then."""

    body: str
    expires_at: DayTime | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """``pause: NAME``: the operator pauses a campaign (its sends are held)."""

    campaign: str


@dataclass(frozen=True, slots=True)
class Resume:
    """``resume: NAME``: the operator resumes a paused campaign (overdue steps catch up)."""

    campaign: str


@dataclass(frozen=True, slots=True)
class Archive:
    """``archive: NAME``: the operator archives a campaign (its pending sends are cancelled)."""

    campaign: str


@dataclass(frozen=True, slots=True)
class Unenroll:
    """``unenroll: NAME``: the operator ends this contact's enrollment in a campaign."""

    campaign: str


@dataclass(frozen=True, slots=True)
class PauseContact:
    """``pause_contact: NAME|all``: the operator holds this contact's enrollment(s)."""

    campaign: str | None  # None: every active enrollment of the contact


@dataclass(frozen=True, slots=True)
class ResumeContact:
    """``resume_contact: NAME|all``: the operator releases this contact's enrollment(s)."""

    campaign: str | None


@dataclass(frozen=True, slots=True)
class EditCampaign:
    """``edit_campaign: PATH`` (extension): sync an edited campaign file."""

    ref: str
    campaign: Campaign
    path: Path


@dataclass(frozen=True, slots=True)
class Downtime:
    """``downtime_until: WHEN`` (extension): no dispatching from the event until WHEN."""

    until: DayTime


@dataclass(frozen=True, slots=True)
class CarrierOptOut:
    """``carrier_opt_out: true`` (extension): the carrier refuses texts with error 21610."""


@dataclass(frozen=True, slots=True)
class EmailUnsubscribe:
    """``email_unsubscribe: true`` (extension): the contact follows an email's unsubscribe link."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """``backlog: {from, segments}`` (extension): other traffic queued on a sender number."""

    sender: SenderRole
    segments: int


@dataclass(frozen=True, slots=True)
class CarrierReport:
    """``carrier: expired`` (extension): the carrier expired the latest text it holds (30036)."""

    what: str


@dataclass(frozen=True, slots=True)
class NumberReassigned:
    """``number_reassigned: true``: the reassigned-numbers source now says the contact's
    number was disconnected (and may have a new owner) on the event's date."""


@dataclass(frozen=True, slots=True)
class LookupOutage:
    """``lookup_outage_until: WHEN`` (extension): the reassigned-numbers check has no
    answer (Twilio 503/20503) from the event until WHEN."""

    until: DayTime


@dataclass(frozen=True, slots=True)
class Erase:
    """``erase: true``: the contact is erased (``drip contacts erase``); its opt-outs stay."""


@dataclass(frozen=True, slots=True)
class LeadEvent:
    """``{event: TYPE, data: {...}}``: a lead event for the contact, as a CRM posts it."""

    type: str
    data: tuple[tuple[str, object], ...] = ()

    @property
    def payload(self) -> dict[str, object]:
        return dict(self.data)


Action = (
    ManualText
    | Enroll
    | Reply
    | Consent
    | SetTextStatus
    | Bulk
    | Pause
    | Resume
    | Archive
    | Unenroll
    | PauseContact
    | ResumeContact
    | EditCampaign
    | Downtime
    | CarrierOptOut
    | EmailUnsubscribe
    | Backlog
    | CarrierReport
    | LeadEvent
    | NumberReassigned
    | LookupOutage
    | Erase
)


@dataclass(frozen=True, slots=True)
class Event:
    at: DayTime
    action: Action
    where: Position

    @property
    def kind(self) -> str:
        return _ACTION_KINDS[type(self.action)]


_ACTION_KINDS: dict[type, str] = {
    ManualText: "text",
    Enroll: "enroll",
    Reply: "reply",
    Consent: "consent",
    SetTextStatus: "text_status",
    Bulk: "bulk",
    Pause: "pause",
    Resume: "resume",
    Archive: "archive",
    Unenroll: "unenroll",
    PauseContact: "pause_contact",
    ResumeContact: "resume_contact",
    EditCampaign: "edit_campaign",
    Downtime: "downtime_until",
    CarrierOptOut: "carrier_opt_out",
    EmailUnsubscribe: "email_unsubscribe",
    Backlog: "backlog",
    CarrierReport: "carrier",
    LeadEvent: "event",
    NumberReassigned: "number_reassigned",
    LookupOutage: "lookup_outage_until",
    Erase: "erase",
}


@dataclass(frozen=True, slots=True)
class Expectation:
    """One expected outbound message; fields left out (None) are not checked."""

    where: Position
    day: int | None = None
    at: DayTime | None = None
    channel: Channel | None = None
    kind: MessageKind | None = None
    footer: bool | None = None
    contains: str | None = None
    sender: SenderRole | None = None
    #: ``from: "+1..."``: the exact number the message came from.
    sender_phone: str | None = None
    at_utc: datetime | None = None
    #: ValidityPeriod in seconds; ``NO_VALIDITY`` (-1): handed over without one.
    validity: int | None = None
    deferred: str | None = None
    status: str | None = None
    error: int | None = None

    def describe(self) -> str:
        """The expectation as written: ``{day: 15, footer: false}``."""
        parts: list[str] = []
        if self.day is not None:
            parts.append(f"day: {self.day}")
        if self.at is not None:
            parts.append(f"at: {self.at}")
        if self.at_utc is not None:
            parts.append(f'at_utc: "{self.at_utc:%Y-%m-%d %H:%M}"')
        if self.channel is not None:
            parts.append(f"channel: {self.channel.value}")
        if self.kind is not None:
            parts.append(f"kind: {self.kind.value}")
        if self.footer is not None:
            parts.append(f"footer: {str(self.footer).lower()}")
        if self.contains is not None:
            parts.append(f"contains: {self.contains!r}")
        if self.sender is not None:
            parts.append(f"from: {self.sender.value}")
        if self.sender_phone is not None:
            parts.append(f'from: "{self.sender_phone}"')
        if self.validity is not None:
            shown = "none" if self.validity == NO_VALIDITY else str(self.validity)
            parts.append(f"validity: {shown}")
        if self.deferred is not None:
            parts.append(f"deferred: {self.deferred}")
        if self.status is not None:
            parts.append(f"status: {self.status}")
        if self.error is not None:
            parts.append(f"error: {self.error}")
        return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A valid scenario, with its campaigns loaded and its account settings resolved.

    ``start`` is the naive local wall time of the start in ``zone`` (the
    contact's ``timezone`` if given, else resolved from the phone's area code and the account, see docs/compliance.md).
    """

    label: str
    name: str
    start: datetime
    timezone: str | None
    zone: str
    contact: ContactSpec
    agent: AgentSpec | None
    account: AccountSettings
    project: Path
    events: tuple[Event, ...] = ()
    expect: tuple[Expectation, ...] | None = None
    until: DayTime | None = None
    consent_text: str = ""
    #: More agents (``agents:``), for ``lead.assigned``.
    agents: tuple[AgentSpec, ...] = ()
    #: Campaigns loaded at the start (``sync:``), so that their triggers are live.
    synced: tuple[Campaign, ...] = ()

    @property
    def start_instant(self) -> datetime:
        return DayTime(0).instant(self.start, self.zone)

    def instant(self, at: DayTime) -> datetime:
        return at.instant(self.start, self.zone)

    @property
    def end(self) -> DayTime:
        """``until``, or 30 days after the last event or expectation."""
        if self.until is not None:
            return self.until
        last = max(self._times(), key=self.sort_key, default=DayTime(0))
        return DayTime(last.day + DEFAULT_TAIL.days, last.time)

    def sort_key(self, at: DayTime) -> tuple[int, time]:
        """Order of ``DayTime`` values in this scenario (``day N`` is at the start's time)."""
        return at.day, at.time or self.start.time()

    def _times(self) -> Iterator[DayTime]:
        for event in self.events:
            yield event.at
            if isinstance(event.action, Downtime | LookupOutage):
                yield event.action.until
        for expected in self.expect or ():
            if expected.at is not None:
                yield expected.at
            elif expected.at_utc is not None:
                local = expected.at_utc.astimezone(ZoneInfo(self.zone))
                yield DayTime((local.date() - self.start.date()).days, local.time())
            elif expected.day is not None:
                yield DayTime(expected.day)

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        """The campaigns enrolled in, by name, in order of first use (synced before the start)."""
        seen: dict[str, Campaign] = {c.name: c for c in self.synced}
        for event in self.events:
            if isinstance(event.action, Enroll):
                seen.setdefault(event.action.campaign.name, event.action.campaign)
        return tuple(seen.values())
