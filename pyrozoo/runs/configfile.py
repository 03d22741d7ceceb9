"""Run configurations as files: every run writes ``config.yaml`` (the resolved configuration of
``config.json`` in YAML), and :func:`read_run_config` reads one back, or a hand-written YAML or
JSON file, for ``pyrozoo train --config FILE`` and ``pyrozoo.train(config=FILE)``.

A file names the preset, the data set and the options, either nested under ``options`` (as a run
writes them) or at the top level::

    preset: vampprior
    dataset: mnist
    epochs: 50
    hidden: [300, 300]
    lr: 5e-4

The values a run derives (``regime``, ``binarize``, ``event_shape``, ``model``, ...) may stay in the
file: they are checked against what this pyrozoo derives, so a file from another version that would
build a different model is refused instead of silently training something else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pyrozoo.runs.options import OPTIONS, check_options, unknown_option

#: Top-level keys besides the options: what a run writes into its ``config.yaml``.
RUN_KEYS = ("preset", "dataset", "options")
DERIVED_KEYS = ("pyrozoo_version", "regime", "binarize", "event_shape", "model", "resumes", "game_prior")
SUFFIXES = (".yaml", ".yml", ".json")


def _yaml():
    import yaml
    return yaml


def _loader():
    """PyYAML's safe loader with YAML 1.2 floats: ``5e-4`` and ``1e3`` read as numbers (YAML 1.1,
    PyYAML's default, reads them as strings)."""
    yaml = _yaml()

    class Loader(yaml.SafeLoader):
        pass

    number = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$")
    # PyYAML's own float pattern is replaced; its integer pattern is tried first, so 300 stays an int
    Loader.yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
                                      for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", number, list("-+0123456789."))
    return Loader


def dump_yaml(config: dict) -> str:
    """``config`` as YAML text (keys in their order, short lists inline)."""
    return _yaml().safe_dump(config, sort_keys=False, default_flow_style=None, width=100, allow_unicode=True)


def write_yaml(path, config: dict) -> Path:
    """Write ``config`` to ``path`` as YAML, atomically."""
    from pyrozoo.inference.rundir import atomic_write
    text = dump_yaml(config)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def load_file(path) -> dict:
    """The mapping in the YAML or JSON file ``path``, with a one-line error naming the file when it
    is missing, unreadable or not a mapping."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{path}: a run configuration is a YAML or JSON file ({', '.join(SUFFIXES)})")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"configuration file {path} does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} cannot be read as a configuration file ({type(err).__name__})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            yaml = _yaml()
            data = yaml.load(text, Loader=_loader())
    except Exception as err:  # yaml.YAMLError or json.JSONDecodeError: one line, naming the file
        first = str(err).strip().splitlines()
        raise ValueError(f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} "
                         f"({' '.join(first[:2])})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of settings (preset, dataset, options), "
                         f"not {type(data).__name__}")
    return data


def read_run_config(path) -> dict:
    """Read a run configuration file (YAML or JSON): ``{"preset", "dataset", "options", "derived"}``.

    ``options`` holds the run options it sets (top-level option keys and those under ``options``
    merged; one set in both places is refused), each checked by name, type and range;
    ``derived`` the values a run derived (``regime``, ``binarize``, ``event_shape``, ``model``),
    which :func:`pyrozoo.train` compares with its own. An unknown or misspelt key is a
    ``ValueError`` naming it, its close matches and the valid keys.
    """
    path = Path(path)
    data = load_file(path)
    valid = RUN_KEYS + DERIVED_KEYS + tuple(OPTIONS)
    for key in data:
        if key not in valid:
            raise unknown_option(key, valid, what="key", where=str(path))
    nested = data.get("options") or {}
    if not isinstance(nested, dict):
        raise ValueError(f"{path}: options must be a mapping of option names to values, got {nested!r}")
    for key in nested:
        if key not in OPTIONS:
            raise unknown_option(key, OPTIONS, where=f"{path}, options")
    options = dict(nested)
    dataset = data.get("dataset")
    if options.get("dataset") is not None and dataset is not None and options["dataset"] != dataset:
        raise ValueError(f"{path}: dataset {dataset!r} and options.dataset {options['dataset']!r} differ; keep one")
    dataset = dataset if dataset is not None else options.get("dataset")
    options.pop("dataset", None)
    top = {k: v for k, v in data.items() if k in OPTIONS and k != "dataset"}
    both = sorted(set(top) & set(options))
    if both:
        raise ValueError(f"{path} sets {', '.join(both)} both at the top level and under options; keep one")
    options.update(top)
    preset = data.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise ValueError(f"{path}: preset must be a preset name, got {preset!r}")
    try:
        check_options({k: v for k, v in {**options, "dataset": dataset}.items()})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    derived = {k: data[k] for k in ("regime", "binarize", "event_shape", "model") if k in data}
    return {"preset": preset, "dataset": dataset, "options": options, "derived": derived}


def check_derived(path, derived: dict, config: dict):
    """Refuse a configuration file whose derived values (``regime``, ``binarize``, ``event_shape``,
    ``model``) differ from those of the run ``config`` built from it."""
    diffs = [f"{k}: file {derived[k]!r}, now {config.get(k)!r}" for k in derived
             if _plain(derived[k]) != _plain(config.get(k))]
    if diffs:
        raise ValueError(f"{path} was written for a different model than this pyrozoo builds from it "
                         f"({'; '.join(diffs)}); remove these keys to train with the current derivation")


def _plain(value):
    """Lists and tuples compare alike (YAML and JSON have only lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
