"""One timeline renderer, two callers: the replay report and the console's contact page.

A :class:`Lane` is one contact's life on a time axis; its :class:`Mark` values
are messages, decisions not to send and events (registration, replies,
enrollments...). :func:`render_lanes` draws lanes as inline SVG on the
server, so a page is readable without JavaScript; a small script (also
inline, :data:`LANES_SCRIPT`) only adds filters by kind, channel and outcome
and a tooltip. Nothing is fetched: no font, image, style or script.

What the drawing shows:

- the axis of each lane gives day numbers since the lane's start AND, under
  them, the calendar date of each tick in the lane's zone (``day 45`` /
  ``Apr 16``);
- marks that fall on the same day never overlap: each row (events,
  messages, decisions) is packed into tiers, a mark going one tier down when
  the previous one in its tier is closer than :data:`MIN_GAP`;
- the legend names every shape and the footer rules F1-F5
  (docs/compliance.md#the-opt-out-footer);
- a mark with ``href`` is a link (the console links each one to the
  explanation of its send).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import pendulum

__all__ = [
    "FOOTER_RULES",
    "LANES_CSS",
    "LANES_SCRIPT",
    "Lane",
    "Mark",
    "legend_html",
    "render_lanes",
]

#: Width of the drawing (SVG user units); the SVG scales to the page's width.
WIDTH: Final = 1000
PAD: Final = 14
#: Two marks of one tier closer than this (user units) would overlap.
MIN_GAP: Final = 15.0
TIER: Final = 16
AXIS: Final = 36
TICK_STEPS: Final = (1, 2, 5, 7, 10, 15, 30, 60, 90, 180, 365)
ROWS: Final = ("event", "message", "decision")

#: The footer rules (docs/compliance.md#the-opt-out-footer), in the words the legend uses.
FOOTER_RULES: Final = (
    ("F1", "first text from this sender to this contact: footer"),
    ("F2", "footer sent before and the contact has replied (two-way): no footer"),
    ("F3", "no reply and 30 days since the last footer: footer again"),
    ("F4", "no reply and less than 30 days since the last footer: no footer"),
    ("F5", "the step says opt_out: always (greetings): footer"),
)

COLORS: Final = {
    "agent": "#2563eb",
    "concierge": "#0d9488",
    "compliance": "#7c3aed",
    "email": "#16a34a",
    "skip": "#dc2626",
    "defer": "#ea580c",
    "muted": "#6b7280",
}


@dataclass(frozen=True, slots=True)
class Mark:
    """One thing on a lane.

    ``row`` is ``event``, ``message`` or ``decision``; ``shape`` one of
    ``footer``, ``nofooter``, ``compliance``, ``email``, ``skipped``,
    ``failed``, ``cancelled``, ``deferred``, ``rescheduled``, ``held``,
    ``event``; ``color`` a key of :data:`COLORS`. ``kind``, ``channel`` and
    ``outcome`` are what the filters act on.
    """

    at: datetime
    row: str
    shape: str
    color: str
    kind: str
    channel: str
    outcome: str
    title: str
    href: str | None = None
    until: datetime | None = None
    flagged: bool = False
    label: str = ""


@dataclass(frozen=True, slots=True)
class Lane:
    """One contact's timeline from ``start`` to ``end`` (UTC), shown in ``zone``."""

    key: str
    name: str
    lines: tuple[str, ...]
    zone: str
    start: datetime
    end: datetime
    marks: tuple[Mark, ...]
    badge: tuple[str, str] | None = None  # (css class: pass|fail|none, text)
    problems: tuple[str, ...] = field(default=())


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _days(lane: Lane, at: datetime) -> float:
    return (at - lane.start).total_seconds() / 86400


def _tick_step(length: float) -> int:
    for step in TICK_STEPS:
        if length / step <= 10:
            return step
    return TICK_STEPS[-1]


def _tiers(xs: Sequence[float]) -> list[int]:
    """The tier of each x (sorted by x): the first tier whose last mark is far enough."""
    last: list[float] = []
    out: list[int] = []
    for x in xs:
        for i, prev in enumerate(last):
            if x - prev >= MIN_GAP:
                last[i] = x
                out.append(i)
                break
        else:
            last.append(x)
            out.append(len(last) - 1)
    return out


def _shape(shape: str, color: str, filled: bool = True) -> str:
    """SVG of one mark centred on (0, 0)."""
    c = COLORS.get(color, color)
    if shape in ("footer", "nofooter"):
        fill = c if shape == "footer" else "#fff"
        return f'<circle r="6" fill="{fill}" stroke="{c}" stroke-width="2"/>'
    if shape == "compliance":
        return f'<path d="M0 -7 l7 7 l-7 7 l-7 -7 z" fill="{c}"/>'
    if shape == "email":
        return (
            f'<rect x="-6" y="-5" width="12" height="10" fill="{c}" stroke="{c}" '
            'stroke-width="2"/><path d="M-6 -5 l6 5 l6 -5" fill="none" stroke="#fff" '
            'stroke-width="1.5"/>'
        )
    if shape in ("skipped", "failed", "cancelled", "unknown"):
        stroke = COLORS["muted"] if shape == "cancelled" else COLORS["skip"]
        width = 3.5 if shape == "failed" else 2.5
        return f'<path d="M-5 -5 l10 10 M5 -5 l-10 10" stroke="{stroke}" stroke-width="{width}"/>'
    if shape == "deferred":
        return f'<path d="M-6 -6 l12 6 l-12 6 z" fill="{COLORS["defer"]}"/>'
    if shape in ("rescheduled", "held", "released"):
        return (
            f'<path d="M-6 -6 l12 6 l-12 6 z" fill="#fff" stroke="{COLORS["defer"]}" '
            'stroke-width="1.5"/>'
        )
    return f'<rect x="-1.5" y="-7" width="3" height="14" fill="{COLORS["muted"]}"/>'


def legend_html() -> str:
    """The legend: every shape, then the footer rules F1-F5."""
    items = (
        ("footer", "agent", "text with the opt-out footer (agent)"),
        ("nofooter", "agent", "text without the footer (agent)"),
        ("footer", "concierge", "with footer (concierge)"),
        ("nofooter", "concierge", "without footer (concierge)"),
        (
            "compliance",
            "compliance",
            "compliance reply (opt-in, STOP, HELP, START): never a footer",
        ),
        ("email", "email", "email"),
        ("skipped", "skip", "skipped / failed"),
        ("cancelled", "muted", "cancelled"),
        ("deferred", "defer", "deferred (dashed line: until when)"),
        ("held", "defer", "held / rescheduled"),
        ("event", "muted", "event (registration, consent, reply, enroll...)"),
    )
    spans = "".join(
        f'<span><svg width="18" height="18" viewBox="-9 -9 18 18" aria-hidden="true">'
        f"{_shape(shape, color)}</svg>{_esc(text)}</span>"
        for shape, color, text in items
    )
    rules = "".join(f"<li><b>{rule}</b> {_esc(text)}</li>" for rule, text in FOOTER_RULES)
    return (
        f'<div class="lanes-legend">{spans}</div>'
        '<details class="lanes-rules" open><summary>Footer rules, shown on each '
        f"text as F1-F5</summary><ul>{rules}</ul></details>"
    )


def _filters(lanes: Sequence[Lane]) -> str:
    """Check boxes for the kinds, channels and outcomes present (the script makes them work)."""
    groups: dict[str, set[str]] = {"kind": set(), "channel": set(), "outcome": set()}
    for lane in lanes:
        for m in lane.marks:
            groups["kind"].add(m.kind)
            if m.channel:
                groups["channel"].add(m.channel)
            groups["outcome"].add(m.outcome)
    parts = []
    for name, values in groups.items():
        boxes = "".join(
            f'<label><input type="checkbox" checked data-filter="{name}" '
            f'value="{_esc(v)}"> {_esc(v)}</label>'
            for v in sorted(values)
        )
        parts.append(f"<fieldset><legend>{name}</legend>{boxes}</fieldset>")
    return f'<form class="lanes-filters" hidden>{"".join(parts)}</form>'


def _axis(lane: Lane, length: float, y: float) -> str:
    """Ticks with ``day N`` and the calendar date in the lane's zone."""
    step = _tick_step(length)
    start_local = pendulum.instance(lane.start).in_timezone(lane.zone)
    parts = [f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y}" y2="{y}" stroke="#9ca3af"/>']
    t = 0
    while t <= length + 1e-9:
        x = PAD + (WIDTH - 2 * PAD) * t / length
        when = start_local.add(days=t)
        anchor = "start" if t == 0 else "middle"
        date = f"{when:%b %-d %Y}" if t == 0 else f"{when:%b %-d}"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 4}" stroke="#9ca3af"/>'
            f'<text x="{x:.1f}" y="{y + 14}" font-size="10" text-anchor="{anchor}" '
            f'fill="#374151">day {t}</text>'
            f'<text class="date" x="{x:.1f}" y="{y + 26}" font-size="10" '
            f'text-anchor="{anchor}" fill="#6b7280">{date}</text>'
        )
        t += step
    return "".join(parts)


def _lane_svg(lane: Lane, length: float) -> str:
    def x_of(at: datetime) -> float:
        d = max(0.0, min(_days(lane, at), length))
        return PAD + (WIDTH - 2 * PAD) * d / length

    placed: dict[str, list[tuple[float, Mark, int]]] = {row: [] for row in ROWS}
    for row in ROWS:
        marks = sorted((m for m in lane.marks if m.row == row), key=lambda m: m.at)
        xs = [x_of(m.at) for m in marks]
        tiers = _tiers(xs)
        placed[row] = list(zip(xs, marks, tiers, strict=True))
    y = 12.0
    base: dict[str, float] = {}
    for row in ROWS:
        base[row] = y
        depth = max((t for _, _, t in placed[row]), default=-1) + 1
        y += max(depth, 1) * TIER + 4
    height = y + AXIS
    end_x = x_of(lane.end)
    body = [
        f'<rect x="{PAD}" y="2" width="{max(end_x - PAD, 1):.1f}" height="{y - 4:.1f}" '
        'fill="#f9fafb"/>',
        f'<line x1="{PAD}" x2="{end_x:.1f}" y1="{base["message"]}" y2="{base["message"]}" '
        'stroke="#d1d5db"/>',
    ]
    for row in ROWS:
        for x, m, tier in placed[row]:
            my = base[row] + tier * TIER
            extra = ""
            if m.until is not None:
                ux = x_of(m.until) - x
                extra = (
                    f'<line x1="0" y1="0" x2="{ux:.1f}" y2="{base["message"] - my:.1f}" '
                    f'stroke="{COLORS["defer"]}" stroke-dasharray="3 3" stroke-width="1.2"/>'
                )
            if m.flagged:
                extra += f'<circle r="10" fill="none" stroke="{COLORS["skip"]}" stroke-width="2"/>'
            label = (
                f'<text x="8" y="3" font-size="8" fill="#374151">{_esc(m.label)}</text>'
                if m.label
                else ""
            )
            mark = (
                f'<g class="mark {_esc(m.shape)}" transform="translate({x:.1f},{my:.1f})" '
                f'data-kind="{_esc(m.kind)}" data-channel="{_esc(m.channel)}" '
                f'data-outcome="{_esc(m.outcome)}"><title>{_esc(m.title)}</title>'
                f"{extra}{_shape(m.shape, m.color)}{label}</g>"
            )
            if m.href:
                mark = f'<a href="{_esc(m.href)}">{mark}</a>'
            body.append(mark)
    body.append(_axis(lane, length, y + 4))
    return (
        f'<svg class="track" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="timeline of {_esc(lane.name)}">{"".join(body)}</svg>'
    )


def render_lanes(lanes: Sequence[Lane], *, filters: bool = True) -> str:
    """The legend, the filters and one row per lane, all server-drawn (inline SVG)."""
    length = max([1.0, *(_days(lane, lane.end) for lane in lanes)])
    rows = []
    for i, lane in enumerate(lanes):
        badge = (
            f' <span class="badge {_esc(lane.badge[0])}">{_esc(lane.badge[1])}</span>'
            if lane.badge
            else ""
        )
        smalls = "".join(f"<small title='{_esc(s)}'>{_esc(s)}</small>" for s in lane.lines)
        problems = (
            f'<div class="problems">{_esc(" | ".join(lane.problems))}</div>'
            if lane.problems
            else ""
        )
        rows.append(
            f'<div class="lane" id="lane-{i}" data-key="{_esc(lane.key)}">'
            f'<div class="label"><b>{_esc(lane.name)}{badge}</b>{smalls}'
            f"<small>times in {_esc(lane.zone)}</small></div>"
            f"{_lane_svg(lane, length)}</div>{problems}"
        )
    return (
        legend_html()
        + (_filters(lanes) if filters else "")
        + f'<div class="lanes" data-rendered="{len(lanes)}">{"".join(rows)}</div>'
        + '<div id="lanes-tip" hidden></div>'
    )


LANES_CSS: Final = """
.lanes-legend { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; font-size: 13px; }
.lanes-legend span { display: inline-flex; align-items: center; gap: 4px; }
.lanes-rules { font-size: 13px; margin: 0 0 8px; } .lanes-rules ul { margin: 4px 0; }
.lanes-filters { display: flex; flex-wrap: wrap; gap: 8px; font-size: 12px; margin: 4px 0 8px; }
.lanes-filters fieldset { border: 1px solid #e5e7eb; padding: 2px 8px; }
.lanes-filters label { margin-right: 8px; white-space: nowrap; }
.lane { display: grid; grid-template-columns: 220px 1fr; border-top: 1px solid #e5e7eb; }
.lane .label { padding: 6px 8px 6px 0; font-size: 13px; overflow: hidden; }
.lane .label b { display: block; }
.lane .label small { color: #6b7280; display: block; white-space: nowrap; overflow: hidden;
                     text-overflow: ellipsis; }
.lane svg.track { width: 100%; height: auto; display: block; }
.lane .mark { cursor: help; } .lane a .mark { cursor: pointer; }
.lane .mark.off { display: none; }
.badge { font-size: 11px; padding: 0 5px; border-radius: 3px; color: #fff; }
.badge.pass { background: #15803d; } .badge.fail { background: #dc2626; }
.badge.none { background: #6b7280; }
.problems { color: #dc2626; font-size: 12px; margin: 0 0 4px 220px; }
#lanes-tip { position: fixed; pointer-events: none; background: #111827; color: #f9fafb;
             padding: 6px 8px; border-radius: 4px; font-size: 12px; max-width: 460px;
             z-index: 10; white-space: pre-wrap; }
"""

#: Filters and tooltip; the drawing itself needs no script.
LANES_SCRIPT: Final = r"""
(function () {
  "use strict";
  var form = document.querySelector(".lanes-filters");
  if (form) {
    form.hidden = false;
    form.addEventListener("change", function () {
      var off = {};
      form.querySelectorAll("input[data-filter]").forEach(function (box) {
        if (!box.checked) { off[box.getAttribute("data-filter") + ":" + box.value] = true; }
      });
      document.querySelectorAll(".lane .mark").forEach(function (mark) {
        var hide = ["kind", "channel", "outcome"].some(function (f) {
          return off[f + ":" + mark.getAttribute("data-" + f)];
        });
        mark.classList.toggle("off", hide);
      });
    });
  }
  var tip = document.getElementById("lanes-tip");
  document.querySelectorAll(".lane .mark").forEach(function (mark) {
    var title = mark.querySelector("title");
    var text = title ? title.textContent : "";
    mark.addEventListener("mousemove", function (e) {
      tip.textContent = text; tip.hidden = false;
      tip.style.left = Math.min(e.clientX + 14, window.innerWidth - 480) + "px";
      tip.style.top = (e.clientY + 14) + "px";
    });
    mark.addEventListener("mouseleave", function () { tip.hidden = true; });
  });
})();
"""
