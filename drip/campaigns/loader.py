"""Campaign YAML (version 1, docs/campaigns.md) to validated ``Campaign`` values.

Every problem of a file is reported, not only the first, as
``path:line:col: error: message``; a file with any error loads nothing.

Choices written down here (the format leaves them open):

- A step without ``id`` gets its 1-based position in the file as its id
  (``"1"``, ``"2"``, ...), and ``Step.position`` is that same 1-based
  position. An ``id`` may be written as text or as a whole number
  (``id: 3`` is the id ``"3"``).
- ``day`` is a whole number from 0 to 3650 (ten years); quoted numbers,
  decimals and booleans are wrong types.
- ``opt_out.interval_days`` is a whole number from 1 to 365.
- A campaign's ``opt_out.footer`` override must tell how to opt out (one of
  the STOP-family keywords, e.g. "reply STOP" or "reply end").
- A folder is read without descending into subfolders: its ``*.yaml`` and
  ``*.yml`` files in name order, except ``account.yaml`` / ``account.yml``,
  which hold the account settings (``drip.campaigns.account_file``).
- Links are found with or without a scheme (``bit.ly/x``, ``https://www.bit.ly/x``)
  and compared by host, case-insensitively; a subdomain of a shortener is a
  shortener. The list is ``drip/data/link_shorteners.txt``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path
from typing import TypeVar

import yaml

from drip.campaigns.links import find_links, mentions_opt_out, shortener_of
from drip.campaigns.reply_file import read_on_reply
from drip.campaigns.rules_file import send_window
from drip.campaigns.triggers_file import AUTOMATION_FIELDS, read_automation
from drip.campaigns.yamlsource import (
    STR,
    Field,
    Position,
    Severity,
    YamlSource,
    is_null,
)
from drip.domain.campaign import (
    DEFAULT_INTERVAL_DAYS,
    Campaign,
    OnReply,
    OptOutSettings,
    Step,
)
from drip.domain.enums import CampaignKind, Channel, OptOutMode, SenderRole
from drip.domain.frequency import parse_duration
from drip.domain.message import TEMPLATE_VARIABLES, template_problems
from drip.domain.window import SendWindow
from drip.errors import CampaignError, ValidationError

CAMPAIGN_FIELDS = (
    "name",
    "kind",
    "sender",
    "stop_on_reply",
    "on_reply",
    "resume_after",
    "send_window",
    "opt_out",
    "steps",
    *AUTOMATION_FIELDS,
)
CAMPAIGN_REQUIRED = ("name", "kind", "steps")
STEP_FIELDS = ("id", "day", "at", "channel", "subject", "body", "opt_out", "expires_after")
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
class StepDraft:
    """One step as far as it could be read, even in a file with errors (lint warns on it).

    A field that is missing or wrong is None; ``id`` is the id given, else the
    step's position.
    """

    position: int
    id: str
    start: Position
    day: int | None
    day_at: Position
    channel: Channel | None
    at: time | None
    at_pos: Position | None
    body: TextSource | None
    subject: TextSource | None
    expires_after: timedelta | None = None
    expires_pos: Position | None = None

    @property
    def name(self) -> str:
        """``step 2``, or ``step 2 (day-15-check-in)`` when it has an id of its own."""
        position = str(self.position)
        return f"step {position}" if self.id == position else f"step {position} ({self.id})"


@dataclass(frozen=True, slots=True, eq=False)
class CampaignDraft:
    """What a campaign file gave, with or without errors: for lint and the cross-file checks.

    ``file`` is the loaded campaign when the file has no error of its own.
    """

    source: YamlSource
    name: str | None
    name_at: Position | None
    steps: tuple[StepDraft, ...]
    send_window: SendWindow | None
    footer: TextSource | None
    file: CampaignFile | None


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

    ``paths`` are the campaign files read (good or bad), ``drafts`` what each
    of them gave (one per file whose YAML could be read), ``files`` the ones
    that loaded, in the same order; ``account_files`` are the account
    settings files met in folders or among the paths (not loaded here).
    ``sources`` hold each campaign file's own problems, located; ``general``
    the problems of paths (missing, empty folder), which belong to no file.
    """

    campaigns: dict[str, Campaign] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[CampaignFile] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    account_files: list[Path] = field(default_factory=list)
    drafts: list[CampaignDraft] = field(default_factory=list)
    sources: list[YamlSource] = field(default_factory=list)
    general: list[tuple[Severity, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def problems(self) -> list[tuple[Severity, str]]:
        """Every problem: the paths' first, then file by file, each in position order."""
        return self.general + [p for source in self.sources for p in source.problems]


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

    Two files with the same campaign name: one of them keeps it, the other is
    in error (at its ``name:``) and loads nothing. The name is compared even
    when a file has other errors, so that the clash shows in the same round
    as them; a file that loads keeps its name before one that cannot, so a
    broken copy never stops the good file from loading.
    """
    result = LoadResult()
    for path in discover(folder_or_paths, result):
        result.paths.append(path)
        source = YamlSource.read(path)
        result.sources.append(source)
        draft = read_campaign(source)
        if draft is not None:
            result.drafts.append(draft)
    owners: dict[str, CampaignDraft] = {}
    for draft in sorted(result.drafts, key=lambda d: d.file is None):  # stable: files in order
        if draft.name is None or draft.name_at is None:
            continue
        owner = owners.setdefault(draft.name, draft)
        if owner is not draft:
            draft.source.error(
                draft.name_at,
                f"duplicate campaign name {draft.name!r}: {owner.source.label} already defines "
                "it; campaign names must be unique",
            )
    _check_group_priorities(result.drafts)
    for draft in result.drafts:
        if draft.file is not None and not draft.source.error_count:
            result.campaigns[draft.file.campaign.name] = draft.file.campaign
            result.files.append(draft.file)
    result.errors = [line for severity, line in result.problems() if severity == "error"]
    result.warnings = [line for severity, line in result.problems() if severity == "warning"]
    return result


def _check_group_priorities(drafts: list[CampaignDraft]) -> None:
    """Two campaigns of one group with the same priority: an error at the second one's name."""
    first: dict[tuple[str, int], CampaignDraft] = {}
    for draft in drafts:
        if draft.file is None or draft.name_at is None:
            continue
        auto = draft.file.campaign.automation
        if auto.group is None:
            continue
        owner = first.setdefault((auto.group, auto.priority), draft)
        if owner is not draft:
            draft.source.error(
                draft.name_at,
                f"group {auto.group!r}: {owner.source.label} has the same priority "
                f"({auto.priority}); give the campaigns of one group different priorities",
            )


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
                result.general.append(
                    ("warning", f"{item}:1:1: warning: no campaign files (*.yaml) here")
                )
        elif path.is_file():
            (accounts if path.name.lower() in ACCOUNT_FILE_NAMES else campaigns).append(path)
        else:
            result.general.append(("error", f"{item}:1:1: error: no such file or folder"))
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
    draft = read_campaign(source)
    return draft.file if draft is not None else None


def read_campaign(source: YamlSource) -> CampaignDraft | None:
    """What ``source`` gives, with or without errors; None when its YAML is no mapping.

    Every problem is recorded on ``source``; the draft's ``file`` is set only
    when there is none.
    """
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
    on_reply, resume_after = read_on_reply(source, fields, stop_on_reply)
    window = _opt(fields, "send_window", lambda n: _send_window(source, n, "send_window"))
    opt_out, footer = _opt_out(source, fields.get("opt_out"))
    automation = read_automation(source, fields)
    steps: list[tuple[Step, StepSource]] | None = None
    drafts: list[StepDraft] = []
    if "steps" in fields and not is_null(fields["steps"].value):
        steps, drafts = _steps(source, fields["steps"].value)
    # issue 11: 1,600 characters with the footer (Twilio 21617)
    _check_lengths(source, drafts, footer.value if footer is not None else "")

    draft = CampaignDraft(
        source=source,
        name=name.strip() if name is not None else None,
        name_at=source.at(fields["name"].value) if name is not None else None,
        steps=tuple(drafts),
        send_window=window,
        footer=footer,
        file=None,
    )
    if (
        source.error_count > errors_before
        or name is None
        or kind is None
        or steps is None
        or automation is None
    ):
        return draft
    try:
        campaign = Campaign(
            name=name.strip(),
            kind=CampaignKind(kind),
            steps=tuple(s for s, _ in steps),
            sender=SenderRole(sender) if sender else SenderRole.AGENT,
            stop_on_reply=bool(stop_on_reply) and on_reply is not OnReply.PAUSE,
            send_window=window,
            opt_out=opt_out,
            source=source.label,
            automation=automation,
            on_reply=on_reply,
            resume_after=resume_after,
        )
    except ValidationError as exc:  # pragma: no cover - every rule is checked above, located
        source.error(root, str(exc))
        return draft
    loaded = CampaignFile(
        path=source.path,
        source=source,
        campaign=campaign,
        name=source.at(fields["name"].value),
        steps=tuple(s for _, s in steps),
        footer=footer,
    )
    return replace(draft, file=loaded)


def _check_lengths(source: YamlSource, steps: list[StepDraft], footer: str) -> None:
    """An error at each SMS step whose text with ``footer`` can pass 1,600 characters.

    The campaign's own footer when it has one, else the body alone: the
    account's footer is only known to lint (:mod:`drip.campaigns.lint`).
    """
    from drip.campaigns.fidelity import length_problem

    for step in steps:
        if step.channel is Channel.SMS and step.body is not None:
            problem = length_problem(step.body.value, footer, "")
            if problem is not None:
                source.error(step.body.start, f"step {step.position}: {problem}")


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
    from drip.rules import bundled_pack  # package data, loaded and validated once

    return send_window(source, node, what, bundled_pack())


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


def _steps(
    source: YamlSource, node: yaml.Node
) -> tuple[list[tuple[Step, StepSource]] | None, list[StepDraft]]:
    """The steps when every one is good (else None), and every step as far as it was read."""
    items = source.sequence(node, "steps")
    if items is None:
        return None, []
    if not items:
        source.error(node, "steps must list at least one step")
        return None, []
    steps: list[tuple[Step, StepSource]] = []
    drafts: list[StepDraft] = []
    ids: dict[str, tuple[int, Position]] = {}
    # Explicit ids are compared first, on the raw YAML, so that a duplicate is
    # reported in the same round as the other errors of those steps.
    reported = _raw_duplicate_ids(source, items)
    ok = not reported
    for position, item in enumerate(items, start=1):
        read = _step(source, item, position)
        if read is None:
            ok = False
            continue
        draft, parsed = read
        drafts.append(draft)
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
    return (steps if ok else None), drafts


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
) -> tuple[StepDraft, tuple[Step, StepSource, yaml.Node | None] | None] | None:
    """The step as far as it reads, and the step itself when it has no error.

    None when the step is not a mapping at all.
    """
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
    expires_after = _opt(fields, "expires_after", lambda n: _duration(source, n, what))
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

    draft = StepDraft(
        position=position,
        id=step_id if step_id is not None else str(position),
        start=source.at(node),
        day=day,
        day_at=source.at(fields["day"].value if "day" in fields else node),
        channel=Channel(effective) if effective is not None else None,
        at=at,
        at_pos=source.at(fields["at"].value) if at is not None else None,
        body=body_source,
        subject=subject_source,
        expires_after=expires_after,
        expires_pos=source.at(fields["expires_after"].value) if expires_after else None,
    )
    if source.error_count > errors_before or day is None or body_source is None:
        return draft, None
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
            expires_after=expires_after,
        )
    except ValidationError as exc:  # pragma: no cover - every rule is checked above, located
        source.error(node, f"{what}: {exc}")
        return draft, None
    where = StepSource(
        start=source.at(node),
        day=source.at(fields["day"].value),
        body=body_source,
        subject=subject_source,
        at=source.at(fields["at"].value) if at is not None else None,
    )
    return draft, (step, where, id_node)


def _duration(source: YamlSource, node: yaml.Node, what: str) -> timedelta | None:
    """``expires_after``: a duration such as ``2d``, ``6h`` or ``90m``."""
    text = source.string(node, f"{what}: expires_after")
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValidationError as exc:
        source.error(node, f"{what}: expires_after {exc}")
        return None


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
    cut = source.comment_after(text.node)
    if cut is not None:
        source.warning(
            cut,
            f"{what}: the text stops before this '#', which starts a YAML comment when "
            'the text is not quoted; put the whole text in double quotes: "..."',
        )
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
