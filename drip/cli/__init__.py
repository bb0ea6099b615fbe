"""The ``drip`` command line, assembled here from one module per command group.

- :mod:`drip.cli.db`: ``db upgrade``, ``status``
- :mod:`drip.cli.campaigns`: ``lint``, ``preview``, ``sync``, ``campaigns ...``
- :mod:`drip.cli.contacts`: ``agents``, ``contacts add|import|list|opt-out|status``
- :mod:`drip.cli.enrollments`: ``enroll``, ``unenroll``, ``enroll-many``
- :mod:`drip.cli.texts`: ``text``, ``bulk``, ``bulk cancel``
- :mod:`drip.cli.operations`: ``tick``, ``run``, ``explain``, ``history``, ``stats``, ``queue``
- :mod:`drip.cli.replay`: ``replay``, ``demo``
- :mod:`drip.cli.web`: ``serve``
- :mod:`drip.cli.warm`: ``warm status|stop`` (warm starts: :mod:`drip.cli.warm_client`)

Commands are thin: parse, call one service, print. Every command reads the
clock once (through the bootstrap's ``Clock``) and hands ``now`` to the
service it calls. Heavy imports live inside the commands so ``drip --help``
stays fast and nothing is built at import time.

Output: a command prints its result for a person on stdout; logs go to
stderr at WARNING unless ``DRIP_LOG_LEVEL`` says otherwise.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drip.cli.framework import LazyGroup

__all__ = ["COMMANDS", "app", "get_app", "main"]

#: Each command and the module whose ``register`` declares it, in the order
#: ``drip --help`` lists them (commands, then groups). Only the chosen
#: command's module is imported (tests/unit/test_cli_table.py keeps this table
#: and the modules in step).
COMMANDS: dict[str, str] = {
    "status": "drip.cli.db",
    "lint": "drip.cli.campaigns",
    "preview": "drip.cli.campaigns",
    "sync": "drip.cli.campaigns",
    "agents": "drip.cli.contacts",
    "enroll": "drip.cli.enrollments",
    "unenroll": "drip.cli.enrollments",
    "enroll-many": "drip.cli.enrollments",
    "text": "drip.cli.texts",
    "tick": "drip.cli.operations",
    "run": "drip.cli.operations",
    "explain": "drip.cli.operations",
    "history": "drip.cli.operations",
    "stats": "drip.cli.operations",
    "queue": "drip.cli.operations",
    "reconcile": "drip.cli.operations",
    "replay": "drip.cli.replay",
    "demo": "drip.cli.replay",
    "serve": "drip.cli.web",
    "db": "drip.cli.db",
    "campaigns": "drip.cli.campaigns",
    "contacts": "drip.cli.contacts",
    "bulk": "drip.cli.texts",
    "warm": "drip.cli.warm",
}

_app: LazyGroup | None = None


def get_app() -> LazyGroup:
    """The root group, built on first use.

    Not at import: click and the framework cost about 30 ms, which a command
    served by a warm server (:mod:`drip.cli.warm_client`) never needs.
    """
    global _app  # noqa: PLW0603 - built once per process
    if _app is None:
        from drip.cli.framework import LazyGroup

        _app = LazyGroup(
            "drip",
            COMMANDS,
            help="Drip campaigns for real-estate leads, with carrier and TCPA compliance in every send.",
            no_args_is_help=True,
        )
    return _app


def __getattr__(name: str) -> Any:
    """``drip.cli.app``: the root group (built lazily, see :func:`get_app`)."""
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Long-running services keep their INFO logs (JSON off a terminal); every
#: other command logs warnings only unless DRIP_LOG_LEVEL says otherwise.
SERVICE_COMMANDS = frozenset({"run", "serve"})
#: Commands a warm server may run (:mod:`drip.cli.warm_client` says how one opts in).
WARM_COMMANDS = frozenset({"replay"})


def _import_structlog_without_rich() -> None:
    """Import structlog without ``rich`` (about 60 ms of every command's start-up).

    structlog imports rich, when installed, only to offer rich tracebacks in
    its console renderer; drip formats exceptions as text before rendering
    (``format_exc_info``, so tracebacks are masked too) and never uses them.
    rich stays importable afterwards (the progress bars of bulk commands use it).
    """
    if "structlog" in sys.modules:
        return
    had_rich = "rich" in sys.modules
    saved = sys.modules.get("rich")
    sys.modules["rich"] = None  # type: ignore[assignment]  # "import rich" fails: ImportError
    try:
        import structlog  # noqa: F401
    finally:
        if had_rich:
            sys.modules["rich"] = saved  # type: ignore[assignment]
        else:
            del sys.modules["rich"]


def main() -> None:
    """Console-script entry point: drip errors become one clear line and exit 1.

    A warm command (``drip replay``) is first offered to a live warm server for
    this code (:mod:`drip.cli.warm_client`, nothing heavy imported yet); with
    none, it runs here and a server is started for the next one.
    """
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    client: ModuleType | None = None
    if command in WARM_COMMANDS:  # imported only where it can serve: no start-up cost elsewhere
        from drip.cli import warm_client

        client = warm_client
        served = client.run_warm(sys.argv[1:])
        if served is not None:
            sys.exit(served)
    from drip.cli.framework import importing, keep_imports, secho

    keep_imports()  # this process keeps what it imports: no collection walks it
    with importing():
        _import_structlog_without_rich()
        from drip.errors import DripError

    if command not in SERVICE_COMMANDS:
        # Set before any settings are read, so it is this process's default only.
        os.environ.setdefault("DRIP_LOG_LEVEL", "WARNING")
    try:
        get_app().main(prog_name="drip")
    except DripError as exc:
        secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except Exception as exc:  # a database error is one line, exit 2; anything else raises
        from drip.errors import database_failure

        line = database_failure(exc, f"drip {command or ''}".strip())
        if line is None:
            raise
        secho(line, fg="red", err=True)
        sys.exit(2)
    finally:
        _leave()
        if client is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()  # the command's output first: the server starts after it
            client.start_server_if_wanted()


def _leave() -> None:
    """Close the command's database connections, then skip the exit-time collection.

    At exit the interpreter runs a full garbage collection over every object
    the process still holds (SQLAlchemy's and the models' included): about 6%
    of the instructions of ``drip history``, to free memory the operating
    system takes back anyway. ``gc.freeze()`` leaves those objects out of it.
    What must not wait for it is done first: the engines' pooled connections
    are closed here (a clean goodbye to PostgreSQL); logging is flushed by its
    ``atexit`` handler and the standard streams by the interpreter, neither
    through the collector; drip closes its files with ``with``.
    """
    from drip.cli._common import BUILT

    while BUILT:
        BUILT.pop().engine.dispose()
    gc.freeze()
