"""Residual convolutional coders for the Soft-IntroVAE image experiments (§5.2) of Athanasiadis, Lindsten & Felsberg
(2025), "Prior Learning in Introspective VAEs", TMLR, arXiv:2408.13805, which build on Daniel & Tamar (2021),
"Soft-IntroVAE: Analyzing and Improving the Introspective Variational Autoencoder", arXiv:2012.13253.

Athanasiadis et al. train images with "the default training hyperparameters and architectures as provided by
Daniel & Tamar (2021)": residual encoders and decoders with channels [64, 128] and z = 32 for
(F)MNIST, [64, 128, 256] and z = 128 for CIFAR-10. The layout here follows that design:

* encoder: a 5×5 convolution to ``channels[0]`` maps with batch norm, LeakyReLU(0.2) and 2×2
  average pooling; then for each further channel count a :class:`ResidualBlock` and 2×2 average
  pooling; a last residual block; the maps are flattened (``out_features`` numbers) for the
  Gaussian head of :class:`~pyrozoo.guides.GaussianEncoder`.
* decoder: a linear layer from z to the encoder's last maps with a ReLU, then the blocks in reverse
  order, each followed by 2× nearest upsampling, a last residual block at full resolution and a 5×5
  convolution to ``out_per_pixel`` parameters per pixel.

Images of any size divisible by 2^len(channels) work (28 = 4·7 for two levels, 32 for three).
Both coders take any leading batch dims and images ``(..., C, H, W)`` or ``(..., C*H*W)``.
"""

import math

from torch import nn

from pyrozoo.nn.conv import _event_shape, as_image_batch
from pyrozoo.nn.precision import autocast_forward


class ResidualBlock(nn.Module):
    """``LeakyReLU(shortcut(x) + BN(conv3(LeakyReLU(BN(conv3(x))))))``: ``(N, in_ch, H, W)`` →
    ``(N, out_ch, H, W)``; the shortcut is the identity, or a 1×1 convolution when the channel count
    changes."""

    def __init__(self, in_ch, out_ch, slope=0.2):
        super().__init__()
        self.shortcut = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.body = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                                  nn.LeakyReLU(slope), nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(out_ch))
        self.act = nn.LeakyReLU(slope)

    def forward(self, x):
        """The block's output, same spatial size as ``x``."""
        return self.act(self.shortcut(x) + self.body(x))


def _check_size(event_shape, channels):
    c, h, w = _event_shape(event_shape)
    channels = tuple(int(ch) for ch in channels)
    if not channels or min(channels) < 1:
        raise ValueError(f"channels must be positive channel counts, got {channels}")
    factor = 2 ** len(channels)
    if h % factor or w % factor:
        raise ValueError(f"a {h}x{w} image cannot be pooled {len(channels)} times by 2; "
                         f"use height and width divisible by {factor} or fewer channel levels")
    return (c, h, w), channels, (h // factor, w // factor)


class ResidualEncoderNet(nn.Module):
    """Encoder features: images ``(..., C, H, W)`` or ``(..., C*H*W)`` → ``(..., out_features)`` with
    ``out_features = channels[-1] · H/2^L · W/2^L`` (L = ``len(channels)``)."""

    def __init__(self, event_shape, channels=(64, 128)):
        super().__init__()
        self.event_shape, channels, (h, w) = _check_size(event_shape, channels)
        layers = [nn.Conv2d(self.event_shape[0], channels[0], 5, padding=2, bias=False), nn.BatchNorm2d(channels[0]),
                  nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [ResidualBlock(c_in, c_out), nn.AvgPool2d(2)]
        layers.append(ResidualBlock(channels[-1], channels[-1]))
        self.net = nn.Sequential(*layers)
        self.out_features = channels[-1] * h * w

    @autocast_forward
    def forward(self, x):
        """Flattened feature maps ``(..., out_features)``."""
        images, batch = as_image_batch(x, self.event_shape)
        h = self.net(images).flatten(1)
        return h.reshape(batch + h.shape[-1:])


class ResidualDecoderNet(nn.Module):
    """Decoder: z ``(..., z_dim)`` → likelihood parameters ``(..., out_per_pixel · C·H·W)`` laid out
    as ``out_per_pixel`` blocks of ``C·H·W`` numbers (the layout ``Likelihood`` splits)."""

    def __init__(self, z_dim, event_shape, channels=(64, 128), out_per_pixel=1):
        super().__init__()
        self.event_shape, channels, (h, w) = _check_size(event_shape, channels)
        self.start = (channels[-1], h, w)
        self.fc = nn.Sequential(nn.Linear(int(z_dim), math.prod(self.start)), nn.ReLU())
        rev = channels[::-1]
        layers = []
        for c_in, c_out in zip(rev, rev[1:] + rev[-1:]):
            layers += [ResidualBlock(c_in, c_out), nn.Upsample(scale_factor=2, mode="nearest")]
        layers += [ResidualBlock(rev[-1], rev[-1]),
                   nn.Conv2d(rev[-1], out_per_pixel * self.event_shape[0], 5, padding=2)]
        self.net = nn.Sequential(*layers)
        self.out_per_pixel = int(out_per_pixel)

    @autocast_forward
    def forward(self, z):
        """Parameters ``(..., out_per_pixel · C·H·W)``."""
        batch = z.shape[:-1]
        maps = self.net(self.fc(z.reshape(-1, z.shape[-1])).reshape((-1,) + self.start))
        c, h, w = self.event_shape
        out = maps.reshape(-1, self.out_per_pixel, c, h, w).flatten(1)  # block p = parameter p of every pixel
        return out.reshape(batch + out.shape[-1:])
