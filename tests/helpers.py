"""Helpers shared by the tests (importable as ``helpers``: pytest puts this folder on the path)."""

import os
import signal

import torch

from pyrozoo.inference import Strategy


def fit(model, dataset, out=None, objective=None, stop_after=None, **config):
    """Train ``model`` by SVI with :class:`TrainingLoop` (quiet; ``config``: TrainConfig fields);
    returns the loop."""
    from pyrozoo.inference import SVIStrategy, TrainConfig, TrainingLoop
    loop = TrainingLoop(SVIStrategy(model, dataset, TrainConfig(quiet=True, **config), objective=objective), out)
    loop.fit(stop_after=stop_after)
    return loop


class ScriptedStrategy(Strategy):
    """A tiny strategy for loop tests: one parameter vector that takes a random step each period
    (so resuming must restore the RNG) and a scripted validation score per period."""

    unit, units_per_period, seed, quiet = "epoch", 1, 0, True

    def __init__(self, scores=(1.0, 3.0, 2.0, 4.0, 0.0, 5.0), patience=None):
        torch.manual_seed(0)
        self.model = torch.nn.Linear(3, 1)
        self.scores, self._patience = list(scores), patience
        self.num_periods = len(self.scores)
        self.period = 0

    def setup(self):
        pass

    def train_period(self, period):
        with torch.no_grad():
            self.model.weight.add_(torch.randn(1, 3))
        self.period = period + 1
        return {"train_loss": self.model.weight.detach().sum().item()}

    def validate(self):
        return self.scores[self.period - 1]

    def patience(self, period):
        return self._patience

    def state_dict(self):
        return {"period": self.period}

    def load_state_dict(self, state, model_state):
        self.model.load_state_dict(model_state)
        self.period = state["period"]


def snapshots(out=None, **kw):
    """Train a :class:`ScriptedStrategy` to the end; returns ``(loop, weights after each period)``."""
    from pyrozoo.inference import TrainingLoop

    class Snap:
        def __init__(self):
            self.weights = {}

        def log(self, record, step):
            self.weights[step] = {k: v.clone() for k, v in loop.model.state_dict().items()}

        def close(self):
            pass

    snap = Snap()
    loop = TrainingLoop(ScriptedStrategy(**kw), out, loggers=[snap])
    loop.fit()
    return loop, snap.weights


def die_at_write(n, mode="replace"):
    """Make this process SIGKILL itself inside the n-th file write of a run directory: after the
    temporary file is written and before it replaces the target (``"replace"``), or half-way
    through writing a checkpoint (``"save"``)."""
    from pyrozoo.inference import rundir
    calls = {"n": 0}
    real_replace, real_save = os.replace, torch.save

    def replace(src, dst):
        calls["n"] += 1
        if mode == "replace" and calls["n"] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    def save(obj, f, *a, **k):
        if mode == "save" and calls["n"] + 1 == n:
            real_save(obj, f, *a, **k)
            with open(f, "r+b") as fh:
                fh.truncate(os.path.getsize(f) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *a, **k)

    rundir.os = _Proxy(os, replace=replace)
    rundir.torch = _Proxy(torch, save=save)


class _Proxy:
    """A module stand-in that overrides some attributes."""

    def __init__(self, module, **overrides):
        self._module, self._overrides = module, overrides

    def __getattr__(self, name):
        return self._overrides.get(name) or getattr(self._module, name)
