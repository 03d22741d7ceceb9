"""Run directories: one writer at a time, files replaced atomically, checkpoints loaded safely.

A run directory holds ``config.json``, ``metrics.jsonl``, ``summary.json``, ``figures/`` and
``checkpoints/{last,best}.pt``. :class:`RunDirectory` opens one in a *mode*:

- ``"new"``: the folder must not exist or be empty;
- ``"resume"``: it must hold ``checkpoints/last.pt``;
- ``"overwrite"``: an earlier run's files (and only those) are removed first;
- ``"auto"``: resume when a checkpoint exists, else start afresh (for pre-emptible jobs).

While open it holds an exclusive ``flock`` on ``.lock``, so a second process (or a second
:class:`RunDirectory` in the same process) is refused at once with the holder's pid. The lock
dies with its process, so a killed run never leaves a stale lock.

Every file is written to a temporary name next to its target and renamed over it; a failed
write (a full disk, Ctrl-C) removes the temporary file and raises :class:`WriteError`.
``checkpoints/last.pt`` is the single commit point of training: it carries the model, optimiser
and RNG state, the metrics history and the best weights, so ``best.pt`` and ``metrics.jsonl``
are exports that :meth:`RunDirectory.commit` rewrites from it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable

import torch

try:  # POSIX advisory locks; elsewhere the directory is not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MODES = ("new", "resume", "overwrite", "auto")
#: Entries of a run directory that ``overwrite`` may remove (nothing else is touched).
RUN_ENTRIES = ("config.json", "config.yaml", "metrics.jsonl", "summary.json", "checkpoints", "figures", "evaluations",
               "samples", "q_m.nc", "samples.txt", "tensorboard", "wandb", "tracking.json")


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (exists, is a file, is not writable, is locked)."""


class RunLocked(RunDirectoryError):
    """Another process (or another open :class:`RunDirectory`) is writing this run directory."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or not a pyrozoo checkpoint."""


class WriteError(OSError):
    """Writing a file of the run failed; the previous version of the file is intact."""


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``.

    On any failure (an exception, Ctrl-C) the temporary file is removed and the old ``path`` is
    left as it was; ``OSError`` and torch's serialisation errors become :class:`WriteError`
    with a one-line message (saying when the disk is full).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, (OSError, RuntimeError)) and not isinstance(err, WriteError):
            raise WriteError(_write_failure(path, err)) from None
        raise
    return path


def _write_failure(path: Path, err: BaseException) -> str:
    full = getattr(err, "errno", None) == errno.ENOSPC
    try:
        full = full or shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        pass
    if full:
        return f"could not write {path}: no space left on the device; free some space and resume the run"
    reason = getattr(err, "strerror", None) or str(err).splitlines()[0][:200]
    return f"could not write {path}: {reason}"


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path) -> dict:
    """Read a JSON file, naming the file in the error when it is missing or broken."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirectoryError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirectoryError(f"{path} is not valid JSON ({err}); restore or delete it") from None


def save_checkpoint(path, **state) -> Path:
    """``torch.save(state)`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``torch.load(..., weights_only=True)``.

    A missing, empty, truncated or foreign file raises :class:`CheckpointError` naming the file
    (never torch's advice to load unsafely).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"the checkpoint {path} is empty (a crash while it was written?); delete it, "
                              "or train the run again")
    try:
        state = torch.load(str(path), map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors, ...
        kind = type(err).__name__
        raise CheckpointError(f"the checkpoint {path} cannot be read ({kind}: it is truncated, corrupted or not a "
                              "pyrozoo checkpoint); delete it, or train the run again") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a pyrozoo checkpoint")
    return state


def is_run_directory(path) -> bool:
    """Whether ``path`` holds files of a pyrozoo run (``config.json`` or ``checkpoints/``)."""
    path = Path(path)
    return (path / "config.json").exists() or (path / "checkpoints").is_dir()


class RunDirectory:
    """An open, locked run directory (see the module docstring for the modes).

    ``RunDirectory(path, mode)`` checks and locks at once; use it as a context manager or call
    :meth:`close`. ``rank != 0`` (distributed runs) opens nothing and writes nothing.
    """

    def __init__(self, path, mode: str = "new", rank: int = 0):
        if mode not in MODES:
            raise ValueError(f"unknown run-directory mode {mode!r}; choose from {', '.join(MODES)}")
        self.path = Path(path)
        self.rank = int(rank)
        self._lock = None
        self.resuming = False
        if self.rank != 0:
            self.resuming = mode == "resume" or (mode == "auto" and self.last.exists())
            return
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path} exists and is not a folder; choose another output folder")
        self._check_location()
        if (self.path / ".lock").exists():
            self._acquire()  # a running writer is named before anything else is said
        try:
            self._check_mode(mode)
            self.path.mkdir(parents=True, exist_ok=True)
            if self._lock is None:
                self._acquire()
            self._open(mode)
        except BaseException:
            self.close()
            raise

    # -- opening -------------------------------------------------------------------------------
    def _check_location(self):
        parent = next((p for p in [self.path, *self.path.parents] if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise RunDirectoryError(f"cannot create the run directory {self.path}: {parent} is a file")
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            raise RunDirectoryError(f"cannot create or write the run directory {self.path}: {parent} is not "
                                    "writable; choose another output folder")

    def _acquire(self):
        if fcntl is None:  # pragma: no cover
            return
        lock_path = self.path / ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(f"{self.path} is in use by {holder}; wait for it to finish or choose another "
                            "output folder") from None
        info = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._lock = fd

    def _check_mode(self, mode):
        """Refuse, before anything is created, what ``mode`` cannot do with the folder as it is."""
        has_checkpoint = self.last.exists()
        if mode == "resume" and not has_checkpoint:
            raise RunDirectoryError(f"{self.path} has no checkpoint to resume (checkpoints/last.pt is missing)")
        leftovers = [p.name for p in self.path.iterdir() if p.name != ".lock"] if self.path.is_dir() else []
        if not leftovers or mode == "resume" or (mode == "auto" and has_checkpoint):
            return
        if mode == "new":
            raise RunDirectoryError(f"{self.path} already exists and is not empty; resume it (--resume, "
                                    "resume=True), replace it (--overwrite, overwrite=True) or choose another folder")
        if not is_run_directory(self.path):
            raise RunDirectoryError(f"{self.path} is not empty and holds no pyrozoo run; refusing to overwrite it")

    def _open(self, mode):
        self._check_mode(mode)  # again, now that the lock is held
        for folder in (self.path, self.checkpoints):  # a writer killed mid-write left these
            for tmp in folder.glob(".*.tmp-*") if folder.is_dir() else ():
                tmp.unlink(missing_ok=True)
        if mode == "resume" or (mode == "auto" and self.last.exists()):
            self.resuming = True
            return
        for name in RUN_ENTRIES:
            p = self.path / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def close(self):
        """Release the lock (idempotent)."""
        if self._lock is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            finally:
                os.close(self._lock)
                self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):  # a lock must not outlive the object that took it
        try:
            self.close()
        except Exception:
            pass

    # -- paths and files -----------------------------------------------------------------------
    @property
    def writer(self) -> bool:
        """Whether this process writes the directory (rank 0)."""
        return self.rank == 0

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    def write_json(self, name, obj):
        """Write ``name`` (relative to the run directory) as JSON, atomically (rank 0 only)."""
        if self.writer:
            write_json(self.path / name, obj)

    def commit(self, state: dict, best_model: dict | None, history: list):
        """Write one training checkpoint: ``last.pt`` first (the commit point, holding ``state``,
        the ``history`` of metric records and ``best_model``), then the exports ``best.pt`` and
        ``metrics.jsonl``. A kill at any instant leaves ``last.pt`` either old or new, and the
        exports are rewritten from it on resume (:meth:`repair`)."""
        if not self.writer:
            return
        save_checkpoint(self.last, **state, history=history, best_model=best_model)
        self._export(state, best_model, history)

    def _export(self, state, best_model, history):
        save_checkpoint(self.best, model=best_model if best_model is not None else state["model"],
                        epoch=state["loop"]["best_period"])
        lines = "".join(json.dumps(r) + "\n" for r in history)
        atomic_write(self.path / "metrics.jsonl", lambda tmp: tmp.write_text(lines))

    def repair(self, checkpoint: dict):
        """Rewrite ``best.pt`` and ``metrics.jsonl`` from a loaded ``last.pt``."""
        if self.writer:
            self._export(checkpoint, checkpoint.get("best_model"), checkpoint.get("history", []))
