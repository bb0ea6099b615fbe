"""One ``Deps`` per worker process: built on first use, replaceable by tests, dropped at fork.

Celery tasks (and any other long-lived worker loop) need the same
dependencies for every task they run, but must not build them at import
time, and a prefork worker must not share the parent's database connections
or HTTP connection pools with its children. :class:`ProcessDeps` holds them:

- :meth:`get` returns the injected ``Deps`` if a caller gave one with
  :meth:`use` (tests: a fake Twilio transport, a test database, a virtual
  clock; embedded workers), else builds them once with the factory
  (``drip.bootstrap.build``) and keeps them for the life of the process;
- :meth:`after_fork` (Celery's ``worker_process_init``) forgets ``Deps`` the
  parent built, without closing the parent's connections
  (``Engine.dispose(close=False)``, as SQLAlchemy advises after a fork), so the
  child builds its own on first use. Injected ``Deps`` are kept: whoever
  injected them owns them;
- :meth:`close` (``worker_process_shutdown``) disposes the engine of ``Deps``
  it built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from drip.services.deps import Deps

__all__ = ["ProcessDeps"]


class ProcessDeps:
    """A lazily built, per-process ``Deps``; thread-safe."""

    def __init__(self, factory: Callable[[], Deps]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._deps: Deps | None = None
        self._built = False  # True when self._deps came from the factory

    def get(self) -> Deps:
        """The injected ``Deps``, else the ones built for this process (built now if needed)."""
        deps = self._deps
        if deps is not None:
            return deps
        with self._lock:
            if self._deps is None:
                self._deps = self._factory()
                self._built = True
            return self._deps

    def use(self, deps: Deps | None) -> None:
        """Use ``deps`` from now on (None: build from settings again on next use).

        ``Deps`` built earlier by the factory are disposed of; injected ones are
        left to their owner.
        """
        with self._lock:
            old, built = self._deps, self._built
            self._deps, self._built = deps, False
        if built and old is not None and old is not deps:
            old.engine.dispose()

    @property
    def injected(self) -> bool:
        """True when the current ``Deps`` were given with :meth:`use`."""
        return self._deps is not None and not self._built

    def after_fork(self) -> None:
        """In a forked child: forget ``Deps`` the parent built, leaving its connections alone."""
        with self._lock:
            if self._deps is not None and self._built:
                self._deps.engine.dispose(close=False)
                self._deps, self._built = None, False

    def close(self) -> None:
        """Dispose of the engine of ``Deps`` built here (process shutdown)."""
        with self._lock:
            if self._deps is not None and self._built:
                self._deps.engine.dispose()
                self._deps, self._built = None, False
