"""Figures of the 2D density benchmark (Fig. 2) of Athanasiadis, Lindsten & Felsberg (2025), "Prior Learning in
Introspective VAEs", TMLR, arXiv:2408.13805 (Soft-IntroVAE with a learned prior): data, samples, density."""

import matplotlib.pyplot as plt
import torch

from pyrozoo.data.toy2d import BOXES, sample_toy
from pyrozoo.evaluation.density2d import grid_points, point_loss
from pyrozoo.plots.figures import _finish


@torch.no_grad()
def density_plot(model, dataset, path=None, num_points=5000, grid_size=200, prior_means=True):
    """Three panels for a model of the 2D set ``dataset`` (a name of :data:`pyrozoo.data.BOXES`):
    real points, generated points (decoder means at z ~ p(z)), and the model's density
    exp(−L(x)) on a ``grid_size²`` grid normalised to sum to one, L being the per-point loss
    :func:`~pyrozoo.evaluation.point_loss` that gnELBO scores. With ``prior_means`` and a mixture
    prior, the decoded component means are marked on the samples panel. Returns the figure."""
    if dataset not in BOXES:
        raise ValueError(f"unknown 2D data set {dataset!r}; choose from {sorted(BOXES)}")
    low, high = BOXES[dataset]
    param = next(model.parameters())
    model.eval()
    real = sample_toy(dataset, num_points)
    fake = model.sample(num_points).reshape(num_points, 2).cpu()
    grid = grid_points((low, high), grid_size, dtype=param.dtype, device=param.device)
    density = torch.softmax(-point_loss(model, grid).double(), 0).reshape(grid_size, grid_size).cpu()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, pts, title in ((axes[0], real, "data"), (axes[1], fake, "samples")):
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.4)
        ax.set_title(title)
    prior = model.prior
    loc = getattr(prior, "loc", None)
    if prior_means and torch.is_tensor(loc) and loc.dim() == 2:
        centres = model.decoder.mean(loc).reshape(-1, 2).cpu()
        axes[1].scatter(centres[:, 0], centres[:, 1], s=20, c="red", marker="x", label="decoded prior means")
        axes[1].legend(loc="upper right", fontsize=7)
    axes[2].imshow(density.T.numpy(), origin="lower", extent=(low, high, low, high), cmap="viridis")
    axes[2].set_title("density exp(-L(x)), normalised on the grid")
    for ax in axes:
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
    return _finish(fig, path)
