"""Flow priors: N(mean, I) pushed through one shared normalising flow f_λ, as in the design card "VAE with a
Stein-Learned Hyperprior", eqs. 2-3.

:class:`FlowPrior` is the unconditional p(z) = f_λ# N(0, I) (the "flow prior without m"
baseline); :class:`ConditionalFlowPrior` is p(z|m) = f_λ# N(pad(m), I), where m ``(..., d_m)``
sets the first d_m coordinates of the base mean and the rest stay 0 (d_m ≤ d_z).
"""

import pyro.distributions as dist
import pyro.distributions.transforms as T
import torch
from torch import nn
from torch.distributions import constraints

from pyrozoo.distributions.priors import Prior


class Flip(dist.transforms.Transform):
    """Reverse the last dimension (log|det| = 0); mixes coordinates between coupling layers."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __eq__(self, other):
        return isinstance(other, Flip)

    def _call(self, x):
        return x.flip(-1)

    def _inverse(self, y):
        return y.flip(-1)

    def log_abs_det_jacobian(self, x, y):
        return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)


def make_flow(z_dim, num_flows=2, hidden=(64,)):
    """``num_flows`` layers from ``pyro.distributions.transforms``: affine coupling layers with a
    :class:`Flip` between them when ``z_dim`` ≥ 2, elementwise splines when ``z_dim`` = 1.
    Returns ``(modules, transforms)``: an ``nn.ModuleList`` of the learnable layers and the list
    of transforms in order."""
    if int(num_flows) < 1:
        raise ValueError(f"the flow needs at least one layer, got num_flows={num_flows}")
    z_dim, hidden = int(z_dim), [int(h) for h in hidden]
    layers, transforms = nn.ModuleList(), []
    for i in range(int(num_flows)):
        layer = T.affine_coupling(z_dim, hidden_dims=hidden) if z_dim >= 2 else T.spline(z_dim)
        layers.append(layer)
        transforms.append(layer)
        if z_dim >= 2 and i < int(num_flows) - 1:
            transforms.append(Flip())
    return layers, transforms


class FlowPrior(Prior):
    """p(z) = f_λ# N(0, I) with ``num_flows`` layers (:func:`make_flow`); event shape ``(z_dim,)``."""

    def __init__(self, z_dim, num_flows=2, hidden=(64,)):
        super().__init__(z_dim)
        self.flows, self._transforms = make_flow(self.z_dim, num_flows, hidden)
        self.register_buffer("_zero", torch.zeros(self.z_dim))

    def forward(self):
        base = dist.Normal(self._zero, torch.ones_like(self._zero)).to_event(1)
        return dist.TransformedDistribution(base, self._transforms)


class ConditionalFlowPrior(Prior):
    """p_λ(z|m) = f_λ# N(pad(m), I) (design card, eqs. 2-3): ``forward(m)`` with m ``(..., m_dim)``
    returns a distribution with batch shape ``m.shape[:-1]`` and event ``(z_dim,)``.
    ``m_dim > z_dim`` is refused."""

    def __init__(self, z_dim, m_dim, num_flows=2, hidden=(64,)):
        super().__init__(z_dim)
        if int(m_dim) < 1:
            raise ValueError(f"m_dim must be positive, got {m_dim}")
        if int(m_dim) > self.z_dim:
            raise ValueError(f"m_dim={m_dim} > z_dim={z_dim}: m sets the first d_m coordinates of the base mean, "
                             "so d_m must not exceed d_z")
        self.m_dim = int(m_dim)
        self.flows, self._transforms = make_flow(self.z_dim, num_flows, hidden)

    def base_mean(self, m):
        """pad(m): ``(..., m_dim) -> (..., z_dim)`` with zeros after the first d_m coordinates."""
        return torch.nn.functional.pad(m, (0, self.z_dim - self.m_dim))

    def forward(self, m):
        mean = self.base_mean(m)
        base = dist.Normal(mean, torch.ones_like(mean)).to_event(1)
        return dist.TransformedDistribution(base, self._transforms)
