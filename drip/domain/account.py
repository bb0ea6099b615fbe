"""Account-wide settings from ``campaigns/account.yaml``: texts, defaults, state rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from drip.domain.campaign import DEFAULT_FOOTER
from drip.domain.pacing import Senders
from drip.domain.window import DEFAULT_STATE_RULES, SendWindow, StateRule

DEFAULT_OPT_IN = (
    "{CompanyName}: you are subscribed to texts about your home search. "
    "Msg frequency varies. Msg & data rates may apply. Reply HELP for help, STOP to opt out."
)
DEFAULT_HELP = (
    "{CompanyName}: for help call {SupportPhone} or email {SupportEmail}. "
    "Msg frequency varies. Msg & data rates may apply. Reply STOP to opt out."
)
DEFAULT_OPT_OUT = (
    "You have been unsubscribed and will receive no further messages. Reply START to resubscribe."
)
DEFAULT_RESUBSCRIBE = (
    "{CompanyName}: you are subscribed again. Msg frequency varies. "
    "Msg & data rates may apply. Reply HELP for help, STOP to opt out."
)


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent texts from their own number and signs with their name."""

    first_name: str
    last_name: str
    phone: str


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """Everything about the account that is not a campaign."""

    company: str = "Acme Realty"
    default_timezone: str = "America/New_York"
    send_window: SendWindow = field(default_factory=SendWindow)
    footer: str = DEFAULT_FOOTER
    opt_in_confirmation: str = DEFAULT_OPT_IN
    help_reply: str = DEFAULT_HELP
    opt_out_confirmation: str = DEFAULT_OPT_OUT
    resubscribe_confirmation: str = DEFAULT_RESUBSCRIBE
    twilio_sends_opt_out_confirmation: bool = False
    support_phone: str = "+16175550100"
    support_email: str = "support@example.com"
    concierge_phone: str | None = None
    state_rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES
    #: Sends for contacts with no assigned agent come from this agent.
    default_agent: AgentProfile | None = None
    #: Sender throughput and the brand's daily cap (SPEC §4a); None: drip does not pace.
    senders: Senders | None = None
