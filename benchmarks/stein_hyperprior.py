"""The VAE with a Stein-learned hyperprior (the design card "VAE with a Stein-Learned Hyperprior") against its
baselines and ablations; q(m) is trained by Stein Mixture Inference (SMI) of Rønning, Nalisnick, Ley, Smyth &
Hamelryck (2024), "ELBOing Stein: Variational Bayes with Stein Mixture Inference", arXiv:2410.22948.

Configurations, all with MLP coders 300-300, z = 40, batch 100, Adam 1e-3, no KL warm-up and
the same number of epochs (early stopping on the validation ELBO, best checkpoint evaluated):

    stein-m5          stein-hyperprior, M = 5 components of q(m), concat conditioning, alpha = 1
    vae               standard-normal prior (the same MLP coders)
    vae-flowprior     the shared flow prior p(z) = f# N(0, I) without m
    stein-m1          ablation: M = 1 (a single Gaussian q(m), no repulsion possible)
    stein-m5-film     ablation: FiLM conditioning of the encoder on m
    stein-m5-alpha0   ablation: repulsion temperature alpha = 0 (no repulsion between components)

The Stein models are trained by Stein Mixture Inference (the components of q(m) at particle lr
1e-2, the networks at 1e-3), the others by the ELBO.

    python benchmarks/stein_hyperprior.py                       # documented short budget: 10 epochs
    python benchmarks/stein_hyperprior.py --device cuda --epochs 10
    python benchmarks/stein_hyperprior.py --datasets mnist --configs stein-m5,vae --epochs 1 \\
        --test-points 100 --samples 20 --results smoke.json

Reported per data set and configuration: test log-likelihood with S = ``--samples`` importance
samples on the first ``--test-points`` test points (for the Stein models the posterior
predictive with m integrated out under q(m), for the others the usual importance-sampled
log p(x)), the test ELBO (for the Stein models averaged over m ~ q(m)), KL, active units, PSIS k̂
of the encoder (200 points), seconds per training epoch, and for the Stein models the minimum
pairwise distance of the component means of q(m) with their locs and scales. Results go to
``benchmarks/results/stein_hyperprior.json`` (``--results``) after each configuration; finished
configurations with the same budget are skipped and a killed run resumes from
``benchmarks/runs/stein_hyperprior``.
"""

import argparse
import time

import torch

from pyrozoo.data import load

from common import RESULTS, start_results, result_of, save_results, select_configs, train_run

#: name -> (preset, extra model options)
CONFIGS = {
    "stein-m5": ("stein-hyperprior", {"num_components": 5, "conditioning": "concat", "repulsion_temperature": 1.0}),
    "vae": ("vae", {}),
    "vae-flowprior": ("vae-flowprior", {}),
    "stein-m1": ("stein-hyperprior", {"num_components": 1, "conditioning": "concat", "repulsion_temperature": 1.0}),
    "stein-m5-film": ("stein-hyperprior", {"num_components": 5, "conditioning": "film", "repulsion_temperature": 1.0}),
    "stein-m5-alpha0": ("stein-hyperprior", {"num_components": 5, "conditioning": "concat",
                                             "repulsion_temperature": 0.0}),
}
PARTICLE_LR = 1e-2


def run_config(name, dataset, args):
    """Train (resumably, through the public API) and evaluate one configuration; returns its result dict."""
    preset, options = CONFIGS[name]
    tag = f"{dataset}-{name}-z{args.z_dim}-e{args.epochs}-w{args.warmup}-s{args.seed}-{args.device.split(':')[0]}"
    start = time.perf_counter()
    extra = {"particle_lr": PARTICLE_LR} if preset == "stein-hyperprior" else {}
    run = train_run(preset, dataset, "stein_hyperprior", tag, z_dim=args.z_dim, hidden=[300, 300], epochs=args.epochs,
                    batch_size=100, lr=1e-3, warmup=args.warmup, patience=args.patience, seed=args.seed,
                    device=args.device, quiet=args.quiet, data_dir=args.data_dir, **options, **extra)
    stein = preset == "stein-hyperprior"
    parts = ("predictive_likelihood", "elbo", "q_m") if stein else ("likelihood", "elbo")
    report = run.evaluate(num_samples=args.samples, num_points=args.test_points or None, parts=parts)
    result = {"preset": preset, "options": options, **result_of(run, report),
              "wall_seconds": round(time.perf_counter() - start, 1),
              "log_likelihood_kind": "predictive (m integrated out under q(m))" if stein else "importance sampled"}
    if stein:  # the ELBO averaged over m ~ q(m), as the predictive log-likelihood integrates m out
        result["test_elbo_one_m_per_batch"] = result["test_elbo"]
        result["test_elbo"] = result["test_predictive_elbo"]
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="mnist,fashion-mnist")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=0, help="KL warm-up epochs (all configurations)")
    p.add_argument("--patience", type=int, default=50)
    p.add_argument("--z-dim", type=int, default=40)
    p.add_argument("--test-points", type=int, default=1000, help="test points of the log-likelihood (0: all)")
    p.add_argument("--samples", type=int, default=1000, help="importance samples S of the log-likelihood")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--results", default="stein_hyperprior.json", help="file name under benchmarks/results")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    configs = select_configs(p, args, CONFIGS)
    out = RESULTS / args.results
    budget = [args.epochs, args.warmup, args.z_dim, args.samples, args.test_points, args.seed]
    setup = (f"dynamic binarisation, MLP coders 300-300 (ReLU), z={args.z_dim} (m_dim = z_dim), flow prior "
             f"of 2 affine couplings, batch 100, Adam 1e-3 (q(m) particles 1e-2, SMI with 1 ELBO draw, "
             f"RBF kernel), {args.epochs} epochs, warm-up {args.warmup}, best validation epoch evaluated, "
             f"log-likelihood S={args.samples} on {args.test_points or 'all'} test points (predictive "
             f"for the Stein models), seed {args.seed}, threads {torch.get_num_threads()}, "
             f"device {args.device}"
             + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    results = start_results(out, "runs", setup)
    for name in args.datasets.split(","):
        data = load(name, data_dir=args.data_dir, binarize=True)  # only to name the entry (aliases resolved)
        entry = results["runs"].setdefault(data.name, {})
        for config in configs:
            done = entry.get(config)
            if done and done.get("budget") == budget:
                print(f"{data.name} {config}: already done, skipping", flush=True)
                continue
            result = run_config(config, data.name, args)
            result["budget"] = budget
            entry[config] = result
            save_results(out, results)
            dist = result.get("q_m_min_pairwise_distance")
            print(f"{data.name} {config}: log p(x) {result['test_log_likelihood']:.2f}, ELBO {result['test_elbo']:.2f}, "
                  f"AU {result['active_units']}, {result['seconds_per_epoch']} s/epoch"
                  + (f", min |a_k - a_l| {dist:.3f}" if dist is not None else ""), flush=True)


if __name__ == "__main__":
    main()
