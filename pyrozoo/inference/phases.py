"""Two-phase training as a strategy of :class:`~pyrozoo.inference.loop.TrainingLoop`.

Kalatzis et al. (2020), Variational Autoencoders with Riemannian Brownian Motion Priors,
arXiv:2002.05227, Appendix C.1 (after Detlefsen et al. 2019): phase one fits the encoder and
the decoder mean; phase two freezes them and fits the parameters that shape the latent geometry
(the decoder's variance network and the prior). Any model with ``phase_parameters(phase)`` and
``start_phase_two(train_x)`` (e.g. :class:`pyrozoo.models.rvae.RiemannianVAE`) trains this way.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

from pyrozoo.inference import distributed
from pyrozoo.inference.loop import Strategy
from pyrozoo.inference.svi import SVIStrategy, TrainConfig


class TwoPhaseStrategy(Strategy):
    """Train ``model`` in two phases of SVI.

    - Phase one: ``phase_epochs[0]`` epochs of ``config`` (its ``warmup`` and ``beta`` apply;
      ``phase_one_beta=0`` trains the R-VAE as an autoencoder: reconstruction only) with Adam on
      ``model.phase_parameters(1)``, no early stopping and no validation.
    - Switch: ``model.start_phase_two(train)`` (k-means RBF centres, prior centre), then the
      phase-one parameters are frozen (``requires_grad=False``).
    - Phase two: ``phase_epochs[1]`` epochs with β = 1, no warm-up, Adam on
      ``model.phase_parameters(2)``, early stopping with ``config.patience``; its best
      validation epoch is the result (the loop restarts the best score at the switch).

    Epochs are counted over both phases in the metrics records, which carry ``"phase"``.
    """

    unit = "epoch"

    def __init__(self, model, dataset, config: TrainConfig, objective=None, phase_epochs=(100, 200),
                 phase_one_beta=None):
        phase_epochs = tuple(phase_epochs)
        if len(phase_epochs) != 2 or any(isinstance(e, bool) or not isinstance(e, int) or e < 1
                                         for e in phase_epochs):
            raise ValueError(f"phase_epochs must be two positive integers, got {phase_epochs}")
        for name in ("phase_parameters", "start_phase_two"):
            if not hasattr(model, name):
                raise ValueError(f"{type(model).__name__} has no {name}(); it cannot train in two phases")
        self.model, self.dataset, self.objective = model, dataset, objective
        self.config = config.validate()
        self.seed, self.quiet = config.seed, config.quiet
        one = copy.copy(config)
        one.epochs, one.patience = phase_epochs[0], phase_epochs[0]
        one.warmup = min(config.warmup, one.epochs)
        if phase_one_beta is not None:
            one.beta = float(phase_one_beta)
        two = copy.copy(config)
        two.epochs, two.warmup, two.beta = phase_epochs[1], 0, 1.0
        self.configs = (one, two)
        self.phase_epochs = phase_epochs
        self.num_periods = sum(phase_epochs)
        self.phase = 1
        self.inner = self._phase_strategy(1)

    def _phase_strategy(self, phase):
        cfg = self.configs[phase - 1]
        return SVIStrategy(self.model, self.dataset, cfg, objective=self.objective,
                           parameters=self.model.phase_parameters(phase),
                           epoch_offset=0 if phase == 1 else self.phase_epochs[0])

    def setup(self):
        self.inner.setup()

    def _switch(self, fit=True):
        if fit:  # rank 0 fits the RBF centres on the whole training set; the other ranks receive them
            if distributed.context().main:
                self.model.start_phase_two(self.dataset.train.to(self.inner.device), seed=self.config.seed)
            distributed.broadcast_module(self.model)
        self._freeze()
        self.inner = self._phase_strategy(2)
        with frozen_ok():
            self.inner.setup()
        self.phase = 2

    def stage(self, period):
        return "phase1" if period < self.phase_epochs[0] else "phase2"

    def patience(self, period):
        return None if period < self.phase_epochs[0] else self.configs[1].patience

    def _freeze(self, frozen=True):
        for p in self.model.phase_parameters(1):
            p.requires_grad_(not frozen)

    def finish(self):
        """Unfreeze the phase-one parameters: the trained model behaves like a fresh one."""
        self._freeze(False)

    def train_period(self, period):
        if period >= self.phase_epochs[0] and self.phase == 1:
            self._switch()
        elif self.phase == 2:
            self._freeze()
        with frozen_ok():
            record = self.inner.train_period(period - (0 if self.phase == 1 else self.phase_epochs[0]))
        return {**record, "phase": self.phase}

    def validate(self):
        """The validation ELBO in phase two; None in phase one, which neither stops early nor keeps
        its best weights (phase two starts from its last ones), so the score would go unused, and
        with geodesic heat kernels it costs minutes per epoch. Validation draws from its own seeded
        RNG, so leaving it out changes no trained parameter."""
        if self.phase == 1:
            return None
        with frozen_ok():
            return self.inner.validate()

    def progress(self, period):
        return {"epoch": period}

    def set_lr(self, lr, group=None):
        """Set the learning rate of the current phase's optimiser."""
        self.inner.set_lr(lr, group)

    def state_dict(self):
        return {"phase": self.phase, "inner": self.inner.state_dict()}

    def load_state_dict(self, state, model_state):
        if state["phase"] == 2 and self.phase == 1:
            self.model.load_state_dict(model_state)  # holds the RBF centres: no k-means needed
            self._switch(fit=False)
        self.inner.load_state_dict(state["inner"], model_state)

    def seconds_per_epoch(self, history) -> tuple:
        """Mean training seconds per epoch of each phase, from the loop's metric records."""
        out = []
        for phase in (1, 2):
            rows = [r["seconds"] for r in history if r.get("phase") == phase]
            out.append(sum(rows) / len(rows) if rows else float("nan"))
        return tuple(out)


@contextlib.contextmanager
def frozen_ok():
    """Silence Pyro's note that frozen (``requires_grad=False``) module parameters stay out of
    its param store: in phase two that is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not registered in the param store because requires_grad=False")
        yield


