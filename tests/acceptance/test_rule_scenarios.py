"""Every rule of SPEC §4, §4a (and those of §9, §10, §13 mapped so far) has a replay scenario that passes (issue 10).

``RULES`` is the list of the rules, each with the scenario files that show
it; a rule without one, a file that is missing, or a scenario that fails
makes this test fail. The few rules that virtual time cannot show (a crash
between the provider call and the commit, a provider's 5xx, the brand's
daily cap counted on the wall clock, the ``drip explain`` command) name
the test that covers them instead, in ``NOT_REPLAYABLE``, with the reason.
Each bundled state row of ``drip/rules/us.yaml`` must have its scenario too.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from replay_support import DRIP, REPO, replay_json

from drip.rules import bundled_state_rules

SCENARIOS = REPO / "tests" / "scenarios"

#: rule id -> (the SPEC's words, the scenario files that show it).
RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    # --- SPEC §4 ---
    "4.day_n": (
        "a step with day: N fires N calendar days later at the same local time",
        ("seed_never_replies.yaml",),
    ),
    "4.at_local_time": (
        "with at: HH:MM it fires at that local time on that day",
        ("catch_up_after_downtime.yaml", "window_per_campaign.yaml"),
    ),
    "4.send_window": (
        "campaign and bulk texts only 08:00-21:00 local; else the next opening",
        ("window_deferral.yaml", "bulk_footer_and_window.yaml"),
    ),
    "4.send_window_per_campaign": (
        "send_window is configurable per campaign",
        ("window_per_campaign.yaml",),
    ),
    "4.manual_not_deferred": (
        "manual texts are not deferred",
        ("window_deferral.yaml", "state_md_window_8_to_20.yaml"),
    ),
    "4.compliance_not_deferred": (
        "compliance replies are not deferred",
        ("c3_opt_in_not_held_by_quiet_hours.yaml",),
    ),
    "4.state_window": (
        "FL, OK, MD: at most 08:00-20:00",
        (
            "state_fl_window_8_to_20.yaml",
            "state_ok_from_area_code.yaml",
            "state_md_window_8_to_20.yaml",
        ),
    ),
    "4.state_cap": (
        "at most 3 campaign or bulk texts in any 24 h (rolling)",
        ("state_fl_cap_three_per_24h.yaml",),
    ),
    "4.which_state": (
        "the address state AND the area code's state: narrowest window, smallest cap",
        (
            "state_ma_address_fl_area_code.yaml",
            "state_ct_area_code_9_to_20.yaml",
            "carrier_validity_narrowest_window.yaml",
        ),
    ),
    "4.catch_up": (
        "after downtime at most one overdue step per enrollment per day, in order",
        ("catch_up_after_downtime.yaml",),
    ),
    "4.catch_up_only_overdue": (
        "the limit counts only overdue steps",
        ("catch_up_counts_only_overdue_steps.yaml",),
    ),
    "4.zone_from_area_code": (
        "no zone on record: the zones the area code can mean",
        ("zone_from_area_code.yaml",),
    ),
    "4.zone_corrections": (
        "a correction table as data (689 is Eastern)",
        ("zone_689_is_eastern.yaml",),
    ),
    "4.zone_set": (
        "several zones: every window in all of them; times in the first",
        ("zone_set_448_at_utc.yaml",),
    ),
    "4.zone_default": (
        "the account default only where the number gives no zone",
        ("zone_unknown_area_code.yaml",),
    ),
    "4.fire_checks": (
        "at fire time: skip without consent, opted out or cannot_be_texted",
        ("c2_created_by_hand.yaml", "c4_operator_cannot_be_texted.yaml", "kw_stop_family.yaml"),
    ),
    "4.empty_variable": (
        "a step lacking a value is skipped, not sent",
        ("window_per_campaign.yaml",),
    ),
    # --- SPEC §4a ---
    "4a.per_weekday_window": (
        "per-weekday windows (TX Sunday from noon, RI Saturday)",
        ("state_tx_sunday_noon.yaml", "state_ri_saturday_hours.yaml"),
    ),
    "4a.days_none": (
        "days with no texts (Sundays)",
        ("state_ms_no_sundays.yaml", "state_la_no_sundays.yaml"),
    ),
    "4a.holidays": (
        "no texts on the state's legal holidays (holiday library)",
        ("state_al_holiday.yaml",),
    ),
    "4a.blackouts": ("blackouts set by operations", ("state_la_blackout.yaml",)),
    "4a.row_disabled": (
        "account.yaml turns a bundled row off (enabled: false)",
        ("state_rule_disabled.yaml",),
    ),
    "4a.row_added": ("the table is extended without code changes", ("state_rule_added.yaml",)),
    "4a.next_opening_everywhere": (
        "deferred to the next opening in every zone and state",
        ("zone_set_448_at_utc.yaml", "state_ri_saturday_hours.yaml"),
    ),
    "4a.pacing": (
        "sends beyond a sender's throughput are deferred (reason pacing)",
        ("carrier_pacing_backlog.yaml",),
    ),
    "4a.validity_period": (
        "ValidityPeriod = seconds before the window closes, at most 36,000",
        ("carrier_validity_narrowest_window.yaml", "carrier_pacing_backlog.yaml"),
    ),
    "4a.too_little_time": (
        "a text that cannot leave the queue in time waits for the next opening",
        ("carrier_clock_too_little_time.yaml",),
    ),
    "4a.expired_once": (
        "an expired text (30036) is rescheduled to the next opening, once",
        ("carrier_expired_requeued_once.yaml",),
    ),
    "C3.imported_consent": (
        "imported consent's confirmation goes through the send pipeline",
        ("c3_imported_consent_at_night.yaml",),
    ),
    # --- SPEC §9 and §10 ---
    "9.trigger_lead_created": (
        "a lead.created trigger with where lead_source enrolls the contact",
        ("events_new_lead_by_source.yaml",),
    ),
    "9.exit": (
        "an exit rule ends the enrollment, its pending sends cancelled",
        ("events_new_lead_by_source.yaml",),
    ),
    "9.trigger_stage_after": (
        "where stage matches the stage after the event; reenroll false enrolls once",
        ("events_archived_lead_revived.yaml",),
    ),
    "10.reassignment": (
        "pending texts come from the new agent, whose first text carries the footer",
        ("events_reassigned_lead_new_agent_footer.yaml",),
    ),
    "9.group_priority": (
        "at most one active enrollment per group; a higher priority replaces a lower one",
        ("events_group_priority_replaces.yaml",),
    ),
    "9.cooldown": (
        "a trigger with a cooldown enrolls the contact again only after it (reenroll true)",
        ("events_activity_cooldown.yaml",),
    ),
    "9.paused_trigger_held": (
        "a trigger of a paused campaign enrolls held; the held sends go after the resume",
        ("events_paused_campaign_trigger_held.yaml",),
    ),
    "10.two_way_not_carried": (
        "two-way with the old agent does not carry over: the new agent's first text has the footer",
        ("events_reassigned_two_way_not_carried.yaml",),
    ),
    "10.opt_out_stays": (
        "opt-outs cover every sender and stay after reassignment",
        ("events_reassigned_opt_out_stays.yaml",),
    ),
    "10.deactivation_round_robin": (
        "deactivation moves the agent's contacts to the active agents in turn",
        ("events_agent_deactivated_round_robin.yaml",),
    ),
    "10.deactivation_concierge": (
        "deactivation to the concierge: the old number sends nothing more",
        ("events_agent_deactivated_concierge.yaml",),
    ),
    "10.stop_to_old_number": (
        "a STOP to a deactivated agent's number is honoured; the old number sends nothing",
        ("events_stop_to_old_number.yaml",),
    ),
    # --- SPEC §13 (frequency cap, step expiry; the rest comes later) ---
    "13.frequency_cap": (
        "at most N campaign and bulk texts per contact in D days, across campaigns and "
        "senders; beyond it deferred (frequency_cap) to when it fits",
        ("frequency_cap_across_campaigns.yaml",),
    ),
    "13.frequency_cap_exempt": (
        "compliance replies and manual texts do not count and are never held",
        ("frequency_cap_across_campaigns.yaml",),
    ),
    "13.expiry": (
        "a step's expires_after: a text that cannot go by then is skipped (expired), never late",
        ("expiry_step_never_sent_late.yaml",),
    ),
    "13.expiry_bulk": (
        "drip bulk --expires-at: a text that cannot go by then (window, caps, outage) is "
        "skipped (expired), never sent late",
        ("bulk_expires_open_house.yaml",),
    ),
    "13.reassigned_numbers": (
        "a campaign or bulk text on consent older than max_age_days is checked first; "
        "reassigned: consent void and the text skipped (number_reassigned)",
        ("reassigned_number_voids_consent.yaml",),
    ),
    "13.reassigned_numbers_recent": (
        "consent or a verification within max_age_days: sent with no lookup; "
        "not reassigned: the verification date is recorded",
        ("reassigned_recent_verification_no_lookup.yaml",),
    ),
    "13.reassigned_numbers_unknown": (
        "no answer from the check (an outage): on_unknown defer, with backoff "
        "(reassigned_check_unavailable), never sent unchecked",
        ("reassigned_lookup_outage_defers.yaml",),
    ),
    "13.erasure_keeps_opt_out": (
        "erasure removes the personal data and keeps the opt-out (suppression list): a "
        "contact created later with the same number starts opted out and is never texted "
        "(opted_out)",
        ("erasure_keeps_the_opt_out.yaml",),
    ),
    "13.erasure_cancels_pending": (
        "erasure stops the contact's enrollments and cancels its pending texts (erased); "
        "nothing more is sent",
        ("erasure_cancels_pending_texts.yaml",),
    ),
    # --- SPEC §11 ---
    "11.on_reply_pause_resume": (
        "on_reply: pause holds the plan; after resume_after quiet it resumes, spacing kept",
        ("reply_pause_resumes_after_quiet.yaml", "reply_pause_on_contact_touched.yaml"),
    ),
    "11.on_reply_pause_extended": (
        "a further reply during the pause extends it",
        ("reply_pause_extended_by_second_reply.yaml",),
    ),
    "11.on_reply_stop": (
        "on_reply: stop ends the enrollment",
        ("reply_stop_ends_plan.yaml",),
    ),
    "11.on_reply_continue": (
        "on_reply: continue leaves the plan running",
        ("reply_continue_keeps_plan.yaml",),
    ),
    "11.keyword_never_pauses": (
        "on_reply acts on texts that are not keywords only",
        ("reply_keyword_never_pauses.yaml",),
    ),
    "11.per_contact_pause": (
        "an operator holds and releases one contact's enrollments, spacing kept",
        ("reply_operator_pause_contact.yaml",),
    ),
}

#: rule id -> (the SPEC's words, why no scenario, "file::test" that covers it).
NOT_REPLAYABLE: dict[str, tuple[str, str, str]] = {
    "4.federal_window_lint": (
        "a window outside 08:00-21:00 is a lint error",
        "the scenario is invalid by design: replay exits 2 (checked here and there)",
        "tests/acceptance/test_replay_rules.py::"
        "test_campaign_window_outside_federal_hours_makes_the_scenario_invalid",
    ),
    "4.never_twice": (
        "a crash or retry may lose a send but never duplicates one",
        "a crash between the provider call and the commit is not an event of virtual time",
        "tests/integration/test_fire_at_most_once.py::"
        "test_a_crash_between_the_provider_call_and_the_commit_is_never_resent",
    ),
    "4.retry_only_not_accepted": (
        "a request is retried only when the provider documents it as not accepted",
        "the recording transport has no HTTP; the fake Twilio server does",
        "tests/integration/test_fire_twilio_errors.py::test_a_5xx_is_unknown_and_never_retried",
    ),
    "4a.brand_daily_cap": (
        "an optional daily segment cap for the brand",
        "the cap is a fixed window of the wall clock (limits), not of virtual time",
        "tests/unit/test_pacing.py::test_the_brands_daily_cap_comes_from_limits",
    ),
    "9.older_event_kept": (
        "an event older than one already applied to a field does not move it back",
        "a scenario's lead events occur when they are applied; an older occurred_at "
        "arriving later needs the producer's own time",
        "tests/integration/test_web_events.py::"
        "test_an_older_event_does_not_move_a_field_back_and_an_exit_ends_the_plan",
    ),
    "9.explain_names_event": (
        "drip explain shows the event that enrolled and the one that ended an enrollment",
        "a command, not a message",
        "tests/integration/test_web_events.py::"
        "test_explain_and_history_name_the_events_that_enrolled_and_ended",
    ),
    "4a.explain_names_rule": (
        "drip explain names the rule and its source",
        "a command, not a message; the replay timeline prints the same reasons",
        "tests/integration/test_services_audit.py::"
        "test_explain_and_history_show_the_zone_set_and_the_rule_with_its_source",
    ),
}

#: Each bundled state row -> the scenario that defers a text in its closed hours or days.
ROWS: dict[str, str] = {
    "FL": "state_fl_window_8_to_20.yaml",
    "OK": "state_ok_from_area_code.yaml",
    "MD": "state_md_window_8_to_20.yaml",
    "TX": "state_tx_sunday_noon.yaml",
    "CT": "state_ct_area_code_9_to_20.yaml",
    "WA": "state_wa_8_to_20.yaml",
    "LA": "state_la_no_sundays.yaml",
    "AL": "state_al_holiday.yaml",
    "MS": "state_ms_no_sundays.yaml",
    "RI": "state_ri_saturday_hours.yaml",
}


def _files() -> list[str]:
    names = {name for _, files in RULES.values() for name in files} | set(ROWS.values())
    return sorted(names)


@cache
def _replayed() -> tuple[int, dict[str, Any], str]:
    return replay_json((SCENARIOS / name for name in _files()), timeout=600)


def test_every_rule_names_scenario_files_that_exist() -> None:
    """Each rule of §4 and §4a lists at least one scenario, and every listed file exists."""
    missing = [
        f"{rule}: {name}"
        for rule, (_, files) in RULES.items()
        for name in files or ("(none)",)
        if not (SCENARIOS / name).is_file()
    ]
    assert missing == []
    assert set(RULES).isdisjoint(NOT_REPLAYABLE)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_scenarios_of_each_rule_pass(rule: str) -> None:
    """Every scenario of the rule replays through drip replay and each expectation holds."""
    code, document, stderr = _replayed()
    assert document, f"no JSON document; stderr:\n{stderr}"
    assert document["errors"] == []
    results = {Path(s["file"]).name: s for s in document["scenarios"]}
    for name in RULES[rule][1]:
        result = results[name]
        assert result["checked"] is True, name
        assert result["passed"] is True, json.dumps(result["mismatches"], indent=2)
    assert code == 0, stderr


def test_every_bundled_state_row_has_its_scenario() -> None:
    """A row of drip/rules/us.yaml without a scenario that defers a text by it fails here."""
    states = {rule.state for rule in bundled_state_rules()}
    assert states == set(ROWS)
    _, document, stderr = _replayed()
    assert document, stderr
    results = {Path(s["file"]).name: s for s in document["scenarios"]}
    for state, name in ROWS.items():
        reasons = [d["reason"] for d in results[name]["decisions"] if d["outcome"] == "deferred"]
        assert any(f"{state} rule" in reason for reason in reasons), (state, name, reasons)


def test_erasure_scenarios_record_why_nothing_more_was_sent() -> None:
    """The contact created again after an erasure has its steps skipped as opted out, and
    the erased contact's pending texts are cancelled as erased, none left pending."""
    _, document, stderr = _replayed()
    assert document, stderr
    results = {Path(s["file"]).name: s for s in document["scenarios"]}
    again = results["erasure_keeps_the_opt_out.yaml"]
    after = [d for d in again["decisions"] if d["day"] >= 20]
    assert [(d["outcome"], d["code"], d["kind"]) for d in after] == [
        ("skipped", "opted_out", "manual")
    ] + [("skipped", "opted_out", "campaign")] * 5, after
    assert all("opted out of texts on 2026-03-03" in d["reason"] for d in after), after
    assert any(
        e["what"] == "event" and "added again as contact" in e["text"] for e in again["events"]
    )
    pending = results["erasure_cancels_pending_texts.yaml"]
    cancelled = [(d["day"], d["outcome"], d["code"], d["step"]) for d in pending["decisions"]]
    steps = (
        "day-45-market-update",
        "day-180-timing",
        "day-270-new-listings",
        "day-360-anniversary",
    )
    assert cancelled == [(20, "cancelled", "erased", step) for step in steps], cancelled
    assert pending["pending_after_end"] == 0


@pytest.mark.parametrize("rule", sorted(NOT_REPLAYABLE))
def test_the_rules_without_a_scenario_name_a_test_that_exists(rule: str) -> None:
    """A rule virtual time cannot show names its covering test, which must exist."""
    _, why, node = NOT_REPLAYABLE[rule]
    path, test = node.split("::")
    assert why
    assert f"def {test}(" in (REPO / path).read_text(encoding="utf-8"), node


def test_the_federal_window_scenario_is_invalid_and_exits_2() -> None:
    """SPEC §4 federal window: a scenario enrolling a 07:00 campaign is an invalid file (exit 2)."""
    done = subprocess.run(
        [DRIP, "replay", str(SCENARIOS / ".invalid" / "federal_window.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "47 CFR 64.1200(c)(1)" in done.stderr
