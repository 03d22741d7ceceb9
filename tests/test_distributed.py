"""Distributed training and evaluation on torch.distributed (gloo, two CPU processes of one thread).

Each test launches ``torchrun --standalone --nproc_per_node 2`` on tests/dist_worker.py or on
``-m pyrozoo``. The equivalence tests compare two ranks with batch b against one process with
batch b and ``accumulate=2``: the same global batch of 2b points in the same order, the same
random draws per micro-batch (seeded by seed, epoch, step and micro-batch index), so the
parameters must agree (float64, 1e-6; in practice they agree bit for bit).
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
REGIMES = ("vae", "hvae-vampprior", "stein-hyperprior", "sintrovae-prior", "rvae")
_CACHE = {}


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(TESTS.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


def torchrun(*args, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout, cwd=TESTS)


#: What a gloo worker thread prints when it outlives the interpreter and aborts a rank (SIGABRT) at exit.
EXIT_ABORT = "terminate called without an active exception"


def assert_finished(proc):
    """The command succeeded, or its work finished and one rank then aborted at interpreter exit with
    :data:`EXIT_ABORT`. That abort came after ``distributed.teardown`` destroyed the group (twice in
    the CI runs of 2026-12-01, never when the module ran alone); its likely cause, a wrapper in a
    reference cycle releasing the group during finalisation, is now collected by ``teardown``
    (see the teardown test). The tolerance stays until full CI runs confirm it is gone;
    the assertions that follow each call check the work itself (files written by rank 0 after the
    last collective, parameters and metrics equal to one process's)."""
    if proc.returncode != 0 and EXIT_ABORT in proc.stderr and "Signal 6 (SIGABRT)" in proc.stderr:
        warnings.warn(f"a rank aborted at interpreter exit ({EXIT_ABORT!r}) after its work")
        return
    assert proc.returncode == 0, proc.stderr[-3000:]


def single(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=_env(),
                          timeout=timeout, cwd=TESTS)


def run_worker(regime, tmp, ranks, *extra):
    """Params and checks of a finished run (cached per regime and setting for the module)."""
    key = (regime, ranks, extra)
    if key not in _CACHE:
        out = Path(tmp) / f"{regime}-{ranks}-{'-'.join(map(str, extra)) or 'plain'}"
        proc = (torchrun if ranks == 2 else single)("dist_worker.py", regime, out, *extra)
        assert_finished(proc)
        _CACHE[key] = (torch.load(out / "params.pt"), json.loads((out / "checks.json").read_text()))
    return _CACHE[key]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("dist")


@pytest.mark.parametrize("regime", REGIMES)
def test_two_ranks_with_half_batches_match_one_process_with_the_whole_batch(regime, work):
    one, checks_one = run_worker(regime, work, 1, "--accumulate", 2)
    two, checks_two = run_worker(regime, work, 2)
    assert checks_two["world_size"] == 2 and checks_one["world_size"] == 1
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-6, msg=name)
    # the metrics (all-reduced over ranks) agree too
    for a, b in zip(checks_one["history"], checks_two["history"]):
        assert a.keys() == b.keys()
        for k in a:
            if k != "seconds":
                assert a[k] == (pytest.approx(b[k], rel=1e-9) if isinstance(b[k], float) else b[k]), k


def test_teardown_leaves_no_wrapper_that_would_release_the_group_at_interpreter_exit(work):
    """In the Stein regime the training strategy ends up in a reference cycle that still holds its
    DistributedDataParallel wrapper after ``main`` returns; ``distributed.teardown`` collects it
    while the interpreter is alive, so no gloo group is released during finalisation."""
    run_worker("stein-hyperprior", work, 2)
    out = work / "stein-hyperprior-2-plain"
    for rank in (0, 1):
        assert json.loads((out / f"teardown-r{rank}.json").read_text()) == {"ddp_alive": 0}, rank


def test_stein_particles_are_identical_on_every_rank_after_every_step(work):
    _, checks = run_worker("stein-hyperprior", work, 2)
    steps_per_epoch = 120 // (20 * 2)
    assert checks["particles_identical"] is True and checks["steps_checked"] == 3 * steps_per_epoch


def test_a_killed_two_rank_run_resumes_to_the_uninterrupted_result(work):
    full, _ = run_worker("vae", work, 2)
    out = work / "vae-killed"
    first = torchrun("dist_worker.py", "vae", out, "--stop-after", 1)
    assert_finished(first)
    assert json.loads((out / "checks.json").read_text())["history"][-1]["epoch"] == 1
    second = torchrun("dist_worker.py", "vae", out, "--resume")
    assert_finished(second)
    resumed = torch.load(out / "params.pt")
    for name in full:
        assert torch.equal(resumed[name], full[name]), name


def test_rank_zeros_clock_decides_the_time_limit_for_every_rank(work):
    """Rank 1's clock says the 500 s limit has long passed, rank 0's does not: both ranks train
    all three epochs (a rank that stopped alone would leave the other waiting in a collective)."""
    full, _ = run_worker("vae", work, 2)
    out = work / "vae-clock"
    proc = torchrun("dist_worker.py", "vae", out, "--time-limit", 500, "--late-clock-rank", 1, timeout=240)
    assert_finished(proc)
    assert [r["epoch"] for r in json.loads((out / "checks.json").read_text())["history"]] == [1, 2, 3]
    params = torch.load(out / "params.pt")
    for name in full:
        assert torch.equal(params[name], full[name]), name


def test_a_rank_that_raises_ends_the_run_on_every_rank(work):
    proc = torchrun("dist_worker.py", "vae", work / "fails", "--fail-on-rank", 1, timeout=240)
    assert proc.returncode != 0
    assert "rank 1 failed on purpose" in proc.stderr


def test_torchrun_trains_evaluates_and_writes_from_rank_zero_only(work):
    out = work / "cli"
    proc = torchrun("-m", "pyrozoo", "train", "vae", "--epochs", 2, "--eval-samples", 10, "--out", out,
                    "--z-dim", 3, "--hidden", "16")
    assert_finished(proc)
    assert proc.stdout.count("run directory:") == 1  # printed by rank 0 alone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["test_log_likelihood"] < 0
    assert [json.loads(ln)["epoch"] for ln in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    evaluated = torchrun("-m", "pyrozoo", "evaluate", out, "--num-samples", 10, "--quiet")
    assert_finished(evaluated)
    two = json.loads((out / "evaluations" / "s10" / "evaluation.json").read_text())
    # the sharded evaluation on two ranks equals the evaluation in one process, bit for bit
    alone = single("-m", "pyrozoo", "evaluate", out, "--num-samples", 10, "--quiet", "--out", work / "alone")
    assert_finished(alone)
    one = json.loads((work / "alone" / "evaluation.json").read_text())
    for key in ("test_log_likelihood", "test_elbo", "test_kl", "active_units", "psis_khat_mean"):
        assert two[key] == one[key], key
