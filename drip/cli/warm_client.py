"""The ``drip`` side of warm starts: hand the command to a live warm server, or start one.

A ``drip replay`` process spends about twice as long importing Python,
SQLAlchemy and drip as replaying a scenario. A warm server
(:mod:`drip.cli.warm_server`) keeps those modules imported and forks a child
per command; this module, run first by :func:`drip.cli.main` before anything
heavy is imported, looks for a server started from exactly this code (the
socket's name is the code's fingerprint, :mod:`drip.cli.warm_fingerprint`),
sends it the command with this process's standard streams, and exits as the
command did. With no live server the command runs in this process as
always, and a server is started for the next one.

Only the commands of :data:`drip.cli.WARM_COMMANDS` are served warm: local commands
with no lasting state in the process (a command opts in by being listed here
and by its modules being listed in ``warm_server.PRELOAD``). ``DRIP_WARM=0``
turns warm starts off (neither used nor started). Every failure before the
child has been told to go makes the command run here instead; after it, the
command belongs to the child, so it is never run twice nor lost.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
from types import FrameType
from typing import Any, NoReturn

from drip.cli.warm_fingerprint import (
    code_fingerprint,
    runtime_dir,
    runtime_dir_problem,
    socket_path,
)
from drip.cli.warm_protocol import ProtocolError, receive, send

__all__ = ["disable", "enabled", "run_warm", "start_server_if_wanted"]

#: How long the steps before "go" may take before the command runs here instead.
_HANDSHAKE_SECONDS = 5.0
#: Signals a person sends the command (Ctrl-C, kill, a closed terminal): passed to the child.
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Default life of an idle server (``DRIP_WARM_IDLE_SECONDS`` changes it).
DEFAULT_IDLE_SECONDS = 600

#: False in a warm server's child (it must not look for a server: itself) and after DRIP_WARM=0.
_enabled = True
#: The fingerprint to start a server for, once the command has run here (no live server).
_start_for: str | None = None


def disable() -> None:
    """No warm start from this process (a warm server's child runs the command itself)."""
    global _enabled  # noqa: PLW0603 - one switch per process
    _enabled = False


def enabled() -> bool:
    """Whether this process may use or start a warm server (``DRIP_WARM=0`` says no)."""
    return _enabled and os.environ.get("DRIP_WARM", "1") != "0"


def _stream_spec(stream: Any, fd: int) -> dict[str, Any] | None:
    """How the child must rebuild ``stream``; None if it is not this process's own ``fd``.

    A caller that replaced ``sys.stdout`` (``contextlib.redirect_stdout``, a test
    runner) expects the output there, which a child writing to fd 1 would miss.
    """
    try:
        if stream is None or stream.fileno() != fd:
            return None
        os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return None
    return {
        "encoding": stream.encoding,
        "errors": stream.errors,
        "line_buffering": stream.line_buffering,
        "write_through": getattr(stream, "write_through", False),
    }


def run_warm(argv: list[str]) -> int | None:
    """Run ``drip ARGV`` (a warm command: :func:`drip.cli.main` checks) in a live warm
    server: its exit code; None to run it here.

    Costs about a millisecond when there is no server (the fingerprint and one
    ``connect``). Exits this process by the same signal when the command died of one.
    """
    global _start_for  # noqa: PLW0603 - remembered for start_server_if_wanted
    if not enabled():
        return None
    streams = [_stream_spec(s, fd) for fd, s in enumerate((sys.stdin, sys.stdout, sys.stderr))]
    if any(s is None for s in streams):
        return None
    folder = runtime_dir()
    if runtime_dir_problem(folder) is not None:
        return None  # `drip warm status` says why
    fingerprint = code_fingerprint()
    path = socket_path(folder, fingerprint)
    if path is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(_HANDSHAKE_SECONDS)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            _start_for = fingerprint  # none there, or a dead one's socket: start one
            return None
        except OSError:
            return None
        child = _handshake(sock, argv, streams)
        if child is None:
            return None
        return _wait(sock, child)
    finally:
        sock.close()


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _handshake(
    sock: socket.socket, argv: list[str], streams: list[dict[str, Any] | None]
) -> tuple[int, int | None] | None:
    """Send the command and say "go": (child pid, pidfd); None if it must run here."""
    try:
        if _peer_uid(sock) != os.getuid():
            return None  # not our server: tell it nothing
        cwd = os.getcwd()
        umask = os.umask(0o022)
        os.umask(umask)
        request = {
            "op": "run",
            "argv": [sys.argv[0], *argv],
            "cwd": cwd,
            "env": dict(os.environ),
            "umask": umask,
            "streams": streams,
        }
        send(sock, request, [0, 1, 2])
        reply, fds = receive(sock)
        for fd in fds:
            os.close(fd)
        pid = reply.get("started")
        if not isinstance(pid, int) or pid <= 0:
            return None
        pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            # A handle on this very process: signals can never reach a recycled pid.
            pidfd = os.pidfd_open(pid)
        # From "go" on, a Ctrl-C belongs to the child: held back until _wait forwards it.
        signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
        try:
            send(sock, {"go": True})
        except BaseException:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
            if pidfd is not None:
                os.close(pidfd)
            raise
    except (OSError, ProtocolError, ValueError):
        # Nothing told the child to go: it exits without running; the command runs here.
        return None
    return pid, pidfd


def _wait(sock: socket.socket, child: tuple[int, int | None]) -> int:
    """The command's exit code, forwarding signals to the child until it is reaped."""
    pid, pidfd = child

    def forward(signum: int, _frame: FrameType | None) -> None:
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(pid, signum)
        except OSError:
            pass  # already gone: its status is on the way

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)  # one sent meanwhile arrives now
    sock.settimeout(None)
    try:
        result, fds = receive(sock)
        for fd in fds:
            os.close(fd)
    except (OSError, ProtocolError):
        # The server went away with the command started: its outcome cannot be known.
        # Wait for the child to finish (its output is the user's), then say so.
        if pidfd is not None:
            import select

            select.select([pidfd], [], [])
        sys.stderr.write(
            "drip: the warm server stopped while the command ran; its exit status is unknown\n"
        )
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pidfd is not None:
            os.close(pidfd)
    died_of = result.get("signal")
    if isinstance(died_of, int):
        _die_of(died_of)
    code = result.get("exit")
    return code if isinstance(code, int) else 1


def _die_of(signum: int) -> NoReturn:
    """End this process by ``signum``, as the command's did (the shell sees the same)."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # a signal whose default is not to end the process


def start_server_if_wanted() -> None:
    """Start a detached warm server when this process found none for its code.

    Called once the command is done (its output flushed), so the server's
    imports do not compete with the command for the CPU. Only one server per
    fingerprint runs (the server takes a lock; a second one exits at once).
    """
    fingerprint = _start_for
    if fingerprint is None or not enabled():
        return
    import json
    import subprocess

    from drip.cli.warm_fingerprint import DirProblemError, make_runtime_dir

    folder = runtime_dir()
    try:
        make_runtime_dir(folder)
    except DirProblemError:
        return
    idle = os.environ.get("DRIP_WARM_IDLE_SECONDS", str(DEFAULT_IDLE_SECONDS))
    # The server's sys.path must be this process's (it is part of the fingerprint), not
    # the one ``python -c`` would give it; the interpreter flags likewise.
    launcher = (
        "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
        "from drip.cli.warm_server import main; main(sys.argv[2:])"
    )
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    try:
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                *flags,
                "-c",
                launcher,
                json.dumps(sys.path),
                fingerprint,
                folder,
                idle,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",  # holds no folder of the user's busy
            start_new_session=True,  # no terminal: Ctrl-C and a closed terminal leave it be
            close_fds=True,
        )
    except OSError:
        return


def socket_for_this_code() -> str | None:
    """The socket a server for this code listens on (for ``drip warm status``)."""
    return socket_path(runtime_dir(), code_fingerprint())
