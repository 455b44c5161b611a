"""Fixtures for the reliability suite (the shared ``setup`` lives in tests/conftest.py)."""
