"""What one sample contact receives over a whole ``drip preview`` plan, in numbers and words.

Split from :mod:`drip.campaigns.preview`, which builds it (``Preview.totals``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PreviewTotals:
    """What one contact receives over the whole plan (introduction included)."""

    texts: int
    emails: int
    footers: int
    segments: int
    not_sent: int

    def as_dict(self) -> dict[str, int]:
        return {
            "texts": self.texts,
            "emails": self.emails,
            "footers": self.footers,
            "segments": self.segments,
            "not_sent": self.not_sent,
        }

    def describe(self) -> str:
        parts = [
            f"{_plural(self.texts, 'text')} ({self.footers} with the footer)",
            _plural(self.segments, "segment"),
        ]
        if self.emails:
            parts.append(_plural(self.emails, "email"))
        if self.not_sent:
            parts.append(f"{self.not_sent} not sent")
        return ", ".join(parts)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {plural or word + 's'}"
