"""The ``dsim`` command: Hydra's grid (:mod:`~dsim.cli.app`), the sweep callback (:mod:`~dsim.cli.sweep`),
``task=embed`` jobs (:mod:`~dsim.cli.embed_task`) and the tool subcommands (:mod:`~dsim.cli.commands`).

``dsim.cli.main`` is the console script's entry point (loaded on first use).
"""


def __getattr__(name: str):
    from dsim import _compat

    return _compat.forward("dsim.cli", "dsim.cli.app", name, deprecated=name != "main")
