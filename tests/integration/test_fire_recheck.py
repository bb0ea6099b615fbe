"""Fire-time re-check: what changes between scheduling and firing decides the outcome."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from drip.domain.campaign import DEFAULT_FOOTER
from drip.domain.enums import ConsentEventKind, SendState, TextStatus
from drip.services.consent import opt_out, set_text_status
from drip.services.inbound import handle_inbound
from drip.store import repository as repo
from drip.store.models import Contact

if TYPE_CHECKING:
    from conftest import Rig

AGENT_PHONE = "+16175550100"


def _enroll_two(rig: Rig, days: list[int]) -> tuple[int, int]:
    """Two contacts on a campaign with ``days``; the first is the one the test changes."""
    rig.add_campaign("plan", days)
    changed, control = rig.add_contacts(2)
    rig.enroll([changed, control], "plan")
    return changed, control


def _fire_day(rig: Rig, day: int) -> None:
    rig.at(rig.start + timedelta(days=day, minutes=1))
    rig.fire_due()


def _states(rig: Rig, contact_id: int) -> list[tuple[SendState, str | None]]:
    return [(s.state, s.decision_code) for s in rig.sends_of(contact_id)]


def test_consent_revoked_after_scheduling_skips_the_next_step(rig: Rig) -> None:
    """An opt-out recorded after enrollment makes the next step a skip, with the reason."""
    changed, control = _enroll_two(rig, [0, 1])
    _fire_day(rig, 0)
    rig.at(rig.start + timedelta(hours=5))
    with rig.deps.sessions.begin() as session:
        contact = session.get(Contact, changed)
        assert contact is not None
        assert opt_out(
            session, contact, "keyword", ConsentEventKind.REVOKED_KEYWORD, rig.now, evidence="STOP"
        )

    _fire_day(rig, 1)
    assert _states(rig, changed) == [(SendState.SENT, "F1"), (SendState.SKIPPED, "opted_out")]
    assert _states(rig, control) == [(SendState.SENT, "F1"), (SendState.SENT, "F4")]
    with rig.deps.sessions() as session:
        [decision] = repo.decisions_of(session, rig.sends_of(changed)[1].id)
    assert decision.outcome == "skipped"
    assert "opted out" in decision.reason
    assert [r.to for r in rig.twilio.requests].count(rig.phone_of(0)) == 1


def test_cannot_be_texted_after_scheduling_skips_the_next_step(rig: Rig) -> None:
    """An operator's cannot_be_texted, set after enrollment, makes the next step a skip."""
    changed, control = _enroll_two(rig, [0, 1])
    _fire_day(rig, 0)
    set_text_status(
        rig.deps, changed, TextStatus.CANNOT_BE_TEXTED, rig.now + timedelta(hours=1), by="ops"
    )

    _fire_day(rig, 1)
    assert _states(rig, changed) == [
        (SendState.SENT, "F1"),
        (SendState.SKIPPED, "cannot_be_texted"),
    ]
    assert _states(rig, control)[1] == (SendState.SENT, "F4")
    assert [r.to for r in rig.twilio.requests].count(rig.phone_of(0)) == 1


def test_a_reply_after_scheduling_drops_the_footer_of_the_next_step(rig: Rig) -> None:
    """A reply on day 20 means the day-45 text goes without the footer (F2); no reply: F3."""
    replied, silent = _enroll_two(rig, [0, 45])
    _fire_day(rig, 0)
    rig.at(rig.start + timedelta(days=20))
    result = handle_inbound(
        rig.deps,
        from_phone=rig.phone_of(0),
        to_phone=AGENT_PHONE,
        body="Sounds good, thanks!",
        now=rig.now,
        message_sid="SM" + "1" * 32,
    )
    assert result.action == "two_way"

    _fire_day(rig, 45)
    assert _states(rig, replied) == [(SendState.SENT, "F1"), (SendState.SENT, "F2")]
    assert _states(rig, silent) == [(SendState.SENT, "F1"), (SendState.SENT, "F3")]
    bodies = {(r.to, r.body.split(":")[0]): r.body for r in rig.twilio.requests if r.body}
    assert DEFAULT_FOOTER in bodies[(rig.phone_of(0), "Step 1")]
    assert DEFAULT_FOOTER not in bodies[(rig.phone_of(0), "Step 2")]
    assert DEFAULT_FOOTER in bodies[(rig.phone_of(1), "Step 2")]
    with rig.deps.sessions() as session:
        [decision] = repo.decisions_of(session, rig.sends_of(replied)[1].id)
    assert (decision.footer, decision.footer_rule) == (False, "F2")
    assert "two-way" in decision.reason
