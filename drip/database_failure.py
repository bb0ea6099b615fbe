"""What a person sees when the database refuses a command or a page: one line.

The CLI's ``main`` and the console's error handler call :func:`database_failure`;
the details (statement, parameters, traceback) go to the log, masked.
"""

from __future__ import annotations


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
