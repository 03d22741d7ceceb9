"""Evaluation over batches of points, shared out over the ranks of a distributed run.

:func:`map_batches` splits points into fixed batches, seeds the RNG of batch i from (seed, key,
i) and, under ``torch.distributed``, lets each rank compute its share of the batches before
gathering them in order: a metric computed on two ranks equals, bit for bit, the same metric in
one process (and two calls in one process agree with each other).
"""

from __future__ import annotations

from typing import Callable

import torch

from pyrozoo.inference import distributed


def map_batches(fn: Callable, x: torch.Tensor, batch_size: int, seed: int = 0, key: int = 0) -> list:
    """``[fn(x[i * batch_size:(i + 1) * batch_size]) for each batch i]``, each call with the RNG
    seeded from (``seed``, ``key``, i); in a distributed run each rank computes batches
    ``rank, rank + world, ...`` and every rank receives all results (on the CPU), in order."""
    starts = list(range(0, len(x), batch_size))
    results = {}
    for i in distributed.shard(len(starts)):
        distributed.seed_micro_batch(seed, -2, key, i)
        results[i] = fn(x[starts[i]:starts[i] + batch_size])
    merged = distributed.gather(results)
    return [merged[i] for i in range(len(starts))]


def cat(results: list, device) -> torch.Tensor:
    """Concatenate per-batch tensors onto ``device``."""
    return torch.cat([r.to(device) for r in results])
