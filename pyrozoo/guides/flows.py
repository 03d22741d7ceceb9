"""Flow posteriors: a diagonal Gaussian q0(z|x) pushed through amortised planar or IAF layers, as in §4.4-4.5 of
Pavesi (2024), "Variational Auto Encoders" (lecture notes), after Rezende & Mohamed (2015), "Variational Inference
with Normalizing Flows", arXiv:1505.05770 (planar) and Kingma et al. (2016), "Improved Variational Inference with
Inverse Autoregressive Flow", arXiv:1606.04934 (IAF).

- Planar flow (Rezende & Mohamed 2015; Pavesi 2024 notes eqs. 26-29): f(z) = z + û tanh(wᵀz + b),
  log|det ∂f/∂z| = log|1 + ûᵀ h'(wᵀz + b) w|, with u, w, b produced per data point by the
  encoder and û = u + (m(wᵀu) − wᵀu) w/‖w‖², m(a) = −1 + softplus(a), so that wᵀû ≥ −1 and
  every layer stays invertible. Uses ``pyro.distributions.transforms.ConditionalPlanar``.
- Inverse autoregressive flow (Kingma et al. 2016; Pavesi 2024 notes eqs. 30-33): per step a MADE network
  conditioned on the encoder context h gives (m, s); σ = sigmoid(s + 2), z ← σ ⊙ z + (1 − σ) ⊙ m,
  log|det| = Σ log σ (the numerically stable gated update); the variable order is reversed
  between steps. Uses ``ConditionalAffineAutoregressive(..., stable=True)`` over
  ``ConditionalAutoRegressiveNN``.

log q_K(z_K|x) = log q0(z_0|x) − Σ_k log|det ∂f_k/∂z_{k−1}| (Pavesi 2024 notes eq. 18) is what
``TransformedDistribution.log_prob`` computes; flows cannot be inverted in closed form (planar)
or cheaply (IAF), so densities are evaluated at the guide's own samples, which Pyro caches.
"""

import pyro.distributions as dist
import torch
from pyro.distributions.torch_transform import TransformModule
from pyro.distributions.transforms import ConditionalAffineAutoregressive, ConditionalPlanar
from pyro.nn import ConditionalAutoRegressiveNN
from torch import nn
from torch.distributions import constraints

from pyrozoo.guides.encoders import GaussianEncoder


class Reverse(TransformModule):
    """Reverse the order of the last dimension (log|det| = 0); used between IAF steps."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    volume_preserving = True

    def __init__(self):
        # cache_size=1: the inverse must return the very tensor fed forward, so that the next
        # transform's cache is hit instead of running IAF's sequential inverse
        super().__init__(cache_size=1)

    def _call(self, x):
        return x.flip(-1)

    def _inverse(self, y):
        return y.flip(-1)

    def log_abs_det_jacobian(self, x, y):
        return x.new_zeros(x.shape[:-1])


class PlanarParams(nn.Module):
    """Amortised parameters of one planar layer: context ``(..., H)`` → (b ``(..., 1)``,
    u ``(..., z)``, w ``(..., z)``) through one linear map."""

    def __init__(self, context_dim, z_dim):
        super().__init__()
        self.z_dim = z_dim
        self.linear = nn.Linear(context_dim, 1 + 2 * z_dim)

    def forward(self, context):
        out = self.linear(context)
        return out[..., :1], out[..., 1:1 + self.z_dim], out[..., 1 + self.z_dim:]


class FlowEncoder(nn.Module):
    """q_K(z|x): a :class:`GaussianEncoder` base whose features also condition ``transforms``.

    ``transforms`` are Pyro conditional transforms (``.condition(h)``) or plain transforms,
    applied in order. The context h is the base encoder's feature vector ``(..., hidden_dim)``.
    Returns a ``TransformedDistribution`` with batch shape ``(...)`` and event shape ``(z_dim,)``.
    """

    def __init__(self, base, transforms):
        super().__init__()
        self.base = base
        self.transforms = nn.ModuleList(transforms)
        self.z_dim = base.z_dim

    def forward(self, x):
        h, loc, logvar = self.base.features(x)
        q0 = dist.Normal(loc, torch.exp(0.5 * logvar), validate_args=False).to_event(1)
        steps = [t.condition(h) if hasattr(t, "condition") else t for t in self.transforms]
        return dist.TransformedDistribution(q0, steps, validate_args=False)


def planar_encoder(net, hidden_dim, z_dim, event_dim=1, num_flows=10, logvar_bounds=None):
    """A diagonal Gaussian encoder followed by ``num_flows`` amortised planar layers."""
    base = GaussianEncoder(net, hidden_dim, z_dim, event_dim=event_dim, logvar_bounds=logvar_bounds)
    return FlowEncoder(base, [ConditionalPlanar(PlanarParams(hidden_dim, z_dim)) for _ in range(int(num_flows))])


def iaf_encoder(net, hidden_dim, z_dim, event_dim=1, num_flows=4, made_hidden=None, logvar_bounds=None):
    """A diagonal Gaussian encoder followed by ``num_flows`` IAF steps conditioned on the
    encoder features, reversing the variable order between steps. ``made_hidden`` are the
    MADE hidden sizes (default two layers of ``max(2 z_dim, 64)``)."""
    made_hidden = list(made_hidden or [max(2 * z_dim, 64)] * 2)
    transforms = []
    for k in range(int(num_flows)):
        if k:
            transforms.append(Reverse())
        arn = ConditionalAutoRegressiveNN(z_dim, hidden_dim, made_hidden)
        transforms.append(ConditionalAffineAutoregressive(arn, stable=True))
    base = GaussianEncoder(net, hidden_dim, z_dim, event_dim=event_dim, logvar_bounds=logvar_bounds)
    return FlowEncoder(base, transforms)
