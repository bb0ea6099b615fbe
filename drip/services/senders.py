"""Who a text comes from, and the template values that name them."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import phonenumbers

from drip.domain.account import AccountSettings
from drip.domain.enums import SenderRole
from drip.store.fire_gather import FireAgent, FireContact
from drip.store.models import Agent, Contact


@dataclass(frozen=True, slots=True)
class Sender:
    """The number a text goes out from, and the agent whose name it carries."""

    role: SenderRole
    phone: str
    agent_first_name: str
    agent_last_name: str
    agent_phone: str


def resolve_sender(
    role: SenderRole,
    agent: Agent | FireAgent | None,
    account: AccountSettings,
    fixed: str | None = None,
    *,
    compliance: bool = False,
) -> Sender | None:
    """The sender for a contact's assigned ``agent`` (or the account's default), or None.

    ``fixed`` is a number the send must go out from (a reply to an inbound
    text comes from the number that was texted). None means drip has no
    number to send from: the send is skipped and the reason says which
    setting is missing, rather than guessing a number. A ``compliance``
    reply (the opt-in confirmation) for a contact with neither an agent nor a
    ``default_agent`` comes from the account's ``default_sender``.
    """
    first, last, agent_phone = _agent_names(agent, account)
    if fixed is not None:
        return Sender(role, fixed, first, last, agent_phone or "")
    if role is SenderRole.CONCIERGE:
        if account.concierge_phone is None:
            return None
        return Sender(role, account.concierge_phone, first, last, agent_phone or "")
    if agent_phone is None:
        if compliance and account.default_sender:
            return Sender(role, account.default_sender, "", "", "")
        return None
    return Sender(role, agent_phone, first, last, agent_phone)


def _agent_names(
    agent: Agent | FireAgent | None, account: AccountSettings
) -> tuple[str, str, str | None]:
    if agent is not None:
        return agent.first_name, agent.last_name, agent.phone
    default = account.default_agent
    if default is not None:
        return default.first_name, default.last_name, default.phone
    return "", "", None


def template_values(
    contact: Contact | FireContact, sender: Sender | None, account: AccountSettings
) -> dict[str, str]:
    """Values for the campaign template variables plus the account texts' support details."""
    agent_phone = sender.agent_phone if sender else ""
    return {
        "VisitorFirstName": contact.first_name,
        "VisitorLastName": contact.last_name,
        "AgentFirstName": sender.agent_first_name if sender else "",
        "AgentLastName": sender.agent_last_name if sender else "",
        "AgentPhone": display_phone(agent_phone) if agent_phone else "",
        "CompanyName": account.company,
        "SupportPhone": display_phone(account.support_phone),
        "SupportEmail": account.support_email,
    }


@functools.lru_cache(maxsize=4096)
def display_phone(e164: str) -> str:
    """A number as people read it: ``(617) 555-0100`` for US numbers.

    Cached: every text formats the agent's and the support number, a handful
    of numbers, and parsing one costs more than deciding the send.
    """
    try:
        parsed = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def missing_sender_reason(role: SenderRole) -> str:
    if role is SenderRole.CONCIERGE:
        return "skipped: no concierge number is set in campaigns/account.yaml (concierge_phone)"
    return "skipped: the contact has no agent and campaigns/account.yaml sets no default_agent"
