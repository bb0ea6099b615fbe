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
time axis of days since each start. Marks: a filled circle is a text with the
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
from typing import Any

from drip.replay.runner import (
    DecisionRecord,
    Happening,
    Mismatch,
    OutMessage,
    ScenarioResult,
    decisions_near,
)
from drip.replay.scenario import Expectation

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


def _days(r: ScenarioResult, at: datetime) -> float:
    return round((at - r.start).total_seconds() / 86400, 4)


def lane_data(r: ScenarioResult) -> dict[str, Any]:
    """What the page's script draws for one scenario (kept small: first words, not bodies)."""
    s = r.scenario
    c = s.contact
    failed = {m.position for m in r.mismatches}
    return {
        "name": s.name,
        "file": s.label,
        "contact": c.full_name,
        "reach": ", ".join(x for x in (c.phone, c.email) if x),
        "zone": s.zone,
        "start": local_stamp(r.local(r.start)),
        "length": _days(r, r.end),
        "checked": r.checked,
        "passed": r.passed,
        "messages": [
            {
                "d": _days(r, m.at),
                "n": m.position,
                "t": local_stamp(m.local),
                "day": m.day,
                "from": m.sender.value,
                "kind": m.kind.value,
                "ch": m.channel.value,
                "footer": m.footer,
                "rule": m.footer_rule or "",
                "why": m.reason,
                "text": first_words(m.body, 160),
                "subject": m.subject or "",
                "bad": m.position in failed,
            }
            for m in r.messages
        ],
        "decisions": [
            {
                "d": _days(r, d.at),
                "t": local_stamp(d.local),
                "day": d.day,
                "outcome": d.outcome,
                "code": d.code,
                "what": what_of(d),
                "why": d.reason,
                "until": _days(r, d.deferred_until) if d.deferred_until else None,
            }
            for d in r.decisions
        ],
        "events": [
            {"d": _days(r, h.at), "t": local_stamp(h.local), "what": h.what, "text": h.text}
            for h in r.happenings
        ],
        "problems": [f"message {m.position}: " + "; ".join(m.problems) for m in r.mismatches],
    }


def _script_json(data: object) -> str:
    """JSON safe inside a <script> element: no ``<`` at all, so no ``</script>``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
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
    """One self-contained page: inline CSS, script and SVG; it loads nothing."""
    summary = summarize(results)
    data = {"title": title, "lanes": [lane_data(r) for r in results]}
    summary_html = "".join(f"<li>{html.escape(line)}</li>" for line in summary.lines())
    return (
        _PAGE.replace("{{TITLE}}", html.escape(title))
        .replace("{{CSP}}", CSP)
        .replace("{{SUMMARY}}", summary_html)
        .replace("{{TABLES}}", _static_tables(results))
        .replace("{{DATA}}", _script_json(data))
        .replace("{{SCRIPT}}", _SCRIPT)
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{CSP}}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
  :root { --agent: #2563eb; --concierge: #0d9488; --compliance: #7c3aed; --email: #16a34a;
          --skip: #dc2626; --defer: #ea580c; --muted: #6b7280; --line: #e5e7eb; }
  body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px 24px;
         color: #111827; background: #fff; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  ul.summary { margin: 4px 0 12px; padding-left: 18px; color: #374151; }
  #legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 8px 0 12px; font-size: 13px; }
  #legend span { display: inline-flex; align-items: center; gap: 4px; }
  .lane { display: grid; grid-template-columns: 240px 1fr; border-top: 1px solid var(--line); }
  .lane .label { padding: 6px 8px 6px 0; font-size: 13px; overflow: hidden; }
  .lane .label b { display: block; }
  .lane .label small { color: var(--muted); display: block; white-space: nowrap;
                       overflow: hidden; text-overflow: ellipsis; }
  .badge { font-size: 11px; padding: 0 5px; border-radius: 3px; color: #fff; }
  .badge.pass { background: #15803d; } .badge.fail { background: var(--skip); }
  .badge.none { background: var(--muted); }
  svg.track { width: 100%; height: 74px; display: block; }
  svg.axis { width: 100%; height: 22px; display: block; }
  .problems { color: var(--skip); font-size: 12px; margin: 0 0 4px 240px; }
  #tip { position: fixed; pointer-events: none; background: #111827; color: #f9fafb;
         padding: 6px 8px; border-radius: 4px; font-size: 12px; max-width: 460px;
         display: none; z-index: 10; white-space: pre-wrap; }
  details { margin: 4px 0; } summary { cursor: pointer; }
  label.zoom { font-size: 13px; display: block; margin: 0 0 6px; }
  table { border-collapse: collapse; font-size: 12px; margin: 4px 0 10px; }
  td, th { border-bottom: 1px solid var(--line); padding: 2px 6px; text-align: left;
           vertical-align: top; }
  tr.ev td { color: var(--muted); } tr.skipped td, tr.failed td { color: var(--skip); }
  tr.deferred td { color: var(--defer); }
</style>
</head>
<body>
<h1>{{TITLE}}</h1>
<ul class="summary">{{SUMMARY}}</ul>
<div id="legend"></div>
<label class="zoom">show <select id="zoom"><option value="all">every day</option>
<option value="14">days 0-14</option><option value="45">days 0-45</option>
<option value="120">days 0-120</option></select></label>
<div id="chart"><noscript>The timeline needs JavaScript; the tables below hold the same
facts.</noscript></div>
<h2 style="font-size:16px">Timelines</h2>
{{TABLES}}
<div id="tip"></div>
<script type="application/json" id="drip-data">{{DATA}}</script>
<script>{{SCRIPT}}</script>
</body>
</html>
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("drip-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var W = 1000, PAD = 12;
  var COLORS = {agent: "var(--agent)", concierge: "var(--concierge)",
                compliance: "var(--compliance)", email: "var(--email)",
                skip: "var(--skip)", defer: "var(--defer)", muted: "var(--muted)"};
  var COMPLIANCE = {opt_in_confirmation: 1, opt_out_confirmation: 1, help: 1,
                    resubscribe_confirmation: 1};
  var tip = document.getElementById("tip");

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) { node.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function hover(node, text) {
    el("title", {}, node).textContent = text;
    node.addEventListener("mousemove", function (e) {
      tip.textContent = text; tip.style.display = "block";
      tip.style.left = Math.min(e.clientX + 14, window.innerWidth - 480) + "px";
      tip.style.top = (e.clientY + 14) + "px";
    });
    node.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    node.style.cursor = "help";
  }
  // One shape per kind of mark; the legend draws the same shapes.
  function shape(kind, x, y, parent, color, filled) {
    var g = el("g", {"class": "mark " + kind}, parent);
    var fill = filled ? color : "#fff";
    if (kind === "footer" || kind === "nofooter") {
      el("circle", {cx: x, cy: y, r: 6, fill: fill, stroke: color, "stroke-width": 2}, g);
    } else if (kind === "compliance") {
      el("path", {d: "M" + x + " " + (y - 7) + " l7 7 l-7 7 l-7 -7 z", fill: color}, g);
    } else if (kind === "email") {
      el("rect", {x: x - 6, y: y - 5, width: 12, height: 10, fill: fill, stroke: color,
                  "stroke-width": 2}, g);
      el("path", {d: "M" + (x - 6) + " " + (y - 5) + " l6 5 l6 -5", fill: "none",
                   stroke: filled ? "#fff" : color, "stroke-width": 1.5}, g);
    } else if (kind === "skipped" || kind === "failed" || kind === "cancelled") {
      var c = kind === "cancelled" ? COLORS.muted : COLORS.skip;
      el("path", {d: "M" + (x - 5) + " " + (y - 5) + " l10 10 M" + (x + 5) + " " + (y - 5) +
                  " l-10 10", stroke: c, "stroke-width": kind === "failed" ? 3.5 : 2.5}, g);
    } else if (kind === "deferred") {
      el("path", {d: "M" + (x - 6) + " " + (y - 6) + " l12 6 l-12 6 z", fill: COLORS.defer}, g);
    } else if (kind === "rescheduled") {
      el("path", {d: "M" + (x - 6) + " " + (y - 6) + " l12 6 l-12 6 z", fill: "#fff",
                  stroke: COLORS.defer, "stroke-width": 1.5}, g);
    } else {  // an event: registration, reply, enroll, ...
      el("rect", {x: x - 1.5, y: y - 7, width: 3, height: 14, fill: COLORS.muted}, g);
    }
    return g;
  }

  var legend = document.getElementById("legend");
  [["footer", "agent", true, "text with the opt-out footer (agent)"],
   ["nofooter", "agent", false, "text without the footer (agent)"],
   ["footer", "concierge", true, "with footer (concierge)"],
   ["nofooter", "concierge", false, "without footer (concierge)"],
   ["compliance", "compliance", true, "compliance reply (opt-in, STOP, HELP, START)"],
   ["email", "email", true, "email"],
   ["skipped", "skip", true, "skipped / failed"],
   ["cancelled", "muted", true, "cancelled"],
   ["deferred", "defer", true, "deferred (dashed line: until when)"],
   ["event", "muted", true, "scenario event (registration, reply, enroll...)"]
  ].forEach(function (item) {
    var span = document.createElement("span");
    var svg = el("svg", {width: 18, height: 18, viewBox: "0 0 18 18"}, span);
    shape(item[0], 9, 9, svg, COLORS[item[1]], item[2]);
    span.appendChild(document.createTextNode(item[3]));
    legend.appendChild(span);
  });

  var chart = document.getElementById("chart");
  var zoom = document.getElementById("zoom");
  zoom.addEventListener("change", function () { render(); });
  function render() {
    chart.textContent = "";
    W = Math.max(500, chart.clientWidth - 240);
    var length = 1;
    data.lanes.forEach(function (lane) { length = Math.max(length, lane.length); });
    if (zoom.value !== "all") { length = Math.min(length, Number(zoom.value)); }
    function shown(d) { return d <= length + 1e-9; }
    function xOf(d) { return PAD + (W - 2 * PAD) * Math.max(0, d) / length; }
    var steps = [1, 2, 5, 7, 10, 15, 30, 60, 90, 180, 365];
    var step = steps.filter(function (s) { return length / s <= 14; })[0] || 365;

    var axisRow = document.createElement("div");
    axisRow.className = "lane";
    axisRow.appendChild(document.createElement("div")).className = "label";
    axisRow.firstChild.textContent = "days since each start";
    var axis = el("svg", {"class": "axis", viewBox: "0 0 " + W + " 22"}, axisRow);
    for (var t = 0; t <= length + 1e-9; t += step) {
      el("line", {x1: xOf(t), x2: xOf(t), y1: 14, y2: 22, stroke: "#9ca3af"}, axis);
      el("text", {x: xOf(t), y: 11, "font-size": 11, "text-anchor": t === 0 ? "start" : "middle",
                  fill: "#374151"}, axis).textContent = "day " + t;
    }
    chart.appendChild(axisRow);

    data.lanes.forEach(function (lane, i) {
      var row = document.createElement("div");
      row.className = "lane";
      row.id = "lane-" + i;
      var label = document.createElement("div");
      label.className = "label";
      var name = document.createElement("b");
      name.textContent = lane.contact + " ";
      var badge = document.createElement("span");
      badge.className = "badge " + (!lane.checked ? "none" : lane.passed ? "pass" : "fail");
      badge.textContent = !lane.checked ? lane.messages.length + " msgs" :
        lane.passed ? "pass" : "FAIL";
      name.appendChild(badge);
      label.appendChild(name);
      [lane.name, lane.reach + " \u00b7 " + lane.zone, "start " + lane.start].forEach(
        function (line) {
          var small = document.createElement("small");
          small.textContent = line; small.title = line; label.appendChild(small);
        });
      row.appendChild(label);
      var svg = el("svg", {"class": "track", viewBox: "0 0 " + W + " 74"}, row);
      var laneEnd = xOf(Math.min(lane.length, length));
      el("rect", {x: xOf(0), y: 8, width: laneEnd - xOf(0), height: 58, fill: "#f9fafb"}, svg);
      for (var t = 0; t <= length + 1e-9; t += step) {
        el("line", {x1: xOf(t), x2: xOf(t), y1: 8, y2: 66, stroke: "#eef0f3"}, svg);
      }
      el("line", {x1: xOf(0), x2: laneEnd, y1: 32, y2: 32, stroke: "#d1d5db"}, svg);
      lane.events.filter(function (ev) { return shown(ev.d); }).forEach(function (ev) {
        hover(shape("event", xOf(ev.d), 15, svg, COLORS.muted, true),
              ev.t + " (day " + ev.d.toFixed(2) + ")\n" + ev.what + ": " + ev.text);
      });
      lane.decisions.filter(function (d) { return shown(d.d); }).forEach(function (d) {
        var x = xOf(d.d), y = 54;
        if (d.outcome === "deferred" && d.until !== null) {
          el("line", {x1: x, x2: xOf(Math.min(d.until, length)), y1: y, y2: 32, stroke: COLORS.defer,
                      "stroke-dasharray": "3 3", "stroke-width": 1.2}, svg);
        }
        hover(shape(d.outcome, x, y, svg, COLORS.skip, true),
              d.t + " (day " + d.day + ")  " + d.outcome.toUpperCase() + " " + d.what +
              "\n" + d.why);
      });
      lane.messages.filter(function (m) { return shown(m.d); }).forEach(function (m) {
        var kind, color;
        if (m.ch === "email") { kind = "email"; color = COLORS.email; }
        else if (COMPLIANCE[m.kind]) { kind = "compliance"; color = COLORS.compliance; }
        else { kind = m.footer ? "footer" : "nofooter"; color = COLORS[m.from]; }
        var x = xOf(m.d);
        if (m.bad) {
          el("circle", {cx: x, cy: 32, r: 10, fill: "none", stroke: COLORS.skip,
                        "stroke-width": 2}, svg);
        }
        var footer = m.ch === "email" ? "email" :
          (m.rule === "compliance" ? "no footer (compliance)" :
           (m.footer ? "footer " : "no footer ") + m.rule);
        hover(shape(kind, x, 32, svg, color, kind !== "nofooter"),
              "#" + m.n + "  " + m.t + " (day " + m.day + ")\nfrom " + m.from + ", " + m.ch +
              " " + m.kind + ", " + footer + (m.why ? "\n" + m.why : "") +
              (m.subject ? "\nsubject: " + m.subject : "") + "\n\u201c" + m.text + "\u201d");
      });
      chart.appendChild(row);
      if (lane.problems.length) {
        var p = document.createElement("div");
        p.className = "problems";
        p.textContent = lane.problems.join(" | ");
        chart.appendChild(p);
      }
    });
    document.body.setAttribute("data-rendered", String(data.lanes.length));
  }
  render();
  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(render, 150);
  });
})();
"""
