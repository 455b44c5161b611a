"""Tests of autometta/tick/: the decision, the bookkeeping, outcomes, whole ticks."""
