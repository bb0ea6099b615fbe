"""``drip contacts list`` pages: filtered in SQL, keyset on the id, the same contacts as the scan.

The SQL filters of :func:`drip.services.selection.list_contacts` must choose
exactly the contacts that the row-by-row selection of ``enroll-many``
(:func:`drip.services.selection.select_contacts`) chooses, for every filter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from services_support import open_world, sync_bundled
from sqlalchemy.orm import Session

from drip.domain.enums import ConsentSource, TextStatus
from drip.services.contacts import add_agent
from drip.services.enrollment import enroll_many
from drip.services.selection import ContactFilters, list_contacts, select_contacts
from drip.store.models import Contact

CAMPAIGN = "smart-drip-new-lead"
AREAS = ("617", "305", "212", "800", "413")  # MA, FL, NY, none, MA
STATES = (None, "MA", "FL", "XX", "NY", "ma")
SOURCES = tuple(ConsentSource)

FILTERS = [
    ContactFilters(),
    ContactFilters(state="MA"),
    ContactFilters(state="Florida"),
    ContactFilters(state="ny"),
    ContactFilters(source=ConsentSource.IMPORT),
    ContactFilters(agent="(617) 555-0100"),
    ContactFilters(name="ead1"),
    ContactFilters(name="o'n_%"),
    ContactFilters(textable=True),
    ContactFilters(textable=False),
    ContactFilters(not_enrolled=True),
    ContactFilters(state="MA", textable=True, not_enrolled=True),
]


def _all_pages(world: object, filters: ContactFilters, limit: int) -> list[int]:
    ids: list[int] = []
    after = 0
    for _ in range(100):
        page = list_contacts(world.deps, filters, limit=limit, after=after)  # type: ignore[attr-defined]
        assert len(page.contacts) <= limit
        ids += [c.id for c in page.contacts]
        if page.next_after is None:
            return ids
        assert page.next_after == page.contacts[-1].id
        after = page.next_after
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("limit", [7, 100])
def test_pages_choose_what_the_scan_chooses(db_url: str, tmp_path: Path, limit: int) -> None:
    """For every filter, the pages (walked with --after) list exactly the scan's contacts."""
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, CAMPAIGN)
        agent = add_agent(world.deps, "Ann", "Agent", "+16175550100", world.now)
        with Session(world.deps.engine) as session, session.begin():
            for i in range(60):
                session.add(
                    Contact(
                        first_name=f"Lead{i}" if i % 7 else "O'N_%ell",
                        last_name="Test",
                        phone=f"+1{AREAS[i % 5]}555{i:04d}" if i % 11 else None,
                        email=f"lead{i}@example.com",
                        state=STATES[i % 6],
                        source=SOURCES[i % len(SOURCES)],
                        agent_id=agent if i % 3 == 0 else None,
                        sms_consent_at=world.now if i % 4 else None,
                        sms_opted_out_at=world.now if i % 9 == 0 else None,
                        text_status=(
                            TextStatus.CANNOT_BE_TEXTED if i % 10 == 5 else TextStatus.TEXTABLE
                        ),
                        created_at=world.now,
                        updated_at=world.now,
                    )
                )
        scan = select_contacts(world.deps, ContactFilters(textable=True))
        enroll_many(world.deps, list(scan.ids[::2]), CAMPAIGN, world.now)
        for filters in FILTERS:
            expected = list(select_contacts(world.deps, filters).ids)
            assert _all_pages(world, filters, limit) == expected, filters.describe()
        everyone = list_contacts(world.deps, ContactFilters(), limit=100, count=True)
        assert everyone.total == 60 and everyone.next_after is None
        some = list_contacts(world.deps, ContactFilters(state="MA"), limit=1, count=True)
        assert some.total == len(select_contacts(world.deps, ContactFilters(state="MA")).ids)
        assert some.next_after == some.contacts[0].id


def test_console_tables_page_by_keyset(db_url: str, tmp_path: Path) -> None:
    """The campaign page's sends and the contact search page with "next page" links, no overlap."""
    import dataclasses
    import re

    from drip.web.app import create_app
    from drip.web.console import SEARCH_SHOWN, SENDS_SHOWN

    token = "console-test-token-0123456789"
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, CAMPAIGN)
        with Session(world.deps.engine) as session, session.begin():
            for i in range(130):
                session.add(
                    Contact(
                        first_name=f"Lead{i % 4}",
                        last_name="Test",
                        phone=f"+1617555{i:04d}",
                        source=ConsentSource.IMPORT,
                        sms_consent_at=world.now,
                        created_at=world.now,
                        updated_at=world.now,
                    )
                )
        chosen = select_contacts(world.deps, ContactFilters())
        made = enroll_many(world.deps, list(chosen.ids[:90]), CAMPAIGN, world.now)
        assert made > 2 * SENDS_SHOWN
        settings = dataclasses.replace(world.deps.settings, console_token=token)
        client = create_app(dataclasses.replace(world.deps, settings=settings)).test_client()
        auth = {"Authorization": f"Bearer {token}"}
        link = re.compile(r'href="\?before=(\d+)" id="next-page"')
        send = re.compile(r'href="/console/sends/(\d+)"')
        seen: list[int] = []
        url = f"/console/campaigns/{CAMPAIGN}"
        for _ in range(10):
            page = client.get(url, headers=auth).get_data(as_text=True)
            ids = [int(x) for x in send.findall(page)]
            assert 0 < len(ids) <= SENDS_SHOWN
            seen += ids
            more = link.search(page)
            if more is None:
                break
            assert int(more.group(1)) == ids[-1]
            url = f"/console/campaigns/{CAMPAIGN}?before={more.group(1)}"
        with world.deps.sessions() as session:
            from sqlalchemy import select

            from drip.store.models import ScheduledSend

            expected = session.scalars(
                select(ScheduledSend.id)
                .where(ScheduledSend.campaign_id.is_not(None))
                .order_by(ScheduledSend.due_at.desc(), ScheduledSend.id.desc())
            ).all()
        assert seen == list(expected) and len(seen) == made
        first = client.post("/console/contacts", data={"q": "lead"}, headers=auth)
        html = first.get_data(as_text=True)
        found = re.findall(r'<td class="n">(\d+)</td>', html)
        assert len(found) == SEARCH_SHOWN
        after = re.search(r'href="/console/contacts\?q=lead&amp;after=(\d+)"', html)
        assert after is not None and after.group(1) == found[-1]
        rest = client.get(f"/console/contacts?q=lead&after={after.group(1)}", headers=auth)
        more_found = re.findall(r'<td class="n">(\d+)</td>', rest.get_data(as_text=True))
        assert len(more_found) == 130 - SEARCH_SHOWN
        assert not set(found) & set(more_found)
        assert 'id="next-page"' not in rest.get_data(as_text=True)
