"""``drip operators add|list|disable``: accounts with a role and an Argon2 password hash.

The real ``drip`` console script in a temporary folder (SQLite), as in test_cli_operations.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from test_cli_operations import DRIP, Shell

from drip.store.models import Operator

PASSWORD = "correct horse battery"


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    """A folder with a migrated database."""
    (tmp_path / "campaigns").mkdir()
    sh = Shell(tmp_path)
    sh("db", "upgrade")
    return sh


def _add(sh: Shell, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DRIP, "operators", "add", *args, "--password-stdin"],
        cwd=sh.workdir,
        env=sh.env,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_add_list_disable(shell: Shell) -> None:
    """An added operator is listed with its role; the hash is Argon2id, never the password."""
    added = _add(shell, "dana.k", "--role", "compliance")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "operator dana.k added, role compliance\n"
    assert _add(shell, "vic", "--role", "viewer").returncode == 0
    listed = shell("operators", "list")
    assert "dana.k" in listed and "compliance" in listed and "vic" in listed
    assert listed.count("active") == 2
    engine = create_engine(f"sqlite:///{shell.db}")
    with Session(engine) as session:
        row = session.scalars(select(Operator).where(Operator.name == "dana.k")).one()
        assert row.password_hash.startswith("$argon2id$")
        assert PASSWORD not in row.password_hash
    engine.dispose()
    assert shell("operators", "disable", "vic") == (
        "operator vic disabled: cannot log in; open sessions end\n"
    )
    assert "disabled" in shell("operators", "list")
    assert "already disabled" in shell("operators", "disable", "vic")


def test_bad_input_exits_1_with_a_reason(shell: Shell) -> None:
    """A duplicate name, a short password, a bad name, an unknown role or name: exit 1 or 2."""
    assert _add(shell, "sam", "--role", "operator").returncode == 0
    again = _add(shell, "sam", "--role", "viewer")
    assert again.returncode == 1 and "exists already" in again.stderr
    short = _add(shell, "kim", "--role", "viewer", password="short")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    bad = _add(shell, "no spaces", "--role", "viewer")
    assert bad.returncode == 1 and "NAME" in bad.stderr
    role = _add(shell, "kim", "--role", "admin")
    assert role.returncode == 2 and "admin" in role.stderr
    assert "no operator named 'nobody'" in shell("operators", "disable", "nobody", code=1)
    no_tty = shell.run("operators", "add", "kim", "--role", "viewer")
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
