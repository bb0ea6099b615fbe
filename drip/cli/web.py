"""``drip serve``: the webhook app alone, on Flask's threaded server.

``drip serve`` is for development and single-machine installs: Flask's
server with a thread per request (``app.run(threaded=True)``), no reloader,
no debugger. Behind a real load, run the same app under gunicorn (see
:mod:`drip.web.wsgi`), e.g. ``gunicorn -w 4 -b 0.0.0.0:8000
drip.web.wsgi:app`` as docker-compose does. Either way, put TLS in
front (a reverse proxy) and set ``DRIP_PUBLIC_URL`` to the URL Twilio calls:
signatures are checked against it.
"""

from __future__ import annotations

import click

from drip.cli._common import ready_deps


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
def serve(host: str, port: int) -> None:
    """Run the webhook app: Twilio inbound and status webhooks, POST /contacts,
    email unsubscribe links and /healthz (Flask's threaded server; use gunicorn
    with drip.web.wsgi under load)."""
    from drip.web.app import create_app

    deps = ready_deps()
    settings = deps.settings
    if not settings.twilio_auth_token:
        click.secho(
            "TWILIO_AUTH_TOKEN is not set: /twilio/sms and /twilio/status refuse every "
            "request (403), since no signature can be checked",
            fg="yellow",
            err=True,
        )
    if not settings.api_token:
        click.secho(
            "DRIP_API_TOKEN is not set: POST /contacts refuses every request (401)",
            fg="yellow",
            err=True,
        )
    click.echo(
        f"drip webhook app on http://{host}:{port}; Twilio signatures are checked "
        f"against {settings.public_url}",
        err=True,
    )
    create_app(deps).run(host=host, port=port, threaded=True, use_reloader=False, debug=False)
