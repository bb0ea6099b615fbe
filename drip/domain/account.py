"""Account-wide settings from ``campaigns/account.yaml``: texts, defaults, state rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from drip.domain.campaign import DEFAULT_FOOTER
from drip.domain.frequency import FrequencyCap
from drip.domain.pacing import Senders
from drip.domain.reassigned_settings import ReassignedNumbers
from drip.domain.retention import Retention
from drip.domain.window import Blackout, SendWindow, StateRule

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


#: The event types drip posts to the account's webhooks (see docs/operations.md).
WEBHOOK_EVENTS = (
    "reply.received",
    "contact.opted_out",
    "contact.opted_in",
    "contact.erased",
    "send.sent",
    "send.delivered",
    "send.failed",
    "send.skipped",
    "enrollment.started",
    "enrollment.ended",
)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One receiver of drip's events: where, which types, and the variable holding its secret."""

    name: str
    url: str
    events: frozenset[str]
    secret_env: str


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent texts from their own number and signs with their name."""

    first_name: str
    last_name: str
    phone: str


def _bundled_state_rules() -> tuple[StateRule, ...]:
    """The rule pack shipped with drip (``drip/rules/us.yaml``): the default state rules."""
    from drip.rules import bundled_state_rules  # package data, loaded and validated once

    return bundled_state_rules()


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
    #: The bundled rule pack as ``account.yaml`` extends it (rows turned off stay, disabled).
    state_rules: tuple[StateRule, ...] = field(default_factory=_bundled_state_rules)
    #: Closed date ranges per state set by operations (e.g. a declared emergency).
    blackouts: tuple[Blackout, ...] = ()
    #: Sends for contacts with no assigned agent come from this agent.
    default_agent: AgentProfile | None = None
    # --- inbound, carrier and email fidelity (issue 11) ---
    #: The account's postal address, carried by every email (CAN-SPAM).
    postal_address: str | None = None
    #: The number compliance replies (the opt-in confirmation) come from when
    #: the contact has no agent and there is no ``default_agent``.
    default_sender: str | None = None
    #: Words the account adds to the STOP, HELP and START families, as
    #: (word, family) pairs; family is ``opt_out``, ``help`` or ``opt_in``.
    keywords: tuple[tuple[str, str], ...] = ()
    #: Sender throughput and the brand's daily cap. Without a ``senders:``
    #: section every number sends at the US long code's 1 segment/s (a carrier fact).
    senders: Senders = field(default_factory=Senders)
    #: At most this many campaign and bulk texts per contact in a span of days; None: no cap.
    frequency_cap: FrequencyCap | None = None
    #: The reassigned-numbers check before campaign and bulk texts on old consent (off by default).
    reassigned_numbers: ReassignedNumbers = field(default_factory=ReassignedNumbers)
    #: Where drip posts its events (``webhooks:``), signed with each one's secret.
    webhooks: tuple[WebhookTarget, ...] = ()
    #: ``email``: each reply that is not a keyword is also emailed to the assigned agent.
    reply_forwarding: str | None = None
    #: How long message bodies are kept (``drip purge``); 4 years unless account.yaml says.
    retention: Retention = field(default_factory=Retention)

    @property
    def webhook_events(self) -> frozenset[str]:
        """Every event type some webhook wants."""
        return frozenset().union(*(w.events for w in self.webhooks))
