"""Experiment tracking: TensorBoard event files hold the logged scalars and images (read back with
TensorBoard's own event reader), logging never changes what a run trains, resumed runs continue
their steps, and the optional trackers name their extra when missing."""

import importlib.util
import io
import json

import pytest
import torch

import pyrozoo
from pyrozoo.cli import main

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

SMALL = dict(epochs=3, z_dim=3, hidden=[16], eval_samples=5, quiet=True)


def _events(run_dir):
    ea = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    ea.Reload()
    return ea


def _scalars(ea, tag):
    """``{step: value}`` of a scalar tag."""
    return {e.step: e.value for e in ea.Scalars(tag)}


def _weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]


def _metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_run_writes_its_scalars_and_image_grids_to_tensorboard(tmp_path):
    from PIL import Image
    run = pyrozoo.train("vae", out=tmp_path / "run", **SMALL)
    ea = _events(run.path)
    records = run.metrics
    # every numeric entry of every metrics record, at its epoch
    for tag, key in (("train/loss", "train_loss"), ("valid/elbo", "valid_elbo"), ("train/beta", "beta")):
        assert _scalars(ea, tag) == pytest.approx({r["epoch"]: r[key] for r in records})
    assert _scalars(ea, "train/lr") == pytest.approx({1: 1e-3, 2: 1e-3, 3: 1e-3})
    # the probe's KL and reconstruction terms, on validation points
    kl, rec = _scalars(ea, "valid/kl"), _scalars(ea, "valid/reconstruction")
    assert list(kl) == [1, 2, 3] and all(v > 0 for v in kl.values()) and all(v < 0 for v in rec.values())
    # the final report at the last step
    assert _scalars(ea, "test/log_likelihood") == pytest.approx({3: run.summary["test_log_likelihood"]})
    assert _scalars(ea, "test/kl") == pytest.approx({3: run.summary["test_kl"]})
    # image grids once per epoch: 16 samples of 8x8 in a 4x4 grid with 1-pixel padding; 8 images over 8 reconstructions
    for tag, size in (("images/samples", (37, 37)), ("images/reconstructions", (73, 19))):
        events = ea.Images(tag)
        assert [e.step for e in events] == [1, 2, 3]
        picture = Image.open(io.BytesIO(events[-1].encoded_image_string))
        assert picture.size == size
    text = ea.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "preset: vae" in text and "z_dim: 3" in text


def test_logging_does_not_change_what_a_run_trains(tmp_path):
    logged = pyrozoo.train("vae", out=tmp_path / "logged", evaluate=False, **SMALL)
    silent = pyrozoo.train("vae", out=tmp_path / "silent", evaluate=False, loggers="none", **SMALL)
    assert silent.config["options"]["loggers"] == [] and not (tmp_path / "silent" / "tensorboard").exists()
    a, b = _weights(logged.path), _weights(silent.path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _metrics(logged.path) == _metrics(silent.path)


def test_a_resumed_run_continues_its_steps_and_matches_the_uninterrupted_run(tmp_path):
    whole = pyrozoo.train("vae", out=tmp_path / "whole", evaluate=False, **{**SMALL, "epochs": 4})
    part = pyrozoo.train("vae", out=tmp_path / "part", evaluate=False, **{**SMALL, "epochs": 2})
    part.resume(epochs=4, evaluate=False)
    a, b = _weights(whole.path), _weights(part.path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert list(_scalars(_events(part.path), "train/loss")) == [1, 2, 3, 4]
    assert [e.step for e in _events(part.path).Images("images/samples")] == [1, 2, 3, 4]


def test_iteration_runs_log_the_game_terms_and_both_learning_rates(tmp_path):
    run = pyrozoo.train("sintrovae", out=tmp_path / "run", iterations=40, warmup_iterations=10, batch_size=32,
                        evaluate=False, quiet=True)
    ea = _events(run.path)
    steps = [r["step"] for r in run.metrics]
    assert list(_scalars(ea, "train/kl")) == steps
    assert _scalars(ea, "train/rec") == pytest.approx({r["step"]: r["rec"] for r in run.metrics})
    assert {"train/lr_enc", "train/lr_dec"} <= set(ea.Tags()["scalars"])
    assert ea.Tags()["images"] == []  # 2D points: no image grids


def test_logger_objects_join_the_named_trackers(tmp_path):
    class Recorder:
        def __init__(self):
            self.steps, self.closed = [], False

        def log(self, record, step):
            self.steps.append(step)

        def close(self):
            self.closed = True

    mine = Recorder()
    pyrozoo.train("vae", out=tmp_path / "run", evaluate=False, loggers=[mine], **SMALL)
    assert mine.steps == [1, 2, 3] and mine.closed
    assert (tmp_path / "run" / "tensorboard").is_dir()


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_missing_tracker_names_its_extra_before_any_work(name, tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == name else real(n, *a))
    with pytest.raises(ValueError, match=rf'pip install "pyrozoo\[{name}\]"'):
        pyrozoo.train("vae", out=tmp_path / "a", loggers=["tensorboard", name], **SMALL)
    assert main(["train", "vae", "--loggers", name, "--out", str(tmp_path / "b")]) == 2
    assert f'pyrozoo[{name}]' in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_loggers_flag_is_checked_and_none_switches_logging_off(tmp_path, capsys):
    assert main(["train", "vae", "--loggers", "tensorboard,nope", "--out", str(tmp_path / "a")]) == 2
    assert "unknown loggers entry 'nope'; choose from none, tensorboard, wandb, mlflow" in capsys.readouterr().err
    assert main(["train", "vae", "--loggers", "none,tensorboard", "--out", str(tmp_path / "a")]) == 2
    assert not (tmp_path / "a").exists()
    assert main(["train", "vae", "--epochs", "1", "--eval-samples", "2", "--loggers", "none", "--quiet",
                 "--out", str(tmp_path / "b")]) == 0
    assert not (tmp_path / "b" / "tensorboard").exists()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_the_wandb_logger_writes_an_offline_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    pyrozoo.train("vae", out=tmp_path / "run", evaluate=False, loggers="wandb", **SMALL)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    assert (tmp_path / "run" / "tracking.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed")
def test_the_mlflow_logger_records_metrics_and_images(tmp_path, monkeypatch):
    import mlflow
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 wants a database server; a folder will do here
    run = pyrozoo.train("vae", out=tmp_path / "run", loggers="mlflow", **SMALL)
    run_id = json.loads((tmp_path / "run" / "tracking.json").read_text())["mlflow"]
    client = mlflow.tracking.MlflowClient(uri)
    history = client.get_metric_history(run_id, "train/loss")
    assert {m.step: m.value for m in history} == pytest.approx({r["epoch"]: r["train_loss"] for r in run.metrics})
    images = [a.path for a in client.list_artifacts(run_id, "images")]
    assert sum("samples+step+" in p and p.endswith(".png") for p in images) == 3
    assert client.get_run(run_id).data.metrics["test/log_likelihood"] == pytest.approx(
        run.summary["test_log_likelihood"])
    assert client.get_run(run_id).data.params["z_dim"] == "3"


def test_a_run_shows_no_deprecation_or_future_warnings(tmp_path):
    """Quiet by default: a run with TensorBoard, its figures and its report raises none (matplotlib
    used to warn about the tensors pyrozoo handed it)."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pyrozoo.train("vae", out=tmp_path / "run", **SMALL)
    shown = [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught
             if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert shown == []
