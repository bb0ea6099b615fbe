"""Where warm servers listen, and the fingerprint of the code they were started with.

A warm server (:mod:`drip.cli.warm_server`) keeps drip's modules imported;
it may serve a command only if it runs exactly the code a fresh process would
run. Its socket's name is a digest of everything that decides that: the
interpreter (``sys.executable``, version, flags, ``sys.path``), the locale
variables read at interpreter start-up, every file of the ``drip`` and
``workers`` packages (path, ``mtime_ns``, size) and the modification time of
every ``sys.path`` folder (a ``pip install`` adds or removes a ``*.dist-info``
folder there). An edit makes a new name: the next command starts cold, and the
old server, which re-checks its own fingerprint, exits.

This module is imported by every ``drip`` process before anything heavy, so it
uses the standard library's cheapest modules only (measured: the fingerprint
of drip's ~140 files is about 1 ms).
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys

__all__ = [
    "DirProblemError",
    "code_fingerprint",
    "runtime_dir",
    "runtime_dir_problem",
    "socket_path",
]

#: The longest path an AF_UNIX socket address holds on Linux (108 bytes with the NUL).
_MAX_SOCKET_PATH = 107
#: Environment variables the interpreter reads at start-up that change how code behaves
#: (the server's values are fixed when it starts; a client with others needs another server).
_STARTUP_ENV = ("PYTHONHASHSEED", "PYTHONUTF8", "PYTHONIOENCODING", "LC_ALL", "LC_CTYPE", "LANG")
#: The packages whose source a server holds imported.
_PACKAGES = ("drip", "workers")


class DirProblemError(Exception):
    """The runtime folder is not safe to use (owner or permissions); warm starts are off."""


def runtime_dir() -> str:
    """``$XDG_RUNTIME_DIR/drip`` when that is set, else ``/tmp/drip-<uid>``.

    Paths are strings here: ``pathlib`` costs about 10 ms to import, a tenth of a
    warm command's start-up.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return os.path.join(base, "drip")
    return f"/tmp/drip-{os.getuid()}"  # noqa: S108 - per-user, mode and owner checked


def runtime_dir_problem(folder: str) -> str | None:
    """Why ``folder`` must not be used (another owner, group/other access, not a folder).

    Anyone who can write there could put a socket of their own in the
    server's place and receive the client's environment and terminal, so the
    folder must be this user's alone (as ``$XDG_RUNTIME_DIR`` is). ``lstat``:
    a symlink is refused, not followed.
    """
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return None  # made with the right mode when a server starts
    except OSError as exc:
        return f"{folder}: {exc.strerror}"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a folder"
    if info.st_uid != os.getuid():
        return f"{folder} belongs to uid {info.st_uid}, not {os.getuid()}"
    if info.st_mode & 0o077:
        return f"{folder} has mode {stat.S_IMODE(info.st_mode):o}, not 700"
    return None


def make_runtime_dir(folder: str) -> None:
    """Create ``folder`` mode 0700 if missing; DirProblemError if it is not safe."""
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise DirProblemError(f"{folder}: {exc.strerror}") from exc
    problem = runtime_dir_problem(folder)
    if problem is not None:
        raise DirProblemError(problem)


def _package_files(root: str, digest: hashlib._Hash) -> None:
    """Feed (path, mtime_ns, size) of every file under ``root`` (bytecode caches aside)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(entry.path)
                continue
            try:
                info = entry.stat()
            except OSError:
                continue
            digest.update(f"{entry.path}\0{info.st_mtime_ns}\0{info.st_size}\n".encode())


def code_fingerprint() -> str:
    """The digest of the code a ``drip`` process started now would run (see the module doc)."""
    digest = hashlib.sha256()
    parts = [
        sys.executable,
        sys.version,
        repr(sys.flags),
        repr(sys.warnoptions),
        repr(sorted(sys._xoptions.items())),
        repr([os.environ.get(name) for name in _STARTUP_ENV]),
        repr(sys.path),
    ]
    digest.update("\0".join(parts).encode())
    for entry in sys.path:
        try:
            digest.update(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{entry}\0-\n".encode())
    # drip/cli/warm_fingerprint.py -> the folder holding the drip (and workers) packages
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    for name in _PACKAGES:
        _package_files(os.path.join(top, name), digest)
    return digest.hexdigest()[:24]


def socket_path(folder: str, fingerprint: str) -> str | None:
    """The socket of the server for ``fingerprint``; None if the path is too long to bind."""
    path = os.path.join(folder, f"{fingerprint}.sock")
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        return None
    return path
