"""``explain`` and ``history`` tell in plain words why, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from services_support import (
    AGENT_PHONE,
    DANA_PHONE,
    NY,
    START,
    World,
    add_dana,
    add_sam,
    later,
    manual_text,
    open_world,
    run_until,
    send_by_step,
    sync_bundled,
)

from drip.errors import NotFoundError
from drip.services.audit import explain, history
from drip.services.enrollment import enroll
from drip.services.inbound import handle_inbound

SMART_DRIP = "smart-drip-new-lead"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Services on the test database; Dana got Sam's intro at 10:05 and was enrolled at 10:06."""
    with open_world(db_url, tmp_path) as w:
        sync_bundled(w, SMART_DRIP)
        add_sam(w)
        yield w


def _seed(world: World) -> int:
    contact_id = add_dana(world)
    world.at(later(START, minutes=5))
    manual_text(world, contact_id, "Hi Dana, this is Sam with Acme Realty.")
    world.at(later(START, minutes=6))
    enroll(world.deps, contact_id, SMART_DRIP, world.now)
    return contact_id


def _explain(world: World, contact_id: int, step_id: str) -> str:
    return "\n".join(explain(world.deps, send_by_step(world, contact_id, step_id).id))


def test_explain_gives_the_footer_reason_of_each_text(world: World) -> None:
    """Day 15 says why no footer, day 45 why the footer, in elapsed time across the DST change."""
    contact_id = _seed(world)
    run_until(world, START + timedelta(days=46))

    day_15 = _explain(world, contact_id, "day-15-check-in")
    day_45 = _explain(world, contact_id, "day-45-market-update")

    assert "step 'day-15-check-in' of smart-drip-new-lead" in day_15
    assert re.search(
        r"no footer: only 14 days 23 hours since the last footer on 2026-03-02 "
        r"\(interval 30 calendar days\)",
        day_15,
    )
    assert "footer no" in day_15
    assert re.search(
        r"footer: 45 days since the last footer on 2026-03-02 and no reply yet", day_45
    )
    assert "footer yes" in day_45
    assert "2026-04-16 10:06 EDT" in day_45
    assert world.deps.account.footer in day_45


def test_explain_after_a_reply_names_the_two_way_conversation(world: World) -> None:
    """After a reply on day 20, day 45 explains: two-way since that day, footer sent on day 0."""
    contact_id = _seed(world)
    run_until(world, START + timedelta(days=20))
    handle_inbound(
        world.deps, from_phone=DANA_PHONE, to_phone=AGENT_PHONE, body="Yes please", now=world.now
    )
    run_until(world, START + timedelta(days=46))

    day_45 = _explain(world, contact_id, "day-45-market-update")

    assert (
        "no footer: two-way conversation since 2026-03-22 and the footer was sent on 2026-03-02"
        in day_45
    )


def test_explain_a_skip_and_a_deferral(world: World) -> None:
    """A STOP on day 3 makes day 15 'skipped: opted out'; a late enrollment shows the deferral."""
    contact_id = _seed(world)
    world.at(START + timedelta(days=3))
    handle_inbound(
        world.deps, from_phone=DANA_PHONE, to_phone=AGENT_PHONE, body="stop", now=world.now
    )
    late = add_dana(world, phone="+16175550124", first_name="Lee")
    world.at(datetime(2026, 3, 5, 23, 0, tzinfo=NY).astimezone(UTC))
    enroll(world.deps, late, SMART_DRIP, world.now)
    run_until(world, START + timedelta(days=20))

    skipped = _explain(world, contact_id, "day-15-check-in")
    deferred = _explain(world, late, "day-15-check-in")

    assert "now skipped" in skipped
    assert "skipped     the contact opted out of texts on 2026-03-05" in skipped
    assert "skipped: " not in skipped  # the outcome is said once, in its column
    assert "deferred to 2026-03-21 08:00 America/New_York" in deferred
    assert "outside the send window 08:00-21:00 at 23:00 local" in deferred
    assert "now sent" in deferred


def test_history_tells_the_whole_story_in_order(world: World) -> None:
    """Consent, the intro with footer, texts, the STOP, the skips and nothing else pending."""
    contact_id = _seed(world)
    run_until(world, START + timedelta(days=16))
    handle_inbound(
        world.deps, from_phone=DANA_PHONE, to_phone=AGENT_PHONE, body="STOP", now=world.now
    )
    run_until(world)

    contact, tz, entries = history(world.deps, contact_id)

    assert (contact.first_name, tz) == ("Dana", "America/New_York")
    lines = [f"{e.what}: {e.text}" for e in entries]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    zone = lines.pop(0)
    assert zone.startswith("zone: time zone America/New_York: area code 617")
    assert lines[0].startswith("consent: consent given via registration: Yes, text me")
    assert lines[1].startswith("message_out: -> opt_in_confirmation sms from +16175550100")
    assert lines[2].startswith("message_out: -> manual sms from +16175550100 (queued) [footer]:")
    assert lines[3] == "enrolled: smart-drip-new-lead: enrolled"
    assert lines[4].startswith("message_out: -> campaign sms from +16175550100 (queued): Hi Dana")
    assert "message_in: <- STOP" in lines
    assert any(line.startswith("consent: consent revoked_keyword via keyword") for line in lines)
    assert any("opt_out_confirmation" in line for line in lines)
    skips = [line for line in lines if line.startswith("decision:")]
    assert len(skips) == 4
    assert all(" skipped: the contact opted out of texts on" in s for s in skips)
    assert not any("skipped: skipped" in s for s in skips)  # the outcome is said once
    assert not any(line.startswith("scheduled:") for line in lines)


def test_explain_and_history_show_the_zone_set_and_the_rule_with_its_source(world: World) -> None:
    """A 448 contact: explain and history name both zones and why, and the Florida rule cited."""
    contact_id = add_dana(world, phone="+14485550123")
    world.at(later(START, hours=12))  # 22:00 Eastern: every step is due after the window
    enroll(world.deps, contact_id, SMART_DRIP, world.now)
    day_15 = send_by_step(world, contact_id, "day-15-check-in")
    run_until(world, day_15.due_at)

    text = "\n".join(explain(world.deps, day_15.id))
    assert "time zone America/New_York + America/Chicago" in text
    assert "area code 448" in text and "correction" in text
    assert "states: FL" in text and "Fla. Stat. 501.616" in text
    assert (
        "deferred to 2026-03-18 09:00 America/New_York (zones America/New_York + America/Chicago)"
        in text
    )
    assert "FL rule: Fla. Stat. 501.616" in text

    _, tz, entries = history(world.deps, contact_id)
    assert tz == "America/New_York"
    (zone,) = [e.text for e in entries if e.what == "zone"]
    assert zone.startswith("time zone America/New_York + America/Chicago (every window applies")


def test_explain_says_when_the_area_code_gives_no_zone(world: World) -> None:
    """A 624 number (too new for the phone metadata) is timed in the account zone, saying why."""
    contact_id = add_dana(world, phone="+16245550123")
    enroll(world.deps, contact_id, SMART_DRIP, world.now)
    day_15 = send_by_step(world, contact_id, "day-15-check-in")

    text = "\n".join(explain(world.deps, day_15.id))
    assert "time zone America/New_York: the account default, since area code 624" in text


def test_history_lists_what_is_still_scheduled(world: World) -> None:
    """Right after enrollment, the five steps appear as scheduled entries at their due times."""
    contact_id = _seed(world)

    _, _, entries = history(world.deps, contact_id)

    scheduled = [e for e in entries if e.what == "scheduled"]
    assert [e.text.rsplit(" ", 1)[-1] for e in scheduled] == [
        "day-15-check-in",
        "day-45-market-update",
        "day-180-timing",
        "day-270-new-listings",
        "day-360-anniversary",
    ]


def test_explain_and_history_of_unknown_ids_say_not_found(world: World) -> None:
    """Asking about a send or contact that does not exist raises NotFoundError naming it."""
    with pytest.raises(NotFoundError, match="no scheduled send with id 987654"):
        explain(world.deps, 987654)
    with pytest.raises(NotFoundError, match="no contact with id 987654"):
        history(world.deps, 987654)
