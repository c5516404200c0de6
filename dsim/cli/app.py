"""The ``dsim`` command: a Hydra app for grid cells, plus tool subcommands (``dsim data``).

``dsim key=value ...`` runs one cell; ``dsim -m group=a,b ...`` sweeps. Bad choices, keys, values, paths
and inputs end in one ``dsim: error: ...`` line, not a traceback; a full disk names the file it could not
write. In a sweep, a failing cell is recorded (``failure.json``) and reported in one line, the other cells
run on, and the command exits non-zero at the end.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import sys
import traceback
import warnings
from pathlib import Path
from typing import cast

from dsim import configs
from dsim.configs import CONF_DIR, GROUPS, CellConfig  # noqa: F401  (CONF_DIR: public)


def group_choices(group: str, conf_dirs=None) -> list[str]:
    """The options of a config group along the search dirs (dsim's own, a project's ``conf/``, ``--config-dir``)."""
    return configs.group_choices(group, configs.search_dirs() if conf_dirs is None else conf_dirs)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"dsim: warning: {message}\n"


def setup_process() -> None:
    """In every process that runs cells (launcher workers too): one-line warnings, file names that are not
    UTF-8 printed escaped instead of crashing the output."""
    warnings.formatwarning = _one_line_warning  # the command's warnings read like its errors
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


setup_process()


def fail(message: str, code: int = 2):
    print(f"dsim: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _register_resolvers() -> None:
    """``${dsim_unique_dir:...}`` (the default sweep folder); at import, so launcher workers have it too."""
    from omegaconf import OmegaConf

    from dsim.util.fileio import unique_dir

    if not OmegaConf.has_resolver("dsim_unique_dir"):
        OmegaConf.register_new_resolver("dsim_unique_dir", unique_dir, use_cache=True)


_register_resolvers()

#: launcher presets (conf/hydra/launcher/NAME.yaml) → the plugin module that registers the schema NAME
LAUNCHER_PLUGINS = {
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher.config", "hydra-submitit-launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher.config", "hydra-submitit-launcher"),
    "ray": ("hydra_plugins.hydra_ray_launcher._config", "hydra-ray-launcher 'ray[default]'"),
}


def _register_launcher_bases(args: list[str]) -> None:
    """Move each installed launcher plugin's schema ``NAME`` to ``_NAME_base``, which dsim's preset ``NAME``
    extends (so ``hydra/launcher=submitit_slurm`` keeps the plugin's name and keys, with dsim's defaults);
    a preset whose plugin is not installed is a one-line error when it is chosen."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # Hydra's plugin scan (it re-runs plugin modules, which register their schemas): once, now
    wanted = next((a.split("=", 1)[1] for a in args if a.startswith("hydra/launcher=")), None)
    store = ConfigStore.instance()
    for name, (module, package) in LAUNCHER_PLUGINS.items():
        try:
            importlib.import_module(module)  # registers the plugin's schemas (once per process)
        except ImportError:
            if wanted == name:
                fail(f"hydra/launcher={name} needs the launcher plugin: pip install {package}")
            continue
        if wanted == name == "submitit_slurm" and shutil.which("sbatch") is None:
            fail(
                "hydra/launcher=submitit_slurm submits Slurm jobs, but there is no `sbatch` here: run it on a "
                "cluster's login node (or use hydra/launcher=submitit_local to run the jobs on this machine)"
            )
        launchers = store.repo.get("hydra", {}).get("launcher", {})
        node = launchers.pop(f"{name}.yaml", None)
        if node is not None:
            store.store(group="hydra/launcher", name=f"_{name}_base", node=node.node, provider=node.provider)


def _overrides(args: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser, overrides = OverridesParser.create(), [a for a in args if not a.startswith("-")]
    try:
        return parser.parse_overrides(overrides)
    except HydraException as error:
        fail(_unreadable(parser, overrides) or str(error).splitlines()[0])


def _unreadable(parser, overrides: list[str]) -> str | None:
    """What is wrong with the first override Hydra cannot read, and the quoting that reads it: a value the
    shell split at a space (``pair.reference=/data/run 2024``), or one with brackets, ``&`` or quotes."""
    from hydra.errors import HydraException

    for i, arg in enumerate(overrides):  # noqa: B007  (i is read after the loop)
        try:
            parser.parse_override(arg)
        except HydraException:
            break
    else:
        return None
    key, sep, value = arg.partition("=")
    if sep:
        return f"cannot read the value of {key.lstrip('+~')}: quote it, as one argument: '{key}=\"{value}\"'"
    rest = " ".join(overrides[i : i + next((n for n, a in enumerate(overrides[i:]) if "=" in a), len(overrides) - i)])
    if i and "=" in overrides[i - 1]:
        key, _, value = overrides[i - 1].partition("=")
        return (
            f"{rest!r} is not KEY=VALUE: a value with spaces must be quoted, as one argument: "
            f"'{key}=\"{value} {rest}\"'"
        )
    return f"{arg!r} is not KEY=VALUE (e.g. metric=fid)"


def _resolved(folder: str) -> Path:
    return Path(folder).resolve()


def config_dirs_of(args: list[str]) -> list[str]:
    """The ``--config-dir`` / ``-cd`` folders of a command line."""
    found = []
    for i, arg in enumerate(args):
        if arg in ("--config-dir", "-cd") and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--config-dir="):
            found.append(arg.split("=", 1)[1])
    return found


def check_group_overrides(args: list[str]) -> None:
    """Reject an unknown config-group choice (``extractor=nope``) with one line naming the choices."""
    dirs = configs.search_dirs(config_dirs_of(args))
    for override in _overrides(args):
        group = override.key_or_group
        if group not in GROUPS or override.is_delete() or override.package:
            continue
        value = None if override.is_sweep_override() else override.value()
        names = (
            [str(v) for v in override.sweep_string_iterator()]
            if override.is_sweep_override()
            else [str(v) for v in value]
            if isinstance(value, list)
            else [str(value)]
        )  # analysis=[umap,distance]
        known = group_choices(group, dirs)
        for name in names:
            if name not in known and not (group == "experiment" and name in ("null", "None")):
                fail(f"unknown {group} {name!r} (choose from: {', '.join(known)})")


def _choices(args: list[str]) -> dict:
    """Group choices of the command line (first value of a sweep), for explaining an unknown key."""
    chosen = {}
    for override in _overrides(args):
        if override.key_or_group in GROUPS and not override.is_delete():
            values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
            chosen[override.key_or_group] = values[0] if values else None
    return chosen


def explain_composition_error(error: Exception, args: list[str]) -> str:
    """Hydra's composition error as one line; an unknown key names the closest real one (never ``+key``)."""
    text = str(error)
    cause = getattr(error, "__cause__", None)
    found = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    if found:
        key = found.group(1)
        inner = re.search(r"full_key: (\S+)", str(cause or ""))
        in_table = bool(inner and inner.group(1).startswith(key + "."))  # a table value: generator.params={a:1}
        dirs = configs.search_dirs(config_dirs_of(args))
        defaults = configs.defaults({**configs.default_choices(), **_choices(args)}, dirs)
        return configs.unknown_key_message(inner.group(1) if inner and in_table else key, defaults, in_table=in_table)
    line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return line if cause is None else f"{line} ({str(cause).splitlines()[0]})"


#: a single cell's user-facing error, raised by :func:`main` once Hydra has returned
_DEFERRED: list[Exception] = []


def task(cfg) -> None:
    """One grid cell (the Hydra task function). In a sweep, a failure is recorded, not raised."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    setup_process()
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.runtime.cwd and os.path.isdir(hydra_cfg.runtime.cwd):
        os.chdir(hydra_cfg.runtime.cwd)  # a job on a Ray worker starts elsewhere: relative paths mean the user's
    job_dir = Path(hydra_cfg.runtime.output_dir)
    from dsim.errors import DsimError
    from dsim.util.fileio import is_disk_full

    if hydra_cfg.mode != RunMode.MULTIRUN:
        try:
            record = _run(cfg, hydra_cfg, job_dir)
        except (DsimError, OSError) as error:  # raised again after Hydra returns: one line, no Hydra preamble
            if isinstance(error, OSError) and not is_disk_full(error):
                raise
            _DEFERRED.append(error)
            return
        _print_single(record, job_dir, cfg.tracking, bool(cfg.get("verbose")))
        return

    try:
        record = _run(cfg, hydra_cfg, job_dir)
    except (DsimError, OSError) as error:
        if isinstance(error, OSError) and not is_disk_full(error):
            raise
        _record_failure(hydra_cfg, job_dir, str(error))
        return
    except Exception as error:  # noqa: BLE001 - a bug: recorded with its traceback, the sweep goes on
        trace = job_dir / "traceback.txt"
        try:
            trace.parent.mkdir(parents=True, exist_ok=True)
            trace.write_text(traceback.format_exc())
        except OSError:
            pass
        _record_failure(hydra_cfg, job_dir, f"{type(error).__name__}: {error} (traceback in {trace})".splitlines()[0])
        return
    if "shards" in record:
        print(
            f"[shard {record['shard'] + 1}/{record['shards']}] {record['name']} · {record['extractor']}: "
            f"{record['images']} images, {record['embedded']} embedded now"
        )
        return
    if "f_vs_i_dist" in record:  # task=transfer_study: the sweep's end prints its summary
        print(f"[study {hydra_cfg.job.num}] {record['extractor']}: {record['folder']}")
        return
    from dsim.records import CellRecord
    from dsim.results import headline_values, shown_value

    values = record["values"]
    headline = headline_values(values, CellRecord.from_json(record).headline())
    shown = ", ".join(f"{k}={shown_value(k, values[k]):.6g}" for k in headline)
    note = " (reused: same cell key as run " + str(record.get("mlflow_run_id")) + ")" if record.get("reused") else ""
    print(f"[cell {hydra_cfg.job.num}] {record['extractor']} · {record['metric']} · {record['pair']}: {shown}{note}")


def _check_before_work(plain: dict, choices: dict, conf_dirs) -> CellConfig:
    """Every value, and the folders the job writes to, before the store or a model is opened (``cache_dir``
    is made absolute once checked: an empty one is an error, not the working folder): the typed config."""
    from dsim.data.dvc import project_path
    from dsim.data.perturb import Perturbation
    from dsim.generators import GeneratorSpec
    from dsim.tracking.mlflow_store import resolve_uri
    from dsim.util.fileio import ensure_dir

    Perturbation.from_config(plain.get("perturb"))  # first: its strength rules depend on the perturbation
    configs.check(plain, choices, conf_dirs)
    GeneratorSpec.from_config(plain.get("generator"))  # its _target_, output range, checkpoint file
    plain["cache_dir"] = str(project_path(plain["cache_dir"]))
    ensure_dir(plain["cache_dir"], "cache_dir")
    tracking = plain["tracking"]
    resolve_uri(tracking["uri"], tracking["store_dir"])  # a URI no MLflow store has: one line now
    if not tracking["uri"] and not os.environ.get("MLFLOW_TRACKING_URI"):  # the local SQLite store
        ensure_dir(project_path(tracking["store_dir"]), "tracking.store_dir")
    if plain.get("results_file"):
        ensure_dir(Path(plain["results_file"]).parent, "results_file")
    return CellConfig.build(plain)


#: the lock a single cell holds on its job folder while it runs (a sweep's folder has dsim.cli.sweep's)
JOB_LOCK = ".dsim_job.lock"


def _run(cfg, hydra_cfg, job_dir: Path) -> dict:
    """Check the job's config, then run it; a single cell holds its job folder while it runs."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from dsim.errors import DsimError
    from dsim.util.fileio import lock_dir, unlock_dir

    try:
        plain = cast(dict, OmegaConf.to_container(cfg, resolve=True))
    except OmegaConfBaseException as error:
        raise DsimError(str(error).splitlines()[0]) from None
    runtime_choices = cast(dict, OmegaConf.to_container(hydra_cfg.runtime.choices))
    choices = {k: v for k, v in runtime_choices.items() if "/" not in k}
    if choices and "analysis" not in choices:  # a list (analysis=[umap,distance]) is not among Hydra's choices
        choices["analysis"] = configs.choices_of(plain)["analysis"]  # (none at all: a composed file, params.yaml)
    conf_dirs = _conf_dirs(hydra_cfg)
    config = _check_before_work(plain, choices, conf_dirs)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return _work(config, hydra_cfg, job_dir)
    lock = lock_dir(
        job_dir,
        JOB_LOCK,
        f"hydra.run.dir {job_dir} is in use by another running cell: give this cell "
        "its own hydra.run.dir (or leave it unset: each cell then gets a new folder)",
    )
    try:
        return _work(config, hydra_cfg, job_dir)
    finally:
        unlock_dir(lock)


def _work(config: CellConfig, hydra_cfg, job_dir: Path) -> dict:
    from hydra.types import RunMode

    from dsim.tracking.queue import parent_run_id
    from dsim.tracking.session import StoreSession

    if config.task.name == "embed":
        from dsim.cli.embed_task import run_embed_task

        return run_embed_task(config, job_dir)
    if config.task.name == "transfer_study":
        from dsim.cli.study_task import run_study_task

        sweep_dir = hydra_cfg.sweep.dir if hydra_cfg.mode == RunMode.MULTIRUN else None
        parent = parent_run_id(sweep_dir) if sweep_dir else None
        return run_study_task(config, job_dir, parent_run_id=parent, sweep_dir=sweep_dir)
    store = StoreSession.for_config(config.tracking)  # before torch is imported: MLflow opens alongside the work
    from dsim.pipeline import run_cell

    with store:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            sweep_dir = hydra_cfg.sweep.dir
            return run_cell(config, job_dir, parent_run_id=parent_run_id(sweep_dir), sweep_dir=sweep_dir, store=store)
        record = run_cell(config, job_dir, store=store)
    if config.results_file:
        from dsim import results

        results.write_values_file(Path(config.results_file), record)
    return record


def _conf_dirs(hydra_cfg) -> list[Path]:
    """The file and package config sources Hydra composed this job from, in lookup order."""
    from importlib.resources import files

    dirs = []
    for source in hydra_cfg.runtime.config_sources:
        if source.schema == "file":
            dirs.append(Path(source.path))
        elif source.schema == "pkg" and source.path.startswith("dsim"):
            dirs.append(Path(str(files(source.path))))
    return dirs or [CONF_DIR]


def _print_single(record: dict, job_dir: Path, tracking, verbose: bool) -> None:
    from dsim import results
    from dsim.tracking.mlflow_store import resolve_uri, ui_command

    if "shards" in record:  # task=embed
        print(
            f"{record['name']} · {record['extractor']}: shard {record['shard'] + 1}/{record['shards']}, "
            f"{record['images']} images, {record['embedded']} embedded now, the rest were in the store"
        )
        return
    if "f_vs_i_dist" in record:  # task=transfer_study
        from dsim.cli.study_task import format_study

        print(format_study(record))
        print(f"study: {job_dir}")
        print(f"MLflow UI: {ui_command(resolve_uri(tracking.uri, tracking.store_dir))}")
        return
    print(results.format_table(results.to_frame([record])))
    print(f"record: {job_dir / 'result.json'}")
    note = results.caveats_summary([record])
    if note and not verbose:
        print(note)
    if record.get("reused"):
        print(
            f"reused the finished run {record.get('mlflow_run_id')} of the same cell key (config, data, extractor, "
            "dsim version); force=true recomputes"
        )
    elif record.get("tracking") == "pending":
        print("MLflow: not logged yet (the store is unavailable); `dsim sync` logs it")
    print(f"MLflow UI: {ui_command(resolve_uri(tracking.uri, tracking.store_dir))}")


def _record_failure(hydra_cfg, job_dir: Path, message: str) -> None:
    """A failed sweep cell: its ``failure.json`` (the sweep's end lists each one, with its error, once) and a
    progress line; the error itself now only when it could not be recorded."""
    from dsim.records import FAILURE_FILE, write_json

    overrides = " ".join(hydra_cfg.overrides.task)
    try:
        write_json(job_dir / FAILURE_FILE, {"job": hydra_cfg.job.num, "overrides": overrides, "error": message})
    except Exception:  # noqa: BLE001 - not listed at the end then: reported here
        print(f"dsim: error: cell {hydra_cfg.job.num} ({overrides}) failed: {message}", file=sys.stderr)
        return
    print(f"[cell {hydra_cfg.job.num}] failed (its error is listed at the end; {job_dir / FAILURE_FILE})")


# Tool subcommands: name -> module in dsim/cli/commands/ with a ``run(argv)`` function (imported on use).
SUBCOMMANDS = {
    "audit": "dsim.cli.commands.audit",
    "cache": "dsim.cli.commands.cache",
    "data": "dsim.cli.commands.data",
    "embed": "dsim.cli.commands.embed",
    "lineage": "dsim.cli.commands.lineage",
    "report": "dsim.cli.commands.report",
    "select": "dsim.cli.commands.select",
    "init": "dsim.cli.commands.init",
    "stats": "dsim.cli.commands.stats",
    "sync": "dsim.cli.commands.sync",
    "weights": "dsim.cli.commands.weights",
}


def _absolute_dir(arg: str) -> str:
    """``hydra.sweep.dir=REL`` (or ``hydra.run.dir=``) made absolute: a launcher's job may start elsewhere."""
    for key in ("hydra.sweep.dir=", "hydra.run.dir="):
        if arg.startswith(key) and "${" not in arg and not os.path.isabs(arg[len(key) :]):
            return key + os.path.abspath(arg[len(key) :])
    return arg


def _raised_by_launcher(error: BaseException) -> bool:
    """Whether ``error`` came out of a launcher plugin (``hydra_plugins``) or its cluster library."""
    tb, modules = error.__traceback__, []
    while tb is not None:
        modules.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return any(m.startswith(("hydra_plugins.", "ray.", "submitit.")) for m in modules) and not any(
        m.startswith("dsim.") for m in modules[modules.index("dsim.cli.app") + 1 :] if "dsim.cli.app" in modules
    )


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    setup_process()
    from dsim.errors import Abort, DsimError
    from dsim.util.fileio import disk_full, is_disk_full

    if args and args[0] in ("-h", "--help"):
        from dsim import __version__
        from dsim.cli.help import text

        return print(text(SUBCOMMANDS, __version__))
    if args and args[0] == "--version":
        from dsim import __version__

        return print(f"dsim {__version__}")
    if "--hydra-help" in args:  # Hydra's own help (its --help shows the composed config and Hydra's flags)
        args = ["--help" if a == "--hydra-help" else a for a in args]
    try:
        if args and args[0] in SUBCOMMANDS:
            return importlib.import_module(SUBCOMMANDS[args[0]]).run(args[1:])
        _hydra_main(args)
    except (DsimError, Abort) as error:
        fail(str(error))
    except OSError as error:
        if not is_disk_full(error):
            raise
        fail(str(disk_full(error)))
    except KeyboardInterrupt:
        from dsim.cli import sweep

        sweep.abort("KILLED")
        fail("interrupted; finished cells are recorded (rerunning computes only the missing ones)", 130)


def _hydra_main(args: list[str]) -> None:
    check_group_overrides(args)
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dsim.cli import sweep

    _register_launcher_bases(args)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us (and become one line), not Hydra's printer
    signal.signal(signal.SIGTERM, _terminate)
    project = configs.project_conf_dir()
    if project is not None and not config_dirs_of(args):  # a project's conf/ adds to and overrides dsim's groups
        args = [f"--config-dir={project}", *args]
    elif project is not None and str(project) not in map(str, map(_resolved, config_dirs_of(args))):
        # Hydra takes one --config-dir: the project's conf/ joins the search path, beside the other overrides
        first = next((i for i, a in enumerate(args) if not a.startswith("-") and "=" in a), len(args))
        args = [*args[:first], f"hydra.searchpath=[file://{project}]", *args[first:]]
    if str(Path.cwd()) not in sys.path:  # a project's own modules (``_target_: mymodule.MyExtractor``), as python -m
        sys.path.insert(0, str(Path.cwd()))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))
    args = [_absolute_dir(arg) for arg in args]
    if any(a.lower() in ("verbose=true", "verbose=1") for a in args):  # Hydra's launch lines too
        args.append("hydra.hydra_logging.root.level=INFO")
    sys.argv = [sys.argv[0] if sys.argv else "dsim", *args]
    try:
        hydra.main(config_path=f"pkg://{configs.CONF_PACKAGE}", config_name="config", version_base="1.3")(task)()
    except (HydraException, OmegaConfBaseException) as error:
        sweep.abort("FAILED")
        fail(explain_composition_error(error, args))
    except Exception as error:  # noqa: BLE001 - a launcher plugin's own failure (a cluster unreachable) is one line
        if not _raised_by_launcher(error):
            raise
        sweep.abort("FAILED")
        fail(f"the launcher failed: {type(error).__name__}: {' '.join(str(error).split())[:300]}")
    finally:
        sweep.abort("KILLED")  # only when a sweep is still marked running (an exception on the way out)
    if _DEFERRED:
        raise _DEFERRED.pop()
    if sweep.STATE.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
