"""Getting a finished result into the MLflow store — now, or later with ``dsim sync`` — exactly once.

A cell (or a sweep's parent) first writes its result and artifacts into its job folder, then describes
the MLflow run it wants as a :class:`RunPlan` and :func:`submit` s it. Queue first, then log: the plan is
written as a JSON file into the *pending queue* ``<tracking.store_dir>/pending/`` and beside its result
(``.dsim_pending_run.json``) before the store is asked, and removed once it is logged — so a cell killed
while logging still leaves its record queued. When the store cannot take it (locked, full, unreachable
for ``tracking.retry_s`` seconds), the plan stays queued and one warning line says so; nothing computed
is lost. ``dsim sync`` — and every later dsim command that opens the same store — logs the queued plans.

Exactly once: every plan has a ``record_id`` (tag ``dsim.record_id``). Logging first looks for a run with
that id: a FINISHED one means the plan was logged already (by another process, or before a crash), an
unfinished one is a torn earlier attempt and is deleted before the plan is logged again. Whoever logs a
plan holds the locks of all its queued files (:func:`_claim`), so two processes never log the same plan.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from dsim.data.dvc import project_path
from dsim.errors import DsimError
from dsim.util.fileio import atomic_write_text, read_text

PENDING_DIR = "pending"
RECORD_ID_TAG = "dsim.record_id"
PARENT_RUN_FILE = ".dsim_parent_run_id"
PENDING_COPY = ".dsim_pending_run.json"  # a waiting plan's copy beside its result
#: a sweep cell reused from an earlier run: the child run of this sweep that stands for it names that run
REUSED_FROM_TAG = "dsim.reused_from"


@dataclass
class RunPlan:
    """One MLflow run to create: what it holds, where its files are, and whose child it is.

    ``parent_run_id`` or, when the sweep's parent run is itself not created yet, ``sweep_dir`` (whose
    :data:`PARENT_RUN_FILE` names the parent once it exists). ``result_file``: a ``result.json`` whose
    ``mlflow_run_id`` is filled in once the run exists. ``status``: the run's final status.
    """

    name: str
    uri: str
    experiment: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    datasets: list[dict] = field(default_factory=list)  # keyword arguments of Tracker.log_dataset
    artifacts: list[tuple[str, str | None]] = field(default_factory=list)  # (file, artifact folder)
    parent_run_id: str | None = None
    sweep_dir: str | None = None
    result_file: str | None = None
    status: str = "FINISHED"
    kind: str = "cell"  # cell | sweep (sweeps are logged first, so their children find them)
    run_id: str | None = None  # an existing run to complete (a sweep's parent) instead of a new one
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    queue_dir: str | None = None  # the pending queue it was written to (absolute; set by :func:`enqueue`)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunPlan:
        data = json.loads(text)
        data["artifacts"] = [tuple(a) for a in data.get("artifacts", [])]
        return cls(**data)


def pending_dir(store_dir: str | os.PathLike) -> Path:
    """The pending queue of a store folder (relative folders under the DVC project root, as the store)."""
    return project_path(store_dir) / PENDING_DIR


def parent_run_id(sweep_dir: str | os.PathLike) -> str | None:
    """The sweep's parent run id, if its parent run exists."""
    file = Path(sweep_dir) / PARENT_RUN_FILE
    try:
        return file.read_text().strip() or None
    except OSError:
        return None


class ParentNotLogged(Exception):
    """A sweep's child whose parent run does not exist yet: it waits in the queue for its parent."""


def log_plan(tracker, plan: RunPlan) -> str:
    """Create the run ``plan`` describes (once: an already logged ``record_id`` is found, not repeated)."""
    if plan.run_id:
        return _complete(tracker, plan)
    for run in tracker.runs_tagged(RECORD_ID_TAG, plan.record_id):
        if run.info.status == "FINISHED" or (plan.status != "FINISHED" and run.info.status == plan.status):
            _note_run_id(plan, run.info.run_id)
            return run.info.run_id
        tracker.delete_run(run.info.run_id)  # a torn earlier attempt
    parent = plan.parent_run_id
    if parent is None and plan.kind == "cell" and plan.sweep_dir:
        parent = parent_run_id(plan.sweep_dir)
        if parent is None:
            raise ParentNotLogged(f"the parent run of sweep {plan.sweep_dir} is not logged yet")
    run_id = tracker.start_run(plan.name, tags={**plan.tags, RECORD_ID_TAG: plan.record_id}, parent_id=parent)
    try:
        tracker.log(run_id, params=plan.params, metrics=plan.metrics)
        for dataset in plan.datasets:
            tracker.log_dataset(run_id, **dataset)
        for path, folder in plan.artifacts:
            if Path(path).exists():
                tracker.log_artifact(run_id, path, folder)
    except BaseException:
        try:
            tracker.finish(run_id, status="FAILED")  # not FINISHED: the next attempt replaces it
        except Exception:  # noqa: BLE001 - the store is failing already; the plan stays pending
            pass
        raise
    tracker.finish(run_id, status=plan.status)
    _note_run_id(plan, run_id)
    return run_id


def _complete(tracker, plan: RunPlan) -> str:
    """Log ``plan``'s content into its existing run (a sweep's parent) and set its final status."""
    tracker.log(plan.run_id, params=plan.params, metrics=plan.metrics, tags=plan.tags)
    for path, folder in plan.artifacts:
        if Path(path).exists():
            tracker.log_artifact(plan.run_id, path, folder)
    tracker.finish(plan.run_id, status=plan.status)
    assert plan.run_id is not None  # set when the run was created above
    return plan.run_id


def _note_run_id(plan: RunPlan, run_id: str) -> None:
    """Once logged: the run id into result.json (or the sweep folder), the plan's waiting copies removed."""
    if plan.kind == "sweep" and plan.sweep_dir:
        atomic_write_text(Path(plan.sweep_dir) / PARENT_RUN_FILE, run_id + "\n")
    if plan.result_file and Path(plan.result_file).exists():
        record = json.loads(read_text(plan.result_file))
        if record.get("mlflow_run_id") != run_id or record.get("tracking") != "logged":
            record.update(mlflow_run_id=run_id, tracking="logged")
            atomic_write_text(plan.result_file, json.dumps(record, indent=2, allow_nan=False) + "\n")
    folder = _home(plan)
    if folder is not None:
        copy = folder / PENDING_COPY
        if copy.exists() and record_id_of(copy) == plan.record_id:
            copy.unlink(missing_ok=True)


def _home(plan: RunPlan) -> Path | None:
    """The folder the plan's result lives in (a cell's job folder, a sweep's folder)."""
    if plan.result_file:
        return Path(plan.result_file).parent
    return Path(plan.sweep_dir) if plan.kind == "sweep" and plan.sweep_dir else None


def record_id_of(path: Path) -> str | None:
    try:
        return json.loads(read_text(path)).get("record_id")
    except (OSError, ValueError):
        return None


def submit(plan: RunPlan, *, store_dir: str | os.PathLike, retry_s: float, tracker=None) -> str | None:
    """Queue ``plan`` (:func:`enqueue`), then log it (:func:`deliver`): the run id, or ``None`` when it waits
    for ``dsim sync``. Raises the write error when the plan could neither be queued nor logged."""
    kept, error = enqueue(plan, store_dir)
    run_id = deliver(plan, store_dir=store_dir, retry_s=retry_s, tracker=tracker)
    if run_id is None and not kept:
        assert error is not None  # enqueue gives its error when it kept nothing
        raise error
    return run_id


def enqueue(plan: RunPlan, store_dir: str | os.PathLike) -> tuple[list[Path], Exception | None]:
    """Write ``plan`` into the pending queue and beside its result (whichever works), before the store is
    asked: the files written, and the first write error (``kept`` is empty when neither could be written)."""
    plan.queue_dir = str(pending_dir(store_dir).absolute())
    kept, first_error = [], None
    for target in _plan_files(plan, store_dir):
        try:
            atomic_write_text(target, plan.to_json())
            kept.append(target)
        except (OSError, DsimError) as error:
            first_error = first_error or error
    return kept, first_error


def deliver(plan: RunPlan, *, store_dir: str | os.PathLike, retry_s: float, tracker=None) -> str | None:
    """Log a queued ``plan`` (holding its files' locks) and take it out of the queue; the run id, or
    ``None`` when it stays queued: one warning line then says where it waits and how it gets logged."""
    try:
        with _claim(plan, store_dir, timeout=max(retry_s, 10.0)):
            try:
                tracker = tracker or open_store(plan.uri, plan.experiment, store_dir=store_dir, retry_s=retry_s)
                run_id = log_plan(tracker, plan)
            except Exception as error:  # noqa: BLE001 - whatever the store did, the record must not be lost
                _warn_kept(plan, store_dir, error)
                return None
            _unqueue(plan, store_dir)
        _tidy(_queue_dir(plan, store_dir))
        return run_id
    except Timeout:  # another process is logging it (and notes the run id in result.json)
        return None


def _warn_kept(plan: RunPlan, store_dir, error: Exception) -> None:
    kept = [p for p in _plan_files(plan, store_dir) if p.exists()]
    if not kept:
        return
    reason = " ".join(str(error).split())[:300] or type(error).__name__
    where = " and ".join(str(p) for p in kept)
    how = (
        "`dsim sync` or the next dsim run on this store logs it"
        if any(p.parent == _queue_dir(plan, store_dir) for p in kept)
        else f"`dsim sync {kept[0].parent}` logs it"
    )
    warnings.warn(f"not logged to MLflow: {reason}; the record waits in {where}: {how}", stacklevel=3)


def _queue_dir(plan: RunPlan, store_dir) -> Path:
    return Path(plan.queue_dir) if plan.queue_dir else pending_dir(store_dir)


def _plan_files(plan: RunPlan, store_dir) -> list[Path]:
    """Where ``plan`` waits: beside its result (when it has one) and in its store's pending queue."""
    folder = _home(plan)
    return ([folder / PENDING_COPY] if folder is not None else []) + [
        _queue_dir(plan, store_dir) / f"{plan.kind}-{plan.record_id}.json"
    ]


def _lock_of(path: Path) -> Path:
    return path.with_name("." + path.name + ".lock")


@contextlib.contextmanager
def _claim(plan: RunPlan, store_dir, *, timeout: float, also: tuple = ()):
    """Hold the locks of ``plan``'s files (and of ``also``), in a fixed order: whoever holds them is the one
    logging the plan. :class:`filelock.Timeout` when another process holds one past ``timeout`` s. The
    locks of files that are gone when it ends are removed."""
    files = sorted({Path(p).absolute() for p in (*_plan_files(plan, store_dir), *also)}, key=str)
    locks = []
    try:
        for path in files:
            if not path.parent.is_dir():
                continue
            lock = FileLock(str(_lock_of(path)), timeout=timeout)
            try:
                lock.acquire()
            except Timeout:  # an OSError too: not the one below
                raise
            except OSError:  # a folder that takes no new file (full, read-only): nothing can be queued there
                continue
            locks.append((path, lock))
        yield
    finally:
        for path, lock in reversed(locks):
            if not path.exists():
                with contextlib.suppress(OSError):
                    _lock_of(path).unlink()
            lock.release()


def _tidy(queue: Path) -> None:
    """Remove a queue folder that queuing alone made: empty, in a store folder that holds nothing else (the
    store is elsewhere, ``MLFLOW_TRACKING_URI``), so logging leaves no stray ``mlruns/``."""
    try:
        if not any(queue.iterdir()) and [p.name for p in queue.parent.iterdir()] == [queue.name]:
            queue.rmdir()
            queue.parent.rmdir()
    except OSError:
        pass


def _unqueue(plan: RunPlan, store_dir, also: tuple = ()) -> None:
    """Remove a logged plan's queued files (a copy beside the result only while it is this plan's)."""
    for path in (*_plan_files(plan, store_dir), *map(Path, also)):
        if path.name != PENDING_COPY or record_id_of(path) == plan.record_id:
            path.unlink(missing_ok=True)


def queued(store_dir: str | os.PathLike, paths: tuple = ()) -> list[Path]:
    """Waiting plans: the store folder's queue and the copies under ``paths`` (job or sweep folders);
    sweeps first (their children need their run ids), then by age."""
    folder = pending_dir(store_dir)
    files = [p for p in folder.glob("*.json") if not p.name.startswith(".") and p.is_file()] if folder.is_dir() else []
    for path in map(Path, paths):
        files += [path] if path.name == PENDING_COPY else list(path.rglob(PENDING_COPY))
    keys = {}
    for path in files:
        try:
            keys[path] = (_kind(path) != "sweep", path.stat().st_mtime_ns, str(path))
        except FileNotFoundError:  # logged and removed meanwhile (a cell's own queue entry lives while it logs)
            continue
    return sorted(keys, key=lambda path: keys[path])


def _kind(path: Path) -> str:
    if path.name == PENDING_COPY:
        try:
            return json.loads(read_text(path)).get("kind", "cell")
        except (OSError, ValueError):
            return "cell"
    return path.name.split("-", 1)[0]


@dataclass
class SyncReport:
    logged: list[str] = field(default_factory=list)  # run ids
    failed: list[str] = field(default_factory=list)  # one line each
    busy: int = 0  # plans another process was logging


def sync(
    store_dir: str | os.PathLike, *, uri: str | None = None, retry_s: float, tracker=None, paths: tuple = ()
) -> SyncReport:
    """Log every waiting plan (the queue of ``store_dir`` and the copies under ``paths``; only those for
    ``uri`` when given); each once, then its queue entry and copy are removed."""
    from dsim.tracking.mlflow_store import StoreUnavailable, Tracker

    report = SyncReport()
    trackers = {}
    if tracker is not None:
        trackers[(tracker.uri, tracker.experiment)] = tracker
    done: set[str] = set()
    for path in queued(store_dir, paths):
        try:
            plan = RunPlan.from_json(read_text(path))
        except FileNotFoundError:
            continue  # logged by another process meanwhile
        except (OSError, ValueError, TypeError) as error:
            report.failed.append(f"{path}: unreadable pending record ({error})")
            continue
        if uri is not None and plan.uri != uri:
            continue
        try:
            with _claim(plan, store_dir, timeout=0, also=(path,)):
                if not path.exists():
                    continue  # logged by another process meanwhile
                if plan.record_id not in done:
                    key = (plan.uri, plan.experiment)
                    try:
                        if key not in trackers:
                            trackers[key] = Tracker(plan.uri, plan.experiment, retry_s=retry_s)
                        report.logged.append(log_plan(trackers[key], plan))
                    except (StoreUnavailable, ParentNotLogged) as error:
                        report.failed.append(f"{path.name}: {error}")
                        continue
                    done.add(plan.record_id)
                _unqueue(plan, store_dir, also=(path,))
        except Timeout:
            report.busy += 1
    _remove_stale_locks(pending_dir(store_dir))
    return report


def _remove_stale_locks(folder: Path) -> None:
    """Lock files of plans that are logged and gone (held locks are left alone)."""
    if not folder.is_dir():
        return
    for lock_file in folder.glob(".*.json.lock"):
        if (folder / lock_file.name[1 : -len(".lock")]).exists():
            continue
        try:
            with FileLock(str(lock_file), timeout=0):
                lock_file.unlink(missing_ok=True)
        except Timeout:
            continue


def open_store(uri: str, experiment: str, *, store_dir: str | os.PathLike, retry_s: float):
    """A :class:`~dsim.tracking.mlflow_store.Tracker` on the store, after the store's housekeeping.

    Housekeeping: RUNNING runs of dead dsim processes on this host are marked KILLED, and this store's
    queued plans are logged (quietly; failures stay queued for ``dsim sync``).
    """
    from dsim.tracking.mlflow_store import StoreUnavailable, Tracker

    tracker = Tracker(uri, experiment, retry_s=retry_s)
    try:
        tracker.reap_dead_runs()
        if queued(store_dir):
            sync(store_dir, uri=uri, retry_s=min(retry_s, 5.0), tracker=tracker)
    except (StoreUnavailable, OSError, DsimError) as error:
        warnings.warn(f"store housekeeping skipped: {error}", stacklevel=2)
    return tracker
