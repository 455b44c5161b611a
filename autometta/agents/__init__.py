"""Agents: how one is started, supervised, found again and stopped (see docs/architecture.md)."""
