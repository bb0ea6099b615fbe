"""11. Reassigned numbers: what the check costs the fire path when every number is verified.

``lookup_overhead``: the embedded fire path (``dispatch.tick``: claim,
gather, decide, render, send over HTTP with the SDK, record) on the scratch
PostgreSQL database, rounds alternating ``reassigned_numbers`` off and on.
Every contact's consent is 400 days old (so each text would need the check)
and every number was verified (a ``no`` kept in ``number_checks``) a day
ago, within ``max_age_days``: with the check on, what is measured is reading
the batch's verifications and the pure rule, the cache hits. The Lookup
client points at the fake Twilio server in this process, and a round fails
if any Lookup request reached it. The figure is sends/s with the check on
divided by sends/s with it off; goal >= 0.9.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from harness import Context, seed_due_bulk, tick_rounds_on_off, zones_in_window

#: (fire rounds, sends per round)
PLAN = {
    "smoke": (2, 100),
    "quick": (8, 300),
    "full": (12, 1000),
}
PHONE_OFFSET = 880_000  # seeded phone numbers clear of the other benchmarks'
CONSENT_AGE = timedelta(days=400)


def _seed(ctx: Context, deps: Any, n: int, zones: list[tuple[str, str, None]], offset: int) -> Any:
    """``n`` contacts with 400-day-old consent, each verified a day ago, each with a due bulk."""
    from sqlalchemy import insert, select

    from drip.domain.reassigned import number_digest
    from drip.store.models import Contact, NumberCheck

    now, contacts = seed_due_bulk(ctx, deps, n, zones, offset, consent_age=CONSENT_AGE)
    key = deps.settings.secret_key
    with deps.sessions.begin() as session:
        phones = session.execute(select(Contact.id, Contact.phone).where(Contact.id.in_(contacts)))
        checks = [
            {
                "contact_id": cid,
                "phone_digest": number_digest(key, phone),
                "last_verified_date": (now - CONSENT_AGE).date(),
                "answer": "no",
                "evidence": '{"is_number_reassigned": "no"}',
                "checked_at": now - timedelta(days=1),
            }
            for cid, phone in phones
        ]
        session.execute(insert(NumberCheck), checks)
    return now


def overhead(ctx: Context) -> dict[str, Any]:
    from drip.domain.reassigned import ReassignedNumbers
    from drip.testing.fake_twilio import FakeTwilioServer
    from drip.transports.twilio_lookup import TwilioLookup

    rounds, per_round = PLAN[ctx.sizes.mode]
    zones = [(zone, area, None) for zone, area in zones_in_window(ctx.now)]
    with FakeTwilioServer(record_requests=False) as fake:
        transport = fake.transport()
        lookup = TwilioLookup(fake.account_sid, fake.auth_token, base_url=fake.base_url)

        def prepare(on: bool, r: int) -> tuple[Any, datetime]:
            checking = ReassignedNumbers(enabled=on, max_age_days=30)
            account = replace(ctx.deps.account, reassigned_numbers=checking)
            deps = replace(ctx.deps, sms=transport, account=account, lookup=lookup)
            return deps, _seed(ctx, deps, per_round, zones, PHONE_OFFSET + (r + 1) * per_round)

        def no_lookups() -> str:
            n = len(fake.lookups)
            return f"{n} Lookup request(s) (every number was verified)" if n else ""

        try:
            on, off = tick_rounds_on_off("lookup overhead", rounds, per_round, prepare, no_lookups)
        finally:
            transport.close()
            lookup.close()
    return {
        "lookup_overhead": on / off,
        "lookup_on_sends_per_s": on,
        "lookup_off_sends_per_s": off,
        "lookup_sends_per_round": per_round,
    }


def run(ctx: Context) -> dict[str, Any]:
    return overhead(ctx)
