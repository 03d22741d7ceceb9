"""Shared helpers of the benchmark scripts: resumable training of one configuration and a JSON
results file that is rewritten after every finished configuration."""

import json
import time
from pathlib import Path

import torch

from pyrozoo.evaluation import active_units, elbo_terms, log_likelihood
from pyrozoo.inference import TrainConfig, Trainer
from pyrozoo.diagnostics import psis_khat

from results_io import RESULTS, RUNS, load_results, save_results  # noqa: F401  (re-exported for the scripts)


def select_configs(parser, args, known):
    """The names in ``args.configs`` (comma-separated), refusing unknown ones through ``parser``;
    also applies ``args.threads`` to torch."""
    configs = args.configs.split(",")
    unknown = [c for c in configs if c not in known]
    if unknown:
        parser.error(f"unknown configurations {unknown}; choose from {', '.join(known)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    return configs


def train_resumable(model, dataset, config, run_dir, objective=None):
    """Train with :class:`Trainer`, continuing from ``run_dir/checkpoints/last.pt`` when a killed
    run left one; returns ``(trainer, seconds_per_epoch)`` with the best checkpoint loaded."""
    run_dir = Path(run_dir)
    trainer = Trainer(model, dataset, config, run_dir, objective=objective)
    if (run_dir / "checkpoints" / "last.pt").exists():
        trainer.resume()
    trainer.fit()
    seconds = [json.loads(line)["seconds"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    trainer.load_best()
    return trainer, sum(seconds) / max(len(seconds), 1)


@torch.no_grad()
def evaluate(model, dataset, num_samples, num_points=None):
    """Test metrics: importance-sampled log p(x) (S = ``num_samples``) on the first
    ``num_points`` test points (all by default), ELBO, KL, active units, PSIS k̂ (200 points)."""
    model.eval()
    test = dataset.test if num_points is None else dataset.test[:num_points]
    start = time.perf_counter()
    ll = log_likelihood(model, test, num_samples=num_samples)
    ll_seconds = time.perf_counter() - start
    terms = elbo_terms(model, dataset.test)
    au = active_units(model, dataset.test)
    khat = psis_khat(model, dataset.test[:200], num_samples=1000)
    return {"test_log_likelihood": ll.mean().item(), "log_likelihood_points": len(test),
            "log_likelihood_samples": num_samples, "log_likelihood_seconds": round(ll_seconds, 1),
            "test_elbo": terms["elbo"].mean().item(), "test_kl": terms["kl"].mean().item(),
            "test_reconstruction": terms["reconstruction"].mean().item(),
            "active_units": {k: v["count"] for k, v in au.items()},
            "psis_khat_mean": khat.mean().item(), "psis_khat_above_0.7": float((khat > 0.7).double().mean())}


def train_config(**kw):
    """A :class:`TrainConfig` from keyword arguments, ignoring ``None`` values."""
    return TrainConfig(**{k: v for k, v in kw.items() if v is not None})
