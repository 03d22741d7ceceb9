"""Guide parts of the Stein-hyperprior VAE (paper 000 §2): q(m) as a Stein mixture and one
encoder q(z|x, m) conditioned on m by concatenation or FiLM."""

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from pyrozoo.distributions.stein_mixture import SteinMixture
from pyrozoo.guides.encoders import flatten_event
from pyrozoo.nn.film import FiLM

CONDITIONING = ("concat", "film")


class SteinMixtureGuide(nn.Module):
    """q(m) = (1/M) Σ_k N(m; a_k, diag B_k) (paper 000 eq. 6) with particles ``loc`` a ``(M, d_m)``
    and ``log_scale`` = log B^{1/2} ``(M, d_m)``.

    Initialisation (issue 6): a_k ~ N(0, I) (``init_scale`` times), scale ``scale`` = 0.1.
    ``forward()`` returns a :class:`SteinMixture`, which marks both tensors as Stein particles.
    """

    def __init__(self, m_dim, num_components=5, scale=0.1, init_scale=1.0):
        super().__init__()
        if int(num_components) < 1:
            raise ValueError(f"the Stein mixture needs num_components (M) >= 1, got {num_components}")
        if int(m_dim) < 1:
            raise ValueError(f"m_dim must be positive, got {m_dim}")
        if not scale > 0:
            raise ValueError(f"the initial component scale must be positive, got {scale}")
        self.m_dim, self.num_components = int(m_dim), int(num_components)
        self.loc = nn.Parameter(init_scale * torch.randn(self.num_components, self.m_dim))
        self.log_scale = nn.Parameter(torch.full((self.num_components, self.m_dim), math.log(scale)))

    def forward(self):
        return SteinMixture(self.loc, self.log_scale)


class ConditionalGaussianEncoder(nn.Module):
    """q(z|x, m) = N(μ_φ(x, m), diag σ²_φ(x, m)) (paper 000 eqs. 7-8), one network for all m.

    ``conditioning="concat"``: ``net`` reads [flatten(x), m] ``(..., D + m_dim)``;
    ``"film"``: ``net`` reads flatten(x) ``(..., D)`` and its features are modulated by
    :class:`~pyrozoo.nn.FiLM` of m (cheaper: the network runs once per point, not per m).
    Output features ``(..., hidden_dim)`` feed linear μ and log σ² heads. ``x`` ``(B, *event)``
    and ``m`` ``(..., 1, m_dim)`` (or ``(m_dim,)``) broadcast to batch ``(..., B)``.
    """

    def __init__(self, net, hidden_dim, z_dim, m_dim, conditioning="concat", event_dim=1, logvar_bounds=None):
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ValueError(f"unknown conditioning {conditioning!r}; choose from {', '.join(CONDITIONING)}")
        self.net, self.conditioning = net, conditioning
        self.film = FiLM(m_dim, hidden_dim) if conditioning == "film" else None
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.logvar = nn.Linear(hidden_dim, z_dim)
        self.z_dim, self.m_dim, self.event_dim = int(z_dim), int(m_dim), int(event_dim)
        self.logvar_bounds = logvar_bounds

    def params(self, x, m):
        """(μ, log σ²), each ``(..., B, z_dim)``."""
        xf = flatten_event(x, self.event_dim)
        if self.conditioning == "concat":
            batch = torch.broadcast_shapes(xf.shape[:-1], m.shape[:-1])
            h = self.net(torch.cat([xf.expand(batch + xf.shape[-1:]), m.expand(batch + m.shape[-1:])], -1))
        else:
            h = self.film(self.net(xf), m)
        logvar = self.logvar(h)
        if self.logvar_bounds is not None:
            logvar = F.hardtanh(logvar, *self.logvar_bounds)
        return self.loc(h), logvar

    def forward(self, x, m):
        loc, logvar = self.params(x, m)
        return dist.Normal(loc, torch.exp(0.5 * logvar), validate_args=False).to_event(1)
