"""Scan changes for secrets before they are committed or pushed; exit 1 on a hit.

Without a flag it scans what the tick's PASS commit would commit now (every
change outside ``state/``); ``--staged`` scans what ``git commit`` would
commit (the pre-commit hook runs this); ``--pre-push`` reads git's pre-push
lines on stdin and scans the commits being pushed (the pre-push hook). Added
lines, added file names and binary files' content are scanned. A hit names
the file, the line and the rule, never the value (a secret in a file name is
shown masked). The rules are in
``autometta/scan.py``; add your own regular expressions, one a line, to the
repo's ``.publish-guard.local``.

Values are compared too for ``env:`` and ``file:`` references in your refs
file (``op://`` ones are not fetched here, so a commit never waits on
1Password; their key shapes are still caught).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

from .. import auth, scan, secrets
from .common import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", nargs="?", default=".", help="the repo (default: .)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--staged", action="store_true", help="scan the index, as git commit would commit it")
    what.add_argument("--pre-push", action="store_true", help="scan the commits named by git's pre-push lines on stdin")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def local_values(environ: Dict[str, str]) -> List[str]:
    """The values of the ``env:``/``file:`` references in force (no 1Password call)."""
    refs = secrets.load_refs_file(environ)
    names = set()
    for keys in auth.routes().values():
        names.add(keys.api_ref)
        if keys.subscription_ref:
            names.add(keys.subscription_ref)
    for name in sorted(names):
        ref = secrets.lookup(name, environ, refs)
        if ref.set and secrets.kind_of(ref.value) in ("env", "file"):
            try:
                secrets.resolve(ref, environ)
            except secrets.SecretError:
                pass
    return secrets.registered()


def run(args: argparse.Namespace) -> int:
    repo = resolve_repo(args.repo)
    environ = dict(os.environ)
    known = local_values(environ)
    if args.staged:
        what, hits = "the staged changes", scan.scan_staged(repo, known, environ)
    elif args.pre_push:
        what, hits = "the commits being pushed", scan.scan_push(repo, sys.stdin.read().splitlines(), known)
    else:
        what, hits = "the changes outside state/", scan.scan_pending(repo, known)
    if args.json:
        print(json.dumps({"repo": str(repo), "scanned": what, "hits": [h.as_dict() for h in hits]}, indent=2))
        return 1 if hits else 0
    if not hits:
        print(f"PASS no secrets in {what} of {repo}")
        return 0
    for hit in hits:
        print(f"{scan.MARKER}: {hit.describe()}")
    verb, done = ("push", "pushed") if args.pre_push else ("commit", "committed")
    print(f"autometta: {len(hits)} secret{'s' if len(hits) != 1 else ''} in {what}; nothing was {done}. "
          f"Remove {'them' if len(hits) != 1 else 'it'} (values are never shown), or if this is intended, "
          f"git {verb} --no-verify", file=sys.stderr)
    return 1
