import math

import pytest
import torch

from pyrozoo.distributions import (BernoulliLikelihood, DiscretizedLogistic, DiscretizedLogisticLikelihood,
                                   GaussianLikelihood, StandardNormalPrior, make_likelihood)


@pytest.mark.parametrize("bins", [256, 17])
def test_discretized_logistic_sums_to_one(bins):
    torch.manual_seed(0)
    loc = torch.rand(5, 1)
    log_scale = torch.tensor([[-6.0], [-3.0], [-1.0], [0.0], [1.0]])
    grid = torch.arange(bins, dtype=torch.float32) / (bins - 1)
    lp = DiscretizedLogistic(loc, log_scale, bins).log_prob(grid.expand(5, bins))
    assert torch.isfinite(lp).all()  # far tails stay finite (no log 0)
    assert torch.allclose(lp.exp().sum(1), torch.ones(5), atol=1e-4)


def test_discretized_logistic_matches_cdf_difference():
    d = DiscretizedLogistic(torch.tensor(0.4), torch.tensor(-2.0), 256)
    x = torch.tensor(100 / 255)
    s = torch.exp(torch.tensor(-2.0))
    h = 0.5 / 255
    expected = torch.sigmoid((x + h - 0.4) / s) - torch.sigmoid((x - h - 0.4) / s)
    assert torch.allclose(d.log_prob(x).exp(), expected, rtol=1e-4)


def test_likelihood_validation_errors():
    lik = BernoulliLikelihood((1, 2, 2))
    lik.validate(torch.ones(3, 1, 2, 2))
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        lik.validate(torch.full((3, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="shape"):
        lik.validate(torch.ones(3, 4))
    bad = torch.ones(3, 1, 2, 2)
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lik.validate(bad)
    dl = DiscretizedLogisticLikelihood((2,), num_bins=256)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dl.validate(torch.tensor([[0.0, 1.5]]))
    with pytest.raises(ValueError, match="grid"):
        dl.validate(torch.tensor([[0.0, 0.5]]))
    with pytest.raises(ValueError, match="choose from"):
        make_likelihood("poisson", (2,))
    with pytest.raises(ValueError):
        GaussianLikelihood((2,), scale=-1.0)


def test_gaussian_likelihood_modes():
    params = torch.randn(4, 6)
    fixed = GaussianLikelihood((3,), scale=0.5)
    d = fixed(params[:, :3])
    assert torch.allclose(d.base_dist.scale, torch.full((4, 3), 0.5))
    dec = GaussianLikelihood((3,), scale="decoder")
    d = dec(params)
    assert torch.allclose(d.base_dist.scale, params[:, 3:].exp())
    learned = GaussianLikelihood((3,), scale="learned")
    assert sum(p.numel() for p in learned.parameters()) == 3


def test_standard_normal_prior_follows_device_and_shape():
    prior = StandardNormalPrior(4)
    d = prior()
    assert d.event_shape == (4,) and d.batch_shape == ()
    assert torch.allclose(prior.log_prob(torch.zeros(4)), torch.tensor(-2 * math.log(2 * math.pi)))


def test_bernoulli_logits_matches_torch_bernoulli_to_event():
    """BernoulliLogits (x l − softplus(l) summed over the event) gives the log-density, gradient, mean,
    entropy and draws of ``Bernoulli(logits).to_event(k)``, with S draws of logits ``(S, B, *event)``
    broadcast against B images ``(B, *event)``."""
    from pyrozoo.distributions import BernoulliLogits
    torch.manual_seed(0)
    logits = (3 * torch.randn(7, 5, 1, 4, 3, dtype=torch.float64)).requires_grad_()
    x = (torch.rand(5, 1, 4, 3) < 0.4).double()
    ours, ref = BernoulliLogits(logits, 3), torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits), 3)
    assert ours.batch_shape == ref.batch_shape == (7, 5) and ours.event_shape == ref.event_shape == (1, 4, 3)
    lp, lp_ref = ours.log_prob(x), ref.log_prob(x.expand(7, 5, 1, 4, 3))
    assert lp.shape == (7, 5)
    torch.testing.assert_close(lp, lp_ref, rtol=0, atol=1e-12)
    g, = torch.autograd.grad(lp.sum(), logits)
    g_ref, = torch.autograd.grad(lp_ref.sum(), logits)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-12)
    with torch.no_grad():  # the inner-product path (evaluation) and the BCE path (training) agree
        torch.testing.assert_close(ours.log_prob(x), lp.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.mean, ref.mean)
    torch.testing.assert_close(ours.entropy(), ref.entropy(), rtol=0, atol=1e-12)
    # draws: binary, of the right shape, with frequencies near sigmoid(l)
    flat = BernoulliLogits(torch.tensor([-2.0, 0.0, 1.5]), 1)
    draws = flat.sample((20000,))
    assert draws.shape == (20000, 3) and set(draws.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(draws.mean(0), torch.sigmoid(torch.tensor([-2.0, 0.0, 1.5])), atol=0.015, rtol=0)
    # expand (Pyro's plates) keeps the density
    wide = BernoulliLogits(logits[0, :1].detach(), 3).expand((4, 5))
    assert wide.batch_shape == (4, 5)
    one = torch.distributions.Independent(torch.distributions.Bernoulli(logits=logits[0, 0].detach()), 3)
    torch.testing.assert_close(wide.log_prob(x)[2], one.log_prob(x), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="event_dim must be in 0..2"):
        BernoulliLogits(torch.zeros(2, 3), 3)
