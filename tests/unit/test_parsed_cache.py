"""Parsed data kept between processes: the same values as a parse, parsed again when anything changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drip import parsed_cache
from drip.bootstrap import load_account
from drip.campaigns.account_file import load_account as parse_account_file
from drip.config import Settings
from drip.errors import CampaignError
from drip.parsed_cache import load_cached
from drip.rules import _build_area_code_table, area_code_table

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "drip"


def _never() -> dict[str, int]:
    raise AssertionError("the cached value should have been read")


def test_a_second_load_reads_the_kept_value(cache_home: Path) -> None:
    """The first load parses and keeps; the second returns an equal value without parsing."""
    assert load_cached("thing", b"a: 1", lambda: {"a": 1}, dict) == {"a": 1}
    assert load_cached("thing", b"a: 1", _never, dict) == {"a": 1}
    assert len(list(cache_home.glob("thing-*.pickle"))) == 1


def test_other_bytes_parse_again_and_the_cache_stays_small(cache_home: Path) -> None:
    """An edited input is parsed again; only the newest few versions stay in the cache folder."""
    load_cached("thing", b"a: 1", lambda: {"a": 1}, dict)
    assert load_cached("thing", b"a: 2", lambda: {"a": 2}, dict) == {"a": 2}
    assert load_cached("thing", b"a: 1", _never, dict) == {"a": 1}  # both kept
    for n in range(3, 3 + parsed_cache.KEEP_VERSIONS):
        load_cached("thing", str(n).encode(), lambda: {"a": 0}, dict)
    assert len(list(cache_home.glob("thing-*.pickle"))) == parsed_cache.KEEP_VERSIONS


def test_an_edited_parser_file_parses_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key covers drip's own parser and data files, not only the input."""
    first = parsed_cache.cache_key(b"x")
    monkeypatch.setattr(parsed_cache, "_code_stamp", lambda: b"another drip")
    assert parsed_cache.cache_key(b"x") != first


def test_a_failed_parse_keeps_nothing(cache_home: Path) -> None:
    """A parse that raises raises again next time: errors are never cached away."""

    def bad() -> dict[str, int]:
        raise CampaignError(["account.yaml:3:1: error: no"])

    for _ in range(2):
        with pytest.raises(CampaignError, match="3:1"):
            load_cached("thing", b"bad", bad, dict)
    assert not list(cache_home.glob("thing-*.pickle"))


def test_a_damaged_or_foreign_file_is_parsed_again(cache_home: Path) -> None:
    """Garbage, or a value of another type, under the right name: parse and replace it."""
    load_cached("thing", b"a: 1", lambda: {"a": 1}, dict)
    (kept,) = cache_home.glob("thing-*.pickle")
    kept.write_bytes(b"not a pickle")
    assert load_cached("thing", b"a: 1", lambda: {"a": 1}, dict) == {"a": 1}
    assert load_cached("thing", b"a: 1", lambda: {"a": 3}, list) == {"a": 3}  # type: ignore[arg-type,return-value]


def test_an_unwritable_cache_still_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache folder that cannot be made: every load parses, none fails."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert load_cached("thing", b"a", lambda: {"a": 1}, dict) == {"a": 1}
    assert load_cached("thing", b"a", lambda: {"a": 2}, dict) == {"a": 2}


def test_account_from_the_cache_equals_the_parse(tmp_path: Path) -> None:
    """The sample account.yaml read twice through the bootstrap equals a fresh parse."""
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    shutil.copy(REPO / "campaigns" / "account.yaml", campaigns / "account.yaml")
    settings = Settings.from_env({"DRIP_HOME": str(tmp_path), "DRIP_CAMPAIGNS_DIR": str(campaigns)})
    expected = parse_account_file(campaigns / "account.yaml")
    assert load_account(settings) == expected
    assert load_account(settings) == expected
    (campaigns / "account.yaml").write_text(
        (campaigns / "account.yaml")
        .read_text()
        .replace("company: Acme Realty", "company: Zenith Homes")
    )
    assert load_account(settings).company == "Zenith Homes"


def test_area_code_table_from_the_cache_equals_the_build() -> None:
    """The kept area code table is the table built from the two data files."""
    area_code_table.cache_clear()
    try:
        assert dict(area_code_table()) == _build_area_code_table()
        area_code_table.cache_clear()  # as in a new process: read from the cache
        assert dict(area_code_table()) == _build_area_code_table()
    finally:
        area_code_table.cache_clear()


def test_a_scenarios_project_account_comes_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """drip replay's account.yaml is parsed once, then read from the cache; a bad one still fails."""
    from drip.replay.scenario import project as scenario

    campaigns = tmp_path / "campaigns"
    shutil.copytree(REPO / "campaigns", campaigns)
    parsed = parse_account_file(campaigns / "account.yaml")
    scenario._account.cache_clear()
    assert scenario.project_account(tmp_path) == parsed
    scenario._account.cache_clear()  # as in a new process

    def no_parse(*_args: object) -> None:
        raise AssertionError("the kept account should have been read")

    monkeypatch.setattr(scenario, "load_account", no_parse)
    assert scenario.project_account(tmp_path) == parsed
    monkeypatch.undo()  # the real parser again (and the autouse cache folder: set it back)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (campaigns / "account.yaml").write_text("quiet_hours: [not, a, window]\n")
    scenario._account.cache_clear()
    with pytest.raises(CampaignError):
        scenario.project_account(tmp_path)
    scenario._account.cache_clear()
