"""Replay results as a text timeline, one JSON document, or a self-contained HTML page.

Text: per scenario, every outbound message (local time, from, channel, kind,
footer and the rule that decided it, the first words), the scenario's events
and the decisions not to send (skipped, deferred, failed, cancelled) with
their reasons, then the verdict; a failed expectation is printed beside the
message sent in its place, with the decisions around it.

JSON (``--json``): one document on standard output, see :func:`as_json`.

HTML (``--html``): one page with no external resource at all (inline CSS,
inline JavaScript, inline SVG; no font, image, script or style is fetched,
and its Content-Security-Policy forbids any), one lane per scenario on a
time axis of days since each start with the calendar dates, drawn on the
server by :mod:`drip.replay.lanes` (the console's contact page uses the same
renderer; the script only adds filters and a tooltip). Marks: a filled circle is a text with the
footer, a hollow one a text without it (blue: agent, teal: concierge), a
purple diamond a compliance reply, a green envelope an email, a red cross a
skipped or failed send, an orange arrow a deferral (a dashed line leads to
the time it was deferred to), a grey bar a scenario event. Every mark tells
its details on hover (an SVG ``<title>`` and a tooltip). Below the chart, the
same facts as plain tables, one per scenario.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drip.replay.runner import (
    DecisionRecord,
    Happening,
    Mismatch,
    OutMessage,
    ScenarioResult,
    decisions_near,
)
from drip.replay.scenario import Expectation

if TYPE_CHECKING:
    # The lanes (and their CSS and script) are for the HTML page only: imported there,
    # not on every ``drip replay`` that prints its text report.
    from drip.replay.lanes import Lane, Mark

FIRST_WORDS = 56
JSON_VERSION = 1
_MARK = {
    "skipped": "x",
    "deferred": ">",
    "failed": "!",
    "cancelled": "-",
    "rescheduled": "~",
    "unknown": "?",
}


# -- words ---------------------------------------------------------------------------


def first_words(text: str, limit: int = FIRST_WORDS) -> str:
    """The start of ``text`` on one line, cut at a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut + "..."


def footer_words(m: OutMessage) -> str:
    """``footer F3``, ``no footer F4``, ``no footer (compliance)``, ``email``."""
    if m.channel.value == "email":
        return "email"
    rule = m.footer_rule or "?"
    if rule == "compliance":
        return "no footer (compliance)"
    return f"footer {rule}" if m.footer else f"no footer {rule}"


def local_stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M %Z}"


def message_line(m: OutMessage) -> str:
    text = f"[{m.subject}] " + first_words(m.body, 40) if m.subject else first_words(m.body)
    if m.status in ("failed", "undelivered"):  # the carrier gave it back (e.g. 30036, expired)
        text = f"({m.status} {m.error_code or ''}) ".replace(" )", ")") + text
    return (
        f"{m.position:>3} {m.day:>4}  {local_stamp(m.local):<22} {m.sender.value:<9} "
        f"{m.channel.value:<5} {m.kind.value:<24} {footer_words(m):<22} {text}"
    )


def what_of(d: DecisionRecord) -> str:
    """``campaign sms day-45-market-update (smart-drip-new-lead)`` or ``bulk sms``."""
    step = f" {d.step}" if d.step else ""
    campaign = f" ({d.campaign})" if d.campaign else ""
    return f"{d.kind.value} {d.channel.value}{step}{campaign}"


def decision_line(d: DecisionRecord) -> str:
    mark = _MARK.get(d.outcome, "?")
    return (
        f"  {mark} {d.day:>4}  {local_stamp(d.local):<22} {d.outcome:<9} {what_of(d)}: {d.reason}"
    )


def happening_line(h: Happening) -> str:
    return f"  * {h.day:>4}  {local_stamp(h.local):<22} {h.what:<9} {h.text}"


@dataclass(frozen=True, slots=True)
class _Row:
    at: datetime
    order: int
    text: str


def timeline(result: ScenarioResult) -> Iterator[str]:
    """The lines of one scenario's timeline, without the verdict."""
    s = result.scenario
    c = s.contact
    reach = ", ".join(x for x in (c.phone, c.email) if x)
    zone_from = "given" if s.timezone else "resolved from the phone's area code or the default"
    yield f"== {s.name}  ({s.label})"
    yield (
        f"   {c.full_name} <{reach}>; zone {s.zone} ({zone_from}); "
        f"start {local_stamp(result.local(result.start))}; until {s.end} "
        f"({local_stamp(result.local(result.end))})"
    )
    yield (
        f"{'#':>3} {'day':>4}  {'local time':<22} {'from':<9} {'ch':<5} {'kind':<24} "
        f"{'footer':<22} text"
    )
    rows = [_Row(h.at, 0, happening_line(h)) for h in result.happenings]
    rows += [_Row(m.at, 1, message_line(m)) for m in result.messages]
    rows += [_Row(d.at, 2, decision_line(d)) for d in result.decisions]
    for row in sorted(rows, key=lambda r: (r.at, r.order)):
        yield row.text
    if result.pending:
        yield f"  ({result.pending} send(s) still scheduled after the end)"


def verdict(result: ScenarioResult) -> Iterator[str]:
    """PASS, FAIL with each difference, or NOT CHECKED."""
    n = len(result.messages)
    if not result.checked:
        yield f"  NOT CHECKED: {n} message(s) sent; the file has no expect: list"
        return
    if result.passed:
        yield f"  PASS: {n} message(s) sent, every one as expected"
        return
    expected = len(result.scenario.expect or ())
    yield (
        f"  FAIL: {len(result.mismatches)} difference(s); {expected} message(s) expected, {n} sent"
    )
    for mismatch in result.mismatches:
        yield from mismatch_lines(result, mismatch)


def mismatch_lines(result: ScenarioResult, mismatch: Mismatch) -> Iterator[str]:
    e, a = mismatch.expected, mismatch.actual
    where = f" (line {e.where.line})" if e is not None else ""
    yield f"    message {mismatch.position}{where}:"
    yield f"      expected  {e.describe() if e is not None else '(nothing more)'}"
    yield f"      actual    {message_line(a).strip() if a is not None else '(nothing sent)'}"
    for problem in mismatch.problems:
        yield f"      differs   {problem}"
    near = decisions_near(result, mismatch.position)
    if near:
        yield "      decisions around it:"
        for d in near:
            yield "      " + decision_line(d)


def text_report(results: Sequence[ScenarioResult]) -> Iterator[str]:
    for result in results:
        yield from timeline(result)
        yield from verdict(result)
        yield ""


# -- summaries -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts over results: messages sent, footers, decisions by reason, segments."""

    texts: int
    emails: int
    with_footer: int
    segments: int
    by_kind: dict[str, int]
    skipped: dict[str, int]
    deferred: dict[str, int]
    other: dict[str, int]

    def lines(self) -> Iterator[str]:
        yield (
            f"sent: {self.texts} text(s) ({self.segments} segment(s)), {self.emails} email(s); "
            f"{self.with_footer} text(s) with the opt-out footer"
        )
        yield "by kind: " + _counts(self.by_kind)
        yield "skipped by reason: " + (_counts(self.skipped) or "none")
        yield "deferred by reason: " + (_counts(self.deferred) or "none")
        if self.other:
            yield "other decisions: " + _counts(self.other)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize(results: Sequence[ScenarioResult]) -> Summary:
    texts = [m for r in results for m in r.messages if m.channel.value == "sms"]
    emails = [m for r in results for m in r.messages if m.channel.value == "email"]
    decisions = [d for r in results for d in r.decisions]
    return Summary(
        texts=len(texts),
        emails=len(emails),
        with_footer=sum(1 for m in texts if m.footer),
        segments=sum(m.segments or 1 for m in texts),
        by_kind=dict(Counter(m.kind.value for r in results for m in r.messages)),
        skipped=dict(Counter(d.code for d in decisions if d.outcome == "skipped")),
        deferred=dict(Counter(d.code for d in decisions if d.outcome == "deferred")),
        other=dict(
            Counter(
                d.outcome if d.code == d.outcome else f"{d.outcome} ({d.code})"
                for d in decisions
                if d.outcome not in ("skipped", "deferred")
            )
        ),
    )


# -- JSON ----------------------------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def message_json(m: OutMessage) -> dict[str, Any]:
    return {
        "position": m.position,
        "at": _iso(m.at),
        "local": _iso(m.local),
        "day": m.day,
        "from": m.sender.value,
        "channel": m.channel.value,
        "kind": m.kind.value,
        "footer": m.footer,
        "footer_rule": m.footer_rule,
        "reason": m.reason,
        "subject": m.subject,
        "body": m.body,
        "segments": m.segments,
        "send_id": m.send_id,
        "campaign": m.campaign,
        "step": m.step,
        "validity": m.validity,
        "status": m.status,
        "error_code": m.error_code,
        "deferrals": list(m.deferrals),
    }


def decision_json(d: DecisionRecord) -> dict[str, Any]:
    return {
        "at": _iso(d.at),
        "local": _iso(d.local),
        "day": d.day,
        "outcome": d.outcome,
        "code": d.code,
        "reason": d.reason,
        "send_id": d.send_id,
        "kind": d.kind.value,
        "channel": d.channel.value,
        "from": d.sender.value,
        "campaign": d.campaign,
        "step": d.step,
        "deferred_until": _iso(d.deferred_until),
    }


def happening_json(h: Happening) -> dict[str, Any]:
    return {
        "at": _iso(h.at),
        "local": _iso(h.local),
        "day": h.day,
        "what": h.what,
        "text": h.text,
        "line": h.line,
    }


def expectation_json(e: Expectation) -> dict[str, Any]:
    out: dict[str, Any] = {"line": e.where.line}
    if e.day is not None:
        out["day"] = e.day
    if e.at is not None:
        out["at"] = str(e.at)
    if e.channel is not None:
        out["channel"] = e.channel.value
    if e.kind is not None:
        out["kind"] = e.kind.value
    if e.footer is not None:
        out["footer"] = e.footer
    if e.contains is not None:
        out["contains"] = e.contains
    if e.sender is not None:
        out["from"] = e.sender.value
    if e.validity is not None:
        out["validity"] = None if e.validity < 0 else e.validity
    if e.deferred is not None:
        out["deferred"] = e.deferred
    if e.status is not None:
        out["status"] = e.status
    if e.error is not None:
        out["error"] = e.error
    return out


def result_json(r: ScenarioResult) -> dict[str, Any]:
    s = r.scenario
    c = s.contact
    return {
        "file": s.label,
        "name": s.name,
        "contact": {
            "id": r.contact_id,
            "name": c.full_name,
            "phone": c.phone,
            "email": c.email,
            "state": c.state,
            "source": c.source.value,
            "sms_consent": c.sms_consent,
        },
        "timezone": s.zone,
        "start": _iso(r.start),
        "end": _iso(r.end),
        "checked": r.checked,
        "passed": r.passed,
        "seconds": round(r.seconds, 4),
        "messages": [message_json(m) for m in r.messages],
        "decisions": [decision_json(d) for d in r.decisions],
        "events": [happening_json(h) for h in r.happenings],
        "expect": [expectation_json(e) for e in s.expect] if s.expect is not None else None,
        "mismatches": [
            {
                "position": m.position,
                "expected": expectation_json(m.expected) if m.expected else None,
                "actual": message_json(m.actual) if m.actual else None,
                "problems": list(m.problems),
            }
            for m in r.mismatches
        ],
        "pending_after_end": r.pending,
    }


def as_json(
    results: Sequence[ScenarioResult], *, errors: Sequence[str] = (), exit_code: int
) -> str:
    """One JSON document: ``{"version", "passed", "exit_code", "errors", "scenarios"}``."""
    document = {
        "version": JSON_VERSION,
        "passed": exit_code == 0,
        "exit_code": exit_code,
        "errors": list(errors),
        "scenarios": [result_json(r) for r in results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


# -- HTML ----------------------------------------------------------------------------

#: The page may load nothing: no network, no file, no font; only its own inline parts.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def write_html(results: Sequence[ScenarioResult], path: Path, *, title: str) -> Path:
    """Write the self-contained HTML timeline of ``results`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(results, title=title), encoding="utf-8")
    return path


_COMPLIANCE_KINDS = frozenset(
    {"opt_in_confirmation", "opt_out_confirmation", "help", "resubscribe_confirmation"}
)


def message_mark(m: OutMessage, *, flagged: bool = False, href: str | None = None) -> Mark:
    """A sent message as a lane mark (shared with the console)."""
    from drip.replay.lanes import Mark

    if m.channel.value == "email":
        shape, color, label = "email", "email", ""
    elif m.kind.value in _COMPLIANCE_KINDS:
        shape, color, label = "compliance", "compliance", ""
    else:
        shape = "footer" if m.footer else "nofooter"
        color, label = m.sender.value, m.footer_rule or ""
    subject = f"\nsubject: {m.subject}" if m.subject else ""
    why = f"\n{m.reason}" if m.reason else ""
    return Mark(
        at=m.at,
        row="message",
        shape=shape,
        color=color,
        kind=m.kind.value,
        channel=m.channel.value,
        outcome="sent",
        title=(
            f"#{m.position}  {local_stamp(m.local)} (day {m.day})\nfrom {m.sender.value}, "
            f"{m.channel.value} {m.kind.value}, {footer_words(m)}{why}{subject}\n"
            f"\u201c{first_words(m.body, 160)}\u201d"
        ),
        href=href,
        flagged=flagged,
        label=label,
    )


def decision_mark(d: DecisionRecord, *, href: str | None = None) -> Mark:
    """A decision not to send (now) as a lane mark."""
    from drip.replay.lanes import Mark

    return Mark(
        at=d.at,
        row="decision",
        shape=d.outcome,
        color="skip",
        kind=d.kind.value,
        channel=d.channel.value,
        outcome=d.outcome,
        title=f"{local_stamp(d.local)} (day {d.day})  {d.outcome.upper()} {what_of(d)}\n{d.reason}",
        href=href,
        until=d.deferred_until,
    )


def lane_of(i: int, r: ScenarioResult) -> Lane:
    """One scenario as a lane of the shared renderer."""
    from drip.replay.lanes import Lane, Mark

    s = r.scenario
    c = s.contact
    failed = {m.position for m in r.mismatches}
    marks = [
        Mark(
            at=h.at,
            row="event",
            shape="event",
            color="muted",
            kind="event",
            channel="",
            outcome=h.what,
            title=f"{local_stamp(h.local)} (day {h.day})\n{h.what}: {h.text}",
        )
        for h in r.happenings
    ]
    marks += [message_mark(m, flagged=m.position in failed) for m in r.messages]
    marks += [decision_mark(d) for d in r.decisions]
    badge = (
        ("none", f"{len(r.messages)} msgs")
        if not r.checked
        else (("pass", "pass") if r.passed else ("fail", "FAIL"))
    )
    return Lane(
        key=str(i),
        name=c.full_name,
        lines=(
            s.name,
            ", ".join(x for x in (c.phone, c.email) if x),
            f"start {local_stamp(r.local(r.start))}",
        ),
        zone=s.zone,
        start=r.start,
        end=r.end,
        marks=tuple(marks),
        badge=badge,
        problems=tuple(f"message {m.position}: " + "; ".join(m.problems) for m in r.mismatches),
    )


def _static_tables(results: Sequence[ScenarioResult]) -> str:
    """Every scenario's messages and decisions as plain tables (readable without script)."""
    esc = html.escape
    parts: list[str] = []
    for i, r in enumerate(results):
        s = r.scenario
        verdict_word = "not checked" if not r.checked else ("pass" if r.passed else "FAIL")
        rows: list[str] = []
        items: list[tuple[datetime, int, str]] = []
        for h in r.happenings:
            items.append(
                (h.at, 0, f"<tr class=ev><td>{h.day}<td>{esc(local_stamp(h.local))}"
                 f"<td>{esc(h.what)}<td colspan=3>{esc(h.text)}")
            )  # fmt: skip
        for m in r.messages:
            items.append(
                (m.at, 1, f"<tr><td>{m.day}<td>{esc(local_stamp(m.local))}<td>{m.sender.value}"
                 f"<td>{m.channel.value} {m.kind.value}<td>{esc(footer_words(m))}"
                 f"<td>{esc(first_words(m.body, 90))}")
            )  # fmt: skip
        for d in r.decisions:
            items.append(
                (d.at, 2, f"<tr class={esc(d.outcome)}><td>{d.day}<td>{esc(local_stamp(d.local))}"
                 f"<td>{esc(d.outcome)}<td>{esc(what_of(d))}<td colspan=2>{esc(d.reason)}")
            )  # fmt: skip
        rows = [text for _, _, text in sorted(items, key=lambda x: (x[0], x[1]))]
        parts.append(
            f"<details id=table-{i}><summary><b>{esc(s.contact.full_name)}</b> - "
            f"{esc(s.name)} ({len(r.messages)} messages, {verdict_word})</summary>"
            "<table><thead><tr><th>day<th>local time<th>from<th>what<th>footer<th>text"
            f"<tbody>{''.join(rows)}</table></details>"
        )
    return "\n".join(parts)


def html_page(results: Sequence[ScenarioResult], *, title: str) -> str:
    """One self-contained page: inline CSS, SVG drawn here, a small script; it loads nothing."""
    from drip.replay.lanes import LANES_CSS, LANES_SCRIPT, render_lanes

    summary = summarize(results)
    summary_html = "".join(f"<li>{html.escape(line)}</li>" for line in summary.lines())
    chart = render_lanes([lane_of(i, r) for i, r in enumerate(results)])
    return (
        _PAGE.replace("{{TITLE}}", html.escape(title))
        .replace("{{CSP}}", CSP)
        .replace("{{CSS}}", LANES_CSS)
        .replace("{{SUMMARY}}", summary_html)
        .replace("{{CHART}}", chart)
        .replace("{{TABLES}}", _static_tables(results))
        .replace("{{SCRIPT}}", LANES_SCRIPT)
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{CSP}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
  body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px 24px;
         color: #111827; background: #fff; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  ul.summary { margin: 4px 0 12px; padding-left: 18px; color: #374151; }
  details { margin: 4px 0; } summary { cursor: pointer; }
  table { border-collapse: collapse; font-size: 12px; margin: 4px 0 10px; }
  td, th { border-bottom: 1px solid #e5e7eb; padding: 2px 6px; text-align: left;
           vertical-align: top; }
  tr.ev td { color: #6b7280; } tr.skipped td, tr.failed td { color: #dc2626; }
  tr.deferred td { color: #ea580c; }
{{CSS}}
</style>
</head>
<body>
<h1>{{TITLE}}</h1>
<ul class="summary">{{SUMMARY}}</ul>
<div id="chart">{{CHART}}</div>
<h2 style="font-size:16px">Timelines</h2>
{{TABLES}}
<script>{{SCRIPT}}</script>
</body>
</html>
"""
