import math

import pyro
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

from pyrozoo import zoo
from pyrozoo.inference import ELBO, IWAE, log_weights, make_objective, scale_latents


def _vae(digits, seed=0):
    torch.manual_seed(seed)
    return zoo.build("vae", event_shape=digits.event_shape, z_dim=4, hidden=(32,))


def test_elbo_matches_trace_elbo_in_expectation(digits):
    vae = _vae(digits)
    x = digits.test[:64]
    with torch.no_grad():
        pyro_est = torch.tensor([Trace_ELBO().loss(vae.model, vae.guide, x) for _ in range(300)]).mean()
        mc = torch.tensor([ELBO(analytic_kl=False).loss(vae.model, vae.guide, x) for _ in range(300)]).mean()
        analytic = torch.tensor([ELBO().loss(vae.model, vae.guide, x) for _ in range(300)]).mean()
    assert abs(pyro_est - mc) / 64 < 0.1
    assert abs(pyro_est - analytic) / 64 < 0.1


def test_elbo_works_inside_svi_and_scales_minibatch(digits):
    vae = _vae(digits)
    x = digits.test[:50]
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}), ELBO())
    loss = svi.step(x, num_data=1000)
    with torch.no_grad():
        torch.manual_seed(1)
        full = ELBO().loss(vae.model, vae.guide, x)
        torch.manual_seed(1)
        scaled = ELBO().loss(vae.model, vae.guide, x, num_data=1000)
    assert scaled == pytest.approx(full * 20, rel=1e-5)
    assert math.isfinite(loss) and len(pyro.get_param_store()) > 0


def test_beta_scales_only_the_kl(digits):
    vae = _vae(digits)
    x = digits.test[:20]
    obj = ELBO()
    with torch.no_grad():
        torch.manual_seed(0)
        l1 = obj.loss(vae.model, vae.guide, x)
        torch.manual_seed(0)
        l0 = obj.loss(scale_latents(vae.model, 0.0), scale_latents(vae.guide, 0.0), x)
        torch.manual_seed(0)
        lh = obj.loss(scale_latents(vae.model, 0.5), scale_latents(vae.guide, 0.5), x)
    # loss = rec + beta * kl: linear in beta
    assert lh == pytest.approx((l1 + l0) / 2, rel=1e-5)
    assert l1 > l0


def test_iwae_with_one_sample_is_the_elbo_and_grows_with_k(trained_vae, digits):
    x = digits.test[:100]
    torch.manual_seed(0)
    lw = log_weights(trained_vae.model, trained_vae.guide, x, num_samples=1)
    torch.manual_seed(0)
    mc = ELBO(analytic_kl=False).loss(trained_vae.model, trained_vae.guide, x)
    assert -lw.sum().item() == pytest.approx(mc, rel=1e-5)
    torch.manual_seed(0)
    assert IWAE(1).loss(trained_vae.model, trained_vae.guide, x) == pytest.approx(mc, rel=1e-5)
    bounds = [-sum(IWAE(k).loss(trained_vae.model, trained_vae.guide, x) for _ in range(5)) / 5 for k in (1, 10, 100)]
    assert bounds[0] <= bounds[1] <= bounds[2]


def test_five_particle_elbo_averages_and_iwae_5_is_the_k5_bound(trained_vae, digits):
    """The equal-compute baselines of the Stein benchmark: ``make_objective("elbo", 5)`` averages five draws per
    point and ``make_objective("iwae", 5)`` is Burda et al.'s L_5 on the same draws, both scaled by N/B."""
    x = digits.test[:50]
    torch.manual_seed(3)
    lw = log_weights(trained_vae.model, trained_vae.guide, x, num_samples=5)  # (5, 50)
    assert lw.shape == (5, 50)
    torch.manual_seed(3)
    elbo = make_objective("elbo-mc", 5).loss(trained_vae.model, trained_vae.guide, x, num_data=500)
    assert elbo == pytest.approx(-10 * lw.mean(0).sum().item(), rel=1e-5)
    torch.manual_seed(3)
    iwae = make_objective("iwae", 5).loss(trained_vae.model, trained_vae.guide, x, num_data=500)
    assert iwae == pytest.approx(-10 * (torch.logsumexp(lw, 0) - math.log(5)).sum().item(), rel=1e-5)
    assert iwae < elbo  # L_5 >= the 5-draw ELBO on the same draws (Jensen)


def test_iwae_tempers_its_weights_with_beta(trained_vae, digits):
    """β from scale_latents (warm-up, schedules, β-VAE) acts on the IWAE bound through the weights
    log p(x|z) + β (log p(z) − log q(z|x)): K = 1 is the β-weighted Monte-Carlo ELBO, and at K = 5 the
    bound equals the one computed by hand from the encoder and decoder on the same draws."""
    vae, x = trained_vae, digits.test[:50]

    def loss(obj, beta, seed=0, **kw):
        torch.manual_seed(seed)
        return obj.loss(scale_latents(vae.model, beta), scale_latents(vae.guide, beta), x, **kw)

    for beta in (0.0, 0.5, 2.0):
        assert loss(IWAE(1), beta) == pytest.approx(loss(ELBO(analytic_kl=False), beta), rel=1e-5)
    losses = [loss(IWAE(5), beta) for beta in (0.0, 0.5, 1.0)]
    assert losses[0] < losses[1] < losses[2]  # the latent term log p(z) − log q(z|x) is negative on average
    for beta, value in zip((0.0, 0.5, 1.0), losses):
        torch.manual_seed(0)
        with torch.no_grad():
            q = vae.encoder(x)
            z = q.rsample((5,))
            lw = vae.decoder(z).log_prob(x) + beta * (vae.prior().log_prob(z) - q.log_prob(z))
            ref = -(torch.logsumexp(lw, 0) - math.log(5)).sum().item()
        assert value == pytest.approx(ref, rel=1e-5)
    # the mini-batch factor N/B is applied once, outside the weights
    assert loss(IWAE(5), 0.5, num_data=500) == pytest.approx(losses[1] * 10, rel=1e-5)


def test_iwae_preset_has_no_warmup():
    assert zoo.recipe("iwae").defaults["warmup"] == 0  # Burda et al. (2016) train the bound without warm-up


def test_make_objective_rejects_unknown():
    with pytest.raises(ValueError, match="choose from"):
        make_objective("vi")
    with pytest.raises(ValueError):
        make_objective("iwae", 0)
