"""bf16 autocast of the MLP, convolutional, residual and PixelCNN coders: training-step time and loss,
float32 against ``autocast="bf16"`` (:mod:`pyrozoo.nn.precision`), measured interleaved in one process.

Six models, each with the same weights and batches in both precisions (a copy of the model per
precision, both updated by Adam 5e-4 through pyrozoo's ELBO as the training loop calls it):

- ``convhvae-vampprior``: the ConvHVAE (gated convolutional coders, K = 500), MNIST, batch 100;
- ``pixelhvae-vampprior``: the same with the PixelCNN decoder;
- ``sintrovae``: the Soft-IntroVAE residual coders, FashionMNIST, batch 128 (an ELBO step: the
  introspective game takes three such encoder/decoder passes per iteration);
- ``vae``, ``vampprior``, ``hvae-vampprior``: the MLP and gated-MLP presets, MNIST, batch 100 (50 steps a
  round: their steps take milliseconds).

Per model: the median milliseconds per step over ``--rounds`` rounds of ``--steps`` steps, the speed-up
float32 / bf16, and the relative difference of the two losses on the first batch at equal weights
(numerical safety: bf16 keeps float32's exponent, and losses, likelihoods and evaluation stay float32).

    python benchmarks/autocast.py [--configs convhvae-vampprior,...] [--rounds 5] [--steps N] [--threads 1]
                                  [--device cpu]

Writes ``benchmarks/results/autocast.json``; a run of some ``--configs`` replaces their rows and keeps the others
(measured on the same device).
"""

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import pyro
import torch

from pyrozoo import zoo
from pyrozoo.data import load
from pyrozoo.inference import ELBO, scale_latents
from pyrozoo.nn import set_autocast

from common import RESULTS, select_configs
#: preset -> (data set, batch size, steps a round unless --steps)
MODELS = {"convhvae-vampprior": ("mnist", 100, 5), "pixelhvae-vampprior": ("mnist", 100, 5),
          "sintrovae": ("fashion-mnist", 128, 5), "vae": ("mnist", 100, 50), "vampprior": ("mnist", 100, 50),
          "hvae-vampprior": ("mnist", 100, 50)}


def _loss_fn(model, num_data):
    objective = ELBO()
    return lambda x: objective.differentiable_loss(scale_latents(model.model, 1.0), scale_latents(model.guide, 1.0),
                                                   x, num_data=num_data)


def _stepper(model, num_data, lr):
    loss_fn, opt = _loss_fn(model, num_data), torch.optim.Adam(model.parameters(), lr=lr)

    def step(x):
        loss = loss_fn(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(preset, args, device):
    """Timings and loss agreement of one preset (see the module docstring)."""
    dataset, batch_size, num_steps = MODELS[preset]
    data = load(dataset, data_dir=args.data_dir, binarize=True)
    batches = [data.binarized(x).to(device) for _, x in zip(range(args.steps or num_steps),
                                                            data.batches("train", batch_size, shuffle=True))]
    torch.manual_seed(0)
    full = zoo.build(preset, event_shape=data.event_shape).to(device)
    half = copy.deepcopy(full)
    set_autocast(half, "bf16")
    torch.manual_seed(1)
    loss_full = _loss_fn(full, len(data.train))(batches[0]).item()
    torch.manual_seed(1)
    loss_half = _loss_fn(half, len(data.train))(batches[0]).item()
    steps = {"float32": _stepper(full, len(data.train), args.lr), "bf16": _stepper(half, len(data.train), args.lr)}
    for step in steps.values():  # warm-up: allocator, oneDNN primitives
        step(batches[0])
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            for x in batches:
                step(x)
            _sync(device)
            times[name].append((time.perf_counter() - start) / len(batches))
    ms = {name: round(statistics.median(t) * 1e3, 1) for name, t in times.items()}
    return {"dataset": dataset, "batch_size": batch_size, "steps": len(batches), "rounds": args.rounds,
            "ms_per_step": ms,
            "speedup": round(ms["float32"] / ms["bf16"], 3),
            "loss_float32": loss_full, "loss_bf16": loss_half,
            "loss_relative_difference": abs(loss_half - loss_full) / abs(loss_full),
            "rounds_ms": {n: [round(t * 1e3, 1) for t in ts] for n, ts in times.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(MODELS), help="presets to time")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, help="steps a round (default: 5 for the convolutional presets, 50 "
                        "for the MLP ones)")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(RESULTS / "autocast.json"))
    args = parser.parse_args(argv)
    models = select_configs(parser, args, MODELS)
    device = torch.device(args.device)
    out = Path(args.out)
    result = {"setup": f"ELBO training step, Adam {args.lr}, median of {args.rounds} rounds x "
                       f"{args.steps or 'N'} steps (float32 and bf16 interleaved), the presets' default sizes",
              "device": args.device + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
              "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "python": platform.python_version(), "models": {}}
    if out.exists():  # keep the other presets' rows of an earlier run on the same device
        earlier = json.loads(out.read_text())
        if earlier.get("device") == result["device"]:
            result["models"] = {k: v for k, v in earlier.get("models", {}).items() if k not in models}
    with pyro.validation_enabled(False):
        for preset in models:
            result["models"][preset] = measure(preset, args, device)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2) + "\n")  # after every model: a killed run keeps its rows
            print(preset, json.dumps({k: result["models"][preset][k] for k in ("ms_per_step", "speedup",
                                                                                 "loss_relative_difference")}))
    return result


if __name__ == "__main__":
    main()
