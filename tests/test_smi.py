"""Stein Mixture Inference: kernels, the Stein force, equivalence with Trace_ELBO, and a bimodal toy."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyrozoo.distributions import SteinMixture
from pyrozoo.inference import SMI, kernel_matrix, make_kernel, median_bandwidth, stein_force
from pyrozoo.inference.kernels import IMQKernel, ProbabilityProductKernel, RBFKernel

TAU, SIGMA = 0.5, 0.5


def toy_model(x, num_components=None):
    """x_n ~ N(m² + z_n, σ²), z_n ~ N(0, τ²), m ~ N(0, 1): bimodal posterior over m."""
    m = pyro.sample("m", dist.Normal(x.new_zeros(1), 1.0).to_event(1))
    with pyro.plate("data", len(x), dim=-1):
        z = pyro.sample("z", dist.Normal(x.new_zeros(()), TAU))
        pyro.sample("x", dist.Normal(m[..., 0] ** 2 + z, SIGMA), obs=x)


def toy_guide(x, num_components=1):
    """q(m) a Stein mixture of M scalar Gaussians; q(z_n|x_n, m) = N(w (x_n − m²) + b, e^c)."""
    loc = pyro.param("m_loc", lambda: torch.randn(num_components, 1, dtype=x.dtype))
    log_scale = pyro.param("m_log_scale", lambda: torch.full((num_components, 1), math.log(0.1), dtype=x.dtype))
    m = pyro.sample("m", SteinMixture(loc, log_scale))
    w = pyro.param("w", lambda: x.new_tensor(0.3))
    b = pyro.param("b", lambda: x.new_tensor(0.1))
    c = pyro.param("c", lambda: x.new_tensor(-1.0))
    with pyro.plate("data", len(x), dim=-1):
        pyro.sample("z", dist.Normal(w * (x - m[..., 0] ** 2) + b, c.exp()))


def toy_data(n=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    return 4.0 + math.sqrt(TAU ** 2 + SIGMA ** 2) * torch.randn(n, generator=g, dtype=torch.float64)


# -- kernels and the Stein force against a hand computation ------------------------------------------------
THETA = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
GRADS = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]], dtype=torch.float64)


def test_median_bandwidth_by_hand():
    # pairwise distances 1, 2, sqrt(5): median 2, h = 4 / log 3
    assert median_bandwidth(THETA).item() == pytest.approx(4 / math.log(3), rel=1e-12)
    assert median_bandwidth(THETA[:1]).item() == 1.0
    # even number of pairs (M = 4 -> 6 pairs): mean of the two middle distances
    four = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)  # 1,3,7,2,6,4 -> (3+4)/2
    assert median_bandwidth(four).item() == pytest.approx(3.5 ** 2 / math.log(4), rel=1e-12)


def test_rbf_kernel_matrix_and_stein_force_by_hand():
    h = 4 / math.log(3)
    k = RBFKernel().setup(THETA)
    pts = THETA.tolist()
    K = [[math.exp(-sum((a - b) ** 2 for a, b in zip(pts[i], pts[j])) / h) for j in range(3)] for i in range(3)]
    assert torch.allclose(kernel_matrix(k, THETA), torch.tensor(K, dtype=torch.float64), atol=1e-12)
    alpha = 0.7
    phi = stein_force(k, THETA, GRADS, alpha)
    g = GRADS.tolist()
    for l in range(3):
        for d in range(2):
            attract = sum(K[k_][l] * g[k_][d] for k_ in range(3))
            # ∇_{θ_k} exp(−‖θ_k − θ_l‖²/h) = −2 (θ_k − θ_l)/h · K[k, l]
            repulse = sum(-2 * (pts[k_][d] - pts[l][d]) / h * K[k_][l] for k_ in range(3))
            assert phi[l, d].item() == pytest.approx(attract + alpha / 3 * repulse, abs=1e-12)


def test_imq_and_probability_product_kernels_by_hand():
    h = 4 / math.log(3)
    k = IMQKernel().setup(THETA)
    assert k(THETA[0], THETA[2]).item() == pytest.approx((1 + 4 / h) ** -0.5, rel=1e-12)
    ppk = ProbabilityProductKernel().setup(THETA)
    # θ = [a, log s]: particles 0 (a=0, s=1) and 2 (a=0, s=e²): sqrt(2 s1 s2 / (s1² + s2²))
    s2 = math.exp(2.0)
    assert ppk(THETA[0], THETA[2]).item() == pytest.approx(math.sqrt(2 * s2 / (1 + s2 ** 2)), rel=1e-12)
    # particles 0 and 1 (a = 0 vs 1, s = 1): exp(−1 / (4·2))
    assert ppk(THETA[0], THETA[1]).item() == pytest.approx(math.exp(-1 / 8), rel=1e-12)
    assert ppk(THETA[1], THETA[1]).item() == pytest.approx(1.0)
    # the repulsion of a generic kernel is differentiated by autograd: compare with finite differences
    phi = stein_force(ppk, THETA, torch.zeros_like(GRADS), 3.0)  # α/M = 1: the pure repulsion
    eps = 1e-6
    for l in range(3):
        for d in range(2):
            fd = 0.0
            for k_ in range(3):
                plus, minus = THETA[k_].clone(), THETA[k_].clone()
                plus[d] += eps
                minus[d] -= eps
                fd += (ppk(plus, THETA[l]) - ppk(minus, THETA[l])).item() / (2 * eps)
            assert phi[l, d].item() == pytest.approx(fd, abs=1e-6)


def test_unknown_kernel_raises():
    with pytest.raises(ValueError, match="unknown Stein kernel"):
        make_kernel("gaussian-ish")
    with pytest.raises(ValueError, match="unknown Stein kernel"):
        SMI(toy_model, toy_guide, num_particles=2, kernel="nope")


# -- SMI against plain SVI -------------------------------------------------------------------------------
def _pyro_grads(x):
    pyro.set_rng_seed(3)
    loss = Trace_ELBO().loss_and_grads(toy_model, toy_guide, x, 1)
    store = pyro.get_param_store()
    return loss, {name: store.get_param(name).unconstrained().grad.clone() for name in store.keys()}


@pytest.mark.parametrize("score", [True, False])
def test_one_particle_no_repulsion_is_trace_elbo(score):
    x = toy_data(20)
    pyro.set_rng_seed(0)
    toy_guide(x, 1)  # create the parameters
    loss_ref, grads_ref = _pyro_grads(x)
    smi = SMI(toy_model, toy_guide, num_particles=1, repulsion_temperature=0.0, mixture_score=score)
    pyro.set_rng_seed(3)
    loss, directions, shared = smi.compute_gradients(x, 1)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    store = pyro.get_param_store()
    for name in ("w", "b", "c"):  # shared: −∇ loss = ∇ (1/M) Σ L_k
        assert torch.allclose(shared[store.get_param(name).unconstrained()], -grads_ref[name], rtol=1e-10, atol=1e-12)
    loc, log_scale = store.get_param("m_loc"), store.get_param("m_log_scale")
    if score:  # the total derivative: exactly Trace_ELBO's gradient
        assert torch.allclose(directions[loc], -grads_ref["m_loc"], rtol=1e-10, atol=1e-12)
        assert torch.allclose(directions[log_scale], -grads_ref["m_log_scale"], rtol=1e-10, atol=1e-12)
    else:  # q̄ held constant: Trace_ELBO's direction plus the score ∂θ log q(m)|_m (zero mean, not zero)
        pyro.set_rng_seed(3)
        tr = pyro.poutine.trace(toy_guide).get_trace(x, 1)
        m = tr.nodes["m"]["value"].detach()
        eps = (m - loc.detach()[0]) / log_scale.detach().exp()[0]
        # log N(m; a, s): ∂a = ε/s, ∂ log s = ε² − 1. Trace_ELBO ascends pathwise − score (the ELBO
        # carries −log q(m; θ)); the stop-gradient direction is the pathwise part alone
        score_a = eps / log_scale.detach().exp()[0]
        score_ls = eps ** 2 - 1
        assert torch.allclose(directions[loc][0], -grads_ref["m_loc"][0] + score_a, rtol=1e-10, atol=1e-12)
        assert torch.allclose(directions[log_scale][0], -grads_ref["m_log_scale"][0] + score_ls, rtol=1e-10,
                              atol=1e-12)


def test_step_updates_and_evaluate_loss():
    x = toy_data(20)
    smi = SMI(toy_model, toy_guide, pyro.optim.Adam({"lr": 1e-2}), num_particles=3)
    loss0 = smi.step(x, 3)
    theta0 = smi.particles().clone()
    smi.step(x, 3)
    assert math.isfinite(loss0)
    assert smi.particles().shape == (3, 2)  # (a, log s) per particle for scalar m
    assert not torch.equal(theta0, smi.particles())
    assert math.isfinite(smi.evaluate_loss(x, 3))


# -- bad settings ----------------------------------------------------------------------------------------
def test_bad_settings_raise():
    x = toy_data(10)
    with pytest.raises(ValueError, match="num_particles >= 1"):
        SMI(toy_model, toy_guide, num_particles=0)
    with pytest.raises(ValueError, match="2 components"):
        SMI(toy_model, toy_guide, num_particles=3).step(x, 2)
    with pytest.raises(ValueError, match="no SteinMixture"):
        SMI(toy_model, toy_guide, num_particles=1, particle_sites=["other"]).step(x, 1)


def test_identical_initial_particles_raise():
    x = toy_data(10)
    pyro.param("m_loc", torch.full((4, 1), 0.5, dtype=x.dtype))
    with pytest.raises(ValueError, match="identical"):
        SMI(toy_model, toy_guide, num_particles=4).step(x, 4)


# -- the bimodal toy -------------------------------------------------------------------------------------
def _run(num_components, steps=300, seed=0):
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    x = toy_data(50)
    smi = SMI(toy_model, toy_guide, pyro.optim.Adam({"lr": 1e-2}), num_particles=num_components,
              particle_optim=pyro.optim.Adam({"lr": 3e-2}))
    min_dist = math.inf
    for _ in range(steps):
        smi.step(x, num_components)
        theta = smi.particles()
        if num_components > 1:
            d = torch.pdist(theta).min().item()
            min_dist = min(min_dist, d)
    return smi.particles()[:, 0], min_dist


def test_stein_mixture_covers_both_modes_single_component_one():
    locs8, min_dist = _run(8)
    near = (locs8.abs() - 2).abs() < 0.3
    assert near.sum() >= 6, locs8  # the components sit at the modes ±2
    assert (locs8[near] > 0).any() and (locs8[near] < 0).any(), locs8
    assert min_dist > 1e-3  # no two components collapse onto each other during the run
    locs1, _ = _run(1)
    assert (locs1.abs() - 2).abs().item() < 0.3  # one component: one mode only


def test_differentiable_loss_leaves_the_stein_update_in_grad():
    x = toy_data(20)
    toy_guide(x, 3)
    smi = SMI(toy_model, toy_guide, num_particles=3, repulsion_temperature=2.0)
    pyro.set_rng_seed(5)
    loss, directions, shared = smi.compute_gradients(x, 3)
    pyro.set_rng_seed(5)
    surrogate = smi.differentiable_loss(toy_model, toy_guide, x, 3)
    assert surrogate.item() == pytest.approx(loss, rel=1e-12)
    surrogate.backward()
    for p, phi in list(directions.items()) + list(shared.items()):
        assert torch.allclose(p.grad, -phi, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        assert math.isfinite(smi.differentiable_loss(toy_model, toy_guide, x, 3).item())


# -- the loss temperature ----------------------------------------------------------------------------------
def _directions(x, num_components=3, seed=5, **options):
    pyro.set_rng_seed(seed)
    smi = SMI(toy_model, toy_guide, num_particles=num_components, **options)
    _, directions, _ = smi.compute_gradients(x, num_components)
    return smi, {i: d.clone() for i, d in enumerate(directions.values())}  # [loc, log-scale]


def test_loss_temperature_divides_the_attraction_only():
    x = toy_data(20)
    toy_guide(x, 3)
    _, plain = _directions(x, repulsion_temperature=2.0)
    _, pull = _directions(x, repulsion_temperature=0.0)  # the attraction alone (same draws)
    smi, hot = _directions(x, repulsion_temperature=2.0, loss_temperature=8.0)
    for key in plain:  # φ_T = attraction / T + repulsion
        assert torch.allclose(hot[key], pull[key] / 8.0 + (plain[key] - pull[key]), rtol=1e-10, atol=1e-12)
    # "num_data": T = N, the 20 points of the toy's data plate
    smi, per_point = _directions(x, repulsion_temperature=2.0, loss_temperature="num_data")
    assert smi.temperature == 20.0
    for key in plain:
        assert torch.allclose(per_point[key], pull[key] / 20.0 + (plain[key] - pull[key]), rtol=1e-10, atol=1e-12)
    ratio = smi.period_metrics()["stein_repulsion_ratio"]
    rep = torch.cat([(plain[k] - pull[k]).flatten() for k in sorted(plain)]).norm()
    att = torch.cat([pull[k].flatten() for k in sorted(plain)]).norm() / 20.0
    assert ratio == pytest.approx((rep / att).item(), rel=1e-9)
    assert smi.period_metrics() == {}  # the count restarts


def test_num_data_reads_the_full_plate_size():
    from pyrozoo.inference.smi import num_data

    def model(x):
        pyro.sample("g", dist.Normal(0.0, 1.0))
        with pyro.plate("data", size=1000, subsample=torch.arange(len(x)), dim=-1):
            pyro.sample("x", dist.Normal(0.0, 1.0), obs=x)
    x = torch.zeros(10)
    assert num_data(pyro.poutine.trace(model).get_trace(x)) == 1000
    assert num_data(pyro.poutine.trace(lambda: pyro.sample("y", dist.Normal(0.0, 1.0), obs=x[0])).get_trace()) == 1


def test_bad_loss_temperature_raises():
    for bad in (0.0, -1.0, "data", float("nan"), True):
        with pytest.raises(ValueError, match="loss_temperature must be a number > 0 or 'num_data'"):
            SMI(toy_model, toy_guide, num_particles=2, loss_temperature=bad)


def test_kernel_on_the_means_alone_leaves_the_log_scales_unrepelled():
    x = toy_data(20)
    toy_guide(x, 3)
    pyro.param("m_log_scale", torch.tensor([[-2.0], [-1.0], [0.5]], dtype=x.dtype))  # distinct scales
    _, pull = _directions(x, repulsion_temperature=0.0, kernel_on_scales=False)
    smi, both = _directions(x, repulsion_temperature=3.0, kernel_on_scales=False)
    loc, log_scale = pyro.param("m_loc").detach(), pyro.param("m_log_scale").detach()
    assert torch.equal(both[1], pull[1])  # log-scales: the attraction only
    # locs: the repulsion of an RBF kernel on the locs alone, by hand
    d2 = (loc - loc.T) ** 2
    h = torch.pdist(loc).median() ** 2 / math.log(3)  # the median of the three pairs' distances
    kmat = torch.exp(-d2 / h)
    repulse = (-2 * (loc - loc.T) / h * kmat).sum(0)  # [l] = Σ_k ∇_{a_k} k(a_k, a_l)
    assert torch.allclose(both[0][:, 0] - pull[0][:, 0], 3.0 / 3 * repulse, rtol=1e-9, atol=1e-12)
