"""The one training loop of pyrozoo, and the interface of the training strategies it runs.

:class:`TrainingLoop` owns everything that is the same for every way of training: the run
directory and its checkpoints, resume, divergence handling, early stopping on a validation
score, progress, ``metrics.jsonl`` and logger hooks. *How* a model learns is a
:class:`Strategy`: stochastic variational inference with any Pyro objective
(:class:`~pyrozoo.inference.svi.SVIStrategy`, which also runs Stein Mixture Inference), the
two phases of the R-VAE (:class:`~pyrozoo.inference.phases.TwoPhaseStrategy`) and the
introspective game (:class:`~pyrozoo.inference.game.IntroStrategy`).

Training advances in *periods*: an epoch, or a block of iterations for strategies that count
iterations. After each period the loop validates, commits a checkpoint, appends a metrics
record and calls the loggers.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Iterable, Protocol

import pyro
import torch
from tqdm.auto import tqdm

from pyrozoo.inference import distributed
from pyrozoo.inference.checkpoint import rng_state, set_rng_state
from pyrozoo.inference.rundir import RunDirectory, load_checkpoint

CHECKPOINT_FORMAT = 2


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the run stopped and its last good checkpoint was kept."""


def check_device(device: str):
    """Raise ``ValueError`` unless ``device`` is ``cpu``, ``cuda`` or ``cuda:N`` and usable here."""
    if not isinstance(device, str) or (device not in ("cpu", "cuda") and not device.startswith("cuda:")):
        raise ValueError(f"unknown device {device!r}; choose from cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but torch sees no CUDA device")
    if device.startswith("cuda:"):
        index = device.split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist; this machine has {torch.cuda.device_count()} "
                             "CUDA device(s)")


def check_finite(value: torch.Tensor, what: str, where: str):
    """Raise :class:`TrainingDiverged` when the scalar ``value`` is NaN or inf."""
    if not torch.isfinite(value):
        raise TrainingDiverged(f"{what} became {value.item()} at {where}")


class Logger(Protocol):
    """A logger hook: :class:`TrainingLoop` calls ``log(record, step)`` after every period and
    ``close()`` at the end (TensorBoard, wandb, MLflow, ... plug in here)."""

    def log(self, record: dict, step: int) -> None: ...

    def close(self) -> None: ...


class Strategy:
    """How a model learns; :class:`TrainingLoop` calls these. Subclasses set ``model``,
    ``unit`` (``"epoch"`` or ``"iteration"``), ``num_periods`` and ``units_per_period``."""

    unit = "epoch"
    num_periods: int = 1
    units_per_period: int = 1
    model: torch.nn.Module
    seed: int = 0
    quiet: bool = False

    def setup(self) -> None:
        """Check the data and settings, move model and data to the device, build optimisers."""

    def train_period(self, period: int) -> dict:
        """Train one period (``period`` counts from 0); returns the record's training metrics.
        Raise :class:`TrainingDiverged` (see :func:`check_finite`) on a non-finite loss."""
        raise NotImplementedError

    def finish(self) -> None:
        """Called when :meth:`TrainingLoop.fit` returns normally (undo training-only state)."""

    def validate(self) -> float | None:
        """The validation score (higher is better) after a period, or None when the strategy
        has none (then the latest model counts as the best)."""
        return None

    def stage(self, period: int) -> str:
        """The name of the stage ``period`` belongs to; the best score restarts with each stage."""
        return "train"

    def patience(self, period: int) -> int | None:
        """Periods without improvement after which the stage stops early (None: never)."""
        return None

    def units_done(self, period: int) -> int:
        """Epochs or iterations done after ``period`` periods."""
        return period * self.units_per_period

    def total_units(self) -> int:
        """Epochs or iterations of the whole run."""
        return self.units_done(self.num_periods)

    def finished(self, period: int) -> bool:
        """Whether training is complete after ``period`` periods."""
        return period >= self.num_periods

    def progress(self, period: int) -> dict:
        """Counters for the metrics record of the period that ends at ``period`` periods."""
        return {self.unit: self.units_done(period)}

    def state_dict(self) -> dict:
        """Optimiser states and counters to checkpoint (the loop saves model and RNG itself)."""
        return {}

    def load_state_dict(self, state: dict, model_state: dict) -> None:
        """Restore :meth:`state_dict` and the model's ``model_state`` (a strategy whose model
        changes structure during training restores that structure first)."""
        self.model.load_state_dict(model_state)


class TrainingLoop:
    """Run ``strategy`` into the run directory ``out`` (a path, an open
    :class:`~pyrozoo.inference.rundir.RunDirectory`, or None to write nothing).

    ``loggers``: objects with ``log(record, step)`` and ``close()``. :meth:`fit` returns a dict
    with the periods done, the best validation score and its period, and whether the run
    stopped early.
    """

    def __init__(self, strategy: Strategy, out=None, loggers: Iterable[Logger] = (), rank: int | None = None):
        self.strategy = strategy
        self.rank = rank  # None: this process's rank, known once the strategy has joined the process group
        # a RunDirectory opened by the caller stays theirs; a path is opened (locked) by each
        # resume() and fit() and released when they return
        self._path = out.path if isinstance(out, RunDirectory) else (Path(out) if out is not None else None)
        self.run_dir = out if isinstance(out, RunDirectory) else None
        self._owned = False
        self.loggers = list(loggers)
        self.period = 0
        self.best = -math.inf
        self.best_period = 0
        self.stage = None
        self.stopped_early = False
        self.stopped_by_time_limit = False
        self.history: list[dict] = []
        self._best_copy = None  # a copy of the best weights (None: the current ones are the best)
        self._ready = False

    @property
    def model(self) -> torch.nn.Module:
        return self.strategy.model

    @property
    def out(self) -> Path | None:
        return self._path

    def _acquire(self, resuming=False):
        if self.run_dir is None and self._path is not None:
            mode = "resume" if resuming or self.period > 0 else "overwrite"
            self.run_dir = RunDirectory(self._path, mode, rank=self.rank)
            self._owned = True

    def _release(self):
        if self._owned:
            self.run_dir.close()
            self.run_dir, self._owned = None, False

    def _setup(self):
        if not self._ready:
            self.strategy.setup()
            if self.rank is None:
                self.rank = distributed.context().rank
            self._ready = True

    # -- state ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(), "strategy": self.strategy.state_dict(),
                "rng": rng_state(), "loop": {"period": self.period, "best": self.best,
                                             "best_period": self.best_period, "stage": self.stage,
                                             "stopped_early": self.stopped_early}}

    def resume(self, path=None) -> "TrainingLoop":
        """Continue from ``checkpoints/last.pt`` of the run directory (or from ``path``)."""
        self._setup()
        if path is None and self._path is None:
            raise ValueError("resume needs a run directory or a checkpoint path")
        try:
            self._acquire(resuming=True)
            self._load(path if path is not None else self.run_dir.last)
        finally:
            self._release()
        return self

    def _load(self, path):
        state = load_checkpoint(path, map_location="cpu")
        if state.get("format") != CHECKPOINT_FORMAT or "loop" not in state:
            raise ValueError(f"{path} was written by another version of pyrozoo's training loop and cannot be "
                             "resumed; train the run again")
        self.strategy.load_state_dict(state["strategy"], state["model"])
        loop = state["loop"]
        self.period, self.best, self.best_period = loop["period"], loop["best"], loop["best_period"]
        self.stage, self.stopped_early = loop["stage"], loop["stopped_early"]
        self.history = list(state.get("history", []))
        best = state.get("best_model")
        current = self.model.state_dict()
        if best is not None:
            self._best_copy = {k: v.to(current[k].device) for k, v in best.items()}
        elif math.isfinite(self.best):  # the last period was the best one
            self._best_copy = _clone(current)
        set_rng_state(state["rng"])
        if self.run_dir is not None:
            self.run_dir.repair(state)

    def best_state_dict(self) -> dict:
        """The model weights of the best period (the current ones when they are the best)."""
        return self._best_copy if self._best_copy is not None else self.model.state_dict()

    def load_best(self) -> torch.nn.Module:
        """Put the best period's weights into the model and return it."""
        if self._best_copy is not None:
            self.model.load_state_dict(self._best_copy)
        return self.model

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, stop_after: int | None = None, time_limit: float | None = None) -> dict:
        """Train until the strategy's last period, early stopping, ``stop_after`` more periods, or
        ``time_limit`` seconds of this call (checked before each period: a period that starts runs to
        its end, so the checkpoint stays whole and a later :meth:`resume` continues from it)."""
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
        started = time.perf_counter()
        self.stopped_by_time_limit = False
        self._setup()
        s = self.strategy
        if self.period == 0 and not self.history:
            pyro.set_rng_seed(s.seed)
        self._acquire()
        done = 0
        bar = Progress(s.total_units(), s.units_done(self.period), s.unit, enabled=not s.quiet and self.rank == 0)
        try:
            with pyro.validation_enabled(False):
                while not s.finished(self.period) and (stop_after is None or done < stop_after):
                    if self._should_stop():
                        self.stopped_early = True
                        break
                    if time_limit is not None and self._out_of_time(started, time_limit):
                        self.stopped_by_time_limit = True
                        break
                    self._run_period(bar)
                    done += 1
            s.finish()
        except TrainingDiverged as err:
            bar.close()
            raise TrainingDiverged(f"{err}; stopped. {self._advice()}") from None
        finally:
            bar.close()
            self._release()
        return self.result()

    def result(self) -> dict:
        """What :meth:`fit` returns: periods done, best score and period, early stop."""
        s = self.strategy
        return {s.unit + "s": s.units_done(self.period),
                "best_valid_elbo": self.best if math.isfinite(self.best) else None,
                "best_" + s.unit: s.units_done(self.best_period), "stopped_early": self.stopped_early,
                "stopped_by_time_limit": self.stopped_by_time_limit}

    @staticmethod
    def _out_of_time(started: float, time_limit: float) -> bool:
        """Whether ``time_limit`` seconds have passed since ``started``; in a distributed run rank
        0's clock decides for every rank, so all of them stop after the same period."""
        return bool(distributed.broadcast_object(time.perf_counter() - started >= time_limit))

    def _should_stop(self) -> bool:
        s = self.strategy
        stage = s.stage(self.period)
        if stage != self.stage:  # a new stage keeps none of the last one's best
            self.stage, self.best, self.best_period, self._best_copy = stage, -math.inf, self.period, None
            return False
        patience = s.patience(self.period)
        return patience is not None and math.isfinite(self.best) and self.period - self.best_period >= patience

    def _run_period(self, bar):
        s = self.strategy
        start = time.perf_counter()
        self.model.train()
        record = dict(s.train_period(self.period))
        seconds = time.perf_counter() - start
        self.model.eval()
        valid = s.validate()
        if valid is not None and not math.isfinite(valid):
            raise TrainingDiverged(f"the validation ELBO became {valid} after {s.unit} {s.units_done(self.period + 1)}")
        self.period += 1
        improved = valid is None or valid > self.best
        if improved:
            self.best = valid if valid is not None else -math.inf
            self.best_period = self.period
            # the best weights are the current ones; a copy serves once later periods move them
            self._best_copy = None if valid is None else _clone(self.model.state_dict())
        record = {**s.progress(self.period), **record, **({"valid_elbo": valid} if valid is not None else {}),
                  "seconds": round(seconds, 4)}
        self.history.append(record)
        if self.run_dir is not None:
            self.run_dir.commit(self._state(), None if improved else self._best_copy, self.history)
        for logger in self.loggers if self.rank == 0 else ():
            logger.log(record, s.units_done(self.period))
        bar.update(s.units_done(self.period), record)

    def _advice(self) -> str:
        if self.run_dir is None:
            return "Nothing was written (no run directory)."
        if self.period == 0:
            return (f"No checkpoint was written: the run diverged in its first {self.strategy.unit}. Start it again "
                    f"with a smaller learning rate or a longer warm-up (--overwrite reuses {self.run_dir.path}).")
        return (f"The last good checkpoint ({self.strategy.unit} {self.strategy.units_done(self.period)}) is "
                f"in {self.run_dir.checkpoints}; resume it with a smaller learning rate (--resume --lr ...).")

    def close(self):
        """Close the loggers (the run directory stays open for its owner)."""
        for logger in self.loggers:
            logger.close()


class Progress:
    """Training progress on stderr: a tqdm bar on a terminal, one plain line per period when
    stderr is a file or a pipe (logs stay readable), nothing when disabled."""

    SHOWN = ("train_loss", "valid_elbo", "loss_vae", "loss_e", "loss_d")

    def __init__(self, total: int, initial: int, unit: str, enabled: bool = True):
        self.total, self.unit, self.enabled = total, unit, enabled
        self.done = initial
        self.tty = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, desc="train", unit=unit, file=sys.stderr,
                        dynamic_ncols=True) if self.tty else None

    def update(self, done: int, record: dict):
        """Advance to ``done`` units with the metrics of ``record``."""
        shown = {k: f"{record[k]:.4g}" for k in self.SHOWN if k in record}
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix(shown)
        elif self.enabled:
            values = "  ".join(f"{k} {v}" for k, v in shown.items())
            print(f"{self.unit} {done}/{self.total}  {values}  ({record.get('seconds', 0):.1f} s)", file=sys.stderr,
                  flush=True)
        self.done = done

    def close(self):
        """End the bar (its line stays; later messages start on a new line)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clone(state: dict) -> dict:
    return {k: v.detach().clone() for k, v in state.items()}
