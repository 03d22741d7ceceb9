"""The VAE with a Stein-learned hyperprior of the design card "VAE with a Stein-Learned Hyperprior": a global m
indexes latent charts. q(m) is trained by Stein Mixture Inference (SMI) of Rønning, Nalisnick, Ley, Smyth & Hamelryck
(2024), "ELBOing Stein: Variational Bayes with Stein Mixture Inference", arXiv:2410.22948.

Model (design card, eqs. 1-4): m ~ N(0, I_dm); per point eps_i | m ~ N(pad(m), I), z_i = f_λ(eps_i) with one
shared flow, x_i ~ p_θ(x|z_i). Guide (eqs. 5-8): q(m) = (1/M) Σ_k N(a_k, diag B_k) (a
:class:`~pyrozoo.guides.SteinMixtureGuide`, trained by :class:`~pyrozoo.inference.SMI`) and one
encoder q(z|x, m). Sites ``"m"`` (global), ``"z"`` and ``"x"`` (in the data plate).
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import pyro_method

from pyrozoo.models.base import ZooModel


class SteinHyperpriorVAE(ZooModel):
    """p(m) p(z|m) p(x|z) with q(m) q(z|x, m), as two Pyro programs.

    ``prior`` is a :class:`~pyrozoo.distributions.ConditionalFlowPrior` (``prior(m)`` gives
    p(z|m)), ``encoder`` a :class:`~pyrozoo.guides.ConditionalGaussianEncoder`, ``q_m`` a
    :class:`~pyrozoo.guides.SteinMixtureGuide`. Pass ``num_data=N`` to weigh the global m against
    N points. Shapes: x ``(B, *event_shape)``; m ``(m_dim,)`` (``(..., M, 1, m_dim)`` in SMI's
    particle plates); z ``(..., B, z_dim)``.
    """

    def __init__(self, encoder, decoder, prior, q_m):
        super().__init__(decoder, prior)
        if prior.m_dim > prior.z_dim:
            raise ValueError(f"m_dim={prior.m_dim} > z_dim={prior.z_dim} is refused")
        if q_m.m_dim != prior.m_dim or encoder.m_dim != prior.m_dim:
            raise ValueError("q(m), the encoder and the prior disagree on m_dim")
        self.encoder, self.q_m = encoder, q_m
        self.m_dim = prior.m_dim
        self.num_components = q_m.num_components

    def hyperprior(self):
        """p(m) = N(0, I_dm) (eq. 1)."""
        zero = self.q_m.loc.new_zeros(self.m_dim)
        return dist.Normal(zero, torch.ones_like(zero)).to_event(1)

    @pyro_method
    def model(self, x=None, num_data=None, batch_size=None):
        """The generative program; with ``x=None`` it samples ``batch_size`` (default 1) new points."""
        m = pyro.sample("m", self.hyperprior())
        with self.plate(x, num_data, batch_size):
            z = pyro.sample("z", self.prior(m))
            return pyro.sample("x", self.decoder(z), obs=x)

    @pyro_method
    def guide(self, x, num_data=None, batch_size=None):
        """The inference program: ``"m" ~ q(m)`` (a Stein mixture), then ``"z" ~ q(z|x, m)`` in the plate."""
        m = pyro.sample("m", self.q_m())
        with self.plate(x, num_data):
            return pyro.sample("z", self.encoder(x, m))

    # conveniences --------------------------------------------------------------------------
    def encode(self, x, m=None):
        """q(z|x, m) with batch shape ``(B,)``, at ``m`` ``(m_dim,)`` (default: the mean of q(m)), for data
        ``(B, *event_shape)`` (checked by :meth:`check_data`, without the likelihood's support)."""
        self.check_data(x, support=False)
        if m is None:
            return self.encoder(x, self.q_m().mean)
        if not torch.is_tensor(m) or tuple(m.shape) != (self.m_dim,):
            raise ValueError(f"m must be one value of the global latent, a tensor of shape ({self.m_dim},), got "
                             f"{tuple(m.shape) if torch.is_tensor(m) else type(m).__name__}")
        return self.encoder(x, self.check_latent(m[None], name="m", dim=self.m_dim)[0])  # its dtype and device

    def decode(self, z):
        """The likelihood's mean at ``z`` ``(..., z_dim)``: ``(..., *event_shape)``."""
        return self.decoder.mean(z)

    @torch.no_grad()
    def sample(self, n, m=None):
        """Means of p(x|z) for ``n`` draws m ~ q(m), z ~ p(z|m): ``(n, *event_shape)``."""
        n = self.check_count(n)
        m = self.q_m().sample((n,)) if m is None else self.check_latent(m, n, name="m", dim=self.m_dim)
        return self.decode(self.prior(m).sample())

    @torch.no_grad()
    def reconstruct(self, x):
        """Decoder means at one draw m ~ q(m), z ~ q(z|x, m): ``(B, *event_shape)``."""
        return self.decode(self.encode(x, self.q_m().sample()).sample())
