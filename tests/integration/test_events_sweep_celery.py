"""Scaled out: beat's sweep task, in a real worker, applies lead events a stopped process left stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from services_support import store_without_applying

from drip.store.models import Contact, InboxEvent
from workers import tasks
from workers.celery_app import EVENTS_SWEEP_TASK

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def test_the_sweep_task_applies_an_event_left_stored_ten_minutes_ago(celery_rig) -> None:  # type: ignore[no-untyped-def]
    """apply_stored_events in a worker applies the stored, never-applied lead.created once it is old enough."""
    rig = celery_rig.rig
    tasks.use_deps(rig.deps)
    event = {
        "id": "left-1",
        "type": "lead.created",
        "occurred_at": rig.now.isoformat(),
        "contact": {"external_id": "crm-left", "phone": "+16175550177"},
        "data": {"first_name": "Lee"},
    }
    store_without_applying(rig.deps, [event], rig.now)
    rig.at(rig.now + timedelta(minutes=11))
    tasks.apply_stored_events.apply_async(queue="dispatch")
    with celery_rig.worker(concurrency=1):
        celery_rig.wait_for(
            lambda: len(celery_rig.events.results_of(EVENTS_SWEEP_TASK)) == 1, what="the sweep"
        )
    assert celery_rig.events.results_of(EVENTS_SWEEP_TASK)[0] == {"accepted": 1}
    with rig.deps.sessions() as session:
        assert session.query(Contact).filter_by(external_id="crm-left").one().first_name == "Lee"
        assert session.query(InboxEvent).filter_by(event_id="left-1").one().processed_at is not None
