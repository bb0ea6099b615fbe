"""The console's actions: each a POST form with a CSRF token, allowed by role, recorded with who.

For operators: docs/operations.md#operators-and-roles.

Refusals say why and change nothing: the read-only token or a role without
the right (403), a missing or foreign CSRF token (403), an unknown contact,
campaign or bulk (404), bad input (400). An action on many contacts (a
campaign's pause or resume, a bulk's cancel) first answers a confirmation
page showing how many contacts and sends it touches; only the form on that
page (``confirmed=yes``) acts. Every form works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import structlog
from flask import Blueprint, Response, g, request

from drip.errors import DripError, NotFoundError
from drip.services import operator_actions as act
from drip.services.deps import Deps
from drip.services.operator_actions import Actor
from drip.web.console.auth import Who, csrf_ok

__all__ = ["install_actions"]

log = structlog.get_logger("drip.console")

Page = Callable[..., Response]

LABELS: Final = {
    "text_status": "change a contact's text status",
    "opt_out": "record an opt-out",
    "assign": "assign a contact",
    "pause_contact": "pause a contact's enrollments",
    "resume_contact": "resume a contact's enrollments",
    "campaign_pause": "pause a campaign",
    "campaign_resume": "resume a campaign",
    "bulk_cancel": "cancel a bulk",
    "erase": "erase a contact",
}


def _refusal(page: Page, action: str) -> tuple[Who | None, Response | None]:
    """The person acting, or the 403 page saying why they may not."""
    who: Who = g.who
    if not who.is_operator:
        log.info("console_action_refused", action=action, reason="token")
        message = "The console token reads only: log in as an operator to act."
        return None, page("error.html", 403, message=message)
    if not who.may(action):
        log.info("console_action_refused", action=action, reason="role", role=who.role)
        message = f"Your role ({who.role}) may not {LABELS[action]}."
        return None, page("error.html", 403, message=message)
    if not csrf_ok(who):
        log.info("console_action_refused", action=action, reason="csrf")
        message = "This form's CSRF token is missing or is not this session's: reload the page."
        return None, page("error.html", 403, message=message)
    return who, None


def _field(name: str) -> str:
    """A field of the posted form ('' when absent)."""
    return request.form.get(name, "")


def install_actions(bp: Blueprint, deps: Deps, page: Page) -> None:
    """The action routes (see the module docstring)."""

    def run(action: str, back: str, do: Callable[[Actor], str]) -> Response:
        who, refused = _refusal(page, action)
        if refused is not None:
            return refused
        assert who is not None
        try:
            message = do(Actor(who.name, "console"))
        except NotFoundError as exc:
            return page("error.html", 404, message=str(exc))
        except DripError as exc:
            return page("error.html", 400, message=str(exc))
        log.info("console_action", action=action, operator=who.name)
        return page("done.html", message=message, back=back)

    def contact_action(action: str, do: Callable[[Actor, int], str]) -> Callable[[int], Response]:
        def view(contact_id: int) -> Response:
            back = f"/console/contacts/{contact_id}"
            return run(action, back, lambda actor: do(actor, contact_id))

        view.__name__ = f"action_{action}"
        return view

    now = deps.clock.now

    bp.add_url_rule(
        "/contacts/<int:contact_id>/text-status",
        view_func=contact_action(
            "text_status",
            lambda a, c: act.set_text_status(deps, a, c, _field("status"), now()),
        ),
        methods=["POST"],
    )
    bp.add_url_rule(
        "/contacts/<int:contact_id>/opt-out",
        view_func=contact_action(
            "opt_out", lambda a, c: act.opt_out(deps, a, c, _field("how"), now())
        ),
        methods=["POST"],
    )
    bp.add_url_rule(
        "/contacts/<int:contact_id>/assign",
        view_func=contact_action(
            "assign", lambda a, c: act.assign(deps, a, c, _field("agent"), now())
        ),
        methods=["POST"],
    )
    bp.add_url_rule(
        "/contacts/<int:contact_id>/pause",
        view_func=contact_action(
            "pause_contact",
            lambda a, c: act.pause_contact(deps, a, c, _field("campaign") or None, now()),
        ),
        methods=["POST"],
    )
    bp.add_url_rule(
        "/contacts/<int:contact_id>/resume",
        view_func=contact_action(
            "resume_contact",
            lambda a, c: act.resume_contact(deps, a, c, _field("campaign") or None, now()),
        ),
        methods=["POST"],
    )

    @bp.post("/contacts/<int:contact_id>/erase")
    def erase(contact_id: int) -> Response:
        from drip.services.erasure import erase_contact

        def do(actor: Actor) -> str:
            return erase_contact(deps, contact_id, now(), by=actor.name).message

        return many("erase", f"/console/contacts/{contact_id}", "erase contact", None, do)

    def many(
        action: str,
        back: str,
        what: str,
        reach: Callable[[], act.Reach] | None,
        do: Callable[[Actor], str],
    ) -> Response:
        """Confirm first (with the count), then act on ``confirmed=yes``."""
        if request.form.get("confirmed") == "yes":
            return run(action, back, do)
        _, refused = _refusal(page, action)
        if refused is not None:
            return refused
        try:
            counted = reach() if reach is not None else None
        except NotFoundError as exc:
            return page("error.html", 404, message=str(exc))
        fields = {k: v for k, v in request.form.items() if k not in ("csrf", "confirmed")}
        return page(
            "confirm.html", what=what, reach=counted, action=request.path, fields=fields, back=back
        )

    @bp.post("/campaigns/<name>/pause")
    def campaign_pause(name: str) -> Response:
        return many(
            "campaign_pause",
            f"/console/campaigns/{name}",
            f"pause campaign {name}",
            lambda: act.campaign_reach(deps, name),
            lambda a: act.campaign_pause(deps, a, name, now()),
        )

    @bp.post("/campaigns/<name>/resume")
    def campaign_resume(name: str) -> Response:
        return many(
            "campaign_resume",
            f"/console/campaigns/{name}",
            f"resume campaign {name}",
            lambda: act.campaign_reach(deps, name),
            lambda a: act.campaign_resume(deps, a, name, now()),
        )

    @bp.post("/bulks/cancel")
    def bulk_cancel() -> Response:
        raw = _field("bulk").strip()
        if not raw.isdigit():
            return page(
                "error.html", 400, message=f"bulk must be a bulk id (a number), not {raw!r}"
            )
        bulk_id = int(raw)
        return many(
            "bulk_cancel",
            "/console/",
            f"cancel bulk {bulk_id}",
            lambda: act.bulk_reach(deps, bulk_id),
            lambda a: act.bulk_cancel(deps, a, bulk_id, now()),
        )
