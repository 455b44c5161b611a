"""The environment every agent runs with: an allowlist, never the tick's whole env.

A stray ``ANTHROPIC_API_KEY`` or ``OPENAI_API_KEY`` in a cron environment
silently turns a subscription run into API billing, so keys are never passed
through from the parent: a family's own variables, the base allowlist and the
repo's ``env.pass`` list are all that cross, and the key names below never do.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping

BASE_ALLOWLIST = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TMPDIR", "TZ")

#: Secrets that only the billing-route resolver may inject (never inherited).
NEVER_INHERITED = frozenset({
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CODEX_API_KEY",
})


def manifest_pass(manifest: Mapping[str, Any]) -> List[str]:
    """``env.pass`` from ``.autometta.local.yaml``: extra names a repo lets through."""
    env = manifest.get("env") if isinstance(manifest, Mapping) else None
    names = env.get("pass") if isinstance(env, Mapping) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def clean_env(parent: Mapping[str, str], family_names: Iterable[str] = (),
              extra_names: Iterable[str] = (), secret_names: Iterable[str] = ()) -> Dict[str, str]:
    """The allowlisted part of ``parent``.

    ``family_names`` may end in ``*`` (a prefix). A family's ``secret_names``
    (subscription tokens) cross only when the repo names them in ``env.pass``;
    the API keys in :data:`NEVER_INHERITED` never do.
    """
    from .families.base import matches_env_name

    patterns = list(BASE_ALLOWLIST) + list(family_names)
    extras = set(extra_names)
    secrets = set(secret_names) - extras
    out = {}
    for name, value in parent.items():
        if name in NEVER_INHERITED or name in secrets:
            continue
        if name in extras or name.startswith("LC_") or any(matches_env_name(p, name) for p in patterns):
            out[name] = value
    out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return out
