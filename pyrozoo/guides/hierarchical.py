"""Encoder parts conditioned on data and on a higher latent: q(z1|x, z2) of the two-level VAE
(VampPrior paper eq. 14)."""

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from pyrozoo.guides.encoders import flatten_event


class JointGaussianEncoder(nn.Module):
    """q(z1|x, z2) = N(mu(x, z2), diag sigma²(x, z2)) (VampPrior paper eq. 14).

    ``x_net`` maps flattened data ``(..., D)`` to ``(..., hx)``, ``z_net`` maps z2 ``(..., z2_dim)``
    to ``(..., hz)``; ``joint_net`` maps their concatenation to ``(..., hidden_dim)``, followed by
    linear mu and log-variance heads (log-variance through hardtanh(``logvar_bounds``) if given).
    z2 may carry extra leading (particle) dims: the data features are broadcast to them.
    """

    def __init__(self, x_net, z_net, joint_net, hidden_dim, z_dim, event_dim=1, logvar_bounds=None):
        super().__init__()
        self.x_net, self.z_net, self.joint_net = x_net, z_net, joint_net
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.logvar = nn.Linear(hidden_dim, z_dim)
        self.event_dim = int(event_dim)
        self.z_dim = int(z_dim)
        self.logvar_bounds = logvar_bounds

    def params(self, x, z2):
        """(mu, logvar) ``(..., z_dim)`` with ``...`` = broadcast of x's batch and z2's batch dims."""
        hx = self.x_net(flatten_event(x, self.event_dim))
        hz = self.z_net(z2)
        batch = torch.broadcast_shapes(hx.shape[:-1], hz.shape[:-1])
        h = self.joint_net(torch.cat([hx.expand(batch + hx.shape[-1:]), hz.expand(batch + hz.shape[-1:])], -1))
        logvar = self.logvar(h)
        if self.logvar_bounds is not None:
            logvar = F.hardtanh(logvar, *self.logvar_bounds)
        return self.loc(h), logvar

    def forward(self, x, z2):
        loc, logvar = self.params(x, z2)
        return dist.Normal(loc, torch.exp(0.5 * logvar), validate_args=False).to_event(1)
