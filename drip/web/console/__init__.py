"""The console under ``/console/``: campaigns, webhooks, queue, contacts, sends, audit, actions.

Its pages for operators: docs/operations.md#the-console and
docs/operations.md#operators-and-roles.

Off (404) while there is no active operator and no ``DRIP_CONSOLE_TOKEN``.
Named operators log in with a name and password (``drip operators add``);
their role decides which actions they may take (``auth.py``, ``actions.py``).
The token reads every page and the audit export, through the login form or
``Authorization: Bearer TOKEN`` (scripts), and takes no action.

Without credentials, or with a wrong token, a forged cookie or a session
idle for 12 hours, every page answers 401 with the login form. Pages are
server-rendered Jinja with inline CSS and SVG; nothing is fetched from
anywhere (the Content-Security-Policy forbids it), and every page and every
action works without JavaScript (the timeline's filters and the tables'
sorting are the only script). Every page states the time zone of the times
it shows.

Phone numbers and emails are shown (the console is behind a login) but
never logged: the search is a POST, so no number reaches an access log's
request line, and the console logs only ids and operator names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import structlog
from flask import Blueprint, Flask, Response, g, make_response, render_template, request
from sqlalchemy.exc import SQLAlchemyError

from drip.database_failure import database_failure
from drip.errors import NotFoundError
from drip.replay.lanes import LANES_CSS, LANES_SCRIPT, render_lanes
from drip.services import audit_export
from drip.services import console as service
from drip.services.deps import Deps
from drip.services.queue import queue_view
from drip.services.stats import campaign_stats
from drip.store import console as store
from drip.store import repository as repo
from drip.web.console.actions import install_actions
from drip.web.console.auth import COOKIE, csrf_token, install_auth
from drip.web.console.charts import funnel_bars, funnel_svg

__all__ = ["COOKIE", "console_blueprint", "register_console"]

log = structlog.get_logger("drip.console")

SENDS_SHOWN: Final = 200
#: Contacts per page of search results.
SEARCH_SHOWN: Final = 100
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def register_console(app: Flask, deps: Deps) -> None:
    """Mount the console on ``app``; it answers 404 while there is no operator and no token."""
    app.register_blueprint(console_blueprint(deps))


def _safe_next(target: str | None) -> str:
    """Only a path of the console itself (no scheme, no host): no open redirect."""
    if not target:
        return "/console/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console/") or "\\" in target:
        return "/console/"
    return target


def console_blueprint(deps: Deps) -> Blueprint:
    """The console's routes around ``deps`` (see the module docstring)."""
    bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
    page = _page_maker(deps)
    _errors(bp, page)
    install_auth(bp, deps, page, _safe_next)
    install_actions(bp, deps, page)
    _campaign_routes(bp, deps, page)
    _contact_routes(bp, deps, page)
    _audit_route(bp, deps, page)
    return bp


Page = Callable[..., Response]


def _page_maker(deps: Deps) -> Page:
    account_zone = deps.account.default_timezone

    def page(template: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("zone", account_zone)
        who = g.get("who")
        context.setdefault("who", who)
        context.setdefault("csrf", csrf_token(who) if who is not None else "")
        html = render_template(
            f"console/{template}",
            company=deps.account.company,
            local=service.local,
            **context,
        )
        response = make_response(html, status)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    return page


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _errors(bp: Blueprint, page: Page) -> None:
    bp.after_request(_headers)

    @bp.errorhandler(SQLAlchemyError)
    def _database(exc: SQLAlchemyError) -> Response:
        line = database_failure(exc, f"the page {request.path}")
        return page("error.html", 503, message=line or "the database refused the request")


def _campaign_routes(bp: Blueprint, deps: Deps, page: Page) -> None:
    @bp.get("/")
    def campaigns() -> Response:
        stats = campaign_stats(deps, deps.clock.now())
        hooks = service.webhooks_panel(deps, stats.at)
        return page("campaigns.html", stats=stats, funnel_svg=funnel_svg, now=stats.at, hooks=hooks)

    @bp.get("/campaigns/<name>")
    def campaign(name: str) -> Response:
        now = deps.clock.now()
        try:
            stats = campaign_stats(deps, now, name)
        except NotFoundError as exc:
            return page("error.html", 404, message=str(exc))
        step = request.args.get("step") or None
        before = request.args.get("before", type=int)
        with deps.sessions() as session:
            row = repo.campaign_by_name(session, name)
            assert row is not None
            sends = store.campaign_sends(session, row.id, step, SENDS_SHOWN + 1, before)
        more = len(sends) > SENDS_SHOWN
        sends = sends[:SENDS_SHOWN]
        rules = {s.id: s.footer_rule for s in sends if s.footer_rule}
        return page(
            "campaign.html",
            c=stats.campaigns[0],
            funnel_svg=funnel_svg,
            funnel_bars=funnel_bars,
            sends=sends,
            rules=rules,
            step=step,
            shown=SENDS_SHOWN,
            before=before,
            next_before=sends[-1].id if more else None,
            now=now,
        )

    @bp.get("/queue")
    def queue() -> Response:
        q = queue_view(deps, deps.clock.now())
        return page("queue.html", q=q, now=q.at)


def _contact_routes(bp: Blueprint, deps: Deps, page: Page) -> None:
    @bp.route("/contacts", methods=["GET", "POST"])
    def contacts() -> Response:
        source = request.form if request.method == "POST" else request.args
        query = (source.get("q") or "").strip()[:200]
        after = request.args.get("after", type=int) if request.method == "GET" else None
        found = service.search(deps, query, after=after, limit=SEARCH_SHOWN + 1) if query else ()
        log.info("console_search", results=len(found))
        more = len(found) > SEARCH_SHOWN
        found = found[:SEARCH_SHOWN]
        return page(
            "contacts.html",
            query=query,
            found=found,
            searched=bool(query),
            after=after,
            next_after=found[-1].id if more else None,
        )

    @bp.get("/contacts/<int:contact_id>")
    def contact(contact_id: int) -> Response:
        try:
            data = service.contact_page(deps, contact_id)
        except NotFoundError as exc:
            return page("error.html", 404, message=str(exc))
        return page(
            "contact.html",
            p=data,
            erase_available=True,
            zone=data.zone,
            chart=render_lanes([data.lane]),
            lanes_css=LANES_CSS,
            lanes_script=LANES_SCRIPT,
        )

    @bp.get("/sends/<int:send_id>")
    def send(send_id: int) -> Response:
        try:
            data = service.send_page(deps, send_id)
        except NotFoundError as exc:
            return page("error.html", 404, message=str(exc))
        return page("send.html", s=data, zone=data.zone)


def _audit_route(bp: Blueprint, deps: Deps, page: Page) -> None:
    @bp.get("/audit")
    def audit() -> Response:
        if not g.who.may("audit"):
            log.info("console_refused", reason="role", role=g.who.role, page="audit")
            return page(
                "error.html", 403, message=f"Your role ({g.who.role}) may not export the audit."
            )
        args = request.args
        fmt = args.get("format", "")
        if not fmt:
            return page("audit.html", zone="UTC")
        if fmt not in ("csv", "json"):
            return page("error.html", 400, message="format must be csv or json")
        try:
            export = _export(deps, args)
        except ValueError as exc:
            return page("error.html", 400, message=str(exc))
        except NotFoundError as exc:
            return page("error.html", 404, message=str(exc))
        log.info("console_audit", scope_contacts=len(export.contacts), format=fmt)
        stamp = export.generated_at.strftime("%Y%m%dT%H%M%SZ")
        if fmt == "json":
            response = make_response(_json(export.as_json()), 200)
            response.headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            response = make_response(_csv(export.rows), 200)
            response.headers["Content-Type"] = "text/csv; charset=utf-8"
        response.headers["Content-Disposition"] = f'attachment; filename="drip-audit-{stamp}.{fmt}"'
        return response


def _export(deps: Deps, args: Any) -> audit_export.AuditExport:
    now = deps.clock.now()
    raw_contact = (args.get("contact") or "").strip()
    if raw_contact:
        if not raw_contact.isdigit():
            raise ValueError(f"contact must be a contact id (a number), not {raw_contact!r}")
        return audit_export.audit_export(deps, now, contact_id=int(raw_contact))
    if args.get("actions_from") is not None:
        start = _date(args.get("actions_from"), "actions_from")
        end = _date(args.get("actions_to"), "actions_to") + timedelta(days=1)
        if end <= start:
            raise ValueError("actions_to must not be before actions_from")
        return audit_export.actions_export(deps, now, start, end)
    start = _date(args.get("opted_out_from"), "opted_out_from")
    end = _date(args.get("opted_out_to"), "opted_out_to") + timedelta(days=1)
    if end <= start:
        raise ValueError("opted_out_to must not be before opted_out_from")
    return audit_export.audit_export(deps, now, opted_out_from=start, opted_out_until=end)


def _date(raw: str | None, name: str) -> datetime:
    """A ``YYYY-MM-DD`` query parameter as midnight UTC."""
    if not raw:
        raise ValueError(f"{name} is required (YYYY-MM-DD), or give contact=ID")
    try:
        return datetime.strptime(raw.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a date (YYYY-MM-DD)") from None


def _json(document: object) -> str:
    import json

    return json.dumps(document, indent=2, ensure_ascii=False)


def _csv(rows: tuple[dict[str, Any], ...]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(audit_export.AUDIT_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()
