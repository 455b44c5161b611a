#!/usr/bin/env bash
# Run every test on a fresh machine.
#
# Creates a virtual environment per interpreter (.venv-3.X), installs pytest
# into it, installs what the end-to-end tests drive (tmux, cron and ruby from the system's
# packages when missing and we may, bubblewrap included; the real claude and codex CLIs from npm
# into a cache outside the repo, see tests/testing/agent_clis.py), then runs
# pytest. Arguments are passed to pytest.  PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

py=${PYTHON:-python3}
py=$("$py" -c 'import sys; print(sys.executable)')   # absolute: no version-manager shim per call
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=".venv-$ver"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pytest' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest
fi

# .ci/run runs this for several interpreters at once: one apt-get at a time
# (another would find dpkg's lock taken and give up).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/autometta-run-sh-$(id -u).lock"
  flock 9
fi

if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq tmux >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq tmux >/dev/null 2>&1; }) \
    || echo "tests/run.sh: could not install tmux; tmux tests will skip" >&2
fi

# The schedule tests drive Debian's real crontab (cron) and check the Homebrew
# formula with ruby; the dashboard test renders the page in headless chromium;
# the sandbox tests run agents inside bubblewrap (bwrap), as codex does itself.
# Without them those tests use a fake crontab or skip.
for pkg in cron:crontab ruby:ruby chromium:chromium bubblewrap:bwrap; do
  if ! command -v "${pkg#*:}" >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -qq "${pkg%%:*}" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${pkg%%:*}" >/dev/null 2>&1; }) \
      || echo "tests/run.sh: could not install ${pkg%%:*}; its tests will use a fake or skip" >&2
  fi
done
exec 9>&-  # the next run may install now

# Only the e2e tests drive the real CLIs (agent_clis takes its own lock).
if [ "${AUTOMETTA_SKIP_E2E:-}" != 1 ] && [ -f tests/testing/agent_clis.py ] && command -v npm >/dev/null 2>&1; then
  "$venv/bin/python" -m tests.testing.agent_clis --install \
    || echo "tests/run.sh: could not install the agent CLIs; their e2e tests will skip" >&2
fi

exec "$venv/bin/python" -m pytest "$@"
