"""MoG, VampPrior (eq. 9), VampPrior-data and weighted VampPrior (eq. 16); the two-level HVAE (eqs. 10-15)."""

import math

import pytest
import torch

from pyrozoo import zoo
from pyrozoo.distributions import DiagonalGaussianMixture, MixtureOfGaussiansPrior, VampPrior
from pyrozoo.guides import GaussianEncoder
from pyrozoo.inference.svi import normalize_gradients
from pyrozoo.nn import gated_mlp

from helpers import fit


def _encoder(z_dim=2, d=6):
    torch.manual_seed(0)
    return GaussianEncoder(gated_mlp([d, 16]), 16, z_dim).double()


def test_mixture_log_prob_matches_torch_mixture_same_family():
    torch.manual_seed(0)
    loc, logvar, logits = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5)
    ours = DiagonalGaussianMixture(loc, logvar, logits)
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits),
        torch.distributions.Independent(torch.distributions.Normal(loc, torch.exp(0.5 * logvar)), 1))
    z = 3 * torch.randn(4, 7, 3)
    assert torch.allclose(ours.log_prob(z), ref.log_prob(z), atol=1e-4)
    far = torch.full((2, 3), 300.0)  # every component's log-density near -1e5: the max-shift keeps it finite
    assert torch.allclose(ours.log_prob(far), ref.log_prob(far), rtol=1e-5)
    # gradients of the one-product form match torch's, for z and every parameter
    params = [t.double().requires_grad_() for t in (z, loc, logvar, logits)]
    ours_grads = torch.autograd.grad(DiagonalGaussianMixture(*params[1:]).log_prob(params[0]).sum(), params)
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=params[3]),
        torch.distributions.Independent(torch.distributions.Normal(params[1], torch.exp(0.5 * params[2])), 1))
    for a, b in zip(ours_grads, torch.autograd.grad(ref.log_prob(params[0]).sum(), params)):
        assert torch.allclose(a, b, atol=1e-8)
    assert torch.allclose(ours.weights.sum(), torch.tensor(1.0))
    assert ours.expand((4, 7)).log_prob(z).shape == (4, 7)
    assert ours.sample((1000,)).shape == (1000, 3)


def _reference_log_prob(z, loc, logvar, logits):
    """The mixture log-density in float64 in the direct form Σ_d (z_d − μ_kd)²/σ_kd²: ``(N,)``."""
    z, loc, logvar, logits = (t.double() for t in (z, loc, logvar, logits))
    quad = ((z.unsqueeze(-2) - loc) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(torch.log_softmax(logits, -1) - 0.5 * quad, -1)


@pytest.mark.parametrize("case", ["spread", "offset", "2d"])
def test_mixture_log_prob_in_float32_is_within_a_millinat(case):
    """At |μ| ≈ 3-5 and log σ² down to −6 (a VampPrior's range, 40 dimensions) the expanded quadratic form
    cancels: float32 lost 0.013-0.017 nats there. Points drawn from the mixture, where it matters most."""
    gen = torch.Generator().manual_seed(0)
    k, d = (64, 2) if case == "2d" else (500, 40)
    sign = torch.sign(torch.randn(k, d, generator=gen))
    magnitude = 4 + 0.5 * torch.randn(k, d, generator=gen) if case == "offset" else 3 + 2 * torch.rand(k, d, generator=gen)
    loc = magnitude if case == "offset" else magnitude * sign
    logvar, logits = -6 * torch.rand(k, d, generator=gen), torch.randn(k, generator=gen)
    mix = DiagonalGaussianMixture(loc, logvar, logits)
    torch.manual_seed(0)
    z = mix.sample((2000,))
    ref = _reference_log_prob(z, loc, logvar, logits)
    got = mix.log_prob(z)
    assert got.dtype == torch.float32
    assert (got.double() - ref).abs().max() < 1e-3
    # the per-component densities (responsibilities of the learned intro prior) too
    comp = mix.component_log_prob(z[:200]).double()
    ref_comp = -0.5 * ((z[:200, None].double() - loc.double()) ** 2 * torch.exp(-logvar.double())
                       + logvar.double() + math.log(2 * math.pi)).sum(-1)
    assert ((comp - ref_comp).abs() <= 1e-3 + 2.0 ** -23 * ref_comp.abs()).all()  # far ones: float32's own spacing
    # gradients (float32 products: d/d log σ² cancels like the forward's terms) within 1e-3 of the largest
    params = [t.clone().requires_grad_() for t in (z[:200], loc, logvar, logits)]
    grads = torch.autograd.grad(DiagonalGaussianMixture(*params[1:]).log_prob(params[0]).sum(), params)
    ref_params = [t.detach().double().requires_grad_() for t in params]
    ref_grads = torch.autograd.grad(_reference_log_prob(*ref_params).sum(), ref_params)
    for a, b in zip(grads, ref_grads):
        assert (a.double() - b).abs().max() <= 1e-3 * b.abs().max()


@pytest.mark.parametrize("kind", ["mog", "vampprior", "weighted"])
def test_prior_density_integrates_to_one_in_2d(kind):
    if kind == "mog":
        prior = MixtureOfGaussiansPrior(2, num_components=4, learn_weights=True).double()
        with torch.no_grad():
            prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
            prior.logvar.fill_(-1.0)
    else:
        enc = _encoder()
        prior = VampPrior(2, enc.params, (6,), num_components=5, weighted=(kind == "weighted")).double()
        with torch.no_grad():
            prior.pseudo_weights.uniform_(0, 1)
            if prior.logits is not None:
                prior.logits.normal_()
    g = torch.linspace(-12, 12, 1201, dtype=torch.float64)
    zz = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1)
    with torch.no_grad():
        dens = prior().log_prob(zz).exp()
    cell = (g[1] - g[0]) ** 2
    assert float(dens.sum() * cell) == pytest.approx(1.0, abs=2e-3)
    assert float(prior().weights.sum().detach()) == pytest.approx(1.0, abs=1e-12)


def test_vampprior_with_one_pseudo_input_is_the_posterior_of_that_input():
    enc = _encoder(z_dim=3)
    x0 = torch.rand(1, 6, dtype=torch.float64)
    prior = VampPrior(3, enc.params, (6,), num_components=1, init=x0, learnable=False).double()
    z = torch.randn(10, 3, dtype=torch.float64)
    assert torch.allclose(prior().log_prob(z), enc(x0).log_prob(z), atol=1e-10)


def test_prior_gradients_reach_pseudo_inputs_and_encoder():
    enc = _encoder(z_dim=3)
    prior = VampPrior(3, enc.params, (6,), num_components=7).double()
    prior().log_prob(torch.randn(5, 3, dtype=torch.float64)).sum().backward()
    assert prior.pseudo_weights.grad is not None and prior.pseudo_weights.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    # the encoder is not registered twice: its parameters belong to the model only
    assert not any(n.startswith("_encode") for n, _ in prior.named_parameters())


def test_pseudo_inputs_are_clipped_to_unit_interval_and_initialised_as_the_authors():
    enc = _encoder()
    torch.manual_seed(1)
    prior = VampPrior(2, enc.params, (6,), num_components=500)
    w = prior.pseudo_weights.detach()
    assert abs(w.mean() - 0.05) < 0.002 and abs(w.std() - 0.01) < 0.002
    with torch.no_grad():
        prior.pseudo_weights.mul_(100)
    u = prior.pseudo_inputs()
    assert u.min() >= 0 and u.max() <= 1


@pytest.mark.parametrize("preset", ["vampprior", "hvae-vampprior", "convhvae-vampprior"])
def test_vampprior_presets_initialise_like_the_authors_code(preset):
    """jmtomczak/vae_vampprior draws nn.Linear weights N(0, 2 / fan_in) and leaves every bias, and the
    convolutions, at PyTorch's defaults (uniform within ±1/sqrt(fan_in))."""
    torch.manual_seed(0)
    model = zoo.build(preset, event_shape=(1, 28, 28))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    big = [m for m in linears if m.weight.numel() >= 20000]
    assert big
    for m in big:
        assert abs(m.weight.std().item() / math.sqrt(2.0 / m.in_features) - 1) < 0.05
    for m in linears + convs:
        if m.bias is None:
            continue
        bound = 1 / math.sqrt(m.weight[0].numel())
        assert 0 < m.bias.abs().max() <= bound
        if m.bias.numel() >= 20:
            assert m.bias.abs().max() > 0.5 * bound
    for m in convs:  # kaiming_uniform(a=√5): uniform within ±1/sqrt(fan_in), std 1/sqrt(3 fan_in)
        fan_in = m.weight[0].numel()
        assert m.weight.abs().max() <= 1 / math.sqrt(fan_in) + 1e-7
        if m.weight.numel() >= 5000:
            assert abs(m.weight.std().item() * math.sqrt(3 * fan_in) - 1) < 0.1


def test_vampprior_presets_bound_bernoulli_probabilities_like_the_authors_code():
    """The authors clamp p to [1e-5, 1 - 1e-5] in log_Bernoulli: a confidently wrong pixel costs
    -log(1e-5) = 11.51 nats, not the softplus of its logit; other presets keep the plain Bernoulli."""
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    logits = torch.tensor([[-40.0, 40.0, 3.0, -2.0]])
    bounded = zoo.build("vampprior", event_shape=(4,)).decoder.likelihood(logits)
    plain = zoo.build("vae", event_shape=(4,)).decoder.likelihood(logits)
    p = torch.sigmoid(logits.double()).clamp(1e-5, 1 - 1e-5)  # float64: 1 - p is exact enough there
    expected = (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(bounded.log_prob(x).double(), expected, rtol=1e-6, atol=1e-4)
    assert abs(bounded.log_prob(x).item() - (2 * math.log(1e-5) - math.log1p(math.exp(-3)) - math.log1p(math.exp(-2)))) < 1e-3
    assert plain.log_prob(x).item() < -79  # 40 + 40 nats from the two wrong pixels
    from pyrozoo.distributions import BernoulliLikelihood
    with pytest.raises(ValueError, match=r"probs_floor must be in \(0, 0.5\) or None, got 0.7"):
        BernoulliLikelihood((4,), probs_floor=0.7)


@pytest.mark.parametrize("preset", ["vampprior", "hvae-vampprior", "pixelhvae-vampprior"])
def test_vampprior_presets_train_with_normalised_gradients_and_a_per_epoch_warmup(preset, digits, tmp_path):
    """§5.1: Adam with normalised gradients; the authors' warm-up holds β = e / warmup through epoch e
    (counted from 1). A run of the preset's defaults steps β 0.05, 0.10, ... per epoch at warm-up 20."""
    import pyrozoo
    from pyrozoo.inference import SVIStrategy
    from pyrozoo.runs.engine import train_config
    small = {"z_dim": 2, "hidden": [8], "num_components": 3}
    run = pyrozoo.train(preset, "digits", tmp_path / "run", epochs=1, evaluate=False, quiet=True, **small)
    cfg = train_config(run.config["options"])
    assert cfg.normalize_gradients and cfg.kl_schedule == "epochs" and cfg.warmup == 20
    assert run.metrics[0]["beta"] == pytest.approx(0.05)  # the β epoch 0 trained with (its last step's)
    strategy = SVIStrategy(zoo.build("vampprior", event_shape=digits.event_shape), digits, cfg)
    spe = strategy.steps_per_epoch
    betas = []
    for step in (0, spe - 1, spe, 19 * spe - 1, 19 * spe):
        strategy.step = step
        betas.append(strategy.beta())
    assert betas == pytest.approx([0.05, 0.05, 0.10, 0.95, 1.0])


def test_vampprior_data_uses_fixed_training_images(digits):
    model = zoo.build("vampprior-data", event_shape=digits.event_shape, data=digits.train, num_components=20)
    u = model.prior.pseudo_inputs()
    assert not any(p is model.prior.pseudo_weights for p in model.parameters())
    # every pseudo-input is one of the training images
    dist = torch.cdist(u.flatten(1), digits.train.flatten(1)).min(1).values
    assert torch.all(dist < 1e-6)
    with pytest.raises(ValueError, match="needs training images"):
        zoo.build("vampprior-data", event_shape=digits.event_shape)
    with pytest.raises(ValueError, match="unknown prior"):
        zoo.build("hvae", event_shape=digits.event_shape, prior="flat")


def test_normalized_gradients_have_unit_norm():
    enc = _encoder()
    enc(torch.rand(4, 6, dtype=torch.float64)).rsample().pow(2).sum().backward()
    normalize_gradients(enc.parameters())
    norms = torch.stack([p.grad.norm() for p in enc.parameters()])
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


@pytest.mark.parametrize("preset", ["hvae", "hvae-vampprior"])
def test_hvae_log_likelihood_is_above_elbo_and_both_levels_are_used(preset, digits, tmp_path):
    from pyrozoo.evaluation import active_units, elbo_terms, log_likelihood
    torch.manual_seed(0)
    model = zoo.build(preset, event_shape=digits.event_shape)
    fit(model, digits, tmp_path, epochs=5, lr=2e-3)
    x = digits.test[:100]
    ll = log_likelihood(model, x, num_samples=300)
    elbo = elbo_terms(model, x, num_samples=20)["elbo"]
    assert torch.isfinite(ll).all()
    assert ll.mean() > elbo.mean()
    au = active_units(model, x)
    assert set(au) == {"z1", "z2"}


@pytest.mark.parametrize("preset", ["convhvae-vampprior", "pixelhvae-vampprior"])
def test_convolutional_hvaes_train_and_bound(preset, digits, tmp_path):
    from pyrozoo.evaluation import elbo_terms, log_likelihood
    torch.manual_seed(0)
    model = zoo.build(preset, event_shape=digits.event_shape, num_components=20)
    small = type(digits)("digits", digits.train[:300], digits.valid[:100], digits.test[:50], digits.support,
                         digits.binarize)
    fit(model, small, tmp_path, epochs=2, lr=2e-3)
    x = small.test
    ll = log_likelihood(model, x, num_samples=100)
    elbo = elbo_terms(model, x, num_samples=10)["elbo"]
    assert torch.isfinite(ll).all() and ll.mean() > elbo.mean()
    assert model.sample(2).shape == (2, *digits.event_shape)
