"""The pieces of ``benchmarks/run.py``: systems under test, data set-up, workloads, reports."""
