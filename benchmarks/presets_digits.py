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


def _gflops(fn, flops, repeats=5):
    """GFLOP/s of ``fn`` (which does ``flops`` floating-point operations): the best of ``repeats``."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


@torch.no_grad()
def floors(presets, points=300, samples=5000):
    """The arithmetic of the S = ``samples`` log-likelihood on ``points`` digits of each preset (its
    model's FLOPs per importance sample and point, counted by ``torch.utils.flop_counter``, times
    S x points), the GFLOP/s this process reaches on the same shapes by hand (one 3x3 convolution of
    64 maps at 8 x 8 on 2000 images, and a 2048² float32 matrix product), and the seconds those
    rates leave as the floor of the evaluation."""
    from torch.utils.flop_counter import FlopCounterMode

    from pyrozoo import zoo
    x = torch.randn(2000, 64, 8, 8)
    w = torch.randn(64, 64, 3, 3)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    rates = {"conv3x3_64maps_8x8": _gflops(lambda: torch.nn.functional.conv2d(x, w, padding=1), 2 * x.numel() * 64 * 9),
             "matmul_2048": _gflops(lambda: a @ b, 2 * 2048 ** 3)}
    out = {"threads": torch.get_num_threads(), "gflops_per_second": {k: round(v, 1) for k, v in rates.items()},
           "presets": {}}
    for preset in presets:
        model = zoo.build(preset, event_shape=(1, 8, 8)).eval()
        batch = torch.bernoulli(torch.rand(10, 1, 8, 8))
        with FlopCounterMode(display=False) as counter:
            model.direct_log_weights(batch, 100)
        per = counter.get_total_flops() / (10 * 100)
        total = per * points * samples
        out["presets"][preset] = {"flops_per_sample_and_point": per, "flops": total,
                                  "floor_seconds_at_conv_rate": round(total / rates["conv3x3_64maps_8x8"] / 1e9, 1)}
    return out


def main(argv=None):
    from pyrozoo import zoo
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", help="comma-separated presets (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--again", action="store_true", help="rerun presets already in the results file")
    p.add_argument("--floors", default="", help="comma-separated presets whose log-likelihood arithmetic to count "
                   "(see floors(); e.g. convhvae-vampprior,pixelhvae-vampprior); with --presets none, only that")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.floors:
        result = json.loads(OUT.read_text()) if OUT.exists() else {}
        result["floors"] = floors(args.floors.split(","))
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["floors"], indent=2))
        if args.presets == "none":
            return result
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
