"""The registry of named presets: each wires parts (prior, encoder, decoder, likelihood) into a model.

``presets()`` lists them; ``build(name, event_shape=..., **options)`` returns the model object
(a ``PyroModule`` with ``model`` and ``guide``).
"""

import math

from pyrozoo.distributions import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior, make_likelihood
from pyrozoo.distributions.conditional import ConditionalGaussian
from pyrozoo.guides import GaussianEncoder, make_encoder
from pyrozoo.guides.hierarchical import JointGaussianEncoder
from pyrozoo.models import VAE, Decoder
from pyrozoo.models.hvae import HVAE, JointDecoder
from pyrozoo.models.seqvae import seq_vae
from pyrozoo.nn import MLP, gated_mlp, he_init

_PRESETS = {}


def register(name, description, defaults=None):
    """Decorator registering a builder ``fn(event_shape, **options) -> model`` under ``name``.

    ``defaults`` holds training defaults (epochs, lr, warmup, ...) that the CLI uses unless
    a flag overrides them.
    """
    def deco(fn):
        _PRESETS[name] = (description, fn, dict(defaults or {}))
        return fn
    return deco


def presets():
    """``{name: one-line description}`` of every registered preset."""
    return {name: desc for name, (desc, _, _) in _PRESETS.items()}


def train_defaults(name):
    """The training defaults of a preset (a dict; may be empty)."""
    _check(name)
    return dict(_PRESETS[name][2])


def _check(name):
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(_PRESETS)}")


def build(name, event_shape=(1, 8, 8), **options):
    """Build preset ``name`` for data points of shape ``event_shape``; raises ``ValueError`` for an
    unknown preset or option."""
    _check(name)
    try:
        return _PRESETS[name][1](tuple(event_shape), **options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise ValueError(f"unknown option for preset {name!r}: {err}") from None
        raise


def mlp_vae(event_shape, z_dim=40, hidden=(300, 300), likelihood="bernoulli", gated=False,
            activation="relu", likelihood_options=None, prior=None, posterior="diagonal", flow_steps=None):
    """A VAE with MLP encoder and mirrored MLP decoder, shared by several presets.

    ``posterior`` picks the encoder family (see :data:`pyrozoo.guides.POSTERIORS`); ``prior`` is
    any prior part (default N(0, I)).
    """
    if int(z_dim) < 1:
        raise ValueError(f"z_dim must be positive, got {z_dim}")
    hidden = [int(h) for h in hidden]
    num_dims = math.prod(event_shape)
    lik = make_likelihood(likelihood, event_shape, **(likelihood_options or {}))
    enc_net = MLP([num_dims] + hidden, activation=activation, gated=gated, final_activation=activation) \
        if not gated else MLP([num_dims] + hidden + [hidden[-1]], gated=True, activation=activation)
    encoder = make_encoder(posterior, enc_net, hidden[-1], z_dim, event_dim=len(event_shape), flow_steps=flow_steps)
    dec_net = MLP([z_dim] + hidden[::-1] + [lik.params_per_dim * num_dims], activation=activation, gated=gated)
    return VAE(encoder, Decoder(dec_net, lik), prior if prior is not None else StandardNormalPrior(z_dim))


_VAE_DEFAULTS = {"epochs": 100, "lr": 1e-3, "warmup": 10, "patience": 30}


@register("vae", "VAE with a standard-normal prior, diagonal Gaussian encoder, MLP coders (Kingma & Welling 2014)",
          defaults=_VAE_DEFAULTS)
def _vae(event_shape, z_dim=None, hidden=None, likelihood="bernoulli", posterior="diagonal", flow_steps=None,
         **likelihood_options):
    small = math.prod(event_shape) <= 256
    z_dim = z_dim if z_dim is not None else (8 if small else 40)
    hidden = hidden if hidden is not None else ((128, 128) if small else (300, 300))
    return mlp_vae(event_shape, z_dim=z_dim, hidden=hidden, likelihood=likelihood,
                   likelihood_options=likelihood_options, posterior=posterior, flow_steps=flow_steps)


def _family(posterior):
    def build_family(event_shape, **options):
        if options.get("posterior", posterior) != posterior:
            raise ValueError(f"this preset fixes the posterior to {posterior!r}; use preset 'vae' with "
                             f"posterior={options['posterior']!r} instead")
        options["posterior"] = posterior
        return _vae(event_shape, **options)
    return build_family


# The classic family of the VAE notes (../shared/papers/003): posterior families and objectives.
register("vae-fullcov", "VAE with a full-covariance Gaussian posterior, L = L* + diag(sigma) (notes 003 eq. 24)",
         defaults=_VAE_DEFAULTS)(_family("fullcov"))
register("vae-planar", "VAE with an amortised planar-flow posterior, 10 layers (notes 003 eqs. 26-29)",
         defaults=_VAE_DEFAULTS)(_family("planar"))
register("vae-iaf", "VAE with an inverse-autoregressive-flow posterior, 4 steps (notes 003 eqs. 30-33)",
         defaults=_VAE_DEFAULTS)(_family("iaf"))
register("beta-vae", "beta-VAE: the KL term weighted by a constant beta = 4 (notes 003 eq. 13; Higgins et al.)",
         defaults={**_VAE_DEFAULTS, "warmup": 0, "beta": 4.0})(_family("diagonal"))
register("vae-freebits", "VAE trained with free bits: each of 8 latent groups pays max(0.5 nats, KL) "
         "(notes 003 eq. 14)", defaults={**_VAE_DEFAULTS, "objective": "free-bits", "free_bits": 0.5,
                                          "kl_groups": 8})(_family("diagonal"))
register("iwae", "VAE trained with the importance-weighted bound, K = 5 (Burda et al. 2016)",
         defaults={**_VAE_DEFAULTS, "objective": "iwae", "particles": 5})(_family("diagonal"))
# Free bits by default: with the plain ELBO the LSTM decoder ignores z (1 active unit of 16 after
# 100 epochs, test log p(x) -12.1); free bits (4 groups, 1 nat each) keeps 7 active and reaches -8.1.
register("seq-vae", "LSTM sequence VAE of neural-network architecture descriptions (notes 003 §4.1, Algs. 1-2), "
         "trained with free bits", defaults={**_VAE_DEFAULTS, "dataset": "architectures", "objective": "free-bits",
                                             "free_bits": 1.0, "kl_groups": 4})(seq_vae)


# The VampPrior paper (../shared/papers/004): priors, the gated-MLP VAE and the two-level HVAE. -------------------

PRIORS = ("standard", "mog", "vampprior", "vampprior-data", "vampprior-weighted")
_LOGVAR = (-6.0, 2.0)  # the authors' hardtanh bounds on log-variances
_VAMP_DEFAULTS = {"epochs": 100, "lr": 5e-4, "warmup": 20, "patience": 50}


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


def _vamp_sizes(event_shape, z_dim, hidden, num_components):
    if isinstance(hidden, (list, tuple)):
        if len(set(hidden)) != 1:
            raise ValueError(f"the VampPrior models use one width for all gated layers, got hidden={list(hidden)}")
        hidden = hidden[0]
    small = math.prod(event_shape) <= 256
    return (z_dim if z_dim is not None else (8 if small else 40), int(hidden if hidden is not None else
            (128 if small else 300)), int(num_components if num_components is not None else (50 if small else 500)))


def gated_vae(event_shape, prior="vampprior", z_dim=None, hidden=None, num_components=None, likelihood="bernoulli",
              data=None, **likelihood_options):
    """The VampPrior paper's one-level VAE: gated MLPs of two ``hidden``-unit layers (300),
    z = 40, log-variances through hardtanh(−6, 2), He-normal initialisation, and ``prior`` (one
    of :data:`PRIORS`, K = ``num_components`` = 500). Small 8x8 data default to z = 8,
    128 units, K = 50."""
    z_dim, hidden, k = _vamp_sizes(event_shape, z_dim, hidden, num_components)
    num_dims = math.prod(event_shape)
    lik = make_likelihood(likelihood, event_shape, **likelihood_options)
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


def hvae(event_shape, prior="standard", z_dim=None, hidden=None, num_components=None, likelihood="bernoulli",
         data=None, **likelihood_options):
    """The two-level HVAE of the VampPrior paper (eqs. 10-15) with the authors' gated MLPs:
    q(z2|x): x → 300 → 300; q(z1|x, z2): [x → 300, z2 → 300] → 300; p(z1|z2): z2 → 300 → 300;
    p(x|z1, z2): [z1 → 300, z2 → 300] → 300 → x. z1 = z2 = 40, log-variances through
    hardtanh(−6, 2), He init; ``prior`` on z2 (one of :data:`PRIORS`, K = 500)."""
    z_dim, h, k = _vamp_sizes(event_shape, z_dim, hidden, num_components)
    num_dims = math.prod(event_shape)
    ev = len(event_shape)
    lik = make_likelihood(likelihood, event_shape, **likelihood_options)
    enc2 = he_init(GaussianEncoder(gated_mlp([num_dims, h, h]), h, z_dim, event_dim=ev, logvar_bounds=_LOGVAR))
    enc1 = he_init(JointGaussianEncoder(gated_mlp([num_dims, h]), gated_mlp([z_dim, h]), gated_mlp([2 * h, h]), h,
                                        z_dim, event_dim=ev, logvar_bounds=_LOGVAR))
    cond = he_init(ConditionalGaussian(gated_mlp([z_dim, h, h]), h, z_dim, logvar_bounds=_LOGVAR))
    dec = JointDecoder(gated_mlp([z_dim, h]), gated_mlp([z_dim, h]),
                       he_init(nn_sequential(gated_mlp([2 * h, h]), lik.params_per_dim * num_dims, h)), lik)
    p = make_prior(prior, z_dim, enc2.params, event_shape, k, data)
    return HVAE(enc2, enc1, cond, dec, p)


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
    lik = make_likelihood(likelihood, event_shape, **likelihood_options)
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


def _with_prior(builder, prior):
    def build(event_shape, **options):
        options.setdefault("prior", prior)
        return builder(event_shape, **options)
    build.needs_data = prior == "vampprior-data"
    return build


register("vampprior", "VAE (L=1) with the VampPrior, K=500 learnable pseudo-inputs, gated MLPs (Tomczak & Welling "
         "2018, eq. 9)", defaults=_VAMP_DEFAULTS)(_with_prior(gated_vae, "vampprior"))
register("vae-mog", "VAE (L=1) with a mixture-of-Gaussians prior, K=500, gated MLPs (VampPrior paper §3)",
         defaults=_VAMP_DEFAULTS)(_with_prior(gated_vae, "mog"))
register("vampprior-data", "VAE (L=1) with the VampPrior on K=500 fixed random training images (VampPrior paper §4)",
         defaults=_VAMP_DEFAULTS)(_with_prior(gated_vae, "vampprior-data"))
register("hvae", "two-level HVAE (eqs. 10-15) with a standard-normal prior on z2, gated MLPs",
         defaults=_VAMP_DEFAULTS)(_with_prior(hvae, "standard"))
register("hvae-vampprior", "two-level HVAE (eqs. 10-15) with the VampPrior on z2 (eq. 12), gated MLPs",
         defaults=_VAMP_DEFAULTS)(_with_prior(hvae, "vampprior"))


register("convhvae-vampprior", "ConvHVAE: two-level HVAE with gated convolutional coders and the VampPrior "
         "(VampPrior paper §5.1)", defaults=_VAMP_DEFAULTS)(_with_prior(convhvae, "vampprior"))


def _pixelhvae(event_shape, **options):
    options.setdefault("prior", "vampprior")
    return convhvae(event_shape, pixelcnn=True, **options)


register("pixelhvae-vampprior", "PixelHVAE: the ConvHVAE with a PixelCNN decoder and the VampPrior "
         "(VampPrior paper §5.1; slow to sample on a CPU)", defaults=_VAMP_DEFAULTS)(_pixelhvae)


# The Riemannian Brownian-motion prior paper (../shared/papers/002) and its baselines.
def riemannian_vae(event_shape, prior="heat", z_dim=2, hidden=(300, 300), num_centres=350, bandwidth=0.01,
                   min_precision=1e-3, sampler=None, num_components=128, likelihood="gaussian", t=1.0):
    """A VAE with the paper's coders (Tables 4-5): ELU MLPs ``hidden`` (300-300), a linear decoder
    mean and an RBF precision network (``num_centres`` = 350, λ = ``bandwidth`` = 0.01) for
    σ(z) = β_ψ(z)^{-1/2}. ``prior="heat"`` gives the R-VAE (heat-kernel prior with learnable
    centre and time ``t``, heat-kernel posterior sampled by ``sampler``: ``"euclidean"`` by default,
    or ``"brownian"``); ``"standard"`` and
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
        raise ValueError("sampler chooses how the heat-kernel posterior is drawn; it applies to prior='heat' (rvae) only")
    z_dim, hidden = int(z_dim), [int(h) for h in hidden]
    num_dims = math.prod(event_shape)
    enc_net = MLP([num_dims] + hidden, activation="elu", final_activation="elu")
    if prior == "heat":
        # Both densities w.r.t. det G(z) dz: log q - log p is eq. (3.8) with the metric at the centres only.
        encoder = HeatKernelEncoder(enc_net, hidden[-1], z_dim, event_dim=len(event_shape),
                                    sampler=sampler or "euclidean",
                                    base_measure="det-g")
        p = HeatKernelPrior(z_dim, t=t, base_measure="det-g")
    else:
        encoder = GaussianEncoder(enc_net, hidden[-1], z_dim, event_dim=len(event_shape),
                                  logvar_bounds=(math.log(1e-4), math.log(5.0)))
        p = make_prior(prior, z_dim, encoder.params, event_shape, num_components)
    mean_net = MLP([z_dim] + hidden[::-1] + [num_dims], activation="elu")
    decoder = GaussianImmersion(mean_net, z_dim, event_shape, num_centres=num_centres, bandwidth=bandwidth,
                                min_precision=min_precision)
    return RiemannianVAE(encoder, decoder, p)


# Appendix C.1: 100 + 200 epochs, Adam 1e-3, batch 100; continuous data.
_RVAE_DEFAULTS = {"phases": (100, 200), "lr": 1e-3, "batch_size": 100, "binarize": False, "likelihood": "gaussian"}
register("rvae", "R-VAE: heat-kernel (Riemannian Brownian-motion) prior and posterior under the decoder's pull-back "
         "metric, RBF variance network, two-phase training (Kalatzis et al. 2020)",
         defaults={**_RVAE_DEFAULTS, "warmup": 0, "phase_one_beta": 0.0})(_with_prior(riemannian_vae, "heat"))
register("vae-rbf", "VAE baseline of the R-VAE paper: standard-normal prior, RBF variance network, KL warm-up "
         "then variance phase", defaults={**_RVAE_DEFAULTS, "warmup": 100})(_with_prior(riemannian_vae, "standard"))
register("vampprior-rbf", "VampPrior baseline of the R-VAE paper (K=128), RBF variance network, KL warm-up then "
         "variance phase", defaults={**_RVAE_DEFAULTS, "warmup": 100})(_with_prior(riemannian_vae, "vampprior"))


def needs_data(name):
    """Whether preset ``name`` (with ``options``) must be given training images (``data=``)."""
    _check(name)
    return bool(getattr(_PRESETS[name][1], "needs_data", False))


# Soft-IntroVAE with a learned prior (../shared/papers/001): the model is a plain VAE; the game is in training
# (pyrozoo.inference.introspective.IntroTrainer, settings from intro_config()).
#: (beta_rec, beta_kl, beta_neg) per 2D set, paper 001 Table 3 (the authors' grid search); images: §5.2.
INTRO_BETAS = {"8gaussians": (0.2, 0.3, 0.9), "2spirals": (0.2, 0.05, 0.2), "checkerboard": (0.05, 0.2, 0.8),
               "rings": (0.2, 0.2, 0.6), "image": (1.0, 1.0, 256.0)}
INTRO_PRIORS = ("standard", "mog", "vampprior")


def intro_vae(event_shape, prior="standard", num_components=None, learn_weights=True, z_dim=None, hidden=None,
              channels=None, likelihood="gaussian", **likelihood_options):
    """The Soft-IntroVAE networks with prior ``prior`` (one of :data:`INTRO_PRIORS`).

    2D data: ReLU MLPs 2→256→256→256→256→(2z) and z→256→256→256→256→2, z = 2, K = 64
    components. Images whose sides divide by 4 (MNIST, FashionMNIST, CIFAR-10): the residual
    coders of :mod:`pyrozoo.nn.residual` with ``channels`` [64, 128] and z = 32 for one-channel
    images, [64, 128, 256] and z = 128 for colour images, K = 100 (§5.2). Other data (the 8×8
    digits): MLP coders 512-256, z = 32, K = 100. The decoder is Gaussian with σ² = ½ by default,
    so −log p(x|z) is the squared error of the paper's MSE reconstruction loss up to a constant
    (data stay continuous). ``learn_weights``: learnable mixture contributions (LC) for the MoG and
    VampPrior (the VampPrior's pseudo-inputs are unbounded and start at N(0, 1) draws). The MoG
    presets start from the VampPrior: the trainer turns it into a MoG (μ_k, log σ²_k from the
    encoder at u_k) when the game starts (§5.1).
    """
    from pyrozoo.distributions.intro_prior import ClippedMixturePrior, RealVampPrior
    from pyrozoo.nn.residual import ResidualDecoderNet, ResidualEncoderNet
    if prior not in INTRO_PRIORS:
        raise ValueError(f"unknown prior {prior!r} for Soft-IntroVAE; choose from {', '.join(INTRO_PRIORS)}")
    event_shape = tuple(event_shape)
    two_d = math.prod(event_shape) == 2
    image = len(event_shape) == 3 and event_shape[1] % 4 == 0 and event_shape[2] % 4 == 0 and event_shape[1] >= 16
    colour = image and event_shape[0] == 3
    z_dim = int(z_dim if z_dim is not None else (2 if two_d else 128 if colour else 32))
    k = int(num_components if num_components is not None else (64 if two_d else 100))
    if likelihood == "gaussian":
        likelihood_options.setdefault("scale", math.sqrt(0.5))
    if image:
        if hidden is not None:
            raise ValueError("image presets use residual coders: set channels, not hidden")
        channels = tuple(channels if channels is not None else ((64, 128, 256) if colour else (64, 128)))
        lik = make_likelihood(likelihood, event_shape, **likelihood_options)
        enc_net = ResidualEncoderNet(event_shape, channels)
        encoder = GaussianEncoder(enc_net, enc_net.out_features, z_dim, event_dim=3)
        decoder = Decoder(ResidualDecoderNet(z_dim, event_shape, channels, lik.params_per_dim), lik)
        model = VAE(encoder, decoder, StandardNormalPrior(z_dim))
    else:
        if channels is not None:
            raise ValueError("channels applies to image data; the MLP coders take hidden")
        hidden = hidden if hidden is not None else ((256,) * 4 if two_d else (512, 256))
        model = mlp_vae(event_shape, z_dim=z_dim, hidden=hidden, likelihood=likelihood,
                        likelihood_options=likelihood_options)
    if prior == "mog":
        model.prior = ClippedMixturePrior(z_dim, k, learn_weights=learn_weights)
    elif prior == "vampprior":
        model.prior = RealVampPrior(z_dim, model.encoder.params, event_shape, k, weighted=learn_weights)
    return model


_INTRO_DEFAULTS = {"trainer": "introspective", "dataset": "8gaussians", "iterations": 30000, "batch_size": 512, "lr": 2e-4,
                   "warmup_iterations": 2000, "milestones": (10000, 15000), "learn_prior": False, "clip": False,
                   "r_entropy": 0.0}
register("sintrovae", "Soft-IntroVAE with a standard-normal prior (SG; Daniel & Tamar 2021, paper 001 eq. 4)",
         defaults=_INTRO_DEFAULTS)(_with_prior(intro_vae, "standard"))
register("sintrovae-mog", "Soft-IntroVAE with a mixture-of-Gaussians prior (64/100 components): a VampPrior with "
         "learned weights in the VAE warm-up, turned into a MoG held fixed in the game (paper 001 MoG+LC)",
         defaults=_INTRO_DEFAULTS)(_with_prior(intro_vae, "vampprior"))
register("sintrovae-prior", "Soft-IntroVAE with a learned MoG prior in prior-decoder cooperation: IP + LC + adaptive "
         "log-variance soft clipping + responsibility-entropy regularisation on images (paper 001 §4)",
         defaults={**_INTRO_DEFAULTS, "learn_prior": True, "clip": True, "r_entropy": 10.0})(
             _with_prior(intro_vae, "vampprior"))


def intro_config(name, dataset=None, **overrides):
    """The :class:`~pyrozoo.inference.introspective.IntroConfig` of an introspective preset for
    ``dataset`` (a 2D set name takes its Table 3 β's, batch 512 and no entropy term, as §5.1;
    anything else the image β's of §5.2, batch 32, Daniel & Tamar's image default, and the
    preset's r_entropy). ``overrides``
    replace config fields or loss weights (``beta_rec``, ``r_entropy``, ...)."""
    from dataclasses import fields

    from pyrozoo.inference.introspective import IntroConfig, IntroLossSettings
    d = train_defaults(name)
    if d.get("trainer") != "introspective":
        raise ValueError(f"preset {name!r} is not trained with the introspective game")
    beta_rec, beta_kl, beta_neg = INTRO_BETAS.get(dataset, INTRO_BETAS["image"])
    two_d = dataset in INTRO_BETAS and dataset != "image"
    # §5.1 trains the 2D sets without the responsibility-entropy term; §5.2 adds it for images
    loss = {"beta_rec": beta_rec, "beta_kl": beta_kl, "beta_neg": beta_neg, "r_entropy": 0.0 if two_d else d["r_entropy"]}
    cfg = {"iterations": d["iterations"], "batch_size": d["batch_size"] if two_d else 32, "lr_encoder": d["lr"], "lr_decoder": d["lr"],
           "warmup": d["warmup_iterations"], "milestones": tuple(d["milestones"]), "learn_prior": d["learn_prior"],
           "clip": d["clip"]}
    loss_names = {f.name for f in fields(IntroLossSettings)}
    cfg_names = {f.name for f in fields(IntroConfig)} - {"loss"}
    for key, value in overrides.items():
        if key in loss_names:
            loss[key] = value
        elif key in cfg_names:
            cfg[key] = value
        else:
            raise ValueError(f"unknown introspective setting {key!r}")
    return IntroConfig(loss=IntroLossSettings(**loss), **cfg).validate()


# The VAE with a Stein-learned hyperprior (../shared/papers/000), trained by Stein Mixture Inference
# (pyrozoo.inference.SMI; the preset's ``smi_options`` and train defaults hold M, α and the kernel).
def stein_hyperprior_vae(event_shape, num_components=5, m_dim=None, z_dim=None, hidden=None, num_flows=2,
                         flow_hidden=None, conditioning="concat", repulsion_temperature=1.0, kernel="rbf",
                         likelihood="bernoulli", **likelihood_options):
    """Paper 000: m ~ N(0, I_dm), eps|m ~ N(pad(m), I), z = f_λ(eps) (``num_flows`` affine coupling
    layers of ``flow_hidden`` units), x ~ p(x|z) with the MLP decoder of preset ``vae``; guide
    q(m) = Stein mixture of M = ``num_components`` diagonal Gaussians and one encoder q(z|x, m)
    conditioned by ``conditioning`` (``"concat"`` or ``"film"``). ``m_dim`` defaults to z_dim;
    m_dim > z_dim is refused. ``repulsion_temperature`` (α) and ``kernel`` are SMI settings,
    validated here and stored as ``model.smi_options``."""
    from pyrozoo.distributions.flow_prior import ConditionalFlowPrior
    from pyrozoo.guides.stein import ConditionalGaussianEncoder, SteinMixtureGuide
    from pyrozoo.inference.kernels import make_kernel
    from pyrozoo.models.stein_hyperprior import SteinHyperpriorVAE

    if int(num_components) < 1:
        raise ValueError(f"the Stein mixture needs num_components (M) >= 1, got {num_components}")
    if not float(repulsion_temperature) >= 0:
        raise ValueError(f"the repulsion temperature alpha must be >= 0, got {repulsion_temperature}")
    make_kernel(kernel)
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
    model = SteinHyperpriorVAE(encoder, Decoder(dec_net, lik), prior, SteinMixtureGuide(m_dim, num_components))
    model.smi_options = {"num_particles": int(num_components), "repulsion_temperature": float(repulsion_temperature),
                         "kernel": kernel}
    return model


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


register("stein-hyperprior", "VAE with a Stein-learned hyperprior: global m, shared flow p(z|m), q(m) a Stein mixture "
         "of M=5 Gaussians trained by SMI, m-conditioned encoder (paper 000)",
         defaults={**_VAE_DEFAULTS, "trainer": "smi", "warmup": 0, "particle_lr": 1e-2, "num_elbo_particles": 1})(
             stein_hyperprior_vae)
register("vae-flowprior", "VAE with a flow prior p(z) = f# N(0, I) and no global m (baseline of paper 000)",
         defaults=_VAE_DEFAULTS)(flow_prior_vae)
