"""wandb and MLflow loggers (optional extras: ``pip install "pyrozoo[wandb]"``, ``"pyrozoo[mlflow]"``).

Each imports its package only when built. Both log what the TensorBoard logger logs (the same
tags) and keep their run id in ``RUN/tracking.json``, so a resumed pyrozoo run continues the same
tracker run:

- :class:`WandbLogger`: ``wandb.init`` with ``dir=RUN`` (wandb's files go to ``RUN/wandb``), the
  project ``$WANDB_PROJECT`` (default ``pyrozoo``) and the run directory's name; wandb's own
  settings apply (``wandb login``, or ``WANDB_MODE=offline`` and ``wandb sync`` later).
- :class:`MLflowLogger`: a run in the experiment ``$MLFLOW_EXPERIMENT_NAME`` (default
  ``pyrozoo``) of the tracking server ``$MLFLOW_TRACKING_URI`` (MLflow's default otherwise),
  through ``MlflowClient`` (no global active run is touched); the options are its parameters.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pyrozoo.tracking import record_scalars, require, summary_scalars

IDS = "tracking.json"


def _ids(run_dir: Path) -> dict:
    from pyrozoo.inference.rundir import read_json
    path = run_dir / IDS
    return read_json(path) if path.exists() else {}


def _save_id(run_dir: Path, name: str, run_id: str):
    from pyrozoo.inference.rundir import write_json
    write_json(run_dir / IDS, {**_ids(run_dir), name: run_id})


def _first_line(err) -> str:
    return (str(err).strip().splitlines() or [""])[0][:200]


def _hwc(grid):
    """A ``(3, H, W)`` image in [0, 1] as a uint8 ``(H, W, 3)`` array."""
    return (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def _params(config: dict) -> dict:
    """The run's settings as flat string parameters."""
    top = {k: config.get(k) for k in ("preset", "dataset", "regime")}
    return {k: str(v) for k, v in {**top, **config.get("options", {})}.items()}


class WandbLogger:
    """Log to Weights & Biases (see the module docstring). ``config``: the resolved run
    configuration (wandb's run config); ``probe``: a :class:`~pyrozoo.tracking.probe.PeriodProbe`."""

    def __init__(self, run_dir, *, config: dict | None = None, probe=None, **init):
        wandb = require("wandb", "the wandb logger")
        self.wandb, self.probe, self.step = wandb, probe, 0
        run_dir = Path(run_dir)
        known = _ids(run_dir).get("wandb")
        options = dict(project=os.environ.get("WANDB_PROJECT", "pyrozoo"), name=run_dir.name, dir=str(run_dir),
                       config=config)
        if known:
            options.update(id=known, resume="allow")
        if config is not None and config.get("options", {}).get("quiet"):
            options["settings"] = wandb.Settings(silent=True)  # --quiet silences wandb's own lines too
        try:
            self.run = wandb.init(**{**options, **init})
        except Exception as err:  # no login, no network: one line, with the ways out
            self.run = None
            raise ValueError(f"wandb could not start a run ({type(err).__name__}: {_first_line(err)}); run `wandb "
                             "login`, or set WANDB_MODE=offline, or choose other --loggers (then --overwrite)") \
                from None
        _save_id(run_dir, "wandb", self.run.id)

    def log(self, record: dict, step: int) -> None:
        """Log ``record`` at ``step`` with the probe's values and image grids."""
        self.step = step
        values = record_scalars(record)
        if self.probe is not None:
            extra = self.probe(step)
            values.update(record_scalars(extra["scalars"]))
            values.update({f"images/{k}": self.wandb.Image(_hwc(v)) for k, v in extra["images"].items()})
        self.run.log(values, step=step)

    def log_summary(self, summary: dict) -> None:
        """Put the evaluation report's numbers into the run summary."""
        self.run.summary.update(summary_scalars(summary))

    def close(self) -> None:
        """Finish the wandb run (a second call does nothing)."""
        if self.run is not None:
            self.run.finish()
            self.run = None


class MLflowLogger:
    """Log to MLflow (see the module docstring). ``config``: the resolved run configuration (its
    options become the run's parameters); ``probe``: a :class:`~pyrozoo.tracking.probe.PeriodProbe`."""

    def __init__(self, run_dir, *, config: dict | None = None, probe=None, tracking_uri: str | None = None):
        require("mlflow", "the mlflow logger")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient
        self.probe, self.step, self.run_id = probe, 0, None
        run_dir = Path(run_dir)
        known = _ids(run_dir).get("mlflow")
        try:
            self.client = MlflowClient(tracking_uri)
            if known:
                self.client.update_run(known, status="RUNNING")
                self.run_id = known
                return
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "pyrozoo")
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
        except Exception as err:  # no tracking server, a store MLflow refuses: one line, with the ways out
            raise ValueError(f"MLflow could not start a run ({type(err).__name__}: {_first_line(err)}); set "
                             "MLFLOW_TRACKING_URI to a tracking server or database, or choose other --loggers "
                             "(then --overwrite)") from None
        if config is not None:
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in _params(config).items()])
        _save_id(run_dir, "mlflow", self.run_id)

    def _metrics(self, values: dict, step: int):
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def log(self, record: dict, step: int) -> None:
        """Log ``record`` at ``step`` with the probe's values and image grids."""
        self.step = step
        values = record_scalars(record)
        images = {}
        if self.probe is not None:
            extra = self.probe(step)
            values.update(record_scalars(extra["scalars"]))
            images = extra["images"]
        self._metrics(values, step)
        for name, grid in images.items():
            self.client.log_image(self.run_id, _hwc(grid), key=f"images/{name}", step=step)

    def log_summary(self, summary: dict) -> None:
        """Log the evaluation report's numbers at the last step."""
        self._metrics(summary_scalars(summary), self.step)

    def close(self) -> None:
        """End the MLflow run (a second call does nothing)."""
        if self.run_id is not None:
            self.client.set_terminated(self.run_id)
            self.run_id = None
