"""``drip run``: the embedded service on one machine, with no broker.

The main thread ticks (recover, claim, fire) every ``DRIP_TICK_SECONDS``; the
webhook app is served from a background thread, and the account's outgoing
webhooks are delivered from another (:mod:`drip.services.webhooks`). SIGINT and SIGTERM set a stop
event: the current tick finishes, the server shuts down, and the process
exits 0. A tick is never interrupted half-way, so no send is left in
``sending`` by a clean stop. Every :data:`SWEEP_EVERY` the loop also applies the
lead events a stopped process left stored and never applied.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime
from types import FrameType

import structlog

from drip.services.deps import Deps
from drip.services.dispatch import tick
from drip.services.event_timing import SWEEP_EVERY

log = structlog.get_logger("drip.run")


def install_stop_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def serve_in_background(deps: Deps, host: str, port: int) -> Callable[[], None] | None:
    """Start the webhook app in a thread; returns the function that stops it."""
    try:
        from drip.web.app import create_app
    except ModuleNotFoundError:
        log.warning("web_app_missing", hint="webhooks are not served")
        return None
    from werkzeug.serving import make_server

    server = make_server(host, port, create_app(deps), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="drip-web", daemon=True)
    thread.start()
    log.info("serving", host=host, port=server.server_port)
    return server.shutdown


def run(
    deps: Deps,
    stop: threading.Event,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    serve: bool = True,
    on_tick: Callable[[str], None] | None = None,
) -> int:
    """Loop until ``stop`` is set; returns how many ticks ran."""
    from drip.services import webhooks

    delivering = webhooks.start_thread(deps, stop)  # a bad webhook is refused before any tick
    shutdown = serve_in_background(deps, host, port) if serve else None
    ticks = 0
    swept: datetime | None = None
    try:
        while not stop.is_set():
            summary = tick(deps, deps.clock.now())
            ticks += 1
            swept = sweep_events(deps, swept)
            if summary.claimed and on_tick is not None:
                counts = ", ".join(f"{n} {k}" for k, n in sorted(summary.counts().items()))
                on_tick(f"{summary.claimed} due: {counts}")
            stop.wait(deps.settings.tick_seconds)
    finally:
        if shutdown is not None:
            shutdown()
        stop.set()
        if delivering is not None:
            delivering.join(timeout=15)
    log.info("stopped", ticks=ticks)
    return ticks


def sweep_events(deps: Deps, swept: datetime | None) -> datetime | None:
    """Every :data:`SWEEP_EVERY`, apply the lead events a stopped process left stored
    (as beat's sweep task does scaled out); when it last swept."""
    from drip.services.events import apply_unapplied

    now = deps.clock.now()
    if swept is not None and now - swept < SWEEP_EVERY:
        return swept
    result = apply_unapplied(deps, now)
    if result.outcomes:
        log.warning("stored_events_applied", **dict(result.counts()))
    return now
