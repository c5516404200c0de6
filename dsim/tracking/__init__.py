"""Getting records into MLflow: the store adapter, the only module that imports mlflow
(:mod:`~dsim.tracking.mlflow_store`), the pending queue that makes logging exactly-once
(:mod:`~dsim.tracking.queue`) and a cell's session with the store (:mod:`~dsim.tracking.session`)."""


def __getattr__(name: str):
    from dsim import _compat

    return _compat.forward("dsim.tracking", "dsim.tracking.mlflow_store", name)
