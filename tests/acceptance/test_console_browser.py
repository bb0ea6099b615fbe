"""The console in a real browser: headless Chromium driven by Playwright against ``drip serve``.

The database is the demo's year (13 sample contacts, five campaigns, a bulk
text) kept on disk by the replay runner; ``drip serve`` runs on it as a
subprocess with ``DRIP_CONSOLE_TOKEN`` set. Chromium is Debian's
``/usr/bin/chromium`` (``.ci/run`` installs it); Playwright never downloads a
browser here. Every request the page makes is recorded (Playwright's
``request`` event) and must stay on 127.0.0.1.

The test takes the README's screenshots (campaigns page and a contact's
page); with ``DRIP_UPDATE_SCREENSHOTS=1`` it writes them to ``docs/``, else
to a temporary folder, so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from net_support import free_port

from drip.domain.schedule import at_local
from drip.replay.demo import BROADCAST, DEMO_DATE, all_campaigns, choose_project, sample_scenarios
from drip.replay.runner import run_together

REPO = Path(__file__).resolve().parents[2]
#: Where the README's screenshots go: ``docs/`` when asked to refresh them.
DOCS = REPO / "docs"
TOKEN = "browser-console-token-4242"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DANA = "+16175550123"


def _drip(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    drip = Path(sys.executable).with_name("drip")
    return subprocess.run(
        [str(drip), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found:
        return found
    reason = "chromium is not installed (apt-get install -y --no-install-recommends chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must have it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """The demo database on disk and ``drip serve`` on it; yields URL, environment, log path."""
    folder = tmp_path_factory.mktemp("console")
    project = choose_project(REPO)
    day, wall, zone, body = BROADCAST
    start = datetime.fromisoformat(DEMO_DATE).date()
    broadcast_at = at_local(start.fromordinal(start.toordinal() + day), wall, zone)
    scenarios = sample_scenarios(project.root)
    run_together(
        scenarios,
        folder=folder / "demo",
        campaigns=all_campaigns(project.root),
        account=scenarios[0].account,
        broadcasts=[(broadcast_at, body)],
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(folder / "home"),
        DRIP_DATABASE_URL=f"sqlite:///{folder / 'demo' / 'replay.db'}",
        DRIP_PUBLIC_URL=base,
        DRIP_CONSOLE_TOKEN=TOKEN,
        DRIP_LOG_FORMAT="json",
        DRIP_CAMPAIGNS_DIR=str(REPO / "campaigns"),
    )
    log_path = folder / "serve.log"
    log = log_path.open("w")
    drip = Path(sys.executable).with_name("drip")
    process = subprocess.Popen(
        [str(drip), "serve", "--port", str(port)], env=env, cwd=REPO, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("drip serve did not answer: " + log_path.read_text()[-2000:])
        yield base, env, log_path
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _metrics(page: Any, campaign: str) -> dict[str, dict[str, int]]:
    """``{step: {metric: value}}`` read from the campaign's numbers table in the page."""
    found: dict[str, dict[str, int]] = {}
    rows = page.locator(f'table.funnel-table[data-campaign="{campaign}"] tbody tr')
    for i in range(rows.count()):
        row = rows.nth(i)
        step = row.get_attribute("data-step")
        cells = row.locator("td[data-metric]")
        values = {}
        for j in range(cells.count()):
            cell = cells.nth(j)
            text = cell.text_content() or ""
            if text.strip().isdigit():
                values[cell.get_attribute("data-metric") or "?"] = int(text)
        found[step or "?"] = values
    return found


def test_console_in_chromium(
    chromium: str, served: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    """Log in, read the funnels (= drip stats --json), campaign -> contact -> send, search,
    filter the timeline, take the README screenshots; no request leaves 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    base, env, log_path = served
    stats_run = _drip(env, "stats", "--json")
    assert stats_run.returncode == 0, stats_run.stderr
    stats = json.loads(stats_run.stdout)
    requested: list[str] = []
    shots = DOCS if os.environ.get("DRIP_UPDATE_SCREENSHOTS") == "1" else tmp_path / "docs"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))

        # 1. no cookie: the login form (401); a wrong token is refused, the right one admitted
        answer = page.goto(f"{base}/console/")
        assert answer is not None and answer.status == 401
        page.fill("#token", "wrong")
        page.click("#token-login button[type=submit]")
        assert "not valid" in page.content()
        page.fill("#token", TOKEN)
        page.click("#token-login button[type=submit]")
        page.wait_for_selector("h1:has-text('Campaigns')")
        assert "Times on this page are in" in page.inner_text("#zone")

        # 2. the funnels are the numbers of `drip stats --json`
        for campaign in stats["campaigns"]:
            shown = _metrics(page, campaign["name"])
            for step in campaign["steps"]:
                row = shown[step["step"]]
                for metric in ("scheduled", "pending", "sent", "with_footer", "cancelled",
                               "delivered", "failed", "replied", "opted_out"):  # fmt: skip
                    assert row[metric] == step[metric], (campaign["name"], step["step"], metric)
        assert page.locator("svg.funnel").count() >= 10
        page.screenshot(path=str(shots / "console-campaigns.png"))

        # 3. click 1: a campaign; click 2: a contact of one of its sends without the footer
        page.click("a.campaign-link:text-is('smart-drip-new-lead')")
        page.wait_for_selector("table#sends")
        # sorting (script): a click on the "send" head orders the rows by send id
        page.click("table#sends th:text-is('send')")
        ids = [int(t) for t in page.locator("table#sends a.send-link").all_text_contents()]
        assert len(ids) > 3 and ids == sorted(ids)
        page.click("table#sends th:text-is('send')")
        ids = [int(t) for t in page.locator("table#sends a.send-link").all_text_contents()]
        assert ids == sorted(ids, reverse=True)
        row = page.locator("table#sends tbody tr", has_text="no F4").first
        send_id = (row.locator("a.send-link").text_content() or "").strip()
        row.locator("a.send-link").click()
        page.wait_for_selector("#verdict")
        verdict = page.inner_text("#verdict")
        assert "without the opt-out footer: rule F4" in verdict
        assert "consent" in page.inner_text("#consent-then").lower()
        assert page.url.endswith(f"/console/sends/{send_id}")
        page.screenshot(path=str(tmp_path / "send.png"), full_page=True)
        # click 3: the contact, with every consent event and the shared timeline
        page.click("a.contact-link")
        page.wait_for_selector("#timeline svg.track")
        assert page.locator("#consent-events tbody tr").count() >= 1
        assert page.locator("#timeline .mark").count() >= 5

        # the filters hide marks by outcome, and bring them back
        visible = page.locator("#timeline .mark:visible").count()
        page.uncheck('input[data-filter="outcome"][value="sent"]')
        assert page.locator("#timeline .mark:visible").count() < visible
        page.check('input[data-filter="outcome"][value="sent"]')
        assert page.locator("#timeline .mark:visible").count() == visible

        # a mark of the timeline links to its send's explanation
        page.locator("#timeline a").first.click()
        page.wait_for_selector("#decisions")

        # 4. the search, by phone, then Fiona (Florida) for the contact screenshot
        page.fill("header input[name=q]", "555-0123")
        page.click("header button:text-is('Search')")
        page.wait_for_selector("#results")
        assert "Dana Ruiz" in page.inner_text("#results")
        page.fill("#search input[name=q]", "fiona")
        page.click("#search button")
        page.wait_for_selector("#results")
        page.click("#results a.contact-link")
        page.wait_for_selector("#timeline svg.track")
        assert "FL" in page.content()
        height = min(1700, page.evaluate("document.body.scrollHeight"))
        page.screenshot(
            path=str(shots / "console-contact.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1400, "height": height},
        )
        page.locator("#timeline").screenshot(path=str(tmp_path / "timeline.png"))

        # the queue page and the audit form render too
        page.click("header a:text-is('Queue')")
        page.wait_for_selector("table#queue")
        page.click("header a:text-is('Audit export')")
        page.wait_for_selector("h1:has-text('Audit export')")
        browser.close()

    assert requested
    outside = [u for u in requested if not u.startswith(f"{base}/")]
    assert outside == [], outside
    logged = log_path.read_text(encoding="utf-8")
    assert "console_search" in logged
    assert DANA not in logged and "555-0123" not in logged and "dana@example.com" not in logged
    assert (shots / "console-campaigns.png").stat().st_size > 20_000
    assert (shots / "console-contact.png").stat().st_size > 20_000


def test_audit_csv_over_http_holds_every_consent_event(
    served: tuple[str, dict[str, str], Path],
) -> None:
    """With a bearer token, each demo contact's audit CSV parses and holds its consent events."""
    import csv
    import io
    import sqlite3

    base, env, _ = served
    path = env["DRIP_DATABASE_URL"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        events = conn.execute("SELECT contact_id, kind FROM consent_events").fetchall()
        contacts = [r[0] for r in conn.execute("SELECT id FROM contacts ORDER BY id")]
    assert len(events) >= 10
    exported: list[tuple[int, str]] = []
    for contact in contacts:
        answer = requests.get(
            f"{base}/console/audit",
            params={"contact": contact, "format": "csv"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        exported += [
            (int(r["contact_id"]), r["kind"])
            for r in rows
            if r["record"] in ("consent_event", "opt_out") and r["source"] != "email link"
        ]
    assert sorted(exported) == sorted((c, k) for c, k in events)
    assert re.search(r"revoked_(keyword|phrase)", " ".join(k for _, k in exported))
