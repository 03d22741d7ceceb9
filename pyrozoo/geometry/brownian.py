"""Brownian motion on a latent Riemannian manifold, simulated in coordinates (Kalatzis et al. §3.2)."""

import torch


def brownian_motion(metric_fn, z0, t, num_steps, generator=None, return_path=False, jitter=0.0):
    """Random walk z_s ~ N(z_{s-1}, (t/T) G(z_{s-1})^{-1}), s = 1..T (Kalatzis et al. eq. 3.15).

    ``metric_fn``: ``(B, d) -> (B, d, d)``; ``z0``: start points ``(B, d)`` (or ``(d,)``);
    ``t``: diffusion time, a float or a tensor broadcastable to ``(B,)``; ``num_steps``: T.
    Each step is reparameterised: with G = L Lᵀ (Cholesky), z_s = z_{s-1} + sqrt(t/T) L^{-T} ε,
    ε ~ N(0, I), whose covariance is (t/T) L^{-T} L^{-1} = (t/T) G^{-1}; so the result is
    differentiable with respect to ``z0``, ``t`` and the parameters inside ``metric_fn``.
    ``generator``: an optional ``torch.Generator`` for ε. ``jitter`` adds ``jitter * I`` to G.

    Returns the end points ``(B, d)``, or ``(end points, path)`` with the path ``(B, T+1, d)``
    (``path[:, 0] = z0``) when ``return_path=True``. Cost: T metric evaluations at B points and
    T batched d x d Cholesky factorisations and triangular solves (eq. 3.16).
    """
    squeeze = z0.dim() == 1
    z = z0[None] if squeeze else z0
    if z.dim() != 2:
        raise ValueError(f"z0 must be (d,) or (B, d), got {tuple(z0.shape)}")
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    steps = int(num_steps)
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    if bool((t <= 0).any()):
        raise ValueError("the diffusion time t must be positive")
    scale = torch.sqrt(t / steps).expand(z.shape[:1])[:, None]
    eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
    path = [z]
    for _ in range(steps):
        g = metric_fn(z)
        if jitter:
            g = g + jitter * eye
        chol, info = torch.linalg.cholesky_ex(g)
        if bool((info != 0).any()):
            raise ValueError("metric tensor is not positive definite during Brownian motion; pass a jitter")
        eps = torch.randn(z.shape, dtype=z.dtype, device=z.device, generator=generator)
        step = torch.linalg.solve_triangular(chol.transpose(-1, -2), eps[..., None], upper=True)[..., 0]
        z = z + scale * step
        path.append(z)
    end = z[0] if squeeze else z
    if not return_path:
        return end
    path = torch.stack(path, dim=1)
    return end, (path[0] if squeeze else path)
