"""Stochastic variational inference as a training strategy of :class:`~pyrozoo.inference.loop.TrainingLoop`.

Each epoch runs ``objective.differentiable_loss(model.model, model.guide, x, num_data=N)`` over
shuffled mini-batches and steps a ``torch.optim`` optimiser. KL warm-up (linear or cyclical)
and a constant β scale the latent sites (see :mod:`pyrozoo.inference.annealing`); validation
is the mean per-point ELBO at β = 1. Any Pyro-style objective fits: :class:`~pyrozoo.inference.ELBO`,
:class:`~pyrozoo.inference.IWAE`, free bits, and :class:`~pyrozoo.inference.SMI` (Stein Mixture
Inference, whose surrogate loss leaves the Stein force in the particles' gradients).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import pyro
import torch

from pyrozoo.inference import distributed
from pyrozoo.inference.annealing import SCHEDULES, kl_weight, scale_latents
from pyrozoo.inference.loop import Strategy, check_device, check_finite
from pyrozoo.inference.objectives import ELBO


#: ``torch.compile`` backends a training step may use (``inductor`` generates kernels; ``aot_eager``
#: captures forward and backward graphs and runs them eagerly).
COMPILE_BACKENDS = ("inductor", "aot_eager")


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
    accumulate: int = 1
    compile: str | None = None
    cuda_graph: bool = False
    seed: int = 0
    device: str = "cpu"
    quiet: bool = False
    eval_batch_size: int = 500

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` for settings that make no sense."""
        for name in ("epochs", "batch_size", "eval_batch_size", "patience", "cycles", "accumulate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0 (epochs), got {self.warmup!r}")
        if not (isinstance(self.beta, (int, float)) and self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta!r}")
        if self.compile is not None and self.compile not in COMPILE_BACKENDS:
            raise ValueError(f"unknown compile backend {self.compile!r}; choose from {', '.join(COMPILE_BACKENDS)}")
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
def mean_elbo(model, dataset, split, objective=None, batch_size=500, seed=0) -> float:
    """Average per-point ELBO (β = 1) of ``split``, in nats. Batch i draws from an RNG seeded by
    (``seed``, i); in a distributed run each rank evaluates its share of the batches and the sums
    are all-reduced, so every rank (and a single process) gets the same value."""
    objective = objective or ELBO()
    x = dataset.split(split)
    starts = list(range(0, len(x), batch_size))
    total, n = 0.0, 0
    for i in distributed.shard(len(starts)):
        distributed.seed_micro_batch(seed, -1, i)
        xb = x[starts[i]:starts[i] + batch_size]
        total += -objective.differentiable_loss(model.model, model.guide, xb).item()
        n += len(xb)
    total, n = distributed.all_reduce_sum([total, n])
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


class ObjectiveLoss(torch.nn.Module):
    """The training loss of ``model`` under ``objective`` as a module, so that
    ``DistributedDataParallel`` can wrap it: ``forward(x, num_data, beta)`` returns the objective's
    differentiable loss with the latent sites scaled by ``beta``."""

    def __init__(self, model, objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, x, num_data, beta):
        return self.objective.differentiable_loss(scale_latents(self.model.model, beta),
                                                  scale_latents(self.model.guide, beta), x, num_data=num_data)


class SVIStrategy(Strategy):
    """Train ``model`` on ``dataset`` by ``objective`` (default :class:`~pyrozoo.inference.ELBO`)
    for ``config.epochs`` epochs of mini-batches.

    ``optimizer``: a function ``parameters -> torch.optim.Optimizer`` or an optimiser (default
    Adam at ``config.lr`` over ``parameters``, default all of the model's). ``valid_objective``:
    the objective whose β = 1 value is the validation score (default the plain ELBO; Stein
    Mixture Inference passes itself). ``epoch_offset`` shifts the epochs this strategy reports
    (the second phase of two-phase training).

    ``config.compile`` (a :data:`COMPILE_BACKENDS` name) compiles the loss with ``torch.compile``;
    ``config.cuda_graph`` captures the whole step (forward, backward, Adam) in a CUDA graph and
    replays it (one process, the ELBO of a model with a direct path, static batch shapes; the
    normalised gradients of ``config.normalize_gradients`` are part of the captured step).
    A step averages the gradients of ``config.accumulate`` micro-batches of ``batch_size`` on
    each rank of a distributed run (``DistributedDataParallel`` averages across ranks), so the
    global batch is ``batch_size × ranks × accumulate``; each micro-batch's local sites are
    scaled to the training-set size N, so the averaged loss is an unbiased full-data ELBO and
    a global latent counts once. Every micro-batch draws from an RNG seeded by (seed, epoch,
    step, micro-batch index) (:func:`~pyrozoo.inference.distributed.seed_micro_batch`).
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
        self.ctx, device = distributed.setup(self.config.device)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.dataset.to(self.device)
        if self.dataset.steps_per_epoch(self.config.batch_size, self.ctx.world_size, self.config.accumulate) < 1:
            raise ValueError(f"the global batch (batch_size {self.config.batch_size} x {self.ctx.world_size} ranks x "
                             f"accumulate {self.config.accumulate}) is larger than the training set "
                             f"({len(self.dataset.train)} points)")
        with torch.no_grad(), pyro.validation_enabled(False):  # surface objective/model mismatches now
            self.objective.differentiable_loss(self.model.model, self.model.guide, self.dataset.valid[:2],
                                               num_data=len(self.dataset.train))
        self.loss = ObjectiveLoss(self.model, self.objective)
        if self.config.compile:  # graphs of the loss, forward and backward (Pyro internals fall back to eager)
            self.loss = torch.compile(self.loss, backend=self.config.compile)
        if self.ctx.distributed:  # averages the gradients over ranks (and syncs rank 0's parameters now)
            from torch.nn.parallel import DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.loss = DistributedDataParallel(self.loss, device_ids=ids,
                                                find_unused_parameters=self._some_parameters_unused())
        if self.config.cuda_graph:
            self._check_graph()
        if self.optimizer is None:
            params = list(self._parameters) if self._parameters is not None else list(self.model.parameters())
            opt = self._optimizer
            if opt is None:  # a captured step needs Adam's step counters on the device
                self.optimizer = torch.optim.Adam(params, lr=self.config.lr, capturable=self.config.cuda_graph)
            elif isinstance(opt, torch.optim.Optimizer):
                self.optimizer = opt
            else:
                self.optimizer = opt(params)

    def _some_parameters_unused(self) -> bool:
        """Whether a training loss at β = 0 or β = 1 leaves some trainable parameter without a
        gradient (e.g. the prior while the KL weight is 0): DDP must then search for them."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        x = self.dataset.binarized(self.dataset.train[:2])
        # SMI counts its calls (warm-up steps) and tallies its forces: the probe must not count
        with getattr(self.objective, "uncounted", contextlib.nullcontext)():
            for beta in (0.0, 1.0):
                grads = torch.autograd.grad(self.loss(x, len(self.dataset.train), beta), params, allow_unused=True)
                if any(g is None for g in grads):
                    return True
            return False

    @property
    def steps_per_epoch(self) -> int:
        ctx = getattr(self, "ctx", None) or distributed.context()
        return self.dataset.steps_per_epoch(self.config.batch_size, ctx.world_size, self.config.accumulate)

    def beta(self) -> float:
        """The KL weight at the current step (warm-up or cyclical schedule times β)."""
        cfg = self.config
        spe = self.steps_per_epoch
        return kl_weight(self.step, cfg.warmup * spe, cfg.epochs * spe, cfg.beta, cfg.kl_schedule, cfg.cycles, spe)

    def _normalize(self):
        """The normalised-gradient step of ``config.normalize_gradients`` (device ops only, so a
        captured step replays it too)."""
        if self.config.normalize_gradients:
            normalize_gradients(self.model.parameters())

    # -- a training step captured in a CUDA graph ------------------------------------------------
    def _check_graph(self):
        """Refuse ``cuda_graph`` where a step cannot be captured whole."""
        from pyrozoo.inference.objectives import direct_elbo
        why = [w for w, bad in (("device cuda", self.device.type != "cuda"), ("one process", self.ctx.distributed),
                                ("accumulate 1", self.config.accumulate != 1),
                                ("the elbo objective", type(self.objective) is not ELBO),
                                ("no optimiser of your own", self._optimizer is not None),
                                ("no compile", self.config.compile is not None)) if bad]
        x = self.dataset.binarized(self.dataset.train[:2])
        if not why and direct_elbo(self.model.model, self.model.guide, (x,), {}) is None:
            why.append("a model with a direct (trace-free) ELBO (VAE or HVAE programs)")
        if why:
            raise ValueError(f"cuda_graph needs {', '.join(why)}")
        self._graph = None

    def _graph_step(self, x, beta):
        """Replay the captured step on ``x`` (capturing it on the first full batch after three
        eager warm-up steps on a side stream); returns the step's loss as a device tensor."""
        n_train = len(self.dataset.train)
        if self._graph is None:
            if not hasattr(self, "_warm"):
                self._warm, self._side = 0, torch.cuda.Stream()
            if self._warm < 3:  # real training steps, on a side stream as capture requires
                self._side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(self._side):
                    self.optimizer.zero_grad(set_to_none=True)
                    loss = self.loss(x, n_train, beta)
                    loss.backward()
                    self._normalize()
                    self.optimizer.step()
                torch.cuda.current_stream().wait_stream(self._side)
                self._warm += 1
                return loss.detach()
            self._x = x.clone()
            self._beta = torch.tensor(float(beta), device=x.device, dtype=x.dtype)
            self.optimizer.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self._loss = self.loss(self._x, n_train, self._beta)
                    self._loss.backward()
                    self._normalize()
                    self.optimizer.step()
            except RuntimeError as err:
                raise RuntimeError(
                    f"cuda_graph: capturing the training step failed ({err}). Some operation of this model "
                    "cannot run inside a CUDA graph (for example one that reads a number back to the host). "
                    "A failed capture leaves this process's CUDA random-number state unusable, so start a new "
                    "process and train without cuda_graph (the run's checkpoints are unchanged).") from err
            self._graph = graph
        self._x.copy_(x)
        self._beta.fill_(float(beta))
        self._graph.replay()
        return self._loss.detach().clone()

    def _train_graph_period(self, epoch):
        """One epoch of captured steps (an incomplete last batch is dropped: shapes are static).
        Losses stay on the device and are read once, at the end of the epoch."""
        cfg, n_train = self.config, len(self.dataset.train)
        total, beta = torch.zeros((), device=self.device), self.beta()
        for step, [(j, index)] in self.dataset.micro_batches(epoch, cfg.seed, cfg.batch_size):
            if len(index) < cfg.batch_size:
                continue
            distributed.seed_micro_batch(cfg.seed, epoch, step, j)
            beta = self.beta()
            total += self._graph_step(self.dataset.binarized(self.dataset.train[index]), beta) * (
                len(index) / n_train)
            self.step += 1
        check_finite(total, "the loss", f"epoch {epoch + 1} (read once per epoch of a captured step)")
        return {"train_loss": total.item() / n_train, "beta": beta}

    def train_period(self, period):
        cfg, ctx = self.config, self.ctx
        if cfg.cuda_graph:
            return self._train_graph_period(self.epoch_offset + period)
        epoch = self.epoch_offset + period
        n_train = len(self.dataset.train)
        total, beta = 0.0, self.beta()
        batches = self.dataset.micro_batches(epoch, cfg.seed, cfg.batch_size, ctx.rank, ctx.world_size, cfg.accumulate)
        for step, micro in batches:
            beta = self.beta()
            self.optimizer.zero_grad(set_to_none=True)
            losses, points = [], 0
            for a, (j, index) in enumerate(micro):
                distributed.seed_micro_batch(cfg.seed, epoch, step, j)
                x = self.dataset.binarized(self.dataset.train[index])
                sync = a == len(micro) - 1 or not ctx.distributed
                with contextlib.nullcontext() if sync else self.loss.no_sync():
                    loss = self.loss(x, n_train, beta)
                    (loss / len(micro)).backward()
                losses.append(loss.detach())
                points += len(x)
            loss = distributed.all_reduce_mean(torch.stack(losses).mean())
            check_finite(loss, "the loss", f"epoch {epoch + 1}, step {self.step}")
            self._normalize()
            self.optimizer.step()
            total += loss.item() * points * ctx.world_size / n_train
            self.step += 1
        record = {"train_loss": total / n_train, "beta": beta}  # the KL weight of the epoch's last step
        period_metrics = getattr(self.objective, "period_metrics", None)  # e.g. SMI's forces and charts
        if period_metrics is not None:
            record.update(period_metrics(self.model, self.dataset))
        return record

    def validate(self):
        return mean_elbo(self.model, self.dataset, "valid", objective=self.valid_objective,
                         batch_size=self.config.eval_batch_size, seed=self.config.seed)

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
