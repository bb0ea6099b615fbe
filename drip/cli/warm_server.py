"""A resident process holding drip's modules imported, forking a child per warm command.

Started detached by :func:`drip.cli.warm_client.start_server_if_wanted` as
``python -c ... FINGERPRINT FOLDER IDLE_SECONDS``. It imports what the warm
commands import (:data:`PRELOAD`, lazily imported modules included), freezes
those objects out of the collector's reach (``gc.freeze``: the children's
collections do not walk, and so do not copy, the shared pages), checks that
the code it imported still has the fingerprint it was started for, and
listens on ``FOLDER/FINGERPRINT.sock``.

Each command runs in a forked child (see :mod:`drip.cli.warm_protocol`),
which takes the client's standard streams, working folder, environment,
umask and argv, and runs :func:`drip.cli.main` as a fresh process would.
What the child inherits is what importing leaves, nothing more: the server
never runs a command itself, so no database engine or connection exists
before the fork (checked), no cache (``_account``, ``_catalog``, the replay
template) has been filled, logging is configured by the command, and
``random`` reseeds itself in every child (``os.register_at_fork``).

It exits after ``IDLE_SECONDS`` without a command, when its code's
fingerprint changes (an edited file, a ``pip install``; checked every few
seconds), on ``drip warm stop`` or SIGTERM, letting running children finish.
One server per fingerprint: it holds ``FINGERPRINT.lock``. Its own output goes
to ``FINGERPRINT.log`` in the folder.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import gc
import io
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from types import FrameType
from typing import Any, NoReturn

from drip.cli.warm_fingerprint import code_fingerprint, socket_path
from drip.cli.warm_protocol import ProtocolError, receive, send

__all__ = ["PRELOAD", "main"]

#: What each warm command imports, its lazy imports included (measured: the modules
#: a replay adds to sys.modules after ``drip.cli.replay`` is imported).
PRELOAD: dict[str, tuple[str, ...]] = {
    "replay": (
        "drip.cli.replay",
        "drip.errors",
        "drip.logging",
        "drip.replay.report",
        "drip.replay.runner",
        "drip.replay.scenario",
        "drip.campaigns.fidelity",
        "drip.domain.keywords",
        "drip.parsed_cache",
        "drip.rules",
        "drip.services.callbacks",
        "drip.services.reconcile",
        "drip.services.status",
        "drip.store.schema_version",
        "phonenumbers.data.region_US",
    ),
}
#: How often the fingerprint is checked again (a stale server exits within this).
_CHECK_SECONDS = 2.0
#: How long a client may take to send its request.
_REQUEST_SECONDS = 5.0


class _Server:
    def __init__(self, fingerprint: str, folder: str, idle_seconds: float) -> None:
        self.fingerprint = fingerprint
        self.folder = folder
        self.idle_seconds = idle_seconds
        self.started = time.time()
        self.last_activity = time.monotonic()
        self.served = 0
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.listener: socket.socket | None = None
        self.lock: io.TextIOWrapper | None = None  # held for the server's life, not its children's
        self.path = socket_path(folder, fingerprint)

    # -- the loop ------------------------------------------------------------------

    def serve(self) -> None:
        assert self.path is not None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a killed server's socket; we hold the lock
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        listener.listen(64)
        self.listener = listener
        self._inode = os.stat(self.path).st_ino
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        self._wake_fds = (wake_read, wake_write)
        # SIGCHLD and SIGTERM write to the pipe, which wakes the select below.
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        selector.register(wake_read, selectors.EVENT_READ)
        next_check = time.monotonic() + _CHECK_SECONDS
        while True:
            for key, _mask in selector.select(timeout=1.0):
                if key.fileobj is wake_read:
                    with contextlib.suppress(OSError):
                        os.read(wake_read, 4096)
                elif self.listener is not None:
                    self._accept()
            self._reap()
            now = time.monotonic()
            if now >= next_check:
                next_check = now + _CHECK_SECONDS
                if code_fingerprint() != self.fingerprint:
                    self._say("the code changed: stopping")
                    self.stopping = True
            if not self.children and now - self.last_activity > self.idle_seconds:
                self._say("idle: stopping")
                self.stopping = True
            if self.stopping and self.listener is not None:
                selector.unregister(self.listener)
                self._close_listener()
            if self.stopping and not self.children:
                return

    def _on_term(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _close_listener(self) -> None:
        """Stop listening; remove the socket if it is still ours (not a newer server's)."""
        if self.listener is None or self.path is None:
            return
        self.listener.close()
        self.listener = None
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    def _say(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()}: {text}", flush=True)

    # -- one connection ------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.last_activity = time.monotonic()
        try:
            conn.settimeout(_REQUEST_SECONDS)
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", creds)[1] != os.getuid():
                conn.close()  # only this user's processes may run code as this user
                return
            request, fds = receive(conn)
        except (OSError, ProtocolError) as exc:
            self._say(f"bad request: {exc}")
            conn.close()
            return
        op = request.get("op")
        if op == "run" and len(fds) == 3:
            self._fork(conn, request, fds)
            return
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            if op == "status":
                send(conn, self._status())
            elif op == "stop":
                self.stopping = True
                send(conn, {"stopping": True, "pid": os.getpid()})
        conn.close()

    def _status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "fingerprint": self.fingerprint,
            "started": self.started,
            "served": self.served,
            "running": len(self.children),
            "idle_seconds": self.idle_seconds,
            "idle_for": time.monotonic() - self.last_activity,
            "executable": sys.executable,
        }

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            _child(self, conn, request, fds)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        self.served += 1

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            self.last_activity = time.monotonic()
            if conn is None:
                continue
            self._say(
                f"child {pid}: status {status}, cpu {usage.ru_utime:.3f} u {usage.ru_stime:.3f} s, "
                f"{usage.ru_minflt} page faults"
            )
            if os.WIFSIGNALED(status):
                result = {"signal": os.WTERMSIG(status)}
            else:
                result = {"exit": os.waitstatus_to_exitcode(status)}
            with contextlib.suppress(OSError):
                conn.settimeout(_REQUEST_SECONDS)
                send(conn, result)
            conn.close()


# -- the child ---------------------------------------------------------------------


def _child(
    server: _Server, conn: socket.socket, request: dict[str, Any], fds: list[int]
) -> NoReturn:
    """Run the command of ``request`` in this forked child, then exit with its code."""
    try:
        # What belongs to the server is closed: its socket, its wake-up pipe, its
        # signal handlers, the other clients' connections.
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if server.listener is not None:
            server.listener.close()
        for fd in server._wake_fds:
            os.close(fd)
        for other in server.children.values():
            other.close()
        if server.lock is not None:
            server.lock.close()
        conn.settimeout(_REQUEST_SECONDS)
        send(conn, {"started": os.getpid()})
        answer, extra = receive(conn)
        for fd in extra:
            os.close(fd)
        if answer.get("go") is not True:
            os._exit(0)
        conn.close()
    except BaseException:  # no "go": the client runs the command itself
        os._exit(0)
    try:
        _take_over(request, fds)
    except BaseException:  # the command was promised: report, exit 1
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
        os._exit(1)
    os._exit(_run_main())


def _text_stream(fd: int, mode: str, spec: dict[str, Any]) -> io.TextIOWrapper:
    """A standard stream on ``fd`` as the client's interpreter built it (encoding, buffering)."""
    binary: Any = open(fd, mode + "b", buffering=-1, closefd=False)  # noqa: SIM115
    stream = io.TextIOWrapper(
        binary,
        encoding=spec["encoding"],
        errors=spec["errors"],
        newline="\n",
        line_buffering=bool(spec["line_buffering"]),
        write_through=bool(spec["write_through"]),
    )
    stream.mode = mode  # type: ignore[misc]  # as the interpreter's own streams say
    return stream


def _take_over(request: dict[str, Any], fds: list[int]) -> None:
    """Become the client's process: its streams, folder, environment, umask and argv."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    specs = request["streams"]
    sys.stdin = _text_stream(0, "r", specs[0])
    sys.__stdin__ = sys.stdin  # type: ignore[misc]  # the new process's own streams
    sys.stdout = _text_stream(1, "w", specs[1])
    sys.__stdout__ = sys.stdout  # type: ignore[misc]  # the new process's own streams
    sys.stderr = _text_stream(2, "w", specs[2])
    sys.__stderr__ = sys.stderr  # type: ignore[misc]  # the new process's own streams
    os.chdir(request["cwd"])
    env = request["env"]
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    time.tzset()  # TZ may differ from the server's
    os.umask(int(request["umask"]))
    sys.argv = [str(a) for a in request["argv"]]
    # A child that ran with freezegun or a filled cache would not be a fresh process.
    assert "freezegun" not in sys.modules


def _exit_code(code: object) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_main() -> int:
    """Run ``drip.cli.main`` as the interpreter would run a script; its exit status."""
    from drip.cli import main
    from drip.cli.warm_client import disable

    disable()  # this child is the warm run: it looks for no server, starts none
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        _finish()
        # As the interpreter does on an uncaught Ctrl-C: die of SIGINT (the shell sees it).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:  # the interpreter prints it and exits 1
        traceback.print_exc()
        code = 1
    return _finish(code)


def _finish(code: int = 0) -> int:
    """Exit-time work of a normal interpreter: atexit handlers, then the streams' flush."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # the interpreter's status when flushing stdout fails
    return code


# -- start-up ----------------------------------------------------------------------


def _preload() -> None:
    """Import what the warm commands import, then keep it out of the collector's walks."""
    import importlib

    from drip.cli import _common, _import_structlog_without_rich, get_app

    gc.disable()
    try:
        _import_structlog_without_rich()
        for modules in PRELOAD.values():
            for name in modules:
                importlib.import_module(name)
        for command in PRELOAD:
            get_app().get_command(None, command)  # type: ignore[arg-type]  # registers it once
    finally:
        gc.freeze()
        gc.enable()
    # Nothing may be opened before the fork: every child builds its own engine.
    assert not _common.BUILT, "a database engine was built in the warm server"
    assert "freezegun" not in sys.modules


def main(argv: list[str]) -> None:
    """``FINGERPRINT FOLDER IDLE_SECONDS``: serve until idle, stale or stopped."""
    fingerprint, folder_name, idle = argv
    folder = folder_name
    path = socket_path(folder, fingerprint)
    if path is None:
        return
    log = os.open(
        os.path.join(folder, f"{fingerprint}.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
    )
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    lock = open(os.path.join(folder, f"{fingerprint}.lock"), "w")  # noqa: SIM115 - held for the server's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server for this code runs (or is starting)
    _preload()
    if code_fingerprint() != fingerprint:
        return  # edited while starting: the next command starts a server for the new code
    server = _Server(fingerprint, folder, float(idle))
    server.lock = lock
    server._say(f"serving {json.dumps(sorted(PRELOAD))} on {path}")
    try:
        server.serve()
    finally:
        server._close_listener()
        server._say(f"stopped after {server.served} command(s)")
        # Its log goes with it (one per code version would pile up); the empty lock
        # file stays: removing it could let two servers lock two different files.
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, f"{fingerprint}.log"))
