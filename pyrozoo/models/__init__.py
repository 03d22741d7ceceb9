"""The generative side of each paper (layer 3)."""

from pyrozoo.models.base import ZooModel
from pyrozoo.models.decoders import Decoder
from pyrozoo.models.plates import DATA_DIM, data_plate
from pyrozoo.models.stein_hyperprior import SteinHyperpriorVAE
from pyrozoo.models.vae import VAE

from pyrozoo.models.hvae import HVAE, JointDecoder
from pyrozoo.models.pixel_decoder import PixelDecoder
from pyrozoo.models.rvae import GaussianImmersion, RiemannianVAE
from pyrozoo.models.seqvae import LSTMDecoder, SequenceVAE, seq_vae

__all__ = ["HVAE", "JointDecoder", "PixelDecoder", "GaussianImmersion", "RiemannianVAE", "LSTMDecoder", "SequenceVAE",
           "seq_vae", "ZooModel", "Decoder", "DATA_DIM", "data_plate", "VAE", "SteinHyperpriorVAE"]
