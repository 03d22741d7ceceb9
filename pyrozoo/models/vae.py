"""The one-level VAE as a Pyro model/guide pair built from a prior, an encoder and a decoder."""

import pyro
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule, pyro_method

from pyrozoo.models.plates import data_plate


class VAE(PyroModule):
    """p(z) p(x|z) with amortised q(z|x), as two Pyro programs.

    ``model(x)`` samples ``"z"`` from ``prior()`` and observes ``"x"`` under ``decoder(z)``;
    ``guide(x)`` samples ``"z"`` from ``encoder(x)``. Both sit in ``pyro.plate("data")`` at dim
    −1; pass ``num_data=N`` to scale a mini-batch to the full data set. Works with plain
    ``SVI(vae.model, vae.guide, optim, Trace_ELBO())`` and ``Predictive``.

    Shapes: ``x`` is ``(B, *event_shape)``; z is ``(B, z_dim)`` (``(S, B, z_dim)`` under a
    particle plate).
    """

    max_plate_nesting = 1

    def __init__(self, encoder, decoder, prior):
        super().__init__()
        self.encoder = encoder
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
        """The generative program; with ``x=None`` it samples ``batch_size`` (default 1) new points."""
        if x is not None and is_validation_enabled():
            self.check_data(x)
        n = len(x) if x is not None else int(batch_size or 1)
        with data_plate(n, num_data, device=self._device()):
            z = pyro.sample("z", self.prior())
            return pyro.sample("x", self.decoder(z), obs=x)

    @pyro_method
    def guide(self, x, num_data=None, batch_size=None):
        """The inference program: ``"z" ~ encoder(x)`` inside the data plate."""
        with data_plate(len(x), num_data, device=x.device):
            return pyro.sample("z", self.encoder(x))

    # conveniences for plots and users ------------------------------------------------------
    def encode(self, x):
        """q(z|x) as a distribution with batch shape ``(B,)``."""
        return self.encoder(x)

    def decode(self, z):
        """The likelihood's mean at ``z`` ``(..., z_dim)``: ``(..., *event_shape)``."""
        return self.decoder.mean(z)

    @torch.no_grad()
    def sample(self, n, z=None):
        """Means of p(x|z) for ``n`` draws z ~ p(z) (or at given ``z`` ``(n, z_dim)``): ``(n, *event_shape)``."""
        z = self.prior().sample((n,)) if z is None else z
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x):
        """Decoder means at one draw z ~ q(z|x): ``(B, *event_shape)``."""
        return self.decode(self.encoder(x).sample())
