"""Full-covariance Gaussian q(z|x) through a Cholesky factor: Pavesi (2024), "Variational Auto Encoders" (lecture
notes), §4.3, eq. 24."""

import pyro.distributions as dist
import torch
from torch import nn

from pyrozoo.guides.encoders import flatten_event


class FullCovEncoder(nn.Module):
    """q(z|x) = N(mu(x), L(x) L(x)ᵀ) with L = L* + diag(sigma) (Pavesi 2024 notes, eq. 24).

    ``net`` maps flattened data ``(..., D)`` to features ``(..., hidden_dim)``; linear heads give
    mu ``(z_dim,)``, log sigma² ``(z_dim,)`` and the ``z_dim (z_dim − 1) / 2`` entries of the
    strictly lower-triangular L*. Returns ``MultivariateNormal(mu, scale_tril=L)`` with batch
    shape ``(...)``; sampling is z = mu + L ε.
    """

    def __init__(self, net, hidden_dim, z_dim, event_dim=1, logvar_bounds=None):
        super().__init__()
        self.net = net
        self.z_dim = int(z_dim)
        self.event_dim = int(event_dim)
        self.logvar_bounds = logvar_bounds
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.logvar = nn.Linear(hidden_dim, z_dim)
        self.offdiag = nn.Linear(hidden_dim, z_dim * (z_dim - 1) // 2)
        nn.init.zeros_(self.offdiag.weight)  # start from the diagonal posterior
        nn.init.zeros_(self.offdiag.bias)
        rows, cols = torch.tril_indices(z_dim, z_dim, offset=-1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def params(self, x):
        """(mu ``(..., z)``, L ``(..., z, z)``) for data ``(..., *event_shape)``."""
        h = self.net(flatten_event(x, self.event_dim))
        logvar = self.logvar(h)
        if self.logvar_bounds is not None:
            logvar = torch.nn.functional.hardtanh(logvar, *self.logvar_bounds)
        sigma = torch.exp(0.5 * logvar)
        lower = sigma.new_zeros(sigma.shape + (self.z_dim,))
        lower[..., self.rows, self.cols] = self.offdiag(h)
        return self.loc(h), lower + torch.diag_embed(sigma)

    def forward(self, x):
        loc, scale_tril = self.params(x)
        return dist.MultivariateNormal(loc, scale_tril=scale_tril, validate_args=False)
