"""Autoregressive (PixelCNN) decoders: p(x|z) = Π_i p(x_i | x_<i, z), the PIXELHVAE decoder of Tomczak & Welling
(2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120 (§5.1; van den Oord et al. 2016, eq. 1).

A :class:`PixelDecoder` is called like pyrozoo's other decoders, ``decoder(z)`` or ``decoder(z1, z2)``,
and returns a distribution over x: an :class:`AutoregressiveImage` whose ``log_prob(x)`` runs the
PixelCNN once on ``x`` (teacher forcing) and whose ``sample()`` draws pixel by pixel. So the VAE and
HVAE programs observe ``"x"`` under it without knowing that the decoder needs x.
"""

import torch
from torch import nn

from pyrozoo.distributions.autoregressive import AutoregressiveImage, _sample


class PixelDecoder(nn.Module):
    """p(x|z) with an autoregressive network: ``decoder(*z)`` returns an :class:`AutoregressiveImage`.

    ``net(x, context)`` maps images and a context ``(..., cond_dim)`` to the likelihood's parameters
    ``(..., params_per_dim * D)`` causally (e.g. ``PixelCNNDecoderNet(event_shape, cond_dim,
    likelihood.params_per_dim)``). The context is ``context_net(*z)`` if given, else the latents
    concatenated along the last dim after broadcasting their batch dims (``decoder(z1, z2)`` for the
    PIXELHVAE, where the net's gated dense conditioning plays the role of the authors' per-latent
    layers). Same interface as ``Decoder``/``JointDecoder``: ``forward``, ``mean`` and ``likelihood``.
    """

    def __init__(self, net, likelihood, context_net=None):
        super().__init__()
        self.net = net
        self.likelihood = likelihood
        self.context_net = context_net

    def context(self, *z):
        """The context ``(..., cond_dim)`` fed to the network for latents ``z`` (each ``(..., z_dim_k)``)."""
        if self.context_net is not None:
            return self.context_net(*z)
        if len(z) == 1:
            return z[0]
        batch = torch.broadcast_shapes(*(t.shape[:-1] for t in z))
        return torch.cat([t.expand(batch + t.shape[-1:]) for t in z], -1)

    def forward(self, *z):
        """p(x|z) as an :class:`AutoregressiveImage` with batch shape the broadcast latents' batch shape."""
        return AutoregressiveImage(self.net, self.likelihood, self.context(*z))

    @torch.no_grad()
    def sample(self, *z):
        """Images ``(..., *event_shape)`` drawn pixel by pixel from p(x|z)."""
        return _sample(self.net, self.likelihood, self.context(*z))

    def mean(self, *z):
        """For plots: the means of the per-pixel conditionals along one sampled image,
        ``E[x_i | x_<i, z]`` at ``x ~ p(x|z)``, shape ``(..., *event_shape)`` (the VampPrior authors'
        reconstructions and samples). Not the exact mean of p(x|z), which has no closed form."""
        context = self.context(*z)
        x = _sample(self.net, self.likelihood, context)
        return self.likelihood.mean(self.net(x, context))
