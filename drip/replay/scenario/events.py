"""Reading a scenario's ``events:``: each an event kind at a ``day N HH:MM``.

Campaign references (``enroll``, ``edit_campaign``, and the lifecycle events
``pause``/``resume``/``archive``/``unenroll``) name a file, relative to the
scenario file then to the project root, or a campaign by ``name:`` in the
project's ``campaigns/`` folder.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from drip.campaigns.loader import load_campaign_file
from drip.campaigns.yamlsource import Field, YamlSource, is_null
from drip.domain.campaign import Campaign
from drip.domain.enums import SenderRole, TextStatus
from drip.errors import CampaignError
from drip.replay.scenario.fields import FieldReader
from drip.replay.scenario.format import (
    BACKLOG_FIELDS,
    CARRIER_EVENTS,
    EVENT_KINDS,
    EVENT_KINDS_LATER,
    EVENT_MODIFIERS,
    MAX_BACKLOG,
    OPT_OUT_TYPES,
    SENDER_ROLES,
    TEXT_STATUSES,
)
from drip.replay.scenario.project import catalog as project_catalog
from drip.replay.scenario.values import (
    Action,
    Archive,
    Backlog,
    Bulk,
    CarrierOptOut,
    CarrierReport,
    Consent,
    Downtime,
    EditCampaign,
    EmailUnsubscribe,
    Enroll,
    Erase,
    Event,
    LeadEvent,
    LookupOutage,
    ManualText,
    NumberReassigned,
    Pause,
    PauseContact,
    Reply,
    Resume,
    ResumeContact,
    SetTextStatus,
    Unenroll,
)

_LIFECYCLE: dict[str, type[Pause | Resume | Archive | Unenroll]] = {
    "pause": Pause,
    "resume": Resume,
    "archive": Archive,
    "unenroll": Unenroll,
}


class EventReader(FieldReader):
    """Reads the ``events:`` list; campaign files are looked for from ``base``, then ``project``."""

    def __init__(self, source: YamlSource, project: Path, base: Path) -> None:
        super().__init__(source)
        self.project = project
        self.base = base

    def read(self, node: yaml.Node) -> list[Event] | None:
        items = self.source.sequence(node, "events")
        if items is None:
            return None
        return [e for e in (self._event(item, i) for i, item in enumerate(items, 1)) if e]

    def _event(self, node: yaml.Node, number: int) -> Event | None:
        s = self.source
        what = f"event {number}"
        fields = s.mapping(node, what)
        if fields is None:
            return None
        allowed = ("at", *EVENT_KINDS, *EVENT_MODIFIERS)
        unknown = [name for name in fields if name not in allowed]
        for name in unknown:
            item = fields[name]
            if name in EVENT_KINDS_LATER:
                s.error(
                    item.key,
                    f"{what}: {name} ({EVENT_KINDS_LATER[name]}) is not supported by this "
                    "version of drip replay",
                )
                continue
            s.error(
                item.key,
                f"unknown event kind {name!r} in {what}; "
                f"events are: {', '.join(EVENT_KINDS)} (with at:)",
            )
        kinds = [name for name in fields if name in EVENT_KINDS]
        if "at" not in fields:
            s.error(node, f'{what} needs at: "day N" or "day N HH:MM"')
        if not kinds:
            if not unknown:
                s.error(node, f"{what} says nothing happens; give one of: {', '.join(EVENT_KINDS)}")
            return None
        if len(kinds) > 1:
            s.error(
                fields[kinds[1]].key,
                f"{what} has two kinds ({kinds[0]} and {kinds[1]}); write one event per item",
            )
            return None
        kind = kinds[0]
        for name, owner in EVENT_MODIFIERS.items():
            if name in fields and owner != kind:
                s.error(fields[name].key, f"{name} goes with {owner}, not with {kind}")
        at = self._day_time(fields["at"].value, f"{what} at") if "at" in fields else None
        action = self._action(kind, fields, what)
        if at is None or action is None:
            return None
        return Event(at, action, s.at(node))

    def _action(self, kind: str, fields: dict[str, Field], what: str) -> Action | None:
        s = self.source
        node = fields[kind].value
        label = f"{what} {kind}"
        if kind == "text":
            body = s.string(node, label)
            role = self._opt(fields, "from", lambda n: s.choice(n, f"{what} from", SENDER_ROLES))
            return ManualText(body, SenderRole(role or "agent")) if body is not None else None
        if kind == "reply":
            body = s.string(node, label)
            to = self._opt(
                fields, "reply_to", lambda n: s.choice(n, f"{what} reply_to", SENDER_ROLES)
            )
            oot = self._opt(
                fields, "opt_out_type", lambda n: s.choice(n, f"{what} opt_out_type", OPT_OUT_TYPES)
            )
            return Reply(body, SenderRole(to or "agent"), oot) if body is not None else None
        if kind == "consent":
            given = s.boolean(node, label)
            return Consent(given) if given is not None else None
        if kind == "text_status":
            status = s.choice(node, label, TEXT_STATUSES)
            return SetTextStatus(TextStatus(status)) if status is not None else None
        if kind == "bulk":
            body = s.string(node, label)
            expires = self._opt(
                fields, "expires_at", lambda n: self._day_time(n, f"{what} expires_at")
            )
            return Bulk(body, expires) if body is not None else None
        if kind in _LIFECYCLE:
            name = self._campaign_name(node, label)
            return _LIFECYCLE[kind](name) if name is not None else None
        if kind in ("pause_contact", "resume_contact"):
            hold = PauseContact if kind == "pause_contact" else ResumeContact
            if isinstance(node, yaml.ScalarNode) and str(node.value).strip() == "all":
                return hold(None)
            name = self._campaign_name(node, label)
            return hold(name) if name is not None else None
        if kind == "enroll":
            return self._enroll(node, label)
        if kind == "edit_campaign":
            return self._edit(node, label)
        if kind == "downtime_until":
            until = self._day_time(node, label)
            return Downtime(until) if until is not None else None
        if kind == "carrier_opt_out":
            flag = s.boolean(node, label)
            if flag is False:
                s.error(node, f"{label}: only true means something (the carrier refuses texts)")
            return CarrierOptOut() if flag else None
        if kind == "email_unsubscribe":
            flag = s.boolean(node, label)
            if flag is False:
                s.error(node, f"{label}: only true means something (the contact unsubscribes)")
            return EmailUnsubscribe() if flag else None
        if kind == "backlog":
            return self._backlog(node, label)
        if kind == "event":
            return self._lead_event(node, fields, label)
        if kind == "number_reassigned":
            flag = s.boolean(node, label)
            if flag is False:
                s.error(node, f"{label}: only true means something (the number changed hands)")
            return NumberReassigned() if flag else None
        if kind == "lookup_outage_until":
            until = self._day_time(node, label)
            return LookupOutage(until) if until is not None else None
        if kind == "erase":
            flag = s.boolean(node, label)
            if flag is False:
                s.error(node, f"{label}: only true means something (the contact is erased)")
            return Erase() if flag else None
        if kind == "carrier":
            reported = s.choice(node, label, CARRIER_EVENTS)
            return CarrierReport(reported) if reported is not None else None
        raise AssertionError(kind)  # pragma: no cover - EVENT_KINDS is exhaustive

    def _lead_event(
        self, node: yaml.Node, fields: dict[str, Field], label: str
    ) -> LeadEvent | None:
        from drip.domain.triggers import EVENT_TYPES

        s = self.source
        kind = s.choice(node, label, EVENT_TYPES)
        data: dict[str, object] = {}
        item = fields.get("data")
        if item is not None and not is_null(item.value):
            loaded = yaml.safe_load(yaml.serialize(item.value))
            if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
                s.error(item.value, f"{label} data must be a mapping of field names to values")
                return None
            data = loaded
        if kind is None:
            return None
        return LeadEvent(kind, tuple(sorted(data.items())))

    def _backlog(self, node: yaml.Node, label: str) -> Backlog | None:
        s = self.source
        fields = s.mapping(node, label)
        if fields is None:
            return None
        if not s.check_fields(fields, node, label, allowed=BACKLOG_FIELDS, required=("segments",)):
            return None
        role = self._opt(fields, "from", lambda n: s.choice(n, f"{label} from", SENDER_ROLES))
        segments = s.integer(
            fields["segments"].value, f"{label} segments", minimum=1, maximum=MAX_BACKLOG
        )
        if segments is None:
            return None
        return Backlog(SenderRole(role or "agent"), segments)

    def _campaign_name(self, node: yaml.Node, label: str) -> str | None:
        """A campaign name, or the name inside the campaign file REF names."""
        ref = self.source.string(node, label)
        if ref is None:
            return None
        ref = ref.strip()
        if not ref:
            self.source.error(node, f"{label}: give a campaign name")
            return None
        found = self._campaign_file(node, ref, label)
        if found is not None:
            return found[0].name
        if _looks_like_path(ref):
            self._no_file(node, ref, label)
            return None
        return ref

    def _enroll(self, node: yaml.Node, label: str) -> Enroll | None:
        ref = self.source.string(node, label)
        if ref is None:
            return None
        ref = ref.strip()
        found = self._campaign_file(node, ref, label)
        if found is not None:
            return Enroll(ref, *found)
        if _looks_like_path(ref):
            self._no_file(node, ref, label)
            return None
        catalog = project_catalog(self.project / "campaigns")
        named = catalog.campaigns.get(ref)
        if named is None:
            known = ", ".join(sorted(catalog.campaigns)) or "none"
            broken = (
                f"; {len(catalog.errors)} problem(s) in that folder kept files from loading "
                "(see drip lint)"
                if catalog.errors
                else ""
            )
            self.source.error(
                node,
                f"{label}: no campaign file {ref!r} and no campaign named {ref!r} in "
                f"{self.project / 'campaigns'} (known: {known}){broken}",
            )
            return None
        return Enroll(ref, *named)

    def _edit(self, node: yaml.Node, label: str) -> EditCampaign | None:
        ref = self.source.string(node, label)
        if ref is None:
            return None
        ref = ref.strip()
        found = self._campaign_file(node, ref, label)
        if found is None:
            self._no_file(node, ref, label)
            return None
        return EditCampaign(ref, *found)

    def _candidates(self, ref: str) -> list[Path]:
        return [self.base / ref, self.project / ref]

    def _no_file(self, node: yaml.Node, ref: str, label: str) -> None:
        where = " or ".join(str(p) for p in self._candidates(ref))
        self.source.error(node, f"{label}: no campaign file {ref!r} (looked for {where})")

    def _campaign_file(self, node: yaml.Node, ref: str, label: str) -> tuple[Campaign, Path] | None:
        for path in self._candidates(ref):
            if path.is_file():
                try:
                    loaded = load_campaign_file(path)
                except CampaignError as exc:
                    self.source.error(
                        node, f"{label}: the campaign file {path} is invalid (see below)"
                    )
                    for problem in exc.problems:
                        self.source.error(node, f"  {problem}")
                    return None
                return loaded.campaign, path
        return None


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml"))
