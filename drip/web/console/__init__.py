"""The read-only console under ``/console/``: campaigns, webhooks, queue, contacts, sends, audit.

Its pages for operators: docs/operations.md#the-console.

Off unless ``DRIP_CONSOLE_TOKEN`` is set (the routes do not exist: 404).
Reached with that token, either:

- through the login form (``/console/login``), which sets a signed cookie
  (``HttpOnly``, ``SameSite=Strict``, ``Secure`` when ``DRIP_PUBLIC_URL`` is
  https; valid 12 hours; signed with ``DRIP_SECRET_KEY`` and the token, so a
  new token logs everyone out), or
- ``Authorization: Bearer TOKEN`` on each request (scripts, the audit export).

Without either, or with a wrong token or a forged cookie, every page answers
401 with the login form. Pages are server-rendered Jinja with inline CSS and
SVG; nothing is fetched from anywhere (the Content-Security-Policy forbids
it), and every page reads without JavaScript (the timeline's filters and the
tables' sorting are the only script). Every page states the time zone of
the times it shows.

Phone numbers and emails are shown (the console is behind its token) but
never logged: the search is a POST, so no number reaches an access log's
request line, and the console logs only ids.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import structlog
from flask import Blueprint, Flask, Response, make_response, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as BaseResponse

from drip.database_failure import database_failure
from drip.errors import NotFoundError
from drip.replay.lanes import LANES_CSS, LANES_SCRIPT, render_lanes
from drip.services import console as service
from drip.services.deps import Deps
from drip.services.queue import queue_view
from drip.services.stats import campaign_stats
from drip.store import console as store
from drip.store import repository as repo
from drip.web.console.charts import funnel_bars, funnel_svg

__all__ = ["COOKIE", "console_blueprint", "register_console"]

log = structlog.get_logger("drip.console")

COOKIE: Final = "drip_console"
COOKIE_MAX_AGE: Final = 12 * 3600
SENDS_SHOWN: Final = 200
#: Contacts per page of search results.
SEARCH_SHOWN: Final = 100
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def register_console(app: Flask, deps: Deps) -> None:
    """Mount the console on ``app`` when ``DRIP_CONSOLE_TOKEN`` is set; else do nothing."""
    if deps.settings.console_token:
        app.register_blueprint(console_blueprint(deps))


def _serializer(deps: Deps) -> URLSafeTimedSerializer:
    token = deps.settings.console_token or ""
    salt = "drip-console:" + hashlib.sha256(token.encode()).hexdigest()
    return URLSafeTimedSerializer(deps.settings.secret_key, salt=salt)


def _token_ok(deps: Deps, given: str) -> bool:
    expected = deps.settings.console_token or ""
    return bool(expected) and hmac.compare_digest(given.strip().encode(), expected.encode())


def _authorized(deps: Deps) -> bool:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and _token_ok(deps, given)
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return False
    try:
        value = _serializer(deps).loads(cookie, max_age=COOKIE_MAX_AGE)
    except BadSignature:
        log.info("console_refused", reason="bad cookie")
        return False
    return bool(value == "console")


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
    _auth_routes(bp, deps, page)
    _campaign_routes(bp, deps, page)
    _contact_routes(bp, deps, page)
    _audit_route(bp, deps, page)
    return bp


Page = Callable[..., Response]


def _page_maker(deps: Deps) -> Page:
    account_zone = deps.account.default_timezone

    def page(template: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("zone", account_zone)
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


def _auth_routes(bp: Blueprint, deps: Deps, page: Page) -> None:
    def login_page(status: int, error: str | None = None) -> Response:
        return page("login.html", status, error=error, next=_safe_next(request.full_path))

    @bp.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @bp.errorhandler(SQLAlchemyError)
    def _database(exc: SQLAlchemyError) -> Response:
        line = database_failure(exc, f"the page {request.path}")
        return page("error.html", 503, message=line or "the database refused the request")

    @bp.before_request
    def _guard() -> Response | None:
        if request.endpoint in ("console.login", "console.login_post"):
            return None
        if _authorized(deps):
            return None
        return login_page(401)

    @bp.get("/login")
    def login() -> Response:
        return page("login.html", error=None, next=_safe_next(request.args.get("next")))

    @bp.post("/login")
    def login_post() -> BaseResponse:
        target = _safe_next(request.form.get("next"))
        if not _token_ok(deps, request.form.get("token", "")):
            log.info("console_login", ok=False)
            return page("login.html", 401, error="That token is not valid.", next=target)
        log.info("console_login", ok=True)
        response = redirect(target, code=303)
        response.set_cookie(
            COOKIE,
            _serializer(deps).dumps("console"),
            max_age=COOKIE_MAX_AGE,
            path="/console/",
            httponly=True,
            samesite="Strict",
            secure=deps.settings.public_url.startswith("https://"),
        )
        return response

    @bp.post("/logout")
    def logout() -> BaseResponse:
        response = redirect("/console/login", code=303)
        response.delete_cookie(COOKIE, path="/console/")
        return response


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


def _export(deps: Deps, args: Any) -> service.AuditExport:
    now = deps.clock.now()
    raw_contact = (args.get("contact") or "").strip()
    if raw_contact:
        if not raw_contact.isdigit():
            raise ValueError(f"contact must be a contact id (a number), not {raw_contact!r}")
        return service.audit_export(deps, now, contact_id=int(raw_contact))
    start = _date(args.get("opted_out_from"), "opted_out_from")
    end = _date(args.get("opted_out_to"), "opted_out_to") + timedelta(days=1)
    if end <= start:
        raise ValueError("opted_out_to must not be before opted_out_from")
    return service.audit_export(deps, now, opted_out_from=start, opted_out_until=end)


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
    writer = csv.DictWriter(out, fieldnames=list(service.AUDIT_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()
