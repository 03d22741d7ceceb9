"""The distribution of an autoregressive (PixelCNN) decoder: p(x|z) = Π_i p(x_i | x_<i, z) (the PIXELHVAE
decoder, §5.1, of Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120; van den Oord et al.
2016, eq. 1).

:class:`AutoregressiveImage` scores ``x`` with one teacher-forced pass of the network and samples
pixel by pixel, so a model can observe ``"x"`` under it like under any other likelihood.
"""

import torch
from pyro.distributions import constraints
from pyro.distributions.torch_distribution import TorchDistribution

from pyrozoo.nn.pixelcnn import autoregressive_sample


def likelihood_pixel_sampler(likelihood):
    """A ``sample_pixel_fn`` for :func:`pyrozoo.nn.pixelcnn.autoregressive_sample` that draws one pixel
    from a pyrozoo likelihood part over images ``(C, H, W)``.

    Given the parameters at a pixel ``(..., P, C)`` (P = ``likelihood.params_per_dim``) and the pixel
    ``(row, col)``, it places them into a full parameter tensor ``(..., P*C*H*W)`` (other pixels zero),
    samples the likelihood's distribution and returns the pixel's channels ``(..., C)``. Valid for the
    likelihoods that factorise over dimensions (all of pyrozoo's image likelihoods).
    """
    _, h, w = likelihood.event_shape

    def sample_pixel(params_at_pixel, pixel):
        row, col = pixel
        full = params_at_pixel.new_zeros(params_at_pixel.shape + (h, w))
        full[..., row, col] = params_at_pixel
        return likelihood(full.flatten(-4)).sample()[..., :, row, col]

    return sample_pixel


def _sample(net, likelihood, context):
    fn = likelihood_pixel_sampler(likelihood)
    if hasattr(net, "sample"):
        return net.sample(context, fn)
    return autoregressive_sample(net, context, likelihood.event_shape, fn)


class AutoregressiveImage(TorchDistribution):
    """p(x | context) = Π_i p(x_i | x_<i, context) over images of shape ``likelihood.event_shape``.

    ``net(x, context)`` is a causal network (e.g. :class:`pyrozoo.nn.pixelcnn.PixelCNNDecoderNet`):
    its parameters for pixel ``i`` depend on ``x`` only through pixels ``< i``; ``likelihood`` turns them
    into the per-pixel factors. ``context`` is ``(..., cond_dim)``; batch shape ``(...)``.
    ``log_prob(x)`` is ``likelihood(net(x, context)).log_prob(x)`` (one network pass; this equals the
    sum of the conditional log-densities because of the causal masks); ``sample()`` takes ``H*W``
    passes and is not reparameterised. The mean has no closed form (``NotImplementedError``).
    """

    arg_constraints = {}
    has_rsample = False

    def __init__(self, net, likelihood, context, validate_args=False):
        self.net, self.likelihood, self.context = net, likelihood, context
        super().__init__(context.shape[:-1], torch.Size(likelihood.event_shape), validate_args=validate_args)

    @property
    def support(self):
        """Real-valued images (the likelihood part checks its own support on the data)."""
        return constraints.independent(constraints.real, len(self.event_shape))

    def expand(self, batch_shape, _instance=None):
        """The same distribution with the context broadcast to ``batch_shape``."""
        batch_shape = torch.Size(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        context = self.context.expand(batch_shape + self.context.shape[-1:])
        return AutoregressiveImage(self.net, self.likelihood, context)

    def params(self, value):
        """Teacher-forced parameters ``(..., params_per_dim * D)`` of every pixel's conditional at ``value``."""
        return self.net(value, self.context)

    def log_prob(self, value):
        """log p(x | context) = Σ_i log p(x_i | x_<i, context) for images ``(..., *event_shape)``: ``(...)``."""
        return self.likelihood(self.params(value)).log_prob(value)

    def sample(self, sample_shape=torch.Size()):
        """Images ``sample_shape + batch_shape + event_shape`` drawn pixel by pixel (no gradients)."""
        context = self.context.expand(torch.Size(sample_shape) + self.context.shape)
        return _sample(self.net, self.likelihood, context)
