"""Studies run on dsim: reproductions of published experiments, each one command (see docs/guides/studies.md)."""
