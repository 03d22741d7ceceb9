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
from pyrozoo.inference import (OBJECTIVES, SCHEDULES, SMI, TrainConfig, Trainer, TrainingDiverged, make_objective,
                               stein_param_groups)
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
    for flag in ("sampler", "num_centres", "bandwidth",  # the Riemannian presets
                 "m_dim", "num_flows", "conditioning", "repulsion_temperature", "kernel"):  # the Stein hyperprior
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


def _run_dir(args):
    """The run directory of ``pyrozoo train``: with ``--resume`` the ``--out`` folder, checked to
    hold a checkpoint of the same preset and data set; else a fresh folder (``--out`` or
    ``runs/PRESET-DATASET``, numbered if it exists)."""
    out = Path(args.out) if args.out else None
    if args.resume:
        if out is None or not _checkpoints(out, "last.pt"):
            raise ValueError("--resume needs --out pointing at a run directory with checkpoints/last.pt")
        saved = json.loads((out / "config.json").read_text())
        if saved["preset"] != args.preset or saved["dataset"] != args.dataset:
            raise ValueError(f"{out} holds a {saved['preset']} run on {saved['dataset']}, not {args.preset} on "
                             f"{args.dataset}")
        return out
    return _fresh_dir(out or Path("runs") / f"{args.preset}-{args.dataset}")


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
    if defaults.get("trainer") == "introspective":
        return _train_introspective(args, defaults)
    intro_only = [f"--{f.replace('_', '-')}" for f in ("iterations", "warmup_iterations", "grid_size", "milestones",
                                                          "channels", "r_entropy") if getattr(args, f) is not None]
    if intro_only:
        raise ValueError(f"{', '.join(intro_only)}: only for the Soft-IntroVAE presets")
    phases = _phase_epochs(args, defaults)
    cfg = TrainConfig(epochs=sum(phases) if phases else pick("epochs", 100), batch_size=pick("batch_size", 100), lr=pick("lr", 1e-3),
                      warmup=pick("warmup", 0), beta=pick("beta", 1.0), kl_schedule=pick("kl_schedule", "linear"),
                      cycles=pick("cycles", 4), patience=pick("patience", 50), seed=args.seed,
                      normalize_gradients=bool(args.normalize_gradients or defaults.get("normalize_gradients")),
                      device=args.device, quiet=args.quiet)
    cfg.validate()
    stein = defaults.get("trainer") == "smi"
    if stein and (args.objective or args.particles or args.free_bits or args.kl_groups):
        raise ValueError(f"{args.preset} is trained by Stein Mixture Inference; --objective, --particles, --free-bits "
                         "and --kl-groups do not apply (see --elbo-particles, --repulsion-temperature, --kernel)")
    if not stein and (args.particle_lr is not None or args.num_elbo_particles is not None):
        raise ValueError("--particle-lr and --elbo-particles apply to the Stein presets (stein-hyperprior)")
    objective_name = "smi" if stein else pick("objective", "elbo")
    particles = pick("particles", 1)
    free_bits = pick("free_bits", None) if objective_name == "free-bits" else args.free_bits
    kl_groups = pick("kl_groups", None) if objective_name == "free-bits" else args.kl_groups
    objective = None if stein else make_objective(objective_name, particles, free_bits=free_bits, kl_groups=kl_groups)
    out = _run_dir(args)
    binarize = defaults.get("binarize") if args.likelihood is None else None
    dataset = _load_data(args.dataset, args.likelihood, args.data_dir, args.download, binarize=binarize)
    options = _model_options(args, dataset, defaults.get("likelihood"))
    torch.manual_seed(args.seed)
    model = _build(args.preset, dataset, options)
    if phases:  # Kalatzis et al. Appendix C.1: networks first, then variance network and prior
        trainer = TwoPhaseTrainer(model, dataset, cfg, out, objective=objective, phase_epochs=phases,
                                  phase_one_beta=defaults.get("phase_one_beta"))
    elif stein:  # paper 000: the particles of q(m) follow the Stein force, the networks the mean ELBO
        particles = pick("num_elbo_particles", 1)
        objective = SMI(model.model, model.guide, num_elbo_particles=particles, **model.smi_options)
        optimizer = torch.optim.Adam(stein_param_groups(model, cfg.lr, pick("particle_lr", 1e-2)))
        trainer = Trainer(model, dataset, cfg, out, objective=objective, optimizer=optimizer,
                          valid_objective=objective)
    else:
        trainer = Trainer(model, dataset, cfg, out, objective=objective)
    config = {"preset": args.preset, "dataset": args.dataset, "model_options": options, "train": config_dict(cfg),
              "objective": objective_name, "particles": particles, "free_bits": free_bits, "kl_groups": kl_groups,
              "data_dir": str(args.data_dir) if args.data_dir else None, "binarize": dataset.binarize,
              "phase_epochs": list(phases) if phases else None,
              "smi": {**model.smi_options, "particle_lr": pick("particle_lr", 1e-2)} if stein else None}
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


_NOT_INTRO = ("epochs", "phase_epochs", "warmup", "beta", "kl_schedule", "cycles", "patience", "objective", "particles",
              "free_bits", "kl_groups", "posterior", "flow_steps", "prior", "normalize_gradients", "particle_lr",
              "num_elbo_particles", "sampler", "num_centres", "bandwidth", "m_dim", "num_flows", "conditioning",
              "repulsion_temperature", "kernel")


def _intro_draw(dataset, likelihood):
    """The training draws of an introspective run: fresh points of a 2D set (as the paper's
    generators), else random training images (binarised afresh for a Bernoulli decoder)."""
    from pyrozoo.data import BOXES, sample_toy
    if dataset.name in BOXES:
        return lambda n: sample_toy(dataset.name, n)
    train = dataset.train
    if likelihood == "bernoulli" and dataset.binarize:
        return lambda n: torch.bernoulli(train[torch.randint(0, len(train), (n,), device=train.device)])
    return train


def _train_introspective(args, defaults):
    """``pyrozoo train`` for the Soft-IntroVAE presets (paper 001): ``--iterations`` of the game
    after ``--warmup-iterations`` of plain VAE training, then the 2D scores (gnELBO, KL, JSD) and
    a density figure, or the image metrics of :func:`evaluate_model`."""
    from dataclasses import asdict

    from pyrozoo.data import BOXES
    from pyrozoo.evaluation import evaluate_2d
    from pyrozoo.inference import IntroTrainer
    from pyrozoo.plots import density_plot

    given = [f"--{f.replace('_', '-')}" for f in _NOT_INTRO if getattr(args, f, None) not in (None, False)]
    if given:
        raise ValueError(f"{', '.join(given)}: not for {args.preset} (trained by iterations of the "
                         "introspective game; see --iterations, --warmup-iterations, --batch-size, --lr)")
    overrides = {k: v for k, v in (("iterations", args.iterations), ("warmup", args.warmup_iterations),
                                   ("batch_size", args.batch_size), ("lr_encoder", args.lr),
                                   ("lr_decoder", args.lr), ("r_entropy", args.r_entropy)) if v is not None}
    if args.iterations is not None and args.warmup_iterations is None:  # a short run keeps the paper's share
        overrides["warmup"] = round(args.iterations * defaults["warmup_iterations"] / defaults["iterations"])
    if args.milestones is not None:
        try:
            overrides["milestones"] = tuple(int(v) for v in args.milestones.split(","))
        except ValueError:
            raise ValueError(f"--milestones takes comma-separated iterations such as 10000,15000, got "
                             f"{args.milestones!r}") from None
    elif args.iterations is not None:  # milestones at the same fractions of the run as the paper's
        overrides["milestones"] = tuple(round(args.iterations * m / defaults["iterations"])
                                        for m in defaults["milestones"])
    cfg = zoo.intro_config(args.preset, args.dataset, seed=args.seed, device=args.device, quiet=args.quiet,
                           **overrides)
    out = _run_dir(args)
    two_d = args.dataset in BOXES
    dataset = _load_data(args.dataset, args.likelihood or "gaussian", args.data_dir, args.download)
    options = {k: v for k, v in (("z_dim", args.z_dim), ("num_components", args.pseudo_inputs),
                                 ("likelihood", args.likelihood)) if v is not None}
    if args.channels is not None:
        try:
            options["channels"] = [int(c) for c in args.channels.split(",")]
        except ValueError:
            raise ValueError(f"--channels takes comma-separated integers such as 64,128, got {args.channels!r}") \
                from None
    if args.hidden is not None:
        options["hidden"] = _model_options(args, dataset)["hidden"]
    torch.manual_seed(args.seed)
    model = zoo.build(args.preset, event_shape=dataset.event_shape, **options)
    trainer = IntroTrainer(model, _intro_draw(dataset, options.get("likelihood", "gaussian")), cfg, out)
    if args.resume:
        trainer.resume()
    write_json(out / "config.json", {"preset": args.preset, "dataset": args.dataset, "model_options": options,
                                     "intro": asdict(cfg), "objective": "introspective",
                                     "data_dir": str(args.data_dir) if args.data_dir else None,
                                     "binarize": dataset.binarize})
    start = time.perf_counter()
    result = trainer.fit()
    summary = {"preset": args.preset, "dataset": args.dataset, "iterations": result.pop("step"),
               "last_train_stats": result, "train_seconds": round(time.perf_counter() - start, 2)}
    if two_d:
        summary.update(evaluate_2d(model, args.dataset, grid_size=args.grid_size or 1024))
        (out / "figures").mkdir(exist_ok=True)
        density_plot(model, args.dataset, out / "figures" / "density.png")
    else:
        summary.update(evaluate_model(model, dataset.to(trainer.device), out, args.eval_samples, quiet=args.quiet))
        summary.update(_intro_image_report(model, dataset, out, quiet=args.quiet))
    write_json(out / "summary.json", summary)
    if not args.quiet:
        print(f"run directory: {out}")
        print(", ".join(f"{k} {summary[k]:.4g}" for k in ("gnelbo", "kl", "jsd", "test_log_likelihood")
                        if k in summary))
    return summary


@torch.no_grad()
def _intro_image_report(model, dataset, out, quiet=True, batch_size=500):
    """Paper 001 §5.2 on images: classifier-FID of prior samples (GEN) and reconstructions (REC)
    against the test images, linear-SVM and k-NN accuracy of the latent means, the responsibility
    entropy, and ``figures/latent_prior.png`` (latent means with the prior's component means)."""
    from pyrozoo.evaluation import distribution_mean
    from pyrozoo.evaluation.images import classifier_fid, feature_classifier, latent_probes, responsibility_entropy
    from pyrozoo.plots import latent_prior_plot

    model.eval()
    test, labels = dataset.test, dataset.labels

    def codes(x):
        return torch.cat([distribution_mean(model.encode(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])

    def batched(fn, x):
        return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    report = {"responsibility_entropy": responsibility_entropy(model, test)}
    test_codes = codes(test)
    if "train" in labels and "test" in labels:
        with torch.enable_grad():
            net = feature_classifier(dataset.name, dataset.train, labels["train"], progress=not quiet)
        fake = batched(lambda x: model.sample(len(x)), test)
        report["classifier_fid_gen"] = classifier_fid(net, test, fake)
        report["classifier_fid_rec"] = classifier_fid(net, test, batched(model.reconstruct, test))
        report["feature_classifier_train_accuracy"] = net.train_accuracy
        report.update(latent_probes(codes(dataset.train), labels["train"], test_codes, labels["test"]))
    mix = model.prior()
    means = getattr(mix, "loc", None)
    weights = mix.log_weights.exp() if hasattr(mix, "log_weights") else None
    latent_prior_plot(test_codes, labels.get("test"), means if torch.is_tensor(means) and means.dim() == 2 else None,
                      weights, Path(out) / "figures" / "latent_prior.png")
    return report


def _restore_introspective(model, dataset, config, path):
    """Load an introspective checkpoint into ``model``, turning its prior into the game's MoG first
    when the checkpoint was written after the switch."""
    from pyrozoo.inference import IntroConfig, IntroLossSettings, IntroTrainer
    saved = dict(config["intro"], device="cpu", quiet=True)
    saved["loss"] = IntroLossSettings(**saved["loss"])
    saved["milestones"] = tuple(saved["milestones"])
    IntroTrainer(model, dataset.test, IntroConfig(**saved)).resume(path)
    return model


def evaluate_model(model, dataset, out, num_samples, quiet=True):
    """Test-set metrics and figures of a trained model; returns the metrics as a dict."""
    from pyrozoo.diagnostics import psis_khat
    from pyrozoo.evaluation import active_units, distribution_mean, elbo_terms, log_likelihood
    from pyrozoo.plots import image_grid, khat_plot, latent_scatter, loglik_histogram, reconstructions

    model.eval()
    test = dataset.test
    extra = {}
    if hasattr(model, "q_m"):  # paper 000: m integrated out under q(m) (posterior predictive)
        from pyrozoo.evaluation import predictive_log_likelihood
        pred = predictive_log_likelihood(model, test, num_samples=num_samples)
        ll = pred["log_likelihood"]
        extra["test_predictive_elbo"] = pred["elbo"].mean().item()
        extra.update(_stein_report(model, Path(out) / "figures"))
    else:
        ll = log_likelihood(model, test, num_samples=num_samples, progress=not quiet)
    terms = elbo_terms(model, test)
    au = active_units(model, test)
    khat = psis_khat(model, test[:200], num_samples=min(1000, max(num_samples, 100)))
    figures = Path(out) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if dataset.support == "sequence":
            extra.update(_sequence_report(model, test, out))
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


def _stein_report(model, figures):
    """q(m) of a Stein-hyperprior model: component means and scales, ``q_m.nc`` (ArviZ) and a pair plot."""
    import matplotlib.pyplot as plt

    from pyrozoo.diagnostics import mixture_inference_data, plot_component_means
    figures.mkdir(parents=True, exist_ok=True)
    mixture_inference_data(model).to_netcdf(str(figures.parent / "q_m.nc"))
    ax = plot_component_means(model)
    ax.figure.savefig(figures / "q_m_means.png", dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    mix = model.q_m()
    return {"q_m_loc": mix.loc.tolist(), "q_m_scale": mix.log_scale.exp().tolist()}


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
    if "intro" in config:
        _restore_introspective(model, dataset, config, found[0])
    else:
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
    t.add_argument("--pseudo-inputs", "--num-components", dest="pseudo_inputs", type=int,
                   help="number of pseudo-inputs / mixture components K (stein-hyperprior: M, the Stein particles)")
    t.add_argument("--normalize-gradients", action="store_true",
                   help="divide each gradient by its L2 norm before the Adam step (VampPrior authors' Adam)")
    t.add_argument("--sampler", choices=("euclidean", "brownian"),
                   help="rvae: draw q(z|x) by Euclidean reparameterisation (default, as the authors' code) or by a "
                   "Brownian walk under the metric")
    t.add_argument("--num-centres", type=int, help="RBF variance network: number of k-means centres (default 350)")
    t.add_argument("--bandwidth", type=float, help="RBF variance network: lambda in exp(-lambda |z - c|^2) (0.01)")
    t.add_argument("--m-dim", type=int, help="stein-hyperprior: dimension of the global latent m (default z_dim)")
    t.add_argument("--flow-layers", dest="num_flows", type=int,
                   help="stein-hyperprior, vae-flowprior: affine coupling layers of the prior flow (default 2)")
    t.add_argument("--conditioning", choices=("concat", "film"),
                   help="stein-hyperprior: how the encoder sees m (input concatenation or FiLM)")
    t.add_argument("--repulsion-temperature", type=float, help="stein-hyperprior: SMI's alpha (default 1)")
    t.add_argument("--kernel", help="stein-hyperprior: Stein kernel, rbf (default), imq or ppk")
    t.add_argument("--particle-lr", type=float, help="stein-hyperprior: Adam step of the Stein particles (1e-2)")
    t.add_argument("--elbo-particles", dest="num_elbo_particles", type=int,
                   help="stein-hyperprior: draws of (m, z) per particle and step (default 1)")
    t.add_argument("--iterations", type=int, help="Soft-IntroVAE presets: training iterations (default 30000)")
    t.add_argument("--warmup-iterations", type=int,
                   help="Soft-IntroVAE presets: plain VAE iterations before the game (default: 1/15 of the run)")
    t.add_argument("--milestones", help="Soft-IntroVAE presets: iterations at which the learning rate drops x0.1 "
                   "(default: the paper's 10000,15000 of 30000, scaled to --iterations)")
    t.add_argument("--channels", help="Soft-IntroVAE presets on images: channels of the residual coders "
                   "(default 64,128; 64,128,256 for colour images)")
    t.add_argument("--r-entropy", type=float, help="Soft-IntroVAE presets: weight of the responsibility-entropy "
                   "term (eq. 11); default 0 on 2D sets (§5.1), the preset's (10 for sintrovae-prior) on images")
    t.add_argument("--grid-size", type=int,
                   help="Soft-IntroVAE on 2D sets: points per side of the gnELBO grid (1024, the paper's)")
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
