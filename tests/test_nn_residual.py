"""The residual coders of the Soft-IntroVAE image experiments (pyrozoo/nn/residual.py)."""

import pytest
import torch

from pyrozoo import zoo
from pyrozoo.nn.residual import ResidualBlock, ResidualDecoderNet, ResidualEncoderNet


def test_block_keeps_size_and_is_residual():
    block = ResidualBlock(4, 4).eval()
    for p in block.body.parameters():
        torch.nn.init.zeros_(p)  # a zero body leaves LeakyReLU(x)
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(block(x), torch.nn.functional.leaky_relu(x, 0.2))
    assert ResidualBlock(4, 8)(x).shape == (2, 8, 6, 6)


@pytest.mark.parametrize("shape,channels", [((1, 28, 28), (64, 128)), ((3, 32, 32), (64, 128, 256))])
def test_coders_shapes_and_flattened_input(shape, channels):
    enc = ResidualEncoderNet(shape, channels).eval()
    x = torch.rand(5, *shape)
    f = enc(x)
    factor = 2 ** len(channels)
    assert f.shape == (5, channels[-1] * (shape[1] // factor) * (shape[2] // factor)) == (5, enc.out_features)
    assert torch.allclose(enc(x.reshape(5, -1)), f)  # flattened images give the same features
    dec = ResidualDecoderNet(7, shape, channels, out_per_pixel=2).eval()
    z = torch.randn(3, 4, 7)
    out = dec(z)
    n = torch.Size(shape).numel()
    assert out.shape == (3, 4, 2 * n)
    # block p holds parameter p of every pixel: the first block equals the first C output maps
    maps = dec.net(dec.fc(z.reshape(-1, 7)).reshape((-1,) + dec.start))
    assert torch.allclose(out.reshape(12, 2, n)[:, 1], maps[:, shape[0]:].reshape(12, n))


def test_sizes_that_do_not_pool_are_refused():
    with pytest.raises(ValueError, match="divisible by 8"):
        ResidualEncoderNet((3, 28, 28), (64, 128, 256))
    with pytest.raises(ValueError, match="image event shape"):
        ResidualDecoderNet(4, (784,))


def test_intro_presets_use_residual_coders_on_images():
    m = zoo.build("sintrovae", event_shape=(1, 28, 28))
    assert isinstance(m.encoder.net, ResidualEncoderNet) and m.z_dim == 32
    c = zoo.build("sintrovae-prior", event_shape=(3, 32, 32))
    assert c.z_dim == 128 and isinstance(c.decoder.net, ResidualDecoderNet)
    assert c.prior.pseudo_inputs().shape == (100, 3, 32, 32)
    x = torch.rand(4, 1, 28, 28)
    assert m.reconstruct(x).shape == x.shape and m.sample(2).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="channels"):
        zoo.build("sintrovae", event_shape=(1, 28, 28), hidden=(100,))
    with pytest.raises(ValueError, match="channels"):
        zoo.build("sintrovae", event_shape=(2,), channels=(8, 16))
