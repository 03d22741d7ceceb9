"""Seconds per training epoch with and without ``cuda_graph`` (one captured SVI step replayed),
for the VampPrior presets of Tomczak & Welling (2018), "VAE with a VampPrior", arXiv:1705.07120,
at their §5.1 settings (dynamic MNIST, batch 100, K = 500, normalised-gradient Adam 5e-4, warm-up
100), side by side in one process:

    python benchmarks/cuda_graph.py                      # needs a CUDA device
    python benchmarks/cuda_graph.py --epochs 3 --presets vampprior

Each (preset, mode) trains ``--epochs`` epochs from the same seed; the row keeps the seconds of
every epoch (the first includes the capture) and the validation ELBO after each, which must agree
between the modes up to rounding. Results: ``benchmarks/results/cuda-graph.json``.
"""

import argparse
import tempfile

import torch

import pyrozoo

from common import RESULTS, save_entry

PRESETS = ("vampprior", "hvae")


def time_mode(preset, graph, args, out):
    """Train ``preset`` (VampPrior prior) for ``args.epochs`` epochs; returns its row."""
    run = pyrozoo.train(preset, args.dataset, out=out, prior="vampprior", epochs=args.epochs, warmup=100,
                        batch_size=100, lr=5e-4, normalize_gradients=True, num_components=500, device="cuda",
                        cuda_graph=graph, evaluate=False, quiet=True, seed=args.seed, data_dir=args.data_dir)
    seconds = [m["seconds"] for m in run.metrics]
    return {"seconds_per_epoch": seconds, "valid_elbo": [m["valid_elbo"] for m in run.metrics],
            "steady_seconds_per_epoch": round(min(seconds[1:] or seconds), 4)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--out", default=str(RESULTS / "cuda-graph.json"))
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        p.error("needs a CUDA device (cuda_graph captures CUDA work only)")
    setup = (f"{args.dataset} (dynamic binarisation), VampPrior K=500, batch 100, normalised-gradient Adam 5e-4, "
             f"warm-up 100, {args.epochs} epochs, seed {args.seed}, {torch.cuda.get_device_name()}")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            row = {mode: time_mode(preset, mode == "graph", args, f"{tmp}/{preset}-{mode}")
                   for mode in ("eager", "graph")}
            row["speed-up"] = round(row["eager"]["steady_seconds_per_epoch"]
                                    / row["graph"]["steady_seconds_per_epoch"], 2)
            save_entry(args.out, "presets", f"{preset}-vampprior", row, setup=setup)
            print(f"{preset}-vampprior: eager {row['eager']['steady_seconds_per_epoch']} s/epoch, graph "
                  f"{row['graph']['steady_seconds_per_epoch']} s/epoch ({row['speed-up']}x)", flush=True)


if __name__ == "__main__":
    main()
