"""The VAE with a Stein-learned hyperprior (the design card "VAE with a Stein-Learned Hyperprior") against equal-compute
baselines and its ablations; q(m) is trained by Stein Mixture Inference (SMI) of Rønning, Nalisnick, Ley, Smyth &
Hamelryck (2024), "ELBOing Stein: Variational Bayes with Stein Mixture Inference", arXiv:2410.22948.

Configurations, all with MLP coders 300-300, z = 40, batch 100, Adam 1e-3, no KL warm-up, the best
validation epoch evaluated:

    stein-m5              stein-hyperprior, M = 5, concat conditioning, alpha = 1, repulsion per data point
                          (the default: SMI's loss temperature T = N)
    stein-m5-plain        the same with the design card's plain SMI update (T = 1)
    stein-m1              M = 1 (one Gaussian q(m), no repulsion)
    vae-elbo5             standard-normal prior, the ELBO averaged over 5 draws of z per point
    vae-iwae5             standard-normal prior, the IWAE bound with K = 5 (Burda et al. 2016, arXiv:1509.00519)
    vae-flowprior-elbo5   the shared flow prior p(z) = f# N(0, I) without m, 5-draw ELBO
    vae-flowprior-iwae5   the same with IWAE-5
    <baseline>@time       a baseline trained on (the same run, resumed) for epochs x (stein-m5's training step time
                          / its own, measured side by side in one process, as other jobs on a shared machine slow
                          some epochs): equal training time instead of equal epochs
    vae, vae-flowprior    one draw per point (references; run after the others, with --extra-configs)
    stein-m5-film         FiLM conditioning of the encoder on m
    stein-m5-alpha0       alpha = 0 (no repulsion)
    stein-m5-alpha10      alpha = 10 (a ten times stronger repulsion)

Stein M = 5 draws five (m, z) per point and step, as the 5-draw baselines draw five z: the comparison at
equal epochs is one at equal draws; ``@time`` gives the faster baselines the extra epochs the Stein
model's time would buy. The Stein models are trained by SMI (the components of q(m) at particle lr
1e-2, the networks at 1e-3), the others by their bound.

    python benchmarks/stein_hyperprior.py --epochs 50 --seeds 0,1 --test-points 2000 --samples 1000
    python benchmarks/stein_hyperprior.py --datasets mnist --configs stein-m5,vae-elbo5 --epochs 1 \\
        --test-points 100 --samples 20 --results smoke.json

Jobs run in the order given (configurations within seeds within data sets); several processes may run
the same command side by side: each takes the next job no other process holds (a lock file per job)
whose ``@time`` reference is done. Reported per job: test log-likelihood with S = ``--samples``
importance samples on the first ``--test-points`` test points (for the Stein models the posterior
predictive with m integrated out under q(m)), the test ELBO (for the Stein models averaged over
m ~ q(m)), KL, active units, PSIS k̂ of the encoder (200 points), seconds per training epoch, and for
the Stein models the chart diagnostics of :mod:`pyrozoo.inference.charts` on 1000 test points. Results
go to ``benchmarks/results/<--results>`` (one entry per data set, configuration and seed, merged into
the file after each job); a killed job resumes from ``benchmarks/runs/stein_hyperprior``.
"""

import argparse
import fcntl
import math
import os
import statistics
import time

import torch

from pyrozoo.data import load

from common import RESULTS, RUNS, load_results, result_of, save_entry, train_run

#: name -> (preset, extra run options)
CONFIGS = {
    "stein-m5": ("stein-hyperprior", {"num_components": 5, "conditioning": "concat", "repulsion_temperature": 1.0,
                                      "repulsion_scale": "per-point"}),
    "vae-elbo5": ("vae", {"objective": "elbo", "particles": 5}),
    "vae-iwae5": ("vae", {"objective": "iwae", "particles": 5}),
    "stein-m5-plain": ("stein-hyperprior", {"num_components": 5, "conditioning": "concat",
                                            "repulsion_temperature": 1.0, "repulsion_scale": "plain"}),
    "stein-m1": ("stein-hyperprior", {"num_components": 1, "conditioning": "concat", "repulsion_scale": "per-point"}),
    "vae-flowprior-elbo5": ("vae-flowprior", {"objective": "elbo", "particles": 5}),
    "vae-flowprior-iwae5": ("vae-flowprior", {"objective": "iwae", "particles": 5}),
    "vae": ("vae", {}),
    "vae-flowprior": ("vae-flowprior", {}),
    "stein-m5-film": ("stein-hyperprior", {"num_components": 5, "conditioning": "film", "repulsion_temperature": 1.0,
                                           "repulsion_scale": "per-point"}),
    "stein-m5-alpha0": ("stein-hyperprior", {"num_components": 5, "conditioning": "concat",
                                             "repulsion_temperature": 0.0, "repulsion_scale": "per-point"}),
    "stein-m5-alpha10": ("stein-hyperprior", {"num_components": 5, "conditioning": "concat",
                                              "repulsion_temperature": 10.0, "repulsion_scale": "per-point"}),
}
#: the equal-time variants: trained on from the baseline's run until its training time is stein-m5's
TIMED = tuple(f"{name}@time" for name in ("vae-elbo5", "vae-iwae5", "vae-flowprior-elbo5", "vae-flowprior-iwae5"))
REFERENCE = "stein-m5"
PARTICLE_LR = 1e-2
FOLDER = "stein_hyperprior"


def job_key(dataset, config, seed):
    """The results key of one job."""
    return f"{dataset}/{config}/s{seed}"


def training_seconds(run):
    """Training seconds summed over the run's epochs (validation and checkpoints left out)."""
    return sum(m["seconds"] for m in run.metrics)


def step_seconds(preset, options, z_dim, x, num_data):
    """A function that takes one training step of a fresh ``preset`` model on the batch ``x`` and
    returns its seconds (the run's objective and optimiser: SMI for the Stein models)."""
    from pyrozoo import zoo
    from pyrozoo.inference import SMI, make_objective, stein_param_groups
    model_opts = {k: v for k, v in options.items() if k in zoo.recipe(preset).model_options}
    model = zoo.build(preset, event_shape=tuple(x.shape[1:]), z_dim=z_dim, hidden=[300, 300], **model_opts)
    if preset == "stein-hyperprior":
        objective = SMI(model.model, model.guide, **model.smi_options)
        opt = torch.optim.Adam(stein_param_groups(model, 1e-3, PARTICLE_LR))
    else:
        objective = make_objective(options.get("objective", "elbo"), options.get("particles", 1))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        start = time.perf_counter()
        loss = objective.differentiable_loss(model.model, model.guide, x, num_data=num_data)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - start
    return step


def time_ratio(name, dataset, args, rounds=15, steps=4):
    """stein-m5's training step time over the baseline ``name``'s, measured side by side in this process
    (alternating ``rounds`` blocks of ``steps`` steps on one training batch of 100; the ratio of the
    medians), so that both see the same load of a shared machine."""
    data = load(dataset, data_dir=args.data_dir, binarize=True)
    x = torch.bernoulli(data.train[:100])
    torch.manual_seed(0)
    steppers = [step_seconds(*CONFIGS[c], args.z_dim, x, len(data.train)) for c in (REFERENCE, name)]
    times = [[], []]
    for _ in range(rounds):
        for i, step in enumerate(steppers):
            times[i].append(sum(step() for _ in range(steps)))
    return statistics.median(times[0]) / statistics.median(times[1])


def median_epoch_seconds(run, epochs=None):
    """The median training seconds of the run's first ``epochs`` epochs (all by default): robust to the
    epochs that other processes on a shared machine slowed down."""
    return statistics.median(m["seconds"] for m in run.metrics[:epochs])


def run_config(config, dataset, seed, args, results):
    """Train (resumably, through the public API) and evaluate one job; returns its result dict, or
    None when it waits for its ``@time`` reference."""
    name, timed = config.split("@")[0], config.endswith("@time")
    preset, options = CONFIGS[name]
    tag = f"{dataset}-{name}-z{args.z_dim}-w{args.warmup}-s{seed}-{args.device.split(':')[0]}"
    epochs = args.epochs
    if timed:  # resume the equal-epoch run for epochs x (stein-m5's step time / its own)
        ref, base = (results.get(job_key(dataset, c, seed)) for c in (REFERENCE, name))
        if ref is None or base is None:
            return None
        ratio = time_ratio(name, dataset, args)
        epochs = max(args.epochs, math.ceil(args.epochs * ratio))
    start = time.perf_counter()
    extra = {"particle_lr": PARTICLE_LR} if preset == "stein-hyperprior" else {}
    run = train_run(preset, dataset, FOLDER, tag, z_dim=args.z_dim, hidden=[300, 300], epochs=epochs,
                    batch_size=100, lr=1e-3, warmup=args.warmup, patience=args.patience, seed=seed,
                    device=args.device, quiet=args.quiet, data_dir=args.data_dir, **options, **extra)
    if run.summary.get("epochs", epochs) > epochs:
        raise RuntimeError(f"{run.path} has trained {run.summary['epochs']} epochs, more than this job's {epochs} (an "
                           "@time job extended it before this job's result was saved); delete it to rerun")
    stein = preset == "stein-hyperprior"
    parts = ("predictive_likelihood", "elbo", "q_m") if stein else ("likelihood", "elbo")
    report = run.evaluate(num_samples=args.samples, num_points=args.test_points or None, parts=parts)
    result = {"preset": preset, "options": options, "seed": seed, **result_of(run, report),
              "training_seconds": round(training_seconds(run), 1),
              "median_seconds_per_epoch": round(median_epoch_seconds(run, None if timed else args.epochs), 2),
              "wall_seconds": round(time.perf_counter() - start, 1),
              "log_likelihood_kind": "predictive (m integrated out under q(m))" if stein else "importance sampled"}
    if timed:
        result["time_ratio"] = round(ratio, 3)
    if stein:  # the ELBO averaged over m ~ q(m), as the predictive log-likelihood integrates m out
        result["test_elbo_one_m_per_batch"] = result["test_elbo"]
        result["test_elbo"] = result["test_predictive_elbo"]
        for name in ("stein_repulsion_ratio", "stein_mean_force_ratio", "q_m_min_pairwise_distance",
                     "chart_entropy", "chart_consistency", "chart_ami"):  # the training records' (500 valid points)
            result[f"{name}_by_epoch"] = [m.get(name) for m in run.metrics]
        result["final_mean_force_ratio"] = run.metrics[-1].get("stein_mean_force_ratio")
    return result


class Claim:
    """An exclusive, non-blocking lock on ``benchmarks/runs/<folder>/<key>.lock`` while a job runs
    (``held`` says whether it was taken)."""

    def __init__(self, key):
        path = RUNS / FOLDER / (key.replace("/", "-") + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.held = True
        except BlockingIOError:
            self.held = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="mnist")
    p.add_argument("--configs", default=",".join(list(CONFIGS)[:7] + list(TIMED)),
                   help="configurations run for every seed first")
    p.add_argument("--extra-configs", default="vae,vae-flowprior,stein-m5-alpha10",
                   help="configurations run after the --configs of every seed")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--warmup", type=int, default=0, help="KL warm-up epochs (all configurations)")
    p.add_argument("--patience", type=int, default=50)
    p.add_argument("--z-dim", type=int, default=40)
    p.add_argument("--test-points", type=int, default=2000, help="test points of the log-likelihood (0: all)")
    p.add_argument("--samples", type=int, default=1000, help="importance samples S of the log-likelihood")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--results", default="stein_hyperprior_equal_compute.json",
                   help="file name under benchmarks/results")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    tiers = [args.configs.split(","), args.extra_configs.split(",") if args.extra_configs else []]
    configs = tiers[0] + tiers[1]
    unknown = [c for c in configs if c not in CONFIGS and c not in TIMED]
    if unknown:
        p.error(f"unknown configurations {unknown}; choose from {', '.join(list(CONFIGS) + list(TIMED))}")
    needed = {c.split("@")[0] for c in configs if c in TIMED}
    missing = sorted((needed | {REFERENCE} if needed else needed) - set(configs))
    if missing:
        p.error(f"the @time configurations need {', '.join(missing)} in --configs")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    out = RESULTS / args.results
    budget = [args.epochs, args.warmup, args.z_dim, args.samples, args.test_points]
    setup = (f"dynamic binarisation, MLP coders 300-300 (ReLU), z={args.z_dim} (m_dim = z_dim), flow prior "
             f"of 2 affine couplings, batch 100, Adam 1e-3 (q(m) particles 1e-2, SMI with 1 ELBO draw per "
             f"component, RBF kernel), {args.epochs} epochs (@time: until stein-m5's training time), warm-up "
             f"{args.warmup}, best validation epoch evaluated, log-likelihood S={args.samples} on "
             f"{args.test_points or 'all'} test points (predictive for the Stein models), chart diagnostics on "
             f"1000 test points, threads {torch.get_num_threads()}, device {args.device}"
             + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    names = [load(name, data_dir=args.data_dir, binarize=True).name for name in args.datasets.split(",")]
    jobs = [(d, c, s) for d in names for tier in tiers for s in seeds for c in tier]
    while True:
        results = load_results(out).get("runs", {})
        pending = [j for j in jobs if (results.get(job_key(*j)) or {}).get("budget") != budget]
        if not pending:
            break
        ran = busy = False
        for dataset, config, seed in pending:
            key = job_key(dataset, config, seed)
            with Claim(key) as claim:
                results = load_results(out).get("runs", {})
                busy = busy or not claim.held
                if not claim.held or (results.get(key) or {}).get("budget") == budget:
                    continue
                result = run_config(config, dataset, seed, args, results)
                if result is None:
                    continue
                result["budget"] = budget
                save_entry(out, "runs", key, result, setup=setup)
                ran = True
            dist = result.get("q_m_min_pairwise_distance")
            print(f"{key}: log p(x) {result['test_log_likelihood']:.2f}, ELBO {result['test_elbo']:.2f}, "
                  f"AU {result['active_units']}, {result['seconds_per_epoch']} s/epoch, {result['epochs']} epochs"
                  + (f", min |a_k - a_l| {dist:.3f}" if dist is not None else ""), flush=True)
            break  # re-read the queue: another process may have finished a reference
        if not ran and not busy:
            raise SystemExit(f"jobs wait for references that no process is training: {pending}")
        if not ran:
            time.sleep(60)  # the rest is held by other processes or waits for their references


if __name__ == "__main__":
    main()
