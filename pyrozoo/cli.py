"""The ``pyrozoo`` command: a thin layer over :mod:`pyrozoo.zoo`, :mod:`pyrozoo.data`,
:mod:`pyrozoo.inference`, :mod:`pyrozoo.evaluation` and :mod:`pyrozoo.diagnostics`.

    pyrozoo list
    pyrozoo train PRESET [--dataset D] [--epochs N] [--batch-size B] [--lr LR] [--warmup W]
                         [--device cpu|cuda] [--seed S] [--data-dir DIR] [--out DIR] [--resume] [--quiet]
    pyrozoo evaluate RUN_DIR [--num-samples S]
    pyrozoo sample RUN_DIR [-n N]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from pyrozoo import zoo
from pyrozoo.data import DATASETS, load
from pyrozoo.guides import POSTERIORS
from pyrozoo.inference import OBJECTIVES, SCHEDULES, TrainConfig, Trainer, TrainingDiverged, make_objective
from pyrozoo.inference.checkpoint import load_checkpoint
from pyrozoo.inference.phases import TwoPhaseTrainer
from pyrozoo.inference.trainer import config_dict, write_json

LIKELIHOOD_CHOICES = ("bernoulli", "gaussian", "dlogistic")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit status 2."""

    def error(self, message):
        sys.stderr.write(f"pyrozoo: error: {message}\n")
        sys.exit(2)


def _model_options(args, dataset, default_likelihood=None):
    opts = {}
    if args.z_dim is not None:
        opts["z_dim"] = args.z_dim
    if args.hidden is not None:
        try:
            opts["hidden"] = [int(h) for h in args.hidden.split(",")]
        except ValueError:
            raise ValueError(f"--hidden takes comma-separated integers such as 300,300, got {args.hidden!r}") from None
    if args.posterior is not None:
        opts["posterior"] = args.posterior
    if args.prior is not None:
        opts["prior"] = args.prior
    if args.pseudo_inputs is not None:
        opts["num_components"] = args.pseudo_inputs
    if args.flow_steps is not None:
        opts["flow_steps"] = args.flow_steps
    for flag in ("sampler", "num_centres", "bandwidth"):  # the Riemannian presets
        if getattr(args, flag, None) is not None:
            opts[flag] = getattr(args, flag)
    if dataset.support == "sequence":  # the sequence VAE brings its own likelihood
        if args.likelihood is not None:
            opts["likelihood"] = args.likelihood
        return opts
    likelihood = args.likelihood or default_likelihood or ("bernoulli" if dataset.support == "binary" else
                                     "gaussian" if dataset.support == "real" else "dlogistic")
    opts["likelihood"] = likelihood
    if likelihood == "dlogistic":
        opts["num_bins"] = dataset.levels or 256
    return opts


def _load_data(name, likelihood, data_dir, download, binarize=None):
    if binarize is None and likelihood is not None and name in ("digits", "mnist", "fashion-mnist"):
        binarize = likelihood == "bernoulli"
    if binarize and likelihood not in (None, "bernoulli"):
        raise ValueError(f"the {likelihood} likelihood needs continuous data; this preset uses binarised {name}")
    return load(name, data_dir=data_dir, download=download, binarize=binarize)


def _build(preset, dataset, options):
    """zoo.build, handing over the training images to priors that are made of them (VampPrior-data)."""
    if zoo.needs_data(preset) or options.get("prior") == "vampprior-data":
        return zoo.build(preset, event_shape=dataset.event_shape, data=dataset.train, **options)
    return zoo.build(preset, event_shape=dataset.event_shape, **options)


def _fresh_dir(path):
    path = Path(path)
    if not path.exists():
        return path
    i = 2
    while Path(f"{path}-{i}").exists():
        i += 1
    return Path(f"{path}-{i}")


def _phase_epochs(args, defaults):
    """``(phase one, phase two)`` epochs for two-phase presets (else None): ``--phase-epochs A,B``,
    or ``--epochs N`` split 1:2 as in the paper (100 + 200), or the preset's."""
    if "phases" not in defaults:
        if args.phase_epochs:
            raise ValueError("--phase-epochs applies only to the two-phase presets (rvae, vae-rbf, vampprior-rbf)")
        return None
    if args.phase_epochs:
        try:
            a, b = (int(v) for v in args.phase_epochs.split(","))
        except ValueError:
            raise ValueError(f"--phase-epochs takes two integers such as 100,200, got {args.phase_epochs!r}") from None
    elif args.epochs is not None:
        a = max(1, args.epochs // 3)
        b = args.epochs - a
    else:
        a, b = defaults["phases"]
    if a < 1 or b < 1:
        raise ValueError(f"both phases need at least one epoch, got {a} and {b}")
    return a, b


def _checkpoints(run_dir, name):
    """Paths of ``name`` in a run's checkpoint folders (two-phase runs: phase two's first)."""
    run_dir = Path(run_dir)
    return [p for p in (run_dir / "phase2" / "checkpoints" / name, run_dir / "phase1" / "checkpoints" / name,
                        run_dir / "checkpoints" / name) if p.exists()]


def train(args):
    """``pyrozoo train``: validate everything, train, evaluate, write the run directory."""
    defaults = zoo.train_defaults(args.preset)
    def pick(name, fallback):
        value = getattr(args, name)
        return value if value is not None else defaults.get(name, fallback)

    args.dataset = pick("dataset", "digits")
    phases = _phase_epochs(args, defaults)
    cfg = TrainConfig(epochs=sum(phases) if phases else pick("epochs", 100), batch_size=pick("batch_size", 100), lr=pick("lr", 1e-3),
                      warmup=pick("warmup", 0), beta=pick("beta", 1.0), kl_schedule=pick("kl_schedule", "linear"),
                      cycles=pick("cycles", 4), patience=pick("patience", 50), seed=args.seed,
                      normalize_gradients=bool(args.normalize_gradients or defaults.get("normalize_gradients")),
                      device=args.device, quiet=args.quiet)
    cfg.validate()
    objective_name = pick("objective", "elbo")
    particles = pick("particles", 1)
    free_bits = pick("free_bits", None) if objective_name == "free-bits" else args.free_bits
    kl_groups = pick("kl_groups", None) if objective_name == "free-bits" else args.kl_groups
    objective = make_objective(objective_name, particles, free_bits=free_bits, kl_groups=kl_groups)
    out = Path(args.out) if args.out else None
    if args.resume:
        if out is None or not _checkpoints(out, "last.pt"):
            raise ValueError("--resume needs --out pointing at a run directory with checkpoints/last.pt")
        saved = json.loads((out / "config.json").read_text())
        if saved["preset"] != args.preset or saved["dataset"] != args.dataset:
            raise ValueError(f"{out} holds a {saved['preset']} run on {saved['dataset']}, not {args.preset} on "
                             f"{args.dataset}")
    else:
        out = _fresh_dir(out or Path("runs") / f"{args.preset}-{args.dataset}")
    binarize = defaults.get("binarize") if args.likelihood is None else None
    dataset = _load_data(args.dataset, args.likelihood, args.data_dir, args.download, binarize=binarize)
    options = _model_options(args, dataset, defaults.get("likelihood"))
    torch.manual_seed(args.seed)
    model = _build(args.preset, dataset, options)
    if phases:  # Kalatzis et al. Appendix C.1: networks first, then variance network and prior
        trainer = TwoPhaseTrainer(model, dataset, cfg, out, objective=objective, phase_epochs=phases,
                                  phase_one_beta=defaults.get("phase_one_beta"))
    else:
        trainer = Trainer(model, dataset, cfg, out, objective=objective)
    config = {"preset": args.preset, "dataset": args.dataset, "model_options": options, "train": config_dict(cfg),
              "objective": objective_name, "particles": particles, "free_bits": free_bits, "kl_groups": kl_groups,
              "data_dir": str(args.data_dir) if args.data_dir else None, "binarize": dataset.binarize,
              "phase_epochs": list(phases) if phases else None}
    if args.resume:
        trainer.resume()
    write_json(out / "config.json", config)
    start = time.perf_counter()
    result = trainer.fit()
    trainer.load_best()
    summary = {"preset": args.preset, "dataset": args.dataset, **result,
               "train_seconds": round(time.perf_counter() - start, 2)}
    summary.update(evaluate_model(model, dataset, out, args.eval_samples, quiet=args.quiet))
    write_json(out / "summary.json", summary)
    if not args.quiet:
        print(f"run directory: {out}")
        print(f"test log-likelihood {summary['test_log_likelihood']:.3f} nats, ELBO {summary['test_elbo']:.3f}, "
              f"active units {summary['active_units']}")
    return summary


def evaluate_model(model, dataset, out, num_samples, quiet=True):
    """Test-set metrics and figures of a trained model; returns the metrics as a dict."""
    from pyrozoo.diagnostics import psis_khat
    from pyrozoo.evaluation import active_units, distribution_mean, elbo_terms, log_likelihood
    from pyrozoo.plots import image_grid, khat_plot, latent_scatter, loglik_histogram, reconstructions

    model.eval()
    test = dataset.test
    ll = log_likelihood(model, test, num_samples=num_samples, progress=not quiet)
    terms = elbo_terms(model, test)
    au = active_units(model, test)
    khat = psis_khat(model, test[:200], num_samples=min(1000, max(num_samples, 100)))
    figures = Path(out) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    extra = {}
    with torch.no_grad():
        if dataset.support == "sequence":
            extra = _sequence_report(model, test, out)
        else:
            image_grid(model.sample(64), figures / "samples.png", title="samples from the prior")
            if test.dim() > 2:
                reconstructions(test[:10], model.reconstruct(test[:10]), figures / "reconstructions.png")
            prior = getattr(model, "prior", None)
            if hasattr(prior, "pseudo_inputs") and test.dim() > 2:  # VampPrior paper Fig. 4
                image_grid(prior.pseudo_inputs()[:64], figures / "pseudo_inputs.png", title="pseudo-inputs u_k")
                image_grid(model.sample(36, z=prior.sample_component(0, 36)), figures / "samples_pseudo_input_0.png",
                           title="samples from q(z|u_0)")
        loglik_histogram(ll, figures / "loglik_hist.png")
        means = distribution_mean(model.encode(test))
        latent_scatter(means, dataset.labels.get("test"), figures / "latent.png")
        khat_plot(khat, figures / "khat.png")
        if hasattr(model, "log_volume") and model.z_dim == 2:  # Kalatzis et al. Figs. 3-7
            _geometry_figures(model, means, dataset.labels.get("test"), figures)
    return {**extra, "test_log_likelihood": ll.mean().item(), "test_elbo": terms["elbo"].mean().item(),
            "test_reconstruction": terms["reconstruction"].mean().item(), "test_kl": terms["kl"].mean().item(),
            "active_units": {k: v["count"] for k, v in au.items()}, "psis_khat_mean": khat.mean().item(),
            "psis_khat_above_0.7": float((khat > 0.7).double().mean()), "num_samples": num_samples,
            "num_test": len(test)}


def _geometry_figures(model, codes, labels, figures, seed=0):
    """Volume measure with the codes, a geodesic interpolation and Brownian walks (learned t and 5 t)."""
    from pyrozoo.plots import brownian_plot, interpolation_plot, volume_plot

    volume_plot(model, codes, labels, figures / "volume.png")
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randperm(len(codes), generator=g)[:2].tolist()
    interpolation_plot(model, codes[i], codes[j], codes=codes, path=figures / "geodesic.png")
    t = float(model.prior.t) if hasattr(model.prior, "t") else 1.0
    brownian_plot(model, figures / "brownian.png", t=t, codes=codes)
    brownian_plot(model, figures / "brownian_t5.png", t=5 * t, codes=codes)


def _sequence_report(model, test, out):
    """Sequence-VAE metrics (003 §4.1) and ``samples.txt``: greedy decodings of prior draws."""
    from pyrozoo.data.architectures import decode_types
    from pyrozoo.evaluation.sequence import sequence_metrics, validity

    report = {f"test_{k}": v for k, v in sequence_metrics(model, test).items()}
    report["valid_share_of_samples"] = validity(model, n=1000)
    lines = [" ".join(t) for t in decode_types(model.sample(20))]
    (Path(out) / "samples.txt").write_text("\n".join(lines) + "\n")
    return report


def load_run(run_dir, device="cpu"):
    """Rebuild the model of a run directory from ``config.json`` and ``checkpoints/best.pt``.

    Returns ``(model, dataset, config)``.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise ValueError(f"{run_dir} is not a run directory (no config.json)")
    config = json.loads(cfg_path.read_text())
    likelihood = config["model_options"].get("likelihood")
    dataset = _load_data(config["dataset"], likelihood, config.get("data_dir"), False,
                         binarize=config.get("binarize"))
    model = _build(config["preset"], dataset, config["model_options"])
    found = _checkpoints(run_dir, "best.pt") or _checkpoints(run_dir, "last.pt")
    if not found:
        raise ValueError(f"{run_dir} has no checkpoint yet")
    model.load_state_dict(load_checkpoint(found[0])["model"])
    return model.to(device).eval(), dataset.to(device), config


def evaluate(args):
    """``pyrozoo evaluate``: recompute the test metrics of a run into ``evaluation.json``."""
    model, dataset, _ = load_run(args.run_dir)
    result = evaluate_model(model, dataset, args.run_dir, args.num_samples, quiet=args.quiet)
    write_json(Path(args.run_dir) / "evaluation.json", result)
    print(json.dumps(result, indent=2))
    return result


def sample(args):
    """``pyrozoo sample``: draw ``n`` samples into ``figures/samples-N.png`` (``samples-N.txt`` of
    layer types for sequence data) and ``samples.pt``."""
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    torch.manual_seed(args.seed)
    model, dataset, _ = load_run(args.run_dir)
    from pyrozoo.plots import image_grid
    x = model.sample(args.n)
    if dataset.support == "sequence":
        from pyrozoo.data.architectures import decode_types
        path = Path(args.run_dir) / f"samples-{args.n}.txt"
        path.write_text("\n".join(" ".join(t) for t in decode_types(x)) + "\n")
    else:
        path = Path(args.run_dir) / "figures" / f"samples-{args.n}.png"
        path.parent.mkdir(exist_ok=True)
        image_grid(x, path)
    torch.save(x, Path(args.run_dir) / "samples.pt")
    print(path)
    return x


def build_parser():
    """The argument parser of the ``pyrozoo`` command."""
    p = _Parser(prog="pyrozoo", description="A Pyro model zoo of VAEs with learned priors.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the presets")
    t = sub.add_parser("train", help="train a preset")
    t.add_argument("preset", choices=list(zoo.presets()))
    t.add_argument("--dataset", choices=DATASETS, help="data set (default: the preset's, else digits)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--phase-epochs", help="two-phase presets (rvae, vae-rbf, vampprior-rbf): epochs of the "
                   "network phase and of the variance/prior phase, e.g. 100,200 (the paper's)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--warmup", type=int, help="KL warm-up epochs (beta from 0 to 1)")
    t.add_argument("--beta", type=float, help="constant weight of the KL term (beta-VAE); default 1")
    t.add_argument("--kl-schedule", choices=SCHEDULES, help="KL annealing: linear warm-up or cyclical")
    t.add_argument("--cycles", type=int, help="number of cycles of the cyclical KL schedule (default 4)")
    t.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    t.add_argument("--objective", choices=list(OBJECTIVES), help="training objective (default: the preset's)")
    t.add_argument("--particles", type=int, help="samples per data point in the objective (IWAE's K)")
    t.add_argument("--free-bits", type=float, help="free-bits lambda in nats per group (objective free-bits)")
    t.add_argument("--kl-groups", type=int, help="number of latent groups for free bits")
    t.add_argument("--posterior", choices=list(POSTERIORS), help="posterior family of the encoder")
    t.add_argument("--flow-steps", type=int, help="number of planar/IAF layers")
    t.add_argument("--prior", choices=zoo.PRIORS, help="prior part of the VampPrior-family presets")
    t.add_argument("--pseudo-inputs", type=int, help="number of pseudo-inputs / mixture components K")
    t.add_argument("--normalize-gradients", action="store_true",
                   help="divide each gradient by its L2 norm before the Adam step (VampPrior authors' Adam)")
    t.add_argument("--sampler", choices=("euclidean", "brownian"),
                   help="rvae: draw q(z|x) by Euclidean reparameterisation (default, as the authors' code) or by a "
                   "Brownian walk under the metric")
    t.add_argument("--num-centres", type=int, help="RBF variance network: number of k-means centres (default 350)")
    t.add_argument("--bandwidth", type=float, help="RBF variance network: lambda in exp(-lambda |z - c|^2) (0.01)")
    t.add_argument("--likelihood", choices=LIKELIHOOD_CHOICES)
    t.add_argument("--z-dim", type=int)
    t.add_argument("--hidden", help="hidden sizes, e.g. 300,300")
    t.add_argument("--device", default="cpu")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-dir")
    t.add_argument("--download", action="store_true")
    t.add_argument("--out")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--eval-samples", type=int, default=int(os.environ.get("PYROZOO_EVAL_SAMPLES", 5000)))
    t.add_argument("--quiet", action="store_true")
    e = sub.add_parser("evaluate", help="evaluate a run directory")
    e.add_argument("run_dir")
    e.add_argument("--num-samples", type=int, default=5000)
    e.add_argument("--quiet", action="store_true")
    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None):
    """Entry point of the console script; returns the exit status."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures go to files; no display needed
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name, desc in zoo.presets().items():
                print(f"{name:20s} {desc}")
        elif args.command == "train":
            train(args)
        elif args.command == "evaluate":
            evaluate(args)
        else:
            sample(args)
    except (ValueError, FileNotFoundError) as err:
        sys.stderr.write(f"pyrozoo: error: {err}\n")
        return 2
    except TrainingDiverged as err:
        sys.stderr.write(f"pyrozoo: training diverged: {err}\n")
        return 1
    return 0


def console():
    """Console-script wrapper that exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    console()
