"""Diagnostics of the latent charts of a Stein mixture q(m) = (1/M) Σ_k N(a_k, diag s_k²) (the design card "VAE
with a Stein-Learned Hyperprior", eq. 6: "different mixture components define different latent charts").

All functions take plain tensors, so the training records (:meth:`pyrozoo.inference.SMI.period_metrics`), the
run's report and the ArviZ bridge share them:

- :func:`component_separation`: how far apart the component means are, plainly and in units of the
  components' scales;
- :func:`responsibilities`: the posterior responsibility of each component for each data point,
  r_ik = p̂(x_i | k) / Σ_j p̂(x_i | j) with p̂(x_i | k) an importance estimate of p(x_i | m ~ N(a_k, B_k));
- :func:`chart_metrics`: the per-component ELBO and its spread, the responsibilities' entropy, the
  components' usage, whether the assignment argmax_k r_ik is reproducible across draws, and its agreement
  with class labels (adjusted mutual information, purity).
"""

import math

import torch


def component_separation(loc, log_scale):
    """The closest pair of components: ``{"min_distance": min ‖a_k − a_l‖, "min_distance_in_scales":
    min sqrt(Σ_d (a_kd − a_ld)² / (s_kd² + s_ld²))}`` over k ≠ l (the second is the distance in units of
    the standard deviation of the difference of one draw from each component). ``loc``, ``log_scale``
    ``(M, d)``; both values are None when M = 1."""
    m = loc.shape[0]
    if m < 2:
        return {"min_distance": None, "min_distance_in_scales": None}
    loc, var = loc.detach(), torch.exp(2 * log_scale.detach())
    diff2 = (loc.unsqueeze(1) - loc.unsqueeze(0)) ** 2  # (M, M, d)
    off = ~torch.eye(m, dtype=torch.bool, device=loc.device)
    plain = diff2.sum(-1).sqrt()[off]
    scaled = (diff2 / (var.unsqueeze(1) + var.unsqueeze(0))).sum(-1).sqrt()[off]
    return {"min_distance": plain.min().item(), "min_distance_in_scales": scaled.min().item()}


def component_log_evidence(log_weights):
    """log p̂(x_i | k) = logsumexp_s w_sik − log S from local log weights ``(S, M, B)`` -> ``(B, M)``."""
    return (torch.logsumexp(log_weights, 0) - math.log(log_weights.shape[0])).transpose(0, 1)


def responsibilities(log_weights):
    """Posterior responsibilities r_ik of the M equally weighted components for each point ``(B, M)``
    (rows sum to 1) from local log weights ``(S, M, B)``: r_ik ∝ p̂(x_i | k) (:func:`component_log_evidence`)."""
    return torch.softmax(component_log_evidence(log_weights), -1)


def purity(assignment, labels):
    """Share of points whose label is the most common label of their component: Σ_k max_c n_kc / n.
    ``assignment``, ``labels``: integer tensors ``(n,)``."""
    counts = torch.zeros(int(assignment.max()) + 1, int(labels.max()) + 1, device=labels.device)
    counts.index_put_((assignment.long(), labels.long()), torch.ones_like(labels, dtype=counts.dtype),
                      accumulate=True)
    return (counts.max(1).values.sum() / len(labels)).item()


def chart_metrics(log_weights, loc, log_scale, labels=None):
    """The chart diagnostics of one batch as a flat dict of floats and lists.

    ``log_weights`` ``(S, M, B)``: log p(x_i, z | m) − log q(z | x_i, m) with m ~ N(a_k, B_k), z ~ q(z | x_i, m)
    (see :meth:`pyrozoo.inference.SMI.component_log_weights`); ``loc``, ``log_scale`` ``(M, d)`` the
    components; ``labels`` ``(B,)`` class labels or None. Keys: ``q_m_min_pairwise_distance`` and
    ``q_m_min_distance_in_scales`` (:func:`component_separation`), ``chart_elbo`` (mean ELBO per point under
    each component, a list of M, nats) and ``chart_elbo_spread`` (its max − min), ``chart_entropy`` (the mean
    entropy of r_i in nats; log M when the components are interchangeable, 0 when each point has one chart),
    ``chart_usage`` (mean r_ik per component), and for M ≥ 2: with S ≥ 2 draws ``chart_consistency`` (the
    share of points whose most responsible component is the same in both halves of the draws: 1/M when the
    responsibilities are noise, so their entropy then measures the noise, not the charts), and with labels
    ``chart_ami`` (adjusted mutual information of argmax_k r_ik and the labels; 0 for chance) and
    ``chart_purity``.
    """
    sep = component_separation(loc, log_scale)
    elbo = log_weights.mean((0, 2))
    r = responsibilities(log_weights)
    entropy = -(r * torch.log(r.clamp_min(1e-30))).sum(-1)
    out = {"q_m_min_pairwise_distance": sep["min_distance"],
           "q_m_min_distance_in_scales": sep["min_distance_in_scales"],
           "chart_elbo": elbo.tolist(), "chart_elbo_spread": (elbo.max() - elbo.min()).item(),
           "chart_entropy": entropy.mean().item(), "chart_usage": r.mean(0).tolist()}
    s, m = log_weights.shape[:2]
    if m < 2:  # one chart: nothing to assign
        return out
    if s > 1:  # do two independent halves of the draws pick the same chart? (1/M by chance)
        halves = (responsibilities(log_weights[:s // 2]), responsibilities(log_weights[s // 2:]))
        out["chart_consistency"] = (halves[0].argmax(-1) == halves[1].argmax(-1)).double().mean().item()
    if labels is not None:
        from sklearn.metrics import adjusted_mutual_info_score
        assignment = r.argmax(-1)
        out["chart_ami"] = float(adjusted_mutual_info_score(labels.cpu().numpy(), assignment.cpu().numpy()))
        out["chart_purity"] = purity(assignment, labels)
    return out
