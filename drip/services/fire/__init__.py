"""Fire due sends: re-check everything at fire time, send at most once, record why.

Read the modules in the order a send goes through them:

1. :mod:`~drip.services.fire.gather`: one read transaction gathers the batch's
   sends still ``queued``, their contacts, agents, campaigns, conversations
   and recent sends;
2. :mod:`~drip.services.fire.decide`: with the clock read again per send, the
   pure policy (:func:`drip.domain.policy.decide`) says send, skip or defer;
   then :mod:`~drip.services.fire.reassigned`: a campaign or bulk text on old
   consent gets the reassigned-numbers check (when it is on), before anything else;
3. :mod:`~drip.services.fire.render`: the text (footer, variables) or email,
   and the message row that will record it;
4. :mod:`~drip.services.fire.deliver`: the sender's slot reserved on the
   carrier's clock, ``queued -> sending`` for this send only (committed), the
   wait for the slot's instant, the call (waiting last keeps the commit from
   landing after the slot);
5. :mod:`~drip.services.fire.outcome`: what the provider's answer means
   (sent, failed, deferred, unknown) and the :class:`FireResult` callers see;
6. :mod:`~drip.services.fire.record`: a send that reached its provider is
   recorded right after its call, so the provider's id is durable before
   anything else can fail; skips and deferrals together at the end.

:mod:`~drip.services.fire.batch` runs these for each send of a batch, one send
in flight at a time. A worker killed mid-batch therefore leaves at most its one
in-flight send in ``sending`` (``dispatch.recover`` makes it ``unknown``;
``reconcile`` then asks the provider); the sends it had not tried are still
``queued`` and go back to pending. The fire path reads and writes only through
:mod:`drip.store`; status callbacks that overtook a record are applied by its
caller (:func:`drip.services.dispatch.fire`), from the provider ids the results
carry. See docs/architecture.md and docs/reliability.md.
"""

from drip.services.fire.batch import fire_batch
from drip.services.fire.gather import contact_state
from drip.services.fire.outcome import FireResult, count_outcomes

__all__ = ["FireResult", "contact_state", "count_outcomes", "fire_batch"]
