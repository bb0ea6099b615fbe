"""Reading a scenario file into values, every problem located as ``path:line:col``.

A scenario file is read with the campaign loader's :class:`YamlSource`, so a
problem is reported exactly like a campaign problem, as
``path:line:col: error: message``, every problem of the file at once, and a
file with any problem gives no ``Scenario`` (``drip replay`` exits 2). The
whole-scenario checks (time order, senders, campaign names) are in
:mod:`drip.replay.scenario.validation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import yaml

from drip.campaigns.compliance_fields import frequency_cap, reassigned_numbers
from drip.campaigns.rules_file import RowsRead, merge, state_rule_rows
from drip.campaigns.rules_file import blackouts as read_blackouts
from drip.campaigns.yamlsource import STR, YamlSource, describe
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign
from drip.domain.enums import ConsentSource
from drip.domain.zones import (
    normalize_phone,
    normalize_state,
    resolve_timezone,
    validate_timezone,
)
from drip.errors import CampaignError, DripError, ValidationError
from drip.replay.scenario.events import EventReader
from drip.replay.scenario.expectations import ExpectationReader
from drip.replay.scenario.fields import FieldReader
from drip.replay.scenario.format import (
    AGENT_FIELDS,
    CONCIERGE_FIELDS,
    CONSENT_TEXT,
    CONTACT_FIELDS,
    CONTACT_SOURCES,
    SCENARIO_FIELDS,
    SCENARIO_REQUIRED,
    START,
    TIMESTAMP,
)
from drip.replay.scenario.project import find_project, project_account
from drip.replay.scenario.validation import (
    check_campaign_names,
    check_erasure,
    check_senders,
    check_times,
)
from drip.replay.scenario.values import (
    AgentSpec,
    ContactSpec,
    Scenario,
)


class ScenarioError(DripError):
    """A scenario file is invalid; carries every located problem (``path:line:col: ...``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def load_scenario(path: Path | str, *, project: Path | None = None) -> Scenario:
    """The scenario of the file at ``path``; ``ScenarioError`` lists every located problem."""
    source = YamlSource.read(path)
    root = project or find_project(Path(path).resolve().parent, Path.cwd())
    return parse_scenario(source, project=root, base=Path(path).resolve().parent)


def parse_scenario(source: YamlSource, *, project: Path, base: Path) -> Scenario:
    """The scenario of ``source``; ``base`` is the folder relative file references start from."""
    scenario = _Reader(source, project, base).read()
    if source.errors or scenario is None:
        raise ScenarioError(source.errors or [f"{source.label}:1:1: error: not a scenario"])
    return scenario


class _Reader(FieldReader):
    def __init__(self, source: YamlSource, project: Path, base: Path) -> None:
        super().__init__(source)
        self.project = project
        self.base = base

    def read(self) -> Scenario | None:
        s = self.source
        root = s.compose()
        if root is None:
            return None
        fields = s.mapping(root, "the scenario")
        if fields is None:
            return None
        s.check_fields(
            fields, root, "the scenario", allowed=SCENARIO_FIELDS, required=SCENARIO_REQUIRED
        )
        account = self._account(root)
        name = self._opt(fields, "name", lambda n: s.string(n, "name"))
        start = self._opt(fields, "start", self._start)
        timezone = self._opt(fields, "timezone", self._timezone)
        company = self._opt(fields, "company", lambda n: s.string(n, "company"))
        agent = self._opt(fields, "agent", self._agent)
        concierge = self._opt(fields, "concierge", self._concierge)
        contact = self._opt(fields, "contact", self._contact)
        until = self._opt(fields, "until", lambda n: self._day_time(n, "until"))
        events = self._opt(fields, "events", EventReader(s, self.project, self.base).read)
        expect = self._opt(fields, "expect", ExpectationReader(s).read)
        rules = self._opt(fields, "state_rules", self._state_rules)
        blackouts = self._opt(fields, "blackouts", lambda n: read_blackouts(s, n))
        cap = self._opt(fields, "frequency_cap", lambda n: frequency_cap(s, n))
        checking = self._opt(fields, "reassigned_numbers", lambda n: reassigned_numbers(s, n))
        agents = self._opt(fields, "agents", self._agents)
        synced = self._opt(fields, "sync", self._sync)
        if account is not None:
            if rules is not None:
                account = replace(account, state_rules=merge(account.state_rules, rules))
            if blackouts is not None:
                account = replace(account, blackouts=account.blackouts + blackouts)
            if cap is not None:
                account = replace(account, frequency_cap=cap)
            if checking is not None:
                account = replace(account, reassigned_numbers=checking)
            if company is not None:
                account = replace(account, company=company.strip())
            if concierge is not None:
                account = replace(account, concierge_phone=concierge)
        if start is not None:
            check_times(s, start, events or [], expect or [], until=until, fields=fields)
        if start is None or contact is None or account is None or s.error_count:
            return None
        zone = resolve_timezone(timezone, contact.phone, account.default_timezone).name
        scenario = Scenario(
            label=s.label,
            name=(name or s.path.stem).strip(),
            start=start,
            timezone=timezone,
            zone=zone,
            contact=contact,
            agent=agent,
            account=account,
            project=self.project,
            events=tuple(events or ()),
            expect=tuple(expect) if expect is not None else None,
            until=until,
            consent_text=CONSENT_TEXT.format(company=account.company),
            agents=tuple(agents or ()),
            synced=tuple(synced or ()),
        )
        check_senders(self.source, scenario)
        check_campaign_names(self.source, scenario)
        check_erasure(self.source, scenario)
        return None if s.error_count else scenario

    # -- helpers -----------------------------------------------------------------

    def _account(self, root: yaml.Node) -> AccountSettings | None:
        try:
            return project_account(self.project)
        except CampaignError as exc:
            self.source.error(
                root,
                f"the account settings of {self.project / 'campaigns'} are invalid: "
                + "; ".join(exc.problems),
            )
            return None

    def _state_rules(self, node: yaml.Node) -> RowsRead | None:
        return state_rule_rows(self.source, node, require_source=False, allow_disable=True)

    def _start(self, node: yaml.Node) -> datetime | None:
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        m = START.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None or text is None or node.tag not in (STR, TIMESTAMP):
            self.source.error(
                node, f'start must be a local time "YYYY-MM-DD HH:MM", got {describe(node)}'
            )
            return None
        year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
        second = int(m.group(6) or 0)
        try:
            return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - local wall time
        except ValueError as exc:
            self.source.error(node, f"start {text.strip()!r} is not a date and time: {exc}")
            return None

    def _timezone(self, node: yaml.Node) -> str | None:
        name = self.source.string(node, "timezone")
        if name is None:
            return None
        try:
            return validate_timezone(name)
        except ValidationError as exc:
            self.source.error(node, str(exc))
            return None

    def _phone(self, node: yaml.Node, what: str) -> str | None:
        raw = self.source.string(node, what)
        if raw is None:
            return None
        try:
            return normalize_phone(raw)
        except ValidationError as exc:
            self.source.error(node, f"{what}: {exc}")
            return None

    def _agent(self, node: yaml.Node) -> AgentSpec | None:
        s = self.source
        fields = s.mapping(node, "agent")
        if fields is None:
            return None
        if not s.check_fields(
            fields, node, "agent", allowed=AGENT_FIELDS, required=("first_name", "phone")
        ):
            return None
        first = s.string(fields["first_name"].value, "agent first_name")
        last = self._opt(fields, "last_name", lambda n: s.string(n, "agent last_name"))
        phone = self._phone(fields["phone"].value, "agent phone")
        if first is None or phone is None:
            return None
        return AgentSpec(first.strip(), (last or "").strip(), phone)

    def _agents(self, node: yaml.Node) -> list[AgentSpec] | None:
        items = self.source.sequence(node, "agents")
        if items is None:
            return None
        found = [self._agent(item) for item in items]
        return [a for a in found if a is not None]

    def _sync(self, node: yaml.Node) -> list[Campaign] | None:
        """``sync:``: campaign files (relative to the scenario file, then the project root)."""
        s = self.source
        items = s.sequence(node, "sync")
        if items is None:
            return None
        files = EventReader(s, self.project, self.base)
        out: list[Campaign] = []
        for number, item in enumerate(items, 1):
            label = f"sync {number}"
            ref = s.string(item, label)
            if ref is None:
                continue
            before = s.error_count
            found = files._campaign_file(item, ref.strip(), label)
            if found is None:
                if s.error_count == before:
                    files._no_file(item, ref.strip(), label)
                continue
            out.append(found[0])
        return out

    def _concierge(self, node: yaml.Node) -> str | None:
        s = self.source
        fields = s.mapping(node, "concierge")
        if fields is None:
            return None
        if not s.check_fields(
            fields, node, "concierge", allowed=CONCIERGE_FIELDS, required=CONCIERGE_FIELDS
        ):
            return None
        return self._phone(fields["phone"].value, "concierge phone")

    def _contact(self, node: yaml.Node) -> ContactSpec | None:
        s = self.source
        fields = s.mapping(node, "contact")
        if fields is None:
            return None
        if not s.check_fields(
            fields, node, "contact", allowed=CONTACT_FIELDS, required=("first_name",)
        ):
            return None
        before = s.error_count
        first = s.string(fields["first_name"].value, "contact first_name")
        last = self._opt(fields, "last_name", lambda n: s.string(n, "contact last_name"))
        phone = self._opt(fields, "phone", lambda n: self._phone(n, "contact phone"))
        email = self._opt(fields, "email", self._email)
        state = self._opt(fields, "state", self._state)
        source_name = self._opt(
            fields, "source", lambda n: s.choice(n, "contact source", CONTACT_SOURCES)
        )
        consent = self._opt(fields, "sms_consent", lambda n: s.boolean(n, "sms_consent"))
        lead_source = self._opt(fields, "lead_source", lambda n: s.string(n, "lead_source"))
        stage = self._opt(fields, "stage", lambda n: s.string(n, "stage"))
        tags = self._opt(fields, "tags", lambda n: s.sequence(n, "tags"))
        if s.error_count > before or first is None:
            return None
        if phone is None and email is None:
            s.error(node, "contact needs a phone or an email (or both)")
            return None
        source = ConsentSource(source_name or "registration")
        if consent is None:
            consent = source is ConsentSource.REGISTRATION and phone is not None
        if consent and phone is None:
            s.error(fields["sms_consent"].value, "sms_consent: true needs a contact phone")
            return None
        return ContactSpec(
            first.strip(),
            (last or "").strip(),
            phone,
            email,
            state,
            source,
            consent,
            lead_source.strip() if lead_source else None,
            stage.strip() if stage else None,
            tuple(str(t.value) for t in tags or () if isinstance(t, yaml.ScalarNode)),
        )

    def _email(self, node: yaml.Node) -> str | None:
        email = self.source.string(node, "contact email")
        if email is None:
            return None
        email = email.strip()
        local, _, domain = email.partition("@")
        if not local or "." not in domain:
            self.source.error(node, f"contact email {email!r} is not an email address")
            return None
        return email

    def _state(self, node: yaml.Node) -> str | None:
        raw = self.source.string(node, "contact state")
        if raw is None:
            return None
        try:
            return normalize_state(raw)
        except ValidationError as exc:
            self.source.error(node, str(exc))
            return None


def scenario_files(paths: Sequence[Path]) -> list[Path]:
    """The scenario files among ``paths``: files as given, folders' ``*.yaml`` in name order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            out.append(path)
    return out
