"""The 2D density metrics of Athanasiadis, Lindsten & Felsberg (2025), "Prior Learning in Introspective VAEs", TMLR,
arXiv:2408.13805, §5.1: gnELBO, histogram KL and JSD."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pyrozoo import zoo
from pyrozoo.data.toy2d import BOXES, sample_toy
from pyrozoo.evaluation.density2d import (evaluate_2d, grid_normalized_elbo, grid_points, histogram_density,
                                          histogram_jsd, histogram_kl, kl_batchmean, point_loss)


def test_constant_loss_model_scores_one_over_grid_plus_data():
    data = sample_toy("8gaussians", 12800, generator=torch.Generator().manual_seed(0))
    value = grid_normalized_elbo(lambda x: torch.full((len(x),), 3.7), data, BOXES["8gaussians"], grid_size=1024)
    assert value == pytest.approx(1.0 / (1024 ** 2 + 12800), rel=1e-9)
    assert value == pytest.approx(9.42e-07, rel=1e-3)


def test_gnelbo_rewards_low_loss_on_data():
    data = sample_toy("8gaussians", 1000, generator=torch.Generator().manual_seed(0))
    # a loss that is small on the circle through the eight modes and grows away from it
    good = grid_normalized_elbo(lambda x: (x.norm(dim=-1) - 2 / 1.414).abs() + 1e-3, data, (-2, 2), grid_size=128)
    assert good < 1.0 / (128 ** 2 + 1000)


def test_grid_covers_the_box():
    g = grid_points((-4.0, 4.0), size=5)
    assert g.shape == (25, 2)
    assert g.min().item() == -4.0 and g.max().item() == 4.0
    with pytest.raises(ValueError):
        grid_points((1.0, -1.0), size=5)


def test_histogram_kl_floor_of_two_independent_draws_is_about_07():
    gen = torch.Generator().manual_seed(1)
    kls = [histogram_kl(sample_toy("8gaussians", 5000, gen), sample_toy("8gaussians", 5000, gen),
                        BOXES["8gaussians"]) for _ in range(20)]
    assert 0.5 < float(np.mean(kls)) < 0.85


def test_histogram_kl_and_jsd_vanish_for_identical_points_and_grow_for_different_ones():
    x = sample_toy("8gaussians", 5000, generator=torch.Generator().manual_seed(2))
    box = BOXES["8gaussians"]
    assert histogram_kl(x, x, box) == pytest.approx(0.0, abs=1e-12)
    assert histogram_jsd(x, x, box) == pytest.approx(0.0, abs=1e-12)
    far = 0.5 * torch.randn(5000, 2, generator=torch.Generator().manual_seed(3))
    assert histogram_kl(x, far, box) > 5.0
    assert histogram_jsd(x, far, box) > 1.0


def test_kl_batchmean_is_torch_kl_div_batchmean_on_density_arrays():
    gen = torch.Generator().manual_seed(4)
    p = histogram_density(sample_toy("rings", 3000, gen), BOXES["rings"])
    q = histogram_density(sample_toy("rings", 3000, gen), BOXES["rings"])
    pt, qt = torch.from_numpy(p), torch.from_numpy(q)
    ref = F.kl_div(torch.log(qt + 1e-14), pt, reduction="batchmean").item()
    assert kl_batchmean(p, q) == pytest.approx(ref, rel=1e-10)
    # density=True: the histogram integrates to one over the box
    width = (BOXES["rings"][1] - BOXES["rings"][0]) / 100
    assert p.sum() * width ** 2 == pytest.approx(1.0, rel=1e-9)


def test_point_loss_is_closed_form_kl_plus_squared_error_at_the_posterior_mean():
    torch.manual_seed(0)
    model = zoo.build("sintrovae", event_shape=(2,))
    x = sample_toy("8gaussians", 50)
    q = model.encoder(x)
    mu, var = q.base_dist.loc, q.base_dist.scale ** 2
    kl = 0.5 * (var + mu ** 2 - 1 - var.log()).sum(-1)
    sse = (x - model.decoder.mean(mu)).pow(2).sum(-1)
    assert torch.allclose(point_loss(model, x), kl + sse, atol=1e-5)


def test_evaluate_2d_returns_finite_metrics_and_rejects_unknown_sets():
    torch.manual_seed(0)
    model = zoo.build("sintrovae-mog", event_shape=(2,))
    out = evaluate_2d(model, "8gaussians", num_points=500, data_points=200, grid_size=32, kl_samples=4)
    assert set(out) == {"gnelbo", "kl", "jsd"} and all(math.isfinite(v) for v in out.values())
    assert out["gnelbo"] > 0
    with pytest.raises(ValueError, match="unknown 2D"):
        evaluate_2d(model, "moons")
