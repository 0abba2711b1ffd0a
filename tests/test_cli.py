"""The command line: bad options give one line and a non-zero exit; train, evaluate and
resume write and read their files (on the offline sample, no network)."""

import json
import subprocess
import sys
import time

import pytest

from numbanet import cli
from numbanet.data import load_mnist_sample
from numbanet.nn import Dense, ReLU, Sequential
from numbanet.optim import Adam
from numbanet.train import Trainer


def _one_error_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text and "error:" in lines[0]
    return lines[0]


@pytest.mark.parametrize("argv, match", [
    (["train", "--epochs", "-1"], "--epochs: must be >= 0"),
    (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["train", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["train", "--hidden", "256,0"], "widths must be positive"),
    (["train", "--hidden", "wide"], "comma-separated integers"),
    (["train", "--lr", "0"], "--lr: must lie in (0"),
    (["train", "--dropout", "1"], "--dropout: must lie in [0, 1)"),
    (["train", "--threads", "0"], "--threads: must be >= 1"),
    (["train", "--batch-size", "x"], "expected an integer"),
    (["train", "--frobnicate"], "unrecognized arguments"),
    (["train", "--model", "resnet"], "invalid choice: 'resnet'"),
    (["train", "--model", "convnet", "--hidden", "16"], "--hidden: only applies to --model mlp"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_options_exit_2_with_one_line(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert match in _one_error_line(capsys.readouterr().err)


def test_unusable_datasets_and_threads_exit_1_with_one_line(tmp_path, capsys):
    for argv, match in [
        (["train", "--dataset", "no-such-dataset"], "mnist, mnist-sample or a directory"),
        (["train", "--dataset", str(tmp_path)], str(tmp_path)),
        (["train", "--threads", "4096", "--dataset", "mnist-sample"], "--threads must be at most"),
        (["evaluate", str(tmp_path / "missing.npz")], "does not exist"),
    ]:
        assert cli.main(argv + ["--out", str(tmp_path / "out")] if argv[0] == "train" else argv) == 1
        assert match in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_train_writes_its_files_then_evaluate_and_resume_use_them(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--dataset", "mnist-sample", "--hidden", "16", "--batch-size", "200", "--out", str(out)]
    assert cli.main(["train", "--epochs", "1", "--dropout", "0.1", "--seed", "3"] + common) == 0
    printed = capsys.readouterr().out
    assert "epoch 1/1 - loss" in printed and "val_accuracy" in printed
    assert {p.name for p in out.iterdir()} == {"model.npz", "checkpoint.npz", "history.json", "history.csv",
                                               "curves.png", "config.json"}
    assert json.loads((out / "config.json").read_text())["hidden"] == [16]
    assert (out / "history.csv").read_text().splitlines()[0] == "epoch,loss,accuracy,val_loss,val_accuracy,epoch_time"

    assert cli.main(["evaluate", str(out / "model.npz"), "--dataset", "mnist-sample"]) == 0
    accuracy = float(capsys.readouterr().out.split("test accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(json.loads((out / "history.json").read_text())["val_accuracy"][-1])

    assert cli.main(["train", "--epochs", "2", "--resume"] + common) == 0
    assert "resuming" in capsys.readouterr().out
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2


def test_the_convnet_trains_from_the_command_line_and_evaluate_reads_it(tmp_path, monkeypatch, capsys):
    (x_train, y_train), (x_test, y_test) = load_mnist_sample()
    # Every 100th digit: 40 training and 10 test digits of all classes, two steps of 20.
    tiny = ((x_train[::100], y_train[::100]), (x_test[::100], y_test[::100]))
    monkeypatch.setattr(cli, "load_dataset", lambda name: tiny)
    out = tmp_path / "convnet"
    argv = ["train", "--model", "convnet", "--epochs", "1", "--batch-size", "20", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Conv2D(in_channels=1, out_channels=32" in printed and "Dropout(rate=0.5)" in printed
    assert "Dense(in_features=1600, out_features=10" in printed
    assert {p.name for p in out.iterdir()} >= {"model.npz", "checkpoint.npz", "history.json", "curves.png"}
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["hidden"], config["dropout"]) == ("convnet", None, 0.5)

    assert cli.main(["evaluate", str(out / "model.npz")]) == 0
    loss = float(capsys.readouterr().out.split("test loss ")[1].split()[0])
    assert loss == pytest.approx(json.loads((out / "history.json").read_text())["val_loss"][-1], abs=1e-4)


def test_a_diverging_run_stops_with_one_line_and_keeps_no_broken_model(tmp_path, capsys):
    argv = ["train", "--dataset", "mnist-sample", "--optimizer", "sgd", "--lr", "1e30", "--hidden", "8",
            "--epochs", "1", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "epoch 1, step" in line and "lr=1e+30" in line
    assert not (tmp_path / "model.npz").exists() and not (tmp_path / "checkpoint.npz").exists()


def test_resume_without_a_checkpoint_is_one_line(tmp_path, capsys):
    argv = ["train", "--dataset", "mnist-sample", "--resume", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    assert "no checkpoint" in _one_error_line(capsys.readouterr().err)


class SlowWarmUp(Trainer):
    """A trainer whose warm-up takes ``seconds``, as a cold Numba cache makes it."""

    seconds = 0.0

    def warm_up(self, sample_counts=()):
        time.sleep(self.seconds)


def test_a_slow_warm_up_announces_compilation_and_a_fast_one_is_silent(capsys):
    trainer = SlowWarmUp(Sequential([Dense(4, 3), ReLU(), Dense(3, 2)]), Adam())
    trainer.seconds = 0.5
    cli.warm_up(trainer, announce_after=0.05)
    line = capsys.readouterr().out.strip()
    assert line.startswith("compiling numbanet's float32 kernels for Dense, ReLU, the loss and adam_step")
    trainer.seconds = 0.0
    cli.warm_up(trainer, announce_after=0.5)
    assert capsys.readouterr().out == ""


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run([sys.executable, "-m", "numbanet", "train", "--epochs", "-1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    _one_error_line(result.stderr)
