"""Tables 1, 2, 3 and 6 of Kalatzis, Eklund, Arvanitidis & Hauberg (2020), "Variational Autoencoders with Riemannian
Brownian Motion Priors", ICML, arXiv:2002.05227: R-VAE against a VAE and a VampPrior VAE that share its RBF variance
network, on continuous MNIST and FashionMNIST for d = 2, 5, 10.

Every model has the paper's coders (ELU MLPs 300-300, linear decoder mean, RBF precision network
with 350 centres and λ = 0.01) and the two-phase schedule of Appendix C.1 (Adam 1e-3, batch 100):
phase one trains the encoder and decoder mean (the R-VAE as an autoencoder, the baselines with KL
warm-up over the whole phase), k-means places the RBF centres, phase two trains the prior and the
variance network. The R-VAE's posterior is sampled by Euclidean reparameterisation (as the
authors' code does).

    python benchmarks/rvae.py --full              # the paper's 100 + 200 epochs
    python benchmarks/rvae.py                     # documented short budget: 5 + 5 epochs
    python benchmarks/rvae.py --datasets mnist --dims 2 --phase-epochs 2,2

Reported per model and d: test negative ELBO, reconstruction (negative conditional
log-likelihood) and KL (Tables 1-2; mean ± std over ``--seeds``); per-digit and average F1 of the
Appendix C.2 classifier (100 ReLU units, Adam 1e-3, batch 64, ``--classifier-epochs``) trained on
the training codes and scored on the test codes (Table 3); seconds per epoch of each phase and
the R-VAE / VAE ratio in the same run (Table 6). Results go to ``benchmarks/results/rvae.json``
after each run; a killed run resumes from ``benchmarks/runs/rvae``.
"""

import argparse
import inspect
import statistics
import time

import torch

from pyrozoo.data import load
from pyrozoo.evaluation import elbo_terms, latent_f1
from pyrozoo.zoo.riemannian import riemannian_vae

from common import RESULTS, start_results, save_entry, seconds_per_epoch, train_run

MODELS = ("rvae", "vae-rbf", "vampprior-rbf")
#: Tables 1 (MNIST) and 2 (FashionMNIST): (negative ELBO, Rec, KL) as printed, mean over 10 runs;
#: the paper's "negative ELBO" and "Rec" are negative numbers because the Gaussian decoder's
#: log-density of continuous data is positive. The VampPrior row is the paper's best variant.
PAPER = {
    "mnist": {"vae-rbf": {2: (-1030.38, -1033.06, 2.68), 5: (-1076.64, -1078.91, 2.27), 10: (-1110.79, -1113.01, 2.22)},
              "vampprior-rbf": {2: (-1045.03, -1047.34, 2.30), 5: (-1109.74, -1111.63, 1.88),
                                10: (-1116.58, -1118.27, 1.69)},
              "rvae": {2: (-1047.29, -1053.70, 14.33), 5: (-1141.06, -1177.86, 28.00), 10: (-1170.03, -1280.94, 57.76)}},
    "fashion-mnist": {"vae-rbf": {2: (-443.13, -447.44, 4.31), 5: (-511.65, -517.41, 5.76), 10: (-525.05, -530.86, 5.81)},
                      "vampprior-rbf": {2: (-705.90, -708.45, 2.54), 5: (-769.27, -770.1, 0.83),
                                        10: (-774.17, -777.75, 3.57)},
                      "rvae": {2: (-708.77, -722.41, 13.64), 5: (-889.62, -913.61, 23.83),
                               10: (-959.2, -1001.4, 40.35)}},
}
#: Table 6: seconds per epoch on a GPU (MNIST), VAE and R-VAE.
PAPER_SECONDS = {"vae-rbf": {2: 10.64, 5: 11.01, 10: 11.10}, "rvae": {2: 55.73, 5: 59.97, 10: 60.13}}


@torch.no_grad()
def codes(model, x, batch=1000):
    """Posterior means of ``x`` (the latent codes the classifier and figures use)."""
    return model.encode_means(x, batch)


def run_one(data, preset, d, seed, args):
    """Train (resumably, through the public API) and evaluate one (model, d, seed); returns its
    result dict."""
    start = time.perf_counter()
    distance = (args.distance or "geodesic") if preset == "rvae" else None
    tag = f"{data.name}-{preset}-d{d}-p{args.phases[0]}_{args.phases[1]}-s{seed}" + (f"-{distance}" if distance else "")
    run = train_run(preset, data.name, "rvae", tag, distance=distance,
                    z_dim=d, phase_epochs=list(args.phases), batch_size=100, lr=1e-3,
                    warmup=args.phases[0] if preset != "rvae" else 0, seed=seed, device=args.device,
                    quiet=args.quiet, data_dir=args.data_dir)
    model = run.model.eval()
    data = run.dataset
    terms = elbo_terms(model, data.test, batch_size=500)
    f1 = latent_f1(codes(model, data.train), data.labels["train"], codes(model, data.test), data.labels["test"],
                   epochs=args.classifier_epochs, seed=seed)
    return {"neg_elbo": -terms["elbo"].mean().item(), "rec": -terms["reconstruction"].mean().item(),
            "kl": terms["kl"].mean().item(), "f1": f1, "seconds_per_epoch_phase1": seconds_per_epoch(run, 1),
            "seconds_per_epoch_phase2": seconds_per_epoch(run, 2), "wall_seconds": round(time.perf_counter() - start, 1),
            "prior_t": model.prior.t.item() if hasattr(model.prior, "t") else None, "distance": distance,
            "min_precision": model.decoder.precision.min_precision.item()}


def summarise(runs):
    """Mean ± std over seeds of the scalar metrics."""
    out = {}
    for key in ("neg_elbo", "rec", "kl", "seconds_per_epoch_phase1", "seconds_per_epoch_phase2"):
        vals = [r[key] for r in runs]
        out[key] = [statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0]
    f1 = [r["f1"]["average"] for r in runs]
    out["f1_average"] = [statistics.mean(f1), statistics.stdev(f1) if len(f1) > 1 else 0.0]
    digits = runs[0]["f1"]["per_class"].keys()
    out["f1_per_class"] = {c: statistics.mean(r["f1"]["per_class"][c] for r in runs) for c in digits}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="the paper's budget: 100 + 200 epochs")
    p.add_argument("--phase-epochs", default=None, help="epochs of phase one and two, e.g. 5,5")
    p.add_argument("--datasets", default="mnist,fashion-mnist")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--dims", default="2,5,10")
    p.add_argument("--seeds", default="0")
    p.add_argument("--distance", choices=("geodesic", "local"), default=None,
                   help="the R-VAE heat kernels' squared distance (default: the preset's, geodesic)")
    p.add_argument("--classifier-epochs", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--results", default="rvae.json", help="file name under benchmarks/results (e.g. rvae-cuda.json)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models.split(",")
    if [m for m in models if m not in MODELS]:
        p.error(f"unknown models in {models}; choose from {', '.join(MODELS)}")
    args.phases = (100, 200) if args.full else tuple(int(v) for v in (args.phase_epochs or "5,5").split(","))
    dims = [int(v) for v in args.dims.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    out = RESULTS / args.results
    floor = inspect.signature(riemannian_vae).parameters["min_precision"].default
    setup = (f"continuous data, ELU MLP 300-300 coders, RBF precision (350 centres, lambda 0.01), phases "
             f"{args.phases[0]} + {args.phases[1]} epochs, Adam 1e-3, batch 100, R-VAE posterior sampled "
             f"by Euclidean reparameterisation, heat-kernel l2 and precision floor of each row in its column (default "
             f"geodesic, {floor:g}), VampPrior K=128, classifier {args.classifier_epochs} epochs, "
             f"seeds {seeds}, threads {torch.get_num_threads()}, device {args.device}")
    results = start_results(out, "runs", setup)
    for name in args.datasets.split(","):
        data = load(name, data_dir=args.data_dir, binarize=False)
        for d in dims:
            for preset in models:
                key = f"{data.name}/{preset}/d{d}" + ("/local" if preset == "rvae" and args.distance == "local" else "")
                entry = results["runs"].setdefault(key, {"budget": list(args.phases), "seeds": {}})
                if entry["budget"] != list(args.phases):
                    entry.update(budget=list(args.phases), seeds={})
                for seed in seeds:
                    if str(seed) in entry["seeds"]:
                        continue
                    entry["seeds"][str(seed)] = run_one(data, preset, d, seed, args)
                    entry["summary"] = summarise(list(entry["seeds"].values()))
                    if preset in PAPER.get(data.name, {}):
                        entry["paper"] = dict(zip(("neg_elbo", "rec", "kl"), PAPER[data.name][preset][d])) \
                            if d in PAPER[data.name][preset] else None
                    results = save_entry(out, "runs", key, entry, setup=setup)  # keeps a side-by-side process's rows
                    s = entry["summary"]
                    print(f"{key} seed {seed}: -ELBO {s['neg_elbo'][0]:.2f} rec {s['rec'][0]:.2f} KL {s['kl'][0]:.2f} "
                          f"F1 {s['f1_average'][0]:.3f} s/epoch {s['seconds_per_epoch_phase1'][0]:.1f} + "
                          f"{s['seconds_per_epoch_phase2'][0]:.1f}", flush=True)
        for d in dims:  # Table 6: the R-VAE's time per epoch relative to the VAE of the same run
            r, v = (results["runs"].get(f"{data.name}/{m}/d{d}", {}).get("summary") for m in ("rvae", "vae-rbf"))
            if r and v:
                results = save_entry(out, "speed_ratio", f"{data.name}/d{d}", {
                    "phase2": r["seconds_per_epoch_phase2"][0] / v["seconds_per_epoch_phase2"][0],
                    "schedule": ((args.phases[0] * r["seconds_per_epoch_phase1"][0]
                                  + args.phases[1] * r["seconds_per_epoch_phase2"][0])
                                 / (args.phases[0] * v["seconds_per_epoch_phase1"][0]
                                    + args.phases[1] * v["seconds_per_epoch_phase2"][0])),
                    "paper_gpu": PAPER_SECONDS["rvae"][d] / PAPER_SECONDS["vae-rbf"][d] if d in PAPER_SECONDS["rvae"]
                    else None}, setup=setup)


if __name__ == "__main__":
    main()
