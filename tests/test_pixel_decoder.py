"""The autoregressive PixelCNN decoder part (pyrozoo.models.pixel_decoder) and its use in the HVAE of Tomczak &
Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120."""

import itertools
import math

import pyro
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from pyrozoo.distributions import BernoulliLikelihood, DiscretizedLogisticLikelihood, VampPrior
from pyrozoo.distributions.conditional import ConditionalGaussian
from pyrozoo.guides import GaussianEncoder
from pyrozoo.guides.hierarchical import JointGaussianEncoder
from pyrozoo.models import VAE
from pyrozoo.models.hvae import HVAE
from pyrozoo.distributions.autoregressive import AutoregressiveImage, likelihood_pixel_sampler
from pyrozoo.models.pixel_decoder import PixelDecoder
from pyrozoo.nn import GatedDense, gated_mlp
from pyrozoo.nn.conv import ConvEncoderNet
from pyrozoo.nn.pixelcnn import PixelCNNDecoderNet, autoregressive_sample


def pixel_decoder(event_shape, likelihood, cond_dim=3):
    torch.manual_seed(0)
    net = PixelCNNDecoderNet(event_shape, cond_dim, likelihood.params_per_dim, channels=8, num_layers=3,
                             first_kernel_size=3)
    return PixelDecoder(net, likelihood)


def all_images(event_shape, levels):
    grid = torch.tensor(list(itertools.product(levels, repeat=math.prod(event_shape))), dtype=torch.float)
    return grid.reshape(-1, *event_shape)


@pytest.mark.parametrize("event_shape,likelihood,levels", [
    ((1, 2, 3), BernoulliLikelihood((1, 2, 3)), (0.0, 1.0)),
    ((2, 2, 2), BernoulliLikelihood((2, 2, 2)), (0.0, 1.0)),  # channels of a pixel: conditionally independent
    ((1, 2, 2), DiscretizedLogisticLikelihood((1, 2, 2), num_bins=3), (0.0, 0.5, 1.0)),
])
def test_autoregressive_image_is_normalised(event_shape, likelihood, levels):
    dec = pixel_decoder(event_shape, likelihood)
    z = torch.randn(2, 3)
    d = dec(z)
    assert isinstance(d, AutoregressiveImage) and d.batch_shape == (2,) and d.event_shape == event_shape
    x = all_images(event_shape, levels)  # every possible image
    lp = d.log_prob(x.unsqueeze(1))  # (num_images, 2)
    assert lp.shape == (len(x), 2)
    torch.testing.assert_close(lp.logsumexp(0), torch.zeros(2), atol=1e-4, rtol=0)
    # one pass gives the sum of the pixels' conditional log-densities
    torch.testing.assert_close(lp[5], likelihood(dec.net(x[5], z)).log_prob(x[5]))


def test_samples_follow_the_density():
    shape = (1, 2, 2)
    lik = BernoulliLikelihood(shape)
    dec = pixel_decoder(shape, lik)
    d = dec(torch.randn(3))
    n = 20000
    torch.manual_seed(1)
    samples = d.sample((n,))
    assert samples.shape == (n, *shape)
    x = all_images(shape, (0.0, 1.0))
    p = d.log_prob(x).exp()
    freq = (samples.reshape(n, 1, 4) == x.reshape(1, 16, 4)).all(-1).float().mean(0)
    assert torch.all((freq - p).abs() < 4 * (p * (1 - p) / n).sqrt() + 1e-3)
    # the generic sampler draws from the same per-pixel conditionals
    fn = likelihood_pixel_sampler(lik)
    torch.manual_seed(2)
    slow = autoregressive_sample(dec.net, d.context.expand(n, 3), shape, fn)
    freq_slow = (slow.reshape(n, 1, 4) == x.reshape(1, 16, 4)).all(-1).float().mean(0)
    assert torch.all((freq_slow - p).abs() < 4 * (p * (1 - p) / n).sqrt() + 1e-3)


def test_decoder_interface_and_context():
    shape = (1, 4, 4)
    lik = BernoulliLikelihood(shape)
    dec = pixel_decoder(shape, lik, cond_dim=5)
    z1, z2 = torch.randn(6, 4, 3), torch.randn(4, 2)  # particles on z1 only
    d = dec(z1, z2)
    assert d.batch_shape == (6, 4)
    torch.testing.assert_close(d.context[2, 1], torch.cat([z1[2, 1], z2[1]]))
    x = torch.bernoulli(torch.full((4, *shape), 0.5))
    assert d.log_prob(x).shape == (6, 4)
    assert d.expand((6, 4)) is d
    assert d.expand((2, 6, 4)).log_prob(x).shape == (2, 6, 4)
    s = dec.sample(z1, z2)
    assert s.shape == (6, 4, *shape) and set(s.unique().tolist()) <= {0.0, 1.0}
    m = dec.mean(z1, z2)
    assert m.shape == (6, 4, *shape) and 0 < m.min() and m.max() < 1


def test_pixel_vae_and_pixel_hvae_train_and_sample():
    torch.manual_seed(0)
    shape, z_dim = (1, 8, 8), 4
    x = torch.bernoulli(torch.rand(16, *shape))
    lik = BernoulliLikelihood(shape)

    # one-level VAE: conv encoder, PixelCNN decoder
    enc = GaussianEncoder(ConvEncoderNet(shape, hidden=16, channels=(4, 4, 4, 4, 2)), 16, z_dim, event_dim=3,
                          logvar_bounds=(-6.0, 2.0))
    vae = VAE(enc, pixel_decoder(shape, lik, cond_dim=z_dim), VampPrior(z_dim, enc.params, shape, 5))
    # two-level HVAE (Tomczak & Welling 2018, eqs. 10-15) with the PIXELHVAE decoder p(x|z1, z2)
    enc2 = GaussianEncoder(ConvEncoderNet(shape, hidden=None, channels=(4, 4, 4, 4, 2)), 8, z_dim, event_dim=3,
                           logvar_bounds=(-6.0, 2.0))
    enc1 = JointGaussianEncoder(ConvEncoderNet(shape, hidden=None, channels=(4, 4, 4, 4, 2), kernel_sizes=(3,) * 5),
                                GatedDense(z_dim, 8), GatedDense(16, 16), 16, z_dim, event_dim=3)
    cond = ConditionalGaussian(gated_mlp([z_dim, 16]), 16, z_dim)
    dec = pixel_decoder(shape, lik, cond_dim=2 * z_dim)
    hvae = HVAE(enc2, enc1, cond, dec, VampPrior(z_dim, enc2.params, shape, 5))

    for model in (vae, hvae):
        pyro.clear_param_store()
        before = [p.detach().clone() for p in model.decoder.net.parameters()]
        svi = SVI(model.model, model.guide, Adam({"lr": 1e-2}), Trace_ELBO(num_particles=2, vectorize_particles=True))
        losses = [svi.step(x) for _ in range(15)]
        assert all(math.isfinite(v) for v in losses)
        assert sum(losses[-3:]) < sum(losses[:3])
        after = list(model.decoder.net.parameters())
        assert all(not torch.equal(a, b) for a, b in zip(after, before))  # the PixelCNN is trained
        new = model.model(batch_size=3)  # ancestral sampling through the PixelCNN
        assert new.shape == (3, *shape) and set(new.unique().tolist()) <= {0.0, 1.0}
        assert model.sample(2).shape == (2, *shape)
        assert model.reconstruct(x[:2]).shape == (2, *shape)
        from pyrozoo.evaluation.likelihood import log_likelihood
        ll = log_likelihood(model, x[:4], num_samples=6, chunk_size=3)
        assert ll.shape == (4,) and torch.all(ll < 0)
