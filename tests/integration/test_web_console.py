"""The console under /console/ with the Flask test client, on a seeded SQLite and PostgreSQL.

Seed: the bundled smart-drip campaign; Dana (registration consent) enrolled
texted by hand on day 0 (F1) and run to day 50 (day 15 without the footer,
F4; day 45 with it, F3);
Omar (no consent) enrolled, so his texts are skipped; Rita replies and then
texts STOP (a reply, a revocation and an opt-out confirmation).
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from services_support import (
    AGENT_PHONE,
    START,
    World,
    add_dana,
    add_sam,
    manual_text,
    open_world,
    run_until,
    sync_bundled,
)

from drip.services.enrollment import enroll
from drip.services.inbound import handle_inbound
from drip.services.stats import campaign_stats
from drip.store import repository as repo
from drip.store.models import ConsentEvent, Contact, ScheduledSend
from drip.web.app import create_app
from drip.web.console import COOKIE

TOKEN = "console-test-token-0123456789"
CAMPAIGN = "smart-drip-new-lead"
DANA = "+16175550123"
OMAR = "+16175550124"
RITA = "+16175550125"


@dataclasses.dataclass
class Seeded:
    world: World
    app: Flask
    dana: int
    omar: int
    rita: int


def seed(world: World) -> tuple[int, int, int]:
    """Three contacts with consent, without it, and opted out after a reply."""
    add_sam(world)
    sync_bundled(world, CAMPAIGN)
    dana = add_dana(world, phone=DANA)
    omar = add_dana(world, phone=OMAR, first_name="Omar", consent=False, email="omar@example.com")
    rita = add_dana(world, phone=RITA, first_name="Rita", email="rita@example.com")
    manual_text(world, dana, "Hi Dana, it's Sam with Acme Realty.")  # day 0: F1, footer
    for contact in (dana, omar, rita):
        enroll(world.deps, contact, CAMPAIGN, world.now)
    run_until(world, START + timedelta(days=20))
    handle_inbound(
        world.deps, from_phone=RITA, to_phone=AGENT_PHONE, body="Sounds good", now=world.now
    )
    world.at(world.now + timedelta(hours=1))
    handle_inbound(world.deps, from_phone=RITA, to_phone=AGENT_PHONE, body="STOP", now=world.now)
    run_until(world, START + timedelta(days=50))
    return dana, omar, rita


@pytest.fixture
def seeded(db_url: str, tmp_path: Path) -> Iterator[Seeded]:
    with open_world(db_url, tmp_path) as world:
        dana, omar, rita = seed(world)
        settings = dataclasses.replace(world.deps.settings, console_token=TOKEN)
        app = create_app(dataclasses.replace(world.deps, settings=settings))
        yield Seeded(world, app, dana, omar, rita)


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def logged_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    answer = client.post("/console/login", data={"token": TOKEN, "next": "/console/queue"})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/queue")
    return client


def send_ids(seeded: Seeded, contact_id: int) -> list[int]:
    with seeded.world.deps.sessions() as session:
        return [s.id for s in repo.sends_of_contact(session, contact_id)]


def test_console_is_off_without_a_token(db_url: str, tmp_path: Path) -> None:
    """Without DRIP_CONSOLE_TOKEN the console does not exist: 404, even with a bearer header."""
    with open_world(db_url, tmp_path) as world:
        client = create_app(world.deps).test_client()
        assert client.get("/console/").status_code == 404
        assert client.get("/console/", headers=bearer()).status_code == 404


def test_no_token_gets_the_login_form_with_401(seeded: Seeded) -> None:
    """Every page without credentials answers 401 with the login form and shows no data."""
    client = seeded.app.test_client()
    for path in ("/console/", "/console/queue", f"/console/contacts/{seeded.dana}",
                 "/console/audit?contact=1&format=csv"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 401, path
        page = answer.get_data(as_text=True)
        assert 'name="token"' in page and 'type="password"' in page
        assert DANA not in page and "Dana" not in page
    assert client.get("/console/login").status_code == 200


def test_wrong_token_is_401(seeded: Seeded) -> None:
    """A wrong bearer token and a wrong login token are both refused with 401, no cookie."""
    client = seeded.app.test_client()
    answer = client.get("/console/", headers={"Authorization": "Bearer not-the-token"})
    assert answer.status_code == 401
    answer = client.post("/console/login", data={"token": "not-the-token"})
    assert answer.status_code == 401
    assert "not valid" in answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    assert client.get("/console/", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401


def test_forged_cookie_is_401(seeded: Seeded) -> None:
    """A cookie not signed by this server, or signed for another token, is refused."""
    good = logged_in(seeded.app)
    real = good.get_cookie(COOKIE, path="/console/")
    assert real is not None
    forged = seeded.app.test_client()
    forged.set_cookie(COOKIE, real.value[:-4] + "AAAA", path="/console/")
    assert forged.get("/console/").status_code == 401
    forged.set_cookie(COOKIE, "console", path="/console/")
    assert forged.get("/console/").status_code == 401
    other_settings = dataclasses.replace(seeded.world.deps.settings, console_token="another")
    other = create_app(dataclasses.replace(seeded.world.deps, settings=other_settings))
    stranger = other.test_client()
    stranger.set_cookie(COOKIE, real.value, path="/console/")
    assert stranger.get("/console/").status_code == 401


def test_login_cookie_is_signed_httponly_samesite(seeded: Seeded) -> None:
    """The login sets an HttpOnly, SameSite=Strict cookie that then opens every page."""
    client = seeded.app.test_client()
    answer = client.post("/console/login", data={"token": TOKEN, "next": "https://evil.example/"})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/")  # no open redirect
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
    assert TOKEN not in cookie
    assert client.get("/console/").status_code == 200
    assert client.post("/console/logout").status_code == 303
    assert client.get("/console/").status_code == 401


def test_every_page_answers_200(seeded: Seeded) -> None:
    """Campaigns, a campaign, queue, search, contact, send and audit pages all render."""
    client = logged_in(seeded.app)
    dana_sends = send_ids(seeded, seeded.dana)
    omar_sends = send_ids(seeded, seeded.omar)
    pages = [
        "/console/",
        f"/console/campaigns/{CAMPAIGN}",
        f"/console/campaigns/{CAMPAIGN}?step=day-15-check-in",
        "/console/queue",
        "/console/contacts",
        f"/console/contacts/{seeded.dana}",
        f"/console/contacts/{seeded.omar}",
        f"/console/contacts/{seeded.rita}",
        *(f"/console/sends/{i}" for i in dana_sends + omar_sends),
        "/console/audit",
    ]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.get_data(as_text=True)[:500])
        page = answer.get_data(as_text=True)
        assert "Times on this page are in" in page or "UTC" in page, path
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert not re.search(r"""(src|href)=["']https?://""", page), path
    found = client.post("/console/contacts", data={"q": "rita"}).get_data(as_text=True)
    assert (
        f"/console/contacts/{seeded.rita}" in found
        and f"/console/contacts/{seeded.dana}" not in found
    )
    by_phone = client.post("/console/contacts", data={"q": "555-0124"}).get_data(as_text=True)
    assert f"/console/contacts/{seeded.omar}" in by_phone
    assert f"/console/contacts/{seeded.rita}" not in by_phone


def test_unknown_things_are_404_and_bad_input_400(seeded: Seeded) -> None:
    """Unknown campaign, contact and send are 404 pages; a bad audit query is a 400 naming it."""
    client = seeded.app.test_client()
    assert client.get("/console/campaigns/nope", headers=bearer()).status_code == 404
    assert client.get("/console/contacts/999999", headers=bearer()).status_code == 404
    assert client.get("/console/sends/999999", headers=bearer()).status_code == 404
    bad = client.get("/console/audit?format=csv&opted_out_from=yesterday", headers=bearer())
    assert bad.status_code == 400 and "opted_out_from" in bad.get_data(as_text=True)
    assert client.get("/console/audit?format=xml&contact=1", headers=bearer()).status_code == 400
    assert client.get("/console/audit?format=csv&contact=x", headers=bearer()).status_code == 400


def test_campaign_numbers_are_drip_stats(seeded: Seeded) -> None:
    """The per-step numbers of the campaigns page are those of the drip stats service."""
    stats = campaign_stats(seeded.world.deps, seeded.world.now, CAMPAIGN).campaigns[0]
    page = seeded.app.test_client().get("/console/", headers=bearer()).get_data(as_text=True)
    for step in stats.steps:
        row = re.search(rf'<tr data-step="{re.escape(step.step)}">(.*?)</tr>', page, re.S)
        assert row is not None, step.step
        cells = dict(re.findall(r'data-metric="(\w+)">(\d+)<', row.group(1)))
        assert int(cells["sent"]) == step.sent
        assert int(cells["with_footer"]) == step.with_footer
        assert int(cells["scheduled"]) == step.scheduled
    assert stats.total.sent >= 2 and 0 < stats.total.with_footer < stats.total.sent


def test_send_page_tells_the_footer_rule_and_the_consent(seeded: Seeded) -> None:
    """Dana's day-15 text: no footer by F4, with the consent evidence it relied on."""
    with seeded.world.deps.sessions() as session:
        send = next(
            s for s in repo.sends_of_contact(session, seeded.dana) if s.step_id == "day-15-check-in"
        )
    page = (
        seeded.app.test_client()
        .get(f"/console/sends/{send.id}", headers=bearer())
        .get_data(as_text=True)
    )
    assert "Sent without the opt-out footer: rule F4" in page
    assert "Msg &amp; data rates may apply" in page  # the consent words shown at registration
    assert f"/console/contacts/{seeded.dana}" in page
    assert "America/New_York" in page


def test_a_skipped_send_says_its_outcome_once(seeded: Seeded) -> None:
    """Omar's skipped send: the verdict, the trail and his timeline name the outcome, then the reason."""
    client = seeded.app.test_client()
    send_id = send_ids(seeded, seeded.omar)[0]
    page = html.unescape(
        client.get(f"/console/sends/{send_id}", headers=bearer()).get_data(as_text=True)
    )
    assert re.search(r"<h2[^>]*>Skipped: \w[^<]*</h2><p>(?!skipped:)\w", page), page[:3000]
    assert "skipped: " not in page
    contact = html.unescape(
        client.get(f"/console/contacts/{seeded.omar}", headers=bearer()).get_data(as_text=True)
    )
    assert "<td>skipped</td>" in contact
    assert "skipped: " not in contact


def test_contact_page_shows_consent_and_timeline(seeded: Seeded) -> None:
    """Rita's page: her consent and STOP events, her state, the lane with linked marks."""
    page = (
        seeded.app.test_client()
        .get(f"/console/contacts/{seeded.rita}", headers=bearer())
        .get_data(as_text=True)
    )
    assert "revoked keyword" in page and "registration" in page and RITA in page
    assert 'class="lane"' in page and 'class="mark ' in page
    assert re.search(r'<a href="/console/sends/\d+"><g class="mark', page)
    assert ">day 0</text>" in page and ">Mar 2 2026</text>" in page  # dates on the axis
    assert "F2" in page and "F5" in page  # the legend names the footer rules
    assert "MA" in page  # the area code's state


def test_audit_csv_holds_every_consent_event(seeded: Seeded) -> None:
    """The CSV parses with csv and holds each consent event of the seeded contacts."""
    client = seeded.app.test_client()
    rows: list[dict[str, str]] = []
    for contact in (seeded.dana, seeded.omar, seeded.rita):
        answer = client.get(f"/console/audit?contact={contact}&format=csv", headers=bearer())
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/csv")
        rows += list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    with seeded.world.deps.sessions() as session:
        events = session.query(ConsentEvent).all()
    exported = {
        (int(r["contact_id"]), r["at_utc"], r["kind"])
        for r in rows
        if r["record"] in ("consent_event", "opt_out")
    }
    assert events
    for e in events:
        assert (e.contact_id, e.at.isoformat(), e.kind.value) in exported
    footers = [r for r in rows if r["record"] == "message" and r["footer_rule"] == "F4"]
    assert footers and all(r["footer"] == "no" for r in footers)


def test_audit_of_opt_outs_in_a_range(seeded: Seeded) -> None:
    """The date-range export holds the contact who opted out in it, and only them; JSON too."""
    client = seeded.app.test_client()
    day = (START + timedelta(days=20)).date().isoformat()
    answer = client.get(
        f"/console/audit?format=json&opted_out_from={day}&opted_out_to={day}", headers=bearer()
    )
    assert answer.status_code == 200
    document = json.loads(answer.get_data(as_text=True))
    assert [c["id"] for c in document["contacts"]] == [seeded.rita]
    assert document["contacts"][0]["opt_outs"][0]["kind"] == "revoked_keyword"
    earlier = (START - timedelta(days=3)).date().isoformat()
    answer = client.get(
        f"/console/audit?format=csv&opted_out_from={earlier}&opted_out_to={earlier}",
        headers=bearer(),
    )
    assert list(csv.DictReader(io.StringIO(answer.get_data(as_text=True)))) == []


def test_console_logs_no_phone_or_email(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    """Searching and exporting log ids and counts, never a phone number or email."""
    client = logged_in(seeded.app)
    capsys.readouterr()
    client.post("/console/contacts", data={"q": RITA})
    client.get(f"/console/contacts/{seeded.rita}")
    client.get(f"/console/audit?contact={seeded.rita}&format=json")
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "console_search" in logged
    assert RITA not in logged and "5550125" not in logged and "rita@example.com" not in logged


def test_seed_has_what_the_pages_need(seeded: Seeded) -> None:
    """The seed holds a skipped send (Omar) and an opted-out contact (Rita)."""
    with seeded.world.deps.sessions() as session:
        omar_states = {
            s.state.value for s in session.query(ScheduledSend).filter_by(contact_id=seeded.omar)
        }
        rita = session.get(Contact, seeded.rita)
        assert rita is not None and rita.sms_opted_out_at is not None
    assert "skipped" in omar_states
