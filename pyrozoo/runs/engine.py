"""From a resolved configuration to data, a model and a training strategy; training a run.

Everything here is reached through :func:`pyrozoo.train`, :func:`pyrozoo.load` and
:class:`pyrozoo.Run`; it holds the wiring that used to live in the command line.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from pyrozoo.data import load as load_data
from pyrozoo.inference import (SMI, IntroStrategy, SVIStrategy, TrainConfig, TrainingLoop, TwoPhaseStrategy,
                               make_objective, stein_param_groups, switch_prior)
from pyrozoo.inference.game import IntroConfig
from pyrozoo.nn.precision import set_autocast
from pyrozoo.runs.configfile import write_yaml
from pyrozoo.zoo.registry import Recipe, recipe as get_recipe

GREY_IMAGES = ("digits", "mnist", "fashion-mnist")


def load_dataset(config: dict):
    """The data set of a resolved configuration, binarised as the configuration says."""
    opts = config["options"]
    return load_data(config["dataset"], data_dir=opts.get("data_dir"), download=bool(opts.get("download")),
                     binarize=config.get("binarize"))


def choose_binarize(recipe: Recipe, options: dict):
    """Whether to binarise the data set: by the caller's likelihood on grey image sets, else the
    preset's choice (None: the data set's default)."""
    lik = options.get("likelihood")
    name = options["dataset"]
    if lik is not None and lik != recipe.defaults.get("likelihood") and name in GREY_IMAGES:
        return lik == "bernoulli"
    return recipe.binarize


def model_options(recipe: Recipe, config: dict, dataset) -> dict:
    """The builder's keyword arguments: the preset's model options that are set, the likelihood
    (chosen by the data's support when unset) and ``num_bins`` of a discretised logistic."""
    opts = config["options"]
    out = {k: opts[k] for k in recipe.model_options if k != "likelihood" and opts.get(k) is not None}
    if "likelihood" not in recipe.model_options:
        return out
    if dataset.support == "sequence":  # the sequence VAE brings its own likelihood
        if opts.get("likelihood") is not None:
            out["likelihood"] = opts["likelihood"]
        return out
    lik = opts.get("likelihood") or {"binary": "bernoulli", "real": "gaussian"}.get(dataset.support, "dlogistic")
    if lik == "bernoulli" and dataset.support != "binary":
        raise ValueError(f"the bernoulli likelihood needs binary data; {dataset.name} is {dataset.support}-valued "
                         "here (leave the likelihood unset, or choose gaussian or dlogistic)")
    if lik != "bernoulli" and dataset.support == "binary":
        raise ValueError(f"the {lik} likelihood needs continuous data; this run binarises {dataset.name}")
    out["likelihood"] = lik
    if lik == "dlogistic":
        out["num_bins"] = dataset.levels or 256
    return out


def build_model(config: dict, event_shape, data=None):
    """The model of a resolved configuration, for data points of shape ``event_shape``; ``data``
    (training images) for priors made of them, else zeros of the right shape (their values come
    from the checkpoint)."""
    r = get_recipe(config["preset"])
    options = dict(config["model"])
    if r.needs_data or options.get("prior") == "vampprior-data":
        if data is None:
            k = int(options.get("num_components") or 500)
            data = torch.zeros((k, *event_shape))
        options["data"] = data
    torch.manual_seed(config["options"]["seed"])
    model = r.builder(tuple(event_shape), **options)
    if config.get("game_prior"):  # the introspective game turned the prior into its MoG
        switch_prior(model, IntroConfig.from_dict(config["game_prior"]))
    if config["options"].get("autocast"):  # bf16 coders while training; every evaluation stays float32
        set_autocast(model, config["options"]["autocast"])
    return model


def train_config(options: dict) -> TrainConfig:
    """The :class:`TrainConfig` of an epoch-based run."""
    return TrainConfig(epochs=options["epochs"], batch_size=options["batch_size"], lr=options["lr"],
                       warmup=options["warmup"], beta=options["beta"], kl_schedule=options["kl_schedule"],
                       cycles=options["cycles"], patience=options["patience"],
                       normalize_gradients=options["normalize_gradients"], accumulate=options["accumulate"],
                       compile=options["compile"], cuda_graph=options.get("cuda_graph", False),
                       seed=options["seed"],
                       device=options["device"], quiet=options["quiet"]).validate()


def intro_settings(config: dict) -> IntroConfig:
    """The :class:`IntroConfig` of an introspective run."""
    from pyrozoo.zoo.intro import intro_config
    o = config["options"]
    return intro_config(config["preset"], config["dataset"], iterations=o["iterations"],
                        warmup=o["warmup_iterations"], milestones=tuple(o["milestones"]), batch_size=o["batch_size"],
                        lr_encoder=o["lr"], lr_decoder=o["lr"], r_entropy=o["r_entropy"], accumulate=o["accumulate"],
                        seed=o["seed"],
                        device=o["device"], quiet=o["quiet"])


def intro_draw(dataset, likelihood):
    """Training draws of an introspective run: fresh points of a 2D set (as the paper's
    generators), else random training images (binarised afresh for a Bernoulli decoder)."""
    from pyrozoo.data import BOXES, sample_toy
    if dataset.name in BOXES:
        return lambda n: sample_toy(dataset.name, n)
    train = dataset.train
    if likelihood == "bernoulli" and dataset.binarize:
        return lambda n: torch.bernoulli(train[torch.randint(0, len(train), (n,), device=train.device)])
    return train


def make_strategy(config: dict, model, dataset):
    """The training strategy of a resolved configuration's regime."""
    r = get_recipe(config["preset"])
    o = config["options"]
    if r.regime == "introspective":
        return IntroStrategy(model, intro_draw(dataset, config["model"].get("likelihood", "gaussian")),
                             intro_settings(config))
    cfg = train_config(o)
    if r.regime == "smi":
        smi = SMI(model.model, model.guide, num_elbo_particles=o["elbo_particles"], **model.smi_options)
        return SVIStrategy(model, dataset, cfg, objective=smi, valid_objective=smi,
                           optimizer=lambda _: torch.optim.Adam(stein_param_groups(model, o["lr"], o["particle_lr"])))
    objective = make_objective(o["objective"], o["particles"], free_bits=o["free_bits"], kl_groups=o["kl_groups"])
    if r.regime == "two-phase":
        return TwoPhaseStrategy(model, dataset, cfg, objective=objective, phase_epochs=tuple(o["phase_epochs"]),
                                phase_one_beta=r.phase_one_beta)
    return SVIStrategy(model, dataset, cfg, objective=objective)


def apply_changes(strategy, changes: dict, config: dict):
    """Apply the settings a resume changed to a strategy whose checkpoint is loaded."""
    o = config["options"]
    if isinstance(strategy, IntroStrategy):
        strategy.config.iterations = o["iterations"]
        if "lr" in changes:
            strategy.set_lr(o["lr"])
        return
    inner = strategy.inner if isinstance(strategy, TwoPhaseStrategy) else strategy
    if "lr" in changes:
        inner.set_lr(o["lr"], 0 if config["regime"] == "smi" else None)
    if "particle_lr" in changes:
        inner.set_lr(o["particle_lr"], 1)
    if isinstance(strategy, TwoPhaseStrategy):
        strategy.phase_epochs = tuple(o["phase_epochs"])
        strategy.configs[0].epochs, strategy.configs[1].epochs = strategy.phase_epochs
        strategy.configs[1].patience = o["patience"]
        strategy.num_periods = sum(strategy.phase_epochs)
        strategy.inner.config.epochs = strategy.configs[strategy.phase - 1].epochs
        strategy.inner.num_periods = strategy.inner.config.epochs
    else:
        strategy.config.epochs = strategy.num_periods = o["epochs"]
        strategy.config.patience = o["patience"]


def check_progress(config: dict, loop: TrainingLoop):
    """Refuse a resume whose new length is shorter than what the checkpoint already trained."""
    o, s = config["options"], loop.strategy
    done = s.units_done(loop.period)
    if isinstance(s, IntroStrategy):
        if o["iterations"] < done:
            raise ValueError(f"the run has already trained {done} iterations; iterations must be >= {done}")
    elif isinstance(s, TwoPhaseStrategy):
        a, b = o["phase_epochs"]
        if s.phase == 2 and a != s.phase_epochs[0]:
            raise ValueError(f"the run is in its second phase; phase one's length cannot change ({s.phase_epochs[0]} "
                             f"-> {a})")
        if a + b < done or (s.phase == 1 and a < done):
            raise ValueError(f"the run has already trained {done} epochs; phase_epochs {a},{b} would end before that")
    elif o["epochs"] < done:
        raise ValueError(f"the run has already trained {done} epochs; epochs must be >= {done}")


def run_training(config: dict, run_dir, dataset, model, changes=None, loggers=()) -> tuple:
    """Train (or resume) into the open run directory ``run_dir``, writing ``config.json`` and
    ``config.yaml`` once the settings are known to fit the checkpoint; returns ``(loop, result,
    seconds)`` with the best weights loaded into ``model``. The loop's loggers (``loggers`` and the
    trackers the configuration names, see :func:`tracking_loggers`) stay open so that the caller
    can log the evaluation (:func:`log_summary`) and then ``loop.close()`` them; on a failure they
    are closed here."""
    strategy = make_strategy(config, model, dataset)
    loop = TrainingLoop(strategy, run_dir, loggers=loggers)
    try:
        if run_dir.resuming:
            loop.resume()
            check_progress(config, loop)
            apply_changes(strategy, changes or {}, config)  # onto the restored optimiser and strategy
        run_dir.write_json("config.json", config)
        if run_dir.writer:
            write_yaml(run_dir.path / "config.yaml", config)
        loop.loggers[:0] = tracking_loggers(config, run_dir, model, dataset, strategy)
        start = time.perf_counter()
        limit = config["options"].get("time_limit")
        result = loop.fit(time_limit=None if limit is None else 60.0 * limit)
    except BaseException:
        loop.close()
        raise
    loop.load_best()
    return loop, result, time.perf_counter() - start


def tracking_loggers(config: dict, run_dir, model, dataset, strategy) -> list:
    """The experiment trackers of the configuration's ``loggers`` option (see
    :mod:`pyrozoo.tracking`), each with a :class:`~pyrozoo.tracking.PeriodProbe` of ``model``;
    none on a process that does not write the run directory."""
    names = config["options"].get("loggers") or []
    if not names or not run_dir.writer:
        return []
    from pyrozoo.tracking import make_loggers
    from pyrozoo.tracking.probe import PeriodProbe
    report = get_recipe(config["preset"]).report_for(config["dataset"])
    probe = PeriodProbe(model, dataset, strategy, kl="elbo" in report, seed=config["options"]["seed"])
    return make_loggers(names, run_dir.path, config, probe)


def log_summary(loggers, summary: dict):
    """Hand the evaluation report to the loggers that take one (``log_summary(summary)``)."""
    for logger in loggers:
        if hasattr(logger, "log_summary"):
            logger.log_summary(summary)


def default_out(preset: str, dataset: str) -> Path:
    """``runs/PRESET-DATASET``, numbered (``-2``, ``-3``, ...) when it exists."""
    base = Path("runs") / f"{preset}-{dataset}"
    path, i = base, 2
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path
