"""Experiment tracking: loggers for the training loop's logger hook (``log(record, step)``, ``close()``).

Every run logs to TensorBoard in ``RUN/tensorboard`` by default: each numeric entry of each
metrics record (the loss, the validation ELBO, β, the per-paper terms such as the introspective
game's ``kl`` and ``rec``), the learning rates, the KL and reconstruction terms of the first
1000 validation points, small grids of samples and reconstructions once per period, and at the
end the evaluation report. wandb and MLflow log the same through optional extras
(``pip install "pyrozoo[wandb]"``, ``"pyrozoo[mlflow]"``) whose packages are imported only when
asked for. The run option ``loggers`` (``--loggers none|tensorboard|wandb|mlflow``,
comma-separated) chooses them.

Tags: ``train/<key>`` for a record's training metrics and the learning rates (``train/lr``),
``valid/<key>`` for validation ones, ``time/seconds``, images ``images/samples`` and ``images/reconstructions``,
and ``test/<key>`` / ``eval/<key>`` for the final report.
"""

from __future__ import annotations

import importlib.util
import math

#: Loggers by name: (module, class, the pip extra that installs its package, the package).
LOGGERS = {"tensorboard": ("pyrozoo.tracking.tensorboard", "TensorBoardLogger", None, "tensorboard"),
           "wandb": ("pyrozoo.tracking.external", "WandbLogger", "wandb", "wandb"),
           "mlflow": ("pyrozoo.tracking.external", "MLflowLogger", "mlflow", "mlflow")}
COUNTERS = ("epoch", "step", "iteration")

__all__ = ["LOGGERS", "MLflowLogger", "PeriodProbe", "TensorBoardLogger", "WandbLogger", "check_available",
           "make_loggers", "record_scalars", "summary_scalars"]


def __getattr__(name):
    """The logger classes and :class:`PeriodProbe`, imported on first use."""
    if name == "PeriodProbe":
        from pyrozoo.tracking.probe import PeriodProbe
        return PeriodProbe
    for module, cls, _, _ in LOGGERS.values():
        if name == cls:
            import importlib
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(f"module 'pyrozoo.tracking' has no attribute {name!r}")


def require(package: str, what: str):
    """Import ``package`` or raise ``ValueError`` naming the pip extra that installs it."""
    extra = next((e for _, _, e, p in LOGGERS.values() if p == package and e), None)
    if importlib.util.find_spec(package) is None:
        how = f'pip install "pyrozoo[{extra}]"' if extra else f"pip install {package}"
        raise ValueError(f"{what} needs the {package} package, which is not installed: {how}")
    return importlib.import_module(package)


def check_available(names) -> None:
    """Raise ``ValueError`` (naming the extra to install) for a named logger whose package is
    missing; called before a run starts."""
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"unknown logger {name!r}; choose from none, {', '.join(LOGGERS)}")
        package = LOGGERS[name][3]
        if importlib.util.find_spec(package) is None:
            require(package, f"the {name} logger")


def make_loggers(names, run_dir, config: dict, probe=None) -> list:
    """The loggers ``names`` (entries of :data:`LOGGERS`) of a run writing into ``run_dir``, each
    given the resolved ``config`` (logged as parameters) and the ``probe``
    (:class:`~pyrozoo.tracking.probe.PeriodProbe`, or None for the records alone)."""
    import importlib
    check_available(names)
    loggers = []
    try:
        for name in names:
            module, cls, _, _ = LOGGERS[name]
            loggers.append(getattr(importlib.import_module(module), cls)(run_dir, config=config, probe=probe))
    except BaseException:
        for logger in loggers:
            logger.close()
        raise
    return loggers


def tag(key: str) -> str:
    """The tracker tag of a metrics-record key (see the module docstring)."""
    if key == "seconds":
        return "time/seconds"
    for prefix in ("train", "valid", "test"):
        if key.startswith(prefix + "_"):
            return f"{prefix}/{key[len(prefix) + 1:]}"
    return "train/" + key


def record_scalars(record: dict) -> dict:
    """``{tag: float}`` of the finite numbers of a metrics record (the step counters left out)."""
    return {tag(k): float(v) for k, v in record.items() if k not in COUNTERS and _number(v)}


def summary_scalars(summary: dict) -> dict:
    """``{tag: float}`` of an evaluation report's numbers: ``test/<key>`` for ``test_*`` entries,
    ``eval/<key>`` for the rest; dicts of numbers (active units per site) are flattened."""
    out = {}
    for key, value in summary.items():
        name = f"test/{key[5:]}" if key.startswith("test_") else f"eval/{key}"
        if isinstance(value, dict):
            out.update({f"{name}/{k}": float(v) for k, v in value.items() if _number(v)})
        elif _number(value):
            out[name] = float(value)
    return out


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
