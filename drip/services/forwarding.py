"""Reply forwarding: a contact's reply (never a keyword) emailed to the assigned agent.

With ``reply_forwarding: email`` in account.yaml, each inbound text that is
an ordinary reply goes to the assigned agent's ``email`` through the same
email transport as campaign email steps, so the agent sees it at once. A
contact with no agent, or an agent with no email, is logged and skipped; a
mail server that refuses is logged and does not undo the reply's handling.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from drip.errors import TransportError
from drip.services.deps import Deps
from drip.store.models import Agent, Contact
from drip.transports.base import OutboundEmail

log = structlog.get_logger("drip.forwarding")


def forward_reply(deps: Deps, contact_id: int, text: str, to_number: str, now: datetime) -> bool:
    """Email one reply to the contact's agent; True when the mail server took it."""
    with deps.sessions() as session:
        contact = session.get(Contact, contact_id)
        agent = session.get(Agent, contact.agent_id) if contact and contact.agent_id else None
        if contact is None or agent is None or not agent.email:
            log.info("reply_not_forwarded", contact_id=contact_id, why="no agent email")
            return False
        name = f"{contact.first_name} {contact.last_name}".strip()
        email = OutboundEmail(
            from_=deps.settings.email_from,
            to=agent.email,
            subject=f"Reply from {name} ({contact.phone})",
            body=(
                f"{name} ({contact.phone}) replied to {to_number} at "
                f"{now:%Y-%m-%d %H:%M} UTC:\n\n{text}\n\nAnswer by text from your number."
            ),
        )
    try:
        deps.email.send_email(email)
    except TransportError as exc:
        log.warning("reply_forward_failed", contact_id=contact_id, error=str(exc)[:300])
        return False
    log.info("reply_forwarded", contact_id=contact_id)
    return True
