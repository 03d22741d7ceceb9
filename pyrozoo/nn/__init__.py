"""Plain ``torch.nn`` building blocks (layer 1)."""

from pyrozoo.nn.lstm import LSTMFeatures
from pyrozoo.nn.mlp import MLP, GatedDense, gated_mlp, he_init

__all__ = ["LSTMFeatures", "MLP", "GatedDense", "gated_mlp", "he_init"]
