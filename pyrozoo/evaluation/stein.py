"""Posterior-predictive log-likelihood and ELBO of a model with a global latent m, such as the VAE of the design card
"VAE with a Stein-Learned Hyperprior" (eqs. 1-8), whose q(m) is a Stein mixture (eq. 6)."""

import math

import pyro
import torch

from pyrozoo import checks
from pyrozoo.inference.objectives import _data_frame
from pyrozoo.inference.traces import get_traces, masked, particle_dim, sample_sites, vectorize


def _local_log_weights(model, x, num_samples, global_sites):
    """log p(x_i, z_s | m_s) − log q(z_s | x_i, m_s) per draw and point ``(S, B)``, with
    (m_s, z_s) from the guide; sites named in ``global_sites`` are drawn but not weighted."""
    dim = particle_dim(model.model)
    model_trace, guide_trace = get_traces(vectorize(model.model, num_samples, dim),
                                          vectorize(model.guide, num_samples, dim), (x,), {})
    total = x.new_zeros(num_samples, len(x))
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        for site in sample_sites(trace):
            if site["name"] in global_sites:
                continue
            frame = _data_frame(site)
            if frame is None:
                raise ValueError(f"site {site['name']!r} lies outside the data plate; name it in global_sites")
            lp = masked(site["fn"].log_prob(site["value"]), site)
            total = total + sign * lp.reshape(num_samples, -1, len(x)).sum(1)
    return total


@torch.no_grad()
def predictive_log_likelihood(model, x, num_samples=1000, chunk_size=100, batch_size=100, global_sites=("m",),
                              seed=0, resume=None):
    """Per point, the posterior-predictive log-likelihood with m integrated out under q(m), and the ELBO.

    log p(x_i | D) ≈ logsumexp_s [log p(x_i, z_s | m_s) − log q(z_s | x_i, m_s)] − log S with
    m_s ~ q(m), z_s ~ q(z | x_i, m_s) (an importance estimate of log E_{q(m)} p(x_i | m), with q(m)
    the design card's eq. 6). ``elbo`` is E_{q(m) q(z|x,m)}[log p(x_i, z | m) − log q(z | x_i, m)]
    ≤ log-likelihood in expectation (Jensen). Returns ``{"log_likelihood": (N,), "elbo": (N,)}``
    in nats per data point. ``resume``: a file that keeps finished batches so a killed evaluation
    continues with the same values, as in :func:`~pyrozoo.evaluation.likelihood.log_likelihood`.
    """
    num_samples, chunk_size = checks.count("num_samples", num_samples), checks.count("chunk_size", chunk_size)
    batch_size = checks.count("batch_size", batch_size)
    if isinstance(global_sites, str) or not all(isinstance(s, str) for s in global_sites):
        raise ValueError(f"global_sites must be a tuple of site names such as ('m',), got {global_sites!r}")
    model.check_data(x)
    from pyrozoo.evaluation.sharding import fingerprint, map_batches

    def one(xb):
        acc, total, remaining = None, 0.0, num_samples
        while remaining > 0:
            s = min(chunk_size, remaining)
            lw = _local_log_weights(model, xb, s, set(global_sites))
            acc = torch.logsumexp(lw, 0) if acc is None else torch.logaddexp(acc, torch.logsumexp(lw, 0))
            total = total + lw.sum(0)
            remaining -= s
        return torch.stack([acc - math.log(num_samples), total / num_samples])

    tag = fingerprint(model, x, num_samples, chunk_size, global_sites, x.device.type) if resume is not None else ""
    with pyro.validation_enabled(False):
        batches = map_batches(one, x, batch_size, seed, key=5, store=resume, tag=tag)
    ll, elbo = torch.cat([r.to(x.device) for r in batches], dim=1)
    return {"log_likelihood": ll, "elbo": elbo}
