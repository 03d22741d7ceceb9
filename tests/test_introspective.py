"""Soft-IntroVAE with a learned prior (Athanasiadis, Lindsten & Felsberg (2025), "Prior Learning in Introspective
VAEs", TMLR, arXiv:2408.13805, building on Daniel & Tamar (2021), "Soft-IntroVAE: Analyzing and Improving the
Introspective Variational Autoencoder", arXiv:2012.13253): the game's losses, soft clipping, responsibilities, the
VampPrior switch and the training loop."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyrozoo import zoo
from pyrozoo.data.toy2d import sample_toy
from pyrozoo.distributions import ClippedMixturePrior, normalized_entropy, responsibilities, soft_clip
from pyrozoo.inference import IntroConfig, IntroStrategy, TrainingLoop, multistep_lr
from pyrozoo.inference.introspective import (IntroLossSettings, decoder_loss, encoder_loss, kl_to_prior, sample_prior,
                                             stop_gradient, vae_loss)

FAST = IntroLossSettings(beta_rec=0.2, beta_kl=0.3, beta_neg=0.9, r_entropy=1.0, kl_samples=8)


def _prior_model(seed=0):
    """A sintrovae-prior model after the switch (clipped learnable MoG with learnable weights)."""
    torch.manual_seed(seed)
    model = zoo.build("sintrovae-prior", event_shape=(2,), num_components=8, prior="mog")
    model.prior.set_bounds()
    return model


def _grads(module):
    return [p.grad for p in module.parameters()]


def _is_zero(grads):
    return all(g is None or bool((g == 0).all()) for g in grads)


def _is_nonzero(grads):
    return any(g is not None and bool((g != 0).any()) for g in grads)


def test_encoder_loss_leaves_decoder_and_prior_gradients_at_zero():
    model = _prior_model()
    x = sample_toy("8gaussians", 64)
    loss, stats = encoder_loss(model, x, settings=FAST)
    loss.backward()
    assert _is_nonzero(_grads(model.encoder))
    assert _is_zero(_grads(model.decoder)) and _is_zero(_grads(model.prior))
    assert "resp_entropy" in stats and 0 <= stats["resp_entropy"] <= 1
    assert all(p.requires_grad for p in model.parameters())  # the freeze is undone


def test_decoder_loss_leaves_encoder_gradients_at_zero_and_trains_the_prior_only_when_asked():
    model = _prior_model()
    x = sample_toy("8gaussians", 64)
    loss, _ = decoder_loss(model, x, settings=FAST, learn_prior=True)
    loss.backward()
    assert _is_zero(_grads(model.encoder))
    assert _is_nonzero(_grads(model.decoder)) and _is_nonzero(_grads(model.prior))
    model.zero_grad(set_to_none=True)
    z = sample_prior(model.prior(), 64).detach()
    loss, _ = decoder_loss(model, x, z, settings=FAST, learn_prior=False)
    loss.backward()
    assert _is_zero(_grads(model.encoder)) and _is_zero(_grads(model.prior))
    assert _is_nonzero(_grads(model.decoder))


def test_prior_is_source_with_gradients_and_target_without():
    model = _prior_model()
    prior = model.prior()
    z = sample_prior(prior, 32)
    z.pow(2).sum().backward()
    assert model.prior.loc.grad.abs().sum() > 0 and model.prior.logvar.grad.abs().sum() > 0
    target = stop_gradient(prior)
    assert not target.loc.requires_grad and not target.logvar.requires_grad
    assert torch.allclose(target.log_prob(z.detach()), prior.log_prob(z.detach()))
    with pytest.raises(ValueError):
        stop_gradient(torch.distributions.Uniform(0.0, 1.0))


def test_decoder_fake_kl_sends_no_target_gradient_to_the_prior():
    """With β_rec = β_kl-real = 0 only the fake KL term remains; with fakes decoded from fixed z it
    depends on the prior only as a (stop-gradient) target, so the prior gets no gradient."""
    model = _prior_model()
    x = sample_toy("8gaussians", 32)
    z = sample_prior(model.prior(), 32).detach()
    torch.manual_seed(1)
    loss, _ = decoder_loss(model, x, z, settings=FAST, beta_rec=0.0, learn_prior=True)
    # the real-data KL (prior as target, no sg) is the only other prior term: remove it by hand,
    # with the same Monte-Carlo draws (same seed, same order of draws)
    torch.manual_seed(1)
    real_only, _ = vae_loss(model, x, FAST, beta_rec=0.0)
    (loss - real_only).backward()
    assert max(g.abs().max().item() for g in _grads(model.prior)) < 1e-7  # zero up to float rounding
    assert _is_nonzero(_grads(model.decoder))


def test_monte_carlo_kl_matches_the_closed_form_for_a_one_component_mixture():
    torch.manual_seed(0)
    q = dist.Normal(torch.randn(5, 2), torch.rand(5, 2) + 0.5).to_event(1)
    mog = ClippedMixturePrior(2, 1)
    with torch.no_grad():
        mog.loc.zero_()
        mog.logvar.zero_()
    exact = kl_to_prior(q, dist.Normal(torch.zeros(2), torch.ones(2)).to_event(1))
    mc = kl_to_prior(q, mog(), num_samples=20000)
    assert torch.allclose(mc, exact, atol=0.05)


def test_soft_clip_is_identity_well_inside_and_saturates_at_the_bounds():
    a, b = torch.tensor([-3.0, 0.5]), torch.tensor([1.0, 2.5])
    mid = 0.5 * (a + b)
    assert torch.allclose(soft_clip(mid, a, b), mid, atol=1e-6)  # exact at the centre for any K
    inside = a + torch.linspace(0.3, 0.7, 9).unsqueeze(-1) * (b - a)
    assert torch.allclose(soft_clip(inside, a, b, k=100.0), inside, atol=1e-6)
    assert torch.allclose(soft_clip(inside, a, b, k=10.0), inside, atol=0.05 * 4)
    assert torch.allclose(soft_clip(b + 100.0, a, b), b, atol=1e-5)
    assert torch.allclose(soft_clip(a - 100.0, a, b), a, atol=1e-5)
    # K = 10 keeps at least 85 % of the range (eq. 48-50) and the map is increasing
    kept = (soft_clip(b, a, b) - soft_clip(a, a, b)) / (b - a)
    assert bool((kept >= 0.85).all())
    xs = torch.linspace(0.0, 1.0, 101, dtype=torch.float64).unsqueeze(-1) * (b - a).double() + a.double()
    assert bool((soft_clip(xs, a.double(), b.double()).diff(dim=0) > 0).all())
    with pytest.raises(ValueError):
        soft_clip(mid, b, a)


def test_clipped_prior_reads_its_log_variances_through_the_clip():
    prior = ClippedMixturePrior(2, 4)
    with torch.no_grad():
        prior.logvar.copy_(torch.tensor([[-1.0, 0.0], [0.0, 1.0], [1.0, -2.0], [0.5, 0.5]]))
    assert torch.equal(prior().logvar, prior.logvar)  # no clipping before the bounds are set
    prior.set_bounds()
    assert torch.equal(prior.clip_low, torch.tensor([-1.0, -2.0]))
    assert torch.equal(prior.clip_high, torch.tensor([1.0, 1.0]))
    with torch.no_grad():
        prior.logvar.fill_(50.0)
    assert bool((prior().logvar <= prior.clip_high + 1e-5).all())


def test_responsibilities_sum_to_one_and_entropy_is_normalised():
    prior = ClippedMixturePrior(3, 6, learn_weights=True)
    with torch.no_grad():
        prior.logits.copy_(torch.randn(6))
    c = responsibilities(prior(), torch.randn(50, 3))
    assert c.shape == (50, 6)
    assert torch.allclose(c.sum(-1), torch.ones(50), atol=1e-6)
    assert normalized_entropy(torch.full((6,), 1 / 6)).item() == pytest.approx(1.0)
    assert normalized_entropy(torch.tensor([1.0, 0, 0, 0])).item() == pytest.approx(0.0)


def test_vampprior_becomes_a_mog_at_the_encoder_outputs_of_its_pseudo_inputs():
    torch.manual_seed(0)
    model = zoo.build("sintrovae", event_shape=(2,), prior="vampprior", num_components=5)
    cfg = IntroConfig(iterations=2, warmup=1, batch_size=16, clip=True, learn_prior=True, quiet=True)
    trainer = IntroStrategy(model, lambda n: sample_toy("8gaussians", n), cfg)
    trainer.setup()
    u = model.prior.pseudo_inputs().detach().clone()
    with torch.no_grad():
        loc, logvar = model.encoder.params(u)
    trainer.switch()
    assert isinstance(model.prior, ClippedMixturePrior)
    assert torch.allclose(model.prior.loc, loc) and torch.allclose(model.prior.logvar, logvar)
    assert torch.allclose(model.prior.clip_low, logvar.min(0).values)
    assert trainer.dec_opt.param_groups[1]["params"] == list(model.prior.parameters())


def test_bad_settings_raise_clear_errors():
    model = zoo.build("sintrovae", event_shape=(2,))
    draw = lambda n: sample_toy("8gaussians", n)  # noqa: E731
    with pytest.raises(ValueError, match="iterations"):
        IntroStrategy(model, draw, IntroConfig(iterations=0))
    with pytest.raises(ValueError, match="mixture prior"):
        IntroStrategy(model, draw, IntroConfig(learn_prior=True))
    with pytest.raises(ValueError, match="keep_vampprior"):
        IntroStrategy(model, draw, IntroConfig(keep_vampprior=True))
    with pytest.raises(ValueError, match="beta_neg"):
        IntroConfig(loss=IntroLossSettings(beta_neg=-1.0)).validate()
    with pytest.raises(ValueError, match="reconstruction loss"):
        IntroLossSettings(rec_loss="l1").validate()
    with pytest.raises(ValueError, match="unknown introspective setting"):
        zoo.intro_config("sintrovae", "8gaussians", warmup_epochs=3)
    with pytest.raises(ValueError, match="not trained with the introspective"):
        zoo.intro_config("vae")
    with pytest.raises(ValueError, match="unknown prior"):
        zoo.build("sintrovae", event_shape=(2,), prior="flow")
    with pytest.raises(ValueError, match="shape"):
        IntroStrategy(model, torch.zeros(10, 3), IntroConfig())


def test_presets_and_table3_betas():
    assert {"sintrovae", "sintrovae-mog", "sintrovae-prior"} <= set(zoo.presets())
    cfg = zoo.intro_config("sintrovae-prior", "checkerboard")
    assert (cfg.loss.beta_rec, cfg.loss.beta_kl, cfg.loss.beta_neg) == (0.05, 0.2, 0.8)
    assert cfg.learn_prior and cfg.clip and cfg.iterations == 30000 and cfg.warmup == 2000
    m = zoo.build("sintrovae", event_shape=(2,))
    sizes = [layer.out_features for layer in m.encoder.net if hasattr(layer, "out_features")]
    assert sizes == [256] * 4 and m.z_dim == 2 and m.encoder.loc.out_features == 2
    assert multistep_lr(2e-4, 9999, (10000, 15000)) == 2e-4
    assert multistep_lr(2e-4, 15000, (10000, 15000)) == pytest.approx(2e-6)


def test_training_smoke_loss_decreases_and_the_game_runs():
    pyro.set_rng_seed(0)
    model = zoo.build("sintrovae", event_shape=(2,))
    cfg = zoo.intro_config("sintrovae", "8gaussians", iterations=260, warmup=200, batch_size=128, log_every=20,
                           quiet=True, lr_encoder=1e-3, lr_decoder=1e-3, beta_kl=0.02)
    loop = TrainingLoop(IntroStrategy(model, lambda n: sample_toy("8gaussians", n), cfg))
    loop.fit()
    history = loop.history
    assert [h["step"] for h in history] == list(range(20, 261, 20))
    warm = [h["loss_vae"] for h in history if "loss_vae" in h]
    assert warm[-1] < 0.8 * warm[0]
    last = history[-1]
    assert last["phase"] == "intro" and math.isfinite(last["loss_e"]) and math.isfinite(last["loss_d"])


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    def run(out, stops):
        pyro.set_rng_seed(0)
        model = zoo.build("sintrovae-prior", event_shape=(2,), num_components=4)
        cfg = zoo.intro_config("sintrovae-prior", "8gaussians", iterations=12, warmup=5, batch_size=32,
                               kl_samples=4, quiet=True, log_every=3)
        loop = TrainingLoop(IntroStrategy(model, lambda n: sample_toy("8gaussians", n), cfg), out)
        for stop in stops:
            if (out / "checkpoints" / "last.pt").exists():
                fresh = zoo.build("sintrovae-prior", event_shape=(2,), num_components=4)
                loop = TrainingLoop(IntroStrategy(fresh, lambda n: sample_toy("8gaussians", n), cfg), out).resume()
            loop.fit(stop_after=stop)
        return loop.model

    a = run(tmp_path / "a", [4])
    b = run(tmp_path / "b", [1, 1, 2])  # killed after the warm-up and again after the switch
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name


def test_kept_vampprior_stays_and_trains_its_pseudo_inputs_with_the_decoder():
    torch.manual_seed(0)
    model = zoo.build("sintrovae", event_shape=(2,), prior="vampprior", num_components=4)
    cfg = IntroConfig(iterations=3, warmup=1, batch_size=16, keep_vampprior=True, learn_prior=True, quiet=True,
                      loss=IntroLossSettings(kl_samples=4))
    loop = TrainingLoop(IntroStrategy(model, lambda n: sample_toy("8gaussians", n), cfg))
    before = model.prior.pseudo_weights.detach().clone()
    loop.fit()
    assert type(model.prior).__name__ == "RealVampPrior"
    assert not torch.equal(before, model.prior.pseudo_weights)
    with pytest.raises(ValueError, match="keep_vampprior"):
        IntroStrategy(model, lambda n: sample_toy("8gaussians", n), IntroConfig(keep_vampprior=True, clip=True))


def test_intro_config_follows_the_paper_per_data_kind():
    two_d = zoo.intro_config("sintrovae-prior", "8gaussians")
    image = zoo.intro_config("sintrovae-prior", "mnist")
    assert (two_d.loss.beta_rec, two_d.loss.beta_kl, two_d.loss.beta_neg) == (0.2, 0.3, 0.9)  # Table 3
    assert two_d.loss.r_entropy == 0 and two_d.batch_size == 512  # §5.1: no entropy term in 2D
    assert (two_d.iterations, two_d.warmup, two_d.milestones) == (30000, 2000, (10000, 15000))
    assert (image.loss.beta_rec, image.loss.beta_kl, image.loss.beta_neg) == (1.0, 1.0, 256.0)  # §5.2
    assert image.loss.r_entropy == 10
    assert zoo.intro_config("sintrovae-prior", "8gaussians", r_entropy=5.0).loss.r_entropy == 5.0
    with pytest.raises(ValueError, match="unknown introspective setting"):
        zoo.intro_config("sintrovae", "8gaussians", epochs=3)


@pytest.mark.parametrize("dataset, batch, train_size", [("mnist", 128, 50000), ("fashion-mnist", 128, 50000),
                                                        ("cifar10", 32, 45000)])
def test_image_runs_are_scheduled_in_epochs_per_data_set(dataset, batch, train_size):
    """§5.2: Daniel & Tamar's recipe per data set (batch 128 for (F)MNIST, 32 for CIFAR-10) for 200 epochs after
    20 epochs of VAE warm-up, no learning-rate drop; an epoch is ceil(N / batch) iterations."""
    from pyrozoo.runs.config import resolve
    cfg = zoo.intro_config("sintrovae-prior", dataset)
    per_epoch = math.ceil(train_size / batch)
    assert (cfg.batch_size, cfg.iterations, cfg.warmup) == (batch, 220 * per_epoch, 20 * per_epoch)
    assert multistep_lr(2e-4, cfg.iterations - 1, cfg.milestones) == 2e-4
    # a shorter run keeps the recipe's share of warm-up (20 of 220 epochs)
    short = resolve(zoo.recipe("sintrovae"), {"dataset": dataset, "iterations": 11 * per_epoch})
    assert short["warmup_iterations"] == per_epoch and short["batch_size"] == batch


def test_tensor_data_are_read_in_epochs():
    """Each epoch of the game reads every training image once, in a permutation drawn from (seed, epoch)."""
    model = zoo.build("sintrovae", event_shape=(2,))
    data = torch.arange(10.0).unsqueeze(-1).expand(10, 2).contiguous()
    for accumulate, per_epoch in ((1, 3), (2, 2)):
        trainer = IntroStrategy(model, data, IntroConfig(iterations=9, warmup=9, batch_size=4 // accumulate,
                                                          accumulate=accumulate, quiet=True))
        trainer.setup()
        epochs = []
        for epoch in range(2):
            seen = []
            for step in range(per_epoch):
                trainer.step = epoch * per_epoch + step
                seen += [trainer._begin(j, None, 0)[:, 0] for j, _ in trainer._micro(None)]
            epochs.append(torch.cat(seen).long())
        full = per_epoch * 4 if accumulate > 1 else 10  # an incomplete global batch is dropped
        for order in epochs:
            assert len(order) == full and len(set(order.tolist())) == full
        assert not torch.equal(epochs[0], epochs[1])


def test_image_vampprior_uses_the_encoder_in_eval_mode_and_bounds_its_pseudo_inputs():
    """The components are q(z|u_k) as the encoder gives it for u_k: batch norm from the data's running statistics,
    not the K pseudo-inputs' own, which leave those statistics alone; u_k in [0, 1] like the images."""
    from pyrozoo.inference.game import switch_prior
    torch.manual_seed(0)
    model = zoo.build("sintrovae-prior", event_shape=(1, 16, 16), channels=(4, 8), z_dim=3, num_components=6)
    model.train()
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    model.encoder(torch.rand(32, 1, 16, 16))  # running statistics of some data
    with torch.no_grad():
        model.prior.pseudo_weights[0].fill_(3.0)  # beyond the data's range
    stats = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in norms]
    mix = model.prior()
    u = model.prior.pseudo_inputs().detach()
    assert float(u.min()) >= 0.0 and float(u.max()) <= 1.0 and bool((u[0] == 1.0).all())
    for m, (mean, var, count) in zip(norms, stats):
        assert m.training and torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert int(m.num_batches_tracked) == count
    model.eval()
    with torch.no_grad():
        loc, logvar = model.encoder.params(u)
        alone = model.encoder.params(u[2:3])
    model.train()
    assert torch.allclose(mix.loc, loc, atol=1e-5) and torch.allclose(mix.logvar, logvar, atol=1e-5)
    assert torch.allclose(mix.loc[2:3], alone[0], atol=1e-5)  # a component does not depend on the others
    mix.log_prob(torch.randn(5, 3)).sum().backward()
    assert model.prior.pseudo_weights.grad is not None and model.prior.pseudo_weights.grad[1].abs().sum() > 0
    prior = switch_prior(model, IntroConfig(clip=True, learn_prior=True))
    assert torch.allclose(prior.loc, loc, atol=1e-5)
