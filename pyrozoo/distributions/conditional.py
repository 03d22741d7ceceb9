"""Amortised diagonal Gaussians: the head every encoder shares (:class:`GaussianHead`) and
p(z1|z2) of the two-level VAE (Tomczak & Welling 2018, arXiv:1705.07120, eq. 13)."""

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn


class GaussianHead(nn.Module):
    """Two linear heads from features ``(..., hidden_dim)`` to μ and log σ² ``(..., z_dim)``, the
    log-variance optionally through hardtanh(``logvar_bounds``) (the VampPrior authors' (−6, 2)).
    Subclasses compute the features and call :meth:`heads`; ``forward`` returns N(μ, diag σ²)."""

    def __init__(self, hidden_dim, z_dim, logvar_bounds=None):
        super().__init__()
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.logvar = nn.Linear(hidden_dim, z_dim)
        self.z_dim = int(z_dim)
        self.logvar_bounds = logvar_bounds

    def heads(self, h):
        """(μ, log σ²) of features ``h``."""
        logvar = self.logvar(h)
        if self.logvar_bounds is not None:
            logvar = F.hardtanh(logvar, *self.logvar_bounds)
        return self.loc(h), logvar

    def forward(self, *inputs):
        loc, logvar = self.params(*inputs)
        return dist.Normal(loc, torch.exp(0.5 * logvar), validate_args=False).to_event(1)


class ConditionalGaussian(GaussianHead):
    """p(z1|z2) = N(mu(z2), diag sigma²(z2)): ``net`` maps z2 ``(..., in_dim)`` to
    ``(..., hidden_dim)``; linear heads give mu and log sigma² ``(..., z_dim)`` (log-variance through
    hardtanh(``logvar_bounds``) if given, as the VampPrior authors do with (−6, 2))."""

    def __init__(self, net, hidden_dim, z_dim, logvar_bounds=None):
        super().__init__(hidden_dim, z_dim, logvar_bounds)
        self.net = net

    def params(self, z2):
        """(mu, logvar), each ``(..., z_dim)``."""
        return self.heads(self.net(z2))
