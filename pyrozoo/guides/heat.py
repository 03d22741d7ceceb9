"""The R-VAE posterior: a heat kernel on the latent manifold with amortised centre and time."""

import torch.nn.functional as F
from torch import nn

from pyrozoo.geometry.heat_kernel import HeatKernel, geodesic_options
from pyrozoo.guides.encoders import flatten_event


class HeatKernelEncoder(nn.Module):
    """q(z|x) = HeatKernel(mu_q(x), t_q(x)) (Kalatzis et al. 2020, eqs. 3.6, Table 4).

    ``net`` maps flattened data ``(..., D)`` to features ``(..., hidden_dim)``; a linear head
    gives the centre mu_q ``(..., z_dim)`` and a softplus head the scalar time t_q ``(...)``,
    clipped to ``t_bounds`` (the authors' code: [1e-4, 5]). The latent metric is bound later
    (:meth:`bind`), because it belongs to the decoder.

    ``sampler``: ``"euclidean"`` (default, as the authors' code: z = mu_q + sqrt(t_q) ε) or
    ``"brownian"`` (a ``num_steps`` Brownian walk under the metric, eq. 3.15). Benchmarks record
    which one they used. ``base_measure`` must match the prior's (see
    :class:`~pyrozoo.geometry.heat_kernel.HeatKernel`). ``distance``: ``"geodesic"`` (the paper's;
    solved by :func:`~pyrozoo.geometry.heat_kernel.geodesic_options`, with chords measured by the
    immersion given to :meth:`bind`) or ``"local"``.
    """

    def __init__(self, net, hidden_dim, z_dim, event_dim=1, sampler="euclidean", num_steps=5,
                 t_bounds=(1e-4, 5.0), distance="local", base_measure="riemannian"):
        super().__init__()
        if sampler not in ("euclidean", "brownian"):
            raise ValueError(f"unknown sampler {sampler!r}; choose 'euclidean' or 'brownian'")
        if not 0 < float(t_bounds[0]) < float(t_bounds[1]):
            raise ValueError(f"t_bounds must satisfy 0 < low < high, got {t_bounds}")
        self.net = net
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.time = nn.Linear(hidden_dim, 1)
        self.event_dim = int(event_dim)
        self.z_dim = int(z_dim)
        self.t_bounds = (float(t_bounds[0]), float(t_bounds[1]))
        self.options = dict(sampler=sampler, num_steps=int(num_steps), distance=distance, base_measure=base_measure)
        self.metric_fn = self.immersion = None

    def bind(self, metric_fn, immersion=None):
        """Use ``metric_fn`` (a callable ``(n, d) -> (n, d, d)``) as the latent metric and, for geodesics,
        ``immersion`` (the decoder as a map ``(n, d) -> (n, D')`` whose pull-back metric that is); returns self."""
        self.metric_fn, self.immersion = metric_fn, immersion
        return self

    def params(self, x):
        """(mu_q ``(..., z_dim)``, t_q ``(...)``) for data ``(..., *event_shape)``."""
        h = self.net(flatten_event(x, self.event_dim))
        t = F.softplus(self.time(h)).squeeze(-1).clamp(*self.t_bounds)
        return self.loc(h), t

    def forward(self, x):
        if self.metric_fn is None:
            raise ValueError("HeatKernelEncoder has no metric; call bind(metric_fn) first")
        loc, t = self.params(x)
        return HeatKernel(loc, t, self.metric_fn, geodesic_kwargs=geodesic_options(self.immersion), **self.options)
