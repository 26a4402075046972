"""Backend conformance suite: one set of tests every ``Store`` implementation must pass."""
