"""Data-parallel scaling: training samples per second with 1 and 2 processes (torchrun, gloo on the
CPU with one thread each, or nccl on GPUs), and the scaling efficiency.

    python benchmarks/scaling.py                         # vae on MNIST, 1 and 2 CPU processes
    python benchmarks/scaling.py --preset vampprior --steps 100
    python benchmarks/scaling.py --device cuda --procs 1  # one GPU (more where the machine has them)

Each configuration trains ``--epochs`` epochs of ``--steps`` global steps (``--batch-size`` per
process, so the global batch grows with the processes, as in ``pyrozoo train`` under torchrun)
on the first MNIST training images and reports the median epoch time after the first epoch, over
``--repeats`` launches per process count, interleaved (1, 2, 1, 2, ...).
Efficiency = (samples/s with P processes) / (P × samples/s with one). Results:
``benchmarks/results/scaling.json`` (rewritten after each configuration).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results_io import RESULTS, save_entry


def worker(args):
    """One process: train and print the epoch seconds as JSON (rank 0)."""
    import torch
    torch.set_num_threads(args.threads)
    from pyrozoo import zoo
    from pyrozoo.data import load
    from pyrozoo.inference import SVIStrategy, TrainConfig, TrainingLoop, distributed

    ctx, _ = distributed.setup(args.device)
    data = load("mnist", data_dir=args.data_dir)
    n = args.steps * args.batch_size * ctx.world_size
    data.train, data.valid = data.train[:n], data.valid[:args.batch_size]
    torch.manual_seed(0)
    model = zoo.build(args.preset, event_shape=data.event_shape)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, quiet=True, device=args.device,
                      eval_batch_size=args.batch_size)
    loop = TrainingLoop(SVIStrategy(model, data, cfg))
    loop.fit()
    if ctx.main:
        print(json.dumps({"epoch_seconds": [r["seconds"] for r in loop.history], "samples_per_epoch": n,
                          "world_size": ctx.world_size}), flush=True)


def launch(procs, args):
    """Run the worker under torchrun with ``procs`` processes; returns its JSON line."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", __file__,
           "--worker", "--preset", args.preset, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--epochs", str(args.epochs), "--threads", str(args.threads), "--device", args.device]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"torchrun with {procs} processes failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", default="vae")
    p.add_argument("--procs", default="1,2", help="process counts, e.g. 1,2")
    p.add_argument("--steps", type=int, default=100, help="global steps per epoch")
    p.add_argument("--batch-size", type=int, default=100, help="per process")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2, help="interleaved launches per process count")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    counts = [int(c) for c in args.procs.split(",")]
    seconds = {procs: [] for procs in counts}
    samples = {}
    for _ in range(args.repeats):  # interleaved, so a slow spell of a shared machine hits every count alike
        for procs in counts:
            r = launch(procs, args)
            seconds[procs] += r["epoch_seconds"][1:] or r["epoch_seconds"]
            samples[procs] = r["samples_per_epoch"]
    rates = {procs: samples[procs] / statistics.median(seconds[procs]) for procs in counts}
    for procs in counts:
        entry = {"samples_per_second": round(rates[procs], 1), "epoch_seconds": seconds[procs],
                 "batch_per_process": args.batch_size, "global_batch": args.batch_size * procs,
                 "efficiency": round(rates[procs] / (procs * rates[counts[0]] / counts[0]), 3),
                 "steps_per_epoch": args.steps, "epochs": args.epochs, "launches": args.repeats,
                 "threads_per_process": args.threads,
                 "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"}
        key = f"{args.preset}/b{args.batch_size}/{args.device}/p{procs}"
        save_entry(RESULTS / "scaling.json", "runs", key, entry,
                   setup="MNIST, default preset sizes, samples per second of data-parallel training (torchrun, "
                         "gloo on CPUs) from the median epoch time after the first epoch, over interleaved launches "
                         "(1, 2, 1, 2 processes); efficiency = rate(P) / (P x rate(1))")
        print(f"{key}: {entry['samples_per_second']} samples/s, efficiency {entry['efficiency']}", flush=True)

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
