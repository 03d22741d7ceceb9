"""The generative side of each paper (layer 3)."""

from pyrozoo.models.base import ZooModel
from pyrozoo.models.decoders import Decoder
from pyrozoo.models.plates import DATA_DIM, data_plate
from pyrozoo.models.stein_hyperprior import SteinHyperpriorVAE
from pyrozoo.models.vae import VAE

__all__ = ["ZooModel", "Decoder", "DATA_DIM", "data_plate", "VAE", "SteinHyperpriorVAE"]
