"""pyrozoo: a Pyro model zoo of variational autoencoders with learned priors.

Layers (lower never imports higher): ``nn``/``data`` -> ``distributions``/``geometry`` ->
``models``/``guides`` -> ``inference`` -> ``evaluation``/``diagnostics``/``plots`` -> ``zoo``/``cli``.
"""

__version__ = "0.1.0"
