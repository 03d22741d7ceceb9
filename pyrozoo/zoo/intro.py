"""Presets of Athanasiadis, Lindsten & Felsberg (2025), Prior Learning in Introspective VAEs,
arXiv:2408.13805 (Soft-IntroVAE of Daniel & Tamar (2021), arXiv:2012.13253, with a learned
prior). The model is a plain VAE; the game is in training
(:class:`pyrozoo.inference.game.IntroStrategy`, settings from :func:`intro_config`)."""

import math

from pyrozoo.distributions import StandardNormalPrior, make_likelihood
from pyrozoo.guides import GaussianEncoder
from pyrozoo.models import VAE, Decoder
from pyrozoo.zoo.classic import mlp_vae
from pyrozoo.zoo.registry import STANDARD_REPORT, checked, recipe, register, with_prior

#: (beta_rec, beta_kl, beta_neg) per 2D set, Athanasiadis et al. (2025) Table 3 (the authors' grid
#: search); images: §5.2 (Daniel & Tamar's recommended values; the authors' code sets beta_neg = 128 for MNIST).
INTRO_BETAS = {"8gaussians": (0.2, 0.3, 0.9), "2spirals": (0.2, 0.05, 0.2), "checkerboard": (0.05, 0.2, 0.8),
               "rings": (0.2, 0.2, 0.6), "image": (1.0, 1.0, 256.0)}
INTRO_PRIORS = ("standard", "mog", "vampprior")

#: §5.2: "the default training hyperparameters ... of Daniel & Tamar (2021), except that the first 20 epochs
#: were used as a VAE training warm-up". Per data set (batch size, epochs of the game, warm-up epochs) as in the
#: authors' code (athaioan/intro_prior, images/utils/configs.py: 220 epochs of which 20 VAE warm-up, batch 128
#: for (F)MNIST and 32 for CIFAR-10); the learning rate never drops (their milestone is epoch 350). The
#: training-split sizes are pyrozoo's (the last 10k / 5k official training images are validation).
IMAGE_SCHEDULES = {"mnist": (128, 200, 20), "fashion-mnist": (128, 200, 20), "cifar10": (32, 200, 20),
                   "digits": (128, 200, 20)}
TRAIN_SIZES = {"mnist": 50000, "fashion-mnist": 50000, "cifar10": 45000, "digits": 1197}


@checked
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
    VampPrior. The MoG presets start from the VampPrior: the trainer turns it into a MoG (μ_k, log σ²_k
    from the encoder at u_k) when the game starts (§5.1).

    The VampPrior's components are the posterior the encoder gives the pseudo-inputs, with the
    encoder's batch-norm layers in eval mode (:class:`~pyrozoo.distributions.EvalNormParams`: running
    statistics of the data, not of the K pseudo-inputs, and not updated by them). On images (any
    ``(C, H, W)`` data, which lie in [0, 1]) the pseudo-inputs are bounded to [0, 1] like the data
    (:class:`~pyrozoo.distributions.VampPrior`, started at N(0.05, 0.01²) as Tomczak & Welling 2018);
    on 2D data they are unbounded and start at N(0, 1) draws.
    """
    from pyrozoo.distributions import VampPrior
    from pyrozoo.distributions.intro_prior import ClippedMixturePrior, EvalNormParams, RealVampPrior
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
        encode = EvalNormParams(model.encoder)
        bounded = len(event_shape) == 3
        model.prior = (VampPrior(z_dim, encode, event_shape, k, weighted=learn_weights) if bounded
                       else RealVampPrior(z_dim, encode, event_shape, k, weighted=learn_weights))
    return model


_INTRO_DEFAULTS = {"dataset": "8gaussians", "iterations": 30000, "batch_size": 512, "lr": 2e-4,
                   "warmup_iterations": 2000, "milestones": [10000, 15000], "r_entropy": 0.0,
                   "likelihood": "gaussian"}
_REF = ("Athanasiadis, Lindsten & Felsberg (2025), Prior Learning in Introspective VAEs, arXiv:2408.13805; "
        "Daniel & Tamar (2021), Soft-IntroVAE, arXiv:2012.13253")


def image_schedule(dataset):
    """The §5.2 schedule of ``dataset`` in iterations of one process: ``{"batch_size", "iterations",
    "warmup_iterations", "milestones"}`` with an epoch = ceil(N / batch) iterations (N the training
    split), (game + warm-up) epochs in all and the warm-up epochs first (:data:`IMAGE_SCHEDULES`); the
    one milestone sits at the last iteration, so the learning rate never drops."""
    batch, epochs, warmup = IMAGE_SCHEDULES[dataset]
    per_epoch = -(-TRAIN_SIZES[dataset] // batch)
    iterations = (epochs + warmup) * per_epoch
    return {"batch_size": batch, "iterations": iterations, "warmup_iterations": warmup * per_epoch,
            "milestones": [iterations]}


def _data_defaults(dataset):
    """§5.1 trains the 2D sets at batch 512 without the responsibility-entropy term for 30 000 iterations;
    §5.2 the images by epochs (:func:`image_schedule`) with the preset's r_entropy."""
    from pyrozoo.data import BOXES
    if dataset in BOXES:
        return {"batch_size": 512, "r_entropy": 0.0}
    return image_schedule(dataset) if dataset in IMAGE_SCHEDULES else {"batch_size": 32}


def _register(name, description, prior, learn_prior=False, clip=False, r_entropy=0.0):
    register(name, description, regime="introspective", defaults={**_INTRO_DEFAULTS, "r_entropy": r_entropy},
             data_defaults=_data_defaults, binarize=False, learn_prior=learn_prior, clip=clip,
             report=STANDARD_REPORT + ("intro_images",), report_2d=("density2d",), reference=_REF)(
                 with_prior(intro_vae, prior))


_register("sintrovae", "Soft-IntroVAE with a standard-normal prior (SG; Daniel & Tamar 2021; Athanasiadis et al. "
          "2025 eq. 4)", "standard")
_register("sintrovae-mog", "Soft-IntroVAE with a mixture-of-Gaussians prior (64/100 components): a VampPrior with "
          "learned weights in the VAE warm-up, turned into a MoG held fixed in the game (MoG+LC of Athanasiadis et "
          "al. 2025)", "vampprior")
_register("sintrovae-prior", "Soft-IntroVAE with a learned MoG prior in prior-decoder cooperation: IP + LC + adaptive "
          "log-variance soft clipping + responsibility-entropy regularisation on images (Athanasiadis et al. 2025 "
          "§4)", "vampprior", learn_prior=True, clip=True, r_entropy=10.0)


def intro_config(name, dataset=None, **overrides):
    """The :class:`~pyrozoo.inference.game.IntroConfig` of an introspective preset on ``dataset``
    (a 2D set takes its Table 3 β's, batch 512 and no entropy term, as §5.1; an image set the
    image β's of §5.2, its schedule (:func:`image_schedule`) and the preset's r_entropy).
    ``overrides`` replace config fields or loss weights (``iterations``, ``beta_rec``, ``r_entropy``, ...)."""
    from dataclasses import fields

    from pyrozoo.inference.game import IntroConfig
    from pyrozoo.inference.introspective import IntroLossSettings
    r = recipe(name)
    if r.regime != "introspective":
        raise ValueError(f"preset {name!r} is not trained with the introspective game")
    d = r.defaults_for(dataset or r.defaults.get("dataset"))
    beta_rec, beta_kl, beta_neg = INTRO_BETAS.get(dataset, INTRO_BETAS["image"])
    loss = {"beta_rec": beta_rec, "beta_kl": beta_kl, "beta_neg": beta_neg, "r_entropy": d["r_entropy"]}
    cfg = {"iterations": d["iterations"], "batch_size": d["batch_size"], "lr_encoder": d["lr"], "lr_decoder": d["lr"],
           "warmup": d["warmup_iterations"], "milestones": tuple(d["milestones"]), "learn_prior": r.learn_prior,
           "clip": r.clip}
    loss_names = {f.name for f in fields(IntroLossSettings)}
    cfg_names = {f.name for f in fields(IntroConfig)} - {"loss"}
    for key, value in overrides.items():
        if key in loss_names:
            loss[key] = value
        elif key in cfg_names:
            cfg[key] = tuple(value) if key == "milestones" else value
        else:
            raise ValueError(f"unknown introspective setting {key!r}; choose from "
                             f"{', '.join(sorted(loss_names | cfg_names))}")
    return IntroConfig(loss=IntroLossSettings(**loss), **cfg).validate()
