"""Presets of the VAE with a Stein-learned hyperprior (the pyrozoo design card "VAE with a
Stein-Learned Hyperprior", eqs. 1-6), trained by Stein Mixture Inference (Rønning, Nalisnick,
Ley, Smyth & Hamelryck (2024), ELBOing Stein: Variational Bayes with Stein Mixture Inference,
arXiv:2410.22948; :class:`pyrozoo.inference.SMI`; the model's ``smi_options`` hold M, α and the
kernel), and its flow-prior baseline."""

import math

from pyrozoo.distributions import make_likelihood
from pyrozoo.models import Decoder
from pyrozoo.nn import MLP
from pyrozoo.zoo.classic import _VAE_DEFAULTS, mlp_vae
from pyrozoo.zoo.registry import checked, register

#: How SMI weighs the repulsion, per choice: the :class:`pyrozoo.inference.SMI` options (the loss temperature T, and
#: whether the kernel sees the log-scales as well as the means).
REPULSION_SCALES = {"per-point": {"loss_temperature": "num_data", "kernel_on_scales": False},
                    "plain": {"loss_temperature": 1.0, "kernel_on_scales": True}}
#: The component means start at a_k ~ N(0, INIT_SPREAD² I), as close together as each component is wide (scale 0.1):
#: q(m) starts as one narrow blob near where the per-point Stein force holds the means on MNIST (0.1-0.3 apart), so
#: attraction and repulsion start balanced (repulsion/attraction 0.19 at N = 50 000) instead of the attraction
#: dragging prior draws (about 9 apart in 40 dimensions; ratio 0.007) together over the first epochs.
INIT_SPREAD = 0.1


@checked
def stein_hyperprior_vae(event_shape, num_components=5, m_dim=None, z_dim=None, hidden=None, num_flows=2,
                         flow_hidden=None, conditioning="concat", repulsion_temperature=1.0, kernel="rbf",
                         repulsion_scale="per-point", likelihood="bernoulli", **likelihood_options):
    """The hyperprior VAE (design card eqs. 1-6): m ~ N(0, I_dm), eps|m ~ N(pad(m), I),
    z = f_λ(eps) (``num_flows`` affine coupling
    layers of ``flow_hidden`` units), x ~ p(x|z) with the MLP decoder of preset ``vae``; guide
    q(m) = Stein mixture of M = ``num_components`` diagonal Gaussians and one encoder q(z|x, m)
    conditioned by ``conditioning`` (``"concat"`` or ``"film"``). ``m_dim`` defaults to z_dim;
    m_dim > z_dim is refused. ``repulsion_temperature`` (α), ``kernel`` and ``repulsion_scale`` are SMI
    settings, validated here and stored as ``model.smi_options``: ``"per-point"`` weighs the repulsion
    against the per-point ELBO (SMI's loss temperature T = N, the data-set size) with the kernel on the
    component means, ``"plain"`` against the whole-data ELBO (T = 1, the update of Rønning et al. 2024,
    eq. 9, with the kernel on the whole particle, as the design card's §2.1 uses it). The
    component means start at a_k ~ N(0, 0.1² I) (:data:`INIT_SPREAD`), their scales at 0.1."""
    from pyrozoo.distributions.flow_prior import ConditionalFlowPrior
    from pyrozoo.guides.stein import ConditionalGaussianEncoder, SteinMixtureGuide
    from pyrozoo.inference.kernels import make_kernel
    from pyrozoo.models.stein_hyperprior import SteinHyperpriorVAE

    if int(num_components) < 1:
        raise ValueError(f"the Stein mixture needs num_components (M) >= 1, got {num_components}")
    if not float(repulsion_temperature) >= 0:
        raise ValueError(f"the repulsion temperature alpha must be >= 0, got {repulsion_temperature}")
    make_kernel(kernel)
    if repulsion_scale not in REPULSION_SCALES:
        raise ValueError(f"unknown repulsion_scale {repulsion_scale!r}; choose from {', '.join(REPULSION_SCALES)}")
    small = math.prod(event_shape) <= 256
    z_dim = int(z_dim if z_dim is not None else (8 if small else 40))
    m_dim = int(m_dim if m_dim is not None else z_dim)
    if z_dim < 1 or m_dim < 1:
        raise ValueError(f"z_dim and m_dim must be positive, got {z_dim} and {m_dim}")
    if m_dim > z_dim:
        raise ValueError(f"m_dim={m_dim} > z_dim={z_dim} is refused: m sets the first d_m coordinates of the "
                         "base mean of z")
    hidden = [int(h) for h in (hidden if hidden is not None else ((128, 128) if small else (300, 300)))]
    flow_hidden = tuple(flow_hidden if flow_hidden is not None else (4 * z_dim,))
    num_dims = math.prod(event_shape)
    lik = make_likelihood(likelihood, event_shape, **likelihood_options)
    in_dim = num_dims + (m_dim if conditioning == "concat" else 0)
    enc_net = MLP([in_dim] + hidden, final_activation="relu")
    encoder = ConditionalGaussianEncoder(enc_net, hidden[-1], z_dim, m_dim, conditioning=conditioning,
                                         event_dim=len(event_shape))
    dec_net = MLP([z_dim] + hidden[::-1] + [lik.params_per_dim * num_dims])
    prior = ConditionalFlowPrior(z_dim, m_dim, num_flows=num_flows, hidden=flow_hidden)
    q_m = SteinMixtureGuide(m_dim, num_components, scale=0.1, init_scale=INIT_SPREAD)
    model = SteinHyperpriorVAE(encoder, Decoder(dec_net, lik), prior, q_m)
    model.smi_options = {"num_particles": int(num_components), "repulsion_temperature": float(repulsion_temperature),
                         "kernel": kernel, **REPULSION_SCALES[repulsion_scale]}
    return model


@checked
def flow_prior_vae(event_shape, z_dim=None, hidden=None, num_flows=2, flow_hidden=None, likelihood="bernoulli",
                   **likelihood_options):
    """The baseline without m: the networks of ``stein-hyperprior`` with p(z) = f_λ# N(0, I)."""
    from pyrozoo.distributions.flow_prior import FlowPrior
    small = math.prod(event_shape) <= 256
    z_dim = int(z_dim if z_dim is not None else (8 if small else 40))
    hidden = hidden if hidden is not None else ((128, 128) if small else (300, 300))
    flow_hidden = tuple(flow_hidden if flow_hidden is not None else (4 * z_dim,))
    prior = FlowPrior(z_dim, num_flows=num_flows, hidden=flow_hidden)
    return mlp_vae(event_shape, z_dim=z_dim, hidden=hidden, likelihood=likelihood,
                   likelihood_options=likelihood_options, prior=prior)


_REF = ("design card: VAE with a Stein-Learned Hyperprior; Rønning et al. (2024), ELBOing Stein: Variational Bayes "
        "with Stein Mixture Inference, arXiv:2410.22948")
register("stein-hyperprior", "VAE with a Stein-learned hyperprior: global m, shared flow p(z|m), q(m) a Stein mixture "
         "of M=5 Gaussians trained by SMI, m-conditioned encoder", regime="smi",
         defaults={**_VAE_DEFAULTS, "warmup": 0}, report=("predictive_likelihood", "elbo", "figures", "q_m"),
         reference=_REF)(stein_hyperprior_vae)
register("vae-flowprior", "VAE with a flow prior p(z) = f# N(0, I) and no global m (baseline of the Stein "
         "hyperprior)", defaults=_VAE_DEFAULTS, reference=_REF)(flow_prior_vae)
