"""The reassigned-numbers check through Twilio Lookup v2 with the official SDK.

``client.lookups.v2.phone_numbers(PHONE).fetch(fields="reassigned_number",
last_verified_date="YYYYMMDD")`` is ``GET
https://lookups.twilio.com/v2/PhoneNumbers/{PhoneNumber}?Fields=reassigned_number&LastVerifiedDate=YYYYMMDD``
(https://www.twilio.com/docs/lookup/v2-api/reassigned-number, checked
2026-12-07). The answer's ``reassigned_number`` object carries
``last_verified_date``, ``is_number_reassigned`` (``yes``, ``no`` or
``no_data_available``) and ``error_code``.

As for Messages, the SDK talks through
:class:`drip.transports.twilio_urllib3.Urllib3HttpClient` (with ``base_url``
every request goes to that host instead: the fake Twilio server). Nothing is
retried here: a check without an answer (a timeout, a 5xx, a malformed body)
raises :class:`LookupFailedError` and the caller follows ``on_unknown``;
401 / 20003 is :attr:`ErrorClass.AUTH` (the provider's circuit opens).
"""

from __future__ import annotations

import json
from datetime import date

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client
from urllib3.exceptions import HTTPError

from drip.errors import ConfigError
from drip.transports.base import ErrorClass
from drip.transports.lookup import LookupFailedError, ReassignedAnswer, lookup_error
from drip.transports.twilio_urllib3 import Urllib3HttpClient

__all__ = ["TwilioLookup"]

DEFAULT_TIMEOUT = 5.0
POOL_SIZE = 8


class TwilioLookup:
    """Implements :class:`~drip.transports.lookup.NumberLookup` with Twilio Lookup v2."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
        self._http_client = Urllib3HttpClient(base_url, timeout=timeout, maxsize=POOL_SIZE)
        self._client = Client(account_sid, auth_token, http_client=self._http_client)
        self.base_url = base_url

    def reassigned(self, phone: str, last_verified: date) -> ReassignedAnswer:
        try:
            found = self._client.lookups.v2.phone_numbers(phone).fetch(
                fields="reassigned_number", last_verified_date=last_verified.strftime("%Y%m%d")
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            status = int(exc.status)
            code = exc.code if isinstance(exc.code, int) and exc.code != status else None
            detail = str(getattr(exc, "msg", None) or getattr(exc, "title", "") or exc)
            raise lookup_error(status, code, detail) from exc
        except HTTPError as exc:
            raise LookupFailedError(
                # the type only: urllib3's message carries the URL, and so the number
                f"Lookup: no answer from Twilio ({type(exc).__name__})",
                error_class=ErrorClass.UNKNOWN,
            ) from exc
        except (TwilioException, ValueError, KeyError, TypeError) as exc:
            raise LookupFailedError(
                f"Lookup: unusable answer from Twilio ({type(exc).__name__}: {exc})",
                error_class=ErrorClass.UNKNOWN,
            ) from exc
        return parse_reassigned(found.reassigned_number)

    def close(self) -> None:
        """Close the pooled connections."""
        self._http_client.close()


def parse_reassigned(data: object) -> ReassignedAnswer:
    """The ``reassigned_number`` object of an answer; :class:`LookupFailedError` if malformed."""
    if not isinstance(data, dict):
        raise LookupFailedError(
            f"Lookup: the answer has no reassigned_number object (got {type(data).__name__})",
            error_class=ErrorClass.UNKNOWN,
        )
    said = data.get("is_number_reassigned")
    asked = data.get("last_verified_date")
    code = data.get("error_code")
    if (
        (said is not None and not isinstance(said, str))
        or (asked is not None and not isinstance(asked, str))
        or (code is not None and (isinstance(code, bool) or not isinstance(code, int | str)))
    ):
        raise LookupFailedError(
            f"Lookup: a malformed reassigned_number object ({json.dumps(data)[:200]})",
            error_class=ErrorClass.UNKNOWN,
        )
    error_code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    return ReassignedAnswer(said, asked, error_code, json.dumps(data, sort_keys=True))
