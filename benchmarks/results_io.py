"""Where benchmark results and checkpoints live, and the JSON results file every script rewrites
atomically after each finished configuration (no pyrozoo import, so any script can use it)."""

import json
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parent / "runs"  # checkpoints (git-ignored)


def load_results(path):
    """The results dict stored at ``path`` (empty if none)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(path, results):
    """Write ``results`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)


def save_entry(path, section, key, value, **fields):
    """Re-read ``path``, set ``results[section][key] = value`` and the top-level ``fields``, and
    write it back, so that benchmark processes running side by side on one results file keep
    each other's entries. Returns the merged results dict."""
    results = load_results(path)
    results.setdefault(section, {})[key] = value
    results.update(fields)
    save_results(path, results)
    return results


def start_results(path, section, setup):
    """The results stored at ``path`` with its ``setup`` line replaced and ``section`` present."""
    results = load_results(path)
    results["setup"] = setup
    results.setdefault(section, {})
    return results
