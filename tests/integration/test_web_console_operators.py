"""Named operators at the console over real HTTP (werkzeug's server, requests), SQLite and PostgreSQL.

Seed: test_web_console's (Dana enrolled and texted to day 50, Omar without
consent, Rita opted out), plus four operators: olga (operator), vic
(viewer), cora (compliance) and dis (disabled). Every refusal is checked to
change nothing, and the log to hold no phone number or email.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import http.client
import io
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from argon2 import PasswordHasher
from flask import Flask
from itsdangerous import URLSafeSerializer
from services_support import START, World, open_world, run_until
from sqlalchemy import func, select
from test_web_console import CAMPAIGN, DANA, TOKEN, seed
from werkzeug.serving import make_server

from drip.domain.enums import TextStatus
from drip.services import operators
from drip.services.audit import explain
from drip.services.operators import add_operator, disable_operator
from drip.store.models import (
    Campaign,
    ConsentEvent,
    Contact,
    OperatorAction,
    ScheduledSend,
    SendDecision,
)
from drip.web.app import create_app
from drip.web.console import COOKIE

PASSWORD = "a long enough password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclasses.dataclass
class Served:
    world: World
    base: str
    port: int
    dana: int
    omar: int
    rita: int

    def login(self, name: str, password: str = PASSWORD) -> requests.Session:
        """A browser-like session logged in as ``name`` (asserts the 303)."""
        s = requests.Session()
        answer = s.post(
            f"{self.base}/console/login",
            data={"name": name, "password": password, "next": "/console/"},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 303, answer.text
        return s

    def csrf(self, s: requests.Session, path: str | None = None) -> str:
        page = s.get(f"{self.base}{path or f'/console/contacts/{self.dana}'}", timeout=30)
        found = CSRF.search(page.text)
        assert found, page.text[:500]
        return found.group(1)

    def contact(self, contact_id: int) -> Contact:
        with self.world.deps.sessions() as session:
            row = session.get(Contact, contact_id)
            assert row is not None
            session.expunge(row)
            return row

    def actions(self) -> int:
        with self.world.deps.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(OperatorAction)) or 0)


@pytest.fixture
def served(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    # Cheap Argon2 parameters: the hashes carry them, so each login here verifies fast.
    monkeypatch.setattr(operators, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024))
    with open_world(db_url, tmp_path) as world:
        dana, omar, rita = seed(world)
        for name, role in (("olga", "operator"), ("vic", "viewer"), ("cora", "compliance"),
                           ("dis", "operator")):  # fmt: skip
            add_operator(world.deps, name, role, PASSWORD, world.now)
        disable_operator(world.deps, "dis", world.now)
        settings = dataclasses.replace(world.deps.settings, console_token=TOKEN)
        app = create_app(dataclasses.replace(world.deps, settings=settings))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Served(world, f"http://127.0.0.1:{server.port}", server.port, dana, omar, rita)
        finally:
            server.shutdown()
            thread.join(timeout=10)


def test_operator_marks_cannot_be_texted_and_the_skip_names_them(served: Served) -> None:
    """olga's click is a consent event and an action with her name; Dana's next text is
    skipped with a reason naming her, shown by drip explain, the page and the audit CSV."""
    olga = served.login("olga")
    page = olga.get(f"{served.base}/console/contacts/{served.dana}", timeout=30).text
    assert 'id="actions"' in page and 'id="mark-cannot-be-texted"' in page
    assert 'id="campaign-actions"' not in page  # a campaign action is compliance's
    answer = olga.post(
        f"{served.base}/console/contacts/{served.dana}/text-status",
        data={"csrf": served.csrf(olga), "status": "cannot_be_texted"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert "text status textable -> cannot_be_texted (by olga)" in html.unescape(answer.text)
    dana = served.contact(served.dana)
    assert dana.text_status is TextStatus.CANNOT_BE_TEXTED and dana.text_status_by == "olga"
    with served.world.deps.sessions() as session:
        event = session.scalars(
            select(ConsentEvent).where(ConsentEvent.contact_id == served.dana)
            .order_by(ConsentEvent.id.desc())
        ).first()  # fmt: skip
        assert event is not None and event.actor == "olga"
        action = session.scalars(select(OperatorAction)).one()
        assert (action.actor, action.via, action.action) == ("olga", "console", "text_status")

    run_until(served.world, START + timedelta(days=200))
    with served.world.deps.sessions() as session:
        skipped = session.execute(
            select(SendDecision.send_id, SendDecision.reason)
            .join(ScheduledSend, ScheduledSend.id == SendDecision.send_id)
            .where(ScheduledSend.contact_id == served.dana, SendDecision.outcome == "skipped")
        ).all()
    assert skipped
    send_id, reason = skipped[0]
    assert reason == "skipped: the contact is marked cannot be texted by olga"
    assert any(
        "marked cannot be texted by olga" in line for line in explain(served.world.deps, send_id)
    )

    cora = served.login("cora")  # months later: olga's session has ended
    page = cora.get(f"{served.base}/console/contacts/{served.dana}", timeout=30).text
    assert "(set by olga)" in page and 'id="mark-textable"' in page
    assert re.search(r'<td class="actor">olga</td>', page)
    audit = cora.get(
        f"{served.base}/console/audit", params={"contact": served.dana, "format": "csv"}, timeout=30
    )
    assert audit.status_code == 200
    assert ",operator_action," in audit.text and "olga,console" in audit.text
    assert re.search(r"revoked_operator,operator,.*,olga,", audit.text)


def test_wrong_password_unknown_name_disabled_are_401_without_cookie(served: Served) -> None:
    """Each failed login is 401 with the same sentence and sets no cookie."""
    for name, password in (("olga", "not her password"), ("nobody", PASSWORD), ("dis", PASSWORD)):
        answer = requests.post(
            f"{served.base}/console/login",
            data={"name": name, "password": password},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 401, name
        assert "do not match an active operator" in answer.text
        assert "Set-Cookie" not in answer.headers
    assert served.actions() == 0


def test_disabling_ends_an_open_session(served: Served) -> None:
    """A session of an operator disabled meanwhile is refused at the next request."""
    olga = served.login("olga")
    assert olga.get(f"{served.base}/console/", timeout=30).status_code == 200
    disable_operator(served.world.deps, "olga", served.world.now)
    answer = olga.get(f"{served.base}/console/", timeout=30)
    assert answer.status_code == 401 and "disabled" in answer.text


def test_session_ends_after_12_hours_idle(served: Served) -> None:
    """A request within 12 h renews the session; 12 h without one ends it (401)."""
    olga = served.login("olga")
    served.world.at(served.world.now + timedelta(hours=11))
    assert olga.get(f"{served.base}/console/queue", timeout=30).status_code == 200
    served.world.at(served.world.now + timedelta(hours=11))  # 22 h after login, 11 h idle
    assert olga.get(f"{served.base}/console/queue", timeout=30).status_code == 200
    served.world.at(served.world.now + timedelta(hours=12, minutes=1))
    answer = olga.get(f"{served.base}/console/queue", timeout=30)
    assert answer.status_code == 401 and "12 hours" in answer.text


def test_cookie_attributes_and_forged_cookies(served: Served) -> None:
    """The cookie is HttpOnly, SameSite=Strict, on /console/; a tampered one is 401."""
    answer = requests.post(
        f"{served.base}/console/login",
        data={"name": "olga", "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    header = answer.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/console/" in header
    assert PASSWORD not in header
    value = answer.cookies[COOKIE]
    other_key = URLSafeSerializer("not this server's key", salt="drip-console:x")
    elsewhere = other_key.dumps({"k": "op", "o": "cora", "s": "x", "t": 2_000_000_000})
    for forged in (value[:-4] + "AAAA", "olga", elsewhere):
        got = requests.get(f"{served.base}/console/", cookies={COOKIE: forged}, timeout=30)
        assert got.status_code == 401


def test_csrf_missing_or_foreign_is_403_and_changes_nothing(served: Served) -> None:
    """An action without the CSRF token, or with another session's, is refused."""
    olga = served.login("olga")
    other = served.login("olga")
    url = f"{served.base}/console/contacts/{served.dana}/text-status"
    for data in ({"status": "cannot_be_texted"},
                 {"status": "cannot_be_texted", "csrf": served.csrf(other)},
                 {"status": "cannot_be_texted", "csrf": "forged.token"}):  # fmt: skip
        answer = olga.post(url, data=data, timeout=30)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert served.contact(served.dana).text_status is TextStatus.TEXTABLE
    assert served.actions() == 0


def test_roles_decide_what_each_may_do(served: Served) -> None:
    """viewer: no forms and 403; operator: no campaign action nor audit; the token acts on nothing."""
    vic = served.login("vic")
    page = vic.get(f"{served.base}/console/contacts/{served.dana}", timeout=30).text
    assert 'id="actions"' not in page and '<button type="submit" class="danger"' not in page
    answer = vic.post(
        f"{served.base}/console/contacts/{served.dana}/text-status",
        data={"status": "cannot_be_texted"},
        timeout=30,
    )
    assert answer.status_code == 403 and "viewer" in answer.text
    olga = served.login("olga")
    answer = olga.post(
        f"{served.base}/console/campaigns/{CAMPAIGN}/pause",
        data={"csrf": served.csrf(olga), "confirmed": "yes"},
        timeout=30,
    )
    assert answer.status_code == 403 and "may not pause a campaign" in answer.text
    audit = olga.get(f"{served.base}/console/audit?contact={served.dana}&format=csv", timeout=30)
    assert audit.status_code == 403
    token = requests.post(
        f"{served.base}/console/contacts/{served.dana}/opt-out",
        data={"how": "phone call"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert token.status_code == 403 and "reads only" in token.text
    assert served.contact(served.dana).sms_opted_out_at is None
    assert served.actions() == 0


def test_campaign_pause_confirms_with_the_count_first(served: Served) -> None:
    """cora's pause answers a confirmation with the counts; only its form pauses; the
    actions export of the day names her."""
    cora = served.login("cora")
    csrf = served.csrf(cora, f"/console/campaigns/{CAMPAIGN}")
    url = f"{served.base}/console/campaigns/{CAMPAIGN}/pause"
    first = cora.post(url, data={"csrf": csrf}, timeout=30)
    assert first.status_code == 200
    assert re.search(r"This touches <b>\d+</b> contact\(s\) and <b>\d+</b> pending", first.text)
    with served.world.deps.sessions() as session:
        row = session.scalars(select(Campaign).where(Campaign.name == CAMPAIGN)).one()
        assert row.status.value == "active"
    done = cora.post(url, data={"csrf": csrf, "confirmed": "yes"}, timeout=30)
    assert done.status_code == 200 and "paused" in done.text
    with served.world.deps.sessions() as session:
        row = session.scalars(select(Campaign).where(Campaign.name == CAMPAIGN)).one()
        assert row.status.value == "paused"
        held = session.scalars(
            select(SendDecision.reason).where(SendDecision.outcome == "held")
        ).all()
    assert held and all("paused by cora" in r for r in held)
    day = served.world.now.date().isoformat()
    export = cora.get(
        f"{served.base}/console/audit",
        params={"actions_from": day, "actions_to": day, "format": "csv"},
        timeout=30,
    )
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["record"], r["kind"], r["actor"], r["via"], r["source"]) for r in rows] == [
        ("operator_action", "campaign_pause", "cora", "console", CAMPAIGN)
    ]


def test_compliance_erases_from_the_console_after_confirming(served: Served) -> None:
    """An operator may not erase; cora's erase asks first, then forgets Dana and names cora."""
    olga = served.login("olga")
    url = f"{served.base}/console/contacts/{served.dana}/erase"
    refused = olga.post(url, data={"csrf": served.csrf(olga), "confirmed": "yes"}, timeout=30)
    assert refused.status_code == 403
    assert served.contact(served.dana).erased_at is None
    cora = served.login("cora")
    page = cora.get(f"{served.base}/console/contacts/{served.dana}", timeout=30).text
    assert 'id="erase-form"' in page
    csrf = served.csrf(cora)
    first = cora.post(url, data={"csrf": csrf}, timeout=30)
    assert first.status_code == 200 and 'name="confirmed"' in first.text
    assert served.contact(served.dana).erased_at is None
    done = cora.post(url, data={"csrf": csrf, "confirmed": "yes"}, timeout=30)
    assert done.status_code == 200, done.text[:500]
    erased = served.contact(served.dana)
    assert erased.erased_at is not None and erased.erased_by == "cora"
    assert erased.phone != DANA and "Dana" not in (erased.first_name or "")


def test_unknown_things_are_404_and_bad_input_400(served: Served) -> None:
    """An unknown contact or bulk is 404, a bad status 400; nothing is recorded."""
    cora = served.login("cora")
    csrf = served.csrf(cora)
    answer = cora.post(
        f"{served.base}/console/contacts/99999/text-status",
        data={"csrf": csrf, "status": "cannot_be_texted"},
        timeout=30,
    )
    assert answer.status_code == 404 and "no contact with id 99999" in answer.text
    answer = cora.post(f"{served.base}/console/bulks/cancel", data={"csrf": csrf, "bulk": "77"},
                       timeout=30)  # fmt: skip
    assert answer.status_code == 404 and "no bulk with id 77" in answer.text
    answer = cora.post(
        f"{served.base}/console/contacts/{served.dana}/text-status",
        data={"csrf": csrf, "status": "maybe"},
        timeout=30,
    )
    assert answer.status_code == 400 and "maybe" in answer.text
    answer = cora.post(
        f"{served.base}/console/contacts/99999/erase",
        data={"csrf": csrf, "confirmed": "yes"},
        timeout=30,
    )
    assert answer.status_code == 404 and "99999" in answer.text
    assert served.actions() == 0


def _login_from(served: Served, source: str, name: str, password: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30,
                                      source_address=(source, 0))  # fmt: skip
    body = f"name={name}&password={password.replace(' ', '+')}"
    conn.request("POST", "/console/login", body,
                 {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    status = conn.getresponse().status
    conn.close()
    return status


def test_twenty_failures_block_the_address_not_the_operator(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """After 20 wrong passwords from one address it is refused (429), even with the right
    password; olga still logs in from another address; no phone or email is logged."""
    capsys.readouterr()
    for _ in range(20):
        assert _login_from(served, "127.0.0.1", "olga", "wrong guess") == 401
    assert _login_from(served, "127.0.0.1", "olga", PASSWORD) == 429
    assert _login_from(served, "127.0.0.1", "cora", PASSWORD) == 429
    assert _login_from(served, "127.0.0.2", "olga", PASSWORD) == 303
    olga = served.login  # requests from 127.0.0.1 stay refused
    with pytest.raises(AssertionError):
        olga("olga")
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "too many failures" in logged
    assert DANA not in logged and "wrong guess" not in logged and PASSWORD not in logged


def _wrong_logins(app: Flask, address: str, times: int, forwarded: str | None = None) -> int:
    """Post ``times`` wrong passwords for olga from ``address``; the last status."""
    client = app.test_client()
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    status = 0
    for _ in range(times):
        status = client.post(
            "/console/login",
            data={"name": "olga", "password": "wrong guess"},
            environ_base={"REMOTE_ADDR": address},
            headers=headers,
        ).status_code
    return status


def test_two_web_processes_share_the_failures_through_redis(served: Served, redis_url: str) -> None:
    """Scaled out, failures posted to one app count in another (as two gunicorn workers)."""
    settings = dataclasses.replace(
        served.world.deps.settings, console_token=TOKEN, broker_url=redis_url
    )
    deps = dataclasses.replace(served.world.deps, settings=settings)
    first, second = create_app(deps), create_app(deps)
    assert _wrong_logins(first, "10.0.0.7", 10) == 401
    assert _wrong_logins(second, "10.0.0.7", 10) == 401
    assert _wrong_logins(first, "10.0.0.7", 1) == 429
    assert _wrong_logins(second, "10.0.0.7", 1) == 429
    assert _wrong_logins(second, "10.0.0.8", 1) == 401


def test_behind_a_trusted_proxy_the_client_address_is_counted(served: Served) -> None:
    """With DRIP_TRUSTED_PROXIES=1 the X-Forwarded-For client is blocked, not the proxy."""
    settings = dataclasses.replace(
        served.world.deps.settings, console_token=TOKEN, trusted_proxies=1
    )
    app = create_app(dataclasses.replace(served.world.deps, settings=settings))
    assert _wrong_logins(app, "10.0.0.1", 20, forwarded="203.0.113.9") == 401
    assert _wrong_logins(app, "10.0.0.1", 1, forwarded="203.0.113.9") == 429
    assert _wrong_logins(app, "10.0.0.1", 1, forwarded="198.51.100.4") == 401


def test_the_limits_redis_down_does_not_lock_operators_out(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the limits' Redis unreachable, a right password still logs in; the log says why."""
    settings = dataclasses.replace(
        served.world.deps.settings, console_token=TOKEN, broker_url="redis://127.0.0.1:1/0"
    )
    app = create_app(dataclasses.replace(served.world.deps, settings=settings))
    answer = app.test_client().post(
        "/console/login", data={"name": "olga", "password": PASSWORD, "next": "/console/"}
    )
    assert answer.status_code == 303
    out = capsys.readouterr()
    assert "console_login_limits_unavailable" in out.out + out.err
