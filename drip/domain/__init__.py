"""The pure core of drip: values and rules, no I/O, no clock, no frameworks.

Nothing here imports SQLAlchemy, Celery, Twilio or Flask, and nothing reads
the clock: ``now`` is always a parameter.
"""
