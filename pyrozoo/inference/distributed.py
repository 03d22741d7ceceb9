"""Data-parallel training on ``torch.distributed``: the process group, ranks and collectives.

pyrozoo runs under ``torchrun`` (one process per CPU slot or GPU, gloo on CPU, nccl on CUDA) or
inside a process group the caller set up. :func:`setup` joins or creates the group from the
environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``); :func:`context` tells any layer which rank it is. Training strategies wrap the
loss in ``DistributedDataParallel`` (gradients averaged across ranks) or average gradients with
:func:`average_gradients`; evaluation shards test points with :func:`shard` and gathers with
:func:`gather`.

Every random draw of a training micro-batch comes from :func:`seed_micro_batch`, seeded by
(seed, epoch, step, micro-batch index): a run's numbers depend on the global batch and how it
splits into micro-batches, not on which process computes which micro-batch. Two ranks with
``batch_size = b`` therefore reproduce one process with ``batch_size = b`` and
``accumulate = 2`` exactly.
"""

from __future__ import annotations

import atexit
import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

#: Seconds a collective may wait for a rank that stopped answering before the run fails.
DEFAULT_TIMEOUT = 300

_CREATED = []  # the process group setup() created, if any (a caller's own group is never destroyed here)


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0


def context() -> Context:
    """The current rank and world size (a single process when no group is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return Context()


def launched() -> bool:
    """Whether ``torchrun`` (or an equivalent launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str = "cpu", timeout: float = DEFAULT_TIMEOUT) -> tuple:
    """Join the process group: keep one the caller initialised, else create one from the
    launcher's environment (gloo for ``cpu``, nccl for ``cuda``). Returns ``(context, device)``
    with ``cuda`` resolved to ``cuda:LOCAL_RANK`` on several ranks. A single process without a
    launcher gets ``Context()`` and its device unchanged. A group created here is destroyed by
    :func:`teardown` at interpreter exit at the latest; a caller's group stays the caller's."""
    if not (dist.is_available() and dist.is_initialized()):
        if not launched():
            return Context(), device
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
        _CREATED.append(dist.group.WORLD)
        atexit.register(teardown)  # a group pyrozoo created is pyrozoo's to close
    ctx = context()
    if device == "cuda" and ctx.distributed:
        device = f"cuda:{ctx.local_rank}"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    return ctx, device


def seed_micro_batch(seed: int, *keys: int):
    """Seed torch's RNGs (CPU and CUDA) from ``seed`` and integer ``keys`` (epoch, step, micro-batch
    index), so the draws of a micro-batch do not depend on the process that computes it."""
    value = int(seed) & 0xFFFFFFFF
    for key in keys:
        value = (value * 6364136223846793005 + int(key) + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    torch.manual_seed(value >> 1)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over ranks (``value`` itself in a single process)."""
    ctx = context()
    if not ctx.distributed:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / ctx.world_size


def all_reduce_sum(values: list) -> list:
    """Element-wise sums over ranks of a list of floats (the list itself in a single process)."""
    ctx = context()
    if not ctx.distributed:
        return list(values)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def average_gradients(parameters):
    """Average the ``.grad`` of ``parameters`` over ranks in one flattened all-reduce. Parameters
    without a gradient keep none (every rank runs the same code, so the same ones have one)."""
    ctx = context()
    if not ctx.distributed:
        return
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    start = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[start:start + n].view_as(p.grad))
        start += n


def broadcast_module(module: torch.nn.Module, src: int = 0):
    """Copy every parameter and buffer of ``module`` from rank ``src`` to all ranks."""
    if not context().distributed:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank (a picklable Python object)."""
    if not context().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]


def shard(num_items: int) -> range:
    """The indices of ``num_items`` work items (e.g. evaluation batches) this rank handles:
    items ``rank, rank + world, ...``."""
    ctx = context()
    return range(ctx.rank, num_items, ctx.world_size)


def gather(results: dict) -> dict:
    """Merge ``{item index: value}`` dicts of every rank (each rank's :func:`shard`) into one dict on
    every rank; values are moved to the CPU for the exchange."""
    ctx = context()
    if not ctx.distributed:
        return dict(results)
    local = {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in results.items()}
    parts = [None] * ctx.world_size
    dist.all_gather_object(parts, local)
    merged = {}
    for part in parts:
        merged.update(part)
    return merged


def barrier():
    """Wait for every rank (nothing in a single process)."""
    if context().distributed:
        dist.barrier()


def teardown():
    """Destroy the process group :func:`setup` created, if it is still initialised (a group the
    caller initialised is left alone).

    Call it once no rank needs a collective any more (the command line does, after every
    command); :func:`setup` also registers it to run at interpreter exit. Without it gloo's worker
    threads outlive the interpreter and a rank can abort at exit ("terminate called without an
    active exception") after its work completed.

    ``destroy_process_group`` only drops the registry's reference: a ``DistributedDataParallel``
    wrapper still reachable from a reference cycle (a training strategy in a cycle, as in the Stein
    regime of tests/dist_worker.py) keeps the group, which would then be released during
    interpreter finalisation, where releasing gloo's pending work is known to abort a process
    (it needs the GIL). So the cycles are collected here, while the interpreter is alive."""
    if _CREATED and dist.is_available() and dist.is_initialized():
        _CREATED.clear()
        dist.destroy_process_group()
        gc.collect()
