"""The classic family of Pavesi (2024), "Variational Auto Encoders" (lecture notes), §4, on dynamically binarised
MNIST at one budget.

Every family uses the same MLP 784-300-300 coders, z = 40, batch 100, Adam, KL warm-up and the
same number of epochs (no early stopping, the best validation checkpoint is evaluated):

    diagonal (``vae``), full covariance (``vae-fullcov``), planar flow (``vae-planar``, 10 layers),
    IAF (``vae-iaf``, 4 steps), IWAE training (``iwae``, K = 5), free bits (``vae-freebits``) and
    β-VAE (``beta-vae``, β = 4).

Metrics: test log p(x) by importance sampling, ELBO, KL, active units, PSIS k̂, seconds/epoch.

    python benchmarks/vae_family.py            # quick: 5 epochs, S = 100 on 1000 test points
    python benchmarks/vae_family.py --full     # 100 epochs, S = 5000 on all 10k test points
    python benchmarks/vae_family.py --epochs 50 --eval-samples 5000 --eval-points 2000   # what we ran here

Results go to ``benchmarks/results/vae_family[-quick].json`` after each family; a killed run
resumes from its checkpoints in ``benchmarks/runs/``.
"""

import argparse
import time

import torch

from pyrozoo import zoo

from common import RESULTS, start_results, result_of, save_results, train_run

FAMILIES = ("vae", "vae-iaf", "vae-planar", "vae-fullcov", "vae-freebits", "beta-vae", "iwae")


def run_family(preset, args):
    """Train and evaluate one family through the public API; returns its result dict."""
    recipe = zoo.recipe(preset)
    warmup = min(args.warmup, args.epochs) if recipe.defaults.get("warmup", 0) else 0
    start = time.perf_counter()
    run = train_run(preset, "mnist", "vae_family", f"{preset}-e{args.epochs}-s{args.seed}", z_dim=40,
                    hidden=[300, 300], epochs=args.epochs, batch_size=100, lr=args.lr, warmup=warmup,
                    patience=args.epochs, seed=args.seed, device=args.device, quiet=args.quiet,
                    data_dir=args.data_dir)
    report = run.evaluate(num_samples=args.eval_samples, num_points=args.eval_points, parts=("likelihood", "elbo"))
    o = run.config["options"]
    return {"preset": preset, "description": recipe.description, **result_of(run, report),
            "wall_seconds": round(time.perf_counter() - start, 1), "objective": o["objective"], "beta": o["beta"],
            "warmup": o["warmup"], "log_likelihood_samples": args.eval_samples}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="100 epochs, S = 5000 on the full test set")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--epochs", type=int)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-samples", type=int)
    p.add_argument("--eval-points", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    families = args.families.split(",")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        p.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    if args.full:
        args.epochs = args.epochs or 100
        args.eval_samples = args.eval_samples or 5000
    else:
        args.epochs = args.epochs or 5
        args.eval_samples = args.eval_samples or 100
        args.eval_points = args.eval_points or 1000
    out = args.out or RESULTS / ("vae_family.json" if args.full or args.epochs >= 50 else "vae_family-quick.json")
    setup = (f"dynamic MNIST, MLP 784-300-300, z=40, batch 100, Adam lr {args.lr}, warm-up "
             f"{args.warmup} epochs, {args.epochs} epochs, best validation checkpoint, log p(x) with "
             f"S={args.eval_samples} on {args.eval_points or 'all'} test points, torch threads "
             f"{torch.get_num_threads()}, device {args.device}")
    results = start_results(out, "families", setup)
    for preset in families:
        done = results["families"].get(preset)
        if done and done.get("epochs") == args.epochs and done.get("log_likelihood_samples") == args.eval_samples:
            print(f"{preset}: already done, skipping")
            continue
        result = run_family(preset, args)
        results["families"][preset] = result
        save_results(out, results)
        print(f"{preset}: log p(x) {result['test_log_likelihood']:.2f}, ELBO {result['test_elbo']:.2f}, "
              f"KL {result['test_kl']:.2f}, AU {result['active_units']}, {result['seconds_per_epoch']} s/epoch",
              flush=True)
    return results


if __name__ == "__main__":
    main()
