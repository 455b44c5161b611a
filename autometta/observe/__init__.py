"""Observability: the agent registry and, later, heartbeat, tickers and viewers."""
