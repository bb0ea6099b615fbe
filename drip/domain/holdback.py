"""Whether the frequency cap is what holds a text back, for the counts people are shown.

``drip bulk --dry-run`` and ``drip preview`` say how many texts the
account's frequency cap holds back. The policy gives one reason code per
deferral (the first constraint that moved it), so a text outside its window
*and* over the cap would be counted under the window alone. Instead, the
decision with the cap is compared with the decision without it: the cap
holds the text back when, without it, the text would go sooner (or at all).
Pure; both decisions come from :func:`drip.domain.policy.decide`.
"""

from __future__ import annotations

from drip.domain.decision_codes import SkipCode
from drip.domain.policy import Decision, Defer, Skip


def held_by_cap(capped: Decision, uncapped: Decision) -> bool:
    """The cap deferred the text past where it would go without it, or made it expire."""
    if isinstance(capped, Defer):
        return not isinstance(uncapped, Defer) or uncapped.until < capped.until
    if isinstance(capped, Skip) and capped.code is SkipCode.EXPIRED:
        return not isinstance(uncapped, Skip)
    return False
