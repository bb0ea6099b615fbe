"""The shared test fixtures themselves: Redis isolation and unreachable services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
NODE = "tests/integration/test_store_schema.py::test_agent_phone_is_unique"


def test_redis_url_is_a_database_of_the_tests_own(redis_url: str) -> None:
    """The URL names a reserved, empty database other than the base one."""
    db = int(urlsplit(redis_url).path.lstrip("/"))
    base = redis.Redis.from_url(os.environ.get("DRIP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        assert db != int(base.connection_pool.connection_kwargs.get("db", 0))
        assert base.get(f"drip-test:db-lock:{db}") is not None
    finally:
        base.close()
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def _run_with_unreachable_postgres(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["DRIP_TEST_DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            f"{NODE}[postgres]",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_unreachable_postgres_skips_outside_ci() -> None:
    """Without CI=true a test needing an unreachable PostgreSQL is skipped, naming the address."""
    result = _run_with_unreachable_postgres(ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "PostgreSQL is not reachable at postgresql+psycopg://postgres@127.0.0.1:1/test" in (
        result.stdout
    )


@pytest.mark.slow
def test_unreachable_postgres_fails_in_ci() -> None:
    """With CI=true the same test fails, with a message naming the service and address."""
    result = _run_with_unreachable_postgres(ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PostgreSQL is not reachable at postgresql+psycopg://postgres@127.0.0.1:1/test" in (
        result.stdout
    )
    assert "CI=true" in result.stdout
