"""Reading a scenario's ``expect:``: the messages expected, in send order.

Each expectation checks only the keys it gives; see
:mod:`drip.replay.scenario.format` for the keys and :mod:`drip.replay.runner.checking`
for how each is compared with the message sent in its place.
"""

from __future__ import annotations

import yaml

from drip.campaigns.yamlsource import STR, Field, is_null
from drip.domain.enums import Channel, MessageKind, SenderRole
from drip.domain.pacing import MAX_VALIDITY_SECONDS
from drip.domain.zones import normalize_phone
from drip.errors import ValidationError
from drip.replay.scenario.fields import FieldReader
from drip.replay.scenario.format import (
    DEFER_CODES,
    EXPECT_FIELDS,
    MAX_DAY,
    NO_VALIDITY,
    PROVIDER_STATUSES,
    SENDER_ROLES,
)
from drip.replay.scenario.values import Expectation


class ExpectationReader(FieldReader):
    """Reads the ``expect:`` list into :class:`Expectation` values."""

    def read(self, node: yaml.Node) -> list[Expectation] | None:
        items = self.source.sequence(node, "expect")
        if items is None:
            return None
        found = [self._expectation(item, i) for i, item in enumerate(items, 1)]
        return [e for e in found if e is not None]

    def _expectation(self, node: yaml.Node, number: int) -> Expectation | None:
        s = self.source
        what = f"expectation {number}"
        fields = s.mapping(node, what)
        if fields is None:
            return None
        before = s.error_count
        s.check_fields(fields, node, what, allowed=EXPECT_FIELDS)
        day = self._opt(
            fields, "day", lambda n: s.integer(n, f"{what} day", minimum=0, maximum=MAX_DAY)
        )
        at = self._opt(fields, "at", lambda n: self._day_time(n, f"{what} at"))
        at_utc = self._opt(fields, "at_utc", lambda n: self._utc(n, f"{what} at_utc"))
        channel = self._opt(
            fields, "channel", lambda n: s.choice(n, f"{what} channel", [c.value for c in Channel])
        )
        kind = self._opt(
            fields, "kind", lambda n: s.choice(n, f"{what} kind", [k.value for k in MessageKind])
        )
        footer = self._opt(fields, "footer", lambda n: s.boolean(n, f"{what} footer"))
        contains = self._opt(fields, "contains", lambda n: s.string(n, f"{what} contains"))
        sender, sender_phone = self._from(fields, what)
        validity = self._opt(fields, "validity", lambda n: self._validity(n, f"{what} validity"))
        if "validity" in fields and is_null(fields["validity"].value):
            validity = NO_VALIDITY  # ``validity: none`` (or null): handed over without one
        deferred = self._opt(
            fields, "deferred", lambda n: s.choice(n, f"{what} deferred", DEFER_CODES)
        )
        status = self._opt(
            fields, "status", lambda n: s.choice(n, f"{what} status", PROVIDER_STATUSES)
        )
        error = self._opt(
            fields, "error", lambda n: s.integer(n, f"{what} error", minimum=1, maximum=99_999)
        )
        if day is not None and at is not None and day != at.day:
            s.error(fields["day"].value, f"{what}: day {day} disagrees with at: {at}")
        if s.error_count > before:
            return None
        return Expectation(
            where=s.at(node),
            day=day,
            at=at,
            channel=Channel(channel) if channel else None,
            kind=MessageKind(kind) if kind else None,
            footer=footer,
            contains=contains,
            sender=SenderRole(sender) if sender else None,
            sender_phone=sender_phone,
            at_utc=at_utc,
            validity=validity,
            deferred=deferred,
            status=status,
            error=error,
        )

    def _from(self, fields: dict[str, Field], what: str) -> tuple[str | None, str | None]:
        """``from``: a sender role (agent, concierge) or a phone number, as E.164."""
        item = fields.get("from")
        if item is None or is_null(item.value):
            return None, None
        raw = self.source.string(item.value, f"{what} from")
        if raw is None:
            return None, None
        if raw.strip() in SENDER_ROLES:
            return raw.strip(), None
        try:
            return None, normalize_phone(raw)
        except ValidationError:
            self.source.error(
                item.value,
                f"{what} from must be one of {', '.join(SENDER_ROLES)} or a phone number, "
                f"got {raw!r}",
            )
            return None, None

    def _validity(self, node: yaml.Node, what: str) -> int | None:
        """Seconds, 1 to Twilio's 36,000; ``none`` is read by the caller."""
        if isinstance(node, yaml.ScalarNode) and node.tag == STR and node.value == "none":
            return NO_VALIDITY
        return self.source.integer(node, what, minimum=1, maximum=MAX_VALIDITY_SECONDS)
