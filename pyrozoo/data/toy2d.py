"""The four 2D toy sets of the Soft-IntroVAE density benchmark (§5.1) of Athanasiadis, Lindsten & Felsberg (2025),
"Prior Learning in Introspective VAEs", TMLR, arXiv:2408.13805.

Each generator returns a ``(n, 2)`` float tensor. Randomness comes from ``generator`` (a
``torch.Generator``) or the global torch RNG.
"""

import math

import torch

#: Evaluation box ``(low, high)`` per data set; the box is ``[low, high]^2``.
BOXES = {"8gaussians": (-2.0, 2.0), "2spirals": (-4.0, 4.0), "checkerboard": (-4.0, 4.0), "rings": (-4.0, 4.0)}


def eight_gaussians(n, generator=None):
    """Centres 2·(±1,0), 2·(0,±1), 2·(±1/√2,±1/√2); noise N(0, 0.02²); the batch divided by 1.414."""
    s = 1.0 / math.sqrt(2.0)
    centres = 2.0 * torch.tensor([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    idx = torch.randint(0, 8, (n,), generator=generator)
    points = centres[idx] + 0.02 * torch.randn(n, 2, generator=generator)
    return points / 1.414


def two_spirals(n, generator=None):
    """n' = sqrt(U)·540·2π/360; d1 = (−cos(n')·n' + 0.5·U, sin(n')·n' + 0.5·U); points ±d1, /3, + N(0, 0.1²).

    Half of the points come from each arm; ``n`` must be even.
    """
    if n % 2:
        raise ValueError(f"2spirals needs an even number of points, got {n}")
    half = n // 2
    u = torch.rand(half, 1, generator=generator)
    t = torch.sqrt(u) * 540 * (2 * math.pi) / 360
    d1x = -torch.cos(t) * t + torch.rand(half, 1, generator=generator) * 0.5
    d1y = torch.sin(t) * t + torch.rand(half, 1, generator=generator) * 0.5
    arm = torch.cat([d1x, d1y], dim=1)
    points = torch.cat([arm, -arm], dim=0) / 3.0
    return points + 0.1 * torch.randn(n, 2, generator=generator)


def checkerboard(n, generator=None):
    """x1 = 4U − 2; x2 = U − 2·randint{0,1} + (floor(x1) mod 2); the point is 2·(x1, x2)."""
    x1 = torch.rand(n, generator=generator) * 4 - 2
    x2 = torch.rand(n, generator=generator) - 2 * torch.randint(0, 2, (n,), generator=generator).float()
    x2 = x2 + torch.floor(x1) % 2
    return 2.0 * torch.stack([x1, x2], dim=1)


def rings(n, generator=None):
    """Circles of radius 1, .75, .5, .25 with equally spaced angles, times 3; resampled with
    replacement, plus N(0, 0.08²)."""
    per = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)]
    circles = []
    for radius, m in zip((1.0, 0.75, 0.5, 0.25), per):
        angle = torch.linspace(0, 2 * math.pi, m + 1)[:-1]
        circles.append(radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1))
    points = 3.0 * torch.cat(circles, dim=0)
    idx = torch.randint(0, n, (n,), generator=generator)
    return points[idx] + 0.08 * torch.randn(n, 2, generator=generator)


GENERATORS = {"8gaussians": eight_gaussians, "2spirals": two_spirals, "checkerboard": checkerboard, "rings": rings}


def sample_toy(name, n, generator=None):
    """Draw ``n`` points of the named 2D set; raises ``ValueError`` for an unknown name."""
    if name not in GENERATORS:
        raise ValueError(f"unknown 2D data set {name!r}; choose from {sorted(GENERATORS)}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    return GENERATORS[name](int(n), generator=generator)
