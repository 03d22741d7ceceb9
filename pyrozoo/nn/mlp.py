"""Multi-layer perceptrons: plain and gated dense blocks."""

import torch
from torch import nn

from pyrozoo.nn.precision import autocast_forward

_ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}


class Gated(nn.Module):
    """``h(x) * sigmoid(g(x))`` for two layers ``h`` and ``g`` of equal output shape (gated linear
    units, Dauphin et al. 2017; Tomczak & Welling 2018, arXiv:1705.07120, §5.1). ``activation``
    (a module, optional) is applied to ``h(x)`` before gating."""

    def __init__(self, h, g, activation=None):
        super().__init__()
        self.h, self.g = h, g
        self.activation = activation

    def forward(self, x):
        h = self.h(x)
        if self.activation is not None:
            h = self.activation(h)
        return h * torch.sigmoid(self.g(x))


class GatedDense(Gated):
    """Gated dense layer: input ``(..., in_features)``, output ``(..., out_features)``."""

    def __init__(self, in_features, out_features, activation=None):
        super().__init__(nn.Linear(in_features, out_features), nn.Linear(in_features, out_features), activation)


class DenseStack(nn.Sequential):
    """``nn.Sequential`` of dense layers whose forward honours :func:`~pyrozoo.nn.precision.set_autocast`
    (bf16 while training, float32 out)."""

    @autocast_forward
    def forward(self, x):
        return super().forward(x)


class MLP(DenseStack):
    """A stack of dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Hidden layers use ``activation`` (a name from ``relu, elu, tanh, leaky_relu``) or, with
    ``gated=True``, :class:`GatedDense` blocks. The last layer is linear unless
    ``final_activation`` names one. Input ``(..., sizes[0])``, output ``(..., sizes[-1])``.
    """

    def __init__(self, sizes, activation="relu", gated=False, final_activation=None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"MLP needs at least two positive sizes, got {sizes}")
        for name in (activation, final_activation):
            if name is not None and name not in _ACTIVATIONS:
                raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}")
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            if last:
                layers.append(nn.Linear(a, b))
                if final_activation is not None:
                    layers.append(_ACTIVATIONS[final_activation]())
            elif gated:
                layers.append(GatedDense(a, b))
            else:
                layers += [nn.Linear(a, b), _ACTIVATIONS[activation]()]
        super().__init__(*layers)
        self.sizes = sizes


def he_init(module):
    """He-normal initialisation (He et al. 2015) of every ``nn.Linear`` weight in ``module``:
    N(0, 2 / fan_in). Biases and convolutions keep PyTorch's default initialisation.

    This is how the VampPrior authors initialise their networks (jmtomczak/vae_vampprior: ``he_init``
    of ``utils/nn.py`` applied to the ``nn.Linear`` modules of every model, convolutional ones
    included); the paper does not say. Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
    return module


def gated_mlp(sizes):
    """Gated dense layers all the way: ``sizes[0] -> ... -> sizes[-1]``, each ``h(x)·sigmoid(g(x))``.

    The VampPrior authors' MLP blocks (two gated layers of 300 units), He-initialised.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"gated_mlp needs at least two positive sizes, got {sizes}")
    return he_init(DenseStack(*[GatedDense(a, b) for a, b in zip(sizes[:-1], sizes[1:])]))
