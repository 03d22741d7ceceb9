"""Gated convolutional blocks and the convolutional coders of the ConvHVAE of Tomczak & Welling (2018), "VAE with a
VampPrior", AISTATS, arXiv:1705.07120, §5.

Tomczak & Welling (§5.1, "CONVHVAE") replace the MLPs of the two-level VAE by convolutional layers
with the gating mechanism ``h(x)·sigmoid(g(x))`` (Dauphin et al. 2017) and initialises weights with
He et al. (2015). The layer sizes below follow the authors' released architecture: a stack of five
gated convolutions (kernels 7, 3, 5, 3, 3; stride 2 in the second and fourth) down to six 7×7 maps
for a 28×28 image, and a decoder that lifts the latent features to one full-resolution map with a
gated dense layer, refines it with 3×3 gated convolutions and reads the likelihood's parameters off a
1×1 convolution. No transposed convolution is needed: the upsampling is the gated dense layer.

All coders take any number of leading batch dims and either image-shaped ``(..., C, H, W)`` or
flattened ``(..., C*H*W)`` data, as pyrozoo's encoder and likelihood parts expect.
"""

import math

from torch import nn

from pyrozoo.nn.mlp import Gated, GatedDense, he_init
from pyrozoo.nn.precision import autocast_forward


def _event_shape(event_shape):
    shape = tuple(int(s) for s in event_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"convolutional nets need an image event shape (C, H, W), got {tuple(event_shape)}")
    return shape


def as_image_batch(x, event_shape):
    """Reshape images ``(..., C, H, W)`` or flattened images ``(..., C*H*W)`` to ``(N, C, H, W)``.

    Returns ``(images, batch_shape)`` with ``N = prod(batch_shape)``, so that a result ``(N, ...)``
    can be restored with ``out.reshape(batch_shape + out.shape[1:])``. Raises ``ValueError`` if the
    trailing dims match neither form.
    """
    shape = _event_shape(event_shape)
    if x.dim() >= 3 and tuple(x.shape[-3:]) == shape:
        batch = x.shape[:-3]
    elif x.dim() >= 1 and x.shape[-1] == math.prod(shape):
        batch = x.shape[:-1]
    else:
        raise ValueError(f"expected images (..., {', '.join(map(str, shape))}) or flattened images "
                         f"(..., {math.prod(shape)}), got shape {tuple(x.shape)}")
    return x.reshape((-1,) + shape), batch


class GatedConv2d(Gated):
    """Gated convolution ``h(x) * sigmoid(g(x))`` with two ``nn.Conv2d`` ``h`` and ``g`` of equal settings.

    The authors' convolutional layer for the ConvHVAE (Tomczak & Welling 2018, §5.1; gating of
    Dauphin et al. 2017). ``activation`` (a module, optional) is applied to ``h(x)`` before gating. Input
    ``(N, in_ch, H, W)``, output ``(N, out_ch, H', W')`` with the usual ``nn.Conv2d`` sizes.
    """

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, dilation=1, activation=None):
        super().__init__(nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation),
                         nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation), activation)


class ConvEncoderNet(nn.Module):
    """ConvHVAE encoder features: images ``(..., C, H, W)`` or ``(..., C*H*W)`` → ``(..., out_features)``.

    A stack of :class:`GatedConv2d` with "same" padding (``k // 2``); the defaults are the authors'
    q(z2|x) stack (Tomczak & Welling 2018, §5.1, CONVHVAE): channels 32, 32, 64, 64, 6, kernels 7, 3, 5, 3, 3,
    strides 1, 2, 1, 2, 1, so a 1×28×28 image becomes 6×7×7 = 294 numbers. For q(z1|x, z2) the authors
    use all-3×3 kernels (``kernel_sizes=(3,) * 5``). The flattened maps go through a final
    ``GatedDense`` to ``hidden`` units, or are returned as they are with ``hidden=None`` (the authors'
    choice: their mean/log-variance heads read the 294 numbers directly). ``out_features`` holds the
    output size, to pass as ``hidden_dim`` to pyrozoo's Gaussian encoders. Linear layers He-normal
    initialised (convolutions keep PyTorch's default, as in the authors' code).
    """

    def __init__(self, event_shape, hidden=300, channels=(32, 32, 64, 64, 6), kernel_sizes=(7, 3, 5, 3, 3),
                 strides=(1, 2, 1, 2, 1)):
        super().__init__()
        self.event_shape = _event_shape(event_shape)
        channels, kernel_sizes, strides = tuple(channels), tuple(kernel_sizes), tuple(strides)
        if not len(channels) == len(kernel_sizes) == len(strides) >= 1:
            raise ValueError(f"channels, kernel_sizes and strides need one entry per layer, got "
                             f"{len(channels)}, {len(kernel_sizes)}, {len(strides)}")
        c, h, w = self.event_shape
        layers = []
        for out, k, s in zip(channels, kernel_sizes, strides):
            layers.append(GatedConv2d(c, out, k, s, k // 2))
            c, h, w = out, (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1
        if min(h, w) < 1:
            raise ValueError(f"the image {self.event_shape} is too small for {len(channels)} strided layers")
        self.convs = nn.Sequential(*layers)
        self.conv_features = c * h * w
        self.dense = None if hidden is None else GatedDense(self.conv_features, int(hidden))
        self.out_features = self.conv_features if hidden is None else int(hidden)
        he_init(self)

    @autocast_forward
    def forward(self, x):
        """Features ``(..., out_features)`` for images ``(..., C, H, W)`` or ``(..., C*H*W)``."""
        images, batch = as_image_batch(x, self.event_shape)
        h = self.convs(images).flatten(1)
        if self.dense is not None:
            h = self.dense(h)
        return h.reshape(batch + h.shape[-1:])


class ConvDecoderNet(nn.Module):
    """ConvHVAE decoder network: features ``(..., z_dim)`` → likelihood parameters ``(..., out_per_pixel * C*H*W)``.

    The authors' p(x|z1, z2) (Tomczak & Welling 2018, §5.1, CONVHVAE): an optional ``GatedDense(z_dim,
    hidden)``, a ``GatedDense`` to one full-resolution image ``(C, H, W)``, ``num_layers`` 3×3
    :class:`GatedConv2d` with ``channels`` maps, and a 1×1 ``nn.Conv2d`` to ``out_per_pixel * C`` maps.
    The output is laid out as ``out_per_pixel`` consecutive blocks of ``C*H*W`` numbers (block ``p``
    is parameter ``p`` of every pixel, in ``(C, H, W)`` order), the layout that
    ``pyrozoo.distributions.likelihoods.Likelihood`` splits with ``chunk(out_per_pixel)``.
    Used as the ``joint_net`` of ``JointDecoder`` with ``z_dim`` the size of the concatenated
    z1/z2 features, or as the whole net of a one-level ``Decoder``. Linear layers He-normal initialised
    (convolutions keep PyTorch's default, as in the authors' code).
    """

    def __init__(self, z_dim, event_shape, out_per_pixel=1, channels=64, num_layers=4, kernel_size=3, hidden=None):
        super().__init__()
        self.event_shape = _event_shape(event_shape)
        self.out_per_pixel = int(out_per_pixel)
        if self.out_per_pixel < 1 or int(num_layers) < 1:
            raise ValueError(f"out_per_pixel and num_layers must be positive, got {out_per_pixel}, {num_layers}")
        c = self.event_shape[0]
        pre = [] if hidden is None else [GatedDense(int(z_dim), int(hidden))]
        pre.append(GatedDense(int(z_dim) if hidden is None else int(hidden), math.prod(self.event_shape)))
        self.dense = nn.Sequential(*pre)
        self.convs = nn.Sequential(*[GatedConv2d(c if i == 0 else channels, channels, kernel_size, 1, kernel_size // 2)
                                     for i in range(int(num_layers))])
        self.out = nn.Conv2d(channels, self.out_per_pixel * c, 1)
        self.z_dim = int(z_dim)
        he_init(self)

    @autocast_forward
    def forward(self, z):
        """Likelihood parameters ``(..., out_per_pixel * C*H*W)`` for features ``(..., z_dim)``."""
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"expected features (..., {self.z_dim}), got shape {tuple(z.shape)}")
        batch = z.shape[:-1]
        h = self.dense(z.reshape(-1, self.z_dim)).reshape((-1,) + self.event_shape)
        out = self.out(self.convs(h))  # (N, P*C, H, W), channel index p*C + c
        return out.reshape(batch + (-1,))
