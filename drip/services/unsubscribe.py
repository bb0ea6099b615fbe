"""Signed, unguessable email unsubscribe tokens: ``<contact id>.<HMAC>``.

The token is derived, not stored: the HMAC of the contact id under
``DRIP_SECRET_KEY``. A tampered token fails the comparison and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from drip.config import Settings


def token_for(secret: str, contact_id: int) -> str:
    mac = hmac.new(secret.encode(), f"unsubscribe:{contact_id}".encode(), hashlib.sha256)
    sig = base64.urlsafe_b64encode(mac.digest()[:18]).decode().rstrip("=")
    return f"{contact_id}.{sig}"


def contact_of(secret: str, token: str) -> int | None:
    """The contact id a genuine token names, or None for anything else.

    A genuine token is ASCII; anything else (``1.é``, a superscript ``²`` that
    ``str.isdigit`` accepts) is refused before any comparison.
    """
    if not token.isascii() or len(token) > 100:
        return None
    head, _, _sig = token.partition(".")
    if not head.isdigit() or len(head) > 18:
        return None
    contact_id = int(head)
    if hmac.compare_digest(token_for(secret, contact_id), token):
        return contact_id
    return None


def url_for(settings: Settings, contact_id: int) -> str:
    token = token_for(settings.secret_key, contact_id)
    return f"{settings.public_url.rstrip('/')}/unsubscribe/{token}"
