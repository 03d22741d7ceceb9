"""Speed of the Soft-IntroVAE 2D game (§5.1) of Athanasiadis, Lindsten & Felsberg (2025), "Prior Learning in
Introspective VAEs", TMLR, arXiv:2408.13805, and of the mixture log-density under it.

Two timings, each the median over ``--rounds`` rounds:

* ``step``: one adversarial iteration (encoder step, then decoder-and-prior step) of the 2D setup,
  MLP 2-256x4, batch 512, for ``sg`` (N(0, I), closed-form KL) and ``mog-lc-ip`` (64-component
  clipped mixture learned with the decoder, KL by 100 Monte-Carlo samples). The MC KL against
  the mixture is what makes the learned-prior columns of Table 1 slower than SG.
* ``mixture``: forward + backward of log p(z) for N = 100 x 512 samples, K = 64, D = 2 (one MC KL
  term): torch's ``MixtureSameFamily`` (the broadcast (N, K, D) form most code uses), the
  one-product form with autograd's logsumexp, and pyrozoo's fused
  :class:`~pyrozoo.distributions.mixtures.DiagonalGaussianMixture` log-density as its rounding bound
  chooses, and forced to its float32 and its float64 product; with each one's largest error in nats
  against a float64 reference. Measured at the benchmark's scale and at a tight one (|μ| 3-5,
  log σ² down to −6), where the float32 product cancels.

    python benchmarks/intro_step.py [--rounds 5] [--steps 10] [--threads 1] [--device cpu]

Writes ``benchmarks/results/intro_step.json``.
"""

import argparse
import contextlib
import math
import platform
import statistics
import time

import pyro
import torch

from pyrozoo import zoo
from pyrozoo.data.toy2d import sample_toy
from pyrozoo.distributions import DiagonalGaussianMixture, mixtures
from pyrozoo.inference import IntroStrategy, TrainingLoop

from results_io import RESULTS, save_results

CONFIGS = {"sg": ("sintrovae", {}, {}),
           "mog-lc-ip": ("sintrovae-prior", {"learn_weights": True}, {"r_entropy": 0.0})}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_rounds(fn, rounds, steps, device):
    """Seconds per call of ``fn()``, one figure per round of ``steps`` calls."""
    out = []
    for _ in range(rounds):
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        out.append((time.perf_counter() - start) / steps)
    return out


def step_timings(config, rounds, steps, device):
    """Per-iteration seconds of the adversarial phase of ``config`` (after 5 warm-up and 3 game steps)."""
    preset, build, overrides = CONFIGS[config]
    pyro.set_rng_seed(0)
    model = zoo.build(preset, event_shape=(2,), **build)
    cfg = zoo.intro_config(preset, "8gaussians", iterations=10 ** 6, warmup=5, milestones=(), quiet=True, log_every=1,
                           device=str(device), **overrides)
    trainer = IntroStrategy(model, lambda n: sample_toy("8gaussians", n), cfg)
    TrainingLoop(trainer).fit(stop_after=8)
    x = sample_toy("8gaussians", cfg.batch_size).to(device)
    with pyro.validation_enabled(False):
        return time_rounds(lambda: trainer.train_step(x), rounds, steps, device)


def _parameters(n, k, d, tight, gen):
    """(z, loc, logvar, logits): the benchmark's scale, or a ``tight`` one (|μ| 3-5, log σ² down to −6,
    z drawn from the mixture), where the expanded quadratic form cancels in float32."""
    if not tight:
        loc, logvar = torch.randn(k, d, generator=gen), 0.3 * torch.randn(k, d, generator=gen)
        return 2 * torch.randn(n, d, generator=gen), loc, logvar, torch.randn(k, generator=gen)
    loc = (3 + 2 * torch.rand(k, d, generator=gen)) * torch.sign(torch.randn(k, d, generator=gen))
    logvar, logits = -6 * torch.rand(k, d, generator=gen), torch.randn(k, generator=gen)
    torch.manual_seed(0)
    return DiagonalGaussianMixture(loc, logvar, logits).sample((n,)), loc, logvar, logits


def _reference(z, loc, logvar, logits):
    """The mixture log-density in float64, direct form."""
    z, loc, logvar, logits = (t.double() for t in (z, loc, logvar, logits))
    quad = ((z.unsqueeze(-2) - loc) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(torch.log_softmax(logits, -1) - 0.5 * quad, -1)


@contextlib.contextmanager
def _rounding_budget(value):
    """Force the float32 (``inf``) or the float64 (``-1``) product of the fused log-density."""
    old, mixtures.ROUNDING_BUDGET = mixtures.ROUNDING_BUDGET, value
    try:
        yield
    finally:
        mixtures.ROUNDING_BUDGET = old


def mixture_timings(rounds, steps, device, n=100 * 512, k=64, d=2, tight=False):
    """Forward + backward seconds of log p(z) for ``n`` points, five implementations (the fused one as
    chosen by its rounding bound, and forced to its float32 and float64 products); also how they agree:
    per implementation, the largest over z and the parameters of max |grad − grad_torch| / max |grad_torch|,
    and the largest error of log p(z) in nats against a float64 reference."""
    gen = torch.Generator().manual_seed(0)
    tensors = _parameters(n, k, d, tight, gen)
    params = [t.to(device).requires_grad_() for t in tensors]

    def torch_mixture(z, loc, logvar, logits):
        comp = torch.distributions.Independent(torch.distributions.Normal(loc, torch.exp(0.5 * logvar)), 1)
        return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=logits), comp).log_prob(z)

    def product_autograd(z, loc, logvar, logits):
        mix = DiagonalGaussianMixture(loc, logvar, logits)
        feats, weights = mix._product(z, mix.log_weights)
        return torch.logsumexp(feats @ weights.T, -1)

    def fused(z, loc, logvar, logits):
        return DiagonalGaussianMixture(loc, logvar, logits).log_prob(z)

    def forced(budget):
        def run(*args):
            with _rounding_budget(budget):
                return fused(*args)
        return run

    ways = {"torch_mixture_same_family": torch_mixture, "one_product_autograd": product_autograd,
            "pyrozoo_fused": fused, "pyrozoo_fused_float32_product": forced(math.inf),
            "pyrozoo_fused_float64_product": forced(-1.0)}
    grads = {name: torch.autograd.grad(f(*params).sum(), params) for name, f in ways.items()}
    ref = grads["torch_mixture_same_family"]
    agree = {name: max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(g, ref)) for name, g in grads.items()}
    exact = _reference(*tensors).to(device)
    with torch.no_grad():
        error = {name: float((f(*params).double() - exact).abs().max()) for name, f in ways.items()}
    times = {name: time_rounds(lambda f=f: torch.autograd.grad(f(*params).sum(), params), rounds, steps, device)
             for name, f in ways.items()}
    wide = DiagonalGaussianMixture(*params[1:])._wide_dtype(params[0]) == torch.float64
    return times, agree, error, wide


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(RESULTS / "intro_step.json"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    steps = {c: step_timings(c, args.rounds, args.steps, device) for c in CONFIGS}
    mixture, agree, error, wide = mixture_timings(args.rounds, args.steps, device)
    tight, tight_agree, tight_error, tight_wide = mixture_timings(args.rounds, args.steps, device, tight=True)
    ms = lambda v: round(statistics.median(v) * 1e3, 2)  # noqa: E731
    result = {
        "setup": f"2D game of Athanasiadis et al. 2025 (MLP 2-256x4, batch 512, 8gaussians), adversarial phase; "
                 f"mixture log-density fwd+bwd for N=51200, K=64, D=2 at the benchmark's scale (loc ~ N(0, 1), "
                 f"log var ~ N(0, 0.09), z ~ N(0, 4)) and at a tight one (|loc| 3-5, log var in [-6, 0], z from "
                 f"the mixture); median of {args.rounds} rounds x {args.steps} calls",
        "device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "pyro": pyro.__version__, "python": platform.python_version(),
        "step_ms": {c: ms(v) for c, v in steps.items()},
        "mixture_fwd_bwd_ms": {c: ms(v) for c, v in mixture.items()},
        "mixture_grad_rel_diff_vs_torch": agree,
        "mixture_max_error_nats": error,
        "mixture_fused_takes_float64_product": wide,
        "tight_mixture_fwd_bwd_ms": {c: ms(v) for c, v in tight.items()},
        "tight_mixture_grad_rel_diff_vs_torch": tight_agree,
        "tight_mixture_max_error_nats": tight_error,
        "tight_mixture_fused_takes_float64_product": tight_wide,
        "speedup_fused_over_torch": round(statistics.median(mixture["torch_mixture_same_family"])
                                          / statistics.median(mixture["pyrozoo_fused"]), 2),
        "rounds_ms": {c: [round(t * 1e3, 2) for t in v] for c, v in {**steps, **mixture}.items()},
        "tight_rounds_ms": {c: [round(t * 1e3, 2) for t in v] for c, v in tight.items()},
    }
    save_results(args.out, result)
    for key in ("step_ms", "mixture_fwd_bwd_ms", "mixture_max_error_nats", "tight_mixture_fwd_bwd_ms",
                "tight_mixture_max_error_nats", "speedup_fused_over_torch"):
        print(key, result[key])
    return result


if __name__ == "__main__":
    main()
