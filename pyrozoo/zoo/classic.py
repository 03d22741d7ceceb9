"""Presets of the classic family: the MLP VAE every paper reuses, posterior families (full
covariance, planar, IAF), objectives (β, free bits, IWAE) and the LSTM sequence VAE.

References: Kingma & Welling (2014), Auto-Encoding Variational Bayes, arXiv:1312.6114; Pavesi
(2024), Variational Auto Encoders (lecture notes; equations cited as "notes eq. N"); Rezende &
Mohamed (2015), Variational Inference with Normalizing Flows, arXiv:1505.05770 (planar flows);
Kingma et al. (2016), Improved Variational Inference with Inverse Autoregressive Flow,
arXiv:1606.04934; Burda et al. (2016), Importance Weighted Autoencoders, arXiv:1509.00519;
Higgins et al. (2017), β-VAE, ICLR; Kingma et al. (2016) for free bits.
"""

import functools
import math

from pyrozoo.distributions import StandardNormalPrior, make_likelihood
from pyrozoo.guides import make_encoder
from pyrozoo.models import VAE, Decoder
from pyrozoo.models.seqvae import seq_vae
from pyrozoo.nn import MLP
from pyrozoo.zoo.registry import checked, register


@checked
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
_KINGMA = "Kingma & Welling (2014), Auto-Encoding Variational Bayes, arXiv:1312.6114"
_NOTES = "Pavesi (2024), Variational Auto Encoders (lecture notes)"


@register("vae", "VAE with a standard-normal prior, diagonal Gaussian encoder, MLP coders (Kingma & Welling 2014)",
          defaults=_VAE_DEFAULTS, reference=_KINGMA)
def _vae(event_shape, z_dim=None, hidden=None, likelihood="bernoulli", posterior="diagonal", flow_steps=None,
         **likelihood_options):
    small = math.prod(event_shape) <= 256
    z_dim = z_dim if z_dim is not None else (8 if small else 40)
    hidden = hidden if hidden is not None else ((128, 128) if small else (300, 300))
    return mlp_vae(event_shape, z_dim=z_dim, hidden=hidden, likelihood=likelihood,
                   likelihood_options=likelihood_options, posterior=posterior, flow_steps=flow_steps)


def _family(posterior):
    @functools.wraps(_vae)
    def build_family(event_shape, **options):
        if options.get("posterior", posterior) != posterior:
            raise ValueError(f"this preset fixes the posterior to {posterior!r}; use preset 'vae' with "
                             f"posterior={options['posterior']!r} instead")
        options["posterior"] = posterior
        return _vae(event_shape, **options)
    return build_family


register("vae-fullcov", "VAE with a full-covariance Gaussian posterior, L = L* + diag(sigma) (notes eq. 24)",
         defaults=_VAE_DEFAULTS, reference=_NOTES)(_family("fullcov"))
register("vae-planar", "VAE with an amortised planar-flow posterior, 10 layers (notes eqs. 26-29)",
         defaults=_VAE_DEFAULTS, reference="Rezende & Mohamed (2015), Variational Inference with Normalizing Flows, "
         "arXiv:1505.05770")(_family("planar"))
register("vae-iaf", "VAE with an inverse-autoregressive-flow posterior, 4 steps (notes eqs. 30-33)",
         defaults=_VAE_DEFAULTS, reference="Kingma et al. (2016), Improved Variational Inference with Inverse "
         "Autoregressive Flow, arXiv:1606.04934")(_family("iaf"))
register("beta-vae", "beta-VAE: the KL term weighted by a constant beta = 4 (notes eq. 13; Higgins et al. 2017)",
         defaults={**_VAE_DEFAULTS, "warmup": 0, "beta": 4.0}, reference=_NOTES)(_family("diagonal"))
register("vae-freebits", "VAE trained with free bits: each of 8 latent groups pays max(0.5 nats, KL) "
         "(notes eq. 14)", defaults={**_VAE_DEFAULTS, "objective": "free-bits", "free_bits": 0.5, "kl_groups": 8},
         reference=_NOTES)(_family("diagonal"))
# No warm-up, as Burda et al. (2016); a warm-up or beta given to it tempers the weights (pyrozoo.inference.IWAE).
register("iwae", "VAE trained with the importance-weighted bound, K = 5 (Burda et al. 2016)",
         defaults={**_VAE_DEFAULTS, "warmup": 0, "objective": "iwae", "particles": 5},
         reference="Burda et al. (2016), Importance Weighted Autoencoders, arXiv:1509.00519")(_family("diagonal"))


def _seq_preset(event_shape, z_dim=16, hidden=128, likelihood=None, posterior="diagonal", flow_steps=None):
    """The sequence VAE of notes §4.1 (:func:`pyrozoo.models.seqvae.seq_vae`) with N(0, I) prior."""
    return seq_vae(event_shape, z_dim=z_dim, hidden=hidden, likelihood=likelihood, posterior=posterior,
                   flow_steps=flow_steps)


# Free bits by default: with the plain ELBO the LSTM decoder ignores z (1 active unit of 16 after
# 100 epochs, test log p(x) -12.1); free bits (4 groups, 1 nat each) keeps 7 active and reaches -8.1.
register("seq-vae", "LSTM sequence VAE of neural-network architecture descriptions (notes §4.1, Algs. 1-2), "
         "trained with free bits", defaults={**_VAE_DEFAULTS, "dataset": "architectures", "objective": "free-bits",
                                             "free_bits": 1.0, "kl_groups": 4},
         report=("likelihood", "elbo", "figures", "sequence"), reference=_NOTES)(_seq_preset)
