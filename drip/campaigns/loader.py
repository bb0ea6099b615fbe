"""Campaign YAML (SPEC §5, version 1) to validated ``Campaign`` values.

Every problem of a file is reported, not only the first, as
``path:line:col: error: message``; a file with any error loads nothing.

Choices written down here (the SPEC is silent on them):

- A step without ``id`` gets its 1-based position in the file as its id
  (``"1"``, ``"2"``, ...), and ``Step.position`` is that same 1-based
  position. An ``id`` may be written as text or as a whole number
  (``id: 3`` is the id ``"3"``).
- ``day`` is a whole number from 0 to 3650 (ten years); quoted numbers,
  decimals and booleans are wrong types.
- ``opt_out.interval_days`` is a whole number from 1 to 365.
- A campaign's ``opt_out.footer`` override must tell how to opt out (one of
  the STOP-family keywords of SPEC §3, e.g. "reply STOP" or "reply end").
- A folder is read without descending into subfolders: its ``*.yaml`` and
  ``*.yml`` files in name order, except ``account.yaml`` / ``account.yml``,
  which hold the account settings (``drip.campaigns.account_file``).
- Links are found with or without a scheme (``bit.ly/x``, ``https://www.bit.ly/x``)
  and compared by host, case-insensitively; a subdomain of a shortener is a
  shortener. The list is ``drip/data/link_shorteners.txt``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml

from drip.campaigns.links import find_links, mentions_opt_out, shortener_of
from drip.campaigns.rules_file import federal_window_problem
from drip.campaigns.rules_file import window as read_window
from drip.campaigns.yamlsource import STR, Field, Position, YamlSource, is_null
from drip.domain.campaign import (
    DEFAULT_INTERVAL_DAYS,
    Campaign,
    OptOutSettings,
    Step,
)
from drip.domain.enums import CampaignKind, Channel, OptOutMode, SenderRole
from drip.domain.message import TEMPLATE_VARIABLES, template_problems
from drip.domain.window import SendWindow
from drip.errors import CampaignError, ValidationError

CAMPAIGN_FIELDS = ("name", "kind", "sender", "stop_on_reply", "send_window", "opt_out", "steps")
CAMPAIGN_REQUIRED = ("name", "kind", "steps")
STEP_FIELDS = ("id", "day", "at", "channel", "subject", "body", "opt_out")
STEP_REQUIRED = ("day", "body")
OPT_OUT_FIELDS = ("interval_days", "footer")
MAX_DAY = 3650
MAX_INTERVAL_DAYS = 365
ACCOUNT_FILE_NAMES = frozenset({"account.yaml", "account.yml"})
CAMPAIGN_SUFFIXES = (".yaml", ".yml")

T = TypeVar("T")


# -- where things are written (for lint and preview) -------------------------


@dataclass(frozen=True, slots=True, eq=False)
class TextSource:
    """A text field's value and where it is written, to locate positions inside it."""

    source: YamlSource
    node: yaml.Node
    value: str

    @property
    def start(self) -> Position:
        return self.source.at(self.node)

    def find(self, offset: int, needle: str) -> Position:
        """Where ``needle``, at ``offset`` of the value, is written (else the value's start)."""
        return self.source.find(self.node, self.value, offset, needle)


@dataclass(frozen=True, slots=True, eq=False)
class StepSource:
    """Where one step and its fields are written."""

    start: Position
    day: Position
    body: TextSource
    subject: TextSource | None = None
    at: Position | None = None


@dataclass(frozen=True, slots=True, eq=False)
class CampaignFile:
    """A campaign loaded from a file, with the positions lint and preview point at."""

    path: Path
    source: YamlSource
    campaign: Campaign
    name: Position
    steps: tuple[StepSource, ...]
    footer: TextSource | None = None


@dataclass(slots=True)
class LoadResult:
    """What a set of files gave: good campaigns by name, and every located problem.

    ``paths`` are the campaign files read (good or bad), ``files`` the ones
    that loaded, in the same order; ``account_files`` are the account
    settings files met in folders or among the paths (not loaded here).
    """

    campaigns: dict[str, Campaign] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[CampaignFile] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    account_files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# -- public entry points ----------------------------------------------------


def load_campaign(path: Path | str) -> Campaign:
    """The campaign of one file; ``CampaignError`` lists every problem of the file."""
    return load_campaign_file(path).campaign


def load_campaign_file(path: Path | str) -> CampaignFile:
    """Like ``load_campaign``, with the positions of the fields kept."""
    source = YamlSource.read(path)
    loaded = parse_campaign(source)
    if source.errors or loaded is None:
        raise CampaignError(source.errors or [f"{source.label}:1:1: error: not a campaign"])
    return loaded


def load_campaigns(folder_or_paths: Path | str | Iterable[Path | str]) -> LoadResult:
    """Every campaign of the given folders and files; bad files load nothing, good ones load.

    Two files with the same campaign name: the second one is in error (at its
    ``name:``) and loads nothing.
    """
    result = LoadResult()
    campaign_paths = discover(folder_or_paths, result)
    names: dict[str, Path] = {}
    for path in campaign_paths:
        result.paths.append(path)
        source = YamlSource.read(path)
        loaded = parse_campaign(source)
        if loaded is not None and not source.errors:
            name = loaded.campaign.name
            if name in names:
                source.error(
                    loaded.name,
                    f"duplicate campaign name {name!r}: {names[name]} already defines it; "
                    "campaign names must be unique",
                )
            else:
                names[name] = path
                result.campaigns[name] = loaded.campaign
                result.files.append(loaded)
        result.errors.extend(source.errors)
        result.warnings.extend(source.warnings)
    return result


def discover(folder_or_paths: Path | str | Iterable[Path | str], result: LoadResult) -> list[Path]:
    """The campaign files named by folders and paths, each once.

    Account files, paths that do not exist and folders without campaigns are
    recorded on ``result``.
    """
    items: list[Path | str] = (
        [folder_or_paths] if isinstance(folder_or_paths, Path | str) else list(folder_or_paths)
    )
    campaigns: list[Path] = []
    accounts: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CAMPAIGN_SUFFIXES
            )
            for p in found:
                (accounts if p.name.lower() in ACCOUNT_FILE_NAMES else campaigns).append(p)
            if not any(p.name.lower() not in ACCOUNT_FILE_NAMES for p in found):
                result.warnings.append(f"{item}:1:1: warning: no campaign files (*.yaml) here")
        elif path.is_file():
            (accounts if path.name.lower() in ACCOUNT_FILE_NAMES else campaigns).append(path)
        else:
            result.errors.append(f"{item}:1:1: error: no such file or folder")
    result.account_files = _unique(accounts)
    return _unique(campaigns)


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    out: list[Path] = []
    for p in paths:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# -- parsing ----------------------------------------------------------------


def parse_campaign(source: YamlSource) -> CampaignFile | None:
    """The campaign of ``source``, or None; every problem is recorded on ``source``."""
    root = source.compose()
    if root is None:
        return None
    fields = source.mapping(root, "the campaign")
    if fields is None:
        return None
    errors_before = source.error_count
    source.check_fields(
        fields, root, "the campaign", allowed=CAMPAIGN_FIELDS, required=CAMPAIGN_REQUIRED
    )

    name = _opt(fields, "name", lambda n: source.string(n, "name"))
    kind = _opt(fields, "kind", lambda n: source.choice(n, "kind", _values(CampaignKind)))
    sender = _opt(fields, "sender", lambda n: source.choice(n, "sender", _values(SenderRole)))
    stop_on_reply = _opt(fields, "stop_on_reply", lambda n: source.boolean(n, "stop_on_reply"))
    window = _opt(fields, "send_window", lambda n: _send_window(source, n, "send_window"))
    opt_out, footer = _opt_out(source, fields.get("opt_out"))
    steps: list[tuple[Step, StepSource]] | None = None
    if "steps" in fields and not is_null(fields["steps"].value):
        steps = _steps(source, fields["steps"].value)

    if steps is not None:  # issue 11: 1,600 characters with the footer (Twilio 21617)
        _check_lengths(source, steps, footer.value if footer is not None else "")
    if source.error_count > errors_before or name is None or kind is None or steps is None:
        return None
    try:
        campaign = Campaign(
            name=name.strip(),
            kind=CampaignKind(kind),
            steps=tuple(s for s, _ in steps),
            sender=SenderRole(sender) if sender else SenderRole.AGENT,
            stop_on_reply=bool(stop_on_reply),
            send_window=window,
            opt_out=opt_out,
            source=source.label,
        )
    except ValidationError as exc:  # pragma: no cover - every rule is checked above, located
        source.error(root, str(exc))
        return None
    return CampaignFile(
        path=source.path,
        source=source,
        campaign=campaign,
        name=source.at(fields["name"].value),
        steps=tuple(s for _, s in steps),
        footer=footer,
    )


def _check_lengths(source: YamlSource, steps: list[tuple[Step, StepSource]], footer: str) -> None:
    """An error at each SMS step whose text with ``footer`` can pass 1,600 characters.

    The campaign's own footer when it has one, else the body alone: the
    account's footer is only known to lint (:mod:`drip.campaigns.lint`).
    """
    from drip.campaigns.fidelity import length_problem

    for step, where in steps:
        if step.channel is Channel.SMS:
            problem = length_problem(step.body, footer, "")
            if problem is not None:
                source.error(where.body.start, f"step {step.position}: {problem}")


def _values(
    enum: type[CampaignKind] | type[SenderRole] | type[Channel] | type[OptOutMode],
) -> list[str]:
    return [e.value for e in enum]


def _opt(fields: dict[str, Field], name: str, read: Callable[[yaml.Node], T | None]) -> T | None:
    """Read an optional field; absent or explicit null gives None."""
    item = fields.get(name)
    if item is None or is_null(item.value):
        return None
    return read(item.value)


def _send_window(source: YamlSource, node: yaml.Node, what: str) -> SendWindow | None:
    found = read_window(source, node, what)
    if found is None:
        return None
    return federal_window_problem(source, node, what, found)


def _opt_out(source: YamlSource, item: Field | None) -> tuple[OptOutSettings, TextSource | None]:
    if item is None or is_null(item.value):
        return OptOutSettings(), None
    node = item.value
    if isinstance(node, yaml.ScalarNode) and node.tag == STR:
        source.error(
            node,
            "the campaign's opt_out is a mapping (interval_days, footer); "
            f"opt_out: {node.value} belongs on a step",
        )
        return OptOutSettings(), None
    fields = source.mapping(node, "opt_out")
    if fields is None:
        return OptOutSettings(), None
    source.check_fields(fields, node, "opt_out", allowed=OPT_OUT_FIELDS)
    interval = _opt(
        fields,
        "interval_days",
        lambda n: source.integer(n, "opt_out.interval_days", minimum=1, maximum=MAX_INTERVAL_DAYS),
    )
    footer: TextSource | None = None
    text = _opt(fields, "footer", lambda n: source.string(n, "opt_out.footer"))
    if text is not None:
        footer = TextSource(source, fields["footer"].value, text)
        _check_text(footer, "opt_out.footer")
        if not mentions_opt_out(text):
            source.error(
                footer.node,
                "opt_out.footer must tell how to opt out: name a keyword such as "
                '"reply STOP" or "reply END"',
            )
    settings = OptOutSettings(
        interval_days=interval if interval is not None else DEFAULT_INTERVAL_DAYS,
        footer=text,
    )
    return settings, footer


def _steps(source: YamlSource, node: yaml.Node) -> list[tuple[Step, StepSource]] | None:
    items = source.sequence(node, "steps")
    if items is None:
        return None
    if not items:
        source.error(node, "steps must list at least one step")
        return None
    steps: list[tuple[Step, StepSource]] = []
    ids: dict[str, tuple[int, Position]] = {}
    # Explicit ids are compared first, on the raw YAML, so that a duplicate is
    # reported in the same round as the other errors of those steps.
    reported = _raw_duplicate_ids(source, items)
    ok = not reported
    for position, item in enumerate(items, start=1):
        parsed = _step(source, item, position)
        if parsed is None:
            ok = False
            continue
        step, where, id_node = parsed
        first = ids.get(step.id)
        if first is not None and position in reported:
            continue
        if first is not None:
            how = "" if id_node is not None else f" (a step without id has its position {step.id})"
            source.error(
                id_node if id_node is not None else where.start,
                f"step {position}: duplicate step id {step.id!r}{how}; "
                f"step {first[0]} on line {first[1].line} has it too",
            )
            ok = False
            continue
        ids[step.id] = (position, where.start)
        steps.append((step, where))
    return steps if ok else None


def _raw_duplicate_ids(source: YamlSource, items: list[yaml.Node]) -> set[int]:
    """Report explicit step ids given twice; the positions of the repeats."""
    seen: dict[str, tuple[int, int]] = {}
    repeats: set[int] = set()
    for position, item in enumerate(items, start=1):
        if not isinstance(item, yaml.MappingNode):
            continue
        for key, value in item.value:
            if key.value != "id" or not isinstance(value, yaml.ScalarNode):
                continue
            raw = str(value.value).strip()
            first = seen.get(raw)
            if first is None:
                seen[raw] = (position, value.start_mark.line + 1)
                continue
            repeats.add(position)
            source.error(
                value,
                f"step {position}: duplicate step id {raw!r}; "
                f"step {first[0]} on line {first[1]} has it too",
            )
    return repeats


def _step(
    source: YamlSource, node: yaml.Node, position: int
) -> tuple[Step, StepSource, yaml.Node | None] | None:
    what = f"step {position}"
    fields = source.mapping(node, what)
    if fields is None:
        return None
    errors_before = source.error_count
    source.check_fields(fields, node, what, allowed=STEP_FIELDS, required=STEP_REQUIRED)

    step_id = _opt(fields, "id", lambda n: _step_id(source, n, what))
    day = _opt(
        fields, "day", lambda n: source.integer(n, f"{what}: day", minimum=0, maximum=MAX_DAY)
    )
    channel = _opt(
        fields, "channel", lambda n: source.choice(n, f"{what}: channel", _values(Channel))
    )
    at = _opt(fields, "at", lambda n: source.time_of_day(n, f"{what}: at"))
    opt_out = _opt(fields, "opt_out", lambda n: _step_opt_out(source, n, what))
    body = _opt(fields, "body", lambda n: source.string(n, f"{what}: body"))
    body_source = TextSource(source, fields["body"].value, body) if body is not None else None
    if body_source is not None:
        _check_text(body_source, f"{what} body")

    # The channel the step has: sms when not given, None when the value is invalid.
    given = "channel" in fields and not is_null(fields["channel"].value)
    effective = channel if given else Channel.SMS.value
    subject_item = fields.get("subject")
    subject: str | None = None
    subject_source: TextSource | None = None
    if subject_item is not None and not is_null(subject_item.value):
        if effective == Channel.SMS.value:
            hint = "" if given else " (for an email step add channel: email)"
            source.error(subject_item.key, f"{what}: an sms step has no subject{hint}")
        else:
            subject = source.string(subject_item.value, f"{what}: subject")
            if subject is not None:
                subject_source = TextSource(source, subject_item.value, subject)
                _check_text(subject_source, f"{what} subject")
    elif effective == Channel.EMAIL.value:
        source.error(
            subject_item.value if subject_item is not None else node,
            f"{what}: an email step needs a subject",
        )

    if source.error_count > errors_before or day is None or body_source is None:
        return None
    id_node = fields["id"].value if "id" in fields and step_id is not None else None
    try:
        step = Step(
            id=step_id if step_id is not None else str(position),
            position=position,
            day=day,
            body=body_source.value,
            channel=Channel(channel) if channel else Channel.SMS,
            at=at,
            subject=subject,
            opt_out=OptOutMode(opt_out) if opt_out else OptOutMode.RULES,
        )
    except ValidationError as exc:  # pragma: no cover - every rule is checked above, located
        source.error(node, f"{what}: {exc}")
        return None
    where = StepSource(
        start=source.at(node),
        day=source.at(fields["day"].value),
        body=body_source,
        subject=subject_source,
        at=source.at(fields["at"].value) if at is not None else None,
    )
    return step, where, id_node


def _step_id(source: YamlSource, node: yaml.Node, what: str) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int"):
        return str(node.value).strip()
    value = source.string(node, f"{what}: id")
    return value.strip() if value is not None else None


def _step_opt_out(source: YamlSource, node: yaml.Node, what: str) -> str | None:
    if isinstance(node, yaml.MappingNode):
        source.error(
            node,
            f"{what}: opt_out must be always or rules; "
            "interval_days and footer go under the campaign's opt_out",
        )
        return None
    return source.choice(node, f"{what}: opt_out", _values(OptOutMode))


def _check_text(text: TextSource, what: str) -> None:
    """Unknown or malformed template variables and shortened links, each located."""
    source, value = text.source, text.value
    for problem in template_problems(value, TEMPLATE_VARIABLES):
        source.error(text.find(problem.offset, problem.token), f"{what}: {problem.message}")
    for link in find_links(value):
        domain = shortener_of(link.host)
        if domain is not None:
            source.error(
                text.find(link.offset, link.text),
                f"{what}: {link.text} goes through the link shortener {domain}; carriers "
                "filter shortened links, so use the full address on your own domain",
            )
