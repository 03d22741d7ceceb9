"""Importance-sampled log-likelihood and the ELBO's parts, per data point, for any zoo model."""

import math
import sys

import pyro
import torch

from pyrozoo import checks
from pyrozoo.guides.encoders import distribution_mean
from pyrozoo.inference.objectives import _analytic_kl, _data_frame, log_weights
from pyrozoo.inference.traces import get_traces, masked, sample_sites


def _batches(x, batch_size):
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


@torch.no_grad()
def log_likelihood(model, x, num_samples=5000, chunk_size=100, batch_size=100, progress=False):
    """log p(x_i) ≈ logsumexp_s [log p(x_i, z_s) − log q(z_s|x_i)] − log S, one value per point: ``(N,)``.

    The estimator of Burda et al. (2016) used by Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS,
    arXiv:1705.07120, §5.2 (S = 5000 there).
    Samples are drawn ``chunk_size`` at a time, vectorised in a particle plate, and combined
    by a running logsumexp; it works for any guide (hierarchical, flows) through Pyro traces.
    """
    num_samples, chunk_size = checks.count("num_samples", num_samples), checks.count("chunk_size", chunk_size)
    batch_size = checks.count("batch_size", batch_size)
    model.check_data(x)
    out = []
    from tqdm.auto import tqdm
    with pyro.validation_enabled(False):
        show = progress and sys.stderr.isatty()
        for xb in tqdm(list(_batches(x, batch_size)), disable=not show, desc="log p(x)", unit="batch"):
            acc = None
            remaining = num_samples
            while remaining > 0:
                s = min(chunk_size, remaining)
                lw = torch.logsumexp(log_weights(model.model, model.guide, xb, num_samples=s), dim=0)
                acc = lw if acc is None else torch.logaddexp(acc, lw)
                remaining -= s
            out.append(acc - math.log(num_samples))
    return torch.cat(out)


@torch.no_grad()
def elbo_terms(model, x, num_samples=1, batch_size=500, analytic_kl=True):
    """Per-point ELBO, reconstruction term E_q[log p(x|z)] and KL term, each ``(N,)``.

    KL = E_q[log q(z|x) − log p(z)] over all latent sites (closed form where registered,
    else Monte Carlo with ``num_samples`` draws). ELBO = reconstruction − KL.
    """
    num_samples, batch_size = checks.count("num_samples", num_samples), checks.count("batch_size", batch_size)
    model.check_data(x)
    recs, kls = [], []
    with pyro.validation_enabled(False):
        for xb in _batches(x, batch_size):
            rec = torch.zeros(len(xb), device=xb.device)
            kl = torch.zeros(len(xb), device=xb.device)
            for _ in range(num_samples):
                model_trace, guide_trace = get_traces(model.model, model.guide, (xb,), {})
                for site in sample_sites(model_trace):
                    lp_model = masked(site["fn"].log_prob(site["value"]), site)
                    if site["is_observed"]:
                        rec += _per_point(lp_model, len(xb))
                        continue
                    g = guide_trace.nodes[site["name"]]
                    closed = _analytic_kl(g["fn"], site["fn"]) if analytic_kl else None
                    if closed is not None:
                        kl += _per_point(masked(closed, site), len(xb))
                    else:
                        kl += _per_point(masked(g["fn"].log_prob(g["value"]), g) - lp_model, len(xb))
            recs.append(rec / num_samples)
            kls.append(kl / num_samples)
    rec, kl = torch.cat(recs), torch.cat(kls)
    return {"elbo": rec - kl, "reconstruction": rec, "kl": kl}


def _per_point(lp, batch):
    """Reduce a site's log-density to one value per data point (dim −1 is the data plate)."""
    if lp.dim() == 0 or lp.shape[-1] != batch:
        return lp.sum().expand(batch) / batch  # a global site: shared equally
    return lp.reshape(-1, batch).sum(0)


@torch.no_grad()
def active_units(model, x, threshold=0.01, batch_size=500, num_samples=100):
    """Active units (Burda et al. 2016): unit u is active when Cov_x(E_q[z_u|x]) > ``threshold``.

    E_q[z|x] is the guide distribution's mean when it has one, else a Monte-Carlo mean of
    ``num_samples`` draws. Returns ``{site: {"count": int, "variance": (d,) tensor}}`` for each
    latent site of the guide inside the data plate; global sites (one value for all points, such
    as the hyperprior's m) have no per-point mean and are left out. ``x`` needs at least 2 points.
    """
    threshold = checks.number("threshold", threshold, minimum=0.0)
    batch_size, num_samples = checks.count("batch_size", batch_size), checks.count("num_samples", num_samples)
    model.check_data(x, min_points=2, why="active units are a variance across points")
    means = {}
    with pyro.validation_enabled(False):
        for xb in _batches(x, batch_size):
            trace = pyro.poutine.trace(model.guide).get_trace(xb)
            for site in sample_sites(trace):
                if _data_frame(site) is None:
                    continue
                m = distribution_mean(site["fn"], num_samples)
                means.setdefault(site["name"], []).append(m.reshape(len(xb), -1))
    result = {}
    for name, chunks in means.items():
        var = torch.cat(chunks).var(0)
        result[name] = {"count": int((var > threshold).sum()), "variance": var}
    return result
