"""The Anthropic Messages API, for claude-family verifiers with ``transport: api``.

One request, stdlib ``urllib``, no SDK::

    POST <base>/v1/messages
    x-api-key: <key>
    anthropic-version: 2023-06-01
    content-type: application/json

    {"model": "<model>", "max_tokens": 8192,
     "messages": [{"role": "user", "content": [
         {"type": "text", "text": "<static block>", "cache_control": {"type": "ephemeral"}},
         {"type": "text", "text": "<stage block>"}]}]}

The static block (rubric, schema, instructions; see :mod:`autometta.verify.request`) is the
only one marked for caching, so every verifier of the same model after the
first reads it from the cache. The reply's text blocks are the verdict; its
``usage`` (``input_tokens``, ``cache_creation_input_tokens``,
``cache_read_input_tokens``, ``output_tokens``) is what is accounted.

The base URL is ``ANTHROPIC_BASE_URL`` in the verifier's environment, else
``verifier.claude.base_url`` in config.yaml, else :data:`DEFAULT_BASE_URL`.
The key is ``ANTHROPIC_API_KEY`` in the verifier's environment, put there by
the billing-route resolver in API mode; it is never inherited from the tick.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .api import Answer, Site, VerifierRequest, http_json, user_agent
from .usage import Usage

LABEL = "Anthropic Messages API"
API = "anthropic"
KEY_NAME = "ANTHROPIC_API_KEY"
BASE_URL_NAME = "ANTHROPIC_BASE_URL"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
MAX_TOKENS = 8192


SITE = Site("claude", KEY_NAME, BASE_URL_NAME, DEFAULT_BASE_URL, "v1/messages")
api_key, base_url, endpoint = SITE.api_key, SITE.base_url, SITE.endpoint


def headers(key: str) -> Dict[str, str]:
    return {"x-api-key": key, "anthropic-version": API_VERSION, "content-type": "application/json",
            "accept": "application/json", "user-agent": user_agent()}


def content(request: VerifierRequest, cache: bool = True) -> List[Dict[str, Any]]:
    """The user message's two text blocks; only the static one is marked for caching."""
    static: Dict[str, Any] = {"type": "text", "text": request.static}
    if cache:
        static["cache_control"] = {"type": "ephemeral"}
    return [static, {"type": "text", "text": request.stage}]


def body(request: VerifierRequest, model: str, max_tokens: int = MAX_TOKENS) -> Dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content(request)}]}


def usage_of(counts: Any) -> Usage:
    counts = counts if isinstance(counts, dict) else {}

    def n(name: str) -> int:
        value = counts.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    return Usage(input_tokens=n("input_tokens"), output_tokens=n("output_tokens"),
                 cache_read_tokens=n("cache_read_input_tokens"), cache_write_tokens=n("cache_creation_input_tokens"))


def message_text(message: Any) -> str:
    """The text blocks of a Messages API reply, joined."""
    blocks = message.get("content") if isinstance(message, dict) else None
    parts = [b.get("text") for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text"]
    return "".join(p for p in parts if isinstance(p, str))


def call(request: VerifierRequest, *, model: str, key: str, base_url: str, timeout: float,
         max_tokens: int = MAX_TOKENS) -> Answer:
    """Send ``request`` once; :class:`~.api.ApiError` on any failure."""
    reply = http_json(LABEL, "POST", endpoint(base_url), headers(key), body(request, model, max_tokens), timeout)
    return Answer(text=message_text(reply), usage=usage_of(reply.get("usage")),
                  model=str(reply.get("model") or model), stop=str(reply.get("stop_reason") or ""))
