"""Argument and data checks shared by the metrics, diagnostics, models and the zoo.

Every public function of :mod:`pyrozoo.evaluation`, :mod:`pyrozoo.diagnostics` and
:mod:`pyrozoo.zoo` checks its arguments here before any work, so a bad value always gets the
same one-line ``ValueError`` naming the argument and what it accepts. Nothing is converted:
a float where a count is expected, a float64 tensor for a float32 model or data on another device
are refused with the conversion to make. Data against a model (shape, dtype, device, empty, NaN,
support) is checked by :meth:`pyrozoo.models.ZooModel.check_data`, which calls :func:`points`
and the likelihood's own check.

The checks are cheap: only :func:`finite` and :func:`rows` (``finite=True``) pass over the
values, once.

This module imports nothing from pyrozoo, so any layer may use it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def count(name: str, value, minimum: int = 1, why: str = "") -> int:
    """``value`` if it is an integer (Python or NumPy, not a bool) ``>= minimum``, else a
    ``ValueError`` naming ``name`` (``why`` says where the minimum comes from)."""
    reason = f" ({why})" if why else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}{reason}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}{reason}, got {value!r}")
    return int(value)


def counts(name: str, values, minimum: int = 1) -> tuple:
    """A non-empty sequence of integers ``>= minimum`` (as a tuple), else a ``ValueError``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of integers >= {minimum}, got {values!r}")
    return tuple(count(f"{name}[{i}]", v, minimum) for i, v in enumerate(values))


def number(name: str, value, minimum: float | None = None, positive: bool = False,
           maximum: float | None = None) -> float:
    """``value`` as a float if it is a finite real number (not a bool) in the range, else a
    ``ValueError``. ``minimum`` and ``maximum`` are inclusive; ``positive`` asks for ``> 0``."""
    bounds = (" > 0" if positive else "") + (f" >= {minimum:g}" if minimum is not None else "") + \
        (f" <= {maximum:g}" if maximum is not None else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    if (positive and not value > 0) or (minimum is not None and value < minimum) or \
            (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be{bounds}, got {value!r}")
    return float(value)


def shape(name: str, value) -> tuple:
    """An event shape: a non-empty sequence of positive integers (as a tuple), else a ``ValueError``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0 or \
            any(isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1 for s in value):
        raise ValueError(f"{name} must be a non-empty tuple of positive integers such as (1, 28, 28), got {value!r}")
    return tuple(int(s) for s in value)


def box(name: str, value) -> tuple:
    """A square's side ``(low, high)``: two finite numbers with ``high > low``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be (low, high), got {value!r}")
    low, high = number(f"{name}[0]", value[0]), number(f"{name}[1]", value[1])
    if not high > low:
        raise ValueError(f"{name} must have high > low, got {tuple(value)!r}")
    return low, high


def tensor(name: str, x, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` if it is a ``torch.Tensor``, else a ``ValueError`` saying how to make one."""
    if not torch.is_tensor(x):
        kind = type(x).__module__.split(".")[0] + "." + type(x).__name__ if type(x).__module__ != "builtins" \
            else type(x).__name__
        raise ValueError(f"{name} must be a torch.Tensor, got {kind}; convert with "
                         f"torch.as_tensor({name}, dtype={dtype or torch.float32})")
    return x


def points(x, event_shape, like: torch.Tensor | None = None, min_points: int = 1, name: str = "data",
           why: str = "", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Check data points ``x`` ``(N, *event_shape)`` without looking at their values.

    In order: a tensor; the dtype and device of ``like`` (a parameter of the model; without
    ``like``: ``dtype``, else any floating dtype); the shape (one point without its batch dim, or
    flattened points, are named as such); at least ``min_points`` points (``why`` says what needs
    them). Returns ``x``.
    """
    tensor(name, x, like.dtype if like is not None else dtype)
    if like is not None and x.device != like.device:
        raise ValueError(f"{name} is on {x.device} but the model is on {like.device}; move one of them, "
                         f"e.g. {name}.to('{like.device}')")
    if like is not None and x.dtype != like.dtype:
        model_side = f" or the model with model.to({x.dtype})" if x.dtype.is_floating_point else ""
        raise ValueError(f"{name} has dtype {x.dtype}, the model expects {like.dtype} (the dtype of its parameters); "
                         f"convert the data with {name}.to({like.dtype}){model_side}")
    if like is None and (x.dtype != dtype if dtype is not None else not x.dtype.is_floating_point):
        want = dtype or torch.float32
        raise ValueError(f"{name} has dtype {x.dtype}, {want} is needed; convert with {name}.to({want})")
    event_shape = tuple(event_shape)
    want = f"(N, {', '.join(map(str, event_shape))})"
    if tuple(x.shape[1:]) != event_shape:
        if tuple(x.shape) == event_shape:
            hint = f"; one point needs its batch dim: {name}.unsqueeze(0)"
        elif x.dim() == 2 and len(event_shape) > 1 and x.shape[1] == math.prod(event_shape):
            hint = f"; flattened points must be reshaped: {name}.reshape(-1, {', '.join(map(str, event_shape))})"
        else:
            hint = ""
        raise ValueError(f"{name} has shape {tuple(x.shape)}, expected {want}{hint}")
    if len(x) < min_points:
        need = f"at least {min_points} points" if min_points > 1 else "at least one point"
        raise ValueError(f"{name} has {len(x)} point{'s' if len(x) != 1 else ''} (shape {tuple(x.shape)}); "
                         f"{need} needed{': ' + why if why else ''}")
    return x


def finite(name: str, x) -> None:
    """Raise ``ValueError`` naming the first rows of ``x`` (tensor or array, ``(n, ...)``) that hold
    NaN or inf."""
    bad = ~torch.isfinite(x) if torch.is_tensor(x) else torch.from_numpy(~np.isfinite(np.asarray(x, dtype=float)))
    if bad.any():
        first = bad.reshape(len(bad), -1).any(1).nonzero()[:5].flatten().tolist()
        raise ValueError(f"{name} contains NaN or inf values (first rows: {first})")


def rows(name: str, x, columns: int | None = None, min_rows: int = 1, check_finite: bool = True) -> np.ndarray:
    """A matrix ``(n, d)`` (tensor or array-like) with ``n >= min_rows`` and, if given,
    ``d == columns``, as a float64 NumPy array; NaN or inf are refused when ``check_finite``."""
    a = x.detach().cpu().double().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or (columns is not None and a.shape[1] != columns) or len(a) < min_rows:
        want = f"(n, {columns if columns is not None else 'd'}) with n >= {min_rows}"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if check_finite:
        finite(name, a)
    return a


def labels(name: str, y, n: int) -> np.ndarray:
    """Integer class labels ``(n,)`` as a NumPy array, else a ``ValueError``."""
    a = y.detach().cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
    if a.ndim != 1 or len(a) != n or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be {n} integer labels (one per row), got shape {a.shape} and dtype {a.dtype}")
    return a
