"""What every family's API transport shares: the request and answer, one HTTP exchange, the key and base URL.

A family with an API (:attr:`autometta.families.base.Family.api`) has a
module beside it that calls it (``claude_api``, ``codex_api``), returned by
:meth:`~autometta.families.base.Family.api_transport`; what the verifier is
asked and what becomes of its answer is :mod:`autometta.verify.request`'s.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from .. import __version__
from ..errors import UserError
from .usage import Usage

#: Bytes of an HTTP answer read at most.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


@dataclass
class VerifierRequest:
    """The two parts of what an API verifier is asked: the cacheable static block and the stage block."""

    static: str
    stage: str


@dataclass
class Answer:
    """What an API returned: the reply's text, the tokens it cost, and why it stopped."""

    text: str
    usage: Usage
    model: str
    stop: str = ""


class ApiError(Exception):
    """One failed HTTP exchange: ``status`` is None when no answer came (timeout, refused)."""

    def __init__(self, api: str, status: Optional[int], message: str, retry_after: Optional[str] = None) -> None:
        super().__init__(message)
        self.api = api
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def line(self) -> str:
        if self.status is None:
            return f"{self.api}: no answer: {self.message}; not retried"
        hint = f" (retry-after {self.retry_after}s)" if self.retry_after else ""
        return f"{self.api}: HTTP {self.status}: {self.message}{hint}; not retried"


def _error_message(raw: bytes) -> str:
    try:
        doc = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict):
            kind = err.get("type") or err.get("code")
            text = err.get("message") or ""
            return f"{kind}: {text}" if kind and text else str(text or kind or "")[:500]
        if isinstance(err, str):
            return err[:500]
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text[:300] or "no message"


def http(api: str, method: str, url: str, headers: Mapping[str, str], body: Any = None,
         timeout: float = 60.0) -> bytes:
    """One HTTP exchange; the answer's body, or :class:`ApiError`. Never retries."""
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the URL is a setting
            return resp.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read(64 * 1024)
        except (OSError, ValueError):
            raw = b""
        raise ApiError(api, exc.code, _error_message(raw), exc.headers.get("retry-after") if exc.headers else None)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise ApiError(api, None, f"timed out after {timeout:g}s ({method} {url})") from None
        raise ApiError(api, None, f"cannot reach {url}: {reason}") from None
    except (socket.timeout, TimeoutError):
        raise ApiError(api, None, f"timed out after {timeout:g}s ({method} {url})") from None
    except OSError as exc:
        raise ApiError(api, None, f"connection to {url} failed: {exc}") from None


def http_json(api: str, method: str, url: str, headers: Mapping[str, str], body: Any = None,
              timeout: float = 60.0) -> Dict[str, Any]:
    raw = http(api, method, url, headers, body, timeout)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(api, 200, f"answer from {url} is not JSON: {raw[:120]!r}") from None
    if not isinstance(doc, dict):
        raise ApiError(api, 200, f"answer from {url} is not a JSON object")
    return doc


class Site:
    """Where one family's API is and how it is let in: the key's and the base URL's environment variables, the
    provider's base URL, the path of the one endpoint a verifier calls. A transport module binds its
    ``api_key``, ``base_url`` and ``endpoint`` from one of these."""

    __slots__ = ("family", "key_name", "base_url_name", "default_base_url", "path")

    def __init__(self, family: str, key_name: str, base_url_name: str, default_base_url: str, path: str) -> None:
        self.family, self.key_name, self.base_url_name = family, key_name, base_url_name
        self.default_base_url, self.path = default_base_url, path

    def api_key(self, environ: Mapping[str, str]) -> str:
        """The key from the environment the verifier was given (the billing route put it there); fails closed,
        naming the fix, when it is absent."""
        name, family = self.key_name, self.family
        key = (environ.get(name) or "").strip()
        if not key:
            raise UserError(f"{name} is not in the verifier's environment, and the {family} API transport needs it; "
                            f"set auth.{family}.mode: api in .autometta.local.yaml (or AUTOMETTA_{family.upper()}_MODE=api) "
                            "so the billing route provides the key, or set the transport back to cli")
        return key

    def base_url(self, environ: Mapping[str, str], configured: Optional[str] = None) -> str:
        """The environment's, then ``verifier.<family>.base_url`` in config.yaml, then the provider's."""
        return (environ.get(self.base_url_name) or configured or self.default_base_url).rstrip("/")

    def endpoint(self, base: str) -> str:
        return f"{base.rstrip('/')}/{self.path}"


def user_agent() -> str:
    return f"autometta/{__version__}"
