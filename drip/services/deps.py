"""The dependencies every service takes, bundled once by ``drip.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drip.domain.campaign import Campaign
from drip.transports.pacing import NullPacer, Pacer

if TYPE_CHECKING:
    # Annotations only: importing the bundle must not import the database
    # layer, the settings parser or the transports (CLI start-up time).
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from drip.clock import Clock
    from drip.config import Settings
    from drip.domain.account import AccountSettings
    from drip.transports.base import EmailTransport, SmsTransport
    from drip.transports.lookup import NumberLookup


@dataclass
class CampaignCache:
    """Parsed campaign definitions by (database id, version): parsing JSON per send is waste."""

    _by_key: dict[tuple[int, str], Campaign] = field(default_factory=dict)

    def get(self, campaign_id: int, version: str, definition: dict[str, Any]) -> Campaign:
        key = (campaign_id, version)
        found = self._by_key.get(key)
        if found is None:
            found = Campaign.from_dict(definition)
            self._by_key[key] = found
        return found


@dataclass(frozen=True)
class Deps:
    """What a service needs from the outside world, built in one place."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    sms: SmsTransport
    email: EmailTransport
    clock: Clock
    account: AccountSettings
    campaigns: CampaignCache = field(default_factory=CampaignCache)
    #: Sender throughput (pacing), built by ``bootstrap.build_pacer`` (always
    #: on there); a ``Deps`` built by hand (unit tests) does not pace.
    pacer: Pacer = field(default_factory=NullPacer)
    #: The reassigned-numbers check (Twilio Lookup), built by ``bootstrap.build_lookup``;
    #: None: no provider to ask (the check then has no answer).
    lookup: NumberLookup | None = None
