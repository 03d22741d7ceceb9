"""Encoder parts: q(z|x) as a distribution object, amortised by a network."""

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn


def flatten_event(x, event_dim):
    """Flatten the last ``event_dim`` dims of ``x``: ``(..., *event_shape) -> (..., D)``."""
    return x.reshape(x.shape[: x.dim() - event_dim] + (-1,)) if event_dim else x.unsqueeze(-1)


class GaussianEncoder(nn.Module):
    """Diagonal Gaussian q(z|x) = N(mu(x), diag sigma²(x)).

    ``net`` maps the flattened data ``(..., D)`` to features ``(..., hidden_dim)``; two linear
    heads give mu and log sigma². ``logvar_bounds=(lo, hi)`` passes the log-variance through
    hardtanh(lo, hi), as the VampPrior authors do with (−6, 2).
    """

    def __init__(self, net, hidden_dim, z_dim, event_dim=1, logvar_bounds=None):
        super().__init__()
        self.net = net
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.logvar = nn.Linear(hidden_dim, z_dim)
        self.event_dim = int(event_dim)
        self.z_dim = int(z_dim)
        self.logvar_bounds = logvar_bounds

    def features(self, x):
        """(h ``(..., hidden_dim)``, mu, logvar ``(..., z_dim)``) for data ``(..., *event_shape)``."""
        h = self.net(flatten_event(x, self.event_dim))
        logvar = self.logvar(h)
        if self.logvar_bounds is not None:
            logvar = F.hardtanh(logvar, *self.logvar_bounds)
        return h, self.loc(h), logvar

    def params(self, x):
        """(mu, logvar), each ``(..., z_dim)``, for data ``(..., *event_shape)``."""
        return self.features(x)[1:]

    def forward(self, x):
        loc, logvar = self.params(x)
        return dist.Normal(loc, torch.exp(0.5 * logvar), validate_args=False).to_event(1)


def distribution_mean(d, num_samples=100):
    """The mean of distribution ``d``: exact where known, else the average of ``num_samples``
    draws (flow posteriors). Shape ``batch_shape + event_shape``."""
    try:
        return d.mean
    except NotImplementedError:
        return d.sample((num_samples,)).mean(0)
