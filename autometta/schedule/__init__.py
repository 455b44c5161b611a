"""Running the tick on a timer: cron, launchd, systemd; Homebrew and vendoring.

Every scheduler here runs the same thing: an absolute interpreter, then a
built pyz by absolute path, then ``tick``. :mod:`.invocation` decides
those two paths once (:func:`~.invocation.resolve_invocation`) and computes
the ``PATH`` a scheduled tick gets (:func:`~.invocation.schedule_path`);
``cron``, ``launchd`` and ``systemd`` only render and install it in their own
format. :mod:`.scheduled` is the record of one thing that runs the tick,
:mod:`.lookup` finds every one of them (each backend's ``scheduled()``),
:mod:`.health` checks them; ``homebrew`` and ``vendor`` package the pyz.

Why a built pyz and never the live checkout: a scheduler that runs a working
tree executes whatever half-edited code is in it every few minutes, a branch
switch changes what runs, and nobody can say which commit ticked. Run from a
checkout, autometta schedules that checkout's ``dist/autometta.pyz`` (built
by ``python3 build_pyz.py``; rebuild it to update what runs) and refuses when
it has not been built. An installed package (``pip install``) runs as
``<its python> -m autometta``.

Why never a shim: ``~/.pyenv/shims/python3`` and friends are shell scripts
that pick an interpreter from the caller's folder and environment; under
cron they pick another one, or none. The scheduled interpreter is the one
running now, taken out of any venv and Homebrew Cellar (a Cellar path
changes on every ``brew upgrade``; its ``opt/`` twin does not).
"""

from __future__ import annotations
