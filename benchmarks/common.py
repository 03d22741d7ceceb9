"""Shared helpers of the benchmark scripts, all on pyrozoo's public API: a resumable training
run per configuration and the JSON results file rewritten after every finished configuration."""

from pathlib import Path

import torch

import pyrozoo

from results_io import RESULTS, RUNS, load_results, save_entry, save_results, start_results  # noqa: F401 (re-exported)


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


def train_run(preset, dataset, folder, tag, **options):
    """``pyrozoo.train`` into ``benchmarks/runs/<folder>/<tag>`` without its report, continuing a
    run that a killed benchmark left (``resume="auto"``); returns the :class:`pyrozoo.Run`."""
    return pyrozoo.train(preset, dataset, out=Path(RUNS) / folder / tag, resume="auto", evaluate=False,
                         **{k: v for k, v in options.items() if v is not None})


def seconds_per_epoch(run, phase=None):
    """Mean training seconds per epoch (of one ``phase`` of a two-phase run) from its metrics."""
    rows = [m["seconds"] for m in run.metrics if phase is None or m.get("phase") == phase]
    return round(sum(rows) / len(rows), 2) if rows else None


def result_of(run, report):
    """One benchmark entry: the run's training summary, its seconds per epoch and ``report``."""
    keep = ("epochs", "best_epoch", "best_valid_elbo", "train_seconds", "iterations")
    return {**{k: run.summary[k] for k in keep if k in run.summary}, "seconds_per_epoch": seconds_per_epoch(run),
            "device": run.config["options"]["device"], **report}
