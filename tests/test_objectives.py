"""Free bits (Pavesi (2024), "Variational Auto Encoders" (lecture notes), eq. 14; Kingma et al. (2016), "Improved
Variational Inference with Inverse Autoregressive Flow", arXiv:1606.04934), β and KL schedules, IWAE (Burda, Grosse &
Salakhutdinov (2016), "Importance Weighted Autoencoders", arXiv:1509.00519) as a training objective."""

import json

import pytest
import torch
import torch.nn.functional as F

from pyrozoo import zoo
from pyrozoo.inference import (FreeBitsELBO, TrainConfig, cyclical, free_bits_kl, kl_weight,
                                make_objective)
from pyrozoo.inference.traces import get_traces

from helpers import fit


def test_free_bits_kl_by_hand():
    kl = torch.tensor([[0.1, 0.3, 0.05, 0.6], [0.3, 0.1, 0.15, 0.2]])
    # groups {0,1} and {2,3}: per-point group KLs [0.4, 0.65] and [0.4, 0.35]; batch means 0.4 and 0.5
    assert float(free_bits_kl(kl, 2, 0.5)) == pytest.approx(0.5 + 0.5)
    assert float(free_bits_kl(kl, 2, 0.3)) == pytest.approx(0.4 + 0.5)
    assert float(free_bits_kl(kl, 4, 0.0)) == pytest.approx(kl.mean(0).sum().item())
    assert float(free_bits_kl(kl, 1, 2.0)) == pytest.approx(2.0)


def test_free_bits_loss_equals_hand_computation(digits):
    torch.manual_seed(0)
    vae = zoo.build("vae", event_shape=digits.event_shape, z_dim=4, hidden=(16,))
    x = digits.test[:10]
    lam, groups, n = 0.3, 2, 500
    torch.manual_seed(3)
    loss = FreeBitsELBO(free_bits=lam, num_groups=groups).differentiable_loss(vae.model, vae.guide, x, num_data=n)
    torch.manual_seed(3)
    _, guide_trace = get_traces(vae.model, vae.guide, (x,), {"num_data": n})
    z = guide_trace.nodes["z"]["value"]
    loc, logvar = vae.encoder.params(x)
    kl_dims = 0.5 * (loc ** 2 + logvar.exp() - 1 - logvar)  # (B, 4), N(0, I) prior
    group_means = torch.stack([kl_dims[:, :2].sum(1).mean(), kl_dims[:, 2:].sum(1).mean()])
    logits = vae.decoder.net(z).reshape(x.shape)
    rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    hand = -(rec * n / len(x) - n * group_means.clamp(min=lam).sum())
    assert float(loss.detach()) == pytest.approx(float(hand.detach()), rel=1e-5)


def test_free_bits_with_zero_lambda_and_one_group_is_the_elbo(digits):
    torch.manual_seed(0)
    vae = zoo.build("vae", event_shape=digits.event_shape)
    x = digits.test[:30]
    torch.manual_seed(1)
    fb = make_objective("free-bits", 1, free_bits=0.0, kl_groups=1).loss(vae.model, vae.guide, x)
    torch.manual_seed(1)
    elbo = make_objective("elbo").loss(vae.model, vae.guide, x)
    assert fb == pytest.approx(elbo, rel=1e-5)


def test_free_bits_rejects_non_diagonal_posteriors_before_training(digits, tmp_path):
    model = zoo.build("vae-iaf", event_shape=digits.event_shape, flow_steps=1)
    with pytest.raises(ValueError, match="free bits needs a diagonal Gaussian posterior"):
        fit(model, digits, tmp_path, objective=FreeBitsELBO(0.5, 2), epochs=1)
    assert not (tmp_path / "metrics.jsonl").exists()
    with pytest.raises(ValueError, match="lambda must be >= 0"):
        FreeBitsELBO(-1.0)
    with pytest.raises(ValueError, match="apply to objective 'free-bits'"):
        make_objective("elbo", free_bits=0.5)


def test_kl_schedules():
    assert kl_weight(0, 10, 100) == 0.0 and kl_weight(5, 10, 100) == 0.5 and kl_weight(50, 10, 100) == 1.0
    assert kl_weight(50, 10, 100, beta=4.0) == 4.0
    # 4 cycles of 25 steps, rising over the first half of each
    values = [cyclical(s, 100, cycles=4) for s in (0, 6.25, 12.5, 20, 25, 31.25)]
    assert values == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.0, 0.5])
    # per epoch (the VampPrior authors'): 12 steps per epoch, warm-up 5 epochs -> 0.2 in all of epoch 0, 1 from epoch 4
    per_epoch = [kl_weight(s, 60, 120, schedule="epochs", steps_per_epoch=12) for s in (0, 11, 12, 35, 47, 48, 119)]
    assert per_epoch == pytest.approx([0.2, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert kl_weight(3, 0, 120, schedule="epochs", steps_per_epoch=12) == 1.0
    with pytest.raises(ValueError, match="needs steps_per_epoch >= 1"):
        kl_weight(0, 60, 120, schedule="epochs")
    with pytest.raises(ValueError, match="unknown KL schedule 'cosine'; choose from linear, epochs, cyclical"):
        kl_weight(0, 1, 1, schedule="cosine")
    with pytest.raises(ValueError, match="beta"):
        TrainConfig(beta=-1).validate()


def test_trainer_applies_beta_and_cyclical_schedule(digits, tmp_path):
    model = zoo.build("beta-vae", event_shape=digits.event_shape)
    fit(model, digits, tmp_path, epochs=4, beta=4.0, kl_schedule="cyclical", cycles=2)
    betas = [json.loads(line)["beta"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # 12 steps per epoch, 2 cycles of 24 steps rising over 12: the β of each epoch's last step (11, 23, 35, 47)
    assert betas == pytest.approx([4.0 * 11 / 12, 4.0, 4.0 * 11 / 12, 4.0], abs=1e-6)


def test_the_short_kl_against_the_standard_prior_equals_torchs_and_is_taken():
    from pyrozoo.distributions import StandardNormalPrior
    from pyrozoo.inference.objectives import _analytic_kl
    torch.manual_seed(0)
    loc = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(7, 5, dtype=torch.float64).add(0.05).requires_grad_()
    q = torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)
    prior = StandardNormalPrior(5).double()()
    assert prior.standard_normal
    ours = _analytic_kl(q, prior)
    reference = torch.distributions.kl_divergence(q, prior)
    torch.testing.assert_close(ours, reference)
    g_ours = torch.autograd.grad(ours.sum(), (loc, scale))
    g_ref = torch.autograd.grad(reference.sum(), (loc, scale))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)
    # not taken for another prior: the registry's form, whatever it is, and None without one
    other = torch.distributions.Independent(torch.distributions.Normal(torch.ones(5, dtype=torch.float64),
                                                                       2 * torch.ones(5, dtype=torch.float64)), 1)
    torch.testing.assert_close(_analytic_kl(q, other), torch.distributions.kl_divergence(q, other))
    assert (_analytic_kl(q, other) - _analytic_kl(q, prior)).abs().min() > 0.1
