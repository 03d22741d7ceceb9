"""The two-level hierarchical VAE of Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120 (§4,
eqs. 10-15), as a Pyro model/guide pair."""

import pyro
import torch
from pyro.nn import pyro_method
from torch import nn

from pyrozoo.models.base import ZooModel
from pyrozoo.models.vae import latent_term


class JointDecoder(nn.Module):
    """p(x|z1, z2): ``z1_net`` and ``z2_net`` map each latent to features, ``joint_net`` maps their
    concatenation to the likelihood's parameters ``(..., params_per_dim * D)``."""

    def __init__(self, z1_net, z2_net, joint_net, likelihood):
        super().__init__()
        self.z1_net, self.z2_net, self.joint_net = z1_net, z2_net, joint_net
        self.likelihood = likelihood

    def params(self, z1, z2):
        """The likelihood's parameters ``(..., params_per_dim * D)`` for latents ``z1 (..., d1)`` and
        ``z2 (..., d2)`` whose batch shapes broadcast (the p(x|z1, z2) factor of eq. 11)."""
        h1, h2 = self.z1_net(z1), self.z2_net(z2)
        batch = torch.broadcast_shapes(h1.shape[:-1], h2.shape[:-1])
        return self.joint_net(torch.cat([h1.expand(batch + h1.shape[-1:]), h2.expand(batch + h2.shape[-1:])], -1))

    def forward(self, z1, z2):
        return self.likelihood(self.params(z1, z2))

    def mean(self, z1, z2):
        """The likelihood's mean ``(..., *event_shape)``."""
        return self.likelihood.mean(self.params(z1, z2))


class HVAE(ZooModel):
    """q(z1|x, z2) q(z2|x) and p(x|z1, z2) p(z1|z2) p(z2) (Tomczak & Welling 2018, eqs. 10-15).

    Parts: ``encoder_z2`` (x → q(z2|x), eq. 15), ``encoder_z1`` (x, z2 → q(z1|x, z2), eq. 14),
    ``conditional_z1`` (z2 → p(z1|z2), eq. 13), ``decoder`` (z1, z2 → p(x|z1, z2)) and ``prior``
    on z2 (standard normal, MoG, VampPrior with ``encode=encoder_z2.params``: eq. 12).
    Sites ``"z2"``, ``"z1"``, ``"x"`` inside ``pyro.plate("data")`` at dim −1, so plain
    ``SVI``/``Predictive`` and pyrozoo's evaluation work unchanged. ``x`` is ``(B, *event_shape)``.
    """

    def __init__(self, encoder_z2, encoder_z1, conditional_z1, decoder, prior):
        super().__init__(decoder, prior)
        self.encoder_z2 = encoder_z2
        self.encoder_z1 = encoder_z1
        self.conditional_z1 = conditional_z1

    @pyro_method
    def model(self, x=None, num_data=None, batch_size=None):
        """z2 ~ p(z2), z1 ~ p(z1|z2), x ~ p(x|z1, z2); with ``x=None`` it samples ``batch_size`` points."""
        with self.plate(x, num_data, batch_size):
            z2 = pyro.sample("z2", self.prior())
            z1 = pyro.sample("z1", self.conditional_z1(z2))
            return pyro.sample("x", self.decoder(z1, z2), obs=x)

    @pyro_method
    def guide(self, x, num_data=None, batch_size=None):
        """z2 ~ q(z2|x), then z1 ~ q(z1|x, z2)."""
        with self.plate(x, num_data):
            z2 = pyro.sample("z2", self.encoder_z2(x))
            return pyro.sample("z1", self.encoder_z1(x, z2))

    # the same programs without Pyro traces (fast training and evaluation) ---------------------
    def _plain(self):
        cls = type(self)
        return cls.model is HVAE.model and cls.guide is HVAE.guide

    def direct_elbo(self, x, num_data=None, beta=1.0, analytic_kl=True):
        """(N/B) Σ_i [log p(x_i|z1, z2) − β (KL(z2) + KL(z1))] with z2, z1 drawn as ``guide`` draws
        them (see :meth:`ZooModel.direct_elbo`)."""
        if not self._plain():
            return None
        scale = self._direct_scale(x, num_data)
        q2 = self.encoder_z2(x)
        z2 = q2.rsample()
        q1 = self.encoder_z1(x, z2)
        z1 = q1.rsample()
        elbo = self.decoder(z1, z2).log_prob(x).sum() * scale
        if torch.is_tensor(beta) or beta != 0:  # a tensor β (a captured CUDA graph) always scores the KL
            kl = latent_term(q2, self.prior(), z2, analytic_kl) + latent_term(q1, self.conditional_z1(z2), z1,
                                                                             analytic_kl)
            elbo = elbo - kl.sum() * (beta * scale)
        return elbo

    def direct_log_weights(self, x, num_samples):
        """log p(x, z1, z2) − log q(z1, z2|x) ``(S, B)`` with one q(z2|x) pass for the batch."""
        if not self._plain():
            return None
        q2 = self.encoder_z2(x)
        z2 = q2.rsample((int(num_samples),))
        q1 = self.encoder_z1(x, z2)
        z1 = q1.rsample()
        return (self.decoder(z1, z2).log_prob(x) + self.prior().log_prob(z2) + self.conditional_z1(z2).log_prob(z1)
                - q2.log_prob(z2) - q1.log_prob(z1))

    # conveniences ------------------------------------------------------------------------
    def encode(self, x):
        """q(z2|x), the top-level posterior (batch shape ``(B,)``), for data ``(B, *event_shape)``
        (checked by :meth:`check_data`, without the likelihood's support)."""
        return self.encoder_z2(self.check_data(x, support=False))

    @torch.no_grad()
    def sample(self, n, z=None):
        """Decoder means for ``n`` draws of p(z2) p(z1|z2), or for given top latents ``z`` = z2 ``(n, z2_dim)``."""
        n = self.check_count(n)
        z2 = self.prior().sample((n,)) if z is None else self.check_latent(z, n)
        z1 = self.conditional_z1(z2).sample()
        return self.decoder.mean(z1, z2)

    @torch.no_grad()
    def reconstruct(self, x):
        """Decoder means at one draw of q(z2|x) q(z1|x, z2)."""
        z2 = self.encode(x).sample()
        z1 = self.encoder_z1(x, z2).sample()
        return self.decoder.mean(z1, z2)
