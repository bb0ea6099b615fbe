"""Whole-scenario checks, made once every field has been read on its own.

Events in time order and none before the start; ``until`` after everything
that needs it; a sender number for every event that needs one; a campaign
enrolled from one file only; no event for an erased contact before it is
added again. Each problem is reported on the source, located
at the event or field it is about, like every other problem of the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time

from drip.campaigns.yamlsource import Field, YamlSource
from drip.domain.enums import SenderRole
from drip.replay.scenario.values import (
    Backlog,
    Bulk,
    CarrierOptOut,
    CarrierReport,
    Consent,
    DayTime,
    Downtime,
    EmailUnsubscribe,
    Enroll,
    Erase,
    Event,
    Expectation,
    LeadEvent,
    LookupOutage,
    ManualText,
    PauseContact,
    Reply,
    ResumeContact,
    Scenario,
    SetTextStatus,
    Unenroll,
)

#: Events addressed to the contact itself: none may follow ``erase`` until it is added again
#: (``consent: true`` and ``lead.created`` add it again, see :func:`adds_the_contact`).
_ABOUT_THE_CONTACT = (
    Consent,
    LeadEvent,
    ManualText,
    Enroll,
    SetTextStatus,
    Unenroll,
    PauseContact,
    ResumeContact,
    EmailUnsubscribe,
    Erase,
)


def check_times(
    source: YamlSource,
    start: datetime,
    events: Sequence[Event],
    expect: Sequence[Expectation],
    *,
    until: DayTime | None,
    fields: dict[str, Field],
) -> None:
    """Events in time order, none before the start, and ``until`` after all of them."""
    s = source

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
        if isinstance(event.action, Downtime | LookupOutage) and key(event.action.until) <= key(
            event.at
        ):
            s.error(event.where, f"{event.kind} {event.action.until} must be after {event.at}")
        if (
            isinstance(event.action, Bulk)
            and event.action.expires_at is not None
            and key(event.action.expires_at) <= key(event.at)
        ):
            s.error(
                event.where,
                f"expires_at {event.action.expires_at} is already past at {event.at}: "
                "a bulk's expiry must come after it is sent",
            )
        previous = event
    if until is not None:
        needed = [e.at for e in events] + [
            e.action.until for e in events if isinstance(e.action, Downtime | LookupOutage)
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


def check_senders(source: YamlSource, scenario: Scenario) -> None:
    account = scenario.account
    for event in scenario.events:
        action = event.action
        if (
            isinstance(action, Reply | CarrierOptOut | CarrierReport)
            and scenario.contact.phone is None
        ):
            source.error(event.where, f"{event.kind} needs a contact phone")
        if isinstance(action, EmailUnsubscribe) and scenario.contact.email is None:
            source.error(event.where, "email_unsubscribe needs a contact email")
        if isinstance(action, Consent) and scenario.contact.phone is None:
            source.error(event.where, "consent (SMS consent) needs a contact phone")
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
                source.error(
                    event.where,
                    "a backlog on the agent's number needs an agent: give agent: "
                    "{first_name, phone}",
                )
        if role is SenderRole.CONCIERGE and account.concierge_phone is None:
            source.error(
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
            source.error(
                event.where,
                "a reply to the agent needs an agent: give agent: {first_name, phone}",
            )


def check_campaign_names(source: YamlSource, scenario: Scenario) -> None:
    first: dict[str, Enroll] = {}
    for event in scenario.events:
        action = event.action
        if not isinstance(action, Enroll):
            continue
        seen = first.setdefault(action.campaign.name, action)
        if seen.campaign.version != action.campaign.version:
            source.error(
                event.where,
                f"campaign {action.campaign.name!r} is enrolled from two different "
                f"files ({seen.path} and {action.path}); use edit_campaign to change it",
            )


def adds_the_contact(action: object) -> bool:
    """``consent: true`` and ``lead.created`` add the person again after an erasure."""
    return (isinstance(action, Consent) and action.given) or (
        isinstance(action, LeadEvent) and action.type == "lead.created"
    )


def check_erasure(source: YamlSource, scenario: Scenario) -> None:
    """After ``erase``, only a reply, the world's events and adding the person again, until
    ``consent: true`` or ``{event: lead.created}`` makes a new contact with the same phone."""
    erased: Event | None = None
    for event in scenario.events:
        action = event.action
        if erased is not None and adds_the_contact(action):
            erased = None
            continue
        if erased is not None and isinstance(action, _ABOUT_THE_CONTACT):
            source.error(
                event.where,
                f"{event.kind} at {event.at}: the contact was erased at {erased.at} "
                f"(line {erased.where.line}); add it again first with "
                "{event: lead.created, data: {first_name: ...}} or consent: true",
            )
        if isinstance(action, Erase) and erased is None:
            erased = event
