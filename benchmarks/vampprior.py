"""Table 1 of Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120 (dynamic MNIST rows), and
the same configurations on FashionMNIST.

Configurations (all with the authors' gated MLPs of 300 units, z = z1 = z2 = 40, K = 500):
VAE (L=1) with the standard prior and with the VampPrior; HVAE (L=2) with the standard prior,
a mixture of Gaussians, VampPrior-data and the VampPrior. Every configuration gets the same
budget, set by flags:

    python benchmarks/vampprior.py --full          # the paper's §5.1: up to 2000 epochs, warm-up 100,
                                                   # early stopping look-ahead 50, normalised-gradient Adam 5e-4
    python benchmarks/vampprior.py                 # documented short budget: 50 epochs, warm-up 20
    python benchmarks/vampprior.py --epochs 5 --eval-samples 100 --eval-points 500 --configs vae-standard

Test log p(x) by importance sampling with S = 5000 in chunks of 100 (§5.2) on all test points
(``--eval-points`` to subsample), plus ELBO, KL, active units per latent level and PSIS k̂.
Results go to ``benchmarks/results/vampprior-<dataset>.json`` after each configuration; a killed
run resumes from ``benchmarks/runs/``, its training from the last epoch's checkpoint and its S = 5000
log p(x) (13-68 minutes on one CPU core for the MNIST rows) from the last finished batch
of 100 test points.
"""

import argparse
import time

import torch

from pyrozoo.data import load

from common import RESULTS, load_results, result_of, save_entry, select_configs, train_run

CONFIGS = {"vae-standard": ("vampprior", "standard"), "vae-vampprior": ("vampprior", "vampprior"),
           "hvae-standard": ("hvae", "standard"), "hvae-mog": ("hvae", "mog"),
           "hvae-vampprior-data": ("hvae", "vampprior-data"), "hvae-vampprior": ("hvae", "vampprior")}
PAPER_DYNAMIC_MNIST = {"vae-standard": -84.50, "vae-vampprior": -82.38, "hvae-standard": -82.42,
                       "hvae-vampprior-data": -81.71, "hvae-vampprior": -81.24}


def run_config(name, dataset, args):
    """Train and evaluate one configuration through the public API; returns its result dict."""
    preset, prior = CONFIGS[name]
    start = time.perf_counter()
    run = train_run(preset, dataset, "vampprior", f"{dataset}-{name}-e{args.epochs}-w{args.warmup}-s{args.seed}",
                    prior=prior, num_components=args.pseudo_inputs, epochs=args.epochs, batch_size=100, lr=args.lr,
                    warmup=args.warmup, patience=args.patience, normalize_gradients=args.normalize_gradients,
                    seed=args.seed, device=args.device, quiet=args.quiet, data_dir=args.data_dir,
                    time_limit=args.time_limit, cuda_graph=args.cuda_graph or None)
    report = run.evaluate(num_samples=args.eval_samples, num_points=args.eval_points, parts=("likelihood", "elbo"))
    result = {"preset": preset, "prior": prior, **result_of(run, report),
              "kl_schedule": run.config["options"]["kl_schedule"],  # rows before it warmed up per step ("linear")
              "stopped_by_time_limit": run.summary.get("stopped_by_time_limit", False),
              "wall_seconds": round(time.perf_counter() - start, 1)}
    if dataset == "mnist" and name in PAPER_DYNAMIC_MNIST:
        result["paper_test_log_likelihood"] = PAPER_DYNAMIC_MNIST[name]
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="the paper's budget (§5.1)")
    p.add_argument("--datasets", default="mnist,fashion-mnist")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--epochs", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--pseudo-inputs", type=int, default=500)
    p.add_argument("--no-normalize-gradients", dest="normalize_gradients", action="store_false")
    p.add_argument("--eval-samples", type=int, default=5000)
    p.add_argument("--eval-points", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop each configuration's training after this many minutes (at an epoch's end) and score "
                        "its best weights; the row records stopped_by_time_limit")
    p.add_argument("--cuda-graph", action="store_true", help="replay each training step from a CUDA graph")
    p.add_argument("--results", help="results file name in benchmarks/results (default vampprior-<dataset>.json)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--redo", action="store_true",
                   help="train and score a configuration again even when its row has this budget (e.g. a row "
                        "measured before the presets' defaults changed)")
    args = p.parse_args(argv)
    configs = select_configs(p, args, CONFIGS)
    full = (2000, 100, 50) if args.full else (50, 20, 50)
    args.epochs = args.epochs or full[0]
    args.warmup = args.warmup if args.warmup is not None else full[1]
    args.patience = args.patience or full[2]
    for name in args.datasets.split(","):
        data = load(name, data_dir=args.data_dir)  # only to name the results file (aliases resolved)
        out = RESULTS / (args.results or f"vampprior-{data.name}.json")
        done_configs = load_results(out).get("configs", {})
        setup = (f"{data.name} (dynamic binarisation), gated MLPs 300 units, z=40, K={args.pseudo_inputs}, "
                 f"batch 100, Adam {args.lr}{' with normalised gradients' if args.normalize_gradients else ''}"
                 f", warm-up {args.warmup}, {args.epochs} epochs max, early-stopping look-ahead "
                 f"{args.patience}, log p(x) S={args.eval_samples} on {args.eval_points or 'all'} test "
                 f"points, threads {torch.get_num_threads()}, device {args.device}"
                 f"{', CUDA graph' if args.cuda_graph else ''}"
                 f"{f', training capped at {args.time_limit} min' if args.time_limit else ''}")
        for config in configs:
            done = done_configs.get(config)
            if done and done.get("budget") == [args.epochs, args.warmup, args.eval_samples] and not args.redo:
                print(f"{data.name} {config}: already done, skipping")
                continue
            result = run_config(config, data.name, args)
            result["budget"] = [args.epochs, args.warmup, args.eval_samples]
            save_entry(out, "configs", config, result, setup=setup)
            print(f"{data.name} {config}: log p(x) {result['test_log_likelihood']:.2f} "
                  f"(paper {result.get('paper_test_log_likelihood', 'n/a')}), ELBO {result['test_elbo']:.2f}, "
                  f"AU {result['active_units']}, {result['seconds_per_epoch']} s/epoch", flush=True)


if __name__ == "__main__":
    main()
