"""The small closed vocabularies shared by the whole of drip."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class MessageKind(StrEnum):
    """What an outbound message is, which decides the rules that apply to it."""

    MANUAL = "manual"
    CAMPAIGN = "campaign"
    BULK = "bulk"
    OPT_IN_CONFIRMATION = "opt_in_confirmation"
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    HELP = "help"
    RESUBSCRIBE_CONFIRMATION = "resubscribe_confirmation"

    @property
    def is_compliance(self) -> bool:
        """Compliance replies never carry the footer and bypass the consent gate."""
        return self in _COMPLIANCE

    @property
    def is_marketing(self) -> bool:
        """Campaign and bulk texts obey the send window and the state caps."""
        return self in (MessageKind.CAMPAIGN, MessageKind.BULK)


_COMPLIANCE = frozenset(
    {
        MessageKind.OPT_IN_CONFIRMATION,
        MessageKind.OPT_OUT_CONFIRMATION,
        MessageKind.HELP,
        MessageKind.RESUBSCRIBE_CONFIRMATION,
    }
)


class TextStatus(StrEnum):
    """Whether a contact's phone may be texted at all, apart from consent."""

    TEXTABLE = "textable"
    CANNOT_BE_TEXTED = "cannot_be_texted"
    UNDELIVERABLE = "undeliverable"


class ConsentSource(StrEnum):
    REGISTRATION = "registration"
    IMPORT = "import"
    API = "api"
    MANUAL = "manual"


class OptOutMode(StrEnum):
    """``rules``: the footer rules F1-F4 decide; ``always``: F5, the footer on every send."""

    RULES = "rules"
    ALWAYS = "always"


class SenderRole(StrEnum):
    AGENT = "agent"
    CONCIERGE = "concierge"


class CampaignKind(StrEnum):
    SMART_DRIP = "smart_drip"
    CONCIERGE = "concierge"
    NURTURE = "nurture"


class SendState(StrEnum):
    """Life of a scheduled send; ``unknown`` is never resent (at most once)."""

    PENDING = "pending"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"


class ConsentEventKind(StrEnum):
    GIVEN = "given"
    REVOKED_KEYWORD = "revoked_keyword"
    REVOKED_PHRASE = "revoked_phrase"
    REVOKED_OPERATOR = "revoked_operator"
    REVOKED_CARRIER = "revoked_carrier"
    #: The reassigned-numbers check found the number changed hands: the consent is void.
    NUMBER_REASSIGNED = "number_reassigned"
    RESTORED = "restored"
    TEXTABLE_AGAIN = "textable_again"


class CampaignStatus(StrEnum):
    """A paused campaign holds its sends; an archived one has none left."""

    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"
