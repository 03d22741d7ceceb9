"""The preset registry: each preset is a typed :class:`Recipe` registered under a name.

A recipe says how to build the model (a builder ``fn(event_shape, **model_options)``), how to
train it (the regime: ``"svi"``, ``"smi"``, ``"two-phase"`` or ``"introspective"``), its
default data set and binarisation, its training defaults (run options, checked against
:data:`pyrozoo.runs.options.OPTIONS` when the recipe is registered, so a misspelt key fails at
import) and which parts of the evaluation report apply.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch

from pyrozoo import checks
from pyrozoo.runs.options import OPTIONS, REGIMES, check_options, check_value, choices

_RECIPES: dict = {}

#: Report parts (see :mod:`pyrozoo.evaluation.report`) of an ordinary image or sequence VAE.
STANDARD_REPORT = ("likelihood", "elbo", "figures")


@dataclass(frozen=True)
class Recipe:
    """How a preset is built, trained and evaluated.

    - ``builder(event_shape, **model_options)`` returns the model (a ``PyroModule`` with
      ``model`` and ``guide``); its keyword parameters that are run options (``z_dim``,
      ``prior``, ...) are the preset's model options.
    - ``regime``: one of :data:`~pyrozoo.runs.options.REGIMES`.
    - ``defaults``: run options that differ from the global defaults (``{"epochs": 100, ...}``);
      ``data_defaults(dataset)`` may add defaults that depend on the data set.
    - ``binarize``: None (the data set's default), True or False.
    - ``needs_data``: the builder takes ``data=`` training images (VampPrior-data).
    - ``phase_one_beta`` (two-phase): the KL weight of phase one (0: an autoencoder).
    - ``learn_prior``, ``clip`` (introspective): prior-decoder cooperation and soft clipping.
    - ``report``: report parts; ``report_2d``: the parts on the generated 2D sets.
    - ``omit``: builder options that are not options of this preset (a builder shared by several
      presets may take options that only one of them uses).
    - ``reference``: the paper, cited by authors, year, title and arXiv id.
    """

    name: str
    description: str
    builder: Callable
    regime: str = "svi"
    defaults: dict = field(default_factory=dict)
    data_defaults: Callable | None = None
    binarize: bool | None = None
    needs_data: bool = False
    phase_one_beta: float | None = None
    learn_prior: bool = False
    clip: bool = False
    report: tuple = STANDARD_REPORT
    report_2d: tuple | None = None
    reference: str = ""
    omit: tuple = ()

    def __post_init__(self):
        if self.regime not in REGIMES:
            raise ValueError(f"preset {self.name!r}: unknown regime {self.regime!r}; choose from {', '.join(REGIMES)}")
        check_options(self.defaults, self.regime, context=f"defaults of preset {self.name!r}")
        if self.data_defaults is not None:
            from pyrozoo.data import DATASETS
            for name in DATASETS:
                check_options(self.data_defaults(name), self.regime, context=f"data defaults of preset {self.name!r}")
        if (self.learn_prior or self.clip) and self.regime != "introspective":
            raise ValueError(f"preset {self.name!r}: learn_prior and clip belong to the introspective regime")
        if self.phase_one_beta is not None and self.regime != "two-phase":
            raise ValueError(f"preset {self.name!r}: phase_one_beta belongs to the two-phase regime")
        from pyrozoo.evaluation.report import REPORT_PARTS
        for part in self.report + (self.report_2d or ()):
            if part not in REPORT_PARTS:
                raise ValueError(f"preset {self.name!r}: unknown report part {part!r}; choose from "
                                 f"{', '.join(REPORT_PARTS)}")

    @property
    def model_options(self) -> tuple:
        """The run options the builder takes (``z_dim``, ``prior``, ...)."""
        params = inspect.signature(self.builder).parameters
        return tuple(n for n in params if n in OPTIONS and OPTIONS[n].group == "model" and n not in self.omit)

    def defaults_for(self, dataset: str) -> dict:
        """The preset's defaults on ``dataset`` (``defaults`` updated by ``data_defaults``)."""
        extra = self.data_defaults(dataset) if self.data_defaults is not None else {}
        return {**self.defaults, **extra}

    def report_for(self, dataset: str) -> tuple:
        """The report parts on ``dataset``."""
        from pyrozoo.data import BOXES
        return self.report_2d if self.report_2d is not None and dataset in BOXES else self.report


def register(name: str, description: str, regime: str = "svi", **recipe) -> Callable:
    """Decorator registering a builder ``fn(event_shape, **options) -> model`` as preset ``name``
    (the keywords are :class:`Recipe` fields)."""
    def deco(fn):
        _RECIPES[name] = Recipe(name=name, description=description, builder=fn, regime=regime, **recipe)
        return fn
    return deco


def recipe(name: str) -> Recipe:
    """The :class:`Recipe` of preset ``name``; ``ValueError`` names the presets for an unknown one."""
    if name not in _RECIPES:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(_RECIPES)}")
    return _RECIPES[name]


def presets() -> dict:
    """``{name: one-line description}`` of every registered preset."""
    return {name: r.description for name, r in _RECIPES.items()}


def train_defaults(name: str) -> dict:
    """The training defaults of a preset (a dict; may be empty)."""
    return dict(recipe(name).defaults)


def build(name: str, event_shape=(1, 8, 8), **options):
    """Build preset ``name`` for data points of shape ``event_shape``.

    ``options`` are the preset's model options (:attr:`Recipe.model_options`), ``data`` for
    presets whose prior is made of training images, and likelihood settings (``num_bins``,
    ``scale``); unknown options and bad values raise ``ValueError`` naming the valid ones
    (checked by :func:`check_builder_args` before anything is built).
    """
    r = recipe(name)
    for key in options:
        if key in OPTIONS and OPTIONS[key].group == "model" and key not in r.model_options:
            raise ValueError(f"{key} is not an option of preset {name!r}; its model options are "
                             f"{', '.join(r.model_options) or 'none'}")
    accepted = inspect.signature(r.builder).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in options if k not in accepted and not (takes_kwargs and k in ("num_bins", "scale"))]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for preset {name!r}; its model options are "
                         f"{', '.join(r.model_options) or 'none'}")
    check_builder_args({"event_shape": event_shape, **options})
    return r.builder(tuple(event_shape), **options)


def _check_scale(value):
    """A Gaussian likelihood's scale: a positive number, ``"learned"`` or ``"decoder"``."""
    return value if isinstance(value, str) else checks.number("scale", value, positive=True)


#: Builder arguments that are not run options, with their checks.
BUILDER_ARGS = {
    "num_bins": lambda v: checks.count("num_bins", v, 2),
    "scale": _check_scale,
    "flow_hidden": lambda v: checks.counts("flow_hidden", v),
    "min_precision": lambda v: checks.number("min_precision", v, positive=True),
    "t": lambda v: checks.number("t", v, positive=True),
    "seed": lambda v: checks.count("seed", v, 0),
}


def check_builder_args(arguments: dict) -> None:
    """Check the arguments of a zoo builder by name, before anything is built; ``ValueError``
    names the argument and what it accepts.

    ``event_shape`` is a tuple of positive integers; the numeric model options of
    :data:`pyrozoo.runs.options.OPTIONS` (``z_dim``, ``hidden``, ``num_components``, ...) keep
    that table's bounds; ``data`` (training images) is a floating tensor ``(N, *event_shape)``;
    :data:`BUILDER_ARGS` covers likelihood and network settings; a name (``likelihood``,
    ``posterior``, ``kernel``, ...) must be one of the option's choices (``prior`` is left to the
    preset, which knows its own). ``None`` means the default.
    """
    event_shape = arguments.get("event_shape")
    if event_shape is not None:
        event_shape = checks.shape("event_shape", event_shape)
    for key, value in arguments.items():
        option = OPTIONS.get(key)
        if value is None or key == "event_shape":
            continue
        if key == "data":
            checks.points(value, event_shape if event_shape is not None else value.shape[1:], name="data",
                          dtype=torch.get_default_dtype()) if torch.is_tensor(value) else checks.tensor("data", value)
        elif key in BUILDER_ARGS:
            BUILDER_ARGS[key](value)
        elif option is not None and option.group == "model" and option.kind in ("int", "float", "ints"):
            low = option.minimum if option.minimum is not None else (1 if option.positive else 0)
            if option.kind == "int":
                checks.count(key, value, int(low))
            elif option.kind == "ints":
                checks.counts(key, value, int(low))
            else:
                checks.number(key, value, minimum=option.minimum, positive=option.positive)
        elif option is not None and option.group == "model" and isinstance(value, str) and choices(option):
            check_value(option, value)  # a name among the option's choices (likelihood, posterior, kernel, ...)


def checked(builder: Callable) -> Callable:
    """Decorator: ``builder`` with its arguments checked by :func:`check_builder_args` first."""
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def build(*args, **kwargs):
        bound = signature.bind(*args, **kwargs).arguments
        extra = next((bound.pop(p.name) for p in signature.parameters.values()
                      if p.kind is inspect.Parameter.VAR_KEYWORD and p.name in bound), {})
        check_builder_args({**bound, **extra})
        return builder(*args, **kwargs)
    return build


def with_prior(builder: Callable, prior: str) -> Callable:
    """``builder`` with its ``prior`` option defaulting to ``prior`` (one builder, several presets)."""
    if not isinstance(prior, str):
        raise ValueError(f"prior must be the name of a prior part, got {prior!r}")
    @functools.wraps(builder)
    def build(event_shape, **options):
        options.setdefault("prior", prior)
        return builder(event_shape, **options)
    return build


def needs_data(name: str) -> bool:
    """Whether preset ``name`` must be given training images (``data=``)."""
    return recipe(name).needs_data
