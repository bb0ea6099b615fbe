"""Operators act from the console in a real browser: Debian's Chromium driven by Playwright.

The demo's database and ``drip serve`` as in test_console_browser (its
``served`` and ``chromium`` fixtures), with operators added by
``drip operators add --password-stdin``: olga (operator), vic (viewer) and
dis (disabled). olga's browser runs with JavaScript off: every form works
without it. With ``DRIP_UPDATE_SCREENSHOTS=1`` the contact page with its
actions is written to docs/console-actions.png (else to a temporary folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_console_browser import CHROMIUM_ARGS, DANA, DOCS, REPO, _drip, chromium, served

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["chromium", "served"]  # the fixtures, imported for pytest

PASSWORD = "browser operator password"


def _add(env: dict[str, str], name: str, role: str) -> None:
    drip = Path(sys.executable).with_name("drip")
    done = subprocess.run(
        [str(drip), "operators", "add", name, "--role", role, "--password-stdin"],
        env=env,
        cwd=REPO,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def operators(served: tuple[str, dict[str, str], Path]) -> tuple[str, dict[str, str], Path]:
    """olga (operator), vic (viewer) and dis (disabled) in the served database."""
    _, env, _ = served
    for name, role in (("olga", "operator"), ("vic", "viewer"), ("dis", "operator")):
        _add(env, name, role)
    assert _drip(env, "operators", "disable", "dis").returncode == 0
    return served


def _login(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#operator-login button[type=submit]")


def test_operator_marks_cannot_be_texted_and_the_next_text_is_skipped_naming_them(
    chromium: str, operators: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    """olga (no JavaScript) marks Dana cannot be texted; a text due for Dana is then skipped
    with a reason naming olga, in drip explain and on Dana's page; the screenshot is taken."""
    from playwright.sync_api import sync_playwright

    base, env, log_path = operators
    shots = DOCS if os.environ.get("DRIP_UPDATE_SCREENSHOTS") == "1" else tmp_path / "docs"
    shots.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1400, "height": 900}, java_script_enabled=False
        )
        page = context.new_page()
        _login(page, base, "olga")
        page.wait_for_selector("h1:has-text('Campaigns')")
        assert "olga" in page.inner_text("#who")
        page.fill("header input[name=q]", "555-0123")
        page.click("header button:text-is('Search')")
        page.click("#results a.contact-link")
        page.wait_for_selector("#actions")
        contact_url = page.url
        page.click("#mark-cannot-be-texted")
        page.wait_for_selector("#result")
        assert "cannot_be_texted (by olga)" in page.inner_text("#result")

        # a text due for Dana now is skipped, and the reason names olga
        sent = _drip(env, "text", DANA, "Checking in about the open house.")
        assert sent.returncode == 1, sent.stdout
        assert "skipped: the contact is marked cannot be texted by olga" in sent.stderr
        send_id = sent.stderr.split("(send ", 1)[1].split(")", 1)[0]
        explained = _drip(env, "explain", send_id)
        assert "marked cannot be texted by olga" in explained.stdout

        page.goto(contact_url)
        page.wait_for_selector("#operator-actions")
        assert "olga" in page.inner_text("#operator-actions")
        assert "(set by olga)" in page.inner_text("#text-status")
        assert "marked cannot be texted by olga" in page.inner_text("#timeline-table")
        page.screenshot(
            path=str(shots / "console-actions.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1400, "height": 1300},
        )

        # the same action without its CSRF token is refused, and changes nothing
        contact_id = contact_url.rsplit("/", 1)[1]
        answer = context.request.post(
            f"{base}/console/contacts/{contact_id}/text-status", form={"status": "textable"}
        )
        assert answer.status == 403 and "CSRF" in answer.text()
        page.goto(contact_url)
        assert "cannot be texted" in page.inner_text("#text-status")
        browser.close()
    logged = log_path.read_text(encoding="utf-8")
    assert "console_action" in logged and DANA not in logged and PASSWORD not in logged
    assert (shots / "console-actions.png").stat().st_size > 20_000


def test_viewer_sees_no_action_and_gets_403_disabled_cannot_log_in(
    chromium: str, operators: tuple[str, dict[str, str], Path]
) -> None:
    """vic reads Dana's page without any action form and is refused (403) when posting one;
    dis, disabled, stays on the login form."""
    from playwright.sync_api import sync_playwright

    base, _, _ = operators
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        _login(page, base, "vic")
        page.wait_for_selector("h1:has-text('Campaigns')")
        assert page.locator("#bulk-cancel").count() == 0
        page.fill("header input[name=q]", "555-0123")
        page.click("header button:text-is('Search')")
        page.click("#results a.contact-link")
        page.wait_for_selector("#consent-events")
        assert page.locator("#actions").count() == 0
        assert page.locator("main form[method=post]").count() == 0
        contact_id = page.url.rsplit("/", 1)[1]
        answer = context.request.post(
            f"{base}/console/contacts/{contact_id}/opt-out", form={"how": "phone call"}
        )
        assert answer.status == 403 and "viewer" in answer.text()

        other = browser.new_context().new_page()
        _login(other, base, "dis")
        other.wait_for_selector("[role=alert]")
        assert "do not match an active operator" in other.inner_text("[role=alert]")
        assert other.url.endswith("/console/login")
        browser.close()
