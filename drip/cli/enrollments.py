"""Enrollments: ``drip enroll``, ``drip unenroll`` and ``drip enroll-many``."""

from __future__ import annotations

from typing import Annotated

import typer

from drip.cli._common import campaign_name, ready_deps


def register(app: typer.Typer) -> None:
    """Add the enrollment commands to ``app``."""
    app.command("enroll")(enroll)


def enroll(
    contact: Annotated[str, typer.Argument(help="Contact id or phone number.")],
    campaign: Annotated[str, typer.Argument(help="Campaign name (or its YAML file).")],
) -> None:
    """Enroll a contact in a campaign: its steps become scheduled sends."""
    from drip.services.contacts import find_contact
    from drip.services.enrollment import enroll as enroll_contact

    deps = ready_deps()
    name = campaign_name(campaign)
    found = find_contact(deps, contact)
    result = enroll_contact(deps, found.id, name, deps.clock.now())
    typer.echo(result.message)
