"""The training loop and its run directory: resume, checkpoints, divergence, kills, locks, disks."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pyrozoo import zoo
from pyrozoo.inference import (ELBO, CheckpointError, RunDirectory, RunDirectoryError, RunLocked, SVIStrategy,
                               TrainConfig, TrainingDiverged, TrainingLoop, WriteError, load_checkpoint)
from pyrozoo.inference import rundir

from helpers import ScriptedStrategy, fit, snapshots

TESTS = Path(__file__).resolve().parent


def _vae(digits, seed=0):
    torch.manual_seed(seed)
    return zoo.build("vae", event_shape=digits.event_shape, z_dim=4, hidden=(32,))


def _metrics(path):
    return [json.loads(line) for line in (Path(path) / "metrics.jsonl").read_text().splitlines()]


def test_resumed_run_matches_uninterrupted(digits, tmp_path):
    full = _vae(digits)
    fit(full, digits, tmp_path / "a", epochs=4, warmup=2, seed=7)
    fit(_vae(digits), digits, tmp_path / "b", stop_after=2, epochs=4, warmup=2, seed=7)  # "killed" after epoch 2
    resumed = _vae(digits, seed=99)  # a fresh process with another initialisation
    loop = TrainingLoop(SVIStrategy(resumed, digits, TrainConfig(epochs=4, warmup=2, seed=7, quiet=True)),
                        tmp_path / "b").resume()
    assert loop.period == 2
    loop.fit()
    for (name, p), q in zip(full.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), name
    assert [r["epoch"] for r in _metrics(tmp_path / "b")] == [1, 2, 3, 4]
    assert [r["valid_elbo"] for r in _metrics(tmp_path / "a")] == [r["valid_elbo"] for r in _metrics(tmp_path / "b")]


def test_time_limit_stops_between_periods_and_a_resumed_run_finishes_like_an_uninterrupted_one(tmp_path,
                                                                                                monkeypatch):
    """A fake clock advances 10 s per period: a 25 s limit lets periods start at 0, 10 and 20 s and
    stops before the fourth; the checkpoint holds three whole periods and resuming ends where an
    uninterrupted run ends."""
    from pyrozoo.inference import loop as loop_module
    full, _ = snapshots()
    clock = [0.0]

    class Slow(ScriptedStrategy):
        def train_period(self, period):
            clock[0] += 10.0
            return super().train_period(period)

    monkeypatch.setattr(loop_module.time, "perf_counter", lambda: clock[0])
    loop = TrainingLoop(Slow(), tmp_path)
    result = loop.fit(time_limit=25.0)
    assert result["epochs"] == 3 and result["stopped_by_time_limit"] and not result["stopped_early"]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["loop"]["period"] == 3
    resumed = TrainingLoop(ScriptedStrategy(), tmp_path).resume()
    final = resumed.fit()
    assert final["epochs"] == 6 and not final["stopped_by_time_limit"]
    assert torch.equal(resumed.model.weight, full.model.weight)
    with pytest.raises(ValueError, match="time_limit must be a positive number of seconds"):
        TrainingLoop(ScriptedStrategy()).fit(time_limit=0)


def test_resume_maps_optimizer_state_by_parameter_name(digits, tmp_path):
    """A checkpoint whose optimiser listed the parameters in another order (another version of a
    model class) resumes onto the right parameters and finishes like the uninterrupted run."""
    cfg = dict(epochs=3, warmup=1, seed=3)
    full = _vae(digits)
    fit(full, digits, tmp_path / "a", **cfg)
    part = _vae(digits)
    backwards = torch.optim.Adam(list(part.parameters())[::-1], lr=1e-3)
    TrainingLoop(SVIStrategy(part, digits, TrainConfig(quiet=True, **cfg), optimizer=backwards),
                 tmp_path / "b").fit(stop_after=1)
    resumed = TrainingLoop(SVIStrategy(_vae(digits, seed=5), digits, TrainConfig(quiet=True, **cfg)),
                           tmp_path / "b").resume()
    resumed.fit()
    for (name, p), q in zip(full.named_parameters(), resumed.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_checkpoint_is_weights_only_and_complete(digits, tmp_path):
    fit(_vae(digits), digits, tmp_path, epochs=2)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert set(state) >= {"model", "strategy", "rng", "loop", "history", "best_model"}
    assert state["loop"]["period"] == 2 and len(state["history"]) == 2
    assert set(state["strategy"]) >= {"optimizer", "step"}
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_best_weights_survive_later_worse_periods(tmp_path):
    loop, weights = snapshots(tmp_path, scores=(1.0, 3.0, 2.0, 2.5))
    assert loop.best_period == 2
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == 2 and torch.equal(best["model"]["weight"], weights[2]["weight"])
    assert torch.equal(load_checkpoint(tmp_path / "checkpoints" / "last.pt")["best_model"]["weight"],
                       weights[2]["weight"])
    assert torch.equal(loop.load_best().weight, weights[2]["weight"])


def test_early_stopping_after_patience(tmp_path):
    loop, _ = snapshots(tmp_path, scores=(1.0, 3.0, 2.0, 2.5, 2.0, 9.0), patience=2)
    assert loop.stopped_early and loop.period == 4 and loop.best_period == 2


class _NaNAfter(ELBO):
    def __init__(self, steps):
        super().__init__()
        self.calls, self.steps = 0, steps

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = super().differentiable_loss(model, guide, *args, **kwargs)
        self.calls += 1
        return loss * float("nan") if self.calls > self.steps else loss


def test_divergence_stops_and_keeps_last_good_checkpoint(digits, tmp_path):
    steps_per_epoch = math.ceil(len(digits.train) / 100)
    with pytest.raises(TrainingDiverged, match=r"last good checkpoint \(epoch 1\)") as err:
        fit(_vae(digits), digits, tmp_path, objective=_NaNAfter(steps_per_epoch + 3), epochs=5)
    assert str(tmp_path / "checkpoints") in str(err.value) and "\n" not in str(err.value)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["loop"]["period"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(digits, tmp_path):
    with pytest.raises(TrainingDiverged) as err:
        fit(_vae(digits), digits, tmp_path, objective=_NaNAfter(3), epochs=5)
    assert "No checkpoint was written" in str(err.value) and "epoch 0" not in str(err.value)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("bad, match", [("nan", "NaN"), ("shape", "shape"), ("support", r"\{0, 1\}")])
def test_bad_data_is_rejected_before_training(digits, tmp_path, bad, match):
    import copy
    ds = copy.copy(digits)
    if bad == "nan":
        ds.valid = ds.valid.clone()
        ds.valid[3, 0, 2, 2] = float("nan")
    elif bad == "shape":
        ds.test = ds.test.reshape(len(ds.test), -1)
    else:
        ds.test = ds.test * 0.5
    vae = _vae(digits)
    before = [p.clone() for p in vae.parameters()]
    with pytest.raises(ValueError, match=match):
        SVIStrategy(vae, ds, TrainConfig(epochs=1, quiet=True))
    assert all(torch.equal(a, b) for a, b in zip(before, vae.parameters()))


def test_bad_config_is_rejected(digits):
    with pytest.raises(ValueError, match="lr"):
        SVIStrategy(_vae(digits), digits, TrainConfig(lr=-1.0))
    with pytest.raises(ValueError, match="device"):
        SVIStrategy(_vae(digits), digits, TrainConfig(device="tpu"))
    with pytest.raises(ValueError, match="epochs must be an integer"):
        SVIStrategy(_vae(digits), digits, TrainConfig(epochs=2.5))


# -- kills inside the write window ------------------------------------------------------------------
_KILLED = """
import sys
sys.path.insert(0, {tests!r})
from helpers import die_at_write, snapshots
die_at_write({n}, {mode!r})
snapshots({out!r}, scores={scores!r})
"""
SCORES = (1.0, 3.0, 2.0, 4.0, 0.0, 5.0)


@pytest.mark.parametrize("n,mode", [(1, "replace"), (2, "save"), (3, "replace"), (7, "replace"), (8, "save"),
                                    (9, "replace"), (10, "replace"), (11, "save"), (12, "replace")])
def test_a_kill_at_any_write_leaves_a_consistent_run_that_resumes_exactly(tmp_path, n, mode):
    """Each period writes last.pt, best.pt and metrics.jsonl (3 renames). SIGKILL the writer
    between a temporary file and its rename, or half-way through a checkpoint; the checkpoint,
    the best weights and the metrics must agree, and the resumed run must end as the
    uninterrupted one."""
    _, weights = snapshots(tmp_path / "full", scores=SCORES)
    out = tmp_path / "killed"
    code = _KILLED.format(tests=str(TESTS), n=n, mode=mode, out=str(out), scores=SCORES)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    if not (out / "checkpoints" / "last.pt").exists():
        assert n <= 2  # killed before the first commit
        return
    loop = TrainingLoop(ScriptedStrategy(scores=SCORES), RunDirectory(out, "resume")).resume()
    done = loop.period
    assert [r["epoch"] for r in _metrics(out)] == list(range(1, done + 1))
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    assert best["epoch"] == loop.best_period
    assert torch.equal(best["model"]["weight"], weights[loop.best_period]["weight"])
    assert torch.equal(loop.best_state_dict()["weight"], weights[loop.best_period]["weight"])
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    loop.fit()
    assert torch.equal(loop.model.weight, weights[len(SCORES)]["weight"])
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(_metrics(out)) == drop(_metrics(tmp_path / "full"))


# -- run directories ----------------------------------------------------------------------------------
def test_a_run_directory_has_one_writer(tmp_path):
    with RunDirectory(tmp_path / "run"):
        with pytest.raises(RunLocked, match=r"in use by pid \d+"):
            RunDirectory(tmp_path / "run", "overwrite")
    RunDirectory(tmp_path / "run", "overwrite").close()  # released


def test_a_second_process_is_refused_while_the_first_writes(tmp_path):
    code = (f"from pyrozoo.inference import RunDirectory; import time; d = RunDirectory({str(tmp_path / 'r')!r}); "
            "print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(RunLocked, match=f"pid {proc.pid}"):
            RunDirectory(tmp_path / "r", "resume")
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(RunDirectoryError, match="no checkpoint"):  # the lock died with its process
        RunDirectory(tmp_path / "r", "resume")


def test_run_directory_modes(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(RunDirectoryError, match="already exists and is not empty"):
        RunDirectory(tmp_path / "mine")
    with pytest.raises(RunDirectoryError, match="holds no pyrozoo run"):
        RunDirectory(tmp_path / "mine", "overwrite")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["thesis.tex"]  # no lock file left
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="not a folder"):
        RunDirectory(tmp_path / "file")
    with pytest.raises(RunDirectoryError, match="is a file"):
        RunDirectory(tmp_path / "file" / "run")
    with pytest.raises(ValueError, match="choose from new, resume, overwrite, auto"):
        RunDirectory(tmp_path / "x", "append")
    snapshots(tmp_path / "run", scores=(1.0, 2.0))
    d = RunDirectory(tmp_path / "run", "auto")
    assert d.resuming
    d.close()
    with RunDirectory(tmp_path / "run", "overwrite") as d:
        assert not d.resuming and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, "truncate"])
def test_unreadable_checkpoints_get_a_one_line_error(tmp_path, content):
    snapshots(tmp_path, scores=(1.0, 2.0))
    path = tmp_path / "checkpoints" / "last.pt"
    if content == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "weights_only" not in message


def test_a_failed_write_removes_its_temporary_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    loop = TrainingLoop(ScriptedStrategy(scores=(1.0, 2.0, 3.0)), tmp_path)
    loop.fit(stop_after=1)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()

    def full_disk(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda p: type("u", (), {"free": 0})())
    monkeypatch.setattr(rundir.torch, "save", full_disk)
    with pytest.raises(WriteError, match="no space left on the device") as err:
        loop.fit(stop_after=1)
    assert "\n" not in str(err.value) and "enforce" not in str(err.value)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_ctrl_c_inside_a_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    loop = TrainingLoop(ScriptedStrategy(scores=(1.0, 2.0, 3.0)), tmp_path)
    loop.fit(stop_after=1)
    real = torch.save

    def interrupted(obj, f, *a, **k):
        real(obj, f, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.fit(stop_after=1)
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["loop"]["period"] == 1


def test_a_compiled_training_step_gives_the_eager_losses_and_parameters(digits, tmp_path):
    """torch.compile with the aot_eager backend (captured forward and backward graphs; inductor's
    code generation takes minutes on this CPU) reproduces the eager run."""
    import pyro
    pyro.clear_param_store()
    eager = fit(_vae(digits), digits, tmp_path / "eager", epochs=2, warmup=1, seed=2)
    pyro.clear_param_store()
    compiled = fit(_vae(digits), digits, tmp_path / "compiled", epochs=2, warmup=1, seed=2, compile="aot_eager")
    for a, b in zip(eager.history, compiled.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["valid_elbo"] == pytest.approx(b["valid_elbo"], rel=1e-6)
    for (name, p), q in zip(eager.model.named_parameters(), compiled.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="unknown compile backend 'fast'; choose from inductor, aot_eager"):
        TrainConfig(compile="fast").validate()


def test_cuda_graph_needs_a_cuda_device(digits):
    strategy = SVIStrategy(_vae(digits), digits, TrainConfig(epochs=1, quiet=True, cuda_graph=True))
    with pytest.raises(ValueError, match="cuda_graph needs device cuda"):
        TrainingLoop(strategy).fit()


def test_a_failed_cuda_graph_capture_says_why_and_keeps_no_half_captured_graph(digits, monkeypatch):
    """The capture path on the CPU with torch.cuda's stream and graph calls stood in for: the three warm-up
    steps train eagerly, and a capture that fails (as an operation reading to the host fails there) raises
    one error that names cuda_graph and the way out, and leaves no graph to replay."""
    import contextlib

    class Stream:
        def wait_stream(self, other):
            pass

    @contextlib.contextmanager
    def failing_graph(graph):
        yield
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", object)
    monkeypatch.setattr(torch.cuda, "graph", failing_graph)
    strategy = SVIStrategy(_vae(digits), digits, TrainConfig(epochs=1, batch_size=50, quiet=True))
    strategy.setup()
    strategy._graph = None
    x = digits.binarized(digits.train[:50])
    before = [p.detach().clone() for p in strategy.model.parameters()]
    losses = [strategy._graph_step(x, 1.0) for _ in range(3)]
    assert all(torch.isfinite(v) for v in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, strategy.model.parameters()))
    with pytest.raises(RuntimeError, match="capturing the training step failed \\(operation not permitted.*"
                                           "train without cuda_graph"):
        strategy._graph_step(x, 1.0)
    assert strategy._graph is None
