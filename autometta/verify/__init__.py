"""Verifiers: which way a stage's verdict is reached, and who writes it.

A verdict always lands in ``state/verifiers/<id>.json``; what differs is who
writes it:

* ``cli`` -- the verifier family's own CLI (``claude -p``, ``codex exec``),
  started by :func:`autometta.agents.dispatch.start` like a worker;
* ``api`` -- autometta itself, as an agent (``autometta _verify-api``), calls
  the family's API (:attr:`autometta.families.base.Family.api`: the Anthropic
  Messages API, :mod:`autometta.families.claude_api`, or the OpenAI
  Responses API, :mod:`autometta.families.codex_api`) with the card, the worker's diff and the card's inputs,
  and writes the answer once it is schema-valid (:mod:`.request`);
* a **panel** -- autometta itself (``autometta _panel-run``) runs three
  verifiers in parallel and writes their majority (:mod:`.panel`).

Either way the agent the tick starts is supervised like any other (runner,
exit record, registry) and the tick reads the artefact as it reads any
verdict; nothing here blocks a tick.

The modules: :mod:`.transport` (which route a family's verifier takes),
:mod:`.launcher` (the launch dispatch starts for it), :mod:`.request` (what an
API verifier is asked), the families' own
modules call the APIs (:meth:`~autometta.families.base.Family.api_transport`), :mod:`.panel` (the panel), :mod:`.retro` (retro-grading landed
stages). How a verdict is judged (a panel's votes counted again, criteria
against overall) is :mod:`autometta.tick.outcomes`'s, the one rule for the
tick and for by-hand runs.
"""

from __future__ import annotations
