"""The RNG states a checkpoint carries (torch CPU and CUDA, Python, NumPy), as objects that
``torch.load(..., weights_only=True)`` accepts. Writing and reading checkpoints: :mod:`pyrozoo.inference.rundir`."""

import random

import numpy as np
import torch


def rng_state():
    """The torch (CPU and CUDA), Python and NumPy RNG states as weights-only-loadable objects."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_plain, np_state[2:])]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def set_rng_state(state):
    """Restore the states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(_tuplify(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _tuplify(v):
    return tuple(_tuplify(x) for x in v) if isinstance(v, (list, tuple)) else v
