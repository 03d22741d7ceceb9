"""Presets of Tomczak & Welling (2018), VAE with a VampPrior, arXiv:1705.07120: prior parts by
name (eq. 9, §3), the gated-MLP VAE, the two-level HVAE (eqs. 10-15), ConvHVAE and PixelHVAE."""

import functools
import math

from pyrozoo.distributions import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior, make_likelihood
from pyrozoo.distributions.conditional import ConditionalGaussian
from pyrozoo.guides import GaussianEncoder
from pyrozoo.guides.hierarchical import JointGaussianEncoder
from pyrozoo.models import VAE, Decoder
from pyrozoo.models.hvae import HVAE, JointDecoder
from pyrozoo.nn import gated_mlp, he_init
from pyrozoo.zoo.registry import STANDARD_REPORT, checked, register, with_prior

PRIORS = ("standard", "mog", "vampprior", "vampprior-data", "vampprior-weighted")
_LOGVAR = (-6.0, 2.0)  # the authors' hardtanh bounds on log-variances
#: Adam with normalised gradients (§5.1 of the paper); the KL warm-up rises per epoch, β = (e + 1) / warmup in epoch
#: e, as in the authors' code (the paper only says warm-up)
_VAMP_DEFAULTS = {"epochs": 100, "lr": 5e-4, "warmup": 20, "kl_schedule": "epochs", "normalize_gradients": True,
                  "patience": 50}


@checked
def make_prior(name, z_dim, encode=None, event_shape=None, num_components=500, data=None, seed=0):
    """A prior part by name (one of :data:`PRIORS`) over ``z_dim`` dims.

    The VampPrior variants need ``encode`` (the encoder's ``params``) and ``event_shape``;
    ``vampprior-data`` needs training images ``data`` ``(N, *event_shape)``, from which K are
    drawn at random (seeded) as fixed pseudo-inputs.
    """
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; choose from {', '.join(PRIORS)}")
    if name == "standard":
        return StandardNormalPrior(z_dim)
    if name == "mog":
        return MixtureOfGaussiansPrior(z_dim, num_components)
    if name == "vampprior-data":
        if data is None:
            raise ValueError("the vampprior-data prior needs training images (data=...)")
        if len(data) < num_components:
            raise ValueError(f"vampprior-data needs >= {num_components} training images, got {len(data)}")
        import torch
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:num_components]
        return VampPrior(z_dim, encode, event_shape, num_components, init=data[pick].cpu(), learnable=False)
    return VampPrior(z_dim, encode, event_shape, num_components, weighted=(name == "vampprior-weighted"))


#: the authors' bound on Bernoulli probabilities, [1e-5, 1 − 1e-5] (their utils/distributions.py ``log_Bernoulli``,
#: in training and in the test log-likelihood); the paper does not mention it
BERNOULLI_FLOOR = 1e-5


def _likelihood(name, event_shape, **options):
    """``make_likelihood`` with the authors' probability bound on a Bernoulli likelihood."""
    if name == "bernoulli":
        options = {"probs_floor": BERNOULLI_FLOOR, **options}
    return make_likelihood(name, event_shape, **options)


def _vamp_sizes(event_shape, z_dim, hidden, num_components):
    if isinstance(hidden, (list, tuple)):
        if len(set(hidden)) != 1:
            raise ValueError(f"the VampPrior models use one width for all gated layers, got hidden={list(hidden)}")
        hidden = hidden[0]
    small = math.prod(event_shape) <= 256
    return (z_dim if z_dim is not None else (8 if small else 40), int(hidden if hidden is not None else
            (128 if small else 300)), int(num_components if num_components is not None else (50 if small else 500)))


@checked
def gated_vae(event_shape, prior="vampprior", z_dim=None, hidden=None, num_components=None, likelihood="bernoulli",
              data=None, **likelihood_options):
    """The VampPrior paper's one-level VAE: gated MLPs of two ``hidden``-unit layers (300),
    z = 40, log-variances through hardtanh(−6, 2), He-normal linear weights with PyTorch's default
    biases, Bernoulli probabilities bounded to [1e-5, 1 − 1e-5] (the last two from the authors' code,
    :data:`BERNOULLI_FLOOR`), and ``prior`` (one of :data:`PRIORS`, K = ``num_components`` = 500).
    Small 8x8 data default to z = 8, 128 units, K = 50."""
    z_dim, hidden, k = _vamp_sizes(event_shape, z_dim, hidden, num_components)
    num_dims = math.prod(event_shape)
    lik = _likelihood(likelihood, event_shape, **likelihood_options)
    encoder = he_init(GaussianEncoder(gated_mlp([num_dims, hidden, hidden]), hidden, z_dim,
                                      event_dim=len(event_shape), logvar_bounds=_LOGVAR))
    decoder = Decoder(he_init(nn_sequential(gated_mlp([z_dim, hidden, hidden]),
                                            lik.params_per_dim * num_dims, hidden)), lik)
    p = make_prior(prior, z_dim, encoder.params, event_shape, k, data)
    return VAE(encoder, decoder, p)


def nn_sequential(body, out_dim, hidden):
    """``body`` followed by a linear output layer ``hidden -> out_dim``."""
    from torch import nn
    return nn.Sequential(body, nn.Linear(hidden, out_dim))


@checked
def hvae(event_shape, prior="standard", z_dim=None, hidden=None, num_components=None, likelihood="bernoulli",
         data=None, **likelihood_options):
    """The two-level HVAE of the VampPrior paper (eqs. 10-15) with the authors' gated MLPs:
    q(z2|x): x → 300 → 300; q(z1|x, z2): [x → 300, z2 → 300] → 300; p(z1|z2): z2 → 300 → 300;
    p(x|z1, z2): [z1 → 300, z2 → 300] → 300 → x. z1 = z2 = 40, log-variances through
    hardtanh(−6, 2), He init; ``prior`` on z2 (one of :data:`PRIORS`, K = 500)."""
    z_dim, h, k = _vamp_sizes(event_shape, z_dim, hidden, num_components)
    num_dims = math.prod(event_shape)
    ev = len(event_shape)
    lik = _likelihood(likelihood, event_shape, **likelihood_options)
    enc2 = he_init(GaussianEncoder(gated_mlp([num_dims, h, h]), h, z_dim, event_dim=ev, logvar_bounds=_LOGVAR))
    enc1 = he_init(JointGaussianEncoder(gated_mlp([num_dims, h]), gated_mlp([z_dim, h]), gated_mlp([2 * h, h]), h,
                                        z_dim, event_dim=ev, logvar_bounds=_LOGVAR))
    cond = he_init(ConditionalGaussian(gated_mlp([z_dim, h, h]), h, z_dim, logvar_bounds=_LOGVAR))
    dec = JointDecoder(gated_mlp([z_dim, h]), gated_mlp([z_dim, h]),
                       he_init(nn_sequential(gated_mlp([2 * h, h]), lik.params_per_dim * num_dims, h)), lik)
    p = make_prior(prior, z_dim, enc2.params, event_shape, k, data)
    return HVAE(enc2, enc1, cond, dec, p)


@checked
def convhvae(event_shape, prior="vampprior", z_dim=None, hidden=None, num_components=None, likelihood="bernoulli",
             data=None, pixelcnn=False, **likelihood_options):
    """ConvHVAE (VampPrior paper §5.1): the HVAE of eqs. 10-15 with gated convolutional encoders for
    q(z2|x) and q(z1|x, z2) and a gated convolutional decoder for p(x|z1, z2); with ``pixelcnn=True``
    the decoder is a PixelCNN conditioned on (z1, z2) (PixelHVAE). z1 = z2 = 40, 300 units, K = 500."""
    from pyrozoo.models.pixel_decoder import PixelDecoder
    from pyrozoo.nn import GatedDense
    from pyrozoo.nn.conv import ConvDecoderNet, ConvEncoderNet
    from pyrozoo.nn.pixelcnn import PixelCNNDecoderNet
    if len(event_shape) != 3:
        raise ValueError(f"the convolutional HVAE needs images (C, H, W), got event shape {event_shape}")
    z, h, k = _vamp_sizes(event_shape, z_dim, hidden, num_components)
    ev = len(event_shape)
    lik = _likelihood(likelihood, event_shape, **likelihood_options)
    x2 = ConvEncoderNet(event_shape, hidden=None)
    enc2 = he_init(GaussianEncoder(x2, x2.out_features, z, event_dim=ev, logvar_bounds=_LOGVAR))
    x1 = ConvEncoderNet(event_shape, hidden=None, kernel_sizes=(3,) * 5)
    enc1 = he_init(JointGaussianEncoder(x1, GatedDense(z, x1.out_features), GatedDense(2 * x1.out_features, h), h, z,
                                        event_dim=ev, logvar_bounds=_LOGVAR))
    cond = he_init(ConditionalGaussian(gated_mlp([z, h, h]), h, z, logvar_bounds=_LOGVAR))
    if pixelcnn:
        dec = PixelDecoder(PixelCNNDecoderNet(event_shape, 2 * z, lik.params_per_dim), lik)
    else:
        dec = JointDecoder(gated_mlp([z, h]), gated_mlp([z, h]), ConvDecoderNet(2 * h, event_shape, lik.params_per_dim),
                           lik)
    return HVAE(enc2, enc1, cond, dec, make_prior(prior, z, enc2.params, event_shape, k, data))


_REF = "Tomczak & Welling (2018), VAE with a VampPrior, arXiv:1705.07120"
_REPORT = STANDARD_REPORT + ("pseudo_inputs",)


def _register(name, description, builder, prior, **extra):
    register(name, description, defaults=_VAMP_DEFAULTS, report=_REPORT, reference=_REF,
             needs_data=prior == "vampprior-data", **extra)(with_prior(builder, prior))


_register("vampprior", "VAE (L=1) with the VampPrior, K=500 learnable pseudo-inputs, gated MLPs (Tomczak & Welling "
          "2018, eq. 9)", gated_vae, "vampprior")
_register("vae-mog", "VAE (L=1) with a mixture-of-Gaussians prior, K=500, gated MLPs (VampPrior paper §3)",
          gated_vae, "mog")
_register("vampprior-data", "VAE (L=1) with the VampPrior on K=500 fixed random training images (VampPrior paper "
          "§4)", gated_vae, "vampprior-data")
_register("hvae", "two-level HVAE (eqs. 10-15) with a standard-normal prior on z2, gated MLPs", hvae, "standard")
_register("hvae-vampprior", "two-level HVAE (eqs. 10-15) with the VampPrior on z2 (eq. 12), gated MLPs", hvae,
          "vampprior")
_register("convhvae-vampprior", "ConvHVAE: two-level HVAE with gated convolutional coders and the VampPrior "
          "(VampPrior paper §5.1)", convhvae, "vampprior")


@functools.wraps(convhvae)
def _pixelhvae(event_shape, **options):
    options.setdefault("prior", "vampprior")
    return convhvae(event_shape, pixelcnn=True, **options)


register("pixelhvae-vampprior", "PixelHVAE: the ConvHVAE with a PixelCNN decoder and the VampPrior "
         "(VampPrior paper §5.1; slow to sample on a CPU)", defaults=_VAMP_DEFAULTS, report=_REPORT,
         reference=_REF)(_pixelhvae)
