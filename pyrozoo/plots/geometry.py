"""Figures of a 2D latent manifold (Kalatzis et al. 2020, Figs. 3-7): the log volume measure with the
latent codes, geodesic versus straight interpolations, Brownian-motion walks, with decoded images.

Each function takes a model with ``log_volume(z)``, ``decode(z)`` and ``z_dim == 2`` (e.g.
:class:`pyrozoo.models.rvae.RiemannianVAE`) and returns the matplotlib figure (saved to ``path``
when given).
"""

import matplotlib.pyplot as plt
import torch

from pyrozoo.plots.figures import _finish


def _box(points, margin=0.25):
    lo, hi = points.min(0).values, points.max(0).values
    pad = margin * (hi - lo).clamp_min(1e-3)
    return (lo - pad).tolist(), (hi + pad).tolist()


@torch.no_grad()
def log_volume_grid(model, lo, hi, n=80, batch=2000):
    """log sqrt(det G) on an ``n x n`` grid over the box ``[lo, hi]``: ``(xs (n,), ys (n,), (n, n))``."""
    ref = next(model.parameters())
    xs = torch.linspace(lo[0], hi[0], n, dtype=ref.dtype, device=ref.device)
    ys = torch.linspace(lo[1], hi[1], n, dtype=ref.dtype, device=ref.device)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    vol = torch.cat([model.log_volume(grid[i:i + batch]) for i in range(0, len(grid), batch)])
    return xs.cpu(), ys.cpu(), vol.reshape(n, n).cpu()


def _canvas(model, pts, codes, figsize, rect, n=60):
    """A figure whose main axes (at ``rect``) show the volume measure over the box of ``pts``
    ``(M, 2)``, with ``codes`` as faint dots; returns ``(fig, ax)``."""
    lo, hi = _box(pts)
    fig = plt.figure(figsize=figsize)
    ax = fig.add_axes(rect)
    _background(ax, model, lo, hi, n)
    if codes is not None:
        ax.scatter(codes[:, 0].cpu(), codes[:, 1].cpu(), s=2, c="w", alpha=0.3)
    return fig, ax


def _background(ax, model, lo, hi, n):
    xs, ys, vol = log_volume_grid(model, lo, hi, n)
    im = ax.imshow(vol.numpy(), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="viridis", aspect="auto")
    return im


def volume_plot(model, codes, labels=None, path=None, n=80):
    """Latent codes ``(N, 2)`` over the log volume measure log sqrt(det G(z)) (Figs. 3-4)."""
    _check_2d(model)
    codes = codes.detach().cpu()
    lo, hi = _box(codes)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = _background(ax, model, lo, hi, n)
    fig.colorbar(im, ax=ax, label="log volume measure")
    kw = dict(s=3, alpha=0.6) | ({"c": labels.cpu(), "cmap": "tab10"} if labels is not None else {"c": "w"})
    ax.scatter(codes[:, 0], codes[:, 1], **kw)
    ax.set_title("latent codes over the Riemannian volume measure")
    return _finish(fig, path)


@torch.no_grad()
def interpolation_plot(model, z0, z1, codes=None, path=None, n=10, **geodesic_kwargs):
    """Geodesic versus straight line from ``z0`` to ``z1`` ``(2,)`` over the volume measure, with
    ``n`` decoded images along each (Fig. 5). ``geodesic_kwargs`` go to
    :meth:`pyrozoo.models.RiemannianVAE.geodesics`."""
    _check_2d(model)
    geodesic_kwargs.setdefault("differentiable", False)
    with torch.enable_grad():
        res = model.geodesics(z0[None], z1[None], **geodesic_kwargs)
    t = torch.linspace(0, 1, n, dtype=z0.dtype, device=z0.device)
    geo = res.curve(t)[0]
    line = z0[None] + t[:, None] * (z1 - z0)[None]
    dense_geo = res.curve(torch.linspace(0, 1, 100, dtype=z0.dtype, device=z0.device))[0].cpu()
    pts = torch.cat([geo, line] + ([codes] if codes is not None else [])).detach().cpu()
    fig, ax = _canvas(model, pts, codes, (8, 7), [0.08, 0.35, 0.84, 0.6])
    ax.plot(dense_geo[:, 0], dense_geo[:, 1], "r-", lw=2, label=f"geodesic (length {res.length.item():.2f})")
    ax.plot(line[:, 0].cpu(), line[:, 1].cpu(), "w--", lw=2,
            label=f"straight line (length {res.straight_length.item():.2f})")
    ax.legend(loc="best", fontsize=8)
    for row, (pts_row, name) in enumerate(((geo, "geodesic"), (line, "straight"))):
        images = model.decode(pts_row).detach().cpu()
        for i in range(n):
            a = fig.add_axes([0.04 + i * 0.92 / n, 0.17 - row * 0.15, 0.92 / n, 0.13])
            a.axis("off")
            _show(a, images[i])
        fig.text(0.005, 0.23 - row * 0.15, name, fontsize=7, rotation=90)
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


@torch.no_grad()
def brownian_plot(model, path=None, num_walks=3, num_steps=200, t=None, codes=None, n_images=10, generator=None):
    """Brownian-motion walks on the latent manifold (eq. 3.15) over the volume measure, with
    ``n_images`` decoded points of the first walk (Figs. 6-7; pass a larger ``t`` for Fig. 7)."""
    _check_2d(model)
    with torch.enable_grad():
        paths = model.brownian_walk(num_walks, num_steps=num_steps, t=t, generator=generator).detach()
    pts = torch.cat([paths.reshape(-1, 2)] + ([codes] if codes is not None else [])).cpu()
    fig, ax = _canvas(model, pts, codes, (8, 6.5), [0.08, 0.25, 0.84, 0.7])
    for walk in paths.cpu():
        ax.plot(walk[:, 0], walk[:, 1], "-", lw=1)
    t_val = float(t) if t is not None else float(getattr(model.prior, "t", torch.tensor(1.0)))
    ax.set_title(f"Brownian motion, t = {t_val:.3g}, {num_steps} steps")
    idx = torch.linspace(0, num_steps, n_images).round().long()
    images = model.decode(paths[0, idx]).detach().cpu()
    for i in range(n_images):
        a = fig.add_axes([0.04 + i * 0.92 / n_images, 0.03, 0.92 / n_images, 0.16])
        a.axis("off")
        _show(a, images[i])
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def _show(ax, img):
    img = img.clamp(0, 1)  # matplotlib gets numpy arrays: a tensor's __array__ warns under numpy 2
    if img.dim() == 3 and img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    elif img.dim() == 3:
        ax.imshow(img.permute(1, 2, 0).numpy())
    else:
        ax.plot(img.numpy())


def _check_2d(model):
    if getattr(model, "z_dim", None) != 2 or not hasattr(model, "log_volume"):
        raise ValueError("these figures need a model with a 2D latent space and a log_volume(z) method")
