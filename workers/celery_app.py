"""The Celery application of drip: two queues, the beat schedule, at-most-once sends.

``celery -A workers.celery_app worker`` and ``celery -A workers.celery_app beat``
find :data:`app` here. The app object is created at import, because Celery's
command line needs a module attribute; its *configuration* is not. It is read
from :meth:`drip.config.Settings.from_env` once, the first time Celery needs
it (worker or beat start-up, the first task sent), through a lazy mapping
handed to ``config_from_object``. Tests and embedded callers call
:func:`configure` with explicit :class:`~drip.config.Settings` instead, before
or after that (the app is then reconfigured and its broker connections
dropped).

Configuration (see :func:`celery_config`):

- broker ``DRIP_BROKER_URL``: required here; without it the worker and beat
  exit at once saying so (without a broker drip runs embedded, ``drip run``,
  and Celery is not used). Results go to
  ``DRIP_RESULT_BACKEND`` if set, but every task ignores its result;
- queues: ``dispatch`` for :func:`workers.tasks.dispatch_due`, ``send`` for
  :func:`workers.tasks.fire_sends`. A plain ``worker`` consumes both; run
  ``worker -Q send`` to add send-only workers. Tasks are routed by queue name
  only, so kombu publishes them through the default exchange straight to the
  queue's list: no Redis binding keys are involved, and a flushed or
  restarted Redis does not leave publishers sending into the void;
- beat: ``dispatch_due`` every ``DRIP_TICK_SECONDS`` (15), expiring after
  one tick, so a backlog of ticks built up while workers were down is
  dropped rather than run in a burst (the next tick does the same work);
- at most once: fire tasks are acknowledged when they start (``acks_late``
  off), are never retried automatically, and are not redelivered when a
  worker is lost. Duplicates of a fire task (a redelivery by the broker, a
  task published twice) are harmless anyway: ``queued -> sending`` is a
  conditional update that only one caller wins. Prefetch is 1, because fire
  tasks are batches that take a while and reserving more only delays them
  behind a busy worker;
- no per-task bookkeeping: results ignored, no STARTED state, no task
  events (``-E`` turns them on for monitoring);
- logging: Celery's ``setup_logging`` signal configures drip's own masked
  structlog logging (``DRIP_LOG_FORMAT``, ``DRIP_LOG_LEVEL``), so Celery
  neither replaces it nor hijacks the root logger; Celery's own records go
  through drip's handler and its masking.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Final

from celery import Celery
from celery.signals import beat_init, celeryd_init, setup_logging, worker_init
from kombu.entity import Queue

from drip.config import Settings
from drip.errors import ConfigError
from drip.logging import configure_logging
from drip.services.event_timing import SWEEP_EVERY

__all__ = [
    "DISPATCH_QUEUE",
    "DISPATCH_TASK",
    "FIRE_TASK",
    "SEND_QUEUE",
    "app",
    "celery_config",
    "configure",
    "current_settings",
]

DISPATCH_QUEUE: Final = "dispatch"
SEND_QUEUE: Final = "send"
DISPATCH_TASK: Final = "workers.tasks.dispatch_due"
WEBHOOKS_TASK: Final = "drip.deliver_webhooks"
WEBHOOKS_ENTRY: Final = "drip-deliver-webhooks"
EVENTS_SWEEP_TASK: Final = "drip.apply_stored_events"
EVENTS_SWEEP_ENTRY: Final = "drip-apply-stored-events"
#: How often beat applies lead events a stopped process left stored (they wait
#: drip.services.event_timing.RETAKE_AFTER first).
EVENTS_SWEEP_SECONDS: Final = SWEEP_EVERY.total_seconds()
FIRE_TASK: Final = "workers.tasks.fire_sends"
BEAT_ENTRY: Final = "dispatch-due"

#: Libraries that narrate routine work at INFO: only their warnings are kept.
_CHATTY_LOGGERS: Final = ("twilio.http_client", "alembic")


NO_BROKER: Final = (
    "DRIP_BROKER_URL is not set: Celery workers and beat need a broker such as "
    "redis://localhost:6379/0. Without a broker, run `drip run`, which dispatches "
    "and sends in-process."
)


def celery_config(settings: Settings, *, key_prefix: str | None = None) -> dict[str, Any]:
    """The Celery settings of drip for ``settings``.

    Without ``DRIP_BROKER_URL`` the broker is left out (reading the
    configuration must not fail: Celery binds tasks while reading it), and
    the worker and beat refuse to start instead (:func:`_require_broker`).
    ``key_prefix`` puts every Redis key of the broker under that prefix
    (kombu's ``global_keyprefix``), for several deployments, or test runs,
    sharing one Redis database.
    """
    transport_options: dict[str, Any] = {}
    if key_prefix:
        transport_options["global_keyprefix"] = key_prefix
    tick = float(settings.tick_seconds)
    config: dict[str, Any] = {
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options,
        "result_backend": settings.result_backend,
        "task_ignore_result": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "enable_utc": True,
        "timezone": "UTC",
        "task_queues": (
            Queue(DISPATCH_QUEUE),  # type: ignore[no-untyped-call]  # kombu's __init__ is untyped
            Queue(SEND_QUEUE),  # type: ignore[no-untyped-call]
        ),
        "task_default_queue": SEND_QUEUE,
        "task_routes": {
            DISPATCH_TASK: {"queue": DISPATCH_QUEUE},
            FIRE_TASK: {"queue": SEND_QUEUE},
        },
        # At most once: acknowledge on start, never redeliver on a lost worker.
        "task_acks_late": False,
        "task_reject_on_worker_lost": False,
        # A fire task is a batch of DRIP_SEND_BATCH sends (0.1-1 s of work): a task
        # reserved beyond one per pool process only waits behind a busy one while
        # an idle worker could have taken it.
        "worker_prefetch_multiplier": 1,
        # No per-task bookkeeping nobody reads (Celery's defaults, pinned so that a
        # config change has to be deliberate): results are ignored and no STARTED
        # state is stored (each would be a result-backend write per task), and no
        # task events are published (three Redis publishes per task, plus one per
        # task sent by dispatch_due) unless a worker is started with -E or Flower
        # turns them on to monitor it (per fire task, not per send: cheap then).
        # A send's outcome is in the database and in its send_decided line.
        "task_track_started": False,
        "task_store_errors_even_if_ignored": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        # drip's logging stays in place (see the setup_logging receiver below).
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "beat_schedule": {
            BEAT_ENTRY: {
                "task": DISPATCH_TASK,
                "schedule": tick,
                "options": {"queue": DISPATCH_QUEUE, "expires": tick},
            },
            # The outbox: outgoing webhooks, delivered where dispatch runs.
            WEBHOOKS_ENTRY: {
                "task": WEBHOOKS_TASK,
                "schedule": tick,
                "options": {"queue": DISPATCH_QUEUE, "expires": tick},
            },
            # Lead events a stopped process stored and never applied.
            EVENTS_SWEEP_ENTRY: {
                "task": EVENTS_SWEEP_TASK,
                "schedule": EVENTS_SWEEP_SECONDS,
                "options": {"queue": DISPATCH_QUEUE, "expires": EVENTS_SWEEP_SECONDS},
            },
        },
    }
    if settings.broker_url is not None:
        config["broker_url"] = settings.broker_url
    return config


class _State:
    """The Settings the app was configured with (from the environment or :func:`configure`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings: Settings | None = None


_state = _State()


class _FromEnvironment(Mapping[str, Any]):
    """Celery's configuration source: computed from ``Settings.from_env()`` on first read."""

    def __init__(self) -> None:
        self._config: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._config is None:
            with _state.lock:
                if _state.settings is None:
                    _state.settings = Settings.from_env()
                self._config = celery_config(_state.settings)
        return self._config

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


app = Celery("drip", include=["workers.tasks"])
app.config_from_object(_FromEnvironment())


def configure(settings: Settings, *, key_prefix: str | None = None) -> Celery:
    """Configure :data:`app` from ``settings`` rather than the environment; returns the app.

    For tests and embedded callers; ``settings`` must name a broker
    (``ConfigError`` otherwise). Pooled broker connections of an earlier
    configuration are dropped, so the next task goes to the new broker.
    """
    if settings.broker_url is None:
        raise ConfigError(NO_BROKER)
    config = celery_config(settings, key_prefix=key_prefix)
    with _state.lock:
        _state.settings = settings
    # Drop the connection and producer pools of the previous broker. Celery's
    # close() forgets the first; the second is cached on app.amqp (what
    # Celery's own after-fork hook resets).
    app.close()
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    app.config_from_object(config, force=True)
    return app


def current_settings() -> Settings:
    """The Settings the app runs with, read from the environment on first use if not given."""
    if _state.settings is None:
        _ = app.conf.broker_url  # loads the configuration, and with it the settings
    assert _state.settings is not None  # set by _FromEnvironment or configure
    return _state.settings


def _setup_logging(**_: Any) -> None:
    """Celery's logging set-up: drip's masked structlog logging instead of Celery's own."""
    current = current_settings()
    configure_logging(current.log_format, current.log_level)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _require_broker(**_: Any) -> None:
    """Worker or beat start-up: stop at once, with the reason, when no broker is configured.

    ``SystemExit``, because Celery's signals log and swallow any ``Exception``.
    """
    if current_settings().broker_url is None:
        raise SystemExit(f"drip: {NO_BROKER}")


def _serve_metrics(**_: Any) -> None:
    """Worker start-up (main process): serve ``/metrics`` on ``DRIP_METRICS_PORT`` if set.

    With ``PROMETHEUS_MULTIPROC_DIR`` set, it reports what every pool process counted.
    """
    port = current_settings().metrics_port
    if port is None:
        return
    from prometheus_client import start_http_server

    from drip import metrics

    start_http_server(port, registry=metrics.registry())
    logging.getLogger("drip.workers").info("worker metrics on port %s", port)


# Celery's signals are untyped, hence the call form rather than the decorator.
setup_logging.connect(_setup_logging)
worker_init.connect(_serve_metrics)
celeryd_init.connect(_require_broker)
beat_init.connect(_require_broker)
