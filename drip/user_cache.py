"""The user's cache folder for what drip can rebuild (the replay template database).

The folder is the platform's user cache folder for drip (``platformdirs``:
``$XDG_CACHE_HOME/drip`` or ``~/.cache/drip`` on Linux). Before anything in it
is read, it must be a real folder (not a symbolic link) owned by the current
user with no access for group or others (mode 0700): a file someone else can
write there could change what drip reads. drip creates it that way; a folder
that fails the check is not used (the caller rebuilds what it needed, in a
temporary folder) and a warning says why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def cache_folder() -> Path:
    """Where drip's user cache lives (not created, not checked)."""
    from platformdirs import user_cache_path

    return user_cache_path("drip", appauthor=False)


def private_cache_folder() -> Path | None:
    """The cache folder, created if missing, when it is safe to read; None otherwise."""
    try:
        folder = cache_folder()
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        found = os.lstat(folder)
    except (OSError, RuntimeError):  # RuntimeError: no home folder to find
        return None
    problem = unsafe_because(found)
    if problem is not None:
        log.warning("cache_folder_not_used", folder=str(folder), reason=problem)
        return None
    return folder


def unsafe_because(found: os.stat_result) -> str | None:
    """Why a folder with this ``lstat`` may not be trusted, or None when it may."""
    if not stat.S_ISDIR(found.st_mode):
        return "not a folder (a symbolic link or a file)"
    if found.st_uid != os.getuid():
        return f"owned by uid {found.st_uid}, not by the current user ({os.getuid()})"
    if found.st_mode & 0o077:
        return f"mode {stat.S_IMODE(found.st_mode):04o}: others than its owner have access"
    return None
