"""Encoder parts: q(z|x) as a distribution object, amortised by a network."""

import torch

from pyrozoo import checks
from pyrozoo.distributions.conditional import GaussianHead


def flatten_event(x, event_dim):
    """Flatten the last ``event_dim`` dims of ``x``: ``(..., *event_shape) -> (..., D)``."""
    return x.reshape(x.shape[: x.dim() - event_dim] + (-1,)) if event_dim else x.unsqueeze(-1)


def broadcast_cat(a, b):
    """``[a, b]`` concatenated on the last dim after broadcasting their batch dims:
    ``(..., p)`` and ``(..., q)`` -> ``(broadcast(...), p + q)``."""
    batch = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    return torch.cat([a.expand(batch + a.shape[-1:]), b.expand(batch + b.shape[-1:])], -1)


class GaussianEncoder(GaussianHead):
    """Diagonal Gaussian q(z|x) = N(mu(x), diag sigma²(x)).

    ``net`` maps the flattened data ``(..., D)`` to features ``(..., hidden_dim)``; two linear
    heads give mu and log sigma². ``logvar_bounds=(lo, hi)`` passes the log-variance through
    hardtanh(lo, hi), as the VampPrior authors do with (−6, 2).
    """

    def __init__(self, net, hidden_dim, z_dim, event_dim=1, logvar_bounds=None):
        super().__init__(hidden_dim, z_dim, logvar_bounds)
        self.net = net
        self.event_dim = int(event_dim)

    def features(self, x):
        """(h ``(..., hidden_dim)``, mu, logvar ``(..., z_dim)``) for data ``(..., *event_shape)``."""
        h = self.net(flatten_event(x, self.event_dim))
        return (h, *self.heads(h))

    def params(self, x):
        """(mu, logvar), each ``(..., z_dim)``, for data ``(..., *event_shape)``."""
        return self.features(x)[1:]


def distribution_mean(d, num_samples=100):
    """The mean of distribution ``d``: exact where known, else the average of ``num_samples``
    draws (flow posteriors). Shape ``batch_shape + event_shape``."""
    num_samples = checks.count("num_samples", num_samples)
    if not isinstance(d, torch.distributions.Distribution):
        raise ValueError(f"distribution_mean needs a distribution (such as model.encode(x)), got {type(d).__name__}")
    try:
        return d.mean
    except NotImplementedError:
        return d.sample((num_samples,)).mean(0)
