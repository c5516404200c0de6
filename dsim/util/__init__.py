"""Helpers every layer may use and that know nothing of dsim's nouns: crash-safe file writes and locks
(:mod:`~dsim.util.fileio`), user plugins by dotted path (:mod:`~dsim.util.plugins`), files rendered from
declarations (:mod:`~dsim.util.codegen`), and the layer contract of dsim's own packages
(:mod:`~dsim.util.layers`, data only)."""
