"""Guide parts of the Stein-hyperprior VAE of the design card "VAE with a Stein-Learned Hyperprior", §2: q(m) as a
Stein mixture and one encoder q(z|x, m) conditioned on m by concatenation or FiLM. q(m) is trained by Stein Mixture
Inference (SMI) of Rønning, Nalisnick, Ley, Smyth & Hamelryck (2024), "ELBOing Stein: Variational Bayes with Stein
Mixture Inference", arXiv:2410.22948."""

import math

import torch
from torch import nn

from pyrozoo.distributions.stein_mixture import SteinMixture
from pyrozoo.distributions.conditional import GaussianHead
from pyrozoo.guides.encoders import broadcast_cat, flatten_event
from pyrozoo.nn.film import FiLM

CONDITIONING = ("concat", "film")


class SteinMixtureGuide(nn.Module):
    """q(m) = (1/M) Σ_k N(m; a_k, diag B_k) (design card, eq. 6) with particles ``loc`` a ``(M, d_m)``
    and ``log_scale`` = log B^{1/2} ``(M, d_m)``.

    Initialisation (not fixed by the design card's §2.1): a_k ~ N(0, I) (``init_scale`` times), scale
    ``scale`` = 0.1.
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


class ConditionalGaussianEncoder(GaussianHead):
    """q(z|x, m) = N(μ_φ(x, m), diag σ²_φ(x, m)) (design card, eqs. 7-8), one network for all m.

    ``conditioning="concat"``: ``net`` reads [flatten(x), m] ``(..., D + m_dim)``;
    ``"film"``: ``net`` reads flatten(x) ``(..., D)`` and its features are modulated by
    :class:`~pyrozoo.nn.FiLM` of m (cheaper: the network runs once per point, not per m).
    Output features ``(..., hidden_dim)`` feed linear μ and log σ² heads. ``x`` ``(B, *event)``
    and ``m`` ``(..., 1, m_dim)`` (or ``(m_dim,)``) broadcast to batch ``(..., B)``.
    """

    def __init__(self, net, hidden_dim, z_dim, m_dim, conditioning="concat", event_dim=1, logvar_bounds=None):
        if conditioning not in CONDITIONING:
            raise ValueError(f"unknown conditioning {conditioning!r}; choose from {', '.join(CONDITIONING)}")
        film = FiLM(m_dim, hidden_dim) if conditioning == "film" else None  # initialised before the heads
        super().__init__(hidden_dim, z_dim, logvar_bounds)
        self.net, self.conditioning, self.film = net, conditioning, film
        self.m_dim, self.event_dim = int(m_dim), int(event_dim)

    def params(self, x, m):
        """(μ, log σ²), each ``(..., B, z_dim)``."""
        xf = flatten_event(x, self.event_dim)
        h = self.net(broadcast_cat(xf, m)) if self.conditioning == "concat" else self.film(self.net(xf), m)
        return self.heads(h)
