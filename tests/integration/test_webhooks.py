"""Webhooks out: the outbox written with the change, signed delivery to a real receiver,
order per contact, backoff, dead after a day, retry, no redirects (SQLite and PostgreSQL)."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from webhook_support import Receiver, receiver

from drip.domain.account import WebhookTarget
from drip.errors import ConfigError
from drip.services import webhooks
from drip.services.deps import Deps
from drip.services.inbound import handle_inbound
from drip.store import heartbeats, outbox
from drip.store.models import OutboxEvent

SECRET = "whsec-test-1"
SNIPPET = Path(__file__).with_name("webhook_receiver_snippet.py")
ALL = frozenset({"reply.received", "contact.opted_out", "enrollment.ended", "send.sent"})


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A local receiver, and its secret in the environment."""
    monkeypatch.setenv("DRIP_TEST_HOOK_SECRET", SECRET)
    with receiver() as r:
        yield r


def with_hook(deps: Deps, url: str, events: frozenset[str] = ALL) -> Deps:
    target = WebhookTarget("crm", url, events, "DRIP_TEST_HOOK_SECRET")
    return replace(deps, account=replace(deps.account, webhooks=(target,)))


def reply(deps: Deps, phone: str, text: str, now: datetime) -> None:
    handle_inbound(deps, from_phone=phone, to_phone="+16175550100", body=text, now=now)


def outbox_rows(deps: Deps) -> list[OutboxEvent]:
    with deps.sessions() as session:
        rows = list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))
        session.expunge_all()
        return rows


def test_reply_received_is_delivered_signed_and_verifies(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """A reply goes out as reply.received with text, contact, sender and agent; the documented
    receiver snippet verifies its signature, and refuses a tampered body."""
    now = datetime.now(UTC).replace(microsecond=0)
    rig = make_rig(start=now)
    deps = with_hook(rig.deps, hook.url)
    (cid,) = rig.add_contacts(1)
    phone = rig.contact(cid).phone
    reply(deps, phone, "Can we see the Elm St house Saturday?", now)
    (row,) = [r for r in outbox_rows(deps) if r.type == "reply.received"]
    assert row.state == "pending"

    done = webhooks.deliver_due(deps, now, embedded=True)
    assert done.delivered == 1
    (got,) = hook.got
    doc = got.doc
    assert doc["id"] == row.event_id and doc["type"] == "reply.received"
    assert doc["data"]["text"] == "Can we see the Elm St house Saturday?"
    assert doc["data"]["contact"]["phone"] == phone
    assert doc["data"]["to"] == "+16175550100"
    assert doc["data"]["agent"]["phone"] == "+16175550100"
    verify = runpy.run_path(str(SNIPPET))["verify"]
    assert verify(SECRET.encode(), got.headers["Drip-Signature"], got.body) is True
    assert verify(SECRET.encode(), got.headers["Drip-Signature"], got.body + b" ") is False
    assert verify(b"other", got.headers["Drip-Signature"], got.body) is False
    assert outbox_rows(deps)[-1].state == "delivered"


def test_failures_back_off_and_keep_order_per_contact(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """A 500 keeps the event pending with backoff; the contact's next event waits behind it,
    and both arrive, in order, once the receiver answers."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    (cid,) = rig.add_contacts(1)
    phone = rig.contact(cid).phone
    now = rig.now
    reply(deps, phone, "first", now)
    reply(deps, phone, "second", now + timedelta(seconds=1))
    hook.script = [500]
    first = webhooks.deliver_due(deps, now + timedelta(seconds=2), embedded=True)
    assert (first.delivered, first.failed) == (0, 1)
    assert [r.doc["data"]["text"] for r in hook.got] == ["first"]  # second not posted
    row = outbox_rows(deps)[0]
    assert row.attempts == 1 and row.last_error == "crm: HTTP 500"
    assert row.next_attempt_at == now + timedelta(seconds=2) + webhooks.BACKOFF_FIRST

    early = webhooks.deliver_due(deps, now + timedelta(seconds=5), embedded=True)
    assert early.claimed == 0  # not before its backoff
    later = webhooks.deliver_due(deps, now + timedelta(seconds=13), embedded=True)
    assert later.delivered == 2
    texts = [r.doc["data"]["text"] for r in hook.got]
    assert texts == ["first", "first", "second"]
    assert len(set(hook.ids())) == 2


def test_dead_after_a_day_then_retry(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """An event refused for 24 hours is dead; drip webhooks retry sends it again."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    (cid,) = rig.add_contacts(1)
    reply(deps, rig.contact(cid).phone, "hello", rig.now)
    hook.default = 503
    at = rig.now
    for _ in range(60):
        webhooks.deliver_due(deps, at, embedded=True)
        row = outbox_rows(deps)[0]
        if row.state == "dead":
            break
        at = row.next_attempt_at
    assert row.state == "dead"
    assert at - rig.now >= webhooks.GIVE_UP_AFTER
    assert at - rig.now < webhooks.GIVE_UP_AFTER + webhooks.BACKOFF_MAX
    status = webhooks.status(deps)
    assert status.counts.dead == 1 and status.dead[0]["id"] == row.event_id

    hook.default = 200
    assert webhooks.retry(deps, at) == 1
    assert webhooks.deliver_due(deps, at, embedded=True).delivered == 1
    assert webhooks.status(deps).counts.dead == 0


def test_a_write_committed_while_posting_does_not_post_twice(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """Another writer committing while an event is posted (drip run's tick) leaves it delivered once."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    (cid,) = rig.add_contacts(1)
    reply(deps, rig.contact(cid).phone, "hello", rig.now)

    def tick() -> None:
        with deps.sessions.begin() as session:
            heartbeats.beat(session, "tick", rig.now)

    hook.before_answer = tick
    first = webhooks.deliver_due(deps, rig.now, embedded=True)
    hook.before_answer = None
    again = webhooks.deliver_due(deps, rig.now + timedelta(minutes=30), embedded=True)
    assert (first.delivered, again.claimed) == (1, 0)
    assert len(hook.got) == 1
    assert outbox_rows(deps)[0].state == "delivered"


def test_a_receiver_down_leaves_the_rounds_other_events_untried(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """After a receiver fails, the round's other events for it are released unattempted, due now."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    a, b = rig.add_contacts(2)
    reply(deps, rig.contact(a).phone, "first", rig.now)
    reply(deps, rig.contact(b).phone, "second", rig.now)
    hook.script = [500]
    done = webhooks.deliver_due(deps, rig.now, embedded=True)
    assert (done.claimed, done.failed, done.delivered) == (2, 1, 0)
    first, second = outbox_rows(deps)
    assert (first.attempts, second.attempts) == (1, 0)
    assert second.state == "pending" and second.next_attempt_at == rig.now
    assert webhooks.deliver_due(deps, rig.now, embedded=True).delivered == 1


def test_a_loop_that_died_mid_round_leaves_its_events_for_after_the_lease(
    make_rig, hook: Receiver
) -> None:  # type: ignore[no-untyped-def]
    """Events claimed by a loop that never settled them are not posted by another before the lease ends."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    (cid,) = rig.add_contacts(1)
    reply(deps, rig.contact(cid).phone, "hello", rig.now)
    with deps.sessions.begin() as session:
        assert len(outbox.claim(session, rig.now, 10, rig.now + webhooks.LEASE)) == 1
    during = webhooks.deliver_due(deps, rig.now + webhooks.LEASE / 2, embedded=True)
    after = webhooks.deliver_due(deps, rig.now + webhooks.LEASE, embedded=True)
    assert (during.claimed, after.delivered) == (0, 1)
    assert len(hook.got) == 1


def test_redirect_is_not_followed(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """A 302 is a failed delivery; the Location is never posted to."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    (cid,) = rig.add_contacts(1)
    reply(deps, rig.contact(cid).phone, "hello", rig.now)
    hook.script = [302]
    done = webhooks.deliver_due(deps, rig.now, embedded=True)
    assert done.failed == 1
    assert [r.path for r in hook.got] == ["/hook"]
    assert outbox_rows(deps)[0].last_error == "crm: HTTP 302"


def test_receiver_down_then_back(make_rig, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A refused connection is retried; the event arrives once the receiver is up."""
    monkeypatch.setenv("DRIP_TEST_HOOK_SECRET", SECRET)
    rig = make_rig()
    with receiver() as r:
        url = r.url
    deps = with_hook(rig.deps, url)  # nothing listens there now
    (cid,) = rig.add_contacts(1)
    reply(deps, rig.contact(cid).phone, "hello", rig.now)
    done = webhooks.deliver_due(deps, rig.now, embedded=True)
    assert done.failed == 1
    assert "ConnectionError" in (outbox_rows(deps)[0].last_error or "")
    with receiver() as back:
        deps = with_hook(rig.deps, back.url)
        later = rig.now + timedelta(minutes=1)
        assert webhooks.deliver_due(deps, later, embedded=True).delivered == 1
        assert [g.doc["type"] for g in back.got] == ["reply.received"]


def test_opt_out_and_stop_on_reply_events(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """STOP writes contact.opted_out; a reply to a stop_on_reply plan writes enrollment.ended."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    a, b = rig.add_contacts(2)
    rig.add_campaign("plan", [0, 3, 7], stop_on_reply=True)
    rig.enroll([a], "plan")
    reply(deps, rig.contact(a).phone, "Call me tomorrow", rig.now)
    reply(deps, rig.contact(b).phone, "STOP", rig.now)
    types = [(r.type, r.contact_id) for r in outbox_rows(deps)]
    assert ("reply.received", a) in types
    assert ("enrollment.ended", a) in types
    assert ("contact.opted_out", b) in types
    assert ("reply.received", b) not in types  # a keyword is no reply
    webhooks.deliver_due(deps, rig.now, embedded=True)
    ended = next(g.doc for g in hook.got if g.doc["type"] == "enrollment.ended")
    assert ended["data"]["campaign"] == "plan" and ended["data"]["status"] == "stopped"


def test_unwanted_types_are_settled_without_a_post(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """An event no webhook wants is marked delivered and never posted."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url, frozenset({"send.sent"}))
    (cid,) = rig.add_contacts(1)
    reply(deps, rig.contact(cid).phone, "hello", rig.now)
    assert webhooks.deliver_due(deps, rig.now, embedded=True).delivered == 1
    assert hook.got == []


def test_http_url_outside_embedded_mode_is_a_config_error(make_rig, hook: Receiver) -> None:  # type: ignore[no-untyped-def]
    """An http URL is refused when scaled out, naming the webhook; embedded mode accepts it."""
    rig = make_rig()
    deps = with_hook(rig.deps, hook.url)
    with pytest.raises(
        ConfigError, match=r"webhook 'crm': url http://127\.0\.0\.1:\d+/hook must be https"
    ):
        webhooks.receivers(deps, embedded=False)
    assert len(webhooks.receivers(deps, embedded=True)) == 1
