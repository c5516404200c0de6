"""dsim's built-in configuration (a package, so that Hydra finds it as ``pkg://dsim.conf`` in an installed dsim)."""
