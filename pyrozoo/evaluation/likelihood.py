"""Importance-sampled log-likelihood and the ELBO's parts, per data point, for any zoo model."""

import math
import sys

import pyro
import torch

from pyrozoo import checks
from pyrozoo.evaluation.sharding import cat, fingerprint, map_batches
from pyrozoo.guides.encoders import distribution_mean
from pyrozoo.inference import distributed
from pyrozoo.inference.objectives import _analytic_kl, _data_frame, log_weights
from pyrozoo.inference.traces import get_traces, masked, particle_dim, sample_sites, vectorize

# distribution_mean is re-exported (its home is pyrozoo.guides.encoders)
__all__ = ["active_units", "auto_chunk", "distribution_mean", "elbo_terms", "log_likelihood"]


def auto_chunk(x, num_samples, budget=None, model=None):
    """Samples per chunk so that a chunk of ``x`` ``(B, *event)`` holds about ``budget`` numbers
    (2^24 on a CPU, 2^27 on a GPU by default): one decoder output per data number, or what
    ``model.numbers_per_sample(x)`` says when a ``model`` is given. At least 1, at most ``num_samples``."""
    if budget is None:
        budget = 2 ** 27 if x.device.type == "cuda" else 2 ** 24
    per_sample = max(1, model.numbers_per_sample(x) if hasattr(model, "numbers_per_sample") else x.numel())
    return int(max(1, min(num_samples, budget // per_sample)))


@torch.no_grad()
def log_likelihood(model, x, num_samples=5000, chunk_size=None, batch_size=100, progress=False, seed=0,
                   resume=None):
    """log p(x_i) ≈ logsumexp_s [log p(x_i, z_s) − log q(z_s|x_i)] − log S, one value per point: ``(N,)``.

    The estimator of Burda et al. (2016) used by Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS,
    arXiv:1705.07120, §5.2 (S = 5000 there).
    Samples are drawn ``chunk_size`` at a time (default :func:`auto_chunk`: sized to the data and
    the device) and combined by a running logsumexp. A zoo model's direct path
    (:meth:`~pyrozoo.models.ZooModel.direct_log_weights`, one encoder pass per point) is used
    where it has one; any other model and guide (hierarchical, flows, custom) run vectorised in a
    particle plate through Pyro traces.
    Batch i of ``batch_size`` points draws from an RNG seeded by (``seed``, i), and a distributed
    run shares the batches out over its ranks (:func:`~pyrozoo.evaluation.sharding.map_batches`),
    so the result does not depend on the number of processes.
    ``resume``: a file that keeps each finished batch (see :func:`~pyrozoo.evaluation.sharding.map_batches`),
    so that a killed evaluation started again with the same model, points and settings picks up where it
    stopped and returns the same values; it is removed when the evaluation finishes.
    """
    num_samples = checks.count("num_samples", num_samples)
    chunk_size = None if chunk_size is None else checks.count("chunk_size", chunk_size)
    batch_size = checks.count("batch_size", batch_size)
    model.check_data(x)
    from tqdm.auto import tqdm
    bar = tqdm(total=len(distributed.shard(-(-len(x) // batch_size))), disable=not (progress and sys.stderr.isatty()),
               desc="log p(x)", unit="batch")

    def one(xb):
        acc, remaining = None, num_samples
        chunk = chunk_size or auto_chunk(xb, num_samples, model=model)
        while remaining > 0:
            s = min(chunk, remaining)
            lw = model.direct_log_weights(xb, s) if hasattr(model, "direct_log_weights") else None
            if lw is None:
                lw = log_weights(model.model, model.guide, xb, num_samples=s)
            lw = torch.logsumexp(lw, dim=0)
            acc = lw if acc is None else torch.logaddexp(acc, lw)
            remaining -= s
        bar.update(1)
        return acc - math.log(num_samples)

    def resumed(count):
        bar.update(count)
        if progress and not sys.stderr.isatty():
            print(f"log p(x): resuming, {count} of {bar.total} batches already done", file=sys.stderr, flush=True)

    tag = fingerprint(model, x, num_samples, chunk_size, x.device.type) if resume is not None else ""
    with pyro.validation_enabled(False):
        out = map_batches(one, x, batch_size, seed, key=1, store=resume, tag=tag, on_resume=resumed)
    bar.close()
    return cat(out, x.device)


@torch.no_grad()
def elbo_terms(model, x, num_samples=1, batch_size=500, analytic_kl=True, seed=0, num_data=None):
    """Per-point ELBO, reconstruction term E_q[log p(x|z)] and KL term, each ``(N,)``.

    KL = E_q[log q(z|x) − log p(z)] over all latent sites (closed form where registered,
    else Monte Carlo with ``num_samples`` draws). ELBO = reconstruction − KL. Batches are seeded
    and shared out over ranks as in :func:`log_likelihood`.

    A global site (one value for all points, such as the hyperprior's m) enters the training ELBO
    once for the whole data set, so each point is charged 1/``num_data`` of its term
    log q(m) − log p(m): ``num_data`` is the size of the data set the model was trained with (the
    ``size`` of its data plate in training; the run report passes the training split's). It defaults
    to ``len(x)``, treating ``x`` as the data set. The per-point test ELBO then averages to the
    training loss's per-point value, E[local terms] − KL(q(m) ‖ p(m)) / N, whatever the evaluation
    batch size.
    """
    num_samples, batch_size = checks.count("num_samples", num_samples), checks.count("batch_size", batch_size)
    num_data = len(x) if num_data is None else checks.count("num_data", num_data)
    model.check_data(x)

    def one(xb):
        rec = torch.zeros(len(xb), device=xb.device)
        kl = torch.zeros(len(xb), device=xb.device)
        for _ in range(num_samples):
            model_trace, guide_trace = get_traces(model.model, model.guide, (xb,), {})
            for site in sample_sites(model_trace):
                lp_model = masked(site["fn"].log_prob(site["value"]), site)
                if site["is_observed"]:
                    rec += _per_point(lp_model, len(xb), num_data)
                    continue
                g = guide_trace.nodes[site["name"]]
                closed = _analytic_kl(g["fn"], site["fn"]) if analytic_kl else None
                if closed is not None:
                    kl += _per_point(masked(closed, site), len(xb), num_data)
                else:
                    kl += _per_point(masked(g["fn"].log_prob(g["value"]), g) - lp_model, len(xb), num_data)
        return torch.stack([rec, kl]) / num_samples

    with pyro.validation_enabled(False):
        rec, kl = torch.cat([r.to(x.device) for r in map_batches(one, x, batch_size, seed, key=2)], dim=1)
    return {"elbo": rec - kl, "reconstruction": rec, "kl": kl}


def _per_point(lp, batch, num_data):
    """Reduce a site's log-density to one value per data point (dim −1 is the data plate); a global
    site's term is charged 1/``num_data`` to each point."""
    if lp.dim() == 0 or lp.shape[-1] != batch:
        return lp.sum().expand(batch) / num_data
    return lp.reshape(-1, batch).sum(0)


def _mean_over_draws(site, dim):
    """E_q[z|x] of a guide site traced in a particle plate at ``dim``: the average over the particles of
    the site distribution's mean (of the draw itself where no mean is known), flattened: ``(B, -1)``."""
    fn, value = site["fn"], site["value"]
    try:
        mean = torch.broadcast_to(fn.mean, value.shape)
    except NotImplementedError:
        mean = value
    return mean.mean(mean.dim() - fn.event_dim + dim)


@torch.no_grad()
def active_units(model, x, threshold=0.01, batch_size=500, num_samples=100, seed=0):
    """Active units (Burda et al. 2016): unit u is active when Cov_x(E_q[z_u|x]) > ``threshold``.

    E_q[z|x] is estimated from ``num_samples`` runs of the guide (vectorised in a particle plate): the
    average of each site's conditional mean, or of its draws where the distribution has no mean (flow
    posteriors). A site whose parents are latent is thus averaged over them: for the two-level HVAE
    (Tomczak & Welling 2018, "VAE with a VampPrior", arXiv:1705.07120, Fig. 3) z1's activity uses
    E_{q(z2|x)}[μ1(x, z2)], not μ1 at one draw of z2; a site without latent parents gets its exact mean.
    Returns ``{site: {"count": int, "variance": (d,) tensor}}`` for each latent site of the guide inside
    the data plate; global sites (one value for all points, such as the hyperprior's m) have no per-point
    mean and are left out. ``x`` needs at least 2 points. Batches are seeded and shared out over ranks as
    in :func:`log_likelihood`.
    """
    threshold = checks.number("threshold", threshold, minimum=0.0)
    batch_size, num_samples = checks.count("batch_size", batch_size), checks.count("num_samples", num_samples)
    model.check_data(x, min_points=2, why="active units are a variance across points")
    dim = particle_dim(model.model)

    def one(xb):
        trace = pyro.poutine.trace(vectorize(model.guide, num_samples, dim)).get_trace(xb)
        return {site["name"]: _mean_over_draws(site, dim).reshape(len(xb), -1)
                for site in sample_sites(trace) if _data_frame(site) is not None}

    with pyro.validation_enabled(False):
        batches = map_batches(one, x, batch_size, seed, key=3)
    result = {}
    for name in batches[0]:
        var = torch.cat([b[name].to(x.device) for b in batches]).var(0)
        result[name] = {"count": int((var > threshold).sum()), "variance": var}
    return result
