"""The shared timeline renderer (drip/replay/lanes.py): placement, axis dates, legend, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import combinations

from drip.replay.lanes import MIN_GAP, Lane, Mark, render_lanes

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York


def text_mark(at: datetime, *, footer: bool = True, **extra: object) -> Mark:
    fields: dict[str, object] = {
        "at": at,
        "row": "message",
        "shape": "footer" if footer else "nofooter",
        "color": "agent",
        "kind": "campaign",
        "channel": "sms",
        "outcome": "sent",
        "title": "a text",
    }
    fields.update(extra)
    return Mark(**fields)  # type: ignore[arg-type]


def lane(*marks: Mark, days: int = 60, zone: str = "America/New_York") -> Lane:
    return Lane("0", "Dana Ruiz", ("+16175550123",), zone, START, START + timedelta(days=days),
                tuple(marks))  # fmt: skip


def positions(svg: str) -> list[tuple[float, float]]:
    return [
        (float(x), float(y))
        for x, y in re.findall(
            r'class="mark [^"]*" transform="translate\(([\d.]+),([\d.]+)\)"', svg
        )
    ]


def test_marks_of_one_day_never_overlap() -> None:
    """Five texts within one hour are stacked: every pair is MIN_GAP apart in x or in y."""
    marks = [text_mark(START + timedelta(minutes=10 * i)) for i in range(5)]
    placed = positions(render_lanes([lane(*marks)]))
    assert len(placed) == 5
    for (x1, y1), (x2, y2) in combinations(placed, 2):
        assert abs(x1 - x2) >= MIN_GAP or abs(y1 - y2) >= 12


def test_marks_far_apart_share_one_tier() -> None:
    """Texts weeks apart stay on the same line (no needless stacking)."""
    marks = [text_mark(START + timedelta(days=d)) for d in (0, 15, 45)]
    placed = positions(render_lanes([lane(*marks)]))
    assert len({y for _, y in placed}) == 1


def test_axis_gives_day_numbers_and_calendar_dates_in_the_zone() -> None:
    """Ticks say ``day N`` and the local date: day 0 of a 23:30 New York start is Mar 1."""
    late = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)  # 23:30 on 1 March in New York
    page = render_lanes(
        [Lane("0", "x", (), "America/New_York", late, late + timedelta(days=30), ())]
    )
    assert ">day 0</text>" in page and ">Mar 1 2026</text>" in page
    assert ">day 10</text>" in page and ">Mar 11</text>" in page
    tokyo = render_lanes([Lane("0", "x", (), "Asia/Tokyo", late, late + timedelta(days=30), ())])
    assert ">Mar 2 2026</text>" in tokyo


def test_legend_names_the_footer_rules_and_filters_list_values() -> None:
    """F1-F5 are in the legend; the filters offer each kind, channel and outcome present."""
    marks = [
        text_mark(START),
        text_mark(START + timedelta(days=1), channel="email", shape="email", kind="campaign"),
        Mark(START, "decision", "skipped", "skip", "bulk", "sms", "skipped", "no consent"),
    ]
    page = render_lanes([lane(*marks)])
    for rule in ("F1", "F2", "F3", "F4", "F5"):
        assert f"<b>{rule}</b>" in page
    for name, value in (("kind", "bulk"), ("channel", "email"), ("outcome", "skipped")):
        assert f'data-filter="{name}" value="{value}"' in page


def test_links_labels_and_escaping() -> None:
    """A mark with href is a link, its rule label is drawn, and titles are escaped."""
    mark = text_mark(START, footer=False, href="/console/sends/7", label="F4",
                     title="<script>alert(1)</script>")  # fmt: skip
    page = render_lanes([lane(mark)])
    assert '<a href="/console/sends/7"><g class="mark nofooter"' in page
    assert ">F4</text>" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_deferral_line_points_to_its_new_time() -> None:
    """A deferred mark draws a dashed line to the x of the time it was deferred to."""
    mark = Mark(START, "decision", "deferred", "skip", "campaign", "sms", "deferred", "window",
                until=START + timedelta(days=30))  # fmt: skip
    page = render_lanes([lane(mark)])
    x2 = re.search(r'<line x1="0" y1="0" x2="([\d.]+)"', page)
    assert x2 is not None and float(x2.group(1)) > 400  # half of a 60-day lane
