"""Small charts drawn on the server as inline SVG (no chart library, nothing fetched)."""

from __future__ import annotations

import html
from typing import Final

from markupsafe import Markup

from drip.services.stats import StepStats

BAR_COLORS: Final = {
    "scheduled": "#9ca3af",
    "with footer": "#2563eb",
    "without footer": "#93c5fd",
    "skipped": "#dc2626",
    "deferred": "#ea580c",
    "delivered": "#16a34a",
    "failed": "#b91c1c",
    "replied": "#0d9488",
    "opted out": "#7c3aed",
}


def funnel_bars(step: StepStats) -> list[tuple[str, int, str]]:
    """``(label, value, colour)`` of a step's funnel, in order."""
    return [
        ("scheduled", step.scheduled, BAR_COLORS["scheduled"]),
        ("sent", step.sent, ""),
        ("skipped", sum(n for _, n in step.skipped), BAR_COLORS["skipped"]),
        ("deferred", sum(n for _, n in step.deferred), BAR_COLORS["deferred"]),
        ("delivered", step.delivered, BAR_COLORS["delivered"]),
        ("failed", step.failed, BAR_COLORS["failed"]),
        ("replied", step.replied, BAR_COLORS["replied"]),
        ("opted out", step.opted_out, BAR_COLORS["opted out"]),
    ]


def funnel_svg(step: StepStats, width: int = 320) -> Markup:
    """A horizontal bar per stage; ``sent`` split into with and without the footer."""
    bars = funnel_bars(step)
    top = max(1, *(v for _, v, _ in bars))
    label_w, row_h, num_w = 70, 14, 36
    span = width - label_w - num_w
    parts = []
    for i, (label, value, colour) in enumerate(bars):
        y = i * row_h
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 10}" font-size="10" text-anchor="end" '
            f'fill="#374151">{html.escape(label)}</text>'
        )
        if label == "sent":
            w1 = span * step.with_footer / top
            w2 = span * (step.sent - step.with_footer) / top
            parts.append(
                f'<rect x="{label_w}" y="{y + 2}" width="{w1:.1f}" height="{row_h - 4}" '
                f'fill="{BAR_COLORS["with footer"]}"><title>{step.with_footer} with the footer'
                f"</title></rect>"
                f'<rect x="{label_w + w1:.1f}" y="{y + 2}" width="{w2:.1f}" height="{row_h - 4}" '
                f'fill="{BAR_COLORS["without footer"]}"><title>{step.sent - step.with_footer} '
                "without the footer</title></rect>"
            )
            end = label_w + w1 + w2
        else:
            w = span * value / top
            parts.append(
                f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" '
                f'fill="{colour}"/>'
            )
            end = label_w + w
        parts.append(
            f'<text x="{end + 4:.1f}" y="{y + 10}" font-size="10" fill="#111827">{value}</text>'
        )
    height = len(bars) * row_h
    return Markup(  # noqa: S704 - every value above is a number or escaped
        f'<svg class="funnel" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="funnel of step {html.escape(step.step)}">{"".join(parts)}</svg>'
    )
