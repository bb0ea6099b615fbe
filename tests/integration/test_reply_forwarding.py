"""reply_forwarding: email sends each ordinary reply to the assigned agent through the real
SMTP transport (aiosmtpd on loopback); keywords are never forwarded."""

from __future__ import annotations

from dataclasses import replace

from drip.services.contacts import add_agent
from drip.services.inbound import handle_inbound
from drip.testing.smtp_server import SmtpTestServer
from drip.transports.smtp_email import SmtpEmailTransport

AGENT_PHONE = "+16175550100"


def test_replies_are_forwarded_and_keywords_are_not(make_rig) -> None:  # type: ignore[no-untyped-def]
    """A reply reaches the agent's inbox with the text and the contact; STOP and HELP do not."""
    rig = make_rig()
    with SmtpTestServer() as smtp:
        deps = replace(
            rig.deps,
            email=SmtpEmailTransport(smtp.url(), "drip@acme.test"),
            account=replace(rig.deps.account, reply_forwarding="email"),
        )
        add_agent(deps, "Sam", "Lee", AGENT_PHONE, rig.now, email="sam@acme.test")
        a, b, c = rig.add_contacts(3)
        for cid, text in ((a, "Can we tour Elm St Saturday?"), (b, "STOP"), (c, "HELP")):
            phone = rig.contact(cid).phone
            handle_inbound(deps, from_phone=phone, to_phone=AGENT_PHONE, body=text, now=rig.now)
        assert smtp.wait_for(1)
        (got,) = smtp.messages
        assert got.rcpt_tos == ("sam@acme.test",)
        assert rig.contact(a).phone in got.message["Subject"]
        assert "Can we tour Elm St Saturday?" in got.message.get_content()


def test_no_forwarding_without_the_setting(make_rig) -> None:  # type: ignore[no-untyped-def]
    """Without reply_forwarding nothing is emailed, even to an agent with an email."""
    rig = make_rig()
    with SmtpTestServer() as smtp:
        deps = replace(rig.deps, email=SmtpEmailTransport(smtp.url(), "drip@acme.test"))
        add_agent(deps, "Sam", "Lee", AGENT_PHONE, rig.now, email="sam@acme.test")
        (a,) = rig.add_contacts(1)
        phone = rig.contact(a).phone
        handle_inbound(deps, from_phone=phone, to_phone=AGENT_PHONE, body="Hello", now=rig.now)
        assert smtp.wait_for(1, timeout=1.0) is False
        assert smtp.messages == []
