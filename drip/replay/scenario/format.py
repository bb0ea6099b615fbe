"""The scenario file format: its fields, event kinds and expectation keys.

The format is documented for QA in docs/replay.md; this is the reference the reader
follows.

Fields: ``name``, ``start``, ``timezone``, ``company``, ``agent``,
``concierge``, ``contact``, ``until``, ``events``, ``expect``. Unknown fields
are errors, as are bad times, unknown event kinds and events out of order.

Event kinds: ``text`` (a manual text; ``from: concierge`` is an
extension, default the agent), ``enroll``, ``reply`` (with ``reply_to:
agent|concierge``), ``consent: true|false``, ``text_status:
cannot_be_texted|textable``, ``bulk``, ``pause``/``resume``/``archive``
(a campaign, by name or file) and ``unenroll`` (this contact from a
campaign); and these, which reach the rarer paths of the pipeline:

- ``edit_campaign: PATH``: sync an edited campaign file (edits reach
  enrolled contacts); the file's ``name:`` says which campaign it replaces.
- ``downtime_until: "day N HH:MM"``: the dispatcher is down from the event's
  time until then; what falls due meanwhile is overdue when it comes back
  (catch-up, see docs/compliance.md). Manual texts and inbound replies still work.
- ``carrier_opt_out: true``: from then on the carrier refuses every text to
  the contact with Twilio error 21610 (revocation by the carrier).
- ``email_unsubscribe: true``: the contact follows the unsubscribe link of
  an email (the webhook app's ``GET /unsubscribe/<token>``).
- ``opt_out_type: STOP|START|HELP`` on a ``reply``: Twilio's ``OptOutType``
  webhook parameter, which decides when present.
- ``expires_at: "day N HH:MM"`` on a ``bulk`` (``drip bulk --expires-at``),
  local to the contact like every scenario time: the bulk text is skipped
  (``expired``) if it cannot go by then; it must come after the event.
- ``number_reassigned: true``: the reassigned-numbers source (the fake
  Twilio Lookup) now says the contact's number was disconnected on the
  event's date (UTC), so a check asked with an earlier or equal consent or
  verification date answers ``yes`` (docs/compliance.md).
- ``lookup_outage_until: "day N HH:MM"``: the reassigned-numbers check has
  no answer (Twilio 503/20503) from the event's time until then.
- ``erase: true``: the contact is erased (``drip contacts erase``, by
  ``replay``): its personal data goes, its pending texts are cancelled, its
  opt-outs stay on the suppression list. Until the person is added again
  (``{event: lead.created, data: {...}}`` or ``consent: true``, which create
  a new contact with the same phone), no event may address the contact but
  a ``reply`` (a text from the number) and the events about the world; the
  messages and decisions read back are those of every contact the person
  was, the erased ones without their bodies.
- top-level ``state_rules:``, ``blackouts:``, ``frequency_cap:`` and
  ``reassigned_numbers:``, read as in ``account.yaml``
  (docs/campaigns.md): they extend the project's account settings for this scenario
  only (a blackout declared by operations, a test row).
- ``backlog: {from: agent|concierge, segments: N}`` (pacing): N
  message segments of other traffic are queued on that sender number at the
  event's time, so it is busy for N segments at its paced rate (1 segment/s
  less drip's 20 % margin unless ``senders:`` says otherwise); a campaign or
  bulk text due meanwhile is deferred with reason ``pacing``.
- ``carrier: expired``: the carrier reports that the latest text
  it accepted for the contact, not yet delivered or failed, expired in its
  queue: a status callback ``failed`` with error 30036 through the status
  service the webhook calls. A campaign or bulk text goes back to the next
  opening once; a second expiry is final.

Lead events (docs/campaigns.md): ``agents:`` lists more agents
(``{first_name, last_name, phone}``) that ``lead.assigned`` can name;
``sync:`` lists campaign files loaded at ``start`` so that their triggers
are live, and the contact's own creation at ``start`` is then its
``lead.created`` event; ``{event: TYPE, data: {...}}`` is a lead event for
the contact, through the same ingest path as ``POST /events``. An
expectation's ``from`` is ``agent``, ``concierge`` or a sender's phone number.

Expectations may give ``at_utc: "YYYY-MM-DD HH:MM"``, the absolute
instant to the minute, to check which zone a send was timed in, and these
keys about the carrier's clock:

- ``validity: SECONDS``: the ``ValidityPeriod`` the text was handed to the
  provider with (to within 2 s: a text may wait that long for its sender's
  slot); ``validity: none`` for a text handed over without one (manual texts,
  live compliance replies).
- ``deferred: CODE``: the text's send was deferred at least once with that
  reason code before it went (``window``, ``state_cap``, ``closed_day``,
  ``holiday``, ``blackout``, ``catch_up``, ``pacing``, ``carrier_clock``).
- ``status: STATUS`` and ``error: CODE``: the provider status the text has at
  the end (``failed`` after an expiry) and its error code (30036).

Choices made where a scenario leaves something open:

- ``start`` is ``"YYYY-MM-DD HH:MM"`` (seconds and a ``T`` are accepted).
- ``day N`` is at most 3650 (ten years).
- Events at the same time are applied in file order; an event before
  ``start`` (``day 0`` earlier than the start time) is an error.
- ``sms_consent`` defaults to true for ``source: registration`` with a phone
  and to false otherwise; ``sms_consent: true`` without a phone is an error.
  With ``source: import`` or ``manual`` and ``sms_consent: true``, consent is
  recorded with import or manual evidence; ``sms_consent: false`` records none.
- ``consent: true`` records consent again (source ``api``); ``consent: false``
  revokes it as an operator would; a later START does not restore it.
- Without ``expect`` nothing is checked (the timeline is still printed); an
  empty ``expect: []`` means no message at all may be sent.
- ``enroll`` names a file (relative to the scenario file, then to the project
  root) or a campaign by ``name:`` in the project's ``campaigns/`` folder. The
  project root is the nearest folder holding ``campaigns/``, looking up from
  the scenario file, then from the working directory, then the campaigns
  bundled with drip.
"""

from __future__ import annotations

import re
from datetime import timedelta

from drip.domain.decision_codes import DeferCode
from drip.domain.enums import SenderRole, TextStatus

SCENARIO_FIELDS = (
    "name",
    "start",
    "timezone",
    "company",
    "agent",
    "concierge",
    "contact",
    "until",
    "events",
    "expect",
    "state_rules",
    "blackouts",
    "frequency_cap",
    "reassigned_numbers",
    "agents",
    "sync",
)
SCENARIO_REQUIRED = ("start", "contact")
AGENT_FIELDS = ("first_name", "last_name", "phone")
CONCIERGE_FIELDS = ("phone",)
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "state",
    "source",
    "sms_consent",
    "lead_source",
    "stage",
    "tags",
)
CONTACT_SOURCES = ("registration", "import", "manual")
#: Event kinds: the common ones, then those of the rarer paths (see the module docstring).
EVENT_KINDS = (
    "text",
    "enroll",
    "reply",
    "consent",
    "text_status",
    "bulk",
    "pause",
    "resume",
    "archive",
    "unenroll",
    "pause_contact",
    "resume_contact",
    "edit_campaign",
    "downtime_until",
    "carrier_opt_out",
    "email_unsubscribe",
    "backlog",
    "carrier",
    "event",
    "number_reassigned",
    "lookup_outage_until",
    "erase",
)
#: Fields that go with one event kind only.
EVENT_MODIFIERS = {
    "from": "text",
    "reply_to": "reply",
    "opt_out_type": "reply",
    "data": "event",
    "expires_at": "bulk",
}
#: Event kinds of other parts of the format that this reader does not run yet, each with
#: what it is, so that a file using one is refused with a located, clear error.
EVENT_KINDS_LATER: dict[str, str] = {}
EXPECT_FIELDS = (
    "day",
    "at",
    "at_utc",
    "channel",
    "kind",
    "footer",
    "contains",
    "from",
    "validity",
    "deferred",
    "status",
    "error",
)
BACKLOG_FIELDS = ("from", "segments")
#: What ``carrier:`` can report (an expiry, Twilio error 30036).
CARRIER_EVENTS = ("expired",)
#: Reason codes a send can be deferred with (``deferred:`` of an expectation).
DEFER_CODES = tuple(c.value for c in DeferCode)
#: Provider statuses a text can end in (``status:`` of an expectation).
PROVIDER_STATUSES = ("queued", "accepted", "sending", "sent", "delivered", "undelivered", "failed")
SENDER_ROLES = tuple(r.value for r in SenderRole)
TEXT_STATUSES = (TextStatus.CANNOT_BE_TEXTED.value, TextStatus.TEXTABLE.value)
OPT_OUT_TYPES = ("STOP", "START", "HELP")
MAX_DAY = 3650
#: ``validity: none``: the text was handed over without a ValidityPeriod.
NO_VALIDITY = -1
#: Largest ``backlog`` in segments (a day of a short code).
MAX_BACKLOG = 10_000_000
#: ``until`` when the file gives none: this long after the last event or expectation.
DEFAULT_TAIL = timedelta(days=30)

START = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
DAY_TIME = re.compile(r"day\s+(\d+)(?:\s+(\d{1,2}):(\d{2}))?", re.IGNORECASE)
TIMESTAMP = "tag:yaml.org,2002:timestamp"
#: The consent text a scenario's registration records ({company}: the account's company).
CONSENT_TEXT = (
    "By checking this box I agree to receive text messages about my home search from "
    "{company} and my agent. Msg frequency varies. Msg & data rates may apply. "
    "Reply HELP for help, STOP to opt out."
)
