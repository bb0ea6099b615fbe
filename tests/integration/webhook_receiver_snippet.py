import hashlib, hmac, time  # noqa: E401, I001 - the documented snippet, verbatim


def verify(secret: bytes, header: str, body: bytes, tolerance: int = 300) -> bool:
    """True when the Drip-Signature header signs this body with the secret, recently."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp, given = parts["t"], parts["v1"]
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    recent = abs(time.time() - int(timestamp)) <= tolerance
    return recent and hmac.compare_digest(expected, given)
