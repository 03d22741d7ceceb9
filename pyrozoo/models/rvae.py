"""VAEs whose decoder is a Gaussian immersion with an RBF variance network: Kalatzis, Eklund, Arvanitidis & Hauberg
(2020), "Variational Autoencoders with Riemannian Brownian Motion Priors", ICML, arXiv:2002.05227.

The R-VAE (heat-kernel prior and posterior) and its two baselines (standard-normal prior and
VampPrior with the same RBF variance network) share :class:`GaussianImmersion` and the
two-phase schedule of Appendix C.1 (:class:`pyrozoo.inference.TwoPhaseStrategy`):

1. the encoder and the decoder mean train with unit decoder variance (the R-VAE as an
   autoencoder, the baselines with KL warm-up);
2. k-means on the encoded training set places the RBF centres, then only the prior and the
   precision network β_ψ train, with the first-phase networks frozen.
"""

import pyro
import torch
from torch import nn

from pyrozoo.distributions.likelihoods import GaussianLikelihood
from pyrozoo.geometry.brownian import brownian_motion
from pyrozoo.geometry.curves import fit_geodesic
from pyrozoo.geometry.metric import jacobian, logdet_psd, mlp_jacobian
from pyrozoo.guides.encoders import distribution_mean
from pyrozoo.models.vae import VAE
from pyrozoo.nn.rbf import RBFPrecision, kmeans_centres


class GaussianImmersion(nn.Module):
    """p(x|z) = N(x; mu_θ(z), diag σ²(z)), the decoder seen as an immersion z -> (mu, σ) (§2.3, Table 5).

    ``mean_net`` maps ``(..., z_dim)`` to ``(..., D)`` (ELU 300-300, linear output in the paper).
    σ(z) = β_ψ(z)^{-1/2} from an :class:`~pyrozoo.nn.rbf.RBFPrecision` with ``num_centres`` centres
    and RBF ``bandwidth`` λ (φ_k = exp(-λ ||z - c_k||²); the paper's "bandwidth 0.01" read as
    λ = 0.01); before :meth:`start_variance` places the centres, σ = ``unit_scale`` everywhere
    (phase one) and the metric has only the mean term.

    ``forward(z)``: a ``Normal(...).to_event`` with batch ``z.shape[:-1]`` and event ``event_shape``.
    ``metric_fn(z)``: the pull-back metric G(z) = J_muᵀJ_mu + J_σᵀJ_σ (eq. 2.5), ``(n, d) -> (n, d, d)``.
    """

    def __init__(self, mean_net, z_dim, event_shape, num_centres=350, bandwidth=0.01, min_precision=1e-3,
                 unit_scale=1.0):
        super().__init__()
        self.mean_net = mean_net
        self.likelihood = GaussianLikelihood(event_shape, scale=unit_scale)
        self.event_shape = self.likelihood.event_shape
        self.precision = RBFPrecision(torch.zeros(int(num_centres), int(z_dim)), self.likelihood.num_dims,
                                      bandwidth=bandwidth, min_precision=min_precision)
        self.register_buffer("variance_on", torch.tensor(False))

    def mu(self, z):
        """Decoder mean, flattened: ``(..., d) -> (..., D)``."""
        return self.mean_net(z)

    def sigma(self, z):
        """Decoder standard deviation β_ψ(z)^{-1/2}, flattened ``(..., D)`` (phase two only)."""
        return self.precision.sigma(z)

    def _sigma_fn(self):
        return self.sigma if bool(self.variance_on) else None

    def forward(self, z):
        mean = self.mu(z).reshape(z.shape[:-1] + self.event_shape)
        if bool(self.variance_on):
            scale = self.sigma(z).reshape(mean.shape)
        else:
            scale = self.likelihood.log_scale.exp().expand(mean.shape)
        return pyro.distributions.Normal(mean, scale, validate_args=False).to_event(len(self.event_shape))

    def immersion(self, z):
        """The decoder as a map into (mean, standard deviation) space, flattened: ``(..., d) -> (..., 2D)``
        (``(..., D)``, the mean only, before phase two). Its pull-back metric is :meth:`metric_fn`
        (eq. 2.5); geodesic solves measure curves by its chords."""
        if bool(self.variance_on):
            return torch.cat([self.mu(z), self.sigma(z)], -1)
        return self.mu(z)

    def mean(self, z):
        """mu_θ(z) shaped as data: ``(..., *event_shape)``."""
        return self.mu(z).reshape(z.shape[:-1] + self.event_shape)

    def mean_jacobian(self, z):
        """J_mu(z) ``(..., D, d)``: the explicit chain rule when the mean network is a plain MLP
        (:func:`~pyrozoo.geometry.metric.mlp_jacobian`), else forward-mode autodiff."""
        if isinstance(self.mean_net, nn.Sequential) and z.dim() == 2:
            try:
                return mlp_jacobian(self.mean_net, z)
            except ValueError:
                pass
        return jacobian(self.mu, z)

    def metric_fn(self, z):
        """G(z) = J_muᵀJ_mu + J_σᵀJ_σ for ``z`` ``(..., d)``: ``(..., d, d)`` (eq. 2.5; the mean
        term only before phase two).

        J_mu comes from forward-mode autodiff (:func:`~pyrozoo.geometry.metric.jacobian`), J_σ
        in closed form (:meth:`~pyrozoo.nn.rbf.RBFPrecision.sigma_jacobian`). When neither ``z``
        nor the mean network needs gradients (phase two: frozen encoder and mean), the mean
        term is computed without building a graph.
        """
        frozen = not z.requires_grad and not any(p.requires_grad for p in self.mean_net.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            jm = self.mean_jacobian(z)
            g = jm.transpose(-1, -2) @ jm
        if bool(self.variance_on):
            js = self.precision.sigma_jacobian(z)
            g = g + js.transpose(-1, -2) @ js
        return 0.5 * (g + g.transpose(-1, -2))

    @torch.no_grad()
    def start_variance(self, codes, x=None, seed=0):
        """Place the RBF centres by k-means on latent ``codes`` ``(N, d)`` and switch σ(z) on.

        With the data ``x`` ``(N, *event_shape)`` the codes came from, the positive weights start
        where the mean precision over the codes is 1 / (mean squared residual of mu_θ) per
        dimension, the maximum-likelihood constant precision of phase one's mean, so phase two
        starts from a sensible likelihood (the paper does not state its initialisation)."""
        k = self.precision.centres.shape[0]
        if len(codes) < k:
            raise ValueError(f"k-means needs at least {k} latent codes for {k} RBF centres, got {len(codes)}")
        self.precision.centres.copy_(kmeans_centres(codes, k, seed=seed))
        if x is not None:
            resid = (x.reshape(len(x), -1) - self.mu(codes)).pow(2).mean(0).clamp_min(1e-4)
            self.precision.match_precision(codes, 1.0 / resid)
        self.variance_on.fill_(True)


class RiemannianVAE(VAE):
    """A VAE with a :class:`GaussianImmersion` decoder and a latent space read as a Riemannian
    manifold under the decoder's pull-back metric (Kalatzis et al. 2020).
    Parts that need the metric (``bind``) get ``decoder.metric_fn`` and, for geodesics, the decoder's
    :meth:`~GaussianImmersion.immersion`.

    With a :class:`~pyrozoo.guides.heat.HeatKernelEncoder` and a
    :class:`~pyrozoo.distributions.HeatKernelPrior` this is the R-VAE (eqs. 3.4-3.8: heat-kernel
    prior and posterior, KL by Monte Carlo, which Pyro's ELBO does site by site); with a Gaussian
    encoder and a standard-normal or VampPrior prior it is the paper's baselines.

    Training runs in two phases (:meth:`phase_parameters`, :meth:`start_phase_two`); the same
    ``model``/``guide`` work with plain Pyro SVI in either phase.
    """

    #: bf16 autocast (pyrozoo.nn.precision) is refused: see the sentence
    autocast_refused = ("its metric Jacobians and geodesic energies differentiate the decoder, and their "
                        "accuracy in bfloat16 has not been checked")

    def __init__(self, encoder, decoder, prior):
        super().__init__(encoder, decoder, prior)
        for part in (encoder, prior):
            if hasattr(part, "bind"):
                part.bind(decoder.metric_fn, decoder.immersion)

    @property
    def phase(self):
        """1 before the switch (unit decoder variance), 2 after."""
        return 2 if bool(self.decoder.variance_on) else 1

    def phase_parameters(self, phase):
        """The parameters that train in ``phase``: 1 -> encoder and decoder mean; 2 -> the prior
        and the precision network β_ψ (Appendix C.1)."""
        if phase == 1:
            return list(self.encoder.parameters()) + list(self.decoder.mean_net.parameters())
        if phase == 2:
            return list(self.prior.parameters()) + list(self.decoder.precision.parameters())
        raise ValueError(f"phase must be 1 or 2, got {phase}")

    @torch.no_grad()
    def encode_means(self, x, batch_size=1000):
        """Posterior centres E_q[z|x] for data ``(N, *event_shape)``: ``(N, z_dim)``."""
        self.check_data(x, support=False)
        batch_size = self.check_count(batch_size, "batch_size")
        return torch.cat([distribution_mean(self.encoder(x[i:i + batch_size]))
                          for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def start_phase_two(self, train_x, seed=0):
        """The switch between phases: k-means centres of the encoded training set for the RBF
        network, and (heat-kernel prior) the prior centre moved to the codes' mean, as the
        authors' code does. ``train_x``: ``(N, *event_shape)``."""
        codes = self.encode_means(train_x)
        self.decoder.start_variance(codes, train_x, seed=seed)
        if hasattr(self.prior, "loc") and self.prior.loc.shape == codes.shape[-1:]:
            self.prior.loc.copy_(codes.mean(0))
        return codes

    # geometry conveniences ----------------------------------------------------------------
    def metric(self, z):
        """The pull-back metric G(z): ``(..., d) -> (..., d, d)``."""
        return self.decoder.metric_fn(z)

    def log_volume(self, z):
        """log sqrt(det G(z)), the log Riemannian volume measure: ``(..., d) -> (...)``."""
        return 0.5 * logdet_psd(self.metric(z), jitter=1e-10)

    def geodesics(self, z0, z1, **kwargs):
        """Geodesics between rows of ``z0`` and ``z1`` ``(B, d)`` under the decoder's metric
        (:func:`~pyrozoo.geometry.curves.fit_geodesic`; keyword arguments go there)."""
        return fit_geodesic(self.decoder.metric_fn, z0, z1, **kwargs)

    def brownian_walk(self, n, num_steps=100, t=None, start=None, generator=None):
        """``n`` Brownian-motion paths on the latent manifold (eq. 3.15), ``(n, num_steps + 1, d)``.

        ``t``: total diffusion time (default: the prior's learned t_p, else 1); ``start``: ``(d,)``
        or ``(n, d)`` (default: the prior's centre, else the origin).
        """
        like = self.decoder.precision.centres
        if start is None:
            start = self.prior.loc.detach() if hasattr(self.prior, "loc") and self.prior.loc.dim() == 1 \
                else torch.zeros(self.z_dim, dtype=like.dtype, device=like.device)
        if t is None:
            t = self.prior.t.detach() if hasattr(self.prior, "t") else 1.0
        z0 = start.expand(n, self.z_dim) if start.dim() == 1 else start
        _, path = brownian_motion(self.decoder.metric_fn, z0, t, num_steps, generator=generator,
                                  return_path=True, jitter=1e-8)
        return path
