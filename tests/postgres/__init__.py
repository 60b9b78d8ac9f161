"""Tests of the PostgreSQL backend itself (the shared contract is in tests/conformance)."""
