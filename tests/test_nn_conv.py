"""Gated convolutions, the ConvHVAE coders and the PixelCNN decoder network (pyrozoo.nn.conv/pixelcnn)."""

import pytest
import torch
import torch.nn.functional as F

from pyrozoo.distributions.likelihoods import GaussianLikelihood
from pyrozoo.nn.conv import ConvDecoderNet, ConvEncoderNet, GatedConv2d
from pyrozoo.nn.pixelcnn import MaskedConv2d, PixelCNNDecoderNet, autoregressive_sample


def small_pixelcnn(event_shape=(1, 8, 8), cond_dim=5, out_per_pixel=1, num_layers=4):
    torch.manual_seed(0)
    return PixelCNNDecoderNet(event_shape, cond_dim, out_per_pixel, channels=8, num_layers=num_layers,
                              first_kernel_size=5)


# ---------------------------------------------------------------------------------------------
# gated convolution

def test_gated_conv_is_h_times_sigmoid_g():
    torch.manual_seed(0)
    layer = GatedConv2d(3, 5, 3, stride=2, padding=1, activation=torch.nn.Tanh())
    x = torch.randn(4, 3, 9, 9)
    h = F.conv2d(x, layer.h.weight, layer.h.bias, stride=2, padding=1)
    g = F.conv2d(x, layer.g.weight, layer.g.bias, stride=2, padding=1)
    out = layer(x)
    assert out.shape == (4, 5, 5, 5)
    torch.testing.assert_close(out, torch.tanh(h) * torch.sigmoid(g))
    assert not torch.allclose(layer.h.weight, layer.g.weight)


# ---------------------------------------------------------------------------------------------
# ConvHVAE coders

def test_conv_encoder_shapes_and_input_forms():
    torch.manual_seed(0)
    net = ConvEncoderNet((1, 28, 28))
    x = torch.rand(3, 1, 28, 28)
    out = net(x)
    assert out.shape == (3, 300) and net.out_features == 300
    torch.testing.assert_close(net(x.reshape(3, 784)), out)
    stacked = torch.stack([x, x.flip(0)]).reshape(2, 3, 784)
    out2 = net(stacked)
    assert out2.shape == (2, 3, 300)
    torch.testing.assert_close(out2[1], out.flip(0))
    # the authors' q(z2|x) features: 6 maps of 7x7 after two stride-2 layers
    raw = ConvEncoderNet((1, 28, 28), hidden=None)
    assert raw(x).shape == (3, 294) and raw.out_features == raw.conv_features == 294
    # odd sizes and several channels
    assert ConvEncoderNet((3, 15, 9), hidden=None)(torch.rand(2, 3, 15, 9)).shape == (2, 6 * 4 * 3)
    with pytest.raises(ValueError, match="expected images"):
        net(torch.rand(3, 783))


def test_conv_decoder_shapes_and_layout():
    torch.manual_seed(0)
    shape = (3, 8, 6)  # several channels, non-square: a wrong layout mixes them up
    net = ConvDecoderNet(7, shape, out_per_pixel=2, channels=16)
    z = torch.randn(5, 7)
    params = net(z)
    assert params.shape == (5, 2 * 3 * 8 * 6)
    maps = net.out(net.convs(net.dense(z).reshape(5, *shape)))  # (5, 2*C, H, W)
    loc, log_scale = params.chunk(2, dim=-1)
    torch.testing.assert_close(loc.reshape(5, *shape), maps[:, :3])
    torch.testing.assert_close(log_scale.reshape(5, *shape), maps[:, 3:])
    # likelihood parts take the output as it is
    d = GaussianLikelihood(shape, scale="decoder")(params)
    assert d.batch_shape == (5,) and d.event_shape == shape
    torch.testing.assert_close(d.mean, maps[:, :3])
    # leading dims, and the MNIST sizes
    mnist = ConvDecoderNet(80, (1, 28, 28), out_per_pixel=1)
    zz = torch.randn(4, 3, 80)
    out = mnist(zz)
    assert out.shape == (4, 3, 784)
    torch.testing.assert_close(out[2], mnist(zz[2]))
    with pytest.raises(ValueError, match="expected features"):
        mnist(torch.randn(3, 40))


# ---------------------------------------------------------------------------------------------
# PixelCNN

@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_mask(mask_type):
    conv = MaskedConv2d(2, 3, 5, mask_type)
    expected = torch.tensor([[1, 1, 1, 1, 1],
                             [1, 1, 1, 1, 1],
                             [1, 1, int(mask_type == "B"), 0, 0],
                             [0, 0, 0, 0, 0],
                             [0, 0, 0, 0, 0]], dtype=torch.float)
    assert torch.equal(conv.mask, expected)
    assert conv(torch.randn(1, 2, 6, 7)).shape == (1, 3, 6, 7)
    with pytest.raises(ValueError):
        MaskedConv2d(2, 3, 4, mask_type)


@pytest.mark.parametrize("event_shape", [(1, 8, 8), (2, 5, 6)])
def test_pixelcnn_output_depends_only_on_earlier_pixels(event_shape):
    net = small_pixelcnn(event_shape)
    c, h, w = event_shape
    x = torch.rand(1, *event_shape, requires_grad=True)
    context = torch.randn(1, 5)
    out = net(x, context).reshape(c, h, w)
    n = h * w
    for i in [0, 1, w - 1, w, w + 1, n // 2, n - 1]:
        (grad,) = torch.autograd.grad(out[:, i // w, i % w].sum(), x, retain_graph=True)
        per_pixel = grad.reshape(c, n).abs().sum(0)  # all channels of a pixel
        assert torch.all(per_pixel[i:] == 0), f"output at pixel {i} sees pixels >= {i}"
        if i > 0:
            assert per_pixel[:i].max() > 0, f"output at pixel {i} sees no earlier pixel"
        if i % w:  # the left neighbour is in view
            assert per_pixel[i - 1] > 0
        if i >= w:  # and the one above
            assert per_pixel[i - w] > 0


def test_pixelcnn_first_pixel_depends_only_on_context():
    net = small_pixelcnn()
    torch.manual_seed(1)
    x, context = torch.rand(4, 64), torch.randn(4, 5)
    first = net(x, context)[:, 0]
    torch.testing.assert_close(net(torch.rand(4, 64), context)[:, 0], first, rtol=0, atol=0)
    changed = net(x, context + torch.randn(4, 5))[:, 0]
    assert (changed - first).abs().min() > 1e-6
    # every pixel depends on the context
    (grad,) = torch.autograd.grad(net(x, context.requires_grad_()).reshape(4, 64)[:, 37].sum(), context)
    assert grad.abs().sum() > 0


def test_pixelcnn_shapes_and_broadcasting():
    net = small_pixelcnn((1, 8, 8), out_per_pixel=2)
    torch.manual_seed(2)
    x, context = torch.rand(3, 1, 8, 8), torch.randn(4, 3, 5)
    out = net(x, context)
    assert out.shape == (4, 3, 2 * 64)
    torch.testing.assert_close(net(x.reshape(3, 64), context), out)
    torch.testing.assert_close(out[1], net(x, context[1]))
    # layout: two blocks of C*H*W, block p = parameter p of every pixel
    maps = net._params(x, net.condition(context[1]))
    torch.testing.assert_close(out[1].reshape(3, 2, 1, 8, 8), maps.reshape(3, 2, 1, 8, 8))
    with pytest.raises(ValueError, match="expected a context"):
        net(x, torch.randn(3, 4))


@pytest.mark.parametrize("event_shape,out_per_pixel", [((1, 8, 8), 1), ((2, 5, 6), 2)])
def test_autoregressive_sampling_is_self_consistent(event_shape, out_per_pixel):
    net = small_pixelcnn(event_shape, out_per_pixel=out_per_pixel)
    c, h, w = event_shape
    torch.manual_seed(3)
    context = torch.randn(2, 3, 5)

    def threshold(params_at_pixel, pixel):  # deterministic: the last parameter of each channel > 0
        assert params_at_pixel.shape == (2, 3, out_per_pixel, c)
        return (params_at_pixel[..., -1, :] > 0).float()

    x = autoregressive_sample(net, context, event_shape, threshold)
    assert x.shape == (2, 3, *event_shape)
    assert 0 < x.mean() < 1  # not a constant image: the test below has teeth
    params = net(x, context).reshape(2, 3, out_per_pixel, c, h, w)
    assert torch.equal(x, (params[:, :, -1] > 0).float())
    # the net's own faster sampler gives the same images
    assert torch.equal(net.sample(context, threshold), x)


def test_autoregressive_sampling_draws_from_the_conditionals():
    net = small_pixelcnn((1, 4, 4))
    torch.manual_seed(4)
    context = torch.randn(1, 5).expand(4000, 5)
    x = net.sample(context, lambda p, _: torch.bernoulli(torch.sigmoid(p[..., 0, :])))
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    # the first pixel is Bernoulli(sigmoid(logit)) with a logit that depends on the context only
    p0 = torch.sigmoid(net(torch.zeros(1, 16), context[:1])[0, 0])
    assert abs(x[:, 0, 0, 0].mean() - p0) < 4 * (p0 * (1 - p0) / 4000) ** 0.5 + 1e-3
