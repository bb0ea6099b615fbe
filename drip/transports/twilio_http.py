"""A lean HTTP client for the twilio SDK: urllib3 with keep-alive, no ``requests`` session.

The SDK stays the interface (it builds every request, parses every answer,
raises its own errors); this is its documented extension point for HTTP, a
custom :class:`twilio.http.HttpClient`. The stock ``TwilioHttpClient`` runs
each request through ``requests`` (prepare, merge environment settings,
hooks, adapters, cookie jar), which costs about as much CPU as the rest of a
send; here the request goes straight to a pooled urllib3 connection.

What stays exactly as with ``requests``:

- the request: method, URL (``base_url``, if given, replaces scheme and host
  and is kept as a path prefix), query string and form body encoded the same
  way (``None`` values dropped, sequences repeated), JSON bodies for JSON
  content types, HTTP basic auth, the SDK's headers;
- never a retry at this level (``retries=False``) and no redirects: a request
  that may have reached Twilio is never sent again behind the caller's back;
- the errors, as ``requests`` exceptions wrapping urllib3's, so the
  transport's classification is unchanged: a connection that could not be
  opened is ``requests.ConnectionError`` caused by ``NewConnectionError`` (nothing
  left), a connect timeout ``ConnectTimeout``, a read timeout ``ReadTimeout``,
  a connection lost mid-request ``ConnectionError`` (maybe sent).
"""

from __future__ import annotations

import json
import logging
from base64 import b64encode
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from drip.errors import ConfigError

__all__ = ["LeanHttpClient"]

_logger = logging.getLogger("twilio.http_client")
_JSON_TYPES = ("application/json", "application/scim+json")


def _pairs(values: Mapping[str, object] | None) -> list[tuple[str, object]]:
    """Key/value pairs the way ``requests`` encodes a dict: sequences repeated, None dropped."""
    out: list[tuple[str, object]] = []
    for key, value in (values or {}).items():
        items: Iterable[object] = (
            value
            if isinstance(value, Iterable) and not isinstance(value, str | bytes)
            else (value,)
        )
        out.extend((key, item) for item in items if item is not None)
    return out


class LeanHttpClient(HttpClient):  # type: ignore[misc]  # the SDK ships no py.typed
    """The SDK's ``HttpClient`` on a urllib3 pool (``maxsize`` connections per host)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float | None = None,
        maxsize: int = 32,
    ) -> None:
        super().__init__(_logger, False, timeout)
        self._base: tuple[str, str, str] | None = None
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"Twilio base URL must be http(s)://host[:port], not {base_url!r}"
                )
            self._base = (parts.scheme, parts.netloc, parts.path.rstrip("/"))
        try:  # the CA bundle ``requests`` uses, so https behaves as it did with the SDK's client
            import certifi

            ca_certs: str | None = certifi.where()
        except ImportError:  # pragma: no cover - certifi comes with requests
            ca_certs = None
        self.pool = urllib3.PoolManager(
            maxsize=maxsize, retries=False, block=False, ca_certs=ca_certs
        )
        # Per request, the pool manager parses the URL again and looks its host's pool
        # up; the host's pool is kept here (by scheme and netloc), and so is each
        # credential's Authorization header: both were a tenth of the client's CPU.
        self._hosts: dict[tuple[str, str], urllib3.HTTPConnectionPool] = {}
        self._auth: dict[tuple[str, str], str] = {}

    def request(  # noqa: PLR0917  # the SDK's HttpClient.request signature
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        parts = urlsplit(url)
        scheme, netloc, path = parts.scheme, parts.netloc, parts.path
        if self._base is not None:
            scheme, netloc, prefix = self._base
            path = prefix + path
        encoded = urlencode(_pairs(params)) if params else ""
        query = "&".join(q for q in (parts.query, encoded) if q)
        full_url = urlunsplit((scheme, netloc, path, query, ""))
        send_headers = {"Accept-Encoding": "gzip, deflate", **(headers or {})}
        if auth is not None:
            send_headers["Authorization"] = self._authorization(auth[0], auth[1])
        body: bytes | None = None
        if data is not None:
            content_type = send_headers.get("Content-Type")
            if content_type in _JSON_TYPES:
                body = json.dumps(data).encode()
            else:
                body = urlencode(_pairs(data)).encode()
                send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request(
                {"method": method.upper(), "url": full_url, "params": None, "headers": headers}
            )
        self._test_only_last_response = None
        try:
            answer = self._host(scheme, netloc, full_url).urlopen(
                method.upper(),
                urlunsplit(("", "", path or "/", query, "")),
                body=body,
                headers=send_headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=allow_redirects,
                retries=False,
                assert_same_host=False,
            )
        except MaxRetryError as exc:  # not raised with retries=False; kept for safety
            raise _as_requests_error(exc.reason or exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc) from exc
        text = answer.data.decode("utf-8", errors="replace")
        response = Response(int(answer.status), text, answer.headers)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("Response Status Code: %s", answer.status)
        self._test_only_last_response = response
        return response

    def _host(self, scheme: str, netloc: str, url: str) -> urllib3.HTTPConnectionPool:
        """The connection pool of ``scheme://netloc`` (kept: see ``__init__``)."""
        pool = self._hosts.get((scheme, netloc))
        if pool is None:
            pool = self.pool.connection_from_url(url)
            self._hosts[(scheme, netloc)] = pool
        return pool

    def _authorization(self, user: str, password: str) -> str:
        header = self._auth.get((user, password))
        if header is None:
            token = b64encode(f"{user}:{password}".encode()).decode("ascii")
            header = self._auth[(user, password)] = f"Basic {token}"
        return header

    def close(self) -> None:
        """Close the pooled connections."""
        self._hosts.clear()
        self.pool.clear()


def _as_requests_error(exc: BaseException) -> requests.RequestException:
    """The ``requests`` exception that ``requests`` itself raises for urllib3's ``exc``.

    The original stays the ``__cause__`` (``raise ... from``), where the
    transport looks for ``NewConnectionError`` (nothing sent).
    """
    error: requests.RequestException
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError: first
        error = requests.ConnectionError(exc)
    elif isinstance(exc, ConnectTimeoutError):
        error = requests.ConnectTimeout(exc)
    elif isinstance(exc, ReadTimeoutError):
        error = requests.ReadTimeout(exc)
    elif isinstance(exc, SSLError):
        error = requests.exceptions.SSLError(exc)
    elif isinstance(exc, ProtocolError | OSError):
        error = requests.ConnectionError(exc)
    else:
        error = requests.RequestException(exc)
    return error
