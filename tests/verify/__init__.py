"""Tests of autometta/verify/: API verifiers, the panel, retro-grade, verifier routes."""
