"""Scaled out: the Celery task delivers the outbox over https to a real receiver (PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from webhook_support import receiver, self_signed

from drip.domain.account import WebhookTarget
from drip.services.inbound import handle_inbound
from workers import tasks
from workers.celery_app import WEBHOOKS_TASK

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def test_the_celery_task_delivers_over_https(
    celery_rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """deliver_webhooks in a real worker posts the reply.received to an https receiver."""
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("DRIP_TEST_HOOK_SECRET", "celery-secret")
    rig = celery_rig.rig
    with receiver(tls=(cert, key)) as hook:
        target = WebhookTarget(
            "crm", hook.url, frozenset({"reply.received"}), "DRIP_TEST_HOOK_SECRET"
        )
        deps = replace(rig.deps, account=replace(rig.deps.account, webhooks=(target,)))
        tasks.use_deps(deps)
        (cid,) = rig.add_contacts(1)
        handle_inbound(
            deps, from_phone=rig.contact(cid).phone, to_phone="+16175550100", body="Hi",
            now=rig.now,
        )  # fmt: skip
        tasks.deliver_webhooks.apply_async(queue="dispatch")
        with celery_rig.worker(concurrency=1):
            celery_rig.wait_for(
                lambda: len(celery_rig.events.results_of(WEBHOOKS_TASK)) == 1, what="the task"
            )
        assert celery_rig.events.results_of(WEBHOOKS_TASK)[0]["delivered"] == 1
        assert hook.url.startswith("https://")
        assert [g.doc["data"]["text"] for g in hook.got] == ["Hi"]
