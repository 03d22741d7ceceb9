"""bf16 autocast of the MLP, convolutional, residual and PixelCNN coders while they train.

A network whose ``forward`` carries :func:`autocast_forward` runs under ``torch.autocast`` with the
dtype set by :func:`set_autocast` (convolutions and matrix products in bfloat16, accumulated in
float32 by the kernels) **only while autograd records**, and hands its output back in the dtype of its
parameters. Everything outside those networks stays in float32: the likelihoods, priors, KL terms and
the loss itself; and everything under ``torch.no_grad()`` runs in float32 as well, so validation
ELBOs, importance-sampled log-likelihoods, active units and k̂ never see bfloat16.

Measured (``benchmarks/autocast.py``, one thread of this project's AMD EPYC CPU with AVX-512 BF16): the ELBO
training step of ``convhvae-vampprior`` ran 2.02× faster, ``pixelhvae-vampprior`` 2.16× and the
Soft-IntroVAE residual coders (FashionMNIST, batch 128) 1.67×; for the MLP presets see the README's
table from the same benchmark. bfloat16 keeps float32's exponent range, so no loss scaling is needed
(unlike float16).

A model class may refuse the flag with a class attribute ``autocast_refused`` (a sentence saying
why): the R-VAE does, because its metric Jacobians and geodesic energies differentiate the decoder
and their accuracy under bfloat16 has not been checked.
"""

import functools

import torch
from torch import nn

#: accepted ``autocast`` names and their dtypes
AUTOCAST_DTYPES = {"bf16": torch.bfloat16}


def autocast_forward(forward):
    """Decorate a module's ``forward`` so that it runs under ``torch.autocast`` with the module's
    ``autocast_dtype`` (None: untouched) while gradients are recorded, and returns its tensor output
    cast back to the dtype of the module's first parameter."""

    @functools.wraps(forward)
    def wrapped(self, *args, **kwargs):
        dtype = getattr(self, "autocast_dtype", None)
        if dtype is None or not torch.is_grad_enabled():
            return forward(self, *args, **kwargs)
        param = next(self.parameters())
        capturing = param.is_cuda and torch.cuda.is_current_stream_capturing()  # a CUDA graph must not cache casts
        with torch.autocast(param.device.type, dtype=dtype, cache_enabled=not capturing):
            out = forward(self, *args, **kwargs)
        return out.to(param.dtype)

    wrapped.autocasts = True
    return wrapped


def autocast_modules(model: nn.Module) -> list:
    """The submodules of ``model`` whose ``forward`` honours :func:`set_autocast` (outermost only:
    a decorated network inside another is covered by it)."""
    found = []
    for name, module in model.named_modules():
        if getattr(type(module).forward, "autocasts", False) and not any(
                name.startswith(outer + ".") for outer, _ in found):
            found.append((name, module))
    return [m for _, m in found]


def set_autocast(model: nn.Module, name: str | None) -> int:
    """Train the MLP, convolutional, residual and PixelCNN networks of ``model`` under bf16 autocast
    (``name="bf16"``) or in full precision again (``name=None``); returns how many networks changed.

    Raises ``ValueError`` for an unknown ``name``, and for ``"bf16"`` when ``model`` has none of
    those networks or its class refuses it (``autocast_refused``)."""
    if name is not None and name not in AUTOCAST_DTYPES:
        raise ValueError(f"unknown autocast {name!r}; choose from {', '.join(AUTOCAST_DTYPES)} (or None: float32)")
    refused = getattr(type(model), "autocast_refused", None)
    if name is not None and refused:
        raise ValueError(f"autocast {name!r} is not offered for {type(model).__name__}: {refused}")
    modules = autocast_modules(model)
    if name is not None and not modules:
        raise ValueError(f"autocast {name!r} applies to MLP, convolutional, residual and PixelCNN coders, and "
                         f"{type(model).__name__} has none")
    for module in modules:
        module.autocast_dtype = None if name is None else AUTOCAST_DTYPES[name]
    return len(modules)
