"""The public experiment API (pyrozoo.train / load / from_pretrained / Run) and the faults a run
engine must survive: two writers, existing folders, resumes that change settings, kills, broken
checkpoints, interrupts, full disks, late validation, huge sample requests."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyro
import pytest
import torch

import pyrozoo
from pyrozoo.cli import main
from pyrozoo.evaluation import log_likelihood, predictive_log_likelihood
from pyrozoo.inference import rundir

TESTS = Path(__file__).resolve().parent

#: One short run per training regime.
REGIMES = {
    "svi": ("vae", dict(epochs=2, z_dim=4, hidden=[32])),
    "smi": ("stein-hyperprior", dict(epochs=2, num_components=3, m_dim=2, z_dim=4, hidden=[32])),
    "two-phase": ("rvae", dict(phase_epochs=[1, 1], z_dim=2, hidden=[16], num_centres=16, distance="local")),
    "introspective": ("sintrovae-prior", dict(iterations=30, warmup_iterations=10, batch_size=64, grid_size=32,
                                              num_components=4)),
}


def _ll(model, x):
    pyro.set_rng_seed(0)
    if hasattr(model, "q_m"):
        return predictive_log_likelihood(model, x, num_samples=20)["log_likelihood"]
    return log_likelihood(model, x, num_samples=20)


def test_import_pyrozoo_exposes_the_subpackages_and_the_api():
    for name in ("zoo", "data", "evaluation", "diagnostics", "inference", "plots", "models", "guides", "runs"):
        assert getattr(pyrozoo, name).__name__ == f"pyrozoo.{name}"
    assert pyrozoo.zoo.build("vae", event_shape=(1, 8, 8)).z_dim == 8
    from pyrozoo.inference import TwoPhaseStrategy  # noqa: F401
    from pyrozoo.models import HVAE, RiemannianVAE, SequenceVAE  # noqa: F401
    from pyrozoo.nn import ResidualDecoderNet, ResidualEncoderNet  # noqa: F401
    with pytest.raises(AttributeError):
        pyrozoo.no_such_thing


@pytest.mark.parametrize("regime", list(REGIMES))
def test_every_regime_trains_reloads_and_exports_to_identical_log_likelihoods(regime, tmp_path):
    preset, options = REGIMES[regime]
    run = pyrozoo.train(preset, out=tmp_path / "run", eval_samples=10, quiet=True, **options)
    assert run.config["regime"] == regime and run.path == tmp_path / "run"
    assert run.metrics and run.summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    x = run.dataset.test[:16]
    reference = _ll(run.model, x)
    loaded = pyrozoo.load(tmp_path / "run")
    assert torch.equal(_ll(loaded.model, x), reference)
    run.save_pretrained(tmp_path / "export")
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["config.json", "model.safetensors"]
    model = pyrozoo.from_pretrained(tmp_path / "export")
    assert torch.equal(_ll(model, x), reference)
    assert type(model.prior) is type(run.model.prior)  # the game's MoG prior is rebuilt too


def test_run_evaluate_sample_and_resume_from_python(tmp_path):
    run = pyrozoo.train("vae", out=tmp_path / "r", epochs=2, eval_samples=10, quiet=True)
    report = run.evaluate(num_samples=12)
    assert report["num_samples"] == 12 and (tmp_path / "r" / "evaluations" / "s12" / "evaluation.json").exists()
    assert run.sample(5).shape == (5, 1, 8, 8)
    run.resume(epochs=3)
    assert [m["epoch"] for m in run.metrics] == [1, 2, 3] and run.summary["epochs"] == 3
    assert run.config["resumes"] == [{"changed": {"epochs": [2, 3]}}]


def test_samples_are_written_in_bounded_memory(tmp_path, monkeypatch):
    run = pyrozoo.train("vae", out=tmp_path / "r", epochs=1, eval_samples=5, quiet=True)
    sample = run.model.sample
    sizes = []

    def small(n, *a, **k):
        sizes.append(n)
        return sample(n, *a, **k)

    monkeypatch.setattr(run.model, "sample", small)
    out = run.save_samples(2500, chunk=1000)
    assert sizes == [1000, 1000, 500]
    assert np.load(out / "samples.npy", mmap_mode="r").shape == (2500, 1, 8, 8)
    assert sorted(p.name for p in out.iterdir()) == ["samples.npy", "samples.png"]


# -- faults ---------------------------------------------------------------------------------------
def test_an_existing_run_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "vae", "--epochs", "1", "--eval-samples", "5", "--out", out, "--quiet"]) == 0
    assert main(["train", "vae", "--epochs", "1", "--eval-samples", "5", "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and "--resume" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r-2").exists()
    assert main(["train", "vae", "--epochs", "1", "--eval-samples", "5", "--out", out, "--quiet", "--overwrite"]) == 0


def test_a_run_in_use_is_refused_naming_its_holder(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "vae", "--epochs", "1", "--eval-samples", "5", "--out", str(out), "--quiet"]) == 0
    before = (out / "checkpoints" / "last.pt").read_bytes()
    code = (f"from pyrozoo.inference import RunDirectory; import time; d = RunDirectory({str(out)!r}, 'resume'); "
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        assert main(["train", "vae", "--epochs", "2", "--out", str(out), "--resume", "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert f"in use by pid {holder.pid}" in err and len(err.splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()
    assert (out / "checkpoints" / "last.pt").read_bytes() == before


def test_a_resume_applies_changed_settings_or_refuses_them(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["train", "vae", "--eval-samples", "5", "--out", str(out), "--quiet"]
    assert main([*base, "--epochs", "2"]) == 0
    config = (out / "config.json").read_text()
    # an architecture change, a shorter run, a changed batch size: refused, nothing written
    assert main([*base, "--epochs", "3", "--resume", "--z-dim", "3"]) == 2
    assert "cannot change z_dim" in capsys.readouterr().err
    assert main([*base, "--epochs", "1", "--resume"]) == 2
    assert "already trained 2 epochs" in capsys.readouterr().err
    assert main([*base, "--epochs", "3", "--resume", "--batch-size", "50"]) == 2
    assert "batch_size: 100 -> 50" in capsys.readouterr().err
    assert (out / "config.json").read_text() == config
    # a new learning rate reaches the optimiser and config.json; the summary agrees with the epochs
    assert main([*base, "--epochs", "3", "--resume", "--lr", "1e-4"]) == 0
    state = pyrozoo.inference.load_checkpoint(out / "checkpoints" / "last.pt")
    assert [g["lr"] for g in state["strategy"]["optimizer"]["param_groups"]] == [1e-4]
    saved = json.loads((out / "config.json").read_text())
    assert saved["options"]["lr"] == 1e-4 and saved["options"]["epochs"] == 3
    assert saved["resumes"] == [{"changed": {"epochs": [2, 3], "lr": [1e-3, 1e-4]}}]
    assert json.loads((out / "summary.json").read_text())["epochs"] == 3


_KILLED_RUN = """
import sys
sys.path.insert(0, {tests!r})
from helpers import die_at_write
die_at_write({n}, "save")
import pyrozoo
pyrozoo.train("vae", out={out!r}, epochs=3, z_dim=4, hidden=[32], eval_samples=10, quiet=True)
"""


def test_a_run_killed_while_writing_best_resumes_to_the_uninterrupted_result(tmp_path):
    """The kill lands half-way through last.pt of epoch 2 (the 6th write: config.json, config.yaml,
    then last, best, metrics per epoch); the resumed run reports the same best epoch, with the same
    weights, as a run never killed."""
    full = pyrozoo.train("vae", out=tmp_path / "full", epochs=3, z_dim=4, hidden=[32], eval_samples=10, quiet=True)
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN.format(tests=str(TESTS), n=6, out=str(out))],
                          capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    resumed = pyrozoo.train("vae", out=out, resume=True, quiet=True)
    for key in ("best_epoch", "best_valid_elbo", "test_log_likelihood", "test_elbo"):
        assert resumed.summary[key] == full.summary[key], key
    for (name, a), b in zip(full.model.state_dict().items(), pyrozoo.load(out).model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "truncate"])
def test_broken_checkpoints_get_a_one_line_error(tmp_path, capsys, content):
    out = tmp_path / "r"
    assert main(["train", "vae", "--epochs", "1", "--eval-samples", "5", "--out", str(out), "--quiet"]) == 0
    path = out / "checkpoints" / "last.pt"
    path.write_bytes(path.read_bytes()[:1000] if content == "truncate" else content)
    capsys.readouterr()
    for argv in (["evaluate", str(out), "--quiet"], ["train", "vae", "--epochs", "2", "--out", str(out), "--resume"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and "weights_only" not in err


def test_ctrl_c_stops_with_status_130_and_intact_checkpoints(tmp_path, capsys, monkeypatch):
    from pyrozoo.inference import SVIStrategy
    real = SVIStrategy.train_period

    def interrupted(self, period):
        if period == 1:
            raise KeyboardInterrupt
        return real(self, period)

    monkeypatch.setattr(SVIStrategy, "train_period", interrupted)
    out = tmp_path / "r"
    assert main(["train", "vae", "--epochs", "3", "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("pyrozoo: interrupted") and "Traceback" not in err and len(err.splitlines()) == 1
    assert pyrozoo.inference.load_checkpoint(out / "checkpoints" / "last.pt")["loop"]["period"] == 1
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    monkeypatch.setattr(SVIStrategy, "train_period", real)
    assert main(["train", "vae", "--epochs", "3", "--eval-samples", "5", "--out", str(out), "--resume",
                 "--quiet"]) == 0


def test_a_full_disk_stops_with_one_line_and_no_temporary_file(tmp_path, capsys, monkeypatch):
    def full_disk(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(rundir.torch, "save", full_disk)
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda p: type("u", (), {"free": 0})())
    out = tmp_path / "r"
    assert main(["train", "vae", "--epochs", "2", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no space left" in err and "enforce" not in err and len(err.splitlines()) == 1
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_the_divergence_message_starts_its_own_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pyrozoo", "train", "vae", "--epochs", "2", "--lr", "1e6",
                           "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("pyrozoo: training diverged: the loss became nan at epoch 1")
    assert "No checkpoint was written" in last and "epoch 0" not in last


@pytest.mark.parametrize("argv, match", [
    (["--eval-samples", "0"], "eval_samples must be >= 1"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--lr", "-1e-3"], "lr must be > 0, got -0.001"),
    (["--z-dim", "0"], "z_dim must be >= 1"),
    (["--grid-size", "64"], "grid_size does not apply to preset 'vae'"),
    (["--hidden", "300,x"], "--hidden takes comma-separated integers"),
])
def test_every_setting_is_checked_before_any_work(tmp_path, capsys, argv, match):
    out = tmp_path / "r"
    assert main(["train", "vae", "--out", str(out), "--quiet", *argv]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_options_are_checked_by_name_and_type_from_python(tmp_path):
    with pytest.raises(ValueError, match="unknown option 'epoch' .did you mean epochs"):
        pyrozoo.train("vae", out=tmp_path / "a", epoch=3)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 2.5"):
        pyrozoo.train("vae", out=tmp_path / "a", epochs=2.5)
    with pytest.raises(ValueError, match="prior is not an option of preset 'vae'"):
        pyrozoo.train("vae", out=tmp_path / "a", prior="mog")
    with pytest.raises(ValueError, match="unknown preset 'vea'; choose from vae"):
        pyrozoo.train("vea")
    assert not (tmp_path / "a").exists()


def test_recipes_are_typed_and_checked_at_registration():
    from pyrozoo.zoo import Recipe
    r = pyrozoo.zoo.recipe("rvae")
    assert r.regime == "two-phase" and r.defaults["phase_epochs"] == [100, 200] and "geometry" in r.report
    with pytest.raises(ValueError, match="unknown option 'epohcs'"):
        Recipe("x", "x", lambda event_shape: None, defaults={"epohcs": 3})
    with pytest.raises(ValueError, match="iterations does not apply to the svi regime"):
        Recipe("x", "x", lambda event_shape: None, defaults={"iterations": 3})
    with pytest.raises(ValueError, match="unknown report part"):
        Recipe("x", "x", lambda event_shape: None, report=("likelihood", "fid"))
    with pytest.raises(TypeError):
        Recipe("x", "x", lambda event_shape: None, trainer="smi")


def test_a_run_written_before_newer_options_resumes_as_it_was_trained(tmp_path):
    """A run directory whose config.json predates options (here ``accumulate`` and the Stein
    ``repulsion_scale``) resumes: ``accumulate`` takes its default 1 and ``repulsion_scale`` the
    ``plain`` update that runs of that time used, not today's default, so the resumed run equals a
    run trained with ``repulsion_scale="plain"`` throughout."""
    preset, options = REGIMES["smi"]
    options = {**options, "repulsion_scale": "plain", "eval_samples": 10, "quiet": True}
    full = pyrozoo.train(preset, out=tmp_path / "full", **{**options, "epochs": 3})
    out = tmp_path / "old"
    pyrozoo.train(preset, out=out, evaluate=False, **options)  # 2 epochs
    config = json.loads((out / "config.json").read_text())
    for name in ("accumulate", "repulsion_scale"):
        del config["options"][name]
    (out / "config.json").write_text(json.dumps(config))
    loaded = pyrozoo.load(out)
    assert loaded.config["options"]["repulsion_scale"] == "plain" and loaded.config["options"]["accumulate"] == 1
    resumed = pyrozoo.train(preset, out=out, resume=True, epochs=3, quiet=True, eval_samples=10)
    assert resumed.summary["epochs"] == 3
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
