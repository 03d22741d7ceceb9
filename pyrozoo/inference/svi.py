"""Stochastic variational inference as a training strategy of :class:`~pyrozoo.inference.loop.TrainingLoop`.

Each epoch runs ``objective.differentiable_loss(model.model, model.guide, x, num_data=N)`` over
shuffled mini-batches and steps a ``torch.optim`` optimiser. KL warm-up (linear or cyclical)
and a constant β scale the latent sites (see :mod:`pyrozoo.inference.annealing`); validation
is the mean per-point ELBO at β = 1. Any Pyro-style objective fits: :class:`~pyrozoo.inference.ELBO`,
:class:`~pyrozoo.inference.IWAE`, free bits, and :class:`~pyrozoo.inference.SMI` (Stein Mixture
Inference, whose surrogate loss leaves the Stein force in the particles' gradients).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pyro
import torch

from pyrozoo.inference.annealing import SCHEDULES, kl_weight, scale_latents
from pyrozoo.inference.loop import Strategy, check_device, check_finite
from pyrozoo.inference.objectives import ELBO


@dataclass
class TrainConfig:
    """Settings of an epoch-based run (plain values, saved with the run)."""

    epochs: int = 100
    batch_size: int = 100
    lr: float = 1e-3
    warmup: int = 0
    beta: float = 1.0
    kl_schedule: str = "linear"
    cycles: int = 4
    patience: int = 50
    normalize_gradients: bool = False
    seed: int = 0
    device: str = "cpu"
    quiet: bool = False
    eval_batch_size: int = 500

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` for settings that make no sense."""
        for name in ("epochs", "batch_size", "eval_batch_size", "patience", "cycles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0 (epochs), got {self.warmup!r}")
        if not (isinstance(self.beta, (int, float)) and self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta!r}")
        if self.kl_schedule not in SCHEDULES:
            raise ValueError(f"unknown KL schedule {self.kl_schedule!r}; choose from {', '.join(SCHEDULES)}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        check_device(self.device)
        return self


def config_dict(config) -> dict:
    """A dataclass config as a plain dict."""
    return asdict(config)


@torch.no_grad()
def mean_elbo(model, dataset, split, objective=None, batch_size=500) -> float:
    """Average per-point ELBO (β = 1) of ``split``, in nats."""
    objective = objective or ELBO()
    total, n = 0.0, 0
    for x in dataset.batches(split, batch_size):
        total += -objective.differentiable_loss(model.model, model.guide, x).item()
        n += len(x)
    return total / n


@torch.no_grad()
def normalize_gradients(parameters, eps=1e-7):
    """Divide each parameter tensor's gradient by its L2 norm (+ ``eps``): the normalised-gradient
    Adam of Tomczak & Welling (2018), VAE with a VampPrior, arXiv:1705.07120, §5.1 (after Yu et
    al. 2017)."""
    for p in parameters:
        if p.grad is not None:
            p.grad.div_(p.grad.norm() + eps)


def check_model_data(model, dataset):
    """Validate every split of ``dataset`` against ``model`` (the training split as the model
    sees it: binarised when the data set binarises dynamically)."""
    for split in ("train", "valid", "test"):
        x = dataset.split(split)
        if dataset.binarize and split == "train":
            x = torch.bernoulli(x)
        try:
            model.check_data(x)
        except ValueError as err:
            raise ValueError(f"{split} split of {dataset.name}: {err}") from None


class SVIStrategy(Strategy):
    """Train ``model`` on ``dataset`` by ``objective`` (default :class:`~pyrozoo.inference.ELBO`)
    for ``config.epochs`` epochs of mini-batches.

    ``optimizer``: a function ``parameters -> torch.optim.Optimizer`` or an optimiser (default
    Adam at ``config.lr`` over ``parameters``, default all of the model's). ``valid_objective``:
    the objective whose β = 1 value is the validation score (default the plain ELBO; Stein
    Mixture Inference passes itself). ``epoch_offset`` shifts the epochs this strategy reports
    (the second phase of two-phase training).
    """

    unit = "epoch"

    def __init__(self, model, dataset, config: TrainConfig, objective=None, optimizer=None, valid_objective=None,
                 parameters=None, epoch_offset: int = 0):
        self.config = config.validate()
        self.model, self.dataset = model, dataset
        self.objective = objective or ELBO()
        self.valid_objective = valid_objective
        self._optimizer, self._parameters = optimizer, parameters
        self.optimizer = None
        self.num_periods = config.epochs
        self.seed, self.quiet = config.seed, config.quiet
        self.epoch_offset = int(epoch_offset)
        self.step = 0
        check_model_data(model, dataset)

    def setup(self):
        self.device = torch.device(self.config.device)
        self.model.to(self.device)
        self.dataset.to(self.device)
        with torch.no_grad(), pyro.validation_enabled(False):  # surface objective/model mismatches now
            self.objective.differentiable_loss(self.model.model, self.model.guide, self.dataset.valid[:2],
                                               num_data=len(self.dataset.train))
        if self.optimizer is None:
            params = list(self._parameters) if self._parameters is not None else list(self.model.parameters())
            opt = self._optimizer
            if opt is None:
                self.optimizer = torch.optim.Adam(params, lr=self.config.lr)
            elif isinstance(opt, torch.optim.Optimizer):
                self.optimizer = opt
            else:
                self.optimizer = opt(params)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.dataset.train) / self.config.batch_size)

    def beta(self) -> float:
        """The KL weight at the current step (warm-up or cyclical schedule times β)."""
        cfg = self.config
        spe = self.steps_per_epoch
        return kl_weight(self.step, cfg.warmup * spe, cfg.epochs * spe, cfg.beta, cfg.kl_schedule, cfg.cycles)

    def train_period(self, period):
        cfg = self.config
        n_train = len(self.dataset.train)
        total = 0.0
        for x in self.dataset.batches("train", cfg.batch_size, shuffle=True):
            beta = self.beta()
            loss = self.objective.differentiable_loss(scale_latents(self.model.model, beta),
                                                      scale_latents(self.model.guide, beta), x, num_data=n_train)
            check_finite(loss, "the loss", f"epoch {self.epoch_offset + period + 1}, step {self.step}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.normalize_gradients:
                normalize_gradients(self.model.parameters())
            self.optimizer.step()
            total += loss.item() * len(x) / n_train
            self.step += 1
        return {"train_loss": total / n_train, "beta": self.beta()}

    def validate(self):
        return mean_elbo(self.model, self.dataset, "valid", objective=self.valid_objective,
                         batch_size=self.config.eval_batch_size)

    def patience(self, period):
        return self.config.patience

    def progress(self, period):
        return {"epoch": self.epoch_offset + period}

    def set_lr(self, lr: float, group: int | None = None):
        """Set the learning rate of every parameter group (or of group ``group``)."""
        groups = self.optimizer.param_groups if group is None else [self.optimizer.param_groups[group]]
        for g in groups:
            g["lr"] = float(lr)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "optimizer_params": self._param_names(), "step": self.step}

    def load_state_dict(self, state, model_state):
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(self._reorder(state))
        self.step = state["step"]

    def _param_names(self):
        """Names of the optimiser's parameters, in its order (its state is keyed by index)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        return [names.get(id(p)) for group in self.optimizer.param_groups for p in group["params"]]

    def _reorder(self, state):
        """The saved optimiser state with its indices mapped onto this optimiser's parameter order,
        so a checkpoint resumes even when the model registers its modules in another order."""
        opt = state["optimizer"]
        saved, current = state.get("optimizer_params") or [], self._param_names()
        if saved == current or None in current or sorted(saved) != sorted(current):
            return opt
        index = {name: i for i, name in enumerate(saved)}
        new_state = {i: opt["state"][index[n]] for i, n in enumerate(current) if index[n] in opt["state"]}
        groups, start = [], 0
        for group in opt["param_groups"]:
            count = len(group["params"])
            groups.append({**group, "params": list(range(start, start + count))})
            start += count
        return {"state": new_state, "param_groups": groups}
