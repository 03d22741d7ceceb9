"""The inference side (layer 3): encoders q(z|x), flows on q, and q over global latents."""

from pyrozoo.guides.encoders import GaussianEncoder, flatten_event

__all__ = ["GaussianEncoder", "flatten_event"]
