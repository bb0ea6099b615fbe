"""Fixtures of the worker and fire-path tests: a wired ``Deps`` around the fake Twilio server.

- :class:`Rig` (``rig``, ``make_rig``): what ``drip.bootstrap.build`` gives a
  worker, on a real database (``rig_db_url``, which is ``db_url`` unless a
  module overrides it), with the real twilio SDK pointed at a
  :class:`FakeTwilioServer`, a :class:`VirtualClock`, and helpers that create
  consenting contacts (bulk-inserted), campaigns and enrollments through the
  services and fire what is due.
- :class:`CeleryRig` (``celery_rig``, ``make_celery_rig``): also configures
  ``workers.celery_app.app`` on the test's own Redis database (``redis_url``),
  under a key prefix of its own, and injects the rig's ``Deps`` into
  ``workers.tasks`` with ``use_deps``; ``CeleryRig.worker()`` runs a real
  Celery worker (``start_worker``) in a thread of the test process.
- ``celery_command``: ``celery -A workers.celery_app worker|beat`` as real
  processes, configured only by ``DRIP_*`` variables (``CeleryRig.env()``).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, bootsteps
from celery.contrib.testing.worker import start_worker
from celery.signals import task_failure, task_success
from sqlalchemy import func, insert, select

from drip.bootstrap import build
from drip.clock import VirtualClock
from drip.config import Settings
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign, Step
from drip.domain.enums import CampaignKind, ConsentSource, SendState
from drip.domain.pacing import Senders
from drip.services import dispatch
from drip.services.deps import Deps
from drip.services.enrollment import enroll_many
from drip.services.fire import FireResult
from drip.services.sync import sync_campaigns
from drip.store import repository as repo
from drip.store.models import Agent, Contact, Message, ScheduledSend
from drip.testing.fake_twilio import FakeTwilioServer
from drip.transports.recording import RecordingTransport

#: Monday 2 March 2026, 15:00 UTC = 10:00 in New York: every step of a ``day: N``
#: campaign enrolled then falls at 10:00 local, well inside the 08:00-21:00 window.
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
#: The test account's senders: tests send thousands of texts from one number, so
#: its numbers get an explicit high rate (pacing stays on; it never binds).
#: Tests of pacing give their own ``senders``.
FAST_SENDERS = Senders(default_rate=10_000)
#: The same as ``account.yaml`` in the rig's home, for drip processes (workers, CLI).
FAST_SENDERS_YAML = "senders:\n  default: 10000\n"
NEW_YORK = "America/New_York"
AGENT_PHONE = "+16175550100"
CONSENT_TEXT = "Yes, text me about homes. Msg & data rates may apply. Reply STOP to opt out."


def phone_of(n: int) -> str:
    """The ``n``-th test contact's number: +1 617 200-0000 onwards (Massachusetts)."""
    return f"+1617{2_000_000 + n:07d}"


def campaign(name: str, days: Sequence[int], *, stop_on_reply: bool = False) -> Campaign:
    """A text campaign with one step per day in ``days``; each body names its step."""
    steps = tuple(
        Step(id=f"s{i + 1}", position=i, day=day, body=f"Step {i + 1}: hi {{VisitorFirstName}}")
        for i, day in enumerate(days)
    )
    return Campaign(
        name=name, kind=CampaignKind.SMART_DRIP, steps=steps, stop_on_reply=stop_on_reply
    )


@dataclass
class Rig:
    """A worker's dependencies on a real database, the fake Twilio server and virtual time."""

    deps: Deps
    clock: VirtualClock
    twilio: FakeTwilioServer
    agent_id: int = 0
    start: datetime = START
    _next_contact: int = field(default=0)

    @staticmethod
    def phone_of(n: int) -> str:
        return phone_of(n)

    @staticmethod
    def midday_zone(now: datetime) -> str:
        return midday_zone(now)

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def at(self, when: datetime) -> datetime:
        """Move virtual time to ``when`` (never back) and return it."""
        self.clock.set(when)
        return self.clock.now()

    def add_contacts(
        self,
        n: int,
        *,
        consent: bool = True,
        timezone: str = NEW_YORK,
        state: str = "MA",
    ) -> list[int]:
        """Bulk-insert ``n`` contacts of the agent, with registration consent; their ids."""
        first = self._next_contact
        self._next_contact += n
        rows = [
            {
                "first_name": f"Lead{i}",
                "last_name": "Test",
                "phone": phone_of(i),
                "state": state,
                "timezone": timezone,
                "source": ConsentSource.REGISTRATION,
                "agent_id": self.agent_id,
                "sms_consent_at": self.now if consent else None,
                "sms_consent_source": ConsentSource.REGISTRATION if consent else None,
                "sms_consent_text": CONSENT_TEXT if consent else None,
                "created_at": self.now,
                "updated_at": self.now,
            }
            for i in range(first, first + n)
        ]
        with self.deps.sessions.begin() as session:
            return list(
                session.scalars(
                    insert(Contact).returning(Contact.id, sort_by_parameter_order=True), rows
                )
            )

    def add_campaign(self, name: str, days: Sequence[int], *, stop_on_reply: bool = False) -> None:
        """Store a campaign as ``drip sync`` does."""
        sync_campaigns(self.deps, [campaign(name, days, stop_on_reply=stop_on_reply)], self.now)

    def enroll(self, contact_ids: Sequence[int], campaign_name: str) -> int:
        """Enroll the contacts now; the number of sends scheduled."""
        return enroll_many(self.deps, contact_ids, campaign_name, self.now)

    def fire_due(self) -> list[FireResult]:
        """Claim what is due now and fire it batch by batch, as the tasks do; every result."""
        results: list[FireResult] = []
        while ids := dispatch.claim(self.deps, self.now):
            for batch in dispatch.chunks(ids, self.deps.settings.send_batch):
                results.extend(dispatch.fire(self.deps, batch, self.now))
        return results

    def states(self) -> dict[str, int]:
        """How many scheduled sends are in each state."""
        with self.deps.sessions() as session:
            return repo.count_by_state(session)

    def due_times(self) -> list[datetime]:
        """The distinct due times of the pending sends, earliest first."""
        with self.deps.sessions() as session:
            rows = session.scalars(
                select(ScheduledSend.due_at)
                .where(ScheduledSend.state == SendState.PENDING)
                .distinct()
                .order_by(ScheduledSend.due_at)
            )
            return list(rows)

    def sends_of(self, contact_id: int) -> list[ScheduledSend]:
        """A contact's scheduled sends, in due order."""
        with self.deps.sessions() as session:
            return repo.sends_of_contact(session, contact_id)

    def send_ids(self, *, state: SendState | None = None) -> list[int]:
        """Ids of all scheduled sends (in one state), in id order."""
        query = select(ScheduledSend.id).order_by(ScheduledSend.id)
        if state is not None:
            query = query.where(ScheduledSend.state == state)
        with self.deps.sessions() as session:
            return list(session.scalars(query))

    def contact(self, contact_id: int) -> Contact:
        """A contact row as committed."""
        with self.deps.sessions() as session:
            row = session.get(Contact, contact_id)
            assert row is not None
            return row

    def outbound(self) -> list[Message]:
        """Every outbound message recorded, in id order."""
        with self.deps.sessions() as session:
            rows = session.scalars(
                select(Message).where(Message.direction == "outbound").order_by(Message.id)
            )
            return list(rows)

    def count_messages(self) -> int:
        with self.deps.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def _add_agent(deps: Deps, now: datetime) -> int:
    """The agent Sam Lee (created once per database), who texts every test contact."""
    with deps.sessions.begin() as session:
        agent = repo.agent_by_phone(session, AGENT_PHONE)
        if agent is None:
            agent = Agent(first_name="Sam", last_name="Lee", phone=AGENT_PHONE, created_at=now)
            session.add(agent)
            session.flush()
        return agent.id


RigFactory = Callable[..., Rig]


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioServer]:
    """A fake Twilio Messages API on a free local port."""
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
def rig_db_url(db_url: str) -> str:
    """The database of the test's rigs: ``db_url`` (a module may override this fixture)."""
    return db_url


@pytest.fixture
def make_rig(
    rig_db_url: str, tmp_path: Path, fake_twilio: FakeTwilioServer
) -> Iterator[RigFactory]:
    """Build the test's :class:`Rig` on ``rig_db_url``; settings may be overridden by keyword."""
    built: list[Rig] = []

    def make(*, start: datetime = START, **overrides: Any) -> Rig:
        clock = VirtualClock(start)
        values: dict[str, Any] = {
            "home": tmp_path,
            "database_url": rig_db_url,
            "outbox": tmp_path / "outbox.jsonl",
            "log_level": "WARNING",
            "twilio_account_sid": fake_twilio.account_sid,
            "twilio_auth_token": fake_twilio.auth_token,
            "twilio_base_url": fake_twilio.base_url,
        }
        values.update(overrides)
        settings = Settings(**values)
        sms = fake_twilio.transport(sleep=lambda _seconds: None, backoff=lambda _n: 0.0)
        account_file = settings.home / "account.yaml"
        if not account_file.exists():  # read by the drip processes a test starts
            account_file.write_text(FAST_SENDERS_YAML, encoding="utf-8")
        deps = build(
            settings,
            clock=clock,
            sms=sms,
            email=RecordingTransport(clock=clock),
            account=AccountSettings(senders=FAST_SENDERS),
        )
        rig = Rig(deps, clock, fake_twilio, start=start)
        rig.agent_id = _add_agent(deps, rig.now)
        built.append(rig)
        return rig

    yield make
    for rig in built:
        rig.deps.engine.dispose()


@pytest.fixture
def rig(make_rig: RigFactory) -> Rig:
    """The default :class:`Rig`."""
    return make_rig()


# --------------------------------------------------------------------------- Celery


class TaskEvents:
    """What tasks did in the in-process worker: results, and errors so a test fails fast."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures: list[str] = []
        self.results: list[tuple[str, Any]] = []

    def failed(self, sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        name = getattr(sender, "name", sender)
        with self._lock:
            self.failures.append(f"{name}: {type(exception).__name__}: {exception}")

    def succeeded(self, sender: Any = None, result: Any = None, **_: Any) -> None:
        with self._lock:
            self.results.append((str(getattr(sender, "name", sender)), result))

    def results_of(self, task_name: str) -> list[Any]:
        """The return values of the finished runs of one task, in finishing order."""
        with self._lock:
            return [result for name, result in self.results if name == task_name]

    def check(self) -> None:
        with self._lock:
            failures = list(self.failures)
        if failures:
            pytest.fail("a task failed in the worker:\n" + "\n".join(failures), pytrace=False)


@dataclass
class CeleryRig:
    """A :class:`Rig` whose ``Deps`` the Celery tasks use, and the app on the test's Redis."""

    rig: Rig
    app: Celery
    redis_url: str
    key_prefix: str | None
    events: TaskEvents
    workers: list[Any] = field(default_factory=list)

    @contextmanager
    def worker(
        self, *, concurrency: int = 2, queues: Sequence[str] | None = None, name: str = "w"
    ) -> Iterator[Any]:
        """A real Celery worker (``start_worker``, threads pool) in this process.

        It consumes ``queues`` (both of drip's by default). One per process: kombu's
        Redis event loop is process-wide, so two in one process trip over each other.
        """
        kwargs: dict[str, Any] = {}
        if queues is not None:
            kwargs["queues"] = list(queues)
        with start_worker(
            self.app,
            pool="threads",
            concurrency=concurrency,
            perform_ping_check=False,
            shutdown_timeout=60.0,
            hostname=f"{name}-{secrets.token_hex(3)}@test",
            **kwargs,
        ) as controller:
            self.workers.append(controller)
            try:
                yield controller
            finally:
                self.workers.remove(controller)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a ``celery`` command for this rig (see :func:`command_env`)."""
        return command_env(self.rig, self.redis_url, **extra)

    def check_workers(self) -> None:
        """Fail if a task raised or an in-process worker stopped on an unrecoverable error."""
        self.events.check()
        for controller in self.workers:
            state = getattr(controller.blueprint, "state", None)
            if state is not None and state != bootsteps.RUN:
                pytest.fail(f"worker {controller.hostname} stopped (state {state})", pytrace=False)

    def wait_for(
        self, condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition"
    ) -> float:
        """Poll ``condition`` until true; the seconds it took. Fails on a task error or timeout."""
        started = time.monotonic()
        pause = 0.05
        while True:
            self.check_workers()
            if condition():
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                pytest.fail(f"timed out after {timeout}s waiting for {what}: {self.rig.states()}")
            time.sleep(pause)
            # Back off to 0.25 s: a condition usually counts thousands of rows, and the
            # workers being waited for need the CPU more than the poll does.
            pause = min(pause * 1.5, 0.25)

    def wait_settled(self, expected: int, *, timeout: float = 60.0) -> float:
        """Wait until ``expected`` sends are sent, skipped or failed; the seconds it took."""

        def settled() -> bool:
            states = self.rig.states()
            return sum(states.get(s, 0) for s in ("sent", "skipped", "failed")) >= expected

        return self.wait_for(settled, timeout=timeout, what=f"{expected} settled sends")


@pytest.fixture
def make_celery_rig(make_rig: RigFactory, redis_url: str) -> Iterator[Callable[..., CeleryRig]]:
    """Configure ``workers.celery_app.app`` for this test and inject the rig's ``Deps``."""
    from workers import tasks
    from workers.celery_app import configure

    events = TaskEvents()
    task_failure.connect(events.failed, weak=False)
    task_success.connect(events.succeeded, weak=False)
    made: list[CeleryRig] = []

    def make(*, key_prefix: bool = True, **overrides: Any) -> CeleryRig:
        rig = make_rig(broker_url=redis_url, **overrides)
        prefix = f"drip-test-{secrets.token_hex(4)}:" if key_prefix else None
        app = configure(rig.deps.settings, key_prefix=prefix)
        tasks.use_deps(rig.deps)
        made.append(CeleryRig(rig, app, redis_url, prefix, events))
        return made[-1]

    yield make
    task_failure.disconnect(events.failed)
    task_success.disconnect(events.succeeded)
    tasks.use_deps(None)
    for celery_rig in made:
        celery_rig.app.close()


@pytest.fixture
def celery_rig(make_celery_rig: Callable[..., CeleryRig]) -> CeleryRig:
    """The default :class:`CeleryRig`."""
    return make_celery_rig()


# --------------------------------------------------------------------------- Celery commands

REPO = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where ``now`` is about 13:00, well inside the send window."""
    offset = 13 - now.astimezone(UTC).hour  # -10 .. +13 hours from UTC
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: GMT-3 is UTC+3


@dataclass
class CeleryCommand:
    """``celery -A workers.celery_app ...`` running as a process of its own; output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for(self, needle: str, *, timeout: float = 60.0) -> None:
        """Wait until the output contains ``needle``; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited {self.process.returncode}:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: no {needle!r} after {timeout}s:\n{self.text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> int:
        """Warm shutdown (SIGTERM: finish the running tasks), killed if it takes too long."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def command_env(rig: Rig, redis_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a drip process for ``rig``: its database, the fake Twilio, Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_", "CELERY_"))}
    settings = rig.deps.settings
    env.update(
        {
            "DRIP_HOME": str(settings.home),
            "DRIP_CAMPAIGNS_DIR": str(settings.home),
            "DRIP_DATABASE_URL": settings.database_url,
            "DRIP_LOG_FORMAT": "json",
            "DRIP_LOG_LEVEL": "INFO",
            "DRIP_SECRET_KEY": "test-secret",
            "TWILIO_ACCOUNT_SID": rig.twilio.account_sid,
            "TWILIO_AUTH_TOKEN": rig.twilio.auth_token,
            "DRIP_TWILIO_BASE_URL": rig.twilio.base_url,
        }
    )
    if redis_url is not None:
        env["DRIP_BROKER_URL"] = redis_url
    env.update(extra)
    return env


@pytest.fixture
def celery_command(tmp_path: Path) -> Iterator[Callable[..., CeleryCommand]]:
    """Start ``celery -A workers.celery_app ARGS...`` with an environment; stopped after the test."""
    started: list[CeleryCommand] = []

    def start(name: str, args: Sequence[str], env: dict[str, str]) -> CeleryCommand:
        output = tmp_path / f"{name}.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [CELERY, "-A", "workers.celery_app", *args],
                cwd=REPO,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(CeleryCommand(name, process, output))
        return started[-1]

    yield start
    for command in started:
        command.stop()
