"""Likelihood parts: turn decoder output into a distribution over one data point ``x``.

Each likelihood knows the data's ``event_shape``, how many numbers per data dimension it
reads from the decoder (``params_per_dim``), the support it accepts (``support``) and how to
reject data outside it (:meth:`Likelihood.validate`).
"""

import math

import pyro.distributions as dist
import torch
from torch import nn

from pyrozoo.distributions.bernoulli import BernoulliLogits
from pyrozoo.distributions.discretized_logistic import DiscretizedLogistic


class Likelihood(nn.Module):
    """Base class. ``forward(params)`` with params ``(..., params_per_dim * prod(event_shape))``
    returns a distribution with batch shape ``(...)`` and event shape ``event_shape``."""

    params_per_dim = 1
    support = "real"

    def __init__(self, event_shape):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        self.num_dims = math.prod(self.event_shape)

    def _split(self, params):
        batch = params.shape[:-1]
        if params.shape[-1] != self.params_per_dim * self.num_dims:
            raise ValueError(f"decoder gave {params.shape[-1]} outputs, the likelihood needs "
                             f"{self.params_per_dim} x {self.num_dims}")
        chunks = params.chunk(self.params_per_dim, dim=-1) if self.params_per_dim > 1 else (params,)
        return [c.reshape(batch + self.event_shape) for c in chunks]

    def validate(self, x):
        """Raise ``ValueError`` naming the problem if ``x`` (shape ``(N, *event_shape)``) is not
        finite, has the wrong shape, or lies outside this likelihood's support."""
        if not torch.is_tensor(x):
            raise ValueError(f"data must be a torch.Tensor, got {type(x).__name__}")
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"data has shape {tuple(x.shape)}, expected (N, {', '.join(map(str, self.event_shape))})")
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero()[:5].flatten().tolist()
            raise ValueError(f"data contains NaN or inf values (first rows: {bad})")
        self._check_support(x)

    def _check_support(self, x):
        pass

    def mean(self, params):
        """The mean of the distribution (for plots): ``(..., *event_shape)``."""
        return self(params).mean


class BernoulliLikelihood(Likelihood):
    """p(x|z) = Π_d Bernoulli(x_d; sigmoid(logits_d)); data must be in {0, 1}.

    ``probs_floor`` ε (None: no bound) clamps every probability to [ε, 1 − ε] (the logits to
    ±log((1 − ε)/ε), the same bound and the same zero gradient beyond it), so that no pixel costs more
    than −log ε nats: the VampPrior authors' ``log_Bernoulli`` with ε = 1e-5, in training and in
    their test log-likelihood alike.
    """

    support = "binary"

    def __init__(self, event_shape, probs_floor=None):
        super().__init__(event_shape)
        if probs_floor is not None and not 0 < float(probs_floor) < 0.5:
            raise ValueError(f"probs_floor must be in (0, 0.5) or None, got {probs_floor!r}")
        self.probs_floor = None if probs_floor is None else float(probs_floor)

    def forward(self, params):
        (logits,) = self._split(params)
        if self.probs_floor is not None:
            bound = math.log1p(-self.probs_floor) - math.log(self.probs_floor)
            logits = logits.clamp(-bound, bound)
        return BernoulliLogits(logits, len(self.event_shape), validate_args=False)

    def _check_support(self, x):
        if not ((x == 0) | (x == 1)).all():
            raise ValueError("the Bernoulli likelihood needs binary data with values in {0, 1}; "
                             f"got values in [{x.min().item():.3g}, {x.max().item():.3g}] "
                             "(binarise the data or choose a continuous likelihood)")


class GaussianLikelihood(Likelihood):
    """p(x|z) = N(x; mu(z), sigma²) per dimension.

    ``scale`` is a fixed positive number, ``"learned"`` (one learnable sigma per data dimension,
    shared across data points) or ``"decoder"`` (the decoder outputs log sigma per dimension).
    """

    def __init__(self, event_shape, scale=1.0):
        super().__init__(event_shape)
        self.mode = scale if isinstance(scale, str) else "fixed"
        if self.mode not in ("fixed", "learned", "decoder"):
            raise ValueError(f"unknown Gaussian scale {scale!r}; use a positive number, 'learned' or 'decoder'")
        if self.mode == "fixed":
            if not float(scale) > 0:
                raise ValueError(f"the Gaussian scale must be positive, got {scale}")
            self.register_buffer("log_scale", torch.full(self.event_shape, math.log(float(scale))))
        elif self.mode == "learned":
            self.log_scale = nn.Parameter(torch.zeros(self.event_shape))
        self.params_per_dim = 2 if self.mode == "decoder" else 1

    def forward(self, params):
        parts = self._split(params)
        log_scale = parts[1] if self.mode == "decoder" else self.log_scale
        return dist.Normal(parts[0], log_scale.exp(), validate_args=False).to_event(len(self.event_shape))


class DiscretizedLogisticLikelihood(Likelihood):
    """Discretised logistic per dimension over ``num_bins`` grey levels in [0, 1] (VampPrior §5.1).

    The decoder outputs a location and a log-scale per dimension. Data must lie in [0, 1] on
    the grid ``k/(num_bins-1)``.
    """

    params_per_dim = 2
    support = "unit"

    def __init__(self, event_shape, num_bins=256):
        super().__init__(event_shape)
        self.num_bins = int(num_bins)

    def forward(self, params):
        loc, log_scale = self._split(params)
        return dist.Independent(DiscretizedLogistic(torch.sigmoid(loc), log_scale.clamp(min=-7.0), self.num_bins),
                                len(self.event_shape))

    def _check_support(self, x):
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"the discretised logistic likelihood needs data in [0, 1]; got values in "
                             f"[{x.min().item():.3g}, {x.max().item():.3g}]")
        levels = self.num_bins - 1
        off = (x * levels - torch.round(x * levels)).abs().max().item()
        if off > 1e-3:
            raise ValueError(f"data are not on the grid k/{levels} of {self.num_bins} levels "
                             f"(largest offset {off:.3g} bins); set num_bins to the data's number of levels")


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood,
               "dlogistic": DiscretizedLogisticLikelihood}


def make_likelihood(name, event_shape, **options):
    """Build a likelihood by name (``bernoulli``, ``gaussian``, ``dlogistic``)."""
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose from {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name](event_shape, **options)
