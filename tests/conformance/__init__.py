"""The conformance suite: one set of behaviours, run on every backend through the ``store``
fixture. Tests here import only ``boternity``, ``boternity.models`` and ``boternity.errors``
(plus the local ``factories``), never a backend module, so a new backend passes by
behaving, not by sharing code (see tests/test_conformance_imports.py)."""
