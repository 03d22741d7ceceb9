"""Speed of one VAE training step: hand-written PyTorch vs pyrozoo's Pyro objective, same process, same batches.

Setup: dynamically binarised MNIST, MLP 784-300-300-40 with a mirrored decoder
(pyrozoo's ``vae`` preset at 28x28), batch 100, Adam 5e-4. Each round times ``--steps`` steps of every
variant in turn; the figure reported is the median over ``--rounds`` rounds, and the ratio is pyrozoo / plain.
Pyro's stock ``SVI`` + ``Trace_ELBO`` is timed alongside for context.

    python benchmarks/speed.py [--dataset mnist] [--rounds 6] [--steps 100] [--device cpu]

Writes ``benchmarks/results/speed.json``.
"""

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import pyro
import torch
import torch.nn.functional as F
from torch import nn

from pyrozoo import zoo
from pyrozoo.data import load
from pyrozoo.inference import ELBO

RESULTS = Path(__file__).resolve().parent / "results"


class PlainVAE(nn.Module):
    """The same network as the ``vae`` preset, with its loss written by hand (analytic KL)."""

    def __init__(self, num_dims, hidden=(300, 300), z_dim=40):
        super().__init__()
        sizes = [num_dims, *hidden]
        self.enc = nn.Sequential(*[m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
        self.loc = nn.Linear(hidden[-1], z_dim)
        self.logvar = nn.Linear(hidden[-1], z_dim)
        sizes = [z_dim, *hidden[::-1]]
        layers = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
        self.dec = nn.Sequential(*layers, nn.Linear(hidden[0], num_dims))

    def loss(self, x, num_data):
        """Negative ELBO summed over the batch and scaled by N/B, like pyrozoo's data plate."""
        x = x.flatten(1)
        h = self.enc(x)
        loc, logvar = self.loc(h), self.logvar(h)
        z = loc + torch.exp(0.5 * logvar) * torch.randn_like(loc)
        rec = -F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(-1)
        kl = 0.5 * (loc.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
        return -(rec - kl).sum() * (num_data / len(x))


def step_fns(event_shape, num_data, lr, device):
    """Name -> a function taking one batch and doing one optimiser step."""
    num_dims = math.prod(event_shape)
    plain = PlainVAE(num_dims).to(device)
    popt = torch.optim.Adam(plain.parameters(), lr=lr)

    def plain_step(x):
        loss = plain.loss(x, num_data)
        popt.zero_grad(set_to_none=True)
        loss.backward()
        popt.step()

    vae = zoo.build("vae", event_shape=event_shape).to(device)
    zopt = torch.optim.Adam(vae.parameters(), lr=lr)
    objective = ELBO()

    def zoo_step(x):
        loss = objective.differentiable_loss(vae.model, vae.guide, x, num_data=num_data)
        zopt.zero_grad(set_to_none=True)
        loss.backward()
        zopt.step()

    stock = zoo.build("vae", event_shape=event_shape).to(device)
    svi = pyro.infer.SVI(stock.model, stock.guide, pyro.optim.Adam({"lr": lr}), pyro.infer.Trace_ELBO())

    def svi_step(x):
        svi.step(x, num_data=num_data)

    return {"plain_pytorch": plain_step, "pyrozoo_elbo": zoo_step, "pyro_svi_trace_elbo": svi_step}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(RESULTS / "speed.json"))
    args = parser.parse_args(argv)

    pyro.set_rng_seed(0)
    data = load(args.dataset, data_dir=args.data_dir)
    device = torch.device(args.device)
    batches = [x.to(device) for _, x in zip(range(args.steps), data.batches("train", args.batch_size, shuffle=True))]
    fns = step_fns(data.event_shape, len(data.train), args.lr, device)
    times = {name: [] for name in fns}
    with pyro.validation_enabled(False):
        for fn in fns.values():  # warm-up: allocator, first-call overheads
            for x in batches[:5]:
                fn(x)
        for _ in range(args.rounds):
            for name, fn in fns.items():
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                for x in batches:
                    fn(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append((time.perf_counter() - start) / len(batches))
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "setup": f"{args.dataset}, MLP {math.prod(data.event_shape)}-300-300-40, batch {args.batch_size}, "
                 f"Adam {args.lr}, median of {args.rounds} rounds x {len(batches)} steps",
        "device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "pyro": pyro.__version__, "python": platform.python_version(),
        "ms_per_step": {k: round(v * 1e3, 3) for k, v in median.items()},
        "ratio_pyrozoo_over_plain": round(median["pyrozoo_elbo"] / median["plain_pytorch"], 3),
        "ratio_pyro_svi_over_plain": round(median["pyro_svi_trace_elbo"] / median["plain_pytorch"], 3),
        "target_ratio": 1.3,
        "rounds_ms": {k: [round(t * 1e3, 3) for t in v] for k, v in times.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ms_per_step", "ratio_pyrozoo_over_plain",
                                              "ratio_pyro_svi_over_plain")}, indent=2))
    return result


if __name__ == "__main__":
    main()
