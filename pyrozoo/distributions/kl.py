"""Closed-form KL divergences that torch does not register.

KL(N(μ, LLᵀ) ‖ Π_i N(m_i, s_i²)) (Pavesi (2024), "Variational Auto Encoders" (lecture notes),
eq. 25, for m = 0, s = 1)::

    ½ [Σ_ij L_ij²/s_i² + Σ_i (μ_i − m_i)²/s_i² − d + 2 Σ_i log s_i − 2 Σ_i log L_ii].

Registered for ``MultivariateNormal`` against ``Independent(Normal, 1)``, so the full-covariance
posterior gets an analytic KL under the standard-normal prior.
"""

import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence, register_kl


@register_kl(MultivariateNormal, Independent)
def _kl_mvn_diag(q, p):
    if not (isinstance(p.base_dist, Normal) and p.reinterpreted_batch_ndims == 1):
        raise NotImplementedError
    if q.event_shape != p.event_shape:
        raise ValueError(f"KL between event shapes {tuple(q.event_shape)} and {tuple(p.event_shape)}")
    var = p.base_dist.scale.pow(2)
    tril = q.scale_tril
    trace = (tril.pow(2) / var.unsqueeze(-1)).sum((-2, -1))
    maha = ((q.loc - p.base_dist.loc).pow(2) / var).sum(-1)
    logdet_p = torch.log(var).sum(-1)
    logdet_q = 2 * torch.diagonal(tril, dim1=-2, dim2=-1).log().sum(-1)
    return 0.5 * (trace + maha - q.event_shape[0] + logdet_p - logdet_q)


__all__ = ["kl_divergence"]
