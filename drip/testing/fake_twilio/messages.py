"""The Message resource: creating one (or refusing to, with Twilio's codes) and listing them.

Twilio's Message resource and paging: https://www.twilio.com/docs/messaging/api/message-resource
and https://www.twilio.com/docs/usage/twilios-response#pagination (checked 2026-11-30).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from drip.testing.fake_twilio.codes import (
    API_VERSION,
    error_body,
    error_message,
    invalid_content,
    missing_parameter,
    num_segments,
)
from drip.testing.fake_twilio.ledger import Delivery, Fault, Ledger, ReceivedRequest

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Created", "create_message", "list_messages"]

#: Twilio's page size: 50 by default, at most 1,000.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Created:
    """What one create request came to: the answer, and what follows from it."""

    status: int
    payload: bytes
    sid: str | None  # the sid answered 201, None when refused (or a gateway error followed)
    segments: int | None  # counted when the message was accepted
    resource: dict[str, Any] | None  # the accepted message
    delivery: Delivery | None  # the outcome set for its recipient
    then: Fault | None  # accept_then_error / accept_then_hang in force


def create_message(
    ledger: Ledger,
    account_sid: str,
    path: str,
    params: list[tuple[str, str]],
    *,
    record: bool,
) -> Created:
    """Accept or refuse one create request as Twilio would, noting it in ``ledger``."""
    form = dict(params)
    to = form.get("To", "")
    error = missing_parameter(form) or invalid_content(form)
    sender = form.get("MessagingServiceSid") or form.get("From", "")
    then: Fault | None = None
    with ledger.lock:
        ledger.count += 1
        if error is None and (sender, to) in ledger.blocks:
            error = (400, 21610)  # the recipient texted STOP to this sender
        fault = ledger.active_fault() if error is None else None
        if fault is not None and fault.kind == "refuse":
            error = (fault.status, fault.code)
        elif fault is not None:
            then = fault
        if error is None:
            error = ledger.injected_refusal(to)
        if error is not None:
            status, code = error
            if record:
                ledger.requests.append(
                    ReceivedRequest("POST", path, account_sid, tuple(params), status, None, code)
                )
            body = error_body(status, code, error_message(code, to))
            return Created(status, body, None, None, None, None, None)
        ledger.accepted += 1
    sid = "SM" + uuid.uuid4().hex
    segments = num_segments(form.get("Body", ""))
    resource = _resource(account_sid, sid, form, segments)
    payload = json.dumps(resource).encode()
    with ledger.lock:
        if record:
            ledger.requests.append(
                ReceivedRequest("POST", path, account_sid, tuple(params), 201, sid, None)
            )
            ledger.resources[sid] = resource
        delivery = ledger.deliveries.get(to)
    if then is not None and then.kind == "accept_then_error":
        # A gateway in front of the API failed after the message was created.
        message = "Bad gateway (injected by the fake server after accepting the message)"
        body = error_body(then.status, then.code, message)
        return Created(then.status, body, None, segments, resource, delivery, then)
    return Created(201, payload, sid, segments, resource, delivery, then)


def _resource(account_sid: str, sid: str, form: dict[str, str], segments: int) -> dict[str, Any]:
    now = format_datetime(datetime.now(UTC), usegmt=True)
    base = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    resource: dict[str, Any] = {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": form.get("Body", ""),
        "date_created": now,
        "date_sent": now,  # handed to the carrier at once in this double
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": str(segments),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": f"{base}/Media.json"},
        "to": form.get("To"),
        "uri": f"{base}.json",
    }
    if form.get("MessagingServiceSid"):  # a Messaging Service picks the sender later
        resource["status"] = "accepted"
        resource["from"] = None
        resource["num_segments"] = "0"
    return resource


def list_messages(
    resources: list[dict[str, Any]], path: str, query: list[tuple[str, str]]
) -> tuple[int, bytes]:
    """One page of Twilio's Messages list: newest first, filtered by ``To``, ``From``,
    ``DateSent``, ``DateSent<`` and ``DateSent>`` (a day or an instant), ``PageSize`` a page."""
    params = dict(query)
    try:
        size = int(params.get("PageSize") or DEFAULT_PAGE_SIZE)
        page = int(params.get("Page") or 0)
        after = _date_filter(params.get("DateSent>"))
        before = _date_filter(params.get("DateSent<"))
        on = _date_filter(params.get("DateSent"))
    except ValueError as exc:
        return 400, error_body(400, 20001, f"Invalid parameter: {exc}")
    if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
        return 400, error_body(400, 20001, "Invalid PageSize or Page")
    to, from_ = params.get("To"), params.get("From")
    found = []
    for resource in reversed(resources):  # newest first, as Twilio lists them
        if (to and resource["to"] != to) or (from_ and resource["from"] != from_):
            continue
        sent = resource.get("date_sent")
        if after or before or on:
            if not sent:
                continue
            when = parsedate_to_datetime(str(sent))
            if after and not _on_or_after(when, after):
                continue
            if before and not _on_or_before(when, before):
                continue
            if on and not (_on_or_after(when, on) and _on_or_before(when, on)):
                continue
        found.append(resource)
    chunk = found[page * size : (page + 1) * size]
    kept = [(k, v) for k, v in query if k not in ("Page", "PageToken", "PageSize")]

    def uri(n: int) -> str:
        extra = [*kept, ("PageSize", str(size)), ("Page", str(n))]
        if n > 0 and chunk:
            extra.append(("PageToken", "PA" + str(found[n * size - 1]["sid"])))
        return f"{path}?{urlencode(extra)}"

    more = (page + 1) * size < len(found)
    body = {
        "messages": chunk,
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if more else None,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "page": page,
        "page_size": size,
        "start": page * size,
        "end": page * size + max(len(chunk) - 1, 0),
        "uri": uri(page),
    }
    return 200, json.dumps(body).encode()


def _date_filter(raw: str | None) -> datetime | date | None:
    """A DateSent filter value: ``YYYY-MM-DD`` (a day) or an ISO 8601 instant."""
    if not raw:
        return None
    text = raw.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _on_or_after(when: datetime, bound: datetime | date) -> bool:
    if isinstance(bound, datetime):
        return when >= bound
    return when.astimezone(UTC).date() >= bound


def _on_or_before(when: datetime, bound: datetime | date) -> bool:
    if isinstance(bound, datetime):
        return when <= bound
    return when.astimezone(UTC).date() <= bound
