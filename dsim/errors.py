"""User-facing errors: one class, one short message that says what to do.

The CLI prints a ``DsimError`` as a single ``dsim: error: ...`` line; anything else is a bug and keeps
its traceback. A ``DsimError`` is a ``ValueError``: Python code that catches bad values catches it too.
"""


class DsimError(ValueError):
    """A problem with the user's input or environment, explained in one line."""


class ImageReadError(DsimError):
    """An image file could not be decoded (corrupt, truncated, or not an image)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"cannot read image {self.path}: {reason} "
            "(fix or remove the file, or pass dataset.on_error=skip to skip unreadable images)"
        )


class DiskFullError(DsimError):
    """No space (or quota) left on the device while writing a file; nothing half-written is kept."""

    def __init__(self, path, reason: str = "no space left on device"):
        self.path = str(path)
        super().__init__(
            f"{reason} while writing {self.path}: free some space there (or point the cache, "
            "the MLflow store or the output folder elsewhere) and run again; finished work is kept"
        )


class Abort(BaseException):
    """A :class:`DsimError` carried past code that swallows ``Exception`` (Hydra turns a callback's
    exceptions into warnings): the CLI prints it as one ``dsim: error:`` line and exits 2."""

    def __init__(self, error: DsimError):
        self.error = error
        super().__init__(str(error))
