"""The OpenAI Responses API, for codex-family verifiers with ``transport: api``.

One request, stdlib ``urllib``, no SDK::

    POST <base>/responses            (base is https://api.openai.com/v1 by default)
    authorization: Bearer <key>
    content-type: application/json

    {"model": "<model>", "instructions": "<static block>",
     "input": [{"role": "user", "content": [{"type": "input_text", "text": "<stage block>"}]}],
     "text": {"format": {"type": "json_schema", "name": "verifier_verdict", "schema": {...}, "strict": false}},
     "max_output_tokens": 32000, "prompt_cache_key": "autometta-verifier", "store": false}

The static block goes first as ``instructions``, so OpenAI's automatic prompt
cache (same prefix, same ``prompt_cache_key``) serves it to later verifiers.
``text.format`` carries ``schemas/verifier.json`` (non-strict: the schema
uses keywords strict mode refuses); the answer is validated here anyway.
``usage.input_tokens`` includes ``input_tokens_details.cached_tokens``.

The base URL is ``OPENAI_BASE_URL`` in the verifier's environment (with
``/v1``, as OpenAI's own tools read it), else ``verifier.codex.base_url`` in
config.yaml, else :data:`DEFAULT_BASE_URL`. The key is ``OPENAI_API_KEY`` in
the verifier's environment, put there by the billing-route resolver.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from .. import schema
from .api import Answer, ApiError, Site, VerifierRequest, http_json, user_agent
from .usage import Usage

LABEL = "OpenAI Responses API"
API = "openai"
KEY_NAME = "OPENAI_API_KEY"
BASE_URL_NAME = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_OUTPUT_TOKENS = 32000  # reasoning tokens count against it
CACHE_KEY = "autometta-verifier"
_NOT_SENT = ("$schema", "$id")


SITE = Site("codex", KEY_NAME, BASE_URL_NAME, DEFAULT_BASE_URL, "responses")
api_key, base_url, endpoint = SITE.api_key, SITE.base_url, SITE.endpoint


def headers(key: str) -> Dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": "application/json", "accept": "application/json",
            "user-agent": user_agent()}


def verdict_schema() -> Dict[str, Any]:
    doc = schema.load_schema("verifier")
    return {k: v for k, v in doc.items() if k not in _NOT_SENT}


def body(request: VerifierRequest, model: str, max_output_tokens: int = MAX_OUTPUT_TOKENS) -> Dict[str, Any]:
    return {
        "model": model,
        "instructions": request.static,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": request.stage}]}],
        "text": {"format": {"type": "json_schema", "name": "verifier_verdict", "schema": verdict_schema(),
                            "strict": False}},
        "max_output_tokens": max_output_tokens,
        "prompt_cache_key": CACHE_KEY,
        "store": False,
    }


def usage_of(counts: Any) -> Usage:
    counts = counts if isinstance(counts, dict) else {}

    def n(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    details = counts.get("input_tokens_details")
    cached = n(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(input_tokens=max(n(counts.get("input_tokens")) - cached, 0), cache_read_tokens=cached,
                 output_tokens=n(counts.get("output_tokens")))


def output_text(reply: Dict[str, Any]) -> Tuple[str, str]:
    """The ``output_text`` parts of the reply's message items, joined, and the first refusal (or "")."""
    parts, refusals = [], []
    for item in reply.get("output") or []:
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        for part in item.get("content") or []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif part.get("type") == "refusal":
                refusals.append(str(part.get("refusal") or "")[:200])
    return "".join(parts), (refusals[0] if refusals else "")


def call(request: VerifierRequest, *, model: str, key: str, base_url: str, timeout: float,
         max_output_tokens: int = MAX_OUTPUT_TOKENS) -> Answer:
    """Send ``request`` once; :class:`~.api.ApiError` on any failure."""
    reply = http_json(LABEL, "POST", endpoint(base_url), headers(key), body(request, model, max_output_tokens),
                      timeout)
    status = str(reply.get("status") or "")
    usage = usage_of(reply.get("usage"))
    if status == "failed":
        err = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        raise ApiError(LABEL, 200, f"response failed: {err.get('code') or ''} {err.get('message') or ''}".strip())
    stop = status
    details = reply.get("incomplete_details")
    if status == "incomplete" and isinstance(details, dict):
        stop = f"incomplete ({details.get('reason')})"
    text, refusal = output_text(reply)
    if refusal and not text:
        stop = f"refused: {refusal}"
    return Answer(text=text, usage=usage, model=str(reply.get("model") or model), stop=stop)
