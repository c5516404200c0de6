"""The MLflow run record (the only module that imports mlflow).

The store is ``MLFLOW_TRACKING_URI`` when set, else an SQLite database ``mlruns/mlflow.db`` with the
artifacts in ``mlruns/artifacts``. SQLite allows one writer at a time, so every call to a SQLite store
holds a file lock beside the database: parallel grid cells (``hydra/launcher=joblib``) queue for a
moment instead of failing on a locked database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from filelock import FileLock

from dsim.dvc import project_path
from dsim.errors import DsimError

DEFAULT_STORE_DIR = "mlruns"
DB_NAME = "mlflow.db"
PARAM_VALUE_LIMIT = 6000
DIGEST_LENGTH = 32  # MLflow's dataset digest column holds 36 characters
_BATCH = 100  # MLflow accepts at most 100 params / 1000 metrics per log_batch

for _noisy in ("alembic", "mlflow.store.db.utils", "mlflow.store.db"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


def resolve_uri(uri: str | None = None, store_dir: str | os.PathLike = DEFAULT_STORE_DIR) -> str:
    """The tracking URI: ``uri`` if given, else ``MLFLOW_TRACKING_URI``, else SQLite in ``store_dir``.

    A relative ``store_dir`` is under the DVC project root when DVC runs us (see :func:`project_path`).
    """
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if chosen:
        return chosen
    db = project_path(store_dir).resolve() / DB_NAME
    return f"sqlite:///{db}"


def _sqlite_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    return Path(unquote(uri[len("sqlite:///"):]))


def ui_command(uri: str) -> str:
    """The shell command that opens the MLflow UI on this store."""
    return f"mlflow ui --backend-store-uri {uri}"


class Tracker:
    """Creates and fills runs in one MLflow experiment.

    >>> tracker = Tracker(resolve_uri(), experiment="dsim")                     # doctest: +SKIP
    >>> run_id = tracker.start_run("fid photos_a_vs_render", tags={"k": "v"})     # doctest: +SKIP
    """

    def __init__(self, uri: str, experiment: str = "dsim", artifact_root: str | os.PathLike | None = None):
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.experiment = experiment
        db = _sqlite_path(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(db) + ".lock", timeout=600)
            self.artifact_root = Path(artifact_root or db.parent / "artifacts").resolve()
        else:
            self._lock = contextlib.nullcontext()
            self.artifact_root = Path(artifact_root).resolve() if artifact_root else None
        with self._lock:
            self.client = MlflowClient(tracking_uri=uri)
            self.experiment_id = self._experiment_id()

    def _experiment_id(self) -> str:
        try:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is not None:
                return found.experiment_id
            location = self.artifact_root.as_uri() if self.artifact_root else None
            return self.client.create_experiment(self.experiment, artifact_location=location)
        except Exception as error:  # noqa: BLE001 - any store failure is the user's to fix
            raise DsimError(f"cannot open the MLflow store {self.uri}: {error}".splitlines()[0]) from error

    def start_run(self, name: str, *, tags: dict[str, str] | None = None, parent_id: str | None = None) -> str:
        """Create a running run (a child of ``parent_id`` when given); return its id."""
        tags = dict(tags or {})
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        with self._lock:
            run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        return run.info.run_id

    def log(self, run_id: str, *, params: dict | None = None, metrics: dict | None = None,
            tags: dict | None = None) -> None:
        """Log params, metrics and tags in batches (values are stringified; long params truncated)."""
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(time.time() * 1000)
        param_list = [Param(k, _short(v)) for k, v in sorted((params or {}).items())]
        metric_list = [Metric(k, float(v), stamp, 0) for k, v in sorted((metrics or {}).items())]
        tag_list = [RunTag(k, _short(v)) for k, v in sorted((tags or {}).items())]
        with self._lock:
            for start in range(0, max(len(param_list), len(metric_list), len(tag_list), 1), _BATCH):
                end = start + _BATCH
                self.client.log_batch(run_id, metrics=metric_list[start:end],
                                      params=param_list[start:end], tags=tag_list[start:end])

    def log_dataset(self, run_id: str, *, name: str, digest: str, source: str, context: str,
                    profile: dict | None = None) -> None:
        """Record a dataset as an MLflow dataset input of the run (searchable as ``dataset.digest``).

        MLflow stores at most 36 characters of digest, so a 64-hex fingerprint is cut to its first 32.
        """
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=name, digest=digest[:DIGEST_LENGTH], source_type="local", source=source,
                          profile=json.dumps(profile or {}, sort_keys=True))
        with self._lock:
            self.client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", context)])])

    def log_artifact(self, run_id: str, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        with self._lock:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        with self._lock:
            self.client.set_terminated(run_id, status=status)

    def run_ids(self, **filters) -> list[str]:
        """Ids of the runs in this experiment (``filter_string`` etc. as ``MlflowClient.search_runs``)."""
        with self._lock:
            runs = self.client.search_runs([self.experiment_id], max_results=50000, **filters)
        return [run.info.run_id for run in runs]

    def get_run(self, run_id: str):
        """The run (``.info``, ``.data``, ``.inputs``); a one-line error when there is none."""
        with self._lock:
            try:
                return self.client.get_run(run_id)
            except Exception as error:  # noqa: BLE001 - MlflowException for unknown ids
                raise DsimError(f"no run {run_id!r} in {self.uri}") from error

    def download_artifact(self, run_id: str, path: str, destination: str | os.PathLike) -> Path | None:
        """Fetch one artifact file of a run into ``destination``; ``None`` when the run has none there."""
        with self._lock:
            try:
                return Path(self.client.download_artifacts(run_id, path, str(destination)))
            except Exception:  # noqa: BLE001 - a missing artifact is an answer, not a failure
                return None


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= PARAM_VALUE_LIMIT else text[: PARAM_VALUE_LIMIT - 3] + "..."


def search_runs(uri: str, *, experiments: list[str] | None = None, filter_string: str = "") -> list[dict]:
    """Runs of a store as plain dicts (``run_id``, ``experiment``, ``run_name``, ``status``, ``start_time``,
    ``tags``, ``params``, ``metrics``), newest first, for readers that must not import mlflow.

    ``experiments``: experiment names (default: every active experiment of the store); ``filter_string``:
    an MLflow search filter (``"tags.dsim.pair = 'a_vs_b'"``, ``"metrics.fid < 100"``). Works with any
    tracking URI (SQLite, a tracking server); an SQLite store that does not exist is a one-line error.
    """
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    db = _sqlite_path(uri)
    if db is not None and not db.exists():
        raise DsimError(f"no MLflow store at {db} (run a cell first, or pass the store's tracking URI)")
    lock = FileLock(str(db) + ".lock", timeout=600) if db is not None else contextlib.nullcontext()
    found = []
    with lock:
        try:
            client = MlflowClient(tracking_uri=uri)
            if experiments:
                chosen = []
                for name in experiments:
                    experiment = client.get_experiment_by_name(name)
                    if experiment is None:
                        names = sorted(e.name for e in client.search_experiments(view_type=ViewType.ALL))
                        raise DsimError(f"no experiment {name!r} in {uri} (experiments: {', '.join(names) or 'none'})")
                    chosen.append(experiment)
            else:
                chosen = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
            names = {e.experiment_id: e.name for e in chosen}
            token = None
            while names:
                page = client.search_runs(list(names), filter_string=filter_string or "", max_results=1000,
                                          page_token=token, order_by=["attributes.start_time DESC"])
                found.extend(page)
                token = page.token
                if not token:
                    break
        except DsimError:
            raise
        except Exception as error:  # noqa: BLE001 - a bad filter or an unreachable server: the user's to fix
            raise DsimError(f"cannot search the MLflow store {uri}: {error}".splitlines()[0]) from error
    return [{"run_id": run.info.run_id, "experiment": names[run.info.experiment_id], "run_name": run.info.run_name,
             "status": run.info.status, "start_time": run.info.start_time, "tags": dict(run.data.tags),
             "params": dict(run.data.params), "metrics": dict(run.data.metrics)} for run in found]
