"""The trigger index: an event is weighed only against the triggers that can match it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from drip.domain.triggers import (
    Automation,
    CampaignView,
    Catalog,
    Condition,
    ContactView,
    EnrollmentView,
    LeadEvent,
    Rule,
    decide,
    matches,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _campaigns() -> list[CampaignView]:
    def rule(on: str, **where: tuple[str, ...]) -> Rule:
        return Rule(on, tuple(Condition(k, v) for k, v in where.items()))

    return [
        CampaignView("archive", Automation(triggers=(rule("lead.updated", stage=("archive",)),))),
        CampaignView(
            "hot-web",
            Automation(
                triggers=(rule("lead.updated", tags=("hot",), lead_source=("website",)),),
                group="g",
                priority=1,
            ),
        ),
        CampaignView(
            "hot-any",
            Automation(triggers=(rule("lead.updated", tags=("hot", "warm")),), group="g"),
        ),
        CampaignView("every-view", Automation(triggers=(rule("lead.activity"),))),
        CampaignView(
            "views",
            Automation(
                triggers=(rule("lead.activity", kind=("property_view",)),),
                exits=(rule("deal.stage", stage=("closed",)),),
            ),
        ),
        CampaignView("gone", Automation(triggers=(rule("lead.updated", stage=("lost",)),)), True),
    ]


def test_the_catalog_offers_only_campaigns_whose_trigger_can_match() -> None:
    """A stage-archive update is weighed against the archive campaign alone, not every trigger."""
    catalog = Catalog(_campaigns())
    contact = ContactView({"stage": "archive", "lead_source": "zillow"}, frozenset())

    offered = catalog.candidates(LeadEvent("e", "lead.updated", {"stage": "archive"}), contact)
    viewed = catalog.candidates(LeadEvent("v", "lead.activity", {"kind": "property_view"}), contact)

    assert [c.name for c in offered] == ["archive"]
    assert [c.name for c in viewed] == ["every-view", "views"]


def test_every_campaign_with_a_matching_trigger_is_offered() -> None:
    """For every event and contact tried, each campaign a trigger of which matches is a candidate."""
    campaigns = _campaigns()
    catalog = Catalog(campaigns)
    events = [
        *(LeadEvent("1", "lead.updated", {"stage": s}) for s in ("archive", "lost", "new")),
        *(LeadEvent("2", "lead.activity", {"kind": k}) for k in ("property_view", "site_visit")),
        LeadEvent("3", "deal.stage", {"stage": "closed"}),
        LeadEvent("4", "lead.assigned", {"agent": "+16175550100"}),
    ]
    contacts = [
        ContactView({"stage": stage, "lead_source": source}, frozenset(tags))
        for stage, source, tags in itertools.product(
            ("archive", "lost", None), ("website", "zillow"), ((), ("hot",), ("warm", "x")))
    ]  # fmt: skip
    matched = 0
    for event, contact in itertools.product(events, contacts):
        wanted = [
            c.name
            for c in campaigns
            if any(matches(r, event, contact) for r in c.automation.triggers)
        ]
        offered = [c.name for c in catalog.candidates(event, contact)]
        assert set(wanted) <= set(offered), (event, contact)
        assert offered == sorted(offered, key=[c.name for c in campaigns].index)
        matched += len(wanted)
    assert matched > 20  # the cases do exercise matches


def test_decide_with_a_catalog_enrolls_and_ends_as_documented() -> None:
    """Through a catalog, a hot website lead enrolls in the higher-priority campaign of the group."""
    catalog = Catalog(_campaigns())
    contact = ContactView({"stage": "new", "lead_source": "website"}, frozenset({"hot"}))
    history = [EnrollmentView(7, "hot-any", True, NOW), EnrollmentView(8, "views", True, NOW)]

    decision = decide(
        LeadEvent("1", "lead.updated", {"tags": ["hot"]}), contact, catalog, history, NOW
    )
    closed = decide(
        LeadEvent("2", "deal.stage", {"stage": "closed"}), contact, catalog, history, NOW
    )

    assert [e.campaign for e in decision.enroll] == ["hot-web"]
    assert [(e.enrollment_id, e.why) for e in decision.end] == [(7, "replaced")]
    assert [(e.enrollment_id, e.why) for e in closed.end] == [(8, "exit")]
