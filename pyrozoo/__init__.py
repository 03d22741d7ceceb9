"""pyrozoo: a Pyro model zoo of variational autoencoders with learned priors.

``pyrozoo.train(preset, ...)`` trains any preset and returns a :class:`~pyrozoo.runs.Run`;
``pyrozoo.load(run_dir)`` and ``pyrozoo.from_pretrained(dir)`` reload one. The subpackages are
attributes of the package (imported on first use): ``zoo``, ``data``, ``nn``, ``distributions``,
``geometry``, ``models``, ``guides``, ``inference``, ``evaluation``, ``diagnostics``, ``plots``,
``tracking``, ``runs``.

Layers (lower never imports higher): ``nn``/``data`` -> ``distributions``/``geometry`` ->
``models``/``guides`` -> ``inference`` -> ``evaluation``/``diagnostics``/``plots`` -> ``tracking`` ->
``zoo``/``runs`` -> ``cli``.
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.2.0"

SUBPACKAGES = ("zoo", "data", "nn", "distributions", "geometry", "models", "guides", "inference", "evaluation",
               "diagnostics", "plots", "tracking", "runs")
_API = {"train": "pyrozoo.runs", "load": "pyrozoo.runs", "from_pretrained": "pyrozoo.runs", "Run": "pyrozoo.runs"}

__all__ = list(SUBPACKAGES) + list(_API)

if TYPE_CHECKING:  # pragma: no cover
    from pyrozoo import (data, diagnostics, distributions, evaluation, geometry, guides, inference, models, nn, plots,
                         runs, tracking, zoo)
    from pyrozoo.runs import Run, from_pretrained, load, train


def __getattr__(name):
    """Import a subpackage or an API function on first use (``pyrozoo.zoo``, ``pyrozoo.train``)."""
    if name in SUBPACKAGES:
        return importlib.import_module(f"pyrozoo.{name}")
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'pyrozoo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
