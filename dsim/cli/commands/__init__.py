"""Tool subcommands of ``dsim`` (``dsim data``, ...): one module each, with ``run(argv)``."""
