"""A lead event's phone number: validated, unless it is given exactly as a contact already has it."""

from __future__ import annotations

from typing import Any

from drip.services.event_input import Invalid, ParsedEvent, parse_event, raw_phones

#: Well formed, but no such area code: phonenumbers refuses it.
UNKNOWN_AREA = "+11235550100"


def _event(phone: Any, **data: Any) -> dict[str, Any]:
    return {
        "id": "e1",
        "type": "lead.updated",
        "occurred_at": "2026-03-02T15:00:00Z",
        "contact": {"phone": phone},
        "data": data,
    }


def test_a_new_number_is_validated() -> None:
    """A number no contact has is checked by phonenumbers: an impossible area code is refused."""
    parsed = parse_event(0, _event(UNKNOWN_AREA, stage="hot"))
    assert isinstance(parsed, Invalid)
    assert parsed.field == "contact.phone"


def test_a_stored_number_is_taken_as_it_is() -> None:
    """A number given exactly as stored on a contact (E.164) is not validated again."""
    parsed = parse_event(0, _event(f"  {UNKNOWN_AREA} ", stage="hot"), {UNKNOWN_AREA})
    assert isinstance(parsed, ParsedEvent)
    assert parsed.contact.phone == UNKNOWN_AREA


def test_a_stored_value_that_is_not_e164_is_still_validated() -> None:
    """Only an E.164 number is trusted: any other text is validated even if some row holds it."""
    parsed = parse_event(0, _event("123", stage="hot"), {"123"})
    assert isinstance(parsed, Invalid)
    assert parsed.field == "contact.phone"


def test_another_way_of_writing_a_stored_number_is_normalized() -> None:
    """A stored number written another way is still normalized to E.164 by phonenumbers."""
    parsed = parse_event(0, _event("(201) 555-0100", stage="hot"), {"+12015550100"})
    assert isinstance(parsed, ParsedEvent)
    assert parsed.contact.phone == "+12015550100"


def test_raw_phones_are_those_of_the_contact_and_the_data() -> None:
    """The numbers asked about before parsing: contact.phone and data.phone, stripped, text only."""
    events: list[object] = [
        _event(" +12015550100 "),
        {"type": "lead.created", "contact": {"email": "a@b.co"}, "data": {"phone": "+12015550101"}},
        _event(12015550102),
        "not an event",
    ]
    assert raw_phones(events) == {"+12015550100", "+12015550101"}
