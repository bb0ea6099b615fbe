"""The world a run happens in: its database, services and virtual clock.

Each run gets a fresh SQLite database in a temporary folder, migrated with
``drip.store.migrate.upgrade``, a :class:`VirtualClock` and one
:class:`RecordingTransport` for texts and emails. Everything else is the code
the workers and the webhook app run: ``add_contact`` registers the contact
with its consent evidence (and sends the opt-in confirmation), ``enroll``
schedules steps, ``dispatch.tick`` claims and fires what is due (policy,
footer, transport, records), ``handle_inbound`` takes replies, ``send_now``
manual texts, ``set_text_status`` and the consent functions of
``services.contacts`` the operator's changes, ``sync_campaigns`` edits.

Virtual time: the clock jumps from event to event and, in between, to each
next due time (``repository.next_due_at``), firing what is due at that very
instant. A send due at 08:00 is sent at 08:00, and a year takes a fraction of
a second because nothing waits.

Pacing (docs/compliance.md) is on as in production: a :class:`~drip.transports.pacing.LocalPacer`
whose clock is the virtual one, so a sender's slots are virtual instants; a
send that waits a few seconds for its slot does not sleep and is recorded
at the instant it was cleared (its ValidityPeriod counts the wait). The
recording transport keeps the ValidityPeriod of each text, and
``carrier: expired`` sends a 30036 status callback through
``services.status.handle_status``, the service the webhook app calls.

``drip replay`` runs each scenario alone; ``drip demo`` runs many scenarios
(one contact each) together in one database, so that they share agents,
campaigns and bulk texts the way an account does.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import time as timer
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event

from drip.bootstrap import build
from drip.clock import VirtualClock
from drip.config import Settings
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign
from drip.logging import current_level
from drip.replay.runner.checking import check
from drip.replay.runner.events import Events, Life
from drip.replay.runner.results import (
    Happening,
    ReplayError,
    ScenarioResult,
    day_number,
    read_back,
)
from drip.replay.scenario import Event, Scenario
from drip.services.deps import Deps
from drip.services.dispatch import tick
from drip.services.sync import sync_campaigns
from drip.store import repository as repo
from drip.store.engine import make_engine
from drip.transports.lookup import RecordingLookup
from drip.transports.pacing import LocalPacer
from drip.transports.recording import RecordingTransport

#: A run that ticks this often without the clock reaching its end is stuck.
MAX_TICKS = 200_000


def replay(scenario: Scenario, *, folder: Path | None = None) -> ScenarioResult:
    """Run one scenario alone in a fresh database."""
    return run_together([scenario], folder=folder)[0]


def run_together(
    scenarios: Sequence[Scenario],
    *,
    folder: Path | None = None,
    campaigns: Sequence[Campaign] = (),
    account: AccountSettings | None = None,
    broadcasts: Sequence[tuple[datetime, str]] = (),
) -> list[ScenarioResult]:
    """Run scenarios in one fresh database and one virtual clock; one result each.

    ``campaigns`` are synced as well as those the scenarios enroll in;
    ``account`` defaults to the first scenario's; ``broadcasts`` are bulk
    texts to every contact (``drip bulk BODY``) at the given instants. The
    database lives in ``folder`` when given (kept), else in a temporary
    folder (removed).
    """
    if not scenarios:
        return []
    chosen = account or scenarios[0].account
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        return _World(folder, chosen, scenarios, campaigns, broadcasts).run()
    with tempfile.TemporaryDirectory(prefix="drip-replay-") as tmp:
        return _World(Path(tmp), chosen, scenarios, campaigns, broadcasts).run()


@dataclass(frozen=True, slots=True)
class _Step:
    at: datetime
    order: tuple[int, int]
    life: Life | None  # None: a broadcast to every contact
    event: Event | None  # None: the registration at the start, or a broadcast
    body: str = ""  # a broadcast's text


class _World:
    def __init__(
        self,
        folder: Path,
        account: AccountSettings,
        scenarios: Sequence[Scenario],
        campaigns: Sequence[Campaign],
        broadcasts: Sequence[tuple[datetime, str]],
    ) -> None:
        database = folder / "replay.db"
        fresh_database(database)
        url = f"sqlite:///{database}"
        self.lives = [Life(i, s) for i, s in enumerate(scenarios)]
        first = min(s.start_instant for s in scenarios)
        self.clock = VirtualClock(first)
        self.transport = RecordingTransport(clock=self.clock)
        # The reassigned-numbers source: in memory, answering as the fake Twilio Lookup does.
        self.lookup = RecordingLookup(clock=self.clock)
        # Pacing as in production, on virtual time: a sender's slots are
        # instants of the virtual clock, and a send that waits a few seconds for its
        # slot does not sleep (it is recorded at the instant it was cleared).
        clock = self.clock
        self.pacer = LocalPacer(
            account.senders, sleep=lambda _seconds: None, clock=lambda: clock.now().timestamp()
        )
        settings = Settings(
            home=folder,
            database_url=url,
            outbox=folder / "outbox.jsonl",
            log_level=current_level(),
        )
        self.deps: Deps = build(
            settings,
            clock=self.clock,
            sms=self.transport,
            email=self.transport,
            account=account,
            pacer=self.pacer,
            engine=_engine_for(database),
            lookup=self.lookup,
        )
        self.campaigns = list(campaigns)
        self.broadcasts = list(broadcasts)
        self.events = Events(
            self.deps, self.transport, self.pacer, alone=len(self.lives) == 1, lookup=self.lookup
        )
        self.ticks = 0

    # -- the clock -----------------------------------------------------------------

    def run(self) -> list[ScenarioResult]:
        began = timer.perf_counter()
        try:
            self._sync_initial()
            steps = self._steps()
            for step in steps:
                self._advance(step.at)
                self._apply(step)
                if self._down_until(self.clock.now()) is None:
                    self._tick(self.clock.now())
            end = max(life.scenario.instant(life.scenario.end) for life in self.lives)
            self._advance(end)
            results = [self._result(life) for life in self.lives]
        finally:
            self.deps.engine.dispose()
        seconds = timer.perf_counter() - began
        share = seconds / len(results)
        return [_with_seconds(r, share) for r in results]

    def _steps(self) -> list[_Step]:
        steps: list[_Step] = []
        for life in self.lives:
            s = life.scenario
            steps.append(_Step(s.start_instant, (life.index, -1), life, None))
            for i, happening in enumerate(s.events):
                steps.append(_Step(s.instant(happening.at), (life.index, i), life, happening))
        for i, (at, body) in enumerate(self.broadcasts):
            steps.append(_Step(at, (len(self.lives), i), None, None, body))
        # Same instant: one life's events in file order; lives in the order given.
        return sorted(steps, key=lambda st: (st.at, st.order))

    def _advance(self, until: datetime) -> None:
        """Fire everything due up to ``until``, jumping from one due time to the next."""
        while True:
            with self.deps.sessions() as session:
                due = repo.next_due_at(session)
            if due is None or due > until:
                break
            at = max(due, self.clock.now())
            back = self._down_until(at)
            if back is not None:
                if back > until:
                    break
                at = back
            self.clock.set(at)
            self._tick(at)
        if until > self.clock.now():
            self.clock.set(until)

    def _tick(self, at: datetime) -> None:
        self.ticks += 1
        if self.ticks > MAX_TICKS:
            raise ReplayError(f"the replay made no progress at {at:%Y-%m-%d %H:%M} UTC")
        tick(self.deps, at)

    def _down_until(self, at: datetime) -> datetime | None:
        """The end of the downtime ``at`` falls in, or None when the dispatcher runs."""
        ends = [end for begin, end in self.events.downtimes if begin <= at < end]
        return max(ends) if ends else None

    # -- setting up ----------------------------------------------------------------

    def _sync_initial(self) -> None:
        wanted: dict[str, Campaign] = {c.name: c for c in self.campaigns}
        for life in self.lives:
            for campaign in life.scenario.campaigns:
                wanted.setdefault(campaign.name, campaign)
        if wanted:
            sync_campaigns(self.deps, list(wanted.values()), self.clock.now())

    def _apply(self, step: _Step) -> None:
        life, now = step.life, step.at
        if life is None:
            said = "; ".join(self.events.broadcast(step.body, now))
            for each in self.lives:
                each.happenings.append(
                    Happening(
                        now,
                        now.astimezone(ZoneInfo(each.scenario.zone)),
                        day_number(each.scenario, now),
                        "bulk",
                        f"bulk to every contact {first_line(step.body)!r}: {said}",
                    )
                )
            return
        line: int | None = None
        if step.event is None:
            text, what = self.events.register(life, now), "register"
        else:
            text, what = self.events.apply(life, step.event, now), step.event.kind
            line = step.event.where.line
        life.happenings.append(
            Happening(
                now,
                now.astimezone(ZoneInfo(life.scenario.zone)),
                day_number(life.scenario, now),
                what,
                text,
                line,
            )
        )

    def _result(self, life: Life) -> ScenarioResult:
        s = life.scenario
        end = s.instant(s.end)
        messages, records, pending = read_back(self.deps, self.transport, s, life.contact_ids, end)
        mismatches = check(s, messages)
        return ScenarioResult(
            scenario=s,
            contact_id=life.contact_id,
            start=s.start_instant,
            end=end,
            messages=tuple(messages),
            decisions=tuple(records),
            happenings=tuple(life.happenings),
            mismatches=tuple(mismatches),
            pending=pending,
            seconds=0.0,
        )


_template: Path | None = None


def fresh_database(path: Path) -> None:
    """A new SQLite database at ``path``, migrated to the latest schema.

    ``drip.store.migrate.upgrade`` (Alembic's imports and migrations) runs
    once into a template file, and every run starts from a byte copy of it:
    the same fresh, migrated database for a fraction of the cost. The template
    is kept in the user's cache folder (:mod:`drip.user_cache`, checked to be
    this user's own before use), named by the migration files' digest and the
    SQLAlchemy and SQLite versions, so the next ``drip replay`` process finds
    it made; without a usable cache folder it lives in a temporary folder for
    this process only.
    """
    global _template  # noqa: PLW0603 - one template per process, made on first use
    if _template is None or not _template.exists():
        _template = _cached_template() or _process_template()
    shutil.copyfile(_template, path)


def _template_name() -> str:
    import hashlib

    import sqlalchemy

    from drip.store.schema_version import migrations_digest

    key = f"{migrations_digest()}\0{sqlalchemy.__version__}\0{sqlite3.sqlite_version}"
    return f"replay-template-{hashlib.sha256(key.encode()).hexdigest()[:16]}.db"


def _make_template(target: Path) -> None:
    from drip.store.migrate import upgrade  # Alembic: imported only when needed

    upgrade(f"sqlite:///{target}")
    with closing(sqlite3.connect(target)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to copy


def _cached_template() -> Path | None:
    """The shared template for the shipped migrations, made if missing; None if not possible."""
    from drip.user_cache import private_cache_folder

    folder = private_cache_folder()
    if folder is None:
        return None
    target = folder / _template_name()
    try:
        if target.exists():
            return target
        scratch = Path(tempfile.mkdtemp(prefix=".template-", dir=folder))
        try:
            _make_template(scratch / "template.db")
            os.replace(scratch / "template.db", target)  # atomic: readers never see half a file
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except OSError:
        return None
    return target


def _process_template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="drip-replay-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    template = folder / "template.db"
    _make_template(template)
    return template


#: The one engine of this process's replays, and the database its connections open.
_engine: Engine | None = None
_database: Path | None = None


def _engine_for(database: Path) -> Engine:
    """The process's replay engine, its new connections opening ``database``.

    SQLAlchemy keeps the SQL it compiled per engine: one engine for every
    world of a ``drip replay`` call compiles each statement once, not once per
    scenario (about a fifth of a scenario's CPU time). A world empties the
    pool when it ends (``dispose``), so the next one's connections open the
    next file. Worlds run one at a time.
    """
    global _engine, _database  # noqa: PLW0603 - one engine per process, made on first use
    _database = database
    if _engine is None:
        _engine = make_engine(f"sqlite:///{database}", creator=_connect)
        _no_fsync(_engine)
    return _engine


def _connect() -> sqlite3.Connection:
    assert _database is not None
    # As SQLAlchemy opens a file database for its pool: usable from any thread.
    return sqlite3.connect(_database, check_same_thread=False)


def _no_fsync(engine: Engine) -> None:
    """A replay database is thrown away: skip fsync on commit (SQLite ``synchronous = OFF``).

    Everything else (WAL, BEGIN IMMEDIATE claims, the transactions of every
    service) stays as in production; only durability across a power cut is
    given up, which a temporary file does not need. A commit then costs
    microseconds instead of an fsync, which is most of a replay's time.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA synchronous = OFF")
        finally:
            cursor.close()


def first_line(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _with_seconds(result: ScenarioResult, seconds: float) -> ScenarioResult:
    return replace(result, seconds=seconds)
