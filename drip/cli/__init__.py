"""The ``drip`` command line: plain click commands, one module per command group.

- :mod:`drip.cli.db`: ``db upgrade``, ``status``
- :mod:`drip.cli.campaigns`: ``lint``, ``preview``, ``sync``, ``campaigns ...``
- :mod:`drip.cli.contacts`: ``agents [add|deactivate]``, ``contacts add|import|list|opt-out|status|assign|erase``
- :mod:`drip.cli.enrollments`: ``enroll``, ``unenroll``, ``enroll-many``
- :mod:`drip.cli.texts`: ``text``, ``bulk``, ``bulk cancel``
- :mod:`drip.cli.operations`: ``tick``, ``run``, ``explain``, ``history``, ``stats``,
  ``queue``, ``reconcile``
- :mod:`drip.cli.retention`: ``purge``
- :mod:`drip.cli.replay`: ``replay``, ``demo``
- :mod:`drip.cli.web`: ``serve``
- :mod:`drip.cli.doctor`: ``doctor``

Commands are thin: parse, call one service, print. Every command reads the
clock once (through the bootstrap's ``Clock``) and hands ``now`` to the
service it calls. The root group imports a command's module only when that
command runs (``drip --help`` imports them all, for their summaries), and the
modules import what their commands need inside the commands, so a simple
command loads little more than the database library.

Output: a command prints its result for a person on stdout; logs go to
stderr at WARNING unless ``DRIP_LOG_LEVEL`` says otherwise.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["COMMANDS", "LazyGroup", "app", "main"]

#: Each command, in the order ``drip --help`` lists them (commands, then groups),
#: and where its click command lives (``module:attribute``). Only the chosen
#: command's module is imported (tests/unit/test_cli_table.py keeps this table and
#: the modules in step).
COMMANDS: dict[str, str] = {
    "status": "drip.cli.db:status",
    "lint": "drip.cli.campaigns:lint",
    "preview": "drip.cli.campaigns:preview",
    "sync": "drip.cli.campaigns:sync",
    "agents": "drip.cli.contacts:agents",
    "enroll": "drip.cli.enrollments:enroll",
    "unenroll": "drip.cli.enrollments:unenroll",
    "enroll-many": "drip.cli.enrollments:enroll_many",
    "text": "drip.cli.texts:text",
    "tick": "drip.cli.operations:tick",
    "run": "drip.cli.operations:run",
    "explain": "drip.cli.operations:explain",
    "history": "drip.cli.operations:history",
    "stats": "drip.cli.operations:stats",
    "queue": "drip.cli.operations:queue",
    "reconcile": "drip.cli.operations:reconcile",
    "purge": "drip.cli.retention:purge",
    "replay": "drip.cli.replay:replay",
    "demo": "drip.cli.replay:demo",
    "serve": "drip.cli.web:serve",
    "doctor": "drip.cli.doctor:doctor",
    "db": "drip.cli.db:db",
    "campaigns": "drip.cli.campaigns:campaigns",
    "contacts": "drip.cli.contacts:contacts",
    "bulk": "drip.cli.texts:bulk",
    "events": "drip.cli.events:events",
    "enrollments": "drip.cli.enrollments:enrollments",
    "webhooks": "drip.cli.webhooks:webhooks",
    "operators": "drip.cli.operators:operators",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one is run (click's lazy loading pattern).

    ``commands_at`` maps each command name to ``module:attribute`` of its click
    command; ``drip --help`` imports every module to show each summary.
    """

    def __init__(self, *args: Any, commands_at: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands_at = dict(commands_at)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands_at)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.commands_at.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{where} is not a click command")
        return command


app = LazyGroup(
    "drip",
    commands_at=COMMANDS,
    help="Drip campaigns for real-estate leads, with carrier and TCPA compliance in every send.",
    no_args_is_help=True,
)

#: Long-running services keep their INFO logs (JSON off a terminal); every
#: other command logs warnings only unless DRIP_LOG_LEVEL says otherwise.
SERVICE_COMMANDS = frozenset({"run", "serve"})


def main() -> None:
    """Console-script entry point: drip errors become one clear line and exit 1."""
    from drip.errors import DripError

    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if command not in SERVICE_COMMANDS:
        # Set before any settings are read, so it is this process's default only.
        os.environ.setdefault("DRIP_LOG_LEVEL", "WARNING")
    try:
        app.main(prog_name="drip")
    except DripError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except Exception as exc:  # a database error is one line, exit 2; anything else raises
        from drip.database_failure import database_failure

        line = database_failure(exc, f"drip {command or ''}".strip())
        if line is None:
            raise
        click.secho(line, fg="red", err=True)
        sys.exit(2)
    finally:
        _leave()


def _leave() -> None:
    """Close the command's database connections, then skip the exit-time collection.

    The engines' pooled connections are closed here (a clean goodbye to
    PostgreSQL). ``gc.freeze()`` then leaves every object the process holds
    out of the full collection the interpreter runs at exit, which would only
    free memory the operating system takes back anyway.
    """
    from drip.cli._common import BUILT

    while BUILT:
        BUILT.pop().engine.dispose()
    gc.freeze()
