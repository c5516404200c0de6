"""The ``dsim`` command: a Hydra app for grid cells, plus tool subcommands (``dsim data``).

``dsim key=value ...`` runs one cell; ``dsim -m group=a,b ...`` sweeps. Bad choices, paths and inputs
end in one ``dsim: error: ...`` line, not a traceback.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("extractor", "metric", "pair", "pairing", "dataset", "experiment", "analysis")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"dsim: warning: {message}\n"


warnings.formatwarning = _one_line_warning  # the command's warnings read like its errors


def fail(message: str, code: int = 2):
    print(f"dsim: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def group_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_group_overrides(args: list[str]) -> None:
    """Reject an unknown config-group choice (``extractor=nope``) with one line naming the choices."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides = [a for a in args if not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        fail(str(error).splitlines()[0])
    for override in parsed:
        group = override.key_or_group
        if group not in GROUPS or override.is_delete() or override.package:
            continue
        value = None if override.is_sweep_override() else override.value()
        names = [str(v) for v in override.sweep_string_iterator()] if override.is_sweep_override() \
            else [str(v) for v in value] if isinstance(value, list) else [str(value)]  # analysis=[umap,distance]
        known = group_choices(group)
        for name in names:
            if name not in known and not (group == "experiment" and name in ("null", "None")):
                fail(f"unknown {group} {name!r} (choose from: {', '.join(known)})")


def task(cfg) -> None:
    """One grid cell (the Hydra task function)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from dsim import results
    from dsim.cell import run_cell
    from dsim.dvc import project_path
    from dsim.errors import DsimError
    from dsim.sweep import parent_run_id
    from dsim.tracking import resolve_uri, ui_command

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    job_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        plain["cache_dir"] = str(project_path(plain["cache_dir"]))
        parent = parent_run_id(hydra_cfg.sweep.dir) if multirun else None
        record = run_cell(plain, job_dir, parent_run_id=parent)
    except DsimError as error:
        fail(str(error))
    if multirun:
        shown = ", ".join(f"{k}={v:.6g}" for k, v in record["values"].items())
        print(f"[cell {hydra_cfg.job.num}] {record['extractor']} · {record['metric']} · {record['pair']}: {shown}")
    else:
        print(results.format_table(results.to_frame([record])))
        print(f"record: {job_dir / 'result.json'}")
        if plain["results_file"]:
            results.write_values_file(Path(plain["results_file"]), record)
        print(f"MLflow UI: {ui_command(resolve_uri(plain['tracking']['uri'], plain['tracking']['store_dir']))}")


# Tool subcommands: name -> module in dsim/commands/ with a ``run(argv)`` function (imported on use).
SUBCOMMANDS = {
    "cache": "dsim.commands.cache",
    "data": "dsim.commands.data",
    "embed": "dsim.commands.embed",
    "lineage": "dsim.commands.lineage",
    "report": "dsim.commands.report",
    "weights": "dsim.commands.weights",
}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in SUBCOMMANDS:
        from dsim.errors import DsimError

        try:
            return importlib.import_module(SUBCOMMANDS[args[0]]).run(args[1:])
        except DsimError as error:
            fail(str(error))
    check_group_overrides(args)
    import hydra

    sys.argv = [sys.argv[0] if sys.argv else "dsim", *args]
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)()


if __name__ == "__main__":
    main()
