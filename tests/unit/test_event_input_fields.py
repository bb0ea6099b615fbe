"""A lead event's unknown fields are named, and its digest is its canonical JSON's."""

from __future__ import annotations

import hashlib
from typing import Any

from drip.services.event_input import Invalid, ParsedEvent, digest_of, parse_event


def _event(**extra: Any) -> dict[str, Any]:
    return {
        "id": "e1",
        "type": "lead.updated",
        "occurred_at": "2026-03-02T15:00:00Z",
        "contact": {"external_id": "crm-1"},
        "data": {"stage": "hot"},
        **extra,
    }


def test_the_first_unknown_field_is_named() -> None:
    """Of several unknown fields of an event, the first in sorted order is the one named."""
    parsed = parse_event(3, _event(zeta=1, alpha=2))
    assert isinstance(parsed, Invalid)
    assert (parsed.index, parsed.id, parsed.field) == (3, "e1", "alpha")
    assert parsed.message == "unknown field 'alpha'"


def test_an_unknown_field_of_the_contact_is_named() -> None:
    """An unknown field of ``contact`` is named under ``contact.``."""
    parsed = parse_event(0, _event(contact={"external_id": "crm-1", "uid": "x", "nick": "y"}))
    assert isinstance(parsed, Invalid)
    assert parsed.field == "contact.nick"


def test_the_digest_is_the_sha256_of_the_sorted_compact_json() -> None:
    """The digest is SHA-256 of the body with sorted keys and no spaces: the digests of
    events stored by earlier versions still match their repeats."""
    event = _event()
    canonical = (
        '{"contact":{"external_id":"crm-1"},"data":{"stage":"hot"},"id":"e1",'
        '"occurred_at":"2026-03-02T15:00:00Z","type":"lead.updated"}'
    )
    assert digest_of(event) == hashlib.sha256(canonical.encode()).hexdigest()
    assert digest_of(dict(reversed(list(event.items())))) == digest_of(event)


def test_a_parsed_event_carries_its_digest_and_utc_stamp() -> None:
    """A parsed event holds its body's digest and its time in UTC, as ISO 8601."""
    parsed = parse_event(0, _event(occurred_at="2026-03-02T10:00:00-05:00"))
    assert isinstance(parsed, ParsedEvent)
    assert parsed.digest == digest_of(_event(occurred_at="2026-03-02T10:00:00-05:00"))
    assert parsed.stamp == "2026-03-02T15:00:00+00:00"
