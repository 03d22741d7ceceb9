"""The 2D density metrics of the Soft-IntroVAE benchmark of Athanasiadis, Lindsten & Felsberg (2025), "Prior Learning
in Introspective VAEs", TMLR, arXiv:2408.13805 (§5.1, Table 1), computed as the authors' code does: grid-normalised
ELBO (gnELBO), and the histogram KL and JSD between real and generated points."""

import numpy as np
import pyro
import torch

from pyrozoo import checks
from pyrozoo.data.toy2d import BOXES, sample_toy
from pyrozoo.inference.introspective import decoded_mean, kl_to_prior, trace_decoder, trace_pair

EPS = 1e-14


@torch.no_grad()
def point_loss(model, x, batch_size=8192, kl_samples=100, analytic_kl=True):
    """L(x) = KL(q(z|x) ‖ p(z)) + ‖x − D(μ(x))‖², decoded deterministically at the posterior
    mean μ(x): ``(N, 2)`` → ``(N,)``. The KL is closed-form for N(0, I), else a Monte-Carlo mean
    over ``kl_samples`` draws (as in training)."""
    batch_size, kl_samples = checks.count("batch_size", batch_size), checks.count("kl_samples", kl_samples)
    model.check_data(x)
    out = []
    with pyro.validation_enabled(False):
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            mt, gt = trace_pair(model, xb)
            q = gt.nodes["z"]["fn"]
            kl = kl_to_prior(q, mt.nodes["z"]["fn"], kl_samples, analytic_kl)
            rec = decoded_mean(trace_decoder(model, q.mean, xb))
            out.append(kl + (xb - rec).pow(2).reshape(len(xb), -1).sum(-1))
    return torch.cat(out)


def grid_points(box, size=1024, dtype=torch.float32, device=None):
    """The ``size × size`` grid over ``[low, high]²`` (``box = (low, high)``): ``(size², 2)``."""
    low, high = checks.box("box", box)
    size = checks.count("grid_size", size, 2)
    axis = torch.linspace(low, high, size, dtype=dtype, device=device)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


@torch.no_grad()
def grid_normalized_elbo(loss_fn, data, box, grid_size=1024, batch_size=65536):
    """gnELBO = mean_data L / (Σ_grid L + Σ_data L) (§5.1; lower is better).

    ``loss_fn`` maps points ``(n, 2)`` to per-point losses ``(n,)`` (e.g. :func:`point_loss`);
    ``data`` ``(N, 2)`` are data samples (12,800 in the benchmark); the grid has ``grid_size²``
    points over ``box``. A model with the same loss everywhere scores 1/(grid_size² + N)."""
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be a function of points (n, 2), got {type(loss_fn).__name__}")
    checks.points(data, (2,))  # its values are checked by loss_fn (point_loss checks them against the model)
    batch_size = checks.count("batch_size", batch_size)
    grid = grid_points(box, grid_size, dtype=data.dtype, device=data.device)
    grid_sum = sum(loss_fn(grid[i:i + batch_size]).double().sum() for i in range(0, len(grid), batch_size))
    data_loss = torch.cat([loss_fn(data[i:i + batch_size]) for i in range(0, len(data), batch_size)]).double()
    return (data_loss.mean() / (grid_sum + data_loss.sum())).item()


def histogram_density(points, box, bins=100):
    """numpy ``histogram2d(..., bins, range=box², density=True)`` of ``points`` ``(n, 2)``:
    a ``(bins, bins)`` float64 array."""
    p = checks.rows("points", points, columns=2)
    low, high = checks.box("box", box)
    bins = checks.count("bins", bins)
    hist, _, _ = np.histogram2d(p[:, 0], p[:, 1], bins=bins, range=[[low, high], [low, high]], density=True)
    return hist


def kl_batchmean(target, other, eps=EPS):
    """PyTorch's ``kl_div(log(other + eps), target, reduction='batchmean')`` on density arrays
    ``(R, C)``: (1/R) Σ target·(log target − log(other + eps)), with 0·log 0 = 0."""
    t = torch.as_tensor(target, dtype=torch.float64)
    o = torch.as_tensor(other, dtype=torch.float64)
    return ((torch.special.xlogy(t, t) - t * torch.log(o + eps)).sum() / t.shape[0]).item()


def histogram_kl(real, fake, box, bins=100):
    """KL = (1/bins) Σ p_real (log p_real − log(p_fake + 1e-14)) over the ``bins × bins`` density
    histograms of ``real`` and ``fake`` points ``(n, 2)`` (§5.1, as coded by the authors)."""
    return kl_batchmean(histogram_density(real, box, bins), histogram_density(fake, box, bins))


def histogram_jsd(real, fake, box, bins=100):
    """JSD as coded by the authors: with M = ½(p_fake + p_real),
    JSD = ½[KL_b(M ‖ p_real) + KL_b(M ‖ p_fake)], KL_b the batchmean form of :func:`kl_batchmean`."""
    p_real, p_fake = histogram_density(real, box, bins), histogram_density(fake, box, bins)
    m = 0.5 * (p_real + p_fake)
    return 0.5 * (kl_batchmean(m, p_real) + kl_batchmean(m, p_fake))


@torch.no_grad()
def evaluate_2d(model, dataset, num_points=5000, data_points=12800, grid_size=1024, bins=100, kl_samples=100,
                analytic_kl=True, generator=None):
    """gnELBO, KL and JSD of ``model`` on the 2D set ``dataset`` (a name of
    :data:`pyrozoo.data.toy2d.BOXES`). KL and JSD use independent draws of ``num_points`` real
    and generated points (decoder mean at z ~ p(z)). Returns a dict of floats."""
    if dataset not in BOXES:
        raise ValueError(f"unknown 2D data set {dataset!r}; choose from {sorted(BOXES)}")
    num_points, data_points = checks.count("num_points", num_points), checks.count("data_points", data_points)
    grid_size, bins = checks.count("grid_size", grid_size, 2), checks.count("bins", bins)
    kl_samples = checks.count("kl_samples", kl_samples)
    box = BOXES[dataset]
    param = next(model.parameters())
    model.eval()

    def draw(n):
        return sample_toy(dataset, n, generator=generator).to(device=param.device, dtype=param.dtype)

    def loss_fn(x):
        return point_loss(model, x, kl_samples=kl_samples, analytic_kl=analytic_kl)

    gnelbo = grid_normalized_elbo(loss_fn, draw(data_points), box, grid_size)
    kl = histogram_kl(draw(num_points), model.sample(num_points), box, bins)
    jsd = histogram_jsd(draw(num_points), model.sample(num_points), box, bins)
    return {"gnelbo": gnelbo, "kl": kl, "jsd": jsd}
