"""Prior parts: modules whose ``forward()`` returns a distribution over z with event shape ``(z_dim,)``."""

import pyro.distributions as dist
import torch
from torch import nn


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
        return dist.Normal(zero, torch.ones_like(zero), validate_args=False).to_event(1)
