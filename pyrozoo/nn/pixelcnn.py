"""PixelCNN blocks: masked convolutions, a conditional gated PixelCNN decoder network and pixel-by-pixel sampling
(van den Oord et al. 2016, "Pixel Recurrent Neural Networks" §3.5 and "Conditional Image Generation with PixelCNN
Decoders" §2; the PIXELHVAE decoder of Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120,
§5.1).

Pixels are ordered in raster-scan order (row by row, left to right); pixel ``i = row * W + col``.
The network's output at pixel ``i`` depends only on the input pixels ``j < i`` and on the context.
Channels of one pixel are *not* ordered among themselves (the simple multi-channel version): a
type-"A" mask hides the centre pixel for all input channels, a type-"B" mask shows it for all, so
the ``C`` channels of a pixel are modelled as conditionally independent given the earlier pixels
and the context, and are sampled together.
"""

import math

import torch
from torch import nn

from pyrozoo.nn.conv import _event_shape, as_image_batch
from pyrozoo.nn.mlp import GatedDense, he_init
from pyrozoo.nn.precision import autocast_forward


class MaskedConv2d(nn.Conv2d):
    """PixelCNN masked convolution (van den Oord et al. 2016, §3.5), stride 1, "same" output size.

    The kernel (odd sizes ``kh × kw``) is multiplied by a fixed mask that keeps the rows above the
    centre and, in the centre row, the columns left of the centre; mask ``"A"`` also hides the centre
    tap, mask ``"B"`` keeps it. Applied to all input/output channel pairs alike (no ordering of the
    channels within a pixel). Padding is ``dilation * (k // 2)`` with zeros. Input ``(N, in_ch, H, W)``,
    output ``(N, out_ch, H, W)``; output pixel ``i`` sees input pixels ``< i`` (A) or ``<= i`` (B).
    """

    def __init__(self, in_ch, out_ch, kernel_size, mask_type="B", dilation=1, bias=True):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"masked convolutions need odd kernel sizes, got {(kh, kw)}")
        super().__init__(in_ch, out_ch, (kh, kw), padding=(dilation * (kh // 2), dilation * (kw // 2)),
                         dilation=dilation, bias=bias)
        mask = torch.zeros(kh, kw)
        mask[: kh // 2] = 1
        mask[kh // 2, : kw // 2 + (mask_type == "B")] = 1
        self.register_buffer("mask", mask)
        self.mask_type = mask_type

    def forward(self, x):
        """Masked convolution ``(N, in_ch, H, W)`` → ``(N, out_ch, H, W)``."""
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class GatedMaskedConv2d(nn.Module):
    """One conditional gated PixelCNN layer: ``h * sigmoid(g)`` with
    ``[h, g] = MaskedConv2d(x) + Conv1x1(s)`` (van den Oord et al. 2016b, eq. 4, with a spatial
    conditioning map ``s`` and the authors' gating ``h·sigmoid(g)`` of Tomczak & Welling 2018, §5.1).

    ``x`` ``(N, in_ch, H, W)``, ``s`` ``(N, cond_ch, H, W)`` (or ``None``), output ``(N, out_ch, H, W)``.
    With ``residual=True`` (only for type "B" with ``in_ch == out_ch``) the input is added to the
    output, which keeps the causal order.
    """

    def __init__(self, in_ch, out_ch, kernel_size, mask_type, cond_ch=0, residual=False):
        super().__init__()
        self.conv = MaskedConv2d(in_ch, 2 * out_ch, kernel_size, mask_type)
        self.cond = nn.Conv2d(cond_ch, 2 * out_ch, 1, bias=False) if cond_ch else None
        self.residual = bool(residual) and mask_type == "B" and in_ch == out_ch

    def forward(self, x, s=None):
        """``(N, in_ch, H, W)`` and conditioning maps ``(N, cond_ch, H, W)`` → ``(N, out_ch, H, W)``."""
        a = self.conv(x)
        if self.cond is not None:
            a = a + self.cond(s)
        h, g = a.chunk(2, dim=1)
        out = h * torch.sigmoid(g)
        return x + out if self.residual else out


class PixelCNNDecoderNet(nn.Module):
    """Conditional gated PixelCNN: image ``x`` and context ``(..., cond_dim)`` → per-pixel likelihood
    parameters ``(..., out_per_pixel * C*H*W)`` (the PIXELHVAE decoder, Tomczak & Welling 2018, §5.1).

    The context (e.g. the concatenated latents z1, z2) is lifted by ``GatedDense(cond_dim,
    cond_maps*H*W)`` to ``cond_maps`` full-resolution maps (default ``2*C``: the authors lift z1 and z2
    to one image-sized map each), which every layer adds, through its own 1×1 convolution, to both
    halves of its gate. The layers are one type-"A" :class:`GatedMaskedConv2d` (``first_kernel_size``)
    followed by ``num_layers - 1`` type-"B" ones (``kernel_size``, residual if ``residual``), all with
    ``channels`` maps, then a 1×1 convolution to ``out_per_pixel * C`` maps. The output is laid out as
    ``out_per_pixel`` consecutive blocks of ``C*H*W`` numbers (pyrozoo's likelihood layout).

    The output at pixel ``i`` depends on the input pixels ``j < i`` (raster order, all channels) and on
    the context only. A plain PixelCNN stack has a blind spot: not every ``j < i`` is in view.
    Linear layers He-normal initialised (convolutions keep PyTorch's default, as in the authors' code).
    """

    def __init__(self, event_shape, cond_dim, out_per_pixel=1, channels=64, num_layers=8, kernel_size=3,
                 first_kernel_size=7, cond_maps=None, residual=True):
        super().__init__()
        self.event_shape = _event_shape(event_shape)
        c, h, w = self.event_shape
        self.cond_dim, self.out_per_pixel = int(cond_dim), int(out_per_pixel)
        self.cond_maps = 2 * c if cond_maps is None else int(cond_maps)
        if min(self.cond_dim, self.out_per_pixel, self.cond_maps, int(num_layers)) < 1:
            raise ValueError("cond_dim, out_per_pixel, cond_maps and num_layers must be positive")
        self.cond = GatedDense(self.cond_dim, self.cond_maps * h * w)
        self.layers = nn.ModuleList(
            [GatedMaskedConv2d(c, channels, first_kernel_size, "A", self.cond_maps)]
            + [GatedMaskedConv2d(channels, channels, kernel_size, "B", self.cond_maps, residual)
               for _ in range(int(num_layers) - 1)])
        self.out = nn.Conv2d(channels, self.out_per_pixel * c, 1)
        he_init(self)

    def condition(self, context):
        """Conditioning maps ``(..., cond_maps, H, W)`` for a context ``(..., cond_dim)``."""
        if context.shape[-1] != self.cond_dim:
            raise ValueError(f"expected a context (..., {self.cond_dim}), got shape {tuple(context.shape)}")
        _, h, w = self.event_shape
        return self.cond(context).reshape(context.shape[:-1] + (self.cond_maps, h, w))

    def _params(self, images, maps):
        """``(N, out_per_pixel * C, H', W)`` for images ``(N, C, H', W)`` and maps ``(N, cond_maps, H', W)``."""
        h = images
        for layer in self.layers:
            h = layer(h, maps)
        return self.out(h)

    @autocast_forward
    def forward(self, x, context):
        """Parameters ``(..., out_per_pixel * C*H*W)`` for ``x`` ``(..., C, H, W)`` or ``(..., C*H*W)`` and
        ``context`` ``(..., cond_dim)``; ``...`` is the broadcast of both batch shapes."""
        images, xbatch = as_image_batch(x, self.event_shape)
        maps = self.condition(context)
        batch = torch.broadcast_shapes(xbatch, context.shape[:-1])
        images = images.reshape(xbatch + self.event_shape).expand(batch + self.event_shape)
        maps = maps.expand(batch + maps.shape[-3:])
        out = self._params(images.reshape((-1,) + self.event_shape), maps.reshape((-1,) + maps.shape[-3:]))
        return out.reshape(batch + (-1,))

    @torch.no_grad()
    def sample(self, context, sample_pixel_fn):
        """Images ``(..., C, H, W)`` drawn pixel by pixel for ``context`` ``(..., cond_dim)``.

        Same contract and result as :func:`autoregressive_sample`, but faster: the conditioning maps
        are computed once and the pass for a pixel in row ``r`` runs on rows ``0..r`` only (the masks
        never look down, so the cropped pass gives the same numbers).
        """
        c, h, w = self.event_shape
        batch = context.shape[:-1]
        maps = self.condition(context).reshape((-1, self.cond_maps, h, w))
        x = torch.zeros((maps.shape[0], c, h, w), device=context.device, dtype=context.dtype)
        for row in range(h):
            for col in range(w):
                params = self._params(x[:, :, : row + 1], maps[:, :, : row + 1])
                at_pixel = params[:, :, row, col].reshape(batch + (self.out_per_pixel, c))
                x[:, :, row, col] = sample_pixel_fn(at_pixel, (row, col)).reshape(-1, c).to(x.dtype)
        return x.reshape(batch + self.event_shape)


@torch.no_grad()
def autoregressive_sample(net, context, event_shape, sample_pixel_fn):
    """Draw images ``(..., C, H, W)`` pixel by pixel in raster order from a PixelCNN-like ``net``.

    ``net(x, context)`` maps images ``(..., C, H, W)`` and ``context`` ``(..., cond_dim)`` to parameters
    ``(..., P * C*H*W)`` laid out as ``P`` blocks of ``C*H*W`` (output at pixel ``i`` depending on
    ``x`` only through pixels ``< i``). Starting from zeros, for each pixel ``(row, col)`` it runs the
    net once (``H*W`` passes in all) and sets all channels of that pixel to
    ``sample_pixel_fn(params_at_pixel, (row, col))``, where ``params_at_pixel`` is ``(..., P, C)``
    (``[..., p, c]`` = parameter ``p`` of channel ``c``) and the result is ``(..., C)``. For a Bernoulli
    likelihood the single parameter is the logit: ``lambda p, _: torch.bernoulli(torch.sigmoid(p[..., 0, :]))``.
    The result satisfies ``x[pixel] = sample_pixel_fn(params of net(x, context) at pixel)`` at every
    pixel (ancestral sampling of p(x) = Π_i p(x_i | x_<i, context), van den Oord et al. 2016 eq. 1).
    Runs without gradients; ``...`` is the batch shape of ``context``.
    """
    shape = _event_shape(event_shape)
    c, h, w = shape
    batch = context.shape[:-1]
    x = torch.zeros(batch + shape, device=context.device, dtype=context.dtype)
    for row in range(h):
        for col in range(w):
            params = net(x, context)
            params = params.reshape(batch + (params.shape[-1] // math.prod(shape),) + shape)
            x[..., :, row, col] = sample_pixel_fn(params[..., row, col], (row, col)).to(x.dtype)
    return x
