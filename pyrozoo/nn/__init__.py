"""Plain ``torch.nn`` building blocks (layer 1)."""

from pyrozoo.nn.mlp import MLP, GatedDense, he_init

__all__ = ["MLP", "GatedDense", "he_init"]
