"""Decoders: a network from z to the parameters of a likelihood part."""

from torch import nn


class Decoder(nn.Module):
    """p(x|z): ``net`` maps z ``(..., z_dim)`` to ``(..., params_per_dim * D)``; ``likelihood``
    turns that into a distribution with event shape ``likelihood.event_shape``."""

    def __init__(self, net, likelihood):
        super().__init__()
        self.net = net
        self.likelihood = likelihood

    def forward(self, z):
        return self.likelihood(self.net(z))

    def mean(self, z):
        """The likelihood's mean at ``z``: ``(..., *event_shape)``."""
        return self.likelihood.mean(self.net(z))
