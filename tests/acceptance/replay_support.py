"""``drip replay --json`` as a subprocess, for the tests that check scenarios by their report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))


def replay_json(paths: Iterable[Path], *, timeout: float) -> tuple[int, dict[str, Any], str]:
    """Exit code, the JSON report (empty when stdout is not JSON) and stderr of one replay."""
    done = subprocess.run(
        [DRIP, "replay", "--json", *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        document = {}
    return done.returncode, document, done.stderr
