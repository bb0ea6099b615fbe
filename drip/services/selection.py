"""Which contacts an operator means: the filters of ``contacts list`` and ``enroll-many``.

Filters (each left at its default selects all):

- ``state``: the contact's address state, else its area code's state (as
  the state rules and ``drip bulk --state`` use);
- ``source``: how the contact came in (registration, import, api, manual);
- ``agent``: the assigned agent's phone;
- ``name``: a piece of the first or last name (any case);
- ``textable``: True for contacts that may be texted now (consent, not
  opted out, text status textable), False for the others;
- ``not_enrolled``: no active enrollment in any campaign;
- ``phones``: only these numbers (``--file``); numbers that are no contact
  are reported.

Each contact left out is counted under the first filter that leaves it out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drip.domain.enums import CampaignStatus, ConsentSource, TextStatus
from drip.domain.zones import normalize_phone, normalize_state, resolve_state
from drip.errors import NotFoundError, ValidationError
from drip.services.deps import Deps
from drip.store import repository as repo
from drip.store import selection as store

REASON_WORDS = {
    "state": "not in the chosen state",
    "source": "came in another way than the chosen source",
    "agent": "assigned to another agent",
    "name": "name does not match",
    "stage": "in another CRM stage",
    "tag": "without the chosen tag",
    "no_consent": "no SMS consent recorded (--textable)",
    "opted_out": "opted out of texts (--textable)",
    "cannot_be_texted": "text status cannot_be_texted (--textable)",
    "textable": "can be texted (--not-textable)",
    "enrolled": "already active in a campaign (--not-enrolled)",
    "file": "phone not in the file",
    "already_active": "already active in this campaign",
}


@dataclass(frozen=True, slots=True)
class ContactFilters:
    """The operator's filters (see the module docstring)."""

    state: str | None = None
    source: ConsentSource | None = None
    agent: str | None = None
    name: str | None = None
    textable: bool | None = None
    not_enrolled: bool = False
    phones: tuple[str, ...] | None = None
    stage: str | None = None
    tag: str | None = None

    def describe(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("state", self.state),
                ("source", self.source.value if self.source else None),
                ("agent", self.agent),
                ("name", self.name),
                ("stage", self.stage),
                ("tag", self.tag),
                ("textable", None if self.textable is None else ("yes" if self.textable else "no")),
                ("not_enrolled", "yes" if self.not_enrolled else None),
                ("file", f"{len(self.phones)} phones" if self.phones is not None else None),
            )
            if v is not None
        ]
        return ", ".join(parts) or "all contacts"


@dataclass(frozen=True, slots=True)
class ContactSummary:
    """One contact as ``drip contacts list`` shows it (and its JSON shape)."""

    id: int
    first_name: str
    last_name: str
    phone: str | None
    email: str | None
    state: str | None
    timezone: str | None
    source: str
    agent_phone: str | None
    sms: str  # consent | no_consent | opted_out
    text_status: str
    email_opted_out: bool
    campaigns: tuple[str, ...]
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "email": self.email,
            "state": self.state,
            "timezone": self.timezone,
            "source": self.source,
            "agent_phone": self.agent_phone,
            "sms": self.sms,
            "text_status": self.text_status,
            "email_opted_out": self.email_opted_out,
            "campaigns": list(self.campaigns),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen contacts, the others counted by reason, and file numbers that are no contact."""

    contacts: tuple[ContactSummary, ...]
    excluded: tuple[tuple[str, int], ...]
    considered: int
    unknown_phones: tuple[str, ...] = ()
    #: Every chosen contact's id (``contacts`` may stop at a limit, or be left empty).
    ids: tuple[int, ...] = ()

    def lines(self) -> list[str]:
        out = []
        for reason, n in self.excluded:
            out.append(f"  excluded {n:>6}  {REASON_WORDS.get(reason, reason)}")
        if self.unknown_phones:
            shown = ", ".join(self.unknown_phones[:5])
            more = (
                f" and {len(self.unknown_phones) - 5} more" if len(self.unknown_phones) > 5 else ""
            )
            out.append(
                f"  {len(self.unknown_phones)} number(s) of the file are no contact: {shown}{more}"
            )
        return out


def read_phone_file(path: Path) -> tuple[str, ...]:
    """Phone numbers, one a line (or the first column of a CSV); blank and ``#`` lines skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"--file {path}: cannot read it ({exc})") from exc
    phones: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        cell = raw.split(",")[0].strip().strip('"')
        if not cell or cell.startswith("#") or cell.lower() == "phone":
            continue
        try:
            phones.append(normalize_phone(cell))
        except ValidationError as exc:
            raise ValidationError(f"{path}:{number}: {exc}") from exc
    return tuple(dict.fromkeys(phones))


def _why_not_textable(row: Any) -> str:
    """Why a contact (a ``contact_rows`` row) cannot be texted now: the first reason that holds."""
    if row.sms_consent_at is None:
        return "no_consent"
    if row.sms_opted_out_at is not None:
        return "opted_out"
    return "cannot_be_texted"


def _sms(consent: datetime | None, opted_out: datetime | None) -> str:
    if opted_out is not None:
        return "opted_out"
    return "consent" if consent is not None else "no_consent"


def check_enrollable(deps: Deps, campaign: str) -> None:
    """NotFoundError or ValidationError unless ``campaign`` exists and takes enrollments."""
    with deps.sessions() as session:
        row = repo.campaign_by_name(session, campaign)
        if row is None:
            known = ", ".join(sorted(r.name for r in repo.all_campaigns(session))) or "none"
            raise NotFoundError(f"no campaign named {campaign!r} in the database (known: {known})")
        if row.status is CampaignStatus.ARCHIVED:
            raise ValidationError(f"campaign {campaign!r} is archived: it takes no enrollments")


def _needed(filters: ContactFilters) -> set[str]:
    """The contact columns the filters look at (besides the id)."""
    needed: set[str] = set()
    if filters.phones is not None:
        needed.add("phone")
    if filters.state:
        needed |= {"state", "phone"}
    if filters.source is not None:
        needed.add("source")
    if filters.agent:
        needed.add("agent_phone")
    if filters.name:
        needed |= {"first_name", "last_name"}
    if filters.textable is not None:
        needed |= {"sms_consent_at", "sms_opted_out_at", "text_status"}
    if filters.stage is not None:
        needed.add("stage")
    if filters.tag is not None:
        needed.add("tags")
    return needed


def _textable(r: Any) -> bool:
    return bool(
        r.sms_consent_at is not None
        and r.sms_opted_out_at is None
        and r.text_status == TextStatus.TEXTABLE
    )


def crm_reason(contact: Any, stage: str | None, tag: str | None) -> str | None:
    """``stage`` or ``tag`` when a contact's CRM stage or tags (set by lead events) leave it
    out of a ``--stage``/``--tag`` filter, else None; ``contacts list``, ``enroll-many`` and
    ``bulk`` filter alike. ``contact``: a contact or a row with the columns filtered on."""
    if stage is not None and contact.stage != stage:
        return "stage"
    if tag is not None and tag not in (contact.tags or ()):
        return "tag"
    return None


def _excluded_by(
    r: Any, filters: ContactFilters, state: str | None, agent: str | None, name: str | None
) -> str | None:
    """The first filter a contact row fails, or None."""
    if state is not None and resolve_state(r.state, r.phone) != state:
        return "state"
    if filters.source is not None and r.source != filters.source:
        return "source"
    if agent is not None and r.agent_phone != agent:
        return "agent"
    if name is not None and name not in f"{r.first_name} {r.last_name}".casefold():
        return "name"
    crm = crm_reason(r, filters.stage, filters.tag)
    if crm is not None:
        return crm
    if filters.textable is not None and (textable := _textable(r)) != filters.textable:
        return "textable" if textable else _why_not_textable(r)
    return None


def select_contacts(
    deps: Deps,
    filters: ContactFilters,
    *,
    campaign: str | None = None,
    limit: int | None = None,
    summaries: bool = True,
) -> Selection:
    """The contacts matching ``filters``; with ``campaign``, those already active in it are out.

    ``summaries=False`` gives the ids and counts only (``contacts`` empty): what
    ``enroll-many`` needs, without loading every chosen contact's campaigns.
    """
    state = normalize_state(filters.state) if filters.state else None
    agent = normalize_phone(filters.agent) if filters.agent else None
    name = filters.name.casefold() if filters.name else None
    wanted = set(filters.phones) if filters.phones is not None else None
    excluded: Counter[str] = Counter()
    chosen = []
    with deps.sessions() as session:
        active_here: set[int] = set()
        if campaign is not None:
            row = repo.campaign_by_name(session, campaign)
            if row is None:
                known = ", ".join(sorted(r.name for r in repo.all_campaigns(session))) or "none"
                raise NotFoundError(
                    f"no campaign named {campaign!r} in the database (known: {known})"
                )
            if row.status is CampaignStatus.ARCHIVED:
                raise ValidationError(f"campaign {campaign!r} is archived: it takes no enrollments")
            active_here = store.enrolled_contact_ids(session, row.id)
        enrolled = store.enrolled_contact_ids(session) if filters.not_enrolled else set()
        rows = store.contact_rows(session, columns=None if summaries else _needed(filters))
        seen_phones: set[str] = set()
        considered = 0
        for r in rows:
            if wanted is not None:
                if r.phone not in wanted:
                    continue  # outside the file: not considered at all
                seen_phones.add(str(r.phone))
            considered += 1
            reason = _excluded_by(r, filters, state, agent, name) or (
                "enrolled"
                if filters.not_enrolled and r.id in enrolled
                else "already_active"
                if r.id in active_here
                else None
            )
            if reason is not None:
                excluded[reason] += 1
                continue
            chosen.append(r)
        shown = [] if not summaries else chosen if limit is None else chosen[:limit]
        campaigns = store.active_campaigns_of(session, [r.id for r in shown]) if shown else {}
        shown_summaries = tuple(_summary(r, campaigns.get(r.id, ())) for r in shown)
    unknown = tuple(sorted(wanted - seen_phones)) if wanted is not None else ()
    return Selection(
        shown_summaries,
        tuple(sorted(excluded.items(), key=lambda kv: (-kv[1], kv[0]))),
        considered,
        unknown,
        tuple(r.id for r in chosen),
    )


@dataclass(frozen=True, slots=True)
class ContactPage:
    """One page of ``drip contacts list``: the contacts, and where the next page starts."""

    contacts: tuple[ContactSummary, ...]
    #: The id to pass as ``--after`` for the next page; None on the last page.
    next_after: int | None
    #: How many contacts match in all (counted only when asked).
    total: int | None = None


def list_contacts(
    deps: Deps,
    filters: ContactFilters,
    *,
    limit: int = 100,
    after: int = 0,
    count: bool = False,
) -> ContactPage:
    """A page of the contacts matching ``filters``: ``limit`` of them with ids above ``after``.

    Filtered in the database and paged by id, so a page costs the same at any
    number of contacts; ``count`` adds the number matching in all (one
    counting query). ``filters.phones`` (``--file``) is for ``enroll-many``.
    """
    if filters.phones is not None:
        raise ValidationError("a phone file selects contacts for enroll-many, not for a listing")
    if limit < 1:
        raise ValidationError(f"--limit must be at least 1, not {limit}")
    query = store.ContactQuery(
        state=normalize_state(filters.state) if filters.state else None,
        source=filters.source,
        agent=normalize_phone(filters.agent) if filters.agent else None,
        name=filters.name or None,
        textable=filters.textable,
        not_enrolled=filters.not_enrolled,
    )
    with deps.sessions() as session:
        rows = store.contact_page(session, query, after=after, limit=limit + 1)
        shown = rows[:limit]
        campaigns = store.active_campaigns_of(session, [r.id for r in shown]) if shown else {}
        total = store.count_contacts(session, query) if count else None
    return ContactPage(
        tuple(_summary(r, campaigns.get(r.id, ())) for r in shown),
        shown[-1].id if len(rows) > limit else None,
        total,
    )


def _summary(r: Any, campaigns: Sequence[str]) -> ContactSummary:
    """A ``contact_rows`` row (every column) as a :class:`ContactSummary`."""
    return ContactSummary(
        id=r.id,
        first_name=r.first_name,
        last_name=r.last_name or "",
        phone=r.phone,
        email=r.email,
        state=r.state,
        timezone=r.timezone,
        source=str(r.source),
        agent_phone=r.agent_phone,
        sms=_sms(r.sms_consent_at, r.sms_opted_out_at),
        text_status=str(r.text_status),
        email_opted_out=bool(r.email_opted_out),
        campaigns=tuple(campaigns),
        created_at=r.created_at,
    )


@dataclass(frozen=True, slots=True)
class EnrollManyResult:
    """What ``drip enroll-many`` did (or, in a dry run, would do)."""

    campaign: str
    enrolled: int
    sends: int
    dry_run: bool
    selection: Selection = field(repr=False)


def enroll_selection(
    deps: Deps,
    campaign: str,
    selection: Selection,
    now: datetime,
    *,
    on_batch: Callable[[int], None] | None = None,
    batch: int = 5000,
) -> EnrollManyResult:
    """Enroll the selected contacts through :func:`~drip.services.enrollment.enroll_many`."""
    from drip.services.enrollment import enroll_many

    ids: Sequence[int] = selection.ids
    sends = enroll_many(deps, ids, campaign, now, batch=batch, on_batch=on_batch)
    return EnrollManyResult(campaign, len(ids), sends, False, selection)
