"""Where a scenario's campaigns and account settings come from: its project folder.

The project root is the nearest folder holding ``campaigns/``, looking up from
the scenario file, then from the working directory, then the campaigns bundled
with drip. Its ``campaigns/account.yaml`` gives the account settings a scenario
extends, and its campaigns can be enrolled in by ``name:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import drip
from drip.campaigns.account_file import load_account
from drip.campaigns.loader import load_campaigns
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign


def bundled_project() -> Path:
    """The folder holding the campaigns that ship with drip (the repository root)."""
    return Path(drip.__file__).resolve().parent.parent


def find_project(*starts: Path) -> Path:
    """The project root: the nearest folder above ``starts`` (in turn) with a ``campaigns/``.

    A folder whose ``campaigns/`` holds ``account.yaml`` wins over a nearer one
    without (a folder of test campaigns next to scenarios is not a project);
    with neither, the campaigns bundled with drip.
    """
    for marker in ("campaigns/account.yaml", "campaigns"):
        for begin in starts:
            here = begin.resolve()
            for folder in (here, *here.parents):
                if (folder / marker).exists():
                    return folder
    return bundled_project()


@dataclass
class _Catalog:
    """The campaigns of a project's ``campaigns/`` folder, by name, with their files."""

    campaigns: dict[str, tuple[Campaign, Path]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@cache
def catalog(folder: Path) -> _Catalog:
    result = load_campaigns(folder) if folder.is_dir() else None
    catalog = _Catalog()
    if result is not None:
        for loaded in result.files:
            catalog.campaigns[loaded.campaign.name] = (loaded.campaign, loaded.path)
        catalog.errors = list(result.errors)
    return catalog


@cache
def _account(folder: Path) -> AccountSettings:
    # Parsed once per folder and process: every scenario of a folder shares it.
    return load_account(folder)


def project_account(project: Path) -> AccountSettings:
    """``campaigns/account.yaml`` of ``project`` (defaults if missing); CampaignError if bad."""
    return _account(project / "campaigns")
