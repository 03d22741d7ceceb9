"""Prior parts: modules whose ``forward()`` returns a distribution over z with event shape ``(z_dim,)``.

The mixture-of-Gaussians prior and the VampPrior follow Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS,
arXiv:1705.07120.
"""

import pyro.distributions as dist
import torch
from torch import nn

from pyrozoo.distributions.mixtures import DiagonalGaussianMixture
from pyrozoo.geometry.heat_kernel import HeatKernel, geodesic_options


class Prior(nn.Module):
    """Base class of unconditional priors; ``forward()`` returns p(z), batch shape ``()``."""

    def __init__(self, z_dim):
        super().__init__()
        if int(z_dim) < 1:
            raise ValueError(f"z_dim must be positive, got {z_dim}")
        self.z_dim = int(z_dim)

    def log_prob(self, z):
        """log p(z) for ``z`` of shape ``(..., z_dim)``; returns ``(...)``."""
        return self().log_prob(z)


class StandardNormalPrior(Prior):
    """p(z) = N(0, I)."""

    def __init__(self, z_dim):
        super().__init__(z_dim)
        self.register_buffer("_zero", torch.zeros(self.z_dim))

    def forward(self):
        zero = self._zero
        d = dist.Normal(zero, torch.ones_like(zero), validate_args=False).to_event(1)
        d.standard_normal = True  # the ELBO's closed-form KL takes a shorter form against it
        return d


class MixtureOfGaussiansPrior(Prior):
    """p(z) = Σ_k π_k N(μ_k, diag σ_k²) with K learnable means and log-variances (Tomczak &
    Welling 2018, §3 'a comparison to a mixture of Gaussians prior', and §4).

    ``learn_weights=False`` keeps π uniform (1/K, as in the paper); ``True`` learns softmax
    logits. Means start at ``N(0, init_scale²)``, log-variances at 0.
    """

    def __init__(self, z_dim, num_components=500, learn_weights=False, init_scale=1.0):
        super().__init__(z_dim)
        k = _check_components(num_components)
        self.loc = nn.Parameter(init_scale * torch.randn(k, self.z_dim))
        self.logvar = nn.Parameter(torch.zeros(k, self.z_dim))
        self.logits = nn.Parameter(torch.zeros(k)) if learn_weights else None

    def forward(self):
        return DiagonalGaussianMixture(self.loc, self.logvar, self.logits)


class VampPrior(Prior):
    """The VampPrior p(z) = Σ_k π_k q(z|u_k) (Tomczak & Welling 2018, eq. 9; weighted version eq. 16).

    ``encode`` maps inputs ``(K, *event_shape)`` to the Gaussian parameters (mu, logvar), each
    ``(K, z_dim)``; it is the *same* encoder as the model's q(z|x) (pass ``encoder.params``),
    so gradients of log p(z) reach both the pseudo-inputs and the encoder. It is held as a plain
    reference, not a submodule, so the encoder's parameters are registered once (in the model).

    Pseudo-inputs u_k = hardtanh_[0,1](W_k) with W ``(K, *event_shape)`` a parameter stored
    directly (cheaper than the authors' hardtanh(Linear(eye(K))), same function class).
    ``init``: ``"normal"`` draws W from N(0.05, 0.01²) (the authors' choice) or a tensor of
    training images ``(≥K, *event_shape)`` whose first K become W plus N(0, 0.01²) noise.
    ``learnable=False`` fixes u to the given images (VampPrior-data); ``weighted=True`` learns
    softmax weights π (eq. 16), otherwise π = 1/K.
    """

    def __init__(self, z_dim, encode, event_shape, num_components=500, init="normal", learnable=True,
                 weighted=False):
        super().__init__(z_dim)
        k = _check_components(num_components)
        self.event_shape = tuple(int(s) for s in event_shape)
        if not callable(encode):
            raise ValueError("VampPrior needs the encoder's parameter function, e.g. encode=encoder.params")
        object.__setattr__(self, "_encode", encode)
        if isinstance(init, str):
            if init != "normal":
                raise ValueError(f"unknown pseudo-input init {init!r}; use 'normal' or a tensor of training images")
            if not learnable:
                raise ValueError("VampPrior-data (learnable=False) needs training images as init")
            w = 0.05 + 0.01 * torch.randn((k,) + self.event_shape)
        else:
            if tuple(init.shape[1:]) != self.event_shape or len(init) < k:
                raise ValueError(f"pseudo-input images must be (>= {k}, {', '.join(map(str, self.event_shape))}), "
                                 f"got {tuple(init.shape)}")
            w = init[:k].detach().clone().float()
            if learnable:
                w = w + 0.01 * torch.randn_like(w)
        if learnable:
            self.pseudo_weights = nn.Parameter(w)
        else:
            self.register_buffer("pseudo_weights", w)
        self.learnable = learnable
        self.logits = nn.Parameter(torch.zeros(k)) if weighted else None

    def pseudo_inputs(self):
        """u ``(K, *event_shape)`` in [0, 1]."""
        return torch.clamp(self.pseudo_weights, 0.0, 1.0) if self.learnable else self.pseudo_weights

    def forward(self):
        loc, logvar = self._encode(self.pseudo_inputs())
        return DiagonalGaussianMixture(loc, logvar, self.logits)

    @torch.no_grad()
    def sample_component(self, k, n):
        """``n`` draws of z from the k-th component q(z|u_k): ``(n, z_dim)``."""
        loc, logvar = self._encode(self.pseudo_inputs()[k:k + 1])
        return loc + torch.exp(0.5 * logvar) * torch.randn((int(n),) + loc.shape[1:], dtype=loc.dtype,
                                                            device=loc.device)


def _check_components(k):
    if int(k) < 1:
        raise ValueError(f"the number of mixture components must be >= 1, got {k}")
    return int(k)


class HeatKernelPrior(Prior):
    """p(z) = HeatKernel(mu_p, t_p) under a decoder's pull-back metric (Kalatzis et al. 2020,
    eq. 3.7): Brownian motion on the latent manifold started at a learnable centre ``mu_p``
    ``(z_dim,)`` and run for a learnable scalar time ``t_p`` > 0 (stored as log t_p), the
    R-VAE's only extra prior parameters.

    The metric is not owned here: :meth:`bind` hands over a callable ``(n, d) -> (n, d, d)``
    (the decoder's :class:`~pyrozoo.geometry.metric.PullbackMetric`), which every density
    evaluation and every draw uses. ``sampler``, ``num_steps`` and ``distance`` are passed to
    :class:`~pyrozoo.geometry.heat_kernel.HeatKernel`; draws default to Brownian motion (eq. 3.15).
    ``distance="geodesic"`` (the paper's) solves geodesics with
    :func:`~pyrozoo.geometry.heat_kernel.geodesic_options`, measuring chords with the immersion given to
    :meth:`bind` when there is one.
    ``base_measure`` must match the posterior's (the R-VAE uses ``"det-g"`` for both; use
    ``"lebesgue"`` beside an ordinary Gaussian encoder).
    """

    def __init__(self, z_dim, t=1.0, metric_fn=None, sampler="brownian", num_steps=10, distance="local",
                 base_measure="riemannian"):
        super().__init__(z_dim)
        if not float(t) > 0:
            raise ValueError(f"the prior's diffusion time t must be positive, got {t}")
        self.loc = nn.Parameter(torch.zeros(self.z_dim))
        self.log_t = nn.Parameter(torch.tensor(float(t)).log())
        self.options = dict(sampler=sampler, num_steps=int(num_steps), distance=distance, base_measure=base_measure)
        self.metric_fn, self.immersion = metric_fn, None

    def bind(self, metric_fn, immersion=None):
        """Use ``metric_fn`` (a callable ``(n, d) -> (n, d, d)``) as the latent metric and, for geodesics,
        ``immersion`` (the decoder as a map ``(n, d) -> (n, D')`` whose pull-back metric that is); returns self."""
        self.metric_fn, self.immersion = metric_fn, immersion
        return self

    @property
    def t(self):
        """The diffusion time t_p (a 0-d tensor)."""
        return self.log_t.exp()

    def forward(self):
        if self.metric_fn is None:
            raise ValueError("HeatKernelPrior has no metric; call bind(metric_fn) first")
        return HeatKernel(self.loc, self.t, self.metric_fn, geodesic_kwargs=geodesic_options(self.immersion),
                          **self.options)
