"""The twilio SDK's HTTP client on urllib3's connection pools.

The SDK stays the interface (it builds every request, parses every answer,
raises its own errors); this is its documented extension point for HTTP, a
:class:`twilio.http.HttpClient` subclass. The SDK's stock ``TwilioHttpClient``
goes through ``requests`` (prepare, merge environment settings, hooks,
adapters, cookie jar); this one hands the request to urllib3, which
``requests`` itself runs on, and keeps what ``requests`` would do that matters
here:

- the request: method, URL, query string and form body encoded the same way
  (``urlencode``: ``None`` values dropped, sequences repeated), JSON bodies
  for JSON content types, HTTP basic auth, the SDK's headers, and
  ``Accept-Encoding: gzip,deflate`` (urllib3 decodes a compressed answer, and
  reads a chunked one);
- TLS verified against ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE`` (and
  ``SSL_CERT_DIR``) when set, else certifi's bundle, as ``requests`` does;
- the proxy the environment names for the host (``HTTPS_PROXY``,
  ``NO_PROXY``, read once per host); a ``base_url`` (tests, benchmarks, a
  local double) is reached directly;
- never a retry and no redirect at this level: a request that may have
  reached Twilio is never sent again behind the caller's back. An idle
  kept-alive connection the server closed is noticed by urllib3 before use.

Beyond ``requests``: an answer is read up to ``max_answer_bytes`` (after
decoding) and refused beyond that with :class:`AnswerTooLargeError`.

Errors are urllib3's own (every one an ``urllib3.exceptions.HTTPError``):
a connection that could not be opened is ``NewConnectionError`` (a connect
timeout ``ConnectTimeoutError``, its parent): nothing left. A read timeout
is ``ReadTimeoutError`` and a connection lost mid-request ``ProtocolError``:
the request may have been received.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import certifi
import urllib3
from requests.utils import get_environ_proxies, select_proxy
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.exceptions import HTTPError

from drip.errors import ConfigError

__all__ = ["DEFAULT_MAX_ANSWER_BYTES", "AnswerTooLargeError", "Urllib3HttpClient", "form_encode"]

_logger = logging.getLogger("twilio.http_client")
_Opener = urllib3.HTTPConnectionPool | urllib3.PoolManager
#: A host's opener, and whether it takes the path (a pool) rather than the whole URL.
_Route = tuple[_Opener, bool]
_JSON_TYPES = ("application/json", "application/scim+json")
#: Twilio's answers are a message resource or a page of at most 1,000 of them (about 1 MB).
DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024


class AnswerTooLargeError(HTTPError):
    """The answer's body was longer than the client reads (the request may have been received)."""


def form_encode(values: Mapping[str, object] | None) -> str:
    """``values`` form-encoded the way ``requests`` encodes a dict: sequences repeated, None
    dropped."""
    pairs: list[tuple[str, object]] = []
    for key, value in (values or {}).items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            pairs.extend((key, item) for item in value if item is not None)
        else:
            pairs.append((key, value))
    return urlencode(pairs)


def _ca_settings() -> tuple[str | None, str | None]:
    """Where TLS certificates are checked from (a bundle file, a folder): the environment's,
    else certifi's bundle."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    directory = os.environ.get("SSL_CERT_DIR")
    if bundle or directory:
        return bundle or None, directory or None
    return certifi.where(), None


class Urllib3HttpClient(HttpClient):  # type: ignore[misc]  # the SDK ships no py.typed
    """The SDK's ``HttpClient`` on urllib3 pools (at most ``maxsize`` kept-alive connections
    per host); with ``base_url`` every request goes there instead of the host the SDK named,
    under its path."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float | None = None,
        maxsize: int = 32,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        super().__init__(_logger, False, timeout)
        self._base: tuple[str, str, str] | None = None
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"Twilio base URL must be http(s)://host[:port], not {base_url!r}"
                )
            self._base = (parts.scheme, parts.netloc, parts.path.rstrip("/"))
        self._maxsize = maxsize
        self._ca_certs, self._ca_cert_dir = _ca_settings()
        self._max_answer_bytes = max_answer_bytes
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._lock = threading.Lock()
        # Per (scheme, host[:port]): its own pool (requests name the path), or the
        # manager of the proxy the environment names for it (requests name the URL).
        self._route: dict[tuple[str, str], _Route] = {}
        self._proxied: dict[str, urllib3.ProxyManager] = {}
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
        allow_redirects: bool = False,  # never followed (see the module)
    ) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        method = method.upper()
        url = self._rewrite(url, params)
        sent = {"Accept-Encoding": "gzip,deflate", **(headers or {})}
        if auth is not None:
            sent["Authorization"] = self._authorization(auth)
        body: bytes | None = None
        if data is not None:
            if sent.get("Content-Type") in _JSON_TYPES:
                body = json.dumps(data).encode()
            else:
                body = form_encode(data).encode("ascii")
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request({"method": method, "url": url, "params": None, "headers": headers})
        self._test_only_last_response = None
        opener, target = self._open(url)
        answer = opener.urlopen(
            method,
            target,
            body=body,
            headers=sent,
            timeout=(
                self._timeout
                if timeout == self.timeout
                else urllib3.Timeout(connect=timeout, read=timeout)
            ),
            retries=False,
            redirect=False,
            preload_content=False,
        )
        try:
            content = answer.read(self._max_answer_bytes + 1, decode_content=True)
            if len(content) > self._max_answer_bytes:
                answer.close()  # the rest is never read: the connection goes, not back
                raise AnswerTooLargeError(
                    f"the answer to {method} {url} is over {self._max_answer_bytes} bytes"
                )
        finally:
            answer.release_conn()
        response = Response(answer.status, content.decode("utf-8", "replace"), answer.headers)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("Response Status Code: %s", answer.status)
        self._test_only_last_response = response
        return response

    def close(self) -> None:
        """Close the kept-alive connections."""
        with self._lock:
            openers = {id(opener): opener for opener, _ in self._route.values()}
        for opener in openers.values():
            if isinstance(opener, urllib3.PoolManager):
                opener.clear()
            else:
                opener.close()

    def _rewrite(self, url: str, params: Mapping[str, object] | None) -> str:
        """``url`` with the query ``params`` added and, with a base URL, sent there."""
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, form_encode(params) if params else "") if q)
        scheme, netloc, path = parts.scheme, parts.netloc, parts.path
        if self._base is not None:
            scheme, netloc, prefix = self._base
            path = prefix + path
        return urlunsplit((scheme, netloc, path, query, ""))

    def _open(self, url: str) -> tuple[_Opener, str]:
        """What sends a request for ``url``, and the target to give it: the host's own pool
        and the path (no per-request routing), or the proxy's manager and the whole URL."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        route = self._route.get(key)
        if route is None:
            route = self._new_route(url, key)
        opener, direct = route
        if direct:
            return opener, urlunsplit(("", "", parts.path or "/", parts.query, ""))
        return opener, url

    def _new_route(self, url: str, key: tuple[str, str]) -> _Route:
        """The route to ``url``'s host, made once: the environment's proxy for it, if any."""
        with self._lock:
            route = self._route.get(key)
            if route is not None:
                return route
            proxy = None if self._base is not None else select_proxy(url, get_environ_proxies(url))
            tls: dict[str, Any] = (
                {
                    "cert_reqs": "CERT_REQUIRED",
                    "ca_certs": self._ca_certs,
                    "ca_cert_dir": self._ca_cert_dir,
                }
                if proxy is not None or key[0] == "https"
                else {}
            )
            if proxy is None:
                pool = urllib3.connection_from_url(url, maxsize=self._maxsize, **tls)
                route = self._route[key] = (pool, True)
                return route
            manager = self._proxied.get(proxy)
            if manager is None:
                manager = urllib3.ProxyManager(proxy, maxsize=self._maxsize, **tls)
                self._proxied[proxy] = manager
            route = self._route[key] = (manager, False)
            return route

    def _authorization(self, auth: tuple[str, str]) -> str:
        header = self._auth.get(auth)
        if header is None:
            made = urllib3.util.make_headers(basic_auth=f"{auth[0]}:{auth[1]}")
            header = self._auth[auth] = made["authorization"]
        return header
