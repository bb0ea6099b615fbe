"""The replay runner in-process: exact virtual time, speed, determinism, shared runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from drip.domain.enums import MessageKind, SenderRole
from drip.replay.report import as_json, html_page, summarize, text_report
from drip.replay.runner import decisions_near, replay, run_together
from drip.replay.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"


def test_a_send_due_at_eight_goes_at_eight_exactly() -> None:
    """The clock jumps to each due time: the deferred greeting leaves at 08:00:00 sharp."""
    result = replay(load_scenario(SCENARIOS / "zone_from_area_code.yaml"))
    greeting = result.messages[1]
    assert greeting.sender is SenderRole.CONCIERGE
    assert greeting.at == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # 08:00 CDT
    assert (greeting.local.hour, greeting.local.minute, greeting.local.second) == (8, 0, 0)
    deferral = result.decisions[0]
    assert deferral.outcome == "deferred" and deferral.deferred_until == greeting.at


def test_the_400_day_seed_replays_in_under_a_second() -> None:
    """Loading and replaying the seed example (400 days) takes under a second of CPU (best of three)."""
    scenario = load_scenario(SCENARIOS / "seed_never_replies.yaml")
    replay(scenario)  # warm up: imports, the migrated template database
    timings = []
    for _ in range(3):
        # This thread's CPU time (user and system: SQLite's writes included): the replay
        # runs in this thread alone, and wall time would also count other tests' turns
        # on the shared cores.
        began = time.thread_time()
        result = replay(load_scenario(SCENARIOS / "seed_never_replies.yaml"))
        timings.append(time.thread_time() - began)
        assert result.passed
    assert min(timings) < 1.0, timings


def test_replays_are_deterministic() -> None:
    """Two replays of the same file give the same messages, decisions and report."""
    scenario = load_scenario(SCENARIOS / "state_fl_cap_three_per_24h.yaml")
    first, second = replay(scenario), replay(scenario)
    assert first.messages == second.messages
    assert first.decisions == second.decisions
    assert list(text_report([first])) == list(text_report([second]))


def test_scenarios_run_together_share_the_database_and_a_broadcast() -> None:
    """In one run, each contact keeps its own timeline and a broadcast reaches every textable one."""
    a = load_scenario(SCENARIOS / "seed_never_replies.yaml")
    b = load_scenario(SCENARIOS / "c1_registration_box_unticked.yaml")
    when = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    ra, rb = run_together([a, b], broadcasts=[(when, "Open house Saturday!")])
    assert ra.contact_id != rb.contact_id
    bulk = [m for m in ra.messages if m.kind is MessageKind.BULK]
    assert [m.at for m in bulk] == [when]
    assert not [m for m in rb.messages if m.kind is MessageKind.BULK]
    assert any("1 of 2 contacts will get this text" in h.text for h in rb.happenings)
    assert not ra.passed  # the bulk text is one message more than the seed expects


def test_decisions_near_a_mismatch_are_those_around_it() -> None:
    """The decisions printed beside a difference lie between its neighbouring messages."""
    result = replay(load_scenario(SCENARIOS / "c4_carrier_opt_out.yaml"))
    near = decisions_near(result, 2)
    assert [d.outcome for d in near][:1] == ["failed"]
    assert all(d.at >= result.messages[0].at for d in near)


def test_reports_cover_every_result() -> None:
    """Text, JSON and HTML reports name the scenario; the summary counts footers and skips."""
    result = replay(load_scenario(SCENARIOS / "c4_operator_cannot_be_texted.yaml"))
    summary = summarize([result])
    assert summary.texts == 6 and summary.with_footer == 4
    assert summary.skipped == {"cannot_be_texted": 1}
    assert "C4 operator marks" in "\n".join(text_report([result]))
    assert '"name": "C4 operator marks the contact cannot be texted"' in as_json(
        [result], exit_code=0
    )
    page = html_page([result], title="t")
    assert "Olivia Stone" in page and "<script>" in page


def test_consent_given_again_after_an_erasure_adds_a_new_contact_that_stays_opted_out(
    tmp_path: Path,
) -> None:
    """consent: true after erase registers the number again as a new contact: it starts opted
    out (the suppression list), its campaign steps are skipped, and the erased contact's
    messages stay in the timeline without their bodies."""
    path = tmp_path / "erase_then_register.yaml"
    path.write_text(
        (SCENARIOS / "erasure_keeps_the_opt_out.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "  - at: day 20 11:00\n    event: lead.created\n"
            '    data: {first_name: Dana, last_name: Ruiz, sms_consent: true, agent: "+16175550100"}\n',
            "  - {at: day 20 11:00, consent: true}\n",
        ),
        encoding="utf-8",
    )
    scenario = load_scenario(path, project=REPO)
    assert [e.kind for e in scenario.events][2:4] == ["erase", "consent"]
    result = replay(scenario)
    assert result.passed, result.mismatches
    assert [m.kind for m in result.messages] == [
        MessageKind.OPT_IN_CONFIRMATION,
        MessageKind.OPT_OUT_CONFIRMATION,
    ]
    assert [m.body for m in result.messages] == ["", ""]  # erased
    again = next(h for h in result.happenings if h.what == "consent")
    assert again.text.startswith(
        f"added again as contact {result.contact_id} (opted out of texts since 2026-03-03)"
    )
    assert "consent kept as evidence only" in again.text
    skipped = [d for d in result.decisions if d.outcome == "skipped"]
    assert [d.code for d in skipped] == ["opted_out"] * 6
    assert result.pending == 0
