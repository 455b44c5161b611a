"""Tests of autometta/observe/: what a person sees (status, needs, dashboard, top, events)."""
