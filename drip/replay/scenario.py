"""Replay scenarios (SPEC §6): frozen values and a loader whose errors are located.

A scenario file is read with the campaign loader's :class:`YamlSource`, so a
problem is reported exactly like a campaign problem, as
``path:line:col: error: message``, every problem of the file at once, and a
file with any problem gives no ``Scenario`` (``drip replay`` exits 2).

Fields (SPEC §6): ``name``, ``start``, ``timezone``, ``company``, ``agent``,
``concierge``, ``contact``, ``until``, ``events``, ``expect``. Unknown fields
are errors, as are bad times, unknown event kinds and events out of order.

Event kinds: the SPEC's ``text`` (a manual text; ``from: concierge`` is an
extension, default the agent), ``enroll``, ``reply`` (with ``reply_to:
agent|concierge``), ``consent: true|false``, ``text_status:
cannot_be_texted|textable``, ``bulk``, ``pause``/``resume``/``archive``
(a campaign, by name or file) and ``unenroll`` (this contact from a
campaign); and these extensions, which the SPEC allows adding:

- ``edit_campaign: PATH``: sync an edited campaign file (SPEC §5, edits reach
  enrolled contacts); the file's ``name:`` says which campaign it replaces.
- ``downtime_until: "day N HH:MM"``: the dispatcher is down from the event's
  time until then; what falls due meanwhile is overdue when it comes back
  (SPEC §4, catch-up). Manual texts and inbound replies still work.
- ``carrier_opt_out: true``: from then on the carrier refuses every text to
  the contact with Twilio error 21610 (SPEC C4, revocation by the carrier).
- ``email_unsubscribe: true``: the contact follows the unsubscribe link of
  an email (the webhook app's ``GET /unsubscribe/<token>``; SPEC C5).
- ``opt_out_type: STOP|START|HELP`` on a ``reply``: Twilio's ``OptOutType``
  webhook parameter, which decides when present (SPEC §3).
- top-level ``state_rules:`` and ``blackouts:``, read as in ``account.yaml``
  (SPEC §4a): they extend the project's account settings for this scenario
  only (a blackout declared by operations, a test row).
- ``backlog: {from: agent|concierge, segments: N}`` (SPEC §4a, pacing): N
  message segments of other traffic are queued on that sender number at the
  event's time, so it is busy for N segments at its paced rate (1 segment/s
  less drip's 20 % margin unless ``senders:`` says otherwise); a campaign or
  bulk text due meanwhile is deferred with reason ``pacing``.
- ``carrier: expired`` (SPEC §4a): the carrier reports that the latest text
  it accepted for the contact, not yet delivered or failed, expired in its
  queue: a status callback ``failed`` with error 30036 through the status
  service the webhook calls. A campaign or bulk text goes back to the next
  opening once; a second expiry is final.

Expectations may give ``at_utc: "YYYY-MM-DD HH:MM"`` (SPEC §6), the absolute
instant to the minute, to check which zone a send was timed in, and these
extensions (SPEC §4a, the carrier's clock):

- ``validity: SECONDS``: the ``ValidityPeriod`` the text was handed to the
  provider with (to within 2 s: a text may wait that long for its sender's
  slot); ``validity: none`` for a text handed over without one (manual texts,
  live compliance replies).
- ``deferred: CODE``: the text's send was deferred at least once with that
  reason code before it went (``window``, ``state_cap``, ``closed_day``,
  ``holiday``, ``blackout``, ``catch_up``, ``pacing``, ``carrier_clock``).
- ``status: STATUS`` and ``error: CODE``: the provider status the text has at
  the end (``failed`` after an expiry) and its error code (30036).

Choices where the SPEC is silent:

- ``start`` is ``"YYYY-MM-DD HH:MM"`` (seconds and a ``T`` are accepted).
- ``day N`` is at most 3650 (ten years).
- Events at the same time are applied in file order; an event before
  ``start`` (``day 0`` earlier than the start time) is an error.
- ``sms_consent`` defaults to true for ``source: registration`` with a phone
  and to false otherwise; ``sms_consent: true`` without a phone is an error.
  With ``source: import`` or ``manual`` and ``sms_consent: true``, consent is
  recorded with import or manual evidence; ``sms_consent: false`` records none.
- ``consent: true`` records consent again (source ``api``); ``consent: false``
  revokes it as an operator would (C4); a later START does not restore it.
- Without ``expect`` nothing is checked (the timeline is still printed); an
  empty ``expect: []`` means no message at all may be sent.
- ``enroll`` names a file (relative to the scenario file, then to the project
  root) or a campaign by ``name:`` in the project's ``campaigns/`` folder. The
  project root is the nearest folder holding ``campaigns/``, looking up from
  the scenario file, then from the working directory, then the campaigns
  bundled with drip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import yaml

import drip
from drip.campaigns.account_file import load_account
from drip.campaigns.loader import load_campaign_file, load_campaigns
from drip.campaigns.rules_file import RowsRead, merge, state_rule_rows
from drip.campaigns.rules_file import blackouts as read_blackouts
from drip.campaigns.yamlsource import STR, Field, Position, YamlSource, describe, is_null
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign
from drip.domain.enums import Channel, ConsentSource, MessageKind, SenderRole, TextStatus
from drip.domain.pacing import MAX_VALIDITY_SECONDS
from drip.domain.policy import DeferCode
from drip.domain.schedule import at_local
from drip.domain.zones import (
    normalize_phone,
    normalize_state,
    resolve_timezone,
    validate_timezone,
)
from drip.errors import CampaignError, DripError, ValidationError

SCENARIO_FIELDS = (
    "name",
    "start",
    "timezone",
    "company",
    "agent",
    "concierge",
    "contact",
    "until",
    "events",
    "expect",
    "state_rules",
    "blackouts",
)
SCENARIO_REQUIRED = ("start", "contact")
AGENT_FIELDS = ("first_name", "last_name", "phone")
CONCIERGE_FIELDS = ("phone",)
CONTACT_FIELDS = ("first_name", "last_name", "phone", "email", "state", "source", "sms_consent")
CONTACT_SOURCES = ("registration", "import", "manual")
#: Event kinds: the SPEC's, then the extensions (see the module docstring).
EVENT_KINDS = (
    "text",
    "enroll",
    "reply",
    "consent",
    "text_status",
    "bulk",
    "pause",
    "resume",
    "archive",
    "unenroll",
    "edit_campaign",
    "downtime_until",
    "carrier_opt_out",
    "email_unsubscribe",
    "backlog",
    "carrier",
)
#: Fields that go with one event kind only.
EVENT_MODIFIERS = {"from": "text", "reply_to": "reply", "opt_out_type": "reply"}
EXPECT_FIELDS = (
    "day",
    "at",
    "at_utc",
    "channel",
    "kind",
    "footer",
    "contains",
    "from",
    "validity",
    "deferred",
    "status",
    "error",
)
BACKLOG_FIELDS = ("from", "segments")
#: What ``carrier:`` can report (an expiry, Twilio error 30036).
CARRIER_EVENTS = ("expired",)
#: Reason codes a send can be deferred with (``deferred:`` of an expectation).
DEFER_CODES = tuple(c.value for c in DeferCode)
#: Provider statuses a text can end in (``status:`` of an expectation).
PROVIDER_STATUSES = ("queued", "accepted", "sending", "sent", "delivered", "undelivered", "failed")
SENDER_ROLES = tuple(r.value for r in SenderRole)
TEXT_STATUSES = (TextStatus.CANNOT_BE_TEXTED.value, TextStatus.TEXTABLE.value)
OPT_OUT_TYPES = ("STOP", "START", "HELP")
MAX_DAY = 3650
#: ``validity: none``: the text was handed over without a ValidityPeriod.
NO_VALIDITY = -1
#: Largest ``backlog`` in segments (a day of a short code).
MAX_BACKLOG = 10_000_000
#: ``until`` when the file gives none: this long after the last event or expectation.
DEFAULT_TAIL = timedelta(days=30)

_START = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
_DAY_TIME = re.compile(r"day\s+(\d+)(?:\s+(\d{1,2}):(\d{2}))?", re.IGNORECASE)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
T = TypeVar("T")
_CONSENT_TEXT = (
    "By checking this box I agree to receive text messages about my home search from "
    "{company} and my agent. Msg frequency varies. Msg & data rates may apply. "
    "Reply HELP for help, STOP to opt out."
)


class ScenarioError(DripError):
    """A scenario file is invalid; carries every located problem (``path:line:col: ...``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# -- values --------------------------------------------------------------------------


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
    """``bulk: BODY``: a bulk text from the agent, due now."""

    body: str


@dataclass(frozen=True, slots=True)
class Pause:
    """``pause: NAME``: the operator pauses a campaign (SPEC §8: its sends are held)."""

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
    | EditCampaign
    | Downtime
    | CarrierOptOut
    | EmailUnsubscribe
    | Backlog
    | CarrierReport
)


@dataclass(frozen=True, slots=True)
class Event:
    at: DayTime
    action: Action
    where: Position

    @property
    def kind(self) -> str:
        return _ACTION_KINDS[type(self.action)]


_LIFECYCLE: dict[str, type[Pause | Resume | Archive | Unenroll]] = {
    "pause": Pause,
    "resume": Resume,
    "archive": Archive,
    "unenroll": Unenroll,
}

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
    EditCampaign: "edit_campaign",
    Downtime: "downtime_until",
    CarrierOptOut: "carrier_opt_out",
    EmailUnsubscribe: "email_unsubscribe",
    Backlog: "backlog",
    CarrierReport: "carrier",
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
    contact's ``timezone`` if given, else resolved as in SPEC §4).
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

    @property
    def start_instant(self) -> datetime:
        return DayTime(0).instant(self.start, self.zone)

    def instant(self, at: DayTime) -> datetime:
        return at.instant(self.start, self.zone)

    @property
    def end(self) -> DayTime:
        """``until``, or 30 days after the last event or expectation (SPEC §6)."""
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
            if isinstance(event.action, Downtime):
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
        seen: dict[str, Campaign] = {}
        for event in self.events:
            if isinstance(event.action, Enroll):
                seen.setdefault(event.action.campaign.name, event.action.campaign)
        return tuple(seen.values())


# -- project -------------------------------------------------------------------------


def bundled_project() -> Path:
    """The folder holding the campaigns that ship with drip (the repository root)."""
    return Path(drip.__file__).resolve().parent.parent


def find_project(*starts: Path) -> Path:
    """The project root: the nearest folder above ``starts`` (in turn) with a ``campaigns/``.

    A folder whose ``campaigns/`` holds ``account.yaml`` wins over a nearer one
    without (a folder of test campaigns next to scenarios is not a project);
    with neither, the campaigns bundled with drip.
    """
    for marker in ("campaigns/account.yaml", "campaigns"):
        for begin in starts:
            here = begin.resolve()
            for folder in (here, *here.parents):
                if (folder / marker).exists():
                    return folder
    return bundled_project()


@dataclass
class _Catalog:
    """The campaigns of a project's ``campaigns/`` folder, by name, with their files."""

    campaigns: dict[str, tuple[Campaign, Path]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@cache
def _catalog(folder: Path) -> _Catalog:
    result = load_campaigns(folder) if folder.is_dir() else None
    catalog = _Catalog()
    if result is not None:
        for loaded in result.files:
            catalog.campaigns[loaded.campaign.name] = (loaded.campaign, loaded.path)
        catalog.errors = list(result.errors)
    return catalog


@cache
def _account(folder: Path) -> AccountSettings:
    # Parsed once per folder and process: every scenario of a folder shares it.
    return load_account(folder)


def project_account(project: Path) -> AccountSettings:
    """``campaigns/account.yaml`` of ``project`` (defaults if missing); CampaignError if bad."""
    return _account(project / "campaigns")


# -- loading -------------------------------------------------------------------------


def load_scenario(path: Path | str, *, project: Path | None = None) -> Scenario:
    """The scenario of the file at ``path``; ``ScenarioError`` lists every located problem."""
    source = YamlSource.read(path)
    root = project or find_project(Path(path).resolve().parent, Path.cwd())
    return parse_scenario(source, project=root, base=Path(path).resolve().parent)


def parse_scenario(source: YamlSource, *, project: Path, base: Path) -> Scenario:
    """The scenario of ``source``; ``base`` is the folder relative file references start from."""
    scenario = _Reader(source, project, base).read()
    if source.errors or scenario is None:
        raise ScenarioError(source.errors or [f"{source.label}:1:1: error: not a scenario"])
    return scenario


class _Reader:
    def __init__(self, source: YamlSource, project: Path, base: Path) -> None:
        self.source = source
        self.project = project
        self.base = base

    def read(self) -> Scenario | None:
        s = self.source
        root = s.compose()
        if root is None:
            return None
        fields = s.mapping(root, "the scenario")
        if fields is None:
            return None
        s.check_fields(
            fields, root, "the scenario", allowed=SCENARIO_FIELDS, required=SCENARIO_REQUIRED
        )
        account = self._account(root)
        name = self._opt(fields, "name", lambda n: s.string(n, "name"))
        start = self._opt(fields, "start", self._start)
        timezone = self._opt(fields, "timezone", self._timezone)
        company = self._opt(fields, "company", lambda n: s.string(n, "company"))
        agent = self._opt(fields, "agent", self._agent)
        concierge = self._opt(fields, "concierge", self._concierge)
        contact = self._opt(fields, "contact", self._contact)
        until = self._opt(fields, "until", lambda n: self._day_time(n, "until"))
        events = self._opt(fields, "events", self._events)
        expect = self._opt(fields, "expect", self._expectations)
        rules = self._opt(fields, "state_rules", self._state_rules)
        blackouts = self._opt(fields, "blackouts", lambda n: read_blackouts(s, n))
        if account is not None:
            if rules is not None:
                account = replace(account, state_rules=merge(account.state_rules, rules))
            if blackouts is not None:
                account = replace(account, blackouts=account.blackouts + blackouts)
            if company is not None:
                account = replace(account, company=company.strip())
            if concierge is not None:
                account = replace(account, concierge_phone=concierge)
        if start is not None:
            self._check_times(start, events or [], expect or [], until, fields)
        if start is None or contact is None or account is None or s.error_count:
            return None
        zone = resolve_timezone(timezone, contact.phone, account.default_timezone).name
        scenario = Scenario(
            label=s.label,
            name=(name or s.path.stem).strip(),
            start=start,
            timezone=timezone,
            zone=zone,
            contact=contact,
            agent=agent,
            account=account,
            project=self.project,
            events=tuple(events or ()),
            expect=tuple(expect) if expect is not None else None,
            until=until,
            consent_text=_CONSENT_TEXT.format(company=account.company),
        )
        self._check_senders(scenario)
        self._check_campaign_names(scenario)
        return None if s.error_count else scenario

    # -- helpers -----------------------------------------------------------------

    def _opt(
        self, fields: dict[str, Field], name: str, read: Callable[[yaml.Node], T | None]
    ) -> T | None:
        item = fields.get(name)
        if item is None or is_null(item.value):
            return None
        return read(item.value)

    def _account(self, root: yaml.Node) -> AccountSettings | None:
        try:
            return project_account(self.project)
        except CampaignError as exc:
            self.source.error(
                root,
                f"the account settings of {self.project / 'campaigns'} are invalid: "
                + "; ".join(exc.problems),
            )
            return None

    def _state_rules(self, node: yaml.Node) -> RowsRead | None:
        return state_rule_rows(self.source, node, require_source=False, allow_disable=True)

    def _utc(self, node: yaml.Node, what: str) -> datetime | None:
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        m = _START.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None or node.tag not in (STR, _TIMESTAMP):
            self.source.error(
                node, f'{what} must be a UTC time "YYYY-MM-DD HH:MM", got {describe(node)}'
            )
            return None
        year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
        try:
            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        except ValueError as exc:
            self.source.error(node, f"{what} {text!r} is not a date and time: {exc}")
            return None

    def _start(self, node: yaml.Node) -> datetime | None:
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        m = _START.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None or text is None or node.tag not in (STR, _TIMESTAMP):
            self.source.error(
                node, f'start must be a local time "YYYY-MM-DD HH:MM", got {describe(node)}'
            )
            return None
        year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
        second = int(m.group(6) or 0)
        try:
            return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - local wall time
        except ValueError as exc:
            self.source.error(node, f"start {text.strip()!r} is not a date and time: {exc}")
            return None

    def _timezone(self, node: yaml.Node) -> str | None:
        name = self.source.string(node, "timezone")
        if name is None:
            return None
        try:
            return validate_timezone(name)
        except ValidationError as exc:
            self.source.error(node, str(exc))
            return None

    def _phone(self, node: yaml.Node, what: str) -> str | None:
        raw = self.source.string(node, what)
        if raw is None:
            return None
        try:
            return normalize_phone(raw)
        except ValidationError as exc:
            self.source.error(node, f"{what}: {exc}")
            return None

    def _agent(self, node: yaml.Node) -> AgentSpec | None:
        s = self.source
        fields = s.mapping(node, "agent")
        if fields is None:
            return None
        if not s.check_fields(
            fields, node, "agent", allowed=AGENT_FIELDS, required=("first_name", "phone")
        ):
            return None
        first = s.string(fields["first_name"].value, "agent first_name")
        last = self._opt(fields, "last_name", lambda n: s.string(n, "agent last_name"))
        phone = self._phone(fields["phone"].value, "agent phone")
        if first is None or phone is None:
            return None
        return AgentSpec(first.strip(), (last or "").strip(), phone)

    def _concierge(self, node: yaml.Node) -> str | None:
        s = self.source
        fields = s.mapping(node, "concierge")
        if fields is None:
            return None
        if not s.check_fields(
            fields, node, "concierge", allowed=CONCIERGE_FIELDS, required=CONCIERGE_FIELDS
        ):
            return None
        return self._phone(fields["phone"].value, "concierge phone")

    def _contact(self, node: yaml.Node) -> ContactSpec | None:
        s = self.source
        fields = s.mapping(node, "contact")
        if fields is None:
            return None
        if not s.check_fields(
            fields, node, "contact", allowed=CONTACT_FIELDS, required=("first_name",)
        ):
            return None
        before = s.error_count
        first = s.string(fields["first_name"].value, "contact first_name")
        last = self._opt(fields, "last_name", lambda n: s.string(n, "contact last_name"))
        phone = self._opt(fields, "phone", lambda n: self._phone(n, "contact phone"))
        email = self._opt(fields, "email", self._email)
        state = self._opt(fields, "state", self._state)
        source_name = self._opt(
            fields, "source", lambda n: s.choice(n, "contact source", CONTACT_SOURCES)
        )
        consent = self._opt(fields, "sms_consent", lambda n: s.boolean(n, "sms_consent"))
        if s.error_count > before or first is None:
            return None
        if phone is None and email is None:
            s.error(node, "contact needs a phone or an email (or both)")
            return None
        source = ConsentSource(source_name or "registration")
        if consent is None:
            consent = source is ConsentSource.REGISTRATION and phone is not None
        if consent and phone is None:
            s.error(fields["sms_consent"].value, "sms_consent: true needs a contact phone")
            return None
        return ContactSpec(
            first.strip(), (last or "").strip(), phone, email, state, source, consent
        )

    def _email(self, node: yaml.Node) -> str | None:
        email = self.source.string(node, "contact email")
        if email is None:
            return None
        email = email.strip()
        local, _, domain = email.partition("@")
        if not local or "." not in domain:
            self.source.error(node, f"contact email {email!r} is not an email address")
            return None
        return email

    def _state(self, node: yaml.Node) -> str | None:
        raw = self.source.string(node, "contact state")
        if raw is None:
            return None
        try:
            return normalize_state(raw)
        except ValidationError as exc:
            self.source.error(node, str(exc))
            return None

    def _day_time(self, node: yaml.Node, what: str) -> DayTime | None:
        text = node.value if isinstance(node, yaml.ScalarNode) and node.tag == STR else None
        m = _DAY_TIME.fullmatch(text.strip()) if text is not None else None
        if m is None:
            self.source.error(
                node, f'{what} must be "day N" or "day N HH:MM", got {describe(node)}'
            )
            return None
        day = int(m.group(1))
        if day > MAX_DAY:
            self.source.error(node, f"{what}: day must be at most {MAX_DAY}, got {day}")
            return None
        if m.group(2) is None:
            return DayTime(day)
        hour, minute = int(m.group(2)), int(m.group(3))
        if hour > 23 or minute > 59:
            self.source.error(
                node, f'{what}: "{m.group(2)}:{m.group(3)}" is not a time of day (00:00 to 23:59)'
            )
            return None
        return DayTime(day, time(hour, minute))

    # -- events ------------------------------------------------------------------

    def _events(self, node: yaml.Node) -> list[Event] | None:
        items = self.source.sequence(node, "events")
        if items is None:
            return None
        return [e for e in (self._event(item, i) for i, item in enumerate(items, 1)) if e]

    def _event(self, node: yaml.Node, number: int) -> Event | None:
        s = self.source
        what = f"event {number}"
        fields = s.mapping(node, what)
        if fields is None:
            return None
        allowed = ("at", *EVENT_KINDS, *EVENT_MODIFIERS)
        unknown = [name for name in fields if name not in allowed]
        for name in unknown:
            item = fields[name]
            s.error(
                item.key,
                f"unknown event kind {name!r} in {what}; "
                f"events are: {', '.join(EVENT_KINDS)} (with at:)",
            )
        kinds = [name for name in fields if name in EVENT_KINDS]
        if "at" not in fields:
            s.error(node, f'{what} needs at: "day N" or "day N HH:MM"')
        if not kinds:
            if not unknown:
                s.error(node, f"{what} says nothing happens; give one of: {', '.join(EVENT_KINDS)}")
            return None
        if len(kinds) > 1:
            s.error(
                fields[kinds[1]].key,
                f"{what} has two kinds ({kinds[0]} and {kinds[1]}); write one event per item",
            )
            return None
        kind = kinds[0]
        for name, owner in EVENT_MODIFIERS.items():
            if name in fields and owner != kind:
                s.error(fields[name].key, f"{name} goes with {owner}, not with {kind}")
        at = self._day_time(fields["at"].value, f"{what} at") if "at" in fields else None
        action = self._action(kind, fields, what)
        if at is None or action is None:
            return None
        return Event(at, action, s.at(node))

    def _action(self, kind: str, fields: dict[str, Field], what: str) -> Action | None:
        s = self.source
        node = fields[kind].value
        label = f"{what} {kind}"
        if kind == "text":
            body = s.string(node, label)
            role = self._opt(fields, "from", lambda n: s.choice(n, f"{what} from", SENDER_ROLES))
            return ManualText(body, SenderRole(role or "agent")) if body is not None else None
        if kind == "reply":
            body = s.string(node, label)
            to = self._opt(
                fields, "reply_to", lambda n: s.choice(n, f"{what} reply_to", SENDER_ROLES)
            )
            oot = self._opt(
                fields, "opt_out_type", lambda n: s.choice(n, f"{what} opt_out_type", OPT_OUT_TYPES)
            )
            return Reply(body, SenderRole(to or "agent"), oot) if body is not None else None
        if kind == "consent":
            given = s.boolean(node, label)
            return Consent(given) if given is not None else None
        if kind == "text_status":
            status = s.choice(node, label, TEXT_STATUSES)
            return SetTextStatus(TextStatus(status)) if status is not None else None
        if kind == "bulk":
            body = s.string(node, label)
            return Bulk(body) if body is not None else None
        if kind in _LIFECYCLE:
            name = self._campaign_name(node, label)
            return _LIFECYCLE[kind](name) if name is not None else None
        if kind == "enroll":
            return self._enroll(node, label)
        if kind == "edit_campaign":
            return self._edit(node, label)
        if kind == "downtime_until":
            until = self._day_time(node, label)
            return Downtime(until) if until is not None else None
        if kind == "carrier_opt_out":
            flag = s.boolean(node, label)
            if flag is False:
                s.error(node, f"{label}: only true means something (the carrier refuses texts)")
            return CarrierOptOut() if flag else None
        if kind == "email_unsubscribe":
            flag = s.boolean(node, label)
            if flag is False:
                s.error(node, f"{label}: only true means something (the contact unsubscribes)")
            return EmailUnsubscribe() if flag else None
        if kind == "backlog":
            return self._backlog(node, label)
        if kind == "carrier":
            reported = s.choice(node, label, CARRIER_EVENTS)
            return CarrierReport(reported) if reported is not None else None
        raise AssertionError(kind)  # pragma: no cover - EVENT_KINDS is exhaustive

    def _backlog(self, node: yaml.Node, label: str) -> Backlog | None:
        s = self.source
        fields = s.mapping(node, label)
        if fields is None:
            return None
        if not s.check_fields(fields, node, label, allowed=BACKLOG_FIELDS, required=("segments",)):
            return None
        role = self._opt(fields, "from", lambda n: s.choice(n, f"{label} from", SENDER_ROLES))
        segments = s.integer(
            fields["segments"].value, f"{label} segments", minimum=1, maximum=MAX_BACKLOG
        )
        if segments is None:
            return None
        return Backlog(SenderRole(role or "agent"), segments)

    def _campaign_name(self, node: yaml.Node, label: str) -> str | None:
        """A campaign name, or the name inside the campaign file REF names."""
        ref = self.source.string(node, label)
        if ref is None:
            return None
        ref = ref.strip()
        if not ref:
            self.source.error(node, f"{label}: give a campaign name")
            return None
        found = self._campaign_file(node, ref, label)
        if found is not None:
            return found[0].name
        if _looks_like_path(ref):
            self._no_file(node, ref, label)
            return None
        return ref

    def _enroll(self, node: yaml.Node, label: str) -> Enroll | None:
        ref = self.source.string(node, label)
        if ref is None:
            return None
        ref = ref.strip()
        found = self._campaign_file(node, ref, label)
        if found is not None:
            return Enroll(ref, *found)
        if _looks_like_path(ref):
            self._no_file(node, ref, label)
            return None
        catalog = _catalog(self.project / "campaigns")
        named = catalog.campaigns.get(ref)
        if named is None:
            known = ", ".join(sorted(catalog.campaigns)) or "none"
            broken = (
                f"; {len(catalog.errors)} problem(s) in that folder kept files from loading "
                "(see drip lint)"
                if catalog.errors
                else ""
            )
            self.source.error(
                node,
                f"{label}: no campaign file {ref!r} and no campaign named {ref!r} in "
                f"{self.project / 'campaigns'} (known: {known}){broken}",
            )
            return None
        return Enroll(ref, *named)

    def _edit(self, node: yaml.Node, label: str) -> EditCampaign | None:
        ref = self.source.string(node, label)
        if ref is None:
            return None
        ref = ref.strip()
        found = self._campaign_file(node, ref, label)
        if found is None:
            self._no_file(node, ref, label)
            return None
        return EditCampaign(ref, *found)

    def _candidates(self, ref: str) -> list[Path]:
        return [self.base / ref, self.project / ref]

    def _no_file(self, node: yaml.Node, ref: str, label: str) -> None:
        where = " or ".join(str(p) for p in self._candidates(ref))
        self.source.error(node, f"{label}: no campaign file {ref!r} (looked for {where})")

    def _campaign_file(self, node: yaml.Node, ref: str, label: str) -> tuple[Campaign, Path] | None:
        for path in self._candidates(ref):
            if path.is_file():
                try:
                    loaded = load_campaign_file(path)
                except CampaignError as exc:
                    self.source.error(
                        node, f"{label}: the campaign file {path} is invalid (see below)"
                    )
                    for problem in exc.problems:
                        self.source.error(node, f"  {problem}")
                    return None
                return loaded.campaign, path
        return None

    # -- expectations ------------------------------------------------------------

    def _expectations(self, node: yaml.Node) -> list[Expectation] | None:
        items = self.source.sequence(node, "expect")
        if items is None:
            return None
        found = [self._expectation(item, i) for i, item in enumerate(items, 1)]
        return [e for e in found if e is not None]

    def _expectation(self, node: yaml.Node, number: int) -> Expectation | None:
        s = self.source
        what = f"expectation {number}"
        fields = s.mapping(node, what)
        if fields is None:
            return None
        before = s.error_count
        s.check_fields(fields, node, what, allowed=EXPECT_FIELDS)
        day = self._opt(
            fields, "day", lambda n: s.integer(n, f"{what} day", minimum=0, maximum=MAX_DAY)
        )
        at = self._opt(fields, "at", lambda n: self._day_time(n, f"{what} at"))
        at_utc = self._opt(fields, "at_utc", lambda n: self._utc(n, f"{what} at_utc"))
        channel = self._opt(
            fields, "channel", lambda n: s.choice(n, f"{what} channel", [c.value for c in Channel])
        )
        kind = self._opt(
            fields, "kind", lambda n: s.choice(n, f"{what} kind", [k.value for k in MessageKind])
        )
        footer = self._opt(fields, "footer", lambda n: s.boolean(n, f"{what} footer"))
        contains = self._opt(fields, "contains", lambda n: s.string(n, f"{what} contains"))
        sender = self._opt(fields, "from", lambda n: s.choice(n, f"{what} from", SENDER_ROLES))
        validity = self._opt(fields, "validity", lambda n: self._validity(n, f"{what} validity"))
        if "validity" in fields and is_null(fields["validity"].value):
            validity = NO_VALIDITY  # ``validity: none`` (or null): handed over without one
        deferred = self._opt(
            fields, "deferred", lambda n: s.choice(n, f"{what} deferred", DEFER_CODES)
        )
        status = self._opt(
            fields, "status", lambda n: s.choice(n, f"{what} status", PROVIDER_STATUSES)
        )
        error = self._opt(
            fields, "error", lambda n: s.integer(n, f"{what} error", minimum=1, maximum=99_999)
        )
        if day is not None and at is not None and day != at.day:
            s.error(fields["day"].value, f"{what}: day {day} disagrees with at: {at}")
        if s.error_count > before:
            return None
        return Expectation(
            where=s.at(node),
            day=day,
            at=at,
            channel=Channel(channel) if channel else None,
            kind=MessageKind(kind) if kind else None,
            footer=footer,
            contains=contains,
            sender=SenderRole(sender) if sender else None,
            at_utc=at_utc,
            validity=validity,
            deferred=deferred,
            status=status,
            error=error,
        )

    def _validity(self, node: yaml.Node, what: str) -> int | None:
        """Seconds, 1 to Twilio's 36,000; ``none`` is read by the caller."""
        if isinstance(node, yaml.ScalarNode) and node.tag == STR and node.value == "none":
            return NO_VALIDITY
        return self.source.integer(node, what, minimum=1, maximum=MAX_VALIDITY_SECONDS)

    # -- whole-scenario checks ---------------------------------------------------

    def _check_times(
        self,
        start: datetime,
        events: Sequence[Event],
        expect: Sequence[Expectation],
        until: DayTime | None,
        fields: dict[str, Field],
    ) -> None:
        """Events in time order, none before the start, and ``until`` after all of them."""
        s = self.source

        def key(at: DayTime) -> tuple[int, time]:
            return at.day, at.time or start.time()

        previous: Event | None = None
        for event in events:
            if key(event.at) < key(DayTime(0)):
                s.error(
                    event.where,
                    f"event at {event.at} is before the start ({start:%H:%M} on day 0)",
                )
            elif previous is not None and key(event.at) < key(previous.at):
                s.error(
                    event.where,
                    f"events must be in time order: {event.at} comes before the previous "
                    f"event's {previous.at} (line {previous.where.line})",
                )
            if isinstance(event.action, Downtime) and key(event.action.until) <= key(event.at):
                s.error(
                    event.where, f"downtime_until {event.action.until} must be after {event.at}"
                )
            previous = event
        if until is not None:
            needed = [e.at for e in events] + [
                e.action.until for e in events if isinstance(e.action, Downtime)
            ]
            needed += [e.at for e in expect if e.at is not None]
            needed += [DayTime(e.day) for e in expect if e.at is None and e.day is not None]
            late = [t for t in needed if key(t) > key(until)]
            if late:
                s.error(
                    fields["until"].value,
                    f"until {until} is before {max(late, key=key)}, "
                    "which an event or expectation needs",
                )

    def _check_senders(self, scenario: Scenario) -> None:
        account = scenario.account
        for event in scenario.events:
            action = event.action
            if (
                isinstance(action, Reply | CarrierOptOut | CarrierReport)
                and scenario.contact.phone is None
            ):
                self.source.error(event.where, f"{event.kind} needs a contact phone")
            if isinstance(action, EmailUnsubscribe) and scenario.contact.email is None:
                self.source.error(event.where, "email_unsubscribe needs a contact email")
            if isinstance(action, Consent) and scenario.contact.phone is None:
                self.source.error(event.where, "consent (SMS consent) needs a contact phone")
            role = None
            if isinstance(action, ManualText | Reply):
                role = action.sender if isinstance(action, ManualText) else action.to
            if isinstance(action, Backlog):
                role = action.sender
                if (
                    role is SenderRole.AGENT
                    and scenario.agent is None
                    and account.default_agent is None
                ):
                    self.source.error(
                        event.where,
                        "a backlog on the agent's number needs an agent: give agent: "
                        "{first_name, phone}",
                    )
            if role is SenderRole.CONCIERGE and account.concierge_phone is None:
                self.source.error(
                    event.where,
                    "this event needs a concierge number: give concierge: {phone: ...} "
                    "(or concierge_phone in campaigns/account.yaml)",
                )
            if (
                isinstance(action, Reply)
                and role is SenderRole.AGENT
                and scenario.agent is None
                and account.default_agent is None
            ):
                self.source.error(
                    event.where,
                    "a reply to the agent needs an agent: give agent: {first_name, phone}",
                )

    def _check_campaign_names(self, scenario: Scenario) -> None:
        first: dict[str, Enroll] = {}
        for event in scenario.events:
            action = event.action
            if not isinstance(action, Enroll):
                continue
            seen = first.setdefault(action.campaign.name, action)
            if seen.campaign.version != action.campaign.version:
                self.source.error(
                    event.where,
                    f"campaign {action.campaign.name!r} is enrolled from two different "
                    f"files ({seen.path} and {action.path}); use edit_campaign to change it",
                )


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml"))


def scenario_files(paths: Sequence[Path]) -> list[Path]:
    """The scenario files among ``paths``: files as given, folders' ``*.yaml`` in name order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            out.append(path)
    return out
