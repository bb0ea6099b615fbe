"""How long a stored lead event waits before it is taken again, and how often the sweeps
that take such events look.

A batch of events is stored, then applied within seconds. One still unapplied
:data:`RETAKE_AFTER` after it was stored was left by a process that stopped between
the two; the producer's repeat of it, ``drip events apply-stored``, Celery beat's
sweep and ``drip run``'s loop (every :data:`SWEEP_EVERY`) apply it. Standard library
only: Celery's app reads :data:`SWEEP_EVERY` when it is imported.
"""

from __future__ import annotations

from datetime import timedelta

#: A stored event not applied this long after it was stored was left by a stopped process.
RETAKE_AFTER = timedelta(minutes=10)
#: How often beat's sweep task and ``drip run``'s loop apply the events so left.
SWEEP_EVERY = timedelta(minutes=5)
