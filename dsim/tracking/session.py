"""A cell's conversation with the tracking store: is there a finished run of its key? then, log its record.

Only a run that is FINISHED in this very store (URI and experiment) is reused: a record still waiting in
the pending queue is logged by the store's housekeeping when it opens, and then found; one meant for
another store never answers for this one.

Importing MLflow and opening a store take seconds (about 2.5 s here). A single ``dsim`` cell that has
not imported MLflow yet opens the store in a forked helper process while it lists, embeds and computes —
on 2 cores the two overlap instead of adding up — and sends its two requests over a pipe. Where MLflow is
loaded already (a sweep's process), where ``fork`` is missing (macOS, Windows) or with
``DSIM_STORE_HELPER=0``, the same requests run in this process. The helper exits with the cell, or on
its own when the cell's process is gone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from dsim.configs import TrackingConfig
from dsim.errors import DsimError
from dsim.records import CELL_KEY_TAG, RESULT_FILE, read_json
from dsim.tracking.queue import RunPlan, deliver, enqueue, open_store


class StoreSession:
    """The store of one cell (``uri``, ``experiment``), its pending queue in ``store_dir``."""

    def __init__(self, uri: str, experiment: str, *, store_dir, retry_s: float):
        self.uri, self.experiment, self.store_dir, self.retry_s = uri, experiment, store_dir, float(retry_s)
        self._tracker = None
        self._unavailable: DsimError | None = None  # the store did not open: the finder stops asking
        self._conn = None
        if (
            "mlflow" not in sys.modules
            and sys.platform.startswith("linux")
            and os.environ.get("DSIM_STORE_HELPER", "1") != "0"
        ):
            import multiprocessing

            context = multiprocessing.get_context("fork")
            self._conn, child = context.Pipe()
            self._helper = context.Process(target=_serve, args=(child, self, os.getpid()), daemon=True)
            self._helper.start()
            child.close()

    @classmethod
    def for_config(cls, tracking: TrackingConfig) -> StoreSession:
        """The store a cell's ``tracking`` group names (``uri``, ``store_dir``, ``experiment``, ``retry_s``)."""
        from dsim.tracking.mlflow_store import resolve_uri

        return cls(
            resolve_uri(tracking.uri, tracking.store_dir),
            tracking.experiment,
            store_dir=tracking.store_dir,
            retry_s=float(tracking.retry_s),
        )

    def find_reusable(self, key: str) -> dict | None:
        """The record of a FINISHED run of this store with cell key ``key``, if any."""
        return self._request("find", key)

    def submit(self, plan: RunPlan) -> str | None:
        """Queue ``plan`` here, then log it (:func:`dsim.tracking.queue.submit`; in the helper when there is
        one): the run id, or ``None`` when it waits for ``dsim sync``. A kill while it logs leaves the record
        queued."""
        kept, error = enqueue(plan, self.store_dir)
        run_id = self._request("submit", plan)
        if run_id is None and not kept:
            assert error is not None  # enqueue gives its error when it kept nothing
            raise error
        return run_id

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, EOFError):
                self._conn.send(("close", None))
            self._helper.join(timeout=60)
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, op: str, argument):
        if self._conn is not None:
            try:
                self._conn.send((op, argument))
                kind, value = self._conn.recv()
            except (OSError, EOFError):  # the helper is gone: do it here
                self._conn = None
            else:
                if kind == "error":
                    raise DsimError(value)
                return value
        return self._handle(op, argument)

    # -- the work (in the helper, or here) -------------------------------------------------------------

    def _store(self):
        if self._tracker is None:
            try:
                self._tracker = open_store(self.uri, self.experiment, store_dir=self.store_dir, retry_s=self.retry_s)
            except DsimError as error:
                self._unavailable = error
                raise
        return self._tracker

    def _handle(self, op: str, argument):
        if op == "find":
            return self._find(argument)
        if op == "submit":  # without an open store, deliver tries it once more (the record is queued already)
            return deliver(argument, store_dir=self.store_dir, retry_s=self.retry_s, tracker=self._tracker)
        raise ValueError(op)

    def _find(self, key: str) -> dict | None:
        from dsim.tracking.mlflow_store import StoreUnavailable

        try:
            if self._unavailable is not None:
                raise self._unavailable
            tracker = self._store()
            runs = tracker.runs_tagged(CELL_KEY_TAG, key, status="FINISHED")
            for run in runs:
                with tempfile.TemporaryDirectory() as tmp:
                    found = tracker.download_artifact(run.info.run_id, RESULT_FILE, tmp)
                    if found is not None:
                        record = read_json(found)
                        record.update(mlflow_run_id=run.info.run_id, tracking="logged")
                        return record
        except (StoreUnavailable, DsimError) as error:
            print(
                f"dsim: warning: cannot look for an earlier run of this cell ({error}); computing it", file=sys.stderr
            )
        return None


def _serve(conn, session: StoreSession, parent: int) -> None:
    """The helper: open the store at once (the slow part), then answer requests until told to stop."""
    try:
        session._store()
    except DsimError:
        pass  # answered per request: a finder computes, a submit keeps the record
    while True:
        try:
            while not conn.poll(1.0):
                if os.getppid() != parent:  # the cell's process died
                    return
            op, argument = conn.recv()
        except (OSError, EOFError):
            return
        if op == "close":
            return
        try:
            conn.send(("value", session._handle(op, argument)))
        except DsimError as error:
            conn.send(("error", str(error)))
        except Exception as error:  # noqa: BLE001 - reported to the cell, which has the context
            conn.send(("error", f"tracking store: {type(error).__name__}: {error}".splitlines()[0]))
