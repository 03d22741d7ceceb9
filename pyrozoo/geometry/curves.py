"""Curves in latent space, their energy and length under a metric, and geodesics by energy minimisation.

Kalatzis et al. (2020), Appendix B: a geodesic is found by parametrising the curve as a cubic
spline initialised to the straight line and minimising the curve energy (eq. B.1) by gradient
descent. Here many curves are solved at once: the metric is evaluated at all B * T points of a
batch in one call.

``metric_fn`` everywhere is a callable ``(..., d) -> (..., d, d)`` (e.g.
:class:`~pyrozoo.geometry.metric.PullbackMetric`).
"""

from dataclasses import dataclass

import torch
from torch import nn

from pyrozoo.geometry.metric import PullbackMetric


def _spline_basis(num_nodes, t):
    """Weights of the natural cubic spline through K = num_nodes + 2 values at uniform knots.

    Returns ``(W, W')`` each ``(T, K)`` in float64 such that c(t) = W @ y and c'(t) = W' @ y for
    knot values y ``(K, d)``.
    """
    k = num_nodes + 2
    h = 1.0 / (k - 1)
    t = t.to(torch.float64)
    moments = torch.zeros(k, k, dtype=torch.float64, device=t.device)  # y -> second derivatives M
    if num_nodes > 0:
        n = num_nodes
        a = 4.0 * torch.eye(n, dtype=torch.float64, device=t.device)
        a = a + torch.diag(torch.ones(n - 1, dtype=torch.float64, device=t.device), 1)
        a = a + torch.diag(torch.ones(n - 1, dtype=torch.float64, device=t.device), -1)
        second_diff = torch.zeros(n, k, dtype=torch.float64, device=t.device)
        idx = torch.arange(n, device=t.device)
        second_diff[idx, idx] = 1.0
        second_diff[idx, idx + 1] = -2.0
        second_diff[idx, idx + 2] = 1.0
        moments[1:-1] = torch.linalg.solve(a, (6.0 / h ** 2) * second_diff)
    j = torch.clamp(torch.floor(t / h).long(), 0, k - 2)
    s = t - j.to(torch.float64) * h          # distance from the left knot
    u = h - s                                # distance to the right knot
    eye = torch.eye(k, dtype=torch.float64, device=t.device)
    ml, mr, el, er = moments[j], moments[j + 1], eye[j], eye[j + 1]
    s, u = s[:, None], u[:, None]
    w = (u ** 3 / (6 * h) - h * u / 6) * ml + (s ** 3 / (6 * h) - h * s / 6) * mr + (u * el + s * er) / h
    dw = (h / 6 - u ** 2 / (2 * h)) * ml + (s ** 2 / (2 * h) - h / 6) * mr + (er - el) / h
    return w, dw


class CubicSplineCurve(nn.Module):
    """A batch of B curves c: [0, 1] -> R^d with fixed end points, c(0) = ``start``, c(1) = ``end``.

    Parametrisation: the *natural cubic spline* (C² with zero second derivative at both ends)
    through K = ``num_nodes`` + 2 values at uniform knots 0, 1/(K-1), ..., 1; the end values are
    the fixed end points, the ``num_nodes`` interior values are the free parameter ``nodes``
    ``(B, num_nodes, d)``. The spline is linear in its knot values, c(t) = Σ_k w_k(t) y_k, so a
    curve is evaluated as one matrix product. Initialised to the straight line, which a natural
    spline reproduces exactly at constant speed (Kalatzis et al. Appendix B: "a cubic spline
    with parameters initialised to form a straight line"). ``num_nodes=0`` is the straight line.

    ``start``, ``end``: ``(B, d)`` or ``(d,)``; they are kept as given (gradients flow through
    them when they require grad).
    """

    def __init__(self, start, end, num_nodes=4):
        super().__init__()
        start, end = _as_pairs(start, end)
        if int(num_nodes) < 0:
            raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
        self.num_nodes = int(num_nodes)
        self.register_buffer("start", start)
        self.register_buffer("end", end)
        self.nodes = nn.Parameter(self._line_nodes().detach().clone())

    def _line_nodes(self):
        tau = torch.arange(1, self.num_nodes + 1, dtype=self.start.dtype, device=self.start.device)
        tau = tau / (self.num_nodes + 1)
        return self.start[:, None] + tau[None, :, None] * (self.end - self.start)[:, None]

    @torch.no_grad()
    def reset_to_line(self, mask=None):
        """Put curves back on the straight line: all, or those where ``mask`` ``(B,)`` is True."""
        line = self._line_nodes()
        if mask is None:
            self.nodes.copy_(line)
        else:
            self.nodes[mask] = line[mask]

    def _knots(self):
        return torch.cat([self.start[:, None], self.nodes, self.end[:, None]], dim=1)

    def forward(self, t):
        """Points c(t): ``t`` ``(T,)`` in [0, 1] -> ``(B, T, d)``."""
        w, _ = _spline_basis(self.num_nodes, t)
        return torch.einsum("tk,bkd->btd", w.to(self.nodes.dtype), self._knots())

    def derivative(self, t):
        """Velocities dc/dt(t): ``t`` ``(T,)`` -> ``(B, T, d)``."""
        _, dw = _spline_basis(self.num_nodes, t)
        return torch.einsum("tk,bkd->btd", dw.to(self.nodes.dtype), self._knots())


def _as_pairs(z0, z1):
    if z0.shape != z1.shape or z0.dim() not in (1, 2):
        raise ValueError(f"end points must both be (d,) or (B, d) of equal shape, got {tuple(z0.shape)} "
                         f"and {tuple(z1.shape)}")
    if z0.dim() == 1:
        z0, z1 = z0[None], z1[None]
    return z0, z1


def _times(num_points, like):
    if int(num_points) < 2:
        raise ValueError(f"num_points must be >= 2, got {num_points}")
    return torch.linspace(0.0, 1.0, int(num_points), dtype=like.dtype, device=like.device)


def segment_sq_lengths(points, metric_fn, rule="midpoint", immersion=None):
    """Squared metric lengths of the chords of discretised curves, Δc_iᵀ G(p_i) Δc_i.

    ``points`` ``(B, T, d)`` -> ``(B, T-1)``. Δc_i = c_{i+1} - c_i; G is evaluated at
    p_i = (c_i + c_{i+1}) / 2 (``rule="midpoint"``, second-order accurate) or at p_i = c_i
    (``rule="left"``), all B * (T-1) points in one ``metric_fn`` call. If ``metric_fn`` has a
    ``quadratic_form(z, v)`` method (as :class:`PullbackMetric` does) it is used instead of
    building G: one Jacobian-vector product per point rather than a full Jacobian.

    ``rule="chord"`` measures the chords in the space the latent space is immersed in instead:
    ||f(c_{i+1}) − f(c_i)||² for the ``immersion`` f ``(N, d) -> (N, ...)`` whose pull-back metric is G
    (for a decoder, f(z) = (μ(z), σ(z)), Kalatzis et al. eq. 2.5). It tends to the same energy as the
    chords shrink and needs only the decoder's outputs at the B * T points, no Jacobian: the cheapest
    rule by far for a large decoder (the authors' code measures curves this way).
    """
    if points.dim() != 3 or points.shape[1] < 2:
        raise ValueError(f"points must be (B, T>=2, d), got {tuple(points.shape)}")
    if rule == "chord":
        if immersion is None:
            raise ValueError("rule='chord' measures chords in the immersion's output space; pass immersion=f")
        b, t, d = points.shape
        f = immersion(points.reshape(b * t, d)).reshape(b, t, -1)
        return (f[:, 1:] - f[:, :-1]).pow(2).sum(-1)
    delta = points[:, 1:] - points[:, :-1]
    if rule == "midpoint":
        at = 0.5 * (points[:, 1:] + points[:, :-1])
    elif rule == "left":
        at = points[:, :-1]
    else:
        raise ValueError(f"unknown rule {rule!r}; use 'midpoint', 'left' or 'chord'")
    b, m, d = at.shape
    if hasattr(metric_fn, "quadratic_form"):
        return metric_fn.quadratic_form(at.reshape(b * m, d), delta.reshape(b * m, d)).reshape(b, m)
    g = metric_fn(at.reshape(b * m, d)).reshape(b, m, d, d)
    return torch.einsum("bmi,bmij,bmj->bm", delta, g, delta)


def _energy_length(q):
    """Energy ½ Σ q_i / Δt and length Σ sqrt(q_i) from chord quadratic forms ``q`` ``(B, T-1)``."""
    return 0.5 * q.shape[-1] * q.sum(-1), q.clamp_min(0.0).sqrt().sum(-1)


def _points(curve, metric_fn, num_points):
    if isinstance(curve, torch.Tensor):
        return curve
    return curve(_times(num_points, curve.nodes))


def curve_energy(curve, metric_fn, num_points=20, rule="midpoint", immersion=None):
    """Discretised curve energy (Kalatzis et al. eq. B.1), E = ½ Σ_i (1/Δt) Δc_iᵀ G(p_i) Δc_i.

    ``curve``: a :class:`CubicSplineCurve` (evaluated at ``num_points`` uniform times, Δt =
    1/(num_points-1)) or a tensor of points ``(B, T, d)`` at uniform times. Returns ``(B,)``.
    For a constant-speed curve the squared length is 2E; in general L² <= 2E. ``rule`` and
    ``immersion``: how the chords are measured (:func:`segment_sq_lengths`).
    """
    points = _points(curve, metric_fn, num_points)
    return _energy_length(segment_sq_lengths(points, metric_fn, rule, immersion))[0]


def curve_length(curve, metric_fn, num_points=20, rule="midpoint", immersion=None):
    """Discretised curve length L = Σ_i sqrt(Δc_iᵀ G(p_i) Δc_i) (§2.2, L = ∫ ||γ'(t)||_G dt).

    Same arguments as :func:`curve_energy`; returns ``(B,)``.
    """
    points = _points(curve, metric_fn, num_points)
    return _energy_length(segment_sq_lengths(points, metric_fn, rule, immersion))[1]


@dataclass
class GeodesicResult:
    """Outcome of a geodesic solve for B curves.

    ``curve``: the fitted :class:`CubicSplineCurve`; ``energy``, ``length``: ``(B,)`` at the
    returned curve; ``sq_length``: l² = length² ``(B,)``, the squared geodesic distance used by
    the heat kernel (eq. 3.3); ``straight_length``: ``(B,)`` length of the straight line under
    the same discretisation; ``energy_history``: ``(iterations + 1, B)``, the energy before each
    optimiser step and, last, after the final one.
    """

    curve: CubicSplineCurve
    energy: torch.Tensor
    length: torch.Tensor
    sq_length: torch.Tensor
    straight_length: torch.Tensor
    energy_history: torch.Tensor

    def points(self, n):
        """``n`` points along each fitted curve at uniform times: ``(B, n, d)``."""
        return self.curve(_times(n, self.curve.nodes))


def fit_geodesic(metric_fn, z0, z1, num_nodes=4, num_points=20, iterations=100, lr=0.05, optimizer="adam",
                 rule="midpoint", differentiable=True, immersion=None, tol=None):
    """Geodesics between ``z0`` and ``z1`` ``(B, d)`` (or ``(d,)``) by minimising :func:`curve_energy` (eq. B.1).

    Each curve is a :class:`CubicSplineCurve` with ``num_nodes`` free nodes, started on the
    straight line and updated ``iterations`` times by ``optimizer`` (``"adam"``, ``"sgd"`` or
    ``"lbfgs"``, learning rate ``lr``; Adam and SGD follow a cosine decay of ``lr`` to 0 so they
    settle instead of oscillating; L-BFGS takes ``lr`` as the first trial step of a strong-Wolfe line
    search) on the energy discretised at ``num_points`` times, with the chords measured by ``rule``
    (:func:`segment_sq_lengths`; ``"chord"`` with ``immersion`` needs no metric tensor at all). All B
    curves form one problem: their energies add, and each curve's nodes move by its own gradient.
    Gradients are taken only with respect to the nodes (``torch.autograd.grad``), so the
    decoder's ``.grad`` fields are untouched. Per curve, the iterate with the smallest length is
    returned; the straight line is iterate 0, so a returned curve is never longer than the
    straight line. ``tol``: stop early once an iteration shortens no curve by more than ``tol`` times
    its length (None: run all ``iterations``).

    With ``differentiable=True`` the returned ``energy``, ``length`` and ``sq_length`` are
    recomputed on the autograd graph at the fitted nodes (held fixed), so they carry gradients
    to ``z0``, ``z1`` and the parameters inside ``metric_fn`` (envelope-theorem gradient of
    the geodesic distance). Returns a :class:`GeodesicResult`.
    """
    z0, z1 = _as_pairs(z0, z1)
    curve = CubicSplineCurve(z0.detach(), z1.detach(), num_nodes)
    t = _times(num_points, z0)
    nodes = curve.nodes
    if optimizer == "adam":
        opt = torch.optim.Adam([nodes], lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD([nodes], lr=lr)
    elif optimizer == "lbfgs":
        opt = torch.optim.LBFGS([nodes], lr=lr, max_iter=1, max_eval=25,
                                line_search_fn="strong_wolfe")
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'adam', 'sgd' or 'lbfgs'")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(int(iterations), 1)) if optimizer != "lbfgs" else None
    best_nodes = nodes.detach().clone()
    best_len = torch.full(z0.shape[:1], float("inf"), dtype=z0.dtype, device=z0.device)
    evals = []

    def measure():
        return _energy_length(segment_sq_lengths(curve(t), metric_fn, rule, immersion))

    def closure(need_grad=True):
        nonlocal best_len
        with torch.set_grad_enabled(need_grad):
            energy, length = measure()
        with torch.no_grad():
            length = length.detach()
            better = length < best_len
            best_len = torch.where(better, length, best_len)
            best_nodes[better] = nodes.detach()[better]
            evals.append((energy.detach(), length))
        if need_grad:
            nodes.grad = torch.autograd.grad(energy.sum(), nodes)[0].contiguous()
        return energy.sum().detach()

    history = []
    for _ in range(int(iterations)):
        first = len(evals)
        before = best_len.clone()
        if optimizer == "lbfgs":
            opt.step(closure)
        else:
            closure()
            opt.step()
            sched.step()
        history.append(evals[first][0])
        if tol is not None and len(history) > 1 and bool(((before - best_len) <= tol * best_len).all()):
            break
    closure(need_grad=False)
    history.append(evals[-1][0])
    straight_length = evals[0][1]

    with torch.no_grad():
        nodes.copy_(best_nodes)
    nodes.requires_grad_(False)
    curve.start, curve.end = z0, z1
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        energy, length = measure()
    return GeodesicResult(curve, energy, length, length ** 2, straight_length, torch.stack(history))


def geodesic(mu, sigma, z0, z1, num_nodes=4, num_points=20, iterations=100, lr=0.05, optimizer="adam",
             rule="midpoint", differentiable=True):
    """Geodesics of a decoder's pull-back metric (eq. 2.5) between ``z0`` and ``z1`` ``(B, d)``.

    ``mu``, ``sigma``: the decoder's mean and standard-deviation callables (``sigma=None``: mean
    term only). Same options and result as :func:`fit_geodesic` with
    ``metric_fn = PullbackMetric(mu, sigma)``.
    """
    return fit_geodesic(PullbackMetric(mu, sigma), z0, z1, num_nodes=num_nodes, num_points=num_points,
                        iterations=iterations, lr=lr, optimizer=optimizer, rule=rule,
                        differentiable=differentiable)


def interpolate(mu, sigma, z0, z1, n, **geodesic_kwargs):
    """``n`` latent points along the geodesic and along the straight line from ``z0`` to ``z1`` ``(d,)``.

    Returns ``(geodesic_points, straight_points)``, each ``(n, d)`` and detached, at uniform
    curve times (the fitted geodesic is close to constant speed, so its points are close to
    equally spaced in metric length). Decode them with the caller's decoder (Kalatzis et al.
    Fig. 5). ``geodesic_kwargs`` go to :func:`geodesic`.
    """
    if z0.dim() != 1 or z0.shape != z1.shape:
        raise ValueError(f"interpolate needs two (d,) points, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    geodesic_kwargs.setdefault("differentiable", False)
    res = geodesic(mu, sigma, z0, z1, **geodesic_kwargs)
    with torch.no_grad():
        t = _times(n, z0)
        geo = res.curve(t)[0]
        straight = z0[None] + t[:, None] * (z1 - z0)[None]
    return geo.detach(), straight.detach()
