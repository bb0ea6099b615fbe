"""A lead event as a producer sends it, checked field by field before anything is stored.

An event is a JSON object ``{id, type, occurred_at, contact, data}``;
``contact`` names the lead by ``external_id``, else ``phone``, else
``email``. :func:`parse_event` gives a :class:`ParsedEvent` or an
:class:`Invalid` naming the bad field; nothing here reads the database (the
references to contacts and agents are checked by the ingest service, which
may pass the phone numbers it found already stored on contacts: such a number,
in E.164 form, was checked when it was stored and is taken as it is). The
fields of each type are listed in docs/campaigns.md.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drip.domain.triggers import EVENT_TYPES
from drip.domain.zones import normalize_phone, normalize_state, validate_timezone
from drip.errors import ValidationError

MAX_ID = 200
MAX_WORD = 100
MAX_TAGS = 100
#: Where each event type's data may go: a field name -> the kind of value.
TEXT, WORD, TAGS, PHONE, EMAIL, STATE, ZONE, FLAG, AGENT = (
    "text",
    "word",
    "tags",
    "phone",
    "email",
    "state",
    "zone",
    "flag",
    "agent",
)
_PROFILE = {
    "first_name": TEXT,
    "last_name": TEXT,
    "email": EMAIL,
    "state": STATE,
    "timezone": ZONE,
    "stage": WORD,
    "tags": TAGS,
    "lead_source": WORD,
}
DATA_SHAPES: dict[str, dict[str, str]] = {
    "lead.created": {
        **_PROFILE,
        "phone": PHONE,
        "agent": AGENT,
        "sms_consent": FLAG,
        "consent_text": TEXT,
        "source": WORD,
    },
    "lead.updated": dict(_PROFILE),
    "lead.assigned": {"agent": AGENT},
    "lead.activity": {"kind": WORD, "listing": TEXT, "url": TEXT},
    "contact.touched": {"channel": WORD, "note": TEXT},
    "appointment.set": {"at": TEXT, "note": TEXT},
    "deal.stage": {"stage": WORD},
    "agent.deactivated": {"agent": AGENT, "to": AGENT},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "lead.assigned": ("agent",),
    "lead.activity": ("kind",),
    "deal.stage": ("stage",),
    "agent.deactivated": ("agent", "to"),
}
#: ``to`` of ``agent.deactivated`` besides an agent.
SPREADS = ("round-robin", "concierge")
_EVENT_FIELDS = frozenset({"id", "type", "occurred_at", "contact", "data"})
_CONTACT_FIELDS = frozenset({"external_id", "phone", "email"})
#: Text values of a field (``isinstance`` with a tuple: no union built at each call).
_TEXTUAL = (str, int)
_SCALAR = (str, int, float)
#: A number in E.164 form: "+", a country code and at most 15 digits in all.
_E164 = re.compile(r"\+[1-9]\d{6,14}")


@dataclass(frozen=True, slots=True)
class ContactRef:
    external_id: str | None = None
    phone: str | None = None
    email: str | None = None

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.external_id:
            out["external_id"] = self.external_id
        if self.phone:
            out["phone"] = self.phone
        if self.email:
            out["email"] = self.email
        return out

    @property
    def key(self) -> str:
        return self.external_id or self.phone or (self.email or "").lower()

    def __reduce__(self) -> tuple[type[ContactRef], tuple[str | None, str | None, str | None]]:
        # Pickled by its fields (a file's next batch comes from another process): a frozen
        # dataclass's default state is set field by field, several times slower.
        return ContactRef, (self.external_id, self.phone, self.email)


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    index: int
    id: str
    type: str
    occurred_at: datetime
    contact: ContactRef
    data: dict[str, Any]
    digest: str
    #: ``occurred_at`` in ISO 8601, as the contact's field times hold it (made once, where
    #: the event is parsed: the process storing a file's next batch, not the one applying).
    stamp: str = ""

    def __post_init__(self) -> None:
        if not self.stamp:
            object.__setattr__(self, "stamp", self.occurred_at.isoformat())

    def __reduce__(self) -> tuple[builtins.type[ParsedEvent], tuple[Any, ...]]:
        # As ContactRef's: by its fields, in order.
        return ParsedEvent, (
            self.index,
            self.id,
            self.type,
            self.occurred_at,
            self.contact,
            self.data,
            self.digest,
            self.stamp,
        )


@dataclass(frozen=True, slots=True)
class Invalid:
    index: int
    id: str | None
    field: str
    message: str


class _BadFieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


#: The canonical JSON of a digest: keys sorted, no spaces. One encoder for every event:
#: ``json.dumps`` with options builds a new one each call, a third of a digest's cost.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def digest_of(raw: Mapping[str, Any]) -> str:
    """A digest of the event's body, the same for the same JSON whatever its key order."""
    return hashlib.sha256(_CANONICAL.encode(raw).encode()).hexdigest()


def parse_event(
    index: int, raw: object, stored_phones: Container[str] = frozenset()
) -> ParsedEvent | Invalid:
    """The event at ``index`` of a batch, checked; an :class:`Invalid` names the bad field.

    ``stored_phones``: numbers (E.164) already on contacts; a phone given exactly
    as one of them is not validated again."""
    if not isinstance(raw, dict):
        return Invalid(index, None, "event", "an event is a JSON object")
    event_id = raw.get("id")
    shown = str(event_id) if isinstance(event_id, _TEXTUAL) else None
    try:
        return _parse(index, raw, stored_phones)
    except _BadFieldError as bad:
        return Invalid(index, shown, bad.field, bad.message)


def raw_phones(events: Iterable[object]) -> set[str]:
    """The phone numbers the events give (``contact.phone``, ``data.phone``) as text,
    unchecked: what to ask the database about before :func:`parse_event`."""
    found: set[str] = set()
    for raw in events:
        if isinstance(raw, dict):
            for part in (raw.get("contact"), raw.get("data")):
                phone = part.get("phone") if isinstance(part, dict) else None
                if isinstance(phone, str):
                    found.add(phone.strip())
    return found


def _parse(index: int, raw: dict[str, Any], stored: Container[str]) -> ParsedEvent:
    if not _EVENT_FIELDS.issuperset(raw):
        unknown = sorted(raw.keys() - _EVENT_FIELDS)[0]
        raise _BadFieldError(unknown, f"unknown field {unknown!r}")
    event_id = raw.get("id")
    if isinstance(event_id, bool) or not isinstance(event_id, _TEXTUAL):
        raise _BadFieldError("id", "id is required: the producer's id of the event, as text")
    event_id = str(event_id).strip()
    if not event_id or len(event_id) > MAX_ID or "\x00" in event_id:
        raise _BadFieldError("id", f"id must be 1 to {MAX_ID} characters, without NUL")
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise _BadFieldError("type", f"unknown type {kind!r}; types are: {', '.join(EVENT_TYPES)}")
    occurred = _instant(raw.get("occurred_at"))
    data_raw = raw.get("data", {})
    if data_raw is None:
        data_raw = {}
    if not isinstance(data_raw, dict):
        raise _BadFieldError("data", "data must be a JSON object")
    data = _data(str(kind), data_raw, stored)
    contact = _contact(raw.get("contact"), data, stored, required=kind != "agent.deactivated")
    return ParsedEvent(index, event_id, str(kind), occurred, contact, data, digest_of(raw))


def _instant(value: object) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise _BadFieldError(
            "occurred_at", "occurred_at is required: an ISO 8601 time with its offset"
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise _BadFieldError(
            "occurred_at", f"occurred_at {value!r} is not an ISO 8601 time"
        ) from exc
    if parsed.tzinfo is None:
        raise _BadFieldError(
            "occurred_at", f"occurred_at {value!r} has no offset (add Z or +00:00)"
        )
    return parsed.astimezone(UTC)


def _contact(
    value: object, data: dict[str, Any], stored: Container[str], *, required: bool
) -> ContactRef:
    if value is None and not required:
        return ContactRef()
    if not isinstance(value, dict):
        raise _BadFieldError("contact", "contact must name the lead: {external_id, phone or email}")
    if not _CONTACT_FIELDS.issuperset(value):
        unknown = sorted(value.keys() - _CONTACT_FIELDS)[0]
        raise _BadFieldError(f"contact.{unknown}", f"unknown field {unknown!r} of contact")
    external = value.get("external_id")
    if external is not None:
        if isinstance(external, bool) or not isinstance(external, _TEXTUAL):
            raise _BadFieldError("contact.external_id", "external_id must be text")
        external = str(external).strip() or None
        if external is not None and len(external) > MAX_ID:
            raise _BadFieldError(
                "contact.external_id", f"external_id is longer than {MAX_ID} characters"
            )
        if external is not None and "\x00" in external:
            raise _BadFieldError("contact.external_id", "external_id must not contain NUL")
    phone = value.get("phone")
    phone = data.get("phone") if phone is None else _value("contact.phone", PHONE, phone, stored)
    email = value.get("email")
    email = _value("contact.email", EMAIL, email) if email is not None else data.get("email")
    if not (external or phone or email):
        raise _BadFieldError("contact", "contact must give an external_id, a phone or an email")
    return ContactRef(external, phone, email)


def _data(kind: str, data: dict[str, Any], stored: Container[str]) -> dict[str, Any]:
    shapes = DATA_SHAPES[kind]
    out: dict[str, Any] = {}
    for name, value in data.items():
        shape = shapes.get(name)
        if shape is None:
            allowed = ", ".join(shapes) or "nothing"
            raise _BadFieldError(
                f"data.{name}", f"{kind} has no field {name!r} (it takes: {allowed})"
            )
        if value is None:
            continue
        out[name] = _value(f"data.{name}", shape, value, stored)
    for name in REQUIRED.get(kind, ()):
        if name not in out:
            raise _BadFieldError(f"data.{name}", f"{kind} needs data.{name}")
    return out


def _value(field: str, shape: str, value: object, stored: Container[str] = ()) -> Any:
    if shape == FLAG:
        if not isinstance(value, bool):
            raise _BadFieldError(field, "must be true or false")
        return value
    if shape == TAGS:
        items = value if isinstance(value, list) else [value]
        tags = sorted({_text(field, v, MAX_WORD) for v in items})
        if len(tags) > MAX_TAGS:
            raise _BadFieldError(field, f"at most {MAX_TAGS} tags")
        return tags
    if shape == AGENT and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = _text(field, value, 2000 if shape == TEXT else 254)
    if shape == PHONE and text in stored and _E164.fullmatch(text):
        return text  # a contact's number, checked when it was stored
    try:
        if shape == PHONE:
            return normalize_phone(text)
        if shape == STATE:
            return normalize_state(text)
        if shape == ZONE:
            return validate_timezone(text)
    except ValidationError as exc:
        raise _BadFieldError(field, str(exc)) from exc
    if shape == EMAIL:
        local, _, domain = text.partition("@")
        if not local or "." not in domain:
            raise _BadFieldError(field, f"{text!r} is not an email address")
    if shape == WORD and (len(text) > MAX_WORD or text.split() != [text]):  # no whitespace
        raise _BadFieldError(field, f"must be one word of at most {MAX_WORD} characters")
    if shape == AGENT and text not in SPREADS and not text.isdigit():
        try:
            return normalize_phone(text)
        except ValidationError as exc:
            raise _BadFieldError(field, f"an agent is named by phone or id: {exc}") from exc
    return text


def _text(field: str, value: object, limit: int) -> str:
    if isinstance(value, bool) or not isinstance(value, _SCALAR):
        raise _BadFieldError(field, "must be text")
    text = str(value).strip()
    if not text or len(text) > limit or "\x00" in text:
        raise _BadFieldError(field, f"must be 1 to {limit} characters")
    return text
