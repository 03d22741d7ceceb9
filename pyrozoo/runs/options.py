"""The options of a run: one table that the Python API, the recipes and the command line share.

Every keyword of :func:`pyrozoo.train` is an :class:`Option` here, with its type, its range or
choices, the training regimes it applies to, whether a resumed run may change it, and its help
text (the ``pyrozoo train`` flags are generated from this table). :func:`check_value` and
:func:`check_options` validate values before any work starts and name the accepted values.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any

REGIMES = ("svi", "smi", "two-phase", "introspective")
EPOCHS = ("svi", "smi", "two-phase")
LIKELIHOODS = ("bernoulli", "gaussian", "dlogistic")


@dataclass(frozen=True)
class Option:
    """One run option: ``kind`` is ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"ints"``
    (a list of integers), ``"names"`` (a list of ``choices``, comma-separated on the command
    line) or ``"path"``; ``minimum`` (inclusive; ``positive`` makes it exclusive at 0),
    ``choices`` and ``length`` (for ``"ints"``) bound the values; ``regimes`` lists the
    training regimes it applies to; ``group`` is ``"data"``, ``"model"``, ``"train"``, ``"eval"``
    or ``"run"`` (model options go to the preset's builder, when it takes them); ``resumable``
    options may change when a run resumes; ``default`` applies when neither the preset nor the
    caller sets a value (None: the builder's or strategy's own default); ``legacy`` is the value
    that runs written before the option existed used, when the default does something else
    (:func:`pyrozoo.runs.run.read_config` fills it in); ``metavar`` names the value in the
    command-line help (default: by kind)."""

    name: str
    kind: str
    help: str
    group: str = "train"
    regimes: tuple = REGIMES
    choices: tuple | None = None
    minimum: float | None = None
    positive: bool = False
    length: int | None = None
    resumable: bool = False
    default: Any = None
    flags: tuple = ()
    metavar: str | None = None
    legacy: Any = None

    @property
    def flag(self) -> str:
        """The command-line flag (the first of ``flags``, else ``--name-with-dashes``)."""
        return self.flags[0] if self.flags else "--" + self.name.replace("_", "-")


def _options(*opts: Option) -> dict:
    return {o.name: o for o in opts}


def _choices(kind):
    """Choices defined by lower layers, imported lazily to keep ``import pyrozoo`` light."""
    if kind == "dataset":
        from pyrozoo.data import DATASETS
        return DATASETS
    if kind == "posterior":
        from pyrozoo.guides import POSTERIORS
        return tuple(POSTERIORS)
    if kind == "objective":
        from pyrozoo.inference.objectives import OBJECTIVES
        return tuple(OBJECTIVES)
    if kind == "kernel":
        from pyrozoo.inference.kernels import KERNELS
        return tuple(KERNELS)
    if kind == "schedule":
        from pyrozoo.inference.annealing import SCHEDULES
        return SCHEDULES
    raise KeyError(kind)


OPTIONS = _options(
    # data
    Option("dataset", "str", "data set (default: the preset's, else digits)", group="data", choices=("@dataset",)),
    Option("data_dir", "path", "data root (default: $PYROZOO_DATA, else ~/.cache/pyrozoo/data)", group="data"),
    Option("download", "bool", "download missing data sets (never needed for digits and the generated sets)",
           group="data", default=False),
    # model
    Option("likelihood", "str", "p(x|z): bernoulli (binarised data), gaussian or dlogistic (discretised logistic)",
           group="model", choices=LIKELIHOODS),
    Option("z_dim", "int", "latent dimension", group="model", minimum=1),
    Option("hidden", "ints", "hidden layer sizes, e.g. 300,300", group="model", minimum=1),
    Option("posterior", "str", "posterior family of the encoder", group="model", choices=("@posterior",)),
    Option("flow_steps", "int", "number of planar/IAF layers of the posterior", group="model", minimum=1),
    Option("prior", "str", "prior part (the preset lists the ones it accepts)", group="model"),
    Option("num_components", "int", "mixture components / pseudo-inputs K (stein-hyperprior: M, the Stein "
           "particles)", group="model", minimum=1, flags=("--num-components", "--pseudo-inputs")),
    Option("sampler", "str", "rvae: draw q(z|x) by Euclidean reparameterisation or by a Brownian walk",
           group="model", choices=("euclidean", "brownian")),
    Option("distance", "str", "rvae: the heat kernels' squared distance: geodesic (curve-energy minimisation, the "
           "paper's) or local ((z-mu)^T G(mu) (z-mu))", group="model", choices=("geodesic", "local"),
           legacy="local"),
    Option("num_centres", "int", "RBF variance network: number of k-means centres", group="model", minimum=1),
    Option("bandwidth", "float", "RBF variance network: lambda in exp(-lambda |z - c|^2)", group="model",
           positive=True),
    Option("m_dim", "int", "stein-hyperprior: dimension of the global latent m (default z_dim)", group="model",
           minimum=1),
    Option("num_flows", "int", "stein-hyperprior, vae-flowprior: affine coupling layers of the prior flow",
           group="model", minimum=1, flags=("--flow-layers",)),
    Option("conditioning", "str", "stein-hyperprior: how the encoder sees m", group="model",
           choices=("concat", "film")),
    Option("repulsion_temperature", "float", "stein-hyperprior: SMI's repulsion temperature alpha", group="model",
           minimum=0.0),
    Option("kernel", "str", "stein-hyperprior: Stein kernel", group="model", choices=("@kernel",)),
    Option("repulsion_scale", "str", "stein-hyperprior: weigh the Stein repulsion against the per-point ELBO "
           "(per-point: SMI's attraction divided by N) or the whole-data ELBO (plain: the design card's SMI)",
           group="model", choices=("per-point", "plain"), legacy="plain"),
    Option("channels", "ints", "Soft-IntroVAE on images: channels of the residual coders, e.g. 64,128",
           group="model", minimum=1),
    # training, epoch-based regimes
    Option("epochs", "int", "training epochs (two-phase presets: split 1:2 between the phases)", regimes=EPOCHS,
           minimum=1, resumable=True, default=100),
    Option("batch_size", "int", "mini-batch size per process (the global batch is batch_size x processes x "
           "accumulate)", minimum=1, default=100),
    Option("accumulate", "int", "micro-batches of batch_size whose gradients each process averages per step",
           minimum=1, default=1),
    Option("lr", "float", "learning rate (Adam)", positive=True, resumable=True, default=1e-3),
    Option("warmup", "int", "KL warm-up epochs (beta from 0 to 1)", regimes=EPOCHS, minimum=0, default=0),
    Option("beta", "float", "constant weight of the KL term (beta-VAE)", regimes=EPOCHS, minimum=0.0, default=1.0),
    Option("kl_schedule", "str", "KL annealing: linear warm-up per step, warm-up per epoch (epochs: beta = "
           "(e+1)/warmup in epoch e, the VampPrior authors') or cyclical", regimes=EPOCHS, choices=("@schedule",),
           default="linear"),
    Option("cycles", "int", "cycles of the cyclical KL schedule", regimes=EPOCHS, minimum=1, default=4),
    Option("patience", "int", "early-stopping patience in epochs (validation ELBO)", regimes=EPOCHS, minimum=1,
           resumable=True, default=50),
    Option("normalize_gradients", "bool", "divide each gradient by its L2 norm before the Adam step (the VampPrior "
           "authors' Adam)", regimes=EPOCHS, default=False),
    Option("objective", "str", "training objective", regimes=("svi", "two-phase"), choices=("@objective",),
           default="elbo"),
    Option("particles", "int", "samples per data point in the objective (IWAE's K)", regimes=("svi", "two-phase"),
           minimum=1, default=1),
    Option("free_bits", "float", "free-bits lambda in nats per group (objective free-bits)",
           regimes=("svi", "two-phase"), minimum=0.0),
    Option("kl_groups", "int", "number of latent groups for free bits", regimes=("svi", "two-phase"), minimum=1),
    Option("phase_epochs", "ints", "two-phase presets: epochs of the network phase and of the variance/prior phase, "
           "e.g. 100,200 (the paper's)", regimes=("two-phase",), minimum=1, length=2, resumable=True),
    Option("compile", "str", "compile the training loss with torch.compile (inductor: generated kernels; "
           "aot_eager: captured graphs run eagerly)", regimes=EPOCHS, choices=("inductor", "aot_eager")),
    Option("cuda_graph", "bool", "capture the training step (forward, backward, Adam) in a CUDA graph and replay it "
           "(device cuda, one process, the elbo objective, VAE/HVAE presets)", regimes=("svi",), default=False),
    Option("autocast", "str", "train the MLP, convolutional, residual and PixelCNN coders under bf16 autocast "
           "(losses, likelihoods and every evaluation stay float32; the R-VAE presets refuse it)",
           choices=("bf16",), resumable=True),
    Option("particle_lr", "float", "stein-hyperprior: Adam step of the Stein particles", regimes=("smi",),
           positive=True, resumable=True, default=1e-2),
    Option("elbo_particles", "int", "stein-hyperprior: draws of (m, z) per particle and step", regimes=("smi",),
           minimum=1, default=1),
    # training, the introspective game
    Option("iterations", "int", "Soft-IntroVAE presets: training iterations", regimes=("introspective",), minimum=1,
           resumable=True, default=30000),
    Option("warmup_iterations", "int", "Soft-IntroVAE presets: plain VAE iterations before the game (default: the "
           "paper's share of the run)", regimes=("introspective",), minimum=0),
    Option("milestones", "ints", "Soft-IntroVAE presets: iterations at which the learning rate drops x0.1 (default: "
           "the paper's fractions of the run)", regimes=("introspective",), minimum=0),
    Option("r_entropy", "float", "Soft-IntroVAE presets: weight of the responsibility-entropy term (eq. 11)",
           regimes=("introspective",), minimum=0.0),
    # evaluation
    Option("eval_samples", "int", "importance samples S of the test log-likelihood", group="eval", minimum=1,
           resumable=True, default=5000),
    Option("eval_points", "int", "test points of the importance-sampled log-likelihood (default: all)",
           group="eval", minimum=1, resumable=True),
    Option("grid_size", "int", "Soft-IntroVAE on 2D sets: points per side of the gnELBO grid",
           group="eval", regimes=("introspective",), minimum=2, resumable=True, default=1024),
    Option("inception_fid", "bool", "image data: also report the standard FID (InceptionV3 features of "
           "torch-fidelity; pip install \"pyrozoo[fid]\") of samples and reconstructions against the test images "
           "(the first eval_points of them)", group="eval", resumable=True, default=False),
    Option("inception_weights", "path", "InceptionV3 weights file of the standard FID (default: "
           "$PYROZOO_INCEPTION_WEIGHTS, else torch-fidelity downloads them)", group="eval", resumable=True,
           metavar="FILE"),
    # the run
    Option("device", "str", "cpu, cuda or cuda:N", group="run", resumable=True, default="cpu"),
    Option("seed", "int", "seed of every random draw", group="run", minimum=0, default=0),
    Option("time_limit", "float", "end training at the first epoch (iteration block) boundary after this many "
           "minutes of this process; the checkpoint stays whole, the best weights are scored, and resuming "
           "continues", group="run", positive=True, resumable=True, metavar="MINUTES"),
    Option("quiet", "bool", "no progress bars or messages", group="run", resumable=True, default=False),
    Option("loggers", "names", "experiment trackers, comma-separated: tensorboard (RUN/tensorboard), wandb, mlflow "
           "(pip install \"pyrozoo[wandb]\", \"pyrozoo[mlflow]\"), or none (default: tensorboard)", group="run",
           choices=("none", "tensorboard", "wandb", "mlflow"), resumable=True, default=("tensorboard",)),
)


def choices(option: Option) -> tuple | None:
    """The accepted values of ``option`` (None: any value of its kind)."""
    if option.choices and option.choices[0].startswith("@"):
        return tuple(_choices(option.choices[0][1:]))
    return option.choices


def default_eval_samples(fallback: int = 5000) -> int:
    """``$PYROZOO_EVAL_SAMPLES`` if set (a positive integer), else ``fallback`` (the preset's default, else 5000)."""
    raw = os.environ.get("PYROZOO_EVAL_SAMPLES")
    if raw is None:
        return int(fallback)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"PYROZOO_EVAL_SAMPLES must be a positive integer, got {raw!r}")
    return int(raw)


def unknown_option(name: str, valid, what: str = "option", where: str = "") -> ValueError:
    """A ``ValueError`` for the unknown ``what`` ``name`` (found in ``where``, e.g. a file), with
    close matches and the valid names."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    prefix = f"{where}: " if where else ""
    return ValueError(f"{prefix}unknown {what} {name!r}{hint}; valid {what}s: {', '.join(sorted(map(str, valid)))}")


def check_value(option: Option, value: Any) -> Any:
    """Return ``value`` if it fits ``option`` (None is always accepted: unset), else raise
    ``ValueError`` naming the option and what it accepts. Nothing is coerced, except that an
    integer is accepted where a float is expected and a tuple where a list is."""
    if value is None:
        return None
    name, kind = option.name, option.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer{_range(option)}, got {value!r}")
        _check_range(option, value)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number{_range(option)}, got {value!r}")
        _check_range(option, value)
        return float(value)
    if kind == "ints":
        if not isinstance(value, (list, tuple)) or not value or \
                any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ValueError(f"{name} must be a non-empty list of integers{_range(option)}, got {value!r}")
        if option.length is not None and len(value) != option.length:
            raise ValueError(f"{name} takes {option.length} integers, got {len(value)}: {list(value)}")
        for v in value:
            _check_range(option, v)
        return list(value)
    if kind == "names":
        return _check_names(option, value)
    if kind == "path":
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise ValueError(f"{name} must be a path, got {value!r}")
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    accepted = choices(option)
    if accepted is not None and value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(accepted)}")
    if name == "device":
        from pyrozoo.inference.loop import check_device
        check_device(value)
    return value


def _check_names(option: Option, value) -> list:
    """A ``"names"`` value: a list of choices or one comma-separated string of them; ``"none"``
    stands alone and gives the empty list."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or any(not isinstance(n, str) for n in names):
        raise ValueError(f"{option.name} must be a list of names or a comma-separated string, got {value!r}")
    names = [n.strip() for n in names]
    accepted = choices(option)
    for n in names:
        if n not in accepted:
            raise ValueError(f"unknown {option.name} entry {n!r}; choose from {', '.join(accepted)} (comma-separated)")
    if "none" in names and len(names) > 1:
        raise ValueError(f"{option.name}: 'none' cannot be combined with other names, got {','.join(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{option.name} names an entry twice: {','.join(names)}")
    return [n for n in names if n != "none"]


def _range(option: Option) -> str:
    if option.positive:
        return " > 0"
    if option.minimum is not None:
        return f" >= {option.minimum:g}"
    return ""


def _check_range(option: Option, v):
    if (option.positive and not v > 0) or (option.minimum is not None and v < option.minimum):
        raise ValueError(f"{option.name} must be{_range(option)}, got {v!r}")


def check_options(options: dict, regime: str | None = None, context: str = "") -> dict:
    """Validate a dict of option values (see :func:`check_value`); with ``regime``, refuse options
    that do not apply to it. Returns the checked values."""
    out = {}
    for name, value in options.items():
        if name not in OPTIONS:
            raise unknown_option(name, OPTIONS)
        option = OPTIONS[name]
        if regime is not None and regime not in option.regimes and value is not None:
            where = f" ({context})" if context else ""
            raise ValueError(f"{name} does not apply to the {regime} regime{where}; it applies to "
                             f"{', '.join(option.regimes)}")
        out[name] = check_value(option, value)
    return out


def options_for(regime: str) -> dict:
    """The options that apply to ``regime``."""
    return {n: o for n, o in OPTIONS.items() if regime in o.regimes}
