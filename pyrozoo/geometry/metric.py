"""The pull-back metric of a decoder and its volume measure.

A decoder is given as two callables ``mu(z)`` and ``sigma(z)`` mapping latents ``(..., d)`` to
outputs ``(..., *out_shape)`` (vectors ``(..., D)`` or images ``(..., C, H, W)``; trailing
output dimensions are flattened to ``D``). The metric is that of the diagonal immersion
z -> (mu(z), sigma(z)) of Kalatzis et al. (2020), eq. (2.4)-(2.5).
"""

import torch
from torch import func


def jacobian(f, z, mode="forward"):
    """Batched Jacobian of ``f`` at every row of ``z``.

    ``f`` maps ``(n, d)`` to ``(n, *out_shape)``; ``z`` is ``(B, d)`` (any leading shape ``(..., d)``
    is accepted and kept). Returns ``(..., D, d)`` with ``D = prod(out_shape)``: entry ``[b, i, j]``
    is d f_i / d z_j at ``z[b]``, the matrix J of eq. (2.2).

    ``f`` is called on batches of one row inside ``torch.func.vmap``, so it must be a pure
    per-row function (no batch statistics; dropout off). ``mode="forward"`` uses ``jacfwd``
    (d forward passes, best for d << D); ``"reverse"`` uses ``jacrev``. The result stays on the
    autograd graph: it is differentiable with respect to ``z`` and to any parameter ``f``
    closes over (the ``create_graph=True`` semantics of ``torch.autograd.functional``), so it
    can sit inside a training loss.
    """
    if z.dim() < 1:
        raise ValueError("jacobian needs z of shape (..., d)")
    lead, d = z.shape[:-1], z.shape[-1]

    def row(v):
        return f(v.unsqueeze(0)).reshape(-1)

    if mode == "forward":
        jac = func.jacfwd(row)
    elif mode == "reverse":
        jac = func.jacrev(row)
    else:
        raise ValueError(f"unknown jacobian mode {mode!r}; use 'forward' or 'reverse'")
    j = func.vmap(jac)(z.reshape(-1, d))
    return j.reshape(lead + j.shape[-2:])


_SLOPES = {  # derivative of an element-wise activation, from its input h and output a
    torch.nn.ReLU: lambda h, a: (h > 0).to(h.dtype),
    torch.nn.ELU: lambda h, a: torch.where(h > 0, torch.ones_like(h), a + 1.0),
    torch.nn.Tanh: lambda h, a: 1.0 - a * a,
    torch.nn.Identity: lambda h, a: torch.ones_like(h),
}


def mlp_jacobian(net, z):
    """Jacobian of an MLP ``net`` (an ``nn.Sequential`` of ``nn.Linear`` layers and ReLU, ELU
    (α = 1), Tanh or Identity activations) at every row of ``z`` ``(B, d)``: ``(B, D, d)``.

    The chain rule J = W_L diag(a'_{L-1}) W_{L-1} ... diag(a'_1) W_1 evaluated as one batched
    matrix product per layer, alongside the forward pass: the same arithmetic as forward-mode
    autodiff without its per-call overhead (about 2-3x faster than :func:`jacobian` here).
    Differentiable like :func:`jacobian`. Raises ``ValueError`` for any other layer type.
    """
    if z.dim() != 2:
        raise ValueError(f"mlp_jacobian needs z of shape (B, d), got {tuple(z.shape)}")
    h = z
    jac = None  # (B, features, d); None stands for the identity
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            jac = layer.weight.expand(len(z), *layer.weight.shape) if jac is None else \
                torch.matmul(layer.weight, jac)
            h = layer(h)
        elif type(layer) in _SLOPES and (not isinstance(layer, torch.nn.ELU) or layer.alpha == 1.0):
            a = layer(h)
            slope = _SLOPES[type(layer)](h, a)
            jac = slope[..., None] * jac if jac is not None else torch.diag_embed(slope)
            h = a
        else:
            raise ValueError(f"mlp_jacobian supports Linear, ReLU, ELU(alpha=1), Tanh and Identity, got {layer}")
    return jac


def pullback_metric(mu, sigma, z, mode="forward"):
    """Pull-back metric G(z) = J_mu(z)ᵀ J_mu(z) + J_sigma(z)ᵀ J_sigma(z) (Kalatzis et al. eq. 2.5).

    ``z`` ``(B, d)`` (or ``(..., d)``) -> ``(B, d, d)`` (or ``(..., d, d)``), symmetric positive
    semi-definite. ``sigma=None`` keeps only the mean term J_muᵀ J_mu (eq. 2.2).
    """
    jm = jacobian(mu, z, mode)
    g = jm.transpose(-1, -2) @ jm
    if sigma is not None:
        js = jacobian(sigma, z, mode)
        g = g + js.transpose(-1, -2) @ js
    return 0.5 * (g + g.transpose(-1, -2))


def logdet_psd(g, jitter=0.0):
    """log det G for symmetric positive definite ``g`` ``(..., d, d)`` via Cholesky; returns ``(...)``.

    ``jitter`` adds ``jitter * I`` first. A matrix that is not positive definite raises a
    ``ValueError`` rather than returning NaN.
    """
    if jitter:
        g = g + jitter * torch.eye(g.shape[-1], dtype=g.dtype, device=g.device)
    chol, info = torch.linalg.cholesky_ex(g)
    if bool((info != 0).any()):
        raise ValueError("metric tensor is not positive definite (the decoder is not an immersion "
                         "there); pass a jitter")
    return 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)


def log_volume(mu, sigma, z, jitter=0.0, mode="forward"):
    """Log of the Riemannian volume density, log sqrt(det G(z)) (Kalatzis et al. §2.2: dM = sqrt(det G) dz).

    ``z`` ``(B, d)`` -> ``(B,)``; G is :func:`pullback_metric`. ``jitter`` as in :func:`logdet_psd`.
    """
    return 0.5 * logdet_psd(pullback_metric(mu, sigma, z, mode), jitter)


class PullbackMetric:
    """The metric of a decoder as a callable ``metric_fn(z) -> G(z)`` (eq. 2.5).

    ``metric_fn(z)`` maps ``(..., d)`` to ``(..., d, d)``; ``log_volume(z)`` gives
    log sqrt(det G(z)) ``(...)``. A plain object (not an ``nn.Module``) so the decoder's
    parameters stay registered only where the decoder lives. This is the ``metric_fn`` that
    :func:`~pyrozoo.geometry.curves.curve_energy`, :func:`~pyrozoo.geometry.brownian.brownian_motion`
    and :class:`~pyrozoo.geometry.heat_kernel.HeatKernel` expect.
    """

    def __init__(self, mu, sigma=None, mode="forward", jitter=0.0):
        if not callable(mu) or (sigma is not None and not callable(sigma)):
            raise ValueError("PullbackMetric needs callables mu(z) and sigma(z) (sigma may be None)")
        self.mu, self.sigma, self.mode, self.jitter = mu, sigma, mode, float(jitter)

    def __call__(self, z):
        g = pullback_metric(self.mu, self.sigma, z, self.mode)
        if self.jitter:
            g = g + self.jitter * torch.eye(g.shape[-1], dtype=g.dtype, device=g.device)
        return g

    def quadratic_form(self, z, v):
        """vᵀ G(z) v = ||J_mu(z) v||² + ||J_sigma(z) v||² for ``z``, ``v`` ``(N, d)``; returns ``(N,)``.

        Computed by one Jacobian-vector product per decoder part (``torch.func.jvp`` on the whole
        batch, valid because mu and sigma act row by row) instead of the full ``(N, D, d)``
        Jacobian: about d times cheaper. Curve energies use it when available.
        """
        out = 0.0
        for f in (self.mu, self.sigma):
            if f is not None:
                jv = func.jvp(f, (z,), (v,))[1]
                out = out + jv.reshape(z.shape[0], -1).pow(2).sum(-1)
        if self.jitter:
            out = out + self.jitter * v.pow(2).sum(-1)
        return out

    def log_volume(self, z):
        """log sqrt(det G(z)) for ``z`` ``(..., d)``; returns ``(...)``."""
        return 0.5 * logdet_psd(self(z))
