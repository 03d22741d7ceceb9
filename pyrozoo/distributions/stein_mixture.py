"""The equal-weight diagonal Gaussian mixture whose components are Stein particles: q(m) of the design card "VAE with
a Stein-Learned Hyperprior", eq. 6, trained by Stein Mixture Inference (SMI) of Rønning, Nalisnick, Ley, Smyth &
Hamelryck (2024), "ELBOing Stein: Variational Bayes with Stein Mixture Inference", arXiv:2410.22948.

q(m) = (1/M) Σ_k N(m; a_k, diag s_k²), parameterised by ``loc`` a ``(M, d)`` and ``log_scale``
log s ``(M, d)``. Sampling a guide site with this distribution marks ``loc`` and ``log_scale`` as
Stein particles for :class:`pyrozoo.inference.smi.SMI`, which replaces the site by one draw per
component (:class:`ComponentDraws`) inside its particle plate.
"""

import math

import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistribution
from torch.distributions import constraints


def mixture_log_prob(value, loc, log_scale):
    """log (1/M) Σ_j N(value; a_j, diag s_j²): ``value`` ``(..., d)``, ``loc``/``log_scale``
    ``(M, d)`` -> ``(...)``."""
    v = value.unsqueeze(-2)
    lp = (-0.5 * ((v - loc) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(lp, -1) - math.log(loc.shape[-2])


class SteinMixture(TorchDistribution):
    """q(m) = (1/M) Σ_k N(m; loc_k, diag exp(log_scale_k)²): event shape ``(d,)``, batch ``()``.

    ``loc``, ``log_scale``: ``(M, d)``. Reparameterised (``rsample``) only when M = 1, where it is
    exactly ``Normal(loc[0], exp(log_scale[0]))``; for M > 1 plain Pyro inference sees a
    non-reparameterised site, and :class:`~pyrozoo.inference.smi.SMI` is the intended algorithm.
    """

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.real_vector

    def __init__(self, loc, log_scale, validate_args=None):
        if loc.dim() != 2 or loc.shape != log_scale.shape:
            raise ValueError(f"SteinMixture needs loc and log_scale of one shape (M, d), got {tuple(loc.shape)} "
                             f"and {tuple(log_scale.shape)}")
        self.loc, self.log_scale = loc, log_scale
        self.num_components = loc.shape[0]
        super().__init__(torch.Size(), loc.shape[-1:], validate_args=validate_args)

    @property
    def has_rsample(self):
        return self.num_components == 1

    @property
    def mean(self):
        return self.loc.mean(0)

    def rsample(self, sample_shape=torch.Size()):
        if self.num_components != 1:
            raise NotImplementedError("a mixture with M > 1 components is not reparameterisable; train it with SMI")
        return dist.Normal(self.loc[0], torch.exp(self.log_scale[0])).rsample(sample_shape)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            shape = torch.Size(sample_shape)
            idx = torch.randint(self.num_components, shape, device=self.loc.device)
            eps = torch.randn(shape + self.event_shape, dtype=self.loc.dtype, device=self.loc.device)
            return self.loc[idx] + torch.exp(self.log_scale[idx]) * eps

    def log_prob(self, value):
        return mixture_log_prob(value, self.loc, self.log_scale)

    def components(self):
        """The M components as ``Normal(...).to_event(1)`` with batch shape ``(M,)``."""
        return dist.Normal(self.loc, torch.exp(self.log_scale)).to_event(1)


class ComponentDraws(TorchDistribution):
    """One reparameterised draw per component of a :class:`SteinMixture`, scored by the mixture.

    Batch shape ``(M,) + (1,) * pad`` (so component k sits at the particle plate's index k),
    event ``(d,)``. ``rsample`` gives m_k = a_k + s_k ε; ``log_prob`` is log q̄(m) =
    logsumexp_j log N(m; a_j, s_j²) − log M with the mixture parameters held constant
    (stop-gradient; the per-particle objective L_k of :mod:`pyrozoo.inference.smi`). With
    ``score=True`` the value is the same but the gradient w.r.t. the parameters at the drawn m is added
    back (the total derivative, as ``Trace_ELBO`` takes it; its mean over all components' draws is zero).
    """

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, mixture, pad=1, score=False):
        self.mixture, self.pad, self.score = mixture, int(pad), bool(score)
        m, d = mixture.loc.shape
        super().__init__(torch.Size((m,) + (1,) * self.pad), torch.Size((d,)), validate_args=False)

    def _shaped(self, t):
        return t.reshape(t.shape[:1] + (1,) * self.pad + t.shape[1:])

    def expand(self, batch_shape, _instance=None):
        return dist.ExpandedDistribution(self, batch_shape)

    def rsample(self, sample_shape=torch.Size()):
        loc, scale = self._shaped(self.mixture.loc), self._shaped(torch.exp(self.mixture.log_scale))
        eps = torch.randn(torch.Size(sample_shape) + loc.shape, dtype=loc.dtype, device=loc.device)
        return loc + scale * eps

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value):
        loc, log_scale = self.mixture.loc, self.mixture.log_scale
        lp = mixture_log_prob(value, loc.detach(), log_scale.detach())
        if self.score:
            v = value.detach()
            lp = lp + mixture_log_prob(v, loc, log_scale) - mixture_log_prob(v, loc.detach(), log_scale.detach())
        return lp
