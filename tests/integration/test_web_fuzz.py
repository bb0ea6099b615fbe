"""Arbitrary bodies, signed or not, never make the webhook app answer 5xx (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_web_support import AGENT_PHONE, API_TOKEN, CONSENT_TEXT, DANA_PHONE, Web, open_web

from drip.domain.enums import MessageKind
from drip.services.contacts import send_now

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}

texts = st.text(max_size=80)
forms = st.dictionaries(texts, texts, max_size=8)


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` about four times in five, else ``other``: enough good input to reach the services.

    (``st.one_of`` would not do: it merges identical branches, and Hypothesis
    avoids repeating small value sets, so ``valid`` must be a rich strategy.)
    """
    return st.integers(0, 4).flatmap(lambda n: other if n == 0 else valid)


def regex(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


good_phones = st.one_of(
    st.sampled_from([DANA_PHONE, AGENT_PHONE]),
    regex(r"\+1617555[0-9]{4}"),
    regex(r"\(617\) 555-[0-9]{4}"),
)
phones = mostly(good_phones, st.one_of(st.sampled_from(["+1", "", "555-0123"]), texts))
sids = mostly(regex(r"SM[0-9a-f]{32}"), st.one_of(st.just("SM" + "0" * 32), texts))
bodies = st.one_of(
    st.sampled_from(
        ["STOP", "stop texting me", "HELP", "START", "YES", "I'll stop by at 5", "opt out", ""]
    ),
    st.text(max_size=300),
)


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app with Dana registered and one text sent to her (a known MessageSid)."""
    with open_web(db_url, tmp_path) as w:
        dana = w.add_dana()
        assert send_now(w.deps, dana, MessageKind.MANUAL, "Hi", w.now).outcome == "sent"
        yield w


def _known_sid(web: Web) -> str:
    return web.transport.sms[-1].sid


@FUZZ
@given(form=forms)
def test_unsigned_arbitrary_forms_are_refused_not_crashed(web: Web, form: dict[str, str]) -> None:
    """Unsigned arbitrary forms get 403 from both Twilio webhooks and 401 from /contacts."""
    for path in ("/twilio/sms", "/twilio/status"):
        assert web.client.post(path, data=form).status_code == 403
    assert web.client.post("/contacts", data=form).status_code == 401


@FUZZ
@given(form=forms)
def test_signed_arbitrary_forms_never_5xx(web: Web, form: dict[str, str]) -> None:
    """A correctly signed but arbitrary form is answered 2xx or 4xx on both Twilio webhooks."""
    for path in ("/twilio/sms", "/twilio/status"):
        response = web.post_twilio(path, form)
        assert response.status_code < 500, (path, response.get_data(as_text=True))


@FUZZ
@given(
    from_=phones,
    to=phones,
    body=bodies,
    sid=sids,
    opt_out_type=st.one_of(st.none(), st.sampled_from(["STOP", "START", "HELP"]), texts),
    extra=forms,
)
def test_signed_inbound_texts_never_5xx(
    web: Web,
    *,
    from_: str,
    to: str,
    body: str,
    sid: str,
    opt_out_type: str | None,
    extra: dict[str, str],
) -> None:
    """Signed inbound texts with odd numbers, bodies, ids and opt-out types never give 5xx."""
    params = {**extra, "From": from_, "To": to, "Body": body, "MessageSid": sid}
    if opt_out_type is not None:
        params["OptOutType"] = opt_out_type

    response = web.post_twilio("/twilio/sms", params)

    event(f"status {response.status_code} {(response.get_json(silent=True) or {}).get('field')}")
    assert response.status_code in (200, 403, 413, 422), response.get_data(as_text=True)


@FUZZ
@given(
    known=st.booleans(),
    sid=sids,
    status=st.one_of(
        st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "read"]), texts
    ),
    error_code=st.one_of(
        st.none(),
        st.sampled_from(["21610", "30003", "30005", "30006", "30007", "0", "99999999999"]),
        texts,
    ),
)
def test_signed_status_callbacks_never_5xx(
    web: Web, known: bool, sid: str, status: str, error_code: str | None
) -> None:
    """Signed status callbacks with any status and error code never give 5xx."""
    params = {"MessageSid": _known_sid(web) if known else sid, "MessageStatus": status}
    if error_code is not None:
        params["ErrorCode"] = error_code

    response = web.post_twilio("/twilio/status", params)

    event(f"status {response.status_code}")
    assert response.status_code in (200, 403, 422), response.get_data(as_text=True)


registration_values = st.one_of(st.none(), texts)


@FUZZ
@given(
    first_name=mostly(regex(r"[A-Z][a-zé]{1,12}"), registration_values),
    phone=st.one_of(phones, st.none()),
    email=mostly(st.one_of(st.none(), regex(r"[a-z]{1,10}@example\.com")), registration_values),
    state=mostly(st.sampled_from(["MA", "FL", "Florida", None]), registration_values),
    timezone=mostly(st.sampled_from(["America/Chicago", None]), registration_values),
    agent_phone=mostly(st.sampled_from([AGENT_PHONE, None]), registration_values),
    sms_consent=mostly(st.sampled_from(["on", "true", "", "off", None]), registration_values),
    consent_text=mostly(st.sampled_from([CONSENT_TEXT, None]), registration_values),
    source=mostly(st.sampled_from(["registration", "api", None]), registration_values),
)
def test_registration_forms_never_5xx(web: Web, **fields: str | None) -> None:
    """Registration forms with any field values are 201 or 4xx naming a field."""
    form = {k: v for k, v in fields.items() if v is not None}

    response = web.client.post("/contacts", data=form, headers=AUTH)

    event(f"status {response.status_code} {(response.get_json(silent=True) or {}).get('field')}")
    assert response.status_code in (201, 400, 409, 422), response.get_data(as_text=True)
    if response.status_code == 422:
        assert response.get_json()["field"]


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)


@FUZZ
@given(
    payload=st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(
                [
                    "first_name",
                    "phone",
                    "email",
                    "sms_consent",
                    "consent_text",
                    "state",
                    "timezone",
                    "source",
                ]
            ),
            json_values,
            max_size=8,
        ),
    )
)
def test_registration_json_never_5xx(web: Web, payload: Any) -> None:
    """Any JSON value as a registration body is answered 201 or 4xx."""
    response = web.client.post("/contacts", json=payload, headers=AUTH)

    assert response.status_code in (201, 400, 409, 422), response.get_data(as_text=True)
