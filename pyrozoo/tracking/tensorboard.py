"""The TensorBoard logger: ``torch.utils.tensorboard.SummaryWriter`` into ``RUN/tensorboard``.

Watch a run with ``tensorboard --logdir runs/`` (every run's ``tensorboard`` folder shows up as
its own run).
"""

from __future__ import annotations

from pathlib import Path

from pyrozoo.tracking import record_scalars, require, summary_scalars


class TensorBoardLogger:
    """Write each period's metrics record (and the ``probe``'s learning rates, validation KL and
    image grids) as TensorBoard events into ``run_dir/tensorboard`` (or ``log_dir``).

    ``config``: the resolved run configuration, written once as text (tag ``config``). A resumed
    run appends a new event file to the same folder; its steps continue the old ones."""

    def __init__(self, run_dir=None, *, config: dict | None = None, probe=None, log_dir=None):
        require("tensorboard", "the tensorboard logger")
        from torch.utils.tensorboard import SummaryWriter
        if log_dir is None and run_dir is None:
            raise ValueError("TensorBoardLogger needs run_dir or log_dir")
        self.log_dir = Path(log_dir) if log_dir is not None else Path(run_dir) / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        self.probe = probe
        self.step = 0
        if config is not None:
            from pyrozoo.runs.configfile import dump_yaml
            text = "\n".join("    " + line for line in dump_yaml(config).splitlines())  # a markdown code block
            self.writer.add_text("config", text, 0)

    def log(self, record: dict, step: int) -> None:
        """Log ``record`` at ``step`` (epochs or iterations done) and flush."""
        self.step = step
        for name, value in record_scalars(record).items():
            self.writer.add_scalar(name, value, step)
        if self.probe is not None:
            extra = self.probe(step)
            for name, value in record_scalars(extra["scalars"]).items():
                self.writer.add_scalar(name, value, step)
            for name, grid in extra["images"].items():
                self.writer.add_image(f"images/{name}", grid, step)
        self.writer.flush()

    def log_summary(self, summary: dict) -> None:
        """Log the numbers of the evaluation report at the last step."""
        for name, value in summary_scalars(summary).items():
            self.writer.add_scalar(name, value, self.step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file (a second call does nothing)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
