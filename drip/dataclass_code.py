"""Dataclass methods compiled once, kept between processes (start-up time).

``@dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and the frozen ``__setattr__`` of every class and compiles it with
``exec`` when the class is created. drip declares its values as frozen
dataclasses, about 130 of them on ``drip replay``'s path: some 680 small
compilations, about a sixth of the command's import time, the same text
compiled again in every process.

:func:`install` gives the ``dataclasses`` module an ``exec`` of its own (a
module global shadows the builtin there and nowhere else) that compiles each
text once and keeps the code object, and writes the texts compiled in this
process to the user's cache folder at exit (``marshal``, beside the parsed
files of :mod:`drip.parsed_cache`). The key is the source text itself, so a
changed class compiles its new text, and the file is named by the
interpreter's version, whose bytecode it holds. A method made from a kept code
object is the function ``exec`` would have made from the same text: same
code, same globals, same ``<string>`` file name, compiled without inheriting
this module's ``__future__`` flags, exactly as ``exec`` in ``dataclasses`` does.

The file holds code: it is read only when this user owns it and no one else
may write to it (``mkstemp`` makes it readable by this user only). It is
written to a temporary name and renamed over the old one, so a
concurrent process reads the old file or the new one, never half of one; two
processes writing at once lose one's additions, which the next run compiles
again. An unreadable, foreign or missing file, or a cache folder that cannot
be written, means compiling as before.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import hashlib
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

#: Past this many kept texts (several drip versions), keep only this process's.
MAX_KEPT = 4000

_kept: dict[str, CodeType] = {}
_used: set[str] = set()
_compiled = False


def _cache_file() -> Path:
    from drip.parsed_cache import cache_dir

    tag = hashlib.sha256(sys.version.encode()).hexdigest()[:12]
    return cache_dir() / f"dataclass-code-{sys.implementation.cache_tag}-{tag}.marshal"


def _exec(
    source: str | CodeType,
    globals: dict[str, Any] | None = None,
    locals: dict[str, Any] | None = None,
    /,
) -> None:
    """``exec`` for ``dataclasses``: a source text is compiled once per text."""
    global _compiled  # noqa: PLW0603 - a flag for the exit-time writer
    if globals is None:  # exec's default: the caller's globals (dataclasses always passes them)
        globals = sys._getframe(1).f_globals
    if isinstance(source, str):
        code = _kept.get(source)
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            _kept[source] = code
            _compiled = True
        _used.add(source)
        source = code
    builtins.exec(source, globals, locals)  # noqa: S102 - what dataclasses execs, compiled


def install() -> None:
    """Route ``dataclasses``' compilations through the kept code objects (once per process)."""
    if "exec" in vars(dataclasses):
        return  # installed already, or dataclasses has an exec of its own: leave it
    try:
        with _cache_file().open("rb") as fh:
            mode = os.fstat(fh.fileno())
            # Code to run: only from a file this user wrote and no one else can.
            mine = mode.st_uid == os.getuid() and not mode.st_mode & 0o022
            found = marshal.load(fh) if mine else None  # noqa: S302 - see above
    except Exception:  # missing, unreadable, truncated or foreign: compile as before
        found = None
    if isinstance(found, dict):
        _kept.update(
            (text, code)
            for text, code in found.items()
            if isinstance(text, str) and isinstance(code, CodeType)
        )
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    atexit.register(_save)


def _save() -> None:
    """Write the kept texts when this process compiled a new one."""
    if not _compiled:
        return
    import tempfile  # only when writing

    keep = _kept if len(_kept) <= MAX_KEPT else {t: _kept[t] for t in _used}
    try:
        target = _cache_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".dataclass-code-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                marshal.dump(keep, fh)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, RuntimeError, ValueError):  # RuntimeError: no home folder to find
        return  # a read-only or full cache folder: compile every time
