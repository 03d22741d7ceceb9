"""Conditional Gaussian parts: p(z1|z2) of the two-level VAE (VampPrior paper eq. 13)."""

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn


class ConditionalGaussian(nn.Module):
    """p(z1|z2) = N(mu(z2), diag sigma²(z2)): ``net`` maps z2 ``(..., in_dim)`` to
    ``(..., hidden_dim)``; linear heads give mu and log sigma² ``(..., z_dim)`` (log-variance through
    hardtanh(``logvar_bounds``) if given, as the VampPrior authors do with (−6, 2))."""

    def __init__(self, net, hidden_dim, z_dim, logvar_bounds=None):
        super().__init__()
        self.net = net
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.logvar = nn.Linear(hidden_dim, z_dim)
        self.z_dim = int(z_dim)
        self.logvar_bounds = logvar_bounds

    def params(self, z2):
        """(mu, logvar), each ``(..., z_dim)``."""
        h = self.net(z2)
        logvar = self.logvar(h)
        if self.logvar_bounds is not None:
            logvar = F.hardtanh(logvar, *self.logvar_bounds)
        return self.loc(h), logvar

    def forward(self, z2):
        loc, logvar = self.params(z2)
        return dist.Normal(loc, torch.exp(0.5 * logvar), validate_args=False).to_event(1)
