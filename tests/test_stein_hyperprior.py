"""The Stein-hyperprior VAE of the design card "VAE with a Stein-Learned Hyperprior": its parts, its Pyro programs,
Stein Mixture Inference (SMI; Rønning, Nalisnick, Ley, Smyth & Hamelryck (2024), "ELBOing Stein: Variational Bayes
with Stein Mixture Inference", arXiv:2410.22948) on it, evaluation and ArviZ."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from pyrozoo import zoo
from pyrozoo.distributions import ConditionalFlowPrior, FlowPrior, SteinMixture
from pyrozoo.guides import SteinMixtureGuide
from pyrozoo.inference import SMI

EVENT = (1, 8, 8)


def _batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n,) + EVENT, 0.3), generator=g)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="m_dim=5 > z_dim=4"):
        zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=5)
    with pytest.raises(ValueError, match="num_components"):
        zoo.build("stein-hyperprior", event_shape=EVENT, num_components=0)
    with pytest.raises(ValueError, match="unknown kernel .laplace.; choose from rbf, imq, probability-product"):
        zoo.build("stein-hyperprior", event_shape=EVENT, kernel="laplace")
    with pytest.raises(ValueError, match="unknown conditioning"):
        zoo.build("stein-hyperprior", event_shape=EVENT, conditioning="add")
    with pytest.raises(ValueError, match="repulsion_temperature must be >= 0"):
        zoo.build("stein-hyperprior", event_shape=EVENT, repulsion_temperature=-1.0)
    with pytest.raises(ValueError, match="d_m must not exceed d_z"):
        ConditionalFlowPrior(2, 3)


def test_stein_mixture_density():
    loc = torch.tensor([[-1.0], [2.0], [0.5]], dtype=torch.float64)
    log_scale = torch.tensor([[0.0], [-0.5], [0.3]], dtype=torch.float64)
    mix = SteinMixture(loc, log_scale)
    grid = torch.linspace(-12, 12, 20001, dtype=torch.float64).unsqueeze(-1)
    mass = torch.trapezoid(mix.log_prob(grid).exp(), grid[:, 0])
    assert mass.item() == pytest.approx(1.0, abs=1e-6)
    one = SteinMixture(loc[:1], log_scale[:1])
    normal = dist.Normal(loc[0], log_scale[0].exp()).to_event(1)
    assert torch.allclose(one.log_prob(grid[:5]), normal.log_prob(grid[:5]))
    assert one.has_rsample and not mix.has_rsample


def test_conditional_flow_prior_density_matches_autograd_jacobian():
    torch.manual_seed(0)
    prior = ConditionalFlowPrior(2, 1, num_flows=3, hidden=(8,)).double()
    for p in prior.parameters():  # move the flow away from the identity
        p.data.normal_(0, 0.3)
    m = torch.tensor([0.7], dtype=torch.float64)
    assert torch.equal(prior.base_mean(m), torch.tensor([0.7, 0.0], dtype=torch.float64))
    eps = torch.tensor([0.3, -0.4], dtype=torch.float64)
    d = prior(m)

    def f(e):
        for t in d.transforms:
            e = t(e)
        return e
    z = f(eps)
    jac = torch.autograd.functional.jacobian(f, eps)
    expected = dist.Normal(prior.base_mean(m), 1.0).log_prob(eps).sum() - torch.log(torch.det(jac).abs())
    assert d.log_prob(z.detach()).item() == pytest.approx(expected.item(), abs=1e-8)
    assert FlowPrior(3, num_flows=2)().sample((4,)).shape == (4, 3)


@pytest.mark.parametrize("conditioning", ["concat", "film"])
def test_programs_sites_and_plates(conditioning):
    model = zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=2, num_components=3,
                      conditioning=conditioning)
    x = _batch(8)
    guide_trace = poutine.trace(model.guide).get_trace(x, num_data=80)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x, num_data=80)
    assert guide_trace.nodes["m"]["value"].shape == (2,)
    assert guide_trace.nodes["z"]["value"].shape == (8, 4)
    for name in ("m", "z", "x"):
        assert name in model_trace.nodes
    assert model_trace.nodes["m"]["scale"] == 1.0  # the global m is not scaled by N/B ...
    assert model_trace.nodes["z"]["scale"] == pytest.approx(10.0)  # ... the local sites are
    assert model_trace.nodes["x"]["scale"] == pytest.approx(10.0)
    assert [f.name for f in model_trace.nodes["z"]["cond_indep_stack"]] == ["data"]
    assert model.sample(5).shape == (5,) + EVENT
    assert model.encode(x).batch_shape == (8,) and model.reconstruct(x).shape == x.shape


@pytest.mark.parametrize("conditioning", ["concat", "film"])
def test_smi_trains_the_vae(conditioning):
    pyro.set_rng_seed(0)
    model = zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=2, num_components=3,
                      conditioning=conditioning, hidden=(32,))
    x = _batch(32)
    smi = SMI(model.model, model.guide, pyro.optim.Adam({"lr": 1e-2}), num_elbo_particles=2, **model.smi_options)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    first = [smi.step(x, num_data=32) for _ in range(5)]
    for _ in range(40):
        last = smi.step(x, num_data=32)
    assert math.isfinite(last) and last < sum(first) / 5
    for n, p in model.named_parameters():  # particles, encoder, decoder and flow all move
        if "film" not in n:  # FiLM's zero-initialised head can stay tiny but is touched too
            assert not torch.equal(before[n], p.detach()), n
    assert torch.pdist(smi.particles()).min() > 0
    assert smi.particles().shape == (3, 4)  # [a (2), log s (2)] per component


def test_predictive_likelihood_and_arviz():
    from pyrozoo.diagnostics import mixture_inference_data, psis_khat
    from pyrozoo.evaluation import predictive_log_likelihood
    pyro.set_rng_seed(0)
    model = zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=2, num_components=3, hidden=(32,))
    x = _batch(6)
    out = predictive_log_likelihood(model, x, num_samples=400, chunk_size=100)
    assert out["log_likelihood"].shape == (6,) and out["elbo"].shape == (6,)
    assert (out["elbo"] <= out["log_likelihood"] + 1e-4).all()
    idata = mixture_inference_data(model, num_draws=50)
    assert idata.posterior["m"].dims == ("chain", "draw", "component", "m_dim")
    assert idata.posterior["m"].shape == (1, 50, 3, 2)
    means = idata.posterior["m"].mean(("chain", "draw")).values
    assert torch.allclose(torch.as_tensor(means, dtype=torch.float32), model.q_m.loc.detach(), atol=0.1)
    assert psis_khat(model, x, num_samples=100).shape == (6,)


def test_encoder_khat_leaves_out_the_global_prior_term():
    import pyro.distributions as dist

    from pyrozoo.diagnostics import psis_khat
    model = zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=2, num_components=3, hidden=(32,))
    x = _batch(6)
    pyro.set_rng_seed(1)
    before = psis_khat(model, x, num_samples=200)
    # a very narrow p(m) makes log p(m)/q(m) swing by thousands of nats between draws of m; the
    # encoder's k̂ (same draws under the same seed) must not see it
    model.hyperprior = lambda: dist.Normal(torch.zeros(2), torch.full((2,), 1e-3)).to_event(1)
    pyro.set_rng_seed(1)
    assert torch.allclose(psis_khat(model, x, num_samples=200), before)


def test_plain_pyro_svi_with_one_component():
    pyro.set_rng_seed(0)
    model = zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=4, num_components=1, hidden=(32,))
    svi = pyro.infer.SVI(model.model, model.guide, pyro.optim.Adam({"lr": 1e-3}), pyro.infer.Trace_ELBO())
    assert math.isfinite(svi.step(_batch(8), num_data=8))
    assert isinstance(SteinMixtureGuide(2, 4)(), SteinMixture)


def test_flow_prior_baseline_preset():
    from pyrozoo.inference import ELBO
    model = zoo.build("vae-flowprior", event_shape=EVENT, z_dim=4)
    assert math.isfinite(ELBO().differentiable_loss(model.model, model.guide, _batch(8)).item())


# -- the repulsion at data-set scale (the default weighs it against the per-point ELBO) ------------------------
def _forces(repulsion_scale, num_data=50000, seed=0):
    """SMI at initialisation on an MNIST-sized batch (the preset's MNIST networks: z 40, MLP 300-300, M = 5)."""
    from pyrozoo.inference.kernels import stein_force
    torch.manual_seed(seed)
    model = zoo.build("stein-hyperprior", event_shape=(1, 28, 28), repulsion_scale=repulsion_scale)
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((100, 1, 28, 28), 0.13), generator=g)
    smi = SMI(model.model, model.guide, **model.smi_options)
    pyro.set_rng_seed(seed)
    _, directions, _ = smi.compute_gradients(x, num_data=num_data)
    # the design card's update from first principles: φ = Σ_k k ∇L_k + (α/M) Σ_k ∇k with ∇L_k by autograd
    pyro.set_rng_seed(seed)
    total, _ = smi._loss((x,), {"num_data": num_data})
    particles = [model.q_m.loc, model.q_m.log_scale]
    grads = torch.autograd.grad(total, particles)
    theta = torch.cat([t.detach() for t in particles], -1)
    card = stein_force(smi.kernel.setup(theta), theta, torch.cat(grads, -1), smi.repulsion_temperature)
    phi = torch.cat([directions[t] for t in particles], -1)
    return smi.period_metrics()["stein_repulsion_ratio"], phi, card, smi.temperature


def test_default_repulsion_is_within_an_order_of_magnitude_of_the_attraction_at_mnist_size():
    ratio, phi, card, temperature = _forces("per-point")
    assert temperature == 50000
    assert 0.1 <= ratio <= 10, ratio
    plain_ratio, plain_phi, plain_card, plain_t = _forces("plain")
    assert plain_t == 1.0 and plain_ratio < 1e-4, plain_ratio  # the card's form: the repulsion vanishes
    assert torch.allclose(plain_phi, plain_card, rtol=1e-5, atol=1e-6 * plain_card.abs().max().item())
    assert ratio / plain_ratio == pytest.approx(50000, rel=1e-3)  # same draws, the attraction divided by N


# -- the chart diagnostics ---------------------------------------------------------------------------------------
def test_chart_metrics_by_hand():
    from pyrozoo.inference.charts import chart_metrics, component_log_evidence, component_separation, purity
    l3 = math.log(3.0)
    # one draw, two components, four points: points 0, 1 prefer component 0 by log 3, points 2, 3 component 1
    lw = torch.tensor([[[0.0, 0.0, -l3, -l3], [-l3, -l3, 0.0, 0.0]]], dtype=torch.float64)
    loc = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    log_scale = torch.log(torch.tensor([[1.0, 1.0], [0.5, 0.5]], dtype=torch.float64))
    out = chart_metrics(lw, loc, log_scale, labels=torch.tensor([7, 7, 2, 2]))
    assert out["q_m_min_pairwise_distance"] == pytest.approx(5.0)
    assert out["q_m_min_distance_in_scales"] == pytest.approx(math.sqrt(25 / 1.25))
    assert out["chart_elbo"] == pytest.approx([-l3 / 2, -l3 / 2]) and out["chart_elbo_spread"] == pytest.approx(0)
    assert out["chart_entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert out["chart_usage"] == pytest.approx([0.5, 0.5])
    assert out["chart_ami"] == pytest.approx(1.0) and out["chart_purity"] == pytest.approx(1.0)
    assert purity(torch.tensor([0, 0, 1, 1]), torch.tensor([7, 2, 2, 2])) == pytest.approx(0.75)
    # two draws: log p̂(x | k) = log mean exp
    two = torch.tensor([[[0.0]], [[math.log(3.0)]]], dtype=torch.float64)
    assert component_log_evidence(two).item() == pytest.approx(math.log(2.0))
    assert component_separation(loc[:1], log_scale[:1]) == {"min_distance": None, "min_distance_in_scales": None}


def test_component_log_weights_match_a_hand_computation():
    pyro.set_rng_seed(0)
    model = zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=2, num_components=3, hidden=(32,))
    x = _batch(5)
    smi = SMI(model.model, model.guide, num_particles=3)
    pyro.set_rng_seed(2)
    lw = smi.component_log_weights(x, num_samples=2)
    assert lw.shape == (2, 3, 5)
    pyro.set_rng_seed(2)  # the same draws by hand: m_sk = a_k + s_k ε, z ~ q(z | x, m_sk)
    eps = torch.randn(2, 3, 1, 2)
    m = model.q_m.loc[:, None] + model.q_m.log_scale.exp()[:, None] * eps
    q = model.encoder(x, m)
    z = q.sample()
    expected = model.prior(m).log_prob(z) + model.decoder(z).log_prob(x) - q.log_prob(z)
    assert torch.allclose(lw, expected.detach(), atol=1e-4)


def test_training_records_and_report_carry_the_chart_diagnostics(tmp_path):
    import arviz as az

    import pyrozoo
    run = pyrozoo.train("stein-hyperprior", "digits", out=tmp_path / "run", epochs=2, num_components=3, m_dim=2,
                        z_dim=4, hidden=[32], eval_samples=20, quiet=True)
    for record in run.metrics:
        assert record["stein_loss_temperature"] == 1197  # "per-point": T = N of digits' training split
        assert 0 < record["stein_repulsion_ratio"] < math.inf
        assert 0 <= record["chart_entropy"] <= math.log(3) + 1e-9
        assert sum(record["chart_usage"]) == pytest.approx(1.0) and len(record["chart_elbo"]) == 3
        assert -1 <= record["chart_ami"] <= 1 and 0 < record["chart_purity"] <= 1
        assert record["q_m_min_distance_in_scales"] > 0
    s = run.summary
    assert s["chart_points"] == 300 and len(s["chart_usage"]) == 3 and s["chart_elbo_spread"] >= 0
    assert (run.path / "figures" / "charts.png").exists()
    idata = az.from_netcdf(str(run.path / "q_m.nc"))
    r = idata.constant_data["responsibility"]
    assert r.dims == ("point", "component") and r.shape == (300, 3)
    assert abs(r.values.sum(1) - 1).max() < 1e-5
    assert idata.constant_data.attrs["chart_entropy"] == pytest.approx(s["chart_entropy"])
    with pytest.raises(ValueError, match="unknown repulsion_scale 'strong'; choose from per-point, plain"):
        zoo.build("stein-hyperprior", event_shape=EVENT, repulsion_scale="strong")


def test_predictive_likelihood_resumes_from_its_store(tmp_path, monkeypatch):
    """A predictive log-likelihood killed in its second batch continues from the first one kept in the
    ``resume`` file and returns the uninterrupted values bit for bit; the file is gone afterwards."""
    from pyrozoo.evaluation import stein
    pyro.set_rng_seed(0)
    model = zoo.build("stein-hyperprior", event_shape=EVENT, z_dim=4, m_dim=2, num_components=3, hidden=(32,))
    x, store = _batch(6), tmp_path / "pred.partial"
    whole = stein.predictive_log_likelihood(model, x, num_samples=200, chunk_size=100, batch_size=2)
    real, calls = stein._local_log_weights, []

    def counted(*args, die_at=None):
        calls.append(1)
        if len(calls) == die_at:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(stein, "_local_log_weights", lambda *a: counted(*a, die_at=3))  # batch 2's first chunk
    with pytest.raises(KeyboardInterrupt):
        stein.predictive_log_likelihood(model, x, num_samples=200, chunk_size=100, batch_size=2, resume=store)
    assert store.exists()
    calls.clear()
    monkeypatch.setattr(stein, "_local_log_weights", counted)
    resumed = stein.predictive_log_likelihood(model, x, num_samples=200, chunk_size=100, batch_size=2, resume=store)
    assert len(calls) == 4  # two chunks for each of batches 2 and 3
    assert all(torch.equal(resumed[k], whole[k]) for k in whole) and not store.exists()
