"""The public experiment API: :func:`train`, :func:`load`, :func:`from_pretrained` and :class:`Run`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
import torch

import pyrozoo
from pyrozoo.inference import distributed
from pyrozoo.inference.rundir import (CheckpointError, RunDirectory, RunDirectoryError, load_checkpoint, read_json,
                                      write_json)
from pyrozoo.runs import engine
from pyrozoo.runs.config import applicable, changes_on_resume, check_for_recipe, resolve
from pyrozoo.runs.configfile import check_derived, read_run_config
from pyrozoo.runs.options import check_value, OPTIONS
from pyrozoo.zoo.registry import recipe as get_recipe

PRETRAINED_FORMAT = "pyrozoo-pretrained-1"


class Run:
    """A training run: its directory, resolved configuration, trained model and results.

    Attributes: ``path`` (the run directory), ``preset``, ``config`` (the resolved
    configuration of ``config.json``), ``model`` (the ``PyroModule`` whose ``model``/``guide``
    plain Pyro uses; the best validation epoch's weights), ``dataset`` (loaded on first use),
    ``metrics`` (one dict per period, as in ``metrics.jsonl``) and ``summary`` (``summary.json``).
    """

    def __init__(self, path, config: dict, model, dataset=None, summary: dict | None = None):
        self.path = Path(path)
        self.config = config
        self.model = model
        self._dataset = dataset
        self._summary = summary

    def __repr__(self):
        return f"Run({str(self.path)!r}, preset={self.preset!r}, dataset={self.config['dataset']!r})"

    @property
    def preset(self) -> str:
        return self.config["preset"]

    @property
    def recipe(self):
        """The preset's :class:`~pyrozoo.zoo.Recipe`."""
        return get_recipe(self.preset)

    @property
    def dataset(self):
        """The run's data set (train/valid/test tensors), on the model's device."""
        if self._dataset is None:
            self._dataset = engine.load_dataset(self.config).to(_device(self.model))
        return self._dataset

    @property
    def metrics(self) -> list:
        """The metric records of every finished period (epoch or block of iterations)."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    @property
    def summary(self) -> dict:
        """The training run's ``summary.json`` (empty before training finished)."""
        if self._summary is None:
            path = self.path / "summary.json"
            self._summary = read_json(path) if path.exists() else {}
        return self._summary

    # -- using the trained model ---------------------------------------------------------------
    def evaluate(self, num_samples: int | None = None, num_points: int | None = None, out=None, parts=None,
                 quiet: bool = True, inception_fid: bool | None = None, inception_weights=None) -> dict:
        """The preset's evaluation report (the same as ``pyrozoo evaluate``) with ``num_samples``
        importance samples on the first ``num_points`` test points (defaults: the run's
        ``eval_samples`` and ``eval_points``). ``parts``: report parts to run instead of the
        recipe's (see :mod:`pyrozoo.evaluation.report`). ``inception_fid``: add the standard FID
        (:mod:`pyrozoo.evaluation.fid`; default: the run's option) with the InceptionV3 weights
        file ``inception_weights``. Results and figures go to ``out`` (default
        ``RUN/evaluations/s{num_samples}``), never over the training run's own files; the report
        is also returned."""
        opts = dict(self.config["options"])
        num_samples = opts["eval_samples"] if num_samples is None else num_samples
        num_points = opts.get("eval_points") if num_points is None else num_points
        for name, value in (("eval_samples", num_samples), ("eval_points", num_points),
                            ("inception_fid", inception_fid), ("inception_weights", inception_weights)):
            check_value(OPTIONS[name], value)
            if value is not None:
                opts[name] = value
        _check_inception(opts, self.dataset)
        out = Path(out) if out is not None else self.path / "evaluations" / f"s{num_samples}"
        parts = self.recipe.report_for(self.config["dataset"]) if parts is None else tuple(parts)
        report = _report(self.model, self.dataset, parts, out, opts, quiet)
        if distributed.context().main:
            write_json(out / "evaluation.json", {"preset": self.preset, "dataset": self.config["dataset"], **report})
        return report

    @torch.no_grad()
    def sample(self, n: int = 64, seed: int = 0) -> torch.Tensor:
        """``n`` draws from the model (decoder means at z ~ p(z)): ``(n, *event_shape)``."""
        _check_count("n", n)
        torch.manual_seed(seed)
        self.model.eval()
        return self.model.sample(n)

    @torch.no_grad()
    def save_samples(self, n: int, out=None, seed: int = 0, chunk: int = 1000, grid: int = 64) -> Path:
        """Write ``n`` samples to ``out`` (default ``RUN/samples/n{n}-seed{seed}``) in bounded
        memory: ``samples.npy`` (float32, ``(n, *event_shape)``, filled ``chunk`` at a time), a
        picture ``samples.png`` of the first ``grid`` (sequence data: ``samples.txt`` of layer
        types). Returns the folder."""
        import numpy as np
        _check_count("n", n)
        _check_count("chunk", chunk)
        out = Path(out) if out is not None else self.path / "samples" / f"n{n}-seed{seed}"
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        self.model.eval()
        shape = (n, *self.config["event_shape"])
        tmp = out / ".samples.npy.tmp"
        try:
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            first = None
            for start in range(0, n, chunk):
                x = self.model.sample(min(chunk, n - start)).float().cpu()
                array[start:start + len(x)] = x.numpy()
                first = x if first is None else first
            array.flush()
            del array
            tmp.replace(out / "samples.npy")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.dataset.support == "sequence":
            from pyrozoo.data.architectures import decode_types
            (out / "samples.txt").write_text("\n".join(" ".join(t) for t in decode_types(first[:grid])) + "\n")
        else:
            from pyrozoo.plots import image_grid
            image_grid(first[:grid], out / "samples.png", title=f"{min(grid, n)} of {n} samples")
        return out

    # -- continuing and sharing ----------------------------------------------------------------
    def resume(self, loggers=None, **changes) -> "Run":
        """Continue training this run (see :func:`train` with ``resume=True``); ``changes`` may
        lengthen it or change resumable settings (``epochs``, ``lr``, ``loggers``, ...). Returns the
        updated run."""
        run = train(self.preset, out=self.path, resume=True, loggers=loggers, **changes)
        self.__dict__.update(run.__dict__)
        return self

    def save_pretrained(self, directory) -> Path:
        """Export the model: ``model.safetensors`` (the weights) and ``config.json`` (what rebuilds
        it), loadable with :func:`from_pretrained` without unpickling anything."""
        return save_pretrained(self.model, self.config, directory)


def _check_count(name, n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n!r}")


def _device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def train(preset: str | None = None, dataset: str | None = None, out=None, *, config=None,
          resume: bool | str = False, overwrite: bool = False, evaluate: bool = True, loggers=None,
          **options) -> Run:
    """Train preset ``preset`` in its own regime (SVI with any objective, Stein Mixture Inference,
    two-phase, or the introspective game), evaluate it, and return the :class:`Run`.

    ``dataset``: a data set name (default: the preset's). ``out``: the run directory (default
    ``runs/PRESET-DATASET``, numbered when it exists); an existing folder is refused unless
    ``resume=True`` (continue it; ``"auto"``: continue it when it has a checkpoint, else start
    it) or ``overwrite=True`` (replace an earlier run there). ``options``: run options such as
    ``epochs``, ``lr``, ``z_dim``, ``eval_samples`` (:data:`pyrozoo.runs.options.OPTIONS`;
    ``pyrozoo train --help`` lists them). ``config``: a YAML or JSON run configuration (a run's
    ``config.yaml``, or a file naming the preset, data set and options; see
    :func:`pyrozoo.runs.read_run_config`) to start from; ``preset``, ``dataset`` and ``options``
    given here override it (a resume compares the file's settings with the saved ones like
    options given here: the same file continues, ``resume="auto"`` with it suits pre-emptible
    jobs). Every setting is checked before any work starts. ``evaluate=False`` skips the
    evaluation report (:meth:`Run.evaluate` runs it later).

    ``loggers``: experiment trackers by name (``"tensorboard"``, ``"wandb"``, ``"mlflow"``, a
    comma-separated string of them, or ``"none"``; default the ``loggers`` option, TensorBoard
    into ``RUN/tensorboard``) and/or logger objects with ``log(record, step)`` and ``close()``
    (called after each period and at the end), which are added to the named ones.
    """
    names, objects = _split_loggers(loggers)
    source = None
    if config is not None:
        source = read_run_config(config)
        if preset is not None and source["preset"] not in (None, preset):
            raise ValueError(f"{config} is a configuration of preset {source['preset']!r}, not {preset!r}")
        preset = preset or source["preset"]
        if preset is None:
            raise ValueError(f"{config} names no preset; add 'preset: NAME' or pass the preset")
        options = {**source["options"], **({"dataset": source["dataset"]} if source["dataset"] else {}),
                   **{k: v for k, v in options.items() if v is not None}}
    if preset is None:
        raise ValueError("train needs a preset name (pyrozoo list shows them) or a configuration file that names "
                         "one (--config FILE, config=FILE)")
    r = get_recipe(preset)
    if source is not None and source["derived"].get("regime") not in (None, r.regime):
        raise ValueError(f"{config} is for the {source['derived']['regime']} regime; preset {preset!r} trains by "
                         f"{r.regime}")
    if resume not in (False, True, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    if dataset is not None:
        options["dataset"] = dataset
    if names is not None:
        options["loggers"] = names
    if resume == "auto":
        if out is None:
            raise ValueError("resume='auto' needs out= (the run directory)")
        resume = (Path(out) / "checkpoints" / "last.pt").exists()
    if resume:
        if out is None:
            raise ValueError("resume needs out= (the run directory to continue)")
        settings, changes = _resumed_config(r, Path(out), options)
    else:
        settings = _new_config(r, options)
        changes = {}
    from pyrozoo.tracking import check_available
    check_available(settings["options"].get("loggers") or [])
    ctx, _ = distributed.setup(settings["options"]["device"])  # joins torchrun's process group, if any
    data = main_first(lambda: engine.load_dataset(settings))  # rank 0 first: it may decompress files
    settings["binarize"] = data.binarize
    settings["event_shape"] = list(data.event_shape)
    settings["model"] = engine.model_options(r, settings, data)
    if source is not None:
        check_derived(config, source["derived"], settings)
    _check_inception(settings["options"], data)
    model = engine.build_model(settings, data.event_shape,
                               data=data.train if r.needs_data or settings["model"].get("prior") == "vampprior-data"
                               else None)
    engine.make_strategy(settings, model, data)  # checks every setting of the strategy before anything is written
    out = Path(distributed.broadcast_object(str(out) if out is not None
                                            else str(engine.default_out(preset, settings["dataset"]))))
    mode = "resume" if resume else "overwrite" if overwrite else "new"
    with main_first(lambda: RunDirectory(out, mode=mode, rank=ctx.rank)) as run_dir:
        loop, result, seconds = engine.run_training(settings, run_dir, data, model, changes, objects)
        try:
            summary = {"preset": preset, "dataset": settings["dataset"], **result, "train_seconds": round(seconds, 2)}
            opts = settings["options"]
            data.to(_device(model))  # strategies that draw their own batches leave the data where it was
            if evaluate:
                summary.update(_report(model, data, r.report_for(settings["dataset"]), out, opts, opts["quiet"]))
            run_dir.write_json("summary.json", summary)
            engine.log_summary(loop.loggers, summary)
        finally:
            loop.close()
    return Run(out, settings, model, dataset=data, summary=summary)


def _split_loggers(loggers) -> tuple:
    """``loggers`` of :func:`train` as ``(names or None, logger objects)``."""
    if loggers is None:
        return None, []
    if isinstance(loggers, str):
        return loggers, []
    items = list(loggers)
    names = [x for x in items if isinstance(x, str)]
    return (names or None), [x for x in items if not isinstance(x, str)]


def _check_inception(opts: dict, data):
    """Refuse the standard FID on data that are not images, or without its extra, before any work."""
    if not opts.get("inception_fid"):
        return
    from pyrozoo.evaluation import fid
    from pyrozoo.tracking.probe import is_image_data
    if not is_image_data(data):
        raise ValueError(f"inception_fid needs image data; {data.name} holds {tuple(data.event_shape)}-shaped points")
    fid.check_available(opts.get("inception_weights"))


def _report(model, data, parts, out, opts: dict, quiet: bool) -> dict:
    """The evaluation report ``parts`` with the run options ``opts`` (and the standard FID when
    ``opts["inception_fid"]``)."""
    from pyrozoo.evaluation.report import evaluate_report
    report = evaluate_report(model, data, parts, out, num_samples=opts["eval_samples"],
                             num_points=opts.get("eval_points"), grid_size=opts.get("grid_size") or 1024, quiet=quiet)
    if opts.get("inception_fid"):  # rank 0 draws and scores; every rank returns its numbers
        from pyrozoo.evaluation.fid import inception_fid_report
        from pyrozoo.evaluation.report import announce
        scores = None
        if distributed.context().main:
            with announce("inception_fid", quiet):
                scores = inception_fid_report(model, data, num_points=opts.get("eval_points"),
                                              weights=opts.get("inception_weights"), quiet=quiet)
        report.update(distributed.broadcast_object(scores))
    return report


def main_first(fn):
    """``fn()`` on rank 0, then on the other ranks (a single process just calls it). An error on
    rank 0 is raised on every rank with rank 0's message, so no rank waits for a partner that left."""
    ctx = distributed.context()
    if not ctx.distributed:
        return fn()
    error, result = None, None
    if ctx.main:
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001  (re-raised below, on every rank)
            error = err
    message = distributed.broadcast_object(None if error is None else str(error))
    if message is not None:
        if ctx.main:
            raise error
        raise ValueError(message)
    return result if ctx.main else fn()


def _new_config(r, options) -> dict:
    resolved = resolve(r, options)
    return {"pyrozoo_version": pyrozoo.__version__, "preset": r.name, "dataset": resolved["dataset"],
            "regime": r.regime, "options": resolved, "binarize": engine.choose_binarize(r, resolved), "resumes": []}


def _resumed_config(r, out: Path, options: dict) -> tuple:
    saved = read_config(out)
    if saved["preset"] != r.name:
        raise ValueError(f"{out} holds a {saved['preset']} run, not {r.name}")
    given = {k: v for k, v in options.items() if v is not None}
    check_for_recipe(r, given)
    if r.regime == "two-phase" and "epochs" in given and "phase_epochs" not in given:
        a = saved["options"]["phase_epochs"][0]
        given["phase_epochs"] = [a, max(1, given.pop("epochs") - a)]
    changes = changes_on_resume(saved, given)
    config = copy.deepcopy(saved)
    config["options"].update({k: new for k, (_, new) in changes.items()})
    if r.regime == "two-phase":
        config["options"]["epochs"] = sum(config["options"]["phase_epochs"])
    if changes:
        config.setdefault("resumes", []).append({"changed": {k: list(v) for k, v in changes.items()}})
    return config, changes


def read_config(run_dir) -> dict:
    """The resolved configuration of a run directory, with a clear error when it is missing or
    broken. Options that a newer pyrozoo added are filled with what the older version did: the
    option's ``legacy`` value where its default changed that (``repulsion_scale="plain"``,
    ``distance="local"``; a model option's legacy value also goes to the builder), else its default
    (``accumulate=1``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} is not a run directory (no such folder)")
    if not (run_dir / "config.json").exists():
        raise RunDirectoryError(f"{run_dir} is not a run directory (no config.json)")
    config = read_json(run_dir / "config.json")
    missing = [k for k in ("preset", "dataset", "options") if k not in config]
    if missing:
        raise RunDirectoryError(f"{run_dir / 'config.json'} lacks {', '.join(missing)}: it was written by an older "
                                "pyrozoo or by hand; train the run again")
    recipe = get_recipe(config["preset"])
    for name in applicable(recipe):  # options added since the run was written, as that run used them
        option = OPTIONS[name]
        if name not in config["options"]:
            config["options"][name] = option.default if option.legacy is None else option.legacy
            if option.legacy is not None and option.group == "model" and isinstance(config.get("model"), dict):
                config["model"].setdefault(name, option.legacy)  # the builder gets what the old run used
    return config


def load(run_dir, device: str = "cpu") -> Run:
    """Reload a run directory: the model with its best weights, the configuration and results."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    last, best = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    if not last.exists() and not best.exists():
        raise CheckpointError(f"{run_dir} has no checkpoint yet (checkpoints/last.pt)")
    state = load_checkpoint(last if last.exists() else best)
    if "event_shape" not in config or "model" not in config:
        raise RunDirectoryError(f"{run_dir / 'config.json'} lacks the model's settings; train the run again")
    structure = config
    if config["regime"] == "introspective" and state.get("strategy", {}).get("switched"):
        structure = dict(config, game_prior=_intro_structure(config))
    model = engine.build_model(structure, config["event_shape"])
    weights = state.get("best_model") or state["model"]
    _load_weights(model, weights, last if last.exists() else best)
    from pyrozoo.inference.loop import check_device
    check_device(device)
    _, device = distributed.setup(device)  # under torchrun: join the group, one device per rank
    return Run(run_dir, config, model.to(device).eval())


def _load_weights(model, weights: dict, source):
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)[:200]
        raise CheckpointError(f"the weights in {source} do not fit the model its config.json describes ({first})") \
            from None


def save_pretrained(model, config: dict, directory) -> Path:
    """Write ``model``'s weights as ``model.safetensors`` and what rebuilds it as ``config.json``
    into ``directory``."""
    from safetensors.torch import save_file
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    pretrained = {"format": PRETRAINED_FORMAT, "pyrozoo_version": pyrozoo.__version__, "preset": config["preset"],
                  "dataset": config["dataset"], "regime": config.get("regime"), "event_shape": config["event_shape"],
                  "model": config["model"], "options": {"seed": config["options"]["seed"]},
                  "game_prior": _game_prior(model, config)}
    from pyrozoo.inference.rundir import atomic_write
    atomic_write(directory / "model.safetensors", lambda tmp: save_file(weights, str(tmp)))
    write_json(directory / "config.json", pretrained)
    return directory


def _game_prior(model, config):
    from pyrozoo.distributions.intro_prior import ClippedMixturePrior
    if config.get("regime") == "introspective" and isinstance(model.prior, ClippedMixturePrior):
        return _intro_structure(config)
    return None


def _intro_structure(config):
    """The game's settings that shape its prior after the switch (checked on the CPU: a run
    trained on a GPU reloads anywhere)."""
    return engine.intro_settings(dict(config, options={**config["options"], "device": "cpu"})).to_dict()


def from_pretrained(directory, device: str = "cpu"):
    """The model saved by :meth:`Run.save_pretrained` in ``directory`` (safetensors weights; no
    unpickling), in evaluation mode on ``device``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    directory = Path(directory)
    config = read_json(directory / "config.json")
    if config.get("format") != PRETRAINED_FORMAT:
        raise ValueError(f"{directory / 'config.json'} is not a pyrozoo pretrained model (format "
                         f"{config.get('format')!r}, expected {PRETRAINED_FORMAT!r})")
    get_recipe(config["preset"])
    model = engine.build_model(config, config["event_shape"])
    path = directory / "model.safetensors"
    try:
        weights = load_file(str(path))
    except (SafetensorError, FileNotFoundError, OSError) as err:
        raise CheckpointError(f"{path} cannot be read ({type(err).__name__}); export the model again") from None
    _load_weights(model, weights, path)
    return model.to(device).eval()

