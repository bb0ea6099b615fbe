"""WSGI entry point for gunicorn; importing it builds nothing.

Two ways to run it (both read the ``DRIP_*`` and ``TWILIO_*`` environment
through :func:`drip.bootstrap.build`):

- ``gunicorn 'drip.web.wsgi:app'`` (what docker-compose runs): ``app`` is a
  small WSGI callable that builds the real Flask app on the first request
  it receives, once per worker process (under a lock, so threaded workers
  build it once). A configuration error shows as a 500 and a log line on
  that first request.
- ``gunicorn 'drip.web.wsgi:make_app()'``: gunicorn calls the factory when a
  worker loads the app, so a configuration error stops the worker at boot.

Do not combine either with ``--preload``: the database engine must be
created in the worker, not in the master before it forks (a pooled
connection shared across processes breaks). ``drip serve`` runs the same app
with Flask's threaded server, for development and single-machine installs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask


def make_app() -> Flask:
    """The Flask app, built now from the environment."""
    from drip.bootstrap import build
    from drip.web.app import create_app

    return create_app(build())


class LazyApp:
    """A WSGI app that builds :func:`make_app` on its first call, once per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._app: WSGIApplication | None = None

    def _get(self) -> WSGIApplication:
        app = self._app
        if app is None:
            with self._lock:
                if self._app is None:
                    self._app = make_app()
                app = self._app
        return app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._get()(environ, start_response)

    def __getattr__(self, name: str) -> Any:
        # Tools that expect a Flask object (``flask --app``) reach the built app.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._get(), name)


#: ``gunicorn 'drip.web.wsgi:app'``
app = LazyApp()
