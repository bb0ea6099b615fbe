"""The Celery configuration drip asks for, and the per-process ``Deps`` of the tasks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kombu.exceptions import KombuError

from drip.config import Settings
from drip.errors import ConfigError, ValidationError
from drip.services.worker_deps import ProcessDeps
from workers.celery_app import (
    BEAT_ENTRY,
    DISPATCH_QUEUE,
    DISPATCH_TASK,
    EVENTS_SWEEP_ENTRY,
    EVENTS_SWEEP_TASK,
    FIRE_TASK,
    SEND_QUEUE,
    WEBHOOKS_ENTRY,
    WEBHOOKS_TASK,
    celery_config,
    configure,
)
from workers.tasks import BrokerError, dispatch_due, dispatch_once, fire_sends, use_deps

if TYPE_CHECKING:
    from conftest import CeleryRig, Rig, RigFactory

    from drip.services.deps import Deps

REPO = Path(__file__).resolve().parents[2]


def test_the_config_routes_queues_and_ticks_from_settings() -> None:
    """Dispatch and fire go to their own queues; beat ticks every DRIP_TICK_SECONDS, expiring."""
    settings = Settings(broker_url="redis://127.0.0.1:6379/3", tick_seconds=7)
    config = celery_config(settings, key_prefix="pfx:")
    assert config["broker_url"] == "redis://127.0.0.1:6379/3"
    assert config["broker_transport_options"] == {"global_keyprefix": "pfx:"}
    assert [q.name for q in config["task_queues"]] == [DISPATCH_QUEUE, SEND_QUEUE]
    assert config["task_routes"] == {
        DISPATCH_TASK: {"queue": DISPATCH_QUEUE},
        FIRE_TASK: {"queue": SEND_QUEUE},
    }
    assert config["beat_schedule"] == {
        BEAT_ENTRY: {
            "task": DISPATCH_TASK,
            "schedule": 7.0,
            "options": {"queue": DISPATCH_QUEUE, "expires": 7.0},
        },
        WEBHOOKS_ENTRY: {
            "task": WEBHOOKS_TASK,
            "schedule": 7.0,
            "options": {"queue": DISPATCH_QUEUE, "expires": 7.0},
        },
        EVENTS_SWEEP_ENTRY: {
            "task": EVENTS_SWEEP_TASK,
            "schedule": 300.0,
            "options": {"queue": DISPATCH_QUEUE, "expires": 300.0},
        },
    }
    assert config["task_acks_late"] is False
    assert config["task_reject_on_worker_lost"] is False
    assert config["worker_prefetch_multiplier"] == 1
    assert config["worker_hijack_root_logger"] is False
    assert config["result_backend"] is None
    assert config["task_ignore_result"] is True
    assert config["task_track_started"] is False
    assert config["task_store_errors_even_if_ignored"] is False
    assert config["worker_send_task_events"] is False
    assert config["task_send_sent_event"] is False


def test_configure_needs_a_broker() -> None:
    """Configuring the app without DRIP_BROKER_URL is refused, naming the variable."""
    with pytest.raises(ConfigError, match="DRIP_BROKER_URL"):
        configure(Settings())


def test_fire_tasks_are_acknowledged_on_start_and_never_retried(celery_rig: CeleryRig) -> None:
    """The fire task itself says: early ack, no retries, no redelivery on a lost worker."""
    assert fire_sends.acks_late is False
    assert fire_sends.max_retries == 0
    assert fire_sends.reject_on_worker_lost is False
    assert fire_sends.ignore_result is True
    route = celery_rig.app.amqp.router.route({}, FIRE_TASK)
    assert route["queue"].name == SEND_QUEUE


def test_importing_the_workers_reads_no_settings_and_builds_nothing(tmp_path: Path) -> None:
    """``import workers.tasks`` with a bad DRIP_* value succeeds: config is read when needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env["DRIP_TICK_SECONDS"] = "not-a-number"
    script = (
        "import workers.tasks as t, workers.celery_app as c\n"
        "assert not c.app.configured\n"
        "try:\n"
        "    c.app.conf.broker_url\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "ConfigError DRIP_TICK_SECONDS='not-a-number' is not valid" in done.stdout


def test_process_deps_are_built_once_injected_on_demand_and_dropped_after_fork(
    make_rig: RigFactory,
) -> None:
    """Built once by the factory; ``use`` overrides; after a fork only built ones are dropped."""
    built: list[Rig] = []

    def factory() -> Deps:
        built.append(make_rig())
        return built[-1].deps

    holder = ProcessDeps(factory)
    first = holder.get()
    assert holder.get() is first
    assert len(built) == 1
    assert not holder.injected

    holder.after_fork()  # a pool process forgets what the parent built...
    second = holder.get()
    assert second is not first
    assert len(built) == 2

    injected = make_rig()
    holder.use(injected.deps)
    assert holder.get() is injected.deps
    assert holder.injected
    holder.after_fork()  # ...but keeps what a caller injected
    assert holder.get() is injected.deps

    holder.use(None)
    assert holder.get() is not injected.deps
    assert len(built) == 3


def test_dispatch_once_rejects_a_non_positive_bound(rig: Rig) -> None:
    """``max_rounds`` below 1 is a caller error, not a silent no-op."""
    with pytest.raises(ValidationError, match="max_rounds"):
        dispatch_once(rig.deps, rig.now, lambda _ids: None, max_rounds=0)


def test_dispatch_once_stops_at_the_round_bound_and_says_more_is_due(
    make_rig: RigFactory,
) -> None:
    """With more due than the bound allows, one dispatch claims the bound and reports ``more``."""
    rig = make_rig(dispatch_batch=10, send_batch=4)
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(45), "one-step")
    published: list[list[int]] = []
    summary = dispatch_once(rig.deps, rig.now, published.append, max_rounds=3)
    assert (summary.claimed, summary.rounds, summary.more) == (30, 3, True)
    assert [len(b) for b in published] == [4, 4, 2] * 3
    summary = dispatch_once(rig.deps, rig.now, published.append, max_rounds=3)
    assert (summary.claimed, summary.rounds, summary.more) == (15, 2, False)
    assert sorted(i for b in published for i in b) == rig.send_ids()


def test_an_unreachable_broker_is_reported_and_the_claims_wait_for_recovery(
    make_rig: RigFactory,
) -> None:
    """A broker that refuses connections: BrokerError from kombu's error; sends stay queued."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rig = make_rig(broker_url=f"redis://127.0.0.1:{port}/0")
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(3), "one-step")
    rig.at(rig.start + timedelta(minutes=1))
    configure(rig.deps.settings)
    use_deps(rig.deps)
    try:
        with pytest.raises(BrokerError, match="go back to pending after 300 s") as caught:
            dispatch_due()
    finally:
        use_deps(None)
    assert isinstance(caught.value.__cause__, KombuError)
    assert rig.states() == {"queued": 3}
