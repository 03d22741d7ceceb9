"""Posterior draws of a zoo model as ``arviz.InferenceData``, and PSIS k̂ of the amortised guide."""

import arviz as az
import numpy as np
import pyro
import torch

from pyrozoo import checks
from pyrozoo.inference.objectives import log_weights
from pyrozoo.inference.traces import get_traces, particle_dim, sample_sites, vectorize


@torch.no_grad()
def to_inference_data(model, x, num_samples=500):
    """Draws from the guide for the points ``x`` ``(B, *event_shape)`` as ``arviz.InferenceData``.

    Groups: ``posterior`` (each latent site, e.g. ``z`` with dims ``(chain, draw, obs, z_dim)``;
    sites outside the data plate keep their own dims), ``log_likelihood`` (``x``: log p(x_i|z_s),
    dims ``(chain, draw, obs)``) and ``observed_data`` (``x`` flattened to ``(obs, x_dim)``).
    One chain: the draws are independent, so R-hat is not meaningful, but ESS and summaries are.
    """
    num_samples = checks.count("num_samples", num_samples)
    model.check_data(x)
    dim = particle_dim(model.model)
    with pyro.validation_enabled(False):
        model_trace, guide_trace = get_traces(vectorize(model.model, num_samples, dim),
                                              vectorize(model.guide, num_samples, dim), (x,), {})
    posterior, dims = {}, {}
    batch = len(x)
    for site in sample_sites(guide_trace):
        value = site["value"]
        name = site["name"]
        extra = tuple(value.shape[1:])  # the particle plate is the leftmost dim
        if len(extra) >= 1 and extra[0] == 1 and batch != 1:  # a global site broadcast over the data dim
            value, extra = value.squeeze(1), extra[1:]
        if len(extra) >= 1 and extra[0] == batch:
            dims[name] = ["obs"] + [f"{name}_dim_{i}" if i else f"{name}_dim" for i in range(len(extra) - 1)]
        else:
            dims[name] = [f"{name}_dim_{i}" if i else f"{name}_dim" for i in range(len(extra))]
        posterior[name] = value.cpu().numpy()[None]
    log_lik = {}
    for site in sample_sites(model_trace):
        if site["is_observed"]:
            lp = site["fn"].log_prob(site["value"])
            log_lik[site["name"]] = lp.reshape(num_samples, batch).cpu().numpy()[None]
            dims.setdefault(site["name"], ["obs"])
    observed = {"x": x.reshape(batch, -1).cpu().numpy()}
    dims["x"] = ["obs"]
    obs_dims = {"x": ["obs", "x_dim"]}
    idata = az.from_dict(posterior=posterior, log_likelihood=log_lik, observed_data=observed,
                         dims={**{k: v for k, v in dims.items() if k in posterior}, "x": ["obs"]},
                         coords={"obs": np.arange(batch)})
    # observed data has its own pixel dim
    idata.observed_data = az.from_dict(observed_data=observed, dims=obs_dims,
                                       coords={"obs": np.arange(batch)}).observed_data
    return idata


#: The fewest importance samples PSIS can fit: the generalised Pareto distribution is fitted to the
#: largest M = ceil(min(S/5, 3 sqrt(S))) of S weights (Vehtari, Simpson, Gelman, Yao & Gabry 2024,
#: "Pareto Smoothed Importance Sampling", JMLR 25(72), arXiv:1507.02646), and ArviZ needs M >= 5,
#: else it returns k̂ = inf.
MIN_PSIS_SAMPLES = 21


@torch.no_grad()
def psis_khat(model, x, num_samples=1000, batch_size=100, seed=0):
    """Pareto k̂ per data point (Yao et al. 2018) of the importance weights p(x, z)/q(z|x), ``(B,)``.

    k̂ < 0.5: the guide's importance weights are reliable; 0.5–0.7: usable with care;
    > 0.7: q(z|x) misses mass of the posterior for that point. Uses ``arviz.psislw``.
    For a model with a global latent m (a ``q_m`` part, as in the VAE of the design
    card "VAE with a Stein-Learned Hyperprior") the weights are those of the
    encoder, p(x, z | m)/q(z | x, m) with m ~ q(m): the global log p(m)/q(m) is left out, since it
    is shared by all points and says nothing about q(z|x, m). ``num_samples`` must be at least
    :data:`MIN_PSIS_SAMPLES` (21); a few hundred give a stable k̂.
    """
    num_samples = checks.count("num_samples", num_samples, MIN_PSIS_SAMPLES,
                               why="PSIS fits a Pareto tail to the largest S/5 weights and needs 5 of them")
    model.check_data(x)
    from pyrozoo.evaluation.sharding import map_batches

    def one(xb):
        if hasattr(model, "q_m"):
            from pyrozoo.evaluation.stein import _local_log_weights
            lw = _local_log_weights(model, xb, num_samples, {"m"})
        else:
            lw = log_weights(model.model, model.guide, xb, num_samples=num_samples)
        lw = lw.double().cpu().numpy().T  # (B, S)
        _, khat = az.psislw(lw - lw.max(axis=1, keepdims=True))
        return torch.as_tensor(np.atleast_1d(np.asarray(khat)), dtype=torch.float64)

    with pyro.validation_enabled(False):
        return torch.cat(map_batches(one, x, batch_size, seed, key=4))
