"""Use cases: each function takes its dependencies and ``now``, and owns one unit of work."""
