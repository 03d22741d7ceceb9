"""Softplus and the Bernoulli cross-entropy in a form that is fast on every CPU build.

Both are written with ``log1p`` in PyTorch (``F.softplus``, ``F.logsigmoid``,
``F.binary_cross_entropy_with_logits``), and the CPU build this project is measured on runs
``log1p`` element by element without vector instructions: on one thread a ``(100, 784)`` softplus
takes 850 µs while ``exp`` and ``log`` of the same tensor take 50 and 67 µs. The identity

    softplus(l) = log(1 + e^l) = max(l, 0) + log(1 + e^{−|l|})

needs only ``exp`` and ``log`` (137 µs on the same tensor). It is exact in real arithmetic; in
floating point ``1 + e^{−|l|}`` rounds where ``log1p`` would not, an absolute error below half a unit
in the last place of 1 (6e-8 in float32, 1e-16 in float64) per element. The cross-entropy is taken as
(max(l, 0) − x l) + log(1 + e^{−|l|}), the first bracket exact for binary x, so a confident correct
pixel (x = 1, l = 30) costs its true 1e-13 nats and not the rounding of l. The gradients are the exact
ones, σ(l) (and σ(l) − x for the cross-entropy), written as custom backward passes, so that l = 0
gets its gradient ½ and not the 0 that ``relu`` and ``abs`` would give there.

Summed over the last dimension, as a log-density needs it, :func:`softplus_sum` also works through
the tensor in blocks of 65 536 numbers that stay in the core's cache, in place: the S-sample chunks
of the importance-sampled log-likelihood (``(S, B, D)`` logits, tens of millions of numbers) go
6× faster than ``F.softplus(l).sum(-1)`` on one thread (490 → 77 ms for 500 × 100 × 784).

On CUDA the fused PyTorch kernels are used unchanged (one kernel each there).
"""

import torch
import torch.nn.functional as F


BLOCK_NUMEL = 1 << 16  # numbers per block of softplus_sum: 256 KB of float32, a core's L2 cache


def _log1p_exp_neg_abs(x):
    """log(1 + e^{−|x|}) as a new tensor, written in place."""
    return x.abs().neg_().exp_().add_(1.0).log_()


def _softplus_forward(x):
    """max(x, 0) + log(1 + e^{−|x|})."""
    return _log1p_exp_neg_abs(x).add_(torch.relu(x))


def _bce_forward(logits, target):
    """(max(l, 0) − x l) + log(1 + e^{−|l|}): the bracket first, exact for binary x."""
    return _log1p_exp_neg_abs(logits).add_(torch.relu(logits).sub_(logits * target))


class _Softplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _softplus_forward(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


class _BCEWithLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        return _bce_forward(logits, target)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_tensors
        grad_logits = grad * (torch.sigmoid(logits) - target) if ctx.needs_input_grad[0] else None
        grad_target = -grad * logits if ctx.needs_input_grad[1] else None
        return grad_logits, grad_target


def softplus(x):
    """log(1 + eˣ) elementwise, ``x`` of any shape; the same values as ``F.softplus`` up to float
    rounding and the exact gradient sigmoid(x) (see the module docstring for why it is not
    ``F.softplus`` on CPU)."""
    if x.device.type != "cpu":
        return F.softplus(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _Softplus.apply(x)
    return _softplus_forward(x)


def binary_cross_entropy_with_logits(logits, target):
    """−[x log σ(l) + (1 − x) log(1 − σ(l))] = softplus(l) − x l elementwise (no reduction) for
    ``logits`` l and ``target`` x of the same shape; gradient σ(l) − x in l. The same numbers as
    ``F.binary_cross_entropy_with_logits(..., reduction="none")``, about 4× faster forward and
    backward on this project's CPU build (module docstring)."""
    if logits.device.type != "cpu":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if torch.is_grad_enabled() and (logits.requires_grad or target.requires_grad):
        return _BCEWithLogits.apply(logits, target)
    return _bce_forward(logits, target)


def softplus_sum(x):
    """Σ_d softplus(x_d) over the last dimension: ``(..., D)`` -> ``(...)``. Without autograd on CPU it
    works through blocks of about :data:`BLOCK_NUMEL` numbers in place (module docstring); otherwise it
    is ``softplus(x).sum(-1)``."""
    if x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad) or x.dim() == 0:
        return softplus(x).sum(-1)
    rows = x.reshape(-1, x.shape[-1])
    out = torch.empty(rows.shape[0], dtype=x.dtype, device=x.device)
    step = max(1, BLOCK_NUMEL // max(1, rows.shape[1]))
    for i in range(0, rows.shape[0], step):
        torch.sum(_softplus_forward(rows[i:i + step]), -1, out=out[i:i + step])
    return out.reshape(x.shape[:-1])
