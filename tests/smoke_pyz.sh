#!/usr/bin/env bash
# Build dist/autometta.pyz and drive it (not the source tree) through the
# commands a new user runs first, with each interpreter given.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 build_pyz.py >/dev/null
pyz="$PWD/dist/autometta.pyz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache"  # the pyz's bytecode cache: cold on the first command, then warm
for py in "$@"; do
  echo "-- $py"
  export PHAT_CONTROLLER_HOME="$work/home-$(basename "$(dirname "$(dirname "$py")")")"
  repo="$work/repo-$(basename "$(dirname "$(dirname "$py")")")"
  (cd "$work" && "$py" "$pyz" --version)
  git init -q "$repo"
  (cd "$work" && "$py" "$pyz" init "$repo" >/dev/null)
  mkdir -p "$repo/docs/stages"
  cat > "$repo/docs/stages/01-smoke.md" <<'CARD'
# Stage card 01-smoke: smoke test

## Metadata
- **Worker:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>
- **Verifier:** Codex GPT-5.5 <codex-gpt-5-5@local>

## Deliverables
- `smoke.txt`

## Acceptance criteria
1. `smoke.txt` exists.

## Budget
- Worker wall-clock: 10 minutes
- Verifier wall-clock: 5 minutes
CARD
  (cd "$work" && "$py" "$pyz" add-stage "$repo" "$repo/docs/stages/01-smoke.md")
  (cd "$work" && "$py" "$pyz" list-cards "$repo") | grep -q $'01-smoke\tpending'
  (cd "$work" && "$py" "$pyz" status) | grep -q '01-smoke\|idle'
  (cd "$work" && "$py" "$pyz" status --json) | "$py" -c 'import json,sys; d=json.load(sys.stdin); assert d["repos"][0]["status"]=="idle", d'
  demo="$work/demo-$(basename "$(dirname "$(dirname "$py")")")"
  (cd "$work" && "$py" "$pyz" demo --dir "$demo") | grep -q 'co-author: Script Checker'
  [ "$(git -C "$demo/demo-repo" worktree list | wc -l)" = 1 ]  # each stage ran in a worktree, removed on landing
  lanes="$work/lanes-$(basename "$(dirname "$(dirname "$py")")")"
  out=$(cd "$work" && "$py" "$pyz" demo --parallel 3 --dir "$lanes")
  grep -q 'into lane 2 of 3' <<<"$out"
  [ "$(git -C "$lanes/demo-repo" worktree list | wc -l)" = 1 ]
done
echo "smoke: ok"
