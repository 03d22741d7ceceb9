"""The public experiment API (layer 6): train a preset, reload a run, share a model.

.. code-block:: python

    import pyrozoo
    run = pyrozoo.train("vampprior", dataset="mnist", epochs=50, out="runs/vamp")
    run.summary["test_log_likelihood"]
    run = pyrozoo.load("runs/vamp")            # the best weights, the config, the metrics
    run.evaluate(num_samples=5000)              # -> runs/vamp/evaluations/s5000/
    run.resume(epochs=100)                      # continue training
    run.save_pretrained("export/vamp")          # safetensors + config.json
    model = pyrozoo.from_pretrained("export/vamp")
    run = pyrozoo.train(config="runs/vamp/config.yaml", out="runs/vamp-again")   # the same run again

:func:`train` runs every preset in its regime: SVI with any objective, Stein Mixture Inference,
two-phase training and the introspective game (see :mod:`pyrozoo.zoo`).
"""

from typing import TYPE_CHECKING

from pyrozoo.runs.options import OPTIONS, REGIMES, Option

__all__ = ["OPTIONS", "REGIMES", "Option", "Run", "from_pretrained", "load", "read_config", "read_run_config",
           "save_pretrained", "train"]

if TYPE_CHECKING:  # pragma: no cover
    from pyrozoo.runs.configfile import read_run_config
    from pyrozoo.runs.run import Run, from_pretrained, load, read_config, save_pretrained, train


def __getattr__(name):
    """The API of :mod:`pyrozoo.runs.run`, imported on first use (the recipes in :mod:`pyrozoo.zoo`
    import :mod:`pyrozoo.runs.options` while :mod:`pyrozoo.runs.run` imports the recipes)."""
    if name in __all__:
        from pyrozoo.runs import run
        return getattr(run, name)
    raise AttributeError(f"module 'pyrozoo.runs' has no attribute {name!r}")
