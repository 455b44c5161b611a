"""What an API verifier is asked, and what happens to its answer.

Shared by the families' API transports (:mod:`autometta.families.claude_api`,
:mod:`autometta.families.codex_api`, found through :meth:`Family.api_transport`),
the panel's API members and retro-grade (:mod:`.retro`):

* **The prompt** has two parts. The *static block* is the same for every
  stage and repo (the verifier template with its stage values replaced by
  labels such as ``{stage_id}``, the schema of ``schemas/verifier.json`` and
  the instructions for answering through an API), so the provider can cache
  it. The *stage block* gives the labels' values, the card (line-numbered),
  the worker's changes as a ``git diff`` of the working tree against HEAD
  (untracked files included, ``state/`` excluded) and the files the card
  names under ``## Inputs``, each cut at a size limit.
* **The answer** must be one JSON object. autometta sets its bookkeeping
  fields (``stage_id``, ``verifier_identity``, ``verifier_invocation``,
  ``ran_at``) itself and validates the rest against ``schemas/verifier.json``;
  only a valid answer becomes ``state/verifiers/<id>.json``. Anything else
  goes to ``<out>.invalid.json`` with the errors, and counts as no artefact.
* **Usage and cost.** The verifier's log gets one JSON line in the format the
  verifier family's usage parser reads (:func:`usage_event`, the family's
  :meth:`~autometta.families.base.Family.usage_line`: claude's ``result``
  event with ``usage`` and ``total_cost_usd``, codex's ``turn.completed``
  event, the script family's ``autometta-usage:`` line). So
  the tick accounts an API verifier exactly like a CLI one. Cost is computed
  from :data:`PRICES` (USD per million tokens, list prices when this was
  written; edit that table, and only it, when they change). A model the
  table does not know has no cost (tokens are still counted).
* **HTTP** (:func:`autometta.families.api.http_json`): stdlib ``urllib``, one attempt. A timeout, a
  connection failure or an HTTP error (4xx, 429, 5xx) raises :class:`ApiError`
  with the status and the server's message; nothing here retries. The tick's
  verifier attempt cap (3) bounds how often a stage is tried again.
"""

from __future__ import annotations

import dataclasses
import glob as _glob
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import files, resources, schema
from ..agents import prompts
from ..envelope import artefact_from_message
from ..errors import UserError
from ..families.api import ApiError, VerifierRequest
from ..families.usage import Usage
from ..git import gitops
from ..timeutil import now_iso
from .transport import OwnLaunch, Route

#: Characters of the worker's diff, of one input file and of all input files sent.
MAX_DIFF_CHARS = 150_000
MAX_INPUT_CHARS = 40_000
MAX_INPUTS_TOTAL_CHARS = 120_000
#: Files one ``## Inputs`` glob may attach.
MAX_GLOB_FILES = 50

#: USD per million tokens: (input, cache write, cache read, output). The
#: longest key that starts the model id wins. Anthropic: cache writes are the
#: 5-minute ephemeral cache (1.25 x input), reads 0.1 x input. OpenAI: cached
#: input is billed at the cache-read price and there is no write charge.
PRICES: Dict[str, Tuple[float, float, float, float]] = {
    "claude-opus-4-0": (15.0, 18.75, 1.50, 75.0),
    "claude-opus-4-1": (15.0, 18.75, 1.50, 75.0),
    "claude-opus-4": (5.0, 6.25, 0.50, 25.0),
    "claude-sonnet-4": (3.0, 3.75, 0.30, 15.0),
    "claude-haiku-4": (1.0, 1.25, 0.10, 5.0),
    "gpt-5-nano": (0.05, 0.0, 0.005, 0.40),
    "gpt-5-mini": (0.25, 0.0, 0.025, 2.0),
    "gpt-5": (1.25, 0.0, 0.125, 10.0),
    "gpt-4.1": (2.0, 0.0, 0.50, 8.0),
    "gpt-4o": (2.5, 0.0, 1.25, 10.0),
}
#: Batch requests (retro-grade) cost half.
BATCH_DISCOUNT = 0.5

#: The bookkeeping fields autometta sets on every API verdict.
BOOKKEEPING = ("stage_id", "verifier_identity", "verifier_invocation", "ran_at")

API_NOTES = """\
## How this verdict is delivered

You are called through an API, not as an agent: you have no tools, you cannot
run commands, and you cannot read or write files. Everything you may judge is
in the stage context after these instructions: the stage card with line
numbers, the worker's uncommitted changes as a `git diff` against HEAD
(untracked files included, autometta's own `state/` folder excluded) and the
files the card names as inputs. Cite evidence as `file:line` from those, or
as a hunk of the diff. A criterion you cannot confirm from them FAILs; a
required file missing from the diff and the inputs is evidence of FAIL, not a
reason to skip the criterion.

The labels in braces above (`{stage_id}`, `{stage_card_path}`, ...) are given
their values in the stage context. Where the method says to write the
artefact, reply instead: your whole reply is the verdict, exactly one JSON
object that validates against the schema below, with no prose and no code
fence around it. autometta fills `stage_id`, `verifier_identity`,
`verifier_invocation` and `ran_at` from the stage context and writes the file.
"""

_LABELS = {
    "verifier-identity": "{verifier_identity}",
    "stage-id": "{stage_id}",
    "project-name": "{project}",
    "worker-identity": "{worker_identity}",
    "orchestrator-identity": "autometta",
    "stage-card-path": "{stage_card_path}",
    "repo-path": "{repo}",
    "artefact-path": "{artefact_path}",
    "acceptance-evidence": "",
    "acceptance-note": "",
    "envelope-path": "{envelope_path}",
    "verifier-invocation": "{verifier_invocation}",
    "family-notes": API_NOTES,
}


# ------------------------------------------------------------------ money

def price_of(model: str) -> Optional[Tuple[float, float, float, float]]:
    best = None
    for key, price in PRICES.items():
        if model.startswith(key) and (best is None or len(key) > len(best[0])):
            best = (key, price)
    return best[1] if best else None


def cost_usd(model: str, usage: Usage, *, batch: bool = False) -> Optional[float]:
    """What ``usage`` cost on ``model`` at list price (half for a batch); None for an unknown model."""
    price = price_of(model)
    if price is None:
        return None
    fresh, write, read, out = price
    total = (usage.input_tokens * fresh + usage.cache_write_tokens * write + usage.cache_read_tokens * read
             + usage.output_tokens * out) / 1_000_000
    return round(total * (BATCH_DISCOUNT if batch else 1.0), 6)


def usage_event(family: str, usage: Usage, cost: Optional[float], model: str = "") -> str:
    """One log line the ``family``'s usage parser reads back as ``usage`` (and ``cost``): :meth:`Family.usage_line`."""
    from .. import families

    return families.get(family).usage_line(usage, cost, model)


def add_usage(total: Usage, one: Optional[Usage]) -> Usage:
    if one is None:
        return total
    out = dataclasses.replace(total)
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "unsplit_tokens"):
        setattr(out, name, getattr(out, name) + getattr(one, name))
    if one.cost_usd is not None:
        out.cost_usd = round((out.cost_usd or 0.0) + one.cost_usd, 6)
    return out


# ------------------------------------------------------------------ attachments

def clip(text: str, limit: int, what: str = "text") -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {what} cut here: {len(text) - limit} more characters not shown]\n"


def fenced(text: str, lang: str = "") -> str:
    """``text`` in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    ticks = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{ticks}{lang}\n{body}{ticks}\n"


def numbered(label: str, text: str) -> str:
    """``### label`` then ``N: line`` rows (the bash verifier's layout); ``(empty)`` for an empty file."""
    lines = text.splitlines()
    if not lines:
        return f"### {label}\n(empty)\n"
    return f"### {label}\n" + "\n".join(f"{i}: {line}" for i, line in enumerate(lines, start=1)) + "\n"


def _attachment(label: str, path: Path, limit: int) -> str:
    """``path`` numbered under ``label``, cut after ``limit`` characters (the cut noted after the lines)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit * 4 + 4096)
            more = bool(handle.read(1))
    except OSError as exc:
        return f"### {label}\n(cannot read: {exc.strerror})\n"
    if b"\0" in data[:8192]:
        return f"### {label}\n(binary file, not shown)\n"
    text = data.decode("utf-8", "replace")
    if len(text) <= limit and not more:
        return numbered(label, text)
    shown = text[:limit]
    return numbered(label, shown) + f"[... file cut here after {len(shown)} characters]\n"


def _inside(repo: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(repo.resolve())
    except ValueError:
        return False
    return True


def input_files(repo: Path, names: Sequence[str], each: int = MAX_INPUT_CHARS,
                total: int = MAX_INPUTS_TOTAL_CHARS) -> str:
    """The card's ``## Inputs``, numbered, within the limits; one note for each one left out."""
    parts: List[str] = []
    used = 0
    for name in names:
        pattern = name if os.path.isabs(name) else str(repo / name)
        if any(c in name for c in "*?["):
            found = sorted(p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p))[:MAX_GLOB_FILES]
            if not found:
                parts.append(f"### {name}\n(no file matches)\n")
        else:
            found = [pattern]
        for item in found:
            path = Path(item)
            label = os.path.relpath(item, repo) if _inside(repo, path) else item
            if not _inside(repo, path):
                parts.append(f"### {name}\n(outside the repo; not attached)\n")
                continue
            if path.is_dir():
                parts.append(f"### {label}\n(a folder; not attached)\n")
                continue
            if not path.exists():
                parts.append(f"### {label}\n(does not exist in the working tree)\n")
                continue
            if used >= total:
                parts.append(f"### {label}\n(not attached: the inputs' size limit of {total} characters is reached)\n")
                continue
            part = _attachment(label, path, min(each, total - used))
            used += len(part)
            parts.append(part)
    return "\n".join(parts) if parts else "(the card names no inputs)\n"


def worktree_diff(repo: Path, limit: int = MAX_DIFF_CHARS) -> str:
    """``git diff`` of the working tree against HEAD, untracked files included, ``state/`` excluded.

    Built in a throwaway index seeded from HEAD (as
    :func:`autometta.git.gitops.worktree_fingerprint` does), so the user's index
    is never read or written. A ``--stat`` summary comes first, so every
    changed file is named even when the patch is cut at ``limit``.
    """
    base = ["--no-color", "--no-ext-diff"]
    stat = gitops.work_tree_diff(repo, *base, "--stat=120")
    patch = gitops.work_tree_diff(repo, *base)
    if not patch.strip():
        return "(no changes: the working tree outside state/ is identical to HEAD)\n"
    return stat + "\n" + clip(patch, limit, "diff")


def commit_diff(repo: Path, commit: str, limit: int = MAX_DIFF_CHARS) -> Optional[str]:
    """What ``commit`` changed outside ``state/`` (stat, then patch); None when git does not know it."""
    code, _, _ = gitops._run(repo, ["cat-file", "-e", f"{commit}^{{commit}}"], ok=(0, 1, 128))
    if code != 0:
        return None
    out = gitops._run(repo, ["show", "--no-color", "--no-ext-diff", "--format=commit %H%nAuthor: %an <%ae>%n%n    %s%n",
                             "--stat=120", "--patch", commit, "--", *gitops._OUTSIDE_STATE])[1]
    return clip(out.decode("utf-8", "replace"), limit, "diff")


# ------------------------------------------------------------------ the prompt

def static_block(repo: Path) -> str:
    """The cacheable part: rubric (the verifier template with labels), instructions and schema.

    The same text for every stage, so the provider's prompt cache serves it
    to every verifier of the same model. A repo's own
    ``templates/verifier-prompt.md`` is used when it has one.
    """
    rubric = prompts.build(repo, "verifier-prompt", _LABELS)
    schema_text = resources.read_text("schemas/verifier.json")
    return (rubric.rstrip() + "\n\n## Verdict schema (schemas/verifier.json)\n\n" + fenced(schema_text, "json"))


@dataclass
class StageInfo:
    """The values of the static block's labels, and what the stage block attaches."""

    stage_id: str
    repo: Path
    card_path: Path
    verifier_identity: str
    verifier_invocation: str
    worker_identity: str = ""
    artefact_path: str = ""
    acceptance_evidence: str = ""


def stage_block(info: StageInfo, card_text: str, diff_title: str, diff: str, inputs: str) -> str:
    card_label = os.path.relpath(info.card_path, info.repo) if _inside(info.repo, info.card_path) else str(info.card_path)
    lines = [
        "## Stage context",
        "",
        f"- `{{stage_id}}`: {info.stage_id}",
        f"- `{{project}}`: {info.repo.name}",
        f"- `{{repo}}`: {info.repo}",
        f"- `{{stage_card_path}}`: {info.card_path}",
        f"- `{{artefact_path}}`: {info.artefact_path or '(none: the reply is the verdict)'}"
        + (" (autometta writes it from your reply)" if info.artefact_path else ""),
        f"- `{{envelope_path}}`: state/handoffs/{info.stage_id}.json",
        f"- `{{verifier_identity}}`: {info.verifier_identity}",
        f"- `{{verifier_invocation}}`: {info.verifier_invocation}",
        f"- `{{worker_identity}}`: {info.worker_identity or '(unknown)'}",
    ]
    if info.acceptance_evidence:
        lines.append(info.acceptance_evidence)
    return ("\n".join(lines) + "\n\n## The stage card, line-numbered\n\n" + numbered(card_label, card_text)
            + f"\n## {diff_title}\n\n" + fenced(diff, "diff") + "\n## Inputs named by the card\n\n" + inputs)


def build_request(info: StageInfo, card_inputs: Sequence[str], *, max_diff: int = MAX_DIFF_CHARS,
                  max_inputs: int = MAX_INPUTS_TOTAL_CHARS) -> VerifierRequest:
    """The request for the stage in flight: the working tree's diff and the inputs as they are now."""
    card_text = files.read_text(info.card_path)
    diff = worktree_diff(info.repo, max_diff)
    inputs = input_files(info.repo, card_inputs, min(MAX_INPUT_CHARS, max_inputs), max_inputs)
    title = "The worker's changes: git diff against HEAD (working tree, untracked files included, state/ excluded)"
    return VerifierRequest(static_block(info.repo), stage_block(info, card_text, title, diff, inputs))


# ------------------------------------------------------------------ the answer

def finish_answer(text: Optional[str], info: StageInfo, ran_at: Optional[str] = None
                  ) -> Tuple[Optional[Dict[str, Any]], List[str]]:
    """The verdict in ``text`` with autometta's bookkeeping fields set, and its schema errors.

    (None, [why]) when ``text`` holds no JSON object with an ``overall``.
    """
    doc = artefact_from_message(text)
    if doc is None:
        shown = " ".join((text or "").split())[:120]
        return None, [f"the answer is not one JSON object with an 'overall' field: {shown!r}"]
    doc = dict(doc)
    doc.update(stage_id=info.stage_id, verifier_identity=info.verifier_identity,
               verifier_invocation=info.verifier_invocation, ran_at=ran_at or now_iso())
    ordered = {key: doc[key] for key in BOOKKEEPING}
    ordered.update((k, v) for k, v in doc.items() if k not in ordered)
    return ordered, schema.errors(ordered, schema.load_schema("verifier"))


def invalid_path(out: Path) -> Path:
    return out.with_name(out.name + ".invalid.json")


def write_answer(out: Path, doc: Optional[Dict[str, Any]], errors: List[str], text: Optional[str]) -> bool:
    """Write a valid verdict to ``out``; else the answer and its errors to ``<out>.invalid.json``."""
    files.ensure_dir(out.parent)
    if doc is not None and not errors:
        files.write_json(out, doc, mode=0o600)
        return True
    files.write_json(invalid_path(out), {"errors": errors, "answer": doc if doc is not None else text}, mode=0o600)
    return False


# ------------------------------------------------------------------ the agent

def _say(message: str) -> None:
    print(message, flush=True)


#: How often a verifier waiting for its answer says so (a silent log looks stuck).
PROGRESS_SECONDS = 60.0


def _progress(done: threading.Event, since: float) -> None:
    while not done.wait(PROGRESS_SECONDS):
        _say(f"verify-api: waiting for the answer ({int(time.monotonic() - since)}s)")


def run_api_verifier(*, api: str, family: str, info: StageInfo, card_inputs: Sequence[str], out: Path,
                     model: str, environ: Mapping[str, str], base_url: Optional[str] = None,
                     timeout: float = 600.0, max_diff: int = MAX_DIFF_CHARS,
                     max_inputs: int = MAX_INPUTS_TOTAL_CHARS) -> int:
    """The ``_verify-api`` agent: ask, account, validate, write. Exit code 0 PASS, 1 FAIL,
    3 invalid answer, 4 the API failed, 2 not set up (no key)."""
    module = _api_module(api)
    try:
        key = module.api_key(environ)
    except UserError as exc:
        print(f"verify-api: {exc.message}", file=sys.stderr, flush=True)
        return 2
    url = module.base_url(environ, base_url)
    request = build_request(info, card_inputs, max_diff=max_diff, max_inputs=max_inputs)
    _say(f"verify-api: {module.LABEL} {module.endpoint(url)} model={model}: static block {len(request.static)} "
         f"chars (cacheable), stage block {len(request.stage)} chars")
    done = threading.Event()
    threading.Thread(target=_progress, args=(done, time.monotonic()), daemon=True).start()
    try:
        answer = module.call(request, model=model, key=key, base_url=url, timeout=timeout)
    except ApiError as exc:
        print(f"verify-api: {exc.line()}", file=sys.stderr, flush=True)
        return 4
    finally:
        done.set()
    cost = cost_usd(answer.model or model, answer.usage)
    u = answer.usage
    _say(f"verify-api: usage input={u.input_tokens} cache_write={u.cache_write_tokens} "
         f"cache_read={u.cache_read_tokens} output={u.output_tokens} "
         f"cost_usd={'unknown (no price for ' + model + ')' if cost is None else cost} stop={answer.stop}")
    _say(usage_event(family, u, cost, answer.model or model))
    doc, errors = finish_answer(answer.text, info)
    if not write_answer(out, doc, errors, answer.text):
        print(f"verify-api: invalid answer ({errors[0]}); kept in {invalid_path(out)}", file=sys.stderr, flush=True)
        return 3
    assert doc is not None
    _say(f"verify-api: verdict {doc['overall']} written to {out}")
    return 0 if doc["overall"] == "PASS" else 1


def _api_module(api: str) -> Any:
    """The transport module of the family whose API is ``api`` (:meth:`Family.api_transport`)."""
    from ..families import FAMILIES

    for family in FAMILIES.values():
        if family.api == api:
            return family.api_transport()
    known = " or ".join(f.api for f in FAMILIES.values() if f.api)
    raise UserError(f"unknown verifier API {api!r}; use {known}")


# ------------------------------------------------------------------ dispatch side

def api_argv(*, api: str, family: str, info: StageInfo, out: Path, model: str,
             base_url: Optional[str], timeout: int, config: Mapping[str, Any]) -> List[str]:
    """The argv of one ``_verify-api`` agent (no secret on it: the key travels in the environment)."""
    from ..agents.spawn import self_argv

    args = ["_verify-api", "--api", api, "--family", family, "--stage-id", info.stage_id,
            "--card", str(info.card_path), "--repo", str(info.repo), "--out", str(out), "--model", model,
            "--identity", info.verifier_identity, "--invocation", info.verifier_invocation,
            "--worker", info.worker_identity, "--timeout", str(int(timeout))]
    if info.acceptance_evidence:
        args += ["--acceptance-evidence", info.acceptance_evidence]
    if base_url:
        args += ["--base-url", base_url]
    limits = _api_settings(config).get("api") or {}
    for key, flag in (("max_diff_chars", "--max-diff-chars"), ("max_input_chars", "--max-input-chars")):
        value = limits.get(key) if isinstance(limits, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            args += [flag, str(value)]
    return self_argv(*args)


def _api_settings(config: Mapping[str, Any]) -> Dict[str, Any]:
    section = config.get("verifier") if isinstance(config, Mapping) else None
    return dict(section) if isinstance(section, Mapping) else {}


def config_base_url(config: Mapping[str, Any], family: str) -> Optional[str]:
    """``verifier.<family>.base_url`` from config.yaml (the environment variable wins over it)."""
    entry = _api_settings(config).get(family)
    value = entry.get("base_url") if isinstance(entry, Mapping) else None
    return value if isinstance(value, str) and value.strip() else None


def api_invocation(api: str, model: str, route: Route) -> str:
    label = _api_module(api).LABEL
    return f"autometta _verify-api ({label}, model {model}; {route.describe()})"


def dispatch_launch(ctx: Any, stage: Mapping[str, Any], card: Any, family: Any, model: Optional[str],
                    route: Route) -> OwnLaunch:
    """The tick's API verifier: autometta itself, supervised like any agent, writes the artefact."""
    from ..agents import provision
    from .. import verdicts
    from ..card import budget_seconds

    api = str(family.api)
    module = _api_module(api)
    if not model:
        raise UserError(f"{card.path}: the {module.LABEL} verifier needs a model; name one in the verifier "
                        f"identity (e.g. 'Codex GPT-5.5 <codex-gpt-5-5@local>') or map it under 'models:' "
                        "in config.yaml")
    env = provision.agent_env(ctx, family, "verifier")
    module.api_key(env)  # fail closed here, before anything starts
    invocation = api_invocation(api, model, route)
    values = provision.prompt_values(ctx, stage, card, "verifier", family)
    out = verdicts.artefact_of(ctx.paths, stage)  # made at this dispatch (autometta.verdicts)
    info = StageInfo(stage_id=card.stage_id, repo=ctx.work, card_path=Path(card.path),
                     verifier_identity=provision.identity_for(stage, "verifier"), verifier_invocation=invocation,
                     worker_identity=provision.identity_for(stage, "worker"),
                     artefact_path=verdicts.rel(ctx.paths, out),
                     acceptance_evidence=values.get("acceptance-evidence", ""))
    seconds, _ = budget_seconds(card, "verifier")
    argv = api_argv(api=api, family=family.name, info=info, out=out,
                    model=model, base_url=config_base_url(ctx.config, family.name),
                    timeout=seconds, config=ctx.config)
    return OwnLaunch(invocation=invocation, argv=argv, env=env, family=family.name)
