"""Helpers for the verifier-route tests: a scriptable fake API server on 127.0.0.1, verdicts, answers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Union

FAKE_ANTHROPIC_KEY = "sk-ant-api03-FAKEverifierKEYforTESTS-0000-test"
FAKE_OPENAI_KEY = "sk-proj-FAKEverifierKEYforTESTS-1111-test"


@dataclass
class Seen:
    """One request the fake server received."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Union[bytes, str, Dict[str, Any], None] = None
    headers: Dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the server closes): a client timeout


class FakeAPI:
    """An HTTP server that records every request and answers from a per-path script.

    ``on(path, reply_or_callable)``: the callable gets the :class:`Seen` and
    returns a :class:`Reply`. Unscripted paths answer 404.
    """

    def __init__(self) -> None:
        self.seen: List[Seen] = []
        self.routes: Dict[str, List[Union[Reply, Callable[[Seen], Reply]]]] = {}
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                fake.seen.append(seen)
                queue = fake.routes.get(self.path)
                if not queue:
                    reply = Reply(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                else:
                    item = queue[0] if len(queue) == 1 else queue.pop(0)
                    reply = item(seen) if callable(item) else item
                if reply.hang:
                    fake.release.wait(30)
                    return
                data = reply.body
                if isinstance(data, dict):
                    data = json.dumps(data).encode()
                elif isinstance(data, str):
                    data = data.encode()
                data = data or b""
                self.send_response(reply.status)
                headers = {"content-type": "application/json", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, path: str, *replies: Union[Reply, Callable[[Seen], Reply]]) -> "FakeAPI":
        """Answer ``path`` with ``replies`` in turn; the last one repeats."""
        self.routes[path] = list(replies)
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def verdict_doc(stage_id: str, overall: str = "PASS", **extra: Any) -> Dict[str, Any]:
    doc: Dict[str, Any] = {
        "stage_id": stage_id, "verifier_identity": "whoever", "verifier_invocation": "whatever",
        "ran_at": "2026-11-26T00:00:00Z",
        "criteria": [{"id": 1, "name": "hello.txt says hello", "verdict": overall, "evidence": "hello.txt:1"}],
        "additional_findings": "", "overall": overall,
    }
    doc.update(extra)
    return doc


def anthropic_message(text: str, *, model: str = "claude-sonnet-4-6", input_tokens: int = 1200,
                      cache_write: int = 3000, cache_read: int = 0, output_tokens: int = 400) -> Dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": cache_write,
                      "cache_read_input_tokens": cache_read, "output_tokens": output_tokens}}


def openai_response(text: str, *, model: str = "gpt-5.5", input_tokens: int = 5000, cached: int = 4000,
                    output_tokens: int = 300) -> Dict[str, Any]:
    return {"id": "resp_01", "object": "response", "status": "completed", "model": model,
            "output": [{"type": "reasoning", "id": "rs_1", "summary": []},
                       {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached},
                      "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 100},
                      "total_tokens": input_tokens + output_tokens}}


def api_error(kind: str, message: str) -> Dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def script_verdict_command(stage_id: str, overall: str, usage: Optional[Dict[str, Any]] = None,
                           evidence: str = "hello.txt:1", to_stdout: bool = False, **extra: Any) -> str:
    """A Script panellist that votes ``overall`` (and reports ``usage``), into its artefact or as its last line."""
    doc = verdict_doc(stage_id, overall, verifier_identity="Script Panellist <p@local>", **extra)
    doc["criteria"][0]["evidence"] = evidence
    text = json.dumps(doc)
    line = f"echo 'autometta-usage: {json.dumps(usage)}'; " if usage else ""
    if to_stdout:
        return f"{line}echo '{text}'"
    return f"{line}printf '%s' '{text}' > \"$AUTOMETTA_ARTEFACT\""
