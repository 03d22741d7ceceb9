"""Free bits as a Pyro loss: Pavesi (2024), "Variational Auto Encoders" (lecture notes), eq. 14, after Kingma et al.
(2016), "Improved Variational Inference with Inverse Autoregressive Flow", arXiv:1606.04934.

The latent dimensions of each latent site are split into K contiguous groups z_1..z_K. With
KL_j = the mini-batch mean of KL(q(z_j|x) ‖ p(z_j)), the objective per data point is

    E_q[log p(x|z)] − Σ_j max(λ, KL_j),

so a group whose KL is below λ nats gets no gradient pushing it further towards the prior. The
loss is the negative of that, summed over the mini-batch and scaled by each site's scale
(N/B with ``num_data``, β under annealing), like :class:`pyrozoo.inference.ELBO`.
It needs factorised Gaussian q(z|x) and p(z) (``Independent(Normal)``), whose KL splits over
dimensions in closed form; other families raise ``ValueError``.
"""

import pyro.infer
import torch
from torch.distributions import Independent, Normal, kl_divergence

from pyrozoo.inference.objectives import ELBO
from pyrozoo.inference.traces import get_traces, masked, sample_sites


def _per_dim_kl(q, p, name):
    for d, who in ((q, "posterior"), (p, "prior")):
        if not (isinstance(d, Independent) and isinstance(d.base_dist, Normal) and d.reinterpreted_batch_ndims == 1):
            raise ValueError(f"free bits needs a diagonal Gaussian {who} at site {name!r}, got {type(d).__name__}; "
                             "use the 'diagonal' posterior and a standard-normal prior")
    return kl_divergence(q.base_dist, p.base_dist)  # (..., B, z_dim)


def free_bits_kl(kl_dims, num_groups, free_bits):
    """Σ_j max(λ, mean_batch KL_j) for per-dimension KLs ``kl_dims`` ``(..., B, z_dim)``.

    Groups are contiguous and as equal as possible (``torch.tensor_split``). Returns a scalar.
    """
    groups = torch.stack([g.sum(-1) for g in torch.tensor_split(kl_dims, num_groups, dim=-1)], -1)  # (..., B, K)
    per_group = groups.reshape(-1, groups.shape[-1]).mean(0)  # mean over batch (and particles)
    return per_group.clamp(min=free_bits).sum()


class FreeBitsELBO(pyro.infer.ELBO):
    """Negative free-bits objective (Pavesi 2024 notes, eq. 14) with ``num_groups`` groups of at least
    ``free_bits`` nats each; usable with ``SVI`` or via :meth:`differentiable_loss`."""

    def __init__(self, free_bits=0.5, num_groups=1, num_particles=1):
        if not free_bits >= 0:
            raise ValueError(f"free bits lambda must be >= 0 nats, got {free_bits}")
        if int(num_groups) < 1:
            raise ValueError(f"the number of KL groups must be >= 1, got {num_groups}")
        super().__init__(num_particles=num_particles, vectorize_particles=True)
        self.free_bits = float(free_bits)
        self.num_groups = int(num_groups)

    def differentiable_loss(self, model, guide, *args, **kwargs):
        model_trace, guide_trace = get_traces(model, guide, args, kwargs, self.num_particles)
        objective = 0.0
        for site in sample_sites(model_trace):
            if site["is_observed"]:
                lp = masked(site["fn"].log_prob(site["value"]), site)
                objective = objective + lp.sum() * site["scale"] / self.num_particles
                continue
            q = guide_trace.nodes[site["name"]]["fn"]
            kl_dims = _per_dim_kl(q, site["fn"], site["name"])
            if kl_dims.shape[-1] < self.num_groups:
                raise ValueError(f"site {site['name']!r} has {kl_dims.shape[-1]} dims, fewer than "
                                 f"{self.num_groups} KL groups")
            batch = kl_dims.shape[-2] if kl_dims.dim() >= 2 else 1
            objective = objective - free_bits_kl(kl_dims, self.num_groups, self.free_bits) * batch * site["scale"]
        return -objective

    _get_trace = ELBO._get_trace
    loss = ELBO.loss
    loss_and_grads = ELBO.loss_and_grads
