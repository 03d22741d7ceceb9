"""One training loop for any zoo model and any Pyro objective.

The loop calls ``objective.differentiable_loss(model.model, model.guide, x, num_data=N)`` on
mini-batches and steps a ``torch.optim`` optimiser over the model's parameters. KL warm-up
(linear or cyclical) and a constant β scale the latent sites (see
:mod:`pyrozoo.inference.annealing`); validation always uses β = 1.
Each epoch appends a line to ``metrics.jsonl`` and writes ``checkpoints/last.pt`` (and
``best.pt`` when the validation ELBO improves). A NaN or inf loss stops the run with
:class:`TrainingDiverged`; the checkpoints then still hold the last good epoch.
"""

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyro
import torch
from tqdm.auto import tqdm

from pyrozoo.inference.annealing import SCHEDULES, kl_weight, scale_latents
from pyrozoo.inference.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from pyrozoo.inference.objectives import ELBO


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the run stopped and its last good checkpoint was kept."""


@dataclass
class TrainConfig:
    """Settings of a training run (all plain values, saved in ``config.json``)."""

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

    def validate(self):
        """Raise ``ValueError`` for settings that make no sense."""
        for name in ("epochs", "batch_size", "eval_batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0 epochs, got {self.warmup}")
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta}")
        if self.kl_schedule not in SCHEDULES:
            raise ValueError(f"unknown KL schedule {self.kl_schedule!r}; choose from {', '.join(SCHEDULES)}")
        if int(self.cycles) < 1:
            raise ValueError(f"cycles must be >= 1, got {self.cycles}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        check_device(self.device)


def check_device(device):
    """Raise ``ValueError`` unless ``device`` is ``cpu``, ``cuda`` or ``cuda:N`` and usable here."""
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; choose from cpu, cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")


@torch.no_grad()
def mean_elbo(model, dataset, split, objective=None, batch_size=500):
    """Average per-point ELBO (β = 1) of ``split``, in nats."""
    objective = objective or ELBO()
    total, n = 0.0, 0
    for x in dataset.batches(split, batch_size):
        total += -objective.differentiable_loss(model.model, model.guide, x).item()
        n += len(x)
    return total / n


class Trainer:
    """Train ``model`` on ``dataset`` with ``objective`` into the run directory ``out``.

    ``optimizer``: a ``torch.optim`` optimiser over the model's parameters (default Adam at
    ``config.lr``). ``valid_objective``: the objective whose β = 1 value is the validation score
    (default the plain ELBO; Stein Mixture Inference passes itself, since its guide's mixture
    site is not reparameterisable as one distribution).
    """

    def __init__(self, model, dataset, config, out, objective=None, optimizer=None, valid_objective=None):
        config.validate()
        self.config = config
        self.out = Path(out)
        self.model = model
        self.dataset = dataset
        self.objective = objective or ELBO()
        self.valid_objective = valid_objective
        for split in ("train", "valid", "test"):
            try:
                model.check_data(dataset.split(split) if not dataset.binarize or split != "train"
                                 else torch.bernoulli(dataset.split(split)))
            except ValueError as err:
                raise ValueError(f"{split} split of {dataset.name}: {err}") from None
        self.device = torch.device(config.device)
        self.model.to(self.device)
        self.dataset.to(self.device)
        with torch.no_grad(), pyro.validation_enabled(False):  # surface objective/model mismatches now
            probe = dataset.valid[:2]
            self.objective.differentiable_loss(model.model, model.guide, probe, num_data=len(dataset.train))
        self.optimizer = optimizer or torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.epoch = 0
        self.best = -math.inf
        self.best_epoch = 0
        self.step = 0

    # -- state ------------------------------------------------------------------------------
    def _state(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "optimizer_params": self._param_names(), "rng": rng_state(),
                "epoch": self.epoch, "step": self.step, "best": self.best, "best_epoch": self.best_epoch}

    def resume(self, path=None):
        """Load ``checkpoints/last.pt`` (or ``path``) and continue after its epoch."""
        state = load_checkpoint(path or self.out / "checkpoints" / "last.pt", map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(self._reorder(state))
        set_rng_state(state["rng"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        metrics = self.out / "metrics.jsonl"
        if metrics.exists():  # drop lines of epochs after the checkpoint (a run killed mid-way)
            lines = [ln for ln in metrics.read_text().splitlines() if ln and json.loads(ln)["epoch"] <= self.epoch]
            metrics.write_text("".join(ln + "\n" for ln in lines))
        return self

    def _param_names(self):
        """Names of the optimiser's parameters, in its order (the checkpoint keys its state by index)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        return [names.get(id(p)) for group in self.optimizer.param_groups for p in group["params"]]

    def _reorder(self, state):
        """The saved optimiser state with its indices mapped onto this optimiser's parameter order,
        so a checkpoint resumes even when the model registers its modules in another order.
        Older checkpoints without names take the order of the saved model's parameters."""
        opt = state["optimizer"]
        saved = state.get("optimizer_params") or [k for k in state["model"] if k in dict(self.model.named_parameters())]
        current = self._param_names()
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

    # -- loop -------------------------------------------------------------------------------
    def fit(self, stop_after=None):
        """Train until ``config.epochs``, early stopping, or ``stop_after`` more epochs.

        Returns a dict with the final epoch, the best validation ELBO and its epoch.
        """
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        if self.epoch == 0:
            pyro.set_rng_seed(cfg.seed)
        n_train = len(self.dataset.train)
        steps_per_epoch = math.ceil(n_train / cfg.batch_size)
        warmup_steps = cfg.warmup * steps_per_epoch
        stopped_early = False
        done = 0
        bar = tqdm(total=cfg.epochs, initial=self.epoch, disable=cfg.quiet, desc="train", unit="epoch")
        with pyro.validation_enabled(False):
            while self.epoch < cfg.epochs and (stop_after is None or done < stop_after):
                if self.epoch - self.best_epoch >= cfg.patience and self.best_epoch > 0:
                    stopped_early = True
                    break
                start = time.perf_counter()
                self.model.train()
                total = 0.0
                for x in self.dataset.batches("train", cfg.batch_size, shuffle=True):
                    beta = self._beta(warmup_steps, steps_per_epoch)
                    loss = self.objective.differentiable_loss(scale_latents(self.model.model, beta),
                                                              scale_latents(self.model.guide, beta),
                                                              x, num_data=n_train)
                    if not torch.isfinite(loss):
                        raise TrainingDiverged(
                            f"loss became {loss.item()} at epoch {self.epoch + 1}, step {self.step}; "
                            f"stopped. The last good checkpoint (epoch {self.epoch}) is in {self.out / 'checkpoints'}."
                            " Try a smaller --lr or a longer --warmup.")
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.normalize_gradients:
                        normalize_gradients(self.model.parameters())
                    self.optimizer.step()
                    total += loss.item() * len(x) / n_train
                    self.step += 1
                seconds = time.perf_counter() - start
                self.model.eval()
                valid = mean_elbo(self.model, self.dataset, "valid", objective=self.valid_objective,
                                  batch_size=cfg.eval_batch_size)
                if not math.isfinite(valid):
                    raise TrainingDiverged(f"validation ELBO became {valid} at epoch {self.epoch + 1}; stopped. "
                                           f"The last good checkpoint is in {self.out / 'checkpoints'}.")
                self.epoch += 1
                done += 1
                improved = valid > self.best
                if improved:
                    self.best, self.best_epoch = valid, self.epoch
                record = {"epoch": self.epoch, "train_loss": total / n_train, "valid_elbo": valid,
                          "beta": self._beta(warmup_steps, steps_per_epoch), "seconds": seconds}
                state = self._state()
                save_checkpoint(self.out / "checkpoints" / "last.pt", **state)
                if improved:
                    save_checkpoint(self.out / "checkpoints" / "best.pt", **state)
                with open(self.out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                bar.update(1)
                bar.set_postfix(loss=f"{record['train_loss']:.2f}", valid_elbo=f"{valid:.2f}")
        bar.close()
        return {"epochs": self.epoch, "best_valid_elbo": self.best, "best_epoch": self.best_epoch,
                "stopped_early": stopped_early}

    def _beta(self, warmup_steps, steps_per_epoch):
        cfg = self.config
        return kl_weight(self.step, warmup_steps, cfg.epochs * steps_per_epoch, cfg.beta, cfg.kl_schedule, cfg.cycles)

    def load_best(self):
        """Load the parameters of ``checkpoints/best.pt`` into the model."""
        path = self.out / "checkpoints" / "best.pt"
        if path.exists():
            self.model.load_state_dict(load_checkpoint(path, map_location=self.device)["model"])
        return self.model


@torch.no_grad()
def normalize_gradients(parameters, eps=1e-7):
    """Divide each parameter tensor's gradient by its L2 norm (+ ``eps``): the normalised-gradient
    Adam the VampPrior authors use (§5.1, after Yu et al. 2017)."""
    for p in parameters:
        if p.grad is not None:
            p.grad.div_(p.grad.norm() + eps)


def write_json(path, obj):
    """Write ``obj`` as indented JSON through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def config_dict(config):
    """The dataclass ``config`` as a plain dict."""
    return asdict(config)
