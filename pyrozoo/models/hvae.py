"""The two-level hierarchical VAE of the VampPrior paper (§4, eqs. 10-15) as a Pyro model/guide pair."""

import pyro
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, pyro_method
from torch import nn

from pyrozoo.models.plates import data_plate


class JointDecoder(nn.Module):
    """p(x|z1, z2): ``z1_net`` and ``z2_net`` map each latent to features, ``joint_net`` maps their
    concatenation to the likelihood's parameters ``(..., params_per_dim * D)``."""

    def __init__(self, z1_net, z2_net, joint_net, likelihood):
        super().__init__()
        self.z1_net, self.z2_net, self.joint_net = z1_net, z2_net, joint_net
        self.likelihood = likelihood

    def params(self, z1, z2):
        h1, h2 = self.z1_net(z1), self.z2_net(z2)
        batch = torch.broadcast_shapes(h1.shape[:-1], h2.shape[:-1])
        return self.joint_net(torch.cat([h1.expand(batch + h1.shape[-1:]), h2.expand(batch + h2.shape[-1:])], -1))

    def forward(self, z1, z2):
        return self.likelihood(self.params(z1, z2))

    def mean(self, z1, z2):
        """The likelihood's mean ``(..., *event_shape)``."""
        return self.likelihood.mean(self.params(z1, z2))


class HVAE(PyroModule):
    """q(z1|x, z2) q(z2|x) and p(x|z1, z2) p(z1|z2) p(z2) (VampPrior paper eqs. 10-15).

    Parts: ``encoder_z2`` (x → q(z2|x), eq. 15), ``encoder_z1`` (x, z2 → q(z1|x, z2), eq. 14),
    ``conditional_z1`` (z2 → p(z1|z2), eq. 13), ``decoder`` (z1, z2 → p(x|z1, z2)) and ``prior``
    on z2 (standard normal, MoG, VampPrior with ``encode=encoder_z2.params``: eq. 12).
    Sites ``"z2"``, ``"z1"``, ``"x"`` inside ``pyro.plate("data")`` at dim −1, so plain
    ``SVI``/``Predictive`` and pyrozoo's evaluation work unchanged. ``x`` is ``(B, *event_shape)``.
    """

    max_plate_nesting = 1

    def __init__(self, encoder_z2, encoder_z1, conditional_z1, decoder, prior):
        super().__init__()
        self.encoder_z2 = encoder_z2
        self.encoder_z1 = encoder_z1
        self.conditional_z1 = conditional_z1
        self.decoder = decoder
        self.prior = prior
        self.event_shape = decoder.likelihood.event_shape
        self.z_dim = prior.z_dim

    def _device(self):
        return next(self.decoder.parameters()).device

    def check_data(self, x):
        """Raise ``ValueError`` if ``x`` is not finite, mis-shaped or outside the likelihood's support."""
        self.decoder.likelihood.validate(x)

    @pyro_method
    def model(self, x=None, num_data=None, batch_size=None):
        """z2 ~ p(z2), z1 ~ p(z1|z2), x ~ p(x|z1, z2); with ``x=None`` it samples ``batch_size`` points."""
        if x is not None and is_validation_enabled():
            self.check_data(x)
        n = len(x) if x is not None else int(batch_size or 1)
        with data_plate(n, num_data, device=self._device()):
            z2 = pyro.sample("z2", self.prior())
            z1 = pyro.sample("z1", self.conditional_z1(z2))
            return pyro.sample("x", self.decoder(z1, z2), obs=x)

    @pyro_method
    def guide(self, x, num_data=None, batch_size=None):
        """z2 ~ q(z2|x), then z1 ~ q(z1|x, z2)."""
        with data_plate(len(x), num_data, device=x.device):
            z2 = pyro.sample("z2", self.encoder_z2(x))
            return pyro.sample("z1", self.encoder_z1(x, z2))

    # conveniences ------------------------------------------------------------------------
    def encode(self, x):
        """q(z2|x), the top-level posterior (batch shape ``(B,)``)."""
        return self.encoder_z2(x)

    @torch.no_grad()
    def sample(self, n, z=None):
        """Decoder means for ``n`` draws of p(z2) p(z1|z2), or for given top latents ``z`` = z2 ``(n, z2_dim)``."""
        z2 = self.prior().sample((n,)) if z is None else z
        z1 = self.conditional_z1(z2).sample()
        return self.decoder.mean(z1, z2)

    @torch.no_grad()
    def reconstruct(self, x):
        """Decoder means at one draw of q(z2|x) q(z1|x, z2)."""
        z2 = self.encoder_z2(x).sample()
        z1 = self.encoder_z1(x, z2).sample()
        return self.decoder.mean(z1, z2)
