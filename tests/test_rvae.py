"""Tests of the R-VAE (Kalatzis et al. 2020) model layer: immersion decoder, heat-kernel parts,
two-phase training, the latent classifier and the presets."""

import json
import math

import pyro
import pytest
import torch

import pyrozoo
from pyrozoo import cli, zoo
from pyrozoo.data import load
from pyrozoo.distributions import HeatKernelPrior
from pyrozoo.evaluation import elbo_terms, latent_f1
from pyrozoo.geometry import GEODESIC_SOLVER, HeatKernel, jacobian, pullback_metric
from pyrozoo.inference import ELBO, TrainConfig, TrainingLoop, TwoPhaseStrategy
from pyrozoo.nn.rbf import RBFPrecision

D64 = torch.float64


@pytest.fixture(scope="module")
def cdigits():
    return load("digits", binarize=False)


def _rvae(cdigits, preset="rvae", seed=0, **kw):
    torch.manual_seed(seed)
    return zoo.build(preset, event_shape=cdigits.event_shape, z_dim=2, hidden=(32, 32), num_centres=16, **kw)


def test_rbf_sigma_jacobian_matches_autodiff():
    torch.manual_seed(0)
    net = RBFPrecision(torch.randn(9, 3, dtype=D64), 11, bandwidth=0.3).double()
    with torch.no_grad():
        net.raw_weight.normal_()
    z = torch.randn(6, 3, dtype=D64)
    torch.testing.assert_close(net.sigma_jacobian(z), jacobian(net.sigma, z))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rbf_features_equal_the_direct_squared_distances(dtype):
    """φ_k(z) = exp(−λ_k ‖z − c_k‖²) by the expanded product against the (N, K, d) difference form, for
    points on the centres (φ = 1), near them and far away: the squared distances agree to the rounding of
    ‖z‖² + ‖c_k‖², φ to 1e-6 absolute, and so do the gradients."""
    torch.manual_seed(0)
    eps = torch.finfo(dtype).eps
    centres = (torch.randn(30, 2) * 4).to(dtype)
    net = RBFPrecision(centres, 3, bandwidth=torch.rand(30) + 0.05).to(dtype)
    z = torch.cat([centres[:5], centres[5:10] + 1e-3, torch.randn(40, 2).to(dtype) * 6]).requires_grad_()
    got = net.features(z)
    sq = ((z[:, None, :] - centres) ** 2).sum(-1)
    direct = torch.exp(-net.bandwidth * sq)
    size = (z * z).sum(-1, keepdim=True) + (centres * centres).sum(-1)
    tiny = torch.finfo(dtype).tiny
    assert ((-got.clamp_min(tiny).log() / net.bandwidth - sq)[got > tiny].abs() <= 8 * eps * size[got > tiny]).all()
    assert torch.allclose(got, direct, rtol=0, atol=1e4 * eps)
    assert torch.equal(got[torch.arange(5), torch.arange(5)], torch.ones(5, dtype=dtype))
    w = torch.randn_like(got)
    g, = torch.autograd.grad((got * w).sum(), z)
    g_direct, = torch.autograd.grad((direct * w).sum(), z)
    assert torch.allclose(g, g_direct, rtol=0, atol=1e5 * eps)


def test_match_precision_hits_the_target_mean():
    torch.manual_seed(1)
    net = RBFPrecision(torch.randn(20, 2, dtype=D64), 5, bandwidth=0.5).double()
    z = torch.randn(300, 2, dtype=D64)
    target = torch.tensor([1.0, 4.0, 9.0, 16.0, 100.0], dtype=D64)
    net.match_precision(z, target)
    torch.testing.assert_close(net(z).mean(0), target)


def test_immersion_metric_matches_generic_pullback(cdigits):
    model = _rvae(cdigits).double()
    z = torch.randn(5, 2, dtype=D64)
    dec = model.decoder
    torch.testing.assert_close(dec.metric_fn(z), pullback_metric(dec.mu, None, z))  # phase one: mean term
    model.start_phase_two(cdigits.train.double())
    assert bool(dec.variance_on) and model.phase == 2
    torch.testing.assert_close(dec.metric_fn(z), pullback_metric(dec.mu, dec.sigma, z))


def test_det_g_base_gives_eq_3_8_and_the_same_log_ratio():
    """log q − log p with both densities w.r.t. det G(z) dz equals eq. (3.8) term by term and the
    log-ratio of the Riemannian-base densities (the G(z) terms cancel)."""
    torch.manual_seed(2)
    w = torch.randn(6, 2, dtype=D64)

    def metric(z):  # a curved metric: G(z) = J(z)ᵀJ(z) of mu(z) = tanh(W z)
        return pullback_metric(lambda v: torch.tanh(v @ w.T), None, z)
    mu_q, t_q = torch.randn(4, 2, dtype=D64), torch.tensor([0.3, 0.5, 0.2, 0.9], dtype=D64)
    mu_p, t_p = torch.tensor([0.1, -0.2], dtype=D64), torch.tensor(1.3, dtype=D64)
    z = mu_q + 0.3 * torch.randn(4, 2, dtype=D64)
    ratio = {}
    for base in ("riemannian", "det-g"):
        q = HeatKernel(mu_q, t_q, metric, base_measure=base)
        p = HeatKernel(mu_p, t_p, metric, base_measure=base)
        ratio[base] = q.log_prob(z) - p.log_prob(z)
    torch.testing.assert_close(ratio["det-g"], ratio["riemannian"])
    ld = lambda m: torch.logdet(metric(m))  # noqa: E731
    lq = torch.einsum("ni,nij,nj->n", z - mu_q, metric(mu_q), z - mu_q)
    lp = torch.einsum("ni,ij,nj->n", z - mu_p, metric(mu_p[None])[0], z - mu_p)
    eq38 = 0.5 * (ld(mu_p[None]) - ld(mu_q) + lp / t_p - lq / t_q + 2 * (torch.log(t_p) - torch.log(t_q)))
    torch.testing.assert_close(ratio["det-g"], eq38)
    with pytest.raises(ValueError, match="h0='paper'"):
        HeatKernel(mu_p, t_p, metric, h0="one", base_measure="det-g")


def test_euclidean_sampler_moments():
    mu = torch.tensor([[1.0, -2.0]], dtype=D64)
    hk = HeatKernel(mu, 0.49, lambda z: torch.eye(2, dtype=D64).expand(len(z), 2, 2) * 9.0, sampler="euclidean")
    z = hk.rsample((40000,))[:, 0]
    torch.testing.assert_close(z.mean(0), mu[0], atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), 0.49 * torch.eye(2, dtype=D64), atol=0.02, rtol=0)
    torch.testing.assert_close(hk.mean, mu)
    with pytest.raises(NotImplementedError):
        HeatKernel(mu, 0.49, lambda z: torch.eye(2, dtype=D64).expand(len(z), 2, 2)).mean


def test_rvae_is_a_plain_pyro_model_with_mc_kl(cdigits):
    model = _rvae(cdigits)
    x = cdigits.train[:32]
    trace = pyro.poutine.trace(model.guide).get_trace(x)
    assert isinstance(trace.nodes["z"]["fn"], HeatKernel)
    with torch.no_grad():
        loss = pyro.infer.Trace_ELBO().loss(model.model, model.guide, x)
        ours = ELBO().loss(model.model, model.guide, x)
    assert math.isfinite(loss) and math.isfinite(ours)
    assert abs(loss - ours) / 32 < 5.0  # same estimator (MC KL) up to sampling noise
    terms = elbo_terms(model, x)
    torch.testing.assert_close(terms["elbo"], terms["reconstruction"] - terms["kl"])


def test_beta_zero_phase_is_an_autoencoder(cdigits):
    """β = 0 (the R-VAE's first phase) leaves only the reconstruction term: the objective equals
    −E_q log p(x|z) and no density of z is evaluated."""
    model = _rvae(cdigits)
    x = cdigits.train[:16]
    from pyrozoo.inference import scale_latents
    calls = []
    model.decoder.metric_fn = lambda z: calls.append(1) or pullback_metric(model.decoder.mu, None, z)
    model.encoder.bind(model.decoder.metric_fn)
    model.prior.bind(model.decoder.metric_fn)
    pyro.set_rng_seed(3)
    loss = ELBO().differentiable_loss(scale_latents(model.model, 0.0), scale_latents(model.guide, 0.0), x)
    assert not calls
    pyro.set_rng_seed(3)
    z = model.encoder(x).rsample()
    torch.testing.assert_close(loss, -model.decoder(z).log_prob(x).sum())


def test_two_phase_training_freezes_and_switches(cdigits, tmp_path):
    model = _rvae(cdigits, distance="local")  # the schedule is the point here, not the distance
    first = {n: p.detach().clone() for n, p in model.named_parameters()}
    strategy = TwoPhaseStrategy(model, cdigits, TrainConfig(epochs=4, quiet=True, seed=1), phase_epochs=(2, 2),
                                phase_one_beta=0.0)
    loop = TrainingLoop(strategy, tmp_path)
    phase_one_names = {n for n, p in model.named_parameters() if any(p is q for q in model.phase_parameters(1))}
    loop.fit(stop_after=2)
    after_one = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert not torch.equal(after_one["encoder.loc.weight"], first["encoder.loc.weight"])
    torch.testing.assert_close(after_one["prior.loc"], first["prior.loc"])  # prior waits for phase two
    assert model.phase == 1
    result = loop.fit()
    assert model.phase == 2 and strategy.phase == 2
    centres = model.decoder.precision.centres
    assert centres.abs().sum() > 0 and len(torch.unique(centres, dim=0)) == 16
    assert result["epochs"] == 4
    for name, p in model.named_parameters():
        if name in phase_one_names:
            torch.testing.assert_close(p, after_one[name], rtol=0, atol=0, msg=name)
    assert not torch.equal(model.prior.log_t, after_one["prior.log_t"])
    assert not torch.equal(model.decoder.precision.raw_weight, after_one["decoder.precision.raw_weight"])
    lines = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["phase"]) for r in lines] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert ["valid_elbo" in r for r in lines] == [False, False, True, True]  # phase one is not validated
    assert loop.best_period >= 3  # the best score restarts with phase two


def test_leaving_phase_one_unvalidated_changes_no_parameter(cdigits, tmp_path):
    """A run whose phase one is validated (as before) ends with the same parameters bit for bit."""
    class Validated(TwoPhaseStrategy):
        def validate(self):
            return self.inner.validate()

    models = []
    for kind in (TwoPhaseStrategy, Validated):
        model = _rvae(cdigits, distance="local")
        TrainingLoop(kind(model, cdigits, TrainConfig(epochs=4, quiet=True, seed=2), phase_epochs=(2, 2),
                          phase_one_beta=0.0), tmp_path / kind.__name__).fit()
        models.append(model)
    for (name, p), q in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.equal(p, q), name


def test_two_phase_resume_matches_uninterrupted(cdigits, tmp_path):
    def loop(model, out):
        return TrainingLoop(TwoPhaseStrategy(model, cdigits, TrainConfig(epochs=5, quiet=True, seed=4),
                                             phase_epochs=(2, 3), phase_one_beta=0.0), out)
    full = _rvae(cdigits, distance="local")
    loop(full, tmp_path / "a").fit()
    loop(_rvae(cdigits, distance="local"), tmp_path / "b").fit(stop_after=3)  # killed during phase two
    resumed = loop(_rvae(cdigits, seed=9, distance="local"), tmp_path / "b").resume()
    assert resumed.strategy.phase == 2 and resumed.period == 3
    resumed.fit()
    for (name, p), q in zip(full.named_parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)


def test_heat_kernel_prior_parameters_and_errors():
    prior = HeatKernelPrior(3, t=0.5)
    assert prior.t.item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no metric"):
        prior()
    with pytest.raises(ValueError, match="positive"):
        HeatKernelPrior(3, t=0.0)


def test_presets_reject_bad_settings(cdigits):
    with pytest.raises(ValueError, match="continuous"):
        zoo.build("rvae", event_shape=cdigits.event_shape, likelihood="bernoulli")
    with pytest.raises(ValueError, match="sampler"):
        zoo.build("rvae", event_shape=cdigits.event_shape, sampler="walk")
    for option, value in (("sampler", "brownian"), ("distance", "local")):
        with pytest.raises(ValueError, match=f"{option} is not an option of preset 'vae-rbf'"):
            zoo.build("vae-rbf", event_shape=cdigits.event_shape, **{option: value})
    with pytest.raises(ValueError, match="distance"):
        zoo.build("rvae", event_shape=cdigits.event_shape, distance="euclidean")
    brownian = zoo.build("rvae", event_shape=cdigits.event_shape, z_dim=2, hidden=(8,), sampler="brownian")
    assert brownian.encoder.options["sampler"] == "brownian"
    with pytest.raises(ValueError, match="k-means"):
        zoo.build("vae-rbf", event_shape=cdigits.event_shape, z_dim=2, num_centres=5000).start_phase_two(cdigits.train)
    for preset in ("vae-rbf", "vampprior-rbf"):
        model = _rvae(cdigits, preset)
        assert model.phase == 1 and model.z_dim == 2


def test_cli_trains_two_phases_and_reloads(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "vae-rbf", "--phase-epochs", "2,1", "--z-dim", "2", "--hidden", "32,32", "--out",
                     str(out), "--eval-samples", "20", "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["best_epoch"] == 3
    assert (out / "figures" / "volume.png").exists() and (out / "figures" / "brownian.png").exists()
    run = pyrozoo.load(out)
    assert run.model.phase == 2 and not run.dataset.binarize
    assert cli.main(["train", "vae", "--phase-epochs", "1,1", "--quiet"]) == 2
    assert "does not apply to preset 'vae'" in capsys.readouterr().err
    assert cli.main(["train", "rvae", "--phase-epochs", "3", "--quiet"]) == 2
    assert "phase_epochs takes 2 integers" in capsys.readouterr().err


def test_latent_f1_separable_and_chance():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat(100)
    z = torch.randn(300, 2, generator=g) * 0.1 + torch.stack([y.float() * 3, -y.float()], 1)
    good = latent_f1(z[:200], y[:200], z[200:], y[200:], epochs=50)
    assert good["average"] > 0.95 and set(good["per_class"]) == {0, 1, 2}
    noise = torch.randn(300, 2, generator=g)
    bad = latent_f1(noise[:200], y[:200], noise[200:], y[200:], epochs=50)
    assert bad["average"] < 0.6
    with pytest.raises(ValueError):
        latent_f1(z[:10], y[:9], z, y)


def test_rvae_preset_uses_the_geodesic_distance_by_default(cdigits):
    """The rvae preset's prior and posterior take l² from geodesics (Kalatzis et al. §3.1) measured by
    the decoder's chords, ζ = 1e-9; their log-densities are those of a geodesic HeatKernel and differ
    from the local approximation's; ``distance="local"`` switches both."""
    model = _rvae(cdigits).double()
    local = _rvae(cdigits, distance="local").double()
    assert model.prior.options["distance"] == model.encoder.options["distance"] == "geodesic"
    assert local.prior.options["distance"] == local.encoder.options["distance"] == "local"
    assert model.decoder.precision.min_precision.item() == pytest.approx(1e-9)
    model.start_phase_two(cdigits.train[:400].double())
    local.load_state_dict(model.state_dict())
    dec = model.decoder
    assert model.prior.immersion == dec.immersion and model.encoder.immersion == dec.immersion
    z = 3.0 * torch.randn(8, 2, dtype=D64)
    with torch.no_grad():
        ours = model.prior().log_prob(z)
        geo = HeatKernel(model.prior.loc, model.prior.t, dec.metric_fn, distance="geodesic", base_measure="det-g",
                         geodesic_kwargs=dict(GEODESIC_SOLVER, rule="chord", immersion=dec.immersion)).log_prob(z)
        loc = local.prior().log_prob(z)
        q, q_local = model.encoder(cdigits.test[:8].double()), local.encoder(cdigits.test[:8].double())
        zq = q.mu + 0.5 * torch.randn(8, 2, dtype=D64)
        lq, lq_local = q.log_prob(zq), q_local.log_prob(zq)
    torch.testing.assert_close(ours, geo)
    assert (ours - loc).abs().max() > 0.1
    assert (lq - lq_local).abs().max() > 1e-3
    # the immersion's chords: its pull-back metric is the decoder's metric (eq. 2.5)
    torch.testing.assert_close(pullback_metric(dec.immersion, None, z), dec.metric_fn(z))


def test_rvae_report_and_eval_samples_default(monkeypatch):
    """The rvae report has no importance-sampled log p(x), and its eval_samples default (100, sizing
    PSIS k̂) is the one a new run gets unless the caller or $PYROZOO_EVAL_SAMPLES sets one."""
    from pyrozoo.runs.config import resolve
    r = zoo.recipe("rvae")
    assert "likelihood" not in r.report and "elbo" in r.report
    monkeypatch.delenv("PYROZOO_EVAL_SAMPLES", raising=False)
    assert resolve(r, {})["eval_samples"] == 100
    assert resolve(zoo.recipe("vae-rbf"), {})["eval_samples"] == 5000
    assert resolve(r, {"eval_samples": 7})["eval_samples"] == 7
    monkeypatch.setenv("PYROZOO_EVAL_SAMPLES", "30")
    assert resolve(r, {})["eval_samples"] == 30


def test_distance_option_reaches_the_model_and_baselines_refuse_it(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "rvae", "--distance", "local", "--phase-epochs", "1,1", "--z-dim", "2", "--hidden",
                     "16", "--num-centres", "16", "--eval-samples", "20", "--out", str(out), "--quiet"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["distance"] == "local"
    run = pyrozoo.load(out)
    assert run.model.prior.options["distance"] == run.model.encoder.options["distance"] == "local"
    assert "test_log_likelihood" not in run.summary and "test_elbo" in run.summary  # no IS log p(x) for rvae
    for preset in ("vae-rbf", "vampprior-rbf", "vae"):
        assert cli.main(["train", preset, "--distance", "local", "--out", str(tmp_path / preset), "--quiet"]) == 2
        assert f"distance is not an option of preset '{preset}'" in capsys.readouterr().err
        assert not (tmp_path / preset).exists()
    assert cli.main(["train", "rvae", "--distance", "euclid", "--quiet"]) == 2
    assert "geodesic" in capsys.readouterr().err


def test_an_rvae_run_written_before_the_distance_option_loads_with_the_local_distance(tmp_path):
    """Runs written before ``distance`` existed used the local l²; loading one rebuilds that model."""
    out = tmp_path / "old"
    pyrozoo.train("rvae", out=out, evaluate=False, quiet=True, phase_epochs=[1, 1], z_dim=2, hidden=[16],
                  num_centres=16, distance="local")
    config = json.loads((out / "config.json").read_text())
    del config["options"]["distance"], config["model"]["distance"]
    (out / "config.json").write_text(json.dumps(config))
    loaded = pyrozoo.load(out)
    assert loaded.config["options"]["distance"] == "local"
    assert loaded.model.prior.options["distance"] == loaded.model.encoder.options["distance"] == "local"
