"""Campaign and account checks of issue 11: text length, postal address, a sender for replies.

- A step whose text with the footer can pass 1,600 characters is an error
  (Twilio refuses it, error 21617). "Can pass": measured with long but
  ordinary names filled in (:data:`WORST_CASE_VALUES`, the values lint
  measures segments with) and the footer appended, since whether a send
  carries the footer is known only at fire time.
- An email step while ``account.yaml`` has no ``postal_address`` is an error
  (CAN-SPAM: every email carries it).
- An ``account.yaml`` with neither ``default_agent`` nor ``default_sender``
  is an error: the opt-in confirmation of a registration without an agent
  would have no number to come from.
"""

from __future__ import annotations

from collections.abc import Mapping

from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign
from drip.domain.enums import Channel
from drip.domain.message import MAX_BODY_CHARS, render, too_long, with_footer

WORST_CASE_VALUES: Mapping[str, str] = {
    "VisitorFirstName": "Jacqueline",
    "VisitorLastName": "Montgomery",
    "AgentFirstName": "Christopher",
    "AgentLastName": "Richardson",
    "AgentPhone": "(617) 555-0123",
}


def length_problem(body: str, footer: str, company: str) -> str | None:
    """The error for a step body that with ``footer`` can pass 1,600 characters, or None.

    Measured both as written and with :data:`WORST_CASE_VALUES` filled in,
    whichever is longer.
    """
    rendered = render(body, {**WORST_CASE_VALUES, "CompanyName": company})
    full = max(with_footer(body, footer), with_footer(rendered, footer), key=len)
    if too_long(full):
        return (
            f"the text with the footer can reach {len(full)} characters (names filled in), "
            f"over Twilio's limit of {MAX_BODY_CHARS} (error 21617); shorten it"
        )
    return None


def needs_postal_address(campaign: Campaign, account: AccountSettings) -> bool:
    """Whether ``campaign`` has an email step while the account has no postal address."""
    return not account.postal_address and any(s.channel is Channel.EMAIL for s in campaign.steps)


POSTAL_ADDRESS_MISSING = (
    "an email step needs the account's postal address (CAN-SPAM: every email carries it); "
    'set postal_address in campaigns/account.yaml, e.g. postal_address: "100 Main St, Boston, '
    'MA 02108"'
)

NO_REPLY_SENDER = (
    "neither default_agent nor default_sender is set: a registration without an agent "
    "would get its opt-in confirmation from no number; set default_sender (E.164) or "
    "default_agent"
)


def has_reply_sender(account: AccountSettings) -> bool:
    return account.default_agent is not None or account.default_sender is not None
