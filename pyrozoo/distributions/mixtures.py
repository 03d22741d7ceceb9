"""A mixture of diagonal Gaussians with a fast log-density, the distribution behind the MoG
prior and the VampPrior (VampPrior paper eq. 9 and §4 'alternative priors')."""

import math

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints


class DiagonalGaussianMixture(TorchDistribution):
    """p(z) = Σ_k π_k N(z; μ_k, diag σ_k²) over ``(D,)`` vectors.

    ``loc`` and ``logvar`` are ``(K, D)``; ``logits`` ``(K,)`` are the unnormalised log-weights
    (π = softmax(logits); uniform when ``None``). Batch shape ``()``, event shape ``(D,)``.

    ``log_prob`` writes the K Gaussian quadratic forms as matrix products,
        Σ_d (z_d − μ_kd)²/σ_kd² = (z²)·(1/σ_k²) − 2 z·(μ_k/σ_k²) + Σ_d μ_kd²/σ_kd²,
    so ``(..., D)`` inputs cost two ``(..., D) × (D, K)`` products instead of a
    ``(..., K, D)`` array, then takes a logsumexp over k.
    """

    arg_constraints = {"loc": constraints.real, "logvar": constraints.real}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, loc, logvar, logits=None, validate_args=None):
        if loc.dim() != 2 or loc.shape != logvar.shape:
            raise ValueError(f"loc and logvar must both be (K, D), got {tuple(loc.shape)} and {tuple(logvar.shape)}")
        self.loc, self.logvar = loc, logvar
        k = loc.shape[0]
        if logits is None:
            self.log_weights = loc.new_full((k,), -math.log(k))
        else:
            if logits.shape != (k,):
                raise ValueError(f"logits must be ({k},), got {tuple(logits.shape)}")
            self.log_weights = torch.log_softmax(logits, -1)
        super().__init__(torch.Size(), loc.shape[-1:], validate_args=validate_args)

    @property
    def weights(self):
        """π ``(K,)``, summing to one."""
        return self.log_weights.exp()

    def expand(self, batch_shape, _instance=None):
        return self if tuple(batch_shape) == () else ExpandedMixture(self, batch_shape)

    def component_log_prob(self, z):
        """log N(z; μ_k, σ_k²) for every component: ``(..., D)`` → ``(..., K)``."""
        prec = torch.exp(-self.logvar)  # (K, D)
        quad = (z * z) @ prec.T - 2 * z @ (self.loc * prec).T + (self.loc ** 2 * prec).sum(-1)
        const = self.logvar.sum(-1) + self.loc.shape[-1] * math.log(2 * math.pi)
        return -0.5 * (quad + const)

    def log_prob(self, z):
        return torch.logsumexp(self.component_log_prob(z) + self.log_weights, dim=-1)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            shape = torch.Size(sample_shape)
            k = torch.distributions.Categorical(logits=self.log_weights).sample(shape)
            eps = torch.randn(shape + self.loc.shape[-1:], dtype=self.loc.dtype, device=self.loc.device)
            return self.loc[k] + torch.exp(0.5 * self.logvar[k]) * eps

    @property
    def mean(self):
        return (self.weights.unsqueeze(-1) * self.loc).sum(0)


class ExpandedMixture(TorchDistribution):
    """A :class:`DiagonalGaussianMixture` broadcast to a batch shape (what ``pyro.plate`` asks for)."""

    support = constraints.real_vector
    arg_constraints = {}
    has_rsample = False

    def __init__(self, base, batch_shape):
        self.base = base
        super().__init__(torch.Size(batch_shape), base.event_shape, validate_args=False)

    def expand(self, batch_shape, _instance=None):
        return ExpandedMixture(self.base, batch_shape)

    def log_prob(self, z):
        return self.base.log_prob(z).expand(torch.broadcast_shapes(z.shape[:-1], self.batch_shape))

    def sample(self, sample_shape=torch.Size()):
        return self.base.sample(torch.Size(sample_shape) + self.batch_shape)

    @property
    def mean(self):
        return self.base.mean.expand(self.batch_shape + self.event_shape)
