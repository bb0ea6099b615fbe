"""Email steps through a real SMTP server (aiosmtpd), the unsubscribe link, and the email gate."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_web_support import (
    ACCOUNT,
    CAMPAIGN,
    DANA_PHONE,
    POSTAL_ADDRESS,
    PUBLIC_URL,
    SECRET_KEY,
    Web,
    open_web,
)

from drip.domain.enums import Channel, SendState
from drip.services.enrollment import enroll
from drip.services.unsubscribe import token_for
from drip.store.models import ScheduledSend
from drip.testing.smtp_server import ReceivedEmail, SmtpTestServer
from drip.transports.smtp_email import SmtpEmailTransport

LINK = re.compile(re.escape(PUBLIC_URL) + r"/unsubscribe/[A-Za-z0-9_.\-]+")


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    """A real SMTP server on a free local port."""
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def web(db_url: str, tmp_path: Path, smtp: SmtpTestServer) -> Iterator[Web]:
    """The app with email going through SMTP to ``smtp``, the test campaign synced."""
    email = SmtpEmailTransport(smtp.url(), "sam@acmerealty.com", timeout=10)
    with open_web(db_url, tmp_path, email=email, email_from="sam@acmerealty.com") as w:
        w.sync_campaign()
        yield w


def enrolled(web: Web, **kwargs: object) -> int:
    contact_id = web.add_dana(**kwargs)  # type: ignore[arg-type]
    assert enroll(web.deps, contact_id, CAMPAIGN, web.now).created
    return contact_id


def step(web: Web, contact_id: int, step_id: str) -> ScheduledSend:
    return next(s for s in web.sends(contact_id) if s.step_id == step_id)


def first_email(web: Web, smtp: SmtpTestServer) -> ReceivedEmail:
    """Fire the day-2 email and return what the SMTP server received."""
    web.later(days=2, minutes=1)
    web.tick()
    assert smtp.wait_for(1, timeout=10)
    return smtp.messages[0]


def test_email_step_carries_list_unsubscribe_header_and_link(
    web: Web, smtp: SmtpTestServer
) -> None:
    """The received email has List-Unsubscribe (+ one-click) naming the same link as the body."""
    dana = enrolled(web)

    received = first_email(web, smtp)

    message = received.message
    assert received.rcpt_tos == ("dana@example.com",)
    assert message["Subject"] == "Homes for you, Dana"
    expected = f"{PUBLIC_URL}/unsubscribe/{token_for(SECRET_KEY, dana)}"
    # The header is longer than 78 characters, so it is folded onto its own line;
    # unfolding leaves the blank of the fold in front (RFC 5322 3.2.2).
    assert message["List-Unsubscribe"].strip() == f"<{expected}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = message.get_content()
    assert LINK.findall(body) == [expected]
    assert POSTAL_ADDRESS in body  # CAN-SPAM: the account's postal address, as received
    assert "None" not in str(message["Subject"])
    assert step(web, dana, "day-2-email").state is SendState.SENT


def test_without_a_postal_address_no_email_goes_out(
    db_url: str, tmp_path: Path, smtp: SmtpTestServer
) -> None:
    """An account with no postal address sends no email; the step records why (CAN-SPAM)."""
    email = SmtpEmailTransport(smtp.url(), "sam@acmerealty.com", timeout=10)
    account = replace(ACCOUNT, postal_address=None)
    with open_web(db_url, tmp_path, email=email, account=account) as w:
        w.sync_campaign()
        dana = enrolled(w)
        w.later(days=2, minutes=1)
        w.tick()
        skipped = step(w, dana, "day-2-email")
        assert skipped.state is SendState.SKIPPED
        assert skipped.decision_code == "no_postal_address"
        assert "postal_address" in (skipped.decision_reason or "")
    assert smtp.messages == []


def test_the_link_opts_out_of_email_and_the_next_email_is_skipped(
    web: Web, smtp: SmtpTestServer
) -> None:
    """GET shows a button and changes nothing; its POST opts out; the next email is skipped."""
    dana = enrolled(web)
    link = LINK.findall(first_email(web, smtp).message.get_content())[0]
    web.later(hours=1)
    before = web.snapshot()

    page = web.client.get(link.removeprefix(PUBLIC_URL))

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<form method='post'" in html and "<button" in html
    assert web.snapshot() == before  # a mail scanner following the link changes nothing
    assert web.contact(dana).email_opted_out is False

    response = web.client.post(link.removeprefix(PUBLIC_URL))

    assert response.status_code == 200
    assert "text/html" in response.content_type
    assert "no more emails" in response.get_data(as_text=True)
    contact = web.contact(dana)
    assert contact.email_opted_out is True
    assert contact.email_opted_out_at == web.now
    assert contact.sms_opted_out_at is None  # SPEC C5: email has its own flag
    web.later(days=1)
    web.tick()
    skipped = step(web, dana, "day-3-email")
    assert skipped.state is SendState.SKIPPED
    assert skipped.decision_code == "email_opted_out"
    assert len(smtp.messages) == 1
    assert step(web, dana, "day-1-text").state is SendState.SENT


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="signature"),
        pytest.param(lambda t: str(int(t.split(".")[0]) + 1) + "." + t.split(".")[1], id="id"),
        pytest.param(lambda t: t.split(".")[0], id="no-signature"),
        pytest.param(lambda t: "x" + t, id="garbage"),
    ],
)
def test_a_tampered_link_is_404_and_changes_nothing(
    web: Web, smtp: SmtpTestServer, tamper: object
) -> None:
    """Changing the signature or the contact id of a link gives 404; nobody is unsubscribed."""
    dana = enrolled(web)
    other = web.add_dana(phone="+16175550124", email="other@example.com", first_name="Olive")
    token = LINK.findall(first_email(web, smtp).message.get_content())[0].rsplit("/", 1)[1]
    before = web.snapshot()

    response = web.client.get(f"/unsubscribe/{tamper(token)}")  # type: ignore[operator]
    posted = web.client.post(f"/unsubscribe/{tamper(token)}")  # type: ignore[operator]

    assert response.status_code == 404
    assert posted.status_code == 404
    assert web.snapshot() == before
    assert web.contact(dana).email_opted_out is False
    assert web.contact(other).email_opted_out is False


def test_one_click_post_unsubscribes(web: Web) -> None:
    """The RFC 8058 one-click POST a mail client sends unsubscribes like the GET."""
    dana = enrolled(web)

    response = web.client.post(
        f"/unsubscribe/{token_for(SECRET_KEY, dana)}", data={"List-Unsubscribe": "One-Click"}
    )

    assert response.status_code == 200
    assert web.contact(dana).email_opted_out is True


def test_clicking_twice_keeps_the_first_time(web: Web) -> None:
    """A second click answers 200 and keeps the first opt-out time."""
    dana = enrolled(web)
    path = f"/unsubscribe/{token_for(SECRET_KEY, dana)}"
    first_at = web.now

    assert web.client.post(path).status_code == 200
    web.later(days=1)
    assert web.client.post(path).status_code == 200

    assert web.contact(dana).email_opted_out_at == first_at


def test_contact_without_email_gets_no_email_skipped(web: Web, smtp: SmtpTestServer) -> None:
    """A contact without an address has email steps skipped with 'no_email' recorded."""
    dana = enrolled(web, email=None)

    web.later(days=2, minutes=1)
    web.tick()

    skipped = step(web, dana, "day-2-email")
    assert skipped.state is SendState.SKIPPED
    assert skipped.decision_code == "no_email"
    assert skipped.channel is Channel.EMAIL
    assert smtp.messages == []
    assert web.contact(dana).phone == DANA_PHONE


def test_contact_without_consent_still_gets_email(web: Web, smtp: SmtpTestServer) -> None:
    """SPEC C2: no SMS consent, no texts, but email steps go out."""
    dana = enrolled(web, consent=False)

    first_email(web, smtp)

    assert step(web, dana, "day-1-text").decision_code == "no_consent"
    assert step(web, dana, "day-2-email").state is SendState.SENT


def test_an_smtp_server_that_is_down_defers_the_email_instead_of_failing_it(
    db_url: str, tmp_path: Path
) -> None:
    """Connection refused by the mail server: the email is pending again with a backoff reason."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    email = SmtpEmailTransport(f"smtp://127.0.0.1:{port}", "sam@acmerealty.com", timeout=5)
    with open_web(db_url, tmp_path, email=email, email_from="sam@acmerealty.com") as web:
        web.sync_campaign()
        dana = enrolled(web)
        fired_at = web.later(days=2, minutes=1)
        web.tick()

        deferred = step(web, dana, "day-2-email")
        assert deferred.state is SendState.PENDING
        assert deferred.decision_code == "provider_unavailable"
        assert deferred.due_at > fired_at
        assert "unreachable" in (deferred.decision_reason or "")


def test_a_refused_smtp_login_opens_the_circuit_and_the_emails_stay_pending(
    db_url: str, tmp_path: Path
) -> None:
    """535 on login: the email is deferred (provider_auth_failed), not failed; nothing delivered."""
    with SmtpTestServer(users={"drip@acme.test": "right"}) as smtp:
        email = SmtpEmailTransport(smtp.url("drip@acme.test", "wrong"), "sam@acmerealty.com")
        with open_web(db_url, tmp_path, email=email, email_from="sam@acmerealty.com") as web:
            web.sync_campaign()
            dana = enrolled(web)
            web.later(days=2, minutes=1)
            web.tick()

            deferred = step(web, dana, "day-2-email")
            assert deferred.state is SendState.PENDING
            assert deferred.decision_code == "provider_auth_failed"
            assert "credentials" in (deferred.decision_reason or "")
            assert smtp.messages == []
