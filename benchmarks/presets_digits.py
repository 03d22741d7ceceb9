"""Every preset's one-epoch run on scikit-learn's digits, evaluation at its default S included.

    python benchmarks/presets_digits.py [--threads 1] [--presets vae,rvae,...]

For each preset this runs ``pyrozoo.train(preset, dataset="digits", epochs=1)`` (two-phase presets:
one epoch per phase; Soft-IntroVAE presets: one epoch's worth of iterations, 1197 / batch size,
after a warm-up of the same length) with every other setting at the preset's default, including
the evaluation report and its importance samples S, and records the wall-clock seconds of training
and of the whole call. ``seq-vae`` models token sequences and runs on its default data set instead.
The target (issue "Hardware speed") is under 120 s per preset on the 2-core CPU of the project's
machine. Results go to ``benchmarks/results/presets_digits.json``, rewritten after each preset, and
presets already there are skipped unless ``--again`` (so an interrupted sweep continues).
"""

import argparse
import json
import math
import platform
import tempfile
import time

import torch

from results_io import RESULTS

OUT = RESULTS / "presets_digits.json"
TARGET_SECONDS = 120.0
DIGITS_TRAIN = 1197  # training split of the digits set (see pyrozoo.data)


def options_for(preset):
    """The one-epoch settings of ``preset`` and the data set it runs on."""
    from pyrozoo import zoo
    r = zoo.recipe(preset)
    if preset == "seq-vae":
        return None, {"epochs": 1}
    if r.regime == "two-phase":
        return "digits", {"phase_epochs": [1, 1]}
    if r.regime == "introspective":
        steps = math.ceil(DIGITS_TRAIN / int(r.defaults.get("batch_size", 32)))
        return "digits", {"iterations": 2 * steps, "warmup_iterations": steps}
    return "digits", {"epochs": 1}


def run_one(preset):
    import pyrozoo
    from pyrozoo import zoo
    dataset, options = options_for(preset)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = pyrozoo.train(preset, dataset, out=f"{tmp}/run", loggers="none", quiet=True, **options)
        total = time.perf_counter() - start
        summary, records = dict(run.summary), run.metrics  # read before the folder goes
    train_seconds = sum(r.get("seconds", 0.0) for r in records)
    return {"dataset": dataset or zoo.recipe(preset).defaults["dataset"], "options": options, "total_seconds": round(total, 1),
            "train_seconds": round(train_seconds, 1), "eval_and_setup_seconds": round(total - train_seconds, 1),
            "within_target": total <= TARGET_SECONDS,
            "test_log_likelihood": summary.get("test_log_likelihood")}


def main(argv=None):
    from pyrozoo import zoo
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", help="comma-separated presets (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--again", action="store_true", help="rerun presets already in the results file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.presets.split(",") if args.presets else list(zoo.presets())
    unknown = sorted(set(names) - set(zoo.presets()))
    if unknown:
        p.error(f"unknown presets {unknown}; choose from {', '.join(zoo.presets())}")
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result.update({"setup": f"one epoch on digits (1197 training images), default evaluation, {args.threads} "
                            f"thread(s), torch {torch.__version__}, python {platform.python_version()}",
                   "target_seconds": TARGET_SECONDS})
    runs = result.setdefault("runs", {})
    for name in names:
        if name in runs and not args.again:
            continue
        runs[name] = run_one(name)
        print(f"{name:22s} {runs[name]['total_seconds']:7.1f} s (train {runs[name]['train_seconds']:.1f} s)",
              flush=True)
        result["all_within_target"] = all(r["within_target"] for r in runs.values())
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
