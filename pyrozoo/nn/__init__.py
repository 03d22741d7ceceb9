"""Plain ``torch.nn`` building blocks (layer 1)."""

from pyrozoo.nn.conv import ConvDecoderNet, ConvEncoderNet, GatedConv2d
from pyrozoo.nn.film import FiLM
from pyrozoo.nn.lstm import LSTMFeatures
from pyrozoo.nn.mlp import MLP, GatedDense, gated_mlp, he_init
from pyrozoo.nn.pixelcnn import MaskedConv2d, PixelCNNDecoderNet
from pyrozoo.nn.precision import AUTOCAST_DTYPES, autocast_forward, autocast_modules, set_autocast
from pyrozoo.nn.rbf import RBFPrecision, kmeans_centres, rbf_precision_net

from pyrozoo.nn.conv import as_image_batch
from pyrozoo.nn.pixelcnn import GatedMaskedConv2d, autoregressive_sample
from pyrozoo.nn.residual import ResidualBlock, ResidualDecoderNet, ResidualEncoderNet

__all__ = ["as_image_batch", "GatedMaskedConv2d", "autoregressive_sample", "ResidualBlock", "ResidualDecoderNet",
           "ResidualEncoderNet", "ConvDecoderNet", "ConvEncoderNet", "GatedConv2d", "MaskedConv2d",
           "PixelCNNDecoderNet", "LSTMFeatures", "MLP", "GatedDense", "gated_mlp", "he_init", "RBFPrecision",
           "kmeans_centres", "rbf_precision_net", "FiLM", "AUTOCAST_DTYPES", "autocast_forward",
           "autocast_modules", "set_autocast"]
