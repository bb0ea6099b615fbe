"""drip's HTTP interface: Twilio webhooks, registration, email unsubscribe, health.

Build the app with :func:`drip.web.app.create_app` around ``Deps``; run it
with ``drip serve`` (development and small installs) or gunicorn
(``gunicorn 'drip.web.wsgi:app'``, see :mod:`drip.web.wsgi`).
"""

from __future__ import annotations
