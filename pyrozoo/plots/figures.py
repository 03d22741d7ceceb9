"""Matplotlib figures: image grids (samples, reconstructions), 2D latent scatters, k̂ plots.

Two of them follow figures of papers: :func:`latent_prior_plot` follows Fig. 4 of Athanasiadis, Lindsten & Felsberg
(2025), "Prior Learning in Introspective VAEs", TMLR, arXiv:2408.13805, and :func:`loglik_histogram` the
supplement's Fig. 8 of Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120.
"""

import math

import matplotlib.pyplot as plt
import torch


def image_grid(images, path=None, ncol=None, title=None):
    """Save (or return) a grid of images ``(N, C, H, W)`` with values in [0, 1]. 2D points
    ``(N, 2)`` are drawn as a scatter instead. Returns the figure."""
    images = images.detach().cpu()
    if images.dim() == 2 and images.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.scatter(images[:, 0], images[:, 1], s=2, alpha=0.5)
        ax.set_aspect("equal")
    else:
        n = len(images)
        ncol = ncol or int(math.ceil(math.sqrt(n)))
        nrow = int(math.ceil(n / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 0.8, nrow * 0.8), squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                img = images[i].clamp(0, 1)
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def reconstructions(x, x_rec, path=None, n=10):
    """Originals (top row) above their reconstructions (bottom row)."""
    n = min(n, len(x))
    return image_grid(torch.cat([x[:n], x_rec[:n]]), path, ncol=n, title="data (top) / reconstruction (bottom)")


def latent_scatter(z, labels=None, path=None, title="latent means"):
    """Scatter the first two coordinates of latent codes ``(N, d)``, coloured by ``labels``."""
    z = z.detach().cpu()
    fig, ax = plt.subplots(figsize=(5, 4))
    y = z[:, 1] if z.shape[1] > 1 else torch.zeros(len(z))
    sc = ax.scatter(z[:, 0], y, s=4) if labels is None else ax.scatter(z[:, 0], y, s=4, c=labels.cpu(), cmap="tab10")
    if labels is not None:
        fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title)
    return _finish(fig, path)


def latent_prior_plot(codes, labels=None, prior_means=None, weights=None, path=None):
    """Latent means ``(N, d)`` coloured by ``labels`` with the prior's component means ``(K, d)``
    as crosses sized by their ``weights`` (Athanasiadis et al. 2025, Fig. 4). Codes of more than two dims
    are projected on their first two principal axes, and the prior means with them."""
    codes = codes.detach().cpu().double()
    centre = codes.mean(0)
    if codes.shape[1] > 2:
        _, _, v = torch.linalg.svd(codes - centre, full_matrices=False)
        axes, label = v[:2].T, "principal axis"
    else:
        axes, label = torch.eye(codes.shape[1], 2, dtype=codes.dtype), "z"
    fig, ax = plt.subplots(figsize=(5, 4))
    xy = (codes - centre) @ axes
    kw = {} if labels is None else {"c": labels.cpu(), "cmap": "tab10"}
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.6, **kw)
    if labels is not None:
        fig.colorbar(sc, ax=ax, label="label")
    if prior_means is not None:
        pm = (prior_means.detach().cpu().double() - centre) @ axes
        size = 30 if weights is None else (40 * weights.detach().cpu().double() * len(pm)).clamp(5, 200)
        ax.scatter(pm[:, 0], pm[:, 1], marker="x", c="black", s=size, label="prior means")
        ax.legend(loc="upper right", fontsize=7)
    ax.set_xlabel(f"{label} 1")
    ax.set_ylabel(f"{label} 2")
    ax.set_title("latent means and prior components")
    return _finish(fig, path)


def khat_plot(khat, path=None):
    """PSIS k̂ per data point with the 0.5 and 0.7 reliability thresholds."""
    khat = torch.as_tensor(khat).cpu()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.scatter(range(len(khat)), khat, s=6)
    for level in (0.5, 0.7):
        ax.axhline(level, ls="--", c="gray", lw=1)
    ax.set_xlabel("data point")
    ax.set_ylabel("PSIS k̂")
    return _finish(fig, path)


def loglik_histogram(ll, path=None, title="test log-likelihood per data point"):
    """Histogram of per-point log-likelihoods ``(N,)`` in nats (Tomczak & Welling 2018, supplement Fig. 8)."""
    ll = torch.as_tensor(ll).detach().cpu()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(ll.numpy(), bins=50)
    ax.axvline(float(ll.mean()), c="k", ls="--", lw=1, label=f"mean {float(ll.mean()):.2f}")
    ax.set_xlabel("log p(x) (nats)")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend()
    return _finish(fig, path)


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
