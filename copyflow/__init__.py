"""copyflow's composition root: the command line, the embedded demo, and the wiring of
settings and plugins. Nothing imports it."""

__version__ = "0.1.0"
