"""The one-level VAE as a Pyro model/guide pair built from a prior, an encoder and a decoder."""

import pyro
import torch
from pyro.nn import pyro_method

from pyrozoo.models.base import ZooModel


def latent_term(q, p, z, analytic_kl=True):
    """KL(q ‖ p) per point where a closed form is registered, else log q(z) − log p(z) at the draw
    ``z`` (the single-sample estimate), as :func:`pyrozoo.inference.objectives.elbo_from_traces`
    scores a latent site. Shapes: batch ``(..., B)``."""
    from pyrozoo.inference.objectives import _analytic_kl
    kl = _analytic_kl(q, p) if analytic_kl else None
    return kl if kl is not None else q.log_prob(z) - p.log_prob(z)


class VAE(ZooModel):
    """p(z) p(x|z) with amortised q(z|x), as two Pyro programs.

    ``model(x)`` samples ``"z"`` from ``prior()`` and observes ``"x"`` under ``decoder(z)``;
    ``guide(x)`` samples ``"z"`` from ``encoder(x)``. Both sit in ``pyro.plate("data")`` at dim
    −1; pass ``num_data=N`` to scale a mini-batch to the full data set. Works with plain
    ``SVI(vae.model, vae.guide, optim, Trace_ELBO())`` and ``Predictive``.

    Shapes: ``x`` is ``(B, *event_shape)``; z is ``(B, z_dim)`` (``(S, B, z_dim)`` under a
    particle plate).
    """

    def __init__(self, encoder, decoder, prior):
        super().__init__(decoder, prior)
        self.encoder = encoder

    @pyro_method
    def model(self, x=None, num_data=None, batch_size=None):
        """The generative program; with ``x=None`` it samples ``batch_size`` (default 1) new points."""
        with self.plate(x, num_data, batch_size):
            z = pyro.sample("z", self.prior())
            return pyro.sample("x", self.decoder(z), obs=x)

    @pyro_method
    def guide(self, x, num_data=None, batch_size=None):
        """The inference program: ``"z" ~ encoder(x)`` inside the data plate."""
        with self.plate(x, num_data):
            return pyro.sample("z", self.encoder(x))

    # the same programs without Pyro traces (fast training and evaluation) ---------------------
    def _plain(self):
        cls = type(self)
        return cls.model is VAE.model and cls.guide is VAE.guide

    def direct_elbo(self, x, num_data=None, beta=1.0, analytic_kl=True):
        """(N/B) Σ_i [log p(x_i|z_i) − β KL_i] with z_i ~ q(z|x_i) drawn as ``guide`` draws it (see
        :meth:`ZooModel.direct_elbo`); None for subclasses that change the programs."""
        if not self._plain():
            return None
        scale = self._direct_scale(x, num_data)
        q = self.encoder(x)
        z = q.rsample()
        per_point = self.decoder(z).log_prob(x)
        if torch.is_tensor(beta) or beta != 0:  # a tensor β (a captured CUDA graph) always scores the KL
            kl = latent_term(q, self.prior(), z, analytic_kl)
            per_point = per_point - (kl if not torch.is_tensor(beta) and beta == 1 else beta * kl)
        return per_point.sum() * scale  # one sum and one scaling: the fewest operations for autograd

    def direct_log_weights(self, x, num_samples):
        """log p(x, z_s) − log q(z_s|x) ``(S, B)`` with one encoder pass for the batch."""
        if not self._plain():
            return None
        q = self.encoder(x)
        z = q.rsample((int(num_samples),))
        return self.decoder(z).log_prob(x) + self.prior().log_prob(z) - q.log_prob(z)

    # conveniences for plots and users ------------------------------------------------------
    def encode(self, x):
        """q(z|x) as a distribution with batch shape ``(B,)`` for data ``(B, *event_shape)``
        (checked by :meth:`check_data`, without the likelihood's support)."""
        return self.encoder(self.check_data(x, support=False))

    def decode(self, z):
        """The likelihood's mean at ``z`` ``(..., z_dim)``: ``(..., *event_shape)``."""
        return self.decoder.mean(z)

    @torch.no_grad()
    def sample(self, n, z=None):
        """Means of p(x|z) for ``n`` draws z ~ p(z) (or at given ``z`` ``(n, z_dim)``): ``(n, *event_shape)``."""
        n = self.check_count(n)
        z = self.prior().sample((n,)) if z is None else self.check_latent(z, n)
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x):
        """Decoder means at one draw z ~ q(z|x): ``(B, *event_shape)``."""
        return self.decode(self.encode(x).sample())
