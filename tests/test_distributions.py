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
