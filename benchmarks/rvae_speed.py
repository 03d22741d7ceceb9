"""Table 6 of Kalatzis et al. (2020), "Variational Autoencoders with Riemannian Brownian Motion Priors",
arXiv:2002.05227: the cost of a phase-two training step of the R-VAE against the VAE baseline, measured side by
side in one process on the same batches.

``benchmarks/rvae.py`` reports each run's own seconds per epoch, but the runs train at different times beside
different jobs; this script takes the trained runs it left (``benchmarks/runs/rvae``) and times, interleaved,
one phase-two step (the ELBO with β = 1, its backward through the variance network and the prior, the phase-one
networks frozen, and Adam's update of the phase-two parameters) of ``vae-rbf``, of the ``rvae`` with its geodesic
l² and of the same ``rvae`` with the local l², on ``--rounds`` batches of 100 training images. Results:
``benchmarks/results/rvae_speed.json``; ``python benchmarks/report.py`` prints them.

    python benchmarks/rvae_speed.py --threads 1
"""

import argparse
import statistics
import time

import torch

import pyrozoo
from pyrozoo.inference import ELBO
from pyrozoo.inference.svi import ObjectiveLoss

from common import RESULTS, RUNS, save_entry

PAPER_RATIO = {2: 5.2, 5: 5.4, 10: 5.4}  # Table 6: R-VAE / VAE seconds per epoch on the authors' GPU


def _phase_two(run_dir):
    """The trained model of ``run_dir`` with its phase-one parameters frozen, as phase two trains it,
    its loss module and an Adam optimiser of its phase-two parameters."""
    run = pyrozoo.load(run_dir)
    model = run.model.train()
    for p in model.phase_parameters(1):
        p.requires_grad_(False)
    return run, model, ObjectiveLoss(model, ELBO()), torch.optim.Adam(model.phase_parameters(2), lr=1e-3)


def _set_distance(model, distance):
    for part in (model.prior, getattr(model, "encoder", None)):
        if part is not None and "distance" in getattr(part, "options", {}):
            part.options["distance"] = distance


def _step_seconds(loss, optimizer, x, n):
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss(x, n, 1.0).backward()
    optimizer.step()
    return time.perf_counter() - start


def time_pair(dataset, d, args):
    """Median seconds of a phase-two step of vae-rbf and of the rvae (geodesic, local) at latent size ``d``."""
    runs = {"vae-rbf": RUNS / "rvae" / f"{dataset}-vae-rbf-d{d}-p5_5-s0",
            "rvae": RUNS / "rvae" / f"{dataset}-rvae-d{d}-p5_5-s0-geodesic"}
    if not all((r / "summary.json").exists() for r in runs.values()):
        return None
    vae_run, _, vae_loss, vae_opt = _phase_two(runs["vae-rbf"])
    _, rvae, rvae_loss, rvae_opt = _phase_two(runs["rvae"])
    train = vae_run.dataset.train
    n = len(train)
    gen = torch.Generator().manual_seed(0)
    times = {"vae-rbf": [], "rvae-geodesic": [], "rvae-local": []}
    for r in range(args.rounds):
        x = train[torch.randint(n, (args.batch_size,), generator=gen)]
        torch.manual_seed(r)
        times["vae-rbf"].append(_step_seconds(vae_loss, vae_opt, x, n))
        for distance in ("geodesic", "local"):
            _set_distance(rvae, distance)
            torch.manual_seed(r)
            times[f"rvae-{distance}"].append(_step_seconds(rvae_loss, rvae_opt, x, n))
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"median_step_seconds": {k: round(v, 4) for k, v in median.items()},
            "ratio_geodesic": round(median["rvae-geodesic"] / median["vae-rbf"], 1),
            "ratio_local": round(median["rvae-local"] / median["vae-rbf"], 1),
            "paper_ratio": PAPER_RATIO.get(d), "rounds": args.rounds}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="mnist,fashion-mnist")
    p.add_argument("--dims", default="2,5,10")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = RESULTS / "rvae_speed.json"
    setup = (f"phase-two step (ELBO at beta 1, its backward with the phase-one networks frozen, Adam) of the "
             f"trained 5 + 5-epoch runs of benchmarks/rvae.py, batch {args.batch_size}, median of {args.rounds} "
             f"interleaved rounds, threads {torch.get_num_threads()}, device cpu")
    for dataset in args.datasets.split(","):
        for d in map(int, args.dims.split(",")):
            row = time_pair(dataset, d, args)
            if row is None:
                print(f"{dataset} d={d}: runs not finished, skipped")
                continue
            save_entry(out, "pairs", f"{dataset}/d{d}", row, setup=setup)
            print(f"{dataset} d={d}: R-VAE / VAE step {row['ratio_geodesic']}x geodesic, {row['ratio_local']}x "
                  f"local (paper {row['paper_ratio']}x); {row['median_step_seconds']}", flush=True)


if __name__ == "__main__":
    main()
