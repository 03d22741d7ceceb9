"""Evaluation over batches of points, shared out over the ranks of a distributed run.

:func:`map_batches` splits points into fixed batches, seeds the RNG of batch i from (seed, key,
i) and, under ``torch.distributed``, lets each rank compute its share of the batches before
gathering them in order: a metric computed on two ranks equals, bit for bit, the same metric in
one process (and two calls in one process agree with each other). Given a ``store`` file it keeps
each finished batch there, so that a long evaluation (S = 5000 importance samples on 10,000 test
points took 12-68 minutes on one CPU core for the VampPrior benchmark's configurations) that is killed
resumes where it stopped, with the same result.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable

import torch

from pyrozoo.inference import distributed


def map_batches(fn: Callable, x: torch.Tensor, batch_size: int, seed: int = 0, key: int = 0, store=None,
                tag: str = "", on_resume: Callable[[int], None] | None = None) -> list:
    """``[fn(x[i * batch_size:(i + 1) * batch_size]) for each batch i]``, each call with the RNG
    seeded from (``seed``, ``key``, i); in a distributed run each rank computes batches
    ``rank, rank + world, ...`` and every rank receives all results (on the CPU), in order.

    ``store``: a file (rank r > 0 of a distributed run appends ``.r{r}``) where each finished batch is
    written as it comes; a later call with the same ``tag`` (a :func:`fingerprint` of what determines
    the results: the model's weights, the points, the settings of ``fn``) and the same ``batch_size``,
    ``seed`` and ``key`` takes those batches from it instead of computing them again, and calls
    ``on_resume(count)`` with their number. Because batch i's RNG is seeded from (seed, key, i) alone,
    the resumed result equals an uninterrupted one. A file with another tag is from other work and is
    overwritten; the file is removed once every batch of this rank is done.
    """
    starts = list(range(0, len(x), batch_size))
    mine = distributed.shard(len(starts))
    path = _rank_path(store)
    tag = f"{tag}|batch {batch_size}|seed {seed}|key {key}|points {len(x)}"
    results = _load(path, tag) if path is not None else {}
    results = {i: v for i, v in results.items() if i in mine}
    if results and on_resume is not None:
        on_resume(len(results))
    for i in mine:
        if i in results:
            continue
        distributed.seed_micro_batch(seed, -2, key, i)
        results[i] = fn(x[starts[i]:starts[i] + batch_size])
        if path is not None:
            _save(path, tag, results)
    if path is not None:
        path.unlink(missing_ok=True)
    merged = distributed.gather(results)
    return [merged[i] for i in range(len(starts))]


def cat(results: list, device) -> torch.Tensor:
    """Concatenate per-batch tensors onto ``device``."""
    return torch.cat([r.to(device) for r in results])


def fingerprint(*parts) -> str:
    """A SHA-1 hex digest of ``parts``: tensors by dtype, shape and bytes; modules by their
    ``state_dict`` (names and tensors) and the settings of every submodule (``_settings``:
    e.g. the R-VAE prior's ``distance``, which changes log p(x) without changing a weight);
    anything else by ``repr``. Identifies the work a :func:`map_batches` ``store`` belongs to."""
    digest = hashlib.sha1()

    def add(part):
        if isinstance(part, torch.nn.Module):
            for name, tensor in part.state_dict().items():
                digest.update(name.encode())
                add(tensor)
            digest.update(repr(_settings(part)).encode())
        elif torch.is_tensor(part):
            t = part.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            digest.update(repr(part).encode())

    for part in parts:
        add(part)
    return digest.hexdigest()


_PLAIN = (type(None), bool, int, float, str)


def _plain(value) -> bool:
    """Whether ``value`` is a setting: None, a bool, number or string, or a tuple, list or dict of them."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _settings(module: torch.nn.Module) -> list:
    """``[(submodule name, class name, sorted public plain attributes)]`` for ``module`` and every
    submodule: the configuration that, beside the weights, decides what the module computes."""
    out = []
    for name, sub in module.named_modules():
        attrs = sorted((k, sorted(v.items()) if isinstance(v, dict) else v) for k, v in vars(sub).items()
                       if not k.startswith("_") and _plain(v))
        out.append((name, type(sub).__qualname__, attrs))
    return out


def _rank_path(store) -> Path | None:
    if store is None:
        return None
    rank = distributed.context().rank
    path = Path(store)
    return path if rank == 0 else path.with_name(f"{path.name}.r{rank}")


def _load(path: Path, tag: str) -> dict:
    """The finished batches kept in ``path`` for ``tag`` (none when the file is absent, another tag's or
    unreadable; an unreadable one is reported with a warning and later overwritten)."""
    if not path.exists():
        return {}
    try:
        kept = torch.load(path, map_location="cpu", weights_only=True)
        return dict(kept["results"]) if kept.get("tag") == tag else {}
    except Exception as err:  # a truncated or foreign file: start the batches afresh
        warnings.warn(f"ignoring unreadable evaluation store {path} ({type(err).__name__}); computing every batch",
                      stacklevel=3)
        return {}


def _save(path: Path, tag: str, results: dict) -> None:
    """Write ``results`` (moved to the CPU) to ``path`` atomically: a temporary file, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    cpu = {i: (v.cpu() if torch.is_tensor(v) else v) for i, v in results.items()}
    try:
        torch.save({"tag": tag, "results": cpu}, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
