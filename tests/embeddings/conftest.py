"""Fixtures for embedder tests: the provider tests' fake LLM server on loopback and instant,
recorded retries (the same fixtures, not a copy)."""

from tests.llm.conftest import retry, server, sleeps

__all__ = ["retry", "server", "sleeps"]
