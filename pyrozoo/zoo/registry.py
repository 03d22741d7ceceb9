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

from pyrozoo.runs.options import OPTIONS, REGIMES, check_options

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
        return tuple(n for n in params if n in OPTIONS and OPTIONS[n].group == "model")

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
    ``scale``); unknown options and bad values raise ``ValueError`` naming the valid ones.
    """
    r = recipe(name)
    for key, value in options.items():
        if key in OPTIONS and OPTIONS[key].group == "model":
            if key not in r.model_options:
                raise ValueError(f"{key} is not an option of preset {name!r}; its model options are "
                                 f"{', '.join(r.model_options) or 'none'}")
            check_options({key: value})
    accepted = inspect.signature(r.builder).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in options if k not in accepted and not (takes_kwargs and k in ("num_bins", "scale"))]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for preset {name!r}; its model options are "
                         f"{', '.join(r.model_options) or 'none'}")
    return r.builder(tuple(event_shape), **options)


def with_prior(builder: Callable, prior: str) -> Callable:
    """``builder`` with its ``prior`` option defaulting to ``prior`` (one builder, several presets)."""
    @functools.wraps(builder)
    def build(event_shape, **options):
        options.setdefault("prior", prior)
        return builder(event_shape, **options)
    return build


def needs_data(name: str) -> bool:
    """Whether preset ``name`` must be given training images (``data=``)."""
    return recipe(name).needs_data
