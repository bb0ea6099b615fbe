"""What a lead event does to a contact's campaigns: a pure decision on frozen values.

A campaign may declare ``triggers`` (any one enrolls the contact), ``exit``
rules (any one ends the contact's enrollment), a ``group`` with a
``priority`` (at most one active enrollment per contact per group; a higher
priority replaces a lower one), ``reenroll`` (may a contact go through the
campaign again) and, per trigger, a ``cooldown`` (not again for this contact
within that span). The loader freezes them into :class:`Automation`;
:func:`decide` answers, for one event and the contact after it, which
campaigns enroll the contact and which of its enrollments end. Nothing here
reads a database or a clock. See docs/campaigns.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

#: Every lead event type drip takes; any other is refused.
EVENT_TYPES = (
    "lead.created",
    "lead.updated",
    "lead.assigned",
    "lead.activity",
    "contact.touched",
    "appointment.set",
    "deal.stage",
    "agent.deactivated",
)
#: The contact's fields a ``where`` may name (after the event is applied).
CONTACT_FIELDS = ("stage", "tags", "lead_source", "state", "timezone", "source")
#: The data fields of each event type that a ``where`` may name.
DATA_FIELDS: dict[str, tuple[str, ...]] = {
    "lead.created": ("stage", "tags", "lead_source", "state", "timezone", "source"),
    "lead.updated": ("stage", "tags", "lead_source", "state", "timezone"),
    "lead.assigned": ("agent",),
    "lead.activity": ("kind",),
    "contact.touched": ("channel",),
    "appointment.set": (),
    "deal.stage": ("stage",),
    "agent.deactivated": ("agent", "to"),
}
#: Event types whose data is applied to the contact: their ``where`` reads the contact after.
APPLIED_TYPES = frozenset({"lead.created", "lead.updated"})


def where_fields(event_type: str) -> tuple[str, ...]:
    """The fields a ``where`` of a rule on ``event_type`` may name."""
    return tuple(dict.fromkeys((*DATA_FIELDS.get(event_type, ()), *CONTACT_FIELDS)))


@dataclass(frozen=True, slots=True)
class Condition:
    """``field`` has one of ``values`` (for ``tags``: the contact has one of these tags)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """One trigger or exit: an event type, conditions on it, and a trigger's cooldown."""

    on: str
    where: tuple[Condition, ...] = ()
    cooldown: timedelta | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"on": self.on}
        if self.where:
            out["where"] = {c.field: list(c.values) for c in self.where}
        if self.cooldown is not None:
            out["cooldown_seconds"] = int(self.cooldown.total_seconds())
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Rule:
        where = data.get("where") or {}
        assert isinstance(where, dict)
        seconds = data.get("cooldown_seconds")
        return cls(
            on=str(data["on"]),
            where=tuple(Condition(str(k), tuple(str(v) for v in vs)) for k, vs in where.items()),
            cooldown=timedelta(seconds=int(str(seconds))) if seconds is not None else None,
        )

    def describe(self) -> str:
        """``lead.updated where stage archive``: the rule in words."""
        conditions = " and ".join(f"{c.field} {'|'.join(c.values)}" for c in self.where)
        return self.on + (f" where {conditions}" if conditions else "")


@dataclass(frozen=True, slots=True)
class Automation:
    """A campaign's triggers, exits, group, priority and re-enrollment rule."""

    triggers: tuple[Rule, ...] = ()
    exits: tuple[Rule, ...] = ()
    group: str | None = None
    priority: int = 0
    reenroll: bool = False

    @property
    def empty(self) -> bool:
        return self == Automation()

    def as_dict(self) -> dict[str, object]:
        return {
            "triggers": [r.as_dict() for r in self.triggers],
            "exit": [r.as_dict() for r in self.exits],
            "group": self.group,
            "priority": self.priority,
            "reenroll": self.reenroll,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Automation:
        triggers = data.get("triggers") or []
        exits = data.get("exit") or []
        assert isinstance(triggers, list) and isinstance(exits, list)
        group = data.get("group")
        return cls(
            triggers=tuple(Rule.from_dict(r) for r in triggers),
            exits=tuple(Rule.from_dict(r) for r in exits),
            group=str(group) if group is not None else None,
            priority=int(str(data.get("priority", 0))),
            reenroll=bool(data.get("reenroll", False)),
        )


# -- the decision -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeadEvent:
    """The event as the decision sees it: its type and data."""

    id: str
    type: str
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ContactView:
    """The contact's fields after the event was applied."""

    fields: Mapping[str, object]
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CampaignView:
    """A campaign that can take or end enrollments: its automation and whether it is archived."""

    name: str
    automation: Automation
    archived: bool = False


@dataclass(frozen=True, slots=True)
class EnrollmentView:
    """One enrollment of the contact, active or ended, and when it began."""

    id: int
    campaign: str
    active: bool
    enrolled_at: datetime


@dataclass(frozen=True, slots=True)
class Enroll:
    campaign: str
    rule: Rule


@dataclass(frozen=True, slots=True)
class End:
    enrollment_id: int
    campaign: str
    #: ``exit``: an exit rule matched; ``replaced``: a higher priority of its group enrolls.
    why: str
    rule: Rule | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    enroll: tuple[Enroll, ...] = ()
    end: tuple[End, ...] = ()
    #: Triggers that matched but enrolled nothing, each with the reason (for the record).
    passed: tuple[str, ...] = field(default_factory=tuple)


#: The decision that enrolls and ends nothing.
NOTHING = Decision()


def matches(rule: Rule, event: LeadEvent, contact: ContactView) -> bool:
    """Does ``rule`` hold for ``event`` and the contact after it?"""
    if rule.on != event.type:
        return False
    return all(_holds(c, event, contact) for c in rule.where)


def _holds(condition: Condition, event: LeadEvent, contact: ContactView) -> bool:
    return not set(condition.values).isdisjoint(_seen(condition.field, event, contact))


def _seen(name: str, event: LeadEvent, contact: ContactView) -> Iterable[str]:
    """The values of ``name`` a condition is checked against: the event's data for an event
    that is not applied to the contact and carries the field, else the contact's field."""
    if name == "tags":
        if event.type not in APPLIED_TYPES and "tags" in event.data:
            return _words(event.data["tags"])
        return contact.tags
    if event.type not in APPLIED_TYPES and name in event.data:
        value: object = event.data[name]
    else:
        value = contact.fields.get(name)
    return () if value is None else (str(value),)


def _words(value: object) -> list[str]:
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    return [str(value)]


class Catalog:
    """The campaigns :func:`decide` weighs, with their triggers indexed so that an event is
    matched only against the triggers that can match it.

    A trigger is filed under its event type and, when it has a ``where``, under each
    value of its first condition (a trigger can match only when the event or the
    contact has one of them); one without a ``where`` is weighed for every event of
    its type. Build it once for many events (a batch of them): the campaigns do not
    change between their decisions.
    """

    __slots__ = ("_any", "_by_value", "by_name", "campaigns")

    def __init__(self, campaigns: Sequence[CampaignView]) -> None:
        self.campaigns = tuple(campaigns)
        self.by_name = {c.name: c for c in self.campaigns}
        #: event type -> positions of campaigns with a trigger on it without a ``where``.
        self._any: dict[str, set[int]] = {}
        #: event type -> field -> value -> positions of campaigns with a trigger on it
        #: whose first condition names that field and value.
        self._by_value: dict[str, dict[str, dict[str, set[int]]]] = {}
        for position, campaign in enumerate(self.campaigns):
            for rule in campaign.automation.triggers:
                if not rule.where:
                    self._any.setdefault(rule.on, set()).add(position)
                    continue
                first = rule.where[0]
                values = self._by_value.setdefault(rule.on, {}).setdefault(first.field, {})
                for value in first.values:
                    values.setdefault(value, set()).add(position)

    def candidates(self, event: LeadEvent, contact: ContactView) -> list[CampaignView]:
        """The campaigns, in order, with a trigger that may match ``event``."""
        found = set(self._any.get(event.type, ()))
        for name, values in self._by_value.get(event.type, {}).items():
            for value in _seen(name, event, contact):
                if value in values:
                    found.update(values[value])
        # Most events match no trigger: nothing to sort.
        return [self.campaigns[i] for i in sorted(found)] if found else []


def decide(
    event: LeadEvent,
    contact: ContactView,
    campaigns: Sequence[CampaignView] | Catalog,
    enrollments: Iterable[EnrollmentView],
    now: datetime,
) -> Decision:
    """Which campaigns ``event`` enrolls the contact in, and which of its enrollments end.

    Exits first: an active enrollment whose campaign has a matching exit rule
    ends. Then triggers: a campaign with a matching trigger enrolls the contact
    unless it is archived, the contact is active in it, the contact went
    through it before and it does not ``reenroll``, the trigger's
    ``cooldown`` has not passed since the last enrollment in it, or an active
    enrollment of its group has the same or a higher priority (a lower one is
    ended, ``replaced``). Of several campaigns of one group, the highest
    priority enrolls. ``campaigns`` may be a :class:`Catalog` built once for many events.
    """
    catalog = campaigns if isinstance(campaigns, Catalog) else Catalog(campaigns)
    history = list(enrollments)
    by_name = catalog.by_name
    ends: list[End] = []
    ending: set[int] = set()
    for e in history:
        campaign = by_name.get(e.campaign)
        if not e.active or campaign is None:
            continue
        rule = next((r for r in campaign.automation.exits if matches(r, event, contact)), None)
        if rule is not None:
            ends.append(End(e.id, e.campaign, "exit", rule))
            ending.add(e.id)
    active = [e for e in history if e.active and e.id not in ending]
    passed: list[str] = []
    chosen: dict[str, tuple[CampaignView, Rule]] = {}
    loose: list[tuple[CampaignView, Rule]] = []
    for campaign in catalog.candidates(event, contact):
        auto = campaign.automation
        rule = next((r for r in auto.triggers if matches(r, event, contact)), None)
        if rule is None:
            continue
        why = _refusal(campaign, rule, history, now)
        blockers = group_blockers(campaign, catalog.campaigns, active)
        if why is None and blockers:
            why = (
                f"{blockers[0]} of group {auto.group} is active with the same or a higher priority"
            )
        if why is not None:
            passed.append(f"{campaign.name}: {why}")
            continue
        if auto.group is None:
            loose.append((campaign, rule))
            continue
        best = chosen.get(auto.group)
        if best is None or auto.priority > best[0].automation.priority:
            if best is not None:
                passed.append(f"{best[0].name}: {campaign.name} has a higher priority")
            chosen[auto.group] = (campaign, rule)
        else:
            passed.append(f"{campaign.name}: {best[0].name} has a higher priority")
    enrolls = [Enroll(c.name, r) for c, r in loose]
    for group, (campaign, rule) in chosen.items():
        for e in active:
            other = by_name.get(e.campaign)
            if other is not None and other.automation.group == group:
                ends.append(End(e.id, e.campaign, "replaced", by=campaign.name))
        enrolls.append(Enroll(campaign.name, rule))
    if not (enrolls or ends or passed):
        return NOTHING  # what most events decide: one frozen value for them all
    return Decision(tuple(enrolls), tuple(ends), tuple(passed))


def _refusal(
    campaign: CampaignView,
    rule: Rule,
    history: list[EnrollmentView],
    now: datetime,
) -> str | None:
    """Why the matching ``rule`` of ``campaign`` enrolls nobody, or None when it enrolls."""
    auto = campaign.automation
    if campaign.archived:
        return "archived"
    mine = [e for e in history if e.campaign == campaign.name]
    if any(e.active for e in mine):
        return "already active"
    if mine and not auto.reenroll:
        return "went through it before (reenroll: false)"
    if rule.cooldown is not None and mine:
        last = max(e.enrolled_at for e in mine)
        if now - last < rule.cooldown:
            return f"cooldown until {last + rule.cooldown:%Y-%m-%d %H:%M} UTC"
    return None


def group_blockers(
    campaign: CampaignView, campaigns: Sequence[CampaignView], active: Iterable[EnrollmentView]
) -> list[str]:
    """Active enrollments of ``campaign``'s group with the same or a higher priority."""
    auto = campaign.automation
    if auto.group is None:
        return []
    by_name = {c.name: c for c in campaigns}
    out: list[str] = []
    for e in active:
        other = by_name.get(e.campaign)
        if (
            other is not None
            and other.name != campaign.name
            and other.automation.group == auto.group
            and other.automation.priority >= auto.priority
        ):
            out.append(other.name)
    return out
