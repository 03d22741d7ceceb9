"""What the experiment trackers show beyond a period's metrics record, measured on the model.

:class:`PeriodProbe` is built by the run engine with the model, the data and the training
strategy, and handed to the loggers; the training loop knows nothing about it. After each
period a logger asks it for the learning rates, the KL and reconstruction terms of a few
validation points, and small grids of samples and reconstructions. Its random draws run on a
forked random state seeded afresh each period (the same prior draws every time, so the sample
grids show the model change, not the noise), so logging never changes what training draws next:
a run trains to the same weights with and without trackers, and a resumed run reproduces an
uninterrupted one.
"""

from __future__ import annotations

import torch

from pyrozoo.inference import distributed
from pyrozoo.inference.checkpoint import rng_state, set_rng_state


def learning_rates(strategy) -> dict:
    """The current learning rate of every optimiser parameter group of ``strategy`` (and of its
    ``inner`` strategy, e.g. the current phase of two-phase training): ``{"lr": ...}`` for a single
    optimiser called ``optimizer``, else ``lr_<name>`` (``lr_enc``, ``lr_dec``), with ``_group<i>``
    for groups after the first. Groups without parameters are left out."""
    found = {}
    for owner in (strategy, getattr(strategy, "inner", None)):
        for attr, value in (vars(owner).items() if owner is not None else ()):
            if attr.startswith("_") or not isinstance(value, torch.optim.Optimizer):
                continue
            name = "lr" if attr == "optimizer" else "lr_" + attr.removesuffix("_opt").removesuffix("_optimizer")
            for i, group in enumerate(value.param_groups):
                if group["params"]:
                    found[name if i == 0 else f"{name}_group{i}"] = float(group["lr"])
    return found


def is_image_data(dataset) -> bool:
    """Whether ``dataset`` holds images ``(N, C, H, W)`` with one or three channels."""
    x = dataset.test
    return dataset.support != "sequence" and x.dim() == 4 and x.shape[1] in (1, 3)


class PeriodProbe:
    """Per-period values for the loggers, computed from ``model`` (the one being trained).

    ``dataset``: the run's data; ``strategy``: the training strategy (for its learning rates).
    ``kl``: measure the KL and reconstruction terms (nats per point) on the first ``kl_points``
    validation points (not in a distributed run, whose evaluation is collective while the
    loggers run on rank 0 alone). ``images``: draw grids of ``num_samples`` samples and of ``num_recon``
    validation images above their reconstructions (image data only). ``seed`` seeds the forked
    random state of every measurement.

    Calling the probe with a step returns ``{"scalars": {name: float}, "images": {name: (3, H, W)}}``
    (images in [0, 1]); the result of the last step is cached, so several loggers share one
    measurement.
    """

    def __init__(self, model, dataset, strategy=None, *, kl: bool = True, images: bool = True, kl_points: int = 1000,
                 num_samples: int = 16, num_recon: int = 8, seed: int = 0):
        self.model, self.dataset, self.strategy = model, dataset, strategy
        self.kl, self.kl_points = kl, int(kl_points)
        self.images = images and is_image_data(dataset)
        self.num_samples, self.num_recon, self.seed = int(num_samples), int(num_recon), int(seed)
        self._step, self._result = None, None

    def __call__(self, step: int) -> dict:
        if step != self._step:
            self._result, self._step = self._measure(), step
        return self._result

    def _measure(self) -> dict:
        scalars = learning_rates(self.strategy) if self.strategy is not None else {}
        images = {}
        if not (self.kl or self.images):
            return {"scalars": scalars, "images": images}
        saved, training = rng_state(), self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                torch.manual_seed(self.seed)
                if self.kl and not distributed.context().distributed:  # elbo_terms shares batches out over
                    scalars.update(self._kl_terms())                        # ranks; loggers run on rank 0 only
                if self.images:
                    torch.manual_seed(self.seed)
                    images = self._grids()
        finally:
            set_rng_state(saved)
            self.model.train(training)
        return {"scalars": scalars, "images": images}

    def _kl_terms(self) -> dict:
        from pyrozoo.evaluation.likelihood import elbo_terms
        x = self.dataset.valid[:self.kl_points].to(_device(self.model))
        terms = elbo_terms(self.model, x)
        return {"valid_kl": terms["kl"].mean().item(), "valid_reconstruction": terms["reconstruction"].mean().item()}

    def _grids(self) -> dict:
        from torchvision.utils import make_grid
        samples = self.model.sample(self.num_samples).float().clamp(0, 1).cpu()
        x = self.dataset.valid[:self.num_recon].to(_device(self.model))
        recon = self.model.reconstruct(x).float().clamp(0, 1).cpu()
        pairs = torch.cat([x.float().cpu(), recon])
        return {"samples": make_grid(samples, nrow=int(len(samples) ** 0.5 + 0.5), padding=1, pad_value=1.0),
                "reconstructions": make_grid(pairs, nrow=len(x), padding=1, pad_value=1.0)}


def _device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")
