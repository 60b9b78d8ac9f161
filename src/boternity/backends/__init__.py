"""Storage backends. Each one implements the Protocols in :mod:`boternity.repositories`."""
