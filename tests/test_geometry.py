"""Tests of the geometry layer: pull-back metric, curves/geodesics, Brownian motion, heat kernel, RBF precision."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyrozoo.distributions import HeatKernelPrior
from pyrozoo.geometry import (CubicSplineCurve, HeatKernel, PullbackMetric, brownian_motion, curve_energy,
                              curve_length, fit_geodesic, geodesic, geodesic_options, interpolate, jacobian,
                              kmeans_centres, log_volume, pullback_metric, rbf_precision_net, segment_sq_lengths)

D64 = torch.float64


def _linear(rows, cols, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(rows, cols, dtype=D64, generator=g)
    return a, (lambda z: z @ a.T), (lambda z: torch.full(z.shape[:-1] + (rows,), 0.7, dtype=z.dtype))


def _mlp(d_in, d_out, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, 16), torch.nn.Tanh(), torch.nn.Linear(16, d_out)).double()


def _bump_surface(height=3.0, width=0.2):
    """Decoder z -> (z, h(z)) with a Gaussian bump h: the graph surface, G = I + ∇h ∇hᵀ."""
    def mu(z):
        h = height * torch.exp(-(z ** 2).sum(-1, keepdim=True) / width)
        return torch.cat([z, h], dim=-1)
    return mu


# ---------------------------------------------------------------------------------------------- metric

def test_jacobian_matches_autograd_and_is_differentiable():
    net = _mlp(3, 5)
    z = torch.randn(4, 3, dtype=D64)
    jac = jacobian(net, z)
    assert jac.shape == (4, 5, 3)
    ref = torch.stack([torch.autograd.functional.jacobian(net, zi, create_graph=True) for zi in z])
    torch.testing.assert_close(jac, ref)
    torch.testing.assert_close(jacobian(net, z, mode="reverse"), ref)
    # gradients of a loss on J reach the network's parameters like create_graph=True
    w = net[0].weight
    g_ours = torch.autograd.grad((jac ** 2).sum(), w)[0]
    g_ref = torch.autograd.grad((ref ** 2).sum(), w)[0]
    torch.testing.assert_close(g_ours, g_ref)
    # and reach z (second derivatives through the forward-mode Jacobian)
    zr = z.clone().requires_grad_(True)
    gz = torch.autograd.grad((jacobian(net, zr) ** 2).sum(), zr)[0]
    gz_ref = torch.autograd.grad(sum((torch.autograd.functional.jacobian(net, zi, create_graph=True) ** 2).sum()
                                     for zi in zr), zr)[0]
    torch.testing.assert_close(gz, gz_ref)


def test_jacobian_flattens_image_outputs():
    net = _mlp(2, 12)
    image = lambda z: net(z).reshape(z.shape[:-1] + (3, 2, 2))  # noqa: E731
    z = torch.randn(5, 2, dtype=D64)
    torch.testing.assert_close(jacobian(image, z), jacobian(net, z))
    torch.testing.assert_close(pullback_metric(image, None, z), pullback_metric(net, None, z))


def test_pullback_metric_of_linear_decoder():
    a, mu, sigma = _linear(7, 2)
    z = torch.randn(6, 2, dtype=D64)
    g = pullback_metric(mu, sigma, z)
    assert g.shape == (6, 2, 2)
    torch.testing.assert_close(g, (a.T @ a).expand(6, 2, 2))
    b = torch.randn(7, 2, dtype=D64)
    g2 = pullback_metric(mu, lambda v: v @ b.T, z)   # both terms of eq. 2.5
    torch.testing.assert_close(g2, (a.T @ a + b.T @ b).expand(6, 2, 2))
    torch.testing.assert_close(PullbackMetric(mu)(z), g)


def test_pullback_metric_symmetric_psd_and_log_volume():
    mu_net, sig_net = _mlp(3, 8, seed=1), _mlp(3, 8, seed=2)
    sigma = lambda z: torch.nn.functional.softplus(sig_net(z))  # noqa: E731
    z = torch.randn(10, 3, dtype=D64)
    g = pullback_metric(mu_net, sigma, z)
    torch.testing.assert_close(g, g.transpose(-1, -2))
    assert torch.linalg.eigvalsh(g).min() > -1e-10
    torch.testing.assert_close(log_volume(mu_net, sigma, z), 0.5 * torch.logdet(g))
    torch.testing.assert_close(PullbackMetric(mu_net, sigma).log_volume(z), 0.5 * torch.logdet(g))
    v = torch.randn(10, 3, dtype=D64)
    torch.testing.assert_close(PullbackMetric(mu_net, sigma).quadratic_form(z, v),
                               torch.einsum("ni,nij,nj->n", v, g, v))


# ---------------------------------------------------------------------------------------------- curves

def test_spline_curve_end_points_line_init_and_derivative():
    z0, z1 = torch.randn(3, 2, dtype=D64), torch.randn(3, 2, dtype=D64)
    curve = CubicSplineCurve(z0, z1, num_nodes=5)
    t = torch.linspace(0, 1, 11, dtype=D64)
    line = z0[:, None] + t[None, :, None] * (z1 - z0)[:, None]
    torch.testing.assert_close(curve(t), line)
    torch.testing.assert_close(curve.derivative(t), (z1 - z0)[:, None].expand(3, 11, 2))
    with torch.no_grad():
        curve.nodes.add_(torch.randn_like(curve.nodes))
    pts = curve(t)
    torch.testing.assert_close(pts[:, 0], z0)
    torch.testing.assert_close(pts[:, -1], z1)
    # derivative agrees with central differences of the (now curved) spline
    ti = torch.tensor([0.13, 0.5, 0.77], dtype=D64)
    h = 1e-6
    fd = (curve(ti + h) - curve(ti - h)) / (2 * h)
    torch.testing.assert_close(curve.derivative(ti), fd, atol=1e-6, rtol=1e-6)
    # it interpolates its nodes at the uniform knots
    knots = torch.arange(1, 6, dtype=D64) / 6
    torch.testing.assert_close(curve(knots), curve.nodes)


def test_curve_energy_and_length_definitions():
    eye = lambda z: torch.eye(2, dtype=z.dtype).expand(z.shape[:-1] + (2, 2))  # noqa: E731
    s = torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=D64)          # non-constant speed along the x axis
    pts = torch.stack([s, torch.zeros_like(s)], -1)[None]
    steps = torch.diff(s)
    torch.testing.assert_close(curve_energy(pts, eye), 0.5 * 3 * (steps ** 2).sum()[None])
    torch.testing.assert_close(curve_length(pts, eye), torch.ones(1, dtype=D64))
    assert curve_length(pts, eye) ** 2 < 2 * curve_energy(pts, eye)


def test_geodesic_of_linear_decoder_is_straight_line():
    a, mu, sigma = _linear(10, 3, seed=3)
    x, y = torch.randn(4, 3, dtype=D64), torch.randn(4, 3, dtype=D64)
    res = geodesic(mu, sigma, x, y, num_nodes=4, num_points=16, iterations=30)
    t = torch.linspace(0, 1, 16, dtype=D64)
    line = x[:, None] + t[None, :, None] * (y - x)[:, None]
    assert (res.points(16) - line).abs().max() < 1e-3
    d = x - y
    expected = torch.einsum("bi,ij,bj->b", d, a.T @ a, d)
    assert (res.sq_length - expected).abs().max() < 1e-3
    torch.testing.assert_close(2 * res.energy, res.sq_length, atol=1e-3, rtol=1e-4)  # constant speed: L² = 2E
    assert res.energy_history.shape == (31, 4)
    geo, straight = interpolate(mu, sigma, x[0], y[0], 7, iterations=10)
    assert geo.shape == straight.shape == (7, 3)
    assert (geo - straight).abs().max() < 1e-3


def test_geodesic_energy_decreases_around_a_bump():
    mu = _bump_surface()
    # curve 0 passes just beside the bump's top, curve 1 far from it (flat region: straight is optimal)
    x = torch.tensor([[-1.0, 0.05], [-1.0, 2.0]], dtype=D64)
    y = torch.tensor([[1.0, 0.05], [1.0, 2.0]], dtype=D64)
    res = geodesic(mu, None, x, y, num_nodes=4, num_points=24, iterations=60, lr=0.05)
    hist = res.energy_history
    assert hist[-1, 0] < 0.5 * hist[0, 0]
    assert hist[-10:, 0].max() < hist[:5, 0].min()
    assert (res.length <= res.straight_length + 1e-12).all()
    assert res.length[0] < 0.8 * res.straight_length[0]
    assert res.points(24)[0, :, 1].abs().max() > 0.2   # it goes around the bump
    for opt, lr in (("sgd", 0.005), ("lbfgs", 1.0)):
        other = geodesic(mu, None, x[:1], y[:1], iterations=20, lr=lr, optimizer=opt)
        assert other.energy_history[-1, 0] < 0.5 * other.energy_history[0, 0]
        assert other.length[0] < 0.8 * other.straight_length[0]
    # a plain metric callable (full G, no quadratic_form) gives the same energies
    metric = PullbackMetric(mu)
    plain = fit_geodesic(lambda z: metric(z), x[:1], y[:1], iterations=20)
    ref = geodesic(mu, None, x[:1], y[:1], iterations=20)
    torch.testing.assert_close(plain.energy_history, ref.energy_history)
    # a diverging solve (SGD with too large a step) falls back to the straight line
    bad = geodesic(mu, None, x[:1], y[:1], iterations=10, lr=0.02, optimizer="sgd")
    assert bad.energy_history[-1, 0] > bad.energy_history[0, 0]
    torch.testing.assert_close(bad.length, bad.straight_length)
    torch.testing.assert_close(bad.points(5), torch.stack([x[0] + k / 4 * (y[0] - x[0]) for k in range(5)])[None])


def test_geodesic_length_is_differentiable_and_solve_leaves_grads_alone():
    net = _mlp(2, 6, seed=4)
    x = torch.randn(3, 2, dtype=D64, requires_grad=True)
    y = torch.randn(3, 2, dtype=D64)
    res = geodesic(net, None, x, y, iterations=15, lr=0.05)
    assert all(p.grad is None for p in net.parameters())
    assert (res.length <= res.straight_length + 1e-12).all()
    res.sq_length.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------- Brownian motion

def test_brownian_motion_covariance():
    gen = torch.Generator().manual_seed(0)
    eye = lambda z: torch.eye(2, dtype=z.dtype).expand(z.shape[:-1] + (2, 2))  # noqa: E731
    z0 = torch.tensor([0.5, -1.0], dtype=D64).expand(20000, 2)
    end, path = brownian_motion(eye, z0, 0.6, 8, generator=gen, return_path=True)
    assert end.shape == (20000, 2) and path.shape == (20000, 9, 2)
    torch.testing.assert_close(path[:, 0], z0)
    torch.testing.assert_close(end.mean(0), z0[0], atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(end.T), 0.6 * torch.eye(2, dtype=D64), atol=0.03, rtol=0)
    # a correlated constant metric: covariance t G^{-1} (fails if the step uses L^{-1} instead of L^{-T})
    g = torch.tensor([[2.0, 1.5], [1.5, 3.0]], dtype=D64)
    end = brownian_motion(lambda z: g.expand(z.shape[:-1] + (2, 2)), z0, 0.6, 4, generator=gen)
    torch.testing.assert_close(torch.cov(end.T), 0.6 * torch.linalg.inv(g), atol=0.015, rtol=0)


def test_brownian_motion_is_reparameterised():
    eye = lambda z: torch.eye(2, dtype=z.dtype).expand(z.shape[:-1] + (2, 2))  # noqa: E731
    z0 = torch.randn(5, 2, dtype=D64, requires_grad=True)
    t = torch.tensor(0.4, dtype=D64, requires_grad=True)
    end = brownian_motion(eye, z0, t, 5, generator=torch.Generator().manual_seed(1))
    gz, gt = torch.autograd.grad(end.sum(), (z0, t))
    torch.testing.assert_close(gz, torch.ones_like(z0))
    torch.testing.assert_close(gt, ((end - z0) / (2 * t)).sum().detach())


# ---------------------------------------------------------------------------------------------- heat kernel

def test_heat_kernel_is_gaussian_in_the_euclidean_case():
    a, mu, sigma = _linear(7, 2, seed=5)
    metric = PullbackMetric(mu, sigma)
    g = a.T @ a
    centre, t = torch.tensor([0.3, -0.2], dtype=D64), 0.25
    normal = dist.MultivariateNormal(centre, covariance_matrix=t * torch.linalg.inv(g))
    z = normal.sample((50,))
    log_vol = 0.5 * torch.logdet(g)
    for h0 in ("paper", "parametrix", "one"):
        hk = HeatKernel(centre, t, metric, h0=h0)
        torch.testing.assert_close(hk.log_prob(z) + log_vol, normal.log_prob(z))
    torch.testing.assert_close(HeatKernel(centre, t, metric, base_measure="lebesgue").log_prob(z), normal.log_prob(z))
    geo = HeatKernel(centre, t, metric, distance="geodesic", geodesic_kwargs=dict(iterations=5))
    torch.testing.assert_close(geo.log_prob(z[:8]), HeatKernel(centre, t, metric).log_prob(z[:8]), atol=1e-6, rtol=0)
    # integrates to one against the Riemannian volume measure sqrt(det G) dz
    half = 7 * math.sqrt(t * torch.linalg.inv(g).diagonal().max().item())
    n = 301
    u = torch.linspace(-half, half, n, dtype=D64)
    grid = torch.stack(torch.meshgrid(u + centre[0], u + centre[1], indexing="ij"), -1).reshape(-1, 2)
    cell = (u[1] - u[0]) ** 2
    mass = (HeatKernel(centre, t, metric).log_prob(grid) + log_vol).exp().sum() * cell
    assert abs(mass.item() - 1.0) < 1e-3


def test_heat_kernel_h0_on_a_curved_metric():
    def metric(z):
        return torch.diag_embed(1.0 + z ** 2) + 0.1
    centre, t = torch.tensor([[0.5, -1.0]], dtype=D64), 0.3
    z = torch.randn(6, 1, 2, dtype=D64)
    d = 2
    delta = z - centre
    gm = metric(centre)
    sq = torch.einsum("sbi,bij,sbj->sb", delta, gm, delta)
    base = -0.5 * d * math.log(2 * math.pi * t) - sq / (2 * t)
    ld_z, ld_mu = torch.logdet(metric(z)), torch.logdet(gm)
    torch.testing.assert_close(HeatKernel(centre, t, metric).log_prob(z), base + 0.5 * (ld_z - ld_mu))
    torch.testing.assert_close(HeatKernel(centre, t, metric, h0="parametrix").log_prob(z),
                               base + 0.25 * (ld_mu - ld_z))
    torch.testing.assert_close(HeatKernel(centre, t, metric, h0="one", base_measure="lebesgue").log_prob(z),
                               base + 0.5 * ld_z)


def test_heat_kernel_sampling_and_pyro_use():
    a, mu, sigma = _linear(7, 2, seed=6)
    metric = PullbackMetric(mu, sigma)
    loc = torch.randn(3, 2, dtype=D64, requires_grad=True)
    t = torch.tensor([0.1, 0.2, 0.3], dtype=D64, requires_grad=True)
    hk = HeatKernel(loc, t, metric, num_steps=4)
    assert hk.batch_shape == (3,) and hk.event_shape == (2,)
    z = hk.rsample((4000,))
    assert z.shape == (4000, 3, 2)
    z.sum().backward()
    assert loc.grad is not None and t.grad is not None
    cov = torch.cov(z[:, 2].detach().T)
    torch.testing.assert_close(cov, 0.3 * torch.linalg.inv(a.T @ a), atol=0.01, rtol=0.1)
    assert hk.expand((2, 3)).batch_shape == (2, 3)

    prior_loc = torch.zeros(2, dtype=D64)

    def model():
        with pyro.plate("data", 3):
            pyro.sample("z", HeatKernel(prior_loc, 1.0, metric, num_steps=2))

    def guide():
        with pyro.plate("data", 3):
            pyro.sample("z", HeatKernel(loc, t, metric, num_steps=2))

    loss = Trace_ELBO().differentiable_loss(model, guide)
    assert torch.isfinite(loss)


# ---------------------------------------------------------------------------------------------- RBF

def test_rbf_sigma_grows_away_from_the_data():
    torch.manual_seed(0)
    centres = 0.1 * torch.randn(20, 2, dtype=D64)
    net = rbf_precision_net(centres, 5, bandwidth=1.0, min_precision=1e-3)
    direction = torch.tensor([0.6, 0.8], dtype=D64)
    s = torch.linspace(0.5, 4.0, 40, dtype=D64)
    ray = s[:, None] * direction
    beta, sig = net(ray), net.sigma(ray)
    assert beta.shape == sig.shape == (40, 5) and (beta > 0).all()
    torch.testing.assert_close(sig, beta ** -0.5)
    assert (torch.diff(sig, dim=0) > 0).all()
    assert (sig[-1] / sig[0] > 10).all()
    assert (sig <= 1e-3 ** -0.5 + 1e-9).all()
    # the metric of mean + RBF sigma is larger off the data
    vol = log_volume(lambda z: z, net.sigma, torch.stack([ray[0], ray[10]]))
    assert vol[1] > vol[0]
    image_net = rbf_precision_net(centres, (1, 2, 2), bandwidth=0.01)
    assert image_net(ray).shape == (40, 1, 2, 2)


def test_kmeans_centres():
    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(200, 2, generator=g) * 0.1 + 3, torch.randn(200, 2, generator=g) * 0.1 - 3])
    c = kmeans_centres(z, 2, seed=0)
    assert c.shape == (2, 2) and c.dtype == z.dtype
    c = c[c[:, 0].argsort()]
    torch.testing.assert_close(c, torch.tensor([[-3.0, -3.0], [3.0, 3.0]]), atol=0.05, rtol=0)


def test_bad_input_is_rejected():
    eye = lambda z: torch.eye(2, dtype=z.dtype).expand(z.shape[:-1] + (2, 2))  # noqa: E731
    with pytest.raises(ValueError):
        fit_geodesic(eye, torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError):
        fit_geodesic(eye, torch.zeros(2), torch.ones(2), optimizer="newton")
    with pytest.raises(ValueError):
        brownian_motion(eye, torch.zeros(2), -1.0, 3)
    with pytest.raises(ValueError):
        HeatKernel(torch.zeros(2), 1.0, eye, distance="euclid")
    with pytest.raises(ValueError):
        brownian_motion(lambda z: torch.zeros(z.shape[:-1] + (2, 2)), torch.zeros(2), 1.0, 1)


def test_mlp_jacobian_matches_autodiff_and_refuses_other_layers():
    from pyrozoo.geometry import mlp_jacobian
    torch.manual_seed(3)
    for act in (torch.nn.ELU(), torch.nn.ReLU(), torch.nn.Tanh()):
        net = torch.nn.Sequential(torch.nn.Linear(3, 7), act, torch.nn.Linear(7, 5), torch.nn.Identity(),
                                  torch.nn.Linear(5, 4)).double()
        z = torch.randn(6, 3, dtype=D64, requires_grad=True)
        j = mlp_jacobian(net, z)
        torch.testing.assert_close(j, jacobian(net, z))
        # differentiable like the autodiff Jacobian
        g1 = torch.autograd.grad(j.pow(2).sum(), net[0].weight)[0]
        g2 = torch.autograd.grad(jacobian(net, z).pow(2).sum(), net[0].weight)[0]
        torch.testing.assert_close(g1, g2)
    with pytest.raises(ValueError, match="supports"):
        mlp_jacobian(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Softplus()), torch.randn(2, 3))


# ---------------------------------------------------------------------------------------------- geodesic l² (§3.1)

def _small_decoder(seed=0):
    """A tiny curved decoder: mean MLP 2 -> 5 and a softplus σ, with its immersion z -> (μ, σ) and metric."""
    net = _mlp(2, 5, seed=seed)
    w = torch.tensor([[1.0, -2.0], [0.5, 0.3], [-1.0, 1.0]], dtype=D64)
    sigma = lambda z: torch.nn.functional.softplus(z @ w.T)  # noqa: E731
    return (lambda z: torch.cat([net(z), sigma(z)], -1)), PullbackMetric(net, sigma)


def _height_bump(height):
    """The graph surface z -> (z, height * exp(-|z|²/0.3)) with a learnable ``height`` tensor."""
    def f(z):
        return torch.cat([z, height * torch.exp(-(z ** 2).sum(-1, keepdim=True) / 0.3)], -1)
    return f


def test_chord_rule_energy_tends_to_the_pullback_energy():
    """||f(c_{i+1}) − f(c_i)||² in the immersion's space and Δcᵀ G(midpoint) Δc give energies that
    agree to second order in the step: the gap shrinks about 4x per halving of Δt."""
    immersion, metric = _small_decoder()
    a, b, n = (torch.tensor(v, dtype=D64) for v in ([-1.0, 0.5], [1.2, -0.7], [0.7, 1.0]))
    gaps, energies = [], []
    for num_points in (8, 16, 32, 64, 128):
        t = torch.linspace(0, 1, num_points, dtype=D64)[:, None]
        points = (a + t * (b - a) + 0.5 * torch.sin(math.pi * t) * n)[None]
        chord = curve_energy(points, None, rule="chord", immersion=immersion)
        midpoint = curve_energy(points, metric)
        gaps.append((chord - midpoint).abs().item())
        energies.append(chord.item())
    assert gaps[0] > 1e-2                                   # a different rule on a coarse grid
    assert all(3.0 < g0 / g1 < 5.0 for g0, g1 in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 2e-5 * energies[-1]
    with pytest.raises(ValueError, match="immersion"):
        segment_sq_lengths(points, metric, rule="chord")


def test_geodesic_l2_is_at_most_the_straight_line_and_exact_for_a_linear_decoder():
    """The heat kernel's geodesic l² never exceeds the squared length of the straight line (the metric
    integrated along the chord), is much shorter where the chord crosses a bump, and for a linear
    decoder (constant G) equals the local l² (z − μ)ᵀ G (z − μ): the log-densities agree."""
    bump = _height_bump(torch.tensor(3.0, dtype=D64))
    metric = PullbackMetric(bump)
    centre = torch.tensor([[-1.0, 0.05], [-1.0, 2.0], [-0.6, -0.3]], dtype=D64)
    z = torch.tensor([[1.0, 0.05], [1.0, 2.0], [0.7, 0.2]], dtype=D64)
    t = 0.5
    geo = HeatKernel(centre, t, metric, distance="geodesic", geodesic_kwargs=geodesic_options(bump))
    sq = -2 * t * (geo.log_prob(z) + math.log(2 * math.pi * t) - 0.5 * (torch.logdet(metric(z))
                                                                         - torch.logdet(metric(centre))))
    line = centre[:, None] + torch.linspace(0, 1, 401, dtype=D64)[None, :, None] * (z - centre)[:, None]
    straight = curve_length(line, metric) ** 2
    assert (sq <= straight * (1 + 1e-6)).all(), (sq, straight)
    assert sq[0] < 0.25 * straight[0] and sq[2] < 0.25 * straight[2]   # around the bump
    torch.testing.assert_close(sq[1], torch.tensor(4.0, dtype=D64))    # flat: the straight line, |Δz|² = 4
    a, mu, _ = _linear(7, 2, seed=6)
    prior = HeatKernelPrior(2, t=0.3, distance="geodesic").double().bind(PullbackMetric(mu), immersion=mu)
    local = HeatKernelPrior(2, t=0.3, distance="local").double().bind(PullbackMetric(mu))
    w = torch.randn(6, 2, dtype=D64)
    torch.testing.assert_close(prior().log_prob(w), local().log_prob(w), rtol=1e-10, atol=1e-10)
    delta = w - prior.loc
    expected = -math.log(2 * math.pi * 0.3) - torch.einsum("ni,ij,nj->n", delta, a.T @ a, delta) / 0.6
    torch.testing.assert_close(prior().log_prob(w), expected)  # constant G: H0 = 1, l² = ΔᵀAᵀAΔ


def test_fit_geodesic_tol_stops_early_and_never_lengthens_the_curve():
    bump = _height_bump(torch.tensor(3.0, dtype=D64))
    metric = PullbackMetric(bump)
    x = torch.tensor([[-1.0, 0.05], [-1.0, 2.0], [-0.6, -0.3]], dtype=D64)
    y = torch.tensor([[1.0, 0.05], [1.0, 2.0], [0.7, 0.2]], dtype=D64)
    kw = dict(iterations=40, optimizer="lbfgs", lr=1.0, rule="chord", immersion=bump, num_points=16)
    full = fit_geodesic(metric, x, y, **kw)
    early = fit_geodesic(metric, x, y, tol=1e-4, **kw)
    assert full.energy_history.shape == (41, 3)
    assert 3 <= early.energy_history.shape[0] < 20
    assert (early.length <= early.straight_length).all() and (full.length <= full.straight_length).all()
    assert ((early.length - full.length) / full.length).abs().max() < 1e-2
    # straight already optimal (flat region): stops after the first two steps, still the straight line
    flat = fit_geodesic(metric, x[1:2], y[1:2], tol=1e-4, **kw)
    assert flat.energy_history.shape[0] == 3
    torch.testing.assert_close(flat.length, flat.straight_length)
    # a diverging solve stopped early still returns the straight line
    bad = fit_geodesic(metric, x[:1], y[:1], iterations=40, lr=0.05, optimizer="sgd", tol=1e-4)
    assert bad.energy_history.shape[0] < 41
    torch.testing.assert_close(bad.length, bad.straight_length)


def test_geodesic_heat_kernel_log_prob_matches_finite_differences():
    """∂ log p / ∂(centre, z, t, decoder parameter) with distance="geodesic" (the envelope gradient at
    the fitted curve; the preset's solver run to convergence, so that the re-solved log-densities of the
    central differences are smooth); the straight line's gradient is far off, so a gradient that skipped
    the solve would fail."""
    height = torch.tensor(2.0, dtype=D64, requires_grad=True)
    bump = _height_bump(height)
    metric = PullbackMetric(bump)

    def log_p(c, z, t, geodesic=True):
        kw = {**geodesic_options(bump), "iterations": 60 if geodesic else 0, "tol": None}
        return HeatKernel(c.expand(2, 2), t, metric, distance="geodesic", geodesic_kwargs=kw).log_prob(z).sum()
    args = [torch.tensor([[-0.8, 0.1]], dtype=D64), torch.tensor([[0.9, 0.2], [0.7, -0.5]], dtype=D64),
            torch.tensor(0.5, dtype=D64)]
    leaves = [a.clone().requires_grad_(True) for a in args]
    grads = torch.autograd.grad(log_p(*leaves), leaves + [height])
    straight = torch.autograd.grad(log_p(*leaves, geodesic=False), leaves + [height])
    eps = 1e-3
    with torch.no_grad():
        for k, g in enumerate(grads):
            base = args[k] if k < 3 else height
            num = torch.empty(base.numel(), dtype=D64)
            for i in range(base.numel()):
                values = []
                for s in (eps, -2 * eps, eps):        # +eps, -eps, back to the start
                    base.view(-1)[i] += s
                    values.append(log_p(*args).item())
                num[i] = (values[0] - values[1]) / (2 * eps)
            torch.testing.assert_close(g.reshape(-1), num, rtol=2e-2, atol=3e-2)
            assert (straight[k].reshape(-1) - num).abs().max() > 1.0
