"""Cost of the R-VAE's geodesic heat-kernel distance against the local approximation (one thread, CPU).

Kalatzis, Eklund, Arvanitidis & Hauberg (2020), "Variational Autoencoders with Riemannian Brownian Motion Priors",
arXiv:2002.05227, §3.1 / eq. 3.3: l² is the squared geodesic distance (``--distance geodesic``, the rvae
default, found by curve-energy minimisation, Appendix B); ``--distance local`` uses (z − μ)ᵀ G(μ) (z − μ).
Geodesics cost only in phase two (phase one is an autoencoder, no density of z is evaluated), so this trains the rvae
(ELU 300-300, 350 RBF centres, batch 100) on the first ``--train`` MNIST images for the same phase one with each
distance and times the phase-two epochs. It also checks the preset solver (:data:`pyrozoo.geometry.GEODESIC_SOLVER`,
at most 10 L-BFGS steps) against a 60-step solve on the trained model. Results: ``benchmarks/results/
rvae_distance.json``, rewritten after each configuration; a rerun skips the finished ones.

    nice -n 10 python benchmarks/rvae_distance.py --threads 1
"""

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import RESULTS, save_results, start_results  # noqa: E402

from pyrozoo import zoo  # noqa: E402
from pyrozoo.data import load  # noqa: E402
from pyrozoo.geometry import GEODESIC_SOLVER, fit_geodesic  # noqa: E402
from pyrozoo.inference import TrainConfig, TrainingLoop, TwoPhaseStrategy  # noqa: E402


def subset(data, n_train, n_eval):
    """``data`` with its first ``n_train`` training and ``n_eval`` validation and test images (no labels)."""
    return dataclasses.replace(data, train=data.train[:n_train], valid=data.valid[:n_eval], test=data.test[:n_eval],
                               labels={})


def solver_gap(model, x):
    """Relative gap of the preset solver's l² to a 60-step L-BFGS solve, for the prior's curves from its centre to
    the codes of ``x`` ``(B, ...)``: ``{"max": ..., "median": ..., "local_over_geodesic": [min, max]}``."""
    dec = model.decoder
    with torch.no_grad():
        z = model.encoder(x).mu
    mu = model.prior.loc.detach().expand_as(z)
    kw = dict(GEODESIC_SOLVER, rule="chord", immersion=dec.immersion, differentiable=False)
    fast = fit_geodesic(dec.metric_fn, mu, z, **kw).sq_length
    slow = fit_geodesic(dec.metric_fn, mu, z, **{**kw, "iterations": 60, "tol": None}).sq_length
    with torch.no_grad():
        delta = z - mu
        local = torch.einsum("ni,nij,nj->n", delta, dec.metric_fn(mu[:1]).expand(len(z), -1, -1), delta)
    gap = ((fast - slow) / slow).abs()
    ratio = local / slow
    return {"max": gap.max().item(), "median": gap.median().item(),
            "local_over_geodesic": [ratio.min().item(), ratio.max().item()]}


def run_one(data, distance, args):
    """Train one configuration; its seconds per epoch of each phase and its last validation ELBO."""
    torch.manual_seed(args.seed)
    model = zoo.build("rvae", event_shape=data.event_shape, z_dim=args.z_dim, distance=distance)
    cfg = TrainConfig(epochs=sum(args.phases), batch_size=100, lr=1e-3, seed=args.seed, quiet=True)
    with tempfile.TemporaryDirectory() as out:
        strategy = TwoPhaseStrategy(model, data, cfg, phase_epochs=args.phases, phase_one_beta=0.0)
        TrainingLoop(strategy, out).fit()
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    per_phase = {p: [r["seconds"] for r in rows if r.get("phase") == p] for p in (1, 2)}
    entry = {f"seconds_per_epoch_phase{p}": round(sum(s) / len(s), 2) for p, s in per_phase.items()}
    entry["phase2_epoch_seconds"] = per_phase[2]
    steady = per_phase[2][1:] or per_phase[2]  # the first phase-two epoch also pays the switch (k-means) and warm-up
    entry["seconds_per_epoch_phase2_steady"] = round(sum(steady) / len(steady), 2)
    entry["last_valid_elbo"] = next((r.get("valid_elbo") for r in reversed(rows) if "valid_elbo" in r), None)
    if distance == "geodesic":
        entry["solver_gap"] = solver_gap(model, data.test[:100])
    return entry


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=1000, help="training images (the first N of MNIST)")
    p.add_argument("--eval", type=int, default=200, help="validation and test images")
    p.add_argument("--phase-epochs", default="3,4", help="epochs of phase one and phase two")
    p.add_argument("--z-dim", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.phases = tuple(int(v) for v in args.phase_epochs.split(","))
    out = RESULTS / "rvae_distance.json"
    setup = (f"rvae on the first {args.train} MNIST training images ({args.eval} validation), z_dim {args.z_dim}, "
             f"ELU 300-300, 350 RBF centres, batch 100, Adam 1e-3, phases {args.phases[0]} + {args.phases[1]} epochs, "
             f"seed {args.seed}, threads {torch.get_num_threads()}, cpu")
    results = start_results(out, "runs", setup)
    data = subset(load("mnist", data_dir=args.data_dir, binarize=False), args.train, args.eval)
    tag = f"train{args.train}/d{args.z_dim}/{args.phases[0]}+{args.phases[1]}"
    key_of = {d: f"{tag}/{d}" for d in ("local", "geodesic")}
    for distance, key in key_of.items():
        if key in results["runs"]:
            continue
        results["runs"][key] = run_one(data, distance, args)
        save_results(out, results)
        print(key, results["runs"][key], flush=True)
    local, geo = (results["runs"][key_of[d]] for d in ("local", "geodesic"))
    results["phase2_ratio_geodesic_over_local"] = {
        k: round(geo[k] / local[k], 2) for k in ("seconds_per_epoch_phase2", "seconds_per_epoch_phase2_steady")}
    save_results(out, results)
    print("phase-two seconds per epoch, geodesic / local:", results["phase2_ratio_geodesic_over_local"])


if __name__ == "__main__":
    main()
