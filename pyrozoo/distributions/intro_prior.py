"""Adaptive log-variance soft clipping and mixture responsibilities of Soft-IntroVAE with a learned prior:
Athanasiadis, Lindsten & Felsberg (2025), "Prior Learning in Introspective VAEs", TMLR, arXiv:2408.13805,
§4.2.2-4.2.3, eqs. 10-11 and appendix C.1."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from pyrozoo.distributions.mixtures import DiagonalGaussianMixture
from pyrozoo.distributions.priors import MixtureOfGaussiansPrior, VampPrior


def soft_clip(x, low, high, k=10.0):
    """Soft-clip ``x`` into ``[low, high]`` per trailing dimension (eq. 10 / eq. 51):

        f_c(x) = x + (1/β)·log[(1 + exp(β(a − x))) / (1 + exp(β(x − b)))],  β = K / (b − a).

    ``x`` is ``(..., D)``; ``low``/``high`` are ``(D,)`` (or broadcastable) with ``high > low``;
    ``k`` is the steepness K (10 keeps at least 85 % of the range, eq. 50). Written with
    softplus, so it is exact and stable for large ``|β x|``. Returns a tensor shaped like ``x``.
    """
    if not float(k) > 0:
        raise ValueError(f"the soft-clipping steepness K must be positive, got {k}")
    low = torch.as_tensor(low, dtype=x.dtype, device=x.device)
    high = torch.as_tensor(high, dtype=x.dtype, device=x.device)
    if not bool((high > low).all()):
        raise ValueError("soft clipping needs high > low in every dimension")
    beta = float(k) / (high - low)
    return x + (F.softplus(beta * (low - x)) - F.softplus(beta * (x - high))) / beta


class ClippedMixturePrior(MixtureOfGaussiansPrior):
    """A :class:`MixtureOfGaussiansPrior` whose log-variances are read through :func:`soft_clip`
    once bounds are set (Athanasiadis et al. 2025, §4.2.2: [a_j, b_j] are the min and max component
    log-variance of latent dimension j when the adversarial phase starts).

    ``set_bounds()`` fixes the bounds from the current log-variances (or given ``(D,)`` tensors)
    and switches clipping on; ``forward()`` then returns the mixture with clipped log-variances,
    so every reader of the prior (sampling, densities, responsibilities) sees the clipped values.
    Dimensions whose min equals max get a bound of ±``min_width``/2 around that value.
    """

    def __init__(self, z_dim, num_components=64, learn_weights=False, init_scale=1.0, k=10.0):
        super().__init__(z_dim, num_components, learn_weights=learn_weights, init_scale=init_scale)
        if not float(k) > 0:
            raise ValueError(f"the soft-clipping steepness K must be positive, got {k}")
        self.k = float(k)
        self.register_buffer("clip_low", torch.zeros(self.z_dim))
        self.register_buffer("clip_high", torch.zeros(self.z_dim))
        self.register_buffer("clipping", torch.tensor(False))

    @classmethod
    def from_parameters(cls, loc, logvar, logits=None, k=10.0):
        """A prior initialised at component means ``loc`` and log-variances ``logvar`` ``(K, D)``
        (and ``logits`` ``(K,)`` for learnable weights); used to turn a VampPrior into a MoG."""
        prior = cls(loc.shape[-1], loc.shape[0], learn_weights=logits is not None, k=k)
        with torch.no_grad():
            prior.loc.copy_(loc)
            prior.logvar.copy_(logvar)
            if logits is not None:
                prior.logits.copy_(logits)
        return prior.to(device=loc.device, dtype=loc.dtype)

    @torch.no_grad()
    def set_bounds(self, low=None, high=None, min_width=1e-3):
        """Switch clipping on with bounds ``(D,)`` (default: min/max of the current log-variances
        over components). Returns self."""
        low = self.logvar.min(0).values if low is None else torch.as_tensor(low).to(self.logvar)
        high = self.logvar.max(0).values if high is None else torch.as_tensor(high).to(self.logvar)
        if low.shape != (self.z_dim,) or high.shape != (self.z_dim,):
            raise ValueError(f"clipping bounds must be ({self.z_dim},) each")
        narrow = (high - low) < min_width
        mid = 0.5 * (high + low)
        low = torch.where(narrow, mid - 0.5 * min_width, low)
        high = torch.where(narrow, mid + 0.5 * min_width, high)
        self.clip_low.copy_(low)
        self.clip_high.copy_(high)
        self.clipping.fill_(True)
        return self

    def clipped_logvar(self):
        """The component log-variances as the prior reads them: ``(K, D)``."""
        if bool(self.clipping):
            return soft_clip(self.logvar, self.clip_low, self.clip_high, self.k)
        return self.logvar

    def forward(self):
        return DiagonalGaussianMixture(self.loc, self.clipped_logvar(), self.logits)


def responsibilities(mixture, z):
    """Per-sample responsibilities c_i^s = w_i N(z|μ_i, σ_i²) / Σ_l w_l N(z|μ_l, σ_l²) (eq. 58):
    ``z`` ``(..., D)`` → ``(..., K)``, summing to one over the last dim."""
    return torch.softmax(mixture.component_log_prob(z) + mixture.log_weights, dim=-1)


def normalized_entropy(c):
    """H(C)/log M for a probability vector ``c`` ``(M,)`` (footnote 1 of §4.2.3); in [0, 1].
    M = 1 gives 0."""
    m = c.shape[-1]
    h = -torch.special.xlogy(c, c).sum(-1)
    return h / math.log(m) if m > 1 else h * 0


class RealVampPrior(VampPrior):
    """A VampPrior whose pseudo-inputs are unbounded real vectors (for continuous data such as the
    2D sets; :class:`VampPrior` clamps them to [0, 1] for images). ``init`` is a tensor
    ``(≥K, *event_shape)`` of starting points (e.g. data or N(0, 1) draws)."""

    def __init__(self, z_dim, encode, event_shape, num_components=64, init=None, weighted=False):
        if init is None:
            init = torch.randn((int(num_components),) + tuple(int(s) for s in event_shape))
        super().__init__(z_dim, encode, event_shape, num_components, init=init, learnable=True, weighted=weighted)

    def pseudo_inputs(self):
        """u ``(K, *event_shape)``, unconstrained."""
        return self.pseudo_weights


class EvalNormParams:
    """``encoder.params`` with the encoder's batch-norm layers in eval mode: the posterior the encoder
    gives an input, normalised by the running statistics of the data, whatever mode the model is in.

    A VampPrior's components are q(z|u_k) at the pseudo-inputs u_k. Run through a
    :class:`~pyrozoo.nn.residual.ResidualEncoderNet` in training mode, the K pseudo-inputs would be
    normalised by their own batch statistics (so q(z|u_k) would depend on the other u_l and differ from
    the encoder applied to u_k alone) and would move the running statistics of the data. Called with
    ``x`` ``(K, *event_shape)``, returns ``(loc, logvar)`` each ``(K, z_dim)``; gradients reach the
    inputs and the encoder's weights; running statistics are neither used from the batch nor updated.
    Each call restores the modes it found.
    """

    def __init__(self, encoder):
        self.encoder = encoder

    def __call__(self, x):
        norms = [m for m in self.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
        for m in norms:
            m.eval()
        try:
            return self.encoder.params(x)
        finally:
            for m in norms:
                m.train()
