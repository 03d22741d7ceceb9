"""Objectives over traces of a zoo model and guide.

- :class:`ELBO`: the standard evidence lower bound, a drop-in for Pyro's ``Trace_ELBO`` (it
  works with ``pyro.infer.SVI``) with a lean implementation and the closed-form KL wherever
  ``torch.distributions.kl_divergence`` knows the pair (as ``TraceMeanField_ELBO``).
- :class:`IWAE`: the importance-weighted bound of Burda, Grosse & Salakhutdinov (2016), "Importance Weighted
  Autoencoders", arXiv:1509.00519, with K samples.
- free bits (:mod:`pyrozoo.inference.freebits`), by name in :data:`OBJECTIVES`: Pavesi (2024), "Variational Auto
  Encoders" (lecture notes), eq. 14.
"""

import math

import pyro.infer
import torch
from pyro.poutine.runtime import _PYRO_STACK
from torch.distributions import kl_divergence

from pyrozoo.inference.traces import get_traces, masked, particle_dim, sample_sites, vectorize

_KL_CACHE = {}


def standard_normal_kl(loc, scale):
    """KL(N(loc, diag scale²) ‖ N(0, I)) = Σ_d ½ (loc² + scale² − 1) − log scale over the last dim:
    ``(..., D)`` -> ``(...)``. Fewer operations than the registered Normal-Normal form."""
    return (0.5 * (loc.pow(2) + scale.pow(2) - 1.0) - scale.log()).sum(-1)


def _analytic_kl(guide_fn, model_fn):
    """KL(guide ‖ model) per batch element if a closed form is registered, else None (a diagonal
    Gaussian against a prior marked ``standard_normal``, as :class:`StandardNormalPrior` marks its
    distribution, takes :func:`standard_normal_kl`)."""
    if getattr(model_fn, "standard_normal", False) and isinstance(guide_fn, torch.distributions.Independent) \
            and guide_fn.reinterpreted_batch_ndims == 1 and isinstance(guide_fn.base_dist, torch.distributions.Normal):
        return standard_normal_kl(guide_fn.base_dist.loc, guide_fn.base_dist.scale)
    key = (type(guide_fn), type(model_fn), type(getattr(guide_fn, "base_dist", None)),
           type(getattr(model_fn, "base_dist", None)))
    if _KL_CACHE.get(key) is False:
        return None
    try:
        kl = kl_divergence(guide_fn, model_fn)
    except NotImplementedError:
        _KL_CACHE[key] = False
        return None
    _KL_CACHE[key] = True
    return kl


def _is_zero(scale):
    return isinstance(scale, (int, float)) and scale == 0


def _scaled_sum(value, site):
    return masked(value, site).sum() * site["scale"]


def elbo_from_traces(model_trace, guide_trace, analytic_kl=True):
    """Sum of scaled log p − log q over the sites of one (possibly vectorised) run.

    Latent sites whose guide and model densities have a registered KL use −KL instead of the
    single-sample estimate. Returns a scalar summed over all particles.
    """
    elbo = 0.0
    for site in sample_sites(model_trace):
        name = site["name"]
        if site["is_observed"]:
            elbo = elbo + _scaled_sum(site["fn"].log_prob(site["value"]), site)
            continue
        gsite = guide_trace.nodes.get(name)
        if gsite is None:
            raise ValueError(f"latent site {name!r} of the model is missing from the guide")
        if _is_zero(site["scale"]) and _is_zero(gsite["scale"]):
            continue  # a latent weighted by beta = 0 (e.g. an autoencoder phase): its densities cost nothing
        if not gsite["fn"].has_rsample:
            raise NotImplementedError(f"site {name!r} is not reparameterisable; use pyro.infer.Trace_ELBO")
        kl = _analytic_kl(gsite["fn"], site["fn"]) if analytic_kl else None
        if kl is not None:
            elbo = elbo - _scaled_sum(kl, site)
        else:
            elbo = elbo + _scaled_sum(site["fn"].log_prob(site["value"]), site)
            elbo = elbo - _scaled_sum(gsite["fn"].log_prob(gsite["value"]), gsite)
    for gsite in sample_sites(guide_trace):
        if gsite["name"] not in model_trace.nodes:
            elbo = elbo - _scaled_sum(gsite["fn"].log_prob(gsite["value"]), gsite)
    return elbo


def _unscaled(fn):
    """``(program, β)`` of a program that :func:`~pyrozoo.inference.annealing.scale_latents` may have wrapped."""
    from pyrozoo.inference.annealing import ScaledLatents
    return (fn.fn, fn.beta) if isinstance(fn, ScaledLatents) else (fn, 1.0)


def direct_elbo(model, guide, args, kwargs, analytic_kl=True):
    """The ELBO from a zoo model's direct path (:meth:`pyrozoo.models.ZooModel.direct_elbo`), or None.

    Taken only when ``model`` and ``guide`` are one zoo model's own ``model`` and ``guide`` (each
    optionally scaled by the same β), called with ``(x)`` or ``(x, num_data=N)`` and outside any
    Pyro handler (a user's ``poutine`` around the step falls back to the traced ELBO)."""
    (model, beta), (guide, beta_g) = _unscaled(model), _unscaled(guide)
    owner = getattr(model, "__self__", None)
    if owner is None or getattr(guide, "__self__", None) is not owner or (beta is not beta_g and beta != beta_g) \
            or getattr(model, "__name__", "") != "model" or getattr(guide, "__name__", "") != "guide":
        return None
    if not hasattr(owner, "direct_elbo") or _PYRO_STACK or len(args) != 1 or set(kwargs) - {"num_data"}:
        return None
    return owner.direct_elbo(args[0], num_data=kwargs.get("num_data"), beta=beta, analytic_kl=analytic_kl)


class ELBO(pyro.infer.ELBO):
    """Negative ELBO as a loss; ``num_particles`` draws are vectorised in a particle plate.

    Usable with ``SVI(model, guide, optim, ELBO())`` or directly through
    :meth:`differentiable_loss`. ``analytic_kl=False`` gives the plain Monte-Carlo estimator
    of ``Trace_ELBO``. Only reparameterisable guides are supported. Handed a zoo model's own
    ``model``/``guide``, one particle, it computes the same ELBO without Pyro traces
    (:func:`direct_elbo`), about as fast as a hand-written loss.
    """

    def __init__(self, num_particles=1, analytic_kl=True):
        super().__init__(num_particles=num_particles, vectorize_particles=True)
        self.analytic_kl = analytic_kl

    def _get_trace(self, model, guide, args, kwargs):
        return get_traces(model, guide, args, kwargs, self.num_particles)

    def differentiable_loss(self, model, guide, *args, **kwargs):
        direct = direct_elbo(model, guide, args, kwargs, self.analytic_kl) if self.num_particles == 1 else None
        if direct is not None:
            return -direct
        model_trace, guide_trace = get_traces(model, guide, args, kwargs, self.num_particles)
        return -elbo_from_traces(model_trace, guide_trace, self.analytic_kl) / self.num_particles

    def loss(self, model, guide, *args, **kwargs):
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs):
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()


def _data_frame(site):
    for frame in site["cond_indep_stack"]:
        if frame.name == "data":
            return frame
    return None


def _temper(site):
    """A site's scale without its mini-batch factor (the product of N/B over its subsampled plates): the β
    that :func:`~pyrozoo.inference.annealing.scale_latents` (or any ``poutine.scale``) put on it."""
    factor = 1.0
    for frame in site["cond_indep_stack"]:
        if frame.full_size is not None and frame.size:
            factor = factor * frame.full_size / frame.size
    return site["scale"] / factor


def log_weights(model, guide, *args, num_samples=1, tempered=False, **kwargs):
    """Importance log-weights log p(x, z_s) − log q(z_s|x) per sample and data point: ``(S, B)``.

    Draws ``num_samples`` from the guide in one vectorised pass (a particle plate left of the
    model's plates). The mini-batch factor N/B of the site scales is always ignored: these are
    per-point densities. The rest of a site's scale (β of a KL warm-up, β-VAE) is ignored too unless
    ``tempered``, which weights each site's log-density by it: for latent sites scaled by β this gives
    the tempered weight log p(x|z_s) + β (log p(z_s) − log q(z_s|x)), the IWAE counterpart of the
    β-weighted ELBO (see :class:`IWAE`). Sites outside the ``"data"`` plate (global latents) contribute
    to every data point, so with a global latent the weights target log p(x_i) with the global
    integrated out.
    """
    dim = particle_dim(model)
    model_trace, guide_trace = get_traces(vectorize(model, num_samples, dim), vectorize(guide, num_samples, dim),
                                          args, kwargs)
    total = 0.0
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        for site in sample_sites(trace):
            lp = masked(site["fn"].log_prob(site["value"]), site)
            lp = lp.reshape((1,) * max(0, -dim - lp.dim()) + lp.shape)  # left-pad to the particle dim
            frame = _data_frame(site)
            keep = {lp.dim() + dim, lp.dim() + frame.dim} if frame is not None else {lp.dim() + dim}
            others = [d for d in range(lp.dim()) if d not in keep]
            if others:
                lp = lp.sum(others, keepdim=False)
            if lp.dim() == 1:  # global site: (S,) -> (S, 1)
                lp = lp.unsqueeze(-1)
            if tempered:
                lp = lp * _temper(site)
            total = total + sign * lp
    return total


class IWAE(pyro.infer.ELBO):
    """The importance-weighted bound (Burda et al. 2016, eq. 8) with ``num_particles`` = K samples:

    L_K = Σ_i [logsumexp_k log w_ik − log K], times N/B for a mini-batch. K = 1 is the ELBO.

    KL weights act on the bound through the weights: with model and guide scaled by β
    (:func:`~pyrozoo.inference.annealing.scale_latents`, which the KL warm-up, the cyclical schedule and
    β-VAE use) the log-weight is log p(x|z) + β (log p(z) − log q(z|x)) (:func:`log_weights` with
    ``tempered=True``). At β = 1 this is the IWAE bound; at K = 1 it is the β-weighted Monte-Carlo ELBO
    E[log p(x|z)] − β KL; at β = 0 it is the bound on the decoder alone, log (1/K) Σ_k p(x|z_k) with
    z_k ~ q(z|x). Burda et al. (2016) train without warm-up, and so does pyrozoo's ``iwae`` preset; a
    ``warmup`` or ``beta`` given to it acts through these tempered weights.
    """

    def __init__(self, num_particles=5):
        super().__init__(num_particles=num_particles, vectorize_particles=True)

    def differentiable_loss(self, model, guide, *args, **kwargs):
        lw = log_weights(model, guide, *args, num_samples=self.num_particles, tempered=True, **kwargs)
        bound = torch.logsumexp(lw, dim=0) - math.log(self.num_particles)
        num_data = kwargs.get("num_data")
        scale = num_data / lw.shape[-1] if num_data else 1.0
        return -bound.sum() * scale

    _get_trace = ELBO._get_trace
    loss = ELBO.loss
    loss_and_grads = ELBO.loss_and_grads


OBJECTIVES = {"elbo": "ELBO with the closed-form KL where available", "elbo-mc": "Monte-Carlo ELBO (Trace_ELBO)",
              "iwae": "importance-weighted bound with --particles samples",
              "free-bits": "free bits: --kl-groups groups of at least --free-bits nats (Pavesi 2024 notes, eq. 14)"}


def make_objective(name, num_particles=1, free_bits=None, kl_groups=None):
    """Build a training objective by name: one of :data:`OBJECTIVES`.

    ``free_bits`` (λ in nats) and ``kl_groups`` (K) apply to ``"free-bits"`` only.
    """
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
    if int(num_particles) < 1:
        raise ValueError(f"the number of particles must be >= 1, got {num_particles}")
    if name != "free-bits" and (free_bits is not None or kl_groups is not None):
        raise ValueError(f"free bits settings apply to objective 'free-bits', not {name!r}")
    if name == "free-bits":
        from pyrozoo.inference.freebits import FreeBitsELBO
        return FreeBitsELBO(free_bits=0.5 if free_bits is None else free_bits,
                            num_groups=1 if kl_groups is None else kl_groups, num_particles=num_particles)
    if name == "iwae":
        return IWAE(num_particles=num_particles)
    return ELBO(num_particles=num_particles, analytic_kl=(name == "elbo"))
