"""The one exception root of drip and its direct children.

Infrastructure errors (SQLAlchemy, redis, twilio, smtplib) are translated into
these with ``raise ... from`` at the layer that talks to the infrastructure.
"""

from __future__ import annotations


class DripError(Exception):
    """Root of every error drip raises on purpose."""


class ConfigError(DripError):
    """A setting is missing or unusable; the message names the variable."""


class ValidationError(DripError):
    """A value handed to drip is not acceptable; the message says where and why."""


class CampaignError(DripError):
    """A campaign or account file is invalid; carries every located problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NotFoundError(DripError):
    """A contact, campaign or send named by the user does not exist."""


class StoreError(DripError):
    """The database could not do what was asked."""


class TransportError(DripError):
    """A provider (Twilio, SMTP) refused or failed a message.

    ``code`` is the provider's error code where it gave one, ``retryable``
    says whether trying again later may succeed.
    """

    def __init__(self, message: str, *, code: int | None = None, retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


def database_failure(exc: BaseException, what: str) -> str | None:
    """One line for a person when the database refused ``what`` (a command, a page), else None.

    The line names what failed and the database's own first line of reason
    (``permission denied for table contacts``, ``canceling statement due to
    lock timeout``), masked; never the SQL statement, its parameters or a
    traceback, which go to the log (masked by its processors).
    """
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(exc, SQLAlchemyError):
        return None
    import structlog

    from drip.logging import mask_text

    structlog.get_logger("drip.errors").error(
        "database_error", what=what, error=type(exc).__name__, detail=str(exc)
    )
    orig = getattr(exc, "orig", None)
    reason = str(orig if orig is not None else type(exc).__name__).strip().splitlines()
    first = mask_text(reason[0]) if reason else type(exc).__name__
    return f"error: {what}: the database refused the request ({first[:200]})"
