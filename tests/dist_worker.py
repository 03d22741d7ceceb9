"""One process of the distributed tests (tests/test_distributed.py starts it with torchrun, or alone).

    python dist_worker.py REGIME OUT [--accumulate K] [--stop-after P] [--resume] [--fail-on-rank R]
                                     [--time-limit S --late-clock-rank R]

Trains a small float64 model of ``REGIME`` (vae, hvae-vampprior, stein-hyperprior, sintrovae-prior,
rvae) on a subset of the digits and writes, from rank 0, ``OUT/params.pt`` (the final parameters)
and ``OUT/checks.json`` (what the run observed: e.g. whether the Stein particles were identical on
every rank after every step).
"""

import argparse
import gc
import json
import os
import types
from pathlib import Path

import torch

torch.set_num_threads(1)

import pyro  # noqa: E402

from pyrozoo import zoo  # noqa: E402
from pyrozoo.data import load, sample_toy  # noqa: E402
from pyrozoo.inference import (SMI, IntroStrategy, SVIStrategy, TrainConfig, TrainingLoop,  # noqa: E402
                               TwoPhaseStrategy, distributed, stein_param_groups)

BATCH = 20


def subset(name="digits", n=120, binarize=None):
    data = load(name, binarize=binarize)
    data.train, data.valid, data.test = data.train[:n].double(), data.valid[:40].double(), data.test[:40].double()
    return data


class WatchedSVI(SVIStrategy):
    """SVI that records whether the Stein particles are identical on every rank after every step."""

    def __init__(self, *args, checks, **kwargs):
        super().__init__(*args, **kwargs)
        self.checks = checks

    def setup(self):
        super().setup()
        step = self.optimizer.step

        def watched(*a, **k):
            out = step(*a, **k)
            q = self.model.q_m
            theta = torch.cat([q.loc.detach().reshape(-1), q.log_scale.detach().reshape(-1)])
            gathered = distributed.gather({distributed.context().rank: theta})
            same = all(torch.equal(gathered[0], t) for t in gathered.values())
            self.checks["particles_identical"] = self.checks.get("particles_identical", True) and same
            self.checks["steps_checked"] = self.checks.get("steps_checked", 0) + 1
            return out
        self.optimizer.step = watched


def strategy(regime, accumulate, checks):
    torch.manual_seed(0)
    cfg = dict(epochs=3, batch_size=BATCH, lr=1e-3, accumulate=accumulate, seed=3, quiet=True, eval_batch_size=20)
    if regime == "vae":
        data = subset()
        model = zoo.build("vae", event_shape=data.event_shape, z_dim=3, hidden=[16]).double()
        return SVIStrategy(model, data, TrainConfig(warmup=1, **cfg))
    if regime == "hvae-vampprior":
        data = subset()
        model = zoo.build("hvae-vampprior", event_shape=data.event_shape, z_dim=3, hidden=[16],
                          num_components=5).double()
        return SVIStrategy(model, data, TrainConfig(normalize_gradients=True, **cfg))
    if regime == "stein-hyperprior":
        data = subset()
        model = zoo.build("stein-hyperprior", event_shape=data.event_shape, z_dim=3, m_dim=2, hidden=[16],
                          num_components=3).double()
        smi = SMI(model.model, model.guide, num_elbo_particles=1, **model.smi_options)
        return WatchedSVI(model, data, TrainConfig(**cfg), objective=smi, valid_objective=smi, checks=checks,
                          optimizer=lambda _: torch.optim.Adam(stein_param_groups(model, 1e-3, 1e-2)))
    if regime == "sintrovae-prior":
        model = zoo.build("sintrovae-prior", event_shape=(2,), num_components=4, hidden=[32, 32]).double()
        cfg_i = zoo.intro_config("sintrovae-prior", "8gaussians", iterations=120, warmup=40, milestones=(80,),
                                 batch_size=BATCH, accumulate=accumulate, seed=3, quiet=True, log_every=20,
                                 kl_samples=8)
        return IntroStrategy(model, lambda n: sample_toy("8gaussians", n).double(), cfg_i)
    if regime == "rvae":
        data = subset(binarize=False)
        model = zoo.build("rvae", event_shape=data.event_shape, z_dim=2, hidden=[16], num_centres=8).double()
        return TwoPhaseStrategy(model, data, TrainConfig(**{**cfg, "epochs": 2}), phase_epochs=(1, 1),
                                phase_one_beta=0.0)
    raise SystemExit(f"unknown regime {regime}")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("regime")
    p.add_argument("out")
    p.add_argument("--accumulate", type=int, default=1)
    p.add_argument("--stop-after", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--fail-on-rank", type=int)
    p.add_argument("--time-limit", type=float)
    p.add_argument("--late-clock-rank", type=int,
                   help="this rank's training-loop clock jumps 10^4 s ahead after its first reading")
    args = p.parse_args(argv)
    if args.late_clock_rank is not None and int(os.environ.get("RANK", 0)) == args.late_clock_rank:
        from pyrozoo.inference import loop as loop_module
        clock, readings = loop_module.time.perf_counter, []

        def late():
            readings.append(None)
            return clock() + (1e4 if len(readings) > 1 else 0.0)
        loop_module.time = types.SimpleNamespace(perf_counter=late)
    pyro.clear_param_store()
    checks = {}
    s = strategy(args.regime, args.accumulate, checks)
    if args.fail_on_rank is not None:
        original = s.train_period

        def failing(period):
            if period == 1 and distributed.context().rank == args.fail_on_rank:
                raise RuntimeError(f"rank {args.fail_on_rank} failed on purpose")
            return original(period)
        s.train_period = failing
    out = Path(args.out)
    loop = TrainingLoop(s, out / "run")
    if args.resume:
        loop.resume()
    loop.fit(stop_after=args.stop_after, time_limit=args.time_limit)
    ctx = distributed.context()
    if ctx.main:
        torch.save({k: v.cpu() for k, v in s.model.state_dict().items()}, out / "params.pt")
        (out / "checks.json").write_text(json.dumps({**checks, "world_size": ctx.world_size,
                                                     "history": loop.history}))
    distributed.barrier()
    return out


if __name__ == "__main__":
    out = main()
    # what the atexit hook would do, then a record of what it left: a DistributedDataParallel
    # wrapper still alive here would release the process group during interpreter finalisation
    distributed.teardown()
    from torch.nn.parallel import DistributedDataParallel
    alive = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
    (out / f"teardown-r{os.environ.get('RANK', 0)}.json").write_text(json.dumps({"ddp_alive": alive}))
