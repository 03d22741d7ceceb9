"""Presets of Kalatzis, Eklund, Arvanitidis & Hauberg (2020), Variational Autoencoders with
Riemannian Brownian Motion Priors, arXiv:2002.05227: the R-VAE and its VAE and VampPrior
baselines with the RBF variance network."""

import math

from pyrozoo.guides import GaussianEncoder
from pyrozoo.nn import MLP
from pyrozoo.zoo.registry import STANDARD_REPORT, checked, register, with_prior
from pyrozoo.zoo.vampprior import make_prior


@checked
def riemannian_vae(event_shape, prior="heat", z_dim=2, hidden=(300, 300), num_centres=350, bandwidth=0.01,
                   min_precision=1e-9, sampler=None, distance=None, num_components=128, likelihood="gaussian", t=1.0):
    """A VAE with the paper's coders (Tables 4-5): ELU MLPs ``hidden`` (300-300), a linear decoder
    mean and an RBF precision network (``num_centres`` = 350, λ = ``bandwidth`` = 0.01, precision floor
    ζ = ``min_precision`` = 1e-9 as the authors' code) for σ(z) = β_ψ(z)^{-1/2}. ``prior="heat"`` gives
    the R-VAE (heat-kernel prior with learnable centre and time ``t``, heat-kernel posterior sampled by
    ``sampler``: ``"euclidean"`` by default, or ``"brownian"``; both with the squared ``distance``
    ``"geodesic"``, the paper's and the default, found by curve-energy minimisation with the decoder's
    chords, or ``"local"``); ``"standard"`` and
    ``"vampprior"`` (K = ``num_components``, 128 here; the paper tries 128-512) give the
    baselines with a Gaussian encoder (variance clipped to [1e-4, 5] as the authors' code does).
    Continuous data only (``likelihood="gaussian"``)."""
    from pyrozoo.distributions import HeatKernelPrior
    from pyrozoo.guides.heat import HeatKernelEncoder
    from pyrozoo.models.rvae import GaussianImmersion, RiemannianVAE

    if likelihood != "gaussian":
        raise ValueError(f"the Riemannian VAEs model continuous data with their own Gaussian decoder; "
                         f"likelihood {likelihood!r} is not available (use continuous data)")
    if prior not in ("heat", "standard", "vampprior"):
        raise ValueError(f"unknown prior {prior!r} for the Riemannian VAEs; choose heat, standard or vampprior")
    if int(z_dim) < 1:
        raise ValueError(f"z_dim must be positive, got {z_dim}")
    if sampler is not None and prior != "heat":
        raise ValueError("sampler chooses how the heat-kernel posterior is drawn; it applies to prior='heat' (rvae) "
                         "only")
    if distance is not None and prior != "heat":
        raise ValueError("distance chooses the heat kernels' l²; it applies to prior='heat' (rvae) only")
    if distance not in (None, "geodesic", "local"):
        raise ValueError(f"unknown distance {distance!r}; choose geodesic or local")
    z_dim, hidden = int(z_dim), [int(h) for h in hidden]
    num_dims = math.prod(event_shape)
    enc_net = MLP([num_dims] + hidden, activation="elu", final_activation="elu")
    if prior == "heat":
        # Both densities w.r.t. det G(z) dz: log q - log p is eq. (3.8) with the metric at the centres only.
        distance = distance or "geodesic"
        encoder = HeatKernelEncoder(enc_net, hidden[-1], z_dim, event_dim=len(event_shape),
                                    sampler=sampler or "euclidean", distance=distance, base_measure="det-g")
        p = HeatKernelPrior(z_dim, t=t, distance=distance, base_measure="det-g")
    else:
        encoder = GaussianEncoder(enc_net, hidden[-1], z_dim, event_dim=len(event_shape),
                                  logvar_bounds=(math.log(1e-4), math.log(5.0)))
        p = make_prior(prior, z_dim, encoder.params, event_shape, num_components)
    mean_net = MLP([z_dim] + hidden[::-1] + [num_dims], activation="elu")
    decoder = GaussianImmersion(mean_net, z_dim, event_shape, num_centres=num_centres, bandwidth=bandwidth,
                                min_precision=min_precision)
    return RiemannianVAE(encoder, decoder, p)


# Appendix C.1: 100 + 200 epochs, Adam 1e-3, batch 100; continuous data.
_RVAE_DEFAULTS = {"phase_epochs": [100, 200], "lr": 1e-3, "batch_size": 100, "likelihood": "gaussian"}
_REF = ("Kalatzis, Eklund, Arvanitidis & Hauberg (2020), Variational Autoencoders with Riemannian Brownian Motion "
        "Priors, arXiv:2002.05227")
_REPORT = STANDARD_REPORT + ("latent_f1", "geometry")
_HEAT_ONLY = ("sampler", "distance")  # options of the heat-kernel parts: not options of the baselines
# The R-VAE reports the paper's metrics without the importance-sampled log p(x): its heat kernels are the unnormalised
# parametrix (eq. 3.3) and q's draws are not distributed by q's log_prob, so the estimate has no meaning, and with
# geodesic distances its S = 5000 draws per point would cost 10^4 solves per point. eval_samples (100) sizes PSIS k̂.
register("rvae", "R-VAE: heat-kernel (Riemannian Brownian-motion) prior and posterior under the decoder's pull-back "
         "metric with geodesic distances, RBF variance network, two-phase training (Kalatzis et al. 2020)",
         regime="two-phase", defaults={**_RVAE_DEFAULTS, "warmup": 0, "eval_samples": 100}, binarize=False,
         phase_one_beta=0.0, report=("elbo", "figures", "latent_f1", "geometry"),
         reference=_REF)(with_prior(riemannian_vae, "heat"))
register("vae-rbf", "VAE baseline of the R-VAE paper: standard-normal prior, RBF variance network, KL warm-up "
         "then variance phase", regime="two-phase", defaults={**_RVAE_DEFAULTS, "warmup": 100}, binarize=False,
         report=_REPORT, reference=_REF, omit=_HEAT_ONLY)(with_prior(riemannian_vae, "standard"))
register("vampprior-rbf", "VampPrior baseline of the R-VAE paper (K=128), RBF variance network, KL warm-up then "
         "variance phase", regime="two-phase", defaults={**_RVAE_DEFAULTS, "warmup": 100}, binarize=False,
         report=_REPORT, reference=_REF, omit=_HEAT_ONLY)(with_prior(riemannian_vae, "vampprior"))
