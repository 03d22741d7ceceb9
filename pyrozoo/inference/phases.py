"""Two-phase training (Kalatzis et al. 2020, Appendix C.1; after Detlefsen et al. 2019).

Phase one fits the encoder and the decoder mean; phase two freezes them and fits the parameters
that shape the latent geometry (the decoder's variance network and the prior). Any model with
``phase_parameters(phase)`` and ``start_phase_two(train_x)`` (e.g.
:class:`pyrozoo.models.rvae.RiemannianVAE`) trains this way.
"""

import contextlib
import copy
import json
import warnings
from pathlib import Path

import torch

from pyrozoo.inference.trainer import Trainer


class TwoPhaseTrainer:
    """Train ``model`` in two phases into ``out/phase1`` and ``out/phase2``; same interface as
    :class:`Trainer` (``fit``, ``resume``, ``load_best``, ``epoch``, ``best``).

    - Phase one: ``phase_epochs[0]`` epochs of ``config`` (its ``warmup`` and ``beta`` apply;
      ``phase_one_beta=0`` trains the R-VAE as an autoencoder: reconstruction only) with Adam on
      ``model.phase_parameters(1)``.
    - Switch: ``model.start_phase_two(train)`` (k-means RBF centres, prior centre), then the
      phase-one parameters are frozen (``requires_grad=False``).
    - Phase two: ``phase_epochs[1]`` epochs with β = 1, no warm-up, Adam on
      ``model.phase_parameters(2)``; its best validation checkpoint is the result.

    Each phase writes its own ``metrics.jsonl`` and checkpoints, so a killed run resumes in
    the phase it was in (:meth:`resume`).
    """

    def __init__(self, model, dataset, config, out, objective=None, phase_epochs=(100, 200), phase_one_beta=None):
        if len(phase_epochs) != 2 or min(int(e) for e in phase_epochs) < 1:
            raise ValueError(f"phase_epochs must be two positive epoch counts, got {phase_epochs}")
        for name in ("phase_parameters", "start_phase_two"):
            if not hasattr(model, name):
                raise ValueError(f"{type(model).__name__} has no {name}(); it cannot train in two phases")
        self.model, self.dataset, self.objective = model, dataset, objective
        self.out = Path(out)
        self.config = config
        one = copy.copy(config)
        one.epochs = int(phase_epochs[0])
        one.warmup = min(int(config.warmup), one.epochs)
        one.patience = one.epochs
        if phase_one_beta is not None:
            one.beta = float(phase_one_beta)
        two = copy.copy(config)
        two.epochs, two.warmup, two.beta, two.patience = int(phase_epochs[1]), 0, 1.0, int(phase_epochs[1])
        self.configs = (one, two)
        self.trainer = self._phase_trainer(1)
        self.phase = 1

    def _phase_trainer(self, phase):
        params = self.model.phase_parameters(phase)
        cfg = self.configs[phase - 1]
        with _frozen_ok():
            return Trainer(self.model, self.dataset, cfg, self.out / f"phase{phase}", objective=self.objective,
                           optimizer=torch.optim.Adam(params, lr=cfg.lr))

    def _switch(self):
        self.model.start_phase_two(self.dataset.train.to(self.trainer.device), seed=self.config.seed)
        for p in self.model.phase_parameters(1):
            p.requires_grad_(False)
        self.trainer = self._phase_trainer(2)
        self.phase = 2

    @property
    def epoch(self):
        """Epochs done over both phases."""
        return self.trainer.epoch + (self.configs[0].epochs if self.phase == 2 else 0)

    @property
    def best(self):
        """Best validation ELBO of the current phase (phase two's once it has started)."""
        return self.trainer.best

    @property
    def best_epoch(self):
        """Epoch (counted over both phases) of :attr:`best`."""
        return self.trainer.best_epoch + (self.configs[0].epochs if self.phase == 2 else 0)

    def resume(self):
        """Continue a killed run: in phase two from ``phase2/checkpoints/last.pt`` (its model
        state holds the RBF centres), else phase one from its last checkpoint."""
        if (self.out / "phase2" / "checkpoints" / "last.pt").exists():
            self._switch()
            self.trainer.resume()
        elif (self.out / "phase1" / "checkpoints" / "last.pt").exists():
            self.trainer.resume()
        return self

    def fit(self):
        """Run what is left of both phases; returns the result dict of :meth:`Trainer.fit` for
        phase two, with ``phase_one`` holding phase one's and ``epochs`` counted over both."""
        first = None
        if self.phase == 1:
            first = self.trainer.fit()
            self._switch()
        with _frozen_ok():
            result = self.trainer.fit()
        result = dict(result, epochs=self.epoch, best_epoch=self.best_epoch)
        if first is not None:
            result["phase_one"] = first
        (self.out / "phases.json").write_text(json.dumps({"phase_epochs": [c.epochs for c in self.configs],
                                                          "phase_one_beta": self.configs[0].beta}) + "\n")
        return result

    def load_best(self):
        """Load phase two's best checkpoint (or phase one's before the switch)."""
        return self.trainer.load_best()

    def seconds_per_epoch(self):
        """Mean training seconds per epoch of each phase, from the metrics files: ``(s1, s2)``."""
        out = []
        for phase in (1, 2):
            path = self.out / f"phase{phase}" / "metrics.jsonl"
            rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
            out.append(sum(r["seconds"] for r in rows) / len(rows) if rows else float("nan"))
        return tuple(out)



@contextlib.contextmanager
def _frozen_ok():
    """Silence Pyro's note that frozen (``requires_grad=False``) module parameters stay out of
    its param store: in phase two that is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not registered in the param store because requires_grad=False")
        yield
