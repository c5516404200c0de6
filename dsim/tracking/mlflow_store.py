"""The MLflow run record (the only module that imports mlflow).

The store is ``MLFLOW_TRACKING_URI`` when set, else an SQLite database ``mlruns/mlflow.db`` with the
artifacts in ``mlruns/artifacts``. SQLite allows one writer at a time, so every call to a SQLite store
holds a file lock beside the database: parallel grid cells (``hydra/launcher=joblib``) queue for a
moment instead of failing on a locked database.

A store can be busy or away for reasons outside dsim — an ``mlflow ui`` or ``sqlite3`` shell holding the
database lock, a full disk, a tracking server restarting. Every call is retried with bounded exponential
backoff for up to ``retry_s`` seconds (``tracking.retry_s``) before :class:`StoreUnavailable` is raised;
callers then keep the record on disk for ``dsim sync`` (:mod:`dsim.tracking.queue`).

Runs carry the process that created them (tag ``dsim.process`` = host, pid, process start time).
:meth:`Tracker.reap_dead_runs`, called whenever dsim opens a store, marks a RUNNING run whose process on
this host is gone as KILLED, so a ``kill -9`` never leaves a run RUNNING past the next dsim command.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from filelock import FileLock, Timeout

from dsim.data.dvc import project_path
from dsim.errors import DsimError
from dsim.tracking import ui

DEFAULT_STORE_DIR = "mlruns"
DB_NAME = "mlflow.db"
PARAM_VALUE_LIMIT = 6000
DIGEST_LENGTH = 32  # MLflow's dataset digest column holds 36 characters
DEFAULT_RETRY_S = 60.0
PROCESS_TAG = "dsim.process"
_BATCH = 100  # MLflow accepts at most 100 params / 1000 metrics per log_batch
_BACKOFF_MAX_S = 8.0
#: MLflow error codes that retrying cannot fix (the request itself is wrong)
_PERMANENT_CODES = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
        "BAD_REQUEST",
        "INVALID_STATE",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "ENDPOINT_NOT_FOUND",
        "FEATURE_DISABLED",
    }
)

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars on stderr for small downloads
# dsim retries a failing store itself (bounded by tracking.retry_s); MLflow's own HTTP retries (7, with
# exponential backoff) would make one call to an unreachable server hang for minutes.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
for _noisy in ("alembic", "mlflow.store.db"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
# Store errors are retried and then reported in one line by dsim; MLflow's own traceback dumps are noise.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


class StoreUnavailable(DsimError):
    """The store kept failing for ``retry_s`` seconds (locked, full, unreachable)."""


class StoreRefused(DsimError):
    """The store answered, and said no (bad credentials, no permission, a malformed request)."""

    def __init__(self, message: str, error_code: str | None = None):
        super().__init__(message)
        self.error_code = error_code


#: tracking URI schemes MLflow's client has stores for ("" is a plain folder path)
URI_SCHEMES = frozenset(
    {"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc", "uc"}
)


def resolve_uri(uri: str | None = None, store_dir: str | os.PathLike = DEFAULT_STORE_DIR) -> str:
    """The tracking URI: ``uri`` if given, else ``MLFLOW_TRACKING_URI``, else SQLite in ``store_dir``.

    A relative ``store_dir`` is under the DVC project root when DVC runs us (see :func:`project_path`).
    """
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if chosen:
        scheme = urlparse(chosen).scheme
        if scheme not in URI_SCHEMES and not (len(scheme) == 1 and chosen[1:3] in (":\\", ":/")):  # C:\ paths
            raise DsimError(
                f"tracking.uri {chosen!r}: unknown scheme {scheme!r}; use sqlite:///PATH, "
                "http(s)://HOST:PORT (an MLflow server), postgresql://..., mysql://... or file:PATH"
            )
        return chosen
    db = project_path(store_dir).resolve() / DB_NAME
    return f"sqlite:///{db}"


def _sqlite_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    return Path(unquote(uri[len("sqlite:///") :]))


def ui_command(uri: str) -> str:
    """The shell command that opens the MLflow UI on this store."""
    return f"mlflow ui --backend-store-uri {uri}"


def runs_page(uri: str, experiment: str, base: str = "http://127.0.0.1:5000", share_key: str = ui.VIEW_KEY) -> str:
    """The UI page of ``experiment``'s runs table in a dsim view (``base`` alone when the store cannot say)."""
    try:
        from mlflow.tracking import MlflowClient

        found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    except Exception:  # noqa: BLE001 - only a hint: the store may be locked or away
        found = None
    if uri.startswith(("http://", "https://")):
        base = uri
    return ui.page_url(base, found.experiment_id, share_key) if found is not None else base


def this_process() -> str:
    """``host:pid:start`` of this process (the start time tells a reused pid apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or ``?`` where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def process_alive(process: str) -> bool | None:
    """Whether the process of a ``dsim.process`` tag still runs; ``None`` when it ran on another host."""
    try:
        host, pid_text, start = process.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return start == "?" or _start_time(pid) == start


def _is_permanent(error: Exception) -> bool:
    return getattr(error, "error_code", None) in _PERMANENT_CODES


def _refused(uri: str, error: Exception) -> StoreRefused:
    code = getattr(error, "error_code", None)
    hint = ""
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        hint = " (a server with authentication: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
    text = re.sub(r"\s*Response body: .*", "", _one_line(error))
    return StoreRefused(f"the MLflow store {uri} refused the request: {text}{hint}", code)


def _one_line(error: BaseException) -> str:
    """The gist of a store error: no SQL statement, no "background on this error" link, one short line."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = re.sub(r"\s*\[(SQL|parameters): .*?\](?=\s|$)", "", text)
    text = re.sub(r"\(raised as a result of Query-invoked autoflush;[^)]*\)\s*", "", text)
    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    return text[:240]


class Tracker:
    """Creates and fills runs in one MLflow experiment.

    >>> tracker = Tracker(resolve_uri(), experiment="dsim")                     # doctest: +SKIP
    >>> run_id = tracker.start_run("fid photos_a_vs_render", tags={"k": "v"})     # doctest: +SKIP
    """

    def __init__(
        self,
        uri: str,
        experiment: str = "dsim",
        artifact_root: str | os.PathLike | None = None,
        *,
        retry_s: float = DEFAULT_RETRY_S,
    ):
        self.uri = uri
        self.experiment = experiment
        self.retry_s = float(retry_s)
        db = _sqlite_path(uri)
        self._lock_file: str | None
        self.artifact_root: Path | None
        if db is not None:
            self._lock_file = str(db) + ".lock"
            self.artifact_root = Path(artifact_root or db.parent / "artifacts").resolve()
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreUnavailable(
                    f"cannot create the MLflow store folder {db.parent}: {_one_line(error)}"
                ) from error
        else:
            self._lock_file = None
            self.artifact_root = Path(artifact_root).resolve() if artifact_root else None
        self.client: Any = None  # an MlflowClient once _connect has run (mlflow is imported lazily)
        self.experiment_id = self._call(self._connect)

    # -- retries ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, deadline: float):
        if self._lock_file is None:
            yield
            return
        lock = FileLock(self._lock_file, timeout=max(10.0, deadline - time.monotonic()))  # another dsim: seconds
        with lock:
            yield

    def _call(self, fn, *args, once: bool = False, **kwargs):
        """``fn(*args, **kwargs)`` under the store lock, retried with backoff for up to ``retry_s`` seconds
        (``once``: a single attempt)."""
        deadline = time.monotonic() + (0.0 if once else self.retry_s)
        delay = 0.25
        last: Exception
        while True:
            try:
                with self._locked(deadline):
                    return fn(*args, **kwargs)
            except Timeout as error:
                last = error
            except Exception as error:  # noqa: BLE001 - store failures vary by backend; permanent ones re-raised
                if isinstance(error, DsimError):
                    raise
                if _is_permanent(error):
                    raise _refused(self.uri, error) from error
                last = error
            if time.monotonic() + delay > deadline:
                raise StoreUnavailable(
                    f"the MLflow store {self.uri} did not answer for {self.retry_s:g} s: {_one_line(last)}"
                ) from last
            time.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX_S)

    def _connect(self) -> str:
        from mlflow.tracking import MlflowClient

        if self.client is None:
            self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            location = self.artifact_root.as_uri() if self.artifact_root else None
            try:
                self.client.create_experiment(self.experiment, artifact_location=location)
            except Exception:  # noqa: BLE001 - created by a concurrent process meanwhile
                pass
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise StoreUnavailable(f"the MLflow store {self.uri} did not create experiment {self.experiment!r}")
        for key, value in ui.experiment_tags().items():  # the UI opens on the runs table (older stores too)
            if found.tags.get(key) != value:
                self.client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id

    def set_view(self, key: str, state: str) -> None:
        """Add (or replace) the experiment's shared view ``key`` (:mod:`dsim.tracking.ui`)."""
        self._call(self.client.set_experiment_tag, self.experiment_id, ui.VIEW_TAG + key, state)

    # -- runs ------------------------------------------------------------------------------------------

    def start_run(self, name: str, *, tags: dict[str, str] | None = None, parent_id: str | None = None) -> str:
        """Create a running run (a child of ``parent_id`` when given); return its id."""
        tags = {PROCESS_TAG: this_process(), **(tags or {})}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run = self._call(lambda: self.client.create_run(self.experiment_id, run_name=name, tags=tags))
        return run.info.run_id

    def log(
        self, run_id: str, *, params: dict | None = None, metrics: dict | None = None, tags: dict | None = None
    ) -> None:
        """Log params, metrics and tags in batches (values are stringified; long params truncated)."""
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(time.time() * 1000)
        param_list = [Param(k, _short(v)) for k, v in sorted((params or {}).items())]
        metric_list = [Metric(k, float(v), stamp, 0) for k, v in sorted((metrics or {}).items())]
        tag_list = [RunTag(k, _short(v)) for k, v in sorted((tags or {}).items())]
        for start in range(0, max(len(param_list), len(metric_list), len(tag_list), 1), _BATCH):
            end = start + _BATCH
            self._call(
                self.client.log_batch,
                run_id,
                metrics=metric_list[start:end],
                params=param_list[start:end],
                tags=tag_list[start:end],
            )

    def log_dataset(
        self, run_id: str, *, name: str, digest: str, source: str, context: str, profile: dict | None = None
    ) -> None:
        """Record a dataset as an MLflow dataset input of the run (searchable as ``dataset.digest``).

        MLflow stores at most 36 characters of digest, so a 64-hex fingerprint is cut to its first 32.
        """
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=name,
            digest=digest[:DIGEST_LENGTH],
            source_type="local",
            source=source,
            profile=json.dumps(profile or {}, sort_keys=True),
        )
        self._call(self.client.log_inputs, run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", context)])])

    def log_artifact(self, run_id: str, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._call(self.client.log_artifact, run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self._call(self.client.set_terminated, run_id, status=status)

    def delete_run(self, run_id: str) -> None:
        self._call(self.client.delete_run, run_id)

    def get_run(self, run_id: str):
        """The run (``.info``, ``.data``, ``.inputs``); a one-line error when there is none."""
        try:
            return self._call(self.client.get_run, run_id)
        except StoreRefused as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise DsimError(f"no run {run_id!r} in {self.uri}") from error
            raise

    def runs_tagged(self, tag: str, value: str, *, status: str | None = None) -> list:
        """Runs of this experiment whose ``tag`` is ``value`` (newest first), optionally of one status."""
        if "'" in value:
            raise DsimError(f"tag value {value!r} cannot be searched")
        query = f"tags.`{tag}` = '{value}'" + (f" and attributes.status = '{status}'" if status else "")
        return self._call(
            self.client.search_runs,
            [self.experiment_id],
            filter_string=query,
            max_results=100,
            order_by=["attributes.start_time DESC"],
        )

    def reap_dead_runs(self) -> list[str]:
        """Mark RUNNING runs whose dsim process on this host has died as KILLED; return their ids."""
        host = socket.gethostname()
        if "'" in host:
            return []
        query = f"attributes.status = 'RUNNING' and tags.`{PROCESS_TAG}` LIKE '{host}:%'"
        reaped = []
        for run in self._call(self.client.search_runs, [self.experiment_id], filter_string=query, max_results=1000):
            if process_alive(run.data.tags.get(PROCESS_TAG, "")) is False:
                # read again: its process may have finished it after the search and then exited (a parallel
                # grid's worker); a dead process writes no more, so RUNNING now means orphaned for good
                if self.get_run(run.info.run_id).info.status == "RUNNING":
                    self.finish(run.info.run_id, status="KILLED")
                    reaped.append(run.info.run_id)
        return reaped

    def download_artifact(self, run_id: str, path: str, destination: str | os.PathLike) -> Path | None:
        """Fetch one artifact file of a run into ``destination``; ``None`` when the run has none there."""
        try:
            return Path(self._call(self.client.download_artifacts, run_id, path, str(destination), once=True))
        except StoreRefused as error:
            if error.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                raise
            return None  # a missing artifact is an answer, not a failure
        except StoreUnavailable:
            return None


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= PARAM_VALUE_LIMIT else text[: PARAM_VALUE_LIMIT - 3] + "..."


def search_runs(
    uri: str, *, experiments: list[str] | None = None, filter_string: str = "", retry_s: float = DEFAULT_RETRY_S
) -> list[dict]:
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
    lock = FileLock(str(db) + ".lock", timeout=retry_s) if db is not None else contextlib.nullcontext()
    found: list[Any] = []  # mlflow Run objects
    try:
        with lock:
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
            by_id = {e.experiment_id: e.name for e in chosen}
            token = None
            while by_id:
                page = client.search_runs(
                    list(by_id),
                    filter_string=filter_string or "",
                    max_results=1000,
                    page_token=token,
                    order_by=["attributes.start_time DESC"],
                )
                found.extend(page)
                token = page.token
                if not token:
                    break
    except DsimError:
        raise
    except Exception as error:  # noqa: BLE001 - a bad filter or an unreachable server: the user's to fix
        raise DsimError(f"cannot search the MLflow store {uri}: {_one_line(error)}") from error
    return [
        {
            "run_id": run.info.run_id,
            "experiment": by_id[run.info.experiment_id],
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": run.info.start_time,
            "tags": dict(run.data.tags),
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
        }
        for run in found
    ]
