"""``drip warm status|stop``: the warm servers that start ``drip replay`` fast.

See :mod:`drip.cli.warm_client` for what a warm server is. ``status`` lists
this user's servers (the one for the current code first) with how many
commands each served; ``stop`` asks each to exit (running commands finish).
"""

from __future__ import annotations

import json
import os
import socket
from typing import Annotated, Any

from drip.cli import framework as cli


def register(app: cli.App) -> None:
    """Add the ``warm`` group to ``app``."""
    warm_app = cli.App(
        help="Warm servers: drip replay served by a process with drip already imported.",
        no_args_is_help=True,
    )
    warm_app.command("status")(warm_status)
    warm_app.command("stop")(warm_stop)
    app.add_group(warm_app, name="warm")


def _ask(path: str, op: str) -> dict[str, Any] | None:
    """The server at ``path``'s answer to ``op``; None if none answers there."""
    from drip.cli.warm_protocol import ProtocolError, receive, send

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect(path)
        send(sock, {"op": op})
        answer, fds = receive(sock)
        for fd in fds:
            os.close(fd)
    except (OSError, ProtocolError):
        return None
    finally:
        sock.close()
    return answer


def _servers(folder: str) -> list[str]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if n.endswith(".sock")]


def warm_status(
    as_json: Annotated[
        bool, cli.Option("--json", help="One JSON document on standard output.")
    ] = False,
) -> None:
    """Where warm servers listen, whether warm starts are on, and each live server."""
    from drip.cli.warm_client import enabled
    from drip.cli.warm_fingerprint import code_fingerprint, runtime_dir, runtime_dir_problem

    folder = runtime_dir()
    current = code_fingerprint()
    problem = runtime_dir_problem(folder)
    servers: list[dict[str, Any]] = []
    for path in _servers(folder) if problem is None else []:
        answer = _ask(path, "status")
        if answer is not None:
            answer["current"] = answer.get("fingerprint") == current
            answer["socket"] = path
            servers.append(answer)
    servers.sort(key=lambda s: not s["current"])
    if as_json:
        document = {
            "enabled": enabled(),
            "folder": folder,
            "problem": problem,
            "fingerprint": current,
            "servers": servers,
        }
        cli.echo(json.dumps(document, indent=2))
        return
    state = "on" if enabled() else "off (DRIP_WARM=0)"
    cli.echo(f"warm starts: {state}; folder {folder}")
    if problem is not None:
        cli.echo(f"not used: {problem}")
    if not servers:
        cli.echo("no warm server running")
    for s in servers:
        which = "this code" if s["current"] else "older code, exiting"
        cli.echo(
            f"pid {s['pid']} ({which}): served {s['served']}, running {s['running']}, "
            f"idle {s['idle_for']:.0f} s of {s['idle_seconds']:.0f} s"
        )


def warm_stop() -> None:
    """Ask every warm server of this user to exit (commands they run finish first)."""
    from drip.cli.warm_fingerprint import runtime_dir, runtime_dir_problem

    folder = runtime_dir()
    problem = runtime_dir_problem(folder)
    if problem is not None:
        cli.echo(f"not used: {problem}")
        return
    stopped = [a["pid"] for p in _servers(folder) if (a := _ask(p, "stop")) is not None]
    cli.echo(f"stopped {len(stopped)} warm server(s)")
