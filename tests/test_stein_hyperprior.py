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
