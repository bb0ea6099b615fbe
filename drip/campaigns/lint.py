"""``drip lint``: every error of the campaign and account files, and warnings.

Errors are the loaders' (a file with an error loads nothing). Warnings point
at what loads but costs money or trust, each as
``path:line:col: warning: message``:

- the first SMS step of a campaign does not introduce the sender (neither
  ``{AgentFirstName}`` nor ``{CompanyName}`` nor the company's name);
- an SMS step that, with the footer appended, runs past 2 segments;
- characters that force UCS-2 (curly quotes, emoji, ...), named with their
  code point and what they cost;
- plain ``http://`` links;
- steps not listed in day order;
- an SMS step whose ``at`` lies outside the send window (it would wait);
- an ``expires_after`` some contacts' texts cannot meet (a state's window, the
  night the window is closed), and, as an error, one no text of the step can
  meet (:mod:`drip.campaigns.expiry_lint`).

Sizes are the worst case: every SMS step is measured with the footer
appended (the campaign's ``opt_out.footer``, else the account's), since
whether a given send carries it is only known at fire time, and with the
variables filled in by ``SAMPLE_VALUES``, long but ordinary names
(Jacqueline Montgomery texted by Christopher Richardson, (617) 555-0123) and
the account's company name.

``account.yaml`` met in a folder or among the paths is loaded as the account
settings (its errors are reported); the ``account`` argument, when given, is
the one used for the footer and the company name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from drip.campaigns.account_file import parse_account
from drip.campaigns.expiry_lint import expiry_errors, expiry_warnings
from drip.campaigns.fidelity import (
    NO_REPLY_SENDER,
    POSTAL_ADDRESS_MISSING,
    has_reply_sender,
    length_problem,
)
from drip.campaigns.links import find_links
from drip.campaigns.loader import CampaignDraft, StepDraft, TextSource, load_campaigns
from drip.campaigns.yamlsource import Position, Severity, YamlSource
from drip.domain.account import AccountSettings
from drip.domain.enums import Channel
from drip.domain.message import (
    GSM7_MULTI,
    UCS2_MULTI,
    SmsSize,
    describe_char,
    is_gsm7,
    render,
    sms_size,
    with_footer,
)

#: Values the variables get when lint measures a text: long, but real, names.
SAMPLE_VALUES: Mapping[str, str] = {
    "VisitorFirstName": "Jacqueline",
    "VisitorLastName": "Montgomery",
    "AgentFirstName": "Christopher",
    "AgentLastName": "Richardson",
    "AgentPhone": "(617) 555-0123",
}
MAX_SEGMENTS = 2

#: GSM-7 stand-ins for the characters that most often sneak in from word processors.
GSM_LOOKALIKES: Mapping[str, str] = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}


def sample_values(account: AccountSettings) -> dict[str, str]:
    """``SAMPLE_VALUES`` with the account's company name."""
    return {**SAMPLE_VALUES, "CompanyName": account.company}


@dataclass(slots=True)
class LintReport:
    """The outcome of ``lint_paths``; ``files`` counts the YAML files read.

    ``problems`` are every error and warning in the order to show them: the
    paths' own, then file by file, each file's in position order;
    ``errors`` and ``warnings`` are the same lines by severity.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[tuple[Severity, str]] = field(default_factory=list)
    files: int = 0
    campaigns: int = 0
    account: AccountSettings = field(default_factory=AccountSettings)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def exit_code(self, *, strict: bool = False) -> int:
        """0 when clean, 1 on errors (``strict``: on warnings too)."""
        return 1 if self.errors or (strict and self.warnings) else 0

    def summary(self) -> str:
        """One line such as ``3 files, 2 campaigns: 0 errors, 1 warning``."""
        return (
            f"{_count(self.files, 'file')}, {_count(self.campaigns, 'campaign')}: "
            f"{_count(len(self.errors), 'error')}, {_count(len(self.warnings), 'warning')}"
        )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def lint_paths(
    paths: Path | str | Iterable[Path | str], *, account: AccountSettings | None = None
) -> LintReport:
    """Check campaign files and folders (and account.yaml where present), all in one round.

    Every file is checked as far as it can be read: the warnings of a file
    with errors, and the names that clash across files, show with its errors.
    """
    loaded = load_campaigns(paths)
    found: AccountSettings | None = None
    account_sources: list[YamlSource] = []
    for path in loaded.account_files:
        source = YamlSource.read(path)
        account_sources.append(source)
        settings = parse_account(source)
        if settings is not None and found is None:
            found = settings
    settings_used = account or found or AccountSettings()
    for draft in loaded.drafts:
        add_findings(draft, settings_used)
    if found is not None and not has_reply_sender(found):
        account_sources[0].error(Position(1, 1), NO_REPLY_SENDER)
    problems = loaded.general + [
        p for source in [*loaded.sources, *account_sources] for p in source.problems
    ]
    return LintReport(
        errors=[line for severity, line in problems if severity == "error"],
        warnings=[line for severity, line in problems if severity == "warning"],
        problems=problems,
        files=len(loaded.paths) + len(loaded.account_files),
        campaigns=sum(1 for d in loaded.drafts if d.file is not None and not d.source.error_count),
        account=settings_used,
    )


def add_findings(draft: CampaignDraft, account: AccountSettings) -> None:
    """Record lint's errors and warnings of one campaign file on its source."""
    for where, message in fidelity_errors(draft, account):
        draft.source.error(where, message)
    for where, message in campaign_warnings(draft, account):
        draft.source.warning(where, message)


def fidelity_errors(draft: CampaignDraft, account: AccountSettings) -> list[tuple[Position, str]]:
    """Errors that need the account: length with its footer, email without a postal address.

    A length the loader already found too long (with the campaign's footer,
    or the body alone) is not reported twice.
    """
    found: list[tuple[Position, str]] = []
    own_footer = draft.footer.value if draft.footer is not None else ""
    footer = own_footer or account.footer
    for step in draft.steps:
        if step.channel is Channel.SMS and step.body is not None:
            if length_problem(step.body.value, own_footer, "") is not None:
                continue
            problem = length_problem(step.body.value, footer, account.company)
            if problem is not None:
                found.append((step.body.start, f"{step.name}: {problem}"))
        elif step.channel is Channel.EMAIL and not account.postal_address:
            found.append((step.start, f"{step.name}: {POSTAL_ADDRESS_MISSING}"))
        found.extend(expiry_errors(step, draft.send_window or account.send_window))
    return found


def campaign_warnings(draft: CampaignDraft, account: AccountSettings) -> list[tuple[Position, str]]:
    """The warnings of one campaign file, as far as its steps could be read."""
    found: list[tuple[Position, str]] = []
    footer = (draft.footer.value if draft.footer is not None else "") or account.footer
    values = sample_values(account)
    window = draft.send_window or account.send_window
    steps = draft.steps

    found.extend(_intro_warnings(steps, account.company))

    latest: StepDraft | None = None
    for step in steps:
        if step.day is not None:
            if latest is not None and latest.day is not None and step.day < latest.day:
                found.append(
                    (
                        step.day_at,
                        f"{step.name} is on day {step.day} but listed after {latest.name} "
                        f"on day {latest.day}; list the steps in day order",
                    )
                )
            if latest is None or latest.day is None or step.day >= latest.day:
                latest = step
        for text in (step.body, step.subject):
            if text is not None:
                found.extend(_http_links(text, step.name))
        if step.channel is not Channel.SMS:
            continue
        found.extend(expiry_warnings(step, window, account))
        if step.body is not None:
            found.extend(_size_warnings(step.name, step.body, footer, values))
        if (
            step.at is not None
            and step.at_pos is not None
            and not (window.start <= step.at < window.end)
        ):
            found.append(
                (
                    step.at_pos,
                    f"{step.name}: at {step.at:%H:%M} is outside the send window {window}; "
                    f"the text will wait until {window.start:%H:%M}",
                )
            )
    if draft.footer is not None:
        found.extend(_http_links(draft.footer, "opt_out.footer"))
        ucs2 = [c for c in dict.fromkeys(draft.footer.value) if not is_gsm7(c)]
        if ucs2:
            found.append(
                (
                    draft.footer.find(draft.footer.value.index(ucs2[0]), ucs2[0]),
                    f"opt_out.footer: {_chars(ucs2)} {'forces' if len(ucs2) == 1 else 'force'} "
                    "UCS-2 on every text that carries "
                    "the footer, which halves the room per segment",
                )
            )
    return found


_INTRODUCE = "name {AgentFirstName} or {CompanyName} so the lead knows who is texting"


def _intro_warnings(steps: tuple[StepDraft, ...], company: str) -> list[tuple[Position, str]]:
    """The campaign's first text must introduce the sender.

    Which text is first is sure only when every step's day and channel are
    valid; otherwise each text whose day or channel is still wrong may be the
    first, and so may the earliest of the others: each of those that does not
    introduce the sender is named, so that mending the day brings no new warning.
    """
    known = [s for s in steps if s.day is not None and s.channel is Channel.SMS]
    unsure = [
        s for s in steps if (s.day is None or s.channel is None) and s.channel is not Channel.EMAIL
    ]
    found: list[tuple[Position, str]] = []
    if known:
        first = min(known, key=lambda s: (s.day or 0, s.position))
        what = "the campaign's first text" if not unsure else "the first text of the valid steps"
        if first.body is not None and not _introduces(first.body.value, company):
            found.append(
                (
                    first.body.start,
                    f"{first.name} is {what} (day {first.day}) and does not introduce "
                    f"the sender: {_INTRODUCE}",
                )
            )
    for step in unsure:
        if step.body is not None and not _introduces(step.body.value, company):
            found.append(
                (
                    step.body.start,
                    f"{step.name} may be the campaign's first text once its day and channel "
                    f"are valid, and does not introduce the sender: {_INTRODUCE}",
                )
            )
    return found


def _introduces(body: str, company: str) -> bool:
    return (
        "{AgentFirstName}" in body
        or "{CompanyName}" in body
        or (bool(company) and company.lower() in body.lower())
    )


def _http_links(text: TextSource, what: str) -> list[tuple[Position, str]]:
    return [
        (
            text.find(link.offset, link.text),
            f"{what}: {link.text} is a plain http:// link; use https://",
        )
        for link in find_links(text.value)
        if link.scheme == "http"
    ]


def _size_warnings(
    name: str, body: TextSource, footer: str, values: Mapping[str, str]
) -> list[tuple[Position, str]]:
    found: list[tuple[Position, str]] = []
    rendered = render(body.value, values)
    full = with_footer(rendered, footer)
    size = sms_size(full)
    if size.segments > MAX_SEGMENTS:
        # Room for the text beside the footer (and the space between them) in 2 segments.
        gsm_room = MAX_SEGMENTS * GSM7_MULTI - sms_size(_to_gsm(footer)).units - 1
        if size.encoding == "GSM-7":
            advice = f"keep the text under {gsm_room} chars with names filled in"
        else:
            ucs_room = MAX_SEGMENTS * UCS2_MULTI - len(footer.encode("utf-16-le")) // 2 - 1
            advice = (
                f"keep the text under {ucs_room} chars with names filled in, or replace the "
                f"characters that force UCS-2 and keep it under {gsm_room}"
                if ucs_room > 0
                else f"in UCS-2 the footer alone fills {MAX_SEGMENTS} segments: replace the "
                f"characters that force UCS-2 and keep the text under {gsm_room} chars"
            )
        found.append(
            (
                body.start,
                f"{name}: {size.segments} segments with the footer "
                f"({size.encoding}, {_length(full, size)}); {advice}, so that it and the "
                f"footer fit in {MAX_SEGMENTS} segments",
            )
        )
    own = [c for c in dict.fromkeys(rendered) if not is_gsm7(c)]
    if own:
        in_gsm = sms_size(with_footer(_to_gsm(rendered), footer))
        cost = (
            f"UCS-2 makes this {_count(size.segments, 'segment')} instead of {in_gsm.segments}"
            if in_gsm.encoding == "GSM-7" and in_gsm.segments != size.segments
            else f"UCS-2 holds 70 chars per segment instead of 160 "
            f"({_count(size.segments, 'segment')} with the footer)"
        )
        first = own[0]
        offset = body.value.find(first)
        where = body.find(offset, first) if offset >= 0 else body.start
        verb = "forces" if len(own) == 1 else "force"
        found.append((where, f"{name}: {_chars(own)} {verb} UCS-2 encoding; {cost}"))
    return found


def _length(text: str, size: SmsSize) -> str:
    """``412 chars``, or ``305 chars = 307 septets`` when escapes or emoji count double."""
    if size.units == len(text):
        return f"{len(text)} chars"
    unit = "septets" if size.encoding == "GSM-7" else "UTF-16 units"
    return f"{len(text)} chars = {size.units} {unit}"


def _chars(chars: list[str]) -> str:
    described = []
    for char in chars:
        swap = GSM_LOOKALIKES.get(char)
        described.append(describe_char(char) + (f' (use "{swap}")' if swap else ""))
    return ", ".join(described)


def _to_gsm(text: str) -> str:
    """``text`` with each non-GSM-7 character replaced by a GSM-7 stand-in."""
    return "".join(c if is_gsm7(c) else GSM_LOOKALIKES.get(c, "?") for c in text)
