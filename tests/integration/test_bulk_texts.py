"""``drip bulk``: who gets it and why not, scheduled sends that fire under every rule at fire time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from test_web_support import AGENT_PHONE, CAMPAIGN, DANA_PHONE, NY, Web, open_web

from drip.domain.enums import ConsentSource, MessageKind, SenderRole, SendState, TextStatus
from drip.errors import NotFoundError, ValidationError
from drip.services import bulk
from drip.services.bulk import BulkFilters, check_body, plan_bulk, schedule_bulk
from drip.services.consent import set_text_status
from drip.services.contacts import send_now
from drip.services.enrollment import enroll
from drip.store.migrate import upgrade
from drip.store.models import Agent, Contact, ScheduledSend

BODY = "Hi {VisitorFirstName}, open house Saturday 1-3pm at 12 Elm St. Want the details?"
PHONES = {
    "ann": "+16175550131",
    "bob": "+16175550132",
    "cat": "+16175550133",
    "dan": "+16175550134",
    "eve": "+16175550135",
    "fay": "+13055550136",  # Miami
    "gus": "+16175550137",
}


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """Services on the test database with the test campaign synced."""
    with open_web(db_url, tmp_path) as w:
        w.sync_campaign()
        yield w


@pytest.fixture
def people(web: Web) -> dict[str, int]:
    """One contact per way of being in or out of a bulk text."""
    ids = {
        "ann": web.add_dana(phone=PHONES["ann"], first_name="Ann", state="MA"),  # gets it
        "bob": web.add_dana(phone=PHONES["bob"], first_name="Bob", consent=False),  # no consent
        "cat": web.add_dana(phone=PHONES["cat"], first_name="Cat"),  # will opt out
        "dan": web.add_dana(phone=PHONES["dan"], first_name="Dan"),  # cannot be texted
        "eve": web.add_dana(phone=PHONES["eve"], first_name="Eve"),  # undeliverable
        "fay": web.add_dana(phone=PHONES["fay"], first_name="Fay", state="FL"),  # gets it, FL
        "hal": web.add_dana(phone=None, email="hal@example.com", first_name="Hal", consent=False),
    }
    assert web.sms("STOP", sid="SM" + "1" * 32, from_=PHONES["cat"]).status_code == 200
    set_text_status(web.deps, ids["dan"], TextStatus.CANNOT_BE_TEXTED, web.now, by="test")
    with web.deps.sessions.begin() as session:
        session.execute(
            update(Contact)
            .where(Contact.id == ids["eve"])
            .values(text_status=TextStatus.UNDELIVERABLE, undeliverable_code=30003)
        )
        gus = Contact(  # consent, but no agent and the account has no default agent
            first_name="Gus",
            phone=PHONES["gus"],
            source=ConsentSource.REGISTRATION,
            sms_consent_at=web.now,
            sms_consent_source=ConsentSource.REGISTRATION,
            sms_consent_text="yes",
            created_at=web.now,
        )
        session.add(gus)
        session.flush()
        ids["gus"] = gus.id
    return ids


def bulk_sends(web: Web) -> list[ScheduledSend]:
    with web.deps.sessions() as session:
        return list(
            session.scalars(
                select(ScheduledSend)
                .where(ScheduledSend.kind == MessageKind.BULK)
                .order_by(ScheduledSend.id)
            )
        )


def test_plan_counts_recipients_and_exclusions_by_reason(web: Web, people: dict[str, int]) -> None:
    """Without filters: Ann and Fay get it; every other contact is excluded with its reason."""
    plan = plan_bulk(web.deps, BODY, BulkFilters(), web.now)

    assert sorted(plan.recipients) == sorted([people["ann"], people["fay"]])
    assert dict(plan.excluded) == {
        "no_consent": 1,
        "opted_out": 1,
        "cannot_be_texted": 1,
        "undeliverable": 1,
        "no_phone": 1,
        "no_sender": 1,
    }
    assert plan.considered == 8
    lines = plan.lines()
    assert lines[0] == "2 of 8 contacts will get this text; 6 excluded"
    assert any("no recorded SMS consent" in line for line in lines)


def test_dry_run_plan_changes_nothing(web: Web, people: dict[str, int]) -> None:
    """Planning alone schedules nothing."""
    before = web.snapshot()

    plan_bulk(web.deps, BODY, BulkFilters(), web.now)

    assert web.snapshot() == before
    assert people


def test_state_filter_uses_address_then_area_code(web: Web, people: dict[str, int]) -> None:
    """--state FL picks Fay (address FL); the rest are 'filtered: state'."""
    plan = plan_bulk(web.deps, BODY, BulkFilters(state="fl"), web.now)

    assert plan.recipients == [people["fay"]]
    assert plan.excluded["filtered: state"] == 7


def test_campaign_filter(web: Web, people: dict[str, int]) -> None:
    """--campaign NAME keeps contacts active in that campaign; an unknown name is an error."""
    enroll(web.deps, people["fay"], CAMPAIGN, web.now)

    plan = plan_bulk(web.deps, BODY, BulkFilters(campaign=CAMPAIGN), web.now)

    assert plan.recipients == [people["fay"]]
    with pytest.raises(NotFoundError, match="--campaign"):
        plan_bulk(web.deps, BODY, BulkFilters(campaign="nope"), web.now)


def test_two_way_filter_is_per_agent_conversation(web: Web, people: dict[str, int]) -> None:
    """--two-way-only keeps contacts who replied to their agent's number, not to another line."""
    assert web.sms("Sounds good", sid="SM" + "2" * 32, from_=PHONES["ann"]).status_code == 200
    assert (
        web.sms("Hi", sid="SM" + "3" * 32, from_=PHONES["fay"], to="+16175550199").status_code
        == 200
    )

    plan = plan_bulk(web.deps, BODY, BulkFilters(two_way_only=True), web.now)

    assert plan.recipients == [people["ann"]]
    assert plan.excluded["filtered: two_way"] == 7


def test_not_contacted_since_filter(web: Web, people: dict[str, int]) -> None:
    """--not-contacted-since 7 leaves out Ann, texted yesterday; Fay's last text was 10 days ago."""
    web.later(days=9)
    assert (
        send_now(web.deps, people["ann"], MessageKind.MANUAL, "Hi Ann", web.now).outcome == "sent"
    )
    web.later(days=1)

    plan = plan_bulk(web.deps, BODY, BulkFilters(not_contacted_since_days=7), web.now)

    assert plan.recipients == [people["fay"]]
    assert plan.excluded["filtered: recently_contacted"] >= 1


def test_not_contacted_since_counts_all_its_days_not_the_frequency_caps(
    web: Web, people: dict[str, int]
) -> None:
    """Ann texted 3 days ago is still "contacted in the last 7 days": the filter's own span is
    used, not the 24 h the plan reads counted texts over (they once shared a variable)."""
    web.later(days=9)
    assert (
        send_now(web.deps, people["ann"], MessageKind.MANUAL, "Hi Ann", web.now).outcome == "sent"
    )
    web.later(days=3)

    plan = plan_bulk(web.deps, BODY, BulkFilters(not_contacted_since_days=7), web.now)

    assert people["ann"] not in plan.recipients
    assert plan.recipients == [people["fay"]]


def test_stage_and_tag_filters_are_those_of_contacts_list(web: Web, people: dict[str, int]) -> None:
    """--stage archive keeps Ann, --tag vip keeps Fay; the others are counted as filtered by it."""
    with web.deps.sessions.begin() as session:
        session.execute(
            update(Contact).where(Contact.id == people["ann"]).values(stage="archive", tags=["hot"])
        )
        session.execute(
            update(Contact).where(Contact.id == people["fay"]).values(stage="new", tags=["vip"])
        )

    by_stage = plan_bulk(web.deps, BODY, BulkFilters(stage="archive"), web.now)
    by_tag = plan_bulk(web.deps, BODY, BulkFilters(tag="vip"), web.now)
    both = plan_bulk(web.deps, BODY, BulkFilters(stage="archive", tag="vip"), web.now)

    assert by_stage.recipients == [people["ann"]]
    assert by_stage.excluded["filtered: stage"] == 7
    assert by_tag.recipients == [people["fay"]]
    assert by_tag.excluded["filtered: tag"] == 7
    assert both.recipients == []
    assert both.excluded["filtered: tag"] == 1  # Ann: in the stage, without the tag
    assert any("in another CRM stage" in line for line in by_stage.lines())


def test_scheduled_bulk_fires_under_zone_and_state_rules(web: Web, people: dict[str, int]) -> None:
    """At 20:30 Boston time Ann's text goes out; Fay (FL, 8am-8pm) is deferred to 08:00."""
    evening = datetime(2026, 3, 2, 20, 30, tzinfo=NY).astimezone(UTC)
    web.clock.set(evening)
    plan = plan_bulk(web.deps, BODY, BulkFilters(), web.now)
    assert dict(plan.deferred) == {"window": 1}

    assert schedule_bulk(web.deps, plan, web.now) == 2
    rows = bulk_sends(web)
    assert {(r.kind, r.sender_role, r.enrollment_id, r.due_at) for r in rows} == {
        (MessageKind.BULK, SenderRole.AGENT, None, evening)
    }
    web.tick()

    by_contact = {s.contact_id: s for s in bulk_sends(web)}
    ann, fay = by_contact[people["ann"]], by_contact[people["fay"]]
    assert ann.state is SendState.SENT
    assert fay.state is SendState.PENDING
    assert fay.decision_code == "window"
    assert fay.due_at == datetime(2026, 3, 3, 8, 0, tzinfo=NY).astimezone(UTC)
    texts = [s for s in web.transport.sms if s.msg.to == PHONES["ann"]]
    assert texts[-1].msg.body.startswith("Hi Ann, open house Saturday")
    assert texts[-1].msg.from_ == AGENT_PHONE


def test_an_opt_out_after_scheduling_skips_at_fire_time(web: Web, people: dict[str, int]) -> None:
    """A contact who texts STOP between scheduling and firing does not get the bulk text."""
    schedule_bulk(web.deps, plan_bulk(web.deps, BODY, BulkFilters(), web.now), web.now)
    assert web.sms("STOP", sid="SM" + "4" * 32, from_=PHONES["ann"]).status_code == 200

    web.tick()

    ann = next(s for s in bulk_sends(web) if s.contact_id == people["ann"])
    assert ann.state is SendState.SKIPPED
    assert ann.decision_code == "opted_out"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("   ", "empty"),
        ("Hi {FirstName}", "unknown template variable"),
        ("See bit.ly/abc", "link shortener"),
        ("x" * 1601, "at most"),
    ],
)
def test_bad_bodies_are_refused(body: str, message: str) -> None:
    """An empty body, an unknown variable, a shortened link or an over-long text is an error."""
    with pytest.raises(ValidationError, match=message):
        check_body(body)


def test_a_large_bulk_is_inserted_in_batches(web: Web) -> None:
    """1,200 consenting contacts get 1,200 bulk sends (COPY on PostgreSQL), batch by batch."""
    with web.deps.sessions.begin() as session:
        agent = session.scalars(select(Agent)).one()
        rows: list[dict[str, Any]] = [
            {
                "first_name": f"Lead{i}",
                "last_name": "",
                "phone": f"+1617555{i:04d}",
                "source": ConsentSource.IMPORT,
                "agent_id": agent.id,
                "sms_consent_at": web.now,
                "sms_consent_source": ConsentSource.IMPORT,
                "sms_consent_text": "yes",
                "created_at": web.now,
                "updated_at": web.now,
            }
            for i in range(2000, 3200)
        ]
        session.execute(insert(Contact), rows)
    batches: list[int] = []

    plan = plan_bulk(web.deps, BODY, BulkFilters(), web.now)
    scheduled = schedule_bulk(web.deps, plan, web.now, on_batch=batches.append)

    assert scheduled == 1200
    assert batches == [1000, 200]
    assert len(bulk_sends(web)) == 1200


# --------------------------------------------------------------------------- the command


def _drip(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    drip = Path(sys.executable).with_name("drip")
    return subprocess.run(
        [str(drip), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_bulk_command_dry_run_then_schedule(tmp_path: Path) -> None:
    """`drip bulk --dry-run` prints the counts and schedules nothing; without it, sends are created."""
    url = f"sqlite:///{tmp_path / 'drip.db'}"
    upgrade(url)
    with open_web(url, tmp_path) as web:
        web.add_dana()
        web.add_dana(phone="+16175550140", first_name="Bob", consent=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(tmp_path / "home"),
        DRIP_DATABASE_URL=url,
        DRIP_LOG_FORMAT="json",
        DRIP_LOG_LEVEL="WARNING",
    )

    dry = _drip(env, "bulk", "Open house Saturday!", "--state", "MA", "--dry-run")
    real = _drip(env, "bulk", "Open house Saturday!", "--state", "MA", "--yes")

    assert dry.returncode == 0, dry.stderr
    assert "1 of 2 contacts will get this text; 1 excluded" in dry.stdout
    assert "no_consent" in dry.stdout
    assert "dry run: nothing scheduled" in dry.stdout
    assert real.returncode == 0, real.stderr
    assert re.search(r"bulk \d+: scheduled 1 sends", real.stdout)
    staged = _drip(env, "bulk", "Open house Saturday!", "--stage", "archive", "--dry-run")
    assert staged.returncode == 0, staged.stderr
    assert "0 of 2 contacts will get this text; 2 excluded" in staged.stdout
    assert "filtered: stage: in another CRM stage" in staged.stdout
    with open_web(url, tmp_path, agent=False) as web:
        rows = bulk_sends(web)
        assert [(r.body, r.state) for r in rows] == [("Open house Saturday!", SendState.PENDING)]
        assert web.contact(rows[0].contact_id).phone == DANA_PHONE


def test_queries_are_chunked_with_the_same_result(
    web: Web, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With IN lists cut into slices of 2 the plan is the same (big lists exceed bind limits)."""
    assert web.sms("Sounds good", sid="SM" + "6" * 32, from_=PHONES["ann"]).status_code == 200
    filters = BulkFilters(two_way_only=True, not_contacted_since_days=1)
    web.later(days=2)
    whole = plan_bulk(web.deps, BODY, filters, web.now)
    monkeypatch.setattr(bulk, "IN_CHUNK", 2)

    sliced = plan_bulk(web.deps, BODY, filters, web.now)

    assert sliced.recipients == whole.recipients == [people["ann"]]
    assert sliced.excluded == whole.excluded
