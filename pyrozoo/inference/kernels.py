"""Stein kernels over particles stacked as a matrix ``theta`` of shape ``(M, P)``.

A kernel object is prepared once per step from the current particles (its bandwidth is
computed there, without gradient) with :meth:`Kernel.setup`, which returns a function
``k(x, y)`` that broadcasts over leading dims: ``x``, ``y`` ``(..., P)`` -> ``(...)``.
:func:`kernel_matrix` and :func:`stein_force` build from it the update of Stein Mixture Inference (SMI) of
Rønning, Nalisnick, Ley, Smyth & Hamelryck (2024), "ELBOing Stein: Variational Bayes with Stein Mixture Inference",
arXiv:2410.22948, eq. 9: φ_l = Σ_k k(θ_k, θ_l) ∇_{θ_k} L_k + (α/M) Σ_k ∇_{θ_k} k(θ_k, θ_l), here with a loss
temperature T dividing the first sum (T = 1: the plain update).
"""

import math

import torch


def pairwise_sq_distances(theta):
    """‖θ_k − θ_l‖² for all pairs: ``(M, P) -> (M, M)``."""
    diff = theta.unsqueeze(1) - theta.unsqueeze(0)
    return (diff * diff).sum(-1)


@torch.no_grad()
def median_bandwidth(theta):
    """h = median(‖θ_k − θ_l‖, k < l)² / log M, without gradient (the SMI kernel's bandwidth).

    The median is over the M(M−1)/2 distinct pairs (the mean of the two middle values for an
    even count). h = 1 when M = 1 or when the median distance is 0. Returns a 0-dim tensor
    on ``theta``'s device and dtype.
    """
    m = theta.shape[0]
    one = torch.ones((), dtype=theta.dtype, device=theta.device)
    if m < 2:
        return one
    rows, cols = torch.triu_indices(m, m, offset=1, device=theta.device)
    dist = pairwise_sq_distances(theta)[rows, cols].sqrt()
    med = torch.quantile(dist, 0.5)
    if med <= 0:
        return one
    return med ** 2 / math.log(m)


class Kernel:
    """Base class: ``setup(theta)`` returns ``k(x, y)`` for the particles ``theta`` ``(M, P)``."""

    def setup(self, theta):
        raise NotImplementedError


class RBFKernel(Kernel):
    """k(x, y) = exp(−‖x − y‖² / h), h the median heuristic (:func:`median_bandwidth`) unless
    ``bandwidth`` fixes it."""

    def __init__(self, bandwidth=None):
        self.bandwidth = bandwidth

    def setup(self, theta):
        h = median_bandwidth(theta) if self.bandwidth is None else torch.as_tensor(
            float(self.bandwidth), dtype=theta.dtype, device=theta.device)
        self.h = h

        def k(x, y):
            return torch.exp(-((x - y) ** 2).sum(-1) / h)
        return k


class IMQKernel(Kernel):
    """Inverse multiquadric k(x, y) = (c² + ‖x − y‖² / h)^β, β = −1/2 and c = 1 by default,
    with h the median heuristic unless ``bandwidth`` fixes it (Gorham & Mackey 2017)."""

    def __init__(self, c=1.0, beta=-0.5, bandwidth=None):
        if not beta < 0:
            raise ValueError(f"the IMQ exponent beta must be negative, got {beta}")
        self.c, self.beta, self.bandwidth = float(c), float(beta), bandwidth

    def setup(self, theta):
        h = median_bandwidth(theta) if self.bandwidth is None else torch.as_tensor(
            float(self.bandwidth), dtype=theta.dtype, device=theta.device)
        self.h = h

        def k(x, y):
            return (self.c ** 2 + ((x - y) ** 2).sum(-1) / h) ** self.beta
        return k


class ProbabilityProductKernel(Kernel):
    """Probability-product kernel with ρ = 1/2 (Bhattacharyya; Jebara et al. 2004) between the
    diagonal Gaussians N(a, diag s²) that the particles parameterise.

    A particle is laid out as θ = [a, log s] (first half means, second half log-scales), which
    is how :class:`~pyrozoo.inference.smi.SMI` stacks Stein-mixture parameters. Per dimension
    k = sqrt(2 s₁ s₂ / (s₁² + s₂²)) · exp(−(a₁ − a₂)² / (4 (s₁² + s₂²))); the product over
    dimensions is taken, so k(θ, θ) = 1 and 0 < k ≤ 1.
    """

    def setup(self, theta):
        if theta.shape[-1] % 2:
            raise ValueError("the probability-product kernel needs particles [loc, log_scale] of even length, "
                             f"got {theta.shape[-1]}")

        def k(x, y):
            d = x.shape[-1] // 2
            a1, ls1 = x[..., :d], x[..., d:]
            a2, ls2 = y[..., :d], y[..., d:]
            v = torch.exp(2 * ls1) + torch.exp(2 * ls2)
            log_k = 0.5 * (math.log(2.0) + ls1 + ls2 - torch.log(v)) - (a1 - a2) ** 2 / (4 * v)
            return torch.exp(log_k.sum(-1))
        return k


KERNELS = {"rbf": RBFKernel, "imq": IMQKernel, "probability-product": ProbabilityProductKernel}


def make_kernel(name, **options):
    """A kernel by name: one of :data:`KERNELS` (``"rbf"``, ``"imq"``, ``"probability-product"``).
    A :class:`Kernel` instance is returned unchanged. Unknown names raise ``ValueError``."""
    if isinstance(name, Kernel):
        return name
    if name not in KERNELS:
        raise ValueError(f"unknown Stein kernel {name!r}; choose from {', '.join(KERNELS)}")
    return KERNELS[name](**options)


def kernel_matrix(k, theta):
    """K[k, l] = k(θ_k, θ_l): ``(M, P) -> (M, M)``."""
    return k(theta.unsqueeze(1), theta.unsqueeze(0))


def stein_force_terms(k, theta, grads):
    """The two sums of the SMI update, unweighted: ``(attraction, repulsion)``, each ``(M, P)``.

    attraction[l] = Σ_k k(θ_k, θ_l) ∇_{θ_k} L_k and repulsion[l] = Σ_k ∇_{θ_k} k(θ_k, θ_l) (Rønning et al.
    2024, eq. 9 without its weights). ``theta`` ``(M, P)`` the particles, ``grads`` ``(M, P)`` row k =
    ∇_{θ_k} L_k, ``k`` from :meth:`Kernel.setup`. The repulsion is differentiated with autograd in the
    first argument only.
    """
    m = theta.shape[0]
    theta = theta.detach()
    with torch.enable_grad():
        # first[l, k] = θ_k as a fresh leaf, so d/d first[l, k] of k(θ_k, θ_l) is ∇_{θ_k} k(θ_k, θ_l)
        first = theta.unsqueeze(0).expand(m, m, -1).clone().requires_grad_(True)
        kmat_t = k(first, theta.unsqueeze(1))  # [l, k] = k(θ_k, θ_l)
        (dk,) = torch.autograd.grad(kmat_t.sum(), first)
    return kmat_t.detach() @ grads, dk.sum(1)


def stein_force(k, theta, grads, repulsion_temperature=1.0, loss_temperature=1.0):
    """The SMI update direction (Rønning et al. 2024, eq. 9), with a loss temperature T:

    φ_l = (1/T) Σ_k k(θ_k, θ_l) ∇_{θ_k} L_k + (α / M) Σ_k ∇_{θ_k} k(θ_k, θ_l).

    T = 1 (the default) is the plain update; T > 1 is SVGD towards exp(L/T) instead of exp(L).
    ``theta`` ``(M, P)`` the particles, ``grads`` ``(M, P)`` row k = ∇_{θ_k} L_k, ``k`` from
    :meth:`Kernel.setup`, α = ``repulsion_temperature``, T = ``loss_temperature``. Returns φ
    ``(M, P)`` (the particles ascend it); see :func:`stein_force_terms`.
    """
    attraction, repulsion = stein_force_terms(k, theta, grads)
    return attraction / loss_temperature + repulsion_temperature / theta.shape[0] * repulsion
