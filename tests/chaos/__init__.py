"""The chaos suite: faults injected from outside into real workers on the bundled broker and a
Redis of its own, every input event verified against the outputs. `make chaos` runs it at its
default sizes (python -m tests.chaos); tests/integration/test_chaos.py runs a small version of
each scenario."""
